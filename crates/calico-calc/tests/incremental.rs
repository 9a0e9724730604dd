//! Property: whatever the order of updates, deletions, refused updates and flush points,
//! the incrementally maintained model equals a fresh graph fed only the final resources, and
//! replaying the flushed updates reproduces it with every reference resolved.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use calico_api::Resource;
use calico_calc::{CalcGraph, DataplaneModel, ResourceKey};
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// One slot of the universe: a function from a variant number to a resource (`None`:
/// delete). Variant numbers are taken modulo a slot-specific count.
type Slot = fn(usize) -> Option<Resource>;

const IPS: [&str; 4] = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "fd00::1"];

fn pod(node: &'static str, ns: &'static str, name: &'static str, v: usize) -> Option<Resource> {
    if v.is_multiple_of(7) {
        return None;
    }
    let app = ["x", "y"][v % 2];
    let ips: Vec<&str> = match v % 5 {
        0 => vec![],
        1 => vec![IPS[0]],
        2 => vec![IPS[1], IPS[3]],
        3 => vec![IPS[2]],
        _ => vec![IPS[0], IPS[1]],
    };
    let mut labels = vec![("app", app)];
    if v.is_multiple_of(3) {
        labels.push(("role", "r"));
    }
    let ports: Vec<(&str, &str, u16)> = match v % 4 {
        0 => vec![],
        1 => vec![("http", "TCP", 80)],
        2 => vec![("http", "UDP", 81), ("http", "TCP", 8080)],
        _ => vec![("dns", "UDP", 53)],
    };
    let kns = format!("kns.{ns}");
    let profiles: Vec<&str> = if v % 6 == 5 {
        vec![kns.as_str(), "extra"]
    } else {
        vec![kns.as_str()]
    };
    Some(wep_full(node, ns, name, &ips, &labels, &profiles, &ports))
}

fn rule_variant(v: usize) -> Value {
    match v % 6 {
        0 => json!({"action": "Allow"}),
        1 => json!({"action": "Allow", "source": {"selector": "app == 'y'"}}),
        2 => json!({"action": "Deny", "protocol": "TCP", "destination": {"ports": ["http", 443]}}),
        3 => json!({"action": "Allow", "source": {"notSelector": "role == 'r'"}}),
        4 => json!({"action": "Pass", "source": {"namespaceSelector": "team == 'blue'"}}),
        _ => json!({"action": "Allow", "protocol": "UDP",
                    "destination": {"selector": "ext == 'true' || app == 'x'", "ports": ["http"]}}),
    }
}

fn policy_selector(v: usize) -> &'static str {
    ["app == 'x'", "all()", "role == 'r'", "app == 'nothing'"][v % 4]
}

const SLOTS: &[Slot] = &[
    |v| pod("node1", "ns1", "a", v),
    |v| pod("node1", "ns2", "b", v),
    |v| pod("node2", "ns1", "c", v),
    |v| pod("node2", "ns2", "d", v),
    |v| {
        (v % 4 != 0).then(|| {
            hep(
                "h1",
                "node1",
                "eth0",
                &["192.168.0.1"],
                &[("host", ["true", "false"][v % 2])],
            )
        })
    },
    |v| (v % 3 != 0).then(|| hep("h2", "node2", "eth0", &[IPS[0]], &[("host", "true")])),
    |v| {
        (v % 4 != 0).then(|| {
            netset(
                "ns1",
                "n",
                &[["10.1.0.0/16", "10.0.0.1/32"][v % 2]],
                &[("ext", ["true", "false"][(v / 2) % 2])],
            )
        })
    },
    |v| {
        (v % 3 != 0).then(|| {
            gnetset(
                "g",
                &[["0.0.0.0/0", "192.0.2.0/24"][v % 2]],
                &[("ext", "true")],
            )
        })
    },
    |v| {
        (v % 4 != 0).then(|| {
            profile(
                "kns.ns1",
                &[
                    ("pcns.team", ["blue", "red"][v % 2]),
                    ("pcns.projectcalico.org/name", "ns1"),
                ],
                json!({"ingress": [rule_variant(v)], "egress": [{"action": "Allow"}]}),
            )
        })
    },
    |v| {
        (v % 4 != 0).then(|| {
            profile(
                "kns.ns2",
                &[("pcns.team", ["red", "blue"][v % 2])],
                json!({"ingress": [{"action": "Allow"}], "egress": [rule_variant(v + 1)]}),
            )
        })
    },
    |v| (v % 3 != 0).then(|| profile("extra", &[("role", "r"), ("app", "z")], json!({}))),
    |v| {
        (v % 4 != 0).then(|| {
            tier(
                "t1",
                [1.0, 2_000_000.0][v % 2],
                Some(["Pass", "Deny"][(v / 2) % 2]),
            )
        })
    },
    |v| {
        (v % 5 != 0).then(|| {
            let mut spec = json!({"selector": policy_selector(v),
                "ingress": [rule_variant(v), rule_variant(v / 2)],
                "egress": [rule_variant(v + 3)]});
            if v.is_multiple_of(3) {
                spec["order"] = json!(10);
            }
            if v % 4 == 1 {
                spec["types"] = json!(["Ingress"]);
                spec["egress"] = json!([]);
            }
            np("ns1", "p1", spec)
        })
    },
    |v| {
        (v % 5 != 0).then(|| {
            np(
                "ns2",
                "knp.default.k",
                json!({"selector": policy_selector(v + 1), "order": 1000,
                       "ingress": [{"action": "Allow", "source": {"namespaceSelector": "all()"}}]}),
            )
        })
    },
    |v| {
        (v % 5 != 0).then(|| {
            let mut spec = json!({"tier": "t1", "selector": "host == 'true' || app == 'x'",
                "ingress": [rule_variant(v)], "egress": [rule_variant(v + 2)]});
            match v % 4 {
                1 => {
                    spec["doNotTrack"] = json!(true);
                    spec["applyOnForward"] = json!(true);
                }
                2 => {
                    spec["preDNAT"] = json!(true);
                    spec["applyOnForward"] = json!(true);
                    spec["egress"] = json!([]);
                    spec["types"] = json!(["Ingress"]);
                }
                3 => spec["applyOnForward"] = json!(true),
                _ => spec["order"] = json!(v as f64 / 2.0),
            }
            // Moving between tiers changes the policy's ID.
            if v % 10 == 4 {
                spec["tier"] = json!("default");
            }
            gnp("t1.g1", spec)
        })
    },
];

