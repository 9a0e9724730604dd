//! The IPPool, BGPPeer and BGPConfiguration examples of calico-features.md §2.4: decoded,
//! defaulted as Calico's client does, validated, and re-encoded to the exact JSON Calico would
//! store (Go struct field order, `omitempty` fields dropped, defaults filled in).

#![allow(clippy::unwrap_used)]

use calico_api::decode::decode_and_validate;

const EXAMPLES: &str = r#"
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv4-ippool}
spec:
  cidr: 192.168.0.0/16
  blockSize: 26
  ipipMode: Always
  vxlanMode: Never
  natOutgoing: true
  nodeSelector: all()
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rack1-tor}
spec:
  nodeSelector: rack == 'rack1'
  peerIP: 10.0.0.1
  asNumber: 64513
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  logSeverityScreen: Info
  nodeToNodeMeshEnabled: true
  asNumber: 64512
  serviceClusterIPs: [{cidr: 10.96.0.0/12}]
"#;

const GOLDEN: &[&str] = &[
    r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"default-ipv4-ippool"},"spec":{"cidr":"192.168.0.0/16","vxlanMode":"Never","ipipMode":"Always","natOutgoing":true,"blockSize":26,"nodeSelector":"all()","allowedUses":["Workload","Tunnel"],"assignmentMode":"Automatic"}}"#,
    r#"{"apiVersion":"projectcalico.org/v3","kind":"BGPPeer","metadata":{"name":"rack1-tor"},"spec":{"nodeSelector":"rack == 'rack1'","peerIP":"10.0.0.1","asNumber":64513}}"#,
    r#"{"apiVersion":"projectcalico.org/v3","kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"logSeverityScreen":"Info","nodeToNodeMeshEnabled":true,"asNumber":64512,"serviceClusterIPs":[{"cidr":"10.96.0.0/12"}],"serviceLoadBalancerAggregation":"Enabled"}}"#,
];

#[test]
fn features_examples_round_trip_to_calico_json() {
    let resources = decode_and_validate("examples.yaml", EXAMPLES).unwrap();
    assert_eq!(resources.len(), GOLDEN.len());
    for (r, golden) in resources.iter().zip(GOLDEN) {
        let json = serde_json::to_string(&r.resource.to_json_value()).unwrap();
        assert_eq!(&json, golden);
        // The stored form decodes back to the same resource, and defaulting is idempotent.
        let again = decode_and_validate("stored.json", &json).unwrap();
        assert_eq!(again[0].resource, r.resource);
    }
}

#[test]
fn minimal_pool_is_filled_in_like_clientv3() {
    let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: v6}\nspec: {cidr: 'fd00:0:0:0::/48'}\n";
    let r = decode_and_validate("v6.yaml", text).unwrap();
    assert_eq!(
        serde_json::to_string(&r[0].resource.to_json_value()).unwrap(),
        r#"{"apiVersion":"projectcalico.org/v3","kind":"IPPool","metadata":{"name":"v6"},"spec":{"cidr":"fd00::/48","vxlanMode":"Never","ipipMode":"Never","blockSize":122,"nodeSelector":"all()","allowedUses":["Workload","Tunnel"],"assignmentMode":"Automatic"}}"#
    );
}

#[test]
fn asdot_and_durations_are_stored_in_go_form() {
    let text = "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: '[fd00::1]:1790', asNumber: '1.10', maxRestartTime: 90s, keepaliveTime: 1h}\n";
    let r = decode_and_validate("p.yaml", text).unwrap();
    assert_eq!(
        serde_json::to_string(&r[0].resource.to_json_value()).unwrap(),
        r#"{"apiVersion":"projectcalico.org/v3","kind":"BGPPeer","metadata":{"name":"p"},"spec":{"peerIP":"[fd00::1]:1790","asNumber":65546,"maxRestartTime":"1m30s","keepaliveTime":"1h0m0s"}}"#
    );
}

#[test]
fn felix_configuration_defaults_and_durations() {
    let text = "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {iptablesRefreshInterval: 90s, reportingTTL: 2h, failsafeInboundHostPorts: [], logSeverityScreen: Info}\n";
    let r = decode_and_validate("felix.yaml", text).unwrap();
    assert_eq!(
        serde_json::to_string(&r[0].resource.to_json_value()).unwrap(),
        r#"{"apiVersion":"projectcalico.org/v3","kind":"FelixConfiguration","metadata":{"name":"default"},"spec":{"iptablesRefreshInterval":"1m30s","logSeverityScreen":"Info","reportingTTL":"2h0m0s","failsafeInboundHostPorts":[],"nftablesMode":"Auto","nftablesFlowTableOffload":"Disabled","bpfLogLevel":"","bpfConnectTimeLoadBalancing":"TCP","bpfHostNetworkedNATWithoutCTLB":"Enabled","floatingIPs":"Disabled"}}"#
    );
}

#[test]
fn deprecated_ctlb_flag_is_mapped_like_clientv3() {
    let text = "apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n1}\nspec: {bpfConnectTimeLoadBalancingEnabled: false}\n";
    let r = decode_and_validate("felix.yaml", text).unwrap();
    let v = r[0].resource.to_json_value();
    assert_eq!(v["spec"]["bpfConnectTimeLoadBalancing"], "Disabled");
    assert_eq!(v["spec"]["bpfHostNetworkedNATWithoutCTLB"], "Disabled");
}

#[test]
fn kube_controllers_and_node_shapes() {
    let text = "apiVersion: projectcalico.org/v3\nkind: KubeControllersConfiguration\nmetadata: {name: default}\nspec: {controllers: {node: {syncLabels: Enabled}, loadBalancer: {}}}\n---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node1}\nspec: {bgp: {ipv4Address: 10.0.0.5/24, ipv4IPIPTunnelAddr: 192.168.0.1}}\n";
    let r = decode_and_validate("kcc.yaml", text).unwrap();
    assert_eq!(
        serde_json::to_string(&r[0].resource.to_json_value()).unwrap(),
        r#"{"apiVersion":"projectcalico.org/v3","kind":"KubeControllersConfiguration","metadata":{"name":"default"},"spec":{"healthChecks":"Enabled","prometheusMetricsPort":9094,"controllers":{"node":{"syncLabels":"Enabled","leakGracePeriod":"15m0s"},"loadBalancer":{"assignIPs":"AllServices"}}},"status":{}}"#
    );
    assert_eq!(
        serde_json::to_string(&r[1].resource.to_json_value()).unwrap(),
        r#"{"apiVersion":"projectcalico.org/v3","kind":"Node","metadata":{"name":"node1"},"spec":{"bgp":{"ipv4Address":"10.0.0.5/24","ipv4IPIPTunnelAddr":"192.168.0.1"}},"status":{}}"#
    );
}

#[test]
fn empty_spec_is_accepted_as_calicoctl_does() {
    // An empty `spec:` is YAML null; Go's decoder leaves the struct zero-valued.
    let text = "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec:\n";
    let r = decode_and_validate("bgp.yaml", text).unwrap();
    assert_eq!(
        serde_json::to_string(&r[0].resource.to_json_value()).unwrap(),
        r#"{"apiVersion":"projectcalico.org/v3","kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"logSeverityScreen":"Info","serviceLoadBalancerAggregation":"Enabled"}}"#
    );
}
