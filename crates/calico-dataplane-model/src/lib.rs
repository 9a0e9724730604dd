//! calico-dataplane-model: what the policy calculation graph tells a dataplane, the contract
//! between `calico-calc` (which computes it from datastore resources) and the dataplane
//! compilers and drivers (`calico-nft`, and later iptables or eBPF).
//!
//! It mirrors Felix's calc → dataplane protocol (`felix/proto/felixbackend.proto`, sent by
//! `felix/calc/event_sequencer.go`): IP sets with their members, the *active* policies and
//! profiles (those that apply to at least one local endpoint), already rewritten to the v1 form
//! whose selectors are IP-set references, and each local endpoint with its ordered tiers and
//! policies per direction. A [`DataplaneModel`] is the full state; a [`ModelUpdate`] is one
//! change to it, and [`DataplaneModel::apply`] replays updates so a dataplane can hold its
//! current target.
//!
//! Ordering contract (Felix's event sequencer): within one batch of updates, IP sets are
//! created / grown before the policies that reference them, policies and profiles before the
//! endpoints that use them; endpoint removals come before policy removals, and policy removals
//! before IP-set removals. [`DataplaneModel::check_references`] verifies the result.
//!
//! Pure data: no I/O, no selectors, no datastore types. It depends only on `ipnet`/`serde` and
//! must not depend on the calculation graph, a dataplane, or Calico's v3 API types.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An IP set's ID: Calico's selector unique ID (`s:<base64 sha224>`) for selector sets,
/// `n:<...>` for named-port sets, the same IDs Felix derives its ipset/nft set names from.
pub type IpSetId = String;

/// What an IP set holds (Felix `proto.IPSetUpdate_IPSetType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpSetKind {
    /// Single addresses (`IP`): endpoints' addresses selected by a selector. Network sets
    /// selected by a selector contribute CIDRs, so a selector set holding any CIDR wider than a
    /// host route is of kind [`IpSetKind::Nets`] instead.
    Addresses,
    /// Address + protocol + port (`IP_AND_PORT`): named-port sets.
    AddressPorts,
    /// CIDRs (`NET`).
    Nets,
}

/// One member of an IP set. Felix renders these as `10.0.0.1`, `10.0.0.0/24` and
/// `10.0.0.1,tcp:8080`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpSetMember {
    Address(IpAddr),
    Net(IpNet),
    AddressPort {
        addr: IpAddr,
        protocol: u8,
        port: u16,
    },
}

impl IpSetMember {
    /// The member's address family: 4 or 6.
    pub fn ip_version(&self) -> u8 {
        let v4 = match self {
            IpSetMember::Address(a) | IpSetMember::AddressPort { addr: a, .. } => a.is_ipv4(),
            IpSetMember::Net(n) => matches!(n, IpNet::V4(_)),
        };
        if v4 { 4 } else { 6 }
    }
}

impl fmt::Display for IpSetMember {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpSetMember::Address(a) => write!(f, "{a}"),
            IpSetMember::Net(n) => write!(f, "{n}"),
            IpSetMember::AddressPort {
                addr,
                protocol,
                port,
            } => {
                let p = match protocol {
                    6 => "tcp".to_string(),
                    17 => "udp".to_string(),
                    132 => "sctp".to_string(),
                    n => n.to_string(),
                };
                write!(f, "{addr},{p}:{port}")
            }
        }
    }
}

/// An IP set with all its members.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpSet {
    pub kind: Option<IpSetKind>,
    pub members: BTreeSet<IpSetMember>,
}

/// The kind part of a policy's identity (`model.PolicyKey` / `proto.PolicyID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PolicyKind {
    GlobalNetworkPolicy,
    NetworkPolicy,
    /// A Kubernetes NetworkPolicy converted by Calico (`KubernetesNetworkPolicy`).
    KubernetesNetworkPolicy,
}

/// Identifies one policy (`proto.PolicyID`): tier, kind, namespace (empty for global) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PolicyId {
    pub tier: String,
    pub kind: PolicyKind,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for PolicyId {
    /// `<tier>/gnp/<name>`, `<tier>/np/<ns>/<name>`, `<tier>/knp/<ns>/<name>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PolicyKind::GlobalNetworkPolicy => "gnp",
            PolicyKind::NetworkPolicy => "np",
            PolicyKind::KubernetesNetworkPolicy => "knp",
        };
        if self.namespace.is_empty() {
            write!(f, "{}/{kind}/{}", self.tier, self.name)
        } else {
            write!(f, "{}/{kind}/{}/{}", self.tier, self.namespace, self.name)
        }
    }
}

