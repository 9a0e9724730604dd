//! The client against the server over real Unix sockets in a temporary directory.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calico_ipam_rpc::{
    AssignIpsRequest, AssignRequest, Assigned, IpamAgentClient, IpamBackend, MAX_LINE_BYTES,
    RemoteError, RpcError, codes, serve,
};
use ipnet::{IpNet, Ipv4Net};
use tokio_util::sync::CancellationToken;

/// A tiny in-memory allocator over 10.0.0.0/26 with handles, enough to check that requests
/// and answers are carried faithfully.
struct FakeBackend {
    node: String,
    state: Mutex<FakeState>,
    delay: Duration,
}

#[derive(Default)]
struct FakeState {
    by_ip: BTreeMap<Ipv4Addr, String>,
    last_attrs: Option<BTreeMap<String, String>>,
}

impl FakeBackend {
    fn new(node: &str) -> Arc<Self> {
        Arc::new(FakeBackend {
            node: node.into(),
            state: Mutex::default(),
            delay: Duration::ZERO,
        })
    }
}

#[async_trait::async_trait]
impl IpamBackend for FakeBackend {
    fn node_name(&self) -> &str {
        &self.node
    }

    async fn assign(&self, req: &AssignRequest) -> Result<Assigned, RemoteError> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if req.num6 > 0 {
            return Err(RemoteError::new(codes::NO_POOL, "no IPv6 pool"));
        }
        let mut st = self.state.lock().unwrap();
        st.last_attrs = Some(req.attrs.clone());
        let block: Ipv4Net = "10.0.0.0/26".parse().unwrap();
        let mut out = Vec::new();
        for ip in block.hosts() {
            if out.len() == req.num4 as usize {
                break;
            }
            if !st.by_ip.contains_key(&ip) {
                out.push(ip);
            }
        }
        if out.len() < req.num4 as usize {
            return Err(RemoteError::new(
                codes::POOL_EXHAUSTED,
                format!("only {} free", out.len()),
            ));
        }
        for ip in &out {
            st.by_ip.insert(*ip, req.handle_id.clone());
        }
        Ok(Assigned {
            ipv4: out
                .into_iter()
                .map(|ip| IpNet::V4(Ipv4Net::new(ip, 26).unwrap()))
                .collect(),
            ipv6: vec![],
        })
    }

    /// All or nothing over 10.0.0.0/26: every address must be free and inside the block.
    async fn assign_ips(&self, req: &AssignIpsRequest) -> Result<Assigned, RemoteError> {
        let mut st = self.state.lock().unwrap();
        st.last_attrs = Some(req.attrs.clone());
        let block: Ipv4Net = "10.0.0.0/26".parse().unwrap();
        let mut v4 = Vec::new();
        for ip in &req.ips {
            let IpAddr::V4(a) = ip else {
                return Err(RemoteError::new(codes::NO_POOL, format!("{ip}: no pool")));
            };
            if !block.contains(a) {
                return Err(RemoteError::new(codes::NO_POOL, format!("{ip}: no pool")));
            }
            if let Some(h) = st.by_ip.get(a) {
                return Err(RemoteError::new(
                    codes::ADDRESS_IN_USE,
                    format!("{ip} is held by {h}"),
                ));
            }
            v4.push(*a);
        }
        for a in &v4 {
            st.by_ip.insert(*a, req.handle_id.clone());
        }
        Ok(Assigned {
            ipv4: v4
                .into_iter()
                .map(|a| IpNet::V4(Ipv4Net::from(a)))
                .collect(),
            ipv6: vec![],
        })
    }

    async fn release_handle(&self, handle_id: &str) -> Result<usize, RemoteError> {
        let mut st = self.state.lock().unwrap();
        let before = st.by_ip.len();
        st.by_ip.retain(|_, h| h != handle_id);
        Ok(before - st.by_ip.len())
    }

    async fn release_ips(
        &self,
        ips: &[IpAddr],
        handle_id: Option<&str>,
    ) -> Result<Vec<IpAddr>, RemoteError> {
        let mut st = self.state.lock().unwrap();
        let mut unallocated = Vec::new();
        for ip in ips {
            let IpAddr::V4(v4) = ip else {
                unallocated.push(*ip);
                continue;
            };
            match st.by_ip.get(v4) {
                None => unallocated.push(*ip),
                Some(h) if handle_id.is_some_and(|want| want != h) => {
                    return Err(RemoteError::new(
                        codes::STALE_RELEASE,
                        format!("{ip} is held by {h}"),
                    ));
                }
                Some(_) => {
                    st.by_ip.remove(v4);
                }
            }
        }
        Ok(unallocated)
    }
}

