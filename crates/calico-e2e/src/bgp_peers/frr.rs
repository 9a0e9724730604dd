//! FRR 8 as a test peer: `zebra` (the FIB manager) and `bgpd`, both from Debian's `frr`
//! package unpacked with its libraries (libyang2, libc-ares2) by `scripts/install-deps.sh` and
//! found through `LD_LIBRARY_PATH`. A generated `bgpd.conf` sets the session up; runtime
//! changes and every query go through bgpd's VTY Unix socket, speaking the framing vtysh uses
//! (a NUL-terminated command; the answer ends in three NUL bytes and a status byte), so neither
//! vtysh (PAM, `/etc/frr`) nor Python is needed.
//!
//! The daemons insist on the `frrvty` group existing; it is not added to the system. Instead each
//! daemon starts in the private mount namespace `ip netns exec` creates (mount propagation is
//! one-way into it), where a copy of `/etc/group` with that group is bind-mounted first.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use super::Supervised;
use super::{
    BgpPeerDaemon, DaemonProcess, DaemonSpec, LearnedRoute, RouteAttrs, io, require_file, tail,
    wait_until,
};
use crate::HarnessError;

/// zebra + bgpd in a namespace; both killed by PID on drop (bgpd first).
#[derive(Debug)]
pub struct Frr {
    spec: DaemonSpec,
    dir: tempfile::TempDir,
    root: PathBuf,
    // Field order is drop order: bgpd goes before zebra.
    bgpd: Supervised,
    zebra: Option<DaemonProcess>,
    announced: BTreeMap<IpNet, RouteAttrs>,
}

/// Shell prologue run inside `ip netns exec`'s private mount namespace: bind-mount the group
/// file given as `$0` over `/etc/group`, then become the daemon (same PID).
const GROUP_WRAPPER: &str = "mount --bind \"$0\" /etc/group && exec \"$@\"";

