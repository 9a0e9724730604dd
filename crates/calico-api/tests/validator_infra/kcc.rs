//! KubeControllersConfiguration cases. Calico's table validates bare spec and sub-structs; they
//! are wrapped in the `default` object here. Template entries also carry a generateName and an
//! interface pattern where the entry is about something else, because Calico's client requires
//! both on create (`validateAndFillDefaults`).

use super::{Case, Invalid, Valid, run_table};

macro_rules! kcc {
    ($spec:literal) => {
        concat!("metadata: {name: default}\nspec: ", $spec)
    };
}

pub const CASES: &[Case] = &[
    (
        "should not accept invalid HealthChecks",
        "KubeControllersConfiguration",
        kcc!("{healthChecks: invalid, controllers: {}}"),
        Invalid("spec.healthChecks"),
    ),
    (
        "should accept valid HealthChecks",
        "KubeControllersConfiguration",
        kcc!("{healthChecks: Enabled, controllers: {}}"),
        Valid,
    ),
    (
        "should not accept invalid log severity",
        "KubeControllersConfiguration",
        kcc!("{logSeverityScreen: invalid, controllers: {}}"),
        Invalid("spec.logSeverityScreen"),
    ),
    (
        "should accept valid log severity",
        "KubeControllersConfiguration",
        kcc!("{logSeverityScreen: Error, controllers: {}}"),
        Valid,
    ),
    (
        "should accept valid compaction period",
        "KubeControllersConfiguration",
        kcc!("{etcdV3CompactionPeriod: 12m, controllers: {}}"),
        Valid,
    ),
    (
        "should accept ControllersConfig with no values",
        "KubeControllersConfiguration",
        kcc!("{controllers: {}}"),
        Valid,
    ),
    (
        "should accept ControllersConfig with empty values",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {}, policy: {}, workloadEndpoint: {}, serviceAccount: {}, namespace: {}, loadBalancer: {}}}"
        ),
        Valid,
    ),
    (
        "should accept valid reconciliation period on node",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {reconcilerPeriod: 5m}}}"),
        Valid,
    ),
    (
        "should not accept invalid sync labels",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {syncLabels: 'yes'}}}"),
        Invalid("spec.controllers.node.syncLabels"),
    ),
    (
        "should accept valid sync labels",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {syncLabels: Disabled}}}"),
        Valid,
    ),
    (
        "should not accept invalid host endpoint auto create",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {hostEndpoint: {autoCreate: Totally}}}}"),
        Invalid("spec.controllers.node.hostEndpoint.autoCreate"),
    ),
    (
        "should accept valid host endpoint auto create",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {hostEndpoint: {autoCreate: Enabled}}}}"),
        Valid,
    ),
    (
        "should not accept invalid host endpoint createDefaultAutoHostEndpoint",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {hostEndpoint: {createDefaultHostEndpoint: Totally}}}}"),
        Invalid("spec.controllers.node.hostEndpoint.createDefaultHostEndpoint"),
    ),
    (
        "should accept valid host endpoint createDefaultAutoHostEndpoint",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {hostEndpoint: {createDefaultHostEndpoint: Enabled}}}}"),
        Valid,
    ),
    (
        "should accept empty host endpoint auto create",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {hostEndpoint: {}}}}"),
        Valid,
    ),
    (
        "should accept valid reconciliation period on policy",
        "KubeControllersConfiguration",
        kcc!("{controllers: {policy: {reconcilerPeriod: 330s}}}"),
        Valid,
    ),
    (
        "should accept valid reconciliation period on workload endpoint",
        "KubeControllersConfiguration",
        kcc!("{controllers: {workloadEndpoint: {reconcilerPeriod: 330s}}}"),
        Valid,
    ),
    (
        "should accept valid reconciliation period on service account",
        "KubeControllersConfiguration",
        kcc!("{controllers: {serviceAccount: {reconcilerPeriod: 330s}}}"),
        Valid,
    ),
    (
        "should accept valid reconciliation period on namespace",
        "KubeControllersConfiguration",
        kcc!("{controllers: {namespace: {reconcilerPeriod: 330s}}}"),
        Valid,
    ),
    (
        "should accept valid assignIPs value for LoadBalancer config - AllServices",
        "KubeControllersConfiguration",
        kcc!("{controllers: {loadBalancer: {assignIPs: AllServices}}}"),
        Valid,
    ),
    (
        "should accept valid assignIPs value for LoadBalancer config - RequestedServicesOnly",
        "KubeControllersConfiguration",
        kcc!("{controllers: {loadBalancer: {assignIPs: RequestedServicesOnly}}}"),
        Valid,
    ),
    (
        "should not accept invalid assignIPs value for LoadBalancer config",
        "KubeControllersConfiguration",
        kcc!("{controllers: {loadBalancer: {assignIPs: incorrect-value}}}"),
        Invalid("spec.controllers.loadBalancer.assignIPs"),
    ),
    (
        "should not accept template with incorrect name",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: test$set, interfacePattern: eth0}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].generateName"),
    ),
    (
        "should accept template with valid name",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: validname, interfacePattern: eth0}]}}}}"
        ),
        Valid,
    ),
    (
        "should allow a valid nodeSelector",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: eth0, nodeSelector: 'foo == \"bar\"'}]}}}}"
        ),
        Valid,
    ),
    (
        "should disallow a invalid nodeSelector",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: eth0, nodeSelector: this is not valid selector syntax}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].nodeSelector"),
    ),
    (
        "should allow a valid CIDR",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfaceCIDRs: [10.0.1.0/24, 10.0.10.0/32]}]}}}}"
        ),
        Valid,
    ),
    (
        "should accept empty CIDR list (with a pattern)",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfaceCIDRs: [], interfacePattern: eth0}]}}}}"
        ),
        Valid,
    ),
    (
        "should reject invalid CIDR",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfaceCIDRs: [not a real cidr]}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].interfaceCIDRs[0]"),
    ),
    (
        "should allow valid template annotations, including values not valid as label values",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: eth0, annotations: {projectcalico.org/note: 'any value, including spaces & symbols!'}}]}}}}"
        ),
        Valid,
    ),
    (
        "should reject template annotations with an invalid key",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: eth0, annotations: {not a valid key: value}}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].annotations"),
    ),
    (
        "should accept a nested template with valid annotations",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: eth0, annotations: {projectcalico.org/note: ok}}]}}}}"
        ),
        Valid,
    ),
    (
        "should reject a nested template with an invalid annotation key",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: eth0, annotations: {not a valid key: value}}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].annotations"),
    ),
    (
        "should reject a nested template with an invalid generateName",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: test$set, interfacePattern: eth0}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].generateName"),
    ),
    // clientv3/kubecontrollersconfig.go create-time rules and the CRD schema.
    (
        "rejects a template without a name",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {hostEndpoint: {templates: [{interfacePattern: eth0}]}}}}"),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].generateName"),
    ),
    (
        "rejects a template without CIDRs or pattern",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {hostEndpoint: {templates: [{generateName: t}]}}}}"),
        Invalid("spec.controllers.node.hostEndpoint.templates[0]"),
    ),
    (
        "rejects duplicate template names",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: a}, {generateName: t, interfacePattern: b}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[1].generateName"),
    ),
    (
        "rejects an invalid interface pattern regex",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: '(eth'}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].interfacePattern"),
    ),
    (
        "rejects invalid template labels",
        "KubeControllersConfiguration",
        kcc!(
            "{controllers: {node: {hostEndpoint: {templates: [{generateName: t, interfacePattern: eth0, labels: {a: 'b c'}}]}}}}"
        ),
        Invalid("spec.controllers.node.hostEndpoint.templates[0].labels"),
    ),
    (
        "rejects a KubeControllersConfiguration not named default",
        "KubeControllersConfiguration",
        "metadata: {name: other}\nspec: {controllers: {}}",
        Invalid("metadata.name"),
    ),
    (
        "rejects prometheusMetricsPort 65536",
        "KubeControllersConfiguration",
        kcc!("{prometheusMetricsPort: 65536, controllers: {}}"),
        Invalid("spec.prometheusMetricsPort"),
    ),
    (
        "accepts prometheusMetricsPort 0 (disabled)",
        "KubeControllersConfiguration",
        kcc!("{prometheusMetricsPort: 0, controllers: {}}"),
        Valid,
    ),
    (
        "rejects debugProfilePort -1",
        "KubeControllersConfiguration",
        kcc!("{debugProfilePort: -1, controllers: {}}"),
        Invalid("spec.debugProfilePort"),
    ),
    (
        "rejects policyNameMigrator on",
        "KubeControllersConfiguration",
        kcc!("{controllers: {migration: {policyNameMigrator: 'on'}}}"),
        Invalid("spec.controllers.migration.policyNameMigrator"),
    ),
    (
        "accepts leakGracePeriod 0 (GC disabled)",
        "KubeControllersConfiguration",
        kcc!("{controllers: {node: {leakGracePeriod: 0s}}}"),
        Valid,
    ),
    (
        "rejects a malformed reconcilerPeriod",
        "KubeControllersConfiguration",
        kcc!("{controllers: {policy: {reconcilerPeriod: five minutes}}}"),
        Invalid("spec.controllers.policy.reconcilerPeriod"),
    ),
];

#[test]
fn kube_controllers_table() {
    run_table("kubecontrollers", CASES);
}