/// A server on its own runtime thread; stopped and joined on drop.
struct Server {
    _dir: tempfile::TempDir,
    path: PathBuf,
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(backend: Arc<dyn IpamBackend>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ipam.sock");
        let shutdown = CancellationToken::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let sd = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::bind(&p).unwrap();
                ready_tx.send(()).unwrap();
                serve(listener, backend, sd).await;
            });
        });
        ready_rx.recv().unwrap();
        Server {
            _dir: dir,
            path,
            shutdown,
            thread: Some(thread),
        }
    }

    fn client(&self) -> IpamAgentClient {
        IpamAgentClient::new(&self.path, Duration::from_secs(5))
    }

    fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn req(node: &str, handle: &str, num4: u32) -> AssignRequest {
    AssignRequest {
        node: node.into(),
        handle_id: handle.into(),
        num4,
        ..Default::default()
    }
}

fn raw(path: &Path) -> (StdUnixStream, BufReader<StdUnixStream>) {
    let s = StdUnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn read_line(r: &mut BufReader<StdUnixStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

#[test]
fn round_trip() {
    let server = Server::start(FakeBackend::new("node1"));
    let c = server.client();
    assert_eq!(c.path(), server.path);
    assert_eq!(c.ping().unwrap(), "node1");

    let mut r = req("node1", "net.c1", 2);
    r.attrs.insert("pod".into(), "p1".into());
    let a = c.assign(&r).unwrap();
    assert_eq!(
        a.ipv4,
        vec![
            "10.0.0.1/26".parse::<IpNet>().unwrap(),
            "10.0.0.2/26".parse().unwrap()
        ]
    );
    assert!(a.ipv6.is_empty());
    let b = c.assign(&req("node1", "net.c2", 1)).unwrap();
    assert_eq!(b.ipv4, vec!["10.0.0.3/26".parse::<IpNet>().unwrap()]);

    // Remote errors keep their code.
    let mut v6 = req("node1", "net.c3", 0);
    v6.num6 = 1;
    let err = c.assign(&v6).unwrap_err();
    assert_eq!(err.code(), Some(codes::NO_POOL), "{err}");
    assert!(err.to_string().contains("no IPv6 pool"), "{err}");

    // A stale release by handle is refused; a release of unallocated addresses reports them.
    let ip3: IpAddr = "10.0.0.3".parse().unwrap();
    let err = c.release_ips("node1", &[ip3], Some("net.c1")).unwrap_err();
    assert_eq!(err.code(), Some(codes::STALE_RELEASE));
    let free: IpAddr = "10.0.0.40".parse().unwrap();
    assert_eq!(
        c.release_ips("node1", &[ip3, free], Some("net.c2"))
            .unwrap(),
        vec![free]
    );
    assert_eq!(c.release_handle("node1", "net.c1").unwrap(), 2);
    assert_eq!(c.release_handle("node1", "net.c1").unwrap(), 0);
    // Everything free again: the next assign starts at the bottom.
    assert_eq!(
        c.assign(&req("node1", "net.c4", 1)).unwrap().ipv4,
        vec!["10.0.0.1/26".parse::<IpNet>().unwrap()]
    );
}

fn ips_req(node: &str, handle: &str, ips: &[&str]) -> AssignIpsRequest {
    AssignIpsRequest {
        node: node.into(),
        handle_id: handle.into(),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        attrs: [("pod".to_string(), "p1".to_string())]
            .into_iter()
            .collect(),
    }
}

#[test]
fn assign_specific_ips_round_trip() {
    let backend = FakeBackend::new("node1");
    let server = Server::start(backend.clone());
    let c = server.client();
    let a = c
        .assign_ips(&ips_req("node1", "net.c1", &["10.0.0.9", "10.0.0.10"]))
        .unwrap();
    assert_eq!(
        a.ipv4,
        vec![
            "10.0.0.9/32".parse::<IpNet>().unwrap(),
            "10.0.0.10/32".parse().unwrap()
        ]
    );
    assert_eq!(
        backend.state.lock().unwrap().last_attrs.as_ref().unwrap()["pod"],
        "p1"
    );
    // Held now: the same address again is refused with its code, nothing more is held.
    let err = c
        .assign_ips(&ips_req("node1", "net.c2", &["10.0.0.11", "10.0.0.9"]))
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::ADDRESS_IN_USE), "{err}");
    assert!(
        err.to_string().contains("10.0.0.9 is held by net.c1"),
        "{err}"
    );
    assert_eq!(c.release_handle("node1", "net.c2").unwrap(), 0);
    let err = c
        .assign_ips(&ips_req("node1", "net.c3", &["192.168.1.1"]))
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::NO_POOL), "{err}");
    assert_eq!(c.release_handle("node1", "net.c1").unwrap(), 2);

    // The server's own checks, before the backend is asked.
    let cases: &[(AssignIpsRequest, &str, &str)] = &[
        (
            ips_req("node2", "h", &["10.0.0.1"]),
            codes::WRONG_NODE,
            "\"node2\"",
        ),
        (
            ips_req("node1", "", &["10.0.0.1"]),
            codes::INVALID_ARGUMENT,
            "handle_id",
        ),
        (
            ips_req("node1", "h", &[]),
            codes::INVALID_ARGUMENT,
            "at least one",
        ),
        (
            ips_req("node1", "h", &["10.0.0.1", "10.0.0.1"]),
            codes::INVALID_ARGUMENT,
            "twice",
        ),
    ];
    for (r, code, needle) in cases {
        let err = c.assign_ips(r).unwrap_err();
        assert_eq!(err.code(), Some(*code), "{r:?}: {err}");
        assert!(err.to_string().contains(needle), "{r:?}: {err}");
    }
    assert!(backend.state.lock().unwrap().by_ip.is_empty());
}

