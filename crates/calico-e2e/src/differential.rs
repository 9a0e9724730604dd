//! Randomized differential testing of the whole policy pipeline (`docs/design/
//! policy-dataplane.md`, "Proof"): seeded random Calico resources (workload endpoints with
//! labels from a small vocabulary, `kns.` profiles carrying `pcns.` namespace labels, `ksa.`
//! profiles carrying `pcsa.` service-account labels, named ports, tiers with random order and
//! default action, NetworkPolicies and GlobalNetworkPolicies with random rules, maybe a
//! GlobalNetworkSet and a NetworkSet) go through
//! `calico_calc::CalcGraph` and `calico_nft::compile` on one side and through the reference
//! evaluator `calico_policy_eval` on the other.
//!
//! This module is pure: it generates cases, computes the evaluator's expected reachability
//! matrix and checks the graph's per-endpoint tier / policy lists against the evaluator's
//! ordering. The real-kernel half (pods in network namespaces, probes) lives in
//! `tests/policy_differential.rs`. Unlike the rest of this crate it links the policy crates
//! directly: the point is to compare their internals with the reference.
//!
//! Every generated resource must pass calico-api's defaulting and validation; a resource that
//! does not is regenerated (and counted), and a whole case that the graph or the evaluator
//! refuses is regenerated too (counted), never skipped silently. (In practice the only
//! refusals are `notNets: [0.0.0.0/0]`, which Calico's validator rejects as a contradiction.)

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use calico_api::Resource;
use calico_calc::{CalcGraph, DataplaneModel, ResourceKey};
use calico_policy_eval::{Packet, PolicySet, Resources, Verdict, evaluate};
use serde_json::{Value, json};

use crate::reach::{Cell, Matrix, Proto};

/// The node every generated endpoint lives on (all endpoints are local).
pub const NODE: &str = "dnode";

/// xorshift64*: small, seedable, good enough to spread test cases.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // A zero state would stay zero; mix the seed (splitmix64 step) so nearby seeds differ.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One pod of a case: where it lives and what it is called in the resources.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Pod name (`p0`, `p1`, ...).
    pub name: String,
    pub namespace: String,
    /// Host-side interface, `cali` + 11 hex digits like Calico's.
    pub iface: String,
    pub ip: Ipv4Addr,
}

impl PodSpec {
    /// The matrix / evaluator key, `<namespace>/<wep name>`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, wep_name(&self.name))
    }
}

/// Generated resources that had to be regenerated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Regenerated {
    /// Single resources refused by calico-api's validation.
    pub invalid_resources: usize,
    /// Whole cases refused by the calculation graph or the evaluator.
    pub refused_cases: usize,
    /// Why each refused resource was refused.
    pub reasons: Vec<String>,
}

/// One random scenario.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub pods: Vec<PodSpec>,
    /// Ports every pod serves and every pair probes, TCP and UDP.
    pub ports: Vec<u16>,
    /// Defaulted and validated resources, in the order they are fed to the graph.
    pub resources: Vec<Resource>,
    pub regenerated: Regenerated,
    /// Why cases were refused (for the report), one line each.
    pub refusals: Vec<String>,
}

const NAMESPACES: [&str; 3] = ["ns-a", "ns-b", "ns-c"];
const TEAMS: [&str; 2] = ["red", "blue"];
const PORT_POOL: [u16; 5] = [80, 81, 443, 8080, 9090];
const NAMED_PORTS: [&str; 3] = ["http", "metrics", "dns"];
const TIERS: [&str; 2] = ["tier-a", "tier-b"];

fn wep_name(pod: &str) -> String {
    format!("{NODE}-k8s-{pod}-eth0")
}

/// Endpoint selectors over the label vocabulary (`app`, `role`, `env`, and `netset` of the
/// network set).
const ATOMS: [&str; 12] = [
    "all()",
    "has(app)",
    "!has(app)",
    "app == 'web'",
    "app == 'db'",
    "app != 'web'",
    "role == 'front'",
    "role in {'front', 'back'}",
    "env == 'prod'",
    "has(env)",
    "env not in {'prod'}",
    "app == 'cache' || role == 'back'",
];

const NET_ATOMS: [&str; 3] = ["netset == 'trusted'", "has(netset)", "netset == 'local'"];

const SERVICE_ACCOUNTS: [&str; 2] = ["default", "api"];
/// Service-account selectors: over the `pcsa.` labels of the `ksa.` profiles.
const SA_SELECTORS: [&str; 4] = [
    "all()",
    "role == 'admin'",
    "projectcalico.org/name == 'api'",
    "!has(role)",
];

