//! Building a [`PolicySet`] from v3 resources: Calico's client defaulting and validation,
//! the v3 → v1 rewriting of libcalico-go's update processors, label inheritance, and Felix's
//! tier / policy ordering.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use calico_api::networkset::{GlobalNetworkSet, NetworkSet};
use calico_api::policy::{GlobalNetworkPolicy, NetworkPolicy};
use calico_api::profile::{DEFAULT_ALLOW_PROFILE, Profile};
use calico_api::rule::{Action, EntityRule, PolicyType, Rule, ServiceAccountMatch};
use calico_api::tier::{PROTECTED_TIERS, Tier};
use calico_api::workloadendpoint::LABEL_NAMESPACE;
use calico_api::{CalicoResource, FieldErrors, Resource};
use calico_selector::Selector;
use calico_selector::compose::attach_prefix;
use ipnet::IpNet;

use crate::error::EvalError;
use crate::matching::{CompiledRule, EntityMatch, IcmpMatch, RuleAction};
use crate::model::{
    EvalConfig, LABEL_SERVICE_ACCOUNT, NAME_LABEL, NAMESPACE_LABEL_PREFIX,
    NAMESPACE_PROFILE_PREFIX, NamedPort, SERVICE_ACCOUNT_LABEL_PREFIX,
    SERVICE_ACCOUNT_PROFILE_PREFIX, parse_net, protocol_number,
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
    pub policies: Vec<NetworkPolicy>,
    /// Kubernetes NetworkPolicies already converted to Calico form (policy kind
    /// `KubernetesNetworkPolicy`; only the tie-break string of the ordering differs).
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

/// The kind part of a Felix policy key (`model.PolicyKey.Kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    GlobalNetworkPolicy,
    NetworkPolicy,
    KubernetesNetworkPolicy,
}

impl PolicyKind {
    /// The v3 kind name, used in the ordering tie-break.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::GlobalNetworkPolicy => "GlobalNetworkPolicy",
            PolicyKind::NetworkPolicy => "NetworkPolicy",
            PolicyKind::KubernetesNetworkPolicy => "KubernetesNetworkPolicy",
        }
    }

    fn short(self) -> &'static str {
        match self {
            PolicyKind::GlobalNetworkPolicy => "gnp",
            PolicyKind::NetworkPolicy => "np",
            PolicyKind::KubernetesNetworkPolicy => "knp",
        }
    }
}

/// Identifies a policy; displayed like Felix's chain ids (`gnp/<name>`, `np/<ns>/<name>`,
/// `knp/<ns>/<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId {
    pub kind: PolicyKind,
    /// Empty for global policies.
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind.short(), self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind.short(), self.namespace, self.name)
        }
    }
}

/// A policy in v1 form.
#[derive(Debug, Clone)]
pub(crate) struct PolicyData {
    pub id: PolicyId,
    pub order: Option<f64>,
    pub selector: Selector,
    pub ingress: bool,
    pub egress: bool,
    pub do_not_track: bool,
    pub pre_dnat: bool,
    pub apply_on_forward: bool,
    pub inbound: Vec<CompiledRule>,
    pub outbound: Vec<CompiledRule>,
}

/// A tier with its policies in evaluation order.
#[derive(Debug, Clone)]
pub(crate) struct TierData {
    pub name: String,
    pub order: Option<f64>,
    /// Whether a Tier resource exists (`policy_sorter.go` `TierInfo.Valid`).
    pub valid: bool,
    /// `defaultAction: Pass`. Anything else, including the empty action of a tier that does
    /// not exist, drops at the end of the tier (`endpoints.go`:
    /// `tier.DefaultAction != string(v3.Pass)`).
    pub default_pass: bool,
    pub policies: Vec<PolicyData>,
}

