//! The calculation graph: resource updates in, model changes out.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use calico_api::Resource;
use calico_dataplane_model::{
    DataplaneModel, ModelUpdate, Policy, PolicyId, Profile, Rule, RuleAction, TierDefaultAction,
    TierInfo,
};
use calico_policy_rules::{
    ParsedPolicy, ParsedTier, parse_global_network_policy, parse_network_policy, parse_profile,
    parse_tier, policy_kind_name, tier_order_with_validity,
};
use calico_selector::SelectorIndex;

use crate::convert::{self, ItemInput, LocalEndpoint};
use crate::ipsets::{IpSets, Item};
use crate::rules::{SetDefs, model_rules};
use crate::tracker::Tracker;
use crate::{CalcError, ResourceKey};

#[derive(Debug)]
struct PolicyEntry {
    /// Rules cleared: only identity, order, selector, types and flags are kept.
    parsed: ParsedPolicy,
    model: Policy,
    defs: SetDefs,
    /// Local endpoints the selector matches; the policy is active while this is not empty.
    local_eps: HashSet<ResourceKey>,
    /// `policy_sorter.go` `PolKVLess` key, computed once: endpoints re-sort their policies
    /// often.
    sort_key: PolicySortKey,
}

/// Order (missing = +Inf), then the string `"<name>/<namespace>/<kind>"`: the key form of
/// `calico_policy_rules::policy_order` (a test checks they agree).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PolicySortKey(f64, String);

impl PolicySortKey {
    pub(crate) fn of(p: &ParsedPolicy) -> PolicySortKey {
        PolicySortKey(
            p.order.unwrap_or(f64::INFINITY),
            format!(
                "{}/{}/{}",
                p.id.name,
                p.id.namespace,
                policy_kind_name(p.id.kind)
            ),
        )
    }

