//! Issue 6: policies applied with `calicoctl apply` (Kubernetes and Calico kinds) are enforced
//! on real TCP / UDP traffic between pods on one node and across two nodes. Each scenario's
//! expected matrix comes from `calico-policy-eval` over what is stored in the datastore (see
//! `calico_e2e::policy`), and the observed one from real probes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use calico_e2e::cluster::{calicoctl, calicoctl_apply};
use calico_e2e::policy::{PolicyCluster, wep_name};
use calico_netlink::testing::require_root;

const CONVERGE: Duration = Duration::from_secs(30);

/// Applies `yaml`, checks the scenario, then deletes what it applied (last document first).
fn scenario(pc: &PolicyCluster, name: &str, yaml: &str) {
    let store = pc.store();
    calicoctl_apply(&store, yaml).unwrap_or_else(|e| panic!("{name}: apply: {e}"));
    let reached = pc
        .wait_for_expected(name, CONVERGE)
        .unwrap_or_else(|e| panic!("{e}"));
    // Every scenario must block something and allow something, or it proves nothing.
    let blocked = reached.cells.values().filter(|r| !**r).count();
    assert!(
        blocked > 0 && blocked < reached.cells.len(),
        "{name}: {blocked} of {} probes blocked",
        reached.cells.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("scenario.yaml");
    // Reverse order: policies go before the tiers they live in.
    let mut reversed: Vec<&str> = yaml.split("---\n").collect();
    reversed.reverse();
    std::fs::write(&file, reversed.join("\n---\n")).unwrap();
    calicoctl(&store, &["delete", "-f", &file.display().to_string()])
        .unwrap_or_else(|e| panic!("{name}: delete: {e}"));
}

#[test]
fn kubernetes_network_policies_are_enforced() {
    if !require_root() {
        return;
    }
    let pc = PolicyCluster::start().unwrap();

    scenario(
        &pc,
        "default deny ingress in x",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: deny-all, namespace: x}\n\
         spec: {podSelector: {}, policyTypes: [Ingress]}\n",
    );
    scenario(
        &pc,
        "x/a accepts TCP 80 from namespace y only",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: a-from-y, namespace: x}\n\
         spec:\n  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]\n\
         \x20 ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns: \"y\"}}}]\n\
         \x20   ports: [{protocol: TCP, port: 80}]\n",
    );
    scenario(
        &pc,
        "pods b of any namespace reach x on port 81 (TCP and UDP)",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: from-b, namespace: x}\n\
         spec:\n  podSelector: {}\n\
         \x20 ingress:\n  - from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}]\n\
         \x20   ports: [{protocol: TCP, port: 81}, {protocol: UDP, port: 81}]\n",
    );
    scenario(
        &pc,
        "y/c may not send anything (egress deny)",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: c-no-egress, namespace: \"y\"}\n\
         spec: {podSelector: {matchLabels: {pod: c}}, policyTypes: [Egress]}\n",
    );
    let ya = pc.pods.iter().find(|p| p.key == "y/a").unwrap().pod.ip;
    scenario(
        &pc,
        "z accepts everything but y/a (ipBlock with except), on port range 80-81",
        &format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
             metadata: {{name: all-but-ya, namespace: z}}\n\
             spec:\n  podSelector: {{}}\n\
             \x20 ingress:\n  - from: [{{ipBlock: {{cidr: 0.0.0.0/0, except: [{ya}/32]}}}}]\n\
             \x20   ports: [{{protocol: TCP, port: 80, endPort: 81}}, {{protocol: UDP, port: 80, endPort: 81}}]\n"
        ),
    );
    // Policies stacking: deny-all plus an allow in the same namespace.
    scenario(
        &pc,
        "deny all in y, but y/b accepts from x",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: deny-all, namespace: \"y\"}\n\
         spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: b-from-x, namespace: \"y\"}\n\
         spec:\n  podSelector: {matchLabels: {pod: b}}\n\
         \x20 ingress: [{from: [{namespaceSelector: {matchLabels: {ns: \"x\"}}}]}]\n",
    );
    // Everything deleted: back to open.
    pc.wait_for_expected("all policies deleted", CONVERGE)
        .unwrap();
}

