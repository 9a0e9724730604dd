//! `calicoctl node status` (`commands/node/status.go`), with Calico's messages, order and
//! table. Calico asks BIRD (`show protocols` on `/var/run/calico/bird.ctl` and `bird6.ctl`);
//! calico-rs asks its own speaker once on its status socket (`calico-bgp-status`) and splits
//! the answer into the IPv4 and IPv6 tables that Calico's two BIRD daemons gave.
//!
//! What Calico does, and what is kept:
//! * Not root: `Need super user privileges: Operation not permitted` on stdout, exit 1
//!   (`permissions.go enforceRoot`, checked on the real uid).
//! * No Felix process (`calico-felix`, or `calico-node -felix`): `Calico process is not
//!   running.` on stderr, exit 1. Our agent is `calico-node` run without arguments.
//! * Else `Calico process is running.`, then per family `IPv4 BGP status` and the table, or
//!   `No IPv4 peers found.`; when no BGP daemon runs (CALICO_NETWORKING_BACKEND none/vxlan),
//!   `The BGP backend process (BIRD) is not running.` instead; always a last empty line.
//! * A daemon that cannot be connected prints an error line under each heading and still
//!   exits 0; one that answers garbage or nothing in 2 s (`birdTimeOut`) ends the command with
//!   `error executing command: ...` on stderr, exit 1.
//! * Peers are listed in the speaker's order; SINCE is BIRD's `show protocols` time
//!   (`09:47:20` within 20 hours, else `2016-11-21`), in calicoctl's local time zone;
//!   `Local_Workload_` peers are not listed (their names never matched calicoctl's
//!   `^(Global|Node|Mesh)_`).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use calico_bgp_status::bird::protocol_time;
use calico_bgp_status::{Family, SpeakerStatus, StatusError};
use chrono::TimeZone;

use crate::ipam::gotable::GoTable;

/// How long the speaker may take to answer (status.go's `birdTimeOut`).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the command prints and its exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl Report {
    /// Prints the report and exits with its code.
    pub fn emit(&self) -> ! {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(self.stdout.as_bytes());
        let _ = out.flush();
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(self.stderr.as_bytes());
        let _ = err.flush();
        std::process::exit(self.code)
    }
}

/// Whether a Felix process runs on this host, or why that could not be found out.
pub type ProcessScan = Result<bool, String>;

/// Builds the report from what was observed. `query` is only called when Calico would query
/// BIRD (root, and the node's processes running).
pub fn status_report<Tz: TimeZone>(
    uid: u32,
    processes: ProcessScan,
    query: impl FnOnce() -> Result<SpeakerStatus, StatusError>,
    now: SystemTime,
    tz: &Tz,
) -> Report
where
    Tz::Offset: std::fmt::Display,
{
    let mut r = Report::default();
    if uid != 0 {
        r.stdout
            .push_str("Need super user privileges: Operation not permitted\n");
        r.code = 1;
        return r;
    }
    // Calico prints a failure to list processes and carries on with an empty list.
    let running = processes.unwrap_or_else(|e| {
        r.stdout.push_str(&e);
        r.stdout.push('\n');
        false
    });
    if !running {
        r.stderr.push_str("Calico process is not running.\n");
        r.code = 1;
        return r;
    }
    r.stdout.push_str("Calico process is running.\n");

    match query() {
        Ok(status) => {
            for family in [Family::Ipv4, Family::Ipv6] {
                r.stdout.push_str(&family_section(&status, family, now, tz));
            }
        }
        Err(StatusError::NotRunning { .. }) => {
            r.stdout
                .push_str("\nThe BGP backend process (BIRD) is not running.\n");
        }
        Err(e @ StatusError::Unreachable { .. }) => {
            // Calico: "Error querying BIRD: unable to connect to BIRDv4 socket: <err>", with
            // no newline (the next heading or the final empty line ends it), then goes on.
            for family in [Family::Ipv4, Family::Ipv6] {
                let n = family.number();
                r.stdout.push_str(&format!(
                    "\nIPv{n} BGP status\nError querying the BGP speaker: {e}"
                ));
            }
        }
        Err(e) => {
            // Calico has printed the IPv4 heading when reading the answer fails.
            r.stdout.push_str("\nIPv4 BGP status\n");
            r.stderr
                .push_str(&format!("error executing command: {e}\n"));
            r.code = 1;
            return r;
        }
    }
    // "Have to manually enter an empty line because the table print library prints the last
    // line" (status.go).
    r.stdout.push('\n');
    r
}

