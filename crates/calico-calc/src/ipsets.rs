//! Active IP sets and their members (`felix/labelindex/named_port_index.go`
//! `SelectorAndNamedPortIndex`, fed by `rule_scanner.go`'s `OnIPSetActive/Inactive`).
//!
//! A set is active while at least one active policy or profile references it. Its members
//! come from every endpoint and network set in the cluster whose (inherited) labels match the
//! set's selector: addresses or CIDRs for selector sets, `addr,proto:port` for named-port
//! sets. Members are reference counted, as two items may contribute the same address.
//! Finding the sets an item belongs to uses `calico-selector`'s label index, so a label
//! change costs in proportion to the sets involved, not to all sets.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use calico_dataplane_model::{IpSetId, IpSetKind, IpSetMember};
use calico_selector::SelectorIndex;
use ipnet::IpNet;

use crate::ResourceKey;
use crate::convert::ItemInput;
use crate::rules::SetDef;
use crate::tracker::Tracker;

/// An endpoint or network set, anywhere in the cluster.
#[derive(Debug)]
pub(crate) struct Item {
    pub input: ItemInput,
    /// Own labels over inherited ones: what selectors see.
    pub labels: BTreeMap<String, String>,
    /// The active sets this item matches.
    pub sets: HashSet<IpSetId>,
    /// For local endpoints: the policies whose selector matches.
    pub policies: BTreeSet<calico_dataplane_model::PolicyId>,
}

#[derive(Debug)]
struct ActiveSet {
    def: SetDef,
    /// Active policies / profiles referencing the set.
    refs: usize,
    counts: HashMap<IpSetMember, u32>,
    /// Number of distinct CIDR members: a set with any is of kind `Nets`.
    nets: usize,
    items: HashSet<ResourceKey>,
}

impl ActiveSet {
    fn kind(&self) -> IpSetKind {
        match self.def {
            SetDef::NamedPort { .. } => IpSetKind::AddressPorts,
            SetDef::Selector(_) if self.nets > 0 => IpSetKind::Nets,
            SetDef::Selector(_) => IpSetKind::Addresses,
        }
    }
}

/// What `item` puts into a set defined by `def` (`LookupNamedPorts` for named ports).
fn contribution(def: &SetDef, item: &ItemInput) -> Vec<IpSetMember> {
    match def {
        SetDef::Selector(_) => item.members.clone(),
        SetDef::NamedPort { protocol, name, .. } => {
            let mut out = Vec::new();
            for p in item.ports.iter().filter(|p| &p.name == name) {
                // `Protocol.MatchesModelProtocol`: `any` (255) matches every port protocol.
                if *protocol != calico_policy_rules::NAMED_PORT_PROTOCOL_ANY
                    && *protocol != p.protocol
                {
                    continue;
                }
                out.extend(item.ips.iter().map(|addr| IpSetMember::AddressPort {
                    addr: *addr,
                    protocol: p.protocol,
                    port: p.port,
                }));
            }
            out
        }
    }
}

/// The CIDR of an address or net member (named-port members are never deduplicated).
fn cidr_of(m: &IpSetMember) -> Option<IpNet> {
    match m {
        IpSetMember::Address(a) => Some(IpNet::from(*a)),
        IpSetMember::Net(n) => Some(*n),
        IpSetMember::AddressPort { .. } => None,
    }
}

/// The member form of a CIDR: host routes are addresses.
fn member_of(net: IpNet) -> IpSetMember {
    if net.prefix_len() == net.max_prefix_len() {
        IpSetMember::Address(net.addr())
    } else {
        IpSetMember::Net(net)
    }
}

/// Whether a strictly wider CIDR containing `net` is present (one lookup per shorter prefix).
fn has_present_ancestor(present: &HashMap<IpSetMember, u32>, net: IpNet) -> bool {
    (0..net.prefix_len()).any(|p| {
        IpNet::new(net.addr(), p)
            .map(|a| present.contains_key(&member_of(a.trunc())))
            .unwrap_or(false)
    })
}

/// The present members strictly inside `net` (a scan; only CIDR members, which are few and
/// change rarely, have descendants).
fn descendants(present: &HashMap<IpSetMember, u32>, net: IpNet) -> Vec<IpSetMember> {
    let mut out: Vec<IpSetMember> = present
        .keys()
        .filter(|d| {
            cidr_of(d).is_some_and(|dn| dn.prefix_len() > net.prefix_len() && net.contains(&dn))
        })
        .copied()
        .collect();
    out.sort();
    out
}

#[derive(Debug, Default)]
pub(crate) struct IpSets {
    sets: HashMap<IpSetId, ActiveSet>,
    index: SelectorIndex<IpSetId>,
}

impl IpSets {
    pub(crate) fn len(&self) -> usize {
        self.sets.len()
    }

    fn add_members(set: &mut ActiveSet, id: &IpSetId, members: Vec<IpSetMember>, tr: &mut Tracker) {
        let before = set.kind();
        for m in members {
            let c = set.counts.entry(m).or_insert(0);
            *c += 1;
            if *c == 1 {
                if matches!(m, IpSetMember::Net(_)) {
                    set.nets += 1;
                }
                Self::member_appears(set, id, m, tr);
            }
        }
        if set.kind() != before {
            tr.set_kind(id, set.kind());
        }
    }

