//! Issue 6: host endpoints and failsafes on real traffic. A HostEndpoint on node1's fabric
//! interface (`eth0`, address 10.200.0.1) polices traffic to and from node1 itself, leaves
//! the failsafe ports and the BGP mesh working, and polices forwarded pod traffic only through
//! `applyOnForward`, `preDNAT` and `doNotTrack` policies. Every probe (pods and hosts, TCP /
//! UDP 80 and 81, ICMP echo, TCP 22 between hosts) is checked against `calico-policy-eval`'s
//! verdicts for the stored resources, composed along the packet's path through Felix's
//! chains (`calico_e2e::policy::host`), and each scenario also asserts the cells it is about.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use calico_e2e::cluster::{bgp_route_to, calicoctl, calicoctl_apply, wait_for};
use calico_e2e::policy::host::{HostPolicyCluster, node_ip};
use calico_e2e::reach::{Cell, Matrix, Proto};
use calico_netlink::testing::require_root;
use calico_policy_eval::ProtoPort;
use nix::sys::signal::Signal;

const CONVERGE: Duration = Duration::from_secs(30);

/// node1's fabric interface as a host endpoint, its address as expectedIPs.
const HEP_NODE1: &str = "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n\
    metadata:\n  name: node1-eth0\n  labels: {role: fabric, host: node1}\n\
    spec:\n  node: node1\n  interfaceName: eth0\n  expectedIPs: [10.200.0.1]\n";

fn reached(m: &Matrix, from: &str, to: &str, proto: Proto, port: u16) -> bool {
    let cell = Cell {
        from: from.into(),
        to: to.into(),
        proto,
        port,
    };
    *m.cells
        .get(&cell)
        .unwrap_or_else(|| panic!("{from} -> {to} {proto}/{port} was not probed"))
}

/// A pod on each node (pod keys), for cross-node checks.
fn pod_on(hc: &HostPolicyCluster, node: &str) -> String {
    hc.pc
        .pods
        .iter()
        .find(|p| p.node == node)
        .unwrap()
        .key
        .clone()
}

/// Applies `yaml`, waits for the expected matrix, runs `check` on it. The resources stay.
fn apply(hc: &HostPolicyCluster, name: &str, yaml: &str, check: impl FnOnce(&Matrix)) {
    calicoctl_apply(&hc.pc.store(), yaml).unwrap_or_else(|e| panic!("{name}: apply: {e}"));
    check(&expected(hc, name));
}

/// Waits for the expected matrix; a timeout shows node1's table.
fn expected(hc: &HostPolicyCluster, name: &str) -> Matrix {
    hc.wait_for_expected(name, CONVERGE).unwrap_or_else(|e| {
        panic!(
            "{e}\nnode1's table:\n{}",
            hc.nft_table(0).unwrap_or_default()
        )
    })
}

/// Deletes `yaml`'s resources, last document first.
fn delete(hc: &HostPolicyCluster, yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("delete.yaml");
    let mut docs: Vec<&str> = yaml.split("---\n").collect();
    docs.reverse();
    std::fs::write(&file, docs.join("\n---\n")).unwrap();
    calicoctl(
        &hc.pc.store(),
        &["delete", "-f", &file.display().to_string()],
    )
    .unwrap();
}

/// `calicoctl node status` of node1 shows the mesh session with node2 Established.
fn mesh_established(hc: &HostPolicyCluster) -> bool {
    let out = Command::new(calico_e2e::binary("calicoctl").unwrap())
        .args(["node", "status"])
        .env(
            "CALICO_BGP_STATUS_SOCKET",
            hc.pc.cluster.nodes[0].bgp_status_socket(),
        )
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().any(|l| {
        l.contains("10.200.0.2") && l.contains("node-to-node mesh") && l.contains("Established")
    })
}

fn ip_of(hc: &HostPolicyCluster, key: &str) -> IpAddr {
    hc.pc.pods.iter().find(|p| p.key == key).unwrap().pod.ip
}

