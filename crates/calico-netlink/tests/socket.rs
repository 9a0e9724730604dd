//! Privileged tests of NetNs / RouteSocket / sysctl. Every namespace is a `TestNetns`; nothing here writes
//! to the root network namespace (it is only read, to show it was left alone).

#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use std::net::IpAddr;

use calico_netlink::testing::{TestNetns, require_root};
use calico_netlink::{
    ErrorKind, HOST_SIDE_MAC, IpNet, NetNs, Route, RouteFilter, RouteKind, RouteScope, RouteSocket,
    VethSpec, sysctl,
};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const PEER_MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x07];

/// A veth pair with both ends in `ns`, both up; returns (sock, index of `a`, index of `b`).
fn local_pair(ns: &TestNetns, a: &str, b: &str) -> (RouteSocket, u32, u32) {
    let sock = RouteSocket::open_in(ns.ns()).unwrap();
    sock.create_veth(&VethSpec {
        name: a,
        mac: None,
        mtu: None,
        peer_name: b,
        peer_mac: None,
        peer_netns: None,
    })
    .unwrap();
    let ia = sock.link_by_name(a).unwrap().unwrap().index;
    let ib = sock.link_by_name(b).unwrap().unwrap().index;
    sock.set_link_up(ia).unwrap();
    sock.set_link_up(ib).unwrap();
    (sock, ia, ib)
}

#[test]
fn veth_peer_is_born_in_the_other_namespace() {
    if !require_root() {
        return;
    }
    let host = TestNetns::new("cnl-host").unwrap();
    let cont = TestNetns::new("cnl-cont").unwrap();
    let hs = RouteSocket::open_in(host.ns()).unwrap();
    let cs = RouteSocket::open_in(cont.ns()).unwrap();

    hs.create_veth(&VethSpec {
        name: "calitest0",
        mac: Some(HOST_SIDE_MAC),
        mtu: Some(1410),
        peer_name: "eth0",
        peer_mac: Some(PEER_MAC),
        peer_netns: Some(cont.ns()),
    })
    .unwrap();

    let h = hs
        .link_by_name("calitest0")
        .unwrap()
        .expect("host end exists");
    let c = cs
        .link_by_name("eth0")
        .unwrap()
        .expect("container end exists");
    assert_eq!(h.kind.as_deref(), Some("veth"));
    assert_eq!(c.kind.as_deref(), Some("veth"));
    assert_eq!(h.mac, Some(HOST_SIDE_MAC));
    assert_eq!(c.mac, Some(PEER_MAC));
    assert_eq!((h.mtu, c.mtu), (1410, 1410));
    assert!(!h.admin_up && !c.admin_up, "links are born down");
    // Each end names the other as its peer, across namespaces.
    assert_eq!(h.peer_index, Some(c.index));
    assert_eq!(c.peer_index, Some(h.index));
    assert!(h.link_netnsid.is_some() && c.link_netnsid.is_some());
    // Each end exists only in its own namespace.
    assert!(hs.link_by_name("eth0").unwrap().is_none());
    assert!(cs.link_by_name("calitest0").unwrap().is_none());
    let host_names: Vec<String> = hs.links().unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(host_names, vec!["lo".to_string(), "calitest0".to_string()]);
    assert_eq!(
        hs.link_by_index(h.index).unwrap().unwrap().name,
        "calitest0"
    );
    // The root namespace (only read here) never saw either end.
    let root = RouteSocket::open().unwrap();
    assert!(root.link_by_name("calitest0").unwrap().is_none());

    // Up on both ends gives carrier on both.
    hs.set_link_up(h.index).unwrap();
    cs.set_link_up(c.index).unwrap();
    let h = hs.link_by_index(h.index).unwrap().unwrap();
    let c = cs.link_by_index(c.index).unwrap().unwrap();
    assert!(h.admin_up && c.admin_up && h.lower_up && c.lower_up);
    hs.set_link_down(h.index).unwrap();
    assert!(!hs.link_by_index(h.index).unwrap().unwrap().admin_up);
    hs.set_link_mtu(h.index, 1300).unwrap();
    assert_eq!(hs.link_by_index(h.index).unwrap().unwrap().mtu, 1300);

    // The same name again is Exists, and the message names the operation and both ends.
    let err = hs
        .create_veth(&VethSpec {
            name: "calitest0",
            mac: None,
            mtu: None,
            peer_name: "eth1",
            peer_mac: None,
            peer_netns: Some(cont.ns()),
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exists, "{err}");
    assert!(
        err.to_string()
            .starts_with("creating veth calitest0 with peer eth1 in network namespace /run/netns/"),
        "{err}"
    );
    assert!(
        cs.link_by_name("eth1").unwrap().is_none(),
        "failed create left no peer"
    );

    // Deleting one end removes both; deleting again reports absence.
    assert!(hs.delete_link("calitest0").unwrap());
    assert!(cs.link_by_name("eth0").unwrap().is_none());
    assert!(!hs.delete_link("calitest0").unwrap());
    assert!(hs.link_by_index(h.index).unwrap().is_none());
}

#[test]
fn bad_input_is_rejected_before_the_kernel() {
    if !require_root() {
        return;
    }
    let ns = TestNetns::new("cnl-bad").unwrap();
    let s = RouteSocket::open_in(ns.ns()).unwrap();
    let err = s
        .create_veth(&VethSpec {
            name: "this-name-is-too-long",
            mac: None,
            mtu: None,
            peer_name: "p",
            peer_mac: None,
            peer_netns: None,
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string()
            .contains("\"this-name-is-too-long\" is 21 bytes long"),
        "{err}"
    );
    let err = s
        .add_route(&Route::link_scope(net("10.1.2.3/24"), 1, 3))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.to_string()
            .contains("host bits set (the network is 10.1.2.0/24)"),
        "{err}"
    );
    let err = s.set_link_up(4242).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .starts_with("bringing up link with index 4242: No such device"),
        "{err}"
    );
}

