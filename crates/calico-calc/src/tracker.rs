//! The current model plus what changed since the last flush, turned into a minimal batch of
//! updates in Felix's order (`felix/calc/event_sequencer.go` `Flush`): added IP sets, IP-set
//! deltas, policy updates, profile updates, endpoint updates; then endpoint removals,
//! profile removals, policy removals, IP-set removals. Within each group, keys are sorted so
//! the output is deterministic (Felix iterates maps).
//!
//! Every change to the model goes through here. The first change to a key after a flush
//! remembers the key's flushed value, so a flush compares flushed and current values and emits
//! nothing for a key that changed and changed back. IP-set members are tracked as add/remove
//! deltas that cancel each other, like the sequencer's `pendingAdded/RemovedIPSetMembers`.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use calico_dataplane_model::{
    DataplaneModel, HostEndpoint, IpSet, IpSetId, IpSetKind, IpSetMember, ModelUpdate, Policy,
    PolicyId, Profile, WorkloadEndpoint, WorkloadEndpointId,
};

#[derive(Debug)]
struct SetPending {
    /// The kind the set had at the last flush; `None`: the set did not exist then.
    flushed_kind: Option<Option<IpSetKind>>,
    /// Removed and created again since the flush: only a full update is right.
    recreated: bool,
    added: HashSet<IpSetMember>,
    removed: HashSet<IpSetMember>,
}

#[derive(Debug, Default)]
pub(crate) struct Tracker {
    model: DataplaneModel,
    sets: HashMap<IpSetId, SetPending>,
    policies: HashMap<PolicyId, Option<Policy>>,
    profiles: HashMap<String, Option<Profile>>,
    weps: HashMap<WorkloadEndpointId, Option<WorkloadEndpoint>>,
    heps: HashMap<String, Option<HostEndpoint>>,
}

/// Remembers the flushed value of `key` on its first change since the flush.
fn touch<K: Clone + Eq + Hash + Ord, V: Clone>(
    pending: &mut HashMap<K, Option<V>>,
    current: &std::collections::BTreeMap<K, V>,
    key: &K,
) {
    if !pending.contains_key(key) {
        pending.insert(key.clone(), current.get(key).cloned());
    }
}

/// The updates for one kind of keyed object: changed values, then removed keys.
fn diff<K: Clone + Ord, V: PartialEq>(
    pending: HashMap<K, Option<V>>,
    current: &std::collections::BTreeMap<K, V>,
) -> (Vec<K>, Vec<K>) {
    let mut updated = Vec::new();
    let mut removed = Vec::new();
    for (k, before) in pending {
        match (before, current.get(&k)) {
            (Some(_), None) => removed.push(k),
            (before, Some(now)) if before.as_ref() != Some(now) => updated.push(k),
            _ => {}
        }
    }
    updated.sort();
    removed.sort();
    (updated, removed)
}

impl Tracker {
    pub(crate) fn model(&self) -> &DataplaneModel {
        &self.model
    }

    fn set_pending(&mut self, id: &IpSetId) -> &mut SetPending {
        let model = &self.model;
        self.sets.entry(id.clone()).or_insert_with(|| SetPending {
            flushed_kind: model.ip_sets.get(id).map(|s| s.kind),
            recreated: false,
            added: HashSet::new(),
            removed: HashSet::new(),
        })
    }

    /// Creates an empty set.
    pub(crate) fn set_create(&mut self, id: &IpSetId, kind: IpSetKind) {
        let p = self.set_pending(id);
        if p.flushed_kind.is_some() {
            p.recreated = true;
        }
        p.added.clear();
        p.removed.clear();
        self.model.ip_sets.insert(
            id.clone(),
            IpSet {
                kind: Some(kind),
                members: Default::default(),
            },
        );
    }

    pub(crate) fn set_remove(&mut self, id: &IpSetId) {
        let p = self.set_pending(id);
        p.added.clear();
        p.removed.clear();
        self.model.ip_sets.remove(id);
    }

    pub(crate) fn set_kind(&mut self, id: &IpSetId, kind: IpSetKind) {
        self.set_pending(id);
        if let Some(s) = self.model.ip_sets.get_mut(id) {
            s.kind = Some(kind);
        }
    }

    pub(crate) fn member_add(&mut self, id: &IpSetId, m: IpSetMember) {
        let p = self.set_pending(id);
        if !p.removed.remove(&m) {
            p.added.insert(m);
        }
        if let Some(s) = self.model.ip_sets.get_mut(id) {
            s.members.insert(m);
        }
    }

    /// Whether the model's set `id` holds `m`.
    pub(crate) fn has_member(&self, id: &IpSetId, m: &IpSetMember) -> bool {
        self.model
            .ip_sets
            .get(id)
            .is_some_and(|s| s.members.contains(m))
    }

    pub(crate) fn member_remove(&mut self, id: &IpSetId, m: IpSetMember) {
        let p = self.set_pending(id);
        if !p.added.remove(&m) {
            p.removed.insert(m);
        }
        if let Some(s) = self.model.ip_sets.get_mut(id) {
            s.members.remove(&m);
        }
    }