impl Frr {
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("frr.log")
    }

    /// Runs bgpd VTY commands (as `vtysh -c` would, one after the other on one connection)
    /// and returns each one's output. A command FRR rejects is an error naming it.
    pub fn vty(&self, commands: &[&str]) -> Result<Vec<String>, HarnessError> {
        vty(&self.dir.path().join("bgpd.vty"), commands)
    }

    /// Has bgpd check (`--dryrun`) the configuration `spec` generates.
    pub fn check_config(spec: &DaemonSpec, announced: &[IpNet]) -> Result<(), HarnessError> {
        spec.validate()?;
        let root = super::frr_root();
        let bgpd = root.join("usr/lib/frr/bgpd");
        require_file(&bgpd, "FRR bgpd (scripts/install-deps.sh unpacks frr)")?;
        let dir = tempfile::tempdir().map_err(io("creating a temporary directory"))?;
        let ann = announced
            .iter()
            .map(|p| (p.trunc(), RouteAttrs::default()))
            .collect();
        let conf = dir.path().join("bgpd.conf");
        let text = config(spec, &dir.path().join("frr.log"), &ann);
        std::fs::write(&conf, &text).map_err(io("writing bgpd.conf"))?;
        let out = std::process::Command::new(&bgpd)
            .env("LD_LIBRARY_PATH", library_path(&root))
            // -S: no privilege drop, so no frrvty group needed for a parse-only run.
            .args(["-S", "-C", "-f"])
            .arg(&conf)
            .arg("--vty_socket")
            .arg(dir.path())
            .output()
            .map_err(io("running bgpd --dryrun"))?;
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // bgpd exits 0 even for a bad line; it logs "No such command on config line N" with
        // an error code ("[EC ...]") instead.
        let rejected = ["No such command", "[EC ", "Error", "Unknown command"]
            .iter()
            .any(|m| all.contains(m));
        if out.status.success() && !rejected {
            Ok(())
        } else {
            Err(HarnessError::Failed(format!(
                "bgpd rejects the configuration: {all}\n{text}"
            )))
        }
    }

    fn spawn(&self, daemon: &str, args: &[&OsStr]) -> Result<DaemonProcess, HarnessError> {
        let d = self.dir.path();
        let program = self.root.join("usr/lib/frr").join(daemon);
        let group = d.join("group");
        let pid_file = d.join(format!("{daemon}.pid"));
        let mut full: Vec<&OsStr> = vec![
            OsStr::new("-c"),
            OsStr::new(GROUP_WRAPPER),
            group.as_os_str(),
            program.as_os_str(),
            OsStr::new("-i"),
            pid_file.as_os_str(),
            OsStr::new("--vty_socket"),
            d.as_os_str(),
            OsStr::new("-u"),
            OsStr::new("root"),
            OsStr::new("-g"),
            OsStr::new("root"),
            // No TCP VTY: the Unix socket is enough.
            OsStr::new("-A"),
            OsStr::new("127.0.0.1"),
            OsStr::new("-P"),
            OsStr::new("0"),
        ];
        full.extend_from_slice(args);
        let lib = library_path(&self.root);
        DaemonProcess::spawn(
            &self.spec.netns,
            Path::new("/bin/sh"),
            &full,
            &[("LD_LIBRARY_PATH", lib.as_os_str())],
            &d.join(format!("{daemon}.out")),
        )
    }

    fn wait_vty(
        &self,
        daemon: &str,
        process: &mut DaemonProcess,
        log: &Path,
    ) -> Result<(), HarnessError> {
        let sock = self.dir.path().join(format!("{daemon}.vty"));
        wait_until(Duration::from_secs(10), || {
            process.check_running(daemon, log)?;
            Ok(vty(&sock, &["show version"]).ok().map(|_| ()))
        })
        .map_err(|e| {
            HarnessError::Failed(format!(
                "FRR {daemon} did not come up: {e}\nfrr.log:\n{}",
                tail(&self.log_path(), 30)
            ))
        })
    }

    fn launch_zebra(&mut self) -> Result<(), HarnessError> {
        let d = self.dir.path().to_path_buf();
        let conf = d.join("zebra.conf");
        let zserv = d.join("zserv.api");
        let mut z = self.spawn(
            "zebra",
            &[
                OsStr::new("-f"),
                conf.as_os_str(),
                OsStr::new("-z"),
                zserv.as_os_str(),
            ],
        )?;
        self.wait_vty("zebra", &mut z, &d.join("zebra.out"))?;
        self.zebra = Some(z);
        Ok(())
    }

    fn launch_bgpd(&mut self) -> Result<(), HarnessError> {
        let d = self.dir.path().to_path_buf();
        std::fs::write(
            d.join("bgpd.conf"),
            config(&self.spec, &self.log_path(), &self.announced),
        )
        .map_err(io("writing bgpd.conf"))?;
        let conf = d.join("bgpd.conf");
        let zserv = d.join("zserv.api");
        let port = self.spec.listen_port.to_string();
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("-f"),
            conf.as_os_str(),
            OsStr::new("-z"),
            zserv.as_os_str(),
            OsStr::new("-p"),
            OsStr::new(&port),
        ];
        if !self.spec.program_kernel {
            // bgpd still asks zebra about next hops, but installs nothing.
            args.push(OsStr::new("--no_kernel"));
        }
        let mut b = self.spawn("bgpd", &args)?;
        self.bgpd.last_pid = b.pid();
        self.wait_vty("bgpd", &mut b, &d.join("bgpd.out"))?;
        self.bgpd.set(b);
        // bgpd starts even when lines of its configuration fail; each such line is logged
        // "... on config line N: <line>". A half-applied configuration must not pass silently.
        let logs = format!(
            "{}\n{}",
            std::fs::read_to_string(d.join("bgpd.out")).unwrap_or_default(),
            std::fs::read_to_string(self.log_path()).unwrap_or_default()
        );
        let failed: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("on config line"))
            .collect();
        if !failed.is_empty() {
            return Err(HarnessError::Failed(format!(
                "bgpd rejected configuration lines:\n{}",
                failed.join("\n")
            )));
        }
        Ok(())
    }

    fn running(&mut self) -> Result<(), HarnessError> {
        self.bgpd.running()
    }

    /// Brings bgpd's `network` statements (and their route-maps) to `self.announced` for
    /// `prefixes`, which were just changed.
    fn apply(&self, prefixes: &[IpNet]) -> Result<(), HarnessError> {
        let mut cmds: Vec<String> = vec!["enable".into(), "configure terminal".into()];
        for p in prefixes {
            if let Some(a) = self.announced.get(&p.trunc())
                && !a.is_default()
            {
                cmds.extend(route_map(a).lines().map(|l| l.trim().to_string()));
            }
        }
        cmds.push(format!("router bgp {}", self.spec.local_as));
        for p in prefixes {
            let p = p.trunc();
            cmds.push(format!("address-family {} unicast", family(p)));
            cmds.push(match self.announced.get(&p) {
                Some(a) => network_line(p, a),
                None => format!("no network {p}"),
            });
            cmds.push("exit-address-family".into());
        }
        cmds.push("end".into());
        let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
        self.vty(&cmds).map(|_| ())
    }
}

