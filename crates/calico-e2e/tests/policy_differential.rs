//! Randomized differential test of the whole policy pipeline against the reference evaluator
//! (`docs/design/policy-dataplane.md`, "Proof"), on real packets in the kernel.
//!
//! Each case (`calico_e2e::differential::generate`, seeded) is a set of random Calico
//! resources for 4-6 pods on one node. The resources go through `calico_calc::CalcGraph` and
//! `calico_nft::compile`; the rendered table is loaded with `nft -f` into a "node" network
//! namespace wired like Calico (host-side veths `cali…`, /32 routes, `default via 169.254.1.1`
//! answered by proxy ARP, built by calico-netlink's `workload` module), every pod serves TCP
//! and UDP on the case's ports, and every ordered pod pair probes every port (TCP, UDP) and
//! pings (ICMP echo). The observed
//! matrix must equal what `calico_policy_eval` decides for the same resources. A mismatch
//! prints the seed, the resources (YAML), the rendered ruleset and the differing cells with the
//! evaluator's explanation.
//!
//! `POLICY_DIFF_CASES` (default 10) sets the number of cases, `POLICY_DIFF_SEED` (default 1)
//! the first seed; rerun one failing case with `POLICY_DIFF_SEED=<seed> POLICY_DIFF_CASES=1`.
//!
//! The pure test (`model_tier_lists_match_evaluator_ordering`) needs no root: for many cases it
//! checks that the graph's per-endpoint tier / policy lists are what the evaluator's ordering
//! and selectors imply.
//!
//! Everything happens in network namespaces the test creates and deletes; the root namespace
//! is never touched. Without root the kernel test skips with a note, and FAILS when
//! `CALICO_REQUIRE_ROOT=1` (CI), as `calico_netlink::testing::require_root` decides.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calico_e2e::differential::{
    Case, Coverage, coverage, expected, explain, generate, graph, incremental_mismatches,
    ordering_mismatches, policy_set, probes, resources_yaml, staged,
};
use calico_e2e::reach::{Matrix, Proto, Servers, Target};
use calico_netlink::testing::{TestNetns, require_root};
use calico_netlink::workload::{WorkloadSpec, setup_workload};
use calico_netlink::{IpNet, RTPROT_BOOT, Route, RouteSocket, VethSpec, sysctl};
use calico_nft::NftConfig;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}")),
        Err(_) => default,
    }
}

fn seeds(default_cases: u64) -> std::ops::Range<u64> {
    let first = env_u64("POLICY_DIFF_SEED", 1);
    first..first + env_u64("POLICY_DIFF_CASES", default_cases)
}

