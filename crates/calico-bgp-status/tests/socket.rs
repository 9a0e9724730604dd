//! The client against the server (and against misbehaving fake servers) over real Unix
//! sockets in a temporary directory.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener as StdListener, UnixStream as StdStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use calico_bgp_status::bird::protocol_name;
use calico_bgp_status::{
    Family, PeerStatus, PeerType, SpeakerStatus, StatusError, StatusProvider, codes, query, serve,
};

fn peer(addr: &str, t: PeerType, state: &str, bgp: &str, info: &str) -> PeerStatus {
    let a = addr.parse().unwrap();
    PeerStatus {
        name: protocol_name(t, a, None),
        peer_address: a,
        port: 179,
        peer_type: t,
        state: state.into(),
        bgp_state: bgp.into(),
        since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_800_000),
        info: info.into(),
        routes_imported: 2,
        routes_exported: 5,
        family: Family::of(a),
    }
}

fn status(n: u64) -> SpeakerStatus {
    SpeakerStatus {
        router_id: "10.0.0.1".parse().unwrap(),
        as_number: 64512,
        up_since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_700_000 + n),
        graceful_restart_in_progress: n % 2 == 1,
        peers: vec![
            peer("10.0.0.2", PeerType::NodeMesh, "up", "Established", ""),
            peer(
                "10.0.0.3",
                PeerType::Global,
                "start",
                "Active",
                "Socket: Connection refused",
            ),
            peer("fd00::3", PeerType::NodeSpecific, "start", "Connect", ""),
        ],
    }
}

/// A provider whose answer changes on every call, so a test sees it is asked each time.
fn counting_provider() -> (StatusProvider, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    let p: StatusProvider = Arc::new(move || status(c.fetch_add(1, Ordering::SeqCst)));
    (p, calls)
}

fn sock(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("run/calico/bgp.ctl")
}

/// Runs a blocking client call off the runtime's thread.
async fn query_async(path: &Path, timeout: Duration) -> Result<SpeakerStatus, StatusError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || query(&path, timeout))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_returns_a_fresh_snapshot_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    let (provider, calls) = counting_provider();
    let server = serve(&path, provider).await.unwrap();
    // The parent directory was created and the socket is owner+group only.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    let first = query_async(&path, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first, status(0));
    let second = query_async(&path, Duration::from_secs(5)).await.unwrap();
    assert_eq!(second, status(1));
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    server.abort();
    let _ = server.await;
    assert!(
        !path.exists(),
        "the socket file is removed when the server stops"
    );
    let e = query_async(&path, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(e, StatusError::NotRunning { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_requests_on_one_connection_and_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    let (provider, _) = counting_provider();
    let server = serve(&path, provider).await.unwrap();
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        let mut s = StdStream::connect(&p).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        let mut ask = |req: &[u8]| {
            s.write_all(req).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            serde_json::from_str::<serde_json::Value>(&line).unwrap()
        };
        let a = ask(b"{\"version\":1,\"request\":{\"op\":\"status\"}}\n");
        assert_eq!(a["ok"]["result"], "status");
        assert_eq!(a["ok"]["peers"][1]["info"], "Socket: Connection refused");
        // Blank lines are skipped; a BIRD command gets a clear refusal, not a hang.
        let b = ask(b"\n\nshow protocols\n");
        assert_eq!(b["error"]["code"], codes::BAD_REQUEST);
        let c = ask(b"{\"version\":7,\"request\":{\"op\":\"status\"}}\n");
        assert_eq!(c["error"]["code"], codes::VERSION_MISMATCH);
        // The connection still serves after errors.
        let d = ask(b"{\"version\":1,\"request\":{\"op\":\"status\"}}\n");
        assert_eq!(d["ok"]["graceful_restart_in_progress"], true);
        // An oversized line is refused and the connection closed.
        let huge = vec![b'x'; 10_000];
        let _ = s.write_all(&huge);
        line.clear();
        r.read_line(&mut line).unwrap();
        let e: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(e["error"]["code"], codes::REQUEST_TOO_LARGE);
        // Closed: EOF, or a reset since the rest of the line was left unread.
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("expected the connection closed, got {other:?}: {line}"),
        }
    })
    .await
    .unwrap();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_live_and_foreign_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();

    // A socket file nobody listens on (a crashed calico-node) is replaced.
    drop(StdListener::bind(&path).unwrap());
    let (provider, _) = counting_provider();
    let server = serve(&path, provider.clone()).await.unwrap();
    assert_eq!(
        query_async(&path, Duration::from_secs(5)).await.unwrap(),
        status(0)
    );

    // A second server on a live socket is refused and the first keeps serving.
    let e = serve(&path, provider.clone()).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse, "{e}");
    assert!(query_async(&path, Duration::from_secs(5)).await.is_ok());
    server.abort();
    let _ = server.await;

    // Something that is not a socket is never deleted.
    std::fs::write(&path, b"keep me").unwrap();
    let e = serve(&path, provider).await.unwrap_err();
    assert!(e.to_string().contains("is not a socket"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_socket_is_not_removed_by_the_old_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = sock(&dir);
    let (provider, _) = counting_provider();
    let old = serve(&path, provider.clone()).await.unwrap();
    // Someone removes the file and a new server binds the same path.
    std::fs::remove_file(&path).unwrap();
    let new = serve(&path, provider).await.unwrap();
    old.abort();
    let _ = old.await;
    assert!(path.exists());
    assert!(query_async(&path, Duration::from_secs(5)).await.is_ok());
    new.abort();
}

/// A fake server that accepts one connection, reads the request and answers `reply` (raw
/// bytes), then waits `linger` before closing.
fn fake_server(path: &Path, reply: &'static [u8], linger: Duration) -> std::thread::JoinHandle<()> {
    let l = StdListener::bind(path).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = [0u8; 256];
        let _ = s.read(&mut req);
        let _ = s.write_all(reply);
        std::thread::sleep(linger);
    })
}

