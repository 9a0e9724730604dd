//! Autodetection against a real kernel, inside a throw-away network namespace (root only).

#![allow(clippy::unwrap_used)]

use calico_netlink::testing::{TestNetns, require_root};
use calico_node::autodetect::{self, AutodetectMethod, HostNetwork};
use calico_node::host::NetlinkHost;
use ipnet::IpNet;

fn setup() -> Option<TestNetns> {
    if !require_root() {
        return None;
    }
    let ns = TestNetns::new("cnode-host").unwrap();
    for cmd in [
        "ip link add eth0 type veth peer name veth-e0",
        "ip addr add 10.99.0.5/24 dev eth0",
        "ip link set eth0 up",
        "ip link set veth-e0 up",
        "ip link add docker0 type veth peer name veth-d0",
        "ip addr add 172.17.0.1/16 dev docker0",
        "ip link set docker0 up",
        "ip link set veth-d0 up",
        "ip link add ens9 type veth peer name veth-e9",
        "ip addr add 192.168.50.9/24 dev ens9",
        "ip link set ens9 up",
        "ip link set veth-e9 up",
    ] {
        let args: Vec<&str> = cmd.split(' ').collect();
        ns.exec(&args).unwrap();
    }
    Some(ns)
}

#[test]
fn detects_inside_the_namespace() {
    let Some(ns) = setup() else { return };
    let host = NetlinkHost::open(Some(&ns.path())).unwrap();
    let ifaces = host.interfaces().unwrap();
    let mut names: Vec<&str> = ifaces.iter().map(|i| i.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "docker0", "ens9", "eth0", "lo", "veth-d0", "veth-e0", "veth-e9"
        ]
    );
    assert!(ifaces.windows(2).all(|w| w[0].index < w[1].index));
    let eth0 = ifaces.iter().find(|i| i.name == "eth0").unwrap();
    assert!(
        eth0.addrs
            .contains(&"10.99.0.5/24".parse::<IpNet>().unwrap())
    );

    let cases = [
        // Reverse index order: ens9 (newest) first; docker0 and the veth peers are excluded by
        // default.
        (AutodetectMethod::FirstFound, "ens9", "192.168.50.9/24"),
        (
            AutodetectMethod::Interface(vec!["eth.*".into()]),
            "eth0",
            "10.99.0.5/24",
        ),
        (
            AutodetectMethod::SkipInterface(vec!["ens.*".into()]),
            "eth0",
            "10.99.0.5/24",
        ),
        (
            AutodetectMethod::Cidr(vec!["172.16.0.0/12".parse().unwrap()]),
            "docker0",
            "172.17.0.1/16",
        ),
        // The kernel of the namespace picks the source address (no packet is sent).
        (
            AutodetectMethod::CanReach("10.99.0.77".into()),
            "eth0",
            "10.99.0.5/24",
        ),
        (
            AutodetectMethod::CanReach("192.168.50.1".into()),
            "ens9",
            "192.168.50.9/24",
        ),
    ];
    for (method, iface, cidr) in cases {
        let d = autodetect::autodetect(&host, &method, 4).unwrap();
        assert_eq!(d.interface, iface, "{method:?}");
        assert_eq!(d.cidr, cidr.parse::<IpNet>().unwrap(), "{method:?}");
    }
    // No route to it inside the namespace.
    let err = autodetect::autodetect(&host, &AutodetectMethod::CanReach("8.8.8.8".into()), 4)
        .unwrap_err();
    assert!(err.to_string().contains("8.8.8.8"), "{err}");
    // No IPv6 global address there.
    assert!(autodetect::autodetect(&host, &AutodetectMethod::FirstFound, 6).is_err());
}
