//! The selector AST, its evaluation and its canonical text form
//! (Calico `libcalico-go/lib/selector/parser/ast.go`).
//!
//! Evaluation semantics (Calico §4.2): `==`, `in`, `contains`, `starts with`, `ends with` and
//! `has()` need the label to be present; `!=` and `not in` also match when the label is
//! absent; `all()` and `global()` always match (`global()` only means something as a namespace
//! selector marker, rewritten by the v3→v1 update processors).
//!
//! Canonical form (Calico `collectFragments`): `&&`/`||` nodes are always parenthesised, `!`
//! is written directly before its operand, values are quoted with `"` unless they contain `"`
//! (then `'`), sets are sorted and de-duplicated (a `BTreeSet` keeps them that way).

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};

use crate::Labels;

/// The string comparison operators that take a label and one string value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CompareOp {
    /// `==`: label present and equal.
    Eq,
    /// `!=`: label absent or different.
    Ne,
    /// `contains`: label present and contains the value as a substring.
    Contains,
    /// `starts with`: label present and starts with the value.
    StartsWith,
    /// `ends with`: label present and ends with the value.
    EndsWith,
}

impl CompareOp {
    /// The operator as written in the canonical form, with its surrounding spaces.
    fn canonical(self) -> &'static str {
        match self {
            CompareOp::Eq => " == ",
            CompareOp::Ne => " != ",
            CompareOp::Contains => " contains ",
            CompareOp::StartsWith => " starts with ",
            CompareOp::EndsWith => " ends with ",
        }
    }
}

/// A selector expression.
///
/// The parser never produces `And`/`Or` with fewer than two operands; values built by hand are
/// checked by [`crate::Selector::from_node`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    /// `all()`: matches everything (also the meaning of an empty selector).
    All,
    /// `global()`: matches everything; a marker for namespace selectors.
    Global,
    /// `has(label)`.
    Has { label: String },
    /// `label <op> "value"`.
    Compare {
        label: String,
        op: CompareOp,
        value: String,
    },
    /// `label in {...}`.
    In {
        label: String,
        values: BTreeSet<String>,
    },
    /// `label not in {...}`.
    NotIn {
        label: String,
        values: BTreeSet<String>,
    },
    /// `!operand`.
    Not(Box<Node>),
    /// `(a && b && ...)`.
    And(Vec<Node>),
    /// `(a || b || ...)`.
    Or(Vec<Node>),
}

