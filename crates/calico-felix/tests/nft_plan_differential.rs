//! Chain and rule changes over nf_tables netlink, against `nft`: a random sequence of policy
//! changes (rules edited, policies and endpoints added and removed, IP sets created, emptied
//! and dropped) is applied by a `PolicyManager` over a real `NftDriver`, which sends each
//! change as one netlink batch (`calico_nft::diff_plan` → `NftDriver::apply_plan`), never
//! through `nft`. After every step the kernel's table lists the same as the step's whole
//! ruleset loaded with `nft -f` into a second namespace (`nft -j list table`, with handles
//! dropped and set elements sorted: hash sets list in insertion-dependent order).
//!
//! Both tables live in throw-away network namespaces; the root namespace is never touched.
//! Without root this test skips with a note (and fails with `CALICO_REQUIRE_ROOT=1`).

#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use calico_dataplane_model::{
    DataplaneModel, IcmpMatch, IpSet, IpSetKind, IpSetMember, Policy, PolicyId, PolicyKind,
    PortRange, Profile, Rule, RuleAction, RuleSide, TierDefaultAction, TierInfo, WorkloadEndpoint,
    WorkloadEndpointId,
};
use calico_felix::policy::{NftDriver, NftMetrics, PolicyDataplane, PolicyManager, SyncAction};
use calico_netlink::testing::{TestNetns, require_root_and_nft};
use calico_nft::{NftConfig, PolicyTables};
use ipnet::IpNet;
use serde_json::Value;

/// A small deterministic generator (64-bit LCG): failures reproduce from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const ADDR_SETS: usize = 6;
const NET_SETS: usize = 4;
const PORT_SETS: usize = 4;

fn addr_set(i: usize) -> String {
    format!("s:addr-{i}")
}
fn net_set(i: usize) -> String {
    format!("s:net-{i}")
}
fn port_set(i: usize) -> String {
    format!("n:port-{i}")
}

fn v4(rng: &mut Rng) -> Ipv4Addr {
    Ipv4Addr::new(
        10,
        rng.below(4) as u8,
        rng.below(250) as u8,
        1 + rng.below(250) as u8,
    )
}

fn v6(rng: &mut Rng) -> Ipv6Addr {
    Ipv6Addr::new(
        0xfd00,
        0,
        0,
        rng.below(4) as u16,
        0,
        0,
        0,
        1 + rng.below(999) as u16,
    )
}

fn net(rng: &mut Rng) -> IpNet {
    if rng.chance(70) {
        let len = [8u8, 12, 16, 20, 24, 28, 32][rng.below(7)];
        IpNet::new(IpAddr::V4(v4(rng)), len).unwrap().trunc()
    } else {
        let len = [48u8, 64, 100, 128][rng.below(4)];
        IpNet::new(IpAddr::V6(v6(rng)), len).unwrap().trunc()
    }
}

fn members(rng: &mut Rng, kind: IpSetKind) -> BTreeSet<IpSetMember> {
    (0..rng.below(6))
        .map(|_| match kind {
            IpSetKind::Addresses => IpSetMember::Address(if rng.chance(70) {
                IpAddr::V4(v4(rng))
            } else {
                IpAddr::V6(v6(rng))
            }),
            IpSetKind::Nets => IpSetMember::Net(net(rng)),
            IpSetKind::AddressPorts => IpSetMember::AddressPort {
                addr: IpAddr::V4(v4(rng)),
                protocol: [6u8, 17, 132][rng.below(3)],
                port: 1 + rng.below(9000) as u16,
            },
        })
        .collect()
}

fn ports(rng: &mut Rng) -> Vec<PortRange> {
    (0..1 + rng.below(3))
        .map(|_| {
            let first = 1 + rng.below(2000) as u16;
            let last = if rng.chance(30) {
                first + rng.below(100) as u16
            } else {
                first
            };
            PortRange { first, last }
        })
        .collect()
}

fn side(rng: &mut Rng, l4: bool) -> RuleSide {
    let mut s = RuleSide::default();
    if rng.chance(25) {
        s.nets = (0..1 + rng.below(3)).map(|_| net(rng)).collect();
    }
    if rng.chance(15) {
        s.not_nets = (0..1 + rng.below(2)).map(|_| net(rng)).collect();
    }
    if rng.chance(30) {
        s.ip_sets = vec![if rng.chance(60) {
            addr_set(rng.below(ADDR_SETS))
        } else {
            net_set(rng.below(NET_SETS))
        }];
    }
    if rng.chance(10) {
        s.not_ip_sets = vec![addr_set(rng.below(ADDR_SETS))];
    }
    if l4 {
        if rng.chance(40) {
            s.ports = ports(rng);
        }
        if rng.chance(15) {
            s.not_ports = ports(rng);
        }
        if rng.chance(20) {
            s.named_port_ip_sets = vec![port_set(rng.below(PORT_SETS))];
        }
        if rng.chance(5) {
            s.not_named_port_ip_sets = vec![port_set(rng.below(PORT_SETS))];
        }
    }
    s
}

