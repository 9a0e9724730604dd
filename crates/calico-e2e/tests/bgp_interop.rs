//! Issue 5 interop: calico-node's native speaker against BIRD 2, GoBGP and FRR from Debian, all in
//! namespaces on one layer-2 fabric. A "top-of-rack" daemon peers with the node through a
//! global BGPPeer (plain and TCP-MD5): the node's block reaches the ToR with Calico's
//! attributes, the ToR's route reaches the node's kernel as `proto bgp`, withdrawals follow,
//! a graceful restart of the ToR keeps the route, hold-timer expiry removes it. Then route
//! reflection both ways: BIRD reflecting between two calico-nodes, and a calico-node
//! reflecting between BIRD and GoBGP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use calico_e2e::bgp_peers::{
    BgpPeerDaemon, Bird, DaemonSpec, Frr, Gobgp, NeighborSpec, fib_routes, wait_fib,
};
use calico_e2e::cluster::{calicoctl, calicoctl_apply};
use calico_e2e::fabric::Fabric;
use calico_e2e::node::Node;
use calico_e2e::traffic::Flow;
use calico_netlink::testing::require_root;
use ipnet::IpNet;

const TOR: &str = "10.200.0.254";
const TOR_AS: u32 = 65000;
const NODE_AS: u32 = 64512;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// The node's `proto bgp` route for `prefix`, as its gateway.
fn node_route(node: &Node, prefix: IpNet) -> Option<IpAddr> {
    fib_routes(node.ns.name())
        .unwrap()
        .into_iter()
        .find(|r| r.dst == prefix && r.protocol == "bgp")
        .and_then(|r| r.gateway)
}

