//! Minimal nft scripts between two compiled rulesets.
//!
//! The script is one transaction (`nft -f` applies a file atomically) ordered so that every
//! object exists before something references it and is unreferenced before it is deleted:
//!
//! 1. new sets; element deletions, then additions, per set (deleting first matters for
//!    interval sets, where a new CIDR may cover an old one);
//! 2. new chains, created empty (rules may jump to each other in any order);
//! 3. new maps; map entries removed or changed, then added (targets now exist);
//! 4. rules of new chains, and of changed chains (`flush chain`, then the new rules);
//! 5. removed chains: all flushed first (they may jump to each other), then deleted;
//! 6. removed maps and sets.
//!
//! Unchanged chains, sets and map entries produce no command, so the script's size follows
//! the change, not the table. A change nft cannot make in place (a set's, map's or base
//! chain's declaration, the table's name) falls back to a full replacement.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::elements::{ElementKind, ElementOp};
use crate::ruleset::{Ruleset, SharedMap, join_into};
use imbl::ordmap::DiffItem;

/// The nft script (one transaction) that turns the table `old` describes into `new`; empty
/// when they are equal.
pub fn diff(old: &Ruleset, new: &Ruleset) -> String {
    diff_into(old, new, None)
}

/// [`diff`]; with `ops`, element changes of sets and maps present in both rulesets are
/// pushed there (in the order [`diff`] would write them) instead of into the script, when
/// every element of that set's change can be typed ([`crate::diff_ops`]).
pub(crate) fn diff_into(
    old: &Ruleset,
    new: &Ruleset,
    mut ops: Option<&mut Vec<ElementOp>>,
) -> String {
    if old.table != new.table {
        let mut out = format!("delete table inet {}\n", old.table);
        out.push_str(&new.full_replace_script());
        return out;
    }
    // One merge-join pass per kind of object (both maps are sorted by name): linear in the
    // table with one comparison per object, no tree lookups.
    let sets = join(&old.sets, &new.sets);
    let maps = join(&old.maps, &new.maps);
    let chains = join(&old.chains, &new.chains);
    let in_place = sets
        .iter()
        .all(|p| !matches!(p, Pair::Both(_, o, n) if o.spec != n.spec))
        && maps
            .iter()
            .all(|p| !matches!(p, Pair::Both(_, o, n) if o.spec != n.spec))
        && chains
            .iter()
            .all(|p| !matches!(p, Pair::Both(_, o, n) if o.base != n.base));
    if !in_place {
        return new.full_replace_script();
    }

    let t = &new.table;
    let mut out = String::new();
    let empty = BTreeSet::new();

    // 1. Sets.
    for p in &sets {
        let (name, old_elems, set) = match p {
            Pair::New(name, set) => {
                let _ = writeln!(out, "add set inet {t} {name} {{ {} }}", set.spec);
                (name, &empty, set)
            }
            Pair::Both(name, o, n) if o.elements != n.elements => {
                if let Some(ops) = ops.as_deref_mut()
                    && extract_set(ops, name, &o.elements, &n.elements, &n.spec)
                {
                    continue;
                }
                (name, &o.elements, n)
            }
            _ => continue,
        };
        element_cmd(
            &mut out,
            "delete",
            t,
            name,
            old_elems.difference(&set.elements),
        );
        element_cmd(&mut out, "add", t, name, set.elements.difference(old_elems));
    }

    // 2. New chains, empty.
    for p in &chains {
        if let Pair::New(name, chain) = p {
            match &chain.base {
                Some(base) => {
                    let _ = writeln!(out, "add chain inet {t} {name} {{ {base} }}");
                }
                None => {
                    let _ = writeln!(out, "add chain inet {t} {name}");
                }
            }
        }
    }

    // 3. Maps.
    for p in &maps {
        match p {
            Pair::New(name, map) => {
                let _ = writeln!(out, "add map inet {t} {name} {{ {} }}", map.spec);
                map_add(&mut out, t, name, map.elements.iter());
            }
            Pair::Both(name, o, map) if o.elements != map.elements => {
                if let Some(ops) = ops.as_deref_mut()
                    && extract_map(ops, name, &o.elements, &map.elements, &map.spec)
                {
                    continue;
                }
                let gone = o
                    .elements
                    .iter()
                    .filter(|(k, v)| map.elements.get(*k) != Some(*v))
                    .map(|(k, _)| k);
                element_cmd(&mut out, "delete", t, name, gone);
                let added = map
                    .elements
                    .iter()
                    .filter(|(k, v)| o.elements.get(*k) != Some(*v));
                map_add(&mut out, t, name, added);
            }
            _ => {}
        }
    }

    // 4. Rules of new and changed chains.
    for p in &chains {
        let (name, chain) = match p {
            Pair::New(name, chain) => (name, chain),
            Pair::Both(name, o, n) if o.rules != n.rules => {
                let _ = writeln!(out, "flush chain inet {t} {name}");
                (name, n)
            }
            _ => continue,
        };
        for r in &chain.rules {
            let _ = writeln!(out, "add rule inet {t} {name} {r}");
        }
    }

    // 5. Removed chains: flushed first (they may jump to each other), then deleted.
    for p in &chains {
        if let Pair::Old(name, chain) = p
            && !chain.rules.is_empty()
        {
            let _ = writeln!(out, "flush chain inet {t} {name}");
        }
    }
    for p in &chains {
        if let Pair::Old(name, _) = p {
            let _ = writeln!(out, "delete chain inet {t} {name}");
        }
    }

    // 6. Removed maps and sets.
    for p in &maps {
        if let Pair::Old(name, _) = p {
            let _ = writeln!(out, "delete map inet {t} {name}");
        }
    }
    for p in &sets {
        if let Pair::Old(name, _) = p {
            let _ = writeln!(out, "delete set inet {t} {name}");
        }
    }
    out
}