fn family(p: IpNet) -> &'static str {
    match p {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

/// `usr/lib/<triplet>` and `usr/lib/<triplet>/frr` under `root`, for `LD_LIBRARY_PATH`.
fn library_path(root: &Path) -> OsString {
    let lib = root.join("usr/lib");
    let triplets: Vec<PathBuf> = std::fs::read_dir(&lib)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().ends_with("-linux-gnu"))
                })
                .collect()
        })
        .unwrap_or_default();
    let dirs = triplets
        .iter()
        .flat_map(|t| [t.clone(), t.join("frr")])
        .collect::<Vec<_>>();
    std::env::join_paths(dirs).unwrap_or_default()
}

/// Name of the route-map that sets `a` (derived from its content, so redefining it is
/// idempotent).
fn route_map_name(a: &RouteAttrs) -> String {
    // DefaultHasher::new() has fixed keys: the same attributes give the same name.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    a.hash(&mut h);
    format!("HARNESS_{:016x}", h.finish())
}

/// The `route-map ... permit 10` block setting `a`.
fn route_map(a: &RouteAttrs) -> String {
    let mut c = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(c, "route-map {} permit 10", route_map_name(a));
    match a.next_hop {
        Some(IpAddr::V4(nh)) => {
            let _ = writeln!(c, " set ip next-hop {nh}");
        }
        Some(IpAddr::V6(nh)) => {
            let _ = writeln!(c, " set ipv6 next-hop global {nh}");
        }
        None => {}
    }
    if !a.communities.is_empty() {
        let list: Vec<String> = a
            .communities
            .iter()
            .map(|(x, y)| format!("{x}:{y}"))
            .collect();
        let _ = writeln!(c, " set community {}", list.join(" "));
    }
    if !a.large_communities.is_empty() {
        let list: Vec<String> = a
            .large_communities
            .iter()
            .map(|(x, y, z)| format!("{x}:{y}:{z}"))
            .collect();
        let _ = writeln!(c, " set large-community {}", list.join(" "));
    }
    if !a.as_path.is_empty() {
        let list: Vec<String> = a.as_path.iter().map(ToString::to_string).collect();
        let _ = writeln!(c, " set as-path prepend {}", list.join(" "));
    }
    if let Some(lp) = a.local_pref {
        let _ = writeln!(c, " set local-preference {lp}");
    }
    if let Some(med) = a.med {
        let _ = writeln!(c, " set metric {med}");
    }
    let _ = writeln!(c, "exit");
    c
}

