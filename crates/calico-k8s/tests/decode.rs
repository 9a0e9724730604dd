//! Reading files the way `kubectl apply -f` does, and the API-server admission path.

use calico_k8s::decode::is_k8s_kind;
use calico_k8s::{
    DecodeError, IntOrString, K8sResource, NetworkPolicyPeer, decode_and_admit, decode_documents,
    decode_value, k8s_network_policy_to_calico, k8s_peer_to_calico_fields,
};

const MULTI: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-web
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
    - ports:
        - port: 80
        - port: http
  egress:
    - to:
        - ipBlock: {cidr: 10.0.0.0/8}
---
apiVersion: v1
kind: Namespace
metadata:
  name: prod
  labels: {team: a}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: builder}
---
"#;

#[test]
fn multi_document_yaml_decodes_every_kind() {
    let rs = decode_documents("f.yaml", MULTI).unwrap();
    assert_eq!(rs.len(), 3);
    assert_eq!(rs[0].kind(), "NetworkPolicy");
    assert_eq!(rs[0].api_version(), "networking.k8s.io/v1");
    assert_eq!(rs[1].kind(), "Namespace");
    assert_eq!(rs[1].metadata().labels["team"], "a");
    assert_eq!(rs[2].kind(), "ServiceAccount");
    let K8sResource::NetworkPolicy(np) = &rs[0] else {
        panic!("not a policy")
    };
    assert_eq!(np.spec.ingress[0].ports[0].port, Some(IntOrString::Int(80)));
    assert_eq!(
        np.spec.ingress[0].ports[1].port,
        Some(IntOrString::Str("http".into()))
    );
    // Raw decoding leaves defaults alone.
    assert!(np.metadata.namespace.is_empty());
    assert!(np.spec.policy_types.is_empty());
    assert_eq!(np.spec.ingress[0].ports[0].protocol, None);
}

#[test]
fn admission_applies_api_server_defaults() {
    let rs = decode_and_admit("f.yaml", MULTI).unwrap();
    let K8sResource::NetworkPolicy(np) = &rs[0] else {
        panic!("not a policy")
    };
    assert_eq!(np.metadata.namespace, "default");
    // Egress rules present: both types (SetDefaults_NetworkPolicy).
    assert_eq!(np.spec.policy_types, vec!["Ingress", "Egress"]);
    assert_eq!(np.spec.ingress[0].ports[1].protocol.as_deref(), Some("TCP"));
    assert_eq!(rs[2].metadata().namespace, "default");
    // Namespaces are cluster-scoped: no namespace filled in; the API server labels them
    // with their name, which then reaches the kns. profile as a pcns. label.
    assert!(rs[1].metadata().namespace.is_empty());
    assert_eq!(
        rs[1].metadata().labels["kubernetes.io/metadata.name"],
        "prod"
    );
    let K8sResource::Namespace(ns) = &rs[1] else {
        panic!("not a namespace")
    };
    let profile = calico_k8s::namespace_to_profile(ns).unwrap().profile;
    assert_eq!(
        profile.spec.labels_to_apply["pcns.kubernetes.io/metadata.name"],
        "prod"
    );
    let mut again = ns.clone();
    again
        .metadata
        .labels
        .insert("kubernetes.io/metadata.name".into(), "other".into());
    again.apply_defaults();
    assert_eq!(&again, ns);

    // Defaulted, the policy's egress is enforced; raw (Kubernetes <= 1.7 semantics) it is not.
    let admitted = k8s_network_policy_to_calico(np).unwrap().policy;
    assert_eq!(admitted.spec.types.len(), 2);
    let K8sResource::NetworkPolicy(raw) = &decode_documents("f.yaml", MULTI).unwrap()[0] else {
        panic!("not a policy")
    };
    let raw = k8s_network_policy_to_calico(raw).unwrap().policy;
    assert_eq!(raw.spec.types, vec![calico_api::rule::PolicyType::Ingress]);
    assert_eq!(raw.spec.egress, admitted.spec.egress);

    // Defaulting twice changes nothing.
    let mut again = np.clone();
    again.apply_defaults();
    assert_eq!(&again, np);
}

#[test]
fn admission_names_the_object_and_field() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ok}\n---\n\
        apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n\
        spec:\n  podSelector: {}\n  ingress:\n    - ports: [{port: 80}, {port: 99999}]\n";
    let err = decode_and_admit("p.yaml", text).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid { .. }));
    assert_eq!(
        err.to_string(),
        "p.yaml object 2 (NetworkPolicy \"p\"): spec.ingress[0].ports[1].port: Invalid value: \
         99999: must be between 1 and 65535, inclusive"
    );
}

#[test]
fn lists_and_json() {
    let text = r#"{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicyList",
        "items": [{"metadata": {"name": "a", "namespace": "x"}, "spec": {"podSelector": {}}},
                  {"metadata": {"name": "b", "namespace": "x"}, "spec": {"podSelector": {}}}]}"#;
    let rs = decode_documents("l.json", text).unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[1].metadata().name, "b");
    assert_eq!(rs[1].kind(), "NetworkPolicy");

    let text = "apiVersion: v1\nkind: List\nitems:\n\
        - {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n\
        - {apiVersion: v1, kind: ServiceAccount, metadata: {name: s, namespace: a}}\n";
    let rs = decode_documents("l.yaml", text).unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[1].kind(), "ServiceAccount");

    // Items of a generic List need their own kind.
    let text = "apiVersion: v1\nkind: List\nitems:\n- {metadata: {name: a}}\n";
    let err = decode_documents("l.yaml", text).unwrap_err().to_string();
    assert_eq!(err, "l.yaml doc 1 item 1: apiVersion: missing");

    // A bare JSON array of objects.
    let text = r#"[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}]"#;
    assert_eq!(decode_documents("a.json", text).unwrap().len(), 1);
}

