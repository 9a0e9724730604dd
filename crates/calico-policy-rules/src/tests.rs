//! The v3 → v1 selector rewriting, checked against the expectations of Calico's
//! `libcalico-go/lib/backend/syncersv1/updateprocessors/rules_test.go` (re-encoded as data)
//! and the policy processors; Felix's policy-sorter ordering.

#![allow(clippy::unwrap_used)]

use calico_api::rule::{EntityRule, ServiceAccountMatch};

use super::*;
use crate::selectors::{combine_selectors, global_policy_selector, namespaced_policy_selector};

fn er(ns_sel: &str, sel: &str, not_sel: &str, sa: Option<(&[&str], &str)>) -> EntityRule {
    EntityRule {
        namespace_selector: ns_sel.to_string(),
        selector: sel.to_string(),
        not_selector: not_sel.to_string(),
        service_accounts: sa.map(|(names, selector)| ServiceAccountMatch {
            names: names.iter().map(|s| s.to_string()).collect(),
            selector: selector.to_string(),
        }),
        ..EntityRule::default()
    }
}

/// (case, entity rule, policy namespace, expected v1 selector text) from rules_test.go.
#[test]
fn entity_selectors_match_calico_rules_test() {
    let cases: Vec<(&str, EntityRule, &str, &str)> = vec![
        (
            "namespaced selector + notSelector",
            er("", "mylabel = value1", "has(label1)", None),
            "namespace2",
            "(projectcalico.org/namespace == 'namespace2') && (mylabel = value1)",
        ),
        (
            "namespaced notSelector only",
            er("", "", "has(label2)", None),
            "namespace2",
            "projectcalico.org/namespace == 'namespace2'",
        ),
        (
            "namespaceSelector replaces the namespace",
            er("namespacelabel1 == 'value1'", "", "has(label2)", None),
            "namespace1",
            "pcns.namespacelabel1 == \"value1\"",
        ),
        (
            "namespaceSelector in a global policy",
            er("namespacelabel2 == 'value2'", "", "has(label1)", None),
            "",
            "pcns.namespacelabel2 == \"value2\"",
        ),
        (
            "profile rule, no namespace",
            er("", "has(foo)", "", None),
            "",
            "has(foo)",
        ),
        ("no selectors at all", er("", "", "", None), "namespace", ""),
        (
            "selector and namespaceSelector",
            er(
                "key == 'value'",
                "projectcalico.org/orchestrator == 'k8s'",
                "",
                None,
            ),
            "namespace",
            "(pcns.key == \"value\") && (projectcalico.org/orchestrator == 'k8s')",
        ),
        (
            "complex namespace selector",
            er("!has(key) || (has(key) && !key in {'value'})", "", "", None),
            "namespace",
            "(!has(pcns.key) || (has(pcns.key) && !pcns.key in {\"value\"}))",
        ),
        (
            "service accounts in a namespaced policy",
            er("", "", "", Some((&["sa1", "sa2"], "key == 'value1'"))),
            "namespace",
            "(projectcalico.org/namespace == 'namespace') && ((pcsa.key == \"value1\") && \
             (projectcalico.org/serviceaccount in {\"sa1\", \"sa2\"}))",
        ),
        (
            "service accounts with a namespace selector",
            er(
                "nskey == 'nsvalue'",
                "",
                "",
                Some((&["sa3"], "key == 'value2'")),
            ),
            "namespace",
            "(pcns.nskey == \"nsvalue\") && ((pcsa.key == \"value2\") && \
             (projectcalico.org/serviceaccount in {\"sa3\"}))",
        ),
        (
            "service accounts, global",
            er("", "", "", Some((&["sa1", "sa2"], "key == 'value1'"))),
            "",
            "(pcsa.key == \"value1\") && (projectcalico.org/serviceaccount in {\"sa1\", \"sa2\"})",
        ),
        (
            "empty service account match",
            er("", "", "", Some((&[], ""))),
            "",
            "",
        ),
        (
            "service accounts, selector and namespace selector",
            er(
                "nskey == 'nsvalue'",
                "has(label1)",
                "",
                Some((&["sa3"], "key == 'value2'")),
            ),
            "namespace",
            "(pcns.nskey == \"nsvalue\") && (((pcsa.key == \"value2\") && \
             (projectcalico.org/serviceaccount in {\"sa3\"})) && (has(label1)))",
        ),
        (
            "namespaceSelector with a label",
            er("namespace == 'red'", "has(label1)", "", None),
            "",
            "(pcns.namespace == \"red\") && (has(label1))",
        ),
        (
            "namespaceSelector all()",
            er("all()", "has(label2)", "", None),
            "",
            "(has(projectcalico.org/namespace)) && (has(label2))",
        ),
        (
            "namespaceSelector global()",
            er("global()", "has(label3)", "", None),
            "",
            "(!has(projectcalico.org/namespace)) && (has(label3))",
        ),
    ];
    for (name, rule, ns, want) in cases {
        let got = entity_selector_text("test", &rule, ns).unwrap();
        assert_eq!(got, want, "case {name:?}");
    }
}

