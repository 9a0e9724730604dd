//! StagedKubernetesNetworkPolicy: Kubernetes NetworkPolicy JSON shape, the `stagedAction`
//! default, and Calico's conversion-based validation (ports must convert to Calico ports; a
//! `Delete` carries nothing else).

#![allow(clippy::unwrap_used)]

use calico_api::Resource;
use serde_json::json;

fn check(spec: serde_json::Value) -> Result<serde_json::Value, Vec<String>> {
    let doc = json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "StagedKubernetesNetworkPolicy",
        "metadata": {"name": "p", "namespace": "ns1"},
        "spec": spec,
    });
    let mut r = Resource::from_json_value(doc).map_err(|e| vec![e.to_string()])?;
    r.apply_defaults();
    r.validate()
        .map_err(|e| e.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    Ok(r.to_json_value())
}

#[test]
fn kubernetes_shape_round_trips_with_default_action() {
    let spec = json!({
        "podSelector": {"matchLabels": {"app": "db"}},
        "ingress": [{
            "from": [
                {"namespaceSelector": {}, "podSelector": {"matchExpressions": [{"key": "role", "operator": "In", "values": ["fe"]}]}},
                {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
            ],
            "ports": [{"protocol": "TCP", "port": 5432}, {"port": "metrics"}, {"port": 8000, "endPort": 8010}]
        }],
        "egress": [{"to": [{"podSelector": {}}]}],
        "policyTypes": ["Ingress", "Egress"]
    });
    let out = check(spec.clone()).unwrap();
    let mut want = spec;
    want.as_object_mut()
        .unwrap()
        .insert("stagedAction".into(), json!("Set"));
    // Field order aside, the stored spec is the input plus the defaulted action.
    assert_eq!(out["spec"], want);
    assert_eq!(
        serde_json::to_string(&check(json!({})).unwrap()["spec"]).unwrap(),
        r#"{"stagedAction":"Set","podSelector":{}}"#
    );
}

#[test]
fn ports_must_convert_to_calico_ports() {
    let bad = [
        json!({"port": "http", "endPort": 90}),
        json!({"port": 9010, "endPort": 9000}),
        json!({"port": "bad port"}),
        json!({"port": 70000}),
    ];
    for p in bad {
        let errs = check(json!({"ingress": [{"ports": [p.clone()]}]})).unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.starts_with("spec.ingress[0].ports[0]: ")),
            "{p}: {errs:?}"
        );
    }
    let errs = check(json!({"egress": [{"ports": [{"port": 1}, {"port": 5, "endPort": 4}]}]}))
        .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec.egress[0].ports[1]: "), "{errs:?}");
    assert!(check(json!({"ingress": [{"ports": [{"port": 80, "endPort": 80}]}]})).is_ok());
}

#[test]
fn delete_carries_nothing_else() {
    assert!(check(json!({"stagedAction": "Delete"})).is_ok());
    let errs = check(json!({"stagedAction": "Delete", "podSelector": {"matchLabels": {"a": "b"}}}))
        .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: "), "{errs:?}");
    assert!(check(json!({"stagedAction": "Warning"})).is_err());
}

#[test]
fn policy_types_limit() {
    assert!(check(json!({"policyTypes": ["Ingress", "Egress"]})).is_ok());
    let errs = check(json!({"policyTypes": ["Ingress", "Egress", "Ingress"]})).unwrap_err();
    assert!(errs[0].starts_with("spec.policyTypes: "), "{errs:?}");
}
