//! Properties over random small worlds: the decision is deterministic and independent of the
//! order resources are given in; a new first tier with an allow-all (deny-all) policy decides
//! every packet that has an endpoint side; Log rules and an all-Pass tier change nothing.

#![allow(clippy::unwrap_used)]

mod common;

use calico_policy_eval::{DecidedBy, Endpoint, Packet, PolicySet, Resources, Verdict, evaluate};
use common::{gnp, np, tier};
use proptest::prelude::*;
use serde_json::{Value, json};

const LABEL_VALUES: [&str; 3] = ["a", "b", "c"];
const NAMESPACES: [&str; 2] = ["ns1", "ns2"];

fn selector() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("all()".to_string()),
        (0..3usize).prop_map(|i| format!("app == '{}'", LABEL_VALUES[i])),
        (0..3usize).prop_map(|i| format!("app != '{}'", LABEL_VALUES[i])),
        Just("has(tier)".to_string()),
        Just("!has(tier)".to_string()),
        (0..3usize).prop_map(|i| format!("pcns.team == '{}'", LABEL_VALUES[i])),
    ]
}

fn entity() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(selector()),
        proptest::option::of(selector()),
        proptest::option::of(prop_oneof![
            Just("10.0.0.0/29"),
            Just("10.0.0.8/29"),
            Just("192.0.2.0/24")
        ]),
        proptest::option::of(prop_oneof![Just("10.0.0.4/30"), Just("10.0.0.0/28")]),
        proptest::option::of((0..3usize).prop_map(|i| format!("team == '{}'", LABEL_VALUES[i]))),
    )
        .prop_map(|(sel, not_sel, net, not_net, ns_sel)| {
            let mut m = serde_json::Map::new();
            if let Some(s) = sel {
                m.insert("selector".into(), json!(s));
            }
            if let Some(s) = not_sel {
                m.insert("notSelector".into(), json!(s));
            }
            if let Some(n) = net {
                m.insert("nets".into(), json!([n]));
            }
            if let Some(n) = not_net {
                m.insert("notNets".into(), json!([n]));
            }
            if let Some(s) = ns_sel {
                m.insert("namespaceSelector".into(), json!(s));
            }
            Value::Object(m)
        })
}

fn rule() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("Allow"), Just("Deny"), Just("Pass"), Just("Log")],
        prop_oneof![Just(None), Just(Some("TCP")), Just(Some("UDP"))],
        proptest::option::of(prop_oneof![
            Just(json!([80])),
            Just(json!(["80:90", 443])),
            Just(json!(["web"]))
        ]),
        entity(),
        entity(),
    )
        .prop_map(|(action, proto, ports, src, mut dst)| {
            let mut r = json!({"action": action, "source": src});
            if let Some(p) = proto {
                r["protocol"] = json!(p);
                if let Some(ports) = ports {
                    dst["ports"] = ports;
                }
            }
            r["destination"] = dst;
            r
        })
}

#[derive(Debug, Clone)]
struct PolicySpec {
    global: bool,
    ns: usize,
    tier: usize,
    order: Option<u8>,
    selector: String,
    types: usize,
    ingress: Vec<Value>,
    egress: Vec<Value>,
}

fn policy() -> impl Strategy<Value = PolicySpec> {
    (
        any::<bool>(),
        0..2usize,
        0..3usize,
        proptest::option::of(0..5u8),
        selector(),
        0..4usize,
        proptest::collection::vec(rule(), 0..3),
        proptest::collection::vec(rule(), 0..3),
    )
        .prop_map(
            |(global, ns, tier, order, selector, types, ingress, egress)| PolicySpec {
                global,
                ns,
                tier,
                order,
                selector,
                types,
                ingress,
                egress,
            },
        )
}

#[derive(Debug, Clone)]
struct World {
    /// (namespace index, app label index, has tier label, named port "web" on 80).
    pods: Vec<(usize, usize, bool, bool)>,
    team_labels: [usize; 2],
    tiers: Vec<(u8, bool)>,
    policies: Vec<PolicySpec>,
    with_host: bool,
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec((0..2usize, 0..3usize, any::<bool>(), any::<bool>()), 1..6),
        (0..3usize, 0..3usize),
        proptest::collection::vec((1..20u8, any::<bool>()), 0..3),
        proptest::collection::vec(policy(), 0..6),
        any::<bool>(),
    )
        .prop_map(|(pods, (t1, t2), tiers, policies, with_host)| World {
            pods,
            team_labels: [t1, t2],
            tiers,
            policies,
            with_host,
        })
}

