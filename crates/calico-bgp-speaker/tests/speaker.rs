//! Whole speakers talking over loopback (127.0.0.x are all local on Linux, so each speaker
//! has its own address without a namespace): routes flow between RIBs, reach the FIB
//! channel, follow withdrawals, peer removal, route reflection and graceful restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use calico_bgp::fsm::State;
use calico_bgp_speaker::speaker::{
    FibMessage, PeerSpec, Speaker, SpeakerConfig, SpeakerOptions, SpeakerStatus,
};
use ipnet::IpNet;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, timeout};

const AS: u32 = 64512;

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// One speaker under test with its FIB as the FIB writer would see it.
struct Node {
    last: u8,
    speaker: Speaker,
    fib_rx: UnboundedReceiver<FibMessage>,
    fib: BTreeMap<IpNet, IpAddr>,
    synced: bool,
    port: u16,
    cfg: SpeakerConfig,
}

impl Node {
    async fn start(last: u8, options: SpeakerOptions) -> Node {
        let (speaker, fib_rx) = Speaker::start(options);
        let cfg = SpeakerConfig {
            router_id: Ipv4Addr::new(10, 0, 0, last),
            local_as: AS,
            cluster_id: None,
            listen: Some(SocketAddr::new(ip(last), 0)),
            peers: Vec::new(),
            originated: BTreeSet::new(),
        };
        speaker.apply(cfg.clone()).await.unwrap();
        let port = speaker.status().await.unwrap().listening.unwrap().port();
        Node {
            last,
            speaker,
            fib_rx,
            fib: BTreeMap::new(),
            synced: false,
            port,
            cfg,
        }
    }

    fn spec_for(&self, other: &Node) -> PeerSpec {
        let mut p = PeerSpec::new(format!("Mesh_127_0_0_{}", other.last), ip(other.last), AS);
        p.port = other.port;
        p.source_address = Some(ip(self.last));
        p.connect_delay = Duration::ZERO;
        p.connect_retry = Duration::from_millis(300);
        p.idle_hold = Duration::from_millis(100);
        // Calico's mesh rule: the higher address waits.
        p.passive = other.last < self.last;
        p
    }

    async fn apply(&mut self) {
        self.speaker.apply(self.cfg.clone()).await.unwrap();
    }

    fn drain(&mut self) {
        while let Ok(m) = self.fib_rx.try_recv() {
            self.take(m);
        }
    }

    fn take(&mut self, m: FibMessage) {
        match m {
            FibMessage::Changes(cs) => {
                for c in cs {
                    match c.next_hop() {
                        Some(nh) => {
                            self.fib.insert(c.prefix, nh);
                        }
                        None => {
                            self.fib.remove(&c.prefix);
                        }
                    }
                }
            }
            FibMessage::InitialSyncComplete => self.synced = true,
        }
    }

    /// Waits until `check` holds for the FIB view.
    async fn wait_fib(&mut self, what: &str, check: impl Fn(&BTreeMap<IpNet, IpAddr>) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.drain();
            if check(&self.fib) {
                return;
            }
            match timeout(
                deadline.saturating_duration_since(Instant::now()),
                self.fib_rx.recv(),
            )
            .await
            {
                Ok(Some(m)) => self.take(m),
                _ => panic!("{what}: FIB of 127.0.0.{} is {:?}", self.last, self.fib),
            }
        }
    }

    async fn wait_status(
        &self,
        what: &str,
        check: impl Fn(&SpeakerStatus) -> bool,
    ) -> SpeakerStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.speaker.status().await.unwrap();
            if check(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "{what}: {s:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn mesh(nodes: &mut [&mut Node]) {
    let specs: Vec<Vec<PeerSpec>> = nodes
        .iter()
        .map(|n| {
            nodes
                .iter()
                .filter(|o| o.last != n.last)
                .map(|o| n.spec_for(o))
                .collect()
        })
        .collect();
    for (n, peers) in nodes.iter_mut().zip(specs) {
        n.cfg.peers = peers;
        n.apply().await;
    }
}

fn established(s: &SpeakerStatus) -> bool {
    !s.peers.is_empty()
        && s.peers
            .iter()
            .all(|p| p.session.state == State::Established)
}

