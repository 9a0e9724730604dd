//! Real BGP peers for interop tests: BIRD 2, GoBGP and FRR, each run as a daemon inside a network
//! namespace the test created, configured from one neutral [`DaemonSpec`] and driven through
//! the [`BgpPeerDaemon`] trait (announce / withdraw at runtime, read session states and learned
//! routes, kill, restart with graceful restart).
//!
//! The binaries are Debian's packages unpacked (never installed: their service units would start
//! a daemon in the root namespace) by `scripts/install-deps.sh` into
//! `/var/cache/calico-rs/{bird2,gobgp,frr}`; `CALICO_BIRD_ROOT`, `CALICO_GOBGP_ROOT` and
//! `CALICO_FRR_ROOT` point elsewhere. Every daemon is started with `ip netns exec <ns>`, which
//! execs it in place, so the child's PID is the daemon's PID; it runs in the foreground and is
//! killed by that PID (and reaped) when its guard drops, also when a test panics. Its files
//! (configuration, control socket, log) live in a fresh temporary directory.
//!
//! Nothing here touches the root network namespace.
//!
//! ```no_run
//! use std::net::{IpAddr, Ipv4Addr};
//! use std::time::Duration;
//! use calico_e2e::bgp_peers::{BgpPeerDaemon, Bird, DaemonSpec, NeighborSpec, RouteAttrs};
//! # fn main() -> Result<(), calico_e2e::HarnessError> {
//! let me = IpAddr::from([10, 0, 0, 1]);
//! let node = IpAddr::from([10, 0, 0, 2]); // e.g. calico-node's speaker in another netns
//! let mut bird = Bird::start(
//!     &DaemonSpec::new("bgp-test-ns", Ipv4Addr::new(10, 0, 0, 1), 64512)
//!         .listen_address(me)
//!         .program_kernel()
//!         .neighbor(NeighborSpec::new(node, 64512).graceful_restart(120).add_paths()),
//! )?;
//! bird.wait_established(node, Duration::from_secs(20))?;
//! bird.announce_with(
//!     &["10.128.0.0/26".parse().map_err(|_| calico_e2e::HarnessError::Failed("cidr".into()))?],
//!     &RouteAttrs::default().community(64512, 100),
//! )?;
//! let learned = bird.wait_route(
//!     "10.244.0.0/26".parse().map_err(|_| calico_e2e::HarnessError::Failed("cidr".into()))?,
//!     Some(node),
//!     Duration::from_secs(10),
//! )?;
//! assert_eq!(learned.next_hop, Some(node));
//! bird.restart_graceful()?; // kill -9, then `bird -R`: the node must keep BIRD's routes
//! # Ok(())
//! # }
//! ```

mod bird;
mod frr;
mod gobgp;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;

pub use bird::Bird;
pub use frr::Frr;
pub use gobgp::Gobgp;

use crate::HarnessError;

/// One BGP neighbour of a daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborSpec {
    pub address: IpAddr,
    pub remote_as: u32,
    /// TCP-MD5 (RFC 2385) key.
    pub password: Option<String>,
    /// Only accept the connection, never open it.
    pub passive: bool,
    /// This neighbour is a route-reflector client of the daemon (RFC 4456; iBGP only).
    pub rr_client: bool,
    /// Graceful restart (RFC 4724) with this restart time in seconds; `None` disables GR
    /// entirely (not even helper mode), so a dead peer's routes go when its session does.
    pub graceful_restart: Option<u32>,
    /// Proposed hold time in seconds (BGP's minimum is 3); `None` keeps the daemon's default
    /// (BIRD 240 s, GoBGP 90 s, FRR 180 s).
    pub hold_time: Option<u16>,
    /// The neighbour's TCP port (default 179).
    pub port: Option<u16>,
    /// Negotiate ADD-PATH (RFC 7911) receive + send, as Calico's mesh does (`add paths on`).
    pub add_paths: bool,
}

