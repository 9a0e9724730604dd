//! `cni-bench`: issue 4's CNI benchmark. A burst of 30 pods on one node: every pod's ADD
//! started at once, then every DEL, repeated over several rounds; per-call latency (spawn to
//! exit) p50/p99 for
//! - ours: `calico` + `calico-ipam` through the node's calico-node agent, including the IPAM
//!   allocation and the WorkloadEndpoint write (embedded datastore, and real etcd);
//! - Debian's reference plugins: `ptp` + `host-local` doing the same plumbing (a veth per pod,
//!   a /32-style point-to-point address, host route).
//!
//! All variants run in the same invocation, interleaved round by round, so machine noise
//! hits them alike; the comparison is reported as ratios. Then the agent's RSS with 200 local
//! pods. Run as root: `cargo build --release --bins && target/release/cni-bench`
//! (`--rounds N`, `--pods N`, `--skip-etcd`, `--rss-pods N`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use calico_e2e::cni::{CniCall, invoke};
use calico_e2e::node::Node;
use calico_netlink::testing::TestNetns;

struct Args {
    rounds: usize,
    pods: usize,
    etcd: bool,
    rss_pods: usize,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        rounds: 5,
        pods: 30,
        etcd: true,
        rss_pods: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<usize> {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--rounds" => a.rounds = num("--rounds")?,
            "--pods" => a.pods = num("--pods")?,
            "--rss-pods" => a.rss_pods = num("--rss-pods")?,
            "--skip-etcd" => a.etcd = false,
            "-h" | "--help" => {
                println!("usage: cni-bench [--rounds N] [--pods N] [--rss-pods N] [--skip-etcd]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    Ok(a)
}

/// One plugin set under test.
struct Variant {
    label: &'static str,
    node: Node,
    plugin: PathBuf,
    cni_path: PathBuf,
    conf: Vec<u8>,
    k8s_args: bool,
    add: Vec<Duration>,
    del: Vec<Duration>,
}

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut v = samples.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((p / 100.0) * (v.len() as f64 - 1.0)).round() as usize;
    v[idx.min(v.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Runs `command` for every pod at once; returns each call's latency.
fn burst(v: &Variant, command: &str, pods: &[TestNetns], round: usize) -> Result<Vec<Duration>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(i, pod)| {
                s.spawn(move || -> Result<Duration> {
                    let id = format!("{:0>64x}", (round as u64) << 32 | i as u64);
                    let pod_path = pod.path();
                    let mut call = CniCall::new(command, &id, Some(pod_path.as_path()), &v.cni_path, &v.conf);
                    if v.k8s_args {
                        call.args = format!(
                            "IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-{round}-{i};K8S_POD_INFRA_CONTAINER_ID={id}"
                        );
                    }
                    let out = invoke(&v.plugin, &call, v.node.ns.ns())?;
                    if !out.success() {
                        bail!("{} {command} of pod {i} failed: {} {}", v.label, out.stdout, out.stderr);
                    }
                    Ok(out.elapsed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("bench thread panicked"))?
            })
            .collect()
    })
}

fn reference_variant(dir: &Path) -> Result<Variant> {
    let node = Node::new("ref-node", "10.201.0.1/24", None)?;
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "refnet",
        "type": "ptp",
        "ipMasq": false,
        "mtu": 1440,
        "ipam": {"type": "host-local", "subnet": "10.199.0.0/16", "dataDir": dir.join("host-local")},
    });
    Ok(Variant {
        label: "ptp + host-local (Debian reference)",
        node,
        plugin: PathBuf::from("/usr/lib/cni/ptp"),
        cni_path: PathBuf::from("/usr/lib/cni"),
        conf: conf.to_string().into_bytes(),
        k8s_args: false,
        add: Vec::new(),
        del: Vec::new(),
    })
}

fn calico_variant(label: &'static str, name: &str, addr: &str, etcd: bool) -> Result<Variant> {
    let mut node = Node::new(name, addr, None)?;
    if etcd {
        node.use_etcd()?;
    }
    // Quiet logs: the reference plugins log nothing either.
    node.agent_env.push(("RUST_LOG".into(), "warn".into()));
    node.start_agent()?;
    let mut conf = node.netconf("k8s-pod-network", "1.0.0");
    // Quiet by default (the reference plugins log nothing); CNI_BENCH_LOG_LEVEL=debug to study
    // where the time goes (log in the node's directory, kept with CNI_BENCH_KEEP=1).
    conf["log_level"] = std::env::var("CNI_BENCH_LOG_LEVEL")
        .unwrap_or_else(|_| "warning".into())
        .into();
    Ok(Variant {
        label,
        plugin: calico_e2e::binary("calico")?,
        cni_path: node.plugin_dir(),
        conf: conf.to_string().into_bytes(),
        k8s_args: true,
        node,
        add: Vec::new(),
        del: Vec::new(),
    })
}

fn agent_rss(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("cni-bench needs root (it builds network namespaces)");
    }
    if !Path::new("/usr/lib/cni/ptp").is_file() {
        bail!(
            "Debian's reference plugins are missing: apt-get install containernetworking-plugins"
        );
    }
    let dir = tempfile::tempdir()?;
    let keep = std::env::var("CNI_BENCH_KEEP").as_deref() == Ok("1");
    let mut variants = vec![reference_variant(dir.path())?];
    variants.push(calico_variant(
        "calico + calico-ipam, embedded datastore",
        "bench-emb",
        "10.202.0.1/24",
        false,
    )?);
    if args.etcd {
        variants.push(calico_variant(
            "calico + calico-ipam, etcd v3",
            "bench-etcd",
            "10.203.0.1/24",
            true,
        )?);
    }
    let pods: Vec<TestNetns> = (0..args.pods)
        .map(|_| TestNetns::new("bench-pod"))
        .collect::<Result<_, _>>()?;
    eprintln!(
        "{} pods per burst, {} rounds, {} variants (progress on stderr)",
        args.pods,
        args.rounds,
        variants.len()
    );
    // Warm-up round (page cache, first block claim), not recorded.
    for v in &variants {
        burst(v, "ADD", &pods, 1000)?;
        burst(v, "DEL", &pods, 1000)?;
    }
    for round in 0..args.rounds {
        for v in variants.iter_mut() {
            let add = burst(v, "ADD", &pods, round)?;
            let del = burst(v, "DEL", &pods, round)?;
            eprintln!(
                "round {}/{}: {:<45} ADD p50 {:>6} ms  DEL p50 {:>6} ms",
                round + 1,
                args.rounds,
                v.label,
                ms(percentile(&add, 50.0)),
                ms(percentile(&del, 50.0))
            );
            v.add.extend(add);
            v.del.extend(del);
        }
    }
    println!("| variant | ADD p50 ms | ADD p99 ms | DEL p50 ms | DEL p99 ms | samples |");
    println!("|---|---|---|---|---|---|");
    for v in &variants {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            v.label,
            ms(percentile(&v.add, 50.0)),
            ms(percentile(&v.add, 99.0)),
            ms(percentile(&v.del, 50.0)),
            ms(percentile(&v.del, 99.0)),
            v.add.len()
        );
    }
    let reference = &variants[0];
    for v in &variants[1..] {
        let ratio = |ours: &[Duration], theirs: &[Duration], p: f64| {
            percentile(ours, p).as_secs_f64() / percentile(theirs, p).as_secs_f64().max(1e-9)
        };
        println!(
            "\n{} vs reference: ADD p50 ×{:.2}, ADD p99 ×{:.2}, DEL p50 ×{:.2}, DEL p99 ×{:.2} (below 1 = faster)",
            v.label,
            ratio(&v.add, &reference.add, 50.0),
            ratio(&v.add, &reference.add, 99.0),
            ratio(&v.del, &reference.del, 50.0),
            ratio(&v.del, &reference.del, 99.0)
        );
    }

    // Agent memory with many local pods (embedded datastore variant).
    if args.rss_pods > 0 {
        let v = &variants[1];
        let pid = v.node.agent_pid().context("agent not running")?;
        let (idle, _) = agent_rss(pid)?;
        eprintln!("adding {} pods for the RSS measurement", args.rss_pods);
        let mut added = Vec::new();
        for chunk in 0..args.rss_pods.div_ceil(args.pods) {
            let n = args.pods.min(args.rss_pods - chunk * args.pods);
            let chunk_pods: Vec<TestNetns> = (0..n)
                .map(|_| TestNetns::new("bench-rss"))
                .collect::<Result<_, _>>()?;
            burst(v, "ADD", &chunk_pods, 5000 + chunk)?;
            added.extend(chunk_pods);
            eprintln!("  {} pods", added.len());
        }
        // Let the agent settle (routes programmed for every pod).
        std::thread::sleep(Duration::from_secs(3));
        let routes = v
            .node
            .ip(&["route", "show", "proto", "80"])?
            .lines()
            .count();
        let (rss, hwm) = agent_rss(pid)?;
        println!(
            "\ncalico-node RSS: {:.1} MiB idle, {:.1} MiB with {} local pods (peak {:.1} MiB); {} routes of proto 80",
            idle as f64 / 1024.0,
            rss as f64 / 1024.0,
            added.len(),
            hwm as f64 / 1024.0,
            routes
        );
    }
    if keep {
        for v in &variants[1..] {
            let log = v.node.cni_log_path();
            let copy = std::env::temp_dir().join(format!("cni-bench-{}.log", v.node.name));
            std::fs::copy(&log, &copy).with_context(|| format!("keeping {}", log.display()))?;
            eprintln!("kept {}", copy.display());
        }
    }
    Ok(())
}
