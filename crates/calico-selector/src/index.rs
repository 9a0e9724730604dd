//! A label index over many selectors: which selectors match this endpoint's labels, without
//! evaluating every selector (the job of Felix's `labelindex`, which uses the same
//! `LabelRestrictions` lower bounds).
//!
//! Each selector is filed under one "anchor" derived from its label restrictions:
//! - a required label with a value list (`app == "x"`, `role in {...}`): filed under each
//!   `(label, value)`;
//! - or a required label without values (`has(k)`, `k contains "x"`): filed under `label`
//!   (when a selector has several such restrictions, the least crowded bucket wins);
//! - restrictions that cannot be satisfied (`a == "x" && a == "y"`): never a candidate;
//! - otherwise (`all()`, `!has(k)`, `k != "v"`, `a == "x" || b == "y"`): the always-evaluate list.
//!
//! A lookup collects candidates only from the anchors the endpoint's labels hit, plus the
//! always-evaluate list, then confirms each candidate with a full evaluation. Because the
//! restrictions are necessary conditions, this returns exactly what brute force would.
//! An endpoint has one value per label, so each selector is a candidate at most once.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::{Labels, Selector};

/// Where a selector is filed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Anchor {
    /// Under `(label, v)` for every `v` in `values`.
    Values { label: String, values: Vec<String> },
    /// Under `label` (present with any value).
    Key { label: String },
    /// Evaluated for every lookup.
    Always,
    /// Cannot match any label set.
    Never,
}

#[derive(Debug)]
struct Bucket<Id> {
    /// Selectors that need the label with any value.
    any_value: HashSet<Id>,
    /// Selectors that need the label with one of some values, by value.
    by_value: HashMap<String, HashSet<Id>>,
}

impl<Id> Default for Bucket<Id> {
    fn default() -> Self {
        Bucket {
            any_value: HashSet::new(),
            by_value: HashMap::new(),
        }
    }
}

impl<Id> Bucket<Id> {
    fn is_empty(&self) -> bool {
        self.any_value.is_empty() && self.by_value.is_empty()
    }
}

#[derive(Debug)]
struct Entry {
    selector: Selector,
    anchor: Anchor,
}

/// How many selectors sit in each part of the index (for tests, metrics and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Filed under `(label, value)` pairs.
    pub by_value: usize,
    /// Filed under a label key.
    pub by_key: usize,
    /// Evaluated on every lookup.
    pub always: usize,
    /// Unsatisfiable, never evaluated.
    pub never: usize,
}

/// Many selectors, keyed by `Id`, looked up by endpoint labels.
#[derive(Debug)]
pub struct SelectorIndex<Id> {
    entries: HashMap<Id, Entry>,
    by_label: HashMap<String, Bucket<Id>>,
    always: HashSet<Id>,
    never: HashSet<Id>,
}

impl<Id> Default for SelectorIndex<Id> {
    fn default() -> Self {
        SelectorIndex {
            entries: HashMap::new(),
            by_label: HashMap::new(),
            always: HashSet::new(),
            never: HashSet::new(),
        }
    }
}

impl<Id: Clone + Eq + Hash> SelectorIndex<Id> {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of selectors held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no selectors are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The selector stored under `id`.
    pub fn get(&self, id: &Id) -> Option<&Selector> {
        self.entries.get(id).map(|e| &e.selector)
    }

