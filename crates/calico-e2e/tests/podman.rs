//! Issue 4's proof with a real runtime nobody here wrote: podman 4.3 (CNI backend, runc)
//! starts two busybox containers on a `calico` network inside a node namespace; they get
//! addresses from our IPAM through the node's calico-node agent, reach each other, and after
//! removal their addresses, routes and WorkloadEndpoints are gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use calico_e2e::node::Node;
use calico_e2e::podman::{Podman, ROOTFS_MARKER};
use calico_e2e::store::{self, HANDLE_PREFIX, WEP_PREFIX};
use calico_netlink::testing::require_root;

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn podman_containers_get_calico_networking() {
    if !require_root() {
        return;
    }
    let mut node = Node::new("node1", "10.200.0.1/24", None).unwrap();
    node.start_agent().unwrap();
    node.write_conflist("calico-e2e").unwrap();
    let podman = Podman::new(
        &node.netns_path(),
        &node.plugin_dir(),
        &node.conf_dir(),
        "calico-e2e",
    )
    .unwrap();

    let started = podman.start("a").and_then(|_| podman.start("b"));
    if let Err(e) = started {
        panic!(
            "podman run failed: {e}\nCNI log:\n{}\nagent log:\n{}",
            std::fs::read_to_string(node.cni_log_path()).unwrap_or_default(),
            node.agent_log_tail()
        );
    }
    // The containers really run on our rootfs (not silently on the host's).
    assert_eq!(
        podman.exec("a", &["cat", "/marker"]).unwrap(),
        ROOTFS_MARKER
    );

    let ip_a = podman.address("a").unwrap();
    let ip_b = podman.address("b").unwrap();
    for ip in [&ip_a, &ip_b] {
        assert!(
            ip.starts_with("10.244."),
            "address {ip} not from the default pool"
        );
    }
    assert_ne!(ip_a, ip_b);

    // Inside the container: Calico's plumbing.
    let addr = podman.exec("a", &["ip", "addr", "show", "eth0"]).unwrap();
    assert!(addr.contains(&format!("inet {ip_a}/32")), "{addr}");
    assert!(addr.contains("mtu 1440"), "{addr}");
    let routes = podman.exec("a", &["ip", "route"]).unwrap();
    assert!(
        routes.contains("default via 169.254.1.1 dev eth0"),
        "{routes}"
    );
    assert!(
        routes.contains("169.254.1.1 dev eth0 scope link"),
        "{routes}"
    );

    // On the node: a WorkloadEndpoint per container, and the agent's routes to them.
    let weps = store::list(&node.store_path, WEP_PREFIX).unwrap();
    assert_eq!(weps.len(), 2, "{weps:?}");
    let mut ifaces = Vec::new();
    for (key, wep) in &weps {
        let spec = &wep["spec"];
        assert_eq!(spec["node"], "node1", "{key}");
        let nets: Vec<&str> = spec["ipNetworks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            nets == [format!("{ip_a}/32")] || nets == [format!("{ip_b}/32")],
            "{key}: {nets:?}"
        );
        let iface = spec["interfaceName"].as_str().unwrap().to_string();
        assert!(iface.starts_with("cali") && iface.len() == 15, "{iface}");
        ifaces.push(iface);
    }
    wait_until("the agent's routes (proto 80) to both containers", || {
        let r = node.ip(&["route", "show"]).unwrap();
        ifaces
            .iter()
            .all(|i| r.contains(&format!("dev {i} proto 80 scope link")))
    });
    let link = node.ip(&["link", "show", &ifaces[0]]).unwrap();
    assert!(link.contains("ee:ee:ee:ee:ee:ee"), "{link}");
    let blocks = node.ip(&["route", "show", "type", "blackhole"]).unwrap();
    assert!(
        blocks.contains("proto 80"),
        "no blackhole for the affine block: {blocks}"
    );

    // The two containers reach each other through the node.
    let ping = podman.exec("a", &["ping", "-c", "3", "-W", "2", &ip_b]);
    if ping.is_err() {
        let sysctl = |k: &str| {
            node.ns
                .ns()
                .run(|| calico_netlink::sysctl::read(k))
                .map(|r| r.unwrap_or_else(|e| e.to_string()))
                .unwrap_or_default()
        };
        panic!(
            "a cannot reach b: {ping:?}\nnode routes:\n{}\nnode neigh:\n{}\nip_forward={} proxy_arp({})={}\na routes:\n{}\na neigh:\n{}\nnode links:\n{}",
            node.ip(&["route"]).unwrap(),
            node.ip(&["neigh"]).unwrap(),
            sysctl("net/ipv4/ip_forward"),
            ifaces[0],
            sysctl(&format!("net/ipv4/conf/{}/proxy_arp", ifaces[0])),
            podman.exec("a", &["ip", "route"]).unwrap_or_default(),
            podman.exec("a", &["ip", "neigh"]).unwrap_or_default(),
            node.ip(&["-s", "link"]).unwrap(),
        );
    }
    podman
        .exec("b", &["ping", "-c", "1", "-W", "2", &ip_a])
        .unwrap();

    // Removal: podman sends DEL; everything of both containers is gone.
    podman.remove(&["a", "b"]).unwrap();
    assert!(
        store::list(&node.store_path, WEP_PREFIX)
            .unwrap()
            .is_empty()
    );
    assert!(
        store::list(&node.store_path, HANDLE_PREFIX)
            .unwrap()
            .is_empty()
    );
    let links = node.ip(&["link", "show"]).unwrap();
    for i in &ifaces {
        assert!(!links.contains(i.as_str()), "{i} left behind:\n{links}");
    }
    wait_until("routes to the containers to go", || {
        let r = node.ip(&["route", "show"]).unwrap();
        !r.contains(&format!("{ip_a} ")) && !r.contains(&format!("{ip_b} "))
    });
}