impl NeighborSpec {
    /// An active, unauthenticated neighbour with the daemon's default timers and no GR.
    pub fn new(address: IpAddr, remote_as: u32) -> NeighborSpec {
        NeighborSpec {
            address,
            remote_as,
            password: None,
            passive: false,
            rr_client: false,
            graceful_restart: None,
            hold_time: None,
            port: None,
            add_paths: false,
        }
    }

    pub fn password(mut self, key: &str) -> NeighborSpec {
        self.password = Some(key.to_string());
        self
    }

    pub fn passive(mut self) -> NeighborSpec {
        self.passive = true;
        self
    }

    pub fn rr_client(mut self) -> NeighborSpec {
        self.rr_client = true;
        self
    }

    pub fn graceful_restart(mut self, restart_time_secs: u32) -> NeighborSpec {
        self.graceful_restart = Some(restart_time_secs);
        self
    }

    pub fn hold_time(mut self, secs: u16) -> NeighborSpec {
        self.hold_time = Some(secs);
        self
    }

    pub fn port(mut self, port: u16) -> NeighborSpec {
        self.port = Some(port);
        self
    }

    pub fn add_paths(mut self) -> NeighborSpec {
        self.add_paths = true;
        self
    }
}

/// One daemon: where it runs, who it is, whom it peers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonSpec {
    /// Name of the network namespace (`ip netns exec <netns>`), e.g. `TestNetns::name()`.
    pub netns: String,
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    /// Local address for the sessions of the same family (BIRD `local`, GoBGP
    /// `local-address`, FRR `update-source`; GoBGP also listens only there); `None`: the kernel
    /// picks the source. BIRD and FRR listen on every address either way.
    pub listen_address: Option<IpAddr>,
    pub listen_port: u16,
    pub neighbors: Vec<NeighborSpec>,
    /// Write the best BGP routes into the namespace's FIB (BIRD's `protocol kernel`, as in
    /// Calico; FRR through zebra, protocol `bgp`). GoBGP has no FIB writer of its own (that
    /// needs FRR's zebra): an error there.
    pub program_kernel: bool,
    /// Route-reflector cluster ID used towards `rr_client` neighbours (default: router ID).
    pub cluster_id: Option<Ipv4Addr>,
    /// GoBGP only: the gRPC API port on the namespace's loopback (default 50051). Each netns has
    /// its own loopback, so daemons in different namespaces may share it.
    pub api_port: Option<u16>,
}

impl DaemonSpec {
    /// A daemon listening on port 179 with no neighbours yet.
    pub fn new(netns: &str, router_id: Ipv4Addr, local_as: u32) -> DaemonSpec {
        DaemonSpec {
            netns: netns.to_string(),
            router_id,
            local_as,
            listen_address: None,
            listen_port: 179,
            neighbors: Vec::new(),
            program_kernel: false,
            cluster_id: None,
            api_port: None,
        }
    }

    pub fn neighbor(mut self, neighbor: NeighborSpec) -> DaemonSpec {
        self.neighbors.push(neighbor);
        self
    }

    pub fn listen_address(mut self, address: IpAddr) -> DaemonSpec {
        self.listen_address = Some(address);
        self
    }

    pub fn program_kernel(mut self) -> DaemonSpec {
        self.program_kernel = true;
        self
    }

    /// Checks what both daemons need; each adds its own restrictions.
    fn validate(&self) -> Result<(), HarnessError> {
        let bad = |what: String| Err(HarnessError::Failed(format!("invalid DaemonSpec: {what}")));
        if self.netns.is_empty() || self.netns.contains('/') {
            return bad(format!("netns name {:?}", self.netns));
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            if self.neighbors[..i].iter().any(|m| m.address == n.address) {
                return bad(format!("neighbor {} listed twice", n.address));
            }
            if n.rr_client && n.remote_as != self.local_as {
                return bad(format!(
                    "neighbor {} is an RR client but eBGP (AS {} vs local AS {})",
                    n.address, n.remote_as, self.local_as
                ));
            }
            if let Some(h) = n.hold_time
                && (1..3).contains(&h)
            {
                return bad(format!(
                    "neighbor {}: hold time {h} s (RFC 4271: 0 or at least 3)",
                    n.address
                ));
            }
            if let Some(p) = &n.password
                && (p.is_empty() || p.len() > 80 || p.contains(['"', '\\', '\n']))
            {
                return bad(format!(
                    "neighbor {}: password must be 1..=80 bytes without quotes, backslashes or newlines",
                    n.address
                ));
            }
        }
        Ok(())
    }