const TIER_NAMES: [&str; 3] = ["t0", "t1", "t2"];

fn resources(w: &World) -> Resources {
    let mut res = Resources::default();
    for (i, &(ns, app, has_tier, web)) in w.pods.iter().enumerate() {
        let mut labels = vec![("app", LABEL_VALUES[app])];
        if has_tier {
            labels.push(("tier", "x"));
        }
        let mut ep = Endpoint::pod(
            &format!("{}/pod{i}", NAMESPACES[ns]),
            NAMESPACES[ns],
            labels,
            [format!("10.0.0.{}", i + 1)],
        )
        .unwrap()
        .with_namespace_labels([("team", LABEL_VALUES[w.team_labels[ns]])]);
        if web {
            ep = ep.with_named_port("web", 6, 80);
        }
        res.endpoints.push(ep);
    }
    if w.with_host {
        res.endpoints
            .push(Endpoint::host("host1", [("app", "a")], ["10.0.0.100"]).unwrap());
    }
    for (i, &(order, pass)) in w.tiers.iter().enumerate() {
        res.tiers.push(tier(
            TIER_NAMES[i],
            f64::from(order),
            if pass { "Pass" } else { "Deny" },
        ));
    }
    for (i, p) in w.policies.iter().enumerate() {
        // Policies in tiers the world did not create exercise the invalid-tier path.
        let tier = if p.tier == 0 {
            "default"
        } else {
            TIER_NAMES[p.tier]
        };
        let name = if tier == "default" {
            format!("p{i}")
        } else {
            format!("{tier}.p{i}")
        };
        let mut spec = json!({
            "tier": tier,
            "selector": p.selector,
            "ingress": p.ingress,
            "egress": p.egress,
        });
        if let Some(o) = p.order {
            spec["order"] = json!(o);
        }
        match p.types {
            1 => spec["types"] = json!(["Ingress"]),
            2 => spec["types"] = json!(["Egress"]),
            3 => spec["types"] = json!(["Ingress", "Egress"]),
            _ => {}
        }
        if p.global {
            res.global_policies.push(gnp(&name, spec));
        } else {
            res.policies.push(np(NAMESPACES[p.ns], &name, spec));
        }
    }
    res
}

fn packet() -> impl Strategy<Value = Packet> {
    let addr = prop_oneof![
        (1..7u8).prop_map(|i| format!("10.0.0.{i}")),
        Just("10.0.0.100".to_string()),
        Just("192.0.2.1".to_string()),
    ];
    (
        addr.clone(),
        addr,
        0..3usize,
        prop_oneof![Just(80u16), Just(85), Just(443), Just(22), Just(8080)],
    )
        .prop_map(|(s, d, proto, port)| match proto {
            0 => Packet::tcp(&s, &d, port).unwrap(),
            1 => Packet::udp(&s, &d, port).unwrap(),
            _ => Packet::icmp(&s, &d, 8, 0).unwrap(),
        })
}