/// `IPv<n> BGP status` and its table (or the no-peers line).
fn family_section<Tz: TimeZone>(
    status: &SpeakerStatus,
    family: Family,
    now: SystemTime,
    tz: &Tz,
) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let n = family.number();
    let mut out = format!("\nIPv{n} BGP status\n");
    let mut table = GoTable::new(&["Peer address", "Peer type", "State", "Since", "Info"]);
    let mut rows = 0;
    for p in status.peers_of(family) {
        let Some(peer_type) = p.peer_type.display() else {
            continue;
        };
        table.row(vec![
            p.display_address(),
            peer_type.to_string(),
            p.state.clone(),
            protocol_time(p.since, now, tz),
            p.info_column(),
        ]);
        rows += 1;
    }
    if rows == 0 {
        out.push_str(&format!("No IPv{n} peers found.\n"));
    } else {
        out.push_str(&table.render());
    }
    out
}

/// Is a command line that of a running Felix? Calico looks for `calico-felix`, or
/// `calico-node -felix` (how runit starts Felix in calico/node); calico-rs's agent (Felix
/// included) is `calico-node` with no arguments. The program is matched by its file name, so
/// `/usr/local/bin/calico-node` counts; one-shot runs (`-startup`, `-felix-live`, `-v`) do not.
pub fn is_felix(argv: &[&str]) -> bool {
    let Some(prog) = argv.first() else {
        return false;
    };
    let name = prog.rsplit('/').next().unwrap_or(prog);
    match name {
        "calico-felix" => true,
        "calico-node" => matches!(argv[1..], [] | ["-felix"]),
        _ => false,
    }
}

