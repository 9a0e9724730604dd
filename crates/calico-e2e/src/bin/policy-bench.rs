//! `policy-bench`: issue 6's three speed goals for the network-policy dataplane, measured side
//! by side in one run, printed as markdown tables (progress on stderr):
//!
//! - **(a) resources → programmed dataplane** for 1k and 10k policies × 200 local endpoints:
//!   realistic Calico resources (namespaces as `kns.` profiles, workload endpoints with labels
//!   from a small vocabulary and named ports, three tiers, GlobalNetworkPolicies and
//!   NetworkPolicies with selector / namespaceSelector / nets peers, port ranges) fed to
//!   `calico_calc::CalcGraph`, compiled with `calico_nft::compile`, rendered with
//!   `PolicyTables::full_replace_scripts_over` the tables `NftDriver::tables` lists (what
//!   calico-felix's `PolicyManager` does) and applied with `NftDriver` in a fresh
//!   network namespace. The floor is `nft -f` of the same rendered table in another fresh
//!   namespace (goal: total ≤ 1.5 × floor).
//! - **(b) one incremental change at 10k policies** (a policy edit, a local endpoint added, a
//!   local endpoint's labels changed): `on_update`, `flush`, then both what calico-node's loop
//!   does today (clone the model, full `compile`, `diff` against the applied ruleset) and the
//!   incremental path (`calico_nft::recompile`, `diff_plan`), then the change applied to the
//!   10k table as calico-felix's `PolicyManager` does: element-only changes as one nfnetlink
//!   batch of set elements (`NftDriver::apply_elements`), chain and rule changes as one
//!   nfnetlink batch of table operations (`NftDriver::apply_plan`), what has no plan as one
//!   `nft` transaction; plus a pod added on another node, which changes IP-set members only
//!   (goal < 20 ms).
//! - **(c) pod-to-pod TCP** through a "node" namespace wired like Calico (host-side veths
//!   `cali…`, /32 routes, static neighbours for 169.254.1.1): bulk throughput and ping-pong
//!   round-trip latency through four node namespaces wired alike — no table, the 10k-policy
//!   table left by (b), a conntrack-only table (what the established fast path costs on its
//!   own), and the same cluster's table without the generated policies (only the one that
//!   allows the flow) — visited in rotating order round after round, so machine noise hits
//!   all alike (goal ≥ 95 % of no-policy throughput).
//!
//! Everything happens in network namespaces this program creates and deletes
//! (`calico_netlink::testing::TestNetns`); the root namespace is never touched. Unlike the
//! rest of this crate, the bench links the policy crates directly: it times their stages,
//! which their executables cannot show.
//!
//! Run as root: `cargo build --release -p calico-e2e --bin policy-bench &&
//! target/release/policy-bench` (`--quick`, `--sizes 1000,10000`, `--endpoints N`,
//! `--reps N`, `--changes N`, `--rounds N`, `--secs S`, `--rtts N`, `--skip-one-by-one`,
//! `--skip-traffic`, `--dump-dir DIR` keeps the rendered rulesets and the last diffs, `--pure N`
//! times only our part of each (b) change without the kernel, `--ipv4-only` compiles as with
//! `FELIX_IPV6SUPPORT=false`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use calico_api::Resource;
use calico_calc::{CalcGraph, ResourceKey};
use calico_felix::policy::{DataplaneError, NftDriver, PolicyDataplane};
use calico_netlink::testing::TestNetns;
use calico_nft::{NftConfig, PolicyTables};
use serde_json::{Value, json};

/// The node whose endpoints are local.
const NODE: &str = "node1";
const NAMESPACES: usize = 20;
const APPS: usize = 25;
const ROLES: [&str; 5] = ["frontend", "backend", "db", "cache", "worker"];
const ENVS: [&str; 3] = ["prod", "staging", "dev"];
/// Endpoints on other nodes per local endpoint: they fill the IP sets like a real cluster.
const REMOTE_PER_LOCAL: usize = 4;
/// The two local endpoints that are real pods in part (c): both in `ns0`.
const CLIENT: usize = 0;
const SERVER: usize = 1;
const BULK_PORT: u16 = 5201;
const RR_PORT: u16 = 5202;
/// A port the bench policy does NOT allow: proves the table is in the path.
const PROBE_PORT: u16 = 5299;

#[derive(Clone)]
struct Args {
    /// `NftConfig::shards` (calico-node's `CALICO_NFT_SHARDS`).
    shards: u16,
    /// Also run (b) with everything in one table.
    compare_one_table: bool,
    sizes: Vec<usize>,
    endpoints: usize,
    reps: usize,
    changes: usize,
    rounds: usize,
    secs: f64,
    rtts: usize,
    one_by_one: bool,
    traffic: bool,
    /// Where to keep the rendered rulesets and the last diff of each change kind.
    dump: Option<std::path::PathBuf>,
    /// `--pure N`: only our own part of each (b) change (no kernel, no root), N times each.
    pure: Option<usize>,
    /// `--ipv4-only`: compile as with `FELIX_IPV6SUPPORT=false` (`NftConfig::ipv6`).
    ipv4_only: bool,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        shards: 16,
        compare_one_table: true,
        sizes: vec![1000, 10_000],
        endpoints: 200,
        reps: 1,
        changes: 7,
        rounds: 4,
        secs: 3.0,
        rtts: 10_000,
        one_by_one: true,
        traffic: true,
        dump: None,
        pure: None,
        ipv4_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| -> Result<String> {
            it.next().with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--quick" => {
                a.reps = 1;
                a.changes = 3;
                a.rounds = 2;
                a.secs = 1.0;
                a.rtts = 2000;
                a.one_by_one = false;
            }
            "--sizes" => {
                a.sizes = val("--sizes")?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--sizes needs numbers separated by commas")?;
            }
            "--endpoints" => a.endpoints = val("--endpoints")?.parse()?,
            "--reps" => a.reps = val("--reps")?.parse()?,
            "--changes" => a.changes = val("--changes")?.parse()?,
            "--rounds" => a.rounds = val("--rounds")?.parse()?,
            "--secs" => a.secs = val("--secs")?.parse()?,
            "--rtts" => a.rtts = val("--rtts")?.parse()?,
            "--skip-one-by-one" => a.one_by_one = false,
            "--skip-traffic" => a.traffic = false,
            "--shards" => a.shards = val("--shards")?.parse()?,
            "--skip-one-table" => a.compare_one_table = false,
            "--dump-dir" => a.dump = Some(val("--dump-dir")?.into()),
            "--pure" => a.pure = Some(val("--pure")?.parse()?),
            "--ipv4-only" => a.ipv4_only = true,
            "-h" | "--help" => {
                println!(
                    "usage: policy-bench [--quick] [--shards 16] [--skip-one-table] [--sizes 1000,10000] [--endpoints 200] \
                     [--reps 1] [--changes 7] [--rounds 4] [--secs 3] [--rtts 10000] \
                     [--skip-one-by-one] [--skip-traffic] [--dump-dir DIR] [--pure N] [--ipv4-only]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if a.sizes.is_empty() || a.sizes.contains(&0) {
        bail!("--sizes needs at least one non-zero size");
    }
    if a.endpoints < 2 {
        bail!("--endpoints must be at least 2 (two of them are the traffic pods)");
    }
    if a.reps == 0 || a.rounds == 0 || a.changes == 0 || a.rtts == 0 {
        bail!("--reps, --rounds, --changes and --rtts must be at least 1");
    }
    Ok(a)
}

fn progress(msg: impl AsRef<str>) {
    eprintln!("[policy-bench] {}", msg.as_ref());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

// ---------------------------------------------------------------------------------------------
// Resource generation
// ---------------------------------------------------------------------------------------------

fn res(v: Value) -> Resource {
    // The generator's documents are fixed shapes: failing to decode one is a bug here.
    match Resource::from_json_value(v.clone()) {
        Ok(r) => r,
        Err(e) => panic!("generated resource does not decode: {e}\n{v:#}"),
    }
}

/// The interface name of local endpoint `i` (15 characters like Calico's `cali` + hash).
fn iface(i: usize) -> String {
    format!("cali{i:011}")
}

fn local_ip(i: usize) -> String {
    let h = i + 1;
    format!("10.65.{}.{}", h / 256, h % 256)
}

fn ns_of(i: usize) -> usize {
    (i / 10) % NAMESPACES
}

/// One workload endpoint. Local ones (`remote == None`) get `cali…` interfaces; the two
/// traffic pods carry the extra `bench` label the allowing policy selects.
fn endpoint(i: usize, remote: Option<usize>, app_shift: usize) -> Resource {
    let (node, ip, ifname, pod) = match remote {
        None => (NODE.to_string(), local_ip(i), iface(i), format!("pod{i}")),
        Some(r) => (
            format!("node{}", 2 + r % 4),
            format!("10.66.{}.{}", r / 250, r % 250 + 1),
            format!("calr{r:011}"),
            format!("rpod{r}"),
        ),
    };
    let ns = ns_of(remote.unwrap_or(i));
    let seed = remote.map_or(i, |r| r + 7);
    let mut labels = json!({
        "projectcalico.org/namespace": format!("ns{ns}"),
        "projectcalico.org/orchestrator": "k8s",
        "projectcalico.org/serviceaccount": "default",
        "app": format!("app{}", (seed * 7 + app_shift) % APPS),
        "role": role_of(seed),
        "env": ENVS[seed % ENVS.len()],
    });
    if remote.is_none() && i == CLIENT {
        labels["bench"] = json!("client");
    }
    if remote.is_none() && i == SERVER {
        labels["bench"] = json!("server");
    }
    let mut ports = vec![json!({"name": "http", "protocol": "TCP", "port": 8080})];
    if seed.is_multiple_of(3) {
        ports.push(json!({"name": "metrics", "protocol": "TCP", "port": 9090}));
    }
    if seed.is_multiple_of(5) {
        ports.push(json!({"name": "dns", "protocol": "UDP", "port": 53}));
    }
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "WorkloadEndpoint",
        "metadata": {"name": format!("{node}-k8s-{pod}-eth0"), "namespace": format!("ns{ns}"),
            "labels": labels},
        "spec": {"node": node, "orchestrator": "k8s", "pod": pod, "endpoint": "eth0",
            "interfaceName": ifname, "ipNetworks": [format!("{ip}/32")],
            "profiles": [format!("kns.ns{ns}"), format!("ksa.ns{ns}.default")],
            "ports": ports}
    }))
}