const NS_SELECTORS: [&str; 6] = [
    "all()",
    "team == 'red'",
    "team == 'blue'",
    "has(team)",
    "projectcalico.org/name == 'ns-a'",
    "projectcalico.org/name in {'ns-b', 'ns-c'}",
];

fn selector(rng: &mut Rng, with_netset: bool) -> String {
    let atom = |rng: &mut Rng| -> String {
        if with_netset && rng.chance(15) {
            rng.pick(&NET_ATOMS).to_string()
        } else {
            rng.pick(&ATOMS).to_string()
        }
    };
    match rng.below(10) {
        0..=5 => atom(rng),
        6 | 7 => format!("({}) && ({})", atom(rng), atom(rng)),
        8 => format!("({}) || ({})", atom(rng), atom(rng)),
        _ => format!("!({})", atom(rng)),
    }
}

fn decode(v: &Value) -> Result<Resource, String> {
    let r = Resource::from_json_value(v.clone()).map_err(|e| format!("decode: {e}"))?;
    r.defaulted_and_validated()
        .map_err(|e| format!("validation: {e}"))
}

/// Tries `make` until calico-api accepts what it produced, counting refusals.
fn validated(
    rng: &mut Rng,
    regen: &mut Regenerated,
    mut make: impl FnMut(&mut Rng) -> Value,
) -> Resource {
    loop {
        let v = make(rng);
        match decode(&v) {
            Ok(r) => return r,
            Err(e) => {
                regen.invalid_resources += 1;
                regen.reasons.push(e);
            }
        }
    }
}

struct Ctx<'a> {
    pods: &'a [PodSpec],
    ports: &'a [u16],
    netset: bool,
}

fn port_value(rng: &mut Rng, ctx: &Ctx<'_>, named: bool) -> Value {
    match rng.below(10) {
        0..=4 => json!(*rng.pick(ctx.ports)),
        5 | 6 => {
            let a = *rng.pick(ctx.ports);
            let b = *rng.pick(ctx.ports);
            json!(format!("{}:{}", a.min(b), a.max(b)))
        }
        7 if named => json!(*rng.pick(&NAMED_PORTS)),
        8 if named => json!(*rng.pick(&NAMED_PORTS)),
        _ => json!(*rng.pick(&PORT_POOL)),
    }
}

fn nets(rng: &mut Rng, ctx: &Ctx<'_>) -> Value {
    let n = 1 + rng.below(2);
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(match rng.below(8) {
            0..=3 => format!("{}/32", rng.pick(ctx.pods).ip),
            4 => "10.65.0.0/24".to_string(),
            5 => "10.65.0.0/16".to_string(),
            6 => "0.0.0.0/0".to_string(),
            _ => "192.0.2.0/24".to_string(),
        });
    }
    json!(out)
}

fn entity(rng: &mut Rng, ctx: &Ctx<'_>, proto_ports: bool, destination: bool) -> Value {
    let mut e = serde_json::Map::new();
    if rng.chance(30) {
        e.insert("selector".into(), json!(selector(rng, ctx.netset)));
    }
    if rng.chance(12) {
        e.insert("notSelector".into(), json!(selector(rng, ctx.netset)));
    }
    if rng.chance(20) {
        let s = if rng.chance(15) {
            "global()"
        } else {
            rng.pick(&NS_SELECTORS)
        };
        e.insert("namespaceSelector".into(), json!(s));
    }
    if rng.chance(15) {
        e.insert("nets".into(), nets(rng, ctx));
    }
    if rng.chance(10) {
        e.insert("notNets".into(), nets(rng, ctx));
    }
    if rng.chance(12) {
        let sa = match rng.below(3) {
            0 => json!({"names": [*rng.pick(&SERVICE_ACCOUNTS)]}),
            1 => json!({"selector": *rng.pick(&SA_SELECTORS)}),
            _ => json!({"names": [*rng.pick(&SERVICE_ACCOUNTS)],
                        "selector": *rng.pick(&SA_SELECTORS)}),
        };
        e.insert("serviceAccounts".into(), sa);
    }
    if proto_ports && destination {
        if rng.chance(45) {
            let n = 1 + rng.below(2);
            let ps: Vec<Value> = (0..n).map(|_| port_value(rng, ctx, true)).collect();
            e.insert("ports".into(), json!(ps));
        }
        if rng.chance(15) {
            e.insert("notPorts".into(), json!([port_value(rng, ctx, true)]));
        }
    }
    if proto_ports && !destination && rng.chance(10) {
        // Source ports: probes come from the ephemeral range (32768-60999) and the
        // evaluator's packets from port 40000, so only ranges that contain all of the
        // ephemeral range or none of it keep both sides comparable.
        let r = if rng.chance(50) {
            "1:1024"
        } else {
            "30000:65535"
        };
        let key = if rng.chance(70) { "ports" } else { "notPorts" };
        e.insert(key.into(), json!([r]));
    }
    Value::Object(e)
}

