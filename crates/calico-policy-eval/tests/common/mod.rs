//! Shared fixture: two namespaces, a few pods, network sets.

#![allow(dead_code, clippy::unwrap_used)]

use calico_api::networkset::{GlobalNetworkSet, NetworkSet};
use calico_api::policy::{GlobalNetworkPolicy, NetworkPolicy};
use calico_api::rule::Rule;
use calico_api::tier::Tier;
use calico_policy_eval::{Endpoint, Packet, Resources};

pub const SERVER: &str = "10.0.1.1";
pub const SERVER6: &str = "2001:db8::1";
pub const CLIENT: &str = "10.0.1.2";
pub const OTHER: &str = "10.0.1.3";
pub const CLIENT6: &str = "2001:db8::2";
pub const DEV_CLIENT: &str = "10.0.2.2";
pub const EXTERNAL: &str = "192.0.2.5";
pub const PARTNER: &str = "198.51.100.7";
pub const UNKNOWN: &str = "203.0.113.9";

/// Pods `prod/server` (role=server, named ports http tcp/8080 and dns udp/5353, SA
/// server-sa), `prod/client` (role=client, SA client-sa with tier=frontend), `prod/other`
/// (role=other), `prod/client6` (IPv6), `dev/client`; namespaces prod (env=prod) and dev
/// (env=dev); GlobalNetworkSet `ext` (kind=external, 192.0.2.0/24); NetworkSet
/// `prod/partners` (kind=partner, 198.51.100.0/24).
pub fn fixture() -> Resources {
    let mut r = Resources::default();
    r.endpoints.push(
        Endpoint::pod(
            "prod/server",
            "prod",
            [("role", "server")],
            [SERVER, SERVER6],
        )
        .unwrap()
        .with_namespace_labels([("env", "prod")])
        .with_service_account("server-sa", [("team", "backend")])
        .with_named_port("http", 6, 8080)
        .with_named_port("dns", 17, 5353),
    );
    r.endpoints.push(
        Endpoint::pod("prod/client", "prod", [("role", "client")], [CLIENT])
            .unwrap()
            .with_service_account("client-sa", [("tier", "frontend")]),
    );
    r.endpoints
        .push(Endpoint::pod("prod/other", "prod", [("role", "other")], [OTHER]).unwrap());
    r.endpoints
        .push(Endpoint::pod("prod/client6", "prod", [("role", "client")], [CLIENT6]).unwrap());
    r.endpoints.push(
        Endpoint::pod("dev/client", "dev", [("role", "client")], [DEV_CLIENT])
            .unwrap()
            .with_namespace_labels([("env", "dev")]),
    );
    let mut gns = GlobalNetworkSet::default();
    gns.metadata.name = "ext".into();
    gns.metadata.labels.insert("kind".into(), "external".into());
    gns.spec.nets = vec!["192.0.2.0/24".into()];
    r.global_network_sets.push(gns);
    let mut ns = NetworkSet::default();
    ns.metadata.name = "partners".into();
    ns.metadata.namespace = "prod".into();
    ns.metadata.labels.insert("kind".into(), "partner".into());
    ns.spec.nets = vec!["198.51.100.0/24".into()];
    r.network_sets.push(ns);
    r
}

pub fn rules(v: serde_json::Value) -> Vec<Rule> {
    serde_json::from_value(v).unwrap()
}

pub fn np(ns: &str, name: &str, spec: serde_json::Value) -> NetworkPolicy {
    let mut p: NetworkPolicy = serde_json::from_value(serde_json::json!({ "spec": spec })).unwrap();
    p.metadata.name = name.into();
    p.metadata.namespace = ns.into();
    p
}

pub fn gnp(name: &str, spec: serde_json::Value) -> GlobalNetworkPolicy {
    let mut p: GlobalNetworkPolicy =
        serde_json::from_value(serde_json::json!({ "spec": spec })).unwrap();
    p.metadata.name = name.into();
    p
}

pub fn tier(name: &str, order: f64, default_action: &str) -> Tier {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"order": order, "defaultAction": default_action}
    }))
    .unwrap()
}

pub fn tcp(src: &str, dst: &str, port: u16) -> Packet {
    Packet::tcp(src, dst, port).unwrap()
}

pub fn udp(src: &str, dst: &str, port: u16) -> Packet {
    Packet::udp(src, dst, port).unwrap()
}

pub fn icmp(src: &str, dst: &str, t: u8, c: u8) -> Packet {
    Packet::icmp(src, dst, t, c).unwrap()
}
