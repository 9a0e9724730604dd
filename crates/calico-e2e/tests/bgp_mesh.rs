//! Issue 5: two calico-node agents on one layer-2 fabric build Calico's node-to-node mesh
//! with the native speaker, each learns the other's IPAM block and installs it as
//! `<block> via <node IP> proto bgp`, pods on different nodes talk, and turning the mesh off
//! in BGPConfiguration removes the sessions and the routes live (and back on restores them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use calico_e2e::cluster::{Cluster, bgp_route_to, calicoctl, calicoctl_apply, wait_for};
use calico_e2e::node::Node;
use calico_e2e::traffic::Flow;
use calico_netlink::testing::require_root;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Waits until `n1` routes `b` (a pod of `n2`) via `n2`'s address, and `n2` routes `a` via
/// `n1`'s: the two nodes learned each other's blocks (directly or through a reflector).
fn wait_exchanged(n1: &Node, n2: &Node, a: IpAddr, b: IpAddr, logs: impl Fn() -> String) {
    let addr = |n: &Node| ip(n.address.split('/').next().unwrap());
    for (from, to, pod) in [(n1, n2, b), (n2, n1, a)] {
        wait_for(
            &format!("{} never learned {}'s block", from.name, to.name),
            Duration::from_secs(20),
            || bgp_route_to(from, pod).is_some_and(|(_, via)| via == addr(to)),
            &logs,
        );
    }
}

