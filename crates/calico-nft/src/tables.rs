//! [`PolicyTables`]: the policy dataplane as several tables, so that a change validates only
//! the tables it touches.
//!
//! Why: at the commit of any batch that adds a rule (or a jump in a verdict map) the kernel
//! validates the whole table the rule is in, walking every chain reachable from its base
//! chains (`nf_tables_validate`; since Linux 6.4 the state is per table). In one table of
//! 10k policies × 200 endpoints that walk costs ~87 ms on every policy edit or new pod,
//! whatever the size of the change. Split into tables, a change pays for its own table only.
//!
//! Layout with `NftConfig::shards` = N > 0:
//! * the **main** table (`NftConfig::table`, `calico`): host endpoints, the raw and pre-DNAT
//!   stages, failsafes, RPF, `DefaultEndpointToHostAction` and the fail-closed drop of
//!   unknown workload interfaces. Known workload interfaces are map entries that `return`.
//! * **shard** tables `calico-00` … (one per shard that has local endpoints): the workload
//!   endpoints of namespaces that hash to the shard ([`shard_of`]), with the policies,
//!   profiles and IP sets they use, behind their own base chains: workload egress at
//!   `prerouting`, ingress at `forward` (see `compile::shard_chains`).
//! * the **global** table `calico-global` (when some workload has one): each workload's
//!   *global prefix*, the leading tiers whose policies for a direction are all
//!   GlobalNetworkPolicies (`compile::global_prefix`; typically a security or platform
//!   tier before the namespaces' own policies), as group chains that endpoints with the same
//!   prefix share, with the global policies and IP sets those use. Its base chains run just
//!   before the shards' (filter + 5); a group chain marks which group ran
//!   (`GLOBAL_GROUP`) and whether it allowed (`GLOBAL_ACCEPT`). The endpoint's shard chain,
//!   which holds the tiers after the prefix, returns at once after an allow, continues as the
//!   whole chain would after a pass or no verdict, and drops when another group (or none)
//!   ran: a transitional mix of old and new tables fails closed. An edit of a
//!   global policy used in every namespace then touches one small table instead of a copy
//!   in every shard (the kernel validates each touched table whole), and the shard chains
//!   lose the prefix's jumps.
//!
//! The namespace is the unit because Calico's namespaced policies, `kns.`/`ksa.` profiles and
//! Kubernetes NetworkPolicies only ever select endpoints of their own namespace: each of them
//! lives in exactly one shard, and so does every change to it, to a pod, or to a pod's labels.
//! Global policies and sets used in several shards are copied into each (a change to one is
//! applied to every copy, in the same transaction). Each table only drops or lets packets go
//! on, so a packet passes when all tables let it: the same verdict as one table.
//!
//! With `shards` = 0 it is the one table of [`crate::compile`] (role "whole").
//!
//! Every change is still one transaction: [`PolicyTables::plan`] and
//! [`PolicyTables::script`] cover all tables at once.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use calico_dataplane_model::{
    DataplaneModel, IpSetId, ModelUpdate, PolicyId, TierInfo, WorkloadEndpoint, WorkloadEndpointId,
};

use crate::bytecode::TableOp;
use crate::compile::{Scope, Shared, TableRole, compile_scoped, global_prefix};
use crate::incremental::{Touched, recompile_scoped};
use crate::ruleset::SharedMap;
use crate::{NftConfig, NftError, PlanError, Ruleset, RulesetCounts, TableShape, diff, diff_plan};
use imbl::ordmap::DiffItem;

/// The most shards a layout may have (`NftConfig::shards`); table names carry two digits.
pub const MAX_SHARDS: u16 = 64;

/// The shard of workload endpoint `id` among `shards` (> 0): FNV-1a of its namespace (the
/// part of a Kubernetes workload id before `/`; the whole workload id otherwise), so that
/// it is the same in every process and release.
pub fn shard_of(id: &WorkloadEndpointId, shards: u16) -> u16 {
    let ns = id
        .workload_id
        .split_once('/')
        .map_or(id.workload_id.as_str(), |(ns, _)| ns);
    let mut h: u32 = 0x811c_9dc5;
    for b in ns.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    u16::try_from(h % u32::from(shards.max(1))).unwrap_or(0)
}