fn rule(rng: &mut Rng, ctx: &Ctx<'_>, profile: bool) -> Value {
    let action = if profile {
        *rng.pick(&["Allow", "Allow", "Deny", "Log"])
    } else {
        *rng.pick(&[
            "Allow", "Allow", "Allow", "Deny", "Deny", "Pass", "Log", "Allow",
        ])
    };
    let mut r = serde_json::Map::new();
    r.insert("action".into(), json!(action));
    let proto = match rng.below(20) {
        0..=5 => None,
        6..=11 => Some("TCP"),
        12..=16 => Some("UDP"),
        _ => Some("ICMP"),
    };
    if let Some(p) = proto {
        r.insert("protocol".into(), json!(p));
    }
    if proto == Some("ICMP") && rng.chance(40) {
        // Echo request (8) is what the probes send; echo reply (0) never matches them.
        let icmp = match rng.below(4) {
            0 => json!({"type": 8}),
            1 => json!({"type": 8, "code": 0}),
            2 => json!({"type": 0}),
            _ => json!({"type": 8, "code": 1}),
        };
        let key = if rng.chance(70) { "icmp" } else { "notICMP" };
        r.insert(key.into(), icmp);
    }
    if rng.chance(12) {
        r.insert(
            "notProtocol".into(),
            json!(*rng.pick(&["TCP", "UDP", "ICMP"])),
        );
    }
    if rng.chance(5) {
        r.insert("ipVersion".into(), json!(4));
    }
    let ports_ok = matches!(proto, Some("TCP") | Some("UDP"));
    let src = entity(rng, ctx, ports_ok, false);
    let dst = entity(rng, ctx, ports_ok, true);
    if src.as_object().is_some_and(|m| !m.is_empty()) {
        r.insert("source".into(), src);
    }
    if dst.as_object().is_some_and(|m| !m.is_empty()) {
        r.insert("destination".into(), dst);
    }
    Value::Object(r)
}

fn rules(rng: &mut Rng, ctx: &Ctx<'_>, max: usize, profile: bool) -> Vec<Value> {
    let mut out: Vec<Value> = (0..rng.below(max + 1))
        .map(|_| rule(rng, ctx, profile))
        .collect();
    // Random matches are narrow: a catch-all at the end keeps allowed and passed traffic
    // common, so the matrices are not almost all blocked.
    if rng.chance(35) {
        let action = match rng.below(20) {
            0..=11 => "Allow",
            12..=16 if !profile => "Pass",
            _ => "Deny",
        };
        out.push(json!({"action": action}));
    }
    out
}

fn types(rng: &mut Rng) -> Value {
    match rng.below(6) {
        0 => json!([]),
        1 => json!(["Ingress"]),
        2 => json!(["Egress"]),
        _ => json!(["Ingress", "Egress"]),
    }
}

/// Generates case `seed`: 4-6 pods, profiles, tiers, policies, maybe a network set. The
/// result is accepted by calico-api, the calculation graph and the evaluator.
pub fn generate(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let mut regen = Regenerated::default();
    let mut refusals = Vec::new();
    loop {
        let mut case = generate_once(&mut rng, seed, &mut regen);
        match policy_set(&case.resources).and_then(|_| graph(&case.resources).map(|_| ())) {
            Ok(()) => {
                case.regenerated = regen;
                case.refusals = refusals;
                return case;
            }
            Err(e) => {
                regen.refused_cases += 1;
                refusals.push(e);
            }
        }
    }
}