/// A resource the graph must refuse (a selector that does not parse) for slot `p1`.
fn bad_policy() -> Resource {
    np(
        "ns1",
        "p1",
        json!({"selector": "app === 'x'", "ingress": [{"action": "Allow"}]}),
    )
}

fn key_of_slot(slot: usize) -> ResourceKey {
    // Every slot's variant 1 exists; its key is the slot's key.
    ResourceKey::of(&SLOTS[slot](1).unwrap())
}

fn fresh(resources: impl Iterator<Item = Resource>) -> CalcGraph {
    let mut g = CalcGraph::new("node1");
    for r in resources {
        put(&mut g, r);
    }
    g.flush();
    g
}

#[derive(Debug, Clone)]
enum Op {
    Set {
        slot: usize,
        variant: usize,
    },
    /// Several updates through `on_updates` (tier lists recomputed once for the batch).
    Batch(Vec<(usize, usize)>),
    Bad,
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..SLOTS.len(), 0usize..64).prop_map(|(slot, variant)| Op::Set { slot, variant }),
        2 => prop::collection::vec((0..SLOTS.len(), 0usize..64), 1..8).prop_map(Op::Batch),
        1 => Just(Op::Bad),
        2 => Just(Op::Flush),
    ]
}

proptest! {
    // 160 cases by default; PROPTEST_CASES overrides for longer runs.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(160),
        ..ProptestConfig::default()
    })]

    #[test]
    fn incremental_equals_from_scratch(ops in prop::collection::vec(op(), 1..60)) {
        let mut g = CalcGraph::new("node1");
        let mut replay = DataplaneModel::default();
        let mut current: BTreeMap<ResourceKey, Resource> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Set { slot, variant } => {
                    let key = key_of_slot(slot);
                    let value = SLOTS[slot](variant);
                    g.on_update(key.clone(), value.clone()).unwrap();
                    match value {
                        Some(r) => current.insert(key, r),
                        None => current.remove(&key),
                    };
                }
                Op::Batch(items) => {
                    let mut batch = Vec::new();
                    for (slot, variant) in items {
                        let key = key_of_slot(slot);
                        let value = SLOTS[slot](variant);
                        match &value {
                            Some(r) => current.insert(key.clone(), r.clone()),
                            None => current.remove(&key),
                        };
                        batch.push((key, value));
                    }
                    // One refused update in the batch does not stop the others.
                    let bad = bad_policy();
                    batch.insert(batch.len() / 2, (ResourceKey::of(&bad), Some(bad)));
                    let errors = g.on_updates(batch.clone());
                    prop_assert_eq!(errors.len(), 1);
                }
                Op::Bad => {
                    let before = g.model().clone();
                    let r = bad_policy();
                    prop_assert!(g.on_update(ResourceKey::of(&r), Some(r)).is_err());
                    prop_assert_eq!(g.model(), &before);
                }
                Op::Flush => {
                    flush_checked(&mut g, &mut replay);
                }
            }
        }
        flush_checked(&mut g, &mut replay);
        let forward = fresh(current.values().cloned());
        prop_assert_eq!(forward.model(), g.model());
        let backward = fresh(current.values().rev().cloned());
        prop_assert_eq!(backward.model(), g.model());
    }
}

#[test]
fn every_slot_variant_is_accepted() {
    // The universe itself must be valid, or the property above would test little.
    let mut g = CalcGraph::new("node1");
    for (slot, f) in SLOTS.iter().enumerate() {
        for v in 0..64 {
            let key = key_of_slot(slot);
            if let Some(r) = f(v) {
                assert_eq!(ResourceKey::of(&r), key);
            }
            g.on_update(key, f(v))
                .unwrap_or_else(|e| panic!("slot {slot} variant {v}: {e}"));
        }
    }
}