#[tokio::test]
async fn routes_flow_both_ways_and_follow_withdrawals() {
    let mut a = Node::start(11, SpeakerOptions::default()).await;
    let mut b = Node::start(12, SpeakerOptions::default()).await;
    a.cfg.originated.insert(net("10.65.1.0/26"));
    b.cfg.originated.insert(net("10.65.2.0/26"));
    mesh(&mut [&mut a, &mut b]).await;

    a.wait_fib("B's block at A", |f| {
        f.get(&net("10.65.2.0/26")) == Some(&ip(12))
    })
    .await;
    b.wait_fib("A's block at B", |f| {
        f.get(&net("10.65.1.0/26")) == Some(&ip(11))
    })
    .await;
    // Our own block never goes to our FIB (Felix owns the blackhole).
    assert!(!a.fib.contains_key(&net("10.65.1.0/26")));
    let s = a.wait_status("established", established).await;
    assert_eq!(s.peers[0].routes.received, 1);
    assert_eq!(s.peers[0].routes.exported, 1);
    // OPEN and KEEPALIVE both ways, at least our block and End-of-RIB as UPDATEs.
    let m = s.peers[0].messages;
    assert!(m.sent[1] >= 1 && m.received[1] >= 1, "{m:?}");
    assert!(m.sent[4] >= 1 && m.received[4] >= 1, "{m:?}");
    assert!(m.sent[2] >= 2 && m.received[2] >= 2, "{m:?}");
    a.wait_status("initial sync", |s| s.initial_sync_complete)
        .await;

    // A new block is announced, a withdrawn one goes away at the peer.
    a.cfg.originated.insert(net("10.65.3.0/26"));
    a.cfg.originated.remove(&net("10.65.1.0/26"));
    a.apply().await;
    b.wait_fib("withdraw + announce", |f| {
        f.get(&net("10.65.3.0/26")) == Some(&ip(11)) && !f.contains_key(&net("10.65.1.0/26"))
    })
    .await;

    // Removing the peer (Cease) removes its routes at once.
    a.cfg.peers.clear();
    a.apply().await;
    b.wait_fib("peer removed", |f| f.is_empty()).await;
    a.wait_fib("peer removed at A", |f| f.is_empty()).await;
    a.speaker.shutdown(false).await;
    b.speaker.shutdown(false).await;
}

#[tokio::test]
async fn adding_a_peer_leaves_other_sessions_alone() {
    let mut a = Node::start(21, SpeakerOptions::default()).await;
    let mut b = Node::start(22, SpeakerOptions::default()).await;
    let mut c = Node::start(23, SpeakerOptions::default()).await;
    mesh(&mut [&mut a, &mut b]).await;
    let before = a.wait_status("A-B up", established).await;
    let since = before.peers[0].session.since;

    c.cfg.originated.insert(net("10.65.23.0/26"));
    mesh(&mut [&mut a, &mut b, &mut c]).await;
    a.wait_fib("C's block at A", |f| f.contains_key(&net("10.65.23.0/26")))
        .await;
    let after = a
        .wait_status("all up", |s| s.peers.len() == 2 && established(s))
        .await;
    let ab = after
        .peers
        .iter()
        .find(|p| p.spec.address == ip(22))
        .unwrap();
    assert_eq!(ab.session.since, since, "the A-B session was reset");
    for n in [a, b, c] {
        n.speaker.shutdown(false).await;
    }
}

#[tokio::test]
async fn route_reflector_reflects_between_clients() {
    // B is the reflector; A and C are its clients and do not peer with each other.
    let mut a = Node::start(31, SpeakerOptions::default()).await;
    let mut b = Node::start(32, SpeakerOptions::default()).await;
    let mut c = Node::start(33, SpeakerOptions::default()).await;
    b.cfg.cluster_id = Some(Ipv4Addr::new(244, 0, 0, 1));
    a.cfg.originated.insert(net("10.65.31.0/26"));
    c.cfg.originated.insert(net("10.65.33.0/26"));
    a.cfg.peers = vec![a.spec_for(&b)];
    c.cfg.peers = vec![c.spec_for(&b)];
    let mut to_a = b.spec_for(&a);
    to_a.rr_client = true;
    let mut to_c = b.spec_for(&c);
    to_c.rr_client = true;
    b.cfg.peers = vec![to_a, to_c];
    for n in [&mut a, &mut b, &mut c] {
        n.apply().await;
    }
    // Reflected routes keep their next hop (RFC 4456 §8).
    c.wait_fib("A's block at C via the RR", |f| {
        f.get(&net("10.65.31.0/26")) == Some(&ip(31))
    })
    .await;
    a.wait_fib("C's block at A via the RR", |f| {
        f.get(&net("10.65.33.0/26")) == Some(&ip(33))
    })
    .await;
    for n in [a, b, c] {
        n.speaker.shutdown(false).await;
    }
}

