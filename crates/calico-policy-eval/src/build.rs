//! Building a [`PolicySet`] from v3 resources: tiers, policies and profiles parsed by
//! `calico-policy-rules` (Calico's defaulting, validation and v3 → v1 rewriting, Felix's
//! ordering), derived `kns.` / `ksa.` profiles, label inheritance, and IP-set members.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_api::Resource;
use calico_api::networkset::{GlobalNetworkSet, NetworkSet};
use calico_api::policy::{GlobalNetworkPolicy, NetworkPolicy};
use calico_api::profile::{DEFAULT_ALLOW_PROFILE, Profile};
use calico_api::tier::Tier;
use calico_api::workloadendpoint::LABEL_NAMESPACE;
use calico_policy_rules::{
    NAMESPACE_LABEL_PREFIX, ParsedPolicy, ParsedProfile, ParsedRule, ParsedTier,
    SERVICE_ACCOUNT_LABEL_PREFIX, TierDefaultAction, defaulted, parse_global_network_policy,
    parse_net, parse_network_policy, parse_profile, parse_tier, policy_kind_name, policy_order,
    protected_tiers, tier_order_with_validity,
};
use calico_policy_rules::{PolicyId, PolicyKind, RuleAction};
use ipnet::IpNet;

use crate::error::EvalError;
use crate::model::{
    EvalConfig, NAME_LABEL, NAMESPACE_PROFILE_PREFIX, NamedPort, SERVICE_ACCOUNT_PROFILE_PREFIX,
};
use crate::{Endpoint, EndpointKind};

/// The inputs of a [`PolicySet`]. Staged policies are not inputs: Felix never lets them set
/// a verdict (`felix/rules/endpoints.go`: staged policies do not set the accept/pass marks and
/// a tier of only staged policies has no end-of-tier drop), so they cannot change a decision.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    /// Tiers. `default`, `kube-admin` and `kube-baseline` are added when absent, as Calico
    /// always creates them (`tier.go` `PROTECTED_TIERS`).
    pub tiers: Vec<Tier>,
    pub global_policies: Vec<GlobalNetworkPolicy>,
    /// Calico NetworkPolicies. Those named `knp.default.<name>` are Kubernetes policies as
    /// kube-controllers stores them, and get kind `KubernetesNetworkPolicy`.
    pub policies: Vec<NetworkPolicy>,
    /// Kubernetes NetworkPolicies already converted to Calico form (policy kind
    /// `KubernetesNetworkPolicy` whatever the name; only the tie-break string of the ordering
    /// differs).
    pub kubernetes_policies: Vec<NetworkPolicy>,
    pub profiles: Vec<Profile>,
    pub network_sets: Vec<NetworkSet>,
    pub global_network_sets: Vec<GlobalNetworkSet>,
    pub endpoints: Vec<Endpoint>,
    /// Labels of Kubernetes namespaces (another source besides
    /// [`Endpoint::namespace_labels`]; all sources must agree).
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Local addresses of each node (node name → addresses), used to recognise traffic
    /// between a workload and its own host. The `expectedIPs` of host endpoints with a node
    /// are added automatically.
    pub host_addresses: BTreeMap<String, Vec<IpAddr>>,
    pub config: EvalConfig,
}