fn namespace_profile(ns: usize) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Profile",
        "metadata": {"name": format!("kns.ns{ns}")},
        "spec": {"labelsToApply": {"pcns.projectcalico.org/name": format!("ns{ns}"),
                                   "pcns.team": format!("t{}", ns % 5)},
                 "ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}
    }))
}

fn service_account_profile(ns: usize) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Profile",
        "metadata": {"name": format!("ksa.ns{ns}.default")},
        "spec": {"labelsToApply": {"pcsa.projectcalico.org/name": "default"}}
    }))
}

fn tier(name: &str, order: f64, action: &str) -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "Tier",
        "metadata": {"name": name},
        "spec": {"order": order, "defaultAction": action}
    }))
}

/// Policy `j` of the generated set; `edit` shifts its first port (the incremental change).
/// Mix: 2 % security-tier GNPs (Deny by nets, tier passes by default), 2 % platform-tier
/// GNPs (named ports), 2 % default-tier GNPs (namespaceSelector peers), the rest namespaced
/// NetworkPolicies with selector peers, nets, port ranges and named ports. Each namespaced
/// policy is written for one of its namespace's local pods (as real policies are written
/// for pods that exist), so nearly every policy is active on the node.
fn policy(j: usize, edit: u16) -> Resource {
    let ns = j % NAMESPACES;
    // Rotate through the namespace's ten local pods; the `m / 10` term keeps the rotation
    // from lining up with the GNP slots (`j % 50 < 3`).
    let m = j / NAMESPACES;
    let target = ns * 10 + (m + m / 10) % 10;
    let a = (target * 7) % APPS;
    let r = role_of(target);
    let env = ENVS[target % ENVS.len()];
    // The peer its rules allow: another local pod of the namespace (real policies name peers
    // that exist; a peer selector selecting nothing gives a rule calico-nft does not render).
    let peer = ns * 10 + (m + 3 + m / 7) % 10;
    let b = (peer * 7) % APPS;
    let r2 = role_of(peer);
    let port = 1000 + (j % 5000) as u16 + edit;
    match j % 50 {
        0 => res(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": format!("security.gnp{j}")},
            "spec": {"tier": "security", "order": (j % 97) as f64,
                "selector": format!("env == '{}'", ENVS[(j / 50) % ENVS.len()]),
                "types": ["Ingress", "Egress"],
                "ingress": [{"action": "Deny",
                    "source": {"nets": [format!("198.18.{}.0/24", j / 50 % 256)]}},
                    {"action": "Log", "protocol": "TCP", "destination": {"ports": [port]}}],
                "egress": [{"action": "Deny", "protocol": "UDP",
                    "destination": {"nets": [format!("203.0.{}.0/24", j / 50 % 256)],
                                    "ports": [53]}}]}
        })),
        1 => res(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": format!("platform.gnp{j}")},
            "spec": {"tier": "platform", "order": (j % 89) as f64,
                "selector": format!("has(app) && role == '{r}'"),
                "types": ["Ingress", "Egress"],
                "ingress": [{"action": "Allow", "protocol": "TCP",
                    "source": {"selector": "role == 'monitoring'",
                               "namespaceSelector": "global()"},
                    "destination": {"ports": ["metrics", port]}}],
                "egress": [{"action": "Allow", "protocol": "UDP",
                    "destination": {"nets": ["10.96.0.10/32"], "ports": ["dns", 53]}}]}
        })),
        2 => res(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
            "metadata": {"name": format!("gnp{j}")},
            "spec": {"order": 500.0 + (j % 100) as f64,
                "selector": format!("app == 'app{a}'"),
                "types": ["Ingress"],
                "ingress": [{"action": "Allow", "protocol": "TCP",
                    "source": {"namespaceSelector": format!("team == 't{}'", j % 5)},
                    "destination": {"ports": [8080, port]}}]}
        })),
        _ => {
            let selector = match j % 4 {
                0 => format!("app == 'app{a}'"),
                1 => format!("app == 'app{a}' && role == '{r}'"),
                2 => format!("role in {{'{r}', '{r2}'}}"),
                _ => format!("app == 'app{a}' && env == '{env}'"),
            };
            let mut ingress = vec![json!({"action": "Allow", "protocol": "TCP",
                "source": {"selector": format!("role == '{r2}' && app == 'app{b}'")},
                "destination": {"ports": [port, "http"]}})];
            if j.is_multiple_of(3) {
                ingress.push(json!({"action": "Allow", "protocol": "TCP",
                    "source": {"nets": [format!("10.{}.{}.0/24", 100 + j % 50, j % 256)]},
                    "destination": {"ports": ["8000:8100"]}}));
            }
            if j.is_multiple_of(7) {
                ingress.push(json!({"action": "Deny", "protocol": "TCP",
                    "source": {"selector": "env == 'dev'"}}));
            }
            let mut egress = vec![json!({"action": "Allow", "protocol": "TCP",
                "destination": {"namespaceSelector": format!("team == 't{}'", j % 5),
                                "ports": ["http"]}})];
            if j.is_multiple_of(5) {
                egress.push(json!({"action": "Allow", "protocol": "UDP",
                    "destination": {"nets": ["10.96.0.10/32"], "ports": [53]}}));
            }
            res(json!({
                "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                "metadata": {"name": format!("np{j}"), "namespace": format!("ns{ns}")},
                "spec": {"order": 1.0 + (j % 100) as f64, "selector": selector,
                    "types": ["Ingress", "Egress"], "ingress": ingress, "egress": egress}
            }))
        }
    }
}

