//! BGPConfiguration and BGPPeer cases.
//!
//! Values from validator_test.go: ipv4_1 = 1.2.3.4, ipv4_2 = 100.200.0.0, ipv6_1 =
//! aabb:aabb::ffff, ipv6_2 = aabb::abcd, peerv4_1 = 9.9.9.9:4444, peerv6_1 = [aabb::ffff]:4444,
//! bad_ipv4_1 = 999.999.999.999, bad_ipv6_1 = xyz:::, as61234 = 61234.

use super::{Case, Invalid, Valid, run_table};

macro_rules! cfg {
    ($spec:literal) => {
        concat!("metadata: {name: default}\nspec: ", $spec)
    };
}
macro_rules! peer {
    ($spec:literal) => {
        concat!("metadata: {name: test-peer}\nspec: ", $spec)
    };
}

pub const CONFIG_CASES: &[Case] = &[
    (
        "should accept a valid BGP logging level: Info",
        "BGPConfiguration",
        cfg!("{logSeverityScreen: Info}"),
        Valid,
    ),
    (
        "should accept a lowercase BGP logging level: info",
        "BGPConfiguration",
        cfg!("{logSeverityScreen: info}"),
        Valid,
    ),
    (
        "should accept an uppercase BGP logging level: INFO",
        "BGPConfiguration",
        cfg!("{logSeverityScreen: INFO}"),
        Valid,
    ),
    (
        "should reject an invalid BGP logging level: invalidLvl",
        "BGPConfiguration",
        cfg!("{logSeverityScreen: invalidLvl}"),
        Invalid("spec.logSeverityScreen"),
    ),
    (
        "should accept a valid BGP clusterIPs: 1.2.3.4",
        "BGPConfiguration",
        cfg!("{serviceClusterIPs: [{cidr: 1.2.3.4}]}"),
        Valid,
    ),
    (
        "should accept a valid BGP externalIPs: 8.8.8.8",
        "BGPConfiguration",
        cfg!("{serviceExternalIPs: [{cidr: 8.8.8.8}]}"),
        Valid,
    ),
    (
        "should reject invalid BGP clusterIPs: x.x.x.x",
        "BGPConfiguration",
        cfg!("{serviceClusterIPs: [{cidr: x.x.x.x}]}"),
        Invalid("spec.serviceClusterIPs[0].cidr"),
    ),
    (
        "should reject invalid BGP externalIPs: x.x.x.x",
        "BGPConfiguration",
        cfg!("{serviceExternalIPs: [{cidr: y.y.y.y}]}"),
        Invalid("spec.serviceExternalIPs[0].cidr"),
    ),
    (
        "should accept valid IPv6 BGP clusterIP",
        "BGPConfiguration",
        cfg!("{serviceClusterIPs: [{cidr: 'fdf5:1234::102:304'}]}"),
        Valid,
    ),
    (
        "should accept valid IPv6 BGP externalIP",
        "BGPConfiguration",
        cfg!("{serviceExternalIPs: [{cidr: 'fdf5:1234::808:808'}]}"),
        Valid,
    ),
    (
        "should accept a node mesh BGP password if node to node mesh is enabled",
        "BGPConfiguration",
        cfg!(
            "{nodeToNodeMeshEnabled: true, nodeMeshPassword: {secretKeyRef: {name: test-secret, key: bgp-password}}}"
        ),
        Valid,
    ),
    (
        "should reject a node mesh BGP password if node to node mesh is disabled",
        "BGPConfiguration",
        cfg!(
            "{nodeToNodeMeshEnabled: false, nodeMeshPassword: {secretKeyRef: {name: test-secret, key: bgp-password}}}"
        ),
        Invalid("spec.nodeMeshPassword"),
    ),
    (
        "should accept a node mesh max restart time if node to node mesh is enabled",
        "BGPConfiguration",
        cfg!("{nodeToNodeMeshEnabled: true, nodeMeshMaxRestartTime: 200s}"),
        Valid,
    ),
    (
        "should reject a node mesh max restart time if node to node mesh is disabled",
        "BGPConfiguration",
        cfg!("{nodeToNodeMeshEnabled: false, nodeMeshMaxRestartTime: 200s}"),
        Invalid("spec.nodeMeshMaxRestartTime"),
    ),
    (
        "should accept valid interface names",
        "BGPConfiguration",
        cfg!("{ignoredInterfaces: ['valid_iface*', interface_name]}"),
        Valid,
    ),
    (
        "should reject invalid interface name",
        "BGPConfiguration",
        cfg!("{ignoredInterfaces: ['*']}"),
        Invalid("spec.ignoredInterfaces[0]"),
    ),
    (
        "should not accept community when PrefixAdvertisement is empty",
        "BGPConfiguration",
        cfg!("{communities: [{name: community-test, value: '101:5695'}]}"),
        Invalid("spec.communities"),
    ),
    (
        "should not accept communities with value and without name",
        "BGPConfiguration",
        cfg!(
            "{communities: [{value: '536:785'}], prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:100']}]}"
        ),
        Invalid("spec.communities[0].name"),
    ),
    (
        "should not accept communities with name and without value",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: community-test}], prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:100']}]}"
        ),
        Invalid("spec.communities[0].value"),
    ),
    (
        "should accept communities with name and standard BGP community value",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: community-test, value: '100:520'}], prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:100']}]}"
        ),
        Valid,
    ),
    (
        "should accept communities with name and large BGP community value",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: community-test, value: '100:520:56'}], prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:100']}]}"
        ),
        Valid,
    ),
    (
        "should not accept communities with name and invalid community value/format (100)",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: community-test, value: '100'}], prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:100']}]}"
        ),
        Invalid("spec.communities[0].value"),
    ),
    (
        "should not accept communities with name and invalid community value/format (ab-n)",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: community-test, value: ab-n}], prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:100']}]}"
        ),
        Invalid("spec.communities[0].value"),
    ),
    (
        "should not accept communities with name and invalid standard community value(> 16 bit)",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: community-test, value: '65536:999999'}], prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:100']}]}"
        ),
        Invalid("spec.communities[0].value"),
    ),
    (
        "should not accept communities with name and invalid large community value(> 32 bit)",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: community-test, value: '4147483647:999999'}], prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:100']}]}"
        ),
        Invalid("spec.communities[0].value"),
    ),
    (
        "should not accept communities without CIDR in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!("{prefixAdvertisements: [{communities: ['100:5964']}]}"),
        Invalid("spec.prefixAdvertisements[0].cidr"),
    ),
    (
        "should not accept CIDR without communities in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!("{prefixAdvertisements: [{cidr: 192.168.10.0/28}]}"),
        Invalid("spec.prefixAdvertisements[0].communities"),
    ),
    (
        "should accept IPv4 CIDR in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!("{prefixAdvertisements: [{cidr: 192.168.10.0/28, communities: ['100:5964:50']}]}"),
        Valid,
    ),
    (
        "should accept IPv6 CIDR in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!("{prefixAdvertisements: [{cidr: '2001:4860::/128', communities: ['100:5964:50']}]}"),
        Valid,
    ),
    (
        "should accept standard BGP community value in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!(
            "{prefixAdvertisements: [{cidr: '2001:4860::/128', communities: ['100:5964', '200:594']}]}"
        ),
        Valid,
    ),
    (
        "should accept large BGP community value in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!(
            "{prefixAdvertisements: [{cidr: '2001:4860::/128', communities: ['100:5964:1147483647']}]}"
        ),
        Valid,
    ),
    (
        "should not accept invalid standard community value(> 16 bit) in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!(
            "{prefixAdvertisements: [{cidr: '2001:4860::/128', communities: ['100:1147483647']}]}"
        ),
        Invalid("spec.prefixAdvertisements[0].communities[0]"),
    ),
    (
        "should not accept invalid large community value(> 32 bit) in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!(
            "{prefixAdvertisements: [{cidr: '2001:4860::/128', communities: ['100:100:5147483647']}]}"
        ),
        Invalid("spec.prefixAdvertisements[0].communities[0]"),
    ),
    (
        "should accept combination of large and standard BGP community value in PrefixAdvertisement",
        "BGPConfiguration",
        cfg!(
            "{prefixAdvertisements: [{cidr: '2001:4860::/128', communities: ['100:5964:1147483647', '100:5223']}]}"
        ),
        Valid,
    ),
    (
        "should not accept community name that is not defined",
        "BGPConfiguration",
        cfg!(
            "{prefixAdvertisements: [{cidr: '2001:4860::/128', communities: [nonexistent-community]}]}"
        ),
        Invalid("spec.prefixAdvertisements[0].communities[0]"),
    ),
    (
        "should accept community name whose values are defined",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: community-test, value: '101:5695'}], prefixAdvertisements: [{cidr: '2001:4860::/128', communities: [community-test, '8988:202']}]}"
        ),
        Valid,
    ),
    (
        "should accept IPv4 and IPv6 in LocalWorkloadPeeringIPV4 and LocalWorkloadPeeringIPV6",
        "BGPConfiguration",
        cfg!("{localWorkloadPeeringIPV4: 1.2.3.4, localWorkloadPeeringIPV6: 'aabb:aabb::ffff'}"),
        Valid,
    ),
    (
        "should not accept an invalid IPv4 in LocalWorkloadPeeringIPV4",
        "BGPConfiguration",
        cfg!("{localWorkloadPeeringIPV4: 999.999.999.999}"),
        Invalid("spec.localWorkloadPeeringIPV4"),
    ),
    (
        "should not accept an invalid IPv6 in LocalWorkloadPeeringIPV6",
        "BGPConfiguration",
        cfg!("{localWorkloadPeeringIPV6: 'xyz:::'}"),
        Invalid("spec.localWorkloadPeeringIPV6"),
    ),
    // crd_validation_test.go TestCRDDefaults_BGPConfiguration: an empty spec is valid (and
    // defaulted, checked in the round-trip tests).
    (
        "empty default BGPConfiguration",
        "BGPConfiguration",
        "metadata: {name: default}\nspec: {}",
        Valid,
    ),
    // Further schema / CEL / clientv3 rules.
    (
        "accepts asdot AS number",
        "BGPConfiguration",
        cfg!("{asNumber: '1.10'}"),
        Valid,
    ),
    (
        "rejects an AS number over 32 bits",
        "BGPConfiguration",
        cfg!("{asNumber: 4294967296}"),
        Invalid("spec.asNumber"),
    ),
    (
        "rejects listenPort 0x10000",
        "BGPConfiguration",
        cfg!("{listenPort: 65536}"),
        Invalid("spec.listenPort"),
    ),
    (
        "accepts listenPort 1790",
        "BGPConfiguration",
        cfg!("{listenPort: 1790}"),
        Valid,
    ),
    (
        "rejects bindMode nodeip (lower case)",
        "BGPConfiguration",
        cfg!("{bindMode: nodeip}"),
        Invalid("spec.bindMode"),
    ),
    (
        "accepts bindMode NodeIP",
        "BGPConfiguration",
        cfg!("{bindMode: NodeIP}"),
        Valid,
    ),
    (
        "rejects an unknown programClusterRoutes",
        "BGPConfiguration",
        cfg!("{programClusterRoutes: Sometimes}"),
        Invalid("spec.programClusterRoutes"),
    ),
    (
        "accepts programClusterRoutes EnabledIPIPOnly",
        "BGPConfiguration",
        cfg!("{programClusterRoutes: EnabledIPIPOnly}"),
        Valid,
    ),
    (
        "rejects serviceLoadBalancerAggregation off",
        "BGPConfiguration",
        cfg!("{serviceLoadBalancerAggregation: off}"),
        Invalid("spec.serviceLoadBalancerAggregation"),
    ),
    (
        "rejects ipv4NormalRoutePriority 0",
        "BGPConfiguration",
        cfg!("{ipv4NormalRoutePriority: 0}"),
        Invalid("spec.ipv4NormalRoutePriority"),
    ),
    (
        "accepts ipv6NormalRoutePriority 2147483646",
        "BGPConfiguration",
        cfg!("{ipv6NormalRoutePriority: 2147483646}"),
        Valid,
    ),
    (
        "rejects an unmasked service cluster CIDR",
        "BGPConfiguration",
        cfg!("{serviceClusterIPs: [{cidr: 10.96.0.1/12}]}"),
        Invalid("spec.serviceClusterIPs[0].cidr"),
    ),
    (
        "rejects a malformed duration",
        "BGPConfiguration",
        cfg!("{nodeMeshMaxRestartTime: 2 minutes}"),
        Invalid("spec.nodeMeshMaxRestartTime"),
    ),
    (
        "rejects duplicate ignored interfaces",
        "BGPConfiguration",
        cfg!("{ignoredInterfaces: [eth0, eth0]}"),
        Invalid("spec.ignoredInterfaces[1]"),
    ),
    (
        "rejects asNumber on a per-node BGPConfiguration",
        "BGPConfiguration",
        "metadata: {name: node.node1}\nspec: {asNumber: 64513}",
        Invalid("spec.asNumber"),
    ),
    (
        "rejects nodeToNodeMeshEnabled on a per-node BGPConfiguration",
        "BGPConfiguration",
        "metadata: {name: node.node1}\nspec: {nodeToNodeMeshEnabled: false}",
        Invalid("spec.nodeToNodeMeshEnabled"),
    ),
    (
        "rejects serviceClusterIPs on a per-node BGPConfiguration",
        "BGPConfiguration",
        "metadata: {name: node.node1}\nspec: {serviceClusterIPs: [{cidr: 10.96.0.0/12}]}",
        Invalid("spec.serviceClusterIPs"),
    ),
    (
        "accepts logSeverityScreen and listenPort on a per-node BGPConfiguration",
        "BGPConfiguration",
        "metadata: {name: node.node1}\nspec: {logSeverityScreen: Debug, listenPort: 1790}",
        Valid,
    ),
    // crd_validation_test.go TestCRDValidation_BGPConfiguration / _Communities
    (
        "nodeMeshPassword with nodeToNodeMeshEnabled false fails",
        "BGPConfiguration",
        cfg!("{nodeToNodeMeshEnabled: false, nodeMeshPassword: {}}"),
        Invalid("spec.nodeMeshPassword"),
    ),
    (
        "nodeMeshMaxRestartTime with nodeToNodeMeshEnabled false fails",
        "BGPConfiguration",
        cfg!("{nodeToNodeMeshEnabled: false, nodeMeshMaxRestartTime: 120s}"),
        Invalid("spec.nodeMeshMaxRestartTime"),
    ),
    (
        "nodeMeshPassword with nodeToNodeMeshEnabled true passes",
        "BGPConfiguration",
        cfg!("{nodeToNodeMeshEnabled: true, nodeMeshPassword: {}}"),
        Valid,
    ),
    (
        "communities without prefixAdvertisements fails",
        "BGPConfiguration",
        cfg!("{communities: [{name: my-community, value: '65001:100'}]}"),
        Invalid("spec.communities"),
    ),
    (
        "communities with prefixAdvertisements passes",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: my-community, value: '65001:100'}], prefixAdvertisements: [{cidr: 10.0.0.0/24, communities: [my-community]}]}"
        ),
        Valid,
    ),
    (
        "prefixAdvertisement referencing undefined community fails",
        "BGPConfiguration",
        cfg!(
            "{communities: [{name: my-community, value: '65001:100'}], prefixAdvertisements: [{cidr: 10.0.0.0/24, communities: [other-community]}]}"
        ),
        Invalid("spec.prefixAdvertisements[0].communities[0]"),
    ),
    (
        "prefixAdvertisement using inline community value passes",
        "BGPConfiguration",
        cfg!("{prefixAdvertisements: [{cidr: 10.0.0.0/24, communities: ['65001:100']}]}"),
        Valid,
    ),
];