/// A profile in v1 form.
#[derive(Debug, Clone)]
pub(crate) struct ProfileData {
    pub labels: BTreeMap<String, String>,
    pub inbound: Vec<CompiledRule>,
    pub outbound: Vec<CompiledRule>,
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
    pub(crate) profiles: BTreeMap<String, ProfileData>,
    /// The input endpoints, in input order.
    pub(crate) endpoints: Vec<Endpoint>,
    /// `members[i]` is `endpoints[i]` for `i < endpoints.len()`; network sets follow.
    pub(crate) members: Vec<Member>,
    /// Node → its local addresses.
    pub(crate) host_addresses: BTreeMap<String, BTreeSet<IpAddr>>,
}

fn invalid(kind: &'static str, name: &str, errs: FieldErrors) -> EvalError {
    EvalError::InvalidResource {
        kind,
        name: name.to_string(),
        errors: errs.to_string(),
    }
}

/// Calico's client applies defaults and validates before storing (`clientv3`); Felix only
/// ever sees resources in that state.
fn defaulted<T: CalicoResource>(r: &T) -> Result<T, EvalError> {
    let mut r = r.clone();
    r.apply_defaults();
    let mut errs = FieldErrors::new();
    r.validate(&mut errs);
    match errs.into_result() {
        Ok(()) => Ok(r),
        Err(e) => {
            let m = r.metadata();
            let name = if m.namespace.is_empty() {
                m.name.clone()
            } else {
                format!("{}/{}", m.namespace, m.name)
            };
            Err(invalid(T::KIND, &name, e))
        }
    }
}

fn parse_selector(owner: &str, text: &str) -> Result<Selector, EvalError> {
    calico_selector::parse(text).map_err(|e| EvalError::BadSelector {
        owner: owner.to_string(),
        selector: text.to_string(),
        reason: e.to_string(),
    })
}

fn prefixed(owner: &str, selector: &str, prefix: &str) -> Result<String, EvalError> {
    attach_prefix(selector, prefix).map_err(|e| EvalError::BadSelector {
        owner: owner.to_string(),
        selector: selector.to_string(),
        reason: e.to_string(),
    })
}

/// `selectors.go` `prefixAndAppendSelector`.
fn prefix_and_append(
    owner: &str,
    current: String,
    new: &str,
    prefix: &str,
) -> Result<String, EvalError> {
    if new.is_empty() {
        return Ok(current);
    }
    let p = prefixed(owner, new, prefix)?;
    Ok(if current.is_empty() {
        p
    } else {
        format!("({current}) && {p}")
    })
}

/// `rules.go` `parseServiceAccounts`: names become
/// `projectcalico.org/serviceaccount in {...}` (normalised), ANDed after the `pcsa.`-prefixed
/// selector.
fn service_account_selector(owner: &str, sam: &ServiceAccountMatch) -> Result<String, EvalError> {
    let updated = if sam.selector.is_empty() {
        String::new()
    } else {
        prefixed(owner, &sam.selector, SERVICE_ACCOUNT_LABEL_PREFIX)?
    };
    if sam.names.is_empty() {
        return Ok(updated);
    }
    let names = format!(
        "{LABEL_SERVICE_ACCOUNT} in {{ '{}' }}",
        sam.names.join("', '")
    );
    let names = parse_selector(owner, &names)?.to_string();
    Ok(if updated.is_empty() {
        names
    } else {
        format!("({updated}) && ({names})")
    })
}

