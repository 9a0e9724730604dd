//! calico-policy-rules: Calico's v3 → v1 policy rewriting, shared by the reference evaluator
//! (`calico-policy-eval`) and the policy calculation graph (`calico-calc`), so that both see
//! exactly the same rules.
//!
//! It owns what happens between a stored `projectcalico.org/v3` resource and the rules Felix
//! renders: Calico's client defaulting and validation (Felix only ever sees resources in that
//! state), the selector rewriting of libcalico-go's update processors
//! (`libcalico-go/lib/backend/syncersv1/updateprocessors/{rules,networkpolicyprocessor,
//! globalnetworkpolicyprocessor}.go`: namespace scoping, `pcns.` / `pcsa.` prefixes, service
//! account names), Felix's rule scanning and conversion (`felix/calc/rule_scanner.go`,
//! `rule_convert.go`: negated-selector folding, named/numeric port split, ICMP and IP version),
//! Felix's tier / policy ordering (`felix/calc/policy_sorter.go`) and the IP-set IDs Felix
//! derives from selectors and named ports.
//!
//! It is pure: no I/O, no state, no label index. A [`ParsedRule`] still holds *selectors*;
//! turning them into IP-set references (and computing set members) is the calculation graph's
//! job, using [`selector_ip_set_id`] / [`named_port_ip_set_id`]. It depends only on
//! `calico-api` (v3 types, defaulting, validation), `calico-selector` and the data types of
//! `calico-dataplane-model`; it must never depend on the evaluator, the calculation graph or a
//! dataplane.
//!
//! ```
//! use calico_api::policy::NetworkPolicy;
//! let mut p = NetworkPolicy::default();
//! p.metadata.name = "web".into();
//! p.metadata.namespace = "prod".into();
//! p.spec.selector = "app == 'web'".into();
//! let parsed = calico_policy_rules::parse_network_policy(&p).unwrap();
//! assert_eq!(parsed.id.to_string(), "default/np/prod/web");
//! assert_eq!(
//!     parsed.selector.to_string(),
//!     "(app == \"web\" && projectcalico.org/namespace == \"prod\")"
//! );
//! ```

mod error;
mod ipset;
mod order;
mod rules;
mod selectors;

use std::collections::BTreeMap;

use calico_api::policy::{GlobalNetworkPolicy, NetworkPolicy};
use calico_api::profile::Profile;
use calico_api::rule::{Action, PolicyType, Rule};
use calico_api::tier::{PROTECTED_TIERS, Tier};
use calico_api::{CalicoResource, FieldErrors};
use calico_selector::Selector;
use ipnet::IpNet;

pub use calico_dataplane_model::{
    IcmpMatch, IpSetId, PolicyId, PolicyKind, PortRange, RuleAction, TierDefaultAction,
};
pub use error::RulesError;
pub use ipset::{
    NAMED_PORT_PROTOCOL_ANY, NAMED_PORT_PROTOCOL_NONE, named_port_ip_set_id, named_port_protocol,
    selector_ip_set_id,
};
pub use order::{policy_kind_name, policy_order, tier_order, tier_order_with_validity};
pub use rules::{parse_net, proto_number, protocol_number};
pub use selectors::{
    LABEL_SERVICE_ACCOUNT, NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX,
    entity_selector_text,
};

/// Name prefix of the Calico NetworkPolicies that kube-controllers' policy controller writes
/// for Kubernetes NetworkPolicies (`knp.default.<name>`); they are of kind
/// [`PolicyKind::KubernetesNetworkPolicy`].
pub const KUBERNETES_POLICY_PREFIX: &str = "knp.default.";

/// One side (source or destination) of a rule in v1 form, before selectors become IP sets.
/// Entries of one list are ORed; numeric and named ports of one side are ORed together;
/// negated lists hold when no entry matches (`felix/rules/policy.go`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedSide {
    /// CIDRs, host bits cleared (`rule_convert.go` renders the network).
    pub nets: Vec<IpNet>,
    pub not_nets: Vec<IpNet>,
    /// The positive selector after `GetEntityRuleSelector` and `combineMatchesIfPossible`.
    pub selector: Option<Selector>,
    /// The negated selector, only when there is no positive selector
    /// (`combineMatchesIfPossible` folds it into the positive one otherwise).
    pub not_selector: Option<Selector>,
    pub ports: Vec<PortRange>,
    pub named_ports: Vec<String>,
    pub not_ports: Vec<PortRange>,
    pub not_named_ports: Vec<String>,
}

