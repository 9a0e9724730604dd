//! Shared by the integration tests: golden model files and running nft in a throwaway
//! network namespace (never in the root one).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use calico_dataplane_model::{
    DataplaneModel, HostEndpoint, IpSet, Policy, PolicyId, Profile, WorkloadEndpoint,
    WorkloadEndpointId,
};
use calico_nft::{EndpointToHostAction, NftConfig};
use serde::Deserialize;

/// A golden file: the model (maps with struct keys written as lists) and config tweaks.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoldenModel {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub ip_sets: BTreeMap<String, IpSet>,
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    #[serde(default)]
    pub workload_endpoints: Vec<WepEntry>,
    #[serde(default)]
    pub host_endpoints: BTreeMap<String, HostEndpoint>,
    #[serde(default)]
    pub endpoint_to_host_action: Option<String>,
    /// `NftConfig::shards` (0 or absent: one table).
    #[serde(default)]
    pub shards: u16,
    /// Failsafe entries with a net: `[protocol number, port, net]`.
    #[serde(default)]
    pub failsafe_inbound_nets: Vec<(u8, u16, ipnet::IpNet)>,
    #[serde(default)]
    pub failsafe_outbound_nets: Vec<(u8, u16, ipnet::IpNet)>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    pub id: PolicyId,
    pub policy: Policy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WepEntry {
    pub id: WorkloadEndpointId,
    pub endpoint: WorkloadEndpoint,
}

impl GoldenModel {
    pub fn model(&self) -> DataplaneModel {
        DataplaneModel {
            ip_sets: self.ip_sets.clone(),
            policies: self
                .policies
                .iter()
                .map(|p| (p.id.clone(), p.policy.clone()))
                .collect(),
            profiles: self.profiles.clone(),
            workload_endpoints: self
                .workload_endpoints
                .iter()
                .map(|w| (w.id.clone(), w.endpoint.clone()))
                .collect(),
            host_endpoints: self.host_endpoints.clone(),
        }
    }

    pub fn config(&self) -> NftConfig {
        let mut cfg = NftConfig::default();
        match self.endpoint_to_host_action.as_deref() {
            None | Some("Drop") => {}
            Some("Accept") => cfg.endpoint_to_host_action = EndpointToHostAction::Accept,
            Some("Return") => cfg.endpoint_to_host_action = EndpointToHostAction::Return,
            Some(other) => panic!("unknown endpointToHostAction {other}"),
        }
        cfg.failsafe_inbound_nets = self.failsafe_inbound_nets.clone();
        cfg.failsafe_outbound_nets = self.failsafe_outbound_nets.clone();
        cfg.shards = self.shards;
        cfg
    }
}

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Every `tests/golden/*.yaml`, sorted, with its parsed content.
pub fn golden_models() -> Vec<(PathBuf, GoldenModel)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden models");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let m: GoldenModel =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, m)
        })
        .collect()
}

/// Runs a shell script inside a fresh network namespace (`unshare --net`), so nothing it
/// does touches the host's network namespace. `stdin` is fed to the script. Panics (the
/// test fails) when the namespace cannot be created: these tests need root.
pub fn in_netns(script: &str, stdin: &str) -> (bool, String, String) {
    let mut child = Command::new("unshare")
        .args(["--net", "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) must be installed; these tests need root");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("unshare failed"),
        "cannot create a network namespace (need root): {stderr}"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        stderr,
    )
}

pub mod models {
    //! Random models for property tests: small pools of names so that two models share
    //! most objects and differ in a few, like successive states of a real node.
    use std::collections::{BTreeMap, BTreeSet};

    use calico_dataplane_model::*;
    use proptest::prelude::*;

    const IFACES: [&str; 5] = ["cali1", "cali2", "cali3", "cali4", "cali5"];
    const POLICIES: [&str; 6] = ["p0", "p1", "p2", "p3", "p4", "p5"];
    const SETS: [&str; 4] = ["s:a", "s:b", "s:c", "n:d"];

    fn pid(i: usize) -> PolicyId {
        let global = i == 0 || i == 4;
        PolicyId {
            tier: if i.is_multiple_of(3) {
                "t1".into()
            } else {
                "default".into()
            },
            // Some global: a sharded layout evaluates the leading all-global tiers in its
            // global table (t1 is all-global with p0 alone, both tiers with p0 and p4 alone).
            kind: if global {
                PolicyKind::GlobalNetworkPolicy
            } else {
                PolicyKind::NetworkPolicy
            },
            namespace: if global { String::new() } else { "ns".into() },
            name: POLICIES[i].into(),
        }
    }

