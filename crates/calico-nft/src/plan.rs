//! [`diff_plan`]: the change between two rulesets as typed table operations
//! ([`TableOp`]) that a driver sends to the kernel as one nf_tables netlink batch, without
//! `nft`. It is [`crate::diff`]'s script as data, step for step in the same order (so the
//! same objects exist before they are referenced and are unreferenced before they go):
//! new sets and their elements, set element changes, new chains, map entry changes, rules
//! of new and changed chains (a changed chain is flushed and refilled, as in the script),
//! removed chains (flushed, then deleted), removed sets.
//!
//! A change the plan cannot express — a new or removed verdict map, a new base chain, a
//! changed declaration, a rule or element this crate cannot type — is a [`PlanError`] naming
//! it; the driver then applies [`crate::diff`]'s script with `nft` instead, so every change
//! still lands, only more slowly.

use std::collections::BTreeSet;

use crate::bytecode::{NamedSetKind, TableOp};
use crate::diff::{Pair, extract_map, extract_set, join};
use crate::elements::{ElementKind, ElementOp};
use crate::rule_code::rule_code;
use crate::ruleset::Ruleset;

/// Why a change has no [`diff_plan`] (it is applied as an nft script instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the table's name changed ({old} -> {new})")]
    TableRenamed { old: String, new: String },
    #[error("the declaration of {what} changed")]
    DeclarationChanged { what: String },
    #[error("{what} is not created or removed over netlink")]
    Unsupported { what: String },
    #[error("set {set}: {why}")]
    Elements { set: String, why: String },
    #[error("chain {chain}: {source}")]
    Rule {
        chain: String,
        #[source]
        source: crate::RuleCodeError,
    },
}

fn named_set_kind(spec: &str) -> Option<NamedSetKind> {
    Some(match ElementKind::of_spec(spec)? {
        ElementKind::Addr(f) => NamedSetKind::Addr(f),
        ElementKind::Net(f) => NamedSetKind::Net(f),
        ElementKind::AddrProtoPort(f) => NamedSetKind::AddrProtoPort(f),
        ElementKind::ProtoPort => NamedSetKind::ProtoPort,
        ElementKind::IfaceVerdict => return None,
    })
}

/// Moves element ops from `ops` into `plan`.
fn push_elements(plan: &mut Vec<TableOp>, ops: &mut Vec<ElementOp>) {
    plan.extend(ops.drain(..).map(TableOp::Element));
}

/// The table operations that turn the table `old` describes into `new`, in one batch; empty
/// when they are equal.
pub fn diff_plan(old: &Ruleset, new: &Ruleset) -> Result<Vec<TableOp>, PlanError> {
    if old.table != new.table {
        return Err(PlanError::TableRenamed {
            old: old.table.clone(),
            new: new.table.clone(),
        });
    }
    let sets = join(&old.sets, &new.sets);
    let maps = join(&old.maps, &new.maps);
    let chains = join(&old.chains, &new.chains);
    let mut plan = Vec::new();
    let mut ops: Vec<ElementOp> = Vec::new();
    let empty = BTreeSet::new();

    // 1. Sets: new ones with their elements, element changes of the others.
    for p in &sets {
        match p {
            Pair::New(name, set) => {
                let kind = named_set_kind(&set.spec).ok_or_else(|| PlanError::Unsupported {
                    what: format!("set {name} ({})", set.spec),
                })?;
                plan.push(TableOp::AddSet {
                    name: name.to_string(),
                    kind,
                });
                if !extract_set(&mut ops, name, &empty, &set.elements, &set.spec) {
                    return Err(PlanError::Elements {
                        set: name.to_string(),
                        why: "an element cannot be typed".into(),
                    });
                }
                push_elements(&mut plan, &mut ops);
            }
            Pair::Both(name, o, n) => {
                if o.spec != n.spec {
                    return Err(PlanError::DeclarationChanged {
                        what: format!("set {name}"),
                    });
                }
                if o.elements != n.elements {
                    if !extract_set(&mut ops, name, &o.elements, &n.elements, &n.spec) {
                        return Err(PlanError::Elements {
                            set: name.to_string(),
                            why: "an element cannot be typed".into(),
                        });
                    }
                    push_elements(&mut plan, &mut ops);
                }
            }
            Pair::Old(..) => {}
        }
    }

    // 2. New chains, empty.
    for p in &chains {
        match p {
            Pair::New(name, chain) => {
                if chain.base.is_some() {
                    return Err(PlanError::Unsupported {
                        what: format!("base chain {name}"),
                    });
                }
                plan.push(TableOp::AddChain {
                    name: name.to_string(),
                });
            }
            Pair::Both(name, o, n) if o.base != n.base => {
                return Err(PlanError::DeclarationChanged {
                    what: format!("chain {name}"),
                });
            }
            Pair::Old(name, chain) if chain.base.is_some() => {
                return Err(PlanError::Unsupported {
                    what: format!("base chain {name}"),
                });
            }
            _ => {}
        }
    }

    // 3. Map entries.
    for p in &maps {
        match p {
            Pair::New(name, _) | Pair::Old(name, _) => {
                return Err(PlanError::Unsupported {
                    what: format!("map {name}"),
                });
            }
            Pair::Both(name, o, n) => {
                if o.spec != n.spec {
                    return Err(PlanError::DeclarationChanged {
                        what: format!("map {name}"),
                    });
                }
                if o.elements != n.elements {
                    if !extract_map(&mut ops, name, &o.elements, &n.elements, &n.spec) {
                        return Err(PlanError::Elements {
                            set: name.to_string(),
                            why: "an entry cannot be typed".into(),
                        });
                    }
                    push_elements(&mut plan, &mut ops);
                }
            }
        }
    }

    // 4. Rules of new and changed chains.
    for p in &chains {
        let (name, chain) = match p {
            Pair::New(name, chain) => (name, chain),
            Pair::Both(name, o, n) if o.rules != n.rules => {
                plan.push(TableOp::FlushChain {
                    name: name.to_string(),
                });
                (name, n)
            }
            _ => continue,
        };
        for r in &chain.rules {
            let rule = rule_code(r).map_err(|source| PlanError::Rule {
                chain: name.to_string(),
                source,
            })?;
            plan.push(TableOp::AddRule {
                chain: name.to_string(),
                rule,
            });
        }
    }

    // 5. Removed chains: flushed first (they may jump to each other), then deleted.
    for p in &chains {
        if let Pair::Old(name, chain) = p
            && !chain.rules.is_empty()
        {
            plan.push(TableOp::FlushChain {
                name: name.to_string(),
            });
        }
    }
    for p in &chains {
        if let Pair::Old(name, _) = p {
            plan.push(TableOp::DeleteChain {
                name: name.to_string(),
            });
        }
    }

    // 6. Removed sets.
    for p in &sets {
        if let Pair::Old(name, _) = p {
            plan.push(TableOp::DeleteSet {
                name: name.to_string(),
            });
        }
    }
    Ok(plan)
}
