//! Compiler structure and error tests (the golden files cover whole tables).
#![allow(clippy::unwrap_used)]

use calico_dataplane_model::{
    HostEndpoint, IpSet, IpSetKind, IpSetMember, Policy, PolicyId, PolicyKind, Profile, Rule,
    RuleAction, TierInfo, WorkloadEndpoint, WorkloadEndpointId,
};

use super::*;

fn wep_id(n: &str) -> WorkloadEndpointId {
    WorkloadEndpointId {
        orchestrator_id: "k8s".into(),
        workload_id: format!("ns/{n}"),
        endpoint_id: "eth0".into(),
    }
}

fn pid(n: &str) -> PolicyId {
    PolicyId {
        tier: "default".into(),
        kind: PolicyKind::GlobalNetworkPolicy,
        namespace: String::new(),
        name: n.into(),
    }
}

fn tier(ingress: &[&str], egress: &[&str], default_action: TierDefaultAction) -> TierInfo {
    TierInfo {
        name: "default".into(),
        default_action,
        ingress_policies: ingress.iter().map(|n| pid(n)).collect(),
        egress_policies: egress.iter().map(|n| pid(n)).collect(),
    }
}

/// A model with one active policy `p` that allows all inbound traffic.
fn model_with_allow_p() -> DataplaneModel {
    let mut m = DataplaneModel::default();
    m.policies.insert(
        pid("p"),
        Policy {
            inbound: vec![Rule::any(RuleAction::Allow)],
            ..Policy::default()
        },
    );
    m
}

fn model_with_wep(ep: WorkloadEndpoint) -> DataplaneModel {
    let mut m = model_with_allow_p();
    m.workload_endpoints.insert(wep_id("a"), ep);
    m
}

fn cfg() -> NftConfig {
    NftConfig::default()
}

#[test]
fn workload_chains_tiers_and_profiles() {
    let mut m = model_with_wep(WorkloadEndpoint {
        interface_name: "cali1".into(),
        profile_ids: vec!["kns.ns".into(), "missing".into()],
        tiers: vec![tier(&["p"], &[], TierDefaultAction::Deny)],
        ..WorkloadEndpoint::default()
    });
    m.profiles.insert("kns.ns".into(), Profile::default());
    let rs = compile(&m, &cfg()).unwrap();
    assert_eq!(
        rs.chain_rules("tw-cali1").unwrap(),
        [
            "meta mark set meta mark & 0xfffcffff",
            "meta mark set meta mark & 0xfffdffff",
            // One rule per policy: skipped once a policy allowed or passed.
            "meta mark & 0x00030000 == 0 jump pi-default/gnp/p",
            "meta mark & 0x00030000 == 0 drop",
            "meta mark & 0x00010000 == 0 jump pri-kns.ns",
            "meta mark & 0x00010000 == 0 drop",
        ]
    );
    // Egress: no tier applies, VXLAN/IPIP dropped, profiles, drop.
    assert_eq!(
        rs.chain_rules("fw-cali1").unwrap(),
        [
            "meta mark set meta mark & 0xfffcffff",
            "meta l4proto udp th dport 4789 drop",
            "meta l4proto 4 drop",
            "meta mark & 0x00010000 == 0 jump pro-kns.ns",
            "meta mark & 0x00010000 == 0 drop",
        ]
    );
    assert_eq!(
        rs.map_entries("from-wl").unwrap(),
        vec![("cali1".to_string(), "goto fw-cali1".to_string())]
    );
    assert_eq!(
        rs.map_entries("to-wl").unwrap(),
        vec![("cali1".to_string(), "goto tw-cali1".to_string())]
    );
    // Both directions of every active policy and profile exist.
    for c in [
        "pi-default/gnp/p",
        "po-default/gnp/p",
        "pri-kns.ns",
        "pro-kns.ns",
    ] {
        assert!(rs.chain_rules(c).is_some(), "{c}");
    }
}

#[test]
fn pass_default_tier_has_no_end_of_tier_drop() {
    let m = model_with_wep(WorkloadEndpoint {
        interface_name: "cali1".into(),
        tiers: vec![tier(&["p"], &[], TierDefaultAction::Pass)],
        ..WorkloadEndpoint::default()
    });
    let rs = compile(&m, &cfg()).unwrap();
    let rules = rs.chain_rules("tw-cali1").unwrap();
    assert!(!rules.contains(&"meta mark & 0x00030000 == 0 drop".to_string()));
    assert_eq!(
        rules.last().unwrap(),
        "meta mark & 0x00010000 == 0 drop",
        "no profile matched"
    );
}

