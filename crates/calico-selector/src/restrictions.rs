//! Label restrictions: lower bounds on the labels an endpoint needs for a selector to match
//! (Calico `LabelRestrictions()` in `ast.go`, used by Felix's label index so it does not have
//! to evaluate every selector against every endpoint).
//!
//! The derivation is deliberately the same as Calico's, including its conservative corners:
//! - `!=`, `not in`, `all()`, `global()` and any negation other than `!has(l)` give nothing.
//! - `l in {}` gives "must be present" but no value list (Calico copies the empty set as nil).
//! - `&&` merges per label: present/absent are OR-ed, value lists are intersected (an empty
//!   intersection means the selector can never match).
//! - `||` keeps only labels restricted by every operand: present/absent are AND-ed, value lists
//!   are united, and a value list survives only if every operand had one.
//!
//! Soundness (every restriction holds for every matching label set) is what the index relies
//! on; the property tests check it against brute-force evaluation.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{CompareOp, Node};

/// What a selector requires of one label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LabelRestriction {
    /// The label must be present (e.g. `has(l)`, `l == "v"`).
    pub must_be_present: bool,
    /// The label must be absent (`!has(l)`).
    pub must_be_absent: bool,
    /// If `Some`, the label's value must be one of these. `Some(empty)` means the selector
    /// cannot match anything (e.g. `a == "x" && a == "y"`); `None` means no value restriction.
    pub must_have_one_of_values: Option<BTreeSet<String>>,
}

impl LabelRestriction {
    /// False if no label set can satisfy this restriction (Calico `PossibleToSatisfy`).
    pub fn possible_to_satisfy(&self) -> bool {
        !(self.must_be_present && self.must_be_absent)
            && self
                .must_have_one_of_values
                .as_ref()
                .is_none_or(|v| !v.is_empty())
    }
}

/// Restrictions per label name; an empty map means "no restriction known" (Calico's nil).
pub type LabelRestrictions = BTreeMap<String, LabelRestriction>;

pub(crate) fn label_restrictions(node: &Node) -> LabelRestrictions {
    match node {
        Node::All | Node::Global => LabelRestrictions::new(),
        Node::Has { label } => single(label, present(None)),
        Node::Compare { label, op, value } => match op {
            CompareOp::Eq => single(label, present(Some(BTreeSet::from([value.clone()])))),
            CompareOp::Ne => LabelRestrictions::new(),
            CompareOp::Contains | CompareOp::StartsWith | CompareOp::EndsWith => {
                single(label, present(None))
            }
        },
        Node::In { label, values } => {
            let values = (!values.is_empty()).then(|| values.clone());
            single(label, present(values))
        }
        Node::NotIn { .. } => LabelRestrictions::new(),
        Node::Not(inner) => match inner.as_ref() {
            // !has() explicitly forbids the label. Nothing else can be inverted: a == 'b'
            // requires a, but !(a == 'b') does not require a's absence.
            Node::Has { label } => single(
                label,
                LabelRestriction {
                    must_be_absent: true,
                    ..LabelRestriction::default()
                },
            ),
            _ => LabelRestrictions::new(),
        },
        Node::And(ops) => {
            let mut acc = LabelRestrictions::new();
            for op in ops {
                for (label, r) in label_restrictions(op) {
                    let base = acc.entry(label).or_default();
                    base.must_be_present |= r.must_be_present;
                    base.must_be_absent |= r.must_be_absent;
                    base.must_have_one_of_values = match (
                        base.must_have_one_of_values.take(),
                        r.must_have_one_of_values,
                    ) {
                        (None, other) => other,
                        (some, None) => some,
                        (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
                    };
                }
            }
            acc
        }
        Node::Or(ops) => {
            let mut iter = ops.iter();
            let mut acc = iter.next().map(label_restrictions).unwrap_or_default();
            for op in iter {
                if acc.is_empty() {
                    break;
                }
                let other = label_restrictions(op);
                acc.retain(|label, r| {
                    let empty = LabelRestriction::default();
                    let o = other.get(label).unwrap_or(&empty);
                    r.must_be_present = r.must_be_present && o.must_be_present;
                    r.must_have_one_of_values = if !r.must_be_present {
                        None
                    } else {
                        match (r.must_have_one_of_values.take(), &o.must_have_one_of_values) {
                            // Both sides limit the value: either list is good enough.
                            (Some(a), Some(b)) => Some(a.union(b).cloned().collect()),
                            // At least one side is has(label): no value limit.
                            _ => None,
                        }
                    };
                    r.must_be_absent = r.must_be_absent && o.must_be_absent;
                    r.must_be_present || r.must_be_absent
                });
            }
            acc
        }
    }
}

fn present(values: Option<BTreeSet<String>>) -> LabelRestriction {
    LabelRestriction {
        must_be_present: true,
        must_be_absent: false,
        must_have_one_of_values: values,
    }
}

fn single(label: &str, r: LabelRestriction) -> LabelRestrictions {
    LabelRestrictions::from([(label.to_owned(), r)])
}