    fn member(named_port: bool) -> impl Strategy<Value = IpSetMember> {
        (0u8..4, 0u8..3, any::<bool>(), 0u8..3).prop_map(move |(a, b, v6, kind)| {
            let addr: std::net::IpAddr = if v6 {
                format!("fd00::{a}:{b}").parse().unwrap()
            } else {
                format!("10.0.{a}.{b}").parse().unwrap()
            };
            if named_port {
                IpSetMember::AddressPort {
                    addr,
                    protocol: 6,
                    port: 8000 + u16::from(b),
                }
            } else if kind == 0 {
                let len = if v6 { 120 } else { 24 };
                IpSetMember::Net(ipnet::IpNet::new(addr, len).unwrap().trunc())
            } else {
                IpSetMember::Address(addr)
            }
        })
    }

    fn ip_sets() -> impl Strategy<Value = BTreeMap<IpSetId, IpSet>> {
        proptest::collection::vec(
            (
                proptest::collection::btree_set(member(false), 0..5),
                proptest::collection::btree_set(member(true), 0..4),
                any::<bool>(),
            ),
            SETS.len(),
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (addrs, ports, nets))| {
                    let id = SETS[i].to_string();
                    let set = if id.starts_with("n:") {
                        IpSet {
                            kind: Some(IpSetKind::AddressPorts),
                            members: ports,
                        }
                    } else {
                        IpSet {
                            kind: Some(if nets {
                                IpSetKind::Nets
                            } else {
                                IpSetKind::Addresses
                            }),
                            members: addrs,
                        }
                    };
                    (id, set)
                })
                .collect()
        })
    }

    fn rule() -> impl Strategy<Value = Rule> {
        (
            0u8..4,
            proptest::option::of(prop_oneof![Just(6u8), Just(17u8)]),
            proptest::option::of(prop_oneof![Just(4u8), Just(6u8)]),
            proptest::collection::vec(0usize..3, 0..3),
            proptest::collection::vec(1u16..100, 0..3),
            any::<bool>(),
            proptest::option::of(prop_oneof![
                Just("10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()),
                Just("fd00::/16".parse::<ipnet::IpNet>().unwrap()),
            ]),
        )
            .prop_map(|(action, protocol, ipv, sets, ports, named, net)| {
                let mut r = Rule::any(match action {
                    0 => RuleAction::Allow,
                    1 => RuleAction::Deny,
                    2 => RuleAction::Pass,
                    _ => RuleAction::Log,
                });
                r.ip_version = ipv;
                r.protocol = protocol.or(if ports.is_empty() && !named {
                    None
                } else {
                    Some(6)
                });
                r.src.ip_sets = sets.iter().map(|i| SETS[*i].to_string()).collect();
                r.dst.ports = ports
                    .iter()
                    .map(|p| PortRange {
                        first: *p,
                        last: *p,
                    })
                    .collect();
                if named {
                    r.dst.named_port_ip_sets.push("n:d".into());
                }
                r.dst.nets.extend(net);
                r
            })
    }

    fn policies() -> impl Strategy<Value = BTreeMap<PolicyId, Policy>> {
        proptest::collection::btree_map(
            0usize..POLICIES.len(),
            (
                proptest::collection::vec(rule(), 0..3),
                proptest::collection::vec(rule(), 0..2),
            ),
            0..POLICIES.len(),
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(i, (inbound, outbound))| {
                    (
                        pid(i),
                        Policy {
                            namespace: "ns".into(),
                            inbound,
                            outbound,
                            ..Policy::default()
                        },
                    )
                })
                .collect()
        })
    }

    /// A valid model: endpoints only list active policies.
    pub fn model() -> impl Strategy<Value = DataplaneModel> {
        (
            ip_sets(),
            policies(),
            any::<bool>(),
            proptest::collection::btree_map(
                0usize..IFACES.len(),
                (
                    proptest::collection::vec(0usize..POLICIES.len(), 0..4),
                    any::<bool>(),
                ),
                0..IFACES.len(),
            ),
            any::<bool>(),
        )
            .prop_map(|(ip_sets, policies, with_profile, eps, hep)| {
                let mut profiles = BTreeMap::new();
                if with_profile {
                    profiles.insert(
                        "kns.ns".to_string(),
                        Profile {
                            inbound: vec![Rule::any(RuleAction::Allow)],
                            outbound: vec![Rule::any(RuleAction::Allow)],
                        },
                    );
                }
                let tiers_for = |idx: &[usize], ingress: bool| -> Vec<TierInfo> {
                    let chosen: BTreeSet<PolicyId> = idx
                        .iter()
                        .map(|i| pid(*i))
                        .filter(|p| policies.contains_key(p))
                        .collect();
                    let mut tiers: Vec<TierInfo> = Vec::new();
                    for tier in ["t1", "default"] {
                        let ps: Vec<PolicyId> =
                            chosen.iter().filter(|p| p.tier == tier).cloned().collect();
                        if ps.is_empty() {
                            continue;
                        }
                        tiers.push(TierInfo {
                            name: tier.into(),
                            default_action: if tier == "t1" {
                                TierDefaultAction::Pass
                            } else {
                                TierDefaultAction::Deny
                            },
                            ingress_policies: if ingress { ps.clone() } else { vec![] },
                            egress_policies: ps,
                        });
                    }
                    tiers
                };
                let workload_endpoints = eps
                    .iter()
                    .map(|(i, (pols, ingress))| {
                        (
                            WorkloadEndpointId {
                                orchestrator_id: "k8s".into(),
                                // Three namespaces, so that sharded layouts have several shards.
                                workload_id: format!("ns{}/pod{i}", i % 3),
                                endpoint_id: "eth0".into(),
                            },
                            WorkloadEndpoint {
                                interface_name: IFACES[*i].into(),
                                profile_ids: vec!["kns.ns".into()],
                                tiers: tiers_for(pols, *ingress),
                                allow_spoofed_source_prefixes: if pols.len() == 1 {
                                    vec!["10.9.0.0/16".parse().unwrap()]
                                } else {
                                    vec![]
                                },
                                ..WorkloadEndpoint::default()
                            },
                        )
                    })
                    .collect();
                let mut host_endpoints = BTreeMap::new();
                if hep {
                    let all: Vec<usize> = (0..POLICIES.len()).collect();
                    host_endpoints.insert(
                        "h".to_string(),
                        HostEndpoint {
                            interface_name: "eth0".into(),
                            forward_tiers: tiers_for(&all[..2], true),
                            tiers: tiers_for(&all[2..], false),
                            ..HostEndpoint::default()
                        },
                    );
                }
                DataplaneModel {
                    ip_sets,
                    policies,
                    profiles,
                    workload_endpoints,
                    host_endpoints,
                }
            })
    }
}

