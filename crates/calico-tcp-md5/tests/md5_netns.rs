//! Kernel round trips for RFC 2385 keys, each test in its own throw-away network namespace (only its
//! loopback is used; the root namespace is never touched).
//!
//! A signed connection must come up and carry bytes both ways; an unsigned, wrongly signed or
//! unexpectedly signed SYN must be dropped by the kernel (the connect times out after ~2 s, as a BGP
//! peer with a password mismatch stays in Connect/Active), and the namespace's TcpExt counters must
//! name the MD5 check as the reason, so a drop for any other cause cannot pass these tests.
//!
//! Without root the tests skip with a note; under `CALICO_REQUIRE_ROOT=1` they fail instead, and they
//! also fail there when the kernel lacks `CONFIG_TCP_MD5SIG`.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too; a panic is a test failure.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use calico_netlink::testing::{TestNetns, require_root};
use calico_tcp_md5::{MAX_KEY_LEN, Md5Error, set_key};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const LO6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
/// Long enough for the initial SYN and its first retransmission (1 s) to be dropped.
const REFUSED_AFTER: Duration = Duration::from_secs(2);
const KEY: &[u8] = b"calico-bgp-password";

/// The namespace for one test, or `None` when the test must skip (not root, no MD5 in the kernel)
/// outside `CALICO_REQUIRE_ROOT=1`.
fn setup() -> Option<TestNetns> {
    if !require_root() {
        return None;
    }
    let ns = TestNetns::new("md5").unwrap();
    // Probe: can this kernel take a key at all? (ENOPROTOOPT without CONFIG_TCP_MD5SIG.)
    let probe = ns
        .ns()
        .run(|| {
            let sock = TcpSocket::new_v4()?;
            Ok::<_, io::Error>(set_key(sock.as_fd(), LO4, Some(KEY)))
        })
        .unwrap()
        .unwrap();
    match probe {
        Ok(()) => Some(ns),
        Err(Md5Error::Unsupported(e)) => {
            if std::env::var("CALICO_REQUIRE_ROOT").as_deref() == Ok("1") {
                panic!("CALICO_REQUIRE_ROOT=1 but this kernel has no TCP MD5 support: {e}");
            }
            eprintln!("skipping TCP MD5 test: kernel without CONFIG_TCP_MD5SIG ({e})");
            None
        }
        Err(other) => panic!("probing TCP_MD5SIG failed unexpectedly: {other}"),
    }
}

#[derive(Clone, Copy)]
enum Fam {
    V4,
    V6,
}

/// A socket created inside `ns` (it stays in that namespace wherever it is used afterwards), with
/// `keys` applied and bound to `bind`.
fn socket_in(
    ns: &TestNetns,
    fam: Fam,
    bind: Option<SocketAddr>,
    keys: &[(IpAddr, Option<&[u8]>)],
) -> TcpSocket {
    ns.ns()
        .run(|| {
            let sock = match fam {
                Fam::V4 => TcpSocket::new_v4()?,
                Fam::V6 => TcpSocket::new_v6()?,
            };
            for (peer, key) in keys {
                set_key(sock.as_fd(), *peer, *key).map_err(io::Error::other)?;
            }
            if let Some(addr) = bind {
                sock.bind(addr)?;
            }
            Ok::<_, io::Error>(sock)
        })
        .unwrap()
        .unwrap()
}

fn listener(
    ns: &TestNetns,
    fam: Fam,
    bind: SocketAddr,
    keys: &[(IpAddr, Option<&[u8]>)],
) -> TcpListener {
    socket_in(ns, fam, Some(bind), keys).listen(16).unwrap()
}

/// Connects with a deadline; `None` when the deadline passed (the kernel kept dropping our SYNs).
async fn try_connect(sock: TcpSocket, to: SocketAddr) -> Option<TcpStream> {
    match tokio::time::timeout(REFUSED_AFTER, sock.connect(to)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => panic!("connect to {to} failed outright instead of timing out: {e}"),
        Err(_elapsed) => None,
    }
}

/// Client says hello, server answers: proves signed segments flow both ways (the accepted socket
/// inherited the listener's key).
async fn exchange(listener: &TcpListener, client: TcpStream) {
    let (mut server, _) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut client = client;
    client.write_all(b"OPEN").await.unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"OPEN");
    server.write_all(b"KEEPALIVE").await.unwrap();
    let mut buf = [0u8; 9];
    client.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"KEEPALIVE");
}