fn network_line(p: IpNet, a: &RouteAttrs) -> String {
    if a.is_default() {
        format!("network {p}")
    } else {
        format!("network {p} route-map {}", route_map_name(a))
    }
}

/// The whole `bgpd.conf` for `spec` originating `announced`.
pub(super) fn config(
    spec: &DaemonSpec,
    log: &Path,
    announced: &BTreeMap<IpNet, RouteAttrs>,
) -> String {
    let mut c = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(c, "frr defaults traditional\nhostname calico-e2e-frr");
    let _ = writeln!(c, "log file {} informational\n!", log.display());
    let mut maps: Vec<String> = announced
        .values()
        .filter(|a| !a.is_default())
        .map(route_map)
        .collect();
    maps.sort();
    maps.dedup();
    for m in maps {
        let _ = writeln!(c, "{m}!");
    }
    let _ = writeln!(c, "router bgp {}", spec.local_as);
    let _ = writeln!(c, " bgp router-id {}", spec.router_id);
    // Like the other daemons here: no RFC 8212 default-deny on eBGP, originate without
    // requiring the prefix in the RIB, families enabled per neighbour.
    let _ = writeln!(c, " no bgp ebgp-requires-policy");
    let _ = writeln!(c, " no bgp network import-check");
    let _ = writeln!(c, " no bgp default ipv4-unicast");
    if let Some(id) = spec.cluster_id {
        let _ = writeln!(c, " bgp cluster-id {id}");
    }
    // The restart time is global in FRR: the longest any neighbour asks for.
    if let Some(t) = spec
        .neighbors
        .iter()
        .filter_map(|n| n.graceful_restart)
        .max()
    {
        let _ = writeln!(
            c,
            " bgp graceful-restart\n bgp graceful-restart restart-time {t}"
        );
    }
    for n in &spec.neighbors {
        let a = n.address;
        let _ = writeln!(c, " neighbor {a} remote-as {}", n.remote_as);
        let _ = writeln!(c, " neighbor {a} timers connect 2");
        // FRR's traditional eBGP MRAI is 30 s; tests want updates at once.
        let _ = writeln!(c, " neighbor {a} advertisement-interval 0");
        if let Some(p) = n.port {
            let _ = writeln!(c, " neighbor {a} port {p}");
        }
        if let Some(pw) = &n.password {
            let _ = writeln!(c, " neighbor {a} password {pw}");
        }
        if n.passive {
            let _ = writeln!(c, " neighbor {a} passive");
        }
        if let Some(h) = n.hold_time {
            let _ = writeln!(c, " neighbor {a} timers {} {h}", (h / 3).max(1));
        }
        if n.remote_as != spec.local_as {
            let _ = writeln!(c, " neighbor {a} ebgp-multihop 255");
        }
        if let Some(l) = spec.listen_address.filter(|l| l.is_ipv6() == a.is_ipv6()) {
            let _ = writeln!(c, " neighbor {a} update-source {l}");
        }
        // Neighbours with GR inherit the global `bgp graceful-restart` (repeating it per peer
        // is an error in FRR); the others must not even be helpers.
        if n.graceful_restart.is_none() {
            let _ = writeln!(c, " neighbor {a} graceful-restart-disable");
        }
    }
    for (fam, v6) in [("ipv4", false), ("ipv6", true)] {
        let _ = writeln!(c, " address-family {fam} unicast");
        for (p, a) in announced
            .iter()
            .filter(|(p, _)| matches!(p, IpNet::V6(_)) == v6)
        {
            let _ = writeln!(c, "  {}", network_line(*p, a));
        }
        for n in spec.neighbors.iter().filter(|n| n.address.is_ipv6() == v6) {
            let a = n.address;
            let _ = writeln!(c, "  neighbor {a} activate");
            if n.rr_client {
                let _ = writeln!(c, "  neighbor {a} route-reflector-client");
            }
            if n.add_paths {
                let _ = writeln!(c, "  neighbor {a} addpath-tx-all-paths");
            }
        }
        let _ = writeln!(c, " exit-address-family");
    }
    let _ = writeln!(c, "!");
    c
}