#[test]
fn decode_errors_name_file_document_and_field() {
    let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
        apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}\n\
        spec: {podSelector: {}, ingress: [{from: [{podSelector: {matchLabel: {}}}]}]}\n";
    let err = decode_documents("d.yaml", text).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "d.yaml doc 2: spec.ingress[0].from[0].podSelector.matchLabel: unknown field `matchLabel`"
        ),
        "{err}"
    );
    assert!(matches!(
        decode_documents("s.yaml", "a: [1, 2"),
        Err(DecodeError::Syntax { .. })
    ));
    assert!(matches!(
        decode_documents("e.yaml", "---\n"),
        Err(DecodeError::Empty { .. })
    ));
    assert_eq!(
        decode_documents("n.yaml", "hello\n")
            .unwrap_err()
            .to_string(),
        "n.yaml doc 1: expected an object with apiVersion, kind and metadata, found a string"
    );
    assert_eq!(
        decode_value(serde_json::json!({"kind": "Namespace"}))
            .unwrap_err()
            .to_string(),
        "input: apiVersion: missing"
    );
}

#[test]
fn kinds_and_encoding_round_trip() {
    assert!(is_k8s_kind("networking.k8s.io/v1", "NetworkPolicy"));
    assert!(is_k8s_kind("v1", "Namespace"));
    assert!(is_k8s_kind("v1", "ServiceAccount"));
    assert!(!is_k8s_kind("projectcalico.org/v3", "NetworkPolicy"));
    assert!(!is_k8s_kind("v1", "NetworkPolicy"));
    for r in decode_documents("f.yaml", MULTI).unwrap() {
        let v = r.to_json_value();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys[..2], ["apiVersion", "kind"]);
        assert_eq!(decode_value(v).unwrap(), r);
    }
    // podSelector is always written, even empty (Go has no omitempty on it).
    let r = decode_value(serde_json::json!({"apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy", "metadata": {"name": "a"}, "spec": {}}))
    .unwrap();
    assert_eq!(
        r.to_json_value()["spec"],
        serde_json::json!({"podSelector": {}})
    );
}

#[test]
fn peer_fields_follow_calico_for_bad_cidrs() {
    // Calico conversion_test.go: "NetworkPolicyPeer with an IPBlock Peer and no Except field",
    // "...when an IPBlock is invalid", "...with an CIDR and Except field".
    let peer = |v: serde_json::Value| -> NetworkPolicyPeer { serde_json::from_value(v).unwrap() };
    let f = k8s_peer_to_calico_fields(Some(&peer(
        serde_json::json!({"ipBlock": {"cidr": "192.168.0.0/16"}}),
    )));
    assert_eq!(f.nets, vec!["192.168.0.0/16"]);
    assert!(f.not_nets.is_empty() && f.selector.is_empty() && f.namespace_selector.is_empty());

    let f = k8s_peer_to_calico_fields(Some(&peer(
        serde_json::json!({"ipBlock": {"cidr": "192.168.0.0/55"}}),
    )));
    assert_eq!(f, Default::default());

    let f = k8s_peer_to_calico_fields(Some(&peer(serde_json::json!({"ipBlock": {
        "cidr": "192.168.0.0/16",
        "except": ["192.168.3.0/24", "192.168.4.0/24", "192.168.5.0/24"]}}))));
    assert_eq!(f.nets, vec!["192.168.0.0/16"]);
    assert_eq!(
        f.not_nets,
        vec!["192.168.3.0/24", "192.168.4.0/24", "192.168.5.0/24"]
    );
    assert!(f.selector.is_empty() && f.namespace_selector.is_empty());

    // A bad except entry ends the list there (Calico returns early).
    let f = k8s_peer_to_calico_fields(Some(&peer(serde_json::json!({"ipBlock": {
        "cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "bad", "10.2.0.0/16"]}}))));
    assert_eq!(f.nets, vec!["10.0.0.0/8"]);
    assert_eq!(f.not_nets, vec!["10.1.0.0/16"]);

    assert_eq!(k8s_peer_to_calico_fields(None), Default::default());
    // A peer with no fields at all (rejected by validation) selects every pod of the namespace.
    let f = k8s_peer_to_calico_fields(Some(&peer(serde_json::json!({}))));
    assert_eq!(f.selector, "projectcalico.org/orchestrator == 'k8s'");
    assert_eq!(f.namespace_selector, "");
}

#[test]
fn convert_resource_dispatches_by_kind() {
    use calico_k8s::{CalicoObject, convert_resource};
    let rs = decode_and_admit("f.yaml", MULTI).unwrap();
    let names: Vec<String> = rs
        .iter()
        .map(|r| match convert_resource(r).unwrap() {
            CalicoObject::NetworkPolicy(p) => format!("policy {}", p.policy.metadata.name),
            CalicoObject::Profile(p) => format!("profile {}", p.profile.metadata.name),
        })
        .collect();
    assert_eq!(
        names,
        [
            "policy allow-web",
            "profile kns.prod",
            "profile ksa.default.builder"
        ]
    );
    let bad = decode_value(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "a", "uid": "nope"}}))
    .unwrap();
    assert_eq!(
        convert_resource(&bad).unwrap_err().to_string(),
        "failed to parse UID for resource: \"nope\" is not a UUID"
    );
}
