//! BIRD 2 as a test peer: a generated `bird.conf` (one `protocol bgp` per neighbour, the
//! originated prefixes as `protocol static` blackholes whose attributes are set in each
//! session's export filter, `protocol kernel` only when asked), `birdc configure` for runtime
//! changes, and `birdc show ...` text parsed for state and routes.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ipnet::IpNet;

use super::Supervised;
use super::{
    BgpPeerDaemon, DaemonProcess, DaemonSpec, LearnedRoute, RouteAttrs, io, require_file, tail,
    wait_until,
};
use crate::HarnessError;

/// A BIRD daemon in a namespace; killed by PID on drop.
#[derive(Debug)]
pub struct Bird {
    spec: DaemonSpec,
    dir: tempfile::TempDir,
    bird: PathBuf,
    birdc: PathBuf,
    process: Supervised,
    announced: BTreeMap<IpNet, RouteAttrs>,
}

impl Bird {
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("bird.conf")
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("bird.ctl")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("bird.log")
    }

    /// The name of the `protocol bgp` for `neighbor` (e.g. `peer_10_0_0_2`), for direct
    /// `birdc` queries.
    pub fn protocol_name(neighbor: IpAddr) -> String {
        let mut s = String::from("peer_");
        s.extend(
            neighbor
                .to_string()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
        s
    }

    /// Runs `birdc -s <socket> <args...>` and returns its output (first "BIRD ... ready." line
    /// removed).
    pub fn birdc(&self, args: &[&str]) -> Result<String, HarnessError> {
        let out = super::run_cli(
            Command::new(&self.birdc)
                .arg("-s")
                .arg(self.socket_path())
                .args(args),
        )?;
        Ok(out
            .lines()
            .filter(|l| !(l.starts_with("BIRD ") && l.ends_with(" ready.")))
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Has BIRD parse (`bird -p`) the configuration `spec` generates, originating `announced`
    /// with default attributes, without starting anything.
    pub fn check_config(spec: &DaemonSpec, announced: &[IpNet]) -> Result<(), HarnessError> {
        spec.validate()?;
        let bird = super::bird_root().join("usr/sbin/bird");
        require_file(&bird, "BIRD 2 (scripts/install-deps.sh unpacks bird2)")?;
        let dir = tempfile::tempdir().map_err(io("creating a temporary directory"))?;
        let ann = announced
            .iter()
            .map(|p| (p.trunc(), RouteAttrs::default()))
            .collect();
        let conf = dir.path().join("bird.conf");
        let text = config(spec, &dir.path().join("bird.log"), &ann)?;
        std::fs::write(&conf, &text).map_err(io("writing bird.conf"))?;
        crate::run_checked(Command::new(&bird).arg("-p").arg("-c").arg(&conf))
            .map(|_| ())
            .map_err(|e| {
                HarnessError::Failed(format!("BIRD rejects the configuration: {e}\n{text}"))
            })
    }

    fn write_config(&self) -> Result<(), HarnessError> {
        let text = config(&self.spec, &self.log_path(), &self.announced)?;
        std::fs::write(self.config_path(), text).map_err(io("writing bird.conf"))
    }

    fn launch(&mut self, recovery: bool) -> Result<(), HarnessError> {
        let conf = self.config_path();
        let sock = self.socket_path();
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("-f"),
            OsStr::new("-c"),
            conf.as_os_str(),
            OsStr::new("-s"),
            sock.as_os_str(),
        ];
        if recovery {
            args.push(OsStr::new("-R"));
        }
        // A SIGKILLed BIRD leaves its socket file behind; BIRD replaces it, but make sure a
        // query never reaches a stale one.
        let _ = std::fs::remove_file(&sock);
        let stdio_log = self.dir.path().join("bird.stdio.log");
        let mut process =
            DaemonProcess::spawn(&self.spec.netns, &self.bird, &args, &[], &stdio_log)?;
        self.process.last_pid = process.pid();
        let log = self.log_path();
        let r = wait_until(Duration::from_secs(10), || {
            process.check_running("BIRD", &stdio_log)?;
            Ok(self.birdc(&["show", "status"]).ok())
        });
        if let Err(e) = r {
            return Err(HarnessError::Failed(format!(
                "BIRD did not come up: {e}\nbird.log:\n{}",
                tail(&log, 30)
            )));
        }
        self.process.set(process);
        Ok(())
    }

    fn running(&mut self) -> Result<(), HarnessError> {
        self.process.running()
    }

    /// Rewrites the configuration and has BIRD apply it.
    fn reconfigure(&mut self) -> Result<(), HarnessError> {
        self.running()?;
        self.write_config()?;
        let out = self.birdc(&["configure"])?;
        if out.contains("Reconfigured") || out.contains("Reconfiguration") {
            Ok(())
        } else {
            Err(HarnessError::Failed(format!(
                "birdc configure rejected the new configuration:\n{out}"
            )))
        }
    }
}

impl BgpPeerDaemon for Bird {
    fn start(spec: &DaemonSpec) -> Result<Bird, HarnessError> {
        spec.validate()?;
        let root = super::bird_root();
        let bird = root.join("usr/sbin/bird");
        let birdc = root.join("usr/sbin/birdc");
        require_file(&bird, "BIRD 2 (scripts/install-deps.sh unpacks bird2)")?;
        require_file(&birdc, "birdc (scripts/install-deps.sh unpacks bird2)")?;
        let dir = tempfile::Builder::new()
            .prefix("calico-e2e-bird-")
            .tempdir()
            .map_err(io("creating BIRD's directory"))?;
        let mut b = Bird {
            spec: spec.clone(),
            process: Supervised::new("BIRD", dir.path().join("bird.stdio.log")),
            dir,
            bird,
            birdc,
            announced: BTreeMap::new(),
        };
        b.write_config()?;
        b.launch(false)?;
        Ok(b)
    }

    fn announce_with(
        &mut self,
        prefixes: &[IpNet],
        attrs: &RouteAttrs,
    ) -> Result<(), HarnessError> {
        super::check_next_hop(prefixes, attrs.next_hop)?;
        let before = self.announced.clone();
        for p in prefixes {
            self.announced.insert(p.trunc(), attrs.clone());
        }
        let r = self.reconfigure();
        if r.is_err() {
            self.announced = before;
        }
        r
    }

    fn withdraw(&mut self, prefixes: &[IpNet]) -> Result<(), HarnessError> {
        super::check_withdraw(&self.announced, prefixes)?;
        let before = self.announced.clone();
        for p in prefixes {
            self.announced.remove(&p.trunc());
        }
        let r = self.reconfigure();
        if r.is_err() {
            self.announced = before;
        }
        r
    }

    fn session_state(&self, neighbor: IpAddr) -> Result<String, HarnessError> {
        self.spec.neighbor_spec(neighbor)?;
        let out = self.birdc(&["show", "protocols", "all", &Bird::protocol_name(neighbor)])?;
        parse_bgp_state(&out)
    }

    fn received_routes(&self) -> Result<Vec<LearnedRoute>, HarnessError> {
        let protocols: BTreeMap<String, IpAddr> = self
            .spec
            .neighbors
            .iter()
            .map(|n| (Bird::protocol_name(n.address), n.address))
            .collect();
        let mut routes = Vec::new();
        for table in ["master4", "master6"] {
            let out = self.birdc(&["show", "route", "all", "table", table])?;
            routes.extend(parse_routes(&out, &protocols)?);
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
        self.birdc(&["show", "protocols", "all", &Bird::protocol_name(neighbor)])
    }

    fn kind(&self) -> &'static str {
        "BIRD"
    }

    fn log_tail(&self) -> String {
        tail(&self.log_path(), 40)
    }
}

/// The whole `bird.conf` for `spec` originating `announced`.
pub(super) fn config(
    spec: &DaemonSpec,
    log: &Path,
    announced: &BTreeMap<IpNet, RouteAttrs>,
) -> Result<String, HarnessError> {
    let mut c = String::new();
    // `write!` into a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(c, "log \"{}\" all;", log.display());
    let _ = writeln!(c, "router id {};", spec.router_id);
    let _ = writeln!(c, "protocol device {{ scan time 2; }}");
    // Connected routes, so iBGP next hops resolve (`gateway recursive`), as in bgp.md §4.
    let _ = writeln!(c, "protocol direct {{ ipv4; ipv6; interface \"*\"; }}");
    if spec.program_kernel {
        // Calico's kernel protocol: only BGP routes reach the FIB, ECMP merged, kept across
        // a graceful restart (bgp.md §2.2).
        for v in ["4", "6"] {
            let _ = writeln!(
                c,
                "protocol kernel kernel{v} {{\n  ipv{v} {{ import none; export filter {{ if source = RTS_BGP then accept; reject; }}; }};\n  merge paths on;\n  graceful restart;\n}}"
            );
        }
    }
    for (v, is_v6) in [("4", false), ("6", true)] {
        let _ = writeln!(c, "protocol static announced{v} {{\n  ipv{v};");
        for p in announced
            .keys()
            .filter(|p| matches!(p, IpNet::V6(_)) == is_v6)
        {
            let _ = writeln!(c, "  route {p} blackhole;");
        }
        let _ = writeln!(c, "}}");
    }
    for n in &spec.neighbors {
        let v6 = n.address.is_ipv6();
        let v = if v6 { "6" } else { "4" };
        let _ = writeln!(c, "protocol bgp {} {{", Bird::protocol_name(n.address));
        let mut local = String::from("  local");
        if let Some(a) = spec.listen_address.filter(|a| a.is_ipv6() == v6) {
            let _ = write!(local, " {a}");
        }
        if spec.listen_port != 179 {
            let _ = write!(local, " port {}", spec.listen_port);
        }
        let _ = writeln!(c, "{local} as {};", spec.local_as);
        let port = n.port.map(|p| format!(" port {p}")).unwrap_or_default();
        let _ = writeln!(c, "  neighbor {}{port} as {};", n.address, n.remote_as);
        // Calico sets multihop on its sessions; it also lets eBGP peers sit on loopbacks.
        let _ = writeln!(c, "  multihop;");
        let _ = writeln!(
            c,
            "  connect delay time 1;\n  connect retry time 2;\n  error wait time 1, 10;"
        );
        if n.passive {
            let _ = writeln!(c, "  passive on;");
        }
        if let Some(pw) = &n.password {
            let _ = writeln!(c, "  password \"{pw}\";");
        }
        if n.rr_client {
            let _ = writeln!(c, "  rr client;");
            if let Some(id) = spec.cluster_id {
                let _ = writeln!(c, "  rr cluster id {id};");
            }
        }
        match n.graceful_restart {
            Some(t) => {
                let _ = writeln!(c, "  graceful restart on;\n  graceful restart time {t};");
            }
            None => {
                let _ = writeln!(c, "  graceful restart off;");
            }
        }
        if let Some(h) = n.hold_time {
            let _ = writeln!(c, "  hold time {h};");
            if h >= 3 {
                let _ = writeln!(c, "  keepalive time {};", h / 3);
            }
        }
        let _ = writeln!(c, "  ipv{v} {{\n    gateway recursive;");
        if n.add_paths {
            let _ = writeln!(c, "    add paths on;");
        }
        let _ = writeln!(c, "    import all;");
        // Attributes of originated prefixes are set here: values set in an export filter are
        // kept by BIRD for eBGP too, where it would otherwise put its own address as next hop.
        let _ = writeln!(
            c,
            "    export filter {{\n      if proto = \"announced{v}\" then {{"
        );
        // One clause per distinct attribute set, matching its prefixes exactly.
        let mut groups: Vec<(&RouteAttrs, Vec<IpNet>)> = Vec::new();
        for (p, a) in announced
            .iter()
            .filter(|(p, a)| matches!(p, IpNet::V6(_)) == v6 && !a.is_default())
        {
            match groups.iter_mut().find(|(g, _)| *g == a) {
                Some((_, ps)) => ps.push(*p),
                None => groups.push((a, vec![*p])),
            }
        }
        for (a, ps) in groups {
            let set = ps
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(c, "        if net ~ [ {set} ] then {{");
            if let Some(nh) = a.next_hop {
                let _ = write!(c, " bgp_next_hop = {nh};");
            }
            for (x, y) in &a.communities {
                let _ = write!(c, " bgp_community.add(({x},{y}));");
            }
            for (x, y, z) in &a.large_communities {
                let _ = write!(c, " bgp_large_community.add(({x},{y},{z}));");
            }
            // Prepending from the end leaves the path in the given order.
            for asn in a.as_path.iter().rev() {
                let _ = write!(c, " bgp_path.prepend({asn});");
            }
            if let Some(lp) = a.local_pref {
                let _ = write!(c, " bgp_local_pref = {lp};");
            }
            if let Some(med) = a.med {
                let _ = write!(c, " bgp_med = {med};");
            }
            let _ = writeln!(c, " }}");
        }
        let _ = writeln!(
            c,
            "        accept;\n      }}\n      if source = RTS_BGP then accept;\n      reject;\n    }};\n  }};\n}}"
        );
    }
    Ok(c)
}

/// `BGP state:` of `show protocols all <name>`, else the Info column of the summary line.
fn parse_bgp_state(out: &str) -> Result<String, HarnessError> {
    for line in out.lines() {
        if let Some(rest) = line.trim().strip_prefix("BGP state:") {
            return Ok(rest.trim().to_string());
        }
    }
    // Summary: Name Proto Table State Since Info...
    for line in out.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(1) == Some(&"BGP") {
            return Ok(cols.get(5).map_or_else(
                || cols.get(3).copied().unwrap_or("Down").to_string(),
                |s| s.to_string(),
            ));
        }
    }
    Err(HarnessError::Failed(format!(
        "no BGP state in birdc output:\n{out}"
    )))
}