/// The name of shard table `k` of main table `table`.
pub fn shard_table(table: &str, k: u16) -> String {
    format!("{table}-{k:02}")
}

/// The name of the global table of main table `table`.
pub fn global_table(table: &str) -> String {
    format!("{table}-global")
}

/// A policy or profile a table holds: how many of its endpoints use it, and the IP sets it
/// referenced when it was last compiled (so that a change to it moves only those counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    users: u32,
    sets: Arc<[IpSetId]>,
}

/// The policies and profiles one endpoint uses: what it adds to its table's holdings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Uses {
    policies: Vec<PolicyId>,
    profiles: Vec<String>,
}

/// The policies of a workload's global prefix (`in_prefix`) or of the tiers after it, both
/// directions, sorted without repeats.
fn prefix_policies(ep: &WorkloadEndpoint, in_prefix: bool) -> Vec<PolicyId> {
    let mut policies: Vec<PolicyId> = Vec::new();
    for ingress in [false, true] {
        let (prefix, rest) = ep.tiers.split_at(global_prefix(&ep.tiers, ingress));
        for t in if in_prefix { prefix } else { rest } {
            policies.extend_from_slice(if ingress {
                &t.ingress_policies
            } else {
                &t.egress_policies
            });
        }
    }
    policies.sort_unstable();
    policies.dedup();
    policies
}

impl Uses {
    /// A workload's global prefix (both directions), `None` when it has no policy there:
    /// what the global table holds for it.
    fn global_of(ep: &WorkloadEndpoint) -> Option<Uses> {
        let policies = prefix_policies(ep, true);
        (!policies.is_empty()).then(|| Uses {
            policies,
            profiles: Vec::new(),
        })
    }

    /// A workload's tiers after the global prefix (both directions) and its profiles: what
    /// its shard table holds for it.
    fn shard_of(ep: &WorkloadEndpoint) -> Uses {
        let mut profiles = ep.profile_ids.clone();
        profiles.sort_unstable();
        profiles.dedup();
        Uses {
            policies: prefix_policies(ep, false),
            profiles,
        }
    }

    fn of(tiers: &[&[TierInfo]], profiles: &[String]) -> Uses {
        let mut policies: Vec<PolicyId> = tiers
            .iter()
            .flat_map(|t| t.iter())
            .flat_map(|t| t.ingress_policies.iter().chain(&t.egress_policies))
            .cloned()
            .collect();
        policies.sort_unstable();
        policies.dedup();
        let mut profiles = profiles.to_vec();
        profiles.sort_unstable();
        profiles.dedup();
        Uses { policies, profiles }
    }
}

/// What one table of a sharded layout holds besides its endpoints, reference counted so that
/// a change updates it in proportion to its own size: the policies and profiles its
/// endpoints use (by number of users), the IP sets those use (by number of held policies
/// and profiles), and (shards) each endpoint's [`Uses`]. Persistent maps: a new version
/// shares all but what changed with the previous one, and two versions diff in proportion
/// to their difference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Members {
    pub policies: SharedMap<PolicyId, Held>,
    pub profiles: SharedMap<String, Held>,
    pub sets: SharedMap<IpSetId, u32>,
    endpoints: SharedMap<WorkloadEndpointId, Arc<Uses>>,
}

/// The IP sets of a model object (sorted, without repeats); none when the model lacks it.
fn sets_of<'m>(sets: Option<impl Iterator<Item = &'m IpSetId>>) -> Arc<[IpSetId]> {
    let mut v: Vec<IpSetId> = sets.into_iter().flatten().cloned().collect();
    v.sort_unstable();
    v.dedup();
    v.into()
}

fn policy_sets(model: &DataplaneModel, id: &PolicyId) -> Arc<[IpSetId]> {
    sets_of(model.policies.get(id).map(|p| p.ip_set_ids()))
}