/// Nothing reached the accept queue.
async fn assert_nothing_accepted(listener: &TcpListener) {
    if let Ok(Ok((_, from))) =
        tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
    {
        panic!("the listener accepted a connection from {from} that MD5 should have dropped");
    }
}

/// The namespace's `TcpExt` MIB counters (`/proc/net/netstat` read from inside it).
fn tcp_ext(ns: &TestNetns) -> BTreeMap<String, u64> {
    let text = ns.exec(&["cat", "/proc/net/netstat"]).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    assert_eq!(rows.len(), 2, "TcpExt header and values in:\n{text}");
    rows[0]
        .split_whitespace()
        .zip(rows[1].split_whitespace())
        .skip(1)
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

fn md5_counters(ns: &TestNetns) -> [u64; 3] {
    let c = tcp_ext(ns);
    ["TCPMD5NotFound", "TCPMD5Unexpected", "TCPMD5Failure"]
        .map(|k| *c.get(k).unwrap_or_else(|| panic!("no {k} counter")))
}

fn v4(port: u16) -> SocketAddr {
    SocketAddr::new(LO4, port)
}

#[tokio::test]
async fn matching_keys_connect_and_exchange_bytes_v4() {
    let Some(ns) = setup() else { return };
    let l = listener(&ns, Fam::V4, v4(0), &[(LO4, Some(KEY))]);
    let to = l.local_addr().unwrap();
    let client = socket_in(&ns, Fam::V4, None, &[(LO4, Some(KEY))]);
    let stream = try_connect(client, to)
        .await
        .expect("signed client must connect to the signed listener");
    exchange(&l, stream).await;
    assert_eq!(
        md5_counters(&ns),
        [0, 0, 0],
        "no segment failed the MD5 check"
    );
}

#[tokio::test]
async fn matching_keys_connect_and_exchange_bytes_v6() {
    let Some(ns) = setup() else { return };
    let l = listener(&ns, Fam::V6, SocketAddr::new(LO6, 0), &[(LO6, Some(KEY))]);
    let to = l.local_addr().unwrap();
    let client = socket_in(&ns, Fam::V6, None, &[(LO6, Some(KEY))]);
    let stream = try_connect(client, to)
        .await
        .expect("signed IPv6 client must connect");
    exchange(&l, stream).await;
    assert_eq!(md5_counters(&ns), [0, 0, 0]);
}

/// The contract's v4-mapping: a plain IPv4 peer given for a dual-stack (AF_INET6) listener is enforced
/// for IPv4 clients. Without the mapping the kernel would reject the key with EINVAL.
#[tokio::test]
async fn ipv4_peer_key_on_dual_stack_listener() {
    let Some(ns) = setup() else { return };
    let any6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0);
    let l = listener(&ns, Fam::V6, any6, &[(LO4, Some(KEY))]);
    let to = v4(l.local_addr().unwrap().port());

    let unsigned = socket_in(&ns, Fam::V4, None, &[]);
    assert!(
        try_connect(unsigned, to).await.is_none(),
        "an unsigned IPv4 client must be dropped by the dual-stack listener"
    );
    assert_nothing_accepted(&l).await;
    assert!(md5_counters(&ns)[0] > 0, "dropped as TCPMD5NotFound");

    let signed = socket_in(&ns, Fam::V4, None, &[(LO4, Some(KEY))]);
    let stream = try_connect(signed, to)
        .await
        .expect("signed IPv4 client must reach the dual-stack listener");
    exchange(&l, stream).await;
}

#[tokio::test]
async fn wrong_key_does_not_connect() {
    let Some(ns) = setup() else { return };
    let l = listener(&ns, Fam::V4, v4(0), &[(LO4, Some(KEY))]);
    let to = l.local_addr().unwrap();
    let client = socket_in(&ns, Fam::V4, None, &[(LO4, Some(b"not-the-password"))]);
    assert!(
        try_connect(client, to).await.is_none(),
        "wrong key must not connect"
    );
    assert_nothing_accepted(&l).await;
    let [_, _, failure] = md5_counters(&ns);
    assert!(failure > 0, "dropped as TCPMD5Failure (bad signature)");
}