#[tokio::test]
async fn graceful_restart_keeps_routes_until_end_of_rib() {
    let mut a = Node::start(41, SpeakerOptions::default()).await;
    let mut b = Node::start(42, SpeakerOptions::default()).await;
    a.cfg.originated.insert(net("10.65.41.0/26"));
    a.cfg.originated.insert(net("10.65.41.64/26"));
    mesh(&mut [&mut a, &mut b]).await;
    b.wait_fib("A's blocks", |f| f.len() == 2).await;

    // A restarts: closes without a NOTIFICATION; B keeps A's routes as stale.
    let a_port = a.port;
    a.speaker.shutdown(true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.drain();
    assert_eq!(b.fib.len(), 2, "B dropped A's routes during A's restart");
    b.wait_status("B sees A down", |s| {
        s.peers[0].session.state != State::Established
    })
    .await;

    // A comes back on the same port, restarting, with one block fewer: after its
    // End-of-RIB, B drops the block A no longer has and keeps the other.
    let options = SpeakerOptions {
        restarting: true,
        ..SpeakerOptions::default()
    };
    let (speaker, fib_rx) = Speaker::start(options);
    a.speaker = speaker;
    a.fib_rx = fib_rx;
    a.cfg.listen = Some(SocketAddr::new(ip(41), a_port));
    a.cfg.originated.remove(&net("10.65.41.64/26"));
    a.apply().await;
    b.wait_fib("stale route flushed after End-of-RIB", |f| {
        f.len() == 1 && f.contains_key(&net("10.65.41.0/26"))
    })
    .await;
    a.wait_status("A synced", |s| s.initial_sync_complete).await;
    a.speaker.shutdown(false).await;
    b.speaker.shutdown(false).await;
}

#[tokio::test]
async fn bad_peer_config_is_refused_whole() {
    let a = Node::start(51, SpeakerOptions::default()).await;
    let mut cfg = a.cfg.clone();
    let mut p = PeerSpec::new("Global_x", ip(52), 0);
    p.port = 1;
    cfg.peers = vec![p];
    let err = a.speaker.apply(cfg.clone()).await.unwrap_err();
    assert!(err.to_string().contains("AS number 0"), "{err}");
    cfg.peers = vec![
        PeerSpec::new("a", ip(52), 65000),
        PeerSpec::new("b", ip(52), 65001),
    ];
    let err = a.speaker.apply(cfg).await.unwrap_err();
    assert!(err.to_string().contains("configured twice"), "{err}");
    let s = a.speaker.status().await.unwrap();
    assert!(s.peers.is_empty(), "a refused config left peers: {s:?}");
    a.speaker.shutdown(false).await;
}

/// RFC 2385: with the same password on both speakers the session comes up; with a different
/// one the kernel drops every segment, so it never does. Runs in a namespace of its own,
/// where the sockets are created through the speaker's socket factory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_md5_passwords_must_match() {
    use calico_netlink::testing::{TestNetns, require_root};
    use std::sync::Arc;
    if !require_root() {
        return;
    }
    let ns = TestNetns::new("bgp-md5").unwrap();
    let netns = Arc::new(ns.ns().try_clone().unwrap());
    let factory: calico_bgp_speaker::peer::SocketFactory = Arc::new(move |family| {
        netns
            .run(move || match family {
                calico_bgp_speaker::peer::SocketFamily::V4 => tokio::net::TcpSocket::new_v4(),
                calico_bgp_speaker::peer::SocketFamily::V6 => tokio::net::TcpSocket::new_v6(),
            })
            .map_err(std::io::Error::other)?
    });
    let options = || SpeakerOptions {
        sockets: factory.clone(),
        ..SpeakerOptions::default()
    };
    for (pw_a, pw_b, should_connect) in [("s3cret", "s3cret", true), ("s3cret", "other", false)] {
        let mut a = Node::start(61, options()).await;
        let mut b = Node::start(62, options()).await;
        a.cfg.originated.insert(net("10.65.61.0/26"));
        let mut to_b = a.spec_for(&b);
        to_b.password = Some(pw_a.into());
        let mut to_a = b.spec_for(&a);
        to_a.password = Some(pw_b.into());
        a.cfg.peers = vec![to_b];
        b.cfg.peers = vec![to_a];
        a.apply().await;
        b.apply().await;
        if should_connect {
            b.wait_fib("route over an MD5 session", |f| f.len() == 1)
                .await;
        } else {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let s = b.speaker.status().await.unwrap();
            assert_ne!(s.peers[0].session.state, State::Established, "{s:#?}");
            b.drain();
            assert!(b.fib.is_empty());
        }
        a.speaker.shutdown(false).await;
        b.speaker.shutdown(false).await;
    }
}
