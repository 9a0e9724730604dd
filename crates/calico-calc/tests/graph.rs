//! Scenario tests of the calculation graph, each checked against Felix's behaviour.
#![allow(clippy::unwrap_used)]

mod common;

use calico_calc::{CalcError, CalcGraph, DataplaneModel, ModelUpdate, ResourceKey};
use calico_dataplane_model::{
    IpSetKind, IpSetMember, PolicyId, PolicyKind, RuleAction, TierDefaultAction, WorkloadEndpointId,
};
use calico_policy_rules::{named_port_ip_set_id, selector_ip_set_id};
use common::*;
use serde_json::json;

fn sel_id(s: &str) -> String {
    selector_ip_set_id(&calico_selector::parse(s).unwrap())
}

fn wep_id(ns: &str, pod: &str) -> WorkloadEndpointId {
    WorkloadEndpointId {
        orchestrator_id: "k8s".into(),
        workload_id: format!("{ns}/{pod}"),
        endpoint_id: "eth0".into(),
    }
}

fn np_id(tier: &str, ns: &str, name: &str) -> PolicyId {
    PolicyId {
        tier: tier.into(),
        kind: PolicyKind::NetworkPolicy,
        namespace: ns.into(),
        name: name.into(),
    }
}

fn gnp_id(tier: &str, name: &str) -> PolicyId {
    PolicyId {
        tier: tier.into(),
        kind: PolicyKind::GlobalNetworkPolicy,
        namespace: String::new(),
        name: name.into(),
    }
}

fn addr(s: &str) -> IpSetMember {
    IpSetMember::Address(s.parse().unwrap())
}

fn members(m: &DataplaneModel, id: &str) -> Vec<IpSetMember> {
    m.ip_sets[id].members.iter().copied().collect()
}

/// The selector `app == 'db'` of a namespaced policy in `ns1` becomes
/// `(app == "db") && projectcalico.org/namespace == "ns1"` (rule selectors are scoped to the
/// policy's namespace, `rules.go` `GetEntityRuleSelector`).
const DB_IN_NS1: &str = "projectcalico.org/namespace == 'ns1' && app == 'db'";

fn web_policy() -> calico_api::Resource {
    np(
        "ns1",
        "web",
        json!({"selector": "app == 'web'", "ingress": [
            {"action": "Allow", "protocol": "TCP", "source": {"selector": "app == 'db'"},
             "destination": {"ports": [80]}}]}),
    )
}

#[test]
fn policy_selecting_a_local_endpoint_is_active_with_its_ip_sets() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        wep("node1", "ns1", "web-1", &["10.0.0.1"], &[("app", "web")]),
    );
    put(
        &mut g,
        wep("node2", "ns1", "db-1", &["10.0.1.1"], &[("app", "db")]),
    );
    put(
        &mut g,
        wep("node1", "ns1", "db-2", &["10.0.0.2"], &[("app", "db")]),
    );
    put(&mut g, web_policy());
    flush_checked(&mut g, &mut replay);
    let m = g.model();
    let id = np_id("default", "ns1", "web");
    let pol = &m.policies[&id];
    assert_eq!(pol.namespace, "ns1");
    assert_eq!(pol.inbound.len(), 1);
    assert!(pol.outbound.is_empty(), "ingress-only policy");
    let set = sel_id(DB_IN_NS1);
    assert_eq!(pol.inbound[0].src.ip_sets, vec![set.clone()]);
    assert_eq!(pol.inbound[0].protocol, Some(6));
    // Members from the whole cluster, local or not.
    assert_eq!(members(m, &set), vec![addr("10.0.0.2"), addr("10.0.1.1")]);
    assert_eq!(m.ip_sets[&set].kind, Some(IpSetKind::Addresses));
    // Only local endpoints are in the model; only web-1 has the policy.
    assert_eq!(m.workload_endpoints.len(), 2);
    let web = &m.workload_endpoints[&wep_id("ns1", "web-1")];
    assert_eq!(web.tiers.len(), 1);
    assert_eq!(web.tiers[0].name, "default");
    assert_eq!(web.tiers[0].ingress_policies, vec![id.clone()]);
    assert!(web.tiers[0].egress_policies.is_empty());
    assert!(
        m.workload_endpoints[&wep_id("ns1", "db-2")]
            .tiers
            .is_empty()
    );
    assert_eq!(web.interface_name, "caliweb1");
    assert_eq!(web.ipv4_nets, vec!["10.0.0.1/32".parse().unwrap()]);
    // The namespace profile is active (no Profile resource: Felix's dummy drop rules).
    assert_eq!(m.profiles["kns.ns1"].inbound[0].action, RuleAction::Deny);
}