fn generate_once(rng: &mut Rng, seed: u64, regen: &mut Regenerated) -> Case {
    let n = 4 + rng.below(3);
    let mut pods = Vec::new();
    let mut used = BTreeSet::new();
    for i in 0..n {
        let ip = loop {
            let ip = Ipv4Addr::new(10, 65, rng.below(2) as u8, 2 + rng.below(250) as u8);
            if used.insert(ip) {
                break ip;
            }
        };
        pods.push(PodSpec {
            name: format!("p{i}"),
            namespace: rng.pick(&NAMESPACES).to_string(),
            iface: format!("cali{:011x}", rng.next_u64() & 0xfff_ffff_ffff),
            ip,
        });
    }
    let mut ports: Vec<u16> = PORT_POOL.to_vec();
    while ports.len() > 2 + rng.below(2) {
        let i = rng.below(ports.len());
        ports.remove(i);
    }
    let netset = rng.chance(40);
    let ctx = Ctx {
        pods: &pods,
        ports: &ports,
        netset,
    };
    let mut resources = Vec::new();

    // Tiers: default always (Calico creates it), then one or two of ours.
    resources.push(validated(rng, regen, |_| {
        json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier",
               "metadata": {"name": "default"},
               "spec": {"order": 1_000_000.0, "defaultAction": "Deny"}})
    }));
    let n_tiers = 1 + rng.below(2);
    let tiers: Vec<&str> = TIERS[..n_tiers].to_vec();
    for t in &tiers {
        resources.push(validated(rng, regen, |rng| {
            // Small order range: equal orders exercise the name tie-break.
            let order = (1 + rng.below(3)) as f64 * 10.0;
            let action = if rng.chance(50) { "Deny" } else { "Pass" };
            json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier",
                   "metadata": {"name": t},
                   "spec": {"order": order, "defaultAction": action}})
        }));
    }

    // Namespace profiles: labels to apply and (usually) allow-all rules, as kube-controllers
    // writes them; sometimes empty or random rules to exercise the profile stage.
    for ns in NAMESPACES {
        resources.push(validated(rng, regen, |rng| {
            let (ingress, egress) = match rng.below(20) {
                0..=14 => (
                    vec![json!({"action": "Allow"})],
                    vec![json!({"action": "Allow"})],
                ),
                15 | 16 => (vec![], vec![]),
                _ => (rules(rng, &ctx, 2, true), rules(rng, &ctx, 2, true)),
            };
            json!({"apiVersion": "projectcalico.org/v3", "kind": "Profile",
                   "metadata": {"name": format!("kns.{ns}")},
                   "spec": {"labelsToApply": {"pcns.projectcalico.org/name": ns,
                                              "pcns.team": *rng.pick(&TEAMS)},
                            "ingress": ingress, "egress": egress}})
        }));
    }

    // Service-account profiles as kube-controllers writes them: labels, no rules.
    for ns in NAMESPACES {
        for sa in SERVICE_ACCOUNTS {
            resources.push(validated(rng, regen, |rng| {
                let mut labels = json!({"pcsa.projectcalico.org/name": sa});
                if rng.chance(50) {
                    labels["pcsa.role"] = json!(*rng.pick(&["admin", "user"]));
                }
                json!({"apiVersion": "projectcalico.org/v3", "kind": "Profile",
                       "metadata": {"name": format!("ksa.{ns}.{sa}")},
                       "spec": {"labelsToApply": labels}})
            }));
        }
    }

    for pod in &pods {
        resources.push(validated(rng, regen, |rng| {
            let mut labels = json!({
                "projectcalico.org/namespace": pod.namespace,
                "projectcalico.org/orchestrator": "k8s",
            });
            for (k, vals) in [
                ("app", &["web", "db", "cache"][..]),
                ("role", &["front", "back"][..]),
                ("env", &["prod", "dev"][..]),
            ] {
                if rng.chance(70) {
                    labels[k] = json!(*rng.pick(vals));
                }
            }
            let mut named = Vec::new();
            for name in NAMED_PORTS {
                if rng.chance(40) {
                    let proto = if rng.chance(50) { "TCP" } else { "UDP" };
                    named.push(json!({"name": name, "protocol": proto,
                                      "port": *rng.pick(ctx.ports)}));
                }
            }
            let sa = *rng.pick(&SERVICE_ACCOUNTS);
            labels["projectcalico.org/serviceaccount"] = json!(sa);
            json!({"apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
                   "metadata": {"name": wep_name(&pod.name), "namespace": pod.namespace,
                                "labels": labels},
                   "spec": {"node": NODE, "orchestrator": "k8s", "pod": pod.name,
                            "endpoint": "eth0", "interfaceName": pod.iface,
                            "ipNetworks": [format!("{}/32", pod.ip)],
                            "serviceAccountName": sa,
                            "profiles": [format!("kns.{}", pod.namespace),
                                         format!("ksa.{}.{sa}", pod.namespace)],
                            "ports": named}})
        }));
    }

    if netset {
        resources.push(validated(rng, regen, |rng| {
            json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
                   "metadata": {"name": "trusted", "labels": {"netset": "trusted"}},
                   "spec": {"nets": nets(rng, &ctx)}})
        }));
    }

    if netset && rng.chance(60) {
        resources.push(validated(rng, regen, |rng| {
            json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkSet",
                   "metadata": {"name": "local", "namespace": *rng.pick(&NAMESPACES),
                                "labels": {"netset": "local"}},
                   "spec": {"nets": nets(rng, &ctx)}})
        }));
    }

    let n_policies = 1 + rng.below(6);
    for i in 0..n_policies {
        resources.push(validated(rng, regen, |rng| {
            let tier = if rng.chance(40) {
                "default"
            } else {
                *rng.pick(&tiers)
            };
            let name = if tier == "default" {
                format!("p{i}")
            } else {
                format!("{tier}.p{i}")
            };
            let mut spec = serde_json::Map::new();
            spec.insert("tier".into(), json!(tier));
            if rng.chance(80) {
                spec.insert("order".into(), json!((1 + rng.below(3)) as f64));
            }
            spec.insert("selector".into(), json!(selector(rng, false)));
            spec.insert("types".into(), types(rng));
            if rng.chance(10) {
                spec.insert(
                    "serviceAccountSelector".into(),
                    json!(*rng.pick(&SA_SELECTORS)),
                );
            }
            spec.insert("ingress".into(), json!(rules(rng, &ctx, 3, false)));
            spec.insert("egress".into(), json!(rules(rng, &ctx, 3, false)));
            if rng.chance(40) {
                if rng.chance(25) {
                    spec.insert("namespaceSelector".into(), json!(*rng.pick(&NS_SELECTORS)));
                }
                json!({"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
                       "metadata": {"name": name}, "spec": spec})
            } else {
                json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                       "metadata": {"name": name, "namespace": *rng.pick(&NAMESPACES)},
                       "spec": spec})
            }
        }));
    }

    Case {
        seed,
        pods,
        ports,
        resources,
        regenerated: Regenerated::default(),
        refusals: Vec::new(),
    }
}