#[test]
fn netns_handles() {
    if !require_root() {
        return;
    }
    let a = TestNetns::new("cnl-nsa").unwrap();
    let b = TestNetns::new("cnl-nsb").unwrap();
    let inside = a.ns().run(NetNs::current).unwrap().unwrap();
    assert!(inside.same_as(a.ns()).unwrap());
    assert!(!inside.same_as(b.ns()).unwrap());
    assert!(
        inside.path().starts_with("/proc/"),
        "{}",
        inside.path().display()
    );
    // The caller's thread did not move.
    let here = NetNs::current().unwrap();
    assert!(!here.same_as(a.ns()).unwrap());
    let reopened = NetNs::open(a.path()).unwrap();
    assert!(reopened.same_as(a.ns()).unwrap());
    assert_eq!(reopened.path(), a.path());

    let err = NetNs::open("/run/netns/cnl-does-not-exist").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains("/run/netns/cnl-does-not-exist"),
        "{err}"
    );
    assert!(
        NetNs::open_if_exists("/run/netns/cnl-does-not-exist")
            .unwrap()
            .is_none()
    );
    assert!(
        NetNs::open_if_exists(a.path())
            .unwrap()
            .unwrap()
            .same_as(a.ns())
            .unwrap()
    );
    let err = NetNs::open("/proc/self/status").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    // A panic inside `run` reaches the caller.
    let caught = std::panic::catch_unwind(|| a.ns().run(|| panic!("inside")));
    assert!(caught.is_err());
}