#[test]
fn policy_without_local_endpoints_is_inactive_and_its_sets_too() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        wep("node2", "ns1", "web-1", &["10.0.0.1"], &[("app", "web")]),
    );
    put(&mut g, web_policy());
    flush_checked(&mut g, &mut replay);
    assert!(g.model().policies.is_empty());
    assert!(g.model().ip_sets.is_empty());
    assert_eq!(g.active_ip_sets(), 0);
    // An endpoint on this node: the policy and its set become active.
    del(&mut g, "WorkloadEndpoint", "ns1", "node2-k8s-web--1-eth0");
    put(
        &mut g,
        wep("node1", "ns1", "web-1", &["10.0.0.1"], &[("app", "web")]),
    );
    let ups = flush_checked(&mut g, &mut replay);
    assert!(matches!(ups[0], ModelUpdate::IpSetUpdate { .. }), "{ups:?}");
    assert!(
        matches!(ups[1], ModelUpdate::ActivePolicyUpdate { .. }),
        "{ups:?}"
    );
    // And gone again: everything goes, endpoint first, sets last.
    del(&mut g, "WorkloadEndpoint", "ns1", "node1-k8s-web--1-eth0");
    let ups = flush_checked(&mut g, &mut replay);
    let kinds: Vec<&str> = ups
        .iter()
        .map(|u| match u {
            ModelUpdate::WorkloadEndpointRemove { .. } => "wep-remove",
            ModelUpdate::ActiveProfileRemove { .. } => "profile-remove",
            ModelUpdate::ActivePolicyRemove { .. } => "policy-remove",
            ModelUpdate::IpSetRemove { .. } => "set-remove",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "wep-remove",
            "profile-remove",
            "policy-remove",
            "set-remove"
        ]
    );
    assert_eq!(g.model(), &DataplaneModel::default());
}

#[test]
fn remote_label_change_is_one_set_delta() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        wep("node1", "ns1", "web-1", &["10.0.0.1"], &[("app", "web")]),
    );
    put(
        &mut g,
        wep("node2", "ns1", "db-1", &["10.0.1.1"], &[("app", "db")]),
    );
    put(&mut g, web_policy());
    flush_checked(&mut g, &mut replay);
    put(
        &mut g,
        wep("node2", "ns1", "db-1", &["10.0.1.1"], &[("app", "other")]),
    );
    let ups = flush_checked(&mut g, &mut replay);
    assert_eq!(
        ups,
        vec![ModelUpdate::IpSetDelta {
            id: sel_id(DB_IN_NS1),
            added: vec![],
            removed: vec![addr("10.0.1.1")],
        }]
    );
    // Same resource again: nothing to say.
    put(
        &mut g,
        wep("node2", "ns1", "db-1", &["10.0.1.1"], &[("app", "other")]),
    );
    assert!(flush_checked(&mut g, &mut replay).is_empty());
    // A change that is undone before the flush: nothing either.
    put(
        &mut g,
        wep("node2", "ns1", "db-1", &["10.0.1.1"], &[("app", "db")]),
    );
    put(
        &mut g,
        wep("node2", "ns1", "db-1", &["10.0.1.1"], &[("app", "other")]),
    );
    assert!(flush_checked(&mut g, &mut replay).is_empty());
}