/// A backend written before `assign_ips` existed: only the required methods.
struct AutoOnly;

#[async_trait::async_trait]
impl IpamBackend for AutoOnly {
    fn node_name(&self) -> &str {
        "node1"
    }
    async fn assign(&self, _req: &AssignRequest) -> Result<Assigned, RemoteError> {
        Ok(Assigned::default())
    }
    async fn release_handle(&self, _handle_id: &str) -> Result<usize, RemoteError> {
        Ok(0)
    }
    async fn release_ips(
        &self,
        ips: &[IpAddr],
        _handle_id: Option<&str>,
    ) -> Result<Vec<IpAddr>, RemoteError> {
        Ok(ips.to_vec())
    }
}

#[test]
fn backend_without_assign_ips_says_unsupported() {
    let server = Server::start(Arc::new(AutoOnly));
    let err = server
        .client()
        .assign_ips(&ips_req("node1", "h", &["10.0.0.1", "fd00::1"]))
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::UNSUPPORTED), "{err}");
    assert!(err.to_string().contains("10.0.0.1,fd00::1"), "{err}");
}

#[test]
fn agent_older_than_assign_ips_says_unsupported() {
    // What a version-1 agent without the operation answers (serde's unknown-variant error
    // inside its bad_request refusal).
    let (_dir, path) = fake_agent(
        b"{\"version\":1,\"error\":{\"code\":\"bad_request\",\"message\":\"invalid request: unknown variant `assign_ips`, expected one of `ping`, `assign`, `release_handle`, `release_ips`\"}}\n",
    );
    let err = IpamAgentClient::new(&path, Duration::from_secs(2))
        .assign_ips(&ips_req("node1", "h", &["10.0.0.1"]))
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::UNSUPPORTED), "{err}");
    assert!(err.to_string().contains("upgrade calico-node"), "{err}");
    // Any other bad_request is passed through unchanged.
    let (_dir, path) = fake_agent(
        b"{\"version\":1,\"error\":{\"code\":\"bad_request\",\"message\":\"invalid request: missing field `ips`\"}}\n",
    );
    let err = IpamAgentClient::new(&path, Duration::from_secs(2))
        .assign_ips(&ips_req("node1", "h", &["10.0.0.1"]))
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::BAD_REQUEST), "{err}");
}

#[test]
fn empty_handle_is_refused() {
    let server = Server::start(FakeBackend::new("node1"));
    let err = server.client().assign(&req("node1", "", 1)).unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_ARGUMENT), "{err}");
}

#[test]
fn other_nodes_are_refused() {
    let server = Server::start(FakeBackend::new("node1"));
    let c = server.client();
    let err = c.assign(&req("node2", "h", 1)).unwrap_err();
    assert_eq!(err.code(), Some(codes::WRONG_NODE));
    assert!(err.to_string().contains("\"node2\""), "{err}");
    assert!(err.to_string().contains("\"node1\""), "{err}");
    let err = c.release_handle("node2", "h").unwrap_err();
    assert_eq!(err.code(), Some(codes::WRONG_NODE));
    let err = c
        .release_ips("node2", &["10.0.0.1".parse().unwrap()], None)
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::WRONG_NODE));
}