#[test]
fn addresses_add_list_delete() {
    if !require_root() {
        return;
    }
    let ns = TestNetns::new("cnl-addr").unwrap();
    let (s, ia, ib) = local_pair(&ns, "va0", "vb0");
    s.add_address(ia, net("10.10.0.1/24")).unwrap();
    s.add_address(ia, net("10.10.1.1/32")).unwrap();
    s.add_address(ia, net("fd00:10::1/64")).unwrap();
    let err = s.add_address(ia, net("10.10.0.1/24")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exists);
    // The kernel may add its own explanation ("(kernel: ipv4: Address already assigned)").
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "adding address 10.10.0.1/24 to va0 (index {ia}): File exists"
        )),
        "{text}"
    );
    let mine: Vec<IpNet> = s
        .addresses(Some(ia))
        .unwrap()
        .into_iter()
        .inspect(|a| assert_eq!(a.index, ia))
        .map(|a| a.addr)
        .collect();
    for want in ["10.10.0.1/24", "10.10.1.1/32", "fd00:10::1/64"] {
        assert!(mine.contains(&net(want)), "{want} missing from {mine:?}");
    }
    assert!(
        s.addresses(Some(ib))
            .unwrap()
            .iter()
            .all(|a| !a.addr.addr().is_ipv4())
    );
    let all = s.addresses(None).unwrap();
    assert!(all.iter().any(|a| a.addr == net("127.0.0.1/8")));
    // NODAD addresses can be bound at once (no tentative phase), many times over.
    for i in 1..=20u16 {
        let a: IpAddr = format!("fd00:11::{i:x}").parse().unwrap();
        s.add_address_nodad(ia, IpNet::from(a)).unwrap();
        ns.ns()
            .run(|| std::net::UdpSocket::bind((a, 0)))
            .unwrap()
            .unwrap_or_else(|e| panic!("binding {a} right after adding it: {e}"));
    }
    assert!(s.delete_address(ia, net("10.10.1.1/32")).unwrap());
    assert!(!s.delete_address(ia, net("10.10.1.1/32")).unwrap());
    assert!(
        !s.addresses(Some(ia))
            .unwrap()
            .iter()
            .any(|a| a.addr == net("10.10.1.1/32"))
    );
}

