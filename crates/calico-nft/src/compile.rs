//! DataplaneModel → [`Ruleset`]: the layout of table `inet calico`.
//!
//! Base chains (all `policy accept`: the table only ever drops what Calico policy drops):
//! * `raw-prerouting` / `raw-output` (priority raw): clear Calico's mark bits, strict RPF for
//!   workloads (`rpf-skip` exempts allowSpoofedSourcePrefixes), untracked (doNotTrack)
//!   host-endpoint policy, accept when it allowed (Felix raw PREROUTING/OUTPUT).
//! * `prednat` (prerouting, priority dstnat − 10): preDNAT host-endpoint policy (Felix mangle
//!   PREROUTING), established flows and workload interfaces skip it.
//! * `input`, `forward`, `output` (priority filter): `ct state established,related accept`,
//!   `ct state invalid drop`, then the dispatch to endpoint chains. Input: workload → host
//!   goes through `wl-to-host` (IPv6 NDP accepted, the workload's egress policy, then
//!   DefaultEndpointToHostAction); other interfaces through host-endpoint ingress policy.
//!   Forward: host-endpoint forward ingress, workload egress, workload ingress, host-endpoint
//!   forward egress, so traffic between two local workloads passes both policies. Output:
//!   host → workload is not policed; other interfaces get host-endpoint egress policy.
//!
//! Dispatch is by verdict maps from interface name to `goto <endpoint chain>`, one lookup per
//! packet (Felix's iptables renders a prefix tree of interface matches instead), inside small
//! dispatch chains so that an endpoint chain's `return` comes back to the base chain. A
//! workload interface with no endpoint (matching a configured prefix, `cali*`) is dropped.
//!
//! Endpoint chains (`felix/rules/endpoints.go` `endpointIptablesChain`): clear accept and pass
//! marks; host endpoints: failsafe ports; workloads (from-workload direction): drop VXLAN and
//! IPIP; per tier: clear pass, `jump` each policy chain while neither the pass nor the accept
//! mark is set (one rule per policy; Felix has a second, "return if accepted", after each
//! jump; the raw stage keeps it, since an allow must untrack at once); end-of-tier drop when
//! the tier's default action is Deny and nothing allowed (not in the raw and pre-DNAT
//! stages); then profiles and the final drop while nothing allowed (normal stage only). The
//! chain returns with the accept mark when something allowed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use calico_dataplane_model::{
    DataplaneModel, HostEndpoint, IpSet, IpSetId, IpSetKind, IpSetMember, PolicyKind,
    TierDefaultAction, TierInfo, WorkloadEndpoint, WorkloadEndpointId,
};
use ipnet::IpNet;

use crate::marks::{
    ACCEPT, ALL, GLOBAL_ACCEPT, GLOBAL_GROUP, PASS, clear_mark, group_mark, mark_is_clear,
    mark_is_set, set_mark,
};
use crate::names::{self, SetType};
use crate::rules::{RuleEnv, net_text, normalize_nets, proto_name, render_rules};
use crate::ruleset::{NftChain, NftMap, NftSet, Ruleset};
use crate::{EndpointToHostAction, NftConfig, NftError};

/// Failsafe sets (`inet_proto . inet_service`).
pub const FAILSAFE_IN: &str = "failsafe-in";
pub const FAILSAFE_OUT: &str = "failsafe-out";

/// Chain-name suffix of a host endpoint with `interfaceName: "*"`: longer than any Linux
/// interface name (15), so it cannot clash with a real one.
const ALL_INTERFACES: &str = "any-interface-wildcard";

/// Interface-keyed verdict maps and the dispatch chains that look them up.
struct Dispatch {
    map: &'static str,
    chain: &'static str,
    /// `iifname` or `oifname`.
    key: &'static str,
}

const FROM_WL: Dispatch = Dispatch {
    map: "from-wl",
    chain: "from-wl-dispatch",
    key: "iifname",
};
const TO_WL: Dispatch = Dispatch {
    map: "to-wl",
    chain: "to-wl-dispatch",
    key: "oifname",
};
const FROM_HEP: Dispatch = Dispatch {
    map: "from-hep",
    chain: "from-hep-dispatch",
    key: "iifname",
};
const TO_HEP: Dispatch = Dispatch {
    map: "to-hep",
    chain: "to-hep-dispatch",
    key: "oifname",
};
const FROM_HEP_FWD: Dispatch = Dispatch {
    map: "from-hep-fwd",
    chain: "from-hep-fwd-dispatch",
    key: "iifname",
};
const TO_HEP_FWD: Dispatch = Dispatch {
    map: "to-hep-fwd",
    chain: "to-hep-fwd-dispatch",
    key: "oifname",
};
const FROM_HEP_RAW: Dispatch = Dispatch {
    map: "from-hep-raw",
    chain: "from-hep-raw-dispatch",
    key: "iifname",
};
const TO_HEP_RAW: Dispatch = Dispatch {
    map: "to-hep-raw",
    chain: "to-hep-raw-dispatch",
    key: "oifname",
};
const FROM_HEP_PREDNAT: Dispatch = Dispatch {
    map: "from-hep-prednat",
    chain: "from-hep-prednat-dispatch",
    key: "iifname",
};

const ALL_DISPATCH: [&Dispatch; 9] = [
    &FROM_WL,
    &TO_WL,
    &FROM_HEP,
    &TO_HEP,
    &FROM_HEP_FWD,
    &TO_HEP_FWD,
    &FROM_HEP_RAW,
    &TO_HEP_RAW,
    &FROM_HEP_PREDNAT,
];

/// The stage an endpoint chain belongs to (Felix `endpointChainType` plus the pre-DNAT one).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Filter: end-of-tier drop, profiles, final drop.
    Normal,
    /// Filter, forwarded traffic through a host endpoint (applyOnForward): end-of-tier drop.
    Forward,
    /// Prerouting before DNAT: no end-of-tier drop.
    PreDnat,
    /// Raw: Allow means notrack; no end-of-tier drop.
    Untracked,
}

/// Which part of a workload's policy an endpoint chain evaluates.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Everything from the given tiers on: tiers, profiles, the final drop.
    Rest,
    /// The global prefix of a sharded layout ([`global_prefix`]): its tiers only, ending by
    /// turning an allow into the [`GLOBAL_ACCEPT`] mark for the shard table.
    GlobalPrefix,
}