#[test]
fn calico_policies_are_enforced() {
    if !require_root() {
        return;
    }
    let pc = PolicyCluster::start().unwrap();
    let store = pc.store();
    // Named port `http` (TCP 80) on every pod a, and a service account on pods c.
    for p in &pc.pods {
        let (ns, name) = p.key.split_once('/').unwrap();
        let wep = wep_name(&p.node, name);
        let patch = match name {
            "a" => {
                serde_json::json!({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
            }
            "c" => serde_json::json!({"metadata": {"labels": {
                "pod": "c",
                "projectcalico.org/namespace": ns,
                "projectcalico.org/orchestrator": "k8s",
                "projectcalico.org/serviceaccount": "robot",
            }}, "spec": {"serviceAccountName": "robot"}}),
            _ => continue,
        };
        calicoctl(
            &store,
            &[
                "patch",
                "workloadendpoint",
                &wep,
                "-n",
                ns,
                "-p",
                &patch.to_string(),
            ],
        )
        .unwrap();
    }
    pc.wait_for_expected("named ports and service accounts added", CONVERGE)
        .unwrap();

    scenario(
        &pc,
        "tier with Pass: security tier denies UDP into x, passes the rest to a default-tier allow of named port http",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
         metadata: {name: security.guard}\n\
         spec:\n  tier: security\n  order: 10\n  selector: projectcalico.org/namespace == 'x'\n\
         \x20 types: [Ingress]\n  ingress:\n  - action: Deny\n    protocol: UDP\n  - action: Log\n  - action: Pass\n---\n\
         apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
         metadata: {name: http-only, namespace: x}\n\
         spec:\n  selector: all()\n  types: [Ingress]\n\
         \x20 ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [http]}\n",
    );
    scenario(
        &pc,
        "namespaceSelector and serviceAccounts: z accepts only from namespace y and from service account robot",
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
         metadata: {name: z-ingress, namespace: z}\n\
         spec:\n  selector: all()\n  ingress:\n\
         \x20 - action: Allow\n    source: {namespaceSelector: ns == 'y'}\n\
         \x20 - action: Allow\n    source: {serviceAccounts: {names: [robot]}, namespaceSelector: all()}\n",
    );
    let xb = pc.pods.iter().find(|p| p.key == "x/b").unwrap().pod.ip;
    scenario(
        &pc,
        "notNets and global default deny: y's egress goes anywhere except x/b; tier default action Pass",
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {{name: platform}}\nspec: {{order: 50, defaultAction: Pass}}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
             metadata: {{name: platform.y-egress}}\n\
             spec:\n  tier: platform\n  selector: projectcalico.org/namespace == 'y'\n  types: [Egress]\n\
             \x20 egress:\n  - action: Deny\n    destination: {{nets: [{xb}/32]}}\n---\n\
             apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
             metadata: {{name: y-egress}}\n\
             spec:\n  selector: projectcalico.org/namespace == 'y'\n  types: [Egress]\n\
             \x20 egress:\n  - action: Allow\n    destination: {{notNets: [{xb}/32]}}\n"
        ),
    );
    scenario(
        &pc,
        "network sets: x accepts from the global network set holding z's pods only",
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n\
             metadata: {{name: zpods, labels: {{role: zpods}}}}\nspec:\n  nets: [{}]\n---\n\
             apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
             metadata: {{name: from-set, namespace: x}}\n\
             spec:\n  selector: all()\n  ingress:\n  - action: Allow\n    source: {{selector: role == 'zpods', namespaceSelector: global()}}\n",
            pc.pods
                .iter()
                .filter(|p| p.key.starts_with("z/"))
                .map(|p| format!("{}/32", p.pod.ip))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    pc.wait_for_expected("all policies deleted", CONVERGE)
        .unwrap();
}