fn rule(rng: &mut Rng) -> Rule {
    let action = [
        RuleAction::Allow,
        RuleAction::Deny,
        RuleAction::Pass,
        RuleAction::Log,
    ][rng.below(4)];
    let mut r = Rule::any(action);
    match rng.below(5) {
        0 => {}
        1 | 2 => r.protocol = Some([6u8, 17][rng.below(2)]),
        3 => {
            r.protocol = Some(1);
            r.ip_version = Some(4);
            if rng.chance(60) {
                r.icmp = Some(IcmpMatch {
                    type_: [0u8, 3, 8][rng.below(3)],
                    code: rng.chance(50).then_some(0),
                });
            } else if rng.chance(50) {
                r.not_icmp = Some(IcmpMatch {
                    type_: 3,
                    code: rng.chance(50).then_some(4),
                });
            }
        }
        _ => r.not_protocol = Some([6u8, 17, 58][rng.below(3)]),
    }
    let l4 = matches!(r.protocol, Some(6 | 17));
    r.src = side(rng, l4);
    r.dst = side(rng, l4);
    if r.protocol == Some(1) {
        // ICMPv4 only: no IPv6 nets (the rule would not render for IPv6 anyway).
        for s in [&mut r.src, &mut r.dst] {
            s.nets.retain(|n| matches!(n, IpNet::V4(_)));
            s.not_nets.retain(|n| matches!(n, IpNet::V4(_)));
        }
    }
    r
}

fn policy_id(i: usize) -> PolicyId {
    PolicyId {
        tier: "default".into(),
        kind: PolicyKind::NetworkPolicy,
        namespace: "ns".into(),
        name: format!("p{i}"),
    }
}

fn policy(rng: &mut Rng) -> Policy {
    Policy {
        namespace: "ns".into(),
        inbound: (0..rng.below(4)).map(|_| rule(rng)).collect(),
        outbound: (0..rng.below(3)).map(|_| rule(rng)).collect(),
        ..Policy::default()
    }
}

fn endpoint_id(e: usize) -> WorkloadEndpointId {
    WorkloadEndpointId {
        orchestrator_id: "k8s".into(),
        // Three namespaces: with shards, endpoints land in several tables.
        workload_id: format!("ns{}/pod-{e}", e % 3),
        endpoint_id: "eth0".into(),
    }
}

fn endpoint(rng: &mut Rng, e: usize, policies: &[PolicyId]) -> WorkloadEndpoint {
    let mut pick = |n: usize| -> Vec<PolicyId> {
        let mut v: Vec<PolicyId> = (0..n)
            .filter_map(|_| policies.get(rng.below(policies.len())).cloned())
            .collect();
        v.dedup();
        v
    };
    let (ingress, egress) = (pick(3), pick(2));
    WorkloadEndpoint {
        interface_name: format!("cali{e:04}"),
        profile_ids: vec!["kns.ns".into()],
        ipv4_nets: vec![format!("10.65.0.{}/32", 1 + e % 250).parse().unwrap()],
        ipv6_nets: vec![format!("fd00:65::{:x}/128", 1 + e).parse().unwrap()],
        tiers: vec![TierInfo {
            name: "default".into(),
            default_action: TierDefaultAction::Deny,
            ingress_policies: ingress,
            egress_policies: egress,
        }],
        ..WorkloadEndpoint::default()
    }
}