pub const PEER_CASES: &[Case] = &[
    (
        "should accept valid BGPPeerSpec",
        "BGPPeer",
        peer!("{peerIP: 1.2.3.4}"),
        Valid,
    ),
    (
        "should reject invalid BGPPeerSpec (IPv4)",
        "BGPPeer",
        peer!("{peerIP: 999.999.999.999}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject invalid BGPPeerSpec (IPv6)",
        "BGPPeer",
        peer!("{peerIP: 'xyz:::'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with both Node and NodeSelector",
        "BGPPeer",
        peer!("{node: my-node, nodeSelector: has(mylabel)}"),
        Invalid("spec.nodeSelector"),
    ),
    (
        "should reject BGPPeerSpec with both PeerIP and PeerSelector",
        "BGPPeer",
        peer!("{peerIP: 1.2.3.4, peerSelector: has(mylabel)}"),
        Invalid("spec.peerSelector"),
    ),
    (
        "should reject BGPPeerSpec with both ASNumber and PeerSelector",
        "BGPPeer",
        peer!("{asNumber: 61234, peerSelector: has(mylabel)}"),
        Invalid("spec.asNumber"),
    ),
    (
        "should accept BGPPeerSpec with NodeSelector and PeerSelector",
        "BGPPeer",
        peer!("{nodeSelector: has(mylabel), peerSelector: has(mylabel)}"),
        Valid,
    ),
    (
        "should reject BGPPeerSpec with LocalWorkloadSelector and empty ASNumber",
        "BGPPeer",
        peer!("{localWorkloadSelector: has(labelone)}"),
        Invalid("spec.asNumber"),
    ),
    (
        "should reject BGPPeerSpec with both LocalWorkloadSelector and PeerSelector",
        "BGPPeer",
        peer!(
            "{localWorkloadSelector: has(labelone), peerSelector: has(labeltwo), asNumber: 61234}"
        ),
        Invalid("spec.peerSelector"),
    ),
    (
        "should reject BGPPeerSpec with both LocalWorkloadSelector and PeerIP",
        "BGPPeer",
        peer!("{localWorkloadSelector: has(labelone), peerIP: 1.2.3.4, asNumber: 61234}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with both positive KeepOriginalNextHop and non-empty NextHopMode",
        "BGPPeer",
        peer!("{keepOriginalNextHop: true, nextHopMode: Auto}"),
        Invalid("spec.nextHopMode"),
    ),
    (
        "should reject BGPPeer with ReachableBy but without PeerIP",
        "BGPPeer",
        peer!("{reachableBy: 100.200.0.0}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "should reject BGPPeer with ReachableBy (IPv6) but without PeerIP",
        "BGPPeer",
        peer!("{reachableBy: 'aabb::abcd'}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "should accept BGPPeer with ReachableBy and PeerIP",
        "BGPPeer",
        peer!("{peerIP: '9.9.9.9:4444', reachableBy: 1.2.3.4}"),
        Valid,
    ),
    (
        "should accept BGPPeer with ReachableBy (IPv6) and PeerIP (IPv6)",
        "BGPPeer",
        peer!("{peerIP: '[aabb::ffff]:4444', reachableBy: 'aabb:aabb::ffff'}"),
        Valid,
    ),
    (
        "should reject BGPPeer with invalid ReachableBy",
        "BGPPeer",
        peer!("{peerIP: '9.9.9.9:4444', reachableBy: 999.999.999.999}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "should reject BGPPeer with invalid ReachableBy (IPv6)",
        "BGPPeer",
        peer!("{peerIP: '[aabb::ffff]:4444', reachableBy: 'xyz:::'}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "should reject BGPPeer with mismatched family address of ReachableBy and PeerIP",
        "BGPPeer",
        peer!("{peerIP: 1.2.3.4, reachableBy: 'aabb:aabb::ffff'}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "should reject BGPPeer with mismatched family address of ReachableBy and PeerIP:Port",
        "BGPPeer",
        peer!("{peerIP: '9.9.9.9:4444', reachableBy: 'aabb:aabb::ffff'}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "should reject BGPPeer with mismatched family address of ReachableBy and PeerIP (IPv6)",
        "BGPPeer",
        peer!("{peerIP: 'aabb:aabb::ffff', reachableBy: 1.2.3.4}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "should reject BGPPeer with mismatched family address of ReachableBy and PeerIP:Port (IPv6)",
        "BGPPeer",
        peer!("{peerIP: '[aabb::ffff]:4444', reachableBy: 1.2.3.4}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "should accept BGPPeerSpec with Password",
        "BGPPeer",
        peer!(
            "{peerIP: 1.2.3.4, password: {secretKeyRef: {name: tigera-bgp-passwords, key: my-peering}}}"
        ),
        Valid,
    ),
    (
        "should reject invalid BGPPeerSpec (selector)",
        "BGPPeer",
        peer!("{nodeSelector: \"kubernetes.io/hostname: == 'casey-crc-kadm-node-4'\"}"),
        Invalid("spec.nodeSelector"),
    ),
    (
        "should accept BGPPeerSpec with port in PeerIP (IPv4)",
        "BGPPeer",
        peer!("{peerIP: '192.168.1.1:500'}"),
        Valid,
    ),
    (
        "should accept BGPPeerSpec with port in PeerIP (IPv6)",
        "BGPPeer",
        peer!("{peerIP: '[9000::]:500'}"),
        Valid,
    ),
    (
        "should reject BGPPeerSpec with invalid port in PeerIP (IPv4) [bracketed]",
        "BGPPeer",
        peer!("{peerIP: '[192.168.0.0]:98956'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with invalid port in PeerIP (IPv4) 65536",
        "BGPPeer",
        peer!("{peerIP: '192.168.0.0:65536'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with invalid port in PeerIP (IPv4) 0",
        "BGPPeer",
        peer!("{peerIP: '192.168.0.0:0'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with invalid IP in PeerIP (IPv4)",
        "BGPPeer",
        peer!("{peerIP: '192.168.0.330:170'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with invalid port in PeerIP (IPv6) 98956",
        "BGPPeer",
        peer!("{peerIP: '[9000::]:98956'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject invalid BGPPeerSpec without port set in PeerIP (IPv4)",
        "BGPPeer",
        peer!("{peerIP: '192.168.0.0:'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject invalid BGPPeerSpec without port set in PeerIP (IPv6)",
        "BGPPeer",
        peer!("{peerIP: '[9000::]:'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with invalid port in PeerIP (IPv6) 65536",
        "BGPPeer",
        peer!("{peerIP: '[9000::]:65536'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with invalid port in PeerIP (IPv6) 0",
        "BGPPeer",
        peer!("{peerIP: '[9000::]:0'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject BGPPeerSpec with invalid IP in PeerIP (IPv6)",
        "BGPPeer",
        peer!("{peerIP: '[9000::FFFFF]:170'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject invalid BGPPeerSpec when port is set with empty IP in PeerIP (IPv4)",
        "BGPPeer",
        peer!("{peerIP: ':8552'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "should reject invalid BGPPeerSpec when port is set with empty IP in PeerIP (IPv6)",
        "BGPPeer",
        peer!("{peerIP: '[]:8552'}"),
        Invalid("spec.peerIP"),
    ),
    (
        "BGPPeer with valid SourceAddress UseNodeIP",
        "BGPPeer",
        peer!("{sourceAddress: UseNodeIP}"),
        Valid,
    ),
    (
        "BGPPeer with valid SourceAddress None",
        "BGPPeer",
        peer!("{sourceAddress: None}"),
        Valid,
    ),
    (
        "BGPPeer with invalid SourceAddress",
        "BGPPeer",
        peer!("{sourceAddress: rubbish}"),
        Invalid("spec.sourceAddress"),
    ),
    (
        "BGPPeer with valid MaxRestartTime",
        "BGPPeer",
        peer!("{maxRestartTime: 10s}"),
        Valid,
    ),
    // crd_validation_test.go TestCRDValidation_BGPPeer / _ASNumber / _CrossField
    (
        "valid nextHopMode passes",
        "BGPPeer",
        peer!("{nextHopMode: Auto}"),
        Valid,
    ),
    (
        "invalid nextHopMode fails enum",
        "BGPPeer",
        peer!("{nextHopMode: Invalid}"),
        Invalid("spec.nextHopMode"),
    ),
    (
        "localWorkloadSelector with asNumber passes",
        "BGPPeer",
        peer!("{localWorkloadSelector: \"color == 'red'\", asNumber: 65401}"),
        Valid,
    ),
    (
        "localWorkloadSelector without asNumber fails",
        "BGPPeer",
        peer!("{localWorkloadSelector: \"color == 'red'\"}"),
        Invalid("spec.asNumber"),
    ),
    (
        "peerSelector with asNumber fails",
        "BGPPeer",
        peer!("{peerSelector: has(label), asNumber: 65401}"),
        Invalid("spec.asNumber"),
    ),
    (
        "node and nodeSelector both set fails",
        "BGPPeer",
        peer!("{node: node1, nodeSelector: has(label)}"),
        Invalid("spec.nodeSelector"),
    ),
    (
        "peerIP and peerSelector both set fails",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, peerSelector: has(label)}"),
        Invalid("spec.peerSelector"),
    ),
    (
        "localWorkloadSelector with peerIP fails",
        "BGPPeer",
        peer!("{localWorkloadSelector: \"color == 'red'\", asNumber: 65401, peerIP: 10.0.0.1}"),
        Invalid("spec.peerIP"),
    ),
    (
        "localWorkloadSelector with peerSelector fails",
        "BGPPeer",
        peer!(
            "{localWorkloadSelector: \"color == 'red'\", asNumber: 65401, peerSelector: has(label)}"
        ),
        Invalid("spec.peerSelector"),
    ),
    (
        "valid node and peerIP passes",
        "BGPPeer",
        peer!("{node: node1, peerIP: 10.0.0.1}"),
        Valid,
    ),
    (
        "reachableBy without peerIP fails",
        "BGPPeer",
        peer!("{reachableBy: 10.0.0.254}"),
        Invalid("spec.reachableBy"),
    ),
    (
        "reachableBy with peerIP passes",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, asNumber: 64512, reachableBy: 10.0.0.254}"),
        Valid,
    ),
    (
        "keepOriginalNextHop with nextHopMode fails",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, asNumber: 64512, keepOriginalNextHop: true, nextHopMode: Self}"),
        Invalid("spec.nextHopMode"),
    ),
    (
        "keepOriginalNextHop alone passes",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, asNumber: 64512, keepOriginalNextHop: true}"),
        Valid,
    ),
    (
        "nextHopMode alone passes",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, asNumber: 64512, nextHopMode: Keep}"),
        Valid,
    ),
    // Further schema rules.
    (
        "rejects an invalid node name",
        "BGPPeer",
        peer!("{node: Node_1, peerIP: 10.0.0.1}"),
        Invalid("spec.node"),
    ),
    (
        "rejects reversePeering auto (lower case)",
        "BGPPeer",
        peer!("{peerSelector: has(rr), reversePeering: auto}"),
        Invalid("spec.reversePeering"),
    ),
    (
        "accepts reversePeering Manual",
        "BGPPeer",
        peer!("{peerSelector: has(rr), reversePeering: Manual}"),
        Valid,
    ),
    (
        "rejects ttlSecurity over 255",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, ttlSecurity: 256}"),
        Invalid("spec.ttlSecurity"),
    ),
    (
        "accepts a full external peering",
        "BGPPeer",
        peer!(
            "{nodeSelector: \"rack == 'rack1'\", peerIP: 10.0.0.1, asNumber: '1.10', localASNumber: 64999, sourceAddress: None, keepaliveTime: 30s, maxRestartTime: 2m, numAllowedLocalASNumbers: 2, ttlSecurity: 1, filters: [export-only], reversePeering: Auto}"
        ),
        Valid,
    ),
    (
        "rejects a bad filter name",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, filters: [Bad_Filter]}"),
        Invalid("spec.filters[0]"),
    ),
    (
        "rejects a password without a key",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, password: {secretKeyRef: {name: s}}}"),
        Invalid("spec.password.secretKeyRef.key"),
    ),
    (
        "rejects an unknown peer field",
        "BGPPeer",
        peer!("{peerIP: 10.0.0.1, peerASNumber: 1}"),
        Invalid("spec"),
    ),
];

#[test]
fn bgp_configuration_table() {
    run_table("bgpconfiguration", CONFIG_CASES);
}

#[test]
fn bgp_peer_table() {
    run_table("bgppeer", PEER_CASES);
}