/// One VTY session on `socket`: each command NUL-terminated; each answer is its text followed
/// by `\0\0\0<status>` (status 0 = success), as lib/vty.c frames it for vtysh.
fn vty(socket: &Path, commands: &[&str]) -> Result<Vec<String>, HarnessError> {
    let what = format!("FRR VTY {}", socket.display());
    let mut s = UnixStream::connect(socket).map_err(io(format!("connecting to {what}")))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io("setting a VTY timeout"))?;
    let mut outputs = Vec::new();
    for cmd in commands {
        let mut msg = cmd.as_bytes().to_vec();
        msg.push(0);
        s.write_all(&msg)
            .map_err(io(format!("writing {cmd:?} to {what}")))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 65536];
        let status = loop {
            let n = s
                .read(&mut chunk)
                .map_err(io(format!("reading the answer to {cmd:?} from {what}")))?;
            if n == 0 {
                return Err(HarnessError::Failed(format!(
                    "{what} closed the connection during {cmd:?}"
                )));
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() >= 4 && buf[buf.len() - 4..buf.len() - 1] == [0, 0, 0] {
                let status = buf[buf.len() - 1];
                buf.truncate(buf.len() - 4);
                break status;
            }
        };
        let text = String::from_utf8_lossy(&buf).into_owned();
        if status != 0 {
            return Err(HarnessError::Failed(format!(
                "FRR rejected {cmd:?} (status {status}): {}",
                text.trim()
            )));
        }
        outputs.push(text);
    }
    Ok(outputs)
}

impl BgpPeerDaemon for Frr {
    fn start(spec: &DaemonSpec) -> Result<Frr, HarnessError> {
        spec.validate()?;
        let root = super::frr_root();
        for d in ["zebra", "bgpd"] {
            require_file(
                &root.join("usr/lib/frr").join(d),
                "FRR (scripts/install-deps.sh unpacks frr)",
            )?;
        }
        let dir = tempfile::Builder::new()
            .prefix("calico-e2e-frr-")
            .tempdir()
            .map_err(io("creating FRR's directory"))?;
        let d = dir.path();
        // /etc/group plus the groups FRR looks up, for the bind mount (see the module doc).
        let mut group = std::fs::read_to_string("/etc/group").map_err(io("reading /etc/group"))?;
        for g in ["frr", "frrvty"] {
            if !group.lines().any(|l| l.split(':').next() == Some(g)) {
                if !group.ends_with('\n') && !group.is_empty() {
                    group.push('\n');
                }
                let _ = writeln!(group, "{g}:x:0:");
            }
        }
        std::fs::write(d.join("group"), group).map_err(io("writing the group file"))?;
        std::fs::write(
            d.join("zebra.conf"),
            format!(
                "hostname calico-e2e-zebra\nlog file {} informational\n",
                d.join("frr.log").display()
            ),
        )
        .map_err(io("writing zebra.conf"))?;
        let bgpd_log = d.join("bgpd.out");
        let mut f = Frr {
            spec: spec.clone(),
            dir,
            root,
            bgpd: Supervised::new("bgpd", bgpd_log),
            zebra: None,
            announced: BTreeMap::new(),
        };
        f.launch_zebra()?;
        f.launch_bgpd()?;
        Ok(f)
    }

    fn announce_with(
        &mut self,
        prefixes: &[IpNet],
        attrs: &RouteAttrs,
    ) -> Result<(), HarnessError> {
        super::check_next_hop(prefixes, attrs.next_hop)?;
        self.running()?;
        for p in prefixes {
            self.announced.insert(p.trunc(), attrs.clone());
        }
        self.apply(prefixes)
    }