    fn neighbor_spec(&self, address: IpAddr) -> Result<&NeighborSpec, HarnessError> {
        self.neighbors
            .iter()
            .find(|n| n.address == address)
            .ok_or_else(|| {
                HarnessError::Failed(format!("{address} is not a neighbor of this daemon"))
            })
    }
}

/// A route a daemon learned from one of its neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedRoute {
    pub prefix: IpNet,
    /// The BGP NEXT_HOP as received (for IPv6, the global address of MP_REACH_NLRI).
    pub next_hop: Option<IpAddr>,
    /// AS_PATH flattened (sequence and set members in order).
    pub as_path: Vec<u32>,
    pub communities: Vec<(u16, u16)>,
    pub large_communities: Vec<(u32, u32, u32)>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// ORIGINATOR_ID and CLUSTER_LIST (RFC 4456), set by route reflectors.
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// The neighbour it came from.
    pub from: IpAddr,
    /// GoBGP marks routes it keeps for a restarting peer (RFC 4724 helper) as stale; BIRD's CLI
    /// does not show that flag: `None` there.
    pub stale: Option<bool>,
}

impl LearnedRoute {
    /// A route with no attributes yet (the parsers fill them in).
    fn empty(prefix: IpNet, from: IpAddr, stale: Option<bool>) -> LearnedRoute {
        LearnedRoute {
            prefix,
            next_hop: None,
            as_path: Vec::new(),
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
            med: None,
            originator_id: None,
            cluster_list: Vec::new(),
            from,
            stale,
        }
    }
}

/// The attributes a daemon originates a prefix with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    /// NEXT_HOP; `None`: the daemon's own address on each session.
    pub next_hop: Option<IpAddr>,
    pub communities: Vec<(u16, u16)>,
    pub large_communities: Vec<(u32, u32, u32)>,
    /// The AS_PATH the route is originated with (BIRD prepends these on export, GoBGP
    /// originates with this path); on eBGP each daemon puts its own AS in front as usual.
    pub as_path: Vec<u32>,
    /// LOCAL_PREF (only iBGP carries it).
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
}

impl RouteAttrs {
    pub fn next_hop(mut self, next_hop: IpAddr) -> RouteAttrs {
        self.next_hop = Some(next_hop);
        self
    }

    pub fn community(mut self, high: u16, low: u16) -> RouteAttrs {
        self.communities.push((high, low));
        self
    }

    pub fn large_community(mut self, global: u32, data1: u32, data2: u32) -> RouteAttrs {
        self.large_communities.push((global, data1, data2));
        self
    }

    pub fn as_path(mut self, path: &[u32]) -> RouteAttrs {
        self.as_path = path.to_vec();
        self
    }

    pub fn local_pref(mut self, local_pref: u32) -> RouteAttrs {
        self.local_pref = Some(local_pref);
        self
    }

    pub fn med(mut self, med: u32) -> RouteAttrs {
        self.med = Some(med);
        self
    }

    /// Whether nothing but the defaults is set.
    fn is_default(&self) -> bool {
        *self == RouteAttrs::default()
    }
}