/// The BGP session re-forms through node1's host endpoint (failsafe tcp:179 inbound on
/// node1 for node2's connection, outbound for node1's): node2's agent restarts, node1 sees
/// the session go and come back, the routes to each other's pods are there, and the matrix
/// is still the expected one.
fn restart_node2_and_check_mesh(hc: &mut HostPolicyCluster, state: &str, a1: &str, b2: &str) {
    assert!(
        mesh_established(hc),
        "{state}: mesh not Established before the restart"
    );
    hc.pc.cluster.nodes[1].stop_agent(Signal::SIGTERM).unwrap();
    wait_for(
        &format!("{state}: node1 never noticed node2's BGP speaker stop"),
        Duration::from_secs(15),
        || !mesh_established(hc),
        || hc.pc.cluster.logs(),
    );
    hc.pc.cluster.nodes[1].start_agent().unwrap();
    hc.pc.cluster.nodes[1]
        .wait_ready(Duration::from_secs(30))
        .unwrap();
    wait_for(
        &format!("{state}: the BGP session did not come back through node1's host endpoint"),
        Duration::from_secs(30),
        || mesh_established(hc),
        || hc.nft_table(0).unwrap_or_default() + &hc.pc.cluster.logs(),
    );
    let (n1, n2) = (&hc.pc.cluster.nodes[0], &hc.pc.cluster.nodes[1]);
    assert!(bgp_route_to(n1, ip_of(hc, b2)).is_some(), "{state}");
    assert!(bgp_route_to(n2, ip_of(hc, a1)).is_some(), "{state}");
    assert_eq!(node_ip(n1).unwrap().to_string(), "10.200.0.1");
    hc.wait_for_expected(&format!("{state}, after node2's agent restart"), CONVERGE)
        .unwrap();
}

