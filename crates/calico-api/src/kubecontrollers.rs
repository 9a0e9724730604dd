//! KubeControllersConfiguration (`api/pkg/apis/projectcalico/v3/kubecontrollersconfig.go`):
//! the singleton `default` configuring calico-kube-controllers.
//!
//! Defaulting mirrors `libcalico-go/lib/clientv3/kubecontrollersconfig.go`
//! (`validateAndFillDefaults`: prometheusMetricsPort 9094, node leakGracePeriod 15m,
//! loadBalancer assignIPs AllServices, template nodeSelector `all()`) plus the CRD defaults
//! (healthChecks Enabled, migration policyNameMigrator Enabled). The object kube-controllers
//! creates when none exists is [`KubeControllersConfiguration::calico_default`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::duration::{Duration, MINUTE};
use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};
use crate::validation;

pub const KCC_NAME: &str = "default";
pub const LOG_LEVELS: &[&str] = &[
    "None", "Debug", "Info", "Warning", "Error", "Fatal", "Panic",
];
pub const ENABLED_DISABLED: &[&str] = &["Enabled", "Disabled"];
pub const ASSIGN_IPS: &[&str] = &["AllServices", "RequestedServicesOnly"];
pub const DEFAULT_PROMETHEUS_PORT: i64 = 9094;

/// `spec.controllers` and `status` are non-pointer structs in Go and always written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeControllersConfiguration {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: KubeControllersConfigurationSpec,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub status: KubeControllersConfigurationStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeControllersConfigurationSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_severity_screen: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health_checks: String,
    #[serde(
        rename = "etcdV3CompactionPeriod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub etcd_v3_compaction_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus_metrics_port: Option<i64>,
    #[serde(default)]
    pub controllers: ControllersConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_profile_port: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControllersConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeControllerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ReconcilerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_endpoint: Option<ReconcilerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<ReconcilerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<ReconcilerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancerControllerConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationControllerConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeControllerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciler_period: Option<Duration>,
    /// `Enabled` | `Disabled`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sync_labels: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_endpoint: Option<AutoHostEndpointConfig>,
    /// Grace period before leaked IPs are reclaimed; 0 disables IP garbage collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_grace_period: Option<Duration>,
}

/// `PolicyControllerConfig`, `WorkloadEndpointControllerConfig`,
/// `ServiceAccountControllerConfig`, `NamespaceControllerConfig` (all just a period).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReconcilerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciler_period: Option<Duration>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoHostEndpointConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auto_create: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub create_default_host_endpoint: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<Template>,
}

/// A template for auto-created host endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Template {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generate_name: String,
    #[serde(
        rename = "interfaceCIDRs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interface_cidrs: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_pattern: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancerControllerConfig {
    #[serde(
        rename = "assignIPs",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub assign_ips: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MigrationControllerConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy_name_migrator: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeControllersConfigurationStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_config: Option<KubeControllersConfigurationSpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_vars: BTreeMap<String, String>,
}

impl KubeControllersConfiguration {
    /// The configuration calico-kube-controllers creates when none exists
    /// (`kube-controllers/pkg/config/runconfig.go` `NewDefaultKubeControllersConfig`).
    pub fn calico_default() -> Self {
        let period = |m: i64| Some(Duration(m * MINUTE));
        let rec = || {
            Some(ReconcilerConfig {
                reconciler_period: period(5),
            })
        };
        KubeControllersConfiguration {
            metadata: ObjectMeta::named(KCC_NAME),
            spec: KubeControllersConfigurationSpec {
                log_severity_screen: "Info".into(),
                health_checks: "Enabled".into(),
                etcd_v3_compaction_period: period(10),
                prometheus_metrics_port: None,
                controllers: ControllersConfig {
                    node: Some(NodeControllerConfig {
                        reconciler_period: period(5),
                        sync_labels: "Enabled".into(),
                        host_endpoint: Some(AutoHostEndpointConfig {
                            auto_create: "Disabled".into(),
                            create_default_host_endpoint: "Enabled".into(),
                            templates: Vec::new(),
                        }),
                        leak_grace_period: period(15),
                    }),
                    policy: rec(),
                    workload_endpoint: rec(),
                    service_account: rec(),
                    namespace: rec(),
                    load_balancer: Some(LoadBalancerControllerConfig {
                        assign_ips: "AllServices".into(),
                    }),
                    migration: Some(MigrationControllerConfig {
                        policy_name_migrator: "Enabled".into(),
                    }),
                },
                debug_profile_port: None,
            },
            status: KubeControllersConfigurationStatus::default(),
        }
    }
}