#[test]
fn routes_add_replace_delete_and_filtered_dumps() {
    if !require_root() {
        return;
    }
    let ns = TestNetns::new("cnl-route").unwrap();
    let (s, ia, ib) = local_pair(&ns, "vr0", "vr1");
    s.add_address(ia, net("10.20.0.1/24")).unwrap();

    let link = Route::link_scope(net("10.30.0.5/32"), ia, 3);
    s.add_route(&link).unwrap();
    let err = s.add_route(&link).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exists);
    assert_eq!(
        err.to_string(),
        "adding route 10.30.0.5/32 dev vr0 proto 3 scope link: File exists"
    );
    let via = Route::via(net("10.31.0.0/24"), ip("10.20.0.2"), ia, 80);
    s.add_route(&via).unwrap();
    let other_if = Route::link_scope(net("10.32.0.7/32"), ib, 80);
    s.add_route(&other_if).unwrap();
    let bh4 = Route::blackhole(net("10.40.0.0/26"), 80);
    let bh6 = Route::blackhole(net("fd00:40::/122"), 80);
    s.add_route(&bh4).unwrap();
    s.add_route(&bh6).unwrap();
    let unreachable = Route {
        kind: RouteKind::Unreachable,
        ..Route::blackhole(net("10.41.0.0/16"), 80)
    };
    s.add_route(&unreachable).unwrap();

    let dump = |f: RouteFilter| {
        let mut v: Vec<String> = s
            .routes(&f)
            .unwrap()
            .iter()
            .map(|r| r.dst.to_string())
            .collect();
        v.sort();
        v
    };
    let proto80 = RouteFilter {
        protocol: Some(80),
        ..RouteFilter::default()
    };
    assert_eq!(
        dump(proto80),
        vec![
            "10.31.0.0/24",
            "10.32.0.7/32",
            "10.40.0.0/26",
            "10.41.0.0/16",
            "fd00:40::/122"
        ]
    );
    let proto80_v4_on_ia = RouteFilter {
        v4: true,
        protocol: Some(80),
        oif: Some(ia),
        ..RouteFilter::default()
    };
    assert_eq!(dump(proto80_v4_on_ia), vec!["10.31.0.0/24"]);
    let proto80_v6 = RouteFilter {
        v6: true,
        protocol: Some(80),
        ..RouteFilter::default()
    };
    assert_eq!(dump(proto80_v6), vec!["fd00:40::/122"]);
    let boot_main = RouteFilter {
        protocol: Some(3),
        table: Some(254),
        ..RouteFilter::default()
    };
    assert_eq!(dump(boot_main), vec!["10.30.0.5/32"]);
    // Filters naming a table or interface that does not exist match nothing (not an error).
    assert!(
        dump(RouteFilter {
            table: Some(4000),
            ..RouteFilter::default()
        })
        .is_empty()
    );
    assert!(
        dump(RouteFilter {
            oif: Some(9999),
            ..RouteFilter::default()
        })
        .is_empty()
    );

    // Dumped routes carry every field back.
    let got = s
        .routes(&RouteFilter {
            protocol: Some(80),
            v4: true,
            ..RouteFilter::default()
        })
        .unwrap();
    let got_via = got.iter().find(|r| r.dst == via.dst).unwrap();
    assert_eq!(
        (
            got_via.gateway,
            got_via.oif,
            got_via.scope,
            got_via.kind,
            got_via.table
        ),
        (
            Some(ip("10.20.0.2")),
            Some(ia),
            RouteScope::Universe,
            RouteKind::Unicast,
            254
        )
    );
    let got_bh = got.iter().find(|r| r.dst == bh4.dst).unwrap();
    assert_eq!((got_bh.kind, got_bh.oif), (RouteKind::Blackhole, None));
    assert_eq!(
        got.iter().find(|r| r.dst == unreachable.dst).unwrap().kind,
        RouteKind::Unreachable
    );
    let got_link = s.routes(&boot_main).unwrap();
    assert_eq!(got_link, vec![link]);

    // IPv6 stores no scope and a default metric: the dump says so (documented on `Route`).
    let v6 = Route::link_scope(net("fd00:30::5/128"), ia, 3);
    s.add_route(&v6).unwrap();
    let got6 = s
        .routes(&RouteFilter {
            v6: true,
            oif: Some(ia),
            protocol: Some(3),
            ..RouteFilter::default()
        })
        .unwrap();
    assert_eq!(got6.len(), 1, "{got6:?}");
    assert_eq!(
        got6[0],
        Route {
            scope: RouteScope::Universe,
            metric: Some(1024),
            ..v6
        }
    );
    assert!(s.delete_route(&got6[0]).unwrap());

    // Replace re-tags the route in place (no EEXIST), moving it from proto 3 to proto 80.
    let retagged = Route::link_scope(net("10.30.0.5/32"), ia, 80);
    s.replace_route(&retagged).unwrap();
    assert!(dump(boot_main).is_empty());
    assert!(dump(proto80).contains(&"10.30.0.5/32".to_string()));
    // Replace also creates.
    let fresh = Route::link_scope(net("10.33.0.1/32"), ia, 80);
    s.replace_route(&fresh).unwrap();
    assert!(dump(proto80).contains(&"10.33.0.1/32".to_string()));

    // Delete: protocol must match; absent is Ok(false).
    assert!(!s.delete_route(&link).unwrap(), "proto 3 version is gone");
    assert!(s.delete_route(&retagged).unwrap());
    assert!(!s.delete_route(&retagged).unwrap());
    assert!(s.delete_route(&bh6).unwrap());
    assert!(s.delete_route(&bh4).unwrap());
    assert!(!s.delete_route(&bh4).unwrap());
    assert_eq!(
        dump(proto80),
        vec![
            "10.31.0.0/24",
            "10.32.0.7/32",
            "10.33.0.1/32",
            "10.41.0.0/16"
        ]
    );
}

