//! Calico's `api/pkg/defaults/defaults_test.go` tables (policy `types` from the rules, tier label
//! from the tier) run for every policy kind Calico defaults: NetworkPolicy, GlobalNetworkPolicy,
//! StagedNetworkPolicy and StagedGlobalNetworkPolicy.

#![allow(clippy::unwrap_used)]

use calico_api::Resource;
use serde_json::{Value, json};

const KINDS: [&str; 4] = [
    "NetworkPolicy",
    "GlobalNetworkPolicy",
    "StagedNetworkPolicy",
    "StagedGlobalNetworkPolicy",
];

fn defaulted(kind: &str, metadata: Value, spec: Value) -> Value {
    let doc = json!({"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": metadata, "spec": spec});
    let mut r = Resource::from_json_value(doc).unwrap();
    r.apply_defaults();
    r.validate().unwrap();
    r.to_json_value()
}

#[test]
fn types_from_rules() {
    // (description, ingress rule count, egress rule count, expected types)
    let cases = [
        ("no rules - defaults to Ingress", 0, 0, json!(["Ingress"])),
        (
            "ingress only - defaults to Ingress",
            1,
            0,
            json!(["Ingress"]),
        ),
        ("egress only - defaults to Egress", 0, 1, json!(["Egress"])),
        (
            "both ingress and egress - defaults to both",
            1,
            1,
            json!(["Ingress", "Egress"]),
        ),
    ];
    for kind in KINDS {
        for (desc, ni, ne, want) in &cases {
            let rules = |n: usize| vec![json!({"action": "Allow"}); n];
            let out = defaulted(
                kind,
                json!({"name": "test"}),
                json!({"ingress": rules(*ni), "egress": rules(*ne)}),
            );
            assert_eq!(&out["spec"]["types"], want, "{kind}: {desc}");
        }
        let out = defaulted(kind, json!({"name": "test"}), json!({"types": ["Egress"]}));
        assert_eq!(
            out["spec"]["types"],
            json!(["Egress"]),
            "{kind}: already set"
        );
    }
}

#[test]
fn tier_label() {
    // (description, tier, existing label, expected label)
    let cases = [
        (
            "empty tier defaults label to 'default'",
            "",
            None,
            "default",
        ),
        ("explicit tier sets label", "net-sec", None, "net-sec"),
        (
            "label already correct",
            "net-sec",
            Some("net-sec"),
            "net-sec",
        ),
        (
            "label already 'default' with empty tier",
            "",
            Some("default"),
            "default",
        ),
        (
            "wrong label is corrected",
            "net-sec",
            Some("default"),
            "net-sec",
        ),
    ];
    for kind in KINDS {
        for (desc, tier, existing, want) in cases {
            let mut meta = json!({"name": "test"});
            if let Some(l) = existing {
                meta["labels"] = json!({"projectcalico.org/tier": l});
            }
            let mut spec = json!({"types": ["Ingress"]});
            if !tier.is_empty() {
                spec["tier"] = json!(tier);
            }
            let out = defaulted(kind, meta, spec);
            assert_eq!(
                out["metadata"]["labels"]["projectcalico.org/tier"], want,
                "{kind}: {desc}"
            );
            // The CRD default fills the tier itself too (etcd mode).
            assert_eq!(out["spec"]["tier"], want, "{kind}: {desc}");
        }
    }
}