fn profile_sets(model: &DataplaneModel, name: &str) -> Arc<[IpSetId]> {
    sets_of(model.profiles.get(name).map(|p| p.ip_set_ids()))
}

/// One more holder of each of `sets`.
fn hold_sets(counts: &mut SharedMap<IpSetId, u32>, sets: &[IpSetId]) {
    for s in sets {
        *counts.entry(s.clone()).or_insert(0) += 1;
    }
}

/// One holder less of each of `sets`; a set nobody holds leaves.
fn release_sets(counts: &mut SharedMap<IpSetId, u32>, sets: &[IpSetId]) {
    for s in sets {
        if let Some(n) = counts.get_mut(s) {
            *n -= 1;
            if *n == 0 {
                counts.remove(s);
            }
        }
    }
}

/// One more user of held object `key` (a policy or a profile); new to the table, it
/// brings `model_sets()`.
fn hold<K: Ord + Clone>(
    held: &mut SharedMap<K, Held>,
    set_counts: &mut SharedMap<IpSetId, u32>,
    key: &K,
    model_sets: impl FnOnce() -> Arc<[IpSetId]>,
) {
    if let Some(h) = held.get_mut(key) {
        h.users += 1;
    } else {
        let sets = model_sets();
        hold_sets(set_counts, &sets);
        held.insert(key.clone(), Held { users: 1, sets });
    }
}

/// One user less of held object `key`; with none left it leaves with its sets.
fn release<K: Ord + Clone>(
    held: &mut SharedMap<K, Held>,
    set_counts: &mut SharedMap<IpSetId, u32>,
    key: &K,
) {
    let Some(h) = held.get_mut(key) else {
        return;
    };
    h.users -= 1;
    if h.users == 0
        && let Some(h) = held.remove(key)
    {
        release_sets(set_counts, &h.sets);
    }
}

/// Held object `key` changed in the model: its IP sets become `model_sets()`.
fn refresh<K: Ord + Clone>(
    held: &mut SharedMap<K, Held>,
    set_counts: &mut SharedMap<IpSetId, u32>,
    key: &K,
    model_sets: impl FnOnce() -> Arc<[IpSetId]>,
) {
    let Some(h) = held.get_mut(key) else {
        return;
    };
    let new = model_sets();
    if new != h.sets {
        let old = std::mem::replace(&mut h.sets, new.clone());
        hold_sets(set_counts, &new);
        release_sets(set_counts, &old);
    }
}

/// The held objects (policies or profiles) whose rules use one of `sets`, from the IP sets
/// recorded when each was last compiled (which the table's update refreshes for touched
/// objects first): no model lookups.
pub(crate) fn holders_using<'a, K: Ord + Clone>(
    held: &'a SharedMap<K, Held>,
    sets: &'a BTreeSet<&IpSetId>,
) -> impl Iterator<Item = &'a K> + 'a {
    held.iter()
        .filter(|(_, h)| h.sets.iter().any(|s| sets.contains(s)))
        .map(|(key, _)| key)
}

impl Members {
    /// One more endpoint uses `uses`; objects new to the table bring their model IP sets.
    fn add_uses(&mut self, model: &DataplaneModel, uses: &Uses) {
        for id in &uses.policies {
            hold(&mut self.policies, &mut self.sets, id, || {
                policy_sets(model, id)
            });
        }
        for name in &uses.profiles {
            hold(&mut self.profiles, &mut self.sets, name, || {
                profile_sets(model, name)
            });
        }
    }

    /// One endpoint less uses `uses`; objects nobody uses any more leave with their sets.
    fn remove_uses(&mut self, uses: &Uses) {
        for id in &uses.policies {
            release(&mut self.policies, &mut self.sets, id);
        }
        for name in &uses.profiles {
            release(&mut self.profiles, &mut self.sets, name);
        }
    }

