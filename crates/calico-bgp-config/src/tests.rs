//! Rule-level tests; the confd golden corpus lives in `tests/golden.rs`.

use calico_api::decode::decode_documents;
use calico_api::resource::Resource;

use super::*;

struct Res {
    nodes: Vec<calico_api::node::Node>,
    cfgs: Vec<calico_api::bgpconfig::BGPConfiguration>,
    peers: Vec<calico_api::bgppeer::BGPPeer>,
    pools: Vec<calico_api::ippool::IPPool>,
}

fn res(yaml: &str) -> Res {
    let mut r = Res {
        nodes: vec![],
        cfgs: vec![],
        peers: vec![],
        pools: vec![],
    };
    for d in decode_documents("test", yaml).unwrap() {
        match d.resource {
            Resource::Node(n) => r.nodes.push(n),
            Resource::BGPConfiguration(c) => r.cfgs.push(c),
            Resource::BGPPeer(p) => r.peers.push(p),
            Resource::IPPool(p) => r.pools.push(p),
            _ => {}
        }
    }
    r
}

fn run(
    r: &Res,
    node: &str,
    family: IpFamily,
    blocks: &[AffineBlock],
    env: Option<&str>,
) -> Result<NodeBgpPlan, PlanError> {
    let cluster = ClusterInput {
        nodes: &r.nodes,
        bgp_configurations: &r.cfgs,
        bgp_peers: &r.peers,
        ip_pools: &r.pools,
        bgp_filters: &[],
    };
    let local = LocalInput {
        node_name: node,
        affine_blocks: blocks,
        router_id_env: env,
        local_workload_peers: &[],
    };
    plan(
        &cluster,
        &local,
        family,
        &StaticPasswords::new().with("s", "k", "sekrit"),
    )
}

const THREE_NODES: &str = r#"
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: a, labels: {rr: "true"}}
spec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 1.1.1.1}}
---
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: b}
spec: {bgp: {ipv4Address: 10.0.0.2/24}}
---
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: c}
spec: {bgp: {ipv4Address: 10.0.0.3/24, asNumber: 65001}}
---
kind: BGPConfiguration
apiVersion: projectcalico.org/v3
metadata: {name: default}
spec:
  nodeMeshPassword: {secretKeyRef: {name: s, key: k}}
  nodeMeshMaxRestartTime: 90s
"#;

#[test]
fn mesh_skips_route_reflectors_and_sets_passive_by_text_order() {
    let r = res(THREE_NODES);
    let p = run(&r, "b", IpFamily::V4, &[], None).unwrap();
    let names: Vec<&str> = p.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Mesh_10_0_0_3"]);
    let m = &p.peers[0];
    assert!(m.passive, "10.0.0.3 > 10.0.0.2 waits for us");
    assert_eq!(m.as_number, 65001);
    assert!(!m.internal);
    assert_eq!(m.password.as_deref(), Some("sekrit"));
    assert_eq!(m.graceful_restart_time, Some(90));
    assert_eq!(m.source_address, Some("10.0.0.2".parse().unwrap()));
    // From c's side the session is active.
    let pc = run(&r, "c", IpFamily::V4, &[], None).unwrap();
    assert!(!pc.peer("Mesh_10_0_0_2").unwrap().passive);
    assert_eq!(pc.as_number, 65001);
}

#[test]
fn route_reflector_gets_no_mesh_and_marks_clients() {
    let yaml = format!(
        "{THREE_NODES}---\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata: {{name: to-rr}}\nspec: {{nodeSelector: all(), peerSelector: has(rr)}}\n"
    );
    let r = res(&yaml);
    let a = run(&r, "a", IpFamily::V4, &[], None).unwrap();
    // The reverse peerings: a peers with every node the BGPPeer applies to.
    let names: Vec<&str> = a.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Node_10_0_0_2", "Node_10_0_0_3"]);
    let b = a.peer("Node_10_0_0_2").unwrap();
    assert!(b.rr_client && b.rr_cluster_id.as_deref() == Some("1.1.1.1"));
    // eBGP peers are never RR clients (RFC 4456 reflects within an AS).
    assert!(!a.peer("Node_10_0_0_3").unwrap().rr_client);
    // b: mesh to c, plus the RR; the RR is not auto-passive (selector peers aren't calico_node).
    let pb = run(&r, "b", IpFamily::V4, &[], None).unwrap();
    let rr = pb.peer("Node_10_0_0_1").unwrap();
    assert!(!rr.rr_client && !rr.passive);
}

#[test]
fn same_cluster_reflectors_are_not_clients() {
    let yaml = format!(
        "{THREE_NODES}---\nkind: Node\napiVersion: projectcalico.org/v3\nmetadata: {{name: d, labels: {{rr: \"true\"}}}}\nspec: {{bgp: {{ipv4Address: 10.0.0.4/24, routeReflectorClusterID: 1.1.1.1}}}}\n---\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata: {{name: rr-mesh}}\nspec: {{nodeSelector: has(rr), peerSelector: has(rr)}}\n"
    );
    let r = res(&yaml);
    let a = run(&r, "a", IpFamily::V4, &[], None).unwrap();
    let d = a.peer("Node_10_0_0_4").unwrap();
    assert!(!d.rr_client && d.rr_cluster_id.is_none());
}

