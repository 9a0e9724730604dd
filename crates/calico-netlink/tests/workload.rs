//! Privileged tests of Calico's workload plumbing. A `TestNetns` plays the host, others play pods; the
//! root network namespace is never touched.

#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use calico_netlink::testing::{TestNetns, require_root};
use calico_netlink::workload::{
    WorkloadInterfaces, WorkloadSpec, check_workload, setup_workload, teardown_workload,
};
use calico_netlink::{
    ErrorKind, HOST_SIDE_MAC, IpNet, RTPROT_BOOT, Route, RouteFilter, RouteKind, RouteScope,
    RouteSocket, VethSpec, sysctl,
};

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const POD_MAC: [u8; 6] = [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x05];

fn spec<'a>(
    host: &'a TestNetns,
    cont: &'a TestNetns,
    host_if: &'a str,
    addresses: &'a [IpNet],
) -> WorkloadSpec<'a> {
    WorkloadSpec {
        host_ns: host.ns(),
        container_ns: cont.ns(),
        host_if,
        container_if: "eth0",
        addresses,
        mtu: 1400,
        container_mac: None,
        host_route_protocol: RTPROT_BOOT,
    }
}

fn read_sysctl(ns: &TestNetns, key: &str) -> String {
    let key = key.to_string();
    ns.ns().run(move || sysctl::read(&key)).unwrap().unwrap()
}

fn link_names(ns: &TestNetns) -> Vec<String> {
    let s = RouteSocket::open_in(ns.ns()).unwrap();
    s.links().unwrap().into_iter().map(|l| l.name).collect()
}

/// Routes in the main table other than the kernel's own (prefix routes of addresses, local, multicast).
fn non_kernel_routes(ns: &TestNetns) -> Vec<Route> {
    let s = RouteSocket::open_in(ns.ns()).unwrap();
    s.routes(&RouteFilter::main_table())
        .unwrap()
        .into_iter()
        .filter(|r| r.protocol != 2 && !(r.dst.addr().is_ipv6() && r.dst.prefix_len() == 64))
        .filter(|r| !matches!(r.dst.addr(), IpAddr::V6(v6) if v6.segments()[0] == 0xff00))
        .collect()
}

/// A host namespace with an "uplink" carrying the default route: proxy ARP only answers for
/// 169.254.1.1 when the host can route that address through another interface (on a real node, the
/// default route does that), and forwarding enabled as on a Calico node.
fn host_with_uplink() -> TestNetns {
    let host = TestNetns::new("cnlw-host").unwrap();
    let s = RouteSocket::open_in(host.ns()).unwrap();
    s.create_veth(&VethSpec {
        name: "uplink0",
        mac: None,
        mtu: None,
        peer_name: "uplink1",
        peer_mac: None,
        peer_netns: None,
    })
    .unwrap();
    for n in ["uplink0", "uplink1"] {
        s.set_link_up(s.link_by_name(n).unwrap().unwrap().index)
            .unwrap();
    }
    let up = s.link_by_name("uplink0").unwrap().unwrap().index;
    s.add_route(&Route::link_scope(net("0.0.0.0/0"), up, RTPROT_BOOT))
        .unwrap();
    host.ns()
        .run(|| {
            sysctl::write("net/ipv4/ip_forward", "1")?;
            sysctl::write("net/ipv6/conf/all/forwarding", "1")
        })
        .unwrap()
        .unwrap();
    host
}

