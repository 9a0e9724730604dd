//! GoBGP as a test peer: a generated `gobgpd.toml`, the `gobgp` CLI (run inside the namespace,
//! talking to gobgpd's gRPC API on the namespace's loopback) for `global rib add/del` and for the
//! JSON views (`-j neighbor`, `-j global rib`) parsed with serde_json.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;
use serde_json::Value;

use super::Supervised;
use super::{
    BgpPeerDaemon, DaemonProcess, DaemonSpec, LearnedRoute, RouteAttrs, io, require_file, tail,
    wait_until,
};
use crate::HarnessError;

/// Default gRPC port of gobgpd.
pub const DEFAULT_API_PORT: u16 = 50051;

/// Concurrent `gobgp global rib add` processes of one announce.
const CLI_WORKERS: usize = 4;

/// A gobgpd in a namespace; killed by PID on drop.
#[derive(Debug)]
pub struct Gobgp {
    spec: DaemonSpec,
    dir: tempfile::TempDir,
    gobgpd: PathBuf,
    gobgp: PathBuf,
    process: Supervised,
    announced: BTreeMap<IpNet, RouteAttrs>,
}

impl Gobgp {
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("gobgpd.toml")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gobgpd.log")
    }

    pub fn api_port(&self) -> u16 {
        self.spec.api_port.unwrap_or(DEFAULT_API_PORT)
    }

    /// Runs `gobgp -p <api port> <args...>` inside the namespace and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> Result<String, HarnessError> {
        super::run_cli(
            Command::new("ip")
                .args(["netns", "exec", &self.spec.netns])
                .arg(&self.gobgp)
                .args(["-u", "127.0.0.1", "-p", &self.api_port().to_string()])
                .args(args),
        )
    }

    /// Has gobgpd check (`--dry-run`) the configuration `spec` generates.
    pub fn check_config(spec: &DaemonSpec) -> Result<(), HarnessError> {
        spec.validate()?;
        let gobgpd = super::gobgp_root().join("usr/bin/gobgpd");
        require_file(&gobgpd, "gobgpd (scripts/install-deps.sh unpacks gobgpd)")?;
        let dir = tempfile::tempdir().map_err(io("creating a temporary directory"))?;
        let conf = dir.path().join("gobgpd.toml");
        let text = config(spec);
        std::fs::write(&conf, &text).map_err(io("writing gobgpd.toml"))?;
        let out = Command::new(&gobgpd)
            .arg("-f")
            .arg(&conf)
            .args(["-t", "toml", "--dry-run", "--log-plain"])
            .output()
            .map_err(io("running gobgpd --dry-run"))?;
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() && !all.contains("level=fatal") && !all.contains("level=error") {
            Ok(())
        } else {
            Err(HarnessError::Failed(format!(
                "gobgpd rejects the configuration: {all}\n{text}"
            )))
        }
    }

    fn launch(&mut self, restarting: bool) -> Result<(), HarnessError> {
        let conf = self.config_path();
        let api = format!("--api-hosts=127.0.0.1:{}", self.api_port());
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("-f"),
            conf.as_os_str(),
            OsStr::new("-t"),
            OsStr::new("toml"),
            OsStr::new("--log-plain"),
            OsStr::new("--pprof-disable"),
            OsStr::new(&api),
        ];
        if restarting {
            // Sets the Restart State bit in the GR capability (RFC 4724 §3).
            args.push(OsStr::new("--graceful-restart"));
        }
        let log = self.log_path();
        let mut process = DaemonProcess::spawn(&self.spec.netns, &self.gobgpd, &args, &[], &log)?;
        self.process.last_pid = process.pid();
        wait_until(Duration::from_secs(10), || {
            process.check_running("gobgpd", &log)?;
            Ok(self.cli(&["global"]).ok())
        })
        .map_err(|e| {
            HarnessError::Failed(format!(
                "gobgpd did not come up: {e}\nlog:\n{}",
                tail(&log, 30)
            ))
        })?;
        self.process.set(process);
        // A restarted gobgpd has an empty RIB: originate again what the test announced.
        let announced: Vec<(IpNet, RouteAttrs)> = self
            .announced
            .iter()
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        for (p, a) in announced {
            self.rib_add(p, &a)?;
        }
        Ok(())
    }

    fn running(&mut self) -> Result<(), HarnessError> {
        self.process.running()
    }

    fn rib_add(&self, prefix: IpNet, a: &RouteAttrs) -> Result<(), HarnessError> {
        let args = rib_add_args(prefix, a);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.cli(&args).map(|_| ())
    }
}