#[test]
fn fifty_concurrent_clients() {
    let server = Server::start(FakeBackend::new("node1"));
    let path = server.path.clone();
    let barrier = Arc::new(std::sync::Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let c = IpamAgentClient::new(path, Duration::from_secs(10));
                barrier.wait();
                c.assign(&req("node1", &format!("h{i}"), 1)).unwrap()
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for t in threads {
        let a = t.join().unwrap();
        assert_eq!(a.ipv4.len(), 1);
        assert!(seen.insert(a.ipv4[0]), "duplicate {}", a.ipv4[0]);
    }
    assert_eq!(seen.len(), 50);
    // 62 hosts in a /26: 12 left, then exhaustion is reported as such.
    let c = server.client();
    assert_eq!(c.assign(&req("node1", "rest", 12)).unwrap().ipv4.len(), 12);
    let err = c.assign(&req("node1", "more", 1)).unwrap_err();
    assert_eq!(err.code(), Some(codes::POOL_EXHAUSTED));
}

#[test]
fn unreachable_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    // No such file.
    let path = dir.path().join("missing.sock");
    let err = IpamAgentClient::new(&path, Duration::from_secs(1))
        .ping()
        .unwrap_err();
    let RpcError::Unreachable { path: p, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(p, &path);
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("is calico-node running"), "{msg}");
    assert!(msg.contains("CALICO_IPAM_SOCKET"), "{msg}");

    // A socket file left behind by a dead agent (bound, then the listener closed).
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let err = IpamAgentClient::new(&stale, Duration::from_secs(1))
        .assign(&req("n", "h", 1))
        .unwrap_err();
    assert!(matches!(err, RpcError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("Connection refused"), "{err}");
}

#[test]
fn silent_agent_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    // Accepts (the kernel does, through the backlog) but never answers.
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let c = IpamAgentClient::new(&path, Duration::from_millis(200));
    let t = Instant::now();
    let err = c.ping().unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "{err:?}");
    assert!(t.elapsed() >= Duration::from_millis(190));
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn full_accept_queue_times_out_the_connect() {
    use rustix::io::Errno;
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.sock");
    let addr = SocketAddrUnix::new(&path).unwrap();
    // A listener that never accepts, with the smallest backlog.
    let l = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
    rustix::net::bind(&l, &addr).unwrap();
    rustix::net::listen(&l, 0).unwrap();
    // Fill its accept queue (non-blocking connects, kept open) until the kernel says EAGAIN:
    // from then on a blocking connect would wait forever.
    let mut held = Vec::new();
    loop {
        let s = rustix::net::socket_with(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::NONBLOCK,
            None,
        )
        .unwrap();
        match rustix::net::connect(&s, &addr) {
            Ok(()) => held.push(s),
            Err(e) if e == Errno::AGAIN => break,
            Err(e) => panic!("{e}"),
        }
        assert!(held.len() < 10_000, "accept queue never filled");
    }
    let c = IpamAgentClient::new(&path, Duration::from_millis(200));
    let t = Instant::now();
    let err = c.ping().unwrap_err();
    assert!(matches!(err, RpcError::Timeout), "{err:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn slow_backend_times_out_the_client_only() {
    let backend = Arc::new(FakeBackend {
        node: "node1".into(),
        state: Mutex::default(),
        delay: Duration::from_millis(500),
    });
    let server = Server::start(backend);
    let impatient = IpamAgentClient::new(&server.path, Duration::from_millis(100));
    assert!(matches!(
        impatient.assign(&req("node1", "h1", 1)),
        Err(RpcError::Timeout)
    ));
    // The server is unaffected by the client that went away.
    let patient = IpamAgentClient::new(&server.path, Duration::from_secs(5));
    assert_eq!(
        patient.assign(&req("node1", "h2", 1)).unwrap().ipv4.len(),
        1
    );
}

/// A fake agent answering every connection with `reply` (raw bytes).
fn fake_agent(reply: &'static [u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut line = String::new();
            let _ = BufReader::new(s.try_clone().unwrap()).read_line(&mut line);
            let _ = s.write_all(reply);
        }
    });
    (dir, path)
}