    pub(crate) fn cmp(&self, other: &PolicySortKey) -> std::cmp::Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

#[derive(Debug, Clone)]
struct ProfileEntry {
    labels: BTreeMap<String, String>,
    model: Profile,
    defs: SetDefs,
}

/// `active_rules_calculator.go` `DummyDropRules`: what an endpoint gets for a profile it
/// names that does not exist.
fn dummy_drop_profile() -> Profile {
    Profile {
        inbound: vec![Rule::any(RuleAction::Deny)],
        outbound: vec![Rule::any(RuleAction::Deny)],
    }
}

/// The incremental calculation graph of one node. Feed it every policy-relevant resource
/// of the cluster with [`CalcGraph::on_update`]; take the resulting dataplane changes with
/// [`CalcGraph::flush`].
#[derive(Debug)]
pub struct CalcGraph {
    node: String,
    tr: Tracker,
    /// Every endpoint and network set of the cluster.
    items: HashMap<ResourceKey, Item>,
    /// The items that are endpoints of this node.
    local: HashSet<ResourceKey>,
    /// Profile name → items that inherit its labels.
    children: HashMap<String, HashSet<ResourceKey>>,
    profiles: HashMap<String, ProfileEntry>,
    /// Profile name → local endpoints listing it; present keys are the active profiles.
    profile_users: HashMap<String, HashSet<ResourceKey>>,
    tiers: HashMap<String, ParsedTier>,
    tier_policies: HashMap<String, HashSet<PolicyId>>,
    policy_ids: HashMap<ResourceKey, PolicyId>,
    policies: HashMap<PolicyId, PolicyEntry>,
    policy_index: SelectorIndex<PolicyId>,
    sets: IpSets,
    /// Local endpoints whose model entry must be recomputed.
    dirty_eps: HashSet<ResourceKey>,
}

/// Rule conversion of a whole policy: rules of a direction the policy does not govern are
/// dropped (the model's contract: no inbound rules without the ingress type).
fn policy_model(parsed: &ParsedPolicy) -> (Policy, SetDefs) {
    let mut defs = SetDefs::default();
    let inbound = if parsed.ingress {
        model_rules(&parsed.inbound, &mut defs)
    } else {
        Vec::new()
    };
    let outbound = if parsed.egress {
        model_rules(&parsed.outbound, &mut defs)
    } else {
        Vec::new()
    };
    (
        Policy {
            namespace: parsed.id.namespace.clone(),
            inbound,
            outbound,
            untracked: parsed.do_not_track,
            pre_dnat: parsed.pre_dnat,
        },
        defs,
    )
}

/// Whether two versions of a policy sort and split into tier lists the same way.
fn same_placement(a: &ParsedPolicy, b: &ParsedPolicy) -> bool {
    a.order.map(f64::to_bits) == b.order.map(f64::to_bits)
        && a.ingress == b.ingress
        && a.egress == b.egress
        && a.do_not_track == b.do_not_track
        && a.pre_dnat == b.pre_dnat
        && a.apply_on_forward == b.apply_on_forward
}

/// The tier lists of one stage (`event_sequencer.go` `tierInfoToProtoTierInfo`).
#[derive(Clone, Copy, PartialEq)]
enum Stage {
    Normal,
    Untracked,
    PreDnat,
    Forward,
}

fn stage_tiers(tiers: &[(ParsedTier, Vec<&PolicyEntry>)], stage: Stage) -> Vec<TierInfo> {
    let mut out = Vec::new();
    for (tier, pols) in tiers {
        let mut info = TierInfo {
            name: tier.name.clone(),
            // "For untracked and preDNAT tiers, DefaultAction must be Pass, to make sure
            // policies in the normal tier are also checked."
            default_action: match stage {
                Stage::Untracked | Stage::PreDnat => TierDefaultAction::Pass,
                Stage::Normal | Stage::Forward => tier.default_action,
            },
            ..TierInfo::default()
        };
        for p in pols {
            let p = &p.parsed;
            let (wanted, egress_allowed) = match stage {
                Stage::Untracked => (p.do_not_track, true),
                Stage::PreDnat => (!p.do_not_track && p.pre_dnat, false),
                Stage::Forward => (!p.do_not_track && !p.pre_dnat && p.apply_on_forward, true),
                Stage::Normal => (!p.do_not_track && !p.pre_dnat, true),
            };
            if !wanted {
                continue;
            }
            if p.ingress {
                info.ingress_policies.push(p.id.clone());
            }
            if egress_allowed && p.egress {
                info.egress_policies.push(p.id.clone());
            }
        }
        if !info.ingress_policies.is_empty() || !info.egress_policies.is_empty() {
            out.push(info);
        }
    }
    out
}

impl CalcGraph {
    /// An empty graph for node `node_name`: endpoints whose `spec.node` is this name are
    /// local.
    pub fn new(node_name: &str) -> Self {
        CalcGraph {
            node: node_name.to_string(),
            tr: Tracker::default(),
            items: HashMap::new(),
            local: HashSet::new(),
            children: HashMap::new(),
            profiles: HashMap::new(),
            profile_users: HashMap::new(),
            tiers: HashMap::new(),
            tier_policies: HashMap::new(),
            policy_ids: HashMap::new(),
            policies: HashMap::new(),
            policy_index: SelectorIndex::new(),
            sets: IpSets::default(),
            dirty_eps: HashSet::new(),
        }
    }

    /// The node this graph computes for.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The current model: what replaying every update flushed so far, plus the next
    /// [`CalcGraph::flush`], gives.
    pub fn model(&self) -> &DataplaneModel {
        self.tr.model()
    }

    /// Number of active IP sets.
    pub fn active_ip_sets(&self) -> usize {
        self.sets.len()
    }

    /// The changes since the previous flush, minimal and in Felix's event-sequencer order.
    pub fn flush(&mut self) -> Vec<ModelUpdate> {
        self.tr.flush()
    }