/// `rules.go` `GetEntityRuleSelector` / `getEndpointSelector`: the v1 selector text for one
/// side of a rule of a policy in namespace `ns` (empty for global policies and profiles).
pub(crate) fn entity_selector_text(
    owner: &str,
    er: &EntityRule,
    ns: &str,
) -> Result<String, EvalError> {
    let sa = match &er.service_accounts {
        Some(sam) => service_account_selector(owner, sam)?,
        None => String::new(),
    };
    let ns_selector = if !er.namespace_selector.is_empty() {
        // "We treat all() as select all namespaces" / "global() as opposite to all()": a
        // plain text replacement on the prefixed canonical form, as Calico does it.
        prefixed(owner, &er.namespace_selector, NAMESPACE_LABEL_PREFIX)?
            .replace("all()", &format!("has({LABEL_NAMESPACE})"))
            .replace("global()", &format!("!has({LABEL_NAMESPACE})"))
    } else if !ns.is_empty() {
        format!("{LABEL_NAMESPACE} == '{ns}'")
    } else {
        String::new()
    };
    let parts: Vec<&str> = [sa.as_str(), er.selector.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let mut selector = match parts.as_slice() {
        [] => String::new(),
        [one] => (*one).to_string(),
        many => format!("({})", many.join(") && (")),
    };
    if !ns_selector.is_empty()
        && (!selector.is_empty()
            || !er.not_selector.is_empty()
            || !er.namespace_selector.is_empty())
    {
        selector = if selector.is_empty() {
            ns_selector
        } else {
            format!("({ns_selector}) && ({selector})")
        };
    }
    Ok(selector)
}

/// `rule_scanner.go` `combineMatchesIfPossible`: with a positive selector, the negated one is
/// folded into it (`(pos) && (!(neg))`); without one, the negated selector stays separate so
/// that it also matches addresses outside every known endpoint.
fn combine_selectors(positive: String, negated: &str) -> (String, String) {
    if positive.is_empty() || negated.is_empty() {
        return (positive, negated.to_string());
    }
    (format!("({positive}) && (!({negated}))"), String::new())
}

fn compile_entity(owner: &str, er: &EntityRule, ns: &str) -> Result<EntityMatch, EvalError> {
    if er.services.is_some() {
        return Err(EvalError::Unsupported {
            owner: owner.to_string(),
            what: "a Kubernetes Services match (needs Service endpoints)".to_string(),
        });
    }
    // The notSelector is passed through unchanged (`rules.go`: `NotSrcSelector:
    // ar.Source.NotSelector`), it is not namespace-scoped.
    let (pos, neg) = combine_selectors(entity_selector_text(owner, er, ns)?, &er.not_selector);
    let nets = |list: &[String], field| -> Result<Vec<IpNet>, EvalError> {
        list.iter()
            .map(|n| parse_net(owner, field, n).map(|n| n.trunc()))
            .collect()
    };
    let mut m = EntityMatch {
        nets: nets(&er.nets, "nets")?,
        not_nets: nets(&er.not_nets, "notNets")?,
        selector: (!pos.is_empty())
            .then(|| parse_selector(owner, &pos))
            .transpose()?,
        not_selector: (!neg.is_empty())
            .then(|| parse_selector(owner, &neg))
            .transpose()?,
        ..EntityMatch::default()
    };
    // `rule_scanner.go` `splitNamedAndNumericPorts`.
    for p in &er.ports {
        if p.is_named() {
            m.named_ports.push(p.port_name.clone());
        } else {
            m.ports.push((p.min_port, p.max_port));
        }
    }
    for p in &er.not_ports {
        if p.is_named() {
            m.not_named_ports.push(p.port_name.clone());
        } else {
            m.not_ports.push((p.min_port, p.max_port));
        }
    }
    Ok(m)
}

fn icmp_match(
    owner: &str,
    f: &calico_api::rule::IcmpFields,
) -> Result<Option<IcmpMatch>, EvalError> {
    let byte = |v: i64, field| {
        u8::try_from(v).map_err(|_| EvalError::BadValue {
            owner: owner.to_string(),
            field,
            value: v.to_string(),
        })
    };
    // `rule_convert.go`: a code is only rendered together with a type.
    match f.type_ {
        None => Ok(None),
        Some(t) => Ok(Some(IcmpMatch {
            type_: byte(t, "icmp type")?,
            code: f.code.map(|c| byte(c, "icmp code")).transpose()?,
        })),
    }
}

/// `rules.go` `RuleAPIV3ToBackend` followed by `rule_scanner.go` / `rule_convert.go`.
pub(crate) fn compile_rule(owner: &str, r: &Rule, ns: &str) -> Result<CompiledRule, EvalError> {
    let action = match &r.action {
        Some(Action::Allow) => RuleAction::Allow,
        Some(Action::Deny) => RuleAction::Deny,
        Some(Action::Log) => RuleAction::Log,
        Some(Action::Pass) => RuleAction::Pass,
        // `CombineMatchAndActionsForProtoRule`: "" renders as allow; Felix panics on any other.
        None => RuleAction::Allow,
        Some(Action::Other(a)) => {
            return Err(EvalError::BadValue {
                owner: owner.to_string(),
                field: "action",
                value: a.clone(),
            });
        }
    };
    let protocol = r
        .protocol
        .as_ref()
        .map(|p| protocol_number(owner, p))
        .transpose()?;
    let not_protocol = r
        .not_protocol
        .as_ref()
        .map(|p| protocol_number(owner, p))
        .transpose()?;
    // `rule_convert.go` `ipVersionToProtoIPVersion`: explicit version, else implied by the
    // protocol *name* icmp / icmpv6 (a numeric protocol implies nothing).
    let ip_version = match (r.ip_version, &r.protocol) {
        (Some(4), _) => Some(4),
        (Some(6), _) => Some(6),
        (Some(v), _) => {
            return Err(EvalError::BadValue {
                owner: owner.to_string(),
                field: "ipVersion",
                value: v.to_string(),
            });
        }
        (None, Some(calico_api::numorstring::Protocol::Name(n))) => {
            match n.to_ascii_lowercase().as_str() {
                "icmp" => Some(4),
                "icmpv6" => Some(6),
                _ => None,
            }
        }
        (None, _) => None,
    };
    Ok(CompiledRule {
        action,
        ip_version,
        protocol,
        not_protocol,
        icmp: r
            .icmp
            .as_ref()
            .map(|f| icmp_match(owner, f))
            .transpose()?
            .flatten(),
        not_icmp: r
            .not_icmp
            .as_ref()
            .map(|f| icmp_match(owner, f))
            .transpose()?
            .flatten(),
        // HTTP matches are L7 (enforced by Dikastes when ALP is on); Felix's L3/L4 rendering
        // in `felix/rules/policy.go` ignores them, and so do we.
        src: compile_entity(&format!("{owner} source"), &r.source, ns)?,
        dst: compile_entity(&format!("{owner} destination"), &r.destination, ns)?,
    })
}

fn compile_rules(
    owner: &str,
    dir: &str,
    rules: &[Rule],
    ns: &str,
) -> Result<Vec<CompiledRule>, EvalError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| compile_rule(&format!("{owner} {dir}[{i}]"), r, ns))
        .collect()
}