    fn withdraw(&mut self, prefixes: &[IpNet]) -> Result<(), HarnessError> {
        super::check_withdraw(&self.announced, prefixes)?;
        self.running()?;
        for p in prefixes {
            self.announced.remove(&p.trunc());
        }
        self.apply(prefixes)
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<String, HarnessError> {
        let out = self.neighbor_details(neighbor)?;
        let v: Value = serde_json::from_str(out.trim())
            .map_err(|e| HarnessError::Failed(format!("parsing FRR neighbor JSON: {e}: {out}")))?;
        v[neighbor.to_string()]["bgpState"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| HarnessError::Failed(format!("no bgpState for {neighbor}: {out}")))
    }

    fn received_routes(&self) -> Result<Vec<LearnedRoute>, HarnessError> {
        let out = self.vty(&[
            "show bgp ipv4 unicast json detail",
            "show bgp ipv6 unicast json detail",
        ])?;
        let mut routes = Vec::new();
        for o in out {
            routes.extend(parse_routes(&o)?);
        }
        Ok(routes)
    }

    fn restart_graceful(&mut self) -> Result<(), HarnessError> {
        // zebra, the FIB owner, lives on; bgpd comes back with the same originations.
        self.bgpd.clear();
        self.launch_bgpd()
    }

    fn restart(&mut self) -> Result<(), HarnessError> {
        self.bgpd.stop()?;
        self.launch_bgpd()
    }

    /// SIGKILLs bgpd (zebra stays, like the kernel's FIB stays after BIRD dies).
    fn kill(&mut self) -> Result<(), HarnessError> {
        self.bgpd.kill()
    }

    fn freeze(&mut self) -> Result<(), HarnessError> {
        self.bgpd.freeze()
    }

    fn thaw(&mut self) -> Result<(), HarnessError> {
        self.bgpd.thaw()
    }

    fn pid(&self) -> u32 {
        self.bgpd.last_pid
    }

    fn neighbor_details(&self, neighbor: IpAddr) -> Result<String, HarnessError> {
        self.spec.neighbor_spec(neighbor)?;
        let out = self.vty(&[&format!("show bgp neighbors {neighbor} json")])?;
        Ok(out.into_iter().next().unwrap_or_default())
    }

    fn kind(&self) -> &'static str {
        "FRR"
    }

    fn log_tail(&self) -> String {
        tail(&self.log_path(), 40)
    }
}

/// RFC 1997 well-known communities as FRR names them.
fn well_known(name: &str) -> Option<(u16, u16)> {
    Some(match name {
        "graceful-shutdown" => (65535, 0),
        "accept-own" => (65535, 1),
        "llgr-stale" => (65535, 6),
        "no-llgr" => (65535, 7),
        "blackhole" => (65535, 666),
        "no-export" => (65535, 65281),
        "no-advertise" => (65535, 65282),
        "local-AS" => (65535, 65283),
        "no-peer" => (65535, 65284),
        _ => return None,
    })
}