#[test]
fn shared_addresses_are_reference_counted() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        wep("node1", "ns1", "web-1", &["10.0.0.1"], &[("app", "web")]),
    );
    put(
        &mut g,
        wep("node2", "ns1", "db-1", &["10.0.9.9"], &[("app", "db")]),
    );
    put(
        &mut g,
        wep("node3", "ns1", "db-2", &["10.0.9.9"], &[("app", "db")]),
    );
    put(&mut g, web_policy());
    flush_checked(&mut g, &mut replay);
    del(&mut g, "WorkloadEndpoint", "ns1", "node2-k8s-db--1-eth0");
    assert!(flush_checked(&mut g, &mut replay).is_empty());
    assert_eq!(
        members(g.model(), &sel_id(DB_IN_NS1)),
        vec![addr("10.0.9.9")]
    );
    del(&mut g, "WorkloadEndpoint", "ns1", "node3-k8s-db--2-eth0");
    flush_checked(&mut g, &mut replay);
    assert!(members(g.model(), &sel_id(DB_IN_NS1)).is_empty());
}

#[test]
fn namespace_selectors_follow_profile_labels() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    let kns = |team: &str| {
        profile(
            "kns.ns2",
            &[("pcns.team", team), ("pcns.projectcalico.org/name", "ns2")],
            json!({"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}),
        )
    };
    put(&mut g, kns("blue"));
    put(
        &mut g,
        wep("node1", "ns1", "web-1", &["10.0.0.1"], &[("app", "web")]),
    );
    put(&mut g, wep("node2", "ns2", "x-1", &["10.0.2.1"], &[]));
    put(
        &mut g,
        np(
            "ns1",
            "from-blue",
            json!({"selector": "all()", "ingress": [
                {"action": "Allow", "source": {"namespaceSelector": "team == 'blue'"}}]}),
        ),
    );
    flush_checked(&mut g, &mut replay);
    let pol = &g.model().policies[&np_id("default", "ns1", "from-blue")];
    let set = pol.inbound[0].src.ip_sets[0].clone();
    assert_eq!(members(g.model(), &set), vec![addr("10.0.2.1")]);
    // The namespace's labels change: only the set changes.
    put(&mut g, kns("red"));
    let ups = flush_checked(&mut g, &mut replay);
    assert_eq!(
        ups,
        vec![ModelUpdate::IpSetDelta {
            id: set.clone(),
            added: vec![],
            removed: vec![addr("10.0.2.1")],
        }]
    );
    // The profile goes: labels with it (and ns2 has no local endpoint, so no dummy profile).
    put(&mut g, kns("blue"));
    flush_checked(&mut g, &mut replay);
    del(&mut g, "Profile", "", "kns.ns2");
    flush_checked(&mut g, &mut replay);
    assert!(members(g.model(), &set).is_empty());
    assert!(!g.model().profiles.contains_key("kns.ns2"));
}

#[test]
fn missing_profile_is_dummy_drop_until_it_exists() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(&mut g, wep("node1", "ns1", "a", &["10.0.0.1"], &[]));
    flush_checked(&mut g, &mut replay);
    let p = &g.model().profiles["kns.ns1"];
    assert_eq!(p.inbound.len(), 1);
    assert_eq!(p.inbound[0].action, RuleAction::Deny);
    assert_eq!(p.outbound[0].action, RuleAction::Deny);
    put(
        &mut g,
        profile(
            "kns.ns1",
            &[],
            json!({"ingress": [{"action": "Allow", "source": {"selector": "role == 'x'"}}],
                   "egress": [{"action": "Allow"}]}),
        ),
    );
    let ups = flush_checked(&mut g, &mut replay);
    assert!(matches!(&ups[0], ModelUpdate::IpSetUpdate { id, .. } if *id == sel_id("role == 'x'")));
    assert!(matches!(&ups[1], ModelUpdate::ActiveProfileUpdate { name, .. } if name == "kns.ns1"));
    assert_eq!(ups.len(), 2);
    del(&mut g, "Profile", "", "kns.ns1");
    let ups = flush_checked(&mut g, &mut replay);
    assert!(matches!(&ups[0], ModelUpdate::ActiveProfileUpdate { .. }));
    assert!(matches!(&ups[1], ModelUpdate::IpSetRemove { .. }));
}