/// An endpoint's role, independent of its app (`seed * 7 % APPS` cycles every 25 seeds, the
/// role every 125). Until session 7 the role was `seed % 5`, tied to the app, and policies
/// named peers by a formula, so 80 % of their peer selectors selected nothing; that did not
/// change the tables then, but calico-nft no longer renders rules that cannot match, so the
/// peers are now pods that exist.
fn role_of(seed: usize) -> &'static str {
    ROLES[(seed / APPS) % ROLES.len()]
}

/// The policy that lets the two traffic pods talk (TCP to the bench ports only), first in the
/// default tier.
fn bench_policy() -> Resource {
    res(json!({
        "apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": "allow-bench", "namespace": "ns0"},
        "spec": {"order": 0.0, "selector": "has(bench)", "types": ["Ingress", "Egress"],
            "ingress": [{"action": "Allow", "protocol": "TCP",
                "source": {"selector": "has(bench)"},
                "destination": {"ports": [BULK_PORT, RR_PORT]}}],
            "egress": [{"action": "Allow", "protocol": "TCP",
                "destination": {"selector": "has(bench)", "ports": [BULK_PORT, RR_PORT]}}]}
    }))
}

fn cluster(policies: usize, endpoints: usize) -> Vec<Resource> {
    let mut out = vec![
        tier("security", 100.0, "Pass"),
        tier("platform", 200.0, "Pass"),
        tier("default", 1_000_000.0, "Deny"),
    ];
    for ns in 0..NAMESPACES {
        out.push(namespace_profile(ns));
        out.push(service_account_profile(ns));
    }
    for i in 0..endpoints {
        out.push(endpoint(i, None, 0));
    }
    for r in 0..endpoints * REMOTE_PER_LOCAL {
        out.push(endpoint(0, Some(r), 0));
    }
    out.push(bench_policy());
    for j in 0..policies {
        out.push(policy(j, 0));
    }
    out
}