/// Paths learned from neighbours in `show bgp <afi> unicast json detail`.
fn parse_routes(out: &str) -> Result<Vec<LearnedRoute>, HarnessError> {
    let out = out.trim();
    if out.is_empty() || out == "{}" {
        return Ok(Vec::new());
    }
    let bad = |what: &str, v: &Value| {
        HarnessError::Failed(format!("unexpected FRR route JSON ({what}): {v}"))
    };
    let v: Value = serde_json::from_str(out)
        .map_err(|e| HarnessError::Failed(format!("parsing FRR route JSON: {e}: {out}")))?;
    let mut routes = Vec::new();
    let Some(dests) = v["routes"].as_object() else {
        return Ok(routes);
    };
    let empty = Vec::new();
    for (prefix, paths) in dests {
        let prefix: IpNet = prefix
            .parse()
            .map_err(|_| bad("prefix", &Value::String(prefix.clone())))?;
        for path in paths.as_array().unwrap_or(&empty) {
            // The first element is a per-prefix header without a peer.
            let Some(peer) = path["peer"]["peerId"].as_str() else {
                continue;
            };
            if path["sourced"].as_bool() == Some(true) || path["local"].as_bool() == Some(true) {
                continue;
            }
            let Ok(from) = peer.parse::<IpAddr>() else {
                continue;
            };
            if from.is_unspecified() {
                continue;
            }
            let stale = Some(path["stale"].as_bool().unwrap_or(false));
            let mut r = LearnedRoute::empty(prefix, from, stale);
            for seg in path["aspath"]["segments"].as_array().unwrap_or(&empty) {
                for asn in seg["list"].as_array().unwrap_or(&empty) {
                    r.as_path.push(
                        asn.as_u64()
                            .and_then(|a| u32::try_from(a).ok())
                            .ok_or_else(|| bad("AS number", path))?,
                    );
                }
            }
            r.next_hop = path["nexthops"]
                .as_array()
                .and_then(|n| n.first())
                .and_then(|n| n["ip"].as_str())
                .and_then(|ip| ip.parse().ok());
            r.local_pref = ["locPrf", "localpref", "localPref"]
                .iter()
                .find_map(|k| path[*k].as_u64())
                .and_then(|v| u32::try_from(v).ok());
            r.med = path["metric"].as_u64().and_then(|v| u32::try_from(v).ok());
            for c in path["community"]["list"].as_array().unwrap_or(&empty) {
                let c = c.as_str().ok_or_else(|| bad("community", path))?;
                let pair = match c.split_once(':') {
                    Some((x, y)) => x.parse().ok().zip(y.parse().ok()),
                    None => well_known(c),
                };
                r.communities
                    .push(pair.ok_or_else(|| bad("community", path))?);
            }
            for c in path["largeCommunity"]["list"].as_array().unwrap_or(&empty) {
                let parts: Vec<u32> = c
                    .as_str()
                    .unwrap_or_default()
                    .split(':')
                    .filter_map(|x| x.parse().ok())
                    .collect();
                match parts.as_slice() {
                    [a, b, d] => r.large_communities.push((*a, *b, *d)),
                    _ => return Err(bad("large community", path)),
                }
            }
            if let Some(id) = path["originatorId"].as_str() {
                r.originator_id = Some(id.parse().map_err(|_| bad("originator", path))?);
            }
            for id in path["clusterList"]["list"].as_array().unwrap_or(&empty) {
                r.cluster_list.push(
                    id.as_str()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad("cluster list", path))?,
                );
            }
            routes.push(r);
        }
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bgp_peers::NeighborSpec;
    use std::net::Ipv4Addr;

    #[test]
    fn detail_json_keeps_learned_paths() {
        let out = r#"{"vrfId": 0, "routerId": "10.0.0.1", "localAS": 64512,
 "routes": { "10.64.0.0/26": [{"prefix":"10.64.0.0/26","version":3},
   {"aspath":{"string":"65001","segments":[{"type":"as-sequence","list":[65001]}],"length":1},
    "origin":"IGP","metric":5,"locPrf":120,"valid":true,"community":{"string":"1:2 no-export","list":["1:2","no-export"]},
    "largeCommunity":{"string":"1:2:3","list":["1:2:3"]},"originatorId":"10.0.1.2",
    "clusterList":{"list":["9.9.9.9"]},"stale":true,
    "nexthops":[{"ip":"10.0.0.2","afi":"ipv4","used":true}],
    "peer":{"peerId":"10.0.0.2","routerId":"10.0.0.2","type":"external"}}],
 "10.128.0.0/26": [{"prefix":"10.128.0.0/26"},{"aspath":{"string":"Local","segments":[],"length":0},
    "weight":32768,"valid":true,"sourced":true,"local":true,
    "nexthops":[{"ip":"0.0.0.0"}],"peer":{"peerId":"0.0.0.0","routerId":"10.0.0.1"}}] } }"#;
        let r = parse_routes(out).unwrap();
        assert_eq!(r.len(), 1, "{r:#?}");
        let r = &r[0];
        assert_eq!(r.prefix, "10.64.0.0/26".parse::<IpNet>().unwrap());
        assert_eq!(r.from, "10.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(r.as_path, vec![65001]);
        assert_eq!(r.med, Some(5));
        assert_eq!(r.local_pref, Some(120));
        assert_eq!(r.communities, vec![(1, 2), (65535, 65281)]);
        assert_eq!(r.large_communities, vec![(1, 2, 3)]);
        assert_eq!(r.originator_id, Some(Ipv4Addr::new(10, 0, 1, 2)));
        assert_eq!(r.cluster_list, vec![Ipv4Addr::new(9, 9, 9, 9)]);
        assert_eq!(r.stale, Some(true));
        assert_eq!(r.next_hop, Some("10.0.0.2".parse().unwrap()));
        assert!(parse_routes("{}").unwrap().is_empty());
        assert!(parse_routes("not json").is_err());
    }

    #[test]
    fn config_has_every_requested_knob() {
        let mut spec = DaemonSpec::new("ns", Ipv4Addr::new(10, 0, 0, 1), 64512)
            .listen_address("10.0.0.1".parse().unwrap())
            .neighbor(
                NeighborSpec::new("10.0.0.2".parse().unwrap(), 64512)
                    .password("s3cret")
                    .rr_client()
                    .graceful_restart(30)
                    .hold_time(9)
                    .port(1790)
                    .passive()
                    .add_paths(),
            )
            .neighbor(NeighborSpec::new("fd00::3".parse().unwrap(), 65000));
        spec.cluster_id = Some(Ipv4Addr::new(1, 2, 3, 4));
        let attrs = RouteAttrs::default()
            .next_hop("10.0.0.9".parse().unwrap())
            .community(64512, 7)
            .large_community(1, 2, 3)
            .as_path(&[65000, 65001])
            .local_pref(200)
            .med(5);
        let mut ann = BTreeMap::new();
        ann.insert("10.128.0.0/26".parse().unwrap(), attrs.clone());
        ann.insert("fd00:1::/64".parse().unwrap(), RouteAttrs::default());
        let c = config(&spec, Path::new("/tmp/x.log"), &ann);
        let rm = route_map_name(&attrs);
        for want in [
            "router bgp 64512",
            "bgp router-id 10.0.0.1",
            "bgp cluster-id 1.2.3.4",
            "bgp graceful-restart restart-time 30",
            "neighbor 10.0.0.2 remote-as 64512",
            "neighbor 10.0.0.2 port 1790",
            "neighbor 10.0.0.2 password s3cret",
            "neighbor 10.0.0.2 passive",
            "neighbor 10.0.0.2 timers 3 9",
            "neighbor 10.0.0.2 update-source 10.0.0.1",
            "neighbor fd00::3 graceful-restart-disable",
            "neighbor fd00::3 ebgp-multihop 255",
            "neighbor 10.0.0.2 route-reflector-client",
            "neighbor 10.0.0.2 addpath-tx-all-paths",
            "neighbor fd00::3 activate",
            "network fd00:1::/64\n",
            " set ip next-hop 10.0.0.9",
            " set community 64512:7",
            " set large-community 1:2:3",
            " set as-path prepend 65000 65001",
            " set local-preference 200",
            " set metric 5",
        ] {
            assert!(c.contains(want), "missing {want:?} in:\n{c}");
        }
        assert!(c.contains(&format!("network 10.128.0.0/26 route-map {rm}")));
        assert!(c.contains(&format!("route-map {rm} permit 10")));
        // Same attributes, same route-map; different ones, another.
        assert_eq!(rm, route_map_name(&attrs.clone()));
        assert_ne!(rm, route_map_name(&attrs.med(6)));
    }
}