#[tokio::test]
async fn client_without_key_does_not_connect() {
    let Some(ns) = setup() else { return };
    let l = listener(&ns, Fam::V4, v4(0), &[(LO4, Some(KEY))]);
    let to = l.local_addr().unwrap();
    let client = socket_in(&ns, Fam::V4, None, &[]);
    assert!(
        try_connect(client, to).await.is_none(),
        "unsigned SYN must be dropped"
    );
    assert_nothing_accepted(&l).await;
    let [not_found, _, _] = md5_counters(&ns);
    assert!(
        not_found > 0,
        "dropped as TCPMD5NotFound (signature missing)"
    );
}

#[tokio::test]
async fn signed_client_against_unkeyed_listener_does_not_connect() {
    let Some(ns) = setup() else { return };
    let l = listener(&ns, Fam::V4, v4(0), &[]);
    let to = l.local_addr().unwrap();
    let client = socket_in(&ns, Fam::V4, None, &[(LO4, Some(KEY))]);
    assert!(try_connect(client, to).await.is_none());
    assert_nothing_accepted(&l).await;
    let [_, unexpected, _] = md5_counters(&ns);
    assert!(unexpected > 0, "dropped as TCPMD5Unexpected");
}

#[tokio::test]
async fn removing_the_key_admits_unsigned_clients() {
    let Some(ns) = setup() else { return };
    let l = listener(&ns, Fam::V4, v4(0), &[(LO4, Some(KEY))]);
    let to = l.local_addr().unwrap();

    // Removal applies to a listening socket (Calico's password removed from a BGPPeer).
    set_key(l.as_fd(), LO4, None).unwrap();
    // Removing again is a no-op, not ENOENT.
    set_key(l.as_fd(), LO4, None).unwrap();

    let unsigned = socket_in(&ns, Fam::V4, None, &[]);
    let stream = try_connect(unsigned, to)
        .await
        .expect("with the key removed an unsigned client connects");
    exchange(&l, stream).await;
    assert_eq!(md5_counters(&ns), [0, 0, 0]);
}

#[tokio::test]
async fn key_is_per_peer_address() {
    let Some(ns) = setup() else { return };
    let other_peer = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let l = listener(&ns, Fam::V4, v4(0), &[(other_peer, Some(KEY))]);
    let to = l.local_addr().unwrap();
    // From 127.0.0.1, which has no key on the listener: plain TCP works.
    let unsigned = socket_in(&ns, Fam::V4, Some(v4(0)), &[]);
    let stream = try_connect(unsigned, to)
        .await
        .expect("a peer without a key is not affected by another peer's key");
    exchange(&l, stream).await;
    // From 127.0.0.2, which has one: unsigned is dropped.
    let from_keyed_peer = socket_in(&ns, Fam::V4, Some(SocketAddr::new(other_peer, 0)), &[]);
    assert!(try_connect(from_keyed_peer, to).await.is_none());
    assert!(md5_counters(&ns)[0] > 0);
}

#[tokio::test]
async fn longest_binary_key_works_and_one_more_byte_is_refused() {
    let Some(ns) = setup() else { return };
    let key: Vec<u8> = (0..MAX_KEY_LEN as u8).map(|i| i.wrapping_mul(37)).collect();
    assert!(key.contains(&0), "binary keys may contain NUL bytes");
    let l = listener(&ns, Fam::V4, v4(0), &[(LO4, Some(&key))]);
    let to = l.local_addr().unwrap();

    let mut too_long = key.clone();
    too_long.push(1);
    let err = set_key(l.as_fd(), LO4, Some(&too_long)).unwrap_err();
    assert!(matches!(err, Md5Error::KeyTooLong { len: 81 }), "{err:?}");

    let client = socket_in(&ns, Fam::V4, None, &[(LO4, Some(&key))]);
    let stream = try_connect(client, to)
        .await
        .expect("an 80-byte key must work end to end");
    exchange(&l, stream).await;

    // A key that differs only in its last byte is a different key.
    let mut last_differs = key.clone();
    last_differs[MAX_KEY_LEN - 1] ^= 0xff;
    let client = socket_in(&ns, Fam::V4, None, &[(LO4, Some(&last_differs))]);
    assert!(try_connect(client, to).await.is_none());
    assert!(md5_counters(&ns)[2] > 0);
}