/// A v1 rule action (`rules.go` `ruleActionAPIV3ToBackend`; Felix's `next-tier` is `Pass`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleAction {
    Allow,
    Deny,
    /// Log the packet (Felix's `LogPrefix`, default `calico-packet`) and go on to the next rule.
    Log,
    /// Stop evaluating this tier and go on with the next one.
    Pass,
}

/// ICMP type and optional code (`rule_convert.go`: a code is only rendered with a type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IcmpMatch {
    #[serde(rename = "type")]
    pub type_: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u8>,
}

/// An inclusive port range; a single port has `first == last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// One side (source or destination) of a rule, in the v1 form Felix renders
/// (`proto.Rule` `SrcNet`, `SrcPorts`, `SrcNamedPortIpSetIds`, `SrcIpSetIds`, and the `Not…`
/// variants). Every non-empty field must hold (AND). Within one list, entries are ORed; the
/// numeric ports and the named-port sets of one side are ORed together. A negated list holds
/// when *no* entry matches. Several entries in `ip_sets` are ANDed (the packet's address must
/// be in every one), entries in `not_ip_sets` each exclude.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSide {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nets: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_nets: Vec<IpNet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<PortRange>,
    /// Named-port sets ([`IpSetKind::AddressPorts`]), ORed with `ports`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_port_ip_sets: Vec<IpSetId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_named_port_ip_sets: Vec<IpSetId>,
    /// Selector sets ([`IpSetKind::Addresses`] or [`IpSetKind::Nets`]), ANDed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_sets: Vec<IpSetId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ip_sets: Vec<IpSetId>,
}

impl RuleSide {
    /// Every IP set this side references.
    pub fn ip_set_ids(&self) -> impl Iterator<Item = &IpSetId> {
        self.named_port_ip_sets
            .iter()
            .chain(&self.not_named_port_ip_sets)
            .chain(&self.ip_sets)
            .chain(&self.not_ip_sets)
    }
}

/// One rule of an active policy or profile (`proto.Rule`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub action: RuleAction,
    /// Explicit `ipVersion`, or the version implied by protocol `icmp` (4) / `icmpv6` (6).
    /// A rule with a version only applies to packets of that family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<IcmpMatch>,
    #[serde(default)]
    pub src: RuleSide,
    #[serde(default)]
    pub dst: RuleSide,
}

impl Rule {
    /// A rule matching everything with the given action.
    pub fn any(action: RuleAction) -> Rule {
        Rule {
            action,
            ip_version: None,
            protocol: None,
            not_protocol: None,
            icmp: None,
            not_icmp: None,
            src: RuleSide::default(),
            dst: RuleSide::default(),
        }
    }

    /// Every IP set this rule references.
    pub fn ip_set_ids(&self) -> impl Iterator<Item = &IpSetId> {
        self.src.ip_set_ids().chain(self.dst.ip_set_ids())
    }
}

/// An active policy (`proto.Policy`). `inbound` applies to traffic arriving at a selected
/// endpoint, `outbound` to traffic leaving it; a policy without the ingress (egress) type has
/// no inbound (outbound) rules and is not listed in the endpoints' ingress (egress) tiers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Namespace of a namespaced policy, empty for global ones.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default)]
    pub inbound: Vec<Rule>,
    #[serde(default)]
    pub outbound: Vec<Rule>,
    /// `doNotTrack`: rendered in the raw (pre-conntrack) stage; Allow means NOTRACK + accept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untracked: bool,
    /// `preDNAT`: rendered before DNAT; only inbound rules are valid.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pre_dnat: bool,
}

impl Policy {
    /// Every IP set this policy references.
    pub fn ip_set_ids(&self) -> impl Iterator<Item = &IpSetId> {
        self.inbound
            .iter()
            .chain(&self.outbound)
            .flat_map(Rule::ip_set_ids)
    }
}

/// An active profile (`proto.Profile`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub inbound: Vec<Rule>,
    #[serde(default)]
    pub outbound: Vec<Rule>,
}

impl Profile {
    /// Every IP set this profile references.
    pub fn ip_set_ids(&self) -> impl Iterator<Item = &IpSetId> {
        self.inbound
            .iter()
            .chain(&self.outbound)
            .flat_map(Rule::ip_set_ids)
    }
}