    /// Applies one resource update (`value` `None`: deleted). Kinds other than
    /// WorkloadEndpoint, HostEndpoint, NetworkPolicy, GlobalNetworkPolicy, Tier, Profile,
    /// NetworkSet and GlobalNetworkSet are ignored. A resource that cannot be converted is an
    /// error naming it, and changes nothing: that key's previous state stays in force.
    pub fn on_update(
        &mut self,
        key: ResourceKey,
        value: Option<Resource>,
    ) -> Result<(), CalcError> {
        let result = self.apply_update(key, value);
        self.refresh_dirty_endpoints();
        result
    }

    /// Applies a batch of updates, as [`CalcGraph::on_update`] would one by one, but
    /// recomputes each affected local endpoint's tier lists once for the whole batch (Felix's
    /// `PolicyResolver` likewise recomputes dirty endpoints once per flush). Use it for a
    /// datastore snapshot. Refused updates are returned, each naming its resource; the others
    /// are applied.
    pub fn on_updates(
        &mut self,
        updates: impl IntoIterator<Item = (ResourceKey, Option<Resource>)>,
    ) -> Vec<CalcError> {
        let errors = updates
            .into_iter()
            .filter_map(|(k, v)| self.apply_update(k, v).err())
            .collect();
        self.refresh_dirty_endpoints();
        errors
    }

    fn apply_update(&mut self, key: ResourceKey, value: Option<Resource>) -> Result<(), CalcError> {
        if let Some(v) = &value {
            let m = v.metadata();
            if v.kind() != key.kind || m.name != key.name || m.namespace != key.namespace {
                return Err(CalcError::KeyMismatch {
                    key: Box::new(key),
                    kind: v.kind(),
                    name: v.display_name(),
                });
            }
        }
        let rules_err = |source| CalcError::Rules {
            key: Box::new(key.clone()),
            source: Box::new(source),
        };
        match value {
            Some(Resource::WorkloadEndpoint(w)) => {
                let input = convert::workload_endpoint(&key, &w, &self.node)?;
                self.apply_item(&key, input);
            }
            Some(Resource::HostEndpoint(h)) => {
                let input = convert::host_endpoint(&key, &h, &self.node)?;
                self.apply_item(&key, Some(input));
            }
            Some(Resource::NetworkSet(s)) => {
                let input = convert::network_set(&key, &s)?;
                self.apply_item(&key, Some(input));
            }
            Some(Resource::GlobalNetworkSet(s)) => {
                let input = convert::global_network_set(&key, &s)?;
                self.apply_item(&key, Some(input));
            }
            Some(Resource::NetworkPolicy(p)) => {
                let parsed = parse_network_policy(&p).map_err(rules_err)?;
                self.apply_policy(&key, Some(parsed));
            }
            Some(Resource::GlobalNetworkPolicy(p)) => {
                let parsed = parse_global_network_policy(&p).map_err(rules_err)?;
                self.apply_policy(&key, Some(parsed));
            }
            Some(Resource::Profile(p)) => {
                let parsed = parse_profile(&p).map_err(rules_err)?;
                let mut defs = SetDefs::default();
                let model = Profile {
                    inbound: model_rules(&parsed.inbound, &mut defs),
                    outbound: model_rules(&parsed.outbound, &mut defs),
                };
                let entry = ProfileEntry {
                    labels: parsed.labels_to_apply,
                    model,
                    defs,
                };
                self.apply_profile(&key.name, Some(entry));
            }
            Some(Resource::Tier(t)) => {
                let parsed = parse_tier(&t).map_err(rules_err)?;
                self.apply_tier(&key.name, Some(parsed));
            }
            Some(_) => return Ok(()),
            None => match key.kind.as_str() {
                "WorkloadEndpoint" | "HostEndpoint" | "NetworkSet" | "GlobalNetworkSet" => {
                    self.apply_item(&key, None)
                }
                "NetworkPolicy" | "GlobalNetworkPolicy" => self.apply_policy(&key, None),
                "Profile" => self.apply_profile(&key.name, None),
                "Tier" => self.apply_tier(&key.name, None),
                _ => return Ok(()),
            },
        }
        Ok(())
    }

    // ----- endpoints and network sets -------------------------------------------------------