/// Routes of `show route all` whose protocol is one of `protocols` (name → neighbour).
fn parse_routes(
    out: &str,
    protocols: &BTreeMap<String, IpAddr>,
) -> Result<Vec<LearnedRoute>, HarnessError> {
    let bad = |line: &str, why: &str| {
        HarnessError::Failed(format!("unexpected `show route` line ({why}): {line:?}"))
    };
    let mut routes = Vec::new();
    let mut current: Option<LearnedRoute> = None;
    let mut prefix: Option<IpNet> = None;
    for line in out.lines() {
        if line.trim().is_empty() || line.starts_with("Table ") {
            continue;
        }
        if let Some(attr) = line.strip_prefix('\t') {
            let Some(r) = current.as_mut() else { continue };
            let Some((key, value)) = attr.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "BGP.next_hop" => {
                    r.next_hop = match value.split_whitespace().next() {
                        Some(a) => Some(a.parse().map_err(|_| bad(line, "next hop"))?),
                        None => None,
                    }
                }
                "BGP.as_path" => {
                    r.as_path = value
                        .split(|c: char| c.is_whitespace() || c == '{' || c == '}')
                        .filter(|s| !s.is_empty())
                        .map(|s| s.parse().map_err(|_| bad(line, "AS number")))
                        .collect::<Result<_, _>>()?
                }
                "BGP.local_pref" => {
                    r.local_pref = Some(value.parse().map_err(|_| bad(line, "local pref"))?)
                }
                "BGP.med" => r.med = Some(value.parse().map_err(|_| bad(line, "MED"))?),
                "BGP.originator_id" => {
                    r.originator_id = Some(value.parse().map_err(|_| bad(line, "originator"))?)
                }
                "BGP.cluster_list" => {
                    r.cluster_list = value
                        .split_whitespace()
                        .map(|s| s.parse().map_err(|_| bad(line, "cluster list")))
                        .collect::<Result<_, _>>()?
                }
                "BGP.community" => {
                    for t in tuples(value) {
                        match t.as_slice() {
                            [a, b] => r.communities.push((
                                a.parse().map_err(|_| bad(line, "community"))?,
                                b.parse().map_err(|_| bad(line, "community"))?,
                            )),
                            _ => return Err(bad(line, "community")),
                        }
                    }
                }
                "BGP.large_community" => {
                    for t in tuples(value) {
                        match t.as_slice() {
                            [a, b, d] => r.large_communities.push((
                                a.parse().map_err(|_| bad(line, "large community"))?,
                                b.parse().map_err(|_| bad(line, "large community"))?,
                                d.parse().map_err(|_| bad(line, "large community"))?,
                            )),
                            _ => return Err(bad(line, "large community")),
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        // A route line: "<prefix> <dest> [<proto> <since> ...] ..." or, for a further route
        // of the same prefix, the same without the prefix and indented by spaces.
        routes.extend(current.take());
        let rest = if line.starts_with(' ') {
            line
        } else {
            let (p, rest) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| bad(line, "no route after the prefix"))?;
            prefix = Some(p.parse().map_err(|_| bad(line, "prefix"))?);
            rest
        };
        let Some(p) = prefix else {
            return Err(bad(line, "route before any prefix"));
        };
        let proto = rest
            .split_once('[')
            .and_then(|(_, r)| r.split_whitespace().next())
            .map(|s| s.trim_end_matches(']'))
            .ok_or_else(|| bad(line, "no [protocol ...]"))?;
        if let Some(from) = protocols.get(proto) {
            current = Some(LearnedRoute::empty(p, *from, None));
        }
    }
    routes.extend(current);
    Ok(routes)
}

/// `(a,b) (c, d, e)` → `[["a","b"], ["c","d","e"]]`.
fn tuples(value: &str) -> Vec<Vec<String>> {
    value
        .split(')')
        .filter_map(|t| t.trim().strip_prefix('('))
        .map(|t| t.split(',').map(|s| s.trim().to_string()).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::bgp_peers::NeighborSpec;
    use std::net::Ipv4Addr;

    #[test]
    fn show_route_all_parses_bgp_routes_only() {
        let out = "Table master4:
10.64.1.0/26         unicast [peer_10_0_0_2 19:04:19.188] * (100) [i]
\tvia 10.0.0.2 on va
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 
\tBGP.next_hop: 10.0.0.2
\tBGP.local_pref: 100
10.64.0.0/26         unicast [peer_10_0_0_2 19:04:19.175 from 10.0.0.9] * (100) [AS65001i]
\tvia 10.0.0.2 on va
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65000 {65001 65002}
\tBGP.next_hop: 10.0.0.2 fe80::1
\tBGP.local_pref: 100
\tBGP.community: (64512,100) (65000,7)
\tBGP.large_community: (64512, 1, 2)
\tBGP.med: 5
\tBGP.originator_id: 10.0.1.2
\tBGP.cluster_list: 9.9.9.9 8.8.8.8
                     unicast [peer_10_0_0_3 19:04:20.000] (100) [i]
\tvia 10.0.0.3 on va
\tType: BGP univ
\tBGP.next_hop: 10.0.0.3
10.128.0.0/26        blackhole [announced4 19:04:10.186] * (200)
\tType: static univ
10.0.0.0/24          unicast [direct1 19:04:10.188] * (240)
\tdev va
\tType: device univ
";
        let protos: BTreeMap<String, IpAddr> = [
            ("peer_10_0_0_2".to_string(), "10.0.0.2".parse().unwrap()),
            ("peer_10_0_0_3".to_string(), "10.0.0.3".parse().unwrap()),
        ]
        .into();
        let r = parse_routes(out, &protos).unwrap();
        assert_eq!(r.len(), 3, "{r:#?}");
        assert_eq!(r[0].prefix, "10.64.1.0/26".parse::<IpNet>().unwrap());
        assert_eq!(r[0].as_path, Vec::<u32>::new());
        assert_eq!(r[0].local_pref, Some(100));
        assert_eq!(r[1].as_path, vec![65000, 65001, 65002]);
        assert_eq!(r[1].next_hop, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(r[1].communities, vec![(64512, 100), (65000, 7)]);
        assert_eq!(r[1].large_communities, vec![(64512, 1, 2)]);
        assert_eq!(r[1].med, Some(5));
        assert_eq!(r[1].originator_id, Some("10.0.1.2".parse().unwrap()));
        assert_eq!(
            r[1].cluster_list,
            vec![Ipv4Addr::new(9, 9, 9, 9), Ipv4Addr::new(8, 8, 8, 8)]
        );
        assert_eq!(r[2].prefix, "10.64.0.0/26".parse::<IpNet>().unwrap());
        assert_eq!(r[2].from, "10.0.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(r[2].stale, None);
        assert!(parse_routes("nonsense-prefix unicast [x]", &protos).is_err());
    }

    #[test]
    fn bgp_state_from_protocols_all() {
        let out = "Name       Proto      Table      State  Since         Info
peer_10_0_0_2 BGP        ---        start  19:05:39.197  Active        Socket: Connection refused
  BGP state:          Active
    Neighbor address: 10.0.0.2";
        assert_eq!(parse_bgp_state(out).unwrap(), "Active");
        let down = "Name       Proto      Table      State  Since         Info
peer_10_0_0_2 BGP        ---        down   19:05:39.197";
        assert_eq!(parse_bgp_state(down).unwrap(), "down");
        assert!(parse_bgp_state("syntax error").is_err());
    }

    #[test]
    fn config_has_every_requested_knob() {
        let mut spec = DaemonSpec::new("ns", Ipv4Addr::new(10, 0, 0, 1), 64512)
            .listen_address("10.0.0.1".parse().unwrap())
            .program_kernel()
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
        let mut ann = BTreeMap::new();
        ann.insert(
            "10.128.0.0/26".parse().unwrap(),
            RouteAttrs::default()
                .next_hop("10.0.0.9".parse().unwrap())
                .community(64512, 7)
                .large_community(64512, 1, 2)
                .as_path(&[65000, 65001])
                .local_pref(200)
                .med(5),
        );
        ann.insert(
            "10.128.0.64/26".parse().unwrap(),
            RouteAttrs::default()
                .next_hop("10.0.0.9".parse().unwrap())
                .community(64512, 7)
                .large_community(64512, 1, 2)
                .as_path(&[65000, 65001])
                .local_pref(200)
                .med(5),
        );
        ann.insert("fd00:1::/64".parse().unwrap(), RouteAttrs::default());
        let c = config(&spec, Path::new("/tmp/x.log"), &ann).unwrap();
        for want in [
            "router id 10.0.0.1;",
            "protocol kernel kernel4",
            "route 10.128.0.0/26 blackhole;",
            "route fd00:1::/64 blackhole;",
            "protocol bgp peer_10_0_0_2 {",
            "local 10.0.0.1 as 64512;",
            "neighbor 10.0.0.2 port 1790 as 64512;",
            "password \"s3cret\";",
            "rr client;",
            "rr cluster id 1.2.3.4;",
            "graceful restart time 30;",
            "hold time 9;",
            "passive on;",
            "add paths on;",
            "if net ~ [ 10.128.0.0/26, 10.128.0.64/26 ] then { bgp_next_hop = 10.0.0.9; \
             bgp_community.add((64512,7)); bgp_large_community.add((64512,1,2)); \
             bgp_path.prepend(65001); bgp_path.prepend(65000); bgp_local_pref = 200; bgp_med = 5; }",
            "protocol bgp peer_fd00__3 {",
            "  local as 64512;",
            "neighbor fd00::3 as 65000;",
            "graceful restart off;",
            "if proto = \"announced6\"",
        ] {
            assert!(c.contains(want), "missing {want:?} in:\n{c}");
        }
        spec.program_kernel = false;
        let c = config(&spec, Path::new("/tmp/x.log"), &BTreeMap::new()).unwrap();
        assert!(!c.contains("protocol kernel"), "{c}");
    }
}