struct Endpoint<'a> {
    owner: String,
    stage: Stage,
    ingress: bool,
    workload: bool,
    part: Part,
    /// The `GLOBAL_GROUP` mark of the global prefix's group: what a group chain sets, what
    /// a shard chain that starts after that prefix expects (`None`: no prefix).
    group: Option<u32>,
    tiers: &'a [TierInfo],
    profiles: &'a [String],
    /// The compiler settings (failsafe entries with nets).
    config: &'a NftConfig,
}

/// Compiles `model` into the table described in the module docs. Errors name the model
/// object that is wrong: a rule referencing an IP set the model lacks, an endpoint listing a
/// policy that is not active, two endpoints on one interface, an invalid interface name.
/// Profiles an endpoint names but the model lacks are skipped (Calico allows them: such an
/// endpoint falls through to "no profile matched" and drops).
pub fn compile(model: &DataplaneModel, cfg: &NftConfig) -> Result<Ruleset, NftError> {
    compile_scoped(model, cfg, &Scope::whole(cfg))
}

/// What one table of a sharded layout holds ([`crate::PolicyTables`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableRole {
    /// Everything in one table (the layout described in the module docs).
    Whole,
    /// Host endpoints, the raw and pre-DNAT stages, the fail-closed drop of unknown workload
    /// interfaces and `DefaultEndpointToHostAction`; workload interfaces are map entries
    /// that `return` (their policy is in a shard table).
    Main,
    /// Every workload endpoint's global prefix ([`global_prefix`]) as shared group chains,
    /// with the global policies and IP sets they use, behind base chains just before the
    /// shard tables' (see `global_chains`).
    Global,
    /// The workload endpoints of one shard with the policies, profiles and IP sets they
    /// use (after the global prefix), behind their own base chains (egress at
    /// `prerouting`, ingress at `forward`).
    Shard(u16),
}

impl TableRole {
    /// Whether the table holds workload policy only (no host endpoints, no fail-closed
    /// drop): a shard or the global table.
    pub(crate) fn workload_only(self) -> bool {
        matches!(self, TableRole::Shard(_) | TableRole::Global)
    }
}

/// How many of `tiers` (from the first) the global table of a sharded layout evaluates for
/// one direction of a workload: the leading tiers whose policies for that direction are all
/// GlobalNetworkPolicies (tiers without any for it included). The shard table evaluates the
/// rest. Split at a tier boundary, the hand-over is one bit: the prefix either dropped the
/// packet, allowed it ([`GLOBAL_ACCEPT`]: nothing after it applies), or passed it on to the
/// next tier, where the shard's chain starts as the whole chain would continue.
pub(crate) fn global_prefix(tiers: &[TierInfo], ingress: bool) -> usize {
    tiers
        .iter()
        .take_while(|t| {
            direction(t, ingress)
                .iter()
                .all(|p| p.kind == PolicyKind::GlobalNetworkPolicy)
        })
        .count()
}

/// Whether `tiers` has a policy for the direction.
fn has_policies(tiers: &[TierInfo], ingress: bool) -> bool {
    tiers.iter().any(|t| !direction(t, ingress).is_empty())
}

/// The part of a model one table is compiled from: its role, its name, and (for the tables
/// of a sharded layout) the policies, profiles and IP sets it holds.
pub(crate) struct Scope<'a> {
    pub role: TableRole,
    pub table: String,
    pub members: Option<&'a crate::tables::Members>,
    /// Objects already rendered for another table of the same layout in this pass.
    pub shared: Option<&'a RefCell<Shared>>,
}

/// Nft sets and policy / profile chains rendered once per pass and shared (`Arc`) by every
/// table that holds them: a global policy or an IP set used in many shards is formatted once.
#[derive(Default)]
pub(crate) struct Shared {
    sets: HashMap<IpSetId, (SetType, Arc<NftSet>, Arc<NftSet>)>,
    /// A policy's or profile's two chains, by the inbound one's name (`pi-…`, `pri-…`).
    chains: HashMap<String, (Arc<NftChain>, Arc<NftChain>)>,
}

impl Scope<'_> {
    pub(crate) fn whole(cfg: &NftConfig) -> Scope<'static> {
        Scope {
            role: TableRole::Whole,
            table: cfg.table.clone(),
            members: None,
            shared: None,
        }
    }

    pub(crate) fn has_set(&self, id: &IpSetId) -> bool {
        self.members.is_none_or(|m| m.sets.contains_key(id))
    }

    pub(crate) fn has_policy(&self, id: &calico_dataplane_model::PolicyId) -> bool {
        self.members.is_none_or(|m| m.policies.contains_key(id))
    }

    pub(crate) fn has_profile(&self, name: &str) -> bool {
        self.members.is_none_or(|m| m.profiles.contains_key(name))
    }

    pub(crate) fn has_workload(&self, id: &WorkloadEndpointId, cfg: &NftConfig) -> bool {
        match self.role {
            TableRole::Whole | TableRole::Main | TableRole::Global => true,
            TableRole::Shard(k) => crate::tables::shard_of(id, cfg.shards) == k,
        }
    }
}

/// [`compile`] of the part of `model` that `scope` names, as the table of its role.
pub(crate) fn compile_scoped(
    model: &DataplaneModel,
    cfg: &NftConfig,
    scope: &Scope<'_>,
) -> Result<Ruleset, NftError> {
    cfg.validate()?;
    let mut rs = Ruleset::new(cfg);
    rs.table = scope.table.clone();
    rs.role = scope.role;
    let workload_only = scope.role.workload_only();

    for (id, set) in &model.ip_sets {
        if scope.has_set(id) {
            put_ip_set(&mut rs, id, set, scope.shared)?;
        }
    }
    if !workload_only {
        for (name, ports) in [
            (FAILSAFE_IN, &cfg.failsafe_inbound),
            (FAILSAFE_OUT, &cfg.failsafe_outbound),
        ] {
            rs.sets.insert(
                name.to_string(),
                Arc::new(NftSet {
                    spec: "type inet_proto . inet_service;".into(),
                    elements: ports
                        .iter()
                        .map(|(p, port)| format!("{} . {port}", proto_name(*p)))
                        .collect(),
                }),
            );
        }
    }
    for (id, p) in &model.policies {
        if scope.has_policy(id) {
            put_policy(&mut rs, id, p, scope.shared)?;
        }
    }
    for (name, p) in &model.profiles {
        if scope.has_profile(name) {
            put_profile(&mut rs, name, p, scope.shared)?;
        }
    }

    // Maps start empty; endpoints fill them.
    for d in ALL_DISPATCH {
        if workload_only && !d.map.ends_with("-wl") {
            continue;
        }
        rs.maps.insert(
            d.map.to_string(),
            Arc::new(NftMap {
                spec: "type ifname : verdict;".into(),
                elements: BTreeMap::new(),
            }),
        );
    }
    for (id, ep) in &model.workload_endpoints {
        if scope.has_workload(id, cfg) {
            add_workload(&mut rs, model, id, ep)?;
        }
    }

    match scope.role {
        TableRole::Shard(_) => shard_chains(&mut rs)?,
        TableRole::Global => global_chains(&mut rs)?,
        TableRole::Whole | TableRole::Main => {
            put_host_endpoints(&mut rs, model)?;
            add_chain(&mut rs, RPF_SKIP.to_string(), rpf_skip_rules(model))?;
            base_chains(&mut rs, cfg)?;
        }
    }
    Ok(rs)
}

