//! Self-test of the BGP peer harness (`calico_e2e::bgp_peers`): BIRD 2 and GoBGP, each in its
//! own network namespace joined by a veth pair (bgp.md §4), peer with each other through the
//! harness alone. Sessions come up (plain and TCP-MD5), routes announced on either side arrive
//! with their attributes and go on withdraw, BIRD writes GoBGP's routes into its namespace's FIB,
//! graceful restart keeps routes across a kill -9 and a restart, the GR timer and the hold timer
//! remove them, and BIRD reflects routes between two GoBGP clients. Under
//! `CALICO_REQUIRE_ROOT=1` nothing skips.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use calico_e2e::bgp_peers::{
    BgpPeerDaemon, Bird, DaemonSpec, FibRoute, Frr, Gobgp, NeighborSpec, RouteAttrs, connect,
    fib_routes, wait_fib,
};
use calico_netlink::testing::{TestNetns, require_root};
use ipnet::IpNet;

const BIRD_IP: &str = "10.0.0.1";
const GOBGP_IP: &str = "10.0.0.2";
const UP: Duration = Duration::from_secs(20);
const SOON: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn rid(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// Two namespaces joined by veth: BIRD's side 10.0.0.1/24, GoBGP's side 10.0.0.2/24.
fn pair(tag: &str) -> (TestNetns, TestNetns) {
    let a = TestNetns::new(&format!("bgph-{tag}-b")).unwrap();
    let b = TestNetns::new(&format!("bgph-{tag}-g")).unwrap();
    connect(
        a.name(),
        "vbird",
        &["10.0.0.1/24"],
        b.name(),
        "vgobgp",
        &["10.0.0.2/24"],
    )
    .unwrap();
    (a, b)
}

/// BIRD's BGP routes in its namespace's FIB, as (destination, gateway).
fn bird_fib(ns: &TestNetns) -> Vec<(IpNet, Option<IpAddr>)> {
    proto_fib(ns, "bird")
}

/// The FIB routes `protocol` wrote in `ns`, as (destination, gateway).
fn proto_fib(ns: &TestNetns, protocol: &str) -> Vec<(IpNet, Option<IpAddr>)> {
    fib_routes(ns.name())
        .unwrap()
        .into_iter()
        .filter(|r| r.protocol == protocol)
        .map(|r| (r.dst, r.gateway))
        .collect()
}

fn wait_bird_fib(ns: &TestNetns, what: &str, f: impl Fn(&[(IpNet, Option<IpAddr>)]) -> bool) {
    wait_proto_fib(ns, "bird", what, f)
}

fn wait_proto_fib(
    ns: &TestNetns,
    protocol: &str,
    what: &str,
    f: impl Fn(&[(IpNet, Option<IpAddr>)]) -> bool,
) {
    let pairs = |routes: &[FibRoute]| -> Vec<(IpNet, Option<IpAddr>)> {
        routes
            .iter()
            .filter(|r| r.protocol == protocol)
            .map(|r| (r.dst, r.gateway))
            .collect()
    };
    if let Err(e) = wait_fib(ns.name(), SOON, |routes| f(&pairs(routes))) {
        panic!("FIB: {what}: {e}; it holds {:?}", proto_fib(ns, protocol));
    }
}

#[test]
fn generated_configs_are_accepted_by_both_daemons() {
    // Every knob at once, in both families; parse-only, no namespace needed.
    let mut spec = DaemonSpec::new("unused", rid("10.0.0.1"), 64512)
        .listen_address(ip("10.0.0.1"))
        .program_kernel()
        .neighbor(
            NeighborSpec::new(ip("10.0.0.2"), 64512)
                .password("s3cret")
                .rr_client()
                .graceful_restart(30)
                .hold_time(9)
                .port(1790)
                .passive()
                .add_paths(),
        )
        .neighbor(NeighborSpec::new(ip("fd00::2"), 65000).graceful_restart(5));
    spec.cluster_id = Some(rid("1.2.3.4"));
    spec.listen_port = 1791;
    Bird::check_config(&spec, &[net("10.128.0.0/26"), net("fd00:80::/64")]).unwrap();
    Frr::check_config(&spec, &[net("10.128.0.0/26"), net("fd00:80::/64")]).unwrap();
    spec.program_kernel = false;
    Gobgp::check_config(&spec).unwrap();
    // A broken spec is refused before any daemon sees it.
    let bad = spec
        .clone()
        .neighbor(NeighborSpec::new(ip("10.0.0.9"), 65000).rr_client());
    assert!(Bird::check_config(&bad, &[]).is_err());
    assert!(Gobgp::check_config(&bad).is_err());
    assert!(Frr::check_config(&bad, &[]).is_err());
}

#[test]
fn ibgp_routes_both_ways_withdraw_and_bird_programs_the_fib() {
    if !require_root() {
        return;
    }
    let (bns, gns) = pair("ibgp");
    // Calico's mesh session shape: iBGP, ADD-PATH, BIRD writing BGP routes to the FIB.
    let mut bird = Bird::start(
        &DaemonSpec::new(bns.name(), rid(BIRD_IP), 64512)
            .listen_address(ip(BIRD_IP))
            .program_kernel()
            .neighbor(NeighborSpec::new(ip(GOBGP_IP), 64512).add_paths()),
    )
    .unwrap();
    let mut gobgp = Gobgp::start(
        &DaemonSpec::new(gns.name(), rid(GOBGP_IP), 64512)
            .listen_address(ip(GOBGP_IP))
            .neighbor(NeighborSpec::new(ip(BIRD_IP), 64512).add_paths()),
    )
    .unwrap();
    assert!(bird.pid() > 0 && gobgp.pid() > 0 && bird.pid() != gobgp.pid());
    bird.wait_established(ip(GOBGP_IP), UP).unwrap();
    gobgp.wait_established(ip(BIRD_IP), UP).unwrap();
    assert!(
        gobgp.session_state(ip("10.0.0.99")).is_err(),
        "not a neighbor"
    );

    // BIRD → GoBGP, own next hop and a community.
    bird.announce(&[net("10.128.0.0/26")], None, &[(64512, 100)])
        .unwrap();
    let r = gobgp
        .wait_route(net("10.128.0.0/26"), Some(ip(BIRD_IP)), SOON)
        .unwrap();
    assert_eq!(r.next_hop, Some(ip(BIRD_IP)));
    assert_eq!(r.communities, vec![(64512, 100)]);
    assert_eq!(r.local_pref, Some(100));
    assert!(r.as_path.is_empty(), "iBGP adds no AS: {r:?}");
    assert_eq!(r.stale, Some(false));
    // BIRD → GoBGP with an explicit third-party next hop.
    bird.announce(&[net("10.129.0.0/26")], Some(ip("10.0.0.7")), &[])
        .unwrap();
    let r = gobgp.wait_route(net("10.129.0.0/26"), None, SOON).unwrap();
    assert_eq!(r.next_hop, Some(ip("10.0.0.7")));

    // GoBGP → BIRD → BIRD's FIB.
    gobgp
        .announce(
            &[net("10.64.0.0/26"), net("10.64.1.0/26")],
            None,
            &[(65000, 7), (65000, 8)],
        )
        .unwrap();
    for p in ["10.64.0.0/26", "10.64.1.0/26"] {
        let r = bird.wait_route(net(p), Some(ip(GOBGP_IP)), SOON).unwrap();
        assert_eq!(r.next_hop, Some(ip(GOBGP_IP)), "{r:?}");
        assert_eq!(r.communities, vec![(65000, 7), (65000, 8)]);
    }
    wait_bird_fib(&bns, "GoBGP's two routes via 10.0.0.2", |fib| {
        fib.contains(&(net("10.64.0.0/26"), Some(ip(GOBGP_IP))))
            && fib.contains(&(net("10.64.1.0/26"), Some(ip(GOBGP_IP))))
    });
    // BIRD's own blackholes are not BGP routes: never in its FIB.
    assert!(
        !bird_fib(&bns)
            .iter()
            .any(|(d, _)| *d == net("10.128.0.0/26")),
        "{:?}",
        bird_fib(&bns)
    );

    // Every attribute the harness can originate, both ways (iBGP: LOCAL_PREF travels too).
    let attrs = RouteAttrs::default()
        .community(64512, 1)
        .large_community(64512, 2, 3)
        .as_path(&[65010, 65011])
        .local_pref(250)
        .med(9);
    bird.announce_with(&[net("10.130.0.0/26"), net("10.130.1.0/26")], &attrs)
        .unwrap();
    gobgp
        .announce_with(
            &[net("10.65.0.0/26")],
            &attrs.clone().next_hop(ip(GOBGP_IP)),
        )
        .unwrap();
    for (daemon, p, from) in [
        (&gobgp as &dyn BgpPeerDaemon, "10.130.0.0/26", BIRD_IP),
        (&gobgp, "10.130.1.0/26", BIRD_IP),
        (&bird, "10.65.0.0/26", GOBGP_IP),
    ] {
        let r = daemon.wait_route(net(p), Some(ip(from)), SOON).unwrap();
        assert_eq!(r.next_hop, Some(ip(from)), "{r:?}");
        assert_eq!(r.communities, vec![(64512, 1)], "{r:?}");
        assert_eq!(r.large_communities, vec![(64512, 2, 3)], "{r:?}");
        assert_eq!(r.as_path, vec![65010, 65011], "{r:?}");
        assert_eq!(r.local_pref, Some(250), "{r:?}");
        assert_eq!(r.med, Some(9), "{r:?}");
    }
    assert!(
        bird.neighbor_details(ip(GOBGP_IP))
            .unwrap()
            .contains("BGP state:          Established")
    );
    assert!(
        gobgp
            .neighbor_details(ip(BIRD_IP))
            .unwrap()
            .contains("\"session_state\":6")
    );

    // Withdraws propagate, the rest stays.
    gobgp.withdraw(&[net("10.64.0.0/26")]).unwrap();
    bird.wait_no_route(net("10.64.0.0/26"), SOON).unwrap();
    wait_bird_fib(&bns, "10.64.0.0/26 gone, 10.64.1.0/26 kept", |fib| {
        !fib.iter().any(|(d, _)| *d == net("10.64.0.0/26"))
            && fib.iter().any(|(d, _)| *d == net("10.64.1.0/26"))
    });
    bird.withdraw(&[net("10.128.0.0/26")]).unwrap();
    gobgp.wait_no_route(net("10.128.0.0/26"), SOON).unwrap();
    assert!(
        gobgp
            .received_routes()
            .unwrap()
            .iter()
            .any(|r| r.prefix == net("10.129.0.0/26")),
        "the other BIRD route must stay"
    );
    // Withdrawing what was never announced is refused.
    assert!(bird.withdraw(&[net("10.200.0.0/24")]).is_err());
    assert!(gobgp.withdraw(&[net("10.64.0.0/26")]).is_err());
    // Mixed families are refused.
    assert!(
        bird.announce(&[net("10.1.0.0/24")], Some(ip("fd00::1")), &[])
            .is_err()
    );
}

#[test]
fn md5_sessions_come_up_only_with_matching_keys() {
    if !require_root() {
        return;
    }
    let start = |tag: &str, bird_key: Option<&str>, gobgp_key: Option<&str>| {
        let (bns, gns) = pair(tag);
        let with = |n: NeighborSpec, k: Option<&str>| match k {
            Some(k) => n.password(k),
            None => n,
        };
        let bird = Bird::start(
            &DaemonSpec::new(bns.name(), rid(BIRD_IP), 64512)
                .neighbor(with(NeighborSpec::new(ip(GOBGP_IP), 64512), bird_key)),
        )
        .unwrap();
        let gobgp = Gobgp::start(
            &DaemonSpec::new(gns.name(), rid(GOBGP_IP), 64512)
                .neighbor(with(NeighborSpec::new(ip(BIRD_IP), 64512), gobgp_key)),
        )
        .unwrap();
        (bns, gns, bird, gobgp)
    };
    let (_b1, _g1, bird, gobgp) = start("md5ok", Some("s3cret"), Some("s3cret"));
    let (_b2, _g2, bird_bad, gobgp_bad) = start("md5bad", Some("s3cret"), Some("other"));
    bird.wait_established(ip(GOBGP_IP), UP).unwrap();
    gobgp.wait_established(ip(BIRD_IP), UP).unwrap();
    // The kernel signs the session: BIRD's socket carries the key for GoBGP's address.
    let ss = std::process::Command::new("ip")
        .args(["netns", "exec", _b1.name(), "ss", "-tni"])
        .output()
        .unwrap();
    let ss = String::from_utf8_lossy(&ss.stdout);
    assert!(ss.contains("md5keys:10.0.0.2"), "{ss}");
    // The mismatched pair had as long and never got there.
    assert!(
        bird_bad
            .wait_established(ip(GOBGP_IP), Duration::from_secs(2))
            .is_err()
    );
    assert_ne!(gobgp_bad.session_state(ip(BIRD_IP)).unwrap(), "Established");
}

#[test]
fn graceful_restart_keeps_routes_across_kill_and_restart() {
    if !require_root() {
        return;
    }
    let (bns, gns) = pair("gr");
    // eBGP this time, so AS paths show; GR with a restart time far above the test's gaps.
    let mut bird = Bird::start(
        &DaemonSpec::new(bns.name(), rid(BIRD_IP), 64512)
            .program_kernel()
            .neighbor(NeighborSpec::new(ip(GOBGP_IP), 65001).graceful_restart(30)),
    )
    .unwrap();
    let mut gobgp = Gobgp::start(
        &DaemonSpec::new(gns.name(), rid(GOBGP_IP), 65001)
            .neighbor(NeighborSpec::new(ip(BIRD_IP), 64512).graceful_restart(30)),
    )
    .unwrap();
    bird.wait_established(ip(GOBGP_IP), UP).unwrap();
    bird.announce(&[net("10.128.0.0/26")], None, &[]).unwrap();
    gobgp
        .announce(&[net("10.64.0.0/26")], Some(ip(GOBGP_IP)), &[])
        .unwrap();
    let r = gobgp.wait_route(net("10.128.0.0/26"), None, SOON).unwrap();
    assert_eq!(r.as_path, vec![64512]);
    let r = bird.wait_route(net("10.64.0.0/26"), None, SOON).unwrap();
    assert_eq!(r.as_path, vec![65001]);
    wait_bird_fib(&bns, "GoBGP's route", |fib| {
        fib.contains(&(net("10.64.0.0/26"), Some(ip(GOBGP_IP))))
    });

    // BIRD dies without a NOTIFICATION: GoBGP keeps its route, marked stale.
    let old = bird.pid();
    bird.kill().unwrap();
    assert!(
        bird.received_routes().is_err(),
        "a killed BIRD answers nothing"
    );
    let deadline = Instant::now() + SOON;
    loop {
        let rs = gobgp.received_routes().unwrap();
        let r = rs
            .iter()
            .find(|r| r.prefix == net("10.128.0.0/26"))
            .expect("GoBGP dropped BIRD's route although GR is on");
        if r.stale == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "never marked stale: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The FIB BIRD wrote stays too (nothing removes it while BIRD is dead).
    assert!(bird_fib(&bns).contains(&(net("10.64.0.0/26"), Some(ip(GOBGP_IP)))));
    bird.restart_graceful().unwrap();
    assert_ne!(bird.pid(), old);
    bird.wait_established(ip(GOBGP_IP), UP).unwrap();
    // After End-of-RIB the route is fresh again; BIRD learned GoBGP's again.
    let deadline = Instant::now() + SOON;
    while gobgp
        .wait_route(net("10.128.0.0/26"), None, SOON)
        .unwrap()
        .stale
        != Some(false)
    {
        assert!(Instant::now() < deadline, "route still stale after restart");
        std::thread::sleep(Duration::from_millis(100));
    }
    bird.wait_route(net("10.64.0.0/26"), None, SOON).unwrap();

    // Now GoBGP restarts gracefully: BIRD's FIB keeps the route throughout.
    gobgp.restart_graceful().unwrap();
    assert!(bird_fib(&bns).contains(&(net("10.64.0.0/26"), Some(ip(GOBGP_IP)))));
    gobgp.wait_established(ip(BIRD_IP), UP).unwrap();
    bird.wait_established(ip(GOBGP_IP), UP).unwrap();
    // The restarted gobgpd originates the same prefix again and BIRD keeps it past End-of-RIB.
    std::thread::sleep(Duration::from_secs(1));
    bird.wait_route(net("10.64.0.0/26"), Some(ip(GOBGP_IP)), SOON)
        .unwrap();
    wait_bird_fib(&bns, "GoBGP's route after its restart", |fib| {
        fib.contains(&(net("10.64.0.0/26"), Some(ip(GOBGP_IP))))
    });
    gobgp.wait_route(net("10.128.0.0/26"), None, SOON).unwrap();
}

#[test]
fn gr_timer_and_hold_timer_remove_routes() {
    if !require_root() {
        return;
    }
    // GR restart time 4 s: after a kill -9 the peer keeps the routes about that long.
    let (bns, gns) = pair("timers");
    let bird = Bird::start(
        &DaemonSpec::new(bns.name(), rid(BIRD_IP), 64512)
            .program_kernel()
            .neighbor(NeighborSpec::new(ip(GOBGP_IP), 64512).graceful_restart(4)),
    )
    .unwrap();
    let mut gobgp = Gobgp::start(
        &DaemonSpec::new(gns.name(), rid(GOBGP_IP), 64512)
            .neighbor(NeighborSpec::new(ip(BIRD_IP), 64512).graceful_restart(4)),
    )
    .unwrap();
    bird.wait_established(ip(GOBGP_IP), UP).unwrap();
    gobgp.announce(&[net("10.64.0.0/26")], None, &[]).unwrap();
    bird.wait_route(net("10.64.0.0/26"), None, SOON).unwrap();
    wait_bird_fib(&bns, "GoBGP's route", |fib| !fib.is_empty());
    gobgp.kill().unwrap();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    bird.wait_route(net("10.64.0.0/26"), None, Duration::ZERO)
        .expect("BIRD dropped the route before the restart time");
    bird.wait_no_route(net("10.64.0.0/26"), SOON).unwrap();
    let kept = killed.elapsed();
    assert!(
        kept >= Duration::from_secs(3),
        "kept only {kept:?} of the 4 s restart time"
    );
    wait_bird_fib(&bns, "route gone with the GR timer", |fib| fib.is_empty());

    // No GR, hold time 3 s: a frozen GoBGP stays connected but silent; BIRD's hold timer
    // expires and takes the route away.
    let (bns2, gns2) = pair("hold");
    let bird = Bird::start(
        &DaemonSpec::new(bns2.name(), rid(BIRD_IP), 64512)
            .neighbor(NeighborSpec::new(ip(GOBGP_IP), 64512).hold_time(3)),
    )
    .unwrap();
    let mut gobgp = Gobgp::start(
        &DaemonSpec::new(gns2.name(), rid(GOBGP_IP), 64512)
            .neighbor(NeighborSpec::new(ip(BIRD_IP), 64512).hold_time(3)),
    )
    .unwrap();
    bird.wait_established(ip(GOBGP_IP), UP).unwrap();
    gobgp.announce(&[net("10.64.0.0/26")], None, &[]).unwrap();
    bird.wait_route(net("10.64.0.0/26"), None, SOON).unwrap();
    gobgp.freeze().unwrap();
    let frozen = Instant::now();
    bird.wait_no_route(net("10.64.0.0/26"), SOON).unwrap();
    assert!(
        frozen.elapsed() >= Duration::from_secs(1),
        "gone after {:?}: not the hold timer",
        frozen.elapsed()
    );
    assert!(
        bird.log_tail().contains("Hold timer expired"),
        "{}",
        bird.log_tail()
    );
    assert_ne!(bird.session_state(ip(GOBGP_IP)).unwrap(), "Established");
    gobgp.thaw().unwrap();
    // Dropping a thawed (or frozen) daemon kills it all the same.
    drop(gobgp);
    drop(gns2);
    let _ = bns2;
}

#[test]
fn bird_reflects_routes_between_gobgp_clients() {
    if !require_root() {
        return;
    }
    // BIRD as route reflector in the middle (10.0.1.1, 10.0.2.1), two GoBGP clients.
    let rr = TestNetns::new("bgph-rr").unwrap();
    let c1 = TestNetns::new("bgph-c1").unwrap();
    let c2 = TestNetns::new("bgph-c2").unwrap();
    connect(
        rr.name(),
        "to-c1",
        &["10.0.1.1/24"],
        c1.name(),
        "eth0",
        &["10.0.1.2/24"],
    )
    .unwrap();
    connect(
        rr.name(),
        "to-c2",
        &["10.0.2.1/24"],
        c2.name(),
        "eth0",
        &["10.0.2.2/24"],
    )
    .unwrap();
    for (ns, gw) in [(&c1, "10.0.1.1"), (&c2, "10.0.2.1")] {
        calico_e2e::run_checked(std::process::Command::new("ip").args([
            "-n",
            ns.name(),
            "route",
            "add",
            "default",
            "via",
            gw,
        ]))
        .unwrap();
    }
    let mut spec = DaemonSpec::new(rr.name(), rid("10.0.1.1"), 64512)
        .neighbor(NeighborSpec::new(ip("10.0.1.2"), 64512).rr_client())
        .neighbor(NeighborSpec::new(ip("10.0.2.2"), 64512).rr_client());
    spec.cluster_id = Some(rid("9.9.9.9"));
    let bird = Bird::start(&spec).unwrap();
    let client = |ns: &TestNetns, me: &str, rr: &str| {
        Gobgp::start(
            &DaemonSpec::new(ns.name(), rid(me), 64512).neighbor(NeighborSpec::new(ip(rr), 64512)),
        )
        .unwrap()
    };
    let mut g1 = client(&c1, "10.0.1.2", "10.0.1.1");
    let g2 = client(&c2, "10.0.2.2", "10.0.2.1");
    bird.wait_established(ip("10.0.1.2"), UP).unwrap();
    bird.wait_established(ip("10.0.2.2"), UP).unwrap();
    g1.announce(&[net("10.64.0.0/26")], None, &[(64512, 1)])
        .unwrap();
    // Reflected unchanged: next hop still client 1, community kept, from the RR.
    let r = g2
        .wait_route(net("10.64.0.0/26"), Some(ip("10.0.2.1")), SOON)
        .unwrap();
    assert_eq!(r.next_hop, Some(ip("10.0.1.2")));
    assert_eq!(r.communities, vec![(64512, 1)]);
    // RFC 4456: the reflector adds ORIGINATOR_ID (client 1's router ID) and its cluster ID.
    assert_eq!(r.originator_id, Some(rid("10.0.1.2")), "{r:?}");
    assert_eq!(r.cluster_list, vec![rid("9.9.9.9")], "{r:?}");
    // Not reflected back to its originator.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !g1.received_routes()
            .unwrap()
            .iter()
            .any(|r| r.prefix == net("10.64.0.0/26")),
        "reflected back to the originator"
    );
    g1.withdraw(&[net("10.64.0.0/26")]).unwrap();
    g2.wait_no_route(net("10.64.0.0/26"), SOON).unwrap();
}

#[test]
fn ipv6_session_routes_and_fib() {
    if !require_root() {
        return;
    }
    let a = TestNetns::new("bgph-v6-b").unwrap();
    let b = TestNetns::new("bgph-v6-g").unwrap();
    connect(
        a.name(),
        "vbird",
        &["fd00::1/64"],
        b.name(),
        "vgobgp",
        &["fd00::2/64"],
    )
    .unwrap();
    let mut bird = Bird::start(
        &DaemonSpec::new(a.name(), rid(BIRD_IP), 64512)
            .listen_address(ip("fd00::1"))
            .program_kernel()
            .neighbor(NeighborSpec::new(ip("fd00::2"), 65001)),
    )
    .unwrap();
    let mut gobgp = Gobgp::start(
        &DaemonSpec::new(b.name(), rid(GOBGP_IP), 65001)
            .listen_address(ip("fd00::2"))
            .neighbor(NeighborSpec::new(ip("fd00::1"), 64512)),
    )
    .unwrap();
    bird.wait_established(ip("fd00::2"), UP).unwrap();
    gobgp.wait_established(ip("fd00::1"), UP).unwrap();
    bird.announce(&[net("fd00:80::/64")], None, &[(64512, 6)])
        .unwrap();
    gobgp
        .announce(&[net("fd00:64::/64")], Some(ip("fd00::2")), &[])
        .unwrap();
    let r = gobgp.wait_route(net("fd00:80::/64"), None, SOON).unwrap();
    assert_eq!(r.next_hop, Some(ip("fd00::1")), "{r:?}");
    assert_eq!(r.as_path, vec![64512]);
    assert_eq!(r.communities, vec![(64512, 6)]);
    let r = bird.wait_route(net("fd00:64::/64"), None, SOON).unwrap();
    assert_eq!(r.next_hop, Some(ip("fd00::2")), "{r:?}");
    wait_bird_fib(&a, "GoBGP's IPv6 route via fd00::2", |fib| {
        fib.contains(&(net("fd00:64::/64"), Some(ip("fd00::2"))))
    });
    gobgp.withdraw(&[net("fd00:64::/64")]).unwrap();
    wait_bird_fib(&a, "IPv6 route withdrawn", |fib| {
        !fib.iter().any(|(d, _)| *d == net("fd00:64::/64"))
    });
}

#[test]
fn frr_interoperates_with_bird_and_gobgp() {
    if !require_root() {
        return;
    }
    // FRR (zebra writing the FIB) in the middle: iBGP to BIRD, eBGP with TCP-MD5 to GoBGP.
    let f = TestNetns::new("bgph-frr").unwrap();
    let b = TestNetns::new("bgph-frr-b").unwrap();
    let g = TestNetns::new("bgph-frr-g").unwrap();
    connect(
        f.name(),
        "to-bird",
        &["10.0.1.1/24"],
        b.name(),
        "eth0",
        &["10.0.1.2/24"],
    )
    .unwrap();
    connect(
        f.name(),
        "to-gobgp",
        &["10.0.2.1/24"],
        g.name(),
        "eth0",
        &["10.0.2.2/24"],
    )
    .unwrap();
    let mut frr = Frr::start(
        &DaemonSpec::new(f.name(), rid("10.0.1.1"), 64512)
            .program_kernel()
            .neighbor(NeighborSpec::new(ip("10.0.1.2"), 64512).graceful_restart(30))
            .neighbor(NeighborSpec::new(ip("10.0.2.2"), 65001).password("s3cret")),
    )
    .unwrap();
    let mut bird = Bird::start(
        &DaemonSpec::new(b.name(), rid("10.0.1.2"), 64512)
            .program_kernel()
            .neighbor(NeighborSpec::new(ip("10.0.1.1"), 64512).graceful_restart(30)),
    )
    .unwrap();
    let gobgp = Gobgp::start(
        &DaemonSpec::new(g.name(), rid("10.0.2.2"), 65001)
            .neighbor(NeighborSpec::new(ip("10.0.2.1"), 64512).password("s3cret")),
    )
    .unwrap();
    frr.wait_established(ip("10.0.1.2"), UP).unwrap();
    frr.wait_established(ip("10.0.2.2"), UP).unwrap();
    gobgp.wait_established(ip("10.0.2.1"), UP).unwrap();

    // BIRD → FRR (iBGP) → FRR's FIB, and on to GoBGP (eBGP: FRR's AS in front, FRR's address
    // as next hop).
    bird.announce_with(
        &[net("10.128.0.0/26")],
        &RouteAttrs::default()
            .community(64512, 5)
            .large_community(64512, 1, 1)
            .med(3),
    )
    .unwrap();
    let r = frr
        .wait_route(net("10.128.0.0/26"), Some(ip("10.0.1.2")), SOON)
        .unwrap();
    assert_eq!(r.next_hop, Some(ip("10.0.1.2")));
    assert_eq!(r.communities, vec![(64512, 5)]);
    assert_eq!(r.large_communities, vec![(64512, 1, 1)]);
    assert_eq!(r.med, Some(3));
    assert_eq!(r.local_pref, Some(100));
    wait_proto_fib(&f, "bgp", "BIRD's route in FRR's FIB", |fib| {
        fib.contains(&(net("10.128.0.0/26"), Some(ip("10.0.1.2"))))
    });
    let r = gobgp.wait_route(net("10.128.0.0/26"), None, SOON).unwrap();
    assert_eq!(r.as_path, vec![64512]);
    assert_eq!(r.next_hop, Some(ip("10.0.2.1")));

    // FRR originates with attributes; runtime change of attributes; withdraw.
    let attrs = RouteAttrs::default()
        .community(64512, 9)
        .as_path(&[65010])
        .local_pref(300);
    frr.announce_with(&[net("10.66.0.0/26")], &attrs).unwrap();
    let r = bird.wait_route(net("10.66.0.0/26"), None, SOON).unwrap();
    assert_eq!(r.next_hop, Some(ip("10.0.1.1")));
    assert_eq!(r.communities, vec![(64512, 9)]);
    assert_eq!(r.as_path, vec![65010]);
    assert_eq!(r.local_pref, Some(300));
    let r = gobgp.wait_route(net("10.66.0.0/26"), None, SOON).unwrap();
    assert_eq!(r.as_path, vec![64512, 65010]);
    frr.announce(&[net("10.66.0.0/26")], None, &[(64512, 10)])
        .unwrap();
    let deadline = Instant::now() + SOON;
    while bird
        .wait_route(net("10.66.0.0/26"), None, SOON)
        .unwrap()
        .communities
        != vec![(64512, 10)]
    {
        assert!(
            Instant::now() < deadline,
            "FRR did not re-announce with new attributes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    frr.withdraw(&[net("10.66.0.0/26")]).unwrap();
    bird.wait_no_route(net("10.66.0.0/26"), SOON).unwrap();
    gobgp.wait_no_route(net("10.66.0.0/26"), SOON).unwrap();

    // BIRD restarts gracefully: FRR keeps its route (stale) and its FIB entry meanwhile.
    bird.kill().unwrap();
    let deadline = Instant::now() + SOON;
    loop {
        let rs = frr.received_routes().unwrap();
        let r = rs
            .iter()
            .find(|r| r.prefix == net("10.128.0.0/26"))
            .expect("FRR dropped BIRD's route although GR is on");
        if r.stale == Some(true) {
            break;
        }
        assert!(Instant::now() < deadline, "never marked stale: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(proto_fib(&f, "bgp").contains(&(net("10.128.0.0/26"), Some(ip("10.0.1.2")))));
    bird.restart_graceful().unwrap();
    frr.wait_established(ip("10.0.1.2"), UP).unwrap();
    frr.wait_route(net("10.128.0.0/26"), Some(ip("10.0.1.2")), SOON)
        .unwrap();
    assert!(frr.session_state(ip("10.9.9.9")).is_err(), "not a neighbor");
    assert!(frr.vty(&["bogus command"]).is_err());
}

#[test]
fn frr_ipv6_with_gobgp_and_zebra_fib() {
    if !require_root() {
        return;
    }
    let a = TestNetns::new("bgph-frr6").unwrap();
    let b = TestNetns::new("bgph-frr6-g").unwrap();
    connect(
        a.name(),
        "eth0",
        &["fd00::1/64"],
        b.name(),
        "eth0",
        &["fd00::2/64"],
    )
    .unwrap();
    let mut frr = Frr::start(
        &DaemonSpec::new(a.name(), rid("10.0.0.1"), 64512)
            .listen_address(ip("fd00::1"))
            .program_kernel()
            .neighbor(NeighborSpec::new(ip("fd00::2"), 64512).hold_time(6)),
    )
    .unwrap();
    let mut gobgp = Gobgp::start(
        &DaemonSpec::new(b.name(), rid("10.0.0.2"), 64512)
            .neighbor(NeighborSpec::new(ip("fd00::1"), 64512).hold_time(6)),
    )
    .unwrap();
    frr.wait_established(ip("fd00::2"), UP).unwrap();
    frr.announce_with(
        &[net("fd00:80::/64")],
        &RouteAttrs::default()
            .next_hop(ip("fd00::7"))
            .large_community(64512, 4, 4)
            .local_pref(150),
    )
    .unwrap();
    let r = gobgp.wait_route(net("fd00:80::/64"), None, SOON).unwrap();
    assert_eq!(r.next_hop, Some(ip("fd00::7")), "{r:?}");
    assert_eq!(r.large_communities, vec![(64512, 4, 4)]);
    assert_eq!(r.local_pref, Some(150));
    gobgp
        .announce(&[net("fd00:64::/64")], Some(ip("fd00::2")), &[(1, 1)])
        .unwrap();
    let r = frr.wait_route(net("fd00:64::/64"), None, SOON).unwrap();
    assert_eq!(r.next_hop, Some(ip("fd00::2")), "{r:?}");
    assert_eq!(r.communities, vec![(1, 1)]);
    wait_proto_fib(&a, "bgp", "GoBGP's IPv6 route in FRR's FIB", |fib| {
        fib.contains(&(net("fd00:64::/64"), Some(ip("fd00::2"))))
    });
    // Hold timer (6 s) against a frozen GoBGP: FRR drops the session and the route.
    gobgp.freeze().unwrap();
    frr.wait_no_route(net("fd00:64::/64"), Duration::from_secs(15))
        .unwrap();
    assert_ne!(frr.session_state(ip("fd00::2")).unwrap(), "Established");
    wait_proto_fib(&a, "bgp", "route gone from FRR's FIB", |fib| fib.is_empty());
}
