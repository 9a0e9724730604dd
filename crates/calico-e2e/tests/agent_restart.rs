//! Issue 4, "done when": the agent restarts without breaking any running pod's connectivity.
//! Two pods exchange a datagram every 5 ms while calico-node is stopped and restarted, once
//! cleanly (SIGTERM) and once killed (SIGKILL); not one answer may go missing, the routes the
//! agent owns must be the same before and after, and the restarted agent must serve new pods.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use calico_e2e::node::Node;
use calico_e2e::traffic::Flow;
use calico_netlink::testing::require_root;
use nix::sys::signal::Signal;

#[test]
fn agent_restart_keeps_pods_connected() {
    if !require_root() {
        return;
    }
    let mut node = Node::new("node1", "10.200.0.1/24", None).unwrap();
    node.start_agent().unwrap();
    let a = node.add_pod("default", "pod-a").unwrap();
    let b = node.add_pod("default", "pod-b").unwrap();
    // Wait until the agent owns both pod routes.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = node.ip(&["route", "show", "proto", "80"]).unwrap();
        if r.contains(&format!("{} dev", a.ip)) && r.contains(&format!("{} dev", b.ip)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agent never took over the routes: {r}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let routes_before = node.ip(&["route", "show"]).unwrap();
    let neigh_before = node.ip(&["neigh", "show", "nud", "permanent"]).unwrap();

    // The pods can talk once the agent's policy loop has programmed their endpoints (until
    // then their interfaces are unknown to the policy table, which drops them, as Felix's
    // does): wait for a flow that gets answers, and measure loss only from there.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let flow = loop {
        let flow = Flow::start(a.ns.ns(), b.ns.ns(), b.ip, Duration::from_millis(5)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let r = flow.report();
        if r.answered > 10 && r.lost() <= 1 {
            break flow;
        }
        let r = flow.stop().unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "no traffic before the restart: {r:?}\n{}",
            node.agent_log_tail()
        );
    };

    for signal in [Signal::SIGTERM, Signal::SIGKILL] {
        let status = node.stop_agent(signal).unwrap();
        if signal == Signal::SIGTERM {
            assert!(
                status.contains("exit status: 0"),
                "unclean exit on SIGTERM: {status}\n{}",
                node.agent_log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
        node.start_agent().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            node.ip(&["route", "show"]).unwrap(),
            routes_before,
            "routes changed across a {signal:?} restart"
        );
    }
    let report = flow.stop().unwrap();
    assert!(
        report.sent > 200,
        "too little traffic to mean anything: {report:?}"
    );
    assert_eq!(
        report.lost(),
        0,
        "datagrams lost across agent restarts: {report:?}"
    );
    assert_eq!(
        node.ip(&["neigh", "show", "nud", "permanent"]).unwrap(),
        neigh_before
    );

    // The restarted agent serves IPAM and programs routes for a new pod.
    let c = node.add_pod("default", "pod-c").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !node
        .ip(&["route", "show", "proto", "80"])
        .unwrap()
        .contains(&format!("{} dev", c.ip))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no route for the new pod"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in [&a, &b, &c] {
        node.del_pod(p).unwrap();
    }
}