/// One rule in v1 form (`model.Rule` after `rule_scanner.go`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRule {
    pub action: RuleAction,
    /// Explicit `ipVersion`, or implied by protocol `icmp` (4) / `icmpv6` (6)
    /// (`rule_convert.go` `ipVersionToProtoIPVersion`).
    pub ip_version: Option<u8>,
    pub protocol: Option<u8>,
    pub not_protocol: Option<u8>,
    pub icmp: Option<IcmpMatch>,
    pub not_icmp: Option<IcmpMatch>,
    pub src: ParsedSide,
    pub dst: ParsedSide,
}

impl ParsedRule {
    /// A rule matching everything with the given action (the rules of the derived
    /// `kns.<ns>` and `projectcalico-default-allow` profiles).
    pub fn any(action: RuleAction) -> ParsedRule {
        ParsedRule {
            action,
            ip_version: None,
            protocol: None,
            not_protocol: None,
            icmp: None,
            not_icmp: None,
            src: ParsedSide::default(),
            dst: ParsedSide::default(),
        }
    }
}

/// A (Global)NetworkPolicy in v1 form (`model.Policy`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedPolicy {
    /// With the tier filled in (`spec.tier`, defaulted to `default`).
    pub id: PolicyId,
    pub order: Option<f64>,
    /// The policy selector after the update processor's namespace / service-account rewriting.
    pub selector: Selector,
    /// Whether the policy applies to ingress / egress: `types` after defaulting (and both when
    /// empty, `policy_sorter.go` `ExtractPolicyMetadata`).
    pub ingress: bool,
    pub egress: bool,
    pub do_not_track: bool,
    pub pre_dnat: bool,
    pub apply_on_forward: bool,
    pub inbound: Vec<ParsedRule>,
    pub outbound: Vec<ParsedRule>,
}

/// A Profile in v1 form.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedProfile {
    pub name: String,
    /// Labels endpoints using this profile inherit (`spec.labelsToApply`).
    pub labels_to_apply: BTreeMap<String, String>,
    pub inbound: Vec<ParsedRule>,
    pub outbound: Vec<ParsedRule>,
}

/// A Tier, as the policy sorter keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedTier {
    pub name: String,
    pub order: Option<f64>,
    /// `Pass` only for `defaultAction: Pass`; everything else drops at the end of the tier
    /// (`felix/rules/endpoints.go`: `tier.DefaultAction != string(v3.Pass)`).
    pub default_action: TierDefaultAction,
}

/// Calico's client applies defaults and validates before storing (`clientv3`); Felix only
/// ever sees resources in that state. Returns the defaulted copy.
pub fn defaulted<T: CalicoResource>(r: &T) -> Result<T, RulesError> {
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
            Err(RulesError::InvalidResource {
                kind: T::KIND,
                name,
                errors: e.to_string(),
            })
        }
    }
}

struct PolicyParts<'a> {
    id: PolicyId,
    order: Option<f64>,
    selector: String,
    types: &'a [PolicyType],
    ingress: &'a [Rule],
    egress: &'a [Rule],
    flags: (bool, bool, bool),
}

fn build_policy(p: PolicyParts<'_>) -> Result<ParsedPolicy, RulesError> {
    let owner = p.id.to_string();
    let ns = p.id.namespace.clone();
    let (do_not_track, pre_dnat, apply_on_forward) = p.flags;
    Ok(ParsedPolicy {
        selector: selectors::parse_selector(&owner, &p.selector)?,
        // `policy_sorter.go` `ExtractPolicyMetadata`: no types means both (defaulting
        // normally fills them in first).
        ingress: p.types.is_empty() || p.types.contains(&PolicyType::Ingress),
        egress: p.types.is_empty() || p.types.contains(&PolicyType::Egress),
        do_not_track,
        pre_dnat,
        apply_on_forward,
        inbound: rules::parse_rules(&owner, "ingress", p.ingress, &ns)?,
        outbound: rules::parse_rules(&owner, "egress", p.egress, &ns)?,
        order: p.order,
        id: p.id,
    })
}