#[test]
fn node_to_node_mesh_routes_pods_across_nodes() {
    if !require_root() {
        return;
    }
    let mut c = Cluster::new(2).unwrap();
    c.start().unwrap();
    let store = c.store().to_path_buf();
    let [n1, n2] = &mut c.nodes[..] else {
        unreachable!()
    };
    let a = n1.add_pod("default", "pod-a").unwrap();
    let b = n2.add_pod("default", "pod-b").unwrap();
    let logs = || {
        format!(
            "node1:\n{}\nnode2:\n{}",
            n1.agent_log_tail(),
            n2.agent_log_tail()
        )
    };

    wait_exchanged(n1, n2, a.ip, b.ip, logs);
    // The learned route is the block (a /26 of the default pool), not a host route.
    let (block, _) = bgp_route_to(n1, b.ip).unwrap();
    assert_eq!(block.prefix_len(), 26, "{block}");

    // `calicoctl node status` on node1 shows the mesh session as Calico does (the status
    // is refreshed every second), and the readiness probe agrees.
    let node_status = || {
        let out = Command::new(calico_e2e::binary("calicoctl").unwrap())
            .args(["node", "status"])
            .env("CALICO_BGP_STATUS_SOCKET", n1.bgp_status_socket())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let row_ok = |text: &str| {
        text.lines().any(|l| {
            l.contains("10.200.0.2")
                && ["node-to-node mesh", "| up ", "Established"]
                    .iter()
                    .all(|c| l.contains(c))
        })
    };
    wait_for(
        "calicoctl node status never showed the session",
        Duration::from_secs(5),
        || row_ok(&node_status()),
        node_status,
    );
    let text = node_status();
    assert!(text.contains("Calico process is running."), "{text}");
    assert!(text.contains("No IPv6 peers found."), "{text}");
    let ready = Command::new(calico_e2e::binary("calico-node").unwrap())
        .arg("-bird-ready")
        .env_clear()
        .env("NODENAME", "node1")
        .env("CALICO_BGP_STATUS_SOCKET", n1.bgp_status_socket())
        .output()
        .unwrap();
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );

    // CalicoNodeStatus: node1 fills in what was asked for.
    calicoctl_apply(
        &store,
        "apiVersion: projectcalico.org/v3\nkind: CalicoNodeStatus\nmetadata:\n  name: node1-status\nspec:\n  node: node1\n  classes: [Agent, BGP, Routes]\n  updatePeriodSeconds: 1\n",
    ).unwrap();
    let node_status = || -> serde_json::Value {
        let out = Command::new(calico_e2e::binary("calicoctl").unwrap())
            .env_clear()
            .env("DATASTORE_TYPE", "embedded")
            .env("CALICO_DATASTORE_PATH", &store)
            .args(["get", "caliconodestatus", "node1-status", "-o", "json"])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    wait_for(
        "CalicoNodeStatus never filled in",
        Duration::from_secs(10),
        || {
            let st = &node_status()["status"];
            st["bgp"]["numberEstablishedV4"] == 1
                && st["agent"]["birdV4"]["state"] == "Ready"
                && st["routes"]["routesV4"].as_array().is_some_and(|r| {
                    r.iter().any(|r| {
                        r["type"] == "FIB"
                            && r["gateway"] == "10.200.0.2"
                            && r["learnedFrom"]["sourceType"] == "NodeMesh"
                            && r["learnedFrom"]["peerIP"] == "10.200.0.2"
                    })
                })
        },
        || node_status().to_string(),
    );
    let st = node_status();
    assert_eq!(
        st["status"]["bgp"]["peersV4"][0]["type"], "NodeMesh",
        "{st}"
    );
    assert_eq!(
        st["status"]["bgp"]["peersV4"][0]["state"], "Established",
        "{st}"
    );

    let flow = Flow::start(a.ns.ns(), b.ns.ns(), b.ip, Duration::from_millis(10)).unwrap();
    wait_for(
        "no pod-to-pod traffic across nodes",
        Duration::from_secs(5),
        || flow.report().answered > 10,
        logs,
    );
    flow.stop().unwrap();

    // Mesh off: sessions and routes go on both nodes, live.
    calicoctl_apply(
        &store,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: false\n",
    ).unwrap();
    wait_for(
        "routes stayed after the mesh was disabled",
        Duration::from_secs(15),
        || bgp_route_to(n1, b.ip).is_none() && bgp_route_to(n2, a.ip).is_none(),
        logs,
    );
    // And back on.
    calicoctl_apply(
        &store,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: true\n",
    ).unwrap();
    wait_for(
        "routes did not come back with the mesh",
        Duration::from_secs(20),
        || bgp_route_to(n1, b.ip).is_some() && bgp_route_to(n2, a.ip).is_some(),
        logs,
    );
    n2.del_pod(&b).unwrap();
    n1.del_pod(&a).unwrap();
}

/// Graceful restart both ways (RFC 4724): an agent stopped (SIGTERM) or killed (SIGKILL)
/// keeps its kernel routes, its peer keeps the routes learned from it for the restart time,
/// and once it is back nothing changes: a flow between pods on the two nodes loses nothing.
#[test]
fn agent_restart_keeps_bgp_routes_on_both_sides() {
    if !require_root() {
        return;
    }
    let mut c = Cluster::new(2).unwrap();
    c.start().unwrap();
    let [n1, n2] = &mut c.nodes[..] else {
        unreachable!()
    };
    let a = n1.add_pod("default", "pod-a").unwrap();
    let b = n2.add_pod("default", "pod-b").unwrap();
    wait_for(
        "the mesh never exchanged the blocks",
        Duration::from_secs(20),
        || bgp_route_to(n1, b.ip).is_some() && bgp_route_to(n2, a.ip).is_some(),
        || {
            format!(
                "node1:\n{}\nnode2:\n{}",
                n1.agent_log_tail(),
                n2.agent_log_tail()
            )
        },
    );
    let routes = |n: &Node| n.ip(&["route", "show", "proto", "186"]).unwrap();
    let (r1, r2) = (routes(n1), routes(n2));
    let flow = Flow::start(a.ns.ns(), b.ns.ns(), b.ip, Duration::from_millis(5)).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(flow.report().answered > 10, "{:?}", flow.report());

    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGKILL,
    ] {
        n2.stop_agent(signal).unwrap();
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(
            routes(n2),
            r2,
            "node2's kernel routes changed while it was down ({signal:?})"
        );
        assert_eq!(
            routes(n1),
            r1,
            "node1 dropped node2's routes during its restart ({signal:?})"
        );
        n2.start_agent().unwrap();
        // Back: sessions re-established, End-of-RIB exchanged, stale state resolved.
        std::thread::sleep(Duration::from_secs(3));
        assert_eq!(
            routes(n1),
            r1,
            "after node2's {signal:?} restart\n{}",
            n2.agent_log_tail()
        );
        assert_eq!(
            routes(n2),
            r2,
            "after node2's {signal:?} restart\n{}",
            n2.agent_log_tail()
        );
    }
    let report = flow.stop().unwrap();
    assert!(report.sent > 500, "{report:?}");
    assert_eq!(
        report.lost(),
        0,
        "datagrams lost across restarts: {report:?}"
    );
    n2.del_pod(&b).unwrap();
    n1.del_pod(&a).unwrap();
}