/// What happens at the end of a tier whose policies apply but did not decide
/// (`Tier.spec.defaultAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TierDefaultAction {
    #[default]
    Deny,
    Pass,
}

/// One tier as it applies to one endpoint (`proto.TierInfo`): the policies of the tier that
/// select the endpoint, in evaluation order (policy order, then name). A tier appears in an
/// endpoint's list for a direction only when at least one of its policies applies in that
/// direction; tiers are in tier order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TierInfo {
    pub name: String,
    #[serde(default)]
    pub default_action: TierDefaultAction,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ingress_policies: Vec<PolicyId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_policies: Vec<PolicyId>,
}

/// Identifies a workload endpoint (`proto.WorkloadEndpointID`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEndpointId {
    pub orchestrator_id: String,
    /// `<namespace>/<pod>` for Kubernetes.
    pub workload_id: String,
    pub endpoint_id: String,
}

impl fmt::Display for WorkloadEndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.orchestrator_id, self.workload_id, self.endpoint_id
        )
    }
}

/// A local workload endpoint (`proto.WorkloadEndpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEndpoint {
    /// Host-side interface name (`cali…`).
    pub interface_name: String,
    /// Profile names in order (`kns.<ns>`, `ksa.<ns>.<sa>`, ...).
    #[serde(default)]
    pub profile_ids: Vec<String>,
    #[serde(default)]
    pub ipv4_nets: Vec<IpNet>,
    #[serde(default)]
    pub ipv6_nets: Vec<IpNet>,
    #[serde(default)]
    pub tiers: Vec<TierInfo>,
    /// `allowSpoofedSourcePrefixes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_spoofed_source_prefixes: Vec<IpNet>,
}

/// A host endpoint (`proto.HostEndpoint`). Separate tier lists per stage: normal
/// (tracked, filter), `untracked` (doNotTrack policies, raw), `pre_dnat` (preDNAT policies) and
/// `forward` (applyOnForward policies, for traffic forwarded through the host).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostEndpoint {
    /// `interfaceName`; `*` means all interfaces of the host.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface_name: String,
    #[serde(default)]
    pub profile_ids: Vec<String>,
    #[serde(default)]
    pub expected_ipv4_addrs: Vec<IpAddr>,
    #[serde(default)]
    pub expected_ipv6_addrs: Vec<IpAddr>,
    #[serde(default)]
    pub tiers: Vec<TierInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untracked_tiers: Vec<TierInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_dnat_tiers: Vec<TierInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward_tiers: Vec<TierInfo>,
}

/// One change to the dataplane's target state (`proto.ToDataplane` payloads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum ModelUpdate {
    /// Creates or replaces a whole set (`IPSetUpdate`).
    IpSetUpdate {
        id: IpSetId,
        set: IpSet,
    },
    /// Changes some members of an existing set (`IPSetDeltaUpdate`).
    IpSetDelta {
        id: IpSetId,
        added: Vec<IpSetMember>,
        removed: Vec<IpSetMember>,
    },
    IpSetRemove {
        id: IpSetId,
    },
    ActivePolicyUpdate {
        id: PolicyId,
        policy: Policy,
    },
    ActivePolicyRemove {
        id: PolicyId,
    },
    ActiveProfileUpdate {
        name: String,
        profile: Profile,
    },
    ActiveProfileRemove {
        name: String,
    },
    WorkloadEndpointUpdate {
        id: WorkloadEndpointId,
        endpoint: WorkloadEndpoint,
    },
    WorkloadEndpointRemove {
        id: WorkloadEndpointId,
    },
    /// Host endpoints are keyed by their name (`HostEndpoint.metadata.name`).
    HostEndpointUpdate {
        name: String,
        endpoint: HostEndpoint,
    },
    HostEndpointRemove {
        name: String,
    },
}

/// A reference from the model to something the model does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{owner} references IP set {id}, which does not exist")]
    MissingIpSet { owner: String, id: IpSetId },
    #[error("{owner} references policy {id}, which is not active")]
    MissingPolicy { owner: String, id: PolicyId },
    #[error("{owner} references profile {name}, which is not active")]
    MissingProfile { owner: String, name: String },
    #[error("delta for IP set {id}, which does not exist")]
    DeltaForMissingSet { id: IpSetId },
}