#[test]
fn client_reports_broken_agents() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "closed the connection without answering"),
        (b"{\"version\":1,\"ok\"", "in the middle of its reply"),
        (b"hello\n", "invalid response line"),
        (
            b"{\"version\":2,\"ok\":{\"result\":\"pong\",\"node\":\"n\"}}\n",
            "speaks IPAM protocol version 2",
        ),
        (
            b"{\"version\":1,\"ok\":{\"result\":\"handle_released\",\"released\":1}}\n",
            "answered ping with",
        ),
        (b"{\"version\":1}\n", "neither"),
    ];
    for (reply, needle) in cases {
        let (_dir, path) = fake_agent(reply);
        let err = IpamAgentClient::new(&path, Duration::from_secs(2))
            .ping()
            .unwrap_err();
        assert!(matches!(err, RpcError::Protocol(_)), "{err:?}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    // An agent of another version refusing us: its own message comes through.
    let (_dir, path) = fake_agent(
        b"{\"version\":2,\"error\":{\"code\":\"version_mismatch\",\"message\":\"speak 2\"}}\n",
    );
    let err = IpamAgentClient::new(&path, Duration::from_secs(2))
        .ping()
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::VERSION_MISMATCH));
}

#[test]
fn garbage_gets_an_error_and_the_connection_survives() {
    let server = Server::start(FakeBackend::new("node1"));
    let (mut w, mut r) = raw(&server.path);
    w.write_all(b"this is not json\n").unwrap();
    let l = read_line(&mut r);
    assert!(l.contains("\"code\":\"bad_request\""), "{l}");
    assert!(l.contains("not valid JSON"), "{l}");
    // Blank lines are skipped, not answered.
    w.write_all(b"\n   \n").unwrap();
    w.write_all(b"{\"version\":9,\"request\":{\"op\":\"ping\"}}\n")
        .unwrap();
    let l = read_line(&mut r);
    assert!(l.contains("\"code\":\"version_mismatch\""), "{l}");
    assert!(l.contains("version 9"), "{l}");
    // Several requests on one connection, answered in order.
    w.write_all(b"{\"version\":1,\"request\":{\"op\":\"ping\"}}\n{\"version\":1,\"request\":{\"op\":\"assign\",\"node\":\"node1\",\"handle_id\":\"x\",\"num4\":1,\"num6\":0}}\n")
        .unwrap();
    assert_eq!(
        read_line(&mut r),
        "{\"version\":1,\"ok\":{\"result\":\"pong\",\"node\":\"node1\"}}\n"
    );
    assert_eq!(
        read_line(&mut r),
        "{\"version\":1,\"ok\":{\"result\":\"assigned\",\"ipv4\":[\"10.0.0.1/26\"],\"ipv6\":[]}}\n"
    );
    // A last request without its newline is still answered before EOF.
    w.write_all(b"{\"version\":1,\"request\":{\"op\":\"ping\"}}")
        .unwrap();
    w.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_line(&mut r).contains("pong"));
    assert_eq!(read_line(&mut r), "");
}

#[test]
fn oversized_line_is_refused_and_closed() {
    let server = Server::start(FakeBackend::new("node1"));
    let (mut w, mut r) = raw(&server.path);
    let big = vec![b'x'; MAX_LINE_BYTES + 10];
    // The server may close while we are still writing: ignore EPIPE.
    let _ = w.write_all(&big);
    let l = read_line(&mut r);
    assert!(l.contains("\"code\":\"request_too_large\""), "{l}");
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(rest.is_empty());
    // The server still serves others.
    assert_eq!(server.client().ping().unwrap(), "node1");
}

#[test]
fn shutdown_closes_idle_connections_and_stops() {
    let mut server = Server::start(FakeBackend::new("node1"));
    let (mut w, mut r) = raw(&server.path);
    // One exchange first, so the connection is accepted (not still in the backlog).
    w.write_all(b"{\"version\":1,\"request\":{\"op\":\"ping\"}}\n")
        .unwrap();
    assert!(read_line(&mut r).contains("pong"));
    server.stop(); // joins the server thread: serve() returned with a client still connected
    assert_eq!(read_line(&mut r), "");
    assert!(matches!(
        server.client().ping(),
        Err(RpcError::Unreachable { .. })
    ));
}

#[test]
fn socket_path_values() {
    use calico_ipam_rpc::{DEFAULT_SOCKET_PATH, socket_path_from_value};
    use std::ffi::OsStr;
    assert_eq!(
        socket_path_from_value(None),
        PathBuf::from(DEFAULT_SOCKET_PATH)
    );
    assert_eq!(
        socket_path_from_value(Some(OsStr::new(""))),
        PathBuf::from(DEFAULT_SOCKET_PATH)
    );
    assert_eq!(
        socket_path_from_value(Some(OsStr::new("/run/n1/ipam.sock"))),
        PathBuf::from("/run/n1/ipam.sock")
    );
}
