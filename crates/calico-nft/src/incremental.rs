//! Recompiling only what a batch of model updates touched.
//!
//! A full [`crate::compile`] of a large model (10k policies) takes hundreds of milliseconds;
//! one update changes a few objects. [`recompile`] starts from the previous ruleset (cheap to
//! clone: its objects are shared) and re-renders only the objects the updates name, plus the
//! endpoints whose output depends on them (an endpoint jumps to a profile chain only while
//! that profile exists). The result equals `compile(model)` — the property test in
//! `tests/incremental.rs` checks that for random update batches — and [`crate::diff`] against
//! the previous ruleset then only visits changed objects.
//!
//! Host endpoints are few: any change to one (or to a profile one uses) rebuilds all of
//! their chains and the dispatch chains. Changes that would ripple widely start over with a
//! full compile: a different config, an IP set whose nft type changes (every rule
//! referencing it changes name), a removal that leaves a dangling reference (compile reports
//! it).

use std::collections::BTreeSet;

use calico_dataplane_model::{DataplaneModel, IpSetId, ModelUpdate, PolicyId, WorkloadEndpointId};

use crate::compile::{
    RPF_SKIP, Scope, TableRole, add_workload, compile_scoped, put_chain, put_host_endpoints,
    put_ip_set, put_policy, put_profile, remove_ip_set, remove_workload, rpf_skip_rules,
    set_type_of,
};
use crate::names;
use crate::tables::holders_using;
use crate::{NftConfig, NftError, Ruleset};

/// The ruleset for `model`, which is the model `prev` was compiled from with `updates`
/// applied (as [`DataplaneModel::apply`] does). Equal to `compile(model, cfg)`, and errors
/// like it when the model is inconsistent (a rule naming a removed IP set, an endpoint naming
/// a removed policy).
pub fn recompile(
    prev: &Ruleset,
    model: &DataplaneModel,
    updates: &[ModelUpdate],
    cfg: &NftConfig,
) -> Result<Ruleset, NftError> {
    recompile_scoped(prev, model, &Touched::of(updates), cfg, &Scope::whole(cfg))
}

/// The model objects a batch of updates named.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub sets: BTreeSet<IpSetId>,
    pub policies: BTreeSet<PolicyId>,
    pub profiles: BTreeSet<String>,
    pub weps: BTreeSet<WorkloadEndpointId>,
    pub heps: bool,
}

impl Touched {
    pub(crate) fn of(updates: &[ModelUpdate]) -> Touched {
        let mut t = Touched::default();
        for u in updates {
            match u {
                ModelUpdate::IpSetUpdate { id, .. }
                | ModelUpdate::IpSetDelta { id, .. }
                | ModelUpdate::IpSetRemove { id } => {
                    t.sets.insert(id.clone());
                }
                ModelUpdate::ActivePolicyUpdate { id, .. }
                | ModelUpdate::ActivePolicyRemove { id } => {
                    t.policies.insert(id.clone());
                }
                ModelUpdate::ActiveProfileUpdate { name, .. }
                | ModelUpdate::ActiveProfileRemove { name } => {
                    t.profiles.insert(name.clone());
                }
                ModelUpdate::WorkloadEndpointUpdate { id, .. }
                | ModelUpdate::WorkloadEndpointRemove { id } => {
                    t.weps.insert(id.clone());
                }
                ModelUpdate::HostEndpointUpdate { .. } | ModelUpdate::HostEndpointRemove { .. } => {
                    t.heps = true;
                }
            }
        }
        t
    }
}