/// [`Ruleset::set_families`] bit: the IP set has IPv4 members.
pub(crate) const FAM4: u8 = 1;
/// [`Ruleset::set_families`] bit: the IP set has IPv6 members.
pub(crate) const FAM6: u8 = 2;

/// Creates or replaces IP set `id`'s nft sets (one per family; IPv4 only without IPv6
/// support). Its type must not change while rules reference it (the caller recompiles those
/// rules then). Returns whether the families it has members of changed: then the rules
/// referencing it may render differently (a rule that needs a member of a family the set
/// lacks cannot match and is not rendered for it).
pub(crate) fn put_ip_set(
    rs: &mut Ruleset,
    id: &IpSetId,
    set: &IpSet,
    shared: Option<&RefCell<Shared>>,
) -> Result<bool, NftError> {
    let ty = set_type_of(id, set)?;
    if let Some(old) = rs.set_types.insert(id.clone(), ty)
        && old != ty
    {
        for fam in [4u8, 6] {
            rs.sets.remove(&names::ip_set(id, old, fam));
        }
    }
    let cached = shared.and_then(|s| s.borrow().sets.get(id).cloned());
    let (v4, v6) = match cached {
        Some((t, v4, v6)) if t == ty => (v4, v6),
        _ => {
            let make = |fam: u8| {
                Arc::new(NftSet {
                    spec: ty.spec(fam),
                    elements: set_elements(set, ty, fam),
                })
            };
            let (v4, v6) = (make(4), make(6));
            if let Some(s) = shared {
                s.borrow_mut()
                    .sets
                    .insert(id.clone(), (ty, v4.clone(), v6.clone()));
            }
            (v4, v6)
        }
    };
    let families = if v4.elements.is_empty() { 0 } else { FAM4 }
        | if v6.elements.is_empty() { 0 } else { FAM6 };
    rs.sets.insert(names::ip_set(id, ty, 4), v4);
    // Without IPv6 support no rule references the IPv6 set (see `NftConfig::ipv6`).
    if rs.config.ipv6 {
        rs.sets.insert(names::ip_set(id, ty, 6), v6);
    }
    let old = rs.set_families.insert(id.clone(), families);
    Ok(old.is_some_and(|f| f != families))
}

/// Removes IP set `id`'s nft sets.
pub(crate) fn remove_ip_set(rs: &mut Ruleset, id: &IpSetId) {
    rs.set_families.remove(id);
    if let Some(ty) = rs.set_types.remove(id) {
        for fam in [4u8, 6] {
            rs.sets.remove(&names::ip_set(id, ty, fam));
        }
    }
}

/// Creates or replaces policy `id`'s chains `pi-…` and `po-…`.
pub(crate) fn put_policy(
    rs: &mut Ruleset,
    id: &calico_dataplane_model::PolicyId,
    p: &calico_dataplane_model::Policy,
    shared: Option<&RefCell<Shared>>,
) -> Result<(), NftError> {
    let names = (
        names::policy_chain(true, id),
        names::policy_chain(false, id),
    );
    put_rule_chains(
        rs,
        &format!("policy {id}"),
        names,
        (&p.inbound, &p.outbound),
        shared,
    )
}

/// Creates or replaces profile `name`'s chains `pri-…` and `pro-…`.
pub(crate) fn put_profile(
    rs: &mut Ruleset,
    name: &str,
    p: &calico_dataplane_model::Profile,
    shared: Option<&RefCell<Shared>>,
) -> Result<(), NftError> {
    let names = (
        names::profile_chain(true, name),
        names::profile_chain(false, name),
    );
    put_rule_chains(
        rs,
        &format!("profile {name}"),
        names,
        (&p.inbound, &p.outbound),
        shared,
    )
}

/// Renders an object's inbound and outbound rules into its two chains `names`, or takes them
/// from `shared` when another table of this pass rendered them already.
fn put_rule_chains(
    rs: &mut Ruleset,
    owner: &str,
    names: (String, String),
    (inbound, outbound): (
        &[calico_dataplane_model::Rule],
        &[calico_dataplane_model::Rule],
    ),
    shared: Option<&RefCell<Shared>>,
) -> Result<(), NftError> {
    let cached = shared.and_then(|s| s.borrow().chains.get(&names.0).cloned());
    let (i, o) = match cached {
        Some(pair) => pair,
        None => {
            let env = RuleEnv {
                set_types: &rs.set_types,
                set_families: &rs.set_families,
                log_prefix: &rs.config.log_prefix,
                ipv6: rs.config.ipv6,
            };
            let chain = |rules, dir: &str| -> Result<Arc<NftChain>, NftError> {
                let rules = render_rules(rules, &env, &format!("{owner} {dir}"))?;
                Ok(Arc::new(NftChain { base: None, rules }))
            };
            let pair = (chain(inbound, "inbound")?, chain(outbound, "outbound")?);
            if let Some(s) = shared {
                s.borrow_mut().chains.insert(names.0.clone(), pair.clone());
            }
            pair
        }
    };
    rs.chains.insert(names.0, i);
    rs.chains.insert(names.1, o);
    Ok(())
}