    /// What the main table needs: the host endpoints' policies and profiles (few: counted
    /// afresh at every change that concerns them).
    fn of_main(model: &DataplaneModel) -> Members {
        let mut m = Members::default();
        for ep in model.host_endpoints.values() {
            let uses = Uses::of(
                &[
                    &ep.tiers,
                    &ep.forward_tiers,
                    &ep.untracked_tiers,
                    &ep.pre_dnat_tiers,
                ],
                &ep.profile_ids,
            );
            m.add_uses(model, &uses);
        }
        m
    }

    /// What a workload table needs: the policies and profiles of the endpoints `place`
    /// gives it uses for (shard `k`: its endpoints' [`Uses::shard_of`]; the global table:
    /// every endpoint's [`Uses::global_of`]), `None` when there are none (then it has no
    /// table).
    fn of_workloads(
        model: &DataplaneModel,
        place: impl Fn(&WorkloadEndpointId, &WorkloadEndpoint) -> Option<Uses>,
    ) -> Option<Members> {
        let mut m = Members::default();
        for (id, ep) in &model.workload_endpoints {
            if let Some(uses) = place(id, ep) {
                m.add_uses(model, &uses);
                m.endpoints.insert(id.clone(), Arc::new(uses));
            }
        }
        (!m.endpoints.is_empty()).then_some(m)
    }

    /// A workload table's holdings after `touched`: the touched endpoints' old uses out, the
    /// touched policies' and profiles' IP sets refreshed, the touched endpoints' new uses
    /// (`place`, as for [`Members::of_workloads`]) in. `None` when no endpoint is left.
    fn updated_workloads(
        &self,
        model: &DataplaneModel,
        touched: &Touched,
        place: impl Fn(&WorkloadEndpointId, &WorkloadEndpoint) -> Option<Uses>,
    ) -> Option<Members> {
        let mut m = self.clone();
        let mine = || touched.weps.iter();
        for id in mine() {
            if let Some(uses) = m.endpoints.remove(id) {
                m.remove_uses(&uses);
            }
        }
        for id in &touched.policies {
            refresh(&mut m.policies, &mut m.sets, id, || policy_sets(model, id));
        }
        for name in &touched.profiles {
            refresh(&mut m.profiles, &mut m.sets, name, || {
                profile_sets(model, name)
            });
        }
        for id in mine() {
            if let Some(uses) = model
                .workload_endpoints
                .get(id)
                .and_then(|ep| place(id, ep))
            {
                m.add_uses(model, &uses);
                m.endpoints.insert(id.clone(), Arc::new(uses));
            }
        }
        (!m.endpoints.is_empty()).then_some(m)
    }
}

/// [`Members::of_workloads`]'s `place` for shard `k`.
fn in_shard(
    cfg: &NftConfig,
    k: u16,
) -> impl Fn(&WorkloadEndpointId, &WorkloadEndpoint) -> Option<Uses> + '_ {
    move |id, ep| (shard_of(id, cfg.shards) == k).then(|| Uses::shard_of(ep))
}

/// [`Members::of_workloads`]'s `place` for the global table.
fn in_global(_: &WorkloadEndpointId, ep: &WorkloadEndpoint) -> Option<Uses> {
    Uses::global_of(ep)
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Table {
    ruleset: Ruleset,
    /// `None` for the one table of an unsharded layout (it holds everything).
    members: Option<Arc<Members>>,
}

/// The compiled policy dataplane: one table, or a main table and shard tables (see the
/// module docs). Build it with [`PolicyTables::compile`], update it with
/// [`PolicyTables::recompile`], apply the difference between two with
/// [`PolicyTables::plan`] (netlink) or [`PolicyTables::script`] (nft), or all of it with
/// [`PolicyTables::full_replace_script`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTables {
    config: NftConfig,
    /// Shared between successive versions: a change re-renders only the tables it concerns
    /// and the others are not copied.
    main: Arc<Table>,
    /// The global prefixes of the workloads' policy; `None` when no workload has one.
    global: Option<Arc<Table>>,
    shards: BTreeMap<u16, Arc<Table>>,
}

/// One table's part of a change ([`PolicyTables::plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePlan {
    /// The table (family inet).
    pub table: String,
    pub ops: Vec<TableOp>,
}

