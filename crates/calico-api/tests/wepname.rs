//! Calico's `libcalico-go/lib/names/workloadendpoint_test.go` tables (WorkloadEndpoint name
//! construction, prefixes, matching, parsing) and the client-side naming of stored WEPs.

#![allow(clippy::unwrap_used)]

use calico_api::Resource;
use calico_api::wepname::{WorkloadEndpointIdentifiers, parse_workload_endpoint_name};

/// (node, orchestrator, pod, containerID, workload, endpoint)
type Ids = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

fn ids(i: Ids) -> WorkloadEndpointIdentifiers {
    WorkloadEndpointIdentifiers {
        node: i.0.into(),
        orchestrator: i.1.into(),
        pod: i.2.into(),
        container_id: i.3.into(),
        workload: i.4.into(),
        endpoint: i.5.into(),
    }
}

#[test]
fn fully_qualified_names() {
    // (description, ids, expected name, expected errored field)
    let cases: [(&str, Ids, &str, &str); 8] = [
        (
            "Valid k8s endpoint",
            ("node-1", "k8s", "pod-name", "", "", "eth0"),
            "node--1-k8s-pod--name-eth0",
            "",
        ),
        (
            "Valid CNI (non-k8s) endpoint",
            ("node-1", "cni", "", "abcdefa0123456", "", "eth0"),
            "node--1-cni-abcdefa0123456-eth0",
            "",
        ),
        (
            "Valid libnetwork endpoint",
            ("node-1", "libnetwork", "", "", "", "abcdefgh"),
            "node--1-libnetwork-libnetwork-abcdefgh",
            "",
        ),
        (
            "Valid unknown orchestrator endpoint",
            ("node-1", "foo", "", "", "foo-foo", "abcdefgh"),
            "node--1-foo-foo--foo-abcdefgh",
            "",
        ),
        (
            "Missing orchestrator and workload",
            ("node-1", "", "pod-name", "", "", "eth0"),
            "",
            "orchestrator",
        ),
        (
            "Missing k8s Pod",
            ("node-1", "k8s", "", "", "", "eth0"),
            "",
            "pod",
        ),
        (
            "CNI container ID starts with a -",
            ("node-1", "cni", "", "-abcdefa0123456", "", "eth0"),
            "",
            "containerID",
        ),
        (
            "Unknown orchestrator workload ends with a -",
            ("node-1", "foo", "", "", "foo-foo-", "abcdefgh"),
            "",
            "workload",
        ),
    ];
    for (desc, i, name, field) in cases {
        match ids(i).calculate_name(false) {
            Ok(n) => assert_eq!((n.as_str(), ""), (name, field), "{desc}"),
            Err(e) => assert_eq!(("", e.field), (name, field), "{desc}"),
        }
    }
}

#[test]
fn name_prefixes() {
    let cases: [(&str, Ids, &str, &str); 7] = [
        (
            "Valid k8s endpoint",
            ("node-1", "k8s", "pod-name", "", "", "eth0"),
            "node--1-k8s-pod--name-eth0",
            "",
        ),
        (
            "Missing workload",
            ("node-1", "foo", "pod-name", "", "", "eth0"),
            "node--1-foo-",
            "",
        ),
        (
            "Missing k8s Pod",
            ("node-1", "k8s", "", "", "", "eth0"),
            "node--1-k8s-",
            "",
        ),
        (
            "CNI container ID starts with a -",
            ("node-1", "cni", "", "-abcdefa0123456", "", "eth0"),
            "",
            "containerID",
        ),
        (
            "Unknown orchestrator, workload ends with a -",
            ("node-1", "foo", "", "", "foo-foo-", "abcdefgh"),
            "",
            "workload",
        ),
        (
            "Node is missing",
            ("", "k8s", "pod-name", "", "", "eth0"),
            "",
            "node",
        ),
        (
            "Orchestrator is missing",
            ("node-1", "", "pod-name", "", "", "eth0"),
            "node--1-",
            "",
        ),
    ];
    for (desc, i, name, field) in cases {
        match ids(i).calculate_name(true) {
            Ok(n) => assert_eq!((n.as_str(), ""), (name, field), "{desc}"),
            Err(e) => assert_eq!(("", e.field), (name, field), "{desc}"),
        }
    }
}