/// A NetworkPolicy in v1 form. Its kind is `KubernetesNetworkPolicy` when the name starts
/// with `knp.default.` (how kube-controllers stores converted Kubernetes policies in etcd),
/// else `NetworkPolicy`.
pub fn parse_network_policy(p: &NetworkPolicy) -> Result<ParsedPolicy, RulesError> {
    let p = defaulted(p)?;
    let kind = if p.metadata.name.starts_with(KUBERNETES_POLICY_PREFIX) {
        PolicyKind::KubernetesNetworkPolicy
    } else {
        PolicyKind::NetworkPolicy
    };
    let id = PolicyId {
        tier: p.spec.tier.clone(),
        kind,
        namespace: p.metadata.namespace.clone(),
        name: p.metadata.name.clone(),
    };
    let s = &p.spec;
    let selector = selectors::namespaced_policy_selector(
        &id.to_string(),
        &id.namespace,
        &s.selector,
        &s.service_account_selector,
    )?;
    build_policy(PolicyParts {
        id,
        order: s.order,
        selector,
        types: &s.types,
        ingress: &s.ingress,
        egress: &s.egress,
        flags: (false, false, false),
    })
}

/// A GlobalNetworkPolicy in v1 form.
pub fn parse_global_network_policy(p: &GlobalNetworkPolicy) -> Result<ParsedPolicy, RulesError> {
    let p = defaulted(p)?;
    let id = PolicyId {
        tier: p.spec.tier.clone(),
        kind: PolicyKind::GlobalNetworkPolicy,
        namespace: String::new(),
        name: p.metadata.name.clone(),
    };
    let s = &p.spec;
    let selector = selectors::global_policy_selector(
        &id.to_string(),
        &s.selector,
        &s.namespace_selector,
        &s.service_account_selector,
    )?;
    build_policy(PolicyParts {
        id,
        order: s.order,
        selector,
        types: &s.types,
        ingress: &s.ingress,
        egress: &s.egress,
        flags: (s.do_not_track, s.pre_dnat, s.apply_on_forward),
    })
}

/// A Profile in v1 form (its rules are not namespace-scoped). Error owners read
/// `profile <name> ingress[i] ...`.
pub fn parse_profile(p: &Profile) -> Result<ParsedProfile, RulesError> {
    let p = defaulted(p)?;
    let name = p.metadata.name.clone();
    let owner = format!("profile {name}");
    Ok(ParsedProfile {
        labels_to_apply: p.spec.labels_to_apply.clone(),
        inbound: rules::parse_rules(&owner, "ingress", &p.spec.ingress, "")?,
        outbound: rules::parse_rules(&owner, "egress", &p.spec.egress, "")?,
        name,
    })
}

fn default_action(a: Option<&Action>) -> TierDefaultAction {
    if a == Some(&Action::Pass) {
        TierDefaultAction::Pass
    } else {
        TierDefaultAction::Deny
    }
}

/// A Tier as the policy sorter keeps it.
pub fn parse_tier(t: &Tier) -> Result<ParsedTier, RulesError> {
    let t = defaulted(t)?;
    Ok(ParsedTier {
        name: t.metadata.name.clone(),
        order: t.spec.order,
        default_action: default_action(t.spec.default_action.as_ref()),
    })
}

/// The tiers Calico always has, whether or not a Tier resource is stored: `kube-admin`,
/// `default` and `kube-baseline` with their fixed orders and default actions
/// (`api/pkg/apis/projectcalico/v3/tier.go`).
pub fn protected_tiers() -> Vec<ParsedTier> {
    PROTECTED_TIERS
        .iter()
        .map(|(name, order, action)| ParsedTier {
            name: (*name).to_string(),
            order: Some(*order),
            default_action: default_action(Some(action)),
        })
        .collect()
}

#[cfg(test)]
mod tests;