/// Calico's route-reflector recipe: mesh off, node3 labelled and given a cluster id, one
/// BGPPeer from every other node to the reflectors. node1 and node2 only peer with node3,
/// yet learn each other's blocks with the original next hop (RFC 4456 §8).
#[test]
fn route_reflector_node_reflects_between_nodes() {
    if !require_root() {
        return;
    }
    let mut c = Cluster::new(3).unwrap();
    let store = c.store().to_path_buf();
    calicoctl_apply(
        &store,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: false\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: peer-with-route-reflectors\nspec:\n  nodeSelector: \"!has(route-reflector)\"\n  peerSelector: has(route-reflector)\n",
    ).unwrap();
    c.start().unwrap();
    let [n1, n2, n3] = &mut c.nodes[..] else {
        unreachable!()
    };
    calicoctl(&store, &["label", "nodes", "node3", "route-reflector=true"]).unwrap();
    calicoctl(
        &store,
        &[
            "patch",
            "node",
            "node3",
            "-p",
            r#"{"spec":{"bgp":{"routeReflectorClusterID":"244.0.0.1"}}}"#,
        ],
    )
    .unwrap();
    let a = n1.add_pod("default", "pod-a").unwrap();
    let b = n2.add_pod("default", "pod-b").unwrap();
    let logs = || {
        format!(
            "node1:\n{}\nnode2:\n{}\nnode3:\n{}",
            n1.agent_log_tail(),
            n2.agent_log_tail(),
            n3.agent_log_tail()
        )
    };
    wait_exchanged(n1, n2, a.ip, b.ip, logs);
    // node1 has exactly one session (to the reflector), node3 has two.
    let metric = |n: &Node, name: &str| -> String {
        let (_, body) = n.http_get(9091, "/metrics").unwrap();
        body.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    wait_for(
        "session counts in the metrics",
        Duration::from_secs(10),
        || {
            metric(n1, "calico_bgp_peers_configured") == "calico_bgp_peers_configured 1"
                && metric(n3, "calico_bgp_peers_configured") == "calico_bgp_peers_configured 2"
        },
        || {
            format!(
                "{}\n{}",
                metric(n1, "calico_bgp_peers_configured"),
                metric(n3, "calico_bgp_peers_configured")
            )
        },
    );
    // Message counters (metrics refresh every 5 s): the reflector's UPDATEs reached node1.
    let updates = || -> u64 {
        let (_, body) = n1.http_get(9091, "/metrics").unwrap();
        body.lines()
            .find(|l| {
                l.starts_with("calico_bgp_peer_messages{")
                    && l.contains("direction=\"received\"")
                    && l.contains("type=\"update\"")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    wait_for(
        "node1 never counted the reflector's UPDATEs",
        Duration::from_secs(12),
        || updates() >= 2,
        || n1.http_get(9091, "/metrics").unwrap().1,
    );
    let flow = Flow::start(a.ns.ns(), b.ns.ns(), b.ip, Duration::from_millis(10)).unwrap();
    wait_for(
        "no traffic between pods through reflected routes",
        Duration::from_secs(5),
        || flow.report().answered > 10,
        logs,
    );
    flow.stop().unwrap();
    n2.del_pod(&b).unwrap();
    n1.del_pod(&a).unwrap();
}

/// Dual stack: IPv4 and IPv6 mesh sessions side by side (as Calico's bird and bird6), each
/// family's blocks learned over its own session and pods reachable over IPv6 across nodes.
#[test]
fn dual_stack_mesh_routes_ipv6_pods() {
    if !require_root() {
        return;
    }
    let mut c = Cluster::new(2).unwrap();
    for (i, n) in c.nodes.iter_mut().enumerate() {
        n.enable_ipv6(&format!("fd00:200::{}/64", i + 1), "fd00:244::/48")
            .unwrap();
    }
    c.start().unwrap();
    let [n1, n2] = &mut c.nodes[..] else {
        unreachable!()
    };
    let a = n1.add_pod("default", "pod-a").unwrap();
    let b = n2.add_pod("default", "pod-b").unwrap();
    let (a6, b6) = (
        a.ip6.expect("pod-a has no IPv6"),
        b.ip6.expect("pod-b has no IPv6"),
    );
    let logs = || {
        format!(
            "node1:\n{}\nnode2:\n{}",
            n1.agent_log_tail(),
            n2.agent_log_tail()
        )
    };
    wait_for(
        "node1 never learned node2's IPv6 block",
        Duration::from_secs(20),
        || bgp_route_to(n1, b6).is_some_and(|(_, via)| via == ip("fd00:200::2")),
        logs,
    );
    wait_for(
        "node2 never learned node1's IPv6 block",
        Duration::from_secs(20),
        || bgp_route_to(n2, a6).is_some_and(|(_, via)| via == ip("fd00:200::1")),
        logs,
    );
    // IPv4 still works next to it.
    wait_for(
        "node1 never learned node2's IPv4 block",
        Duration::from_secs(20),
        || bgp_route_to(n1, b.ip).is_some(),
        logs,
    );
    // Calico's IPv6 blocks are /122s.
    let (block, _) = bgp_route_to(n1, b6).unwrap();
    assert_eq!(block.prefix_len(), 122, "{block}");
    let flow = Flow::start(a.ns.ns(), b.ns.ns(), b6, Duration::from_millis(10)).unwrap();
    wait_for(
        "no IPv6 pod-to-pod traffic across nodes",
        Duration::from_secs(10),
        || flow.report().answered > 10,
        logs,
    );
    flow.stop().unwrap();
    n2.del_pod(&b).unwrap();
    n1.del_pod(&a).unwrap();
}