impl From<Ruleset> for PolicyTables {
    /// The layout of one table (`shards` = 0), e.g. a ruleset built by [`crate::compile`].
    fn from(ruleset: Ruleset) -> PolicyTables {
        let mut config = ruleset.config.clone();
        config.shards = 0;
        PolicyTables {
            config,
            main: Arc::new(Table {
                ruleset,
                members: None,
            }),
            global: None,
            shards: BTreeMap::new(),
        }
    }
}

impl PolicyTables {
    /// Compiles `model` into the layout `cfg.shards` asks for. Errors as [`crate::compile`].
    pub fn compile(model: &DataplaneModel, cfg: &NftConfig) -> Result<PolicyTables, NftError> {
        cfg.validate()?;
        if cfg.shards == 0 {
            let mut t = PolicyTables::from(crate::compile(model, cfg)?);
            t.config = cfg.clone();
            return Ok(t);
        }
        let shared = RefCell::new(Shared::default());
        let main_members = Arc::new(Members::of_main(model));
        let main = Arc::new(Table {
            ruleset: compile_scoped(model, cfg, &main_scope(cfg, &main_members, &shared))?,
            members: Some(main_members),
        });
        let global = match Members::of_workloads(model, in_global).map(Arc::new) {
            Some(members) => Some(Arc::new(Table {
                ruleset: compile_scoped(model, cfg, &global_scope(cfg, &members, &shared))?,
                members: Some(members),
            })),
            None => None,
        };
        let mut shards = BTreeMap::new();
        for k in shards_with_endpoints(model, cfg) {
            if let Some(members) = Members::of_workloads(model, in_shard(cfg, k)).map(Arc::new) {
                let ruleset = compile_scoped(model, cfg, &shard_scope(cfg, k, &members, &shared))?;
                shards.insert(
                    k,
                    Arc::new(Table {
                        ruleset,
                        members: Some(members),
                    }),
                );
            }
        }
        Ok(PolicyTables {
            config: cfg.clone(),
            main,
            global,
            shards,
        })
    }

