//! Golden etcd keys for every kind in the kinds table (Calico's `ResourceKey.defaultPath`,
//! calico-features.md §11).

#![allow(clippy::unwrap_used)]

use calico_client::keys::{identifier, list_prefix, parse_key, resource_key};

/// (kind, namespace, name, expected key). Written out by hand, not derived from the table.
const GOLDEN: &[(&str, &str, &str, &str)] = &[
    (
        "BGPConfiguration",
        "",
        "default",
        "/calico/resources/v3/projectcalico.org/bgpconfigurations/default",
    ),
    (
        "BGPFilter",
        "",
        "f1",
        "/calico/resources/v3/projectcalico.org/bgpfilters/f1",
    ),
    (
        "BGPPeer",
        "",
        "rack1-tor",
        "/calico/resources/v3/projectcalico.org/bgppeers/rack1-tor",
    ),
    (
        "CalicoNodeStatus",
        "",
        "node1",
        "/calico/resources/v3/projectcalico.org/caliconodestatuses/node1",
    ),
    (
        "ClusterInformation",
        "",
        "default",
        "/calico/resources/v3/projectcalico.org/clusterinformations/default",
    ),
    (
        "FelixConfiguration",
        "",
        "node.node1",
        "/calico/resources/v3/projectcalico.org/felixconfigurations/node.node1",
    ),
    (
        "GlobalNetworkPolicy",
        "",
        "block-metadata",
        "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/block-metadata",
    ),
    (
        "GlobalNetworkSet",
        "",
        "gns",
        "/calico/resources/v3/projectcalico.org/globalnetworksets/gns",
    ),
    (
        "HostEndpoint",
        "",
        "node1-eth0",
        "/calico/resources/v3/projectcalico.org/hostendpoints/node1-eth0",
    ),
    (
        "IPAMConfiguration",
        "",
        "default",
        "/calico/resources/v3/projectcalico.org/ipamconfigurations/default",
    ),
    (
        "IPPool",
        "",
        "default-ipv4-ippool",
        "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool",
    ),
    (
        "IPReservation",
        "",
        "r1",
        "/calico/resources/v3/projectcalico.org/ipreservations/r1",
    ),
    (
        "KubeControllersConfiguration",
        "",
        "default",
        "/calico/resources/v3/projectcalico.org/kubecontrollersconfigurations/default",
    ),
    (
        "NetworkPolicy",
        "prod",
        "allow-frontend",
        "/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-frontend",
    ),
    (
        "NetworkSet",
        "prod",
        "ns1",
        "/calico/resources/v3/projectcalico.org/networksets/prod/ns1",
    ),
    (
        "Node",
        "",
        "node1",
        "/calico/resources/v3/projectcalico.org/nodes/node1",
    ),
    (
        "Profile",
        "",
        "kns.default",
        "/calico/resources/v3/projectcalico.org/profiles/kns.default",
    ),
    (
        "StagedGlobalNetworkPolicy",
        "",
        "sg",
        "/calico/resources/v3/projectcalico.org/stagedglobalnetworkpolicies/sg",
    ),
    (
        "StagedKubernetesNetworkPolicy",
        "dev",
        "sk",
        "/calico/resources/v3/projectcalico.org/stagedkubernetesnetworkpolicies/dev/sk",
    ),
    (
        "StagedNetworkPolicy",
        "dev",
        "sn",
        "/calico/resources/v3/projectcalico.org/stagednetworkpolicies/dev/sn",
    ),
    (
        "Tier",
        "",
        "security",
        "/calico/resources/v3/projectcalico.org/tiers/security",
    ),
    (
        "WorkloadEndpoint",
        "default",
        "node1-k8s-nginx-eth0",
        "/calico/resources/v3/projectcalico.org/workloadendpoints/default/node1-k8s-nginx-eth0",
    ),
];

#[test]
fn every_kind_has_a_golden_key() {
    for ki in calico_api::all_kinds() {
        assert!(
            GOLDEN.iter().any(|g| g.0 == ki.kind),
            "kind {} has no golden key; add one",
            ki.kind
        );
    }
}

#[test]
fn golden_keys() {
    for (kind, ns, name, want) in GOLDEN {
        let ki = calico_api::kind_info(kind).unwrap();
        assert_eq!(&resource_key(ki, ns, name), want, "{kind}");
        assert_eq!(parse_key(ki, want), Some((*ns, *name)), "{kind} round trip");
    }
}

#[test]
fn list_prefixes_and_identifiers() {
    let np = calico_api::kind_info("NetworkPolicy").unwrap();
    let pool = calico_api::kind_info("IPPool").unwrap();
    assert_eq!(
        list_prefix(np, Some("prod")),
        "/calico/resources/v3/projectcalico.org/networkpolicies/prod/"
    );
    assert_eq!(
        list_prefix(np, None),
        "/calico/resources/v3/projectcalico.org/networkpolicies/"
    );
    assert_eq!(
        list_prefix(pool, Some("ignored")),
        "/calico/resources/v3/projectcalico.org/ippools/"
    );
    assert_eq!(identifier(np, "prod", "a"), "NetworkPolicy(prod/a)");
    assert_eq!(identifier(pool, "", "p"), "IPPool(p)");
}

#[test]
fn foreign_keys_do_not_parse() {
    let pool = calico_api::kind_info("IPPool").unwrap();
    let np = calico_api::kind_info("NetworkPolicy").unwrap();
    for k in [
        "/calico/resources/v3/projectcalico.org/ippools/",
        "/calico/resources/v3/projectcalico.org/ippools/a/b",
        "/calico/resources/v3/projectcalico.org/ippoolsx/a",
        "/calico/ipam/v2/handle/x",
    ] {
        assert_eq!(parse_key(pool, k), None, "{k}");
    }
    assert_eq!(
        parse_key(
            np,
            "/calico/resources/v3/projectcalico.org/networkpolicies/onlyname"
        ),
        None
    );
}