#[test]
fn missing_policy_is_an_error_naming_the_endpoint() {
    let m = model_with_wep(WorkloadEndpoint {
        interface_name: "cali1".into(),
        tiers: vec![tier(&["p", "q"], &[], TierDefaultAction::Deny)],
        ..WorkloadEndpoint::default()
    });
    let e = compile(&m, &cfg()).unwrap_err();
    assert_eq!(
        e,
        NftError::MissingPolicy {
            owner: "workload endpoint k8s/ns/a/eth0".into(),
            id: "default/gnp/q".into()
        }
    );
}

#[test]
fn interface_errors() {
    let mut m = model_with_wep(WorkloadEndpoint {
        interface_name: "cali1".into(),
        ..WorkloadEndpoint::default()
    });
    m.workload_endpoints.insert(
        wep_id("b"),
        WorkloadEndpoint {
            interface_name: "cali1".into(),
            ..WorkloadEndpoint::default()
        },
    );
    assert!(matches!(
        compile(&m, &cfg()).unwrap_err(),
        NftError::DuplicateInterface { owner, iface } if owner.contains("ns/b") && iface == "cali1"
    ));
    for bad in ["", "cali\"x", "way-too-long-interface", "a b", "a/b"] {
        let m = model_with_wep(WorkloadEndpoint {
            interface_name: bad.into(),
            ..WorkloadEndpoint::default()
        });
        assert!(
            matches!(
                compile(&m, &cfg()).unwrap_err(),
                NftError::BadInterface { .. }
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn set_types_follow_kind_and_members() {
    let mut m = DataplaneModel::default();
    let addr = |s: &str| IpSetMember::Address(s.parse().unwrap());
    let net = |s: &str| IpSetMember::Net(s.parse().unwrap());
    m.ip_sets.insert(
        "s:plain".into(),
        IpSet {
            kind: Some(IpSetKind::Addresses),
            members: [addr("10.0.0.1"), addr("fd00::1"), net("10.0.0.2/32")].into(),
        },
    );
    m.ip_sets.insert(
        "s:wide".into(),
        IpSet {
            kind: Some(IpSetKind::Addresses),
            members: [addr("10.0.0.1"), net("10.0.0.0/24")].into(),
        },
    );
    let rs = compile(&m, &cfg()).unwrap();
    let elems = |n: &str| rs.set_elements(n).unwrap().collect::<Vec<_>>();
    assert_eq!(elems("a4-s/plain"), ["10.0.0.1", "10.0.0.2"]);
    assert_eq!(elems("a6-s/plain"), ["fd00::1"]);
    // A CIDR member makes it an interval set; the covered address disappears.
    assert_eq!(elems("n4-s/wide"), ["10.0.0.0/24"]);
    assert!(rs.set_elements("a4-s/wide").is_none());

    m.ip_sets.insert(
        "s:mixed".into(),
        IpSet {
            kind: None,
            members: [
                addr("10.0.0.1"),
                IpSetMember::AddressPort {
                    addr: "10.0.0.1".parse().unwrap(),
                    protocol: 6,
                    port: 80,
                },
            ]
            .into(),
        },
    );
    assert!(
        matches!(compile(&m, &cfg()).unwrap_err(), NftError::BadModel(msg) if msg.contains("s:mixed"))
    );
}

#[test]
fn host_endpoint_stages() {
    let mut m = DataplaneModel::default();
    m.policies.insert(
        pid("p"),
        Policy {
            inbound: vec![Rule::any(RuleAction::Allow)],
            untracked: true,
            ..Policy::default()
        },
    );
    m.host_endpoints.insert(
        "h".into(),
        HostEndpoint {
            interface_name: "eth0".into(),
            untracked_tiers: vec![tier(&["p"], &[], TierDefaultAction::Deny)],
            ..HostEndpoint::default()
        },
    );
    m.host_endpoints.insert(
        "noiface".into(),
        HostEndpoint {
            expected_ipv4_addrs: vec!["10.0.0.1".parse().unwrap()],
            ..HostEndpoint::default()
        },
    );
    let rs = compile(&m, &cfg()).unwrap();
    // Normal stage always (default deny but failsafes); untracked ingress only.
    assert_eq!(
        rs.chain_rules("th-eth0").unwrap(),
        [
            "meta mark set meta mark & 0xfffcffff",
            "meta l4proto . th dport @failsafe-in accept",
            "meta mark & 0x00010000 == 0 drop"
        ]
    );
    assert_eq!(
        rs.chain_rules("thr-eth0").unwrap(),
        [
            "meta mark set meta mark & 0xfffcffff",
            "meta l4proto . th dport @failsafe-in accept",
            "meta l4proto . th sport @failsafe-out accept",
            "meta mark set meta mark & 0xfffdffff",
            "meta mark & 0x00020000 == 0 jump pi-default/gnp/p",
            "meta mark & 0x00010000 != 0 notrack return",
        ]
    );
    assert!(rs.chain_rules("fhr-eth0").is_none());
    assert!(rs.chain_rules("thfw-eth0").is_none());
    assert!(rs.chain_rules("thpd-eth0").is_none());
    assert_eq!(rs.map_entries("from-hep-raw").unwrap().len(), 1);
    assert_eq!(
        rs.map_entries("from-hep").unwrap().len(),
        1,
        "no-interface HEP skipped"
    );
}

#[test]
fn wildcard_host_endpoint_is_the_dispatch_fallback() {
    let mut m = DataplaneModel::default();
    m.host_endpoints.insert(
        "all".into(),
        HostEndpoint {
            interface_name: "*".into(),
            ..HostEndpoint::default()
        },
    );
    let rs = compile(&m, &cfg()).unwrap();
    assert_eq!(
        rs.chain_rules("from-hep-dispatch").unwrap(),
        [
            "iifname vmap @from-hep",
            "iifname \"cali*\" return",
            "goto th-any-interface-wildcard"
        ]
    );
    assert!(rs.map_entries("from-hep").unwrap().is_empty());
}

#[test]
fn endpoint_to_host_action_and_prefixes() {
    let mut c = cfg();
    c.iface_prefixes = vec!["cali".into(), "tap".into()];
    c.endpoint_to_host_action = EndpointToHostAction::Return;
    let rs = compile(&DataplaneModel::default(), &c).unwrap();
    assert_eq!(
        rs.chain_rules("wl-to-host").unwrap(),
        [
            "icmpv6 type { 130, 131, 132, 133, 135, 136 } accept",
            "jump from-wl-dispatch",
            "return"
        ]
    );
    assert_eq!(
        rs.chain_rules("from-wl-dispatch").unwrap(),
        [
            "iifname vmap @from-wl",
            "iifname \"cali*\" drop",
            "iifname \"tap*\" drop"
        ]
    );
    let input = rs.chain_rules("input").unwrap();
    assert!(input.contains(&"iifname \"tap*\" goto wl-to-host".to_string()));
}

#[test]
fn bad_config_is_rejected() {
    for (f, c) in [
        (
            "table",
            NftConfig {
                table: "1bad".into(),
                ..cfg()
            },
        ),
        (
            "iface_prefixes",
            NftConfig {
                iface_prefixes: vec![],
                ..cfg()
            },
        ),
        (
            "iface_prefixes",
            NftConfig {
                iface_prefixes: vec!["ca\"li".into()],
                ..cfg()
            },
        ),
        (
            "log_prefix",
            NftConfig {
                log_prefix: "a\"b".into(),
                ..cfg()
            },
        ),
    ] {
        let e = compile(&DataplaneModel::default(), &c).unwrap_err();
        assert!(
            matches!(&e, NftError::BadConfig(m) if m.starts_with(f)),
            "{e}"
        );
    }
}

#[test]
fn shape_counts_what_render_writes() {
    let m = model_with_wep(WorkloadEndpoint {
        interface_name: "cali1".into(),
        tiers: vec![tier(&["p"], &["p"], TierDefaultAction::Deny)],
        ..WorkloadEndpoint::default()
    });
    let rs = compile(&m, &cfg()).unwrap();
    let shape = rs.shape();
    let text = rs.render();
    let chains_in_text = text.lines().filter(|l| l.starts_with("\tchain ")).count();
    assert_eq!(shape.chains.len(), chains_in_text);
    let rules_in_text = text
        .lines()
        .filter(|l| l.starts_with("\t\t") && !l.starts_with("\t\ttype filter hook"))
        .count();
    assert_eq!(shape.rule_count(), rules_in_text);
    assert_eq!(shape.sets["failsafe-in"], 9);
    assert_eq!(shape.maps["from-wl"], 1);
}

#[test]
fn rpf_check_and_spoofing_exemptions() {
    let m = model_with_wep(WorkloadEndpoint {
        interface_name: "cali1".into(),
        allow_spoofed_source_prefixes: vec![
            "10.9.0.0/16".parse().unwrap(),
            "10.9.1.0/24".parse().unwrap(),
            "192.168.0.1/32".parse().unwrap(),
            "fd00::/64".parse().unwrap(),
        ],
        ..WorkloadEndpoint::default()
    });
    let rs = compile(&m, &cfg()).unwrap();
    assert_eq!(
        rs.chain_rules("rpf-skip").unwrap(),
        [
            "iifname \"cali1\" ip saddr { 10.9.0.0/16, 192.168.0.1 } accept",
            "iifname \"cali1\" ip6 saddr fd00::/64 accept",
        ]
    );
    assert_eq!(
        &rs.chain_rules("raw-prerouting").unwrap()[..3],
        [
            "meta mark set meta mark & 0x0000ffff",
            "iifname \"cali*\" jump rpf-skip",
            "iifname \"cali*\" fib saddr . mark . iif oif 0 drop",
        ]
    );
}

#[test]
fn one_host_endpoint_per_interface_the_alphabetically_first() {
    let mut m = model_with_allow_p();
    for (name, iface, with_policy) in [
        ("b-eth0", "eth0", false),
        ("a-eth0", "eth0", true),
        ("z-all", "*", false),
        ("y-all", "*", true),
    ] {
        m.host_endpoints.insert(
            name.into(),
            HostEndpoint {
                interface_name: iface.into(),
                tiers: if with_policy {
                    vec![tier(&["p"], &[], TierDefaultAction::Deny)]
                } else {
                    vec![]
                },
                ..HostEndpoint::default()
            },
        );
    }
    // Two endpoints on one interface are not an error (that would stop all policy on the
    // node): the first by name governs it, as in Felix.
    let rs = compile(&m, &cfg()).unwrap();
    let uses_p = |chain: &str| {
        rs.chain_rules(chain)
            .unwrap()
            .iter()
            .any(|r| r.contains("jump pi-default/gnp/p"))
    };
    assert!(uses_p("th-eth0"), "a-eth0 governs eth0");
    assert!(uses_p("th-any-interface-wildcard"), "y-all is the wildcard");
    assert_eq!(rs.map_entries("from-hep").unwrap().len(), 1);
    // The winner goes: the other one takes over.
    m.host_endpoints.remove("a-eth0");
    let rs = compile(&m, &cfg()).unwrap();
    assert!(
        !rs.chain_rules("th-eth0")
            .unwrap()
            .iter()
            .any(|r| r.contains("jump pi-")),
        "b-eth0 (no policy) governs eth0 now"
    );
}

#[test]
fn host_endpoints_without_a_name_govern_the_interfaces_holding_their_ips() {
    let mut m = model_with_allow_p();
    let by_ip = |ip: &str, with_policy: bool| HostEndpoint {
        expected_ipv4_addrs: vec![ip.parse().unwrap()],
        tiers: if with_policy {
            vec![tier(&["p"], &[], TierDefaultAction::Deny)]
        } else {
            vec![]
        },
        ..HostEndpoint::default()
    };
    m.host_endpoints
        .insert("b-by-ip".into(), by_ip("10.0.0.1", true));
    // Expects an address that a workload interface holds: workload interfaces are never
    // host endpoints.
    m.host_endpoints
        .insert("c-pod".into(), by_ip("10.65.0.9", false));
    let mut c = cfg();
    // Unknown interfaces: nothing to govern.
    assert!(
        compile(&m, &c)
            .unwrap()
            .map_entries("from-hep")
            .unwrap()
            .is_empty()
    );
    let ifaces = |pairs: &[(&str, &str)]| {
        let mut out: BTreeMap<String, BTreeSet<std::net::IpAddr>> = BTreeMap::new();
        for (i, a) in pairs {
            out.entry(i.to_string())
                .or_default()
                .insert(a.parse().unwrap());
        }
        Some(out)
    };
    c.host_interfaces = ifaces(&[
        ("eth0", "10.0.0.1"),
        ("eth1", "192.168.0.1"),
        ("cali123", "10.65.0.9"),
        ("lo", "127.0.0.1"),
    ]);
    let rs = compile(&m, &c).unwrap();
    let entries = rs.map_entries("from-hep").unwrap();
    assert_eq!(
        entries,
        vec![("eth0".to_string(), "goto th-eth0".to_string())]
    );
    assert!(
        rs.chain_rules("th-eth0")
            .unwrap()
            .iter()
            .any(|r| r.contains("jump pi-default/gnp/p"))
    );
    // An explicitly named endpoint that sorts first takes the interface over.
    m.host_endpoints.insert(
        "a-named".into(),
        HostEndpoint {
            interface_name: "eth0".into(),
            ..HostEndpoint::default()
        },
    );
    let rs = compile(&m, &c).unwrap();
    assert!(
        !rs.chain_rules("th-eth0")
            .unwrap()
            .iter()
            .any(|r| r.contains("jump pi-")),
        "a-named (no policy) governs eth0"
    );
    // The address moves to another interface: so does the endpoint.
    m.host_endpoints.remove("a-named");
    c.host_interfaces = ifaces(&[("eth0", "10.0.0.2"), ("eth1", "10.0.0.1")]);
    let rs = compile(&m, &c).unwrap();
    assert_eq!(
        rs.map_entries("from-hep").unwrap(),
        vec![("eth1".to_string(), "goto th-eth1".to_string())]
    );
}
