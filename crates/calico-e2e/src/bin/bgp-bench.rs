//! `bgp-bench`: issue 5's BGP benchmark, our speaker against BIRD side by side in one run.
//!
//! A BIRD 2 "originator" (think top-of-rack router) announces N IPv4 /32s over iBGP to a
//! receiver, which puts them into its RIB and writes them into its namespace's kernel FIB:
//! - ours: a real `calico-node` (embedded datastore, a global `BGPPeer` to the originator;
//!   learned routes go to the kernel as `proto bgp` = 186);
//! - BIRD 2.0.12 configured as Calico's confd configures it (`protocol kernel` with `learn;
//!   persist; scan time 2; graceful restart; merge paths on`, the `calico_kernel_programming`
//!   metric mapping, `bgp_template` timers, `add paths on`), routes as `proto bird`.
//!
//! Every sample starts the receiver afresh, waits for the session, then times from the
//! originator's `birdc configure` (which adds the N static routes) until all N are in the
//! receiver's RIB and in its kernel FIB, then withdraws them all and times that too. Per
//! sample: CPU seconds (utime + stime from `/proc/<pid>/stat`) and peak RSS (`VmHWM`, reset
//! with `clear_refs` just before the announce) of the receiver process. Receivers alternate
//! round by round so machine noise hits both; the summary shows medians and ratios.
//!
//! Topology (all in namespaces made here; nothing in the root namespace):
//! ```text
//!  ns bench-ours 10.210.0.1 ─┐                   ┌─ ns bench-bird 10.210.0.2
//!    calico-node             └── fabric br0 ─────┘    bird (receiver)
//!                              10.210.0.254: bird (originator, AS 64512)
//! ```
//! Run as root: `cargo build --release --bins && target/release/bgp-bench`
//! (`--routes 10000,100000 --rounds 3`; `BGP_BENCH_RUST_LOG=debug` sets calico-node's log
//! filter, `BGP_BENCH_AGENT_ENV="K=V,..."` adds to its environment for experiments,
//! `BGP_BENCH_KEEP=1` copies the logs to `/tmp/bgp-bench-logs-<pid>/`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use calico_e2e::bgp_peers::{BgpPeerDaemon, Bird, DaemonSpec, NeighborSpec};
use calico_e2e::fabric::Fabric;
use calico_e2e::node::Node;
use ipnet::{IpNet, Ipv4Net};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const AS: u32 = 64512;
const ORIGINATOR: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 254);
const OURS: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 1);
const THEIRS: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 2);
/// First announced /32 (10.64.0.0 ..): outside the node's pool (10.244.0.0/16) and the fabric.
const FIRST_PREFIX: Ipv4Addr = Ipv4Addr::new(10, 64, 0, 0);
/// How often the kernel FIB is sampled (`fib_triestat`), and the RIB counters.
const FIB_POLL: Duration = Duration::from_millis(50);
const RIB_POLL: Duration = Duration::from_millis(100);

struct Args {
    routes: Vec<usize>,
    rounds: usize,
    timeout: Duration,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        routes: vec![10_000, 100_000],
        rounds: 3,
        timeout: Duration::from_secs(300),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--routes" => {
                a.routes = value("--routes")?
                    .split(',')
                    .map(|s| {
                        s.trim()
                            .parse::<usize>()
                            .with_context(|| format!("--routes: {s:?} is not a number"))
                    })
                    .collect::<Result<_>>()?;
                if a.routes.iter().any(|&n| n == 0 || n > 1 << 20) {
                    bail!("--routes: each count must be in 1..=1048576");
                }
            }
            "--rounds" => {
                a.rounds = value("--rounds")?
                    .parse()
                    .context("--rounds needs a number")?;
            }
            "--timeout" => {
                a.timeout = Duration::from_secs(
                    value("--timeout")?
                        .parse()
                        .context("--timeout needs seconds")?,
                );
            }
            "-h" | "--help" => {
                println!(
                    "usage: bgp-bench [--routes 10000,100000] [--rounds 3] [--timeout SECS per phase]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if a.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(a)
}

/// Set by Ctrl-C / SIGTERM: the polling loops stop with an error, so every guard drops and
/// the processes and namespaces go.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn watch_signals() {
    std::thread::spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                eprintln!("interrupted: cleaning up");
                INTERRUPTED.store(true, Ordering::SeqCst);
            }
        });
    });
}

fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// /proc readings

static CLK_TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();

fn clk_tck() -> f64 {
    *CLK_TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// `(utime, stime)` of `pid` (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("odd /proc/{pid}/stat: {stat}"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<f64> {
        f.get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v as f64)
            .ok_or_else(|| anyhow!("no field {} in /proc/{pid}/stat", i + 3))
    };
    // utime is field 14, stime field 15 (proc(5)).
    Ok((ticks(11)? / clk_tck(), ticks(12)? / clk_tck()))
}

/// CPU seconds `(utime, stime)` of `pid`'s live threads, summed by thread name (`bgp-fib`,
/// `tokio-rt-worker`, ...): where a multi-threaded receiver spends its time.
fn thread_cpu(pid: u32) -> Result<BTreeMap<String, (f64, f64)>> {
    let mut by_name = BTreeMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let tid = entry?.file_name().to_string_lossy().into_owned();
        let Ok(name) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")) else {
            continue; // the thread ended meanwhile
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<f64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse().ok())
            .collect();
        if let [user, sys] = f[..] {
            let e = by_name.entry(name.trim().to_string()).or_insert((0.0, 0.0));
            e.0 += user / clk_tck();
            e.1 += sys / clk_tck();
        }
    }
    Ok(by_name)
}

/// `after - before` per thread name as `(name, total, sys)`, largest first, without threads
/// that used nothing.
fn thread_delta(
    before: &BTreeMap<String, (f64, f64)>,
    after: &BTreeMap<String, (f64, f64)>,
) -> Vec<(String, f64, f64)> {
    let mut v: Vec<(String, f64, f64)> = after
        .iter()
        .map(|(k, (u, s))| {
            let (bu, bs) = before.get(k).copied().unwrap_or((0.0, 0.0));
            (k.clone(), (u - bu) + (s - bs), s - bs)
        })
        .filter(|(_, d, _)| *d > 0.0)
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    v
}

/// `(VmRSS, VmHWM)` of `pid` in KiB.
fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (proc(5), `clear_refs` value 5).
fn reset_peak_rss(pid: u32) -> Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
        .with_context(|| format!("resetting the peak RSS of {pid}"))
}

