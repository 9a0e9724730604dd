//! The CRD limits on policy fields (kubebuilder markers in `policy_common.go`,
//! `networkpolicy.go`): they apply to kinds with a CRD and not to Profile, which Calico checks
//! with its Go validators only.

#![allow(clippy::unwrap_used)]

use calico_api::Resource;
use serde_json::{Value, json};

fn errors(kind: &str, spec: Value) -> Vec<String> {
    let doc = json!({"apiVersion": "projectcalico.org/v3", "kind": kind,
                     "metadata": {"name": "test"}, "spec": spec});
    let mut r = Resource::from_json_value(doc).unwrap();
    r.apply_defaults();
    match r.validate() {
        Ok(()) => Vec::new(),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

fn nets(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect()
}

fn ports(n: usize) -> Vec<u16> {
    (1..=n as u16).collect()
}

#[test]
fn list_limits() {
    let rule = |source: Value| json!({"action": "Allow", "protocol": "TCP", "source": source});
    let cases = [
        (rule(json!({"nets": nets(256)})), None),
        (
            rule(json!({"nets": nets(257)})),
            Some("spec.ingress[0].source.nets: Too many: 257"),
        ),
        (
            rule(json!({"notNets": nets(257)})),
            Some("spec.ingress[0].source.notNets: Too many"),
        ),
        (rule(json!({"ports": ports(50)})), None),
        (
            rule(json!({"ports": ports(51)})),
            Some("spec.ingress[0].source.ports: Too many: 51"),
        ),
        (
            rule(json!({"notPorts": ports(51)})),
            Some("spec.ingress[0].source.notPorts: Too many"),
        ),
    ];
    for (r, want) in cases {
        let errs = errors("GlobalNetworkPolicy", json!({"ingress": [r.clone()]}));
        match want {
            None => assert!(errs.is_empty(), "{errs:?}"),
            Some(prefix) => assert!(errs.iter().any(|e| e.starts_with(prefix)), "{errs:?}"),
        }
        // No CRD for Profile: the same rule is accepted there.
        assert!(errors("Profile", json!({"ingress": [r]})).is_empty());
    }
    let many = vec![json!({"action": "Allow"}); 1025];
    let errs = errors("GlobalNetworkPolicy", json!({"egress": many.clone()}));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.egress: Too many: 1025")),
        "{errs:?}"
    );
    assert!(errors("GlobalNetworkPolicy", json!({"egress": &many[..1024]})).is_empty());
    assert!(errors("Profile", json!({"egress": many})).is_empty());
}

#[test]
fn selector_length_limit() {
    let long = format!("a == '{}'", "x".repeat(1018));
    assert_eq!(long.len(), 1025);
    let errs = errors("GlobalNetworkPolicy", json!({"selector": long}));
    assert!(
        errs.iter()
            .any(|e| e.starts_with("spec.selector: Too long")),
        "{errs:?}"
    );
    let ok = format!("a == '{}'", "x".repeat(1017));
    assert!(errors("GlobalNetworkPolicy", json!({"selector": ok})).is_empty());
}

#[test]
fn cel_rules_do_not_apply_to_profiles() {
    let r = json!({"action": "Deny", "icmp": {"code": 1}});
    let errs = errors("GlobalNetworkPolicy", json!({"ingress": [r.clone()]}));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errors("Profile", json!({"ingress": [r]})).is_empty());
    // Go validators still apply to profile rules.
    let errs = errors(
        "Profile",
        json!({"ingress": [{"action": "Allow", "destination": {"ports": [80]}}]}),
    );
    assert_eq!(
        errs,
        vec![
            "spec.ingress[0].destination.ports: rules with numeric port or port range must set protocol to TCP or UDP or SCTP"
        ]
    );
}

#[test]
fn action_enum_comes_from_the_crd() {
    let r = json!({"action": "allow"});
    let errs = errors("GlobalNetworkPolicy", json!({"ingress": [r.clone()]}));
    assert_eq!(
        errs,
        vec![
            r#"spec.ingress[0].action: Unsupported value: "allow": supported values: "Allow", "Deny", "Log", "Pass""#
        ]
    );
    // Calico's Go validators (all a Profile gets) do not check the action; it is kept as written.
    assert!(errors("Profile", json!({"ingress": [r]})).is_empty());
    let doc = json!({"apiVersion": "projectcalico.org/v3", "kind": "Profile",
                     "metadata": {"name": "p"}, "spec": {"egress": [{"action": "allow"}]}});
    let r = Resource::from_json_value(doc.clone()).unwrap();
    assert_eq!(r.to_json_value(), doc);
}

#[test]
fn http_on_egress_wording_by_kind() {
    let spec = json!({"egress": [{"action": "Allow", "http": {"methods": ["GET"]}}]});
    let gnp = errors("GlobalNetworkPolicy", spec.clone());
    assert_eq!(
        gnp,
        vec!["spec.egress[0].http: not allowed in egress rules"]
    );
    let doc = json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
                     "metadata": {"name": "test", "namespace": "ns1"}, "spec": spec});
    let mut r = Resource::from_json_value(doc).unwrap();
    r.apply_defaults();
    assert_eq!(
        r.validate().unwrap_err().to_string(),
        "spec.egress[0].http: not allowed in egress rule"
    );
}
