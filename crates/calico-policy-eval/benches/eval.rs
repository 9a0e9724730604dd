//! How slow is the oracle? One packet, and a full reachability matrix, over a mid-size world:
//! 100 pods in 4 namespaces, 2 extra tiers, 24 policies with selectors, nets and named ports.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use calico_api::policy::{GlobalNetworkPolicy, NetworkPolicy};
use calico_api::tier::Tier;
use calico_policy_eval::{Endpoint, Packet, PolicySet, Resources, evaluate, reachability};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn world(pods: usize) -> PolicySet {
    let mut res = Resources::default();
    for i in 0..pods {
        let ns = format!("ns{}", i % 4);
        let app = format!("app{}", i % 5);
        let ep = Endpoint::pod(
            &format!("{ns}/pod{i}"),
            &ns,
            [("app", app.as_str())],
            [format!(
                "10.{}.{}.{}",
                i / 65536,
                (i / 256) % 256,
                i % 256 + 1
            )],
        )
        .unwrap()
        .with_namespace_labels([("team", format!("t{}", i % 2))])
        .with_named_port("http", 6, 8080);
        res.endpoints.push(ep);
    }
    for (name, order, action) in [("security", 10.0, "Pass"), ("platform", 20.0, "Deny")] {
        res.tiers.push(
            serde_json::from_value::<Tier>(json!({"metadata": {"name": name},
                "spec": {"order": order, "defaultAction": action}}))
            .unwrap(),
        );
    }
    for i in 0..4 {
        let p: GlobalNetworkPolicy = serde_json::from_value(json!({
            "metadata": {"name": format!("security.g{i}")},
            "spec": {"tier": "security", "order": i, "selector": format!("app == 'app{i}'"),
                     "types": ["Ingress", "Egress"],
                     "ingress": [{"action": "Deny", "source": {"nets": ["192.0.2.0/24"]}},
                                 {"action": "Pass"}],
                     "egress": [{"action": "Pass", "destination": {"namespaceSelector": "team == 't0'"}}]}
        }))
        .unwrap();
        res.global_policies.push(p);
    }
    for i in 0..20 {
        let ns = format!("ns{}", i % 4);
        let p: NetworkPolicy = serde_json::from_value(json!({
            "metadata": {"name": format!("np{i}"), "namespace": ns},
            "spec": {"order": i, "selector": format!("app == 'app{}'", i % 5),
                     "ingress": [{"action": "Allow", "protocol": "TCP",
                                  "source": {"selector": format!("app == 'app{}'", (i + 1) % 5)},
                                  "destination": {"ports": ["http", 80]}}],
                     "egress": [{"action": "Allow", "protocol": "TCP",
                                 "destination": {"notNets": ["10.99.0.0/16"]}}]}
        }))
        .unwrap();
        res.policies.push(p);
    }
    PolicySet::from_resources(res).unwrap()
}

fn bench(c: &mut Criterion) {
    let set = world(100);
    let pkt = Packet::tcp("10.0.0.2", "10.0.0.7", 8080).unwrap();
    c.bench_function("evaluate one packet (100 pods, 24 policies)", |b| {
        b.iter(|| evaluate(black_box(&set), black_box(&pkt)))
    });
    let small = world(30);
    c.bench_function("reachability 30 pods (870 packets)", |b| {
        b.iter(|| {
            reachability(black_box(&small), |s, d| {
                Packet::tcp(&s.to_string(), &d.to_string(), 8080).unwrap()
            })
        })
    });
    c.bench_function("build policy set (100 pods, 24 policies)", |b| {
        b.iter(|| world(100))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