fn initial(rng: &mut Rng) -> DataplaneModel {
    let mut m = DataplaneModel::default();
    for (n, kind, name) in [
        (
            ADDR_SETS,
            IpSetKind::Addresses,
            addr_set as fn(usize) -> String,
        ),
        (NET_SETS, IpSetKind::Nets, net_set),
        (PORT_SETS, IpSetKind::AddressPorts, port_set),
    ] {
        for i in 0..n {
            m.ip_sets.insert(
                name(i),
                IpSet {
                    kind: Some(kind),
                    members: members(rng, kind),
                },
            );
        }
    }
    for i in 0..8 {
        m.policies.insert(policy_id(i), policy(rng));
    }
    m.profiles.insert(
        "kns.ns".into(),
        Profile {
            inbound: vec![Rule::any(RuleAction::Allow)],
            outbound: vec![Rule::any(RuleAction::Allow)],
        },
    );
    let ids: Vec<PolicyId> = m.policies.keys().cloned().collect();
    for e in 0..5 {
        let ep = endpoint(rng, e, &ids);
        m.workload_endpoints.insert(endpoint_id(e), ep);
    }
    m
}

/// One random change of the kinds calico-node sees all day. Returns its name.
fn mutate(rng: &mut Rng, m: &mut DataplaneModel, next: &mut usize) -> &'static str {
    let ids: Vec<PolicyId> = m.policies.keys().cloned().collect();
    match rng.below(7) {
        0 => {
            // A policy edited (a new version of all its rules).
            if let Some(id) = ids.get(rng.below(ids.len())) {
                let p = policy(rng);
                m.policies.insert(id.clone(), p);
            }
            "policy edited"
        }
        1 => {
            // A policy added and used by an endpoint.
            *next += 1;
            let id = policy_id(100 + *next);
            m.policies.insert(id.clone(), policy(rng));
            if let Some(ep) = m.workload_endpoints.values_mut().next() {
                ep.tiers[0].ingress_policies.insert(0, id);
            }
            "policy added"
        }
        2 => {
            // A policy removed (first from the endpoints that use it).
            if let Some(id) = ids.get(rng.below(ids.len())).cloned() {
                for ep in m.workload_endpoints.values_mut() {
                    ep.tiers[0].ingress_policies.retain(|p| p != &id);
                    ep.tiers[0].egress_policies.retain(|p| p != &id);
                }
                m.policies.remove(&id);
            }
            "policy removed"
        }
        3 => {
            *next += 1;
            let e = 10 + *next;
            let ep = endpoint(rng, e, &ids);
            m.workload_endpoints.insert(endpoint_id(e), ep);
            "endpoint added"
        }
        4 => {
            let keys: Vec<WorkloadEndpointId> = m.workload_endpoints.keys().cloned().collect();
            if let Some(k) = keys.get(rng.below(keys.len())) {
                m.workload_endpoints.remove(k);
            }
            "endpoint removed"
        }
        5 => {
            // An endpoint's policies change (a label change).
            let keys: Vec<WorkloadEndpointId> = m.workload_endpoints.keys().cloned().collect();
            if let Some(k) = keys.get(rng.below(keys.len())) {
                let e = m.workload_endpoints[k].interface_name[4..]
                    .parse()
                    .unwrap_or(0);
                let ep = endpoint(rng, e, &ids);
                m.workload_endpoints.insert(k.clone(), ep);
            }
            "endpoint's policies changed"
        }
        _ => {
            // Members of a few sets, together with one rule change.
            for _ in 0..3 {
                let names: Vec<String> = m.ip_sets.keys().cloned().collect();
                let name = &names[rng.below(names.len())];
                if let Some(s) = m.ip_sets.get_mut(name) {
                    let kind = s.kind.unwrap_or(IpSetKind::Addresses);
                    s.members = members(rng, kind);
                }
            }
            if let Some(id) = ids.get(rng.below(ids.len())) {
                let r = rule(rng);
                if let Some(p) = m.policies.get_mut(id) {
                    p.inbound.push(r);
                }
            }
            "set members and a rule changed"
        }
    }
}

/// `nft -j list table` with handles dropped, set and map elements sorted, and rules grouped
/// by chain in order.
fn normalized(ns: &TestNetns, table: &str) -> BTreeMap<String, Value> {
    let out = ns
        .exec(&["nft", "-j", "list", "table", "inet", table])
        .unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut objects = BTreeMap::new();
    let mut rules: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for item in v["nftables"].as_array().unwrap() {
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let mut body = body.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("handle");
        }
        match kind.as_str() {
            "rule" => rules
                .entry(body["chain"].as_str().unwrap().to_string())
                .or_default()
                .push(body["expr"].clone()),
            "set" | "map" | "chain" => {
                if let Some(elems) = body.get_mut("elem").and_then(Value::as_array_mut) {
                    elems.sort_by_key(|e| e.to_string());
                }
                let name = body["name"].as_str().unwrap().to_string();
                objects.insert(format!("{kind} {name}"), body);
            }
            _ => {}
        }
    }
    for (chain, r) in rules {
        objects.insert(format!("rules of {chain}"), Value::Array(r));
    }
    objects
}

