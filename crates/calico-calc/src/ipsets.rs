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
                tr.member_add(id, m);
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
                    tr.member_remove(id, m);
                }
            }
        }
        if set.kind() != before {
            tr.set_kind(id, set.kind());
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