impl Resources {
    /// Adds one decoded resource. Workload and host endpoints are validated (after Calico's
    /// defaulting) and become [`Endpoint`]s; staged
    /// policies are dropped (see [`Resources`]); other non-policy kinds are an error.
    pub fn add(&mut self, r: Resource) -> Result<(), EvalError> {
        match r {
            Resource::Tier(t) => self.tiers.push(t),
            Resource::GlobalNetworkPolicy(p) => self.global_policies.push(p),
            Resource::NetworkPolicy(p) => self.policies.push(p),
            Resource::Profile(p) => self.profiles.push(p),
            Resource::NetworkSet(s) => self.network_sets.push(s),
            Resource::GlobalNetworkSet(s) => self.global_network_sets.push(s),
            Resource::WorkloadEndpoint(w) => self
                .endpoints
                .push(Endpoint::from_workload_endpoint(&defaulted(&w)?)?),
            Resource::HostEndpoint(h) => self
                .endpoints
                .push(Endpoint::from_host_endpoint(&defaulted(&h)?)?),
            Resource::StagedNetworkPolicy(_)
            | Resource::StagedGlobalNetworkPolicy(_)
            | Resource::StagedKubernetesNetworkPolicy(_) => {}
            other => {
                return Err(EvalError::UnsupportedKind {
                    kind: other.kind(),
                    name: other.metadata().name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Decodes calicoctl-style YAML / JSON documents and [`Resources::add`]s each.
    pub fn from_yaml(text: &str) -> Result<Resources, EvalError> {
        let docs = calico_api::decode::decode_documents("input", text).map_err(|e| {
            EvalError::BadValue {
                owner: "input".to_string(),
                field: "document",
                value: e.to_string(),
            }
        })?;
        let mut res = Resources::default();
        for d in docs {
            res.add(d.resource)?;
        }
        Ok(res)
    }
}

/// A tier with its policies in evaluation order.
#[derive(Debug, Clone)]
pub(crate) struct TierData {
    /// Name, order and default action. `Pass` only for `defaultAction: Pass`; anything else,
    /// including the empty action of a tier that does not exist, drops at the end of the tier
    /// (`endpoints.go`: `tier.DefaultAction != string(v3.Pass)`).
    pub tier: ParsedTier,
    /// Whether a Tier resource exists (`policy_sorter.go` `TierInfo.Valid`).
    pub valid: bool,
    pub policies: Vec<ParsedPolicy>,
}

impl TierData {
    pub(crate) fn name(&self) -> &str {
        &self.tier.name
    }

    pub(crate) fn default_pass(&self) -> bool {
        self.tier.default_action == TierDefaultAction::Pass
    }
}

/// Something whose addresses can be in an IP set: an endpoint or a network set.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// The labels selectors see (own labels over inherited ones).
    pub labels: BTreeMap<String, String>,
    pub addresses: Vec<IpNet>,
    pub named_ports: Vec<NamedPort>,
    /// Endpoints contribute to named-port sets; network sets do not.
    pub is_endpoint: bool,
}

impl Member {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        self.addresses.iter().any(|n| n.contains(&ip))
    }
}

/// Everything needed to evaluate packets; built once by [`PolicySet::from_resources`].
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(crate) config: EvalConfig,
    /// Sorted by `TierLess`.
    pub(crate) tiers: Vec<TierData>,
    pub(crate) profiles: BTreeMap<String, ParsedProfile>,
    /// The input endpoints, in input order.
    pub(crate) endpoints: Vec<Endpoint>,
    /// `members[i]` is `endpoints[i]` for `i < endpoints.len()`; network sets follow.
    pub(crate) members: Vec<Member>,
    /// Node → its local addresses.
    pub(crate) host_addresses: BTreeMap<String, BTreeSet<IpAddr>>,
}

/// Labels known for namespaces / service accounts, from every source, checked to agree.
#[derive(Default)]
struct KnownLabels {
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    service_accounts: BTreeMap<(String, String), BTreeMap<String, String>>,
}

fn record<K: Ord + Clone>(
    map: &mut BTreeMap<K, BTreeMap<String, String>>,
    key: K,
    what: impl FnOnce() -> String,
    labels: &BTreeMap<String, String>,
) -> Result<(), EvalError> {
    match map.get(&key) {
        Some(existing) if existing != labels => Err(EvalError::ConflictingLabels {
            what: what(),
            first: format!("{existing:?}"),
            second: format!("{labels:?}"),
        }),
        Some(_) => Ok(()),
        None => {
            map.insert(key, labels.clone());
            Ok(())
        }
    }
}

impl KnownLabels {
    fn collect(res: &Resources) -> Result<KnownLabels, EvalError> {
        let mut k = KnownLabels::default();
        for (ns, labels) in &res.namespaces {
            record(
                &mut k.namespaces,
                ns.clone(),
                || format!("namespace {ns:?}"),
                labels,
            )?;
        }
        for ep in &res.endpoints {
            let Some(ns) = &ep.namespace else { continue };
            // An endpoint without namespace labels says nothing about its namespace.
            if !ep.namespace_labels.is_empty() {
                record(
                    &mut k.namespaces,
                    ns.clone(),
                    || format!("namespace {ns:?}"),
                    &ep.namespace_labels,
                )?;
            }
            if let Some(sa) = &ep.service_account
                && !ep.service_account_labels.is_empty()
            {
                record(
                    &mut k.service_accounts,
                    (ns.clone(), sa.clone()),
                    || format!("service account {ns}/{sa}"),
                    &ep.service_account_labels,
                )?;
            }
        }
        Ok(k)
    }
}

/// `conversion.go` `NamespaceToProfile` / `ServiceAccountToProfile` labels: each label with
/// the prefix, plus `<prefix>projectcalico.org/name = <name>`.
fn profile_labels(
    prefix: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
        .collect();
    out.insert(format!("{prefix}{NAME_LABEL}"), name.to_string());
    out
}

fn allow_all() -> ParsedRule {
    ParsedRule::any(RuleAction::Allow)
}

/// A profile Calico derives rather than stores: `kns.<ns>` (allow-all ingress and egress,
/// `pcns.` labels), `ksa.<ns>.<sa>` (no rules, `pcsa.` labels), both from `conversion.go`,
/// and `projectcalico-default-allow` (allow all, created by calico-node).
fn derived_profile(
    name: &str,
    known: &KnownLabels,
    namespaces: &BTreeSet<String>,
    service_accounts: &BTreeSet<(String, String)>,
) -> Option<ParsedProfile> {
    if name == DEFAULT_ALLOW_PROFILE {
        return Some(ParsedProfile {
            name: name.to_string(),
            labels_to_apply: BTreeMap::new(),
            inbound: vec![allow_all()],
            outbound: vec![allow_all()],
        });
    }
    if let Some(ns) = name.strip_prefix(NAMESPACE_PROFILE_PREFIX)
        && namespaces.contains(ns)
    {
        let empty = BTreeMap::new();
        let labels = known.namespaces.get(ns).unwrap_or(&empty);
        return Some(ParsedProfile {
            name: name.to_string(),
            labels_to_apply: profile_labels(NAMESPACE_LABEL_PREFIX, ns, labels),
            inbound: vec![allow_all()],
            outbound: vec![allow_all()],
        });
    }
    if let Some(rest) = name.strip_prefix(SERVICE_ACCOUNT_PROFILE_PREFIX) {
        // `ksa.<ns>.<sa>`: namespaces contain no dots, service accounts may.
        let (ns, sa) = rest.split_once('.')?;
        let key = (ns.to_string(), sa.to_string());
        if service_accounts.contains(&key) {
            let empty = BTreeMap::new();
            let labels = known.service_accounts.get(&key).unwrap_or(&empty);
            return Some(ParsedProfile {
                name: name.to_string(),
                labels_to_apply: profile_labels(SERVICE_ACCOUNT_LABEL_PREFIX, sa, labels),
                inbound: Vec::new(),
                outbound: Vec::new(),
            });
        }
    }
    None
}

/// Own labels over parent labels, the first parent winning among parents
/// (`label_inheritance_index.go` `itemData.GetHandle`).
fn inherit(
    own: BTreeMap<String, String>,
    parents: &[String],
    profiles: &BTreeMap<String, ParsedProfile>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in parents.iter().rev() {
        if let Some(pd) = profiles.get(p) {
            out.extend(
                pd.labels_to_apply
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
    }
    out.extend(own);
    out
}

impl PolicySet {
    /// Builds the set: validates every resource after Calico's defaulting, rewrites
    /// selectors and rules to Felix's v1 form, derives `kns.` / `ksa.` profiles, computes
    /// inherited labels and sorts tiers and policies.
    pub fn from_resources(res: Resources) -> Result<PolicySet, EvalError> {
        let known = KnownLabels::collect(&res)?;

        // Tiers: the given ones plus the protected tiers Calico always has.
        let mut tiers: BTreeMap<String, TierData> = BTreeMap::new();
        for t in &res.tiers {
            let tier = parse_tier(t)?;
            let name = tier.name.clone();
            let data = TierData {
                tier,
                valid: true,
                policies: Vec::new(),
            };
            if tiers.insert(name.clone(), data).is_some() {
                return Err(EvalError::DuplicateResource { kind: "Tier", name });
            }
        }
        for tier in protected_tiers() {
            tiers.entry(tier.name.clone()).or_insert_with(|| TierData {
                tier,
                valid: true,
                policies: Vec::new(),
            });
        }

        // Policies. A NetworkPolicy named `knp.default.…` is a converted Kubernetes policy
        // (`parse_network_policy`); the explicitly Kubernetes ones are that kind whatever
        // their name.
        let mut parsed: Vec<ParsedPolicy> = Vec::new();
        for p in &res.global_policies {
            parsed.push(parse_global_network_policy(p)?);
        }
        for p in &res.policies {
            parsed.push(parse_network_policy(p)?);
        }
        for p in &res.kubernetes_policies {
            let mut pol = parse_network_policy(p)?;
            pol.id.kind = PolicyKind::KubernetesNetworkPolicy;
            parsed.push(pol);
        }
        let mut seen_ids = BTreeSet::new();
        for pol in parsed {
            // Policy names are unique per kind and namespace, whatever their tier.
            let key = (pol.id.kind, pol.id.namespace.clone(), pol.id.name.clone());
            if !seen_ids.insert(key) {
                return Err(EvalError::DuplicateResource {
                    kind: policy_kind_name(pol.id.kind),
                    name: pol.id.to_string(),
                });
            }
            // A policy in a tier that does not exist creates an invalid tier: sorted after
            // all valid tiers, no order, empty default action (so: drop at its end)
            // (`policy_sorter.go` `UpdatePolicy`, `policy_resolver.go` keeps using it).
            let tier = pol.id.tier.clone();
            tiers
                .entry(tier.clone())
                .or_insert_with(|| TierData {
                    tier: ParsedTier {
                        name: tier,
                        order: None,
                        default_action: TierDefaultAction::Deny,
                    },
                    valid: false,
                    policies: Vec::new(),
                })
                .policies
                .push(pol);
        }
        let mut tiers: Vec<TierData> = tiers.into_values().collect();
        for t in &mut tiers {
            t.policies.sort_by(policy_order);
        }
        tiers.sort_by(|a, b| tier_order_with_validity(&a.tier, a.valid, &b.tier, b.valid));

        // Profiles: the given ones, then derived ones for names endpoints refer to.
        let mut profiles: BTreeMap<String, ParsedProfile> = BTreeMap::new();
        for p in &res.profiles {
            let data = parse_profile(p)?;
            let name = data.name.clone();
            if profiles.insert(name.clone(), data).is_some() {
                return Err(EvalError::DuplicateResource {
                    kind: "Profile",
                    name,
                });
            }
        }
        let mut namespaces: BTreeSet<String> = known.namespaces.keys().cloned().collect();
        let mut service_accounts = BTreeSet::new();
        for ep in &res.endpoints {
            if let Some(ns) = &ep.namespace {
                namespaces.insert(ns.clone());
                if let Some(sa) = &ep.service_account {
                    service_accounts.insert((ns.clone(), sa.clone()));
                }
            }
        }
        for s in &res.network_sets {
            namespaces.insert(s.metadata.namespace.clone());
        }
        let mut wanted: Vec<(Option<String>, String)> = Vec::new();
        for ep in &res.endpoints {
            wanted.extend(
                ep.profiles
                    .iter()
                    .map(|p| (Some(ep.key.clone()), p.clone())),
            );
        }
        for s in &res.network_sets {
            wanted.push((
                None,
                format!("{NAMESPACE_PROFILE_PREFIX}{}", s.metadata.namespace),
            ));
        }
        for (owner, name) in wanted {
            if profiles.contains_key(&name) {
                continue;
            }
            match derived_profile(&name, &known, &namespaces, &service_accounts) {
                Some(p) => {
                    profiles.insert(name, p);
                }
                None => {
                    if let Some(endpoint) = owner {
                        return Err(EvalError::UnknownProfile {
                            endpoint,
                            profile: name,
                        });
                    }
                }
            }
        }

        // Endpoints and network sets as IP-set members.
        let mut members = Vec::new();
        let mut keys = BTreeSet::new();
        for ep in &res.endpoints {
            if !keys.insert(ep.key.clone()) {
                return Err(EvalError::DuplicateEndpoint(ep.key.clone()));
            }
            members.push(Member {
                labels: inherit(ep.stored_labels(), &ep.profiles, &profiles),
                // `named_port_index.go` `extractCIDRsFromWorkloadEndpoint` /
                // `...HostEndpoint`: only the address counts, any prefix length is ignored.
                addresses: ep.addresses.iter().map(|n| IpNet::from(n.addr())).collect(),
                named_ports: ep.named_ports.clone(),
                is_endpoint: true,
            });
        }
        // An address must identify one endpoint, or "the endpoint of the packet's address"
        // would be ambiguous.
        for (i, a) in res.endpoints.iter().enumerate() {
            for b in &res.endpoints[i + 1..] {
                for na in &a.addresses {
                    if b.addresses.iter().any(|nb| nb.addr() == na.addr()) {
                        return Err(EvalError::DuplicateAddress {
                            address: na.addr().to_string(),
                            first: a.key.clone(),
                            second: b.key.clone(),
                        });
                    }
                }
            }
        }
        for s in &res.network_sets {
            let s = defaulted(s)?;
            let owner = format!("NetworkSet {}/{}", s.metadata.namespace, s.metadata.name);
            // `networksetprocessor.go`: the namespace label is added and the namespace profile
            // is the parent, for namespace label inheritance.
            let mut own = s.metadata.labels.clone();
            own.insert(LABEL_NAMESPACE.to_string(), s.metadata.namespace.clone());
            let parent = [format!(
                "{NAMESPACE_PROFILE_PREFIX}{}",
                s.metadata.namespace
            )];
            members.push(Member {
                labels: inherit(own, &parent, &profiles),
                addresses: s
                    .spec
                    .nets
                    .iter()
                    .map(|n| parse_net(&owner, "nets", n).map(|n| n.trunc()))
                    .collect::<Result<_, _>>()?,
                named_ports: Vec::new(),
                is_endpoint: false,
            });
        }
        for s in &res.global_network_sets {
            let s = defaulted(s)?;
            let owner = format!("GlobalNetworkSet {}", s.metadata.name);
            members.push(Member {
                labels: s.metadata.labels.clone(),
                addresses: s
                    .spec
                    .nets
                    .iter()
                    .map(|n| parse_net(&owner, "nets", n).map(|n| n.trunc()))
                    .collect::<Result<_, _>>()?,
                named_ports: Vec::new(),
                is_endpoint: false,
            });
        }

        let mut host_addresses: BTreeMap<String, BTreeSet<IpAddr>> = res
            .host_addresses
            .iter()
            .map(|(n, a)| (n.clone(), a.iter().copied().collect()))
            .collect();
        for ep in &res.endpoints {
            if let (EndpointKind::Host, Some(node)) = (ep.kind, &ep.node) {
                host_addresses
                    .entry(node.clone())
                    .or_default()
                    .extend(ep.addresses.iter().map(IpNet::addr));
            }
        }

        Ok(PolicySet {
            host_addresses,
            config: res.config,
            tiers,
            profiles,
            endpoints: res.endpoints,
            members,
        })
    }

    /// The endpoints, in input order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The labels Felix matches selectors against for endpoint `key` (own labels over
    /// profile-inherited ones).
    pub fn endpoint_labels(&self, key: &str) -> Option<&BTreeMap<String, String>> {
        let i = self.endpoints.iter().position(|e| e.key == key)?;
        self.members.get(i).map(|m| &m.labels)
    }

    /// Tier names in evaluation order, each with its policies in evaluation order.
    pub fn ordering(&self) -> Vec<(String, Vec<PolicyId>)> {
        self.tiers
            .iter()
            .map(|t| {
                (
                    t.name().to_string(),
                    t.policies.iter().map(|p| p.id.clone()).collect(),
                )
            })
            .collect()
    }

    /// The v1 selector text of a policy (after Calico's rewriting), for tests and messages.
    pub fn policy_selector(&self, id: &PolicyId) -> Option<String> {
        self.tiers
            .iter()
            .flat_map(|t| &t.policies)
            .find(|p| &p.id == id)
            .map(|p| p.selector.to_string())
    }

    /// The node whose local addresses include `ip`, if any.
    pub(crate) fn node_of_host_address(&self, ip: IpAddr) -> Option<&str> {
        self.host_addresses
            .iter()
            .find(|(_, a)| a.contains(&ip))
            .map(|(n, _)| n.as_str())
    }

    /// The endpoint owning address `ip` (its index), if any.
    pub(crate) fn endpoint_at(&self, ip: IpAddr) -> Option<usize> {
        (0..self.endpoints.len()).find(|&i| self.members[i].contains(ip))
    }
}