struct PolicyInput<'a> {
    id: PolicyId,
    tier: &'a str,
    order: Option<f64>,
    selector: String,
    types: &'a [PolicyType],
    ingress: &'a [Rule],
    egress: &'a [Rule],
    flags: (bool, bool, bool),
}

fn compile_policy(p: PolicyInput<'_>) -> Result<(String, PolicyData), EvalError> {
    let owner = p.id.to_string();
    let ns = p.id.namespace.clone();
    let (do_not_track, pre_dnat, apply_on_forward) = p.flags;
    Ok((
        p.tier.to_string(),
        PolicyData {
            selector: parse_selector(&owner, &p.selector)?,
            // `policy_sorter.go` `ExtractPolicyMetadata`: no types means both (defaulting
            // normally fills them in first).
            ingress: p.types.is_empty() || p.types.contains(&PolicyType::Ingress),
            egress: p.types.is_empty() || p.types.contains(&PolicyType::Egress),
            do_not_track,
            pre_dnat,
            apply_on_forward,
            inbound: compile_rules(&owner, "ingress", p.ingress, &ns)?,
            outbound: compile_rules(&owner, "egress", p.egress, &ns)?,
            order: p.order,
            id: p.id,
        },
    ))
}

/// `networkpolicyprocessor.go`: `(sel) && projectcalico.org/namespace == 'ns'` (just the
/// namespace term when the selector is empty), then the `pcsa.`-prefixed
/// serviceAccountSelector appended.
fn namespaced_policy_selector(owner: &str, p: &NetworkPolicy) -> Result<String, EvalError> {
    let ns_sel = format!("{LABEL_NAMESPACE} == '{}'", p.metadata.namespace);
    let sel = if p.spec.selector.is_empty() {
        ns_sel
    } else {
        format!("({}) && {ns_sel}", p.spec.selector)
    };
    prefix_and_append(
        owner,
        sel,
        &p.spec.service_account_selector,
        SERVICE_ACCOUNT_LABEL_PREFIX,
    )
}