fn first_tier_with(res: &mut Resources, action: &str) {
    res.tiers.push(tier("zz-first", 0.0, "Deny"));
    res.global_policies.push(gnp(
        "zz-first.everything",
        json!({"tier": "zz-first", "selector": "all()", "types": ["Ingress", "Egress"],
               "ingress": [{"action": action}], "egress": [{"action": action}]}),
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn deterministic_and_independent_of_input_order(w in world(), pkts in proptest::collection::vec(packet(), 1..8)) {
        let res = resources(&w);
        let set = PolicySet::from_resources(res.clone()).unwrap();
        let mut reversed = res;
        reversed.endpoints.reverse();
        reversed.tiers.reverse();
        reversed.policies.reverse();
        reversed.global_policies.reverse();
        let set_rev = PolicySet::from_resources(reversed).unwrap();
        prop_assert_eq!(set.ordering(), set_rev.ordering());
        for p in &pkts {
            let d = evaluate(&set, p);
            prop_assert_eq!(&d, &evaluate(&set, p));
            prop_assert_eq!(&d, &evaluate(&set_rev, p));
            // Overall is the conjunction of the sides.
            let sides_allow = [&d.egress_of_src_endpoint, &d.ingress_of_dst_endpoint]
                .into_iter()
                .flatten()
                .all(|r| r.verdict == Some(Verdict::Allow));
            prop_assert_eq!(d.overall == Verdict::Allow, sides_allow);
        }
    }

    #[test]
    fn an_allow_all_first_tier_allows_everything(w in world(), pkts in proptest::collection::vec(packet(), 1..8)) {
        let mut res = resources(&w);
        first_tier_with(&mut res, "Allow");
        let set = PolicySet::from_resources(res).unwrap();
        for p in &pkts {
            let d = evaluate(&set, p);
            prop_assert_eq!(d.overall, Verdict::Allow, "{} -> {}", p, d);
            for side in [&d.egress_of_src_endpoint, &d.ingress_of_dst_endpoint].into_iter().flatten() {
                // Host failsafes come before any tier; everything else is the new tier.
                let ok = matches!(&side.decided_by, DecidedBy::Rule { tier, .. } if tier == "zz-first")
                    || matches!(side.decided_by, DecidedBy::Failsafe { .. });
                prop_assert!(ok, "{}", side);
            }
        }
    }

    #[test]
    fn a_deny_all_first_tier_denies_everything_but_failsafes(w in world(), pkts in proptest::collection::vec(packet(), 1..8)) {
        let mut res = resources(&w);
        first_tier_with(&mut res, "Deny");
        let set = PolicySet::from_resources(res).unwrap();
        for p in &pkts {
            let d = evaluate(&set, p);
            let sides: Vec<_> = [&d.egress_of_src_endpoint, &d.ingress_of_dst_endpoint].into_iter().flatten().collect();
            let all_failsafe = sides.iter().all(|s| matches!(s.decided_by, DecidedBy::Failsafe { .. }));
            let expect = if all_failsafe { Verdict::Allow } else { Verdict::Deny };
            prop_assert_eq!(d.overall, expect, "{} -> {}", p, d);
        }
    }

    #[test]
    fn log_rules_never_change_a_verdict(w in world(), pkts in proptest::collection::vec(packet(), 1..8), at in 0..4usize) {
        let plain = PolicySet::from_resources(resources(&w)).unwrap();
        let mut logged = w.clone();
        for p in &mut logged.policies {
            for rules in [&mut p.ingress, &mut p.egress] {
                // Only into non-empty lists: a rule in an empty list would change the
                // defaulted `types` of the policy, which is not what this property is about.
                if rules.is_empty() {
                    continue;
                }
                let i = at.min(rules.len());
                rules.insert(i, json!({"action": "Log"}));
            }
        }
        let logged = PolicySet::from_resources(resources(&logged)).unwrap();
        for p in &pkts {
            let (a, b) = (evaluate(&plain, p), evaluate(&logged, p));
            prop_assert_eq!(a.overall, b.overall, "{} -> {} vs {}", p, a, b);
        }
    }

    #[test]
    fn a_pass_everything_tier_is_transparent(w in world(), pkts in proptest::collection::vec(packet(), 1..8), order in 0..30u8) {
        let plain = PolicySet::from_resources(resources(&w)).unwrap();
        let mut res = resources(&w);
        res.tiers.push(tier("zz-pass", f64::from(order), "Pass"));
        res.global_policies.push(gnp(
            "zz-pass.all",
            json!({"tier": "zz-pass", "selector": "all()", "types": ["Ingress", "Egress"],
                   "ingress": [{"action": "Pass"}], "egress": [{"action": "Pass"}]}),
        ));
        res.global_policies.push(gnp(
            "zz-pass.empty",
            json!({"tier": "zz-pass", "selector": "has(app)", "types": ["Ingress", "Egress"]}),
        ));
        let with = PolicySet::from_resources(res).unwrap();
        for p in &pkts {
            let (a, b) = (evaluate(&plain, p), evaluate(&with, p));
            prop_assert_eq!(a.overall, b.overall, "{} -> {} vs {}", p, a, b);
        }
    }
}
