//! Felix's route manager on a real kernel, inside throw-away network namespaces.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_datastore::{Datastore, EmbeddedDatastore};
use calico_felix::{Felix, FelixConfig};
use calico_netlink::testing::{TestNetns, require_root};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

fn ip(ns: &TestNetns, args: &str) -> String {
    let out = Command::new("ip")
        .args(["-n", ns.name()])
        .args(args.split_whitespace())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn wep(iface: &str, ip: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"projectcalico.org/v3","kind":"WorkloadEndpoint","metadata":{{"name":"n1-k8s-a-eth0","namespace":"default"}},"spec":{{"node":"n1","interfaceName":"{iface}","ipNetworks":["{ip}/32"],"mac":"02:11:22:33:44:55"}}}}"#
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_repairs_and_survives_restart() {
    if !require_root() {
        return;
    }
    let node = TestNetns::new("felix-node").unwrap();
    ip(&node, "link add calitest1 type veth peer name wl1");
    ip(&node, "link set calitest1 up");
    ip(&node, "link set wl1 up");
    // A foreign route that must survive everything below.
    ip(&node, "route add blackhole 172.31.0.0/16 proto static");

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Datastore> =
        Arc::new(EmbeddedDatastore::open(dir.path().join("c.db")).unwrap());
    store
        .put(
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/n1-k8s-a-eth0",
            wep("calitest1", "10.65.0.5"),
            None,
        )
        .await
        .unwrap();
    store
        .put(
            "/calico/ipam/v2/assignment/ipv4/block/10.65.0.0-26",
            br#"{"cidr":"10.65.0.0/26","affinity":"host:n1","allocations":[],"unallocated":[],"attributes":null,"deleted":false}"#.to_vec(),
            None,
        )
        .await
        .unwrap();

    let start = |store: Arc<dyn Datastore>| {
        let mut cfg = FelixConfig::new("n1");
        cfg.netns = Some(node.path().to_path_buf());
        cfg.route_refresh_interval = Duration::from_millis(400);
        let mut registry = Registry::default();
        let felix = Felix::new(cfg, store, &mut registry).unwrap();
        let shutdown = CancellationToken::new();
        (shutdown.clone(), tokio::spawn(felix.run(shutdown)))
    };
    let (stop, task) = start(Arc::clone(&store));
    let routes = || ip(&node, "route show");
    wait_until("routes", || {
        let r = routes();
        r.contains("10.65.0.5 dev calitest1 proto 80 scope link")
            && r.contains("blackhole 10.65.0.0/26 proto 80")
    })
    .await;
    assert_eq!(
        node.ns()
            .run(|| calico_netlink::sysctl::read("net/ipv4/conf/calitest1/proxy_arp"))
            .unwrap()
            .unwrap(),
        "1"
    );
    assert!(
        ip(&node, "neigh show dev calitest1")
            .contains("10.65.0.5 lladdr 02:11:22:33:44:55 PERMANENT")
    );

    // Drift: delete the workload route by hand; the periodic refresh restores it.
    ip(&node, "route del 10.65.0.5/32 dev calitest1");
    wait_until("repaired route", || {
        routes().contains("10.65.0.5 dev calitest1 proto 80 scope link")
    })
    .await;

    // Restart: stopping leaves every route in place, and a new agent changes nothing.
    stop.cancel();
    task.await.unwrap().unwrap();
    let before = routes();
    assert!(before.contains("10.65.0.5 dev calitest1"));
    let (stop, task) = start(Arc::clone(&store));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(routes(), before);

    // The endpoint goes away: its route goes; the foreign route stays.
    store
        .delete(
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/n1-k8s-a-eth0",
            None,
        )
        .await
        .unwrap();
    wait_until("route removal", || !routes().contains("10.65.0.5")).await;
    assert!(routes().contains("blackhole 172.31.0.0/16 proto static"));
    stop.cancel();
    task.await.unwrap().unwrap();
}