    /// The tables for `model`, which is the model `self` was compiled from with `updates`
    /// applied. Equal to [`PolicyTables::compile`]; only the tables the updates concern are
    /// re-rendered, each only in the objects they name (`crate::recompile`).
    pub fn recompile(
        &self,
        model: &DataplaneModel,
        updates: &[ModelUpdate],
        cfg: &NftConfig,
    ) -> Result<PolicyTables, NftError> {
        if self.config != *cfg {
            return PolicyTables::compile(model, cfg);
        }
        let touched = Touched::of(updates);
        if cfg.shards == 0 {
            let ruleset =
                recompile_scoped(&self.main.ruleset, model, &touched, cfg, &Scope::whole(cfg))?;
            return Ok(PolicyTables {
                config: cfg.clone(),
                main: Arc::new(Table {
                    ruleset,
                    members: None,
                }),
                global: None,
                shards: BTreeMap::new(),
            });
        }
        let mut next = self.clone();
        let empty = Arc::new(Members::default());
        let shared = RefCell::new(Shared::default());

        // Main: host endpoints, workload interfaces (map entries, RPF), and the objects the
        // host endpoints use.
        let old_main = self.main.members.clone().unwrap_or_else(|| empty.clone());
        let main_members = if touched.heps
            || touched
                .policies
                .iter()
                .any(|p| old_main.policies.contains_key(p))
            || touched
                .profiles
                .iter()
                .any(|p| old_main.profiles.contains_key(p))
        {
            Arc::new(Members::of_main(model))
        } else {
            old_main.clone()
        };
        let main_touched = touched_for(&touched, &old_main, &main_members, None, cfg);
        if !main_touched.is_empty() {
            next.main = Arc::new(Table {
                ruleset: recompile_scoped(
                    &self.main.ruleset,
                    model,
                    &main_touched,
                    cfg,
                    &main_scope(cfg, &main_members, &shared),
                )?,
                members: Some(main_members),
            });
        }

        // Global: when an endpoint or an object it holds is touched.
        let old_global = self.global.as_ref().and_then(|t| t.members.clone());
        let holds = |m: &Members| {
            touched.policies.iter().any(|p| m.policies.contains_key(p))
                || touched.sets.iter().any(|s| m.sets.contains_key(s))
        };
        if !touched.weps.is_empty() || old_global.as_deref().is_some_and(holds) {
            let old = old_global.unwrap_or_else(|| empty.clone());
            next.global = match old.updated_workloads(model, &touched, in_global) {
                None => None,
                Some(members) => {
                    let members = if members == *old {
                        old.clone()
                    } else {
                        Arc::new(members)
                    };
                    let scope = global_scope(cfg, &members, &shared);
                    let ruleset = match &self.global {
                        Some(prev) => {
                            let t = touched_for(&touched, &old, &members, None, cfg);
                            recompile_scoped(&prev.ruleset, model, &t, cfg, &scope)?
                        }
                        None => compile_scoped(model, cfg, &scope)?,
                    };
                    Some(Arc::new(Table {
                        ruleset,
                        members: Some(members),
                    }))
                }
            };
        }

        // Shards: the ones of touched endpoints, and the ones holding a touched object.
        let mut affected: BTreeSet<u16> = touched
            .weps
            .iter()
            .map(|id| shard_of(id, cfg.shards))
            .collect();
        for (k, t) in &self.shards {
            let Some(m) = &t.members else { continue };
            if touched.policies.iter().any(|p| m.policies.contains_key(p))
                || touched.profiles.iter().any(|p| m.profiles.contains_key(p))
                || touched.sets.iter().any(|s| m.sets.contains_key(s))
            {
                affected.insert(*k);
            }
        }
        for k in affected {
            let prev = self.shards.get(&k);
            let old = prev
                .and_then(|t| t.members.clone())
                .unwrap_or_else(|| empty.clone());
            let Some(members) = old.updated_workloads(model, &touched, in_shard(cfg, k)) else {
                next.shards.remove(&k);
                continue;
            };
            let members = if members == *old {
                old.clone()
            } else {
                Arc::new(members)
            };
            let scope = shard_scope(cfg, k, &members, &shared);
            let ruleset = match prev {
                Some(prev) => {
                    let t = touched_for(&touched, &old, &members, Some(k), cfg);
                    recompile_scoped(&prev.ruleset, model, &t, cfg, &scope)?
                }
                None => compile_scoped(model, cfg, &scope)?,
            };
            next.shards.insert(
                k,
                Arc::new(Table {
                    ruleset,
                    members: Some(members),
                }),
            );
        }
        Ok(next)
    }

    /// The settings the tables were compiled with.
    pub fn config(&self) -> &NftConfig {
        &self.config
    }

    /// The main table (with `shards` = 0 the only one).
    pub fn main(&self) -> &Ruleset {
        &self.main.ruleset
    }

    /// Every table: the main one first, then the global one, then the shards in order.
    pub fn tables(&self) -> impl Iterator<Item = &Ruleset> {
        std::iter::once(&self.main.ruleset)
            .chain(self.global.iter().map(|t| &t.ruleset))
            .chain(self.shards.values().map(|t| &t.ruleset))
    }

    /// The global table, when some workload has a global prefix.
    pub fn global(&self) -> Option<&Ruleset> {
        self.global.as_ref().map(|t| &t.ruleset)
    }

    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&Ruleset> {
        self.tables().find(|r| r.table() == name)
    }

    /// The table holding workload endpoint `id`'s chains.
    pub fn workload_table(&self, id: &WorkloadEndpointId) -> &Ruleset {
        if self.config.shards == 0 {
            return &self.main.ruleset;
        }
        self.shards
            .get(&shard_of(id, self.config.shards))
            .map_or(&self.main.ruleset, |t| &t.ruleset)
    }

    /// Totals over all tables.
    pub fn counts(&self) -> RulesetCounts {
        let mut c = RulesetCounts::default();
        for r in self.tables() {
            let t = r.counts();
            c.chains += t.chains;
            c.rules += t.rules;
            c.sets += t.sets;
            c.maps += t.maps;
        }
        c
    }