/// `globalnetworkpolicyprocessor.go`: namespaceSelector appended with `pcns.` and every
/// `all()` replaced by `has(projectcalico.org/namespace)`; then serviceAccountSelector with
/// `pcsa.` and `all()` → `has(projectcalico.org/serviceaccount)` (plain text replacements on
/// the whole selector, as Calico does).
fn global_policy_selector(owner: &str, p: &GlobalNetworkPolicy) -> Result<String, EvalError> {
    let mut sel = p.spec.selector.clone();
    if !p.spec.namespace_selector.is_empty() {
        sel = prefix_and_append(
            owner,
            sel,
            &p.spec.namespace_selector,
            NAMESPACE_LABEL_PREFIX,
        )?
        .replace("all()", &format!("has({LABEL_NAMESPACE})"));
    }
    if !p.spec.service_account_selector.is_empty() {
        sel = prefix_and_append(
            owner,
            sel,
            &p.spec.service_account_selector,
            SERVICE_ACCOUNT_LABEL_PREFIX,
        )?
        .replace("all()", &format!("has({LABEL_SERVICE_ACCOUNT})"));
    }
    Ok(sel)
}

/// `policy_sorter.go` `TierLess`: valid tiers first, then order ascending with a missing
/// order last, then name.
fn tier_cmp(a: &TierData, b: &TierData) -> Ordering {
    b.valid
        .cmp(&a.valid)
        .then_with(|| match (a.order, b.order) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.total_cmp(&y),
        })
        .then_with(|| a.name.cmp(&b.name))
}

