//! calico-selector: Calico's label selector language, byte-for-byte compatible with
//! `libcalico-go/lib/selector` (tokenizer, parser, AST evaluation, canonical `String()` form,
//! `UniqueID`, `LabelRestrictions`, the label-prefixing visitor), plus a label index that finds
//! the selectors matching an endpoint without evaluating all of them.
//!
//! It owns only the language and its evaluation. It must not depend on any other calico-rs
//! crate (API types, datastore, clients): those depend on it, never the reverse.
//!
//! Deliberate differences from the Go code, none of which changes the result for a selector
//! Calico accepts in practice:
//! - nesting is bounded by [`MAX_NESTING`] (Go has no bound) so hostile input cannot
//!   overflow the stack;
//! - [`normalise`] returns the parse error; [`normalise_or_keep`] is Calico's exact behaviour;
//! - [`Selector::with_label_prefix`] refuses prefixes that would produce unparseable labels.
//!
//! Kept on purpose although odd: `!(!x)` prints as `!!x`, which re-parses as `x`, so
//! canonicalising such a selector twice changes it once; unique IDs depend on this text.
//!
//! ```
//! use std::collections::BTreeMap;
//! let sel = calico_selector::parse("app == 'web' && role in {'db','api'}").unwrap();
//! assert_eq!(sel.to_string(), r#"(app == "web" && role in {"api", "db"})"#);
//! let labels = BTreeMap::from([("app".to_string(), "web".to_string()),
//!                              ("role".to_string(), "db".to_string())]);
//! assert!(sel.evaluate(&labels));
//! ```

pub mod ast;
pub mod compose;
mod error;
pub mod hash;
pub mod index;
mod parser;
mod restrictions;
pub mod tokenizer;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

pub use ast::{CompareOp, Node};
pub use error::SelectorError;
pub use index::{IndexStats, SelectorIndex};
pub use restrictions::{LabelRestriction, LabelRestrictions};
pub use tokenizer::{MAX_LABEL_LENGTH, valid_label};

/// Maximum nesting of parentheses / `&&`-`||` groups we accept. Calico's Go parser has no
/// limit; real selectors nest a handful of levels. The bound keeps parsing, evaluation,
/// formatting and dropping of hostile input within a normal thread stack.
pub const MAX_NESTING: usize = 256;

/// A set of labels a selector can be evaluated against.
pub trait Labels {
    /// The value of label `key`, if present (an empty value is present).
    fn get(&self, key: &str) -> Option<&str>;

    /// All labels, if the implementation can list them. The index uses this to walk the
    /// (usually few) endpoint labels instead of every label name the selectors mention.
    fn iter_labels(&self) -> Option<Box<dyn Iterator<Item = (&str, &str)> + '_>> {
        None
    }
}