pub mod sim {
    //! A textual simulator of the nft commands calico-nft emits: enough of nft's semantics
    //! (table blocks, add/delete/flush of sets, maps, chains, elements and rules) to check
    //! that a diff script turns one table into another. Any command it does not know fails.
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    pub struct Table {
        pub sets: BTreeMap<String, (String, BTreeSet<String>)>,
        pub maps: BTreeMap<String, (String, BTreeMap<String, String>)>,
        pub chains: BTreeMap<String, (Option<String>, Vec<String>)>,
    }

    fn split_elems(s: &str) -> Vec<String> {
        s.split(", ").map(|e| e.trim().to_string()).collect()
    }

    /// `{ SPEC elements = { a, b }; }` → (spec, elements).
    fn parse_decl(body: &str) -> (String, Vec<String>) {
        let body = body
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .trim();
        match body.split_once(" elements = { ") {
            Some((spec, rest)) => (
                spec.trim().to_string(),
                split_elems(
                    rest.trim()
                        .trim_end_matches(';')
                        .trim()
                        .trim_end_matches('}')
                        .trim(),
                ),
            ),
            None => (body.to_string(), vec![]),
        }
    }

    fn map_entry(e: &str) -> (String, String) {
        let (k, v) = e
            .split_once(" : ")
            .unwrap_or_else(|| panic!("map entry {e}"));
        (k.to_string(), v.to_string())
    }