/// A BGP daemon peering with the code under test. BIRD, GoBGP and FRR implement it.
pub trait BgpPeerDaemon {
    /// Writes the configuration and starts the daemon in `spec.netns`.
    fn start(spec: &DaemonSpec) -> Result<Self, HarnessError>
    where
        Self: Sized;
    /// Originates `prefixes` (to every neighbour) with NEXT_HOP `next_hop` (`None`: the daemon's
    /// own address on the session) and the given standard communities. Announcing a prefix
    /// again replaces its attributes.
    fn announce(
        &mut self,
        prefixes: &[IpNet],
        next_hop: Option<IpAddr>,
        communities: &[(u16, u16)],
    ) -> Result<(), HarnessError> {
        let attrs = RouteAttrs {
            next_hop,
            communities: communities.to_vec(),
            ..RouteAttrs::default()
        };
        self.announce_with(prefixes, &attrs)
    }
    /// Originates `prefixes` with all of `attrs` (replacing earlier attributes of a prefix).
    fn announce_with(&mut self, prefixes: &[IpNet], attrs: &RouteAttrs)
    -> Result<(), HarnessError>;
    /// Stops originating `prefixes` (unknown ones are an error).
    fn withdraw(&mut self, prefixes: &[IpNet]) -> Result<(), HarnessError>;
    /// The session's FSM state as RFC 4271 names it: `Idle`, `Connect`, `Active`, `OpenSent`,
    /// `OpenConfirm`, `Established` (BIRD may also say `Close`/`Down`).
    fn session_state(&self, neighbor: IpAddr) -> Result<String, HarnessError>;
    /// Polls [`BgpPeerDaemon::session_state`] until `Established`.
    fn wait_established(&self, neighbor: IpAddr, timeout: Duration) -> Result<(), HarnessError> {
        let mut last = String::new();
        let r = wait_until(timeout, || {
            last = self.session_state(neighbor)?;
            Ok((last == "Established").then_some(()))
        });
        r.map_err(|e| {
            HarnessError::Failed(format!(
                "{} session to {neighbor} not Established after {timeout:?} (last state {last:?}): {e}\n{} log tail:\n{}",
                self.kind(),
                self.kind(),
                self.log_tail()
            ))
        })
    }
    /// Every route learned from any neighbour (all paths, not only the best).
    fn received_routes(&self) -> Result<Vec<LearnedRoute>, HarnessError>;
    /// Polls until a route for `prefix` learned from `from` (any neighbour when `None`) is
    /// present, and returns it.
    fn wait_route(
        &self,
        prefix: IpNet,
        from: Option<IpAddr>,
        timeout: Duration,
    ) -> Result<LearnedRoute, HarnessError> {
        wait_until(timeout, || {
            Ok(self
                .received_routes()?
                .into_iter()
                .find(|r| r.prefix == prefix && from.is_none_or(|f| f == r.from)))
        })
        .map_err(|e| {
            HarnessError::Failed(format!(
                "{} did not learn {prefix} in {timeout:?}: {e}",
                self.kind()
            ))
        })
    }
    /// Polls until no neighbour's route for `prefix` is left.
    fn wait_no_route(&self, prefix: IpNet, timeout: Duration) -> Result<(), HarnessError> {
        wait_until(timeout, || {
            Ok((!self.received_routes()?.iter().any(|r| r.prefix == prefix)).then_some(()))
        })
        .map_err(|e| {
            HarnessError::Failed(format!(
                "{} still holds {prefix} after {timeout:?}: {e}",
                self.kind()
            ))
        })
    }
    /// Graceful restart as RFC 4724 tests it: SIGKILL (no NOTIFICATION, so peers keep the
    /// routes for the restart time) unless already killed by [`BgpPeerDaemon::kill`], then
    /// start again announcing a restart (BIRD `-R`, gobgpd `--graceful-restart`) and
    /// originate the same prefixes again.
    fn restart_graceful(&mut self) -> Result<(), HarnessError>;
    /// Clean restart: SIGTERM (the daemon sends Cease to its peers), then start again.
    fn restart(&mut self) -> Result<(), HarnessError>;
    /// SIGKILL, no restart. Queries afterwards fail.
    fn kill(&mut self) -> Result<(), HarnessError>;
    /// SIGSTOP: the daemon stays connected but sends nothing, so its peers' hold timers expire
    /// (a SIGKILL instead closes the TCP connection at once).
    fn freeze(&mut self) -> Result<(), HarnessError>;
    /// SIGCONT after [`BgpPeerDaemon::freeze`].
    fn thaw(&mut self) -> Result<(), HarnessError>;
    /// PID of the daemon (of the last one started, after a kill).
    fn pid(&self) -> u32;
    /// The daemon's full view of one session, as text (BIRD: `show protocols all <name>`;
    /// GoBGP: `-j neighbor <address>`), for assertions on capabilities and counters.
    fn neighbor_details(&self, neighbor: IpAddr) -> Result<String, HarnessError>;
    /// `"BIRD"` / `"GoBGP"`, for messages.
    fn kind(&self) -> &'static str;
    /// The last lines of the daemon's log, for failure messages.
    fn log_tail(&self) -> String;
}