#[test]
fn name_matching() {
    // (description, ids, name, matches, errored field)
    let cases: [(&str, Ids, &str, bool, &str); 9] = [
        (
            "Node is missing",
            ("", "k8s", "pod-name", "", "", "eth0"),
            "",
            false,
            "node",
        ),
        (
            "Orchestrator is missing",
            ("node-1", "", "pod-name", "", "", "eth0"),
            "",
            false,
            "",
        ),
        (
            "Valid k8s endpoint and matching name",
            ("node-1", "k8s", "pod-name", "", "", "eth0"),
            "node--1-k8s-pod--name-eth0",
            true,
            "",
        ),
        (
            "non-matching Endpoint",
            ("node-1", "k8s", "pod-name", "", "", "eth0"),
            "node--1-k8s-pod--name-eth",
            false,
            "",
        ),
        (
            "CNI ids missing container ID",
            ("node-1", "cni", "", "", "", "eth0"),
            "node--1-cni-orchestratorid-eth0",
            true,
            "",
        ),
        (
            "Fully qualified CNI endpoint and matching name",
            ("node-1", "cni", "", "abcde", "", "eth0"),
            "node--1-cni-abcde-eth0",
            true,
            "",
        ),
        (
            "CNI non-matching container",
            ("node-1", "cni", "", "abcde", "", "eth0"),
            "node--1-cni-abcdef-eth0",
            false,
            "",
        ),
        (
            "Too few name segments",
            ("node-1", "k8s", "", "", "", "eth0"),
            "node--1-k8s-",
            false,
            "",
        ),
        (
            "Too many name segments",
            ("node-1", "k8s", "pod", "", "", "eth0"),
            "node--1-k8s-pod-eth0-extra",
            false,
            "",
        ),
    ];
    for (desc, i, name, matches, field) in cases {
        match ids(i).name_matches(name) {
            Ok(m) => assert_eq!((m, ""), (matches, field), "{desc}"),
            Err(e) => assert_eq!((false, e.field), (matches, field), "{desc}"),
        }
    }
}

#[test]
fn name_parsing() {
    // (description, name, expected ids or None for an error)
    let cases: [(&str, &str, Option<Ids>); 9] = [
        ("Empty string", "", None),
        (
            "Fully populated k8s wep name",
            "node-k8s-pod-eth0",
            Some(("node", "k8s", "pod", "", "", "eth0")),
        ),
        (
            "K8s prefix match with only node",
            "node-",
            Some(("node", "", "", "", "", "")),
        ),
        (
            "K8s prefix match with node and pod",
            "node-k8s-pod--name-",
            Some(("node", "k8s", "pod-name", "", "", "")),
        ),
        (
            "Fully populated cni",
            "node-cni-xyz-eth0",
            Some(("node", "cni", "", "xyz", "", "eth0")),
        ),
        (
            "Fully populated libnetwork",
            "node-libnetwork-libnetwork-eth0",
            Some(("node", "libnetwork", "", "", "", "eth0")),
        ),
        (
            "Fully populated other orchestrators",
            "node-foo--orch-workload-eth0",
            Some(("node", "foo-orch", "", "", "workload", "eth0")),
        ),
        (
            "Workload name used instead of WEP name",
            "coredns-668d6bf9bc-bxhr6",
            Some(("coredns", "668d6bf9bc", "", "", "bxhr6", "")),
        ),
        (
            "Workload name with lots of dashes",
            "calico-kube-controllers-7946b84856-2fwwq",
            None,
        ),
    ];
    for (desc, name, want) in cases {
        match (parse_workload_endpoint_name(name), want) {
            (Ok(got), Some(w)) => assert_eq!(got, ids(w), "{desc}"),
            (Err(_), None) => {}
            (got, want) => panic!("{desc}: got {got:?}, want {want:?}"),
        }
    }
}

fn wep(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "WorkloadEndpoint",
        "metadata": {"name": name, "namespace": "prod"},
        "spec": {"node": "node1", "orchestrator": "k8s", "pod": "frontend-0", "endpoint": "eth0",
                 "interfaceName": "calie934d4878c7", "ipNetworks": ["192.168.221.65/32"]}
    })
}

#[test]
fn stored_weps_are_named_and_labelled_like_calico() {
    // calico-features.md §14: pod prod/frontend-0 on node1 is WEP node1-k8s-frontend--0-eth0.
    let mut r = Resource::from_json_value(wep("")).unwrap();
    r.apply_defaults();
    r.validate().unwrap();
    let m = r.metadata();
    assert_eq!(m.name, "node1-k8s-frontend--0-eth0");
    assert_eq!(m.labels["projectcalico.org/namespace"], "prod");
    assert_eq!(m.labels["projectcalico.org/orchestrator"], "k8s");

    let mut r = Resource::from_json_value(wep("node1-k8s-other-eth0")).unwrap();
    r.apply_defaults();
    let err = r.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("metadata.name: the WorkloadEndpoint name does not match")
            && err.ends_with("expected name node1-k8s-frontend--0-eth0"),
        "{err}"
    );

    let mut doc = wep("");
    doc["spec"]["node"] = serde_json::json!("");
    let mut r = Resource::from_json_value(doc).unwrap();
    r.apply_defaults();
    let err = r.validate().unwrap_err().to_string();
    assert!(err.contains("spec.node: field should be assigned"), "{err}");
}