#[test]
fn named_ports_make_address_port_sets() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        wep("node1", "ns1", "c", &["10.0.0.1"], &[("app", "client")]),
    );
    put(
        &mut g,
        wep_full(
            "node2",
            "ns1",
            "s",
            &["10.0.1.1", "fd00::1"],
            &[("app", "server")],
            &["kns.ns1"],
            &[
                ("http", "TCP", 8080),
                ("http", "UDP", 8081),
                ("dns", "UDP", 53),
            ],
        ),
    );
    put(
        &mut g,
        np(
            "ns1",
            "to-http",
            json!({"selector": "app == 'client'", "types": ["Egress"], "egress": [
                {"action": "Allow", "protocol": "TCP",
                 "destination": {"selector": "app == 'server'", "ports": ["http"]}}]}),
        ),
    );
    flush_checked(&mut g, &mut replay);
    let m = g.model();
    let pol = &m.policies[&np_id("default", "ns1", "to-http")];
    let sel =
        calico_selector::parse("projectcalico.org/namespace == 'ns1' && app == 'server'").unwrap();
    let id = named_port_ip_set_id(&sel, 6, "http");
    assert_eq!(pol.outbound[0].dst.named_port_ip_sets, vec![id.clone()]);
    assert!(pol.outbound[0].dst.ip_sets.is_empty());
    assert_eq!(m.ip_sets[&id].kind, Some(IpSetKind::AddressPorts));
    assert_eq!(
        members(m, &id),
        vec![
            IpSetMember::AddressPort {
                addr: "10.0.1.1".parse().unwrap(),
                protocol: 6,
                port: 8080
            },
            IpSetMember::AddressPort {
                addr: "fd00::1".parse().unwrap(),
                protocol: 6,
                port: 8080
            },
        ]
    );
    let client = &m.workload_endpoints[&wep_id("ns1", "c")];
    assert_eq!(client.tiers[0].egress_policies.len(), 1);
    assert!(client.tiers[0].ingress_policies.is_empty());
}

#[test]
fn network_sets_contribute_nets() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(&mut g, wep("node1", "ns1", "a", &["10.0.0.1"], &[]));
    put(
        &mut g,
        gnp(
            "egress-ext",
            json!({"selector": "all()", "types": ["Egress"], "egress": [
                {"action": "Deny", "destination": {"selector": "ext == 'true'"}}]}),
        ),
    );
    put(
        &mut g,
        gnetset("hosts", &["192.0.2.7/32"], &[("ext", "true")]),
    );
    flush_checked(&mut g, &mut replay);
    let set = sel_id("ext == 'true'");
    assert_eq!(g.model().ip_sets[&set].kind, Some(IpSetKind::Addresses));
    assert_eq!(members(g.model(), &set), vec![addr("192.0.2.7")]);
    // A wider CIDR turns the set into a Nets set (full update); a /0 is two /1s, and the
    // address they mask is suppressed (Felix's overlap suppression in nftables mode).
    put(
        &mut g,
        netset("ns1", "wide", &["0.0.0.0/0"], &[("ext", "true")]),
    );
    let ups = flush_checked(&mut g, &mut replay);
    assert!(
        matches!(&ups[0], ModelUpdate::IpSetUpdate { id, .. } if *id == set),
        "{ups:?}"
    );
    assert_eq!(g.model().ip_sets[&set].kind, Some(IpSetKind::Nets));
    assert_eq!(
        members(g.model(), &set),
        vec![
            IpSetMember::Net("0.0.0.0/1".parse().unwrap()),
            IpSetMember::Net("128.0.0.0/1".parse().unwrap())
        ]
    );
    del(&mut g, "NetworkSet", "ns1", "wide");
    flush_checked(&mut g, &mut replay);
    assert_eq!(g.model().ip_sets[&set].kind, Some(IpSetKind::Addresses));
    assert_eq!(members(g.model(), &set), vec![addr("192.0.2.7")]);
}