/// Every prefix must have the family of `next_hop` (IPv4 routes with IPv6 next hops, RFC 8950,
/// are not supported by this harness), and there must be at least one.
fn check_next_hop(prefixes: &[IpNet], next_hop: Option<IpAddr>) -> Result<(), HarnessError> {
    if prefixes.is_empty() {
        return Err(HarnessError::Failed("announce: no prefixes given".into()));
    }
    if let Some(nh) = next_hop
        && let Some(p) = prefixes
            .iter()
            .find(|p| matches!(p, IpNet::V6(_)) != nh.is_ipv6())
    {
        return Err(HarnessError::Failed(format!(
            "announce: next hop {nh} and prefix {p} are of different families"
        )));
    }
    Ok(())
}

/// Withdrawing what was never announced is a test bug: say so.
fn check_withdraw(
    announced: &std::collections::BTreeMap<IpNet, RouteAttrs>,
    prefixes: &[IpNet],
) -> Result<(), HarnessError> {
    match prefixes
        .iter()
        .find(|p| !announced.contains_key(&p.trunc()))
    {
        Some(p) => Err(HarnessError::Failed(format!(
            "withdraw: {p} was not announced"
        ))),
        None => Ok(()),
    }
}

/// Joins two namespaces with a veth pair (`a_if` in `a_ns`, `b_if` in `b_ns`; no end in the
/// root namespace at any time), gives each end its address (`10.0.0.1/24`, `fd00::1/64`, ...;
/// IPv6 without duplicate address detection so it is usable at once) and brings both up.
pub fn connect(
    a_ns: &str,
    a_if: &str,
    a_addrs: &[&str],
    b_ns: &str,
    b_if: &str,
    b_addrs: &[&str],
) -> Result<(), HarnessError> {
    crate::run_checked(Command::new("ip").args([
        "link", "add", a_if, "netns", a_ns, "type", "veth", "peer", "name", b_if, "netns", b_ns,
    ]))?;
    for (ns, dev, addrs) in [(a_ns, a_if, a_addrs), (b_ns, b_if, b_addrs)] {
        for a in addrs {
            let mut cmd = Command::new("ip");
            cmd.args(["-n", ns, "addr", "add", a, "dev", dev]);
            if a.contains(':') {
                cmd.arg("nodad");
            }
            crate::run_checked(&mut cmd)?;
        }
        crate::run_checked(Command::new("ip").args(["-n", ns, "link", "set", dev, "up"]))?;
    }
    Ok(())
}

/// A kernel route in a namespace's main table, as `ip -j route show` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibRoute {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
    pub dev: Option<String>,
    /// `bird`, `kernel`, `boot`, `static`, a number...
    pub protocol: String,
    pub metric: Option<u32>,
    /// `blackhole`, `unreachable`, ... (`None` for unicast).
    pub kind: Option<String>,
}

