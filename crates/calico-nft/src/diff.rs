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

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::ruleset::{Ruleset, join_into};

/// The nft script (one transaction) that turns the table `old` describes into `new`; empty
/// when they are equal.
pub fn diff(old: &Ruleset, new: &Ruleset) -> String {
    if old.table != new.table {
        let mut out = format!("delete table inet {}\n", old.table);
        out.push_str(&new.full_replace_script());
        return out;
    }
    let in_place = old
        .sets
        .iter()
        .all(|(k, s)| new.sets.get(k).is_none_or(|n| n.spec == s.spec))
        && old
            .maps
            .iter()
            .all(|(k, m)| new.maps.get(k).is_none_or(|n| n.spec == m.spec))
        && old
            .chains
            .iter()
            .all(|(k, c)| new.chains.get(k).is_none_or(|n| n.base == c.base));
    if !in_place {
        return new.full_replace_script();
    }

    let t = &new.table;
    let mut out = String::new();

    // 1. Sets.
    for (name, set) in &new.sets {
        let old_elems = match old.sets.get(name) {
            Some(o) => &o.elements,
            None => {
                let _ = writeln!(out, "add set inet {t} {name} {{ {} }}", set.spec);
                &BTreeSet::new()
            }
        };
        if old_elems == &set.elements {
            continue;
        }
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
    for (name, chain) in &new.chains {
        if !old.chains.contains_key(name) {
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
    for (name, map) in &new.maps {
        match old.maps.get(name) {
            None => {
                let _ = writeln!(out, "add map inet {t} {name} {{ {} }}", map.spec);
                map_add(&mut out, t, name, map.elements.iter());
            }
            Some(o) if o.elements != map.elements => {
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
            Some(_) => {}
        }
    }

    // 4. Rules of new and changed chains.
    for (name, chain) in &new.chains {
        match old.chains.get(name) {
            Some(o) if o.rules == chain.rules => continue,
            Some(_) => {
                let _ = writeln!(out, "flush chain inet {t} {name}");
            }
            None => {}
        }
        for r in &chain.rules {
            let _ = writeln!(out, "add rule inet {t} {name} {r}");
        }
    }

    // 5. Removed chains.
    let removed: Vec<&String> = old
        .chains
        .keys()
        .filter(|k| !new.chains.contains_key(*k))
        .collect();
    for name in &removed {
        if old.chains[*name].rules.is_empty() {
            continue;
        }
        let _ = writeln!(out, "flush chain inet {t} {name}");
    }
    for name in &removed {
        let _ = writeln!(out, "delete chain inet {t} {name}");
    }

    // 6. Removed maps and sets.
    for name in old.maps.keys().filter(|k| !new.maps.contains_key(*k)) {
        let _ = writeln!(out, "delete map inet {t} {name}");
    }
    for name in old.sets.keys().filter(|k| !new.sets.contains_key(*k)) {
        let _ = writeln!(out, "delete set inet {t} {name}");
    }
    out
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