/// `global rib add` arguments of the gobgp CLI for one originated prefix.
fn rib_add_args(prefix: IpNet, a: &RouteAttrs) -> Vec<String> {
    let join = |items: Vec<String>| items.join(",");
    let mut args: Vec<String> = ["global", "rib", "add", "-a", family(prefix)]
        .map(String::from)
        .to_vec();
    args.push(prefix.to_string());
    if let Some(nh) = a.next_hop {
        args.extend(["nexthop".into(), nh.to_string()]);
    }
    args.extend(["origin".into(), "igp".into()]);
    if !a.as_path.is_empty() {
        args.push("aspath".into());
        args.push(join(a.as_path.iter().map(ToString::to_string).collect()));
    }
    if let Some(med) = a.med {
        args.extend(["med".into(), med.to_string()]);
    }
    if let Some(lp) = a.local_pref {
        args.extend(["local-pref".into(), lp.to_string()]);
    }
    if !a.communities.is_empty() {
        args.push("community".into());
        args.push(join(
            a.communities
                .iter()
                .map(|(x, y)| format!("{x}:{y}"))
                .collect(),
        ));
    }
    if !a.large_communities.is_empty() {
        args.push("large-community".into());
        args.push(join(
            a.large_communities
                .iter()
                .map(|(x, y, z)| format!("{x}:{y}:{z}"))
                .collect(),
        ));
    }
    args
}

fn family(prefix: IpNet) -> &'static str {
    match prefix {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    }
}

impl BgpPeerDaemon for Gobgp {
    fn start(spec: &DaemonSpec) -> Result<Gobgp, HarnessError> {
        spec.validate()?;
        if spec.program_kernel {
            return Err(HarnessError::Failed(
                "GoBGP cannot program the kernel FIB (that needs FRR's zebra): use BIRD for program_kernel".into(),
            ));
        }
        let root = super::gobgp_root();
        let gobgpd = root.join("usr/bin/gobgpd");
        let gobgp = root.join("usr/bin/gobgp");
        require_file(&gobgpd, "gobgpd (scripts/install-deps.sh unpacks gobgpd)")?;
        require_file(&gobgp, "gobgp (scripts/install-deps.sh unpacks gobgpd)")?;
        let dir = tempfile::Builder::new()
            .prefix("calico-e2e-gobgp-")
            .tempdir()
            .map_err(io("creating GoBGP's directory"))?;
        let g = Gobgp {
            spec: spec.clone(),
            process: Supervised::new("gobgpd", dir.path().join("gobgpd.log")),
            dir,
            gobgpd,
            gobgp,
            announced: BTreeMap::new(),
        };
        std::fs::write(g.config_path(), config(spec)).map_err(io("writing gobgpd.toml"))?;
        let mut g = g;
        g.launch(false)?;
        Ok(g)
    }