#[test]
fn host_endpoint_with_failsafes_and_host_policy() {
    if !require_root() {
        return;
    }
    let mut hc = HostPolicyCluster::start().unwrap();
    let (a1, b2) = (pod_on(&hc, "node1"), pod_on(&hc, "node2"));
    hc.wait_for_expected("no host endpoint", CONVERGE).unwrap();

    // 1. The host endpoint alone: default deny for node1's own traffic, failsafes open,
    //    forwarded pod traffic untouched.
    apply(&hc, "host endpoint without policy", HEP_NODE1, |m| {
        assert!(
            reached(m, "node2", "node1", Proto::Tcp, 22),
            "inbound failsafe tcp:22"
        );
        for (proto, port) in [
            (Proto::Tcp, 80),
            (Proto::Tcp, 81),
            (Proto::Udp, 80),
            (Proto::Udp, 81),
            (Proto::Icmp, 0),
        ] {
            assert!(!reached(m, "node2", "node1", proto, port), "{proto}/{port}");
            assert!(!reached(m, "node1", "node2", proto, port), "{proto}/{port}");
        }
        // tcp:22 is not an outbound failsafe.
        assert!(!reached(m, "node1", "node2", Proto::Tcp, 22));
        assert!(!reached(m, &b2, "node1", Proto::Tcp, 80));
        assert!(reached(m, &b2, &a1, Proto::Tcp, 81));
        assert!(reached(m, &a1, &b2, Proto::Udp, 81));
    });

    restart_node2_and_check_mesh(&mut hc, "host endpoint without policy", &a1, &b2);

    // An explicit deny-all policy on the host endpoint, both directions: the failsafes come
    // first (`failsafeInChain` / `failsafeOutChain` before any tier), so TCP 22 and the mesh
    // still work.
    let deny_all = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
        metadata: {name: fabric-deny-all}\n\
        spec:\n  selector: role == 'fabric'\n  order: 1\n  types: [Ingress, Egress]\n\
        \x20 ingress: [{action: Deny}]\n  egress: [{action: Deny}]\n";
    apply(&hc, "host endpoint with deny-all policy", deny_all, |m| {
        assert!(reached(m, "node2", "node1", Proto::Tcp, 22));
        assert!(!reached(m, "node2", "node1", Proto::Tcp, 80));
        assert!(!reached(m, "node1", "node2", Proto::Tcp, 80));
        assert!(reached(m, &b2, &a1, Proto::Tcp, 80));
    });
    restart_node2_and_check_mesh(&mut hc, "host endpoint with deny-all policy", &a1, &b2);
    delete(&hc, deny_all);

    // 2. A global policy selecting the host endpoint by label opens TCP 80 inbound only.
    let allow80 = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
        metadata: {name: fabric-allow-80}\n\
        spec:\n  selector: role == 'fabric'\n  types: [Ingress]\n\
        \x20 ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [80]}\n";
    apply(&hc, "host endpoint policy allows TCP 80 in", allow80, |m| {
        assert!(reached(m, "node2", "node1", Proto::Tcp, 80));
        assert!(reached(m, &b2, "node1", Proto::Tcp, 80));
        assert!(!reached(m, "node2", "node1", Proto::Tcp, 81));
        assert!(!reached(m, "node2", "node1", Proto::Udp, 80));
        assert!(reached(m, "node2", "node1", Proto::Tcp, 22));
        // No egress policy: node1's own new connections still denied.
        assert!(!reached(m, "node1", "node2", Proto::Tcp, 80));
        assert!(reached(m, &b2, &a1, Proto::Tcp, 81));
    });
    delete(&hc, allow80);

    // Egress policy and a named port of the host endpoint: node1 may open TCP 80
    // connections anywhere, and accepts its own named port `alt` (TCP 81) from node2's
    // address only (not from node2's pods).
    let named = "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n\
         metadata:\n  name: node1-eth0\n  labels: {role: fabric, host: node1}\n\
         spec:\n  node: node1\n  interfaceName: eth0\n  expectedIPs: [10.200.0.1]\n\
         \x20 ports: [{name: alt, port: 81, protocol: TCP}]\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
         metadata: {name: fabric-egress-and-named}\n\
         spec:\n  selector: host == 'node1'\n  types: [Ingress, Egress]\n\
         \x20 ingress:\n  - action: Allow\n    protocol: TCP\n    source: {nets: [10.200.0.2/32]}\n    destination: {ports: [alt]}\n\
         \x20 egress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [80]}\n";
    apply(
        &hc,
        "host endpoint egress policy and named port",
        named,
        |m| {
            assert!(reached(m, "node1", "node2", Proto::Tcp, 80));
            assert!(reached(m, "node1", &b2, Proto::Tcp, 80));
            assert!(!reached(m, "node1", "node2", Proto::Tcp, 81));
            assert!(!reached(m, "node1", "node2", Proto::Udp, 80));
            assert!(reached(m, "node2", "node1", Proto::Tcp, 81));
            assert!(!reached(m, &b2, "node1", Proto::Tcp, 81));
            assert!(!reached(m, "node2", "node1", Proto::Tcp, 80));
        },
    );
    // Only the policy goes: the host endpoint's last version is deleted below.
    delete(&hc, named.split("---\n").nth(1).unwrap());
    delete(&hc, HEP_NODE1);
    hc.wait_for_expected("host endpoint deleted", CONVERGE)
        .unwrap();
}