/// The evaluator's view of `resources`.
pub fn policy_set(resources: &[Resource]) -> Result<PolicySet, String> {
    let mut res = Resources::default();
    for r in resources {
        res.add(r.clone())
            .map_err(|e| format!("evaluator refused {}: {e}", r.display_name()))?;
    }
    PolicySet::from_resources(res).map_err(|e| format!("evaluator refused the set: {e}"))
}

/// The calculation graph fed `resources` as one snapshot and flushed.
pub fn graph(resources: &[Resource]) -> Result<CalcGraph, String> {
    let mut g = CalcGraph::new(NODE);
    let errors = g.on_updates(
        resources
            .iter()
            .map(|r| (ResourceKey::of(r), Some(r.clone()))),
    );
    if let Some(e) = errors.first() {
        return Err(format!(
            "calculation graph refused {} resources, first: {e}",
            errors.len()
        ));
    }
    g.flush();
    Ok(g)
}

/// The probes of a case: TCP and UDP to each of its ports, and one ICMP echo request.
pub fn probes(case: &Case) -> Vec<(Proto, u16)> {
    let mut out: Vec<(Proto, u16)> = [Proto::Tcp, Proto::Udp]
        .into_iter()
        .flat_map(|proto| case.ports.iter().map(move |&port| (proto, port)))
        .collect();
    out.push((Proto::Icmp, 0));
    out
}

/// The evaluator's packet for one probe: TCP / UDP from an ephemeral port (real probes use
/// the kernel's ephemeral range, the generator keeps source-port rules independent of which
/// port), ICMP echo request (type 8, code 0).
fn packet(src: Ipv4Addr, dst: Ipv4Addr, proto: Proto, port: u16) -> Packet {
    let (src, dst) = (IpAddr::V4(src), IpAddr::V4(dst));
    match proto {
        Proto::Icmp => {
            let mut p = Packet::new(src, dst, 1);
            p.icmp_type = Some(8);
            p.icmp_code = Some(0);
            p
        }
        Proto::Tcp | Proto::Udp => {
            let mut p = Packet::new(src, dst, if proto == Proto::Tcp { 6 } else { 17 });
            p.dst_port = Some(port);
            p.src_port = Some(calico_policy_eval::DEFAULT_SRC_PORT);
            p
        }
    }
}

/// What the evaluator decides for every ordered pod pair and every probe of the case.
pub fn expected(case: &Case, set: &PolicySet) -> Matrix {
    let mut m = Matrix::default();
    for a in &case.pods {
        for b in &case.pods {
            if a.name == b.name {
                continue;
            }
            for (proto, port) in probes(case) {
                let allowed =
                    evaluate(set, &packet(a.ip, b.ip, proto, port)).overall == Verdict::Allow;
                m.cells.insert(
                    Cell {
                        from: a.key(),
                        to: b.key(),
                        proto,
                        port,
                    },
                    allowed,
                );
            }
        }
    }
    m
}

/// How the evaluator decided a case's probes: evidence that the generator reaches every
/// stage of Calico's policy semantics (summed over cases by the tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    pub probes: usize,
    pub allowed: usize,
    /// Directions decided by an Allow / Deny rule of a policy.
    pub policy_allow: usize,
    pub policy_deny: usize,
    /// Directions that ended at a tier's end-of-tier drop.
    pub end_of_tier: usize,
    /// Directions decided by a profile rule, or by no profile matching.
    pub profile: usize,
    pub no_profile_matched: usize,
    /// Directions whose trace shows a Pass rule, a Log rule, a tier passed by default
    /// (more than one tier entered without a Pass rule).
    pub pass_rule: usize,
    pub log_rule: usize,
    pub multi_tier: usize,
}