    pub fn run(tables: &mut BTreeMap<String, Table>, script: &str) -> Result<(), String> {
        let mut lines = script.lines();
        while let Some(line) = lines.next() {
            let line = line.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("table inet ") {
                let name = rest.trim_end_matches(" {").to_string();
                let t = tables.entry(name).or_default();
                let mut current: Option<String> = None;
                for l in lines.by_ref() {
                    let l = l.trim();
                    if l == "}" {
                        if current.take().is_none() {
                            break;
                        }
                        continue;
                    }
                    if let Some(c) = &current {
                        let chain = t.chains.get_mut(c).unwrap();
                        if l.starts_with("type filter hook") {
                            chain.0 = Some(l.to_string());
                        } else {
                            chain.1.push(l.to_string());
                        }
                    } else if let Some(r) = l.strip_prefix("set ") {
                        let (name, body) = r.split_once(' ').unwrap();
                        let (spec, el) = parse_decl(body);
                        t.sets.insert(name.into(), (spec, el.into_iter().collect()));
                    } else if let Some(r) = l.strip_prefix("map ") {
                        let (name, body) = r.split_once(' ').unwrap();
                        let (spec, el) = parse_decl(body);
                        t.maps.insert(
                            name.into(),
                            (spec, el.iter().map(|e| map_entry(e)).collect()),
                        );
                    } else if let Some(r) = l.strip_prefix("chain ") {
                        let name = r.trim_end_matches(" {").to_string();
                        t.chains.insert(name.clone(), (None, vec![]));
                        current = Some(name);
                    } else {
                        return Err(format!("unknown line in table block: {l}"));
                    }
                }
                continue;
            }
            let words: Vec<&str> = line.splitn(5, ' ').collect();
            if words.len() < 4 || words[2] != "inet" {
                return Err(format!("unknown command {line}"));
            }
            let (verb, obj, table) = (words[0], words[1], words[3]);
            if obj == "table" {
                match verb {
                    "add" => {
                        tables.entry(table.trim().to_string()).or_default();
                    }
                    "delete" => {
                        tables
                            .remove(table.trim())
                            .ok_or(format!("delete of missing table: {line}"))?;
                    }
                    _ => return Err(format!("unknown command {line}")),
                }
                continue;
            }
            let t = tables
                .get_mut(table)
                .ok_or(format!("no table for {line}"))?;
            let rest = words.get(4).copied().unwrap_or("");
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = name.to_string();
            match (verb, obj) {
                ("add", "set") => {
                    if t.sets.contains_key(&name) {
                        return Err(format!("set exists: {line}"));
                    }
                    let (spec, _) = parse_decl(tail);
                    t.sets.insert(name, (spec, BTreeSet::new()));
                }
                ("delete", "set") => {
                    t.sets.remove(&name).ok_or(format!("missing: {line}"))?;
                }
                ("add", "map") => {
                    let (spec, _) = parse_decl(tail);
                    t.maps.insert(name, (spec, BTreeMap::new()));
                }
                ("delete", "map") => {
                    t.maps.remove(&name).ok_or(format!("missing: {line}"))?;
                }
                ("add", "element") | ("delete", "element") => {
                    let inner = tail.trim().trim_start_matches("{ ").trim_end_matches(" }");
                    let elems = split_elems(inner);
                    if let Some(s) = t.sets.get_mut(&name) {
                        for e in elems {
                            let ok = if verb == "add" {
                                s.1.insert(e)
                            } else {
                                s.1.remove(&e)
                            };
                            if !ok {
                                return Err(format!("element {verb} has no effect: {line}"));
                            }
                        }
                    } else if let Some(m) = t.maps.get_mut(&name) {
                        for e in elems {
                            if verb == "add" {
                                let (k, v) = map_entry(&e);
                                if m.1.insert(k, v).is_some() {
                                    return Err(format!("map key exists: {line}"));
                                }
                            } else if m.1.remove(&e).is_none() {
                                return Err(format!("map key missing: {line}"));
                            }
                        }
                    } else {
                        return Err(format!("no set or map: {line}"));
                    }
                }
                ("add", "chain") => {
                    if t.chains.contains_key(&name) {
                        return Err(format!("chain exists: {line}"));
                    }
                    let base = (!tail.is_empty()).then(|| {
                        tail.trim()
                            .trim_start_matches("{ ")
                            .trim_end_matches(" }")
                            .to_string()
                    });
                    t.chains.insert(name, (base, vec![]));
                }
                ("flush", "chain") => {
                    t.chains
                        .get_mut(&name)
                        .ok_or(format!("missing: {line}"))?
                        .1
                        .clear();
                }
                ("delete", "chain") => {
                    let c = t.chains.get(&name).ok_or(format!("missing: {line}"))?;
                    if !c.1.is_empty() {
                        return Err(format!("delete of non-empty chain: {line}"));
                    }
                    // Still referenced by a rule or a map entry?
                    let jump = format!(" {name}");
                    let used = t.chains.values().any(|(_, rules)| {
                        rules.iter().any(|r| {
                            (r.contains("jump ") || r.contains("goto "))
                                && (r.ends_with(&jump) || r.contains(&format!("{jump} ")))
                        })
                    }) || t
                        .maps
                        .values()
                        .any(|(_, m)| m.values().any(|v| v.ends_with(&jump)));
                    if used {
                        return Err(format!("chain still referenced: {line}"));
                    }
                    t.chains.remove(&name);
                }
                ("add", "rule") => {
                    t.chains
                        .get_mut(&name)
                        .ok_or(format!("rule for missing chain: {line}"))?
                        .1
                        .push(tail.to_string());
                }
                _ => return Err(format!("unknown command {line}")),
            }
        }
        Ok(())
    }
}