/// IPv4 prefixes in the main FIB of `pid`'s network namespace (`/proc/<pid>/net` is that
/// process's namespace): one cheap read instead of dumping 100k routes over netlink.
fn fib_prefixes(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/fib_triestat"))
        .with_context(|| format!("reading /proc/{pid}/net/fib_triestat"))?;
    let mut in_main = false;
    for line in text.lines() {
        if line.starts_with("Main:") {
            in_main = true;
        } else if line.starts_with("Local:") {
            in_main = false;
        } else if in_main && let Some(v) = line.trim().strip_prefix("Prefixes:") {
            return v.trim().parse().context("parsing fib_triestat");
        }
    }
    bail!("no Main: Prefixes: in fib_triestat:\n{text}")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// Receivers

/// The BIRD receiver: Calico's `bird.cfg` shape for one global peer, in BIRD 2 syntax.
struct BirdReceiver {
    ns: String,
    dir: PathBuf,
    bird: PathBuf,
    birdc: PathBuf,
    child: Option<Child>,
}

impl BirdReceiver {
    fn new(ns: &str, dir: &Path) -> Result<BirdReceiver> {
        let root = calico_e2e::bgp_peers::bird_root();
        let r = BirdReceiver {
            ns: ns.to_string(),
            dir: dir.to_path_buf(),
            bird: root.join("usr/sbin/bird"),
            birdc: root.join("usr/sbin/birdc"),
            child: None,
        };
        if !r.bird.is_file() || !r.birdc.is_file() {
            bail!(
                "BIRD 2 not found under {} (scripts/install-deps.sh unpacks it)",
                root.display()
            );
        }
        std::fs::write(r.dir.join("bird.conf"), Self::config(&r.dir))
            .context("writing the receiver's bird.conf")?;
        Ok(r)
    }

    /// Calico's template (confd `bird.cfg.template` + `bird_ipam.cfg.template`) for a node with
    /// one global peer and no pools to export, translated to BIRD 2. Per-route debug logging
    /// (Calico's default `debug { states, routes, filters, events }` on peers) is left out:
    /// it would log every one of the N routes, and calico-node logs none at `info` either.
    fn config(dir: &Path) -> String {
        format!(
            r#"log "{log}" all;
router id {THEIRS};

filter calico_kernel_programming {{
  if source != RTS_BGP then reject;   # only learned routes (the measured ones) are written
  krt_metric = 1024;
  if defined(bgp_local_pref) then krt_metric = 2147483647 - bgp_local_pref;
  if krt_metric < 1024 then preference = 200;
  accept;
}}

protocol kernel {{
  learn;             # Learn all alien routes from the kernel
  persist;           # Don't remove routes on bird shutdown
  scan time 2;       # Scan kernel routing table every 2 seconds
  ipv4 {{ import all; export filter calico_kernel_programming; }};
  graceful restart;
  merge paths on;
}}

protocol device {{ debug {{ states }}; scan time 2; }}

protocol direct {{ debug {{ states }}; ipv4; interface -"cali*", -"kube-ipvs*", "*"; }}

template bgp bgp_template {{
  debug {{ states }};
  description "Connection to BGP peer";
  local as {AS};
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}}

protocol bgp Global_10_210_0_254 from bgp_template {{
  neighbor {ORIGINATOR} as {AS};
  ttl security off;
  multihop;
  ipv4 {{
    gateway recursive;
    add paths on;
    import all;
    export none;     # calico_export_to_bgp_peers rejects everything: no pools or blocks here
  }};
}}
"#,
            log = dir.join("bird.log").display()
        )
    }

    fn start(&mut self) -> Result<u32> {
        let sock = self.dir.join("bird.ctl");
        let _ = std::fs::remove_file(&sock);
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("bird.stdio.log"))?;
        // `ip netns exec` execs BIRD in place: the child's PID is BIRD's.
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(&self.bird)
            .arg("-f")
            .arg("-c")
            .arg(self.dir.join("bird.conf"))
            .arg("-s")
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the BIRD receiver")?;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.birdc(&["show", "status"]).is_err() {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                self.child = None;
                bail!(
                    "BIRD receiver exited ({st}): {}",
                    std::fs::read_to_string(self.dir.join("bird.stdio.log")).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("BIRD receiver's control socket not up after 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(pid)
    }

    fn birdc(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.birdc)
            .arg("-s")
            .arg(self.dir.join("bird.ctl"))
            .args(args)
            .output()
            .context("running birdc")?;
        if !out.status.success() {
            bail!("birdc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `Routes: N imported` of the peer's protocol (an O(1) counter in BIRD).
    fn rib_routes(&self) -> Result<u64> {
        let out = self.birdc(&["show", "protocols", "all", "Global_10_210_0_254"])?;
        for line in out.lines() {
            if let Some(rest) = line.trim().strip_prefix("Routes:") {
                return rest
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| anyhow!("odd Routes: line {line:?}"));
            }
        }
        // No channel statistics while the session is down.
        Ok(0)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for BirdReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Ours,
    Bird,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Ours => "calico-node (ours)",
            Kind::Bird => "BIRD 2.0.12",
        }
    }
    fn address(self) -> Ipv4Addr {
        match self {
            Kind::Ours => OURS,
            Kind::Bird => THEIRS,
        }
    }
    /// The kernel route protocol each one writes (`ip route show proto ...`).
    fn proto(self) -> &'static str {
        match self {
            Kind::Ours => "186",
            Kind::Bird => "bird",
        }
    }
}

/// One measured announce + withdraw.
#[derive(Clone, Debug)]
struct Sample {
    kind: Kind,
    routes: usize,
    /// `birdc configure` on the originator (the same for both receivers).
    configure: f64,
    /// All N counted in the receiver's RIB (BIRD: 100 ms polling; ours: the Loc-RIB gauge,
    /// refreshed by calico-node's 250 ms status tick).
    rib: f64,
    /// All N in the kernel FIB (50 ms polling).
    fib: f64,
    /// The first of them in the kernel FIB (shows whether RIB and FIB work overlap).
    fib_first: f64,
    /// All N gone from the FIB after the withdraw.
    withdraw: f64,
    /// CPU seconds of the receiver from the announce until the FIB was complete.
    cpu: f64,
    /// The kernel's share of `cpu` (stime: mostly the netlink route writes).
    cpu_sys: f64,
    /// CPU seconds of the withdraw phase.
    cpu_withdraw: f64,
    /// `cpu` by thread name (only interesting for calico-node: BIRD has one thread).
    /// `(thread name, CPU s, of which sys)`.
    threads: Vec<(String, f64, f64)>,
    rss_before_kib: u64,
    peak_kib: u64,
    /// VmRSS 1 s after the FIB was complete (the N routes held; transient buffers gone).
    held_kib: u64,
    /// VmRSS once the withdraw is complete (what the allocator kept).
    after_withdraw_kib: u64,
}

struct Bench {
    _fabric: Fabric,
    originator: Bird,
    ours: Node,
    theirs_node: Node,
    theirs: BirdReceiver,
    calicoctl: PathBuf,
    timeout: Duration,
    prefixes_cache: Vec<IpNet>,
}

fn prefixes(n: usize) -> Vec<IpNet> {
    let base = u32::from(FIRST_PREFIX);
    (0..n as u32)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(base + i), 32).expect("valid /32")))
        .collect()
}