#[test]
fn client_errors_from_misbehaving_servers() {
    type Check = fn(&StatusError) -> bool;
    let cases: &[(&[u8], Check, &str)] = &[
        (
            b"",
            |e| matches!(e, StatusError::Protocol(_)),
            "without answering",
        ),
        (
            b"{\"version\":1,\"ok\":",
            |e| matches!(e, StatusError::Protocol(_)),
            "in the middle of its reply",
        ),
        (
            b"0001 BIRD 1.6.8 ready.\n",
            |e| matches!(e, StatusError::Protocol(_)),
            "not valid JSON",
        ),
        (
            b"{\"version\":2,\"error\":{\"code\":\"version_mismatch\",\"message\":\"speaks 2\"}}\n",
            |e| matches!(e, StatusError::Remote(r) if r.code == "version_mismatch"),
            "speaks 2",
        ),
    ];
    for (reply, check, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgp.ctl");
        let t = fake_server(&path, reply, Duration::ZERO);
        let e = query(&path, Duration::from_secs(5)).unwrap_err();
        assert!(check(&e), "{e:?}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
        t.join().unwrap();
    }
}

#[test]
fn a_silent_server_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bgp.ctl");
    let t = fake_server(&path, b"", Duration::from_millis(700));
    let start = Instant::now();
    let e = query(&path, Duration::from_millis(300)).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, StatusError::Timeout { .. }), "{e:?}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    t.join().unwrap();
}

#[test]
fn a_trickling_server_is_bounded_by_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bgp.ctl");
    let l = StdListener::bind(&path).unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        // One byte every 100 ms, never a newline: each read succeeds, the whole does not.
        for _ in 0..20 {
            if s.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let start = Instant::now();
    let e = query(&path, Duration::from_millis(400)).unwrap_err();
    assert!(matches!(e, StatusError::Timeout { .. }), "{e:?}");
    assert!(start.elapsed() < Duration::from_millis(1500));
    t.join().unwrap();
}