/// `policy_sorter.go` `PolKVLess`: order ascending (missing = +Inf), ties broken by the
/// string `"<name>/<namespace>/<kind>"`.
fn policy_cmp(a: &PolicyData, b: &PolicyData) -> Ordering {
    let order = |p: &PolicyData| p.order.unwrap_or(f64::INFINITY);
    let key = |p: &PolicyData| format!("{}/{}/{}", p.id.name, p.id.namespace, p.id.kind.as_str());
    order(a)
        .total_cmp(&order(b))
        .then_with(|| key(a).cmp(&key(b)))
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

fn allow_all() -> CompiledRule {
    CompiledRule {
        action: RuleAction::Allow,
        ip_version: None,
        protocol: None,
        not_protocol: None,
        icmp: None,
        not_icmp: None,
        src: EntityMatch::default(),
        dst: EntityMatch::default(),
    }
}

/// A profile Calico derives rather than stores: `kns.<ns>` (allow-all ingress and egress,
/// `pcns.` labels), `ksa.<ns>.<sa>` (no rules, `pcsa.` labels), both from `conversion.go`,
/// and `projectcalico-default-allow` (allow all, created by calico-node).
fn derived_profile(
    name: &str,
    known: &KnownLabels,
    namespaces: &BTreeSet<String>,
    service_accounts: &BTreeSet<(String, String)>,
) -> Option<ProfileData> {
    if name == DEFAULT_ALLOW_PROFILE {
        return Some(ProfileData {
            labels: BTreeMap::new(),
            inbound: vec![allow_all()],
            outbound: vec![allow_all()],
        });
    }
    if let Some(ns) = name.strip_prefix(NAMESPACE_PROFILE_PREFIX)
        && namespaces.contains(ns)
    {
        let empty = BTreeMap::new();
        let labels = known.namespaces.get(ns).unwrap_or(&empty);
        return Some(ProfileData {
            labels: profile_labels(NAMESPACE_LABEL_PREFIX, ns, labels),
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
            return Some(ProfileData {
                labels: profile_labels(SERVICE_ACCOUNT_LABEL_PREFIX, sa, labels),
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
    profiles: &BTreeMap<String, ProfileData>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in parents.iter().rev() {
        if let Some(pd) = profiles.get(p) {
            out.extend(pd.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
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
            let t = defaulted(t)?;
            let name = t.metadata.name.clone();
            let data = TierData {
                name: name.clone(),
                order: t.spec.order,
                valid: true,
                default_pass: t.spec.default_action == Some(Action::Pass),
                policies: Vec::new(),
            };
            if tiers.insert(name.clone(), data).is_some() {
                return Err(EvalError::DuplicateResource { kind: "Tier", name });
            }
        }
        for (name, order, action) in PROTECTED_TIERS {
            tiers.entry(name.to_string()).or_insert_with(|| TierData {
                name: name.to_string(),
                order: Some(order),
                valid: true,
                default_pass: action == Action::Pass,
                policies: Vec::new(),
            });
        }

        // Policies.
        let mut compiled: Vec<(String, PolicyData)> = Vec::new();
        for p in &res.global_policies {
            let p = defaulted(p)?;
            let id = PolicyId {
                kind: PolicyKind::GlobalNetworkPolicy,
                namespace: String::new(),
                name: p.metadata.name.clone(),
            };
            let selector = global_policy_selector(&id.to_string(), &p)?;
            let s = &p.spec;
            compiled.push(compile_policy(PolicyInput {
                id,
                tier: &s.tier,
                order: s.order,
                selector,
                types: &s.types,
                ingress: &s.ingress,
                egress: &s.egress,
                flags: (s.do_not_track, s.pre_dnat, s.apply_on_forward),
            })?);
        }
        let namespaced = res
            .policies
            .iter()
            .map(|p| (PolicyKind::NetworkPolicy, p))
            .chain(
                res.kubernetes_policies
                    .iter()
                    .map(|p| (PolicyKind::KubernetesNetworkPolicy, p)),
            );
        for (kind, p) in namespaced {
            let p = defaulted(p)?;
            let id = PolicyId {
                kind,
                namespace: p.metadata.namespace.clone(),
                name: p.metadata.name.clone(),
            };
            let selector = namespaced_policy_selector(&id.to_string(), &p)?;
            let s = &p.spec;
            compiled.push(compile_policy(PolicyInput {
                id,
                tier: &s.tier,
                order: s.order,
                selector,
                types: &s.types,
                ingress: &s.ingress,
                egress: &s.egress,
                flags: (false, false, false),
            })?);
        }
        let mut seen_ids = BTreeSet::new();
        for (tier, pol) in compiled {
            if !seen_ids.insert(pol.id.clone()) {
                return Err(EvalError::DuplicateResource {
                    kind: pol.id.kind.as_str(),
                    name: pol.id.to_string(),
                });
            }
            // A policy in a tier that does not exist creates an invalid tier: sorted after
            // all valid tiers, no order, empty default action (so: drop at its end)
            // (`policy_sorter.go` `UpdatePolicy`, `policy_resolver.go` keeps using it).
            tiers
                .entry(tier.clone())
                .or_insert_with(|| TierData {
                    name: tier,
                    order: None,
                    valid: false,
                    default_pass: false,
                    policies: Vec::new(),
                })
                .policies
                .push(pol);
        }
        let mut tiers: Vec<TierData> = tiers.into_values().collect();
        for t in &mut tiers {
            t.policies.sort_by(policy_cmp);
        }
        tiers.sort_by(tier_cmp);

        // Profiles: the given ones, then derived ones for names endpoints refer to.
        let mut profiles: BTreeMap<String, ProfileData> = BTreeMap::new();
        for p in &res.profiles {
            let p = defaulted(p)?;
            let name = p.metadata.name.clone();
            let owner = format!("profile {name}");
            let data = ProfileData {
                labels: p.spec.labels_to_apply.clone(),
                inbound: compile_rules(&owner, "ingress", &p.spec.ingress, "")?,
                outbound: compile_rules(&owner, "egress", &p.spec.egress, "")?,
            };
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
                    t.name.clone(),
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

#[cfg(test)]
#[path = "build_tests.rs"]
mod tests;