/// Every IPv4 and IPv6 route of the main table in `netns`.
pub fn fib_routes(netns: &str) -> Result<Vec<FibRoute>, HarnessError> {
    let mut out = Vec::new();
    for family in ["-4", "-6"] {
        let json = crate::run_checked(
            Command::new("ip")
                .args([family, "-j", "-n", netns])
                .args(["route", "show", "table", "main"]),
        )?;
        out.extend(parse_ip_routes(&json, family == "-6")?);
    }
    Ok(out)
}

/// Polls [`fib_routes`] of `netns` until `pred` holds for them, and returns them.
pub fn wait_fib(
    netns: &str,
    timeout: Duration,
    pred: impl Fn(&[FibRoute]) -> bool,
) -> Result<Vec<FibRoute>, HarnessError> {
    wait_until(timeout, || {
        let routes = fib_routes(netns)?;
        Ok(pred(&routes).then_some(routes))
    })
}

fn parse_ip_routes(json: &str, v6: bool) -> Result<Vec<FibRoute>, HarnessError> {
    let json = json.trim();
    if json.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<serde_json::Value> = serde_json::from_str(json)
        .map_err(|e| HarnessError::Failed(format!("parsing `ip -j route`: {e}: {json}")))?;
    let mut out = Vec::new();
    for row in rows {
        let str_of = |k: &str| row.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let Some(dst) = str_of("dst") else { continue };
        let dst = if dst == "default" {
            if v6 { "::/0" } else { "0.0.0.0/0" }.to_string()
        } else {
            dst
        };
        let dst = dst
            .parse::<IpNet>()
            .or_else(|_| dst.parse::<IpAddr>().map(IpNet::from))
            .map_err(|e| HarnessError::Failed(format!("bad dst {dst:?} from ip: {e}")))?;
        let gateway = match str_of("gateway") {
            Some(g) => Some(
                g.parse::<IpAddr>()
                    .map_err(|e| HarnessError::Failed(format!("bad gateway {g:?}: {e}")))?,
            ),
            None => None,
        };
        out.push(FibRoute {
            dst,
            gateway,
            dev: str_of("dev"),
            protocol: str_of("protocol").unwrap_or_else(|| "boot".to_string()),
            metric: row
                .get("metric")
                .and_then(serde_json::Value::as_u64)
                .and_then(|m| u32::try_from(m).ok()),
            kind: str_of("type").filter(|t| t != "unicast"),
        });
    }
    Ok(out)
}

/// Calls `f` every 100 ms until it yields `Some` (returned) or `timeout` passes (the last error
/// of `f`, if any, is in the failure).
pub fn wait_until<T>(
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>, HarnessError>,
) -> Result<T, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if Instant::now() >= deadline {
            return Err(HarnessError::Failed(match last {
                Some(e) => format!("timed out after {timeout:?}; last error: {e}"),
                None => format!("timed out after {timeout:?}"),
            }));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How long a daemon's CLI may take before it counts as hung (e.g. BIRD frozen by
/// [`BgpPeerDaemon::freeze`] accepts the control connection but never answers).
const CLI_TIMEOUT: Duration = Duration::from_secs(15);

/// [`run_with_timeout`] with [`CLI_TIMEOUT`].
fn run_cli(cmd: &mut Command) -> Result<String, HarnessError> {
    run_with_timeout(cmd, CLI_TIMEOUT)
}

/// Like [`crate::run_checked`], but the command is SIGKILLed (by its PID) and an error returned
/// when it has not finished within `timeout`.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<String, HarnessError> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("running {what}")))?;
    // Drain both pipes while waiting, so a large answer cannot block the child.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child
            .try_wait()
            .map_err(io(format!("waiting for {what}")))?
        {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HarnessError::Failed(format!(
                    "{what} did not answer within {timeout:?}"
                )));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        return Err(HarnessError::Command(
            what,
            String::from_utf8_lossy(&err).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Where Debian's bird2 package is unpacked.
pub fn bird_root() -> PathBuf {
    std::env::var_os("CALICO_BIRD_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/calico-rs/bird2"))
}

/// Where Debian's frr package (with libyang2 and libc-ares2) is unpacked.
pub fn frr_root() -> PathBuf {
    std::env::var_os("CALICO_FRR_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/calico-rs/frr"))
}

/// Where Debian's gobgpd package is unpacked.
pub fn gobgp_root() -> PathBuf {
    std::env::var_os("CALICO_GOBGP_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/calico-rs/gobgp"))
}