    /// All `(id, selector)` pairs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Id, &Selector)> {
        self.entries.iter().map(|(id, e)| (id, &e.selector))
    }

    /// Adds or replaces the selector under `id`.
    pub fn update_selector(&mut self, id: Id, selector: Selector) {
        if let Some(old) = self.entries.get(&id) {
            if old.selector == selector {
                return;
            }
            self.remove_selector(&id);
        }
        let anchor = self.choose_anchor(&selector);
        match &anchor {
            Anchor::Values { label, values } => {
                let bucket = self.by_label.entry(label.clone()).or_default();
                for v in values {
                    bucket
                        .by_value
                        .entry(v.clone())
                        .or_default()
                        .insert(id.clone());
                }
            }
            Anchor::Key { label } => {
                self.by_label
                    .entry(label.clone())
                    .or_default()
                    .any_value
                    .insert(id.clone());
            }
            Anchor::Always => {
                self.always.insert(id.clone());
            }
            Anchor::Never => {
                self.never.insert(id.clone());
            }
        }
        self.entries.insert(id, Entry { selector, anchor });
    }

    /// Picks where to file a selector: among its usable restrictions, the anchor whose bucket
    /// currently holds the fewest selectors (so `has(tier) && env == "prod"` does not pile up
    /// under the low-cardinality `env=prod` once that bucket is crowded); ties prefer a value
    /// anchor, then fewer values, then the label name, which keeps the choice deterministic
    /// for a given insertion order.
    fn choose_anchor(&self, sel: &Selector) -> Anchor {
        let restrictions = sel.label_restrictions();
        if restrictions.values().any(|r| !r.possible_to_satisfy()) {
            return Anchor::Never;
        }
        // (bucket load, 0 = value anchor / 1 = key anchor, number of values, label)
        type Rank<'a> = (usize, u8, usize, &'a str);
        let mut best: Option<(Rank<'_>, Anchor)> = None;
        for (label, r) in restrictions.iter().filter(|(_, r)| r.must_be_present) {
            let bucket = self.by_label.get(label);
            let key = match &r.must_have_one_of_values {
                Some(values) => {
                    let load = values
                        .iter()
                        .map(|v| {
                            bucket
                                .and_then(|b| b.by_value.get(v))
                                .map_or(0, HashSet::len)
                        })
                        .max()
                        .unwrap_or(0);
                    (load, 0u8, values.len(), label.as_str())
                }
                None => (
                    bucket.map_or(0, |b| b.any_value.len()),
                    1u8,
                    0,
                    label.as_str(),
                ),
            };
            if best.as_ref().is_none_or(|(k, _)| key < *k) {
                let anchor = match &r.must_have_one_of_values {
                    Some(values) => Anchor::Values {
                        label: label.clone(),
                        values: values.iter().cloned().collect(),
                    },
                    None => Anchor::Key {
                        label: label.clone(),
                    },
                };
                best = Some((key, anchor));
            }
        }
        best.map_or(Anchor::Always, |(_, anchor)| anchor)
    }

    /// Removes the selector under `id`, returning it.
    pub fn remove_selector(&mut self, id: &Id) -> Option<Selector> {
        let entry = self.entries.remove(id)?;
        match &entry.anchor {
            Anchor::Values { label, values } => {
                if let Some(bucket) = self.by_label.get_mut(label) {
                    for v in values {
                        if let Some(ids) = bucket.by_value.get_mut(v) {
                            ids.remove(id);
                            if ids.is_empty() {
                                bucket.by_value.remove(v);
                            }
                        }
                    }
                    if bucket.is_empty() {
                        self.by_label.remove(label);
                    }
                }
            }
            Anchor::Key { label } => {
                if let Some(bucket) = self.by_label.get_mut(label) {
                    bucket.any_value.remove(id);
                    if bucket.is_empty() {
                        self.by_label.remove(label);
                    }
                }
            }
            Anchor::Always => {
                self.always.remove(id);
            }
            Anchor::Never => {
                self.never.remove(id);
            }
        }
        Some(entry.selector)
    }

    /// The ids of the selectors that match `labels`, in no particular order.
    ///
    /// Candidates come from the anchors the labels hit plus the always-evaluate list; each is
    /// confirmed with a full evaluation. When the label set can list itself (maps do) and has
    /// fewer labels than the index has anchor labels, we walk the endpoint's labels; otherwise
    /// we probe each anchor label.
    pub fn matching<'a, L: Labels + ?Sized>(
        &'a self,
        labels: &'a L,
    ) -> impl Iterator<Item = &'a Id> + 'a {
        let mut candidates: Vec<&'a Id> = self.always.iter().collect();
        let mut add_bucket = |bucket: &'a Bucket<Id>, value: &str| {
            candidates.extend(bucket.any_value.iter());
            if let Some(ids) = bucket.by_value.get(value) {
                candidates.extend(ids.iter());
            }
        };
        let walked = match labels.iter_labels() {
            Some(iter) => {
                let (lower, upper) = iter.size_hint();
                if upper.unwrap_or(lower) <= self.by_label.len() {
                    for (k, v) in iter {
                        if let Some(bucket) = self.by_label.get(k) {
                            add_bucket(bucket, v);
                        }
                    }
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if !walked {
            for (k, bucket) in &self.by_label {
                if let Some(v) = labels.get(k) {
                    add_bucket(bucket, v);
                }
            }
        }
        candidates.into_iter().filter(move |id| {
            self.entries
                .get(*id)
                .is_some_and(|e| e.selector.evaluate(labels))
        })
    }

    /// Brute force: evaluates every selector. For tests and as a benchmark baseline.
    pub fn matching_brute_force<'a, L: Labels + ?Sized>(
        &'a self,
        labels: &'a L,
    ) -> impl Iterator<Item = &'a Id> + 'a {
        self.entries
            .iter()
            .filter(move |(_, e)| e.selector.evaluate(labels))
            .map(|(id, _)| id)
    }

    /// How the held selectors are distributed over the index.
    pub fn stats(&self) -> IndexStats {
        let mut s = IndexStats::default();
        for e in self.entries.values() {
            match e.anchor {
                Anchor::Values { .. } => s.by_value += 1,
                Anchor::Key { .. } => s.by_key += 1,
                Anchor::Always => s.always += 1,
                Anchor::Never => s.never += 1,
            }
        }
        s
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::parse;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ids<'a>(it: impl Iterator<Item = &'a &'static str>) -> BTreeSet<&'static str> {
        it.copied().collect()
    }

    fn sample() -> SelectorIndex<&'static str> {
        let mut idx = SelectorIndex::new();
        for (id, s) in [
            ("eq", "app == 'web'"),
            ("in", "role in {'db', 'api'}"),
            ("has-and", "has(tier) && env == 'prod'"),
            ("has", "has(tier)"),
            ("nothas", "!has(debug)"),
            ("ne", "app != 'web'"),
            ("or", "app == 'web' || role == 'db'"),
            ("or-same", "app == 'web' || app == 'db'"),
            ("never", "app == 'a' && app == 'b'"),
            ("all", ""),
            ("empty-in", "app in {}"),
        ] {
            idx.update_selector(id, parse(s).unwrap());
        }
        idx
    }

    #[test]
    fn anchors() {
        let idx = sample();
        let anchor = |id: &str| idx.entries[id].anchor.clone();
        assert_eq!(
            anchor("eq"),
            Anchor::Values {
                label: "app".into(),
                values: vec!["web".into()]
            }
        );
        assert_eq!(
            anchor("has-and"),
            Anchor::Values {
                label: "env".into(),
                values: vec!["prod".into()]
            }
        );
        assert_eq!(
            anchor("has"),
            Anchor::Key {
                label: "tier".into()
            }
        );
        assert_eq!(
            anchor("empty-in"),
            Anchor::Key {
                label: "app".into()
            }
        );
        assert_eq!(anchor("nothas"), Anchor::Always);
        assert_eq!(anchor("ne"), Anchor::Always);
        assert_eq!(anchor("or"), Anchor::Always);
        assert_eq!(anchor("never"), Anchor::Never);
        assert_eq!(
            idx.stats(),
            IndexStats {
                by_value: 4,
                by_key: 2,
                always: 4,
                never: 1
            }
        );
    }

    #[test]
    fn lookups_match_brute_force() {
        let idx = sample();
        for l in [
            labels(&[]),
            labels(&[("app", "web")]),
            labels(&[("app", "db"), ("role", "api"), ("tier", "")]),
            labels(&[("tier", "x"), ("env", "prod"), ("debug", "1")]),
            labels(&[
                ("role", "db"),
                ("app", "web"),
                ("env", "prod"),
                ("tier", "1"),
            ]),
        ] {
            let fast = ids(idx.matching(&l));
            let slow = ids(idx.matching_brute_force(&l));
            assert_eq!(fast, slow, "labels {l:?}");
            // Also through the probe-every-anchor path (a Labels that cannot list itself).
            struct Opaque<'a>(&'a BTreeMap<String, String>);
            impl Labels for Opaque<'_> {
                fn get(&self, key: &str) -> Option<&str> {
                    self.0.get(key).map(String::as_str)
                }
            }
            assert_eq!(ids(idx.matching(&Opaque(&l))), slow);
        }
        let l = labels(&[("app", "web"), ("tier", "1"), ("env", "prod")]);
        assert_eq!(
            ids(idx.matching(&l)),
            BTreeSet::from(["eq", "has-and", "has", "nothas", "or", "or-same", "all"])
        );
    }

    #[test]
    fn update_and_remove() {
        let mut idx = sample();
        let l = labels(&[("app", "web")]);
        assert!(ids(idx.matching(&l)).contains("eq"));
        idx.update_selector("eq", parse("app == 'other'").unwrap());
        assert!(!ids(idx.matching(&l)).contains("eq"));
        assert_eq!(
            idx.remove_selector(&"eq").unwrap().to_string(),
            "app == \"other\""
        );
        assert!(idx.remove_selector(&"eq").is_none());
        for id in [
            "in", "has-and", "has", "nothas", "ne", "or", "or-same", "never", "all",
        ] {
            idx.remove_selector(&id).unwrap();
        }
        idx.remove_selector(&"empty-in").unwrap();
        assert!(idx.is_empty());
        assert!(idx.by_label.is_empty(), "buckets are cleaned up");
        assert!(idx.always.is_empty() && idx.never.is_empty());
    }
}