#[test]
fn model_tier_lists_match_evaluator_ordering() {
    let mut checked = 0;
    let mut failures = Vec::new();
    let range = seeds(10);
    // Pure and fast: ten times as many cases as the kernel test, from the same seeds on.
    let range = range.start..range.start + (range.end - range.start) * 20;
    for seed in range {
        let case = generate(seed);
        let set = policy_set(&case.resources).unwrap();
        let g = graph(&case.resources).unwrap();
        let bad = ordering_mismatches(&case, &set, g.model());
        checked += 1;
        if !bad.is_empty() {
            failures.push(format!(
                "seed {seed}:\n  {}\nresources:\n{}",
                bad.join("\n  "),
                resources_yaml(&case.resources)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} cases disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn incremental_graph_and_recompile_match_batch() {
    let range = seeds(10);
    let range = range.start..range.start + (range.end - range.start) * 20;
    let mut failures = Vec::new();
    for seed in range {
        let bad = incremental_mismatches(seed);
        if !bad.is_empty() {
            failures.push(format!(
                "seed {seed}:\n  {}\nresources:\n{}",
                bad.join("\n  "),
                resources_yaml(&generate(seed).resources)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The node and its pods for one case. Drop order: servers, pods, node.
struct Topology {
    _servers: Vec<Servers>,
    pods: Vec<TestNetns>,
    node: TestNetns,
}

fn build(case: &Case) -> Topology {
    let node = TestNetns::new("pdiff-node").unwrap();
    node.ns()
        .run(|| sysctl::write("net/ipv4/ip_forward", "1"))
        .unwrap()
        .unwrap();
    // Proxy ARP answers for 169.254.1.1 only when the node has a route to it through another
    // interface, as a real node's default route provides: a veth pair inside the node
    // namespace stands in for the uplink (as in calico-felix's tests/nft_netns.rs).
    let s = RouteSocket::open_in(node.ns()).unwrap();
    s.create_veth(&VethSpec {
        name: "uplink0",
        mac: None,
        mtu: None,
        peer_name: "uplink1",
        peer_mac: None,
        peer_netns: None,
    })
    .unwrap();
    for n in ["uplink0", "uplink1"] {
        s.set_link_up(s.link_by_name(n).unwrap().unwrap().index)
            .unwrap();
    }
    let up = s.link_by_name("uplink0").unwrap().unwrap().index;
    s.add_route(&Route::link_scope(
        "0.0.0.0/0".parse().unwrap(),
        up,
        RTPROT_BOOT,
    ))
    .unwrap();
    let mut pods = Vec::new();
    let mut servers = Vec::new();
    for p in &case.pods {
        let ns = TestNetns::new("pdiff-pod").unwrap();
        let addrs: [IpNet; 1] = [format!("{}/32", p.ip).parse().unwrap()];
        setup_workload(&WorkloadSpec {
            host_ns: node.ns(),
            container_ns: ns.ns(),
            host_if: &p.iface,
            container_if: "eth0",
            addresses: &addrs,
            mtu: 1500,
            container_mac: None,
            host_route_protocol: RTPROT_BOOT,
        })
        .unwrap();
        servers.push(Servers::start(ns.ns(), p.ip.into(), &case.ports).unwrap());
        pods.push(ns);
    }
    Topology {
        _servers: servers,
        pods,
        node,
    }
}

fn nft_load(node: &TestNetns, script: &str) -> Result<(), String> {
    let mut child = Command::new("nsenter")
        .arg(format!("--net={}", node.path().display()))
        .args(["--", "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning nsenter nft: {e}"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(|e| format!("writing the script to nft: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for nft: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "nft -f refused the ruleset: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs one case; `Err` is the full failure report.
fn run_case(seed: u64) -> Result<usize, String> {
    let case = generate(seed);
    let set = policy_set(&case.resources).unwrap();
    let g = graph(&case.resources).unwrap();
    // Even seeds spread workload policy over 0 to 3 shard tables by namespace, as
    // calico-node does (`CALICO_NFT_SHARDS`): the verdicts must not change.
    let shards = if seed.is_multiple_of(2) {
        u16::try_from((seed / 2) % 4).unwrap_or(0)
    } else {
        0
    };
    // Seeds 2, 8, 14, … (even, so loaded whole) compile without IPv6 support
    // (`FELIX_IPV6SUPPORT=false`: address matches for IPv4 only); the probes are IPv4, so the
    // verdicts must not change.
    let cfg = NftConfig {
        shards,
        ipv6: seed % 6 != 2,
        ..NftConfig::default()
    };
    let ruleset = calico_nft::PolicyTables::compile(g.model(), &cfg)
        .map_err(|e| format!("seed {seed}: compile failed: {e}"))?;
    // Odd seeds reach the final table as calico-node does after a change: an earlier state
    // loaded whole, then the nft transaction from `calico_nft::diff` on top.
    let stages = if seed % 2 == 1 {
        Some(staged(&case).map_err(|e| format!("seed {seed}: {e}"))?)
    } else {
        None
    };
    let mut script = ruleset.full_replace_scripts().concat();
    if let Some(st) = &stages {
        script = format!(
            "(reached through an earlier table and a diff; the final table is)\n{script}\n\
             earlier table:\n{}\ndiff applied:\n{}",
            st.first, st.diff
        );
    }
    let report = |what: String| {
        format!(
            "seed {seed}: {what}\nrerun: POLICY_DIFF_SEED={seed} POLICY_DIFF_CASES=1\n\
             resources:\n{}\nnft ruleset:\n{script}",
            resources_yaml(&case.resources)
        )
    };
    let topo = build(&case);
    // Without a table every pod reaches every other: the topology itself works, so a
    // blocked probe below is the table's doing.
    let (a, b) = (&case.pods[0], &case.pods[1]);
    let open = calico_e2e::reach::probe(
        topo.pods[0].ns(),
        Proto::Tcp,
        b.ip.into(),
        case.ports[0],
        Duration::from_secs(3),
    )
    .map_err(|e| report(format!("probing without a table: {e}")))?;
    if !open {
        return Err(report(format!(
            "without any table {} cannot reach {}:{} (topology broken)",
            a.ip, b.ip, case.ports[0]
        )));
    }
    match &stages {
        None => {
            for table in ruleset.full_replace_scripts() {
                nft_load(&topo.node, &table).map_err(&report)?;
            }
        }
        Some(st) => {
            nft_load(&topo.node, &st.first).map_err(&report)?;
            if !st.diff.trim().is_empty() {
                nft_load(&topo.node, &st.diff).map_err(&report)?;
            }
        }
    }
    // The kernel holds exactly the compiled tables' chains (with their rule counts), sets
    // and maps (with their element counts), however it got there.
    for (table, compiled) in ruleset.shapes() {
        let listed = Command::new("nsenter")
            .arg(format!("--net={}", topo.node.path().display()))
            .args(["--", "nft", "-j", "list", "table", "inet", &table])
            .output()
            .map_err(|e| report(format!("listing table {table}: {e}")))?;
        let shape =
            calico_nft::TableShape::from_nft_json(&String::from_utf8_lossy(&listed.stdout), &table)
                .map_err(|e| report(format!("reading the listed table {table}: {e}")))?;
        if shape != compiled {
            return Err(report(format!(
                "the kernel's table {table} differs from the compiled one:\nkernel: {shape:?}\ncompiled: {compiled:?}"
            )));
        }
    }

    let targets: Vec<Target<'_>> = case
        .pods
        .iter()
        .zip(&topo.pods)
        .map(|(p, ns)| Target {
            name: p.key(),
            ns: ns.ns(),
            ip: p.ip.into(),
        })
        .collect();
    let probes = probes(&case);
    let want = expected(&case, &set);
    let mut got = Matrix::probe_all(&targets, &probes, Duration::from_millis(600), 64)
        .map_err(|e| report(format!("probing: {e}")))?;
    // A probe that timed out under load is retried with a longer timeout before it counts:
    // only a blocked cell can be a slow false negative.
    let retry: Vec<_> = want
        .cells
        .iter()
        .filter(|(cell, w)| **w && got.cells.get(*cell) == Some(&false))
        .filter_map(|(cell, _)| {
            let from = targets.iter().find(|t| t.name == cell.from)?;
            let to = targets.iter().find(|t| t.name == cell.to)?;
            Some((from, to, cell.proto, cell.port))
        })
        .collect();
    if !retry.is_empty() {
        let again = Matrix::probe_jobs(&retry, Duration::from_secs(3), 64)
            .map_err(|e| report(format!("re-probing: {e}")))?;
        got.cells.extend(again.cells);
    }
    let diff = got.differences(&want);
    if diff.is_empty() {
        return Ok(want.cells.len());
    }
    let mut why = String::new();
    for (cell, w) in &want.cells {
        if got.cells.get(cell) != Some(w) {
            why.push_str(&format!(
                "  {} -> {} {}/{}: evaluator: {}\n",
                cell.from,
                cell.to,
                cell.proto,
                cell.port,
                explain(&case, &set, cell)
            ));
        }
    }
    let mut tables = String::new();
    for &(proto, port) in &probes {
        tables.push_str(&format!(
            "expected:\n{}observed:\n{}",
            want.table(proto, port),
            got.table(proto, port)
        ));
    }
    Err(report(format!(
        "kernel and evaluator disagree:\n{diff}\n{why}\n{tables}"
    )))
}

#[test]
fn policy_pipeline_matches_evaluator_on_real_traffic() {
    if !require_root() {
        return;
    }
    calico_e2e::require_tool("nft").unwrap();
    calico_e2e::require_tool("nsenter").unwrap();
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut cells = 0;
    let mut cases = 0;
    let mut total = Coverage::default();
    for seed in seeds(10) {
        cases += 1;
        let case = generate(seed);
        total.add(&coverage(&case, &policy_set(&case.resources).unwrap()));
        eprintln!(
            "seed {seed}: {} pods, {} resources, ports {:?}, regenerated {} invalid resources and {} refused cases",
            case.pods.len(),
            case.resources.len(),
            case.ports,
            case.regenerated.invalid_resources,
            case.regenerated.refused_cases
        );
        match run_case(seed) {
            Ok(n) => cells += n,
            Err(report) => {
                eprintln!("{report}");
                failures.push(seed);
            }
        }
    }
    eprintln!(
        "{cases} cases, {cells} agreeing probes, {} failing, in {:?}; evaluator decisions: {total:?}",
        failures.len(),
        start.elapsed()
    );
    assert!(
        failures.is_empty(),
        "kernel and evaluator disagree for seeds {failures:?} (reports above)"
    );
}