impl Labels for BTreeMap<String, String> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(String::as_str)
    }
    fn iter_labels(&self) -> Option<Box<dyn Iterator<Item = (&str, &str)> + '_>> {
        Some(Box::new(self.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(String::as_str)
    }
    fn iter_labels(&self) -> Option<Box<dyn Iterator<Item = (&str, &str)> + '_>> {
        Some(Box::new(self.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
    fn iter_labels(&self) -> Option<Box<dyn Iterator<Item = (&str, &str)> + '_>> {
        (**self).iter_labels()
    }
}

/// A parsed selector. Equality and hashing follow the canonical form (Calico compares
/// selectors by their unique ID, which is a hash of the canonical form).
#[derive(Clone)]
pub struct Selector {
    root: Node,
    canonical: String,
}

impl Selector {
    fn from_root(root: Node) -> Self {
        let mut canonical = String::new();
        root.write_canonical(&mut canonical);
        Selector { root, canonical }
    }

    /// `all()`: matches every label set.
    pub fn all() -> Self {
        Self::from_root(Node::All)
    }

    /// `!all()`: matches nothing (Calico `selector.NoMatch`).
    pub fn no_match() -> Self {
        Self::from_root(Node::Not(Box::new(Node::All)))
    }

    /// Builds a selector from a hand-made AST, checking that its canonical form parses back
    /// to the same selector: labels valid, no value containing both quote characters (the
    /// language has no escapes), every `&&`/`||` with at least two operands, nesting within
    /// [`MAX_NESTING`].
    pub fn from_node(root: Node) -> Result<Self, SelectorError> {
        let mut problem: Option<String> = None;
        root.visit_labels(&mut |l| {
            if problem.is_none() && !valid_label(l) {
                problem = Some(format!(
                    "label {l:?} is not 1-{MAX_LABEL_LENGTH} characters of [A-Za-z0-9_./-]"
                ));
            }
        });
        root.visit_values(&mut |v| {
            if problem.is_none() && v.contains('"') && v.contains('\'') {
                problem = Some(format!(
                    "value {v:?} contains both quote characters and cannot be written"
                ));
            }
        });
        root.visit_groups(&mut |n| {
            if problem.is_none() && n < 2 {
                problem = Some(format!(
                    "an &&/|| group has {n} operand(s); at least 2 needed"
                ));
            }
        });
        if problem.is_none() && root.group_depth() > MAX_NESTING {
            problem = Some(format!(
                "&&/|| groups nested deeper than {MAX_NESTING} in {}",
                ast::short(&root)
            ));
        }
        match problem {
            Some(reason) => Err(SelectorError::InvalidAst { reason }),
            None => Ok(Self::from_root(root)),
        }
    }

    /// The AST.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Consumes the selector, returning its AST.
    pub fn into_root(self) -> Node {
        self.root
    }

    /// True if the labels satisfy the selector.
    pub fn evaluate<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.root.evaluate(labels)
    }

    /// The canonical form (Calico `Selector.String()`); same as `to_string()`.
    pub fn as_str(&self) -> &str {
        &self.canonical
    }

    /// `"s:" + base64url_nopad(SHA-224("s:" + canonical))` (Calico `Selector.UniqueID()`).
    /// Computed on each call (Calico caches it; no interior mutability here, so `Selector`
    /// stays a plain hash-map key). Callers that need it often should keep the result.
    pub fn unique_id(&self) -> String {
        hash::make_unique_id("s", &self.canonical)
    }

    /// Lower-bound restrictions on the labels of any matching label set (Calico
    /// `LabelRestrictions()`); empty when nothing is known.
    pub fn label_restrictions(&self) -> LabelRestrictions {
        restrictions::label_restrictions(&self.root)
    }

    /// A copy with `prefix` prepended to every label name (Calico's `PrefixVisitor`, used to
    /// turn namespace / service-account selectors into `pcns.` / `pcsa.` selectors).
    /// Fails if the prefix is not made of label characters or a label would exceed
    /// [`MAX_LABEL_LENGTH`], since the result would not parse back.
    pub fn with_label_prefix(&self, prefix: &str) -> Result<Selector, SelectorError> {
        self.map_labels(|l| format!("{prefix}{l}"))
    }

    /// A copy with every label name replaced by `f(label)`; the new labels are validated.
    pub fn map_labels(&self, mut f: impl FnMut(&str) -> String) -> Result<Selector, SelectorError> {
        let mut root = self.root.clone();
        let mut bad: Option<String> = None;
        root.visit_labels_mut(&mut |label| {
            let new = f(label);
            if bad.is_none() && !valid_label(&new) {
                bad = Some(new.clone());
            }
            *label = new;
        });
        match bad {
            Some(l) => Err(SelectorError::InvalidAst {
                reason: format!(
                    "rewritten label {l:?} is not 1-{MAX_LABEL_LENGTH} characters of \
                     [A-Za-z0-9_./-]"
                ),
            }),
            None => Ok(Self::from_root(root)),
        }
    }

    /// `(self) && (other)` as a selector: the same AST Calico gets when it parses the text
    /// `"(A) && (B)"` built by its update processors, so the canonical form and unique ID agree.
    pub fn and(&self, other: &Selector) -> Selector {
        Self::from_root(Node::And(vec![self.root.clone(), other.root.clone()]))
    }

    /// `(self) || (other)` as a selector.
    pub fn or(&self, other: &Selector) -> Selector {
        Self::from_root(Node::Or(vec![self.root.clone(), other.root.clone()]))
    }

    /// `!(self)` as a selector.
    pub fn negate(&self) -> Selector {
        Self::from_root(Node::Not(Box::new(self.root.clone())))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl fmt::Debug for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selector({:?})", self.canonical)
    }
}

impl PartialEq for Selector {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl Eq for Selector {}

impl Hash for Selector {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.canonical.hash(state);
    }
}

impl std::str::FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// Parses selector text (Calico `selector.Parse`). Empty or blank text is `all()`.
pub fn parse(s: &str) -> Result<Selector, SelectorError> {
    parser::parse_node(s).map(Selector::from_root)
}

/// Checks selector syntax (Calico `selector.Validate`): same accept/reject decisions as
/// [`parse`].
pub fn validate(s: &str) -> Result<(), SelectorError> {
    parser::parse_node(s).map(|_| ())
}

/// The canonical form of `s` (Calico `selector.Normalise`): surrounding Unicode whitespace is
/// trimmed first (Go `strings.TrimSpace`, so a trailing newline is tolerated here although the
/// parser itself rejects it), `""` becomes `all()`. Calico returns unparseable input unchanged;
/// we return the error, see [`normalise_or_keep`] for Calico's exact behaviour.
pub fn normalise(s: &str) -> Result<String, SelectorError> {
    parse(s.trim()).map(|sel| sel.canonical)
}

/// Calico's `Normalise` exactly: the canonical form, or the trimmed input if it does not parse.
pub fn normalise_or_keep(s: &str) -> String {
    let trimmed = s.trim();
    parse(trimmed).map_or_else(|_| trimmed.to_owned(), |sel| sel.canonical)
}