#[test]
fn large_dumps_span_many_datagrams() {
    if !require_root() {
        return;
    }
    let ns = TestNetns::new("cnl-big").unwrap();
    let s = RouteSocket::open_in(ns.ns()).unwrap();
    // ~3000 routes are well over 100 KiB of dump: several NLM_F_MULTI datagrams.
    let mut n = 0;
    for a in 0..12u8 {
        for b in 0..=255u8 {
            s.add_route(&Route::blackhole(net(&format!("10.{a}.{b}.0/24")), 80))
                .unwrap();
            n += 1;
        }
    }
    let got = s
        .routes(&RouteFilter {
            v4: true,
            protocol: Some(80),
            ..RouteFilter::default()
        })
        .unwrap();
    assert_eq!(got.len(), n);
    // The socket keeps working after a large dump (no stale replies confuse the next request).
    assert!(
        s.delete_route(&Route::blackhole(net("10.0.0.0/24"), 80))
            .unwrap()
    );
    assert_eq!(s.links().unwrap().len(), 1);
}

#[test]
fn neighbours_are_permanent_and_replaced() {
    if !require_root() {
        return;
    }
    let ns = TestNetns::new("cnl-neigh").unwrap();
    let (s, ia, _) = local_pair(&ns, "vn0", "vn1");
    s.set_neighbour(ia, ip("10.50.0.9"), PEER_MAC).unwrap();
    s.set_neighbour(ia, ip("fd00:50::9"), PEER_MAC).unwrap();
    let mac2 = [0x02, 0, 0, 0, 0, 0x99];
    s.set_neighbour(ia, ip("10.50.0.9"), mac2).unwrap();
    let entries: Vec<_> = s
        .neighbours(Some(ia))
        .unwrap()
        .into_iter()
        .filter(|n| n.ip == ip("10.50.0.9") || n.ip == ip("fd00:50::9"))
        .collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let v4 = entries.iter().find(|n| n.ip.is_ipv4()).unwrap();
    assert_eq!((v4.mac, v4.permanent), (Some(mac2), true));
    let v6 = entries.iter().find(|n| n.ip.is_ipv6()).unwrap();
    assert_eq!((v6.mac, v6.permanent), (Some(PEER_MAC), true));
    assert!(s.delete_neighbour(ia, ip("10.50.0.9")).unwrap());
    assert!(!s.delete_neighbour(ia, ip("10.50.0.9")).unwrap());
}

#[test]
fn sysctls_are_per_namespace() {
    if !require_root() {
        return;
    }
    let a = TestNetns::new("cnl-sya").unwrap();
    let b = TestNetns::new("cnl-syb").unwrap();
    let (_s, _, _) = local_pair(&a, "vs0", "vs1");
    a.ns()
        .run(|| sysctl::write("net/ipv4/ip_forward", "1"))
        .unwrap()
        .unwrap();
    b.ns()
        .run(|| sysctl::write("net/ipv4/ip_forward", "0"))
        .unwrap()
        .unwrap();
    a.ns()
        .run(|| sysctl::write("net/ipv4/conf/vs0/proxy_arp", "1"))
        .unwrap()
        .unwrap();
    let read_in =
        |ns: &TestNetns, key: &'static str| ns.ns().run(move || sysctl::read(key)).unwrap();
    assert_eq!(read_in(&a, "net/ipv4/ip_forward").unwrap(), "1");
    assert_eq!(read_in(&b, "net/ipv4/ip_forward").unwrap(), "0");
    assert_eq!(read_in(&a, "net/ipv4/conf/vs0/proxy_arp").unwrap(), "1");
    assert_eq!(read_in(&a, "net/ipv4/conf/vs1/proxy_arp").unwrap(), "0");
    // The interface only exists in `a`.
    let err = read_in(&b, "net/ipv4/conf/vs0/proxy_arp").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Flip them to show neither write leaks into the other namespace.
    b.ns()
        .run(|| sysctl::write("net/ipv4/ip_forward", "1"))
        .unwrap()
        .unwrap();
    a.ns()
        .run(|| sysctl::write("net/ipv4/ip_forward", "0"))
        .unwrap()
        .unwrap();
    assert_eq!(read_in(&a, "net/ipv4/ip_forward").unwrap(), "0");
    assert_eq!(read_in(&b, "net/ipv4/ip_forward").unwrap(), "1");
}