    pub(crate) fn policy_put(&mut self, id: &PolicyId, policy: Policy) {
        touch(&mut self.policies, &self.model.policies, id);
        self.model.policies.insert(id.clone(), policy);
    }

    pub(crate) fn policy_remove(&mut self, id: &PolicyId) {
        touch(&mut self.policies, &self.model.policies, id);
        self.model.policies.remove(id);
    }

    pub(crate) fn profile_put(&mut self, name: &str, profile: Profile) {
        let name = name.to_string();
        touch(&mut self.profiles, &self.model.profiles, &name);
        self.model.profiles.insert(name, profile);
    }

    pub(crate) fn profile_remove(&mut self, name: &str) {
        let name = name.to_string();
        touch(&mut self.profiles, &self.model.profiles, &name);
        self.model.profiles.remove(&name);
    }

    pub(crate) fn wep_put(&mut self, id: &WorkloadEndpointId, ep: WorkloadEndpoint) {
        if self.model.workload_endpoints.get(id) == Some(&ep) {
            return;
        }
        touch(&mut self.weps, &self.model.workload_endpoints, id);
        self.model.workload_endpoints.insert(id.clone(), ep);
    }

    pub(crate) fn wep_remove(&mut self, id: &WorkloadEndpointId) {
        touch(&mut self.weps, &self.model.workload_endpoints, id);
        self.model.workload_endpoints.remove(id);
    }

    pub(crate) fn hep_put(&mut self, name: &str, ep: HostEndpoint) {
        if self.model.host_endpoints.get(name) == Some(&ep) {
            return;
        }
        let name = name.to_string();
        touch(&mut self.heps, &self.model.host_endpoints, &name);
        self.model.host_endpoints.insert(name, ep);
    }

    pub(crate) fn hep_remove(&mut self, name: &str) {
        let name = name.to_string();
        touch(&mut self.heps, &self.model.host_endpoints, &name);
        self.model.host_endpoints.remove(&name);
    }

    /// The changes since the last flush, in the sequencer's order.
    pub(crate) fn flush(&mut self) -> Vec<ModelUpdate> {
        let mut out = Vec::new();
        let model = &self.model;

        // IP sets: new (or replaced) sets first, then deltas; removals come last.
        let mut set_ids: Vec<IpSetId> = self.sets.keys().cloned().collect();
        set_ids.sort();
        let mut deltas = Vec::new();
        let mut set_removes = Vec::new();
        for id in set_ids {
            let Some(p) = self.sets.remove(&id) else {
                continue;
            };
            match (p.flushed_kind, model.ip_sets.get(&id)) {
                (None, None) => {}
                (Some(_), None) => set_removes.push(ModelUpdate::IpSetRemove { id }),
                (flushed, Some(now)) => {
                    if p.recreated || flushed != Some(now.kind) {
                        out.push(ModelUpdate::IpSetUpdate {
                            id,
                            set: now.clone(),
                        });
                    } else if !p.added.is_empty() || !p.removed.is_empty() {
                        let mut added: Vec<IpSetMember> = p.added.into_iter().collect();
                        let mut removed: Vec<IpSetMember> = p.removed.into_iter().collect();
                        added.sort();
                        removed.sort();
                        deltas.push(ModelUpdate::IpSetDelta { id, added, removed });
                    }
                }
            }
        }
        out.extend(deltas);

        let (pol_up, pol_rm) = diff(std::mem::take(&mut self.policies), &model.policies);
        let (prof_up, prof_rm) = diff(std::mem::take(&mut self.profiles), &model.profiles);
        let (wep_up, wep_rm) = diff(std::mem::take(&mut self.weps), &model.workload_endpoints);
        let (hep_up, hep_rm) = diff(std::mem::take(&mut self.heps), &model.host_endpoints);
        for id in pol_up {
            if let Some(policy) = model.policies.get(&id) {
                out.push(ModelUpdate::ActivePolicyUpdate {
                    policy: policy.clone(),
                    id,
                });
            }
        }
        for name in prof_up {
            if let Some(profile) = model.profiles.get(&name) {
                out.push(ModelUpdate::ActiveProfileUpdate {
                    profile: profile.clone(),
                    name,
                });
            }
        }
        for id in wep_up {
            if let Some(endpoint) = model.workload_endpoints.get(&id) {
                out.push(ModelUpdate::WorkloadEndpointUpdate {
                    endpoint: endpoint.clone(),
                    id,
                });
            }
        }
        for name in hep_up {
            if let Some(endpoint) = model.host_endpoints.get(&name) {
                out.push(ModelUpdate::HostEndpointUpdate {
                    endpoint: endpoint.clone(),
                    name,
                });
            }
        }
        out.extend(
            wep_rm
                .into_iter()
                .map(|id| ModelUpdate::WorkloadEndpointRemove { id }),
        );
        out.extend(
            hep_rm
                .into_iter()
                .map(|name| ModelUpdate::HostEndpointRemove { name }),
        );
        out.extend(
            prof_rm
                .into_iter()
                .map(|name| ModelUpdate::ActiveProfileRemove { name }),
        );
        out.extend(
            pol_rm
                .into_iter()
                .map(|id| ModelUpdate::ActivePolicyRemove { id }),
        );
        out.extend(set_removes);
        out
    }
}
