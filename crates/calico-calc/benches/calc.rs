//! The calculation graph at scale: 10k NetworkPolicies × 200 local endpoints (1000 endpoints
//! in the cluster, 20 namespaces), full build, then single changes (goal: < 20 ms each,
//! flush included).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use calico_api::Resource;
use calico_calc::{CalcGraph, ResourceKey};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::json;

const NAMESPACES: usize = 20;
const POLICIES: usize = 10_000;
const LOCAL_PER_NS: usize = 10;
const REMOTE_PER_NS: usize = 40;

fn res(v: serde_json::Value) -> Resource {
    Resource::from_json_value(v).unwrap()
}

fn pod(ns: usize, i: usize, node: &str, app: usize) -> Resource {
    let ip = format!("10.{}.{}.{}", ns, i / 250, i % 250 + 1);
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
        "metadata": {"name": format!("{node}-k8s-pod{i}-eth0"), "namespace": format!("ns{ns}"),
            "labels": {"projectcalico.org/namespace": format!("ns{ns}"),
                       "projectcalico.org/orchestrator": "k8s",
                       "app": format!("app{app}"), "role": format!("r{}", i % 4)}},
        "spec": {"node": node, "orchestrator": "k8s", "pod": format!("pod{i}"), "endpoint": "eth0",
            "interfaceName": format!("cali{ns}x{i}"), "ipNetworks": [ip],
            "profiles": [format!("kns.ns{ns}")],
            "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]}
    }))
}

fn policy(ns: usize, j: usize, port: u16) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": format!("p{j}"), "namespace": format!("ns{ns}")},
        "spec": {"selector": format!("app == 'app{}'", j % 10), "order": (j % 100) as f64,
            "ingress": [{"action": "Allow", "protocol": "TCP",
                "source": {"selector": format!("role == 'r{}' && app == 'app{}'", j % 4, (j * 7) % 10)},
                "destination": {"ports": [port]}}],
            "egress": [{"action": "Allow", "protocol": "TCP",
                "destination": {"namespaceSelector": format!("team == 't{}'", j % 5), "ports": ["http"]}}]}
    }))
}

fn namespace_profile(ns: usize, team: usize) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Profile",
        "metadata": {"name": format!("kns.ns{ns}")},
        "spec": {"labelsToApply": {"pcns.projectcalico.org/name": format!("ns{ns}"),
                                   "pcns.team": format!("t{team}")},
                 "ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}
    }))
}

fn cluster() -> Vec<Resource> {
    let mut out = Vec::new();
    for ns in 0..NAMESPACES {
        out.push(namespace_profile(ns, ns % 5));
        for i in 0..LOCAL_PER_NS {
            out.push(pod(ns, i, "node1", i % 10));
        }
        for i in LOCAL_PER_NS..LOCAL_PER_NS + REMOTE_PER_NS {
            out.push(pod(ns, i, "node2", i % 10));
        }
    }
    for j in 0..POLICIES {
        out.push(policy(j % NAMESPACES, j, 80));
    }
    out
}

/// A datastore snapshot as one batch.
fn build(resources: Vec<Resource>) -> CalcGraph {
    let mut g = CalcGraph::new("node1");
    let errors = g.on_updates(
        resources
            .into_iter()
            .map(|r| (ResourceKey::of(&r), Some(r))),
    );
    assert!(errors.is_empty(), "{errors:?}");
    g
}

/// Applies `a` and `b` alternately (so every iteration is a real change) and flushes.
fn toggle(c: &mut Criterion, name: &str, g: &mut CalcGraph, a: Resource, b: Resource) {
    let mut flip = false;
    c.bench_function(name, |bench| {
        bench.iter(|| {
            flip = !flip;
            let r = if flip { a.clone() } else { b.clone() };
            g.on_update(ResourceKey::of(&r), Some(r)).unwrap();
            black_box(g.flush())
        })
    });
}

fn bench(c: &mut Criterion) {
    let resources = cluster();
    let mut group = c.benchmark_group("full");
    group.sample_size(10);
    group.bench_function("build_10k_policies_200_local_endpoints", |b| {
        b.iter_batched(
            || resources.clone(),
            |rs| {
                let mut g = build(rs);
                black_box(g.flush().len())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut g = build(resources);
    let first = g.flush();
    eprintln!(
        "full build: {} updates, {} active policies, {} IP sets, {} local endpoints",
        first.len(),
        g.model().policies.len(),
        g.model().ip_sets.len(),
        g.model().workload_endpoints.len()
    );
    // A remote pod changes labels: IP-set deltas only.
    toggle(
        c,
        "incremental/remote_pod_label_change",
        &mut g,
        pod(3, 20, "node2", 4),
        pod(3, 20, "node2", 0),
    );
    // A local pod changes labels: its policies, tiers and set memberships change.
    toggle(
        c,
        "incremental/local_pod_label_change",
        &mut g,
        pod(3, 2, "node1", 5),
        pod(3, 2, "node1", 2),
    );
    // One policy's rule changes (a port).
    toggle(
        c,
        "incremental/policy_rule_edit",
        &mut g,
        policy(7, 7, 81),
        policy(7, 7, 80),
    );
    // A namespace's labels change: every pod of it moves between namespace-selector sets.
    toggle(
        c,
        "incremental/namespace_label_change",
        &mut g,
        namespace_profile(4, 1),
        namespace_profile(4, 4),
    );
    // A new pod on this node.
    let new_pod = pod(5, 200, "node1", 3);
    let key = ResourceKey::of(&new_pod);
    c.bench_function("incremental/local_pod_add_remove", |b| {
        let mut present = false;
        b.iter(|| {
            present = !present;
            let v = present.then(|| new_pod.clone());
            g.on_update(key.clone(), v).unwrap();
            black_box(g.flush())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