fn first_difference(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> String {
    for k in a.keys().chain(b.keys()) {
        if a.get(k) != b.get(k) {
            return format!(
                "{k}:\n via netlink: {}\n via nft -f:  {}",
                a.get(k).map(Value::to_string).unwrap_or_default(),
                b.get(k).map(Value::to_string).unwrap_or_default()
            );
        }
    }
    String::new()
}

#[test]
fn random_policy_changes_over_netlink_list_the_same_as_through_nft() {
    run(0);
}

/// The same with workload policy spread over shard tables by namespace
/// (`calico_nft::PolicyTables`): each change is one netlink batch over all the tables it
/// concerns, and every table lists as through nft. A shard table that appears or goes (its
/// first or last endpoint) is the one change that goes through nft.
#[test]
fn sharded_policy_changes_over_netlink_list_the_same_as_through_nft() {
    run(3);
}

fn run(shards: u16) {
    if !require_root_and_nft() {
        return;
    }
    let steps: usize = std::env::var("PLAN_DIFF_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("PLAN_DIFF_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261123);
    let mut rng = Rng(seed);
    let cfg = NftConfig {
        shards,
        ..NftConfig::default()
    };
    let ns = TestNetns::new("felix-plan").unwrap();
    let metrics = NftMetrics::default();
    let mut manager =
        PolicyManager::new(NftDriver::new("calico", Some(ns.path())), metrics.clone());
    let mut model = initial(&mut rng);
    manager.set_target(PolicyTables::compile(&model, &cfg).unwrap());
    assert_eq!(manager.sync().unwrap(), SyncAction::FullReplace);
    let mut next = 0;
    let mut plans = 0;
    let mut compared_rules = 0;
    let mut multi_table = 0;
    for step in 0..steps {
        let what = mutate(&mut rng, &mut model, &mut next);
        let target = PolicyTables::compile(&model, &cfg).unwrap();
        let tables = |t: &PolicyTables| -> Vec<String> {
            t.tables().map(|r| r.table().to_string()).collect()
        };
        let same_tables = manager
            .applied()
            .is_some_and(|a| tables(a) == tables(&target));
        if let Some(applied) = manager.applied()
            && let Ok(p) = applied.plan(&target)
            && p.len() > 1
        {
            multi_table += 1;
        }
        manager.set_target(target.clone());
        let before = metrics.plan_batches.get() + metrics.element_batches.get();
        let fallbacks = metrics.plan_fallbacks.get();
        let action = manager.sync().unwrap();
        if action == SyncAction::Nothing {
            continue;
        }
        assert_eq!(action, SyncAction::Diff, "step {step} ({what})");
        if same_tables {
            assert_eq!(
                metrics.plan_fallbacks.get(),
                fallbacks,
                "step {step} ({what}) went through nft"
            );
            assert_eq!(
                metrics.plan_batches.get() + metrics.element_batches.get(),
                before + 1,
                "step {step} ({what}): one netlink batch"
            );
        }
        plans = metrics.plan_batches.get();
        // The same ruleset through nft, in a namespace of its own.
        let reference = TestNetns::new("felix-plan-ref").unwrap();
        let mut via_nft = NftDriver::new("calico", Some(reference.path()));
        for script in target.full_replace_scripts() {
            via_nft.apply(&script).unwrap();
        }
        for table in tables(&target) {
            let (got, want) = (normalized(&ns, &table), normalized(&reference, &table));
            let rules: usize = got
                .iter()
                .filter(|(k, _)| k.starts_with("rules of "))
                .map(|(_, v)| v.as_array().map_or(0, Vec::len))
                .sum();
            compared_rules += rules;
            assert!(
                got == want,
                "step {step} ({what}, seed {seed}, {shards} shards): table {table} differs; first difference in {}",
                first_difference(&got, &want)
            );
        }
    }
    eprintln!(
        "{shards} shards, {steps} steps: {plans} plan batches ({multi_table} over several tables), {} element batches, {compared_rules} rules compared",
        metrics.element_batches.get()
    );
    assert!(
        compared_rules > 50 * steps,
        "only {compared_rules} rules compared in {steps} steps"
    );
    assert!(
        plans >= (steps as u64) / 2,
        "only {plans} of {steps} steps were plan batches"
    );
    if shards > 0 {
        assert!(multi_table > 0, "no change spanned several tables");
    }
}
