#![allow(clippy::unwrap_used)] // tests may unwrap: a failure is the test failing.

//! Property tests over random selector ASTs and label sets:
//! - canonical text round-trips (same canonical string, same AST, same evaluation);
//! - canonicalisation is a fixed point;
//! - label restrictions are sound (every matching label set satisfies them);
//! - the label index returns exactly what brute-force evaluation returns.

use std::collections::{BTreeMap, BTreeSet};

use calico_selector::{CompareOp, Node, Selector, SelectorIndex, normalise, parse};
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

const LABELS: &[&str] = &["a", "b", "app", "role", "x.io/y-z_1"];
// Includes the empty string and both quote characters (never both in one value: the
// language has no escapes).
const VALUES: &[&str] = &["", "a", "b", "ab", "ba", "web", "'", "\"", "a'b", "x\"y"];

fn label() -> impl Strategy<Value = String> {
    prop::sample::select(LABELS).prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    prop::sample::select(VALUES).prop_map(str::to_owned)
}

fn op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Contains,
        CompareOp::StartsWith,
        CompareOp::EndsWith,
    ])
}

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        1 => Just(Node::All),
        1 => Just(Node::Global),
        3 => label().prop_map(|label| Node::Has { label }),
        6 => (label(), op(), value()).prop_map(|(label, op, value)| Node::Compare { label, op, value }),
        3 => (label(), btree_set(value(), 0..4)).prop_map(|(label, values)| Node::In { label, values }),
        2 => (label(), btree_set(value(), 0..4)).prop_map(|(label, values)| Node::NotIn { label, values }),
    ]
}

/// Random ASTs. With `double_not == false`, `Not` never directly wraps `Not`: the parser
/// collapses `!!x`, so that is the one shape whose canonical text does not parse back to the
/// same tree (Calico prints `!(!has(a))` as `!!has(a)`, which re-parses as `has(a)`).
fn node(double_not: bool) -> impl Strategy<Value = Node> {
    leaf().prop_recursive(5, 48, 4, move |inner| {
        prop_oneof![
            inner
                .clone()
                .prop_filter("no direct double negation", move |n| double_not
                    || !matches!(n, Node::Not(_)))
                .prop_map(|n| Node::Not(Box::new(n))),
            vec(inner.clone(), 2..4).prop_map(Node::And),
            vec(inner, 2..4).prop_map(Node::Or),
        ]
    })
}

fn label_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(label(), value(), 0..5)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonical_round_trip(root in node(false), label_sets in vec(label_map(), 8)) {
        let sel = Selector::from_node(root.clone()).unwrap();
        let text = sel.to_string();
        let reparsed = parse(&text).unwrap();
        prop_assert_eq!(reparsed.to_string(), text.clone());
        prop_assert_eq!(reparsed.root(), &root);
        prop_assert_eq!(reparsed.unique_id(), sel.unique_id());
        prop_assert_eq!(normalise(&text).unwrap(), text);
        for l in &label_sets {
            prop_assert_eq!(reparsed.evaluate(l), sel.evaluate(l), "labels {:?}", l);
        }
    }

    #[test]
    fn double_negation_still_round_trips_semantically(
        root in node(true), label_sets in vec(label_map(), 8)
    ) {
        let sel = Selector::from_node(root).unwrap();
        let once = parse(sel.as_str()).unwrap();
        let twice = parse(once.as_str()).unwrap();
        // After one re-parse every `!!` is collapsed, so the canonical form is stable.
        prop_assert_eq!(twice.to_string(), once.to_string());
        for l in &label_sets {
            prop_assert_eq!(once.evaluate(l), sel.evaluate(l), "labels {:?}", l);
        }
    }

    #[test]
    fn label_restrictions_are_sound(root in node(true), label_sets in vec(label_map(), 16)) {
        let sel = Selector::from_node(root).unwrap();
        let restrictions = sel.label_restrictions();
        for l in &label_sets {
            if !sel.evaluate(l) {
                continue;
            }
            for (label, r) in &restrictions {
                let v = l.get(label);
                prop_assert!(r.possible_to_satisfy(), "{} matched {:?} but {:?}", sel, l, r);
                if r.must_be_present { prop_assert!(v.is_some(), "{} {:?}", sel, l); }
                if r.must_be_absent { prop_assert!(v.is_none(), "{} {:?}", sel, l); }
                if let (Some(vals), Some(v)) = (&r.must_have_one_of_values, v) {
                    prop_assert!(vals.contains(v), "{} {:?} {:?}", sel, l, r);
                }
            }
        }
    }

    #[test]
    fn index_equals_brute_force(
        roots in vec(node(true), 1..40),
        removals in vec(any::<prop::sample::Index>(), 0..10),
        label_sets in vec(label_map(), 16),
    ) {
        let mut index = SelectorIndex::new();
        for (i, root) in roots.iter().enumerate() {
            index.update_selector(i, Selector::from_node(root.clone()).unwrap());
        }
        // Replace a few (update path) and remove a few (remove path).
        for (n, r) in removals.iter().enumerate() {
            let id = r.index(roots.len());
            if n % 2 == 0 {
                index.remove_selector(&id);
            } else {
                let other = &roots[(id + 1) % roots.len()];
                index.update_selector(id, Selector::from_node(other.clone()).unwrap());
            }
        }
        for l in &label_sets {
            let fast: BTreeSet<usize> = index.matching(l).copied().collect();
            let slow: BTreeSet<usize> = index
                .iter()
                .filter(|(_, s)| s.evaluate(l))
                .map(|(id, _)| *id)
                .collect();
            prop_assert_eq!(fast, slow, "labels {:?}", l);
        }
    }

    #[test]
    fn prefixing_prefixes_every_label(root in node(false), l in label_map()) {
        let sel = Selector::from_node(root).unwrap();
        let prefixed = sel.with_label_prefix("pcns.").unwrap();
        let shifted: BTreeMap<String, String> =
            l.iter().map(|(k, v)| (format!("pcns.{k}"), v.clone())).collect();
        prop_assert_eq!(prefixed.evaluate(&shifted), sel.evaluate(&l));
        prop_assert_eq!(parse(prefixed.as_str()).unwrap().to_string(), prefixed.to_string());
    }
}