#[test]
fn host_endpoint_forward_pre_dnat_and_untracked_policy() {
    if !require_root() {
        return;
    }
    let hc = HostPolicyCluster::start().unwrap();
    let (a1, b2) = (pod_on(&hc, "node1"), pod_on(&hc, "node2"));
    apply(&hc, "host endpoint without policy", HEP_NODE1, |m| {
        assert!(reached(m, &b2, &a1, Proto::Tcp, 81));
    });

    // 3. The same ingress policy without, then with applyOnForward: only the latter reaches
    //    pod traffic forwarded into node1 through eth0.
    let fwd = |on: bool| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
             metadata: {{name: fabric-ingress}}\n\
             spec:\n  selector: role == 'fabric'\n  applyOnForward: {on}\n  types: [Ingress]\n\
             \x20 ingress:\n  - action: Deny\n    protocol: TCP\n    destination: {{nets: [10.244.0.0/16], ports: [81]}}\n\
             \x20 - action: Allow\n"
        )
    };
    apply(
        &hc,
        "host policy without applyOnForward",
        &fwd(false),
        |m| {
            assert!(reached(m, "node2", "node1", Proto::Udp, 81));
            assert!(reached(m, &b2, &a1, Proto::Tcp, 81));
        },
    );
    apply(&hc, "host policy with applyOnForward", &fwd(true), |m| {
        assert!(!reached(m, &b2, &a1, Proto::Tcp, 81));
        assert!(reached(m, &b2, &a1, Proto::Tcp, 80));
        assert!(reached(m, &b2, &a1, Proto::Udp, 81));
        // Egress from node1's pods has no applyOnForward policy.
        assert!(reached(m, &a1, &b2, Proto::Tcp, 81));
        assert!(reached(m, "node2", "node1", Proto::Tcp, 81));
    });

    // 3b. A pre-DNAT Allow of the same traffic comes first: the forward chain's
    //     from-host-endpoint dispatch only runs while the accept mark is clear
    //     (`StaticFilterForwardChains`), so TCP 81 reaches node1's pods again (their own
    //     ingress policy still applies: profile allow).
    let prednat_allow = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
        metadata: {name: fabric-prednat-allow}\n\
        spec:\n  selector: role == 'fabric'\n  preDNAT: true\n  applyOnForward: true\n  types: [Ingress]\n\
        \x20 ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {nets: [10.244.0.0/16], ports: [81]}\n";
    apply(
        &hc,
        "preDNAT allow before applyOnForward deny",
        prednat_allow,
        |m| {
            assert!(reached(m, &b2, &a1, Proto::Tcp, 81));
        },
    );
    delete(&hc, prednat_allow);
    delete(&hc, &fwd(true));

    // 3c. applyOnForward egress: UDP 80 from node1's pods out through eth0 is denied; node1's
    //     own UDP 80 to node2 (not in the pod pool) is allowed by the same policy.
    let fwd_egress = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
        metadata: {name: fabric-egress}\n\
        spec:\n  selector: role == 'fabric'\n  applyOnForward: true\n  types: [Egress]\n\
        \x20 egress:\n  - action: Deny\n    protocol: UDP\n    destination: {nets: [10.244.0.0/16], ports: [80]}\n\
        \x20 - action: Allow\n";
    apply(&hc, "applyOnForward egress policy", fwd_egress, |m| {
        assert!(!reached(m, &a1, &b2, Proto::Udp, 80));
        assert!(reached(m, &a1, &b2, Proto::Udp, 81));
        assert!(reached(m, &b2, &a1, Proto::Udp, 80));
        assert!(reached(m, "node1", "node2", Proto::Udp, 80));
        assert!(!reached(m, "node1", &b2, Proto::Udp, 80));
    });
    delete(&hc, fwd_egress);

    // 4a. preDNAT: denies UDP 81 into node1 for everything arriving on eth0 (its pods
    //     included) and accepts TCP 80 to node1's own address before the (empty, so
    //     denying) normal host endpoint policy.
    let prednat = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
        metadata: {name: fabric-prednat}\n\
        spec:\n  selector: role == 'fabric'\n  preDNAT: true\n  applyOnForward: true\n  types: [Ingress]\n\
        \x20 ingress:\n  - action: Deny\n    protocol: UDP\n    destination: {ports: [81]}\n\
        \x20 - action: Allow\n    protocol: TCP\n    destination: {nets: [10.200.0.1/32], ports: [80]}\n";
    apply(&hc, "preDNAT policy", prednat, |m| {
        assert!(reached(m, "node2", "node1", Proto::Tcp, 80));
        assert!(!reached(m, "node2", "node1", Proto::Tcp, 81));
        assert!(!reached(m, &b2, &a1, Proto::Udp, 81));
        assert!(reached(m, &b2, &a1, Proto::Udp, 80));
        assert!(reached(m, &b2, &a1, Proto::Tcp, 81));
    });
    delete(&hc, prednat);

    // 4b. doNotTrack: TCP 80 to node1's address and its replies bypass conntrack and the
    //     normal policy; everything else is still denied by the host endpoint.
    let untracked = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
        metadata: {name: fabric-untracked}\n\
        spec:\n  selector: role == 'fabric'\n  doNotTrack: true\n  applyOnForward: true\n\
        \x20 ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {nets: [10.200.0.1/32], ports: [80]}\n\
        \x20 egress:\n  - action: Allow\n    protocol: TCP\n    source: {nets: [10.200.0.1/32], ports: [80]}\n";
    apply(&hc, "doNotTrack policy", untracked, |m| {
        assert!(reached(m, "node2", "node1", Proto::Tcp, 80));
        assert!(reached(m, &b2, "node1", Proto::Tcp, 80));
        assert!(!reached(m, "node2", "node1", Proto::Tcp, 81));
        assert!(reached(m, "node2", "node1", Proto::Tcp, 22));
        assert!(reached(m, &b2, &a1, Proto::Tcp, 80));
    });
    delete(&hc, untracked);
    delete(&hc, HEP_NODE1);
    hc.wait_for_expected("host endpoint deleted", CONVERGE)
        .unwrap();
}

