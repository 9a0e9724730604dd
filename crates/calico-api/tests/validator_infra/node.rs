//! Node and CalicoNodeStatus cases. Calico's table validates bare `NodeSpec` / `NodeStatus`
//! structs; they are wrapped in a Node named `node1` here. netv4_1 = 1.2.3.4/32,
//! netv6_1 = aabb:aabb::ffff/128.

use super::{Case, Invalid, Valid, run_table};

macro_rules! node {
    ($spec:literal) => {
        concat!("metadata: {name: node1}\nspec: ", $spec)
    };
}

pub const CASES: &[Case] = &[
    (
        "should accept node with IPv4 BGP",
        "Node",
        node!("{bgp: {ipv4Address: 1.2.3.4/32}}"),
        Valid,
    ),
    (
        "should accept node with IPv6 BGP",
        "Node",
        node!("{bgp: {ipv6Address: 'aabb:aabb::ffff/128'}}"),
        Valid,
    ),
    (
        "should accept node with tunnel IP in BGP",
        "Node",
        node!("{bgp: {ipv4IPIPTunnelAddr: 10.0.0.1}}"),
        Valid,
    ),
    ("should accept node with no BGP", "Node", node!("{}"), Valid),
    (
        "should reject node with an empty BGP",
        "Node",
        node!("{bgp: {}}"),
        Invalid("spec.bgp"),
    ),
    (
        "should reject node with IPv6 address in IPv4 field",
        "Node",
        node!("{bgp: {ipv4Address: 'aabb:aabb::ffff/128'}}"),
        Invalid("spec.bgp.ipv4Address"),
    ),
    (
        "should reject node with IPv4 address in IPv6 field",
        "Node",
        node!("{bgp: {ipv6Address: 1.2.3.4/32}}"),
        Invalid("spec.bgp.ipv6Address"),
    ),
    (
        "should reject node with bad RR cluster ID #1",
        "Node",
        node!("{bgp: {ipv4Address: 1.2.3.4/32, routeReflectorClusterID: abcdef}}"),
        Invalid("spec.bgp.routeReflectorClusterID"),
    ),
    (
        "should reject node with bad RR cluster ID #2",
        "Node",
        node!("{bgp: {ipv4Address: 1.2.3.4/32, routeReflectorClusterID: 300.34.3.1}}"),
        Invalid("spec.bgp.routeReflectorClusterID"),
    ),
    (
        "should accept node with good RR cluster ID",
        "Node",
        node!("{bgp: {ipv4Address: 1.2.3.4/32, routeReflectorClusterID: 245.0.0.1}}"),
        Valid,
    ),
    (
        "should allow valid Wireguard public-key",
        "Node",
        "metadata: {name: node1}\nstatus: {wireguardPublicKey: jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY=}",
        Valid,
    ),
    (
        "should allow valid IP address on Wireguard config",
        "Node",
        node!("{wireguard: {interfaceIPv4Address: 1.2.3.4}}"),
        Valid,
    ),
    (
        "should reject invalid IP address on Wireguard config",
        "Node",
        node!("{wireguard: {interfaceIPv4Address: foo.bar}}"),
        Invalid("spec.wireguard.interfaceIPv4Address"),
    ),
    (
        "should reject invalid Wireguard public-key",
        "Node",
        "metadata: {name: node1}\nstatus: {wireguardPublicKey: foobar}",
        Invalid("status.wireguardPublicKey"),
    ),
    // Further field tags of internalapi/node.go.
    (
        "accepts a node address in CIDR form with host bits",
        "Node",
        node!("{bgp: {ipv4Address: 10.0.0.5/24, asNumber: 64512}}"),
        Valid,
    ),
    (
        "accepts an asdot node AS number",
        "Node",
        node!("{bgp: {ipv4Address: 10.0.0.5/24, asNumber: '1.10'}}"),
        Valid,
    ),
    (
        "rejects a bad IPIP tunnel address",
        "Node",
        node!("{bgp: {ipv4IPIPTunnelAddr: 'fd00::1'}}"),
        Invalid("spec.bgp.ipv4IPIPTunnelAddr"),
    ),
    (
        "accepts VXLAN tunnel addresses and MACs",
        "Node",
        node!(
            "{ipv4VXLANTunnelAddr: 192.168.10.64, vxlanTunnelMACAddr: '66:cd:7a:39:c5:0b', ipv6VXLANTunnelAddr: 'fd00::1', vxlanTunnelMACAddrV6: '66:cd:7a:39:c5:0c'}"
        ),
        Valid,
    ),
    (
        "rejects an IPv6 VXLAN address in the IPv4 field",
        "Node",
        node!("{ipv4VXLANTunnelAddr: 'fd00::1'}"),
        Invalid("spec.ipv4VXLANTunnelAddr"),
    ),
    (
        "rejects a bad VXLAN MAC",
        "Node",
        node!("{vxlanTunnelMACAddr: '66:cd:7a:39:c5'}"),
        Invalid("spec.vxlanTunnelMACAddr"),
    ),
    (
        "rejects an IPv4 address in the IPv6 VXLAN field",
        "Node",
        node!("{ipv6VXLANTunnelAddr: 10.0.0.1}"),
        Invalid("spec.ipv6VXLANTunnelAddr"),
    ),
    (
        "accepts orchRefs",
        "Node",
        node!("{orchRefs: [{nodeName: k8s-node1, orchestrator: k8s}]}"),
        Valid,
    ),
    (
        "accepts addresses with types",
        "Node",
        node!(
            "{addresses: [{address: 10.0.0.5, type: InternalIP}, {address: 10.0.0.0/24, type: CalicoNodeIP}]}"
        ),
        Valid,
    ),
    (
        "rejects an address with an unknown type",
        "Node",
        node!("{addresses: [{address: 10.0.0.5, type: PodIP}]}"),
        Invalid("spec.addresses[0].type"),
    ),
    (
        "rejects an unmasked address CIDR (net tag)",
        "Node",
        node!("{addresses: [{address: 10.0.0.5/24}]}"),
        Invalid("spec.addresses[0].address"),
    ),
    (
        "rejects an invalid interface name",
        "Node",
        node!("{interfaces: [{name: Eth0, addresses: [10.0.0.5]}]}"),
        Invalid("spec.interfaces[0].name"),
    ),
    (
        "rejects a bad IPv6 WireGuard key",
        "Node",
        "metadata: {name: node1}\nstatus: {wireguardPublicKeyV6: 'not-a-key'}",
        Invalid("status.wireguardPublicKeyV6"),
    ),
    (
        "rejects an unknown node spec field",
        "Node",
        node!("{bgp: {ipv4Address: 10.0.0.5/24}, ipip: true}"),
        Invalid("spec"),
    ),
    // CalicoNodeStatus: `required` tags and the CRD enum on classes.
    (
        "accepts a node status request",
        "CalicoNodeStatus",
        "metadata: {name: my-caliconodestatus-1}\nspec: {node: my-node, classes: [Agent, BGP, Routes], updatePeriodSeconds: 10}",
        Valid,
    ),
    (
        "accepts updatePeriodSeconds 0 (stop updating)",
        "CalicoNodeStatus",
        "metadata: {name: s}\nspec: {node: my-node, classes: [BGP], updatePeriodSeconds: 0}",
        Valid,
    ),
    (
        "rejects a node status without node",
        "CalicoNodeStatus",
        "metadata: {name: s}\nspec: {classes: [BGP], updatePeriodSeconds: 10}",
        Invalid("spec.node"),
    ),
    (
        "rejects a node status without classes",
        "CalicoNodeStatus",
        "metadata: {name: s}\nspec: {node: node-a, updatePeriodSeconds: 10}",
        Invalid("spec.classes"),
    ),
    (
        "rejects a node status without period",
        "CalicoNodeStatus",
        "metadata: {name: s}\nspec: {node: node-a, classes: [BGP]}",
        Invalid("spec.updatePeriodSeconds"),
    ),
    (
        "rejects a period over a day",
        "CalicoNodeStatus",
        "metadata: {name: s}\nspec: {node: node-a, classes: [BGP], updatePeriodSeconds: 86401}",
        Invalid("spec.updatePeriodSeconds"),
    ),
    (
        "rejects an unknown class",
        "CalicoNodeStatus",
        "metadata: {name: s}\nspec: {node: node-a, classes: [Felix], updatePeriodSeconds: 10}",
        Invalid("spec.classes[0]"),
    ),
    (
        "rejects duplicate classes",
        "CalicoNodeStatus",
        "metadata: {name: s}\nspec: {node: node-a, classes: [BGP, BGP], updatePeriodSeconds: 10}",
        Invalid("spec.classes[1]"),
    ),
];

#[test]
fn node_table() {
    run_table("node", CASES);
}