#[test]
fn global_peer_fields_and_port_naming() {
    let yaml = format!(
        "{THREE_NODES}---\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata: {{name: tor}}\nspec:\n  peerIP: 192.0.2.1:1179\n  asNumber: 65100\n  localASNumber: 65002\n  ttlSecurity: 2\n  keepaliveTime: 10s\n  maxRestartTime: 2m\n  numAllowedLocalASNumbers: 3\n  nextHopMode: Self\n  password: {{secretKeyRef: {{name: s, key: k}}}}\n  reachableBy: 10.0.0.254\n"
    );
    let r = res(&yaml);
    let p = run(&r, "b", IpFamily::V4, &[], None).unwrap();
    let t = p.peer("Global_192_0_2_1_port_1179").unwrap();
    assert_eq!(t.kind, PeerKind::Global);
    assert_eq!(t.port, Some(1179));
    assert_eq!(t.local_as, Some(65002));
    assert_eq!(t.ttl_security, TtlSecurity::On(2));
    assert_eq!(t.keepalive_time, Some(10));
    assert_eq!(t.graceful_restart_time, Some(120));
    assert_eq!(t.allow_local_as, Some(3));
    assert_eq!(t.next_hop, NextHop::SelfAddr);
    assert_eq!(t.password.as_deref(), Some("sekrit"));
    assert_eq!(t.source_address, Some("10.0.0.2".parse().unwrap()));
    assert!(p.statics.contains(&StaticRoute::Via {
        dst: "192.0.2.1/32".parse().unwrap(),
        via: "10.0.0.254".parse().unwrap()
    }));
    // No IPv6 address on b: the v6 plan has no sessions.
    let v6 = run(&r, "b", IpFamily::V6, &[], None).unwrap();
    assert!(!v6.family_enabled && v6.peers.is_empty());
}

#[test]
fn router_id_sources() {
    let r = res(THREE_NODES);
    let p = run(&r, "b", IpFamily::V6, &[], None).unwrap();
    assert_eq!(p.router_id, Some("10.0.0.2".parse().unwrap()));
    let p = run(&r, "b", IpFamily::V4, &[], Some("192.0.2.9")).unwrap();
    assert_eq!(p.router_id, Some("192.0.2.9".parse().unwrap()));
    let p = run(&r, "b", IpFamily::V4, &[], Some("hash")).unwrap();
    assert_eq!(p.router_id, Some(hash_to_ipv4("b")));
    assert_eq!(
        run(&r, "b", IpFamily::V4, &[], Some("not-an-ip")),
        Err(PlanError::BadRouterId("not-an-ip".into()))
    );
    assert_eq!(
        run(&r, "zz", IpFamily::V4, &[], None),
        Err(PlanError::UnknownNode("zz".into()))
    );
}

#[test]
fn hash_router_id_stays_below_multicast() {
    for name in ["a", "b", "kube-master", "node-1", "node-2", "node-3", "x"] {
        assert!(hash_to_ipv4(name).octets()[0] <= 223, "{name}");
    }
}

#[test]
fn blackholes_skip_pending_and_host_blocks() {
    let r = res(THREE_NODES);
    let blocks = [
        AffineBlock {
            cidr: "10.9.0.64/26".parse().unwrap(),
            state: BlockState::Confirmed,
        },
        AffineBlock {
            cidr: "10.9.0.0/26".parse().unwrap(),
            state: BlockState::Pending,
        },
        AffineBlock {
            cidr: "10.9.1.1/32".parse().unwrap(),
            state: BlockState::Implicit,
        },
        AffineBlock {
            cidr: "10.10.0.0/26".parse().unwrap(),
            state: BlockState::Implicit,
        },
        AffineBlock {
            cidr: "fd00::/122".parse().unwrap(),
            state: BlockState::Implicit,
        },
    ];
    let p = run(&r, "b", IpFamily::V4, &blocks, None).unwrap();
    assert_eq!(
        p.statics,
        vec![
            StaticRoute::Blackhole("10.10.0.0/26".parse().unwrap()),
            StaticRoute::Blackhole("10.9.0.64/26".parse().unwrap()),
        ]
    );
}

