//! A deterministic large [`DataplaneModel`] for benchmarks (this crate's and the nft driver's
//! in calico-felix), so that both measure the same table: `policies` NetworkPolicies (two
//! inbound rules: an Allow from an IP set to one port, a Deny from a /24; one outbound Allow
//! to an IP set), [`SETS`] address sets of 10 members, [`ENDPOINTS`] local workloads each
//! selected by [`PER_EP`] policies per direction in tier `default`, and one allow-all profile.
//! At 10k policies: about 20k chains, 93k rules, 4k sets.
//!
//! [`one_workload`] is the smallest model with a set whose members matter: what tests of set
//! membership changes (the element fast path) program.

use std::net::{IpAddr, Ipv4Addr};

use calico_dataplane_model::{
    DataplaneModel, IpSet, IpSetKind, IpSetMember, Policy, PolicyId, PolicyKind, PortRange,
    Profile, Rule, RuleAction, TierDefaultAction, TierInfo, WorkloadEndpoint, WorkloadEndpointId,
};
use ipnet::{IpNet, Ipv4Net};

/// Local workload endpoints.
pub const ENDPOINTS: usize = 200;
/// Address sets.
pub const SETS: usize = 2_000;
/// Policies per endpoint and direction.
pub const PER_EP: usize = 50;

/// The id of policy `i`.
pub fn policy_id(i: usize) -> PolicyId {
    PolicyId {
        tier: "default".into(),
        kind: PolicyKind::NetworkPolicy,
        namespace: format!("ns{}", i % 100),
        name: format!("policy-{i}"),
    }
}

/// The id of address set `i`.
pub fn set_id(i: usize) -> String {
    format!("s:bench-{i:05}")
}

/// The id of local endpoint `e`.
pub fn endpoint_id(e: usize) -> WorkloadEndpointId {
    WorkloadEndpointId {
        orchestrator_id: "k8s".into(),
        workload_id: format!("ns/pod-{e}"),
        endpoint_id: "eth0".into(),
    }
}

fn octet(n: usize) -> u8 {
    u8::try_from(n % 256).unwrap_or(0)
}

/// The model with `policies` policies (at least 1).
pub fn model(policies: usize) -> DataplaneModel {
    let policies = policies.max(1);
    let mut m = DataplaneModel::default();
    for i in 0..SETS {
        let members = (1..=10u8)
            .map(|j| {
                IpSetMember::Address(IpAddr::V4(Ipv4Addr::new(
                    10,
                    octet(i / 250),
                    octet(i % 250),
                    j,
                )))
            })
            .collect();
        m.ip_sets.insert(
            set_id(i),
            IpSet {
                kind: Some(IpSetKind::Addresses),
                members,
            },
        );
    }
    for i in 0..policies {
        let port = 80 + u16::from(octet(i % 100));
        let mut allow = Rule::any(RuleAction::Allow);
        allow.protocol = Some(6);
        allow.src.ip_sets = vec![set_id(i % SETS)];
        allow.dst.ports = vec![PortRange {
            first: port,
            last: port,
        }];
        let mut deny = Rule::any(RuleAction::Deny);
        deny.src.nets = vec![IpNet::V4(
            Ipv4Net::new(Ipv4Addr::new(192, 168, octet(i), 0), 24).unwrap_or_default(),
        )];
        let mut egress = Rule::any(RuleAction::Allow);
        egress.dst.ip_sets = vec![set_id((i * 7) % SETS)];
        m.policies.insert(
            policy_id(i),
            Policy {
                namespace: format!("ns{}", i % 100),
                inbound: vec![allow, deny],
                outbound: vec![egress],
                ..Policy::default()
            },
        );
    }
    m.profiles.insert(
        "kns.ns".into(),
        Profile {
            inbound: vec![Rule::any(RuleAction::Allow)],
            outbound: vec![Rule::any(RuleAction::Allow)],
        },
    );
    for e in 0..ENDPOINTS {
        let pols: Vec<PolicyId> = (0..PER_EP)
            .map(|k| policy_id((e * PER_EP + k) % policies))
            .collect();
        m.workload_endpoints.insert(
            endpoint_id(e),
            WorkloadEndpoint {
                interface_name: format!("cali{e:011x}"),
                profile_ids: vec!["kns.ns".into()],
                ipv4_nets: vec![IpNet::V4(
                    Ipv4Net::new(Ipv4Addr::new(10, 200, octet(e / 250), octet(e % 250)), 32)
                        .unwrap_or_default(),
                )],
                tiers: vec![TierInfo {
                    name: "default".into(),
                    default_action: TierDefaultAction::Deny,
                    ingress_policies: pols.clone(),
                    egress_policies: pols,
                }],
                ..WorkloadEndpoint::default()
            },
        );
    }
    m
}

/// One workload (`cali1`, 10.65.0.1, `k8s` `default/pod`) whose profile `kns.default` allows
/// inbound traffic from IP set `s:clients` (holding `members`, addresses of either family) and
/// all outbound traffic.
///
/// # Panics
/// When a member is not an IP address (a test's literal).
#[allow(clippy::expect_used)]
pub fn one_workload(members: &[&str]) -> DataplaneModel {
    let mut m = DataplaneModel::default();
    m.ip_sets.insert(
        "s:clients".into(),
        IpSet {
            kind: Some(IpSetKind::Addresses),
            members: members
                .iter()
                .map(|a| IpSetMember::Address(a.parse().expect("an IP address")))
                .collect(),
        },
    );
    let mut from_clients = Rule::any(RuleAction::Allow);
    from_clients.src.ip_sets = vec!["s:clients".into()];
    m.profiles.insert(
        "kns.default".into(),
        Profile {
            inbound: vec![from_clients],
            outbound: vec![Rule::any(RuleAction::Allow)],
        },
    );
    m.workload_endpoints.insert(
        WorkloadEndpointId {
            orchestrator_id: "k8s".into(),
            workload_id: "default/pod".into(),
            endpoint_id: "eth0".into(),
        },
        WorkloadEndpoint {
            interface_name: "cali1".into(),
            profile_ids: vec!["kns.default".into()],
            ipv4_nets: vec![IpNet::V4(
                Ipv4Net::new(Ipv4Addr::new(10, 65, 0, 1), 32).unwrap_or_default(),
            )],
            ..WorkloadEndpoint::default()
        },
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_consistent_and_compiles() {
        let m = model(300);
        assert_eq!(m.policies.len(), 300);
        assert_eq!(m.workload_endpoints.len(), ENDPOINTS);
        m.check_references(true).expect("consistent");
        let rs = crate::compile(&m, &crate::NftConfig::default()).expect("compiles");
        assert!(rs.counts().chains > 600);
    }
}
