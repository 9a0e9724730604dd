//! Properties of the conversion over generated valid Kubernetes policies: they pass Kubernetes
//! validation, convert without dropped rules into valid Calico policies whose selectors select
//! exactly what the Kubernetes label selectors select, with one rule per protocol × peer and the
//! same set of ports.

use std::collections::{BTreeMap, BTreeSet};

use calico_api::CalicoResource;
use calico_k8s::{
    IntOrString, IpBlock, LabelSelector, LabelSelectorRequirement, NetworkPolicy,
    NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec, SelectorType, k8s_network_policy_to_calico, k8s_selector_to_calico,
};
use proptest::prelude::*;

const KEYS: [&str; 4] = ["app", "role", "x.io/team", "tier"];
const VALUES: [&str; 4] = ["a", "b", "c", ""];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(&KEYS[..]).prop_map(str::to_string)
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(&VALUES[..]).prop_map(str::to_string)
}

fn requirement() -> impl Strategy<Value = LabelSelectorRequirement> {
    (
        key(),
        prop::sample::select(&["In", "NotIn", "Exists", "DoesNotExist"][..]),
        prop::collection::vec(value(), 1..4),
    )
        .prop_map(|(key, op, values)| LabelSelectorRequirement {
            key,
            operator: op.to_string(),
            values: if op.ends_with("In") {
                values
            } else {
                Vec::new()
            },
        })
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    (
        prop::collection::btree_map(key(), value(), 0..3),
        prop::collection::vec(requirement(), 0..3),
    )
        .prop_map(|(match_labels, match_expressions)| LabelSelector {
            match_labels,
            match_expressions,
        })
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(key(), value(), 0..4)
}

fn peer() -> impl Strategy<Value = NetworkPolicyPeer> {
    prop_oneof![
        selector().prop_map(|s| NetworkPolicyPeer {
            pod_selector: Some(s),
            ..Default::default()
        }),
        selector().prop_map(|s| NetworkPolicyPeer {
            namespace_selector: Some(s),
            ..Default::default()
        }),
        (selector(), selector()).prop_map(|(p, n)| NetworkPolicyPeer {
            pod_selector: Some(p),
            namespace_selector: Some(n),
            ..Default::default()
        }),
        (0u8..=255, 8u8..=16).prop_map(|(a, len)| NetworkPolicyPeer {
            ip_block: Some(IpBlock {
                cidr: format!("10.{a}.0.0/{len}"),
                except: vec![format!("10.{a}.0.0/24")],
            }),
            ..Default::default()
        }),
    ]
}

fn port() -> impl Strategy<Value = NetworkPolicyPort> {
    let number = (1i32..40, prop::option::of(0i32..20))
        .prop_map(|(p, span)| (Some(IntOrString::Int(p)), span.map(|s| p + s)));
    let name = prop::sample::select(&["http", "dns", "metrics"][..])
        .prop_map(|n| (Some(IntOrString::Str(n.to_string())), None));
    (
        prop::option::of(prop::sample::select(&["TCP", "UDP", "SCTP"][..])),
        prop_oneof![number, name, Just((None, None))],
    )
        .prop_map(|(protocol, (port, end_port))| NetworkPolicyPort {
            protocol: protocol.map(str::to_string),
            port,
            end_port,
        })
}

const POLICY_TYPE_CHOICES: &[&[&str]] = &[&[], &["Ingress"], &["Egress"], &["Egress", "Ingress"]];

fn policy() -> impl Strategy<Value = NetworkPolicy> {
    let rule = || {
        (
            prop::collection::vec(port(), 0..4),
            prop::collection::vec(peer(), 0..3),
        )
    };
    (
        selector(),
        prop::collection::vec(rule(), 0..3),
        prop::collection::vec(rule(), 0..3),
        prop::sample::select(POLICY_TYPE_CHOICES),
    )
        .prop_map(|(pod_selector, ingress, egress, types)| {
            let mut np = NetworkPolicy {
                spec: NetworkPolicySpec {
                    pod_selector,
                    ingress: ingress
                        .into_iter()
                        .map(|(ports, from)| NetworkPolicyIngressRule { ports, from })
                        .collect(),
                    egress: egress
                        .into_iter()
                        .map(|(ports, to)| NetworkPolicyEgressRule { ports, to })
                        .collect(),
                    policy_types: types.iter().map(|t| t.to_string()).collect(),
                },
                ..Default::default()
            };
            np.metadata.name = "p".into();
            np.metadata.namespace = "ns1".into();
            np
        })
}