/// Felix accepts a packet allowed by untracked (doNotTrack) policy in the raw table without
/// running pre-DNAT policy: `StaticManglePreroutingChain` returns early on the accept mark
/// ("Or if we've already accepted this packet in the raw table"), and filter INPUT accepts
/// it (`acceptAlreadyAccepted`). So TCP 80 to node1 stays open although a pre-DNAT policy
/// denies it.
#[test]
fn untracked_allow_skips_pre_dnat_policy() {
    if !require_root() {
        return;
    }
    let hc = HostPolicyCluster::start().unwrap();
    let yaml = format!(
        "{HEP_NODE1}---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
         metadata: {{name: fabric-untracked}}\n\
         spec:\n  selector: role == 'fabric'\n  doNotTrack: true\n  applyOnForward: true\n\
         \x20 ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {{nets: [10.200.0.1/32], ports: [80]}}\n\
         \x20 egress:\n  - action: Allow\n    protocol: TCP\n    source: {{nets: [10.200.0.1/32], ports: [80]}}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
         metadata: {{name: fabric-prednat}}\n\
         spec:\n  selector: role == 'fabric'\n  preDNAT: true\n  applyOnForward: true\n  types: [Ingress]\n\
         \x20 ingress:\n  - action: Deny\n    protocol: TCP\n    destination: {{nets: [10.200.0.1/32], ports: [80]}}\n"
    );
    apply(&hc, "doNotTrack allow and preDNAT deny", &yaml, |m| {
        assert!(reached(m, "node2", "node1", Proto::Tcp, 80));
        assert!(!reached(m, "node2", "node1", Proto::Tcp, 81));
    });
    delete(&hc, &yaml);
    hc.wait_for_expected("all deleted", CONVERGE).unwrap();
}