#[test]
fn setup_plumbs_everything_calico_does() {
    if !require_root() {
        return;
    }
    let host = TestNetns::new("cnlw-host").unwrap();
    let cont = TestNetns::new("cnlw-pod").unwrap();
    // IPAM hands out block-prefixed addresses; they become /32 and /128.
    let addrs = [net("10.65.0.5/26"), net("fd00:65::5/122")];
    let spec = WorkloadSpec {
        container_mac: Some(POD_MAC),
        ..spec(&host, &cont, "cali0123456789a", &addrs)
    };
    let ifaces = setup_workload(&spec).unwrap();
    let hs = RouteSocket::open_in(host.ns()).unwrap();
    let cs = RouteSocket::open_in(cont.ns()).unwrap();

    let h = hs.link_by_name("cali0123456789a").unwrap().unwrap();
    let c = cs.link_by_name("eth0").unwrap().unwrap();
    assert_eq!(
        ifaces,
        WorkloadInterfaces {
            host_index: h.index,
            host_mac: HOST_SIDE_MAC,
            container_index: c.index,
            container_mac: POD_MAC,
        }
    );
    assert_eq!((h.mac, c.mac), (Some(HOST_SIDE_MAC), Some(POD_MAC)));
    assert!(h.admin_up && c.admin_up && h.lower_up && c.lower_up);
    assert_eq!((h.mtu, c.mtu), (1400, 1400));
    assert_eq!((h.peer_index, c.peer_index), (Some(c.index), Some(h.index)));

    let caddrs: Vec<IpNet> = cs
        .addresses(Some(c.index))
        .unwrap()
        .into_iter()
        .map(|a| a.addr)
        .collect();
    assert!(caddrs.contains(&net("10.65.0.5/32")), "{caddrs:?}");
    assert!(caddrs.contains(&net("fd00:65::5/128")), "{caddrs:?}");

    let croutes = cs
        .routes(&RouteFilter {
            oif: Some(c.index),
            protocol: Some(RTPROT_BOOT),
            ..RouteFilter::main_table()
        })
        .unwrap();
    let gw = croutes
        .iter()
        .find(|r| r.dst == net("169.254.1.1/32"))
        .unwrap();
    assert_eq!((gw.scope, gw.gateway), (RouteScope::Link, None));
    let d4 = croutes.iter().find(|r| r.dst == net("0.0.0.0/0")).unwrap();
    assert_eq!(d4.gateway, Some(ip("169.254.1.1")));
    let d6 = croutes.iter().find(|r| r.dst == net("::/0")).unwrap();
    assert_eq!(d6.gateway, Some(ip("fe80::ecee:eeff:feee:eeee")));

    let hroutes = hs
        .routes(&RouteFilter {
            oif: Some(h.index),
            protocol: Some(RTPROT_BOOT),
            ..RouteFilter::main_table()
        })
        .unwrap();
    let mut hdst: Vec<String> = hroutes.iter().map(|r| r.dst.to_string()).collect();
    hdst.sort();
    assert_eq!(hdst, vec!["10.65.0.5/32", "fd00:65::5/128"]);
    let h4 = hroutes.iter().find(|r| r.dst.addr().is_ipv4()).unwrap();
    assert_eq!((h4.scope, h4.kind), (RouteScope::Link, RouteKind::Unicast));

    for (key, want) in [
        ("net/ipv4/conf/cali0123456789a/route_localnet", "1"),
        ("net/ipv4/conf/cali0123456789a/proxy_arp", "1"),
        ("net/ipv4/conf/cali0123456789a/forwarding", "1"),
        ("net/ipv4/neigh/cali0123456789a/proxy_delay", "0"),
        ("net/ipv6/conf/cali0123456789a/proxy_ndp", "1"),
        ("net/ipv6/conf/cali0123456789a/forwarding", "1"),
        ("net/ipv6/conf/cali0123456789a/accept_dad", "0"),
        ("net/ipv6/conf/cali0123456789a/accept_ra", "0"),
    ] {
        assert_eq!(read_sysctl(&host, key), want, "{key}");
    }
    assert_eq!(read_sysctl(&cont, "net/ipv6/conf/eth0/accept_dad"), "0");

    assert_eq!(check_workload(&spec).unwrap(), ifaces);

    assert!(teardown_workload(host.ns(), Some(cont.ns()), "cali0123456789a", "eth0").unwrap());
    assert_eq!(link_names(&host), vec!["lo"]);
    assert_eq!(link_names(&cont), vec!["lo"]);
    assert!(
        non_kernel_routes(&host).is_empty(),
        "{:?}",
        non_kernel_routes(&host)
    );
}

/// Sends a UDP datagram from one pod to the other and back: real traffic through the host namespace
/// (proxy ARP / host link-local gateway, host routes, forwarding).
fn udp_round_trip(from: &TestNetns, from_ip: IpAddr, to: &TestNetns, to_ip: IpAddr) {
    let server = to
        .ns()
        .run(|| UdpSocket::bind(SocketAddr::new(to_ip, 0)))
        .unwrap()
        .unwrap();
    let client = from
        .ns()
        .run(|| UdpSocket::bind(SocketAddr::new(from_ip, 0)))
        .unwrap()
        .unwrap();
    for s in [&server, &client] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let dst = server.local_addr().unwrap();
    client.send_to(b"ping", dst).unwrap();
    let mut buf = [0u8; 16];
    let (n, src) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(src.ip(), from_ip, "the pod's own address arrives unNATed");
    server.send_to(b"pong", src).unwrap();
    let (n, back) = client.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], back), (&b"pong"[..], dst));
}