    /// Each table's shape, by table name: what listing them reads back once applied.
    pub fn shapes(&self) -> BTreeMap<String, TableShape> {
        self.tables()
            .map(|r| (r.table().to_string(), r.shape()))
            .collect()
    }

    /// Every table as one nft script block after another.
    pub fn render(&self) -> String {
        self.tables().map(Ruleset::render).collect()
    }

    /// The nft transactions that replace whatever the kernel holds of these tables with
    /// them, to run in order: one for the global table and one per shard table (`add table`,
    /// `delete table`, the table), then the main table, which also deletes every shard table
    /// (up to [`MAX_SHARDS`]) and the global table of this main table that are not part of
    /// them, so that no stale table keeps dropping traffic. With one table, a single transaction.
    ///
    /// Each table is swapped atomically, so none is ever empty. Not one transaction for all:
    /// the kernel's cost of a batch grows with the square of its size (every rule binding an
    /// anonymous set scans the batch's whole transaction list, `__nft_set_trans_bind`), so
    /// 10k policies over 13 tables take ~40 s as one batch and ~9 s as one per table. Shards
    /// go first: until the main table is swapped, a new workload interface is still unknown
    /// there and dropped (fail closed), never known without its shard's chains. The global
    /// table goes before the shards. Between the swaps, old and new tables meet: a shard
    /// chain that still holds the whole tier list ignores the global table (at worst the
    /// prefix is evaluated twice); one that starts after a global prefix goes on only if the
    /// group chain it was compiled for ran at this hook (the `GLOBAL_GROUP` mark) and drops
    /// otherwise, so a prefix that changed or went away is never skipped unenforced, only
    /// fail closed until the endpoint's shard is swapped too. The main table also deletes a
    /// global table that is no longer needed.
    pub fn full_replace_scripts(&self) -> Vec<String> {
        self.full_replace_scripts_over(None)
    }

    /// [`PolicyTables::full_replace_scripts`] when the kernel's `inet` tables are known
    /// (`existing`, e.g. from `nft list tables` just before): a table that does not exist
    /// yet is created by its definition alone, without the `add table` / `delete table` that
    /// make a replace atomic, and only stale tables that exist are deleted. On a node's first
    /// start that is most of the cost of a full replace beyond loading the rules (at 1k
    /// policies ~10 ms per table and ~60 ms for the 65 stale names). With `None`, the
    /// scripts assume every table may exist.
    pub fn full_replace_scripts_over(&self, existing: Option<&BTreeSet<String>>) -> Vec<String> {
        let exists = |name: &str| existing.is_none_or(|e| e.contains(name));
        let script = |r: &Ruleset| {
            if exists(r.table()) {
                r.full_replace_script()
            } else {
                r.render()
            }
        };
        let mut out: Vec<String> = self
            .global
            .iter()
            .chain(self.shards.values())
            .map(|t| script(&t.ruleset))
            .collect();
        let mut main = script(&self.main.ruleset);
        let stale = (0..MAX_SHARDS)
            .filter(|k| !self.shards.contains_key(k))
            .map(|k| shard_table(&self.config.table, k))
            .chain(
                self.global
                    .is_none()
                    .then(|| global_table(&self.config.table)),
            )
            // A table name too long for a suffix cannot have had a sharded layout.
            .filter(|name| name.len() <= crate::MAX_NAME_LEN && exists(name));
        for name in stale {
            let _ = writeln!(main, "add table inet {name}\ndelete table inet {name}");
        }
        out.push(main);
        out
    }

    /// The change from `self` to `target` as netlink table operations, per table, in one
    /// batch. A table created or removed (the first or last endpoint of a shard) has no plan
    /// ([`PlanError::Unsupported`]); [`PolicyTables::script`] covers it.
    pub fn plan(&self, target: &PolicyTables) -> Result<Vec<TablePlan>, PlanError> {
        let mut out = Vec::new();
        let names = |t: &PolicyTables| -> Vec<String> {
            t.tables().map(|r| r.table().to_string()).collect()
        };
        if names(self) != names(target) {
            return Err(PlanError::Unsupported {
                what: "a shard table".into(),
            });
        }
        for (old, new) in self.tables().zip(target.tables()) {
            let ops = diff_plan(old, new)?;
            if !ops.is_empty() {
                out.push(TablePlan {
                    table: new.table().to_string(),
                    ops,
                });
            }
        }
        Ok(out)
    }