/// One name of a merge join: only in the old ruleset, only in the new one, or in both.
pub(crate) enum Pair<'a, V> {
    Old(&'a str, &'a V),
    New(&'a str, &'a V),
    Both(&'a str, &'a V, &'a V),
}

/// What differs between two versions of a name-sorted map, in name order. Subtrees the two
/// versions share (a recompile copies only the paths to what it changed) are skipped without
/// being visited, so this follows the size of the change, not of the table.
pub(crate) fn join<'a, V: PartialEq + Clone>(
    old: &'a SharedMap<String, V>,
    new: &'a SharedMap<String, V>,
) -> Vec<Pair<'a, V>> {
    old.diff(new)
        .map(|d| match d {
            DiffItem::Remove(k, v) => Pair::Old(k.as_str(), v),
            DiffItem::Add(k, v) => Pair::New(k.as_str(), v),
            DiffItem::Update {
                old: (k, o),
                new: (_, n),
            } => Pair::Both(k.as_str(), o, n),
        })
        .collect()
}

/// `<verb> element inet <t> <name> { a, b }`, nothing when there are no elements.
fn element_cmd<'a>(
    out: &mut String,
    verb: &str,
    t: &str,
    name: &str,
    elems: impl Iterator<Item = &'a String>,
) {
    let mut elems = elems.map(String::as_str).peekable();
    if elems.peek().is_none() {
        return;
    }
    let _ = write!(out, "{verb} element inet {t} {name} {{ ");
    join_into(out, elems);
    out.push_str(" }\n");
}

fn map_add<'a>(
    out: &mut String,
    t: &str,
    name: &str,
    entries: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return;
    }
    let _ = write!(out, "add element inet {t} {name} {{ ");
    let mut first = true;
    for (k, v) in entries {
        if !first {
            out.push_str(", ");
        }
        first = false;
        let _ = write!(out, "{k} : {v}");
    }
    out.push_str(" }\n");
}

/// Pushes set `name`'s element deletions, then additions, onto `ops`; `false` (and nothing
/// pushed) when its declaration or one of the elements cannot be typed.
pub(crate) fn extract_set(
    ops: &mut Vec<ElementOp>,
    name: &str,
    old: &BTreeSet<String>,
    new: &BTreeSet<String>,
    spec: &str,
) -> bool {
    let Some(kind) = ElementKind::of_spec(spec) else {
        return false;
    };
    let start = ops.len();
    let changes = old
        .difference(new)
        .map(|e| (false, e))
        .chain(new.difference(old).map(|e| (true, e)));
    for (add, e) in changes {
        let Some(value) = kind.parse(e, None) else {
            ops.truncate(start);
            return false;
        };
        ops.push(ElementOp {
            set: name.to_string(),
            add,
            element: e.clone(),
            value,
        });
    }
    true
}

/// [`extract_set`] for a verdict map: entries removed or changed are deleted, then entries
/// added or changed are added.
pub(crate) fn extract_map(
    ops: &mut Vec<ElementOp>,
    name: &str,
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    spec: &str,
) -> bool {
    let Some(kind) = ElementKind::of_spec(spec) else {
        return false;
    };
    let start = ops.len();
    let gone = old
        .iter()
        .filter(|(k, v)| new.get(*k) != Some(*v))
        .map(|e| (false, e));
    let added = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|e| (true, e));
    for (add, (k, v)) in gone.chain(added) {
        let Some(value) = kind.parse(k, Some(v)) else {
            ops.truncate(start);
            return false;
        };
        ops.push(ElementOp {
            set: name.to_string(),
            add,
            element: format!("{k} : {v}"),
            value,
        });
    }
    true
}