#[test]
fn not_selector_is_folded_into_a_positive_selector_only() {
    // rule_scanner.go combineMatchesIfPossible.
    assert_eq!(
        combine_selectors("a == 'b'".into(), "has(c)"),
        ("(a == 'b') && (!(has(c)))".to_string(), String::new())
    );
    assert_eq!(
        combine_selectors(String::new(), "has(c)"),
        (String::new(), "has(c)".to_string())
    );
}

/// networkpolicyprocessor.go / globalnetworkpolicyprocessor.go selector shapes.
#[test]
fn policy_selectors_match_calico_processors() {
    let cases = [
        (
            namespaced_policy_selector("t", "ns1", "", "").unwrap(),
            "projectcalico.org/namespace == 'ns1'",
        ),
        (
            namespaced_policy_selector("t", "ns1", "a == 'b'", "").unwrap(),
            "(a == 'b') && projectcalico.org/namespace == 'ns1'",
        ),
        (
            namespaced_policy_selector("t", "ns1", "a == 'b'", "role == 'x'").unwrap(),
            "((a == 'b') && projectcalico.org/namespace == 'ns1') && pcsa.role == \"x\"",
        ),
        (global_policy_selector("t", "", "", "").unwrap(), ""),
        (
            global_policy_selector("t", "", "team == 'a'", "").unwrap(),
            "pcns.team == \"a\"",
        ),
        (
            global_policy_selector("t", "all()", "all()", "").unwrap(),
            // Both all() are replaced: Calico replaces text in the whole selector.
            "(has(projectcalico.org/namespace)) && has(projectcalico.org/namespace)",
        ),
        (
            global_policy_selector("t", "has(x)", "", "all()").unwrap(),
            "(has(x)) && has(projectcalico.org/serviceaccount)",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

fn tier(name: &str, order: Option<f64>) -> ParsedTier {
    ParsedTier {
        name: name.into(),
        order,
        default_action: TierDefaultAction::Deny,
    }
}

/// policy_sorter.go TierLess.
#[test]
fn tier_ordering() {
    let mut tiers = [
        (tier("z-invalid", None), false),
        (tier("no-order", None), true),
        (tier("b", Some(10.0)), true),
        (tier("a", Some(10.0)), true),
        (tier("first", Some(1.0)), true),
        (tier("a-invalid", None), false),
    ];
    tiers.sort_by(|(a, av), (b, bv)| tier_order_with_validity(a, *av, b, *bv));
    let names: Vec<&str> = tiers.iter().map(|(t, _)| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["first", "a", "b", "no-order", "a-invalid", "z-invalid"]
    );
    // Among valid tiers, tier_order alone gives the same order.
    let mut valid: Vec<ParsedTier> = tiers
        .iter()
        .filter(|(_, v)| *v)
        .map(|(t, _)| t.clone())
        .rev()
        .collect();
    valid.sort_by(tier_order);
    let names: Vec<&str> = valid.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["first", "a", "b", "no-order"]);
}

fn pol(kind: PolicyKind, ns: &str, name: &str, order: Option<f64>) -> ParsedPolicy {
    ParsedPolicy {
        id: PolicyId {
            tier: "default".into(),
            kind,
            namespace: ns.into(),
            name: name.into(),
        },
        order,
        selector: Selector::all(),
        ingress: true,
        egress: true,
        do_not_track: false,
        pre_dnat: false,
        apply_on_forward: false,
        inbound: Vec::new(),
        outbound: Vec::new(),
    }
}

/// policy_sorter.go PolKVLess: order, then "name/namespace/kind".
#[test]
fn policy_ordering() {
    use PolicyKind::*;
    let mut pols = [
        pol(NetworkPolicy, "ns", "no-order", None),
        pol(NetworkPolicy, "b", "same", Some(5.0)),
        pol(GlobalNetworkPolicy, "", "same", Some(5.0)),
        pol(NetworkPolicy, "a", "same", Some(5.0)),
        pol(KubernetesNetworkPolicy, "a", "same", Some(5.0)),
        pol(NetworkPolicy, "ns", "aaa", Some(100.0)),
        pol(NetworkPolicy, "ns", "early", Some(-1.5)),
    ];
    pols.sort_by(policy_order);
    let ids: Vec<String> = pols.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "default/np/ns/early",
            "default/gnp/same",
            "default/knp/a/same",
            "default/np/a/same",
            "default/np/b/same",
            "default/np/ns/aaa",
            "default/np/ns/no-order",
        ]
    );
}