    /// Own labels over the labels of the parents, the first parent winning
    /// (`label_inheritance_index.go`).
    fn inherited_labels(&self, input: &ItemInput) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for p in input.parents.iter().rev() {
            if let Some(prof) = self.profiles.get(p) {
                out.extend(prof.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        out.extend(input.own_labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    fn apply_item(&mut self, key: &ResourceKey, new: Option<ItemInput>) {
        let mut old = self.items.remove(key);
        let mut old_pols = BTreeSet::new();
        let mut old_profiles = BTreeSet::new();
        let mut old_local = None;
        if let Some(o) = old.as_mut() {
            self.sets.remove_item(key, o, &mut self.tr);
            for p in &o.input.parents {
                if let Some(c) = self.children.get_mut(p) {
                    c.remove(key);
                    if c.is_empty() {
                        self.children.remove(p);
                    }
                }
            }
            if o.input.local.is_some() {
                old_pols = std::mem::take(&mut o.policies);
                old_profiles = o.input.parents.iter().cloned().collect();
                old_local = o.input.local.take();
            }
        }
        let mut new_pols = BTreeSet::new();
        let mut new_profiles = BTreeSet::new();
        let mut now_local = false;
        if let Some(input) = new {
            let labels = self.inherited_labels(&input);
            for p in &input.parents {
                self.children
                    .entry(p.clone())
                    .or_default()
                    .insert(key.clone());
            }
            if input.local.is_some() {
                now_local = true;
                new_pols = self.policy_index.matching(&labels).cloned().collect();
                new_profiles = input.parents.iter().cloned().collect();
            }
            let mut item = Item {
                input,
                labels,
                sets: HashSet::new(),
                policies: new_pols.clone(),
            };
            self.sets.add_item(key, &mut item, &mut self.tr);
            self.items.insert(key.clone(), item);
        }
        if now_local {
            self.local.insert(key.clone());
            self.dirty_eps.insert(key.clone());
        } else {
            self.local.remove(key);
            self.dirty_eps.remove(key);
            match old_local {
                Some(LocalEndpoint::Workload(id, _)) => self.tr.wep_remove(&id),
                Some(LocalEndpoint::Host(name, _)) => self.tr.hep_remove(&name),
                None => {}
            }
        }
        // Additions before removals, so a set or policy still in use is never dropped and
        // re-created within one update.
        for p in new_profiles.difference(&old_profiles) {
            self.profile_user_add(p, key);
        }
        for id in new_pols.difference(&old_pols) {
            self.policy_ep_add(id, key);
        }
        for id in old_pols.difference(&new_pols) {
            self.policy_ep_remove(id, key);
        }
        for p in old_profiles.difference(&new_profiles) {
            self.profile_user_remove(p, key);
        }
    }

    /// Recomputes an item's labels after a parent profile's labels changed.
    fn relabel(&mut self, key: &ResourceKey) {
        let Some(mut item) = self.items.remove(key) else {
            return;
        };
        let labels = self.inherited_labels(&item.input);
        if labels == item.labels {
            self.items.insert(key.clone(), item);
            return;
        }
        self.sets.remove_item(key, &mut item, &mut self.tr);
        item.labels = labels;
        self.sets.add_item(key, &mut item, &mut self.tr);
        let local = item.input.local.is_some();
        let old_pols = std::mem::take(&mut item.policies);
        if local {
            item.policies = self.policy_index.matching(&item.labels).cloned().collect();
        }
        let new_pols = item.policies.clone();
        self.items.insert(key.clone(), item);
        if local {
            self.dirty_eps.insert(key.clone());
            for id in new_pols.difference(&old_pols) {
                self.policy_ep_add(id, key);
            }
            for id in old_pols.difference(&new_pols) {
                self.policy_ep_remove(id, key);
            }
        }
    }

    // ----- policies -------------------------------------------------------------------------

    fn activate_defs(&mut self, defs: &SetDefs) {
        for (id, def) in &defs.0 {
            self.sets.add_ref(id, def, &mut self.items, &mut self.tr);
        }
    }

    fn release_defs(&mut self, defs: &SetDefs) {
        for (id, _) in &defs.0 {
            self.sets.remove_ref(id, &mut self.items, &mut self.tr);
        }
    }

    /// A local endpoint now matches policy `id`.
    fn policy_ep_add(&mut self, id: &PolicyId, key: &ResourceKey) {
        let Some(entry) = self.policies.get_mut(id) else {
            return;
        };
        entry.local_eps.insert(key.clone());
        if entry.local_eps.len() == 1 {
            let (model, defs) = (entry.model.clone(), entry.defs.clone());
            self.activate_defs(&defs);
            self.tr.policy_put(id, model);
        }
    }

    /// A local endpoint no longer matches policy `id`.
    fn policy_ep_remove(&mut self, id: &PolicyId, key: &ResourceKey) {
        let Some(entry) = self.policies.get_mut(id) else {
            return;
        };
        if entry.local_eps.remove(key) && entry.local_eps.is_empty() {
            let defs = entry.defs.clone();
            self.tr.policy_remove(id);
            self.release_defs(&defs);
        }
    }

    fn apply_policy(&mut self, key: &ResourceKey, new: Option<ParsedPolicy>) {
        let old_id = self.policy_ids.get(key).cloned();
        match new {
            None => {
                if let Some(id) = old_id {
                    self.policy_ids.remove(key);
                    self.remove_policy(&id);
                }
            }
            Some(parsed) => {
                let id = parsed.id.clone();
                self.policy_ids.insert(key.clone(), id.clone());
                self.put_policy(parsed);
                // A new tier gives a new policy ID: the old one goes after the new one is in.
                if let Some(old) = old_id.filter(|o| *o != id) {
                    self.remove_policy(&old);
                }
            }
        }
    }

    fn put_policy(&mut self, mut parsed: ParsedPolicy) {
        let id = parsed.id.clone();
        let (model, defs) = policy_model(&parsed);
        parsed.inbound = Vec::new();
        parsed.outbound = Vec::new();
        let old = self.policies.remove(&id);
        let selector_same = old
            .as_ref()
            .is_some_and(|o| o.parsed.selector == parsed.selector);
        let new_eps: HashSet<ResourceKey> = match &old {
            Some(o) if selector_same => o.local_eps.clone(),
            _ => {
                self.policy_index
                    .update_selector(id.clone(), parsed.selector.clone());
                self.local
                    .iter()
                    .filter(|k| {
                        self.items
                            .get(*k)
                            .is_some_and(|it| parsed.selector.evaluate(&it.labels))
                    })
                    .cloned()
                    .collect()
            }
        };
        let empty = HashSet::new();
        let old_eps = old.as_ref().map_or(&empty, |o| &o.local_eps);
        let was_active = !old_eps.is_empty();
        let now_active = !new_eps.is_empty();
        let rules_same = old.as_ref().is_some_and(|o| o.model == model);
        if now_active && !(was_active && rules_same) {
            self.activate_defs(&defs);
            self.tr.policy_put(&id, model.clone());
        }
        if was_active
            && !(now_active && rules_same)
            && let Some(o) = &old
        {
            self.release_defs(&o.defs);
        }
        if was_active && !now_active {
            self.tr.policy_remove(&id);
        }
        for k in new_eps.difference(old_eps) {
            if let Some(it) = self.items.get_mut(k) {
                it.policies.insert(id.clone());
            }
            self.dirty_eps.insert(k.clone());
        }
        for k in old_eps.difference(&new_eps) {
            if let Some(it) = self.items.get_mut(k) {
                it.policies.remove(&id);
            }
            self.dirty_eps.insert(k.clone());
        }
        if let Some(o) = &old
            && !same_placement(&o.parsed, &parsed)
        {
            self.dirty_eps.extend(new_eps.iter().cloned());
        }
        self.tier_policies
            .entry(id.tier.clone())
            .or_default()
            .insert(id.clone());
        let sort_key = PolicySortKey::of(&parsed);
        self.policies.insert(
            id,
            PolicyEntry {
                parsed,
                model,
                defs,
                local_eps: new_eps,
                sort_key,
            },
        );
    }

    fn remove_policy(&mut self, id: &PolicyId) {
        let Some(old) = self.policies.remove(id) else {
            return;
        };
        self.policy_index.remove_selector(id);
        if !old.local_eps.is_empty() {
            self.tr.policy_remove(id);
            self.release_defs(&old.defs);
        }
        for k in &old.local_eps {
            if let Some(it) = self.items.get_mut(k) {
                it.policies.remove(id);
            }
            self.dirty_eps.insert(k.clone());
        }
        if let Some(t) = self.tier_policies.get_mut(&id.tier) {
            t.remove(id);
            if t.is_empty() {
                self.tier_policies.remove(&id.tier);
            }
        }
    }

    // ----- profiles and tiers ---------------------------------------------------------------

    fn profile_user_add(&mut self, name: &str, key: &ResourceKey) {
        let users = self.profile_users.entry(name.to_string()).or_default();
        users.insert(key.clone());
        if users.len() == 1 {
            let (model, defs) = match self.profiles.get(name) {
                Some(p) => (p.model.clone(), p.defs.clone()),
                None => (dummy_drop_profile(), SetDefs::default()),
            };
            self.activate_defs(&defs);
            self.tr.profile_put(name, model);
        }
    }

    fn profile_user_remove(&mut self, name: &str, key: &ResourceKey) {
        let Some(users) = self.profile_users.get_mut(name) else {
            return;
        };
        users.remove(key);
        if users.is_empty() {
            self.profile_users.remove(name);
            self.tr.profile_remove(name);
            if let Some(defs) = self.profiles.get(name).map(|p| p.defs.clone()) {
                self.release_defs(&defs);
            }
        }
    }

    fn apply_profile(&mut self, name: &str, new: Option<ProfileEntry>) {
        let old = self.profiles.remove(name);
        if self.profile_users.contains_key(name) {
            let (model, defs) = match &new {
                Some(p) => (p.model.clone(), p.defs.clone()),
                None => (dummy_drop_profile(), SetDefs::default()),
            };
            self.activate_defs(&defs);
            self.tr.profile_put(name, model);
            if let Some(o) = &old {
                self.release_defs(&o.defs);
            }
        }
        let empty = BTreeMap::new();
        let labels_changed = old.as_ref().map_or(&empty, |o| &o.labels)
            != new.as_ref().map_or(&empty, |n| &n.labels);
        if let Some(n) = new {
            self.profiles.insert(name.to_string(), n);
        }
        if labels_changed {
            let mut keys: Vec<ResourceKey> = self
                .children
                .get(name)
                .map(|c| c.iter().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            for k in keys {
                self.relabel(&k);
            }
        }
    }

    fn apply_tier(&mut self, name: &str, new: Option<ParsedTier>) {
        let old = match &new {
            Some(t) => self.tiers.insert(name.to_string(), t.clone()),
            None => self.tiers.remove(name),
        };
        if old == new {
            return;
        }
        if let Some(ids) = self.tier_policies.get(name) {
            for id in ids {
                if let Some(p) = self.policies.get(id) {
                    self.dirty_eps.extend(p.local_eps.iter().cloned());
                }
            }
        }
    }

    // ----- local endpoints' tier lists ------------------------------------------------------

    /// The tiers of the policies in `ids`, each with its policies, in evaluation order
    /// (`policy_sorter.go`: valid tiers by order then name, invalid tiers last; policies by
    /// order then name).
    fn ordered_tiers<'a>(
        policies: &'a HashMap<PolicyId, PolicyEntry>,
        tiers: &HashMap<String, ParsedTier>,
        ids: &BTreeSet<PolicyId>,
    ) -> Vec<(ParsedTier, Vec<&'a PolicyEntry>)> {
        let mut groups: Vec<(ParsedTier, bool, Vec<&PolicyEntry>)> = Vec::new();
        for id in ids {
            let Some(p) = policies.get(id) else {
                continue;
            };
            match groups.last_mut() {
                Some((t, _, list)) if t.name == id.tier => list.push(p),
                _ => {
                    let (tier, valid) = match tiers.get(&id.tier) {
                        Some(t) => (t.clone(), true),
                        // A policy in a tier with no Tier resource: an invalid tier, sorted
                        // last, no order, empty default action (which drops).
                        None => (
                            ParsedTier {
                                name: id.tier.clone(),
                                order: None,
                                default_action: TierDefaultAction::Deny,
                            },
                            false,
                        ),
                    };
                    groups.push((tier, valid, vec![p]));
                }
            }
        }
        for (_, _, list) in &mut groups {
            list.sort_by(|a, b| a.sort_key.cmp(&b.sort_key));
        }
        groups.sort_by(|(a, av, _), (b, bv, _)| tier_order_with_validity(a, *av, b, *bv));
        groups.into_iter().map(|(t, _, l)| (t, l)).collect()
    }

    fn refresh_dirty_endpoints(&mut self) {
        let mut keys: Vec<ResourceKey> = self.dirty_eps.drain().collect();
        keys.sort();
        for key in keys {
            let Some(item) = self.items.get(&key) else {
                continue;
            };
            let Some(local) = &item.input.local else {
                continue;
            };
            let tiers = Self::ordered_tiers(&self.policies, &self.tiers, &item.policies);
            match local {
                LocalEndpoint::Workload(id, base) => {
                    let mut ep = base.clone();
                    ep.tiers = stage_tiers(&tiers, Stage::Normal);
                    let id = id.clone();
                    self.tr.wep_put(&id, ep);
                }
                LocalEndpoint::Host(name, base) => {
                    let mut ep = base.clone();
                    ep.tiers = stage_tiers(&tiers, Stage::Normal);
                    ep.untracked_tiers = stage_tiers(&tiers, Stage::Untracked);
                    ep.pre_dnat_tiers = stage_tiers(&tiers, Stage::PreDnat);
                    ep.forward_tiers = stage_tiers(&tiers, Stage::Forward);
                    let name = name.clone();
                    self.tr.hep_put(&name, ep);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use calico_dataplane_model::PolicyKind;
    use calico_policy_rules::policy_order;

    use super::*;

    fn parsed(name: &str, ns: &str, kind: PolicyKind, order: Option<f64>) -> ParsedPolicy {
        ParsedPolicy {
            id: PolicyId {
                tier: "default".into(),
                kind,
                namespace: ns.into(),
                name: name.into(),
            },
            order,
            selector: calico_selector::Selector::all(),
            ingress: true,
            egress: true,
            do_not_track: false,
            pre_dnat: false,
            apply_on_forward: false,
            inbound: Vec::new(),
            outbound: Vec::new(),
        }
    }

    #[test]
    fn sort_key_agrees_with_policy_order() {
        let ps = [
            parsed("a", "", PolicyKind::GlobalNetworkPolicy, Some(10.0)),
            parsed("a", "ns", PolicyKind::NetworkPolicy, Some(10.0)),
            parsed("a", "ns", PolicyKind::KubernetesNetworkPolicy, Some(10.0)),
            parsed("b", "", PolicyKind::GlobalNetworkPolicy, None),
            parsed("c", "x", PolicyKind::NetworkPolicy, Some(-1.5)),
            parsed("a", "", PolicyKind::GlobalNetworkPolicy, None),
            parsed("z", "", PolicyKind::GlobalNetworkPolicy, Some(1e9)),
        ];
        for a in &ps {
            for b in &ps {
                assert_eq!(
                    PolicySortKey::of(a).cmp(&PolicySortKey::of(b)),
                    policy_order(a, b),
                    "{:?} vs {:?}",
                    a.id,
                    b.id
                );
            }
        }
    }
}