#[test]
fn tiers_and_policies_are_ordered_like_felix() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        wep("node1", "ns1", "a", &["10.0.0.1"], &[("app", "a")]),
    );
    put(&mut g, tier("security", 10.0, Some("Pass")));
    put(&mut g, tier("default", 1_000_000.0, None));
    let pol = |name: &str, tier: Option<&str>, order: Option<f64>| {
        let mut spec = json!({"selector": "app == 'a'", "ingress": [{"action": "Allow"}],
                              "egress": [{"action": "Allow"}]});
        if let Some(t) = tier {
            spec["tier"] = json!(t);
        }
        if let Some(o) = order {
            spec["order"] = json!(o);
        }
        let full = match tier {
            Some(t) => format!("{t}.{name}"),
            None => name.to_string(),
        };
        gnp(&full, spec)
    };
    put(&mut g, pol("b", None, Some(100.0)));
    put(&mut g, pol("a", None, Some(100.0)));
    put(&mut g, pol("z", None, Some(1.0)));
    put(&mut g, pol("none", None, None));
    put(&mut g, pol("s", Some("security"), None));
    put(&mut g, pol("g", Some("ghost"), Some(1.0)));
    flush_checked(&mut g, &mut replay);
    let ep = &g.model().workload_endpoints[&wep_id("ns1", "a")];
    let names: Vec<(&str, TierDefaultAction, Vec<&str>)> = ep
        .tiers
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.default_action,
                t.ingress_policies.iter().map(|p| p.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            ("security", TierDefaultAction::Pass, vec!["security.s"]),
            (
                "default",
                TierDefaultAction::Deny,
                vec!["z", "a", "b", "none"]
            ),
            // No Tier resource: an invalid tier, last, dropping.
            ("ghost", TierDefaultAction::Deny, vec!["ghost.g"]),
        ]
    );
    // Reordering a tier re-sorts every endpoint using it.
    put(&mut g, tier("security", 2_000_000.0, None));
    let ups = flush_checked(&mut g, &mut replay);
    assert_eq!(ups.len(), 1);
    let ep = &g.model().workload_endpoints[&wep_id("ns1", "a")];
    let order: Vec<&str> = ep.tiers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(order, vec!["default", "security", "ghost"]);
    assert_eq!(ep.tiers[1].default_action, TierDefaultAction::Deny);
    // Creating the ghost tier makes it valid.
    put(&mut g, tier("ghost", 1.0, Some("Pass")));
    flush_checked(&mut g, &mut replay);
    let ep = &g.model().workload_endpoints[&wep_id("ns1", "a")];
    assert_eq!(ep.tiers[0].name, "ghost");
    assert_eq!(ep.tiers[0].default_action, TierDefaultAction::Pass);
}

