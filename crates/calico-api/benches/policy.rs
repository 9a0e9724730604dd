//! Decode + default + validate throughput for policies: the small §2.4 NetworkPolicy and a large
//! GlobalNetworkPolicy (200 rules with selectors, nets and ports), as calicoctl apply and the
//! client do for every write.

#![allow(clippy::unwrap_used)]

use calico_api::Resource;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

fn small() -> Value {
    json!({
        "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-frontend", "namespace": "prod"},
        "spec": {"order": 100, "selector": "app == 'backend'", "types": ["Ingress"],
                 "ingress": [{"action": "Allow", "protocol": "TCP",
                              "source": {"selector": "app == 'frontend'"},
                              "destination": {"ports": [8080, "9000:9010", "http"]}}]}
    })
}

fn large() -> Value {
    let rules: Vec<Value> = (0..200)
        .map(|i| {
            json!({"action": if i % 2 == 0 { "Allow" } else { "Deny" }, "protocol": "TCP",
                   "source": {"selector": format!("app == 'a{i}' && tier in {{'x', 'y'}}"),
                              "nets": [format!("10.{}.0.0/16", i % 256), "192.168.0.0/24"]},
                   "destination": {"ports": [80, 443, "8000:8100"], "notNets": ["10.0.0.1/32"]}})
        })
        .collect();
    json!({
        "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "big"},
        "spec": {"order": 10, "selector": "has(role)", "ingress": rules}
    })
}

fn check(doc: &Value) -> Resource {
    let mut r = Resource::from_json_value(doc.clone()).unwrap();
    r.apply_defaults();
    r.validate().unwrap();
    r
}

fn bench(c: &mut Criterion) {
    let s = small();
    c.bench_function("networkpolicy_small_decode_default_validate", |b| {
        b.iter(|| check(&s))
    });
    let l = large();
    c.bench_function("gnp_200_rules_decode_default_validate", |b| {
        b.iter(|| check(&l))
    });
    let r = check(&l);
    c.bench_function("gnp_200_rules_encode", |b| b.iter(|| r.to_json_value()));
}

criterion_group!(benches, bench);
criterion_main!(benches);