#[test]
fn two_workloads_talk_through_the_host() {
    if !require_root() {
        return;
    }
    let host = host_with_uplink();
    let pod1 = TestNetns::new("cnlw-pod1").unwrap();
    let pod2 = TestNetns::new("cnlw-pod2").unwrap();
    let a1 = [net("10.66.0.1/32"), net("fd00:66::1/128")];
    let a2 = [net("10.66.0.2/32"), net("fd00:66::2/128")];
    setup_workload(&spec(&host, &pod1, "calipod1", &a1)).unwrap();
    setup_workload(&spec(&host, &pod2, "calipod2", &a2)).unwrap();

    udp_round_trip(&pod1, ip("10.66.0.1"), &pod2, ip("10.66.0.2"));
    udp_round_trip(&pod2, ip("fd00:66::2"), &pod1, ip("fd00:66::1"));

    // The same with ping, when iputils is installed.
    let have_ping = Command::new("ping")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_ping {
        pod1.exec(&["ping", "-c1", "-W2", "10.66.0.2"]).unwrap();
        pod2.exec(&["ping", "-6", "-c1", "-W2", "fd00:66::1"])
            .unwrap();
    } else {
        eprintln!("ping not installed: checked traffic with UDP only");
    }

    // Without the host route to pod2, pod1 can no longer reach it (the route is what carries traffic).
    let hs = RouteSocket::open_in(host.ns()).unwrap();
    let i2 = hs.link_by_name("calipod2").unwrap().unwrap().index;
    assert!(
        hs.delete_route(&Route::link_scope(net("10.66.0.2/32"), i2, RTPROT_BOOT))
            .unwrap()
    );
    let server = pod2
        .ns()
        .run(|| UdpSocket::bind("10.66.0.2:0"))
        .unwrap()
        .unwrap();
    server
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let client = pod1
        .ns()
        .run(|| UdpSocket::bind("10.66.0.1:0"))
        .unwrap()
        .unwrap();
    client
        .send_to(b"lost", server.local_addr().unwrap())
        .unwrap();
    let mut buf = [0u8; 8];
    assert!(
        server.recv_from(&mut buf).is_err(),
        "datagram arrived without a host route"
    );
}