/// Adds workload endpoint `id`: chains `fw-`/`tw-<iface>` and the dispatch map entries. In
/// the main table of a sharded layout only the map entries, which `return` (the endpoint's
/// policy is its shard's business; the entry keeps its interface from the fail-closed drop).
pub(crate) fn add_workload(
    rs: &mut Ruleset,
    model: &DataplaneModel,
    id: &WorkloadEndpointId,
    ep: &WorkloadEndpoint,
) -> Result<(), NftError> {
    let owner = format!("workload endpoint {id}");
    let iface = &ep.interface_name;
    check_iface(iface, &owner)?;
    if rs.role == TableRole::Main {
        for d in [&FROM_WL, &TO_WL] {
            add_entry(rs, d, iface, "return", &owner)?;
        }
        rs.wep_ifaces.insert(id.clone(), iface.clone());
        return Ok(());
    }
    if rs.role == TableRole::Global {
        return add_workload_groups(rs, model, id, ep, owner);
    }
    let mut chains = Vec::with_capacity(2);
    for (ingress, prefix, d) in [(false, "fw-", &FROM_WL), (true, "tw-", &TO_WL)] {
        let chain = names::endpoint_chain(prefix, iface);
        // In a shard, the tiers after the global prefix (the global table has that), and
        // the group whose verdict the chain trusts.
        let (skip, group) = match rs.role {
            TableRole::Shard(_) => {
                let n = global_prefix(&ep.tiers, ingress);
                let group = has_policies(&ep.tiers[..n], ingress).then(|| {
                    let (_, id) = names::group_chain(ingress, &group_key(&ep.tiers[..n], ingress));
                    group_mark(id)
                });
                (n, group)
            }
            _ => (0, None),
        };
        let rules = endpoint_rules(
            model,
            &Endpoint {
                owner: owner.clone(),
                stage: Stage::Normal,
                ingress,
                workload: true,
                part: Part::Rest,
                group,
                tiers: &ep.tiers[skip..],
                profiles: &ep.profile_ids,
                config: &rs.config,
            },
        )?;
        chains.push((d, chain, rules));
    }
    // Map entries first: a second endpoint on the interface is reported as such.
    for (d, chain, _) in &chains {
        add_entry(rs, d, iface, &format!("goto {chain}"), &owner)?;
    }
    for (_, chain, rules) in chains {
        add_chain(rs, chain, rules)?;
    }
    rs.wep_ifaces.insert(id.clone(), iface.clone());
    Ok(())
}

/// The global table's part of workload endpoint `id`: for each direction with a global
/// prefix ([`global_prefix`]), a dispatch entry to the group chain of that prefix, which
/// every endpoint with the same prefix shares (`gfw-` / `gtw-` and a hash of the prefix, as
/// Felix shares policy-group chains). Endpoints are mostly alike in their global policies
/// (these select by broad labels), so a new pod usually adds map entries only.
fn add_workload_groups(
    rs: &mut Ruleset,
    model: &DataplaneModel,
    id: &WorkloadEndpointId,
    ep: &WorkloadEndpoint,
    owner: String,
) -> Result<(), NftError> {
    let iface = &ep.interface_name;
    let mut groups: [Option<String>; 2] = [None, None];
    for (slot, (ingress, d)) in [(false, &FROM_WL), (true, &TO_WL)].into_iter().enumerate() {
        let tiers = &ep.tiers[..global_prefix(&ep.tiers, ingress)];
        if !has_policies(tiers, ingress) {
            continue;
        }
        // Checked for every endpoint, not only the one whose group is new: the result must
        // not depend on the order endpoints arrive in.
        for t in tiers {
            for p in direction(t, ingress) {
                if !model.policies.contains_key(p) {
                    return Err(NftError::MissingPolicy {
                        owner,
                        id: p.to_string(),
                    });
                }
            }
        }
        let (name, id) = names::group_chain(ingress, &group_key(tiers, ingress));
        add_entry(rs, d, iface, &format!("goto {name}"), &owner)?;
        let users = rs.group_users.get(&name).copied().unwrap_or(0);
        if users == 0 {
            let rules = endpoint_rules(
                model,
                &Endpoint {
                    owner: owner.clone(),
                    stage: Stage::Normal,
                    ingress,
                    workload: true,
                    part: Part::GlobalPrefix,
                    group: Some(group_mark(id)),
                    tiers,
                    profiles: &[],
                    config: &rs.config,
                },
            )?;
            put_chain(rs, name.clone(), rules);
        }
        rs.group_users.insert(name.clone(), users + 1);
        groups[slot] = Some(name);
    }
    if groups.iter().any(Option::is_some) {
        rs.wep_ifaces.insert(id.clone(), iface.clone());
        rs.wep_groups.insert(id.clone(), Arc::new(groups));
    }
    Ok(())
}

/// What identifies a group chain: the prefix's tiers (name, default action) and their
/// policies for one direction, in order.
fn group_key(tiers: &[TierInfo], ingress: bool) -> String {
    let mut key = String::new();
    for t in tiers {
        let policies = direction(t, ingress);
        if policies.is_empty() {
            continue;
        }
        let action = match t.default_action {
            TierDefaultAction::Deny => "deny",
            TierDefaultAction::Pass => "pass",
        };
        key.push_str(&format!("{}:{action}:", t.name));
        for p in policies {
            key.push_str(&p.to_string());
            key.push(',');
        }
        key.push(';');
    }
    key
}

/// Removes workload endpoint `id`'s chains and map entries (no-op when absent); in the
/// global table, its uses of group chains (a chain nobody uses leaves).
pub(crate) fn remove_workload(rs: &mut Ruleset, id: &WorkloadEndpointId) {
    if let Some(groups) = rs.wep_groups.remove(id) {
        for name in groups.iter().flatten() {
            match rs.group_users.get(name).copied() {
                Some(n) if n > 1 => {
                    rs.group_users.insert(name.clone(), n - 1);
                }
                _ => {
                    rs.group_users.remove(name);
                    rs.chains.remove(name);
                }
            }
        }
    }
    let Some(iface) = rs.wep_ifaces.remove(id) else {
        return;
    };
    let key = format!("\"{iface}\"");
    for (prefix, d) in [("fw-", &FROM_WL), ("tw-", &TO_WL)] {
        rs.chains.remove(&names::endpoint_chain(prefix, &iface));
        if let Some(m) = rs.maps.get_mut(d.map) {
            Arc::make_mut(m).elements.remove(&key);
        }
    }
}