fn require_file(path: &Path, what: &str) -> Result<(), HarnessError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(HarnessError::MissingTool(format!(
            "{what} ({} not found)",
            path.display()
        )))
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |e| HarnessError::Io(what, e)
}

/// A daemon process started in a namespace: SIGKILLed by PID and reaped on drop.
#[derive(Debug)]
struct DaemonProcess {
    child: Child,
}

impl DaemonProcess {
    /// `ip netns exec <netns> <program> <args>` with `envs` added to the environment, stdout
    /// and stderr appended to `log`.
    fn spawn(
        netns: &str,
        program: &Path,
        args: &[&std::ffi::OsStr],
        envs: &[(&str, &std::ffi::OsStr)],
        log: &Path,
    ) -> Result<DaemonProcess, HarnessError> {
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io(format!("opening {}", log.display())))?;
        let err = out.try_clone().map_err(io("cloning the log handle"))?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io(format!("starting {} in {netns}", program.display())))?;
        Ok(DaemonProcess { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), HarnessError> {
        let pid = i32::try_from(self.child.id())
            .map_err(|_| HarnessError::Failed("PID out of range".into()))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
            .map_err(|e| HarnessError::Failed(format!("sending {signal:?} to {pid}: {e}")))
    }

    /// Fails when the daemon has already exited (e.g. rejected its configuration).
    fn check_running(&mut self, what: &str, log: &Path) -> Result<(), HarnessError> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(HarnessError::Failed(format!(
                "{what} exited ({status}); log tail:\n{}",
                tail(log, 30)
            ))),
            Err(e) => Err(HarnessError::Io(format!("waiting for {what}"), e)),
        }
    }

    /// Sends `signal` and waits up to `grace` for the exit; SIGKILL after that.
    fn stop(mut self, signal: nix::sys::signal::Signal, grace: Duration) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Drop does the SIGKILL and the reaping.
    }
}

/// The process of a peer daemon and the lifecycle all of them share behind
/// [`BgpPeerDaemon`]: running check, kill, freeze/thaw, stop for a restart, and the PID of the
/// last one started (which [`BgpPeerDaemon::pid`] keeps reporting after a kill).
#[derive(Debug)]
struct Supervised {
    process: Option<DaemonProcess>,
    /// PID of the last process started.
    last_pid: u32,
    /// Name in "exited" errors, e.g. `BIRD`.
    what: &'static str,
    /// Where the process's output goes (tailed in errors).
    log: PathBuf,
}

impl Supervised {
    fn new(what: &'static str, log: PathBuf) -> Supervised {
        Supervised {
            process: None,
            last_pid: 0,
            what,
            log,
        }
    }

    /// Takes over a process that came up.
    fn set(&mut self, process: DaemonProcess) {
        self.process = Some(process);
    }

    /// Fails when there is no process or it has exited.
    fn running(&mut self) -> Result<(), HarnessError> {
        match self.process.as_mut() {
            Some(p) => p.check_running(self.what, &self.log),
            None => Err(HarnessError::Failed(format!(
                "{} is not running",
                self.what
            ))),
        }
    }

    /// Drops the process: SIGKILL and reap (a no-op when there is none).
    fn clear(&mut self) {
        self.process = None;
    }

    /// SIGKILL a running process.
    fn kill(&mut self) -> Result<(), HarnessError> {
        self.running()?;
        self.clear();
        Ok(())
    }

    /// SIGTERM a running process and wait for it (before starting it again).
    fn stop(&mut self) -> Result<(), HarnessError> {
        self.running()?;
        if let Some(p) = self.process.take() {
            p.stop(nix::sys::signal::Signal::SIGTERM, Duration::from_secs(5));
        }
        Ok(())
    }

