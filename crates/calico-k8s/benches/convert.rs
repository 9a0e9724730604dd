//! Conversion cost of a typical and a large Kubernetes NetworkPolicy.

use calico_k8s::{NetworkPolicy, k8s_network_policy_to_calico};
use criterion::{Criterion, criterion_group, criterion_main};

fn policy(rules: usize) -> NetworkPolicy {
    let mut ingress = Vec::new();
    for i in 0..rules {
        ingress.push(serde_json::json!({
            "from": [
                {"podSelector": {"matchLabels": {"app": format!("a{i}")}}},
                {"namespaceSelector": {"matchExpressions": [
                    {"key": "team", "operator": "In", "values": ["x", "y"]}]}},
                {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
            ],
            "ports": [{"port": 80}, {"port": 81}, {"port": 82}, {"port": "http"},
                      {"protocol": "UDP", "port": 53}, {"port": 9000, "endPort": 9100}]
        }));
    }
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "bench", "namespace": "default",
                     "uid": "30316465-6365-4463-ad63-3564622d3638"},
        "spec": {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": ingress,
                 "policyTypes": ["Ingress"]}
    }))
    .expect("bench policy is valid")
}

fn bench(c: &mut Criterion) {
    for rules in [1usize, 100] {
        let np = policy(rules);
        c.bench_function(
            &format!("k8s_network_policy_to_calico/{rules}_rules"),
            |b| b.iter(|| k8s_network_policy_to_calico(std::hint::black_box(&np))),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