/// Scans `proc_root` (`/proc`) for a Felix process. Processes that vanish or hide their
/// command line (kernel threads, zombies, other users under `hidepid`) are skipped, as
/// Calico's gopsutil scan skips them.
pub fn felix_running(proc_root: &Path) -> ProcessScan {
    let entries = std::fs::read_dir(proc_root)
        .map_err(|e| format!("cannot list processes in {}: {e}", proc_root.display()))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&raw);
        let argv: Vec<&str> = text.trim_end_matches('\0').split('\0').collect();
        if !raw.is_empty() && is_felix(&argv) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The real uid of this process (Calico's `os.Getuid()`).
fn real_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// `calicoctl node status` on this host.
pub fn run_status() -> Report {
    let socket = calico_bgp_status::socket_path_from_env();
    status_report(
        real_uid(),
        felix_running(Path::new("/proc")),
        || calico_bgp_status::query(&socket, QUERY_TIMEOUT),
        SystemTime::now(),
        &chrono::Local,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::IpAddr;

    use calico_bgp_status::bird::protocol_name;
    use calico_bgp_status::{PeerStatus, PeerType, RemoteError};
    use chrono::Utc;

    use super::*;

    /// 2016-11-21 09:47:20 UTC.
    const T0: u64 = 1_479_721_640;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn peer(
        addr: &str,
        port: u16,
        t: PeerType,
        state: &str,
        bgp: &str,
        info: &str,
        since: u64,
    ) -> PeerStatus {
        let a: IpAddr = addr.parse().unwrap();
        PeerStatus {
            name: protocol_name(t, a, (port != 179).then_some(port)),
            peer_address: a,
            port,
            peer_type: t,
            state: state.into(),
            bgp_state: bgp.into(),
            since: at(since),
            info: info.into(),
            routes_imported: 0,
            routes_exported: 0,
            family: Family::of(a),
        }
    }

    fn speaker(peers: Vec<PeerStatus>) -> SpeakerStatus {
        SpeakerStatus {
            router_id: "172.17.8.101".parse().unwrap(),
            as_number: 64512,
            up_since: at(T0 - 3600),
            graceful_restart_in_progress: false,
            peers,
        }
    }

    fn report(q: Result<SpeakerStatus, StatusError>) -> Report {
        status_report(0, Ok(true), || q, at(T0 + 60), &Utc)
    }

    #[test]
    fn peers_of_both_families() {
        let s = speaker(vec![
            peer(
                "172.17.8.102",
                179,
                PeerType::NodeMesh,
                "up",
                "Established",
                "",
                T0,
            ),
            peer(
                "172.17.8.103",
                179,
                PeerType::Global,
                "start",
                "Active",
                "Socket: Connection refused",
                T0 - 2 * 86_400,
            ),
            peer(
                "172.17.8.104",
                1790,
                PeerType::NodeSpecific,
                "start",
                "Connect",
                "",
                T0,
            ),
            peer(
                "10.65.0.5",
                179,
                PeerType::LocalWorkload,
                "up",
                "Established",
                "",
                T0,
            ),
            peer(
                "fd80:24e2:f998:72d7::2",
                179,
                PeerType::NodeMesh,
                "up",
                "Established",
                "",
                T0,
            ),
        ]);
        let r = report(Ok(s));
        // Columns are as wide as their widest cell (the port-suffixed address), headers
        // upper-cased and left-aligned (go-pretty's default style, as calicoctl renders it).
        let want = "\
Calico process is running.

IPv4 BGP status
+------------------------+-------------------+-------+------------+-----------------------------------+
| PEER ADDRESS           | PEER TYPE         | STATE | SINCE      | INFO                              |
+------------------------+-------------------+-------+------------+-----------------------------------+
| 172.17.8.102           | node-to-node mesh | up    | 09:47:20   | Established                       |
| 172.17.8.103           | global            | start | 2016-11-19 | Active Socket: Connection refused |
| 172.17.8.104.port.1790 | node specific     | start | 09:47:20   | Connect                           |
+------------------------+-------------------+-------+------------+-----------------------------------+

IPv6 BGP status
+------------------------+-------------------+-------+----------+-------------+
| PEER ADDRESS           | PEER TYPE         | STATE | SINCE    | INFO        |
+------------------------+-------------------+-------+----------+-------------+
| fd80:24e2:f998:72d7::2 | node-to-node mesh | up    | 09:47:20 | Established |
+------------------------+-------------------+-------+----------+-------------+

";
        assert_eq!(r.stdout, want);
        assert_eq!(r.stderr, "");
        assert_eq!(r.code, 0);
    }

    #[test]
    fn no_peers() {
        let r = report(Ok(speaker(vec![])));
        assert_eq!(
            r.stdout,
            "Calico process is running.\n\nIPv4 BGP status\nNo IPv4 peers found.\n\n\
             IPv6 BGP status\nNo IPv6 peers found.\n\n"
        );
        assert_eq!(r.code, 0);
        // Only local workload peers: nothing Calico would list.
        let r = report(Ok(speaker(vec![peer(
            "10.65.0.5",
            179,
            PeerType::LocalWorkload,
            "up",
            "Established",
            "",
            T0,
        )])));
        assert!(r.stdout.contains("No IPv4 peers found.\n"), "{}", r.stdout);
    }

    #[test]
    fn not_root() {
        let r = status_report(
            1000,
            Ok(true),
            || panic!("must not query without root"),
            at(T0),
            &Utc,
        );
        assert_eq!(
            r,
            Report {
                stdout: "Need super user privileges: Operation not permitted\n".into(),
                stderr: String::new(),
                code: 1,
            }
        );
    }

    #[test]
    fn calico_not_running() {
        let r = status_report(0, Ok(false), || panic!("must not query"), at(T0), &Utc);
        assert_eq!(
            r,
            Report {
                stdout: String::new(),
                stderr: "Calico process is not running.\n".into(),
                code: 1,
            }
        );
        let r = status_report(
            0,
            Err("cannot list processes in /proc: denied".into()),
            || panic!("must not query"),
            at(T0),
            &Utc,
        );
        assert_eq!(r.stdout, "cannot list processes in /proc: denied\n");
        assert_eq!(r.stderr, "Calico process is not running.\n");
        assert_eq!(r.code, 1);
    }

    fn io(kind: std::io::ErrorKind) -> std::io::Error {
        std::io::Error::from(kind)
    }

    #[test]
    fn bgp_speaker_not_running() {
        let r = report(Err(StatusError::NotRunning {
            path: "/var/run/calico/bgp.ctl".into(),
            source: io(std::io::ErrorKind::NotFound),
        }));
        assert_eq!(
            r.stdout,
            "Calico process is running.\n\nThe BGP backend process (BIRD) is not running.\n\n"
        );
        assert_eq!(r.code, 0);
    }

    #[test]
    fn bgp_socket_unreachable() {
        let e = StatusError::Unreachable {
            path: "/var/run/calico/bgp.ctl".into(),
            source: io(std::io::ErrorKind::PermissionDenied),
        };
        let msg = e.to_string();
        let r = report(Err(e));
        assert_eq!(
            r.stdout,
            format!(
                "Calico process is running.\n\nIPv4 BGP status\nError querying the BGP speaker: \
                 {msg}\nIPv6 BGP status\nError querying the BGP speaker: {msg}\n"
            )
        );
        assert_eq!(r.code, 0);
    }

    #[test]
    fn bgp_speaker_answers_badly() {
        let cases = [
            StatusError::Timeout {
                path: "/x".into(),
                timeout: QUERY_TIMEOUT,
            },
            StatusError::Protocol("calico-node sent an invalid BGP status line".into()),
            StatusError::Remote(RemoteError::new("version_mismatch", "speaks 2")),
        ];
        for e in cases {
            let msg = e.to_string();
            let r = report(Err(e));
            assert_eq!(r.stdout, "Calico process is running.\n\nIPv4 BGP status\n");
            assert_eq!(r.stderr, format!("error executing command: {msg}\n"));
            assert_eq!(r.code, 1);
        }
    }

    #[test]
    fn felix_command_lines() {
        let yes: &[&[&str]] = &[
            &["calico-node"],
            &["/usr/local/bin/calico-node"],
            &["calico-node", "-felix"],
            &["calico-felix"],
            &["/usr/bin/calico-felix", "--config-file", "/etc/felix.cfg"],
        ];
        let no: &[&[&str]] = &[
            &[],
            &[""],
            &["calico-node", "-startup"],
            &["calico-node", "-felix-live", "-felix-ready"],
            &["calico-node", "-v"],
            &["calicoctl", "node", "status"],
            &["bird", "-R", "-s", "/var/run/calico/bird.ctl"],
            &["/opt/calico-node-helper"],
            &["calico-node.sh"],
        ];
        for argv in yes {
            assert!(is_felix(argv), "{argv:?}");
        }
        for argv in no {
            assert!(!is_felix(argv), "{argv:?}");
        }
    }

    #[test]
    fn scans_a_proc_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |pid: &str, cmdline: &[u8]| {
            let d = dir.path().join(pid);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cmdline"), cmdline).unwrap();
        };
        mk("1", b"/sbin/init\0");
        mk("2", b"");
        mk("self", b"calico-node\0");
        mk("40", b"calico-node\0-startup\0");
        assert_eq!(felix_running(dir.path()), Ok(false));
        mk("41", b"/usr/bin/calico-node\0");
        assert_eq!(felix_running(dir.path()), Ok(true));
        let e = felix_running(&dir.path().join("missing")).unwrap_err();
        assert!(e.contains("cannot list processes"), "{e}");
    }
}