/// The whole target state of a policy dataplane.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataplaneModel {
    #[serde(default)]
    pub ip_sets: BTreeMap<IpSetId, IpSet>,
    #[serde(default)]
    pub policies: BTreeMap<PolicyId, Policy>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    #[serde(default)]
    pub workload_endpoints: BTreeMap<WorkloadEndpointId, WorkloadEndpoint>,
    #[serde(default)]
    pub host_endpoints: BTreeMap<String, HostEndpoint>,
}

impl DataplaneModel {
    /// Applies one update. A delta for an unknown set is an error (and changes nothing):
    /// it means updates were lost or reordered.
    pub fn apply(&mut self, update: &ModelUpdate) -> Result<(), ModelError> {
        match update {
            ModelUpdate::IpSetUpdate { id, set } => {
                self.ip_sets.insert(id.clone(), set.clone());
            }
            ModelUpdate::IpSetDelta { id, added, removed } => {
                let set = self
                    .ip_sets
                    .get_mut(id)
                    .ok_or_else(|| ModelError::DeltaForMissingSet { id: id.clone() })?;
                for m in removed {
                    set.members.remove(m);
                }
                set.members.extend(added.iter().copied());
            }
            ModelUpdate::IpSetRemove { id } => {
                self.ip_sets.remove(id);
            }
            ModelUpdate::ActivePolicyUpdate { id, policy } => {
                self.policies.insert(id.clone(), policy.clone());
            }
            ModelUpdate::ActivePolicyRemove { id } => {
                self.policies.remove(id);
            }
            ModelUpdate::ActiveProfileUpdate { name, profile } => {
                self.profiles.insert(name.clone(), profile.clone());
            }
            ModelUpdate::ActiveProfileRemove { name } => {
                self.profiles.remove(name);
            }
            ModelUpdate::WorkloadEndpointUpdate { id, endpoint } => {
                self.workload_endpoints.insert(id.clone(), endpoint.clone());
            }
            ModelUpdate::WorkloadEndpointRemove { id } => {
                self.workload_endpoints.remove(id);
            }
            ModelUpdate::HostEndpointUpdate { name, endpoint } => {
                self.host_endpoints.insert(name.clone(), endpoint.clone());
            }
            ModelUpdate::HostEndpointRemove { name } => {
                self.host_endpoints.remove(name);
            }
        }
        Ok(())
    }

