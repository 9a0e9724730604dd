//! The compiled table: named sets, verdict maps and chains, each with its content, kept in
//! sorted maps so that rendering is deterministic and [`crate::diff`] can compare two
//! rulesets object by object.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use std::sync::Arc;

use calico_dataplane_model::{IpSetId, WorkloadEndpointId};

use crate::compile::TableRole;
use crate::names::SetType;
use crate::{NftConfig, TableShape};

/// A named set: its declaration (`type ipv4_addr; flags interval;`) and its elements as nft
/// writes them (`10.0.0.1`, `10.0.0.0/24`, `10.0.0.1 . tcp . 80`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NftSet {
    pub spec: String,
    pub elements: BTreeSet<String>,
}

/// A verdict map from interface name to verdict (`"cali1" : goto fw-cali1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NftMap {
    pub spec: String,
    /// Key as nft writes it (quoted interface name) → verdict.
    pub elements: BTreeMap<String, String>,
}

/// A chain: `base` holds the hook declaration of a base chain
/// (`type filter hook input priority filter; policy accept;`), `None` for regular chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NftChain {
    pub base: Option<String>,
    pub rules: Vec<String>,
}

/// Persistent ordered map (`imbl`): cloning is O(1) and the clones share structure, so a
/// recompile that changes a few objects of a 10k-policy table copies only the paths to them,
/// and [`imbl::OrdMap::diff`] skips the subtrees two versions share.
pub(crate) type SharedMap<K, V> = imbl::OrdMap<K, V>;

/// One compiled `inet` table. Build it with [`crate::compile`]; turn it into nft input with
/// [`Ruleset::render`], [`Ruleset::full_replace_script`] or [`crate::diff`].
///
/// Objects are shared (`Arc`) so that cloning a ruleset and recompiling part of it
/// ([`crate::recompile`]) costs little, and [`crate::diff`] skips shared objects by pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub(crate) table: String,
    pub(crate) sets: SharedMap<String, Arc<NftSet>>,
    pub(crate) maps: SharedMap<String, Arc<NftMap>>,
    pub(crate) chains: SharedMap<String, Arc<NftChain>>,
    /// What it was compiled with, so [`crate::recompile`] can tell when to start over.
    pub(crate) config: NftConfig,
    /// Type of each model IP set (fixes its nft sets' names).
    pub(crate) set_types: SharedMap<IpSetId, SetType>,
    /// Which families each model IP set has members of ([`crate::compile::FAM4`],
    /// [`crate::compile::FAM6`]): a rule that needs a member of a family its set lacks is not
    /// rendered for that family.
    pub(crate) set_families: SharedMap<IpSetId, u8>,
    /// Interface of each workload endpoint (names its chains and map entries).
    pub(crate) wep_ifaces: SharedMap<WorkloadEndpointId, String>,
    /// Global table: the group chains (egress, ingress) each workload endpoint uses.
    pub(crate) wep_groups: SharedMap<WorkloadEndpointId, Arc<[Option<String>; 2]>>,
    /// Global table: how many endpoints use each group chain.
    pub(crate) group_users: SharedMap<String, u32>,
    /// Chains of host endpoints (rebuilt together when one changes).
    pub(crate) hep_chains: BTreeSet<String>,
    /// Which table of the layout this is.
    pub(crate) role: TableRole,
}

impl Ruleset {
    pub(crate) fn new(cfg: &NftConfig) -> Ruleset {
        Ruleset {
            table: cfg.table.clone(),
            sets: SharedMap::new(),
            maps: SharedMap::new(),
            chains: SharedMap::new(),
            config: cfg.clone(),
            set_types: SharedMap::new(),
            set_families: SharedMap::new(),
            wep_ifaces: SharedMap::new(),
            wep_groups: SharedMap::new(),
            group_users: SharedMap::new(),
            hep_chains: BTreeSet::new(),
            role: TableRole::Whole,
        }
    }

    /// The table's name (family is always `inet`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The rules of chain `name`, as nft statements, or `None` when there is no such chain.
    pub fn chain_rules(&self, name: &str) -> Option<&[String]> {
        self.chains.get(name).map(|c| c.rules.as_slice())
    }

    /// Names of all chains, sorted.
    pub fn chain_names(&self) -> impl Iterator<Item = &str> {
        self.chains.keys().map(String::as_str)
    }

    /// Elements of named set `name`, sorted as strings, or `None` when there is no such set.
    pub fn set_elements(&self, name: &str) -> Option<impl Iterator<Item = &str>> {
        self.sets
            .get(name)
            .map(|s| s.elements.iter().map(String::as_str))
    }

