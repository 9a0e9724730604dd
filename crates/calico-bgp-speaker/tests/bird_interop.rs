//! Our peer against BIRD 2 (Debian's 2.0.12, unpacked by scripts/install-deps.sh into
//! /var/cache/calico-rs/bird2; `CALICO_BIRD_ROOT` overrides), both inside a network namespace
//! the test creates: the iBGP session of Calico's mesh comes up, BIRD's static block reaches
//! us, ours reaches BIRD with our attributes, and our stop shows in BIRD as an administrative
//! shutdown. BIRD is stopped by its PID and the namespace deleted even when the test fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use calico_bgp::fsm::SessionConfig;
use calico_bgp_packet::{AsPath, Message, Nlri, Origin, PathAttributes, Update};
use calico_bgp_speaker::peer::{PeerCommand, PeerConfig, PeerEvent, spawn_peer};
use calico_netlink::testing::{TestNetns, require_root};
use tokio::sync::mpsc;

fn bird_root() -> PathBuf {
    std::env::var_os("CALICO_BIRD_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/calico-rs/bird2"))
}

/// BIRD, started in a namespace; killed by PID on drop.
struct Bird {
    dir: tempfile::TempDir,
    birdc: PathBuf,
}

impl Bird {
    fn start(ns: &TestNetns, conf: &str) -> Bird {
        let root = bird_root();
        let bird = root.join("usr/sbin/bird");
        assert!(
            bird.is_file(),
            "BIRD not found at {} (scripts/install-deps.sh unpacks it)",
            bird.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("bird.conf"),
            conf.replace("@DIR@", &d.display().to_string()),
        )
        .unwrap();
        let out = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(&bird)
            .arg("-c")
            .arg(d.join("bird.conf"))
            .arg("-s")
            .arg(d.join("bird.ctl"))
            .arg("-P")
            .arg(d.join("bird.pid"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "BIRD did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Bird {
            dir,
            birdc: root.join("usr/sbin/birdc"),
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.birdc)
            .arg("-s")
            .arg(self.dir.path().join("bird.ctl"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bird.log")).unwrap_or_default()
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("bird.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
            // Give it a moment to remove its socket before the directory goes.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn addr(ns: &TestNetns, cidr: &str) {
    let st = Command::new("ip")
        .args(["-n", ns.name(), "addr", "add", cidr, "dev", "lo"])
        .status()
        .unwrap();
    assert!(st.success());
}

const BIRD_CONF: &str = r#"log "@DIR@/bird.log" all;
router id 10.99.1.1;
protocol device { }
protocol static blocks { ipv4; route 10.128.0.0/26 blackhole; }
protocol bgp rspeaker {
  local 10.99.1.1 as 64512; neighbor 10.99.1.2 as 64512; multihop; graceful restart;
  connect delay time 1; connect retry time 1;
  ipv4 { add paths on; import all; export all; };
}
"#;

#[test]
fn session_and_routes_both_ways_with_bird() {
    if !require_root() {
        return;
    }
    let ns = TestNetns::new("bgp-bird").unwrap();
    addr(&ns, "10.99.1.1/32");
    addr(&ns, "10.99.1.2/32");
    let bird = Bird::start(&ns, BIRD_CONF);
    let (learned, bird_view) = ns
        .ns()
        .run(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut s = SessionConfig::new(64512, 64512, Ipv4Addr::new(10, 99, 1, 2));
                s.connect_delay = Duration::ZERO;
                let mut cfg = PeerConfig::new(s, SocketAddr::from(([10, 99, 1, 1], 179)));
                cfg.local_address = Some("10.99.1.2".parse().unwrap());
                let (tx, mut rx) = mpsc::channel(64);
                let peer = spawn_peer(cfg, tx);
                let mut learned = Vec::new();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                let mut up = None;
                while learned.is_empty() {
                    let ev = tokio::time::timeout_at(deadline, rx.recv())
                        .await
                        .unwrap_or_else(|_| {
                            panic!(
                                "no session/route from BIRD in 30 s; BIRD log:\n{}",
                                bird.log()
                            )
                        })
                        .expect("peer task ended");
                    match ev {
                        PeerEvent::Up { negotiated: n, .. } => up = Some(n),
                        PeerEvent::Update { update, errors } => {
                            assert!(errors.is_empty(), "{errors:?}");
                            assert_eq!(
                                update.attributes.next_hop,
                                Some(Ipv4Addr::new(10, 99, 1, 1))
                            );
                            learned.extend(update.announced().map(|(_, n)| n.prefix.to_string()));
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
                let up = up.expect("route before session up");
                assert_eq!(up.remote_id, Ipv4Addr::new(10, 99, 1, 1));
                assert!(up.four_octet_as, "4-octet AS not negotiated with BIRD");
                assert!(
                    up.peer_graceful_restart.is_some(),
                    "BIRD's GR capability not seen"
                );
                let ours = Update {
                    attributes: PathAttributes {
                        origin: Some(Origin::Igp),
                        as_path: Some(AsPath::sequence(vec![])),
                        next_hop: Some(Ipv4Addr::new(10, 99, 1, 2)),
                        local_pref: Some(100),
                        ..PathAttributes::default()
                    },
                    nlri: vec![Nlri {
                        prefix: "10.244.7.0/26".parse().unwrap(),
                        path_id: None,
                    }],
                    ..Update::default()
                };
                peer.command(PeerCommand::Send(Box::new(Message::Update(ours))))
                    .await
                    .unwrap();
                // BIRD applies it within moments; poll its view.
                let mut view = String::new();
                for _ in 0..50 {
                    view = bird.cli(&["show", "route", "all", "protocol", "rspeaker"]);
                    if view.contains("10.244.7.0/26") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                peer.stop().await;
                (learned, view)
            })
        })
        .unwrap();
    assert_eq!(learned, vec!["10.128.0.0/26".to_string()]);
    assert!(
        bird_view.contains("10.244.7.0/26"),
        "BIRD did not take our route:\n{bird_view}"
    );
    assert!(bird_view.contains("BGP.next_hop: 10.99.1.2"), "{bird_view}");
    assert!(bird_view.contains("BGP.local_pref: 100"), "{bird_view}");
    // Our stop reached BIRD as a Cease.
    let mut seen = false;
    for _ in 0..30 {
        if bird.log().contains("Received: Administrative shutdown") {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen, "BIRD did not see our Cease:\n{}", bird.log());
}