impl Coverage {
    pub fn add(&mut self, o: &Coverage) {
        self.probes += o.probes;
        self.allowed += o.allowed;
        self.policy_allow += o.policy_allow;
        self.policy_deny += o.policy_deny;
        self.end_of_tier += o.end_of_tier;
        self.profile += o.profile;
        self.no_profile_matched += o.no_profile_matched;
        self.pass_rule += o.pass_rule;
        self.log_rule += o.log_rule;
        self.multi_tier += o.multi_tier;
    }
}

/// The [`Coverage`] of one case's probes.
pub fn coverage(case: &Case, set: &PolicySet) -> Coverage {
    use calico_policy_eval::DecidedBy;
    let mut c = Coverage::default();
    for a in &case.pods {
        for b in &case.pods {
            if a.name == b.name {
                continue;
            }
            for (proto, port) in probes(case) {
                {
                    let d = evaluate(set, &packet(a.ip, b.ip, proto, port));
                    c.probes += 1;
                    c.allowed += usize::from(d.overall == Verdict::Allow);
                    for r in [&d.egress_of_src_endpoint, &d.ingress_of_dst_endpoint]
                        .into_iter()
                        .flatten()
                    {
                        match &r.decided_by {
                            DecidedBy::Rule { .. } if r.allowed() => c.policy_allow += 1,
                            DecidedBy::Rule { .. } => c.policy_deny += 1,
                            DecidedBy::EndOfTier { .. } => c.end_of_tier += 1,
                            DecidedBy::ProfileRule { .. } => c.profile += 1,
                            DecidedBy::NoProfileMatched => c.no_profile_matched += 1,
                            _ => {}
                        }
                        let passes = r.trace.iter().filter(|t| t.ends_with(": pass")).count();
                        let tiers = r.trace.iter().filter(|t| t.starts_with("tier ")).count();
                        c.pass_rule += usize::from(passes > 0);
                        c.log_rule += usize::from(r.trace.iter().any(|t| t.ends_with(": log")));
                        c.multi_tier += usize::from(tiers > 1 && passes == 0);
                    }
                }
            }
        }
    }
    c
}

/// The evaluator's explanation of one cell (for failure reports).
pub fn explain(case: &Case, set: &PolicySet, cell: &Cell) -> String {
    let find = |k: &str| case.pods.iter().find(|p| p.key() == k).map(|p| p.ip);
    let (Some(src), Some(dst)) = (find(&cell.from), find(&cell.to)) else {
        return "unknown pods".into();
    };
    evaluate(set, &packet(src, dst, cell.proto, cell.port)).to_string()
}

/// The resources as YAML documents (each one JSON, which is YAML; readable back with
/// `Resources::from_yaml` or `calicoctl apply -f`).
pub fn resources_yaml(resources: &[Resource]) -> String {
    let mut out = String::new();
    for r in resources {
        let text = serde_json::to_string_pretty(&r.to_json_value()).unwrap_or_default();
        let _ = writeln!(out, "---\n{text}");
    }
    out
}