#[test]
fn pool_decisions_follow_program_cluster_routes() {
    let pools = r#"
kind: IPPool
apiVersion: projectcalico.org/v3
metadata: {name: pool-v}
spec: {cidr: 10.1.0.0/16, vxlanMode: Always}
---
kind: IPPool
apiVersion: projectcalico.org/v3
metadata: {name: pool-i}
spec: {cidr: 10.2.0.0/16, ipipMode: CrossSubnet}
---
kind: IPPool
apiVersion: projectcalico.org/v3
metadata: {name: pool-n}
spec: {cidr: 10.3.0.0/16, disableBGPExport: true}
"#;
    let r = res(&format!("{THREE_NODES}---\n{pools}"));
    let p = run(&r, "b", IpFamily::V4, &[], None).unwrap();
    let k: Vec<_> = p
        .pools
        .iter()
        .map(|p| (p.export, p.kernel.clone()))
        .collect();
    assert_eq!(
        k,
        vec![
            (true, Some(KernelDecision::RejectVxlan)),
            (true, Some(KernelDecision::RejectFelixOwns)),
            (
                false,
                Some(KernelDecision::Program {
                    tunnel: KernelTunnel::None
                })
            ),
        ]
    );
    assert_eq!(p.ibgp_reject_interfaces, ["*.cali", "*.calico", "tunl0"]);

    let mut r = r;
    r.cfgs[0].spec.program_cluster_routes = Some("EnabledIPIPOnly".into());
    let p = run(&r, "b", IpFamily::V4, &[], None).unwrap();
    assert_eq!(
        p.pools[1].kernel,
        Some(KernelDecision::Program {
            tunnel: KernelTunnel::IpipCrossSubnet {
                local_subnet: "10.0.0.0/24".parse().unwrap()
            }
        })
    );
    assert_eq!(p.pools[2].kernel, Some(KernelDecision::RejectFelixOwns));
    assert_eq!(p.ibgp_reject_interfaces, ["*.cali", "*.calico"]);
}

#[test]
fn filter_names_are_truncated_like_confd() {
    assert_eq!(truncate_filter_name("short"), "short");
    let long = "a".repeat(60);
    let t = truncate_filter_name(&long);
    assert_eq!(t.len(), 45);
    assert!(t.starts_with(&"a".repeat(28)) && t.as_bytes()[28] == b'_');
    assert!(
        t[29..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
}

#[test]
fn wireguard_next_hops_only_when_local_node_runs_wireguard() {
    let yaml = r#"
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: a}
spec: {bgp: {ipv4Address: 10.0.0.1/24}, wireguard: {interfaceIPv4Address: 10.5.0.1}}
---
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: b}
spec: {bgp: {ipv4Address: 10.0.0.2/24}, wireguard: {interfaceIPv4Address: 10.5.0.2}}
---
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: c}
spec: {bgp: {ipv4Address: 10.0.0.3/24}}
"#;
    let r = res(yaml);
    let a = run(&r, "a", IpFamily::V4, &[], None).unwrap();
    assert_eq!(
        a.wireguard_rejected_next_hops,
        vec!["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    let c = run(&r, "c", IpFamily::V4, &[], None).unwrap();
    assert!(c.wireguard_rejected_next_hops.is_empty());
}

#[test]
fn node_scoped_peer_is_dropped_when_a_global_peer_has_the_same_address() {
    let yaml = format!(
        "{THREE_NODES}---\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata: {{name: global-peer}}\nspec: {{peerIP: 192.0.2.1, asNumber: 65100}}\n---\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata: {{name: node-peer}}\nspec: {{node: b, peerIP: 192.0.2.1, asNumber: 65200}}\n"
    );
    let r = res(&yaml);
    let p = run(&r, "b", IpFamily::V4, &[], None).unwrap();
    let names: Vec<&str> = p.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Global_192_0_2_1", "Mesh_10_0_0_3"]);
    assert_eq!(p.peer("Global_192_0_2_1").unwrap().as_number, 65100);
}

#[test]
fn malformed_inputs_are_skipped_with_warnings_or_fail_for_own_node() {
    let yaml = format!(
        "{THREE_NODES}---\nkind: Node\napiVersion: projectcalico.org/v3\nmetadata: {{name: bad}}\nspec: {{bgp: {{ipv4Address: not-an-ip}}}}\n---\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata: {{name: broken}}\nspec: {{peerIP: 300.1.1.1, asNumber: 65100}}\n---\nkind: BGPPeer\napiVersion: projectcalico.org/v3\nmetadata: {{name: badsel}}\nspec: {{nodeSelector: \"has(\", peerSelector: all()}}\n"
    );
    let r = res(&yaml);
    let p = run(&r, "b", IpFamily::V4, &[], None).unwrap();
    assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
    assert!(p.warnings.iter().any(|w| w.contains("\"bad\"")));
    assert!(p.warnings.iter().any(|w| w.contains("300.1.1.1")));
    assert!(p.warnings.iter().any(|w| w.contains("has(")));
    // The other sessions are unaffected.
    assert_eq!(
        p.peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Mesh_10_0_0_3"]
    );
    assert!(matches!(
        run(&r, "bad", IpFamily::V4, &[], None),
        Err(PlanError::BadNodeAddress { .. })
    ));
}