impl CalicoResource for KubeControllersConfiguration {
    const KIND: &'static str = "KubeControllersConfiguration";

    crate::resource::metadata_accessors!();

    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        if spec.prometheus_metrics_port.is_none() {
            spec.prometheus_metrics_port = Some(DEFAULT_PROMETHEUS_PORT);
        }
        if spec.health_checks.is_empty() {
            spec.health_checks = "Enabled".into();
        }
        if let Some(node) = &mut spec.controllers.node {
            if node.leak_grace_period.is_none() {
                node.leak_grace_period = Some(Duration(15 * MINUTE));
            }
            if let Some(hep) = &mut node.host_endpoint {
                for t in &mut hep.templates {
                    if t.node_selector.is_empty() {
                        t.node_selector = "all()".into();
                    }
                }
            }
        }
        if let Some(lb) = &mut spec.controllers.load_balancer
            && lb.assign_ips.is_empty()
        {
            lb.assign_ips = "AllServices".into();
        }
        if let Some(m) = &mut spec.controllers.migration
            && m.policy_name_migrator.is_empty()
        {
            m.policy_name_migrator = "Enabled".into();
        }
    }

    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        if !self.metadata.name.is_empty() && self.metadata.name != KCC_NAME {
            errs.push(
                &FieldPath::root().field("metadata").field("name"),
                "Cannot create a Kube Controllers Configuration resource with a name other than \"default\"",
            );
        }
        validate_spec(&self.spec, &FieldPath::root().field("spec"), errs);
    }
}

fn validate_spec(
    spec: &KubeControllersConfigurationSpec,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if !spec.log_severity_screen.is_empty() {
        netutil::check_enum(
            &spec.log_severity_screen,
            LOG_LEVELS,
            &path.field("logSeverityScreen"),
            errs,
        );
    }
    if !spec.health_checks.is_empty() {
        netutil::check_enum(
            &spec.health_checks,
            ENABLED_DISABLED,
            &path.field("healthChecks"),
            errs,
        );
    }
    if let Some(p) = spec.prometheus_metrics_port {
        netutil::check_range(
            p,
            Some(0),
            Some(65535),
            &path.field("prometheusMetricsPort"),
            errs,
        );
    }
    if let Some(p) = spec.debug_profile_port {
        netutil::check_range(
            i64::from(p),
            Some(0),
            Some(65535),
            &path.field("debugProfilePort"),
            errs,
        );
    }
    let c = path.field("controllers");
    if let Some(node) = &spec.controllers.node {
        let np = c.field("node");
        if !node.sync_labels.is_empty() {
            netutil::check_enum(
                &node.sync_labels,
                ENABLED_DISABLED,
                &np.field("syncLabels"),
                errs,
            );
        }
        if let Some(hep) = &node.host_endpoint {
            let hp = np.field("hostEndpoint");
            if !hep.auto_create.is_empty() {
                netutil::check_enum(
                    &hep.auto_create,
                    ENABLED_DISABLED,
                    &hp.field("autoCreate"),
                    errs,
                );
            }
            if !hep.create_default_host_endpoint.is_empty() {
                netutil::check_enum(
                    &hep.create_default_host_endpoint,
                    ENABLED_DISABLED,
                    &hp.field("createDefaultHostEndpoint"),
                    errs,
                );
            }
            for (i, t) in hep.templates.iter().enumerate() {
                let tp = hp.field("templates").index(i);
                validate_template(t, &tp, errs);
                if hep.templates[..i]
                    .iter()
                    .any(|o| !t.generate_name.is_empty() && o.generate_name == t.generate_name)
                {
                    errs.push(&tp.field("generateName"), "Template name must be unique");
                }
            }
        }
    }
    if let Some(lb) = &spec.controllers.load_balancer
        && !lb.assign_ips.is_empty()
    {
        netutil::check_enum(
            &lb.assign_ips,
            ASSIGN_IPS,
            &c.field("loadBalancer").field("assignIPs"),
            errs,
        );
    }
    if let Some(m) = &spec.controllers.migration
        && !m.policy_name_migrator.is_empty()
    {
        netutil::check_enum(
            &m.policy_name_migrator,
            ENABLED_DISABLED,
            &c.field("migration").field("policyNameMigrator"),
            errs,
        );
    }
}