    fn announce_with(
        &mut self,
        prefixes: &[IpNet],
        attrs: &RouteAttrs,
    ) -> Result<(), HarnessError> {
        super::check_next_hop(prefixes, attrs.next_hop)?;
        self.running()?;
        // One CLI process (and gRPC connection) per prefix, ~16 ms each: run a few at once.
        let this = &*self;
        let chunk = prefixes.len().div_ceil(CLI_WORKERS).max(1);
        let results: Vec<Result<(), HarnessError>> = std::thread::scope(|s| {
            let workers: Vec<_> = prefixes
                .chunks(chunk)
                .map(|ps| {
                    s.spawn(move || ps.iter().try_for_each(|p| this.rib_add(p.trunc(), attrs)))
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(HarnessError::Failed("a gobgp CLI worker panicked".into()))
                    })
                })
                .collect()
        });
        // Record every prefix, also when one failed: those that did get in must be originated
        // again after a restart.
        for p in prefixes {
            self.announced.insert(p.trunc(), attrs.clone());
        }
        results.into_iter().collect()
    }

    fn withdraw(&mut self, prefixes: &[IpNet]) -> Result<(), HarnessError> {
        super::check_withdraw(&self.announced, prefixes)?;
        self.running()?;
        for p in prefixes {
            let p = p.trunc();
            self.cli(&["global", "rib", "del", "-a", family(p), &p.to_string()])?;
            self.announced.remove(&p);
        }
        Ok(())
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<String, HarnessError> {
        self.spec.neighbor_spec(neighbor)?;
        let out = self.cli(&["-j", "neighbor", &neighbor.to_string()])?;
        parse_session_state(&out)
    }

    fn received_routes(&self) -> Result<Vec<LearnedRoute>, HarnessError> {
        let mut routes = Vec::new();
        for family in ["ipv4", "ipv6"] {
            let out = self.cli(&["-j", "global", "rib", "-a", family])?;
            routes.extend(parse_rib(&out)?);
        }
        Ok(routes)
    }

    fn restart_graceful(&mut self) -> Result<(), HarnessError> {
        self.process.clear();
        self.launch(true)
    }

    fn restart(&mut self) -> Result<(), HarnessError> {
        self.process.stop()?;
        self.launch(false)
    }

    fn kill(&mut self) -> Result<(), HarnessError> {
        self.process.kill()
    }

    fn freeze(&mut self) -> Result<(), HarnessError> {
        self.process.freeze()
    }

    fn thaw(&mut self) -> Result<(), HarnessError> {
        self.process.thaw()
    }

    fn pid(&self) -> u32 {
        self.process.last_pid
    }

    fn neighbor_details(&self, neighbor: IpAddr) -> Result<String, HarnessError> {
        self.spec.neighbor_spec(neighbor)?;
        self.cli(&["-j", "neighbor", &neighbor.to_string()])
    }

    fn kind(&self) -> &'static str {
        "GoBGP"
    }

    fn log_tail(&self) -> String {
        tail(&self.log_path(), 40)
    }
}

/// The whole `gobgpd.toml` for `spec`.
pub(super) fn config(spec: &DaemonSpec) -> String {
    let mut c = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(c, "[global.config]");
    let _ = writeln!(c, "  as = {}", spec.local_as);
    let _ = writeln!(c, "  router-id = \"{}\"", spec.router_id);
    let _ = writeln!(c, "  port = {}", spec.listen_port);
    if let Some(a) = spec.listen_address {
        let _ = writeln!(c, "  local-address-list = [\"{a}\"]");
    }
    for n in &spec.neighbors {
        let v6 = n.address.is_ipv6();
        let _ = writeln!(c, "\n[[neighbors]]\n  [neighbors.config]");
        let _ = writeln!(c, "    neighbor-address = \"{}\"", n.address);
        let _ = writeln!(c, "    peer-as = {}", n.remote_as);
        if let Some(pw) = &n.password {
            let _ = writeln!(c, "    auth-password = \"{pw}\"");
        }
        let _ = writeln!(c, "  [neighbors.transport.config]");
        if let Some(a) = spec.listen_address.filter(|a| a.is_ipv6() == v6) {
            let _ = writeln!(c, "    local-address = \"{a}\"");
        }
        if n.passive {
            let _ = writeln!(c, "    passive-mode = true");
        }
        if let Some(p) = n.port {
            let _ = writeln!(c, "    remote-port = {p}");
        }
        let _ = writeln!(c, "  [neighbors.timers.config]");
        // Quick reconnects: GoBGP otherwise idles 30 s after a session reset.
        let _ = writeln!(c, "    connect-retry = 2");
        let _ = writeln!(c, "    idle-hold-time-after-reset = 1");
        if let Some(h) = n.hold_time {
            let _ = writeln!(c, "    hold-time = {h}");
            let _ = writeln!(c, "    keepalive-interval = {}", (h / 3).max(1));
        }
        if n.remote_as != spec.local_as {
            // Mirrors BIRD's `multihop`: eBGP peers may sit on loopbacks.
            let _ = writeln!(
                c,
                "  [neighbors.ebgp-multihop.config]\n    enabled = true\n    multihop-ttl = 255"
            );
        }
        if n.rr_client {
            let _ = writeln!(
                c,
                "  [neighbors.route-reflector.config]\n    route-reflector-client = true"
            );
            let id = spec.cluster_id.unwrap_or(spec.router_id);
            let _ = writeln!(c, "    route-reflector-cluster-id = \"{id}\"");
        }
        if let Some(t) = n.graceful_restart {
            // The deferral time bounds how long a restarting gobgpd waits for its peers'
            // End-of-RIB before it selects and sends routes (RFC 4724 §4.1); default 360 s.
            let _ = writeln!(
                c,
                "  [neighbors.graceful-restart.config]\n    enabled = true\n    restart-time = {t}\n    deferral-time = {}",
                t.max(1)
            );
        }
        let _ = writeln!(
            c,
            "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]"
        );
        let _ = writeln!(
            c,
            "      afi-safi-name = \"{}-unicast\"",
            if v6 { "ipv6" } else { "ipv4" }
        );
        if n.graceful_restart.is_some() {
            // Without the per-family flag the GR capability lists no AFI and nothing is kept.
            let _ = writeln!(
                c,
                "    [neighbors.afi-safis.mp-graceful-restart.config]\n      enabled = true"
            );
        }
        if n.add_paths {
            let _ = writeln!(
                c,
                "    [neighbors.afi-safis.add-paths.config]\n      receive = true\n      send-max = 8"
            );
        }
    }
    c
}

