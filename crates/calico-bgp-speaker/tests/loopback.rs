//! Two of our peers talking over real TCP on loopback: one connects, the other (the
//! "passive" side of Calico's mesh rule) accepts; they reach Established, an UPDATE crosses,
//! and stopping one side is seen by the other as a graceful-restart peer going away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use calico_bgp::fsm::{DownReason, SessionConfig};
use calico_bgp_packet::{AsPath, Family, Message, Nlri, Origin, PathAttributes, Update};
use calico_bgp_speaker::peer::{PeerCommand, PeerConfig, PeerEvent, spawn_peer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

async fn next_event(rx: &mut mpsc::Receiver<PeerEvent>, what: &str) -> PeerEvent {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
        .unwrap_or_else(|| panic!("peer task ended waiting for {what}"))
}

fn config(router_id: [u8; 4], passive: bool) -> SessionConfig {
    let mut s = SessionConfig::new(64512, 64512, Ipv4Addr::from(router_id));
    s.connect_delay = Duration::ZERO;
    s.passive = passive;
    s.hold_time = 9;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_establish_exchange_and_part() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();

    // B: passive; its listener hands accepted sockets to it.
    let (b_tx, mut b_events) = mpsc::channel(64);
    let b = spawn_peer(
        PeerConfig::new(config([10, 0, 0, 2], true), "127.0.0.1:1".parse().unwrap()),
        b_tx,
    );
    // A: active, connects to B's listener.
    let (a_tx, mut a_events) = mpsc::channel(64);
    let a = spawn_peer(
        PeerConfig::new(
            config([10, 0, 0, 1], false),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ),
        a_tx,
    );
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    b.command(PeerCommand::Accepted(stream)).await.unwrap();

    let PeerEvent::Up { negotiated: na, .. } = next_event(&mut a_events, "A up").await else {
        panic!("A not up")
    };
    let PeerEvent::Up { negotiated: nb, .. } = next_event(&mut b_events, "B up").await else {
        panic!("B not up")
    };
    assert_eq!(na.hold_time, 9);
    assert_eq!(na.remote_id, Ipv4Addr::new(10, 0, 0, 2));
    assert_eq!(nb.remote_id, Ipv4Addr::new(10, 0, 0, 1));
    assert!(na.families.contains(&Family::IPV4_UNICAST));

    // An UPDATE from A reaches B with its prefix and attributes.
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![])),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
        local_pref: Some(100),
        ..PathAttributes::default()
    };
    let prefix: ipnet::IpNet = "10.244.1.0/26".parse().unwrap();
    let update = Update {
        attributes: attrs,
        nlri: vec![Nlri {
            prefix,
            path_id: None,
        }],
        ..Update::default()
    };
    a.command(PeerCommand::Send(Box::new(Message::Update(update))))
        .await
        .unwrap();
    let PeerEvent::Update { update, errors } = next_event(&mut b_events, "the update").await else {
        panic!("expected an update")
    };
    assert!(errors.is_empty(), "{errors:?}");
    let got: Vec<_> = update.announced().map(|(f, n)| (f, n.prefix)).collect();
    assert_eq!(got, vec![(Family::IPV4_UNICAST, prefix)]);
    assert_eq!(update.attributes.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));

    // Keepalives keep the session up past the hold time (9 s hold, keepalive every 3 s).
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        a_events.try_recv().is_err(),
        "A's session changed while idle"
    );
    assert!(
        b_events.try_recv().is_err(),
        "B's session changed while idle"
    );

    // A stops: with the N bit negotiated (RFC 8538) an administrative stop is a Cease/Hard
    // Reset, so B drops A's routes instead of keeping them as stale.
    a.stop().await;
    match next_event(&mut b_events, "B down").await {
        PeerEvent::Down(DownReason::NotificationReceived(n)) => {
            assert_eq!((n.code, n.subcode), (6, 9), "{n:?}")
        }
        other => panic!("expected B down by Cease/Hard Reset, got {other:?}"),
    }
    b.stop().await;
}

/// Bytes that are not BGP get the RFC 4271 §6.1 NOTIFICATION (Message Header Error /
/// Connection Not Synchronized) and the connection is closed; the session does not come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_peer_gets_a_notification() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut events) = mpsc::channel(64);
    let a = spawn_peer(
        PeerConfig::new(
            config([10, 0, 0, 1], false),
            SocketAddr::from(([127, 0, 0, 1], port)),
        ),
        tx,
    );
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    // Our OPEN arrives first.
    let mut header = [0u8; 19];
    s.read_exact(&mut header).await.unwrap();
    assert_eq!(&header[..16], &[0xff; 16]);
    assert_eq!(header[18], 1, "first message is not an OPEN");
    let len = u16::from_be_bytes([header[16], header[17]]) as usize;
    let mut rest = vec![0u8; len - 19];
    s.read_exact(&mut rest).await.unwrap();
    // Answer with 19 bytes of nonsense.
    s.write_all(&[0x42; 19]).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert!(reply.len() >= 21, "no NOTIFICATION: {reply:?}");
    assert_eq!(reply[18], 3, "not a NOTIFICATION: {reply:?}");
    assert_eq!(
        (reply[19], reply[20]),
        (1, 1),
        "wrong code/subcode: {reply:?}"
    );
    assert!(
        events.try_recv().is_err(),
        "session events without a session"
    );
    a.stop().await;
}

/// The listener routes an inbound connection to the peer configured for its source address
/// (here A connects from 127.0.0.2), and refuses anyone else with Cease/Connection Rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_routes_by_source_and_rejects_strangers() {
    use calico_bgp_speaker::listener::{PeerDirectory, listen};
    use tokio::io::AsyncReadExt;
    let directory = PeerDirectory::default();
    let (addr, accept_task) = listen("127.0.0.1:0".parse().unwrap(), directory.clone())
        .await
        .unwrap();

    let (b_tx, mut b_events) = mpsc::channel(64);
    let b = spawn_peer(
        PeerConfig::new(
            config([10, 0, 0, 2], true),
            "127.0.0.2:179".parse().unwrap(),
        ),
        b_tx,
    );
    directory.insert("127.0.0.2".parse().unwrap(), b.commander());

    let (a_tx, mut a_events) = mpsc::channel(64);
    let mut a_cfg = PeerConfig::new(config([10, 0, 0, 1], false), addr);
    a_cfg.local_address = Some("127.0.0.2".parse().unwrap());
    let a = spawn_peer(a_cfg, a_tx);
    assert!(matches!(
        next_event(&mut a_events, "A up").await,
        PeerEvent::Up { .. }
    ));
    assert!(matches!(
        next_event(&mut b_events, "B up").await,
        PeerEvent::Up { .. }
    ));

    // A stranger from 127.0.0.3.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut s = sock.connect(addr).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.len(), 21, "{reply:?}");
    assert_eq!(
        (reply[18], reply[19], reply[20]),
        (3, 6, 5),
        "not Cease/Connection Rejected: {reply:?}"
    );

    a.stop().await;
    b.stop().await;
    accept_task.abort();
}