/// Node1's agent restarts with `FailsafeInboundHostPorts` = `tcp:81,tcp:179` (set by
/// `configure` while it is down): TCP 22 closes and TCP 81 opens on its host endpoint, and
/// the mesh (tcp:179) re-forms.
fn check_failsafe_override(configure: impl FnOnce(&mut HostPolicyCluster)) {
    let mut hc = HostPolicyCluster::start().unwrap();
    apply(&hc, "host endpoint without policy", HEP_NODE1, |m| {
        assert!(reached(m, "node2", "node1", Proto::Tcp, 22));
        assert!(!reached(m, "node2", "node1", Proto::Tcp, 81));
    });
    hc.pc.cluster.nodes[0].stop_agent(Signal::SIGTERM).unwrap();
    configure(&mut hc);
    hc.pc.cluster.nodes[0].start_agent().unwrap();
    hc.config.failsafe_inbound = [81, 179]
        .map(|port| ProtoPort {
            protocol: 6,
            port,
            net: None,
        })
        .to_vec();
    let m = expected(&hc, "failsafe inbound ports tcp:81,tcp:179");
    assert!(!reached(&m, "node2", "node1", Proto::Tcp, 22));
    assert!(reached(&m, "node2", "node1", Proto::Tcp, 81));
    wait_for(
        "the mesh did not re-form after node1's restart",
        Duration::from_secs(30),
        || mesh_established(&hc),
        || hc.pc.cluster.logs(),
    );
}

/// The environment, in Felix's format (`<protocol>:<port>` list, `felix/config/
/// param_types.go` `PortListParam.Parse`; default `tcp:22,udp:68,tcp:179,...`).
#[test]
fn failsafe_ports_from_the_environment() {
    if !require_root() {
        return;
    }
    check_failsafe_override(|hc| {
        hc.pc.cluster.nodes[0].agent_env.push((
            "FELIX_FAILSAFEINBOUNDHOSTPORTS".into(),
            "tcp:81,tcp:179".into(),
        ));
    });
}

/// The datastore: the global FelixConfiguration `default` (Felix merges it under the
/// environment, `felix/config/config_params.go` `UpdateFrom` with `DatastoreGlobal`).
#[test]
fn failsafe_ports_from_the_datastore() {
    if !require_root() {
        return;
    }
    check_failsafe_override(|hc| {
        calicoctl(
            &hc.pc.store(),
            &[
                "patch",
                "felixconfiguration",
                "default",
                "-p",
                r#"{"spec": {"failsafeInboundHostPorts": [{"protocol": "TCP", "port": 81}, {"protocol": "TCP", "port": 179}]}}"#,
            ],
        )
        .unwrap();
        let stored = calicoctl(
            &hc.pc.store(),
            &["get", "felixconfiguration", "default", "-o", "json"],
        )
        .unwrap();
        assert!(stored.contains("\"port\": 81"), "{stored}");
    });
}

/// An all-interfaces host endpoint (`interfaceName: "*"`, Felix's wildcard endpoint: the
/// fallback of the host-endpoint dispatch for every interface without an endpoint of its
/// own): node1's own traffic on any interface is policed like with an endpoint on `eth0`
/// (default deny, failsafes open), workload traffic keeps its own policy (`cali*` interfaces
/// go to the workload chains first, as in Felix's `filterInputChain`), and a policy selecting
/// the wildcard endpoint by label opens TCP 80.
#[test]
fn all_interfaces_host_endpoint() {
    if !require_root() {
        return;
    }
    let hc = HostPolicyCluster::start().unwrap();
    let (a1, b2) = (pod_on(&hc, "node1"), pod_on(&hc, "node2"));
    let wildcard = "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n\
        metadata:\n  name: node1-all\n  labels: {role: any-iface, host: node1}\n\
        spec:\n  node: node1\n  interfaceName: \"*\"\n  expectedIPs: [10.200.0.1]\n";
    apply(
        &hc,
        "all-interfaces host endpoint without policy",
        wildcard,
        |m| {
            assert!(
                reached(m, "node2", "node1", Proto::Tcp, 22),
                "failsafe tcp:22"
            );
            assert!(!reached(m, "node2", "node1", Proto::Tcp, 80));
            assert!(!reached(m, "node1", "node2", Proto::Tcp, 80));
            assert!(!reached(m, "node2", "node1", Proto::Icmp, 0));
            // Workload traffic is not host traffic.
            assert!(reached(m, &b2, &a1, Proto::Tcp, 80));
            assert!(reached(m, &a1, &b2, Proto::Udp, 81));
        },
    );
    let allow80 = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n\
        metadata: {name: any-iface-allow-80}\n\
        spec:\n  selector: role == 'any-iface'\n  types: [Ingress]\n\
        \x20 ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [80]}\n";
    apply(
        &hc,
        "all-interfaces host endpoint allows TCP 80 in",
        allow80,
        |m| {
            assert!(reached(m, "node2", "node1", Proto::Tcp, 80));
            assert!(!reached(m, "node2", "node1", Proto::Tcp, 81));
            assert!(!reached(m, "node1", "node2", Proto::Tcp, 80));
        },
    );
    delete(&hc, allow80);
    delete(&hc, wildcard);
    hc.wait_for_expected("all-interfaces host endpoint deleted", CONVERGE)
        .unwrap();
}