/// The field checks of `Template` (validator.go) plus the create-time checks of
/// `validateAndFillDefaults` (name required, ≤ 253, CIDRs or pattern required).
fn validate_template(t: &Template, path: &FieldPath, errs: &mut FieldErrors) {
    let np = path.field("generateName");
    if t.generate_name.is_empty() {
        errs.push(&np, "Template name must be specified");
    } else if t.generate_name.len() > 253 {
        errs.push(&np, "Template name must be shorter than 253 characters");
    } else if !netutil::is_name(&t.generate_name) {
        errs.push(
            &np,
            format!(
                "invalid template name {:?}: must be a valid resource name",
                t.generate_name
            ),
        );
    }
    if t.interface_cidrs.is_empty() && t.interface_pattern.is_empty() {
        errs.push(path, "InterfaceCIDRs or InterfacePattern must be specified");
    }
    for (i, cidr) in t.interface_cidrs.iter().enumerate() {
        if netutil::parse_cidr_or_ip(cidr).is_none() {
            errs.push(
                &path.field("interfaceCIDRs").index(i),
                format!("invalid CIDR {cidr:?}"),
            );
        }
    }
    if !t.interface_pattern.is_empty() && regex::Regex::new(&t.interface_pattern).is_err() {
        errs.push(
            &path.field("interfacePattern"),
            format!("invalid regular expression {:?}", t.interface_pattern),
        );
    }
    validation::validate_labels(&t.labels, &path.field("labels"), errs);
    validation::validate_annotations(&t.annotations, &path.field("annotations"), errs);
    if !t.node_selector.is_empty() {
        validation::validate_selector(&t.node_selector, &path.field("nodeSelector"), errs);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn calico_default_is_valid_and_stable() {
        let mut d = KubeControllersConfiguration::calico_default();
        let mut errs = FieldErrors::new();
        d.validate(&mut errs);
        assert!(errs.is_empty(), "{errs}");
        d.apply_defaults();
        assert_eq!(d.spec.prometheus_metrics_port, Some(9094));
        let json = serde_json::to_string(&crate::resource::encode_kind(&d)).unwrap();
        assert_eq!(
            json,
            r#"{"apiVersion":"projectcalico.org/v3","kind":"KubeControllersConfiguration","metadata":{"name":"default"},"spec":{"logSeverityScreen":"Info","healthChecks":"Enabled","etcdV3CompactionPeriod":"10m0s","prometheusMetricsPort":9094,"controllers":{"node":{"reconcilerPeriod":"5m0s","syncLabels":"Enabled","hostEndpoint":{"autoCreate":"Disabled","createDefaultHostEndpoint":"Enabled"},"leakGracePeriod":"15m0s"},"policy":{"reconcilerPeriod":"5m0s"},"workloadEndpoint":{"reconcilerPeriod":"5m0s"},"serviceAccount":{"reconcilerPeriod":"5m0s"},"namespace":{"reconcilerPeriod":"5m0s"},"loadBalancer":{"assignIPs":"AllServices"},"migration":{"policyNameMigrator":"Enabled"}}},"status":{}}"#
        );
    }
}