fn policy_types(resources: &[Resource], id: &calico_policy_eval::PolicyId) -> BTreeSet<String> {
    resources
        .iter()
        .find(|r| {
            let m = r.metadata();
            m.name == id.name
                && m.namespace == id.namespace
                && matches!(
                    (r, id.kind),
                    (
                        Resource::GlobalNetworkPolicy(_),
                        calico_policy_eval::PolicyKind::GlobalNetworkPolicy
                    ) | (
                        Resource::NetworkPolicy(_),
                        calico_policy_eval::PolicyKind::NetworkPolicy
                    )
                )
        })
        .and_then(|r| {
            r.to_json_value()["spec"]["types"].as_array().map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn tier_action(resources: &[Resource], tier: &str) -> String {
    resources
        .iter()
        .find(|r| matches!(r, Resource::Tier(_)) && r.metadata().name == tier)
        .and_then(|r| {
            r.to_json_value()["spec"]["defaultAction"]
                .as_str()
                .map(String::from)
        })
        .unwrap_or_else(|| "Deny".into())
}

/// Differences between the graph's per-endpoint tier lists and what the evaluator's ordering
/// implies: for each endpoint and direction, the tiers (in order, with default action) that
/// hold at least one policy selecting the endpoint with that direction in its `types`, each
/// with those policies in order. Empty when they agree.
pub fn ordering_mismatches(case: &Case, set: &PolicySet, model: &DataplaneModel) -> Vec<String> {
    let mut out = Vec::new();
    let ordering = set.ordering();
    for pod in &case.pods {
        let key = pod.key();
        let Some(labels) = set.endpoint_labels(&key) else {
            out.push(format!("{key}: unknown to the evaluator"));
            continue;
        };
        let Some(ep) = model
            .workload_endpoints
            .values()
            .find(|e| e.interface_name == pod.iface)
        else {
            out.push(format!("{key}: no endpoint {} in the model", pod.iface));
            continue;
        };
        for (dir, ingress) in [("Ingress", true), ("Egress", false)] {
            let mut want: Vec<(String, String, Vec<String>)> = Vec::new();
            for (tier, ids) in &ordering {
                let selected: Vec<String> = ids
                    .iter()
                    .filter(|id| {
                        let sel = set
                            .policy_selector(id)
                            .and_then(|s| calico_selector::parse(&s).ok());
                        sel.is_some_and(|s| s.evaluate(labels))
                            && policy_types(&case.resources, id).contains(dir)
                    })
                    .map(|id| id.to_string())
                    .collect();
                if !selected.is_empty() {
                    want.push((tier.clone(), tier_action(&case.resources, tier), selected));
                }
            }
            let got: Vec<(String, String, Vec<String>)> = ep
                .tiers
                .iter()
                .filter_map(|t| {
                    let ids = if ingress {
                        &t.ingress_policies
                    } else {
                        &t.egress_policies
                    };
                    (!ids.is_empty()).then(|| {
                        (
                            t.name.clone(),
                            format!("{:?}", t.default_action),
                            ids.iter().map(|i| i.to_string()).collect(),
                        )
                    })
                })
                .collect();
            if got != want {
                out.push(format!(
                    "{key} {dir}: model {got:?}, evaluator ordering implies {want:?}"
                ));
            }
        }
    }
    out
}

/// A random update sequence that ends in `case`'s resources: a random subset of another
/// case's resources (other labels, addresses and rules under the same names), then `case`'s
/// resources in random order, then deletes of the other case's resources `case` lacks.
pub fn update_sequence(case: &Case, rng: &mut Rng) -> Vec<(ResourceKey, Option<Resource>)> {
    let other = generate(case.seed ^ 0x5EED_CAFE);
    let mut steps: Vec<(ResourceKey, Option<Resource>)> = other
        .resources
        .iter()
        .filter(|_| rng.chance(60))
        .map(|r| (ResourceKey::of(r), Some(r.clone())))
        .collect();
    let mut mine: Vec<(ResourceKey, Option<Resource>)> = case
        .resources
        .iter()
        .map(|r| (ResourceKey::of(r), Some(r.clone())))
        .collect();
    for i in (1..mine.len()).rev() {
        let j = rng.below(i + 1);
        mine.swap(i, j);
    }
    let keep: BTreeSet<ResourceKey> = mine.iter().map(|(k, _)| k.clone()).collect();
    let stale: Vec<(ResourceKey, Option<Resource>)> = steps
        .iter()
        .filter(|(k, _)| !keep.contains(k))
        .map(|(k, _)| (k.clone(), None))
        .collect();
    steps.extend(mine);
    steps.extend(stale);
    steps
}

/// The dataplane reached in two steps, as calico-node reaches it: the update sequence
/// ([`update_sequence`]) cut at a random point, the graph flushed there and compiled (the
/// `first` table, loaded with a full replace), then the rest of the updates flushed,
/// `calico_nft::recompile`d and turned into an nft transaction with `calico_nft::diff`.
pub struct Staged {
    pub first: String,
    pub diff: String,
}

pub fn staged(case: &Case) -> Result<Staged, String> {
    let mut rng = Rng::new(case.seed.wrapping_mul(131).wrapping_add(3));
    let cfg = calico_nft::NftConfig::default();
    let steps = update_sequence(case, &mut rng);
    let cut = rng.below(steps.len() + 1);
    let mut g = CalcGraph::new(NODE);
    let mut it = steps.into_iter();
    for (k, v) in it.by_ref().take(cut) {
        g.on_update(k.clone(), v)
            .map_err(|e| format!("staged: {k} refused: {e}"))?;
    }
    g.flush();
    let first = calico_nft::compile(g.model(), &cfg).map_err(|e| format!("staged compile: {e}"))?;
    for (k, v) in it {
        g.on_update(k.clone(), v)
            .map_err(|e| format!("staged: {k} refused: {e}"))?;
    }
    let updates = g.flush();
    let second = calico_nft::recompile(&first, g.model(), &updates, &cfg)
        .map_err(|e| format!("staged recompile: {e}"))?;
    Ok(Staged {
        first: first.full_replace_script(),
        diff: calico_nft::diff(&first, &second),
    })
}

/// Incremental path against the batch path, for case `seed`: the graph fed first a random
/// subset of another case's resources (other labels, addresses, rules under the same names),
/// then this case's resources one by one in random order with random flushes, then deletes of
/// the other case's leftovers, must end in the same model as the graph fed this case in one
/// batch. Along the way, every flush's updates replayed onto an empty model must give the
/// graph's model, and `calico_nft::recompile` chained over the flushes must give what
/// `calico_nft::compile` gives for the final model. Empty when all of that holds.
pub fn incremental_mismatches(seed: u64) -> Vec<String> {
    let case = generate(seed);
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    let cfg = calico_nft::NftConfig::default();
    let mut out = Vec::new();
    let batch = match graph(&case.resources) {
        Ok(g) => g,
        Err(e) => return vec![e],
    };
    let mut g = CalcGraph::new(NODE);
    let mut replay = DataplaneModel::default();
    let mut rules = match calico_nft::compile(g.model(), &cfg) {
        Ok(r) => r,
        Err(e) => return vec![format!("compile of the empty model: {e}")],
    };
    let steps = update_sequence(&case, &mut rng);
    let n = steps.len();
    for (i, (key, value)) in steps.into_iter().enumerate() {
        let what = format!("{key} {}", if value.is_some() { "set" } else { "deleted" });
        if let Err(e) = g.on_update(key, value) {
            out.push(format!("step {i} ({what}): refused: {e}"));
        }
        if i + 1 == n || rng.chance(30) {
            let updates = g.flush();
            for u in &updates {
                if let Err(e) = replay.apply(u) {
                    out.push(format!("step {i} ({what}): replaying {u:?}: {e}"));
                }
            }
            if &replay != g.model() {
                out.push(format!(
                    "step {i} ({what}): the flushed updates replayed differ from the model"
                ));
            }
            match calico_nft::recompile(&rules, g.model(), &updates, &cfg) {
                Ok(r) => rules = r,
                Err(e) => out.push(format!("step {i} ({what}): recompile: {e}")),
            }
        }
    }
    if g.model() != batch.model() {
        out.push(format!(
            "incremental model differs from the batch model:\nincremental: {:#?}\nbatch: {:#?}",
            g.model(),
            batch.model()
        ));
    }
    match calico_nft::compile(batch.model(), &cfg) {
        Ok(full) if full.render() != rules.render() => out.push(format!(
            "recompile chain differs from compile:\nrecompiled:\n{}\ncompiled:\n{}",
            rules.render(),
            full.render()
        )),
        Ok(_) => {}
        Err(e) => out.push(format!("compile of the batch model: {e}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_spread() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        let mut r = Rng::new(0);
        let v: BTreeSet<usize> = (0..200).map(|_| r.below(10)).collect();
        assert_eq!(v.len(), 10);
    }

    #[test]
    fn generated_cases_are_valid_and_deterministic() {
        for seed in 0..20 {
            let a = generate(seed);
            let b = generate(seed);
            assert_eq!(resources_yaml(&a.resources), resources_yaml(&b.resources));
            assert!((4..=6).contains(&a.pods.len()));
            assert!(a.resources.iter().any(|r| matches!(
                r,
                Resource::NetworkPolicy(_) | Resource::GlobalNetworkPolicy(_)
            )));
        }
    }

    #[test]
    fn generator_reaches_every_stage_of_the_semantics() {
        let mut total = Coverage::default();
        let mut regen = Regenerated::default();
        for seed in 0..40 {
            let case = generate(seed);
            regen.invalid_resources += case.regenerated.invalid_resources;
            regen.refused_cases += case.regenerated.refused_cases;
            regen
                .reasons
                .extend(case.regenerated.reasons.iter().cloned());
            let set = policy_set(&case.resources).unwrap();
            total.add(&coverage(&case, &set));
        }
        eprintln!("{total:?} {regen:#?}");
        // Neither verdict dominates, and every way of deciding occurs.
        assert!(total.allowed * 10 > total.probes, "{total:?}");
        assert!(total.allowed * 10 < total.probes * 9, "{total:?}");
        for (what, n) in [
            ("policy allow", total.policy_allow),
            ("policy deny", total.policy_deny),
            ("end of tier", total.end_of_tier),
            ("profile", total.profile),
            ("no profile matched", total.no_profile_matched),
            ("pass rule", total.pass_rule),
            ("log rule", total.log_rule),
            ("tier passed by default", total.multi_tier),
        ] {
            assert!(n > 0, "no probe decided by {what}: {total:?}");
        }
    }
}