/// RFC 4271 state name from `gobgp -j neighbor <addr>` (`state.session_state`, numeric in
/// GoBGP 3's API: 1 Idle ... 6 Established; newer versions print the name).
fn parse_session_state(out: &str) -> Result<String, HarnessError> {
    let v: Value = serde_json::from_str(out.trim())
        .map_err(|e| HarnessError::Failed(format!("parsing gobgp neighbor JSON: {e}: {out}")))?;
    let v = match &v {
        Value::Array(a) => a.first().unwrap_or(&Value::Null),
        other => other,
    };
    let state = &v["state"]["session_state"];
    let name = match state {
        Value::Null => "Unknown",
        Value::Number(n) => match n.as_u64() {
            Some(1) => "Idle",
            Some(2) => "Connect",
            Some(3) => "Active",
            Some(4) => "OpenSent",
            Some(5) => "OpenConfirm",
            Some(6) => "Established",
            _ => "Unknown",
        },
        Value::String(s) => match s.to_ascii_lowercase().trim_start_matches("session_state_") {
            "idle" => "Idle",
            "connect" => "Connect",
            "active" => "Active",
            "opensent" => "OpenSent",
            "openconfirm" => "OpenConfirm",
            "established" => "Established",
            _ => "Unknown",
        },
        _ => "Unknown",
    };
    Ok(name.to_string())
}