/// (Re)builds everything that depends on host endpoints: their chains, their dispatch map
/// entries and the dispatch chains (whose fallback is the wildcard `*` endpoint). Host
/// endpoints are few, so this is cheap enough to redo whenever one changes.
pub(crate) fn put_host_endpoints(rs: &mut Ruleset, model: &DataplaneModel) -> Result<(), NftError> {
    for chain in std::mem::take(&mut rs.hep_chains) {
        rs.chains.remove(&chain);
    }
    for d in ALL_DISPATCH {
        if d.map.ends_with("-wl") {
            continue;
        }
        if let Some(m) = rs.maps.get_mut(d.map)
            && !m.elements.is_empty()
        {
            Arc::make_mut(m).elements.clear();
        }
    }
    let mut wildcard: BTreeMap<&'static str, String> = BTreeMap::new();
    // One host endpoint governs an interface: of several matching it (by name, or, without a
    // name, by one of their expected IPs being on it), the alphabetically first id wins and
    // the others stay inactive until it goes; likewise for all-interfaces ones (Felix's
    // `resolveHostEndpoints`, `felix/dataplane/linux/endpoint_mgr.go`). `host_endpoints` is
    // sorted by id, so the first to claim an interface is the winner.
    let mut governs: BTreeMap<String, &str> = BTreeMap::new();
    let config = rs.config.clone();
    for (name, ep) in &model.host_endpoints {
        match ep.interface_name.as_str() {
            "" => {
                let Some(ifaces) = &config.host_interfaces else {
                    continue;
                };
                let wanted: Vec<&std::net::IpAddr> = ep
                    .expected_ipv4_addrs
                    .iter()
                    .chain(&ep.expected_ipv6_addrs)
                    .collect();
                for (iface, addrs) in ifaces {
                    let workload = config
                        .iface_prefixes
                        .iter()
                        .any(|p| iface.starts_with(p.as_str()));
                    if !workload && wanted.iter().any(|a| addrs.contains(a)) {
                        governs.entry(iface.clone()).or_insert(name);
                    }
                }
            }
            iface => {
                governs.entry(iface.to_string()).or_insert(name);
            }
        }
    }
    for (iface, name) in &governs {
        if let Some(ep) = model.host_endpoints.get(*name) {
            add_host_endpoint(rs, model, name, ep, iface, &mut wildcard)?;
        }
    }
    for d in ALL_DISPATCH {
        let mut rules = vec![format!("{} vmap @{}", d.key, d.map)];
        let wl = d.map.ends_with("-wl");
        for prefix in &rs.config.iface_prefixes {
            // Workload dispatch: an unknown workload interface is dropped (fail closed,
            // Felix's "Unknown interface" rule). Host-endpoint wildcard: workload
            // interfaces are not host endpoints.
            if wl {
                rules.push(format!("{} \"{prefix}*\" drop", d.key));
            } else if wildcard.contains_key(d.chain) {
                rules.push(format!("{} \"{prefix}*\" return", d.key));
            }
        }
        if let Some(chain) = wildcard.get(d.chain) {
            rules.push(format!("goto {chain}"));
        }
        put_chain(rs, d.chain.to_string(), rules);
    }
    Ok(())
}

/// Programs host endpoint `name` on interface `iface` (its own `interfaceName`, `*`, or the
/// interface its expected IPs resolved to).
fn add_host_endpoint(
    rs: &mut Ruleset,
    model: &DataplaneModel,
    name: &str,
    ep: &HostEndpoint,
    iface: &str,
    wildcard: &mut BTreeMap<&'static str, String>,
) -> Result<(), NftError> {
    let owner = format!("host endpoint {name}");
    let suffix = if iface == "*" {
        ALL_INTERFACES
    } else {
        check_iface(iface, &owner)?;
        iface
    };
    let stages: [(Stage, bool, &str, &Dispatch, &[TierInfo]); 7] = [
        (Stage::Normal, true, "th-", &FROM_HEP, &ep.tiers),
        (Stage::Normal, false, "fh-", &TO_HEP, &ep.tiers),
        (
            Stage::Forward,
            true,
            "thfw-",
            &FROM_HEP_FWD,
            &ep.forward_tiers,
        ),
        (
            Stage::Forward,
            false,
            "fhfw-",
            &TO_HEP_FWD,
            &ep.forward_tiers,
        ),
        (
            Stage::Untracked,
            true,
            "thr-",
            &FROM_HEP_RAW,
            &ep.untracked_tiers,
        ),
        (
            Stage::Untracked,
            false,
            "fhr-",
            &TO_HEP_RAW,
            &ep.untracked_tiers,
        ),
        (
            Stage::PreDnat,
            true,
            "thpd-",
            &FROM_HEP_PREDNAT,
            &ep.pre_dnat_tiers,
        ),
    ];
    for (stage, ingress, prefix, d, tiers) in stages {
        // Only the normal stage is rendered without policies: a host endpoint without
        // forward / untracked / pre-DNAT policy leaves that traffic alone ("Allow
        // forwarded traffic by default"; no end-of-tier drop in raw and pre-DNAT).
        if stage != Stage::Normal && !tiers.iter().any(|t| !direction(t, ingress).is_empty()) {
            continue;
        }
        let chain = names::endpoint_chain(prefix, suffix);
        let rules = endpoint_rules(
            model,
            &Endpoint {
                owner: owner.clone(),
                stage,
                ingress,
                workload: false,
                part: Part::Rest,
                group: None,
                tiers,
                profiles: &ep.profile_ids,
                config: &rs.config,
            },
        )?;
        if iface == "*" {
            if wildcard.insert(d.chain, chain.clone()).is_some() {
                return Err(NftError::DuplicateInterface {
                    owner,
                    iface: iface.to_string(),
                });
            }
        } else {
            add_entry(rs, d, iface, &format!("goto {chain}"), &owner)?;
        }
        rs.hep_chains.insert(chain.clone());
        add_chain(rs, chain, rules)?;
    }
    Ok(())
}

/// The chain that exempts workloads' `allowSpoofedSourcePrefixes` from the RPF check
/// (Felix `cali-rpf-skip`): accepted for the raw stage, policy still applies later.
pub(crate) const RPF_SKIP: &str = "rpf-skip";

pub(crate) fn rpf_skip_rules(model: &DataplaneModel) -> Vec<String> {
    let mut rules = Vec::new();
    for ep in model.workload_endpoints.values() {
        for (fam, ip) in [(4u8, "ip"), (6, "ip6")] {
            let nets: Vec<String> = normalize_nets(
                ep.allow_spoofed_source_prefixes
                    .iter()
                    .copied()
                    .filter(|n| matches!((n, fam), (IpNet::V4(_), 4) | (IpNet::V6(_), 6))),
            )
            .iter()
            .map(net_text)
            .collect();
            if nets.is_empty() {
                continue;
            }
            let set = if nets.len() == 1 {
                nets[0].clone()
            } else {
                format!("{{ {} }}", nets.join(", "))
            };
            rules.push(format!(
                "iifname \"{}\" {ip} saddr {set} accept",
                ep.interface_name
            ));
        }
    }
    rules
}

pub(crate) fn put_chain(rs: &mut Ruleset, name: String, rules: Vec<String>) {
    rs.chains
        .insert(name, Arc::new(NftChain { base: None, rules }));
}