/// `felix/calc/policy_sorter_test.go` `TestPolicySorter_Sorting`, re-encoded: each case is
/// sorted from its input order and from the reversed input order.
#[test]
fn tier_ordering_matches_policy_sorter_test() {
    type T = (&'static str, bool, Option<f64>);
    let cases: [(&str, Vec<T>, Vec<&str>); 7] = [
        ("empty", vec![], vec![]),
        (
            "valid sorts ahead of invalid",
            vec![("bar", false, Some(1.0)), ("foo", true, Some(10.0))],
            vec!["foo", "bar"],
        ),
        (
            "both invalid, both nil order rely on name",
            vec![("foo", false, None), ("bar", false, None)],
            vec!["bar", "foo"],
        ),
        (
            "both valid, both nil order rely on name",
            vec![("foo", true, None), ("bar", true, None)],
            vec!["bar", "foo"],
        ),
        (
            "both valid, rely on order",
            vec![("bar", true, Some(10.0)), ("foo", true, Some(1.0))],
            vec!["foo", "bar"],
        ),
        (
            "all valid, non-nil orders sort ahead of nil",
            vec![
                ("bar", true, None),
                ("baz", true, Some(10.0)),
                ("foo", true, Some(1.0)),
            ],
            vec!["foo", "baz", "bar"],
        ),
        (
            "all valid, equal order relies on name",
            vec![("baz", true, Some(10.0)), ("foo", true, Some(10.0))],
            vec!["baz", "foo"],
        ),
    ];
    for (name, input, want) in cases {
        for reversed in [false, true] {
            let mut tiers: Vec<(ParsedTier, bool)> = input
                .iter()
                .map(|&(n, valid, order)| (tier(n, order), valid))
                .collect();
            if reversed {
                tiers.reverse();
            }
            tiers.sort_by(|(a, av), (b, bv)| tier_order_with_validity(a, *av, b, *bv));
            let got: Vec<&str> = tiers.iter().map(|(t, _)| t.name.as_str()).collect();
            assert_eq!(got, want, "{name} (reversed: {reversed})");
        }
    }
}