/// A second sync over a table the first one programmed changes nothing, for both families
/// (the kernel rewrites IPv6 routes' scope and metric; the conversion must absorb that).
#[test]
fn second_sync_is_a_no_op_for_ipv4_and_ipv6() {
    use calico_felix::manager::RouteManager;
    use calico_felix::model::{LocalEndpoint, LocalState};
    use calico_felix::netlink::NetlinkDataplane;
    if !require_root() {
        return;
    }
    let node = TestNetns::new("felix-v6").unwrap();
    ip(&node, "link add calitest6 type veth peer name wl6");
    ip(&node, "link set calitest6 up");
    let mut state = LocalState::default();
    state.endpoints.insert(
        "k".into(),
        LocalEndpoint {
            key: "k".into(),
            interface: "calitest6".into(),
            networks: vec![
                "10.66.0.9/32".parse().unwrap(),
                "fd66::9/128".parse().unwrap(),
            ],
            mac: None,
        },
    );
    state
        .blocks
        .insert("b4".into(), "10.66.0.0/26".parse().unwrap());
    state
        .blocks
        .insert("b6".into(), "fd66::/122".parse().unwrap());
    let dp = NetlinkDataplane::open(Some(node.path().as_path())).unwrap();
    let mut m = RouteManager::new(dp, calico_felix::FELIX_ROUTE_PROTOCOL);
    let first = m.sync(&state, true).unwrap();
    assert_eq!((first.applied, first.failures.len()), (4, 0), "{first:?}");
    let v6 = ip(&node, "-6 route show");
    assert!(v6.contains("fd66::9 dev calitest6 proto 80"), "{v6}");
    assert!(
        v6.contains("blackhole fd66::/122 dev lo proto 80")
            || v6.contains("blackhole fd66::/122 proto 80"),
        "{v6}"
    );
    let second = m.sync(&state, true).unwrap();
    assert_eq!(
        (second.applied, second.failures.len()),
        (0, 0),
        "{second:?}"
    );
    // A CNI-style IPv6 route (proto boot) is taken over in place.
    ip(
        &node,
        "-6 route replace fd66::9/128 dev calitest6 proto boot",
    );
    assert_eq!(m.sync(&state, false).unwrap().applied, 1);
    assert!(ip(&node, "-6 route show").contains("fd66::9 dev calitest6 proto 80"));
}

/// A second route owner (the BGP speaker's learned routes, under its own protocol) programs
/// `<block> via <node>` next to Felix's routes; the two never touch each other's routes, and a
/// second sync changes nothing.
#[test]
fn via_routes_under_another_protocol_coexist() {
    use calico_felix::dataplane::RouteDataplane;
    use calico_felix::manager::RouteManager;
    use calico_felix::netlink::NetlinkDataplane;
    use calico_felix::routes::{DesiredRoutes, Target};
    if !require_root() {
        return;
    }
    let node = TestNetns::new("felix-via").unwrap();
    ip(&node, "link add eth0 type veth peer name uplink0");
    ip(&node, "addr add 10.200.0.1/24 dev eth0");
    ip(&node, "link set eth0 up");
    ip(&node, "link set uplink0 up");
    ip(&node, "route add blackhole 10.71.0.0/26 proto 80");
    const BGP: u8 = 12;
    let mut desired = DesiredRoutes::default();
    desired.routes.insert(
        "10.70.1.0/26".parse().unwrap(),
        Target::Via {
            gateway: "10.200.0.2".parse().unwrap(),
            interface: None,
            metric: 0,
        },
    );
    desired.routes.insert(
        "10.70.2.0/26".parse().unwrap(),
        Target::Via {
            gateway: "10.200.0.3".parse().unwrap(),
            interface: Some("eth0".into()),
            metric: 0,
        },
    );
    let mut m = RouteManager::new(
        NetlinkDataplane::open(Some(node.path().as_path())).unwrap(),
        BGP,
    );
    let links = m.dataplane_mut().links().unwrap();
    let r = m.sync_desired(&desired, &links).unwrap();
    assert_eq!((r.applied, r.failures.len()), (2, 0), "{r:?}");
    let routes = ip(&node, "route show");
    assert!(
        routes.contains("10.70.1.0/26 via 10.200.0.2 dev eth0 proto bird"),
        "{routes}"
    );
    assert!(
        routes.contains("10.70.2.0/26 via 10.200.0.3 dev eth0 proto bird"),
        "{routes}"
    );
    assert_eq!(m.sync_desired(&desired, &links).unwrap().applied, 0);
    // Withdrawn: only our protocol's route goes; Felix's blackhole stays.
    desired.routes.clear();
    assert_eq!(m.sync_desired(&desired, &links).unwrap().applied, 2);
    let routes = ip(&node, "route show");
    assert!(!routes.contains("10.70."), "{routes}");
    assert!(
        routes.contains("blackhole 10.71.0.0/26 proto 80"),
        "{routes}"
    );
}