fn add_chain(rs: &mut Ruleset, name: String, rules: Vec<String>) -> Result<(), NftError> {
    if rs.chains.contains_key(&name) {
        return Err(NftError::NameClash(name));
    }
    put_chain(rs, name, rules);
    Ok(())
}

fn add_entry(
    rs: &mut Ruleset,
    d: &Dispatch,
    iface: &str,
    verdict: &str,
    owner: &str,
) -> Result<(), NftError> {
    let map = rs.maps.entry(d.map.to_string()).or_insert_with(|| {
        Arc::new(NftMap {
            spec: "type ifname : verdict;".into(),
            elements: BTreeMap::new(),
        })
    });
    let key = format!("\"{iface}\"");
    if map.elements.contains_key(&key) {
        return Err(NftError::DuplicateInterface {
            owner: owner.to_string(),
            iface: iface.to_string(),
        });
    }
    Arc::make_mut(map).elements.insert(key, verdict.to_string());
    Ok(())
}

/// Linux interface names: 1–15 bytes, no `/`, whitespace or `:` (dev_valid_name); we also
/// refuse quotes, `*` and `\`, which would break the nft string.
fn check_iface(iface: &str, owner: &str) -> Result<(), NftError> {
    let ok = !iface.is_empty()
        && iface.len() <= 15
        && iface != "."
        && iface != ".."
        && iface
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | ':' | '"' | '*' | '\\'));
    if ok {
        Ok(())
    } else {
        Err(NftError::BadInterface {
            owner: owner.to_string(),
            iface: iface.to_string(),
        })
    }
}

fn direction(t: &TierInfo, ingress: bool) -> &[calico_dataplane_model::PolicyId] {
    if ingress {
        &t.ingress_policies
    } else {
        &t.egress_policies
    }
}

/// The type of nft set an IP set needs: the model's kind, refined by the members (a selector
/// set holding a CIDR wider than a host route needs interval matching).
pub(crate) fn set_type_of(id: &IpSetId, set: &IpSet) -> Result<SetType, NftError> {
    let has_port = set
        .members
        .iter()
        .any(|m| matches!(m, IpSetMember::AddressPort { .. }));
    let has_addr = set
        .members
        .iter()
        .any(|m| !matches!(m, IpSetMember::AddressPort { .. }));
    let has_wide_net = set
        .members
        .iter()
        .any(|m| matches!(m, IpSetMember::Net(n) if n.prefix_len() < n.max_prefix_len()));
    let ty = match set.kind {
        Some(IpSetKind::AddressPorts) => SetType::AddrPort,
        Some(IpSetKind::Nets) => SetType::Net,
        Some(IpSetKind::Addresses) if has_wide_net => SetType::Net,
        Some(IpSetKind::Addresses) => SetType::Addr,
        None if has_port => SetType::AddrPort,
        None if has_wide_net => SetType::Net,
        None => SetType::Addr,
    };
    let bad = if ty == SetType::AddrPort {
        has_addr
    } else {
        has_port
    };
    if bad {
        return Err(NftError::BadModel(format!(
            "IP set {id} mixes address/port members with addresses or CIDRs"
        )));
    }
    Ok(ty)
}

/// The set's members of family `fam`, as nft elements.
fn set_elements(set: &IpSet, ty: SetType, fam: u8) -> BTreeSet<String> {
    let mine = set.members.iter().filter(|m| m.ip_version() == fam);
    match ty {
        SetType::Net => normalize_nets(mine.filter_map(|m| match m {
            IpSetMember::Address(a) => Some(IpNet::from(*a)),
            IpSetMember::Net(n) => Some(*n),
            IpSetMember::AddressPort { .. } => None,
        }))
        .iter()
        .map(net_text)
        .collect(),
        SetType::Addr => mine
            .filter_map(|m| match m {
                IpSetMember::Address(a) => Some(a.to_string()),
                IpSetMember::Net(n) => Some(n.trunc().addr().to_string()),
                IpSetMember::AddressPort { .. } => None,
            })
            .collect(),
        SetType::AddrPort => mine
            .filter_map(|m| match m {
                IpSetMember::AddressPort {
                    addr,
                    protocol,
                    port,
                } => Some(format!("{addr} . {} . {port}", proto_name(*protocol))),
                _ => None,
            })
            .collect(),
    }
}