fn wait_node_route(node: &Node, prefix: IpNet, want: Option<IpAddr>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while node_route(node, prefix) != want {
        assert!(
            Instant::now() < deadline,
            "{what}: {prefix} at {} is {:?}, want {want:?}\n{}",
            node.name,
            node_route(node, prefix),
            node.agent_log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One calico-node peering with a ToR daemon through a global BGPPeer.
struct TorSetup<D: BgpPeerDaemon> {
    // Drop order: daemon, node, then the namespaces they live in.
    tor: D,
    node: Node,
    tor_ns: calico_netlink::testing::TestNetns,
    _fabric: Fabric,
}

fn tor_setup<D: BgpPeerDaemon>(
    password: Option<&str>,
    hold_time: Option<u16>,
    program_kernel: bool,
) -> TorSetup<D> {
    let mut fabric = Fabric::new().unwrap();
    let tor_ns = fabric.add_host(&format!("{TOR}/24")).unwrap();
    let mut node = Node::new("node1", "10.200.0.1/24", None).unwrap();
    fabric.attach(&node).unwrap();
    let mut peer = format!(
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: tor\nspec:\n  peerIP: {TOR}\n  asNumber: {TOR_AS}\n"
    );
    if let Some(pw) = password {
        // Calico reads the Secret; calico-node here reads it as a mounted Secret.
        let secrets = node.dir.path().join("secrets");
        std::fs::create_dir_all(secrets.join("bgp-secrets")).unwrap();
        std::fs::write(secrets.join("bgp-secrets/tor-password"), pw).unwrap();
        node.agent_env.push((
            "CALICO_BGP_SECRETS_DIR".into(),
            secrets.display().to_string(),
        ));
        peer.push_str(
            "  password:\n    secretKeyRef:\n      name: bgp-secrets\n      key: tor-password\n",
        );
    }
    calicoctl_apply(&node.store_path, &peer).unwrap();
    node.start_agent().unwrap();

    let mut neighbor = NeighborSpec::new(ip("10.200.0.1"), NODE_AS).graceful_restart(120);
    if let Some(pw) = password {
        neighbor = neighbor.password(pw);
    }
    if let Some(h) = hold_time {
        neighbor = neighbor.hold_time(h);
    }
    let mut spec = DaemonSpec::new(tor_ns.name(), Ipv4Addr::new(10, 200, 0, 254), TOR_AS)
        .listen_address(ip(TOR))
        .neighbor(neighbor);
    spec.program_kernel = program_kernel;
    let tor = D::start(&spec).unwrap();
    tor.wait_established(ip("10.200.0.1"), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", tor.log_tail(), node.agent_log_tail()));
    TorSetup {
        tor,
        node,
        tor_ns,
        _fabric: fabric,
    }
}

/// Routes both ways, withdraw, and the ToR's graceful restart. `program_kernel`: the ToR
/// writes what it learns into its own FIB (BIRD, FRR; GoBGP has no FIB writer), which is
/// checked too.
fn exchange_with_tor<D: BgpPeerDaemon>(password: Option<&str>, program_kernel: bool) {
    let mut s = tor_setup::<D>(password, None, program_kernel);
    let kind = s.tor.kind();

    // Our block, originated because a pod took an address from it, reaches the ToR with
    // our AS and our address as next hop; the pod's /32 is never leaked (calico_aggr).
    let pod = s.node.add_pod("default", "pod-a").unwrap();
    let block = IpNet::new(pod.ip, 26).unwrap().trunc();
    let learned = s
        .tor
        .wait_route(block, Some(ip("10.200.0.1")), Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}\n{}", s.node.agent_log_tail()));
    assert_eq!(
        learned.next_hop,
        Some(ip("10.200.0.1")),
        "{kind}: {learned:?}"
    );
    assert_eq!(learned.as_path, vec![NODE_AS], "{kind}: {learned:?}");
    let routes = s.tor.received_routes().unwrap();
    assert!(
        !routes.iter().any(|r| r.prefix.prefix_len() == 32),
        "{kind} got a host route: {routes:?}"
    );
    if program_kernel {
        wait_fib(s.tor_ns.name(), Duration::from_secs(10), |routes| {
            routes
                .iter()
                .any(|r| r.dst == block && r.gateway == Some(ip("10.200.0.1")))
        })
        .unwrap_or_else(|e| panic!("{kind} never put our block in its FIB: {e}"));
    }

    // Service cluster IPs (BGPConfiguration serviceClusterIPs) are advertised from the
    // node, as confd's route generator does, and never programmed into its own kernel.
    calicoctl_apply(
        &s.node.store_path,
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  serviceClusterIPs:\n  - cidr: 10.96.0.0/12\n",
    ).unwrap();
    let svc = s
        .tor
        .wait_route(
            net("10.96.0.0/12"),
            Some(ip("10.200.0.1")),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", s.node.agent_log_tail()));
    assert_eq!(svc.next_hop, Some(ip("10.200.0.1")), "{kind}: {svc:?}");
    assert!(
        !fib_routes(s.node.ns.name())
            .unwrap()
            .iter()
            .any(|r| r.dst == net("10.96.0.0/12")),
        "{kind}: the service range was programmed on the node"
    );

    // The ToR's route lands in the node's kernel, and goes with the withdrawal.
    let external = net("198.51.100.0/24");
    s.tor.announce(&[external], None, &[]).unwrap();
    wait_node_route(
        &s.node,
        external,
        Some(ip(TOR)),
        &format!("{kind} announce"),
    );
    s.tor.withdraw(&[external]).unwrap();
    wait_node_route(&s.node, external, None, &format!("{kind} withdraw"));

    // Graceful restart of the ToR (SIGKILL, then back with the restart flag): the node keeps
    // the route throughout, as a GR helper must (RFC 4724 §4.2).
    s.tor.announce(&[external], None, &[]).unwrap();
    wait_node_route(
        &s.node,
        external,
        Some(ip(TOR)),
        &format!("{kind} re-announce"),
    );
    s.tor.restart_graceful().unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(
            node_route(&s.node, external),
            Some(ip(TOR)),
            "{kind}: the node dropped the route during the ToR's graceful restart\n{}",
            s.node.agent_log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.tor
        .wait_established(ip("10.200.0.1"), Duration::from_secs(30))
        .unwrap();
    s.tor
        .wait_route(block, Some(ip("10.200.0.1")), Duration::from_secs(20))
        .unwrap();
    // Back with its routes. (A restarted speaker that did not keep its forwarding state,
    // FRR's plain restart, loses its stale routes at once on the new session, RFC 4724 §4.2,
    // until it sends them again.)
    wait_node_route(
        &s.node,
        external,
        Some(ip(TOR)),
        &format!("{kind} after GR"),
    );
    s.node.del_pod(&pod).unwrap();
}

/// A frozen ToR (SIGSTOP: connected but silent) is dropped when the negotiated hold time
/// runs out, and its routes leave the kernel.
fn hold_timer_with_tor<D: BgpPeerDaemon>() {
    let mut s = tor_setup::<D>(None, Some(3), false);
    let kind = s.tor.kind();
    let external = net("198.51.100.0/24");
    s.tor.announce(&[external], None, &[]).unwrap();
    wait_node_route(
        &s.node,
        external,
        Some(ip(TOR)),
        &format!("{kind} announce"),
    );
    let frozen = Instant::now();
    s.tor.freeze().unwrap();
    wait_node_route(&s.node, external, None, &format!("{kind} hold timer"));
    let took = frozen.elapsed();
    s.tor.thaw().unwrap();
    assert!(
        took >= Duration::from_secs(2),
        "{kind}: route removed after {took:?}, before the 3 s hold time could expire"
    );
}

/// One `#[test]` per daemon and scenario.
macro_rules! interop_tests {
    ($($name:ident => $body:expr;)*) => {
        $(
            #[test]
            fn $name() {
                if !require_root() {
                    return;
                }
                $body;
            }
        )*
    };
}

interop_tests! {
    bird_tor_routes_both_ways_and_graceful_restart => exchange_with_tor::<Bird>(None, true);
    gobgp_tor_routes_both_ways_and_graceful_restart => exchange_with_tor::<Gobgp>(None, false);
    bird_tor_with_tcp_md5 => exchange_with_tor::<Bird>(Some("s3cret-bird"), true);
    gobgp_tor_with_tcp_md5 => exchange_with_tor::<Gobgp>(Some("s3cret-gobgp"), false);
    bird_hold_timer_expiry_removes_routes => hold_timer_with_tor::<Bird>();
    gobgp_hold_timer_expiry_removes_routes => hold_timer_with_tor::<Gobgp>();
    frr_tor_routes_both_ways_and_graceful_restart => exchange_with_tor::<Frr>(None, true);
    frr_tor_with_tcp_md5 => exchange_with_tor::<Frr>(Some("s3cret-frr"), true);
    frr_hold_timer_expiry_removes_routes => hold_timer_with_tor::<Frr>();
}

/// BIRD as the route reflector of two calico-nodes (mesh off, both peer only with BIRD):
/// each node learns the other's block with the original next hop, and pods talk.
#[test]
fn bird_route_reflector_with_calico_node_clients() {
    if !require_root() {
        return;
    }
    let mut fabric = Fabric::new().unwrap();
    let rr_ns = fabric.add_host(&format!("{TOR}/24")).unwrap();
    let mut n1 = Node::new("node1", "10.200.0.1/24", None).unwrap();
    let store = n1.store_path.clone();
    let mut n2 = Node::new("node2", "10.200.0.2/24", Some(&store)).unwrap();
    fabric.attach(&n1).unwrap();
    fabric.attach(&n2).unwrap();
    calicoctl_apply(
        &store,
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: false\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: bird-rr\nspec:\n  peerIP: {TOR}\n  asNumber: {NODE_AS}\n"
        ),
    ).unwrap();
    n1.start_agent().unwrap();
    n2.start_agent().unwrap();
    let spec = DaemonSpec::new(rr_ns.name(), Ipv4Addr::new(10, 200, 0, 254), NODE_AS)
        .listen_address(ip(TOR))
        .neighbor(NeighborSpec::new(ip("10.200.0.1"), NODE_AS).rr_client())
        .neighbor(NeighborSpec::new(ip("10.200.0.2"), NODE_AS).rr_client());
    let mut spec = spec;
    spec.cluster_id = Some(Ipv4Addr::new(244, 0, 0, 9));
    let rr = Bird::start(&spec).unwrap();
    for n in ["10.200.0.1", "10.200.0.2"] {
        rr.wait_established(ip(n), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}\n{}", rr.log_tail()));
    }
    let a = n1.add_pod("default", "pod-a").unwrap();
    let b = n2.add_pod("default", "pod-b").unwrap();
    let block_a = IpNet::new(a.ip, 26).unwrap().trunc();
    let block_b = IpNet::new(b.ip, 26).unwrap().trunc();
    wait_node_route(&n1, block_b, Some(ip("10.200.0.2")), "reflected to node1");
    wait_node_route(&n2, block_a, Some(ip("10.200.0.1")), "reflected to node2");
    let flow = Flow::start(a.ns.ns(), b.ns.ns(), b.ip, Duration::from_millis(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while flow.report().answered < 10 {
        assert!(Instant::now() < deadline, "no traffic: {:?}", flow.report());
        std::thread::sleep(Duration::from_millis(50));
    }
    flow.stop().unwrap();
    n2.del_pod(&b).unwrap();
    n1.del_pod(&a).unwrap();
    drop(rr);
}

/// A calico-node as route reflector (Node `routeReflectorClusterID`) for BIRD and GoBGP
/// clients: BIRD's route reaches GoBGP through the node with ORIGINATOR_ID and CLUSTER_LIST
/// (RFC 4456), and the other way round. As in Calico, a reflector passes on routes inside
/// its IP pools (`calico_export_to_bgp_peers`), so the clients announce pool blocks.
#[test]
fn calico_node_route_reflector_for_bird_and_gobgp() {
    if !require_root() {
        return;
    }
    let mut fabric = Fabric::new().unwrap();
    let bird_ns = fabric.add_host("10.200.0.254/24").unwrap();
    let gobgp_ns = fabric.add_host("10.200.0.253/24").unwrap();
    let mut n1 = Node::new("node1", "10.200.0.1/24", None).unwrap();
    fabric.attach(&n1).unwrap();
    calicoctl_apply(
        &n1.store_path,
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: bird\nspec:\n  node: node1\n  peerIP: 10.200.0.254\n  asNumber: {NODE_AS}\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: gobgp\nspec:\n  node: node1\n  peerIP: 10.200.0.253\n  asNumber: {NODE_AS}\n"
        ),
    ).unwrap();
    n1.start_agent().unwrap();
    calicoctl(
        &n1.store_path,
        &[
            "patch",
            "node",
            "node1",
            "-p",
            r#"{"spec":{"bgp":{"routeReflectorClusterID":"244.0.0.1"}}}"#,
        ],
    )
    .unwrap();

    let bird = Bird::start(
        &DaemonSpec::new(bird_ns.name(), Ipv4Addr::new(10, 200, 0, 254), NODE_AS)
            .listen_address(ip("10.200.0.254"))
            .neighbor(NeighborSpec::new(ip("10.200.0.1"), NODE_AS)),
    )
    .unwrap();
    let mut gobgp = Gobgp::start(
        &DaemonSpec::new(gobgp_ns.name(), Ipv4Addr::new(10, 200, 0, 253), NODE_AS)
            .listen_address(ip("10.200.0.253"))
            .neighbor(NeighborSpec::new(ip("10.200.0.1"), NODE_AS)),
    )
    .unwrap();
    for d in [&bird as &dyn BgpPeerDaemonDyn, &gobgp] {
        d.established(ip("10.200.0.1"));
    }
    let mut bird = bird;
    bird.announce(&[net("10.244.200.0/26")], None, &[(65000, 100)])
        .unwrap();
    gobgp
        .announce(&[net("10.244.201.0/26")], None, &[])
        .unwrap();
    let at_gobgp = gobgp
        .wait_route(
            net("10.244.200.0/26"),
            Some(ip("10.200.0.1")),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", n1.agent_log_tail()));
    assert_eq!(at_gobgp.next_hop, Some(ip("10.200.0.254")), "{at_gobgp:?}");
    assert_eq!(
        at_gobgp.originator_id,
        Some(Ipv4Addr::new(10, 200, 0, 254)),
        "{at_gobgp:?}"
    );
    assert_eq!(
        at_gobgp.cluster_list,
        vec![Ipv4Addr::new(244, 0, 0, 1)],
        "{at_gobgp:?}"
    );
    // Communities pass through the reflector untouched (RFC 1997).
    assert_eq!(at_gobgp.communities, vec![(65000, 100)], "{at_gobgp:?}");
    let at_bird = bird
        .wait_route(
            net("10.244.201.0/26"),
            Some(ip("10.200.0.1")),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", n1.agent_log_tail()));
    assert_eq!(
        at_bird.originator_id,
        Some(Ipv4Addr::new(10, 200, 0, 253)),
        "{at_bird:?}"
    );
    // And the reflector itself routes both.
    wait_node_route(
        &n1,
        net("10.244.200.0/26"),
        Some(ip("10.200.0.254")),
        "RR's own FIB",
    );
    wait_node_route(
        &n1,
        net("10.244.201.0/26"),
        Some(ip("10.200.0.253")),
        "RR's own FIB",
    );
    // A route outside the pools is routed by the reflector but not reflected (Calico's
    // export filter), exactly as BIRD with confd's configuration does.
    bird.announce(&[net("198.51.100.0/24")], None, &[]).unwrap();
    wait_node_route(
        &n1,
        net("198.51.100.0/24"),
        Some(ip("10.200.0.254")),
        "RR's own FIB",
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !gobgp
            .received_routes()
            .unwrap()
            .iter()
            .any(|r| r.prefix == net("198.51.100.0/24")),
        "a non-pool route was reflected"
    );
    drop(bird);
    drop(gobgp);
}

/// Object-safe view of the daemons for the loop above.
trait BgpPeerDaemonDyn {
    fn established(&self, neighbor: IpAddr);
}

impl<D: BgpPeerDaemon> BgpPeerDaemonDyn for D {
    fn established(&self, neighbor: IpAddr) {
        self.wait_established(neighbor, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log_tail()));
    }
}