    /// Names of all named sets, sorted.
    pub fn set_names(&self) -> impl Iterator<Item = &str> {
        self.sets.keys().map(String::as_str)
    }

    /// Entries of verdict map `name` (interface name, verdict), or `None` when absent.
    pub fn map_entries(&self, name: &str) -> Option<Vec<(String, String)>> {
        self.maps.get(name).map(|m| {
            m.elements
                .iter()
                .map(|(k, v)| (k.trim_matches('"').to_string(), v.clone()))
                .collect()
        })
    }

    /// The whole table as one nft script block: `table inet <name> { ... }`. Sets and maps
    /// come first, then chains, each group sorted by name (nft resolves references to chains
    /// declared later in the same block).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.estimated_len());
        let _ = writeln!(out, "table inet {} {{", self.table);
        for (name, set) in &self.sets {
            let _ = write!(out, "\tset {name} {{ {}", set.spec);
            if !set.elements.is_empty() {
                out.push_str(" elements = { ");
                join_into(&mut out, set.elements.iter().map(String::as_str));
                out.push_str(" };");
            }
            out.push_str(" }\n");
        }
        for (name, map) in &self.maps {
            let _ = write!(out, "\tmap {name} {{ {}", map.spec);
            if !map.elements.is_empty() {
                out.push_str(" elements = { ");
                let mut first = true;
                for (k, v) in &map.elements {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    let _ = write!(out, "{k} : {v}");
                }
                out.push_str(" };");
            }
            out.push_str(" }\n");
        }
        for (name, chain) in &self.chains {
            let _ = writeln!(out, "\tchain {name} {{");
            if let Some(base) = &chain.base {
                let _ = writeln!(out, "\t\t{base}");
            }
            for r in &chain.rules {
                out.push_str("\t\t");
                out.push_str(r);
                out.push('\n');
            }
            out.push_str("\t}\n");
        }
        out.push_str("}\n");
        out
    }

    /// One nft transaction that replaces whatever table of this name exists with this
    /// ruleset: `add table` (so the delete cannot fail), `delete table`, then the table.
    /// Applied with one `nft -f`, the kernel swaps the tables atomically: packets see either
    /// the old rules or the new ones, never an empty table.
    pub fn full_replace_script(&self) -> String {
        let body = self.render();
        let mut out = String::with_capacity(body.len() + 64);
        let _ = writeln!(out, "add table inet {}", self.table);
        let _ = writeln!(out, "delete table inet {}", self.table);
        out.push_str(&body);
        out
    }

    /// Chains with their rule counts, sets and maps with their element counts: what
    /// [`TableShape::from_nft_json`] reads back from the kernel once this ruleset is applied.
    pub fn shape(&self) -> TableShape {
        TableShape {
            chains: self
                .chains
                .iter()
                .map(|(k, c)| (k.clone(), c.rules.len()))
                .collect(),
            sets: self
                .sets
                .iter()
                .map(|(k, s)| (k.clone(), s.elements.len()))
                .collect(),
            maps: self
                .maps
                .iter()
                .map(|(k, m)| (k.clone(), m.elements.len()))
                .collect(),
        }
    }

    /// How many chains, rules, sets and maps the ruleset holds: the totals of
    /// [`Ruleset::shape`] without building it (no name is copied), for metrics after every
    /// change.
    pub fn counts(&self) -> RulesetCounts {
        RulesetCounts {
            chains: self.chains.len(),
            rules: self.chains.values().map(|c| c.rules.len()).sum(),
            sets: self.sets.len(),
            maps: self.maps.len(),
        }
    }

    fn estimated_len(&self) -> usize {
        let rules: usize = self
            .chains
            .values()
            .map(|c| 32 + c.rules.iter().map(|r| r.len() + 3).sum::<usize>())
            .sum();
        let elems: usize = self
            .sets
            .values()
            .map(|s| 64 + s.elements.iter().map(|e| e.len() + 2).sum::<usize>())
            .sum();
        rules + elems + 64 * self.maps.len() + 64
    }
}

/// Totals of a ruleset ([`Ruleset::counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RulesetCounts {
    pub chains: usize,
    pub rules: usize,
    pub sets: usize,
    pub maps: usize,
}

/// Writes `a, b, c`.
pub(crate) fn join_into<'a>(out: &mut String, items: impl Iterator<Item = &'a str>) {
    let mut first = true;
    for i in items {
        if !first {
            out.push_str(", ");
        }
        first = false;
        out.push_str(i);
    }
}