fn endpoint_rules(model: &DataplaneModel, ep: &Endpoint<'_>) -> Result<Vec<String>, NftError> {
    let mut rules = Vec::new();
    if let (Part::Rest, Some(group)) = (ep.part, ep.group) {
        // A shard chain after a global prefix: the group it was compiled with allowed →
        // done; that group passed → go on; any other group or none ran (tables replaced
        // one at a time, the global one not yet or already) → drop rather than go on
        // without the prefix.
        rules.push(format!(
            "meta mark & 0x{:08x} == 0x{:08x} return",
            GLOBAL_ACCEPT | GLOBAL_GROUP,
            GLOBAL_ACCEPT | group
        ));
        rules.push(format!(
            "meta mark & 0x{GLOBAL_GROUP:08x} != 0x{group:08x} drop"
        ));
    }
    rules.push(clear_mark(ACCEPT | PASS));
    if !ep.workload && ep.stage != Stage::Forward {
        // Failsafe ports (felix/rules/static.go failsafeInChain / failsafeOutChain): accepted
        // whatever the policy. In the raw stage, responses to the other direction's failsafe
        // connections are accepted too so they are not untracked.
        let (fwd, rev) = if ep.ingress {
            (FAILSAFE_IN, FAILSAFE_OUT)
        } else {
            (FAILSAFE_OUT, FAILSAFE_IN)
        };
        rules.push(format!("meta l4proto . th dport @{fwd} accept"));
        if ep.stage == Stage::Untracked {
            rules.push(format!("meta l4proto . th sport @{rev} accept"));
        }
        // Entries with a net: the remote end must be in it (the source of inbound
        // connections, the destination of outbound ones), one rule each, of its family.
        let cfg = ep.config;
        let (fwd_nets, rev_nets) = if ep.ingress {
            (&cfg.failsafe_inbound_nets, &cfg.failsafe_outbound_nets)
        } else {
            (&cfg.failsafe_outbound_nets, &cfg.failsafe_inbound_nets)
        };
        let remote = if ep.ingress { "saddr" } else { "daddr" };
        let mut with_net = |entries: &[(u8, u16, IpNet)], port: &str| {
            for (proto, p, net) in entries {
                let ip = if matches!(net, IpNet::V4(_)) {
                    "ip"
                } else {
                    "ip6"
                };
                rules.push(format!(
                    "{ip} {remote} {} meta l4proto {} th {port} {p} accept",
                    net_text(&net.trunc()),
                    proto_name(*proto)
                ));
            }
        };
        with_net(fwd_nets, "dport");
        if ep.stage == Stage::Untracked {
            with_net(rev_nets, "sport");
        }
    }
    if ep.workload && !ep.ingress {
        // Encapsulated packets originating in workloads (Felix default
        // allowVXLANPacketsFromWorkloads / allowIPIPPacketsFromWorkloads false).
        rules.push("meta l4proto udp th dport 4789 drop".into());
        rules.push("meta l4proto 4 drop".into());
    }
    for tier in ep.tiers {
        let policies = direction(tier, ep.ingress);
        if policies.is_empty() {
            continue;
        }
        rules.push(clear_mark(PASS));
        for id in policies {
            if !model.policies.contains_key(id) {
                return Err(NftError::MissingPolicy {
                    owner: ep.owner.clone(),
                    id: id.to_string(),
                });
            }
            let chain = names::policy_chain(ep.ingress, id);
            if ep.stage == Stage::Untracked {
                // An allow must untrack the packet at once.
                rules.push(format!("{} jump {chain}", mark_is_clear(PASS)));
                rules.push(format!("{} notrack return", mark_is_set(ACCEPT)));
            } else {
                // One rule per policy: once a policy allowed (accept mark) or passed (pass
                // mark), the following jumps, the tier's drop and the profiles are skipped
                // and the chain returns with the accept mark, as Felix's "return if
                // accepted" after each jump would, in half the rules (fewer rules for the
                // kernel to add and to validate at every commit).
                rules.push(format!("{} jump {chain}", mark_is_clear(PASS | ACCEPT)));
            }
        }
        if matches!(ep.stage, Stage::Normal | Stage::Forward)
            && tier.default_action == TierDefaultAction::Deny
        {
            rules.push(format!("{} drop", mark_is_clear(PASS | ACCEPT)));
        }
    }
    if ep.part == Part::GlobalPrefix {
        if let Some(group) = ep.group {
            rules.push(set_mark(group));
        }
        rules.push(format!(
            "{} {}",
            mark_is_set(ACCEPT),
            set_mark(GLOBAL_ACCEPT)
        ));
        return Ok(rules);
    }
    if ep.stage == Stage::Normal {
        for profile in ep.profiles {
            if !model.profiles.contains_key(profile) {
                continue;
            }
            let chain = names::profile_chain(ep.ingress, profile);
            rules.push(format!("{} jump {chain}", mark_is_clear(ACCEPT)));
        }
        rules.push(format!("{} drop", mark_is_clear(ACCEPT)));
    }
    Ok(rules)
}

fn base_chains(rs: &mut Ruleset, cfg: &NftConfig) -> Result<(), NftError> {
    let main = rs.role == TableRole::Main;
    let ct = [
        "ct state established,related accept".to_string(),
        "ct state invalid drop".to_string(),
    ];
    let accepted = format!("{} accept", mark_is_set(ACCEPT));
    let base = |hook: &str, prio: &str| {
        Some(format!(
            "type filter hook {hook} priority {prio}; policy accept;"
        ))
    };
    // Raw prerouting (felix/rules/static.go StaticRawPreroutingChain): workloads may only
    // send from addresses routed back to their interface (strict RPF, Felix nft
    // `fib saddr . mark . iif oif 0`), except their allowSpoofedSourcePrefixes (rpf-skip);
    // other interfaces go to the untracked host-endpoint policy.
    let mut raw_prerouting = vec![clear_mark(ALL)];
    for p in &cfg.iface_prefixes {
        raw_prerouting.push(format!("iifname \"{p}*\" jump {RPF_SKIP}"));
        raw_prerouting.push(format!(
            "iifname \"{p}*\" fib saddr . mark . iif oif 0 drop"
        ));
    }
    raw_prerouting.push(format!("jump {}", FROM_HEP_RAW.chain));
    raw_prerouting.push(accepted.clone());
    let mut add = |name: &str, spec: Option<String>, rules: Vec<String>| -> Result<(), NftError> {
        if rs.chains.contains_key(name) {
            return Err(NftError::NameClash(name.to_string()));
        }
        rs.chains
            .insert(name.to_string(), Arc::new(NftChain { base: spec, rules }));
        Ok(())
    };

    add("raw-prerouting", base("prerouting", "raw"), raw_prerouting)?;
    add(
        "raw-output",
        base("output", "raw"),
        vec![
            clear_mark(ALL),
            format!("jump {}", TO_HEP_RAW.chain),
            accepted.clone(),
        ],
    )?;

    // Felix's mangle PREROUTING (`StaticManglePreroutingChain`): established flows, then
    // packets the raw stage already accepted (a doNotTrack allow) skip preDNAT policy.
    let mut prednat = vec![ct[0].clone(), accepted.clone()];
    for p in &cfg.iface_prefixes {
        prednat.push(format!("iifname \"{p}*\" return"));
    }
    prednat.push(format!("jump {}", FROM_HEP_PREDNAT.chain));
    prednat.push(accepted.clone());
    add("prednat", base("prerouting", "dstnat - 10"), prednat)?;

    // Input: workload → host goes through the workload's egress policy, then Felix's
    // DefaultEndpointToHostAction (cali-wl-to-host, reached with a goto so that Return
    // leaves Calico's chains).
    let mut input = ct.to_vec();
    input.push(accepted.clone());
    for p in &cfg.iface_prefixes {
        input.push(format!("iifname \"{p}*\" goto wl-to-host"));
    }
    input.push(format!("jump {}", FROM_HEP.chain));
    input.push(accepted.clone());
    add("input", base("input", "filter"), input)?;
    let to_host = match cfg.endpoint_to_host_action {
        EndpointToHostAction::Drop => "drop",
        EndpointToHostAction::Accept => "accept",
        EndpointToHostAction::Return => "return",
    };
    // IPv6 router duties (felix/rules/static.go ICMPv6Filter): multicast listener
    // query/report/done, router and neighbour solicitation and neighbour advertisement from
    // workloads are accepted before their egress policy, so policy cannot cut off IPv6.
    add(
        "wl-to-host",
        None,
        vec![
            format!("{ICMPV6_ROUTER} accept"),
            format!("jump {}", FROM_WL.chain),
            to_host.to_string(),
        ],
    )?;

    // Forward: host endpoint (applyOnForward) ingress unless already accepted before DNAT,
    // workload egress, workload ingress, host endpoint egress; both workloads' policies apply
    // to traffic between two local workloads (felix/rules/static.go filterForwardChain).
    let mut forward = ct.to_vec();
    forward.push(clear_mark(ALL & !ACCEPT));
    forward.push(format!(
        "{} jump {}",
        mark_is_clear(ACCEPT),
        FROM_HEP_FWD.chain
    ));
    forward.push(format!("jump {}", FROM_WL.chain));
    forward.push(format!("jump {}", TO_WL.chain));
    forward.push(format!("jump {}", TO_HEP_FWD.chain));
    forward.push(accepted.clone());
    add("forward", base("forward", "filter"), forward)?;

    // Output: host → local workload is not policed (Felix filterOutputChain).
    let mut output = ct.to_vec();
    output.push(accepted.clone());
    for p in &cfg.iface_prefixes {
        output.push(format!("oifname \"{p}*\" accept"));
    }
    output.push(format!("jump {}", TO_HEP.chain));
    output.push(accepted);
    add("output", base("output", "filter"), output)?;

    if main {
        // Workload egress policy is in the shard tables' prerouting chains (filter + 10):
        // after all of them, the marks they and the global table leave are cleared, so that
        // the filter stages above never take an egress verdict for a raw / pre-DNAT one.
        let clear: Vec<String> = cfg
            .iface_prefixes
            .iter()
            .map(|p| format!("iifname \"{p}*\" {}", clear_mark(ALL)))
            .collect();
        add("wl-marks", base("prerouting", "filter + 20"), clear)?;
    }
    Ok(())
}