/// Kubernetes label-selector semantics, written independently of the conversion.
fn k8s_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    sel.match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
        && sel.match_expressions.iter().all(|r| {
            let got = labels.get(&r.key);
            match r.operator.as_str() {
                "In" => got.is_some_and(|v| r.values.contains(v)),
                "NotIn" => got.is_none_or(|v| !r.values.contains(v)),
                "Exists" => got.is_some(),
                "DoesNotExist" => got.is_none(),
                _ => false,
            }
        })
}

/// Every port number (and name) a list covers, probing the numbers that matter.
fn covered(ports: &[calico_api::numorstring::Port], probes: &BTreeSet<u16>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in ports {
        if p.is_named() {
            out.insert(p.port_name.clone());
        } else {
            for n in probes.range(p.min_port..=p.max_port) {
                out.insert(n.to_string());
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn valid_policies_convert_faithfully(np in policy(), samples in prop::collection::vec(labels(), 8)) {
        prop_assert!(np.validate().is_ok(), "{:?}", np.validate());
        let conv = k8s_network_policy_to_calico(&np).unwrap();
        prop_assert!(conv.dropped.is_empty());
        let pol = &conv.policy;
        let mut errs = calico_api::FieldErrors::new();
        pol.validate(&mut errs);
        prop_assert!(errs.is_empty(), "{}", errs);

        // The policy selector selects exactly the Kubernetes pods the podSelector selects.
        let sel = calico_selector::parse(&pol.spec.selector).unwrap();
        for l in &samples {
            let mut pod = l.clone();
            pod.insert("projectcalico.org/orchestrator".into(), "k8s".into());
            prop_assert_eq!(sel.evaluate(&pod), k8s_matches(&np.spec.pod_selector, l));
            prop_assert!(!sel.evaluate(l), "non-k8s endpoint selected");
        }

        // One rule per protocol x peer, with the same ports per protocol.
        let dirs = [
            (&pol.spec.ingress, np.spec.ingress.iter().map(|r| (&r.ports, &r.from)).collect::<Vec<_>>()),
            (&pol.spec.egress, np.spec.egress.iter().map(|r| (&r.ports, &r.to)).collect::<Vec<_>>()),
        ];
        for (calico_rules, k8s_rules) in dirs {
            let mut next = 0;
            for (ports, peers) in k8s_rules {
                let protocols: BTreeSet<&str> = ports
                    .iter()
                    .map(|p| p.protocol.as_deref().unwrap_or("TCP"))
                    .collect();
                let n = protocols.len().max(1) * peers.len().max(1);
                let rules = &calico_rules[next..next + n];
                next += n;
                // Generated ports lie in 1..=60: probing 0..=100 sees every gap and overlap.
                let probes: BTreeSet<u16> = (0..=100).collect();
                for rule in rules {
                    prop_assert_eq!(rule.action.as_ref().map(|a| a.as_str()), Some("Allow"));
                    let Some(proto) = &rule.protocol else {
                        prop_assert!(ports.is_empty());
                        continue;
                    };
                    let proto = proto.to_string();
                    let same: Vec<&NetworkPolicyPort> = ports
                        .iter()
                        .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == proto)
                        .collect();
                    if same.iter().any(|p| p.port.is_none()) {
                        prop_assert!(rule.destination.ports.is_empty());
                        continue;
                    }
                    let want: Vec<calico_api::numorstring::Port> = same
                        .iter()
                        .map(|p| calico_k8s::convert::k8s_port_to_calico(p).unwrap().unwrap())
                        .collect();
                    prop_assert_eq!(
                        covered(&rule.destination.ports, &probes),
                        covered(&want, &probes)
                    );
                }
                for rule in rules {
                    for s in [&rule.source.selector, &rule.source.namespace_selector,
                              &rule.destination.selector, &rule.destination.namespace_selector] {
                        prop_assert!(calico_selector::parse(s).is_ok(), "{}", s);
                    }
                }
            }
            prop_assert_eq!(next, calico_rules.len());
        }
    }

    #[test]
    fn namespace_selectors_match_like_kubernetes(sel in selector(), samples in prop::collection::vec(labels(), 8)) {
        let text = k8s_selector_to_calico(Some(&sel), SelectorType::Namespace);
        let parsed = calico_selector::parse(&text).unwrap();
        for l in &samples {
            prop_assert_eq!(parsed.evaluate(l), k8s_matches(&sel, l), "{}", text);
        }
    }

    #[test]
    fn defaults_are_idempotent_and_keep_validity(np in policy()) {
        let mut once = np.clone();
        once.apply_defaults();
        let mut twice = once.clone();
        twice.apply_defaults();
        prop_assert_eq!(&once, &twice);
        prop_assert!(once.validate().is_ok());
        prop_assert!(!once.spec.policy_types.is_empty());
    }
}