impl Bench {
    fn new(timeout: Duration) -> Result<Bench> {
        eprintln!("setting up: fabric, originator BIRD, two receiver namespaces");
        let mut fabric = Fabric::new()?;
        let mut ours = Node::new("bench-ours", &format!("{OURS}/24"), None)?;
        let theirs_node = Node::new("bench-bird", &format!("{THEIRS}/24"), None)?;
        fabric.attach(&ours)?;
        fabric.attach(&theirs_node)?;
        fabric.add_address(&format!("{ORIGINATOR}/24"))?;
        let spec = DaemonSpec::new(fabric.ns.name(), ORIGINATOR, AS)
            .listen_address(IpAddr::V4(ORIGINATOR))
            .neighbor(NeighborSpec::new(IpAddr::V4(OURS), AS))
            .neighbor(NeighborSpec::new(IpAddr::V4(THEIRS), AS));
        let originator = Bird::start(&spec)?;
        let theirs = BirdReceiver::new(theirs_node.ns.name(), theirs_node.dir.path())?;
        // Calico's own default (Felix RouteRefreshInterval 90 s), not the e2e harness's 2 s:
        // the FIB writer's full reconciliation runs at this interval.
        ours.agent_env
            .push(("FELIX_ROUTEREFRESHINTERVAL".into(), "90".into()));
        ours.agent_env.push((
            "RUST_LOG".into(),
            std::env::var("BGP_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into()),
        ));
        // Experiments (e.g. MALLOC_ARENA_MAX=1): `BGP_BENCH_AGENT_ENV="K=V,K2=V2"`.
        if let Ok(extra) = std::env::var("BGP_BENCH_AGENT_ENV") {
            for kv in extra.split(',').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("BGP_BENCH_AGENT_ENV: {kv:?} is not K=V"))?;
                ours.agent_env.push((k.to_string(), v.to_string()));
            }
        }
        Ok(Bench {
            _fabric: fabric,
            originator,
            ours,
            theirs_node,
            theirs,
            calicoctl: calico_e2e::binary("calicoctl")?,
            timeout,
            prefixes_cache: Vec::new(),
        })
    }

    fn calicoctl_apply(&self, yaml: &str) -> Result<()> {
        let file = self.ours.dir.path().join("resource.yaml");
        std::fs::write(&file, yaml)?;
        let out = Command::new(&self.calicoctl)
            .env_clear()
            .env("DATASTORE_TYPE", "embedded")
            .env("CALICO_DATASTORE_PATH", &self.ours.store_path)
            .args(["apply", "-f"])
            .arg(&file)
            .output()
            .context("running calicoctl")?;
        if !out.status.success() {
            bail!(
                "calicoctl apply: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    fn wait_established(&self, kind: Kind) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            check_interrupted()?;
            let state = self.originator.session_state(IpAddr::V4(kind.address()))?;
            if state == "Established" {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} never reached Established with the originator (last {state})\n{}",
                    kind.label(),
                    self.log_tail(kind)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self, kind: Kind) -> String {
        match kind {
            Kind::Ours => self.ours.agent_log_tail(),
            Kind::Bird => {
                let text =
                    std::fs::read_to_string(self.theirs.dir.join("bird.log")).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            }
        }
    }

    /// calico-node's memory without and with the BGP session (everything else idle): what the
    /// agent's other parts weigh, and what the speaker adds before any route arrives.
    fn ours_idle_memory(&mut self) -> Result<(u64, u64)> {
        eprintln!("calico-node without any BGP peer: measuring idle memory");
        self.ours.start_agent()?;
        let pid = self.ours.agent_pid().context("agent not running")?;
        std::thread::sleep(Duration::from_secs(3));
        let (no_peer, _) = rss_kib(pid)?;
        self.calicoctl_apply(&format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: bench-originator\nspec:\n  peerIP: {ORIGINATOR}\n  asNumber: {AS}\n"
        ))?;
        self.wait_established(Kind::Ours)?;
        std::thread::sleep(Duration::from_secs(3));
        let (with_peer, _) = rss_kib(pid)?;
        self.ours.stop_agent(Signal::SIGTERM)?;
        Ok((no_peer, with_peer))
    }

    fn start(&mut self, kind: Kind) -> Result<u32> {
        // Leftovers of a failed sample would make calico-node start in graceful-restart mode
        // and BIRD's `persist` keeps its routes: start from an empty table either way.
        let ns = match kind {
            Kind::Ours => &self.ours,
            Kind::Bird => &self.theirs_node,
        };
        ns.ip(&["route", "flush", "proto", kind.proto()])?;
        let pid = match kind {
            Kind::Ours => {
                self.ours.start_agent()?;
                self.ours.agent_pid().context("agent not running")?
            }
            Kind::Bird => self.theirs.start()?,
        };
        self.wait_established(kind)?;
        Ok(pid)
    }

    fn stop(&mut self, kind: Kind) -> Result<()> {
        match kind {
            Kind::Ours => {
                self.ours.stop_agent(Signal::SIGTERM)?;
            }
            Kind::Bird => self.theirs.stop(),
        }
        Ok(())
    }

    fn rib_routes(&self, kind: Kind) -> Result<u64> {
        match kind {
            Kind::Bird => self.theirs.rib_routes(),
            Kind::Ours => {
                let (code, body) = self.ours.http_get(9091, "/metrics")?;
                if code != 200 {
                    bail!("calico-node /metrics answered {code}");
                }
                Ok(body
                    .lines()
                    .find_map(|l| l.strip_prefix("calico_bgp_loc_rib_routes "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .map(|v| v as u64)
                    .unwrap_or(0))
            }
        }
    }

    /// Polls until the FIB holds `fib_target` prefixes and the RIB `rib_done` holds; returns
    /// the seconds since `t0` at which each was first seen.
    fn wait_converged(
        &self,
        kind: Kind,
        pid: u32,
        t0: Instant,
        fib_target: u64,
        rib_done: impl Fn(u64) -> bool,
        what: &str,
    ) -> Result<(f64, f64, f64)> {
        let (mut fib_at, mut rib_at, mut first_at) = (None, None, None);
        let start_fib = fib_prefixes(pid)?;
        let mut last_rib_poll = Instant::now() - RIB_POLL;
        let mut last_progress = Instant::now();
        let (mut fib, mut rib) = (0, 0);
        loop {
            check_interrupted()?;
            let now = Instant::now();
            if fib_at.is_none() {
                fib = fib_prefixes(pid)?;
                if first_at.is_none() && fib != start_fib {
                    first_at = Some(now.duration_since(t0).as_secs_f64());
                }
                if fib == fib_target {
                    fib_at = Some(now.duration_since(t0).as_secs_f64());
                }
            }
            if rib_at.is_none() && now.duration_since(last_rib_poll) >= RIB_POLL {
                last_rib_poll = now;
                rib = self.rib_routes(kind)?;
                if rib_done(rib) {
                    rib_at = Some(Instant::now().duration_since(t0).as_secs_f64());
                }
            }
            if let (Some(f), Some(r)) = (fib_at, rib_at) {
                return Ok((r, f, first_at.unwrap_or(f)));
            }
            if now.duration_since(last_progress) >= Duration::from_secs(2) {
                last_progress = now;
                eprintln!(
                    "    … {what}: {:.1} s, FIB {fib} prefixes (want {fib_target}), RIB {rib}",
                    now.duration_since(t0).as_secs_f64()
                );
            }
            if now.duration_since(t0) > self.timeout {
                bail!(
                    "{} {what}: not converged after {:?} (FIB {fib}, want {fib_target}; RIB {rib})\n{}",
                    kind.label(),
                    self.timeout,
                    self.log_tail(kind)
                );
            }
            std::thread::sleep(FIB_POLL);
        }
    }

    fn sample(&mut self, kind: Kind, n: usize) -> Result<Sample> {
        if self.prefixes_cache.len() != n {
            self.prefixes_cache = prefixes(n);
        }
        let pid = self.start(kind)?;
        let r = self.measure(kind, n, pid);
        // Stop even when the measurement failed (the guards would too, at exit).
        let stopped = self.stop(kind);
        let s = r?;
        stopped?;
        Ok(s)
    }

    fn measure(&mut self, kind: Kind, n: usize, pid: u32) -> Result<Sample> {
        // Let start-up work (initial sync, first kernel scans) finish before the baseline.
        std::thread::sleep(Duration::from_secs(2));
        let base_fib = fib_prefixes(pid)?;
        let (rss_before, _) = rss_kib(pid)?;
        reset_peak_rss(pid)?;
        let cpu0 = cpu_seconds(pid)?;
        let threads0 = thread_cpu(pid)?;
        let prefixes = std::mem::take(&mut self.prefixes_cache);

        let t0 = Instant::now();
        let announced = self.originator.announce(&prefixes, None, &[]);
        let configure = t0.elapsed().as_secs_f64();
        if let Err(e) = announced {
            self.prefixes_cache = prefixes;
            return Err(e.into());
        }
        let target = base_fib + n as u64;
        let converged = self.wait_converged(kind, pid, t0, target, |r| r >= n as u64, "announce");
        let cpu1 = cpu_seconds(pid)?;
        let threads1 = thread_cpu(pid)?;
        let (_, mut peak) = rss_kib(pid)?;
        let mut held = 0;
        if converged.is_ok() {
            std::thread::sleep(Duration::from_secs(1));
            let (rss, hwm) = rss_kib(pid)?;
            (held, peak) = (rss, peak.max(hwm));
        }
        let cpu1b = cpu_seconds(pid)?;

        // Withdraw everything (also after a failure, so the next sample starts clean).
        let t1 = Instant::now();
        let withdrawn = self.originator.withdraw(&prefixes);
        self.prefixes_cache = prefixes;
        let (rib, fib, fib_first) = converged?;
        withdrawn?;
        let (_, wd, _) = self.wait_converged(kind, pid, t1, base_fib, |r| r == 0, "withdraw")?;
        let cpu2 = cpu_seconds(pid)?;
        let (after_withdraw, _) = rss_kib(pid)?;
        let routes_check = match kind {
            Kind::Ours => &self.ours,
            Kind::Bird => &self.theirs_node,
        }
        .ip(&["route", "show", "proto", kind.proto()])?
        .lines()
        .count();
        if routes_check != 0 {
            bail!(
                "{}: {routes_check} routes of proto {} left after the withdraw",
                kind.label(),
                kind.proto()
            );
        }
        Ok(Sample {
            kind,
            routes: n,
            configure,
            rib,
            fib,
            withdraw: wd,
            fib_first,
            cpu: (cpu1.0 + cpu1.1) - (cpu0.0 + cpu0.1),
            cpu_sys: cpu1.1 - cpu0.1,
            cpu_withdraw: (cpu2.0 + cpu2.1) - (cpu1b.0 + cpu1b.1),
            threads: thread_delta(&threads0, &threads1),
            rss_before_kib: rss_before,
            peak_kib: peak,
            held_kib: held,
            after_withdraw_kib: after_withdraw,
        })
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

/// A table in calicoctl's (go-pretty) style.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let sep = format!(
        "+{}+",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let line = |cells: Vec<String>| {
        let inner: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!(" {c}{} ", " ".repeat(w - c.chars().count())))
            .collect();
        format!("|{}|", inner.join("|"))
    };
    println!("{sep}");
    println!("{}", line(headers.iter().map(|h| h.to_string()).collect()));
    println!("{sep}");
    for r in rows {
        println!("{}", line(r.clone()));
    }
    println!("{sep}");
}

fn summarize(samples: &[Sample], routes: &[usize], idle: (u64, u64)) {
    let pick = |k: Kind, n: usize, f: &dyn Fn(&Sample) -> f64| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| s.kind == k && s.routes == n)
            .map(f)
            .collect()
    };
    let cell = |v: &[f64], digits: usize| {
        let (lo, hi) = range(v);
        format!(
            "{:.d$} ({:.d$}–{:.d$})",
            median(v.to_vec()),
            lo,
            hi,
            d = digits
        )
    };
    let mut rows = Vec::new();
    for &n in routes {
        for k in [Kind::Bird, Kind::Ours] {
            let fib = pick(k, n, &|s| s.fib);
            if fib.is_empty() {
                continue;
            }
            rows.push(vec![
                k.label().to_string(),
                n.to_string(),
                cell(&fib, 3),
                format!("{:.3}", median(pick(k, n, &|s| s.fib_first))),
                cell(&pick(k, n, &|s| s.rib), 2),
                cell(&pick(k, n, &|s| s.withdraw), 3),
                cell(&pick(k, n, &|s| s.cpu), 2),
                format!("{:.2}", median(pick(k, n, &|s| s.cpu_sys))),
                cell(&pick(k, n, &|s| s.cpu_withdraw), 2),
                format!("{:.1}", median(pick(k, n, &|s| mib(s.rss_before_kib)))),
                cell(&pick(k, n, &|s| mib(s.peak_kib)), 1),
                format!(
                    "{:.1}",
                    median(pick(k, n, &|s| mib(s.peak_kib) - mib(s.rss_before_kib)))
                ),
                format!("{:.1}", median(pick(k, n, &|s| mib(s.held_kib)))),
                format!("{:.1}", median(pick(k, n, &|s| mib(s.after_withdraw_kib)))),
                format!("{:.3}", median(pick(k, n, &|s| s.configure))),
            ]);
        }
    }
    println!("\nMedian (min–max) over {} round(s) per cell:", {
        samples.len() / (routes.len() * 2).max(1)
    });
    print_table(
        &[
            "RECEIVER",
            "ROUTES",
            "IN FIB (S)",
            "1ST IN FIB (S)",
            "IN RIB (S)",
            "WITHDRAWN (S)",
            "CPU (S)",
            "OF WHICH SYS",
            "CPU WD (S)",
            "RSS BEFORE (MIB)",
            "PEAK RSS (MIB)",
            "PEAK - BEFORE (MIB)",
            "HELD (MIB)",
            "AFTER WD (MIB)",
            "CONFIGURE (S)",
        ],
        &rows,
    );
    let mut ratio_rows = Vec::new();
    for &n in routes {
        let r = |f: &dyn Fn(&Sample) -> f64| {
            let (ours, theirs) = (
                median(pick(Kind::Ours, n, f)),
                median(pick(Kind::Bird, n, f)),
            );
            if theirs > 0.0 {
                format!("×{:.2}", ours / theirs)
            } else {
                format!("n/a ({ours:.2} vs 0)")
            }
        };
        if pick(Kind::Ours, n, &|s| s.fib).is_empty() || pick(Kind::Bird, n, &|s| s.fib).is_empty()
        {
            continue;
        }
        ratio_rows.push(vec![
            n.to_string(),
            r(&|s| s.fib),
            r(&|s| s.withdraw),
            r(&|s| s.cpu),
            r(&|s| s.cpu_withdraw),
            r(&|s| mib(s.peak_kib)),
            r(&|s| mib(s.peak_kib) - mib(s.rss_before_kib)),
        ]);
    }
    println!("\nOurs / BIRD (medians; below 1 = ours better):");
    print_table(
        &[
            "ROUTES",
            "IN FIB",
            "WITHDRAWN",
            "CPU",
            "CPU WD",
            "PEAK RSS",
            "PEAK - BEFORE",
        ],
        &ratio_rows,
    );
    for &n in routes {
        let ours: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.kind == Kind::Ours && s.routes == n)
            .collect();
        let mut names: Vec<&String> = ours
            .iter()
            .flat_map(|s| s.threads.iter().map(|(name, _, _)| name))
            .collect();
        names.sort();
        names.dedup();
        let mut parts: Vec<(f64, String)> = names
            .into_iter()
            .map(|name| {
                let of = |sys: bool| {
                    median(
                        ours.iter()
                            .map(|s| {
                                s.threads
                                    .iter()
                                    .find(|(t, _, _)| t == name)
                                    .map_or(0.0, |(_, c, k)| if sys { *k } else { *c })
                            })
                            .collect(),
                    )
                };
                let (m, sys) = (of(false), of(true));
                (m, format!("{name} {m:.2} s (sys {sys:.2})"))
            })
            .collect();
        parts.sort_by(|a, b| b.0.total_cmp(&a.0));
        if !parts.is_empty() {
            println!(
                "calico-node CPU by thread, {n} routes (medians): {}",
                parts
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    println!(
        "\ncalico-node idle (no BGP peer): {:.1} MiB RSS; with the session Established, no routes: {:.1} MiB.",
        mib(idle.0),
        mib(idle.1)
    );
    println!(
        "IN RIB resolution: BIRD {} ms polling of `show protocols all`; ours the calico_bgp_loc_rib_routes gauge, refreshed by calico-node's 250 ms status tick. IN FIB: {} ms polling of fib_triestat.",
        RIB_POLL.as_millis(),
        FIB_POLL.as_millis()
    );
}

fn main() -> Result<()> {
    let args = parse_args()?;
    if !nix::unistd::geteuid().is_root() {
        bail!("bgp-bench needs root (it builds network namespaces)");
    }
    watch_signals();
    let keep = std::env::var("BGP_BENCH_KEEP").as_deref() == Ok("1");
    let mut bench = Bench::new(args.timeout)?;
    let idle = bench.ours_idle_memory()?;
    eprintln!(
        "calico-node RSS {:.1} MiB without a peer, {:.1} MiB with the session up",
        mib(idle.0),
        mib(idle.1)
    );
    let mut samples = Vec::<Sample>::new();
    let total = args.routes.len() * args.rounds * 2;
    let mut done = 0;
    let run = (|| -> Result<()> {
        for &n in &args.routes {
            for round in 0..args.rounds {
                // Alternate who goes first, so slow drifts of the machine hit both alike.
                let order = if round % 2 == 0 {
                    [Kind::Ours, Kind::Bird]
                } else {
                    [Kind::Bird, Kind::Ours]
                };
                for kind in order {
                    done += 1;
                    eprintln!(
                        "[{done}/{total}] {n} routes, round {}/{}: {}",
                        round + 1,
                        args.rounds,
                        kind.label()
                    );
                    let s = bench.sample(kind, n)?;
                    eprintln!(
                        "    in RIB {:.2} s, in FIB {:.3} s (first {:.3} s), withdrawn {:.3} s, CPU {:.2} (sys {:.2}) + {:.2} s, RSS {:.1} → peak {:.1}, held {:.1}, after withdraw {:.1} MiB (configure {:.3} s)",
                        s.rib,
                        s.fib,
                        s.fib_first,
                        s.withdraw,
                        s.cpu,
                        s.cpu_sys,
                        s.cpu_withdraw,
                        mib(s.rss_before_kib),
                        mib(s.peak_kib),
                        mib(s.held_kib),
                        mib(s.after_withdraw_kib),
                        s.configure
                    );
                    if kind == Kind::Ours {
                        let t: Vec<String> = s
                            .threads
                            .iter()
                            .map(|(name, cpu, sys)| format!("{name} {cpu:.2} (sys {sys:.2})"))
                            .collect();
                        eprintln!("    CPU by thread: {}", t.join(", "));
                    }
                    samples.push(s);
                }
            }
        }
        Ok(())
    })();
    summarize(&samples, &args.routes, idle);
    if keep {
        let dir = PathBuf::from(format!("/tmp/bgp-bench-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(bench.ours.agent_log_path(), dir.join("calico-node.log"))?;
        std::fs::copy(
            bench.theirs.dir.join("bird.log"),
            dir.join("bird-receiver.log"),
        )?;
        std::fs::copy(bench.originator.log_path(), dir.join("bird-originator.log"))?;
        eprintln!("logs copied to {}", dir.display());
    }
    run
}