    fn freeze(&mut self) -> Result<(), HarnessError> {
        self.running()?;
        self.process
            .as_ref()
            .map_or(Ok(()), |p| p.signal(nix::sys::signal::Signal::SIGSTOP))
    }

    fn thaw(&self) -> Result<(), HarnessError> {
        self.process
            .as_ref()
            .map_or(Ok(()), |p| p.signal(nix::sys::signal::Signal::SIGCONT))
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Child::kill sends SIGKILL to this PID only.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a text file ("" when unreadable).
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ip_json_routes_parse() {
        let json = r#"[{"dst":"default","dev":"eth0","scope":"link","flags":[]},
            {"dst":"10.64.0.0/26","gateway":"10.0.0.2","dev":"va","protocol":"bird","metric":32,"flags":[]},
            {"type":"blackhole","dst":"10.65.0.1","protocol":"static","flags":[]}]"#;
        let r = parse_ip_routes(json, false).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].dst, "0.0.0.0/0".parse::<IpNet>().unwrap());
        assert_eq!(r[0].protocol, "boot");
        assert_eq!(r[1].gateway, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(r[1].metric, Some(32));
        assert_eq!(r[1].protocol, "bird");
        assert_eq!(r[2].dst, "10.65.0.1/32".parse::<IpNet>().unwrap());
        assert_eq!(r[2].kind.as_deref(), Some("blackhole"));
        assert!(parse_ip_routes("", true).unwrap().is_empty());
        assert!(parse_ip_routes("[{\"dst\":\"nonsense\"}]", false).is_err());
    }

    #[test]
    fn spec_validation_names_the_problem() {
        let base = DaemonSpec::new("ns1", Ipv4Addr::new(10, 0, 0, 1), 64512);
        let n = NeighborSpec::new("10.0.0.2".parse().unwrap(), 64512);
        assert!(base.clone().neighbor(n.clone()).validate().is_ok());
        let e = base
            .clone()
            .neighbor(n.clone())
            .neighbor(n.clone())
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = base
            .clone()
            .neighbor(NeighborSpec::new("10.0.0.3".parse().unwrap(), 65000).rr_client())
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("RR client but eBGP"), "{e}");
        let e = base
            .clone()
            .neighbor(n.clone().hold_time(2))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("hold time 2"), "{e}");
        let e = base
            .clone()
            .neighbor(n.clone().password("a\"b"))
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("password"), "{e}");
        let mut bad = base.clone();
        bad.netns = "a/b".into();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn cli_runner_times_out_and_reports_failures() {
        let quick = Duration::from_secs(5);
        let out = run_with_timeout(Command::new("sh").args(["-c", "echo hi"]), quick).unwrap();
        assert_eq!(out, "hi\n");
        let e = run_with_timeout(
            Command::new("sh").args(["-c", "echo oops >&2; exit 3"]),
            quick,
        )
        .unwrap_err();
        assert!(e.to_string().contains("oops"), "{e}");
        let started = Instant::now();
        let e = run_with_timeout(Command::new("sleep").arg("30"), Duration::from_millis(200))
            .unwrap_err();
        assert!(e.to_string().contains("did not answer"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // A large answer does not block the child.
        let big = run_with_timeout(
            Command::new("sh").args(["-c", "head -c 1000000 /dev/zero"]),
            quick,
        )
        .unwrap();
        assert_eq!(big.len(), 1_000_000);
    }

    #[test]
    fn wait_until_reports_the_last_error() {
        let mut n = 0;
        let v = wait_until(Duration::from_secs(2), || {
            n += 1;
            Ok((n == 3).then_some(n))
        })
        .unwrap();
        assert_eq!(v, 3);
        let e = wait_until::<()>(Duration::from_millis(150), || {
            Err(HarnessError::Failed("boom".into()))
        })
        .unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
    }
}
