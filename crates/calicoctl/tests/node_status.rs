//! `calicoctl node status` as a user runs it: the built binary, in its own PID namespace
//! (`unshare --pid --mount-proc`, so that a calico-node started by another test on this host
//! cannot be mistaken for ours), with or without a stand-in Felix process, against a status
//! socket served by `calico-bgp-status` in this test.
//!
//! Needs root (Calico's command does, and so do PID namespaces). Without root the tests skip
//! with a note; under `CALICO_REQUIRE_ROOT=1` they fail instead.

#![allow(clippy::unwrap_used)]

use std::os::unix::net::UnixListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use calico_bgp_status::bird::protocol_name;
use calico_bgp_status::{Family, PeerStatus, PeerType, SpeakerStatus, StatusProvider, serve};

const CALICOCTL: &str = env!("CARGO_BIN_EXE_calicoctl");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Whether the privileged tests can run; panics under `CALICO_REQUIRE_ROOT=1` when not.
fn privileged(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    let unshare = root
        && Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if unshare {
        return true;
    }
    assert!(
        std::env::var("CALICO_REQUIRE_ROOT").as_deref() != Ok("1"),
        "{test}: needs root and `unshare --pid --mount-proc` (CALICO_REQUIRE_ROOT=1)"
    );
    eprintln!("{test}: skipped (needs root and PID namespaces)");
    false
}

/// Runs `calicoctl node status` in a new PID namespace, with a process named `calico-node`
/// (the agent's command line) running there first when `felix` is set.
fn node_status(felix: bool, socket: &Path) -> Out {
    let script = if felix {
        // `cat` fed by a sleeping pipe stays up; wait until it has exec'd under its new name
        // so the scan cannot see the half-started subshell.
        "sleep 600 | exec -a calico-node cat &
         for _ in $(seq 1000); do
           [ \"$(tr '\\0' ' ' < /proc/$!/cmdline)\" = 'calico-node ' ] && break
           sleep 0.01
         done
         exec \"$0\" node status"
    } else {
        "exec \"$0\" node status"
    };
    let out = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--mount-proc",
            "bash",
            "-c",
            script,
            CALICOCTL,
        ])
        .env("CALICO_BGP_STATUS_SOCKET", socket)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn peer(
    addr: &str,
    t: PeerType,
    state: &str,
    bgp: &str,
    info: &str,
    since: SystemTime,
) -> PeerStatus {
    let a = addr.parse().unwrap();
    PeerStatus {
        name: protocol_name(t, a, None),
        peer_address: a,
        port: 179,
        peer_type: t,
        state: state.into(),
        bgp_state: bgp.into(),
        since,
        info: info.into(),
        routes_imported: 1,
        routes_exported: 1,
        family: Family::of(a),
    }
}

fn tmp_socket() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bgp.ctl");
    (dir, path)
}

#[test]
fn needs_root() {
    if !privileged("needs_root") {
        return;
    }
    // The binary must be reachable by an unprivileged user: run a copy from a world-readable
    // directory as nobody.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("calicoctl");
    std::fs::copy(CALICOCTL, &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .args(["node", "status"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Need super user privileges: Operation not permitted\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn calico_not_running() {
    if !privileged("calico_not_running") {
        return;
    }
    let (_dir, socket) = tmp_socket();
    let out = node_status(false, &socket);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "Calico process is not running.\n");
    assert_eq!(out.code, 1);
}

#[test]
fn bgp_speaker_not_running() {
    if !privileged("bgp_speaker_not_running") {
        return;
    }
    let (_dir, socket) = tmp_socket();
    let out = node_status(true, &socket);
    assert_eq!(
        out.stdout,
        "Calico process is running.\n\nThe BGP backend process (BIRD) is not running.\n\n",
        "stderr: {}",
        out.stderr
    );
    assert_eq!(out.code, 0);
}

#[test]
fn speaker_silent_for_two_seconds() {
    if !privileged("speaker_silent_for_two_seconds") {
        return;
    }
    let (_dir, socket) = tmp_socket();
    // Accepts (the kernel queues the connection) but never answers.
    let _listener = StdListener::bind(&socket).unwrap();
    let start = Instant::now();
    let out = node_status(true, &socket);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        out.stdout,
        "Calico process is running.\n\nIPv4 BGP status\n"
    );
    assert!(
        out.stderr
            .starts_with("error executing command: the BGP speaker at ")
            && out.stderr.contains("did not answer within 2s"),
        "{}",
        out.stderr
    );
    assert_eq!(out.code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_from_the_speaker() {
    if !privileged("peers_from_the_speaker") {
        return;
    }
    let (_dir, socket) = tmp_socket();
    // 2016-11-21 09:47:20 UTC: older than 20 hours, so printed as a date.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_479_721_640);
    let recent = SystemTime::now() - Duration::from_secs(5);
    let recent_text = chrono::DateTime::<chrono::Utc>::from(recent)
        .format("%H:%M:%S")
        .to_string();
    let status = SpeakerStatus {
        router_id: "172.17.8.101".parse().unwrap(),
        as_number: 64512,
        up_since: old,
        graceful_restart_in_progress: false,
        peers: vec![
            peer(
                "172.17.8.102",
                PeerType::NodeMesh,
                "up",
                "Established",
                "",
                recent,
            ),
            peer(
                "172.17.8.103",
                PeerType::Global,
                "start",
                "Active",
                "Socket: Connection refused",
                old,
            ),
            peer(
                "fd00::3",
                PeerType::NodeSpecific,
                "start",
                "Connect",
                "",
                old,
            ),
        ],
    };
    let provider: StatusProvider = Arc::new(move || status.clone());
    let server = serve(&socket, provider).await.unwrap();
    let s = socket.clone();
    let out = tokio::task::spawn_blocking(move || node_status(true, &s))
        .await
        .unwrap();
    server.abort();
    let want = format!(
        "\
Calico process is running.

IPv4 BGP status
+--------------+-------------------+-------+------------+-----------------------------------+
| PEER ADDRESS | PEER TYPE         | STATE | SINCE      | INFO                              |
+--------------+-------------------+-------+------------+-----------------------------------+
| 172.17.8.102 | node-to-node mesh | up    | {recent_text}   | Established                       |
| 172.17.8.103 | global            | start | 2016-11-21 | Active Socket: Connection refused |
+--------------+-------------------+-------+------------+-----------------------------------+

IPv6 BGP status
+--------------+---------------+-------+------------+---------+
| PEER ADDRESS | PEER TYPE     | STATE | SINCE      | INFO    |
+--------------+---------------+-------+------------+---------+
| fd00::3      | node specific | start | 2016-11-21 | Connect |
+--------------+---------------+-------+------------+---------+

"
    );
    assert_eq!(out.stdout, want, "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "");
    assert_eq!(out.code, 0);
}