    /// Checks that every referenced IP set, policy and profile exists: the invariant Felix's
    /// event sequencer keeps after each batch. Profiles an endpoint names but that do not exist
    /// are allowed by Calico (the endpoint then falls through to "no profile matched" drop), so
    /// they are reported only when `strict_profiles` is set.
    pub fn check_references(&self, strict_profiles: bool) -> Result<(), ModelError> {
        for (id, p) in &self.policies {
            for set in p.ip_set_ids() {
                if !self.ip_sets.contains_key(set) {
                    return Err(ModelError::MissingIpSet {
                        owner: format!("policy {id}"),
                        id: set.clone(),
                    });
                }
            }
        }
        for (name, p) in &self.profiles {
            for set in p.ip_set_ids() {
                if !self.ip_sets.contains_key(set) {
                    return Err(ModelError::MissingIpSet {
                        owner: format!("profile {name}"),
                        id: set.clone(),
                    });
                }
            }
        }
        let check_tiers = |owner: String, tiers: &[TierInfo]| -> Result<(), ModelError> {
            for t in tiers {
                for id in t.ingress_policies.iter().chain(&t.egress_policies) {
                    if !self.policies.contains_key(id) {
                        return Err(ModelError::MissingPolicy {
                            owner,
                            id: id.clone(),
                        });
                    }
                }
            }
            Ok(())
        };
        let check_profiles = |owner: &str, names: &[String]| -> Result<(), ModelError> {
            if strict_profiles {
                for n in names {
                    if !self.profiles.contains_key(n) {
                        return Err(ModelError::MissingProfile {
                            owner: owner.to_string(),
                            name: n.clone(),
                        });
                    }
                }
            }
            Ok(())
        };
        for (id, ep) in &self.workload_endpoints {
            let owner = format!("workload endpoint {id}");
            check_tiers(owner.clone(), &ep.tiers)?;
            check_profiles(&owner, &ep.profile_ids)?;
        }
        for (name, ep) in &self.host_endpoints {
            let owner = format!("host endpoint {name}");
            for tiers in [
                &ep.tiers,
                &ep.untracked_tiers,
                &ep.pre_dnat_tiers,
                &ep.forward_tiers,
            ] {
                check_tiers(owner.clone(), tiers)?;
            }
            check_profiles(&owner, &ep.profile_ids)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wep_id(name: &str) -> WorkloadEndpointId {
        WorkloadEndpointId {
            orchestrator_id: "k8s".into(),
            workload_id: format!("default/{name}"),
            endpoint_id: "eth0".into(),
        }
    }

    fn pol_id(name: &str) -> PolicyId {
        PolicyId {
            tier: "default".into(),
            kind: PolicyKind::NetworkPolicy,
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn apply_and_check_references() {
        let mut m = DataplaneModel::default();
        let mut rule = Rule::any(RuleAction::Allow);
        rule.src.ip_sets.push("s:abc".into());
        let policy = Policy {
            namespace: "default".into(),
            inbound: vec![rule],
            ..Policy::default()
        };
        m.apply(&ModelUpdate::ActivePolicyUpdate {
            id: pol_id("p"),
            policy,
        })
        .unwrap();
        assert!(matches!(
            m.check_references(false),
            Err(ModelError::MissingIpSet { .. })
        ));
        m.apply(&ModelUpdate::IpSetUpdate {
            id: "s:abc".into(),
            set: IpSet {
                kind: Some(IpSetKind::Addresses),
                members: [IpSetMember::Address("10.0.0.1".parse().unwrap())].into(),
            },
        })
        .unwrap();
        m.check_references(false).unwrap();
        m.apply(&ModelUpdate::WorkloadEndpointUpdate {
            id: wep_id("a"),
            endpoint: WorkloadEndpoint {
                interface_name: "cali1".into(),
                profile_ids: vec!["kns.default".into()],
                tiers: vec![TierInfo {
                    name: "default".into(),
                    ingress_policies: vec![pol_id("p"), pol_id("q")],
                    ..TierInfo::default()
                }],
                ..WorkloadEndpoint::default()
            },
        })
        .unwrap();
        assert_eq!(
            m.check_references(false),
            Err(ModelError::MissingPolicy {
                owner: "workload endpoint k8s/default/a/eth0".into(),
                id: pol_id("q"),
            })
        );
        m.apply(&ModelUpdate::WorkloadEndpointRemove { id: wep_id("a") })
            .unwrap();
        m.check_references(true).unwrap();
    }

    #[test]
    fn delta_for_missing_set_is_an_error_and_changes_nothing() {
        let mut m = DataplaneModel::default();
        let before = m.clone();
        let err = m
            .apply(&ModelUpdate::IpSetDelta {
                id: "s:x".into(),
                added: vec![IpSetMember::Address("10.0.0.1".parse().unwrap())],
                removed: vec![],
            })
            .unwrap_err();
        assert_eq!(err, ModelError::DeltaForMissingSet { id: "s:x".into() });
        assert_eq!(m, before);
    }

    #[test]
    fn member_display_matches_felix() {
        let m = IpSetMember::AddressPort {
            addr: "10.0.0.1".parse().unwrap(),
            protocol: 6,
            port: 8080,
        };
        assert_eq!(m.to_string(), "10.0.0.1,tcp:8080");
        assert_eq!(m.ip_version(), 4);
        let n = IpSetMember::Net("fd00::/64".parse().unwrap());
        assert_eq!(n.to_string(), "fd00::/64");
        assert_eq!(n.ip_version(), 6);
    }

    #[test]
    fn policy_id_display() {
        assert_eq!(pol_id("p").to_string(), "default/np/default/p");
        let g = PolicyId {
            tier: "security".into(),
            kind: PolicyKind::GlobalNetworkPolicy,
            namespace: String::new(),
            name: "deny".into(),
        };
        assert_eq!(g.to_string(), "security/gnp/deny");
    }

    #[test]
    fn updates_round_trip_through_json() {
        let u = ModelUpdate::IpSetDelta {
            id: "n:abc".into(),
            added: vec![IpSetMember::AddressPort {
                addr: "10.0.0.1".parse().unwrap(),
                protocol: 17,
                port: 53,
            }],
            removed: vec![],
        };
        let text = serde_json::to_string(&u).unwrap();
        let back: ModelUpdate = serde_json::from_str(&text).unwrap();
        assert_eq!(back, u);
    }
}