#[test]
fn one_socket_is_shared_by_threads() {
    if !require_root() {
        return;
    }
    let ns = TestNetns::new("cnl-share").unwrap();
    let s = RouteSocket::open_in(ns.ns()).unwrap();
    // Requests from several threads interleave on one socket; each must get its own replies.
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..100u8 {
                    s.add_route(&Route::blackhole(net(&format!("10.{t}.{i}.0/24")), 80))
                        .unwrap();
                    let err = s
                        .add_route(&Route::blackhole(net(&format!("10.{t}.{i}.0/24")), 80))
                        .unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::Exists);
                    if i % 25 == 0 {
                        assert!(!s.routes(&RouteFilter::default()).unwrap().is_empty());
                    }
                }
            });
        }
    });
    let all = s
        .routes(&RouteFilter {
            protocol: Some(80),
            ..RouteFilter::default()
        })
        .unwrap();
    assert_eq!(all.len(), 400);
}

/// Batched route changes: many requests in flight, each answered in order, a bad one failing
/// alone, deletes of missing routes reported as `false`.
#[test]
fn batched_route_changes_answer_each_request() {
    if !require_root() {
        return;
    }
    use calico_netlink::RouteChange;
    let ns = TestNetns::new("cnl-batch").unwrap();
    let (s, ia, _) = local_pair(&ns, "vb0", "vb1");
    s.add_address(ia, net("10.20.0.1/24")).unwrap();
    let gw = ip("10.20.0.2");
    // 2000 routes: more than one window of requests in flight.
    let routes: Vec<Route> = (0..2000u32)
        .map(|i| {
            let dst = net(&format!("10.{}.{}.0/24", 100 + i / 256, i % 256));
            Route::via(dst, gw, ia, 186)
        })
        .collect();
    let mut changes: Vec<RouteChange> = routes.iter().cloned().map(RouteChange::Replace).collect();
    // An unreachable gateway fails on its own, in its place.
    changes.insert(
        700,
        RouteChange::Replace(Route::via(net("10.99.0.0/24"), ip("192.0.2.1"), ia, 186)),
    );
    let results = s.apply_routes(&changes);
    assert_eq!(results.len(), 2001);
    assert!(results[700].is_err(), "{:?}", results[700]);
    assert!(
        results[700]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("10.99.0.0/24"),
        "{:?}",
        results[700]
    );
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(i, r)| i == 700 || matches!(r, Ok(true)))
    );
    let proto = RouteFilter {
        protocol: Some(186),
        ..RouteFilter::default()
    };
    assert_eq!(s.routes(&proto).unwrap().len(), 2000);
    // Delete half, plus one that does not exist.
    let mut deletes: Vec<RouteChange> = routes[..1000]
        .iter()
        .cloned()
        .map(RouteChange::Delete)
        .collect();
    deletes.push(RouteChange::Delete(Route::via(
        net("10.98.0.0/24"),
        gw,
        ia,
        186,
    )));
    let results = s.apply_routes(&deletes);
    assert!(results[..1000].iter().all(|r| matches!(r, Ok(true))));
    assert!(matches!(results[1000], Ok(false)), "{:?}", results[1000]);
    assert_eq!(s.routes(&proto).unwrap().len(), 1000);
}