/// A shard table's chains: dispatch without the fail-closed drop (an interface of another
/// shard is not this table's business; the main table drops unknown ones) and two base
/// chains. Every table only drops or lets the packet go on, so a packet passes when every
/// table lets it (for traffic between two local workloads: the source's egress policy, in its
/// shard, and the destination's ingress policy, in its own).
///
/// - `prerouting` (priority filter + 10: after conntrack and DNAT, so it sees what `forward`
///   and `input` see): the workload's **egress** policy, for every packet a workload sends,
///   whether it is forwarded or for the host. Felix applies it in FORWARD and in INPUT; one
///   hook evaluates it as often per packet but has the kernel validate the egress chains
///   once instead of once per hook at every commit (a quarter less to validate per shard).
///   The accept mark is cleared after it, so that the main table's filter stages, which read
///   that bit as "accepted by the raw / pre-DNAT stage", never see an egress verdict; for
///   workload → host traffic the main table's `wl-to-host` then applies
///   DefaultEndpointToHostAction. IPv6 router duties towards the host (link-local or
///   multicast destinations) are exempt, as in `wl-to-host`.
/// - `forward` (priority filter + 10, after the main table): the destination workload's
///   **ingress** policy.
///
/// The global table's verdict reaches them in two mark fields it sets: which group chain
/// ran ([`GLOBAL_GROUP`]) and whether it allowed ([`GLOBAL_ACCEPT`]); an endpoint chain that
/// starts after a global prefix checks both (`endpoint_rules`). They must survive until
/// every shard has run (the endpoint's own may come last), so a shard clears every bit but
/// them after egress; the main table clears them after all of them (`wl-marks`, prerouting
/// filter + 20), before routing could see them. (Clearing the others here too keeps
/// `wl-to-host` right while an older main table without `wl-marks` is still in force during
/// an upgrade's full replace.)
fn shard_chains(rs: &mut Ruleset) -> Result<(), NftError> {
    let after: Vec<String> = rs
        .config
        .iface_prefixes
        .iter()
        .map(|p| {
            format!(
                "iifname \"{p}*\" {}",
                clear_mark(ALL & !(GLOBAL_ACCEPT | GLOBAL_GROUP))
            )
        })
        .collect();
    workload_base_chains(rs, "filter + 10", ("", after), ("", Vec::new()))
}

/// The global table's chains: dispatch to the group chains and the same two base chains as
/// a shard's, just before them (priority filter + 5), so that the shard tables see the
/// marks its group chains set. Each clears those fields first: what the shards read at a
/// hook is this hook's verdict, never one left from an earlier hook (egress at prerouting,
/// then ingress at forward), whatever the other tables clear.
fn global_chains(rs: &mut Ruleset) -> Result<(), NftError> {
    let clear = format!("{} ", clear_mark(GLOBAL_ACCEPT | GLOBAL_GROUP));
    workload_base_chains(rs, "filter + 5", (&clear, Vec::new()), (&clear, Vec::new()))
}

/// Dispatch chains and the `prerouting` (egress) and `forward` (ingress) base chains of a
/// workload table: established flows accepted, then `before` and the jump to the dispatch
/// chain in one rule, then the `after` rules.
fn workload_base_chains(
    rs: &mut Ruleset,
    priority: &str,
    (egress_before, egress_after): (&str, Vec<String>),
    (ingress_before, ingress_after): (&str, Vec<String>),
) -> Result<(), NftError> {
    for d in [&FROM_WL, &TO_WL] {
        add_chain(
            rs,
            d.chain.to_string(),
            vec![format!("{} vmap @{}", d.key, d.map)],
        )?;
    }
    let est = "ct state established,related accept".to_string();
    let base = |hook: &str| {
        Some(format!(
            "type filter hook {hook} priority {priority}; policy accept;"
        ))
    };
    let mut prerouting = vec![
        est.clone(),
        format!("{ICMPV6_ROUTER} ip6 daddr fe80::/10 accept"),
        format!("{ICMPV6_ROUTER} ip6 daddr ff00::/8 accept"),
        format!("{egress_before}jump {}", FROM_WL.chain),
    ];
    prerouting.extend(egress_after);
    let mut forward = vec![est, format!("{ingress_before}jump {}", TO_WL.chain)];
    forward.extend(ingress_after);
    for (name, spec, rules) in [
        ("prerouting", base("prerouting"), prerouting),
        ("forward", base("forward"), forward),
    ] {
        if rs.chains.contains_key(name) {
            return Err(NftError::NameClash(name.to_string()));
        }
        rs.chains
            .insert(name.to_string(), Arc::new(NftChain { base: spec, rules }));
    }
    Ok(())
}

/// IPv6 multicast listener query/report/done, router and neighbour solicitation and
/// neighbour advertisement (felix/rules/static.go ICMPv6Filter).
const ICMPV6_ROUTER: &str = "icmpv6 type { 130, 131, 132, 133, 135, 136 }";

#[cfg(test)]
mod tests;