#[test]
fn failed_setup_leaves_nothing_behind() {
    if !require_root() {
        return;
    }
    let host = host_with_uplink();
    let cont = TestNetns::new("cnlw-fail").unwrap();
    let hs = RouteSocket::open_in(host.ns()).unwrap();
    let host_links_before = link_names(&host);
    let host_routes_before = non_kernel_routes(&host);

    // 1. host_if taken.
    hs.create_veth(&VethSpec {
        name: "calitaken",
        mac: None,
        mtu: None,
        peer_name: "other",
        peer_mac: None,
        peer_netns: None,
    })
    .unwrap();
    let addrs = [net("10.67.0.1/32")];
    let err = setup_workload(&spec(&host, &cont, "calitaken", &addrs)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exists);
    assert!(
        err.to_string().starts_with(
            "setting up workload calitaken (container side eth0): creating the veth pair: host interface calitaken already exists"
        ),
        "{err}"
    );
    assert_eq!(link_names(&cont), vec!["lo"]);
    assert!(hs.delete_link("calitaken").unwrap());

    // 2. container_if taken.
    let cs = RouteSocket::open_in(cont.ns()).unwrap();
    cs.create_veth(&VethSpec {
        name: "eth0",
        mac: None,
        mtu: None,
        peer_name: "eth0peer",
        peer_mac: None,
        peer_netns: None,
    })
    .unwrap();
    let err = setup_workload(&spec(&host, &cont, "calix", &addrs)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exists);
    assert!(
        err.to_string()
            .contains("container interface eth0 already exists"),
        "{err}"
    );
    assert_eq!(link_names(&host), host_links_before);
    assert!(cs.delete_link("eth0").unwrap());

    // 3. A duplicate address fails after the veth exists: everything is undone.
    let dup = [net("10.67.0.1/32"), net("10.67.0.1/32")];
    let err = setup_workload(&spec(&host, &cont, "calidup", &dup)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exists);
    assert!(
        err.to_string().starts_with(
            "setting up workload calidup (container side eth0): adding the container's addresses: adding address 10.67.0.1/32 to eth0"
        ),
        "{err}"
    );
    assert_eq!(link_names(&host), host_links_before);
    assert_eq!(link_names(&cont), vec!["lo"]);
    assert_eq!(non_kernel_routes(&host), host_routes_before);

    // 4. A host route owned by another interface fails the last step, names that interface, and the
    //    other interface's route survives.
    let up = hs.link_by_name("uplink0").unwrap().unwrap().index;
    let foreign = Route::link_scope(net("10.67.0.9/32"), up, 80);
    hs.add_route(&foreign).unwrap();
    let clash = [net("10.67.0.9/32")];
    let err = setup_workload(&spec(&host, &cont, "caliclash", &clash)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Exists);
    let text = err.to_string();
    assert!(
        text.starts_with("setting up workload caliclash (container side eth0): adding the host routes: adding route 10.67.0.9/32 dev caliclash scope link"),
        "{text}"
    );
    assert!(
        text.contains("through an interface other than caliclash: route 10.67.0.9/32 dev uplink0"),
        "{text}"
    );
    assert_eq!(link_names(&host), host_links_before);
    assert_eq!(link_names(&cont), vec!["lo"]);
    let mut after = non_kernel_routes(&host);
    after.retain(|r| *r != foreign);
    assert_eq!(after, host_routes_before);

    // 5. The same namespace on both sides is refused up front.
    let err = setup_workload(&spec(&host, &host, "calisame", &addrs)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");

    // And a clean setup still works afterwards in the same namespaces.
    setup_workload(&spec(&host, &cont, "caliok", &addrs)).unwrap();
}

#[test]
fn teardown_is_idempotent() {
    if !require_root() {
        return;
    }
    let host = TestNetns::new("cnlw-host").unwrap();
    let cont = TestNetns::new("cnlw-td").unwrap();
    let addrs = [net("10.68.0.1/32")];
    let s = spec(&host, &cont, "calitd", &addrs);

    // With the container namespace: the container side goes, taking the host side along.
    setup_workload(&s).unwrap();
    assert!(teardown_workload(host.ns(), Some(cont.ns()), "calitd", "eth0").unwrap());
    assert!(!teardown_workload(host.ns(), Some(cont.ns()), "calitd", "eth0").unwrap());
    assert_eq!(
        (link_names(&host), link_names(&cont)),
        (vec!["lo".into()], vec!["lo".into()])
    );

    // Without it (CNI DEL with no netns): the host side goes, taking the container side along.
    setup_workload(&s).unwrap();
    assert!(teardown_workload(host.ns(), None, "calitd", "eth0").unwrap());
    assert!(!teardown_workload(host.ns(), None, "calitd", "eth0").unwrap());
    assert_eq!(link_names(&cont), vec!["lo"]);
    assert!(non_kernel_routes(&host).is_empty());

    // The pod's namespace already destroyed: its veth went with it; teardown finds nothing.
    let gone = TestNetns::new("cnlw-gone").unwrap();
    setup_workload(&spec(&host, &gone, "caligone", &addrs)).unwrap();
    drop(gone);
    // The kernel destroys a namespace asynchronously (cleanup_net workqueue): wait for the pair to go.
    let hs = RouteSocket::open_in(host.ns()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while hs.link_by_name("caligone").unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "veth outlived its namespace"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!teardown_workload(host.ns(), None, "caligone", "eth0").unwrap());
    assert_eq!(link_names(&host), vec!["lo"]);
}

#[test]
fn check_detects_each_kind_of_drift() {
    if !require_root() {
        return;
    }
    let host = TestNetns::new("cnlw-host").unwrap();
    let cont = TestNetns::new("cnlw-chk").unwrap();
    let addrs = [net("10.69.0.1/32"), net("fd00:69::1/128")];
    let s = spec(&host, &cont, "calichk", &addrs);
    let ifaces = setup_workload(&s).unwrap();
    assert_eq!(check_workload(&s).unwrap(), ifaces);
    let hs = RouteSocket::open_in(host.ns()).unwrap();
    let cs = RouteSocket::open_in(cont.ns()).unwrap();
    let (hi, ci) = (ifaces.host_index, ifaces.container_index);
    let expect = |needles: &[&str]| {
        let err = check_workload(&s).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("checking workload calichk (container side eth0): "),
            "{text}"
        );
        for n in needles {
            assert!(text.contains(n), "{n:?} not in {text}");
        }
        err
    };

    // Host route deleted.
    let hr = Route::link_scope(net("10.69.0.1/32"), hi, RTPROT_BOOT);
    assert!(hs.delete_route(&hr).unwrap());
    expect(&["host route 10.69.0.1/32 dev calichk scope link is missing"]);
    hs.add_route(&hr).unwrap();
    check_workload(&s).unwrap();

    // Container address removed.
    assert!(cs.delete_address(ci, net("fd00:69::1/128")).unwrap());
    expect(&["container address fd00:69::1/128 is missing from eth0"]);
    cs.add_address(ci, net("fd00:69::1/128")).unwrap();
    check_workload(&s).unwrap();

    // Container default route removed.
    let d4 = Route::via(net("0.0.0.0/0"), ip("169.254.1.1"), ci, RTPROT_BOOT);
    assert!(cs.delete_route(&d4).unwrap());
    expect(&["container default route via 169.254.1.1 dev eth0 is missing"]);
    cs.add_route(&d4).unwrap();
    check_workload(&s).unwrap();

    // MTU changed, host MAC changed.
    cs.set_link_mtu(ci, 1300).unwrap();
    hs.set_link_mac(hi, [0x02, 1, 2, 3, 4, 5]).unwrap();
    expect(&[
        "container interface eth0 has MTU 1300, expected 1400",
        "host interface calichk has MAC 02:01:02:03:04:05, expected ee:ee:ee:ee:ee:ee",
    ]);
    cs.set_link_mtu(ci, 1400).unwrap();
    hs.set_link_mac(hi, HOST_SIDE_MAC).unwrap();
    check_workload(&s).unwrap();

    // With mtu 0 (kernel default) only the two ends' agreement is checked.
    let default_mtu = WorkloadSpec { mtu: 0, ..s };
    check_workload(&default_mtu).unwrap();
    hs.set_link_mtu(hi, 1350).unwrap();
    let err = check_workload(&default_mtu).unwrap_err();
    assert!(
        err.to_string().contains(
            "host interface calichk has MTU 1350 but container interface eth0 has MTU 1400"
        ),
        "{err}"
    );
    hs.set_link_mtu(hi, 1400).unwrap();

    // Host sysctl reverted.
    host.ns()
        .run(|| sysctl::write("net/ipv4/conf/calichk/proxy_arp", "0"))
        .unwrap()
        .unwrap();
    expect(&["host sysctl net/ipv4/conf/calichk/proxy_arp is 0, expected 1"]);
    host.ns()
        .run(|| sysctl::write("net/ipv4/conf/calichk/proxy_arp", "1"))
        .unwrap()
        .unwrap();

    // Link down: every resulting mismatch is listed, not just the first.
    cs.set_link_down(ci).unwrap();
    assert!(cs.delete_address(ci, net("10.69.0.1/32")).unwrap());
    let err = expect(&[
        "container interface eth0 is down",
        "container address 10.69.0.1/32 is missing from eth0",
    ]);
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(err.to_string().split("; ").count() >= 2);

    // Host side gone entirely.
    assert!(hs.delete_link("calichk").unwrap());
    let err = expect(&[
        "host interface calichk does not exist",
        "container interface eth0 does not exist",
    ]);
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn ipv6_only_workload_with_kernel_default_mtu() {
    if !require_root() {
        return;
    }
    let host = host_with_uplink();
    let pod1 = TestNetns::new("cnlw-v6a").unwrap();
    let pod2 = TestNetns::new("cnlw-v6b").unwrap();
    let a1 = [net("fd00:71::1/128")];
    let a2 = [net("fd00:71::2/128")];
    let s1 = WorkloadSpec {
        mtu: 0,
        ..spec(&host, &pod1, "cali6a", &a1)
    };
    let s2 = WorkloadSpec {
        mtu: 0,
        ..spec(&host, &pod2, "cali6b", &a2)
    };
    let i1 = setup_workload(&s1).unwrap();
    setup_workload(&s2).unwrap();
    assert_eq!(check_workload(&s1).unwrap(), i1);

    let cs = RouteSocket::open_in(pod1.ns()).unwrap();
    let c = cs.link_by_index(i1.container_index).unwrap().unwrap();
    assert_eq!(c.mtu, 1500, "kernel default MTU");
    // No IPv4 plumbing at all for an IPv6-only pod.
    let v4 = cs
        .routes(&RouteFilter {
            v4: true,
            v6: false,
            oif: Some(c.index),
            ..RouteFilter::main_table()
        })
        .unwrap();
    assert!(v4.is_empty(), "{v4:?}");
    assert!(
        cs.addresses(Some(c.index))
            .unwrap()
            .iter()
            .all(|a| a.addr.addr().is_ipv6())
    );

    udp_round_trip(&pod1, ip("fd00:71::1"), &pod2, ip("fd00:71::2"));

    // Drift in the IPv6 default route is caught too.
    let gw = cs
        .routes(&RouteFilter {
            v4: false,
            v6: true,
            oif: Some(c.index),
            protocol: Some(RTPROT_BOOT),
            ..RouteFilter::main_table()
        })
        .unwrap()
        .into_iter()
        .find(|r| r.dst == net("::/0"))
        .unwrap();
    assert!(cs.delete_route(&gw).unwrap());
    let err = check_workload(&s1).unwrap_err();
    assert!(
        err.to_string().contains(
            "container IPv6 default route via the host side's link-local address dev eth0 is missing"
        ),
        "{err}"
    );
}