    /// The change from `self` to `target` as one nft script (one transaction): the
    /// [`crate::diff`] of each table both have, new tables whole, removed ones deleted.
    pub fn script(&self, target: &PolicyTables) -> String {
        let mut out = String::new();
        for old in self.tables() {
            if target.table(old.table()).is_none() {
                let _ = writeln!(out, "delete table inet {}", old.table());
            }
        }
        for new in target.tables() {
            match self.table(new.table()) {
                Some(old) => out.push_str(&diff(old, new)),
                None => {
                    let _ = writeln!(out, "add table inet {}", new.table());
                    out.push_str(&new.render());
                }
            }
        }
        out
    }
}

fn main_scope<'a>(cfg: &NftConfig, members: &'a Members, shared: &'a RefCell<Shared>) -> Scope<'a> {
    Scope {
        role: TableRole::Main,
        table: cfg.table.clone(),
        members: Some(members),
        shared: Some(shared),
    }
}

fn global_scope<'a>(
    cfg: &NftConfig,
    members: &'a Members,
    shared: &'a RefCell<Shared>,
) -> Scope<'a> {
    Scope {
        role: TableRole::Global,
        table: global_table(&cfg.table),
        members: Some(members),
        shared: Some(shared),
    }
}

fn shard_scope<'a>(
    cfg: &NftConfig,
    k: u16,
    members: &'a Members,
    shared: &'a RefCell<Shared>,
) -> Scope<'a> {
    Scope {
        role: TableRole::Shard(k),
        table: shard_table(&cfg.table, k),
        members: Some(members),
        shared: Some(shared),
    }
}

fn shards_with_endpoints(model: &DataplaneModel, cfg: &NftConfig) -> BTreeSet<u16> {
    model
        .workload_endpoints
        .keys()
        .map(|id| shard_of(id, cfg.shards))
        .collect()
}

/// What one table must re-render: the touched objects it had or has, plus every object that
/// joined or left it. `shard`: only that shard's endpoints; `None` (main): all of them.
fn touched_for(
    all: &Touched,
    old: &Members,
    new: &Members,
    shard: Option<u16>,
    cfg: &NftConfig,
) -> Touched {
    /// The touched keys either version holds, and the keys only one of them holds (found by
    /// diffing the two versions, which share all but what changed).
    fn pick<T: Ord + Clone, V: Clone + PartialEq>(
        touched: &BTreeSet<T>,
        old: &SharedMap<T, V>,
        new: &SharedMap<T, V>,
    ) -> BTreeSet<T> {
        let mut out: BTreeSet<T> = touched
            .iter()
            .filter(|x| old.contains_key(*x) || new.contains_key(*x))
            .cloned()
            .collect();
        out.extend(old.diff(new).filter_map(|d| match d {
            DiffItem::Add(k, _) | DiffItem::Remove(k, _) => Some(k.clone()),
            DiffItem::Update { .. } => None,
        }));
        out
    }
    Touched {
        sets: pick(&all.sets, &old.sets, &new.sets),
        policies: pick(&all.policies, &old.policies, &new.policies),
        profiles: pick(&all.profiles, &old.profiles, &new.profiles),
        weps: all
            .weps
            .iter()
            .filter(|id| shard.is_none_or(|k| shard_of(id, cfg.shards) == k))
            .cloned()
            .collect(),
        heps: all.heps && shard.is_none(),
    }
}

impl Touched {
    fn is_empty(&self) -> bool {
        self.sets.is_empty()
            && self.policies.is_empty()
            && self.profiles.is_empty()
            && self.weps.is_empty()
            && !self.heps
    }
}