impl Node {
    /// Evaluates the expression against a label set (short-circuiting `&&`/`||`).
    pub fn evaluate<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        match self {
            Node::All | Node::Global => true,
            Node::Has { label } => labels.get(label).is_some(),
            Node::Compare { label, op, value } => match (labels.get(label), op) {
                (Some(v), CompareOp::Eq) => v == value,
                (None, CompareOp::Eq) => false,
                (Some(v), CompareOp::Ne) => v != value,
                (None, CompareOp::Ne) => true,
                (Some(v), CompareOp::Contains) => v.contains(value.as_str()),
                (Some(v), CompareOp::StartsWith) => v.starts_with(value.as_str()),
                (Some(v), CompareOp::EndsWith) => v.ends_with(value.as_str()),
                (None, _) => false,
            },
            Node::In { label, values } => labels.get(label).is_some_and(|v| values.contains(v)),
            Node::NotIn { label, values } => labels.get(label).is_none_or(|v| !values.contains(v)),
            Node::Not(inner) => !inner.evaluate(labels),
            Node::And(ops) => ops.iter().all(|n| n.evaluate(labels)),
            Node::Or(ops) => ops.iter().any(|n| n.evaluate(labels)),
        }
    }

    /// Appends the canonical form (Calico `Selector.String()`) to `out`.
    pub(crate) fn write_canonical(&self, out: &mut String) {
        match self {
            Node::All => out.push_str("all()"),
            Node::Global => out.push_str("global()"),
            Node::Has { label } => {
                out.push_str("has(");
                out.push_str(label);
                out.push(')');
            }
            Node::Compare { label, op, value } => {
                out.push_str(label);
                out.push_str(op.canonical());
                push_quoted(out, value);
            }
            Node::In { label, values } => write_set(out, label, " in {", values),
            Node::NotIn { label, values } => write_set(out, label, " not in {", values),
            Node::Not(inner) => {
                out.push('!');
                inner.write_canonical(out);
            }
            Node::And(ops) => write_joined(out, ops, " && "),
            Node::Or(ops) => write_joined(out, ops, " || "),
        }
    }

    /// Calls `f` on every label name in the expression (Calico's visitor walk; used by the
    /// PrefixVisitor equivalent).
    pub(crate) fn visit_labels_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            Node::All | Node::Global => {}
            Node::Has { label }
            | Node::Compare { label, .. }
            | Node::In { label, .. }
            | Node::NotIn { label, .. } => f(label),
            Node::Not(inner) => inner.visit_labels_mut(f),
            Node::And(ops) | Node::Or(ops) => {
                for op in ops {
                    op.visit_labels_mut(f);
                }
            }
        }
    }

    /// Calls `f` on every label name in the expression.
    pub fn visit_labels(&self, f: &mut dyn FnMut(&str)) {
        match self {
            Node::All | Node::Global => {}
            Node::Has { label }
            | Node::Compare { label, .. }
            | Node::In { label, .. }
            | Node::NotIn { label, .. } => f(label),
            Node::Not(inner) => inner.visit_labels(f),
            Node::And(ops) | Node::Or(ops) => {
                for op in ops {
                    op.visit_labels(f);
                }
            }
        }
    }

    /// Nesting depth of `&&`/`||` groups, i.e. the parenthesis depth of the canonical form.
    pub(crate) fn group_depth(&self) -> usize {
        match self {
            Node::Not(inner) => inner.group_depth(),
            Node::And(ops) | Node::Or(ops) => {
                1 + ops.iter().map(Node::group_depth).max().unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// Calls `f` on every string value in the expression.
    pub(crate) fn visit_values(&self, f: &mut dyn FnMut(&str)) {
        match self {
            Node::Compare { value, .. } => f(value),
            Node::In { values, .. } | Node::NotIn { values, .. } => {
                values.iter().for_each(|v| f(v));
            }
            Node::Not(inner) => inner.visit_values(f),
            Node::And(ops) | Node::Or(ops) => {
                for op in ops {
                    op.visit_values(f);
                }
            }
            Node::All | Node::Global | Node::Has { .. } => {}
        }
    }

    /// Calls `f` on every `&&`/`||` node's operand count.
    pub(crate) fn visit_groups(&self, f: &mut dyn FnMut(usize)) {
        match self {
            Node::Not(inner) => inner.visit_groups(f),
            Node::And(ops) | Node::Or(ops) => {
                f(ops.len());
                for op in ops {
                    op.visit_groups(f);
                }
            }
            _ => {}
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_canonical(&mut s);
        f.write_str(&s)
    }
}

/// Calico's quote choice: `"` unless the value itself contains `"`.
fn push_quoted(out: &mut String, value: &str) {
    let q = if value.contains('"') { '\'' } else { '"' };
    out.push(q);
    out.push_str(value);
    out.push(q);
}

fn write_set(out: &mut String, label: &str, op: &str, values: &BTreeSet<String>) {
    out.push_str(label);
    out.push_str(op);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_quoted(out, v);
    }
    out.push('}');
}

fn write_joined(out: &mut String, ops: &[Node], sep: &str) {
    out.push('(');
    for (i, op) in ops.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        op.write_canonical(out);
    }
    out.push(')');
}

/// Debug helper used in error messages: the canonical form, truncated.
pub(crate) fn short(node: &Node) -> String {
    let mut s = String::new();
    node.write_canonical(&mut s);
    if s.len() > 60 {
        let mut cut = 60;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        let _ = write!(s, "...");
    }
    s
}
