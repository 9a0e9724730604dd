//! Shared test helpers: resource builders and the model invariants every test checks.
#![allow(dead_code, clippy::unwrap_used)]

use calico_api::Resource;
use calico_calc::{CalcGraph, DataplaneModel, ModelUpdate, ResourceKey};
use serde_json::{Value, json};

pub fn res(v: Value) -> Resource {
    Resource::from_json_value(v.clone()).unwrap_or_else(|e| panic!("bad test resource {v}: {e}"))
}

/// A Kubernetes-style workload endpoint `<node>-k8s-<pod>-eth0` in namespace `ns`.
pub fn wep(node: &str, ns: &str, pod: &str, ips: &[&str], labels: &[(&str, &str)]) -> Resource {
    wep_full(node, ns, pod, ips, labels, &[&format!("kns.{ns}")], &[])
}

pub fn wep_full(
    node: &str,
    ns: &str,
    pod: &str,
    ips: &[&str],
    labels: &[(&str, &str)],
    profiles: &[&str],
    ports: &[(&str, &str, u16)],
) -> Resource {
    let mut l = serde_json::Map::new();
    l.insert("projectcalico.org/namespace".into(), json!(ns));
    l.insert("projectcalico.org/orchestrator".into(), json!("k8s"));
    for (k, v) in labels {
        l.insert((*k).into(), json!(v));
    }
    let ports: Vec<Value> = ports
        .iter()
        .map(|(name, proto, port)| json!({"name": name, "protocol": proto, "port": port}))
        .collect();
    let node_part = node.replace('-', "--");
    let pod_part = pod.replace('-', "--");
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
        "metadata": {"name": format!("{node_part}-k8s-{pod_part}-eth0"), "namespace": ns, "labels": l},
        "spec": {"node": node, "orchestrator": "k8s", "pod": pod, "endpoint": "eth0",
                 "interfaceName": format!("cali{}", &pod.replace('-', "")),
                 "ipNetworks": ips, "profiles": profiles, "ports": ports}
    }))
}

pub fn hep(name: &str, node: &str, iface: &str, ips: &[&str], labels: &[(&str, &str)]) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
        "spec": {"node": node, "interfaceName": iface, "expectedIPs": ips}
    }))
}

pub fn np(ns: &str, name: &str, spec: Value) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns}, "spec": spec
    }))
}

pub fn gnp(name: &str, spec: Value) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
        "metadata": {"name": name}, "spec": spec
    }))
}

pub fn profile(name: &str, labels: &[(&str, &str)], spec_rules: Value) -> Resource {
    let mut spec = spec_rules;
    spec["labelsToApply"] = labels
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Profile",
        "metadata": {"name": name}, "spec": spec
    }))
}

pub fn tier(name: &str, order: f64, default_action: Option<&str>) -> Resource {
    let mut spec = json!({"order": order});
    if let Some(a) = default_action {
        spec["defaultAction"] = json!(a);
    }
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Tier",
        "metadata": {"name": name}, "spec": spec
    }))
}

pub fn netset(ns: &str, name: &str, nets: &[&str], labels: &[(&str, &str)]) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "NetworkSet",
        "metadata": {"name": name, "namespace": ns, "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
        "spec": {"nets": nets}
    }))
}

pub fn gnetset(name: &str, nets: &[&str], labels: &[(&str, &str)]) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()},
        "spec": {"nets": nets}
    }))
}

pub fn put(g: &mut CalcGraph, r: Resource) {
    let key = ResourceKey::of(&r);
    g.on_update(key.clone(), Some(r))
        .unwrap_or_else(|e| panic!("update of {key} refused: {e}"));
}

pub fn del(g: &mut CalcGraph, kind: &str, ns: &str, name: &str) {
    g.on_update(ResourceKey::new(kind, ns, name), None).unwrap();
}

/// Flushes `g` and checks the contract: replaying the updates onto `replay` (the dataplane's
/// copy) gives `g.model()`, and after the batch every reference resolves. Returns the batch.
pub fn flush_checked(g: &mut CalcGraph, replay: &mut DataplaneModel) -> Vec<ModelUpdate> {
    let ups = g.flush();
    for u in &ups {
        replay.apply(u).unwrap();
    }
    assert_eq!(replay, g.model(), "replayed updates differ from the model");
    replay.check_references(true).unwrap();
    g.model().check_references(true).unwrap();
    ups
}