#[test]
fn host_endpoints_get_stage_tier_lists() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        hep(
            "eth0-node1",
            "node1",
            "eth0",
            &["192.168.0.1"],
            &[("host", "true")],
        ),
    );
    put(
        &mut g,
        hep(
            "eth0-node2",
            "node2",
            "eth0",
            &["192.168.0.2"],
            &[("host", "true")],
        ),
    );
    put(
        &mut g,
        gnp(
            "untracked",
            json!({"selector": "host == 'true'", "doNotTrack": true, "applyOnForward": true,
                   "ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}),
        ),
    );
    put(
        &mut g,
        gnp(
            "prednat",
            json!({"selector": "host == 'true'", "preDNAT": true, "applyOnForward": true,
                   "types": ["Ingress"], "ingress": [{"action": "Deny"}]}),
        ),
    );
    put(
        &mut g,
        gnp(
            "forward",
            json!({"selector": "host == 'true'", "applyOnForward": true,
                   "ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}),
        ),
    );
    put(
        &mut g,
        gnp(
            "normal",
            json!({"selector": "host == 'true'", "order": 1,
                   "ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}),
        ),
    );
    flush_checked(&mut g, &mut replay);
    let m = g.model();
    assert_eq!(m.host_endpoints.len(), 1, "only this node's host endpoint");
    let ep = &m.host_endpoints["eth0-node1"];
    assert_eq!(ep.interface_name, "eth0");
    assert_eq!(
        ep.expected_ipv4_addrs,
        vec!["192.168.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    let names = |tiers: &[calico_dataplane_model::TierInfo]| -> (Vec<String>, Vec<String>) {
        let t = &tiers[0];
        (
            t.ingress_policies.iter().map(|p| p.name.clone()).collect(),
            t.egress_policies.iter().map(|p| p.name.clone()).collect(),
        )
    };
    assert_eq!(
        names(&ep.tiers),
        (
            vec!["normal".into(), "forward".into()],
            vec!["normal".into(), "forward".into()]
        )
    );
    assert_eq!(
        names(&ep.untracked_tiers),
        (vec!["untracked".into()], vec!["untracked".into()])
    );
    assert_eq!(
        ep.untracked_tiers[0].default_action,
        TierDefaultAction::Pass
    );
    assert_eq!(names(&ep.pre_dnat_tiers), (vec!["prednat".into()], vec![]));
    assert_eq!(
        names(&ep.forward_tiers),
        (vec!["forward".into()], vec!["forward".into()])
    );
    assert!(m.policies[&gnp_id("default", "untracked")].untracked);
    assert!(m.policies[&gnp_id("default", "prednat")].pre_dnat);
}

#[test]
fn bad_resources_are_refused_and_change_nothing() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        wep("node1", "ns1", "web-1", &["10.0.0.1"], &[("app", "web")]),
    );
    put(&mut g, web_policy());
    flush_checked(&mut g, &mut replay);
    let before = g.model().clone();
    let bad = np(
        "ns1",
        "web",
        json!({"selector": "app == 'web'", "ingress": [
            {"action": "Allow", "source": {"selector": "app === 'db'"}}]}),
    );
    let err = g.on_update(ResourceKey::of(&bad), Some(bad)).unwrap_err();
    assert!(matches!(err, CalcError::Rules { .. }), "{err}");
    assert!(err.to_string().contains("NetworkPolicy ns1/web"), "{err}");
    assert_eq!(g.model(), &before);
    assert!(flush_checked(&mut g, &mut replay).is_empty());
    // A key that is not the resource's.
    let err = g
        .on_update(
            ResourceKey::new("NetworkPolicy", "ns1", "other"),
            Some(web_policy()),
        )
        .unwrap_err();
    assert!(matches!(err, CalcError::KeyMismatch { .. }), "{err}");
    // An endpoint whose name does not encode its identifiers.
    let mut w = wep("node1", "ns1", "web-2", &["10.0.0.2"], &[]);
    w.metadata_mut().name = "nodash".into();
    let err = g.on_update(ResourceKey::of(&w), Some(w)).unwrap_err();
    assert!(
        err.to_string().contains("WorkloadEndpoint ns1/nodash"),
        "{err}"
    );
    assert_eq!(g.model(), &before);
    // Kinds the graph does not use are ignored.
    let pool = res(
        json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "p"}, "spec": {"cidr": "10.0.0.0/16"}}),
    );
    g.on_update(ResourceKey::of(&pool), Some(pool)).unwrap();
    assert!(flush_checked(&mut g, &mut replay).is_empty());
}

#[test]
fn endpoint_without_addresses_counts_as_deleted() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(&mut g, wep("node1", "ns1", "a", &["10.0.0.1"], &[]));
    flush_checked(&mut g, &mut replay);
    assert_eq!(g.model().workload_endpoints.len(), 1);
    put(&mut g, wep("node1", "ns1", "a", &[], &[]));
    flush_checked(&mut g, &mut replay);
    assert!(g.model().workload_endpoints.is_empty());
    assert!(g.model().profiles.is_empty());
}

#[test]
fn kubernetes_policies_and_other_tiers() {
    let mut g = CalcGraph::new("node1");
    let mut replay = DataplaneModel::default();
    put(
        &mut g,
        wep("node1", "ns1", "a", &["10.0.0.1"], &[("app", "a")]),
    );
    put(
        &mut g,
        np(
            "ns1",
            "knp.default.allow",
            json!({"selector": "app == 'a'", "ingress": [{"action": "Allow"}]}),
        ),
    );
    flush_checked(&mut g, &mut replay);
    let id = PolicyId {
        tier: "default".into(),
        kind: PolicyKind::KubernetesNetworkPolicy,
        namespace: "ns1".into(),
        name: "knp.default.allow".into(),
    };
    assert!(g.model().policies.contains_key(&id));
    // A policy in another tier has that tier in its ID.
    put(&mut g, tier("t1", 5.0, None));
    put(
        &mut g,
        np(
            "ns1",
            "t1.p",
            json!({"tier": "t1", "selector": "app == 'a'", "ingress": [{"action": "Allow"}]}),
        ),
    );
    flush_checked(&mut g, &mut replay);
    assert!(g.model().policies.contains_key(&np_id("t1", "ns1", "t1.p")));
}