    fn remove_members(
        set: &mut ActiveSet,
        id: &IpSetId,
        members: Vec<IpSetMember>,
        tr: &mut Tracker,
    ) {
        let before = set.kind();
        for m in members {
            if let Some(c) = set.counts.get_mut(&m) {
                *c -= 1;
                if *c == 0 {
                    set.counts.remove(&m);
                    if matches!(m, IpSetMember::Net(_)) {
                        set.nets -= 1;
                    }
                    Self::member_disappears(set, id, m, tr);
                }
            }
        }
        if set.kind() != before {
            tr.set_kind(id, set.kind());
        }
    }

    /// A member is now present (counted once). Felix in nftables mode suppresses CIDRs
    /// masked by a wider CIDR of the same set (`named_port_index.go` `onMemberAdded` with the
    /// `MemberOverlapSuppressor`; nft interval sets reject overlapping elements): a masked
    /// member is not emitted, and a new wider CIDR withdraws the ones it masks.
    fn member_appears(set: &ActiveSet, id: &IpSetId, m: IpSetMember, tr: &mut Tracker) {
        let Some(net) = cidr_of(&m) else {
            tr.member_add(id, m);
            return;
        };
        if has_present_ancestor(&set.counts, net) {
            return;
        }
        tr.member_add(id, m);
        if let IpSetMember::Net(_) = m {
            for d in descendants(&set.counts, net) {
                if tr.has_member(id, &d) {
                    tr.member_remove(id, d);
                }
            }
        }
    }

    /// A member is no longer present: withdrawn if it was emitted, and the members it masked
    /// (and nothing else masks) come back (`onMemberRemoved`).
    fn member_disappears(set: &ActiveSet, id: &IpSetId, m: IpSetMember, tr: &mut Tracker) {
        let Some(net) = cidr_of(&m) else {
            tr.member_remove(id, m);
            return;
        };
        if has_present_ancestor(&set.counts, net) {
            return;
        }
        tr.member_remove(id, m);
        if let IpSetMember::Net(_) = m {
            for d in descendants(&set.counts, net) {
                if let Some(dn) = cidr_of(&d)
                    && !has_present_ancestor(&set.counts, dn)
                {
                    tr.member_add(id, d);
                }
            }
        }
    }

    /// One more owner references the set; the first creates it and scans every item.
    pub(crate) fn add_ref(
        &mut self,
        id: &IpSetId,
        def: &SetDef,
        items: &mut HashMap<ResourceKey, Item>,
        tr: &mut Tracker,
    ) {
        if let Some(s) = self.sets.get_mut(id) {
            s.refs += 1;
            return;
        }
        let mut set = ActiveSet {
            def: def.clone(),
            refs: 1,
            counts: HashMap::new(),
            nets: 0,
            items: HashSet::new(),
        };
        tr.set_create(id, set.kind());
        let sel = def.selector();
        for (key, item) in items.iter_mut() {
            if sel.evaluate(&item.labels) {
                item.sets.insert(id.clone());
                set.items.insert(key.clone());
                let members = contribution(def, &item.input);
                Self::add_members(&mut set, id, members, tr);
            }
        }
        self.index.update_selector(id.clone(), sel.clone());
        self.sets.insert(id.clone(), set);
    }

    /// One owner less; the last removes the set.
    pub(crate) fn remove_ref(
        &mut self,
        id: &IpSetId,
        items: &mut HashMap<ResourceKey, Item>,
        tr: &mut Tracker,
    ) {
        let Some(s) = self.sets.get_mut(id) else {
            return;
        };
        s.refs -= 1;
        if s.refs > 0 {
            return;
        }
        if let Some(set) = self.sets.remove(id) {
            for key in &set.items {
                if let Some(item) = items.get_mut(key) {
                    item.sets.remove(id);
                }
            }
        }
        self.index.remove_selector(id);
        tr.set_remove(id);
    }

    /// Takes an item's contributions out of every set it is in (before it changes or goes).
    pub(crate) fn remove_item(&mut self, key: &ResourceKey, item: &mut Item, tr: &mut Tracker) {
        for id in item.sets.drain() {
            if let Some(set) = self.sets.get_mut(&id) {
                set.items.remove(key);
                let members = contribution(&set.def, &item.input);
                Self::remove_members(set, &id, members, tr);
            }
        }
    }

    /// Puts an item's contributions into every set whose selector matches its labels.
    pub(crate) fn add_item(&mut self, key: &ResourceKey, item: &mut Item, tr: &mut Tracker) {
        let matching: Vec<IpSetId> = self.index.matching(&item.labels).cloned().collect();
        for id in matching {
            if let Some(set) = self.sets.get_mut(&id) {
                set.items.insert(key.clone());
                let members = contribution(&set.def, &item.input);
                Self::add_members(set, &id, members, tr);
                item.sets.insert(id);
            }
        }
    }
}