/// A failsafe entry with a `net` opens its port to that net only (Felix's
/// `failsafeInChain`: `-s <net>`), and a FelixConfiguration change reaches running agents
/// (Felix restarts itself for it; ours reprograms the table in place).
#[test]
fn failsafe_port_for_one_net_applies_without_a_restart() {
    if !require_root() {
        return;
    }
    let mut hc = HostPolicyCluster::start().unwrap();
    let b2 = pod_on(&hc, "node2");
    apply(&hc, "host endpoint without policy", HEP_NODE1, |m| {
        assert!(!reached(m, "node2", "node1", Proto::Tcp, 81));
    });
    calicoctl(
        &hc.pc.store(),
        &[
            "patch",
            "felixconfiguration",
            "default",
            "-p",
            r#"{"spec": {"failsafeInboundHostPorts": [{"protocol": "TCP", "port": 22}, {"protocol": "TCP", "port": 179}, {"protocol": "TCP", "port": 81, "net": "10.200.0.2/32"}]}}"#,
        ],
    )
    .unwrap();
    let open = |port: u16, net: Option<&str>| ProtoPort {
        protocol: 6,
        port,
        net: net.map(|n| n.parse().unwrap()),
    };
    hc.config.failsafe_inbound = vec![
        open(22, None),
        open(179, None),
        open(81, Some("10.200.0.2/32")),
    ];
    let m = expected(&hc, "failsafe tcp:81 from node2's address only");
    assert!(reached(&m, "node2", "node1", Proto::Tcp, 81));
    assert!(
        !reached(&m, &b2, "node1", Proto::Tcp, 81),
        "node2's pod is not in the net"
    );
    assert!(reached(&m, "node2", "node1", Proto::Tcp, 22));
    assert!(mesh_established(&hc), "tcp:179 still open");
}

/// A host endpoint without an interface name governs the interface holding one of its
/// expected IPs (Felix's `resolveHostEndpoints`): here node1's fabric interface, found by its
/// address 10.200.0.1, policed exactly like an endpoint naming `eth0`.
#[test]
fn host_endpoint_found_by_its_expected_ip() {
    if !require_root() {
        return;
    }
    let hc = HostPolicyCluster::start().unwrap();
    let (a1, b2) = (pod_on(&hc, "node1"), pod_on(&hc, "node2"));
    let by_ip = "apiVersion: projectcalico.org/v3\nkind: HostEndpoint\n\
        metadata:\n  name: node1-by-ip\n  labels: {role: fabric, host: node1}\n\
        spec:\n  node: node1\n  expectedIPs: [10.200.0.1]\n";
    apply(&hc, "host endpoint found by its expected IP", by_ip, |m| {
        assert!(
            reached(m, "node2", "node1", Proto::Tcp, 22),
            "failsafe tcp:22"
        );
        assert!(!reached(m, "node2", "node1", Proto::Tcp, 80));
        assert!(!reached(m, "node1", "node2", Proto::Tcp, 80));
        assert!(reached(m, &b2, &a1, Proto::Tcp, 80));
    });
    let table = hc.nft_table(0).unwrap();
    assert!(table.contains("th-eth0"), "{table}");
    delete(&hc, by_ip);
    hc.wait_for_expected("host endpoint deleted", CONVERGE)
        .unwrap();
}