fn keyed(rs: Vec<Resource>) -> Vec<(ResourceKey, Option<Resource>)> {
    rs.into_iter()
        .map(|r| (ResourceKey::of(&r), Some(r)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// (a) resources -> programmed dataplane
// ---------------------------------------------------------------------------------------------

struct FullRow {
    policies: usize,
    resources: usize,
    model: String,
    calc: f64,
    flush: f64,
    compile: f64,
    render: f64,
    apply: f64,
    floor: f64,
    script_kib: usize,
    one_by_one: Option<f64>,
}

/// Runs `nsenter --net=<ns> nft -f <file>`: the floor, nft loading the rendered table.
fn nft_file(ns: &Path, file: &Path) -> Result<Duration> {
    let t = Instant::now();
    let out = Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(["--", "nft", "-f"])
        .arg(file)
        .output()
        .context("running nsenter nft -f")?;
    let d = t.elapsed();
    if !out.status.success() {
        bail!(
            "nft -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(d)
}

/// The calculation graph fed one snapshot: `on_updates` (one batch, as a datastore list
/// should be fed) and the first flush.
fn build_graph(resources: &[Resource]) -> Result<(CalcGraph, Duration, Duration)> {
    let mut g = CalcGraph::new(NODE);
    let t = Instant::now();
    let errors = g.on_updates(keyed(resources.to_vec()));
    let calc = t.elapsed();
    if let Some(e) = errors.first() {
        bail!("{} resources refused, first: {e}", errors.len());
    }
    let t = Instant::now();
    let updates = g.flush();
    let flush = t.elapsed();
    if updates.is_empty() {
        bail!("the first flush produced no model updates");
    }
    Ok((g, calc, flush))
}

struct Programmed {
    graph: CalcGraph,
    ruleset: PolicyTables,
    /// The namespace holding the applied table, and its driver.
    netns: TestNetns,
    driver: NftDriver,
}

fn full_pipeline(
    policies: usize,
    endpoints: usize,
    args: &Args,
    cfg: &NftConfig,
    tmp: &Path,
) -> Result<(FullRow, Programmed)> {
    progress(format!(
        "(a) {policies} policies × {endpoints} local endpoints: generating"
    ));
    let resources = cluster(policies, endpoints);
    let mut calc = Vec::new();
    let mut flush = Vec::new();
    let mut compile = Vec::new();
    let mut render = Vec::new();
    let mut apply = Vec::new();
    let mut floor = Vec::new();
    let mut kept: Option<Programmed> = None;
    let mut script_len = 0;
    let mut model_desc = String::new();
    for rep in 0..args.reps {
        progress(format!("(a) {policies}: rep {}/{}", rep + 1, args.reps));
        let (graph, c, f) = build_graph(&resources)?;
        calc.push(ms(c));
        flush.push(ms(f));
        let t = Instant::now();
        let ruleset = PolicyTables::compile(graph.model(), cfg)?;
        compile.push(ms(t.elapsed()));
        let m = graph.model();
        model_desc = format!(
            "{} pol, {} sets, {} chains in {} table(s)",
            m.policies.len(),
            m.ip_sets.len(),
            ruleset.counts().chains,
            ruleset.tables().count()
        );

        // Ours and the floor, each in a fresh namespace, in alternating order (a deleted
        // namespace's table is torn down in the background and slows whatever runs next).
        // The floor loads each table with its own `nft -f`, as the full replace does (one
        // batch for all tables costs the kernel the square of its size).
        let mut files = Vec::new();
        for r in ruleset.tables() {
            let file = tmp.join(format!("ruleset-{policies}-{}.nft", r.table()));
            std::fs::write(&file, r.render()).context("writing the rendered ruleset")?;
            if let Some(d) = &args.dump {
                std::fs::create_dir_all(d)?;
                std::fs::copy(&file, d.join(file.file_name().unwrap_or_default()))?;
            }
            files.push(file);
        }
        let floor_of = |files: &[std::path::PathBuf]| -> Result<f64> {
            let floor_ns = TestNetns::new("pbench-f")?;
            let mut total = 0.0;
            for f in files {
                total += ms(nft_file(&floor_ns.path(), f)?);
            }
            Ok(total)
        };
        let floor_first = rep % 2 == 1;
        if floor_first {
            floor.push(floor_of(&files)?);
        }
        let ns = TestNetns::new("pbench-a")?;
        let mut driver = NftDriver::new("calico", Some(ns.path()));
        // As calico-felix's PolicyManager does a full replace: list the tables that exist
        // (counted as apply), render the transactions for them, apply them in order.
        let t = Instant::now();
        let existing = driver.tables().context("listing tables")?;
        let listing = ms(t.elapsed());
        let t = Instant::now();
        let scripts = ruleset.full_replace_scripts_over(existing.as_ref());
        render.push(ms(t.elapsed()));
        script_len = scripts.iter().map(String::len).sum();
        let t = Instant::now();
        for script in &scripts {
            driver.apply(script).context("applying the full ruleset")?;
        }
        apply.push(listing + ms(t.elapsed()));
        for (table, shape) in ruleset.shapes() {
            if driver.list_table(&table)?.as_ref() != Some(&shape) {
                bail!("the applied table {table} does not have the compiled shape");
            }
        }
        if !floor_first {
            floor.push(floor_of(&files)?);
        }
        kept = Some(Programmed {
            graph,
            ruleset,
            netns: ns,
            driver,
        });
    }
    let one_by_one = if args.one_by_one {
        progress(format!(
            "(a) {policies}: feeding the snapshot with on_update one by one (calico-node's list path)"
        ));
        let mut g = CalcGraph::new(NODE);
        let t = Instant::now();
        for (k, v) in keyed(resources.clone()) {
            g.on_update(k, v)?;
        }
        let _ = g.flush();
        Some(ms(t.elapsed()))
    } else {
        None
    };
    let row = FullRow {
        policies,
        resources: resources.len(),
        model: model_desc,
        calc: median(&calc),
        flush: median(&flush),
        compile: median(&compile),
        render: median(&render),
        apply: median(&apply),
        floor: median(&floor),
        script_kib: script_len / 1024,
        one_by_one,
    };
    let kept = kept.context("no repetition ran")?;
    Ok((row, kept))
}

// ---------------------------------------------------------------------------------------------
// (b) one incremental change at the largest size
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct ChangeTimes {
    on_update: Vec<f64>,
    flush: Vec<f64>,
    clone: Vec<f64>,
    compile: Vec<f64>,
    diff_full: Vec<f64>,
    recompile: Vec<f64>,
    diff_inc: Vec<f64>,
    apply: Vec<f64>,
    script_bytes: Vec<f64>,
    node_total: Vec<f64>,
    inc_total: Vec<f64>,
    last_script: String,
    /// Changes that went to the kernel as element-only netlink batches (no nft process).
    via_netlink: usize,
    /// Tables each change touched.
    tables: Vec<f64>,
}

fn one_change(
    p: &mut Programmed,
    cfg: &NftConfig,
    r: Resource,
    t_out: &mut ChangeTimes,
) -> Result<()> {
    let key = ResourceKey::of(&r);
    let t = Instant::now();
    p.graph.on_update(key, Some(r))?;
    let on_update = ms(t.elapsed());
    let t = Instant::now();
    let updates = p.graph.flush();
    let flush = ms(t.elapsed());
    if updates.is_empty() {
        bail!("the change produced no model update");
    }
    // The incremental path (what calico-node does), timed right after the update as in
    // calico-node, before the full recompile below evicts the caches.
    let t = Instant::now();
    let inc = p.ruleset.recompile(p.graph.model(), &updates, cfg)?;
    let recompile = ms(t.elapsed());
    // As calico-felix's PolicyManager syncs: the diff as typed table operations; element-only
    // changes go to the kernel as one nfnetlink batch of set elements, changes of chains and
    // rules as one nfnetlink batch of table operations, what has no plan as one nft
    // transaction.
    let t = Instant::now();
    let plan = p.ruleset.plan(&inc);
    let diff_inc = ms(t.elapsed());
    // For comparison, what calico-node's `program()` did before the incremental path: clone
    // the model, compile all of it, diff.
    let t = Instant::now();
    let model = p.graph.model().clone();
    let clone = ms(t.elapsed());
    let t = Instant::now();
    let full = PolicyTables::compile(&model, cfg)?;
    let compile = ms(t.elapsed());
    let t = Instant::now();
    let script_full = p.ruleset.script(&full);
    let diff_full = ms(t.elapsed());
    // For the record (the size of the change as an nft script), outside the timings.
    let script = p.ruleset.script(&inc);
    // (`render()` orders element commands its own way, so compare the rulesets, not texts.)
    if inc != full {
        bail!("recompile and compile disagree on this change");
    }
    if script_full.trim().is_empty() || script.trim().is_empty() {
        bail!("the change produced an empty nft diff");
    }
    let t = Instant::now();
    match plan {
        Ok(plans) => {
            let elements: Option<Vec<calico_nft::ElementOp>> = match plans.as_slice() {
                [one] => one
                    .ops
                    .iter()
                    .map(|op| match op {
                        calico_nft::bytecode::TableOp::Element(e) => Some(e.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            };
            t_out.tables.push(plans.len() as f64);
            match elements {
                Some(ops) => p
                    .driver
                    .apply_elements(&plans[0].table, &ops)
                    .context("applying the element changes over netlink")?,
                None => match p.driver.apply_plans(&plans) {
                    Ok(()) => {}
                    // As the manager does: a batch no netlink send takes goes through nft.
                    Err(DataplaneError::NoNetlinkPath { what }) => {
                        progress(format!("no netlink path ({what}): through nft"));
                        p.driver.apply(&script).context("applying the diff")?;
                        t_out.via_netlink = t_out.via_netlink.saturating_sub(1);
                    }
                    Err(e) => return Err(e).context("applying the table operations over netlink"),
                },
            }
            t_out.via_netlink += 1;
        }
        Err(_) => p.driver.apply(&script).context("applying the diff")?,
    }
    let apply = ms(t.elapsed());
    p.ruleset = inc;
    t_out.on_update.push(on_update);
    t_out.flush.push(flush);
    t_out.clone.push(clone);
    t_out.compile.push(compile);
    t_out.diff_full.push(diff_full);
    t_out.recompile.push(recompile);
    t_out.diff_inc.push(diff_inc);
    t_out.apply.push(apply);
    t_out.script_bytes.push(script.len() as f64);
    t_out.last_script = script;
    t_out
        .node_total
        .push(on_update + flush + clone + compile + diff_full + apply);
    t_out
        .inc_total
        .push(on_update + flush + recompile + diff_inc + apply);
    Ok(())
}

fn incremental(
    p: &mut Programmed,
    args: &Args,
    cfg: &NftConfig,
) -> Result<Vec<(&'static str, ChangeTimes)>> {
    let mut out = Vec::new();
    // Where the apply time goes: an nft transaction that changes nothing, in an empty
    // namespace (process start-up: nsenter + nft) and on the big table (what nft does with
    // the table before applying anything).
    progress("(b) fixed cost of one nft transaction");
    // With shards, the probes run on the largest table (a change pays for its own table).
    let largest = p
        .ruleset
        .tables()
        .max_by_key(|r| r.counts().rules)
        .context("no table")?;
    let table = largest.table().to_string();
    let noop = format!("add table inet {table}\n");
    let empty_ns = TestNetns::new("pbench-e")?;
    let mut empty = NftDriver::new("calico", Some(empty_ns.path()));
    let mut t = ChangeTimes::default();
    for _ in 0..5 {
        let s = Instant::now();
        empty.apply(&noop)?;
        t.apply.push(ms(s.elapsed()));
    }
    drop(empty_ns);
    out.push(("no-op transaction, empty namespace", t));
    // On the big table: each probe is undone by the next one, so the table stays equal to
    // the applied ruleset for the changes below.
    let set = largest
        .set_names()
        .find(|n| n.starts_with("a4-"))
        .context("no IPv4 address set in the ruleset")?
        .to_string();
    let probes: [(&'static str, String, String); 3] = [
        (
            "no-op transaction, on the big table",
            noop.clone(),
            noop.clone(),
        ),
        (
            "one set element added / removed, on the big table",
            format!("add element inet {table} {set} {{ 10.255.255.254 }}\n"),
            format!("delete element inet {table} {set} {{ 10.255.255.254 }}\n"),
        ),
        (
            "one chain with one rule added / removed, on the big table",
            format!(
                "add chain inet {table} pbench-probe\nadd rule inet {table} pbench-probe tcp dport 1 accept\n"
            ),
            format!("delete chain inet {table} pbench-probe\n"),
        ),
    ];
    for (name, add, undo) in probes {
        let mut t = ChangeTimes::default();
        for _ in 0..3 {
            for script in [&add, &undo] {
                let s = Instant::now();
                p.driver
                    .apply(script)
                    .with_context(|| format!("probe {name}"))?;
                t.apply.push(ms(s.elapsed()));
            }
        }
        out.push((name, t));
    }
    // The same probes over netlink (what the manager sends): an empty chain commits without
    // the kernel's table validation; any rule (every rule has a verdict or a mark, whose
    // expressions the kernel validates) makes the commit walk every chain reachable from the
    // table's base chains (`nf_tables_validate`), so this is the floor of any rule change.
    use calico_nft::bytecode::TableOp;
    let chain = "pbench-probe".to_string();
    let accept = calico_nft::rule_code("accept")?;
    // (names of the add and undo rows, ops to add, ops to undo)
    type Probe = ((&'static str, &'static str), Vec<TableOp>, Vec<TableOp>);
    // What a label change does to a shard besides its endpoint chains: policies of the pod
    // alone come and go (40 chains of a few rules each).
    let (mut add40, mut del40) = (Vec::new(), Vec::new());
    let rule = calico_nft::rule_code(
        "meta l4proto tcp th dport 80 meta mark set meta mark | 0x00010000 return",
    )?;
    for c in 0..40 {
        let name = format!("pbench-probe-{c}");
        add40.push(TableOp::AddChain { name: name.clone() });
        for _ in 0..3 {
            add40.push(TableOp::AddRule {
                chain: name.clone(),
                rule: rule.clone(),
            });
        }
        del40.push(TableOp::FlushChain { name: name.clone() });
    }
    for c in 0..40 {
        del40.push(TableOp::DeleteChain {
            name: format!("pbench-probe-{c}"),
        });
    }
    let netlink_probes: [Probe; 3] = [
        (
            (
                "40 chains of 3 rules added, on the big table, over netlink",
                "those chains flushed and removed, over netlink",
            ),
            add40,
            del40,
        ),
        (
            (
                "one empty chain added, on the big table, over netlink",
                "that chain removed, over netlink",
            ),
            vec![TableOp::AddChain {
                name: chain.clone(),
            }],
            vec![TableOp::DeleteChain {
                name: chain.clone(),
            }],
        ),
        (
            (
                "one chain with one accept rule added, on the big table, over netlink (the kernel's \
                 floor for any rule change: its commit validates the table)",
                "that chain flushed and removed, over netlink",
            ),
            vec![
                TableOp::AddChain {
                    name: chain.clone(),
                },
                TableOp::AddRule {
                    chain: chain.clone(),
                    rule: accept,
                },
            ],
            vec![
                TableOp::FlushChain {
                    name: chain.clone(),
                },
                TableOp::DeleteChain { name: chain },
            ],
        ),
    ];
    for (name, add, undo) in netlink_probes {
        // Adding and removing cost differently here (removing rules needs no validation).
        let (mut t_add, mut t_undo) = (ChangeTimes::default(), ChangeTimes::default());
        for _ in 0..5 {
            for (ops, t) in [(&add, &mut t_add), (&undo, &mut t_undo)] {
                let s = Instant::now();
                p.driver
                    .apply_plan(&table, ops)
                    .with_context(|| format!("probe {}", name.0))?;
                t.apply.push(ms(s.elapsed()));
            }
        }
        out.push((name.0, t_add));
        out.push((name.1, t_undo));
    }
    // A default-tier NetworkPolicy that selects local endpoints: one port changes.
    let edited = 3;
    let mut t = ChangeTimes::default();
    for k in 0..args.changes {
        progress(format!("(b) policy edit {}/{}", k + 1, args.changes));
        let shift = if k % 2 == 0 { 1 } else { 0 };
        one_change(p, cfg, policy(edited, shift), &mut t)?;
    }
    out.push(("policy edit (one rule's port)", t));

    // A security-tier GlobalNetworkPolicy (`env == ...`): it selects endpoints of every
    // namespace. With shards it is in the global table (the security tier holds only global
    // policies, so it is every endpoint's global prefix); before session 8 it was copied into
    // every shard table and an edit touched them all.
    let mut t = ChangeTimes::default();
    for k in 0..args.changes {
        progress(format!("(b) global policy edit {}/{}", k + 1, args.changes));
        let shift = if k % 2 == 0 { 1 } else { 0 };
        one_change(p, cfg, policy(0, shift), &mut t)?;
    }
    out.push(("global policy edit (used in every namespace)", t));

    let mut t = ChangeTimes::default();
    for k in 0..args.changes {
        progress(format!("(b) endpoint add {}/{}", k + 1, args.changes));
        one_change(p, cfg, endpoint(args.endpoints + 10 + k, None, 0), &mut t)?;
    }
    out.push(("local endpoint added", t));

    let mut t = ChangeTimes::default();
    for k in 0..args.changes {
        progress(format!(
            "(b) endpoint label change {}/{}",
            k + 1,
            args.changes
        ));
        let shift = if k % 2 == 0 { 1 } else { 0 };
        one_change(p, cfg, endpoint(5, None, shift), &mut t)?;
    }
    out.push(("local endpoint label change", t));

    // A pod on another node: only IP-set members change.
    let mut t = ChangeTimes::default();
    for k in 0..args.changes {
        progress(format!(
            "(b) remote endpoint add {}/{}",
            k + 1,
            args.changes
        ));
        let r = args.endpoints * REMOTE_PER_LOCAL + 10 + k;
        one_change(p, cfg, endpoint(0, Some(r), 0), &mut t)?;
    }
    out.push(("remote endpoint added (IP-set members only)", t));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// (c) pod-to-pod traffic with and without the table
// ---------------------------------------------------------------------------------------------

struct Pods {
    /// Held so the node namespace (and the table in it) lives as long as the pods.
    _node: TestNetns,
    a: TestNetns,
    b: TestNetns,
    b_ip: String,
}

fn exec(ns: &TestNetns, args: &[&str]) -> Result<()> {
    ns.exec(args)
        .map(|_| ())
        .with_context(|| format!("in {}: {}", ns.name(), args.join(" ")))
}

/// Two pod namespaces behind a node namespace, wired as Calico wires workloads: the node-side
/// veth is `cali…` with Calico's MAC ee:ee:ee:ee:ee:ee, the pod has a /32 and a default route
/// via 169.254.1.1 (here a static neighbour instead of proxy ARP: the node namespace has no
/// default route for proxy ARP to answer from), the node routes each /32 to its veth.
fn wire_pods(node: TestNetns) -> Result<Pods> {
    let a = TestNetns::new("pbench-pa")?;
    let b = TestNetns::new("pbench-pb")?;
    exec(&node, &["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    for (i, pod, mac) in [
        (CLIENT, &a, "02:00:00:00:00:01"),
        (SERVER, &b, "02:00:00:00:00:02"),
    ] {
        let host = iface(i);
        let ip = local_ip(i);
        exec(
            &node,
            &[
                "ip",
                "link",
                "add",
                "name",
                &host,
                "address",
                "ee:ee:ee:ee:ee:ee",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "address",
                mac,
                "netns",
                pod.name(),
            ],
        )?;
        exec(&node, &["ip", "link", "set", &host, "up"])?;
        exec(
            &node,
            &[
                "ip",
                "route",
                "add",
                &format!("{ip}/32"),
                "dev",
                &host,
                "scope",
                "link",
            ],
        )?;
        exec(
            &node,
            &[
                "ip",
                "neigh",
                "replace",
                &ip,
                "lladdr",
                mac,
                "dev",
                &host,
                "nud",
                "permanent",
            ],
        )?;
        exec(
            pod,
            &["ip", "addr", "add", &format!("{ip}/32"), "dev", "eth0"],
        )?;
        exec(pod, &["ip", "link", "set", "eth0", "up"])?;
        exec(
            pod,
            &[
                "ip",
                "route",
                "add",
                "169.254.1.1",
                "dev",
                "eth0",
                "scope",
                "link",
            ],
        )?;
        exec(
            pod,
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                "169.254.1.1",
                "dev",
                "eth0",
            ],
        )?;
        exec(
            pod,
            &[
                "ip",
                "neigh",
                "replace",
                "169.254.1.1",
                "lladdr",
                "ee:ee:ee:ee:ee:ee",
                "dev",
                "eth0",
                "nud",
                "permanent",
            ],
        )?;
    }
    Ok(Pods {
        _node: node,
        a,
        b,
        b_ip: local_ip(SERVER),
    })
}

fn listen_in(ns: &TestNetns, addr: SocketAddr) -> Result<TcpListener> {
    ns.ns()
        .run(|| TcpListener::bind(addr))?
        .with_context(|| format!("listening on {addr} in {}", ns.name()))
}

fn connect_from(ns: &TestNetns, addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    ns.ns()
        .run(|| TcpStream::connect_timeout(&addr, timeout))?
        .with_context(|| format!("connecting to {addr} from {}", ns.name()))
}

/// Accepts connections forever: bulk connections are drained (the byte count and the time from
/// first byte to EOF are sent back), ping-pong connections echo 64-byte messages.
fn serve(listener: TcpListener, echo: bool) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                if echo {
                    let _ = s.set_nodelay(true);
                    let mut buf = [0u8; 64];
                    while s.read_exact(&mut buf).is_ok() {
                        if s.write_all(&buf).is_err() {
                            break;
                        }
                    }
                } else {
                    let mut buf = vec![0u8; 256 * 1024];
                    let mut total: u64 = 0;
                    let mut first: Option<Instant> = None;
                    loop {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                first.get_or_insert_with(Instant::now);
                                total += n as u64;
                            }
                        }
                    }
                    let nanos = first.map_or(0, |f| f.elapsed().as_nanos() as u64);
                    let mut reply = [0u8; 16];
                    reply[..8].copy_from_slice(&total.to_le_bytes());
                    reply[8..].copy_from_slice(&nanos.to_le_bytes());
                    let _ = s.write_all(&reply);
                }
            });
        }
    });
}

/// Bulk TCP for `secs`: Gbit/s as the receiver saw it.
fn bulk(pods: &Pods, secs: f64) -> Result<f64> {
    let addr: SocketAddr = format!("{}:{BULK_PORT}", pods.b_ip).parse()?;
    let mut s = connect_from(&pods.a, addr, Duration::from_secs(3))?;
    let buf = vec![0x5au8; 128 * 1024];
    let until = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < until {
        s.write_all(&buf).context("bulk send")?;
    }
    s.shutdown(Shutdown::Write)?;
    let mut reply = [0u8; 16];
    s.read_exact(&mut reply).context("bulk receiver's report")?;
    let bytes = u64::from_le_bytes(reply[..8].try_into()?);
    let nanos = u64::from_le_bytes(reply[8..].try_into()?);
    if nanos == 0 {
        bail!("the receiver got no data");
    }
    Ok(bytes as f64 * 8.0 / nanos as f64)
}

/// `n` 64-byte ping-pongs on one connection (after 200 warm-up ones): sorted RTTs in µs.
fn ping_pong(pods: &Pods, n: usize) -> Result<Vec<f64>> {
    let addr: SocketAddr = format!("{}:{RR_PORT}", pods.b_ip).parse()?;
    let mut s = connect_from(&pods.a, addr, Duration::from_secs(3))?;
    s.set_nodelay(true)?;
    let mut buf = [7u8; 64];
    let mut rtts = Vec::with_capacity(n);
    for k in 0..n + 200 {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        if k >= 200 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    rtts.sort_by(f64::total_cmp);
    Ok(rtts)
}

/// Whether a TCP connection to the probe port gets through (the bench policy does not allow it).
fn probe_passes(pods: &Pods) -> Result<bool> {
    let addr: SocketAddr = format!("{}:{PROBE_PORT}", pods.b_ip).parse()?;
    Ok(connect_from(&pods.a, addr, Duration::from_millis(700)).is_ok())
}

#[derive(Default)]
struct TrafficRow {
    gbps: Vec<f64>,
    rtts: Vec<f64>,
}

/// A table with only the established/related fast path (conntrack) and no policy: separates
/// what connection tracking costs from what the policy table adds.
fn ct_only_script(table: &str) -> String {
    format!(
        "add table inet {table}\ndelete table inet {table}\ntable inet {table} {{\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tct state established,related accept\n\t\tct state invalid drop\n\t}}\n}}\n"
    )
}

struct TrafficResult {
    /// (variant name, its row).
    rows: Vec<(String, TrafficRow)>,
}

struct Variant {
    name: String,
    pods: Pods,
    /// Whether the policy table is in force (the probe port must then be blocked).
    policy: bool,
}

impl Variant {
    /// Wires the pods behind `node` and starts their servers; checks that the table (or its
    /// absence) decides the probe port.
    fn new(name: String, node: TestNetns, policy: bool) -> Result<Variant> {
        let pods = wire_pods(node)?;
        for (port, echo) in [(BULK_PORT, false), (RR_PORT, true), (PROBE_PORT, true)] {
            serve(
                listen_in(&pods.b, format!("{}:{port}", pods.b_ip).parse()?)?,
                echo,
            );
        }
        let passes = probe_passes(&pods)?;
        if passes == policy {
            bail!(
                "{name}: the probe to the port no policy allows {}",
                if passes { "got through" } else { "was blocked" }
            );
        }
        Ok(Variant { name, pods, policy })
    }
}

/// Three node namespaces wired alike: one without any table, one holding the policy table
/// (`node`, where (b) left it), one with a conntrack-only table. Rounds visit them in rotating
/// order, so machine noise and drift hit all three alike, and no table is reloaded between
/// rounds.
fn traffic(
    node: TestNetns,
    policies: usize,
    args: &Args,
    cfg: &NftConfig,
) -> Result<TrafficResult> {
    progress("(c) wiring two pods behind each of four node namespaces");
    let plain = Variant::new("no table".into(), TestNetns::new("pbench-n0")?, false)?;
    let with = Variant::new(format!("{policies}-policy table"), node, true)?;
    let ct_ns = TestNetns::new("pbench-nc")?;
    NftDriver::new("calico", Some(ct_ns.path()))
        .apply(&ct_only_script("calico"))
        .context("loading the conntrack-only table")?;
    let ct = Variant::new("conntrack only (no policy)".into(), ct_ns, false)?;
    // The same cluster with none of the generated policies: only the one that allows the
    // flow (so the probe port is still blocked). Against this, the 10k-policy table shows
    // what the policies themselves cost per packet.
    progress("(c) compiling the same cluster without the generated policies");
    let (one_graph, _, _) = build_graph(&cluster(0, args.endpoints))?;
    let one = PolicyTables::compile(one_graph.model(), cfg)?;
    let one_ns = TestNetns::new("pbench-n1")?;
    NftDriver::new("calico", Some(one_ns.path()))
        .apply(&one.full_replace_scripts().concat())
        .context("loading the one-policy table")?;
    let one = Variant::new(
        "1-policy table (same cluster, only the policy allowing the flow)".into(),
        one_ns,
        true,
    )?;
    let variants = [plain, with, ct, one];
    let mut rows: Vec<TrafficRow> = variants.iter().map(|_| TrafficRow::default()).collect();
    for round in 0..args.rounds {
        for k in 0..variants.len() {
            let v = (round + k) % variants.len();
            let var = &variants[v];
            progress(format!(
                "(c) round {}/{}: {}: bulk {:.1} s + {} ping-pongs",
                round + 1,
                args.rounds,
                var.name,
                args.secs,
                args.rtts
            ));
            let g = bulk(&var.pods, args.secs)?;
            let rt = ping_pong(&var.pods, args.rtts)?;
            progress(format!(
                "(c)   {g:.2} Gbit/s, rtt p50 {:.1} µs p99 {:.1} µs",
                percentile(&rt, 0.5),
                percentile(&rt, 0.99)
            ));
            rows[v].gbps.push(g);
            rows[v].rtts.extend(rt);
        }
    }
    // Still enforcing after all rounds.
    for var in &variants {
        if probe_passes(&var.pods)? == var.policy {
            bail!(
                "{}: the probe port changed behaviour during the run",
                var.name
            );
        }
    }
    Ok(TrafficResult {
        rows: variants.into_iter().map(|v| v.name).zip(rows).collect(),
    })
}

// ---------------------------------------------------------------------------------------------

fn cell(v: &[f64]) -> String {
    let max = v.iter().copied().fold(f64::NAN, f64::max);
    format!("{:.2} ({:.1})", median(v), max)
}

/// One (b) table: the changes, then the probes.
fn print_changes(title: &str, changes: &[(&'static str, ChangeTimes)]) {
    println!("\n{title}\n");
    println!(
        "| change | on_update | flush | model clone | full compile | diff (full) | recompile | diff_plan | apply | applied by | tables | diff size | **full recompile** | **incremental path** |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, t) in changes {
        if t.on_update.is_empty() {
            continue;
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} B | **{}** | **{}** |",
            cell(&t.on_update),
            cell(&t.flush),
            cell(&t.clone),
            cell(&t.compile),
            cell(&t.diff_full),
            cell(&t.recompile),
            cell(&t.diff_inc),
            cell(&t.apply),
            if t.via_netlink == t.apply.len() {
                "netlink".to_string()
            } else if t.via_netlink == 0 {
                "nft".to_string()
            } else {
                format!("netlink {}/{}", t.via_netlink, t.apply.len())
            },
            if t.tables.is_empty() {
                "-".to_string()
            } else {
                format!("{:.0}", median(&t.tables))
            },
            median(&t.script_bytes),
            cell(&t.node_total),
            cell(&t.inc_total)
        );
    }
    println!();
    for (name, t) in changes.iter().filter(|(_, t)| t.on_update.is_empty()) {
        if name.contains("over netlink") {
            println!("- {name}: {}", cell(&t.apply));
        } else {
            println!("- {name} (nsenter + nft): {}", cell(&t.apply));
        }
    }
}

/// `--pure N`: the (b) changes at the largest size, N of each, without the kernel: the
/// calculation graph, the recompile and the plan, which is what a profiler should look at.
/// Needs no root.
fn pure_changes(args: &Args, n: usize) -> Result<()> {
    let size = args.sizes.iter().copied().max().unwrap_or_default();
    let cfg = NftConfig {
        shards: args.shards,
        ipv6: !args.ipv4_only,
        ..NftConfig::default()
    };
    progress(format!("(pure) {size} policies: building"));
    let (mut graph, _, _) = build_graph(&cluster(size, args.endpoints))?;
    let mut tables = PolicyTables::compile(graph.model(), &cfg)?;
    type Change = (&'static str, Box<dyn Fn(usize) -> Resource>);
    let eps = args.endpoints;
    let kinds: Vec<Change> = vec![
        ("policy edit", Box::new(|k| policy(3, (k % 2) as u16))),
        (
            "global policy edit",
            Box::new(|k| policy(0, (k % 2) as u16)),
        ),
        (
            "local endpoint added",
            Box::new(move |k| endpoint(eps + 10 + k, None, 0)),
        ),
        (
            "local endpoint label change",
            Box::new(|k| endpoint(5, None, 1 - k % 2)),
        ),
        (
            "remote endpoint added",
            Box::new(move |k| endpoint(0, Some(eps * REMOTE_PER_LOCAL + 10 + k), 0)),
        ),
    ];
    println!(
        "### our part of one change at {size} policies, no kernel (median of {n}, ms; max in brackets)\n"
    );
    println!("| change | on_update | flush | recompile | plan | **total** |");
    println!("|---|---|---|---|---|---|");
    // POLICY_BENCH_PURE_ONLY=<part of a change's name>: only those (for a profiler).
    let only = std::env::var("POLICY_BENCH_PURE_ONLY").unwrap_or_default();
    for (name, change) in kinds
        .iter()
        .filter(|(name, _)| name.contains(only.as_str()))
    {
        let (mut on, mut fl, mut re, mut pl, mut tot) = (vec![], vec![], vec![], vec![], vec![]);
        for k in 0..n {
            let r = change(k);
            let t = Instant::now();
            graph.on_update(ResourceKey::of(&r), Some(r))?;
            on.push(ms(t.elapsed()));
            let t = Instant::now();
            let updates = graph.flush();
            fl.push(ms(t.elapsed()));
            let t = Instant::now();
            let next = tables.recompile(graph.model(), &updates, &cfg)?;
            re.push(ms(t.elapsed()));
            let t = Instant::now();
            let plans = tables.plan(&next);
            pl.push(ms(t.elapsed()));
            if plans.is_err() {
                bail!("{name}: no netlink plan for the change");
            }
            tables = next;
            tot.push(on[k] + fl[k] + re[k] + pl[k]);
        }
        println!(
            "| {name} | {} | {} | {} | {} | **{}** |",
            cell(&on),
            cell(&fl),
            cell(&re),
            cell(&pl),
            cell(&tot)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if let Some(n) = args.pure {
        return pure_changes(&args, n);
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("policy-bench needs root (it creates network namespaces)");
    }
    let started = Instant::now();
    let load_before = load_average();
    let cfg = NftConfig {
        shards: args.shards,
        ipv6: !args.ipv4_only,
        ..NftConfig::default()
    };
    let tmp = tempfile::tempdir()?;
    let mut rows = Vec::new();
    let mut largest: Option<Programmed> = None;
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    for &n in &sizes {
        let (row, prog) = full_pipeline(n, args.endpoints, &args, &cfg, tmp.path())?;
        progress(format!(
            "(a) {n}: calc {:.0} ms, compile {:.0} ms, apply {:.0} ms, floor {:.0} ms",
            row.calc, row.compile, row.apply, row.floor
        ));
        rows.push(row);
        largest = Some(prog); // the previous one's namespace is deleted here
    }
    let mut prog = largest.context("no size ran")?;
    let changes = incremental(&mut prog, &args, &cfg)?;
    // The same changes on the same cluster in one table (`shards` 0), side by side.
    let one_table = if args.shards > 0 && args.compare_one_table {
        let cfg0 = NftConfig {
            ipv6: !args.ipv4_only,
            ..NftConfig::default()
        };
        let n = sizes.last().copied().unwrap_or_default();
        progress(format!("(b) the same at {n} policies in one table"));
        let once = Args {
            reps: 1,
            one_by_one: false,
            ..args.clone()
        };
        let (_, mut prog0) = full_pipeline(n, args.endpoints, &once, &cfg0, tmp.path())?;
        Some(incremental(&mut prog0, &args, &cfg0)?)
    } else {
        None
    };
    let big = prog.graph.model().policies.len();
    let largest_table = prog
        .ruleset
        .tables()
        .max_by_key(|r| r.counts().rules)
        .map(|r| format!("`{}`, {} rules", r.table(), r.counts().rules))
        .unwrap_or_default();
    let largest_size = sizes.last().copied().unwrap_or_default();
    if let Some(d) = &args.dump {
        for (k, (_, t)) in changes.iter().enumerate() {
            if !t.last_script.is_empty() {
                std::fs::write(d.join(format!("diff-{k}.nft")), &t.last_script)?;
            }
        }
    }
    let traffic_result = if args.traffic {
        Some(traffic(prog.netns, largest_size, &args, &cfg)?)
    } else {
        None
    };
    let load_after = load_average();

    // ----- report -----
    println!(
        "policy-bench: {} local endpoints ({} remote), {} namespaces, tiers security/platform/default; \
         release build; load average {load_before} before, {load_after} after; {:.0} s in all\n",
        args.endpoints,
        args.endpoints * REMOTE_PER_LOCAL,
        NAMESPACES,
        started.elapsed().as_secs_f64()
    );
    println!(
        "### (a) resources → programmed dataplane (median of {} reps)\n",
        args.reps
    );
    println!(
        "| policies | resources | model | calc (on_updates) | flush | compile | render | apply (NftDriver) | **total** | floor `nft -f` | **total / floor** | apply / floor | script |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let total = r.calc + r.flush + r.compile + r.render + r.apply;
        println!(
            "| {} | {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | **{:.0} ms** | {:.0} ms | **{:.2}×** | {:.2}× | {} KiB |",
            r.policies,
            r.resources,
            r.model,
            r.calc,
            r.flush,
            r.compile,
            r.render,
            r.apply,
            total,
            r.floor,
            total / r.floor,
            r.apply / r.floor,
            r.script_kib
        );
    }
    if rows.iter().any(|r| r.one_by_one.is_some()) {
        println!();
        for r in &rows {
            if let Some(o) = r.one_by_one {
                println!(
                    "- {} policies: the same snapshot fed with `on_update` one resource at a time \
                     (what calico-node's list path does) + flush: {:.0} ms ({:.1}× the batched calc)",
                    r.policies,
                    o,
                    o / (r.calc + r.flush)
                );
            }
        }
    }
    let layout = if args.shards == 0 {
        "one table".to_string()
    } else {
        format!(
            "{} shard tables by namespace + global + main; probes on the largest, {}",
            args.shards, largest_table
        )
    };
    print_changes(
        &format!(
            "### (b) one change at {largest_size} policies ({big} active on the node; {layout}; median over {} changes, ms; max in brackets)",
            args.changes
        ),
        &changes,
    );
    if let Some(one) = &one_table {
        print_changes(
            &format!(
                "### (b′) the same changes, same run, everything in one table (`CALICO_NFT_SHARDS=0`; median over {} changes, ms)",
                args.changes
            ),
            one,
        );
        println!("\nRatio sharded / one table (incremental path, medians):\n");
        for ((name, t), (_, t0)) in changes.iter().zip(one) {
            if !t.on_update.is_empty() {
                println!(
                    "- {name}: {:.2}×",
                    median(&t.inc_total) / median(&t0.inc_total)
                );
            }
        }
    }
    println!(
        "\n\"full recompile\" = on_update + flush + model clone + full compile + diff + apply \
         (what calico-node did before `0ebb97d`); \"incremental path\" = on_update + flush + recompile + \
         diff_plan + apply (what calico-node does); both apply as calico-felix's PolicyManager \
         does (element changes of one table as one nfnetlink batch of set elements, chain and \
         rule changes as one nfnetlink batch of table operations over all tables concerned, \
         the rest as one nft transaction)."
    );
    if let Some(tr) = traffic_result {
        println!(
            "\n### (c) pod → pod TCP through a node namespace, {} rounds visiting the variants in rotating order, {:.0} s bulk + {} ping-pongs each\n",
            args.rounds, args.secs, args.rtts
        );
        println!(
            "| variant | throughput (median) | per round (Gbit/s) | vs no table | RTT p50 | RTT p99 |"
        );
        println!("|---|---|---|---|---|---|");
        let base = median(&tr.rows[0].1.gbps);
        let mut sorted = Vec::new();
        for (name, row) in &tr.rows {
            let mut s = row.rtts.clone();
            s.sort_by(f64::total_cmp);
            println!(
                "| {name} | {:.2} Gbit/s | {} | **{:.1} %** | {:.1} µs | {:.1} µs |",
                median(&row.gbps),
                row.gbps
                    .iter()
                    .map(|g| format!("{g:.2}"))
                    .collect::<Vec<_>>()
                    .join(" / "),
                100.0 * median(&row.gbps) / base,
                percentile(&s, 0.5),
                percentile(&s, 0.99)
            );
            sorted.push(s);
        }
        let paired_to = |v: usize, base: usize| {
            let r: Vec<f64> = tr.rows[v]
                .1
                .gbps
                .iter()
                .zip(&tr.rows[base].1.gbps)
                .map(|(w, n)| 100.0 * w / n)
                .collect();
            median(&r)
        };
        let paired = |v: usize| paired_to(v, 0);
        let mean = |v: usize| {
            let g = &tr.rows[v].1.gbps;
            g.iter().sum::<f64>() / g.len().max(1) as f64
        };
        println!(
            "\nThe 10k policies themselves, against the same cluster's table with only the policy \
             that allows the flow: **{:.1} %** (ratio of medians), {:.1} % (ratio of means), \
             {:.1} % (median of same-round ratios); RTT p50 {:.2}×, p99 {:.2}×.",
            100.0 * median(&tr.rows[1].1.gbps) / median(&tr.rows[3].1.gbps),
            100.0 * mean(1) / mean(3),
            paired_to(1, 3),
            percentile(&sorted[1], 0.5) / percentile(&sorted[3], 0.5),
            percentile(&sorted[1], 0.99) / percentile(&sorted[3], 0.99),
        );
        println!(
            "\nThroughput, median of the per-round ratios to \"no table\" (same round): policy table **{:.1} %**, \
             conntrack only {:.1} %. RTT with the policy table / without: p50 {:.2}×, p99 {:.2}× \
             (conntrack only: p50 {:.2}×, p99 {:.2}×).",
            paired(1),
            paired(2),
            percentile(&sorted[1], 0.5) / percentile(&sorted[0], 0.5),
            percentile(&sorted[1], 0.99) / percentile(&sorted[0], 0.99),
            percentile(&sorted[2], 0.5) / percentile(&sorted[0], 0.5),
            percentile(&sorted[2], 0.99) / percentile(&sorted[0], 0.99),
        );
    }
    Ok(())
}