/// [`recompile`] of one table of a layout: objects `touched` names are re-rendered when the
/// model has them and `scope` includes them, removed otherwise.
pub(crate) fn recompile_scoped(
    prev: &Ruleset,
    model: &DataplaneModel,
    touched: &Touched,
    cfg: &NftConfig,
    scope: &Scope<'_>,
) -> Result<Ruleset, NftError> {
    if prev.config != *cfg || prev.role != scope.role || prev.table != scope.table {
        return compile_scoped(model, cfg, scope);
    }
    let shard = scope.role.workload_only();
    let mut heps_changed = touched.heps && !shard;
    let mut weps: BTreeSet<&WorkloadEndpointId> = touched.weps.iter().collect();

    let mut rs = prev.clone();

    // IP sets first: policies re-rendered below reference them by type-specific names.
    let mut removed_sets: Vec<&IpSetId> = Vec::new();
    // Sets whose member families changed (the first IPv4 or IPv6 member arrived, or the last
    // left): the rules that need them render differently (`RuleEnv::can_match`).
    let mut refamilied: BTreeSet<&IpSetId> = BTreeSet::new();
    for id in &touched.sets {
        match model.ip_sets.get(id).filter(|_| scope.has_set(id)) {
            Some(set) => {
                let ty = set_type_of(id, set)?;
                if rs.set_types.get(id).is_some_and(|old| *old != ty) {
                    return compile_scoped(model, cfg, scope);
                }
                if put_ip_set(&mut rs, id, set, scope.shared)? {
                    refamilied.insert(id);
                }
            }
            None => {
                remove_ip_set(&mut rs, id);
                // Left the scope while in the model: nothing the scope holds uses it (a
                // table holds every set of the policies and profiles it holds), so only a
                // set gone from the model can leave a dangling reference.
                if !model.ip_sets.contains_key(id) {
                    removed_sets.push(id);
                }
            }
        }
    }

    // The policies and profiles to re-render: the touched ones, and those of this table that
    // reference a set whose member families changed.
    let mut policies: BTreeSet<&PolicyId> = touched.policies.iter().collect();
    let mut profiles: BTreeSet<&String> = touched.profiles.iter().collect();
    if !refamilied.is_empty() {
        let policy_uses =
            |p: &calico_dataplane_model::Policy| p.ip_set_ids().any(|s| refamilied.contains(s));
        let profile_uses =
            |p: &calico_dataplane_model::Profile| p.ip_set_ids().any(|s| refamilied.contains(s));
        match scope.members {
            // What a table holds records each object's sets: no model lookups.
            Some(m) => {
                policies.extend(holders_using(&m.policies, &refamilied));
                profiles.extend(holders_using(&m.profiles, &refamilied));
            }
            None => {
                policies.extend(
                    model
                        .policies
                        .iter()
                        .filter(|(_, p)| policy_uses(p))
                        .map(|(id, _)| id),
                );
                profiles.extend(
                    model
                        .profiles
                        .iter()
                        .filter(|(_, p)| profile_uses(p))
                        .map(|(n, _)| n),
                );
            }
        }
    }

    let mut removed_policies: Vec<&PolicyId> = Vec::new();
    for id in policies {
        match model.policies.get(id).filter(|_| scope.has_policy(id)) {
            Some(p) => put_policy(&mut rs, id, p, scope.shared)?,
            None => {
                rs.chains.remove(&names::policy_chain(true, id));
                rs.chains.remove(&names::policy_chain(false, id));
                // As for sets: a policy that only left the scope has no user in it.
                if !model.policies.contains_key(id) {
                    removed_policies.push(id);
                }
            }
        }
    }

    // A profile appearing or disappearing changes the endpoints that list it.
    for name in profiles {
        let existed = rs.chains.contains_key(&names::profile_chain(true, name));
        let wanted = model.profiles.get(name).filter(|_| scope.has_profile(name));
        match wanted {
            Some(p) => put_profile(&mut rs, name, p, scope.shared)?,
            None => {
                rs.chains.remove(&names::profile_chain(true, name));
                rs.chains.remove(&names::profile_chain(false, name));
            }
        }
        if existed != wanted.is_some() {
            if !shard
                && model
                    .host_endpoints
                    .values()
                    .any(|h| h.profile_ids.iter().any(|p| p == name))
            {
                heps_changed = true;
            }
            weps.extend(
                model
                    .workload_endpoints
                    .iter()
                    .filter(|(id, ep)| {
                        ep.profile_ids.iter().any(|p| p == name) && scope.has_workload(id, cfg)
                    })
                    .map(|(id, _)| id),
            );
        }
    }

    // Endpoints: all removed first, so that two endpoints swapping interfaces do not clash.
    for id in &weps {
        remove_workload(&mut rs, id);
    }
    for id in &weps {
        if let Some(ep) = model
            .workload_endpoints
            .get(*id)
            .filter(|_| scope.has_workload(id, cfg))
        {
            add_workload(&mut rs, model, id, ep)?;
        }
    }
    if heps_changed {
        put_host_endpoints(&mut rs, model)?;
    }
    if !weps.is_empty() && !shard {
        // Small (only endpoints with allowSpoofedSourcePrefixes) and cheap to rebuild.
        put_chain(&mut rs, RPF_SKIP.to_string(), rpf_skip_rules(model));
    }

    // What compile would reject: something not updated still referencing a removed object.
    // Rare (the event sequencer removes references first); compile reports it exactly.
    if !removed_sets.is_empty() {
        let gone: BTreeSet<&IpSetId> = removed_sets.into_iter().collect();
        let dangling = model
            .policies
            .iter()
            .filter(|(id, _)| scope.has_policy(id))
            .flat_map(|(_, p)| p.ip_set_ids())
            .chain(
                model
                    .profiles
                    .iter()
                    .filter(|(name, _)| scope.has_profile(name))
                    .flat_map(|(_, p)| p.ip_set_ids()),
            )
            .any(|s| gone.contains(s));
        if dangling {
            return compile_scoped(model, cfg, scope);
        }
    }
    if !removed_policies.is_empty() {
        let gone: BTreeSet<&PolicyId> = removed_policies.into_iter().collect();
        let wep_tiers = model
            .workload_endpoints
            .iter()
            .filter(|(id, _)| rs.role != TableRole::Main && scope.has_workload(id, cfg))
            .flat_map(|(_, ep)| &ep.tiers);
        let hep_tiers = model
            .host_endpoints
            .values()
            .filter(|_| !shard)
            .flat_map(|ep| {
                ep.tiers
                    .iter()
                    .chain(&ep.forward_tiers)
                    .chain(&ep.untracked_tiers)
                    .chain(&ep.pre_dnat_tiers)
            });
        let dangling = wep_tiers
            .chain(hep_tiers)
            .flat_map(|t| t.ingress_policies.iter().chain(&t.egress_policies))
            .any(|p| gone.contains(p));
        if dangling {
            return compile_scoped(model, cfg, scope);
        }
    }
    Ok(rs)
}