/// Paths learned from neighbours (those with a `neighbor-ip`) in `gobgp -j global rib`.
fn parse_rib(out: &str) -> Result<Vec<LearnedRoute>, HarnessError> {
    let out = out.trim();
    if out.is_empty() || out == "null" {
        return Ok(Vec::new());
    }
    let bad = |what: &str, v: &Value| {
        HarnessError::Failed(format!("unexpected gobgp rib JSON ({what}): {v}"))
    };
    let v: Value = serde_json::from_str(out)
        .map_err(|e| HarnessError::Failed(format!("parsing gobgp rib JSON: {e}: {out}")))?;
    let Value::Object(dests) = v else {
        return Err(bad("not an object", &v));
    };
    let mut routes = Vec::new();
    for (prefix, paths) in &dests {
        let prefix: IpNet = prefix
            .parse()
            .map_err(|_| bad("destination prefix", &Value::String(prefix.clone())))?;
        let Value::Array(paths) = paths else {
            return Err(bad("paths not an array", paths));
        };
        for path in paths {
            let Some(from) = path["neighbor-ip"].as_str() else {
                continue; // originated by this gobgpd
            };
            let from: IpAddr = from.parse().map_err(|_| bad("neighbor-ip", path))?;
            let stale = Some(path["stale"].as_bool().unwrap_or(false));
            let mut r = LearnedRoute::empty(prefix, from, stale);
            let empty = Vec::new();
            for attr in path["attrs"].as_array().unwrap_or(&empty) {
                match attr["type"].as_u64() {
                    Some(2) => {
                        for seg in attr["as_paths"].as_array().unwrap_or(&empty) {
                            for asn in seg["asns"].as_array().unwrap_or(&empty) {
                                let asn = asn
                                    .as_u64()
                                    .and_then(|a| u32::try_from(a).ok())
                                    .ok_or_else(|| bad("AS number", attr))?;
                                r.as_path.push(asn);
                            }
                        }
                    }
                    Some(3) | Some(14) => {
                        if let Some(nh) = attr["nexthop"].as_str() {
                            r.next_hop = Some(nh.parse().map_err(|_| bad("nexthop", attr))?);
                        }
                    }
                    Some(4) => r.med = attr["metric"].as_u64().and_then(|v| u32::try_from(v).ok()),
                    Some(5) => {
                        r.local_pref = attr["value"].as_u64().and_then(|v| u32::try_from(v).ok())
                    }
                    Some(9) => {
                        if let Some(id) = attr["value"].as_str() {
                            r.originator_id =
                                Some(id.parse().map_err(|_| bad("originator id", attr))?);
                        }
                    }
                    Some(10) => {
                        for id in attr["value"].as_array().unwrap_or(&empty) {
                            let id = id
                                .as_str()
                                .and_then(|s| s.parse().ok())
                                .ok_or_else(|| bad("cluster list", attr))?;
                            r.cluster_list.push(id);
                        }
                    }
                    Some(8) => {
                        for c in attr["communities"].as_array().unwrap_or(&empty) {
                            let c = c
                                .as_u64()
                                .and_then(|c| u32::try_from(c).ok())
                                .ok_or_else(|| bad("community", attr))?;
                            // The high and low 16 bits are the two halves (RFC 1997).
                            r.communities.push(((c >> 16) as u16, (c & 0xffff) as u16));
                        }
                    }
                    Some(32) => {
                        let list = attr["value"]
                            .as_array()
                            .or_else(|| attr["communities"].as_array())
                            .unwrap_or(&empty);
                        for lc in list {
                            let field = |names: &[&str]| {
                                names
                                    .iter()
                                    .find_map(|n| lc[*n].as_u64())
                                    .and_then(|v| u32::try_from(v).ok())
                                    .ok_or_else(|| bad("large community", attr))
                            };
                            r.large_communities.push((
                                field(&["ASN", "global_admin"])?,
                                field(&["LocalData1", "local_data1"])?,
                                field(&["LocalData2", "local_data2"])?,
                            ));
                        }
                    }
                    _ => {}
                }
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
    fn rib_json_keeps_learned_paths_only() {
        let out = r#"{"10.128.0.0/26":[{"nlri":{"prefix":"10.128.0.0/26"},"age":1,"best":true,
            "attrs":[{"type":1,"value":0},{"type":2,"as_paths":[{"segment_type":2,"num":2,"asns":[65001,65002]}]},
            {"type":3,"nexthop":"10.0.0.1"},{"type":4,"metric":7},{"type":5,"value":100},
            {"type":9,"value":"10.0.1.2"},{"type":10,"value":["9.9.9.9"]},{"type":8,"communities":[4227858532,4259840007]},
            {"type":32,"value":[{"ASN":64512,"LocalData1":1,"LocalData2":2}]}],
            "stale":true,"source-id":"10.0.0.1","neighbor-ip":"10.0.0.1"}],
          "10.64.0.0/26":[{"nlri":{"prefix":"10.64.0.0/26"},"age":1,"best":true,
            "attrs":[{"type":1,"value":0},{"type":3,"nexthop":"0.0.0.0"}],"stale":false}]}"#;
        let r = parse_rib(out).unwrap();
        assert_eq!(r.len(), 1, "{r:#?}");
        let r = &r[0];
        assert_eq!(r.prefix, "10.128.0.0/26".parse::<IpNet>().unwrap());
        assert_eq!(r.from, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(r.next_hop, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(r.as_path, vec![65001, 65002]);
        assert_eq!(r.local_pref, Some(100));
        assert_eq!(r.communities, vec![(64512, 100), (65000, 7)]);
        assert_eq!(r.large_communities, vec![(64512, 1, 2)]);
        assert_eq!(r.stale, Some(true));
        assert_eq!(r.med, Some(7));
        assert_eq!(r.originator_id, Some(Ipv4Addr::new(10, 0, 1, 2)));
        assert_eq!(r.cluster_list, vec![Ipv4Addr::new(9, 9, 9, 9)]);
        let v6 = r#"{"fd00:1::/64":[{"nlri":{"prefix":"fd00:1::/64"},"attrs":[{"type":1,"value":0},
            {"type":14,"nexthop":"fd00::2","afi":2,"safi":1,"value":[{"prefix":"fd00:1::/64"}]}],
            "stale":false,"neighbor-ip":"fd00::2"}]}"#;
        let r = parse_rib(v6).unwrap();
        assert_eq!(r[0].next_hop, Some("fd00::2".parse().unwrap()));
        assert_eq!(r[0].from, "fd00::2".parse::<IpAddr>().unwrap());
        assert!(parse_rib("{}").unwrap().is_empty());
        assert!(parse_rib("null").unwrap().is_empty());
        assert!(parse_rib("[1]").is_err());
        assert!(parse_rib(r#"{"bad":[]}"#).is_err());
    }

    #[test]
    fn rib_add_arguments() {
        let a = RouteAttrs::default()
            .next_hop("10.0.0.2".parse().unwrap())
            .as_path(&[65000, 65001])
            .med(7)
            .local_pref(200)
            .community(1, 2)
            .community(3, 4)
            .large_community(1, 2, 3);
        assert_eq!(
            rib_add_args("10.64.0.0/26".parse().unwrap(), &a).join(" "),
            "global rib add -a ipv4 10.64.0.0/26 nexthop 10.0.0.2 origin igp aspath 65000,65001 \
             med 7 local-pref 200 community 1:2,3:4 large-community 1:2:3"
        );
        assert_eq!(
            rib_add_args("fd00:1::/64".parse().unwrap(), &RouteAttrs::default()).join(" "),
            "global rib add -a ipv6 fd00:1::/64 origin igp"
        );
    }

    #[test]
    fn session_state_names() {
        let j = |s: &str| format!(r#"{{"conf":{{}},"state":{{"session_state":{s}}}}}"#);
        assert_eq!(parse_session_state(&j("6")).unwrap(), "Established");
        assert_eq!(parse_session_state(&j("3")).unwrap(), "Active");
        assert_eq!(parse_session_state(&j("1")).unwrap(), "Idle");
        assert_eq!(
            parse_session_state(&j("\"SESSION_STATE_OPENSENT\"")).unwrap(),
            "OpenSent"
        );
        assert_eq!(parse_session_state(r#"[{"state":{}}]"#).unwrap(), "Unknown");
        assert!(parse_session_state("not json").is_err());
    }

    #[test]
    fn config_has_every_requested_knob() {
        let mut spec = DaemonSpec::new("ns", Ipv4Addr::new(10, 0, 0, 2), 64512)
            .listen_address("10.0.0.2".parse().unwrap())
            .neighbor(
                NeighborSpec::new("10.0.0.1".parse().unwrap(), 64512)
                    .password("s3cret")
                    .rr_client()
                    .graceful_restart(30)
                    .hold_time(9)
                    .port(1790)
                    .passive()
                    .add_paths(),
            )
            .neighbor(NeighborSpec::new("fd00::1".parse().unwrap(), 65000));
        spec.cluster_id = Some(Ipv4Addr::new(1, 2, 3, 4));
        let c = config(&spec);
        for want in [
            "as = 64512",
            "router-id = \"10.0.0.2\"",
            "local-address-list = [\"10.0.0.2\"]",
            "neighbor-address = \"10.0.0.1\"",
            "auth-password = \"s3cret\"",
            "local-address = \"10.0.0.2\"",
            "passive-mode = true",
            "remote-port = 1790",
            "hold-time = 9",
            "keepalive-interval = 3",
            "route-reflector-client = true",
            "route-reflector-cluster-id = \"1.2.3.4\"",
            "restart-time = 30",
            "[neighbors.afi-safis.mp-graceful-restart.config]",
            "send-max = 8",
            "neighbor-address = \"fd00::1\"",
            "afi-safi-name = \"ipv6-unicast\"",
            "[neighbors.ebgp-multihop.config]",
        ] {
            assert!(c.contains(want), "missing {want:?} in:\n{c}");
        }
        // The v6 neighbour gets no v4 local address.
        assert_eq!(c.matches("local-address = ").count(), 1, "{c}");
    }
}
