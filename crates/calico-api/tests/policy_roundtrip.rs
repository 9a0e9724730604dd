//! The NetworkPolicy and GlobalNetworkPolicy examples of calico-features.md §2.4: decoded from
//! YAML, defaulted (types, tier, tier label filled as Calico's client does) and re-encoded to the
//! exact JSON Calico stores in etcd (field order included). Also defaulting edge cases and
//! field-path error reporting through the document decoder.

#![allow(clippy::unwrap_used)]

use calico_api::decode::{decode_and_validate, decode_documents};
use calico_api::{CalicoResource, Resource};

const EXAMPLES: &str = r#"
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-frontend, namespace: prod}
spec:
  order: 100                    # tier omitted => "default"
  selector: app == 'backend'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'frontend'}
    destination: {ports: [8080, "9000:9010", http]}   # number, range, named port
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: block-metadata}
spec:
  order: 10
  selector: projectcalico.org/orchestrator == 'k8s'
  types: [Egress]
  egress:
  - action: Deny
    destination: {nets: [169.254.169.254/32]}
  - action: Pass                 # hand remaining traffic to the next tier
"#;

const NP_GOLDEN: &str = concat!(
    r#"{"apiVersion":"projectcalico.org/v3","kind":"NetworkPolicy","#,
    r#""metadata":{"name":"allow-frontend","namespace":"prod","labels":{"projectcalico.org/tier":"default"}},"#,
    r#""spec":{"tier":"default","order":100,"ingress":[{"action":"Allow","protocol":"TCP","#,
    r#""source":{"selector":"app == 'frontend'"},"destination":{"ports":[8080,"9000:9010","http"]}}],"#,
    r#""selector":"app == 'backend'","types":["Ingress"]}}"#
);

const GNP_GOLDEN: &str = concat!(
    r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkPolicy","#,
    r#""metadata":{"name":"block-metadata","labels":{"projectcalico.org/tier":"default"}},"#,
    r#""spec":{"tier":"default","order":10,"egress":[{"action":"Deny","destination":{"nets":["169.254.169.254/32"]}},"#,
    r#"{"action":"Pass"}],"selector":"projectcalico.org/orchestrator == 'k8s'","types":["Egress"]}}"#
);

#[test]
fn examples_encode_to_calico_stored_json() {
    let rs = decode_and_validate("examples.yaml", EXAMPLES).unwrap();
    assert_eq!(rs.len(), 2);
    let got: Vec<String> = rs
        .iter()
        .map(|r| serde_json::to_string(&r.resource.to_json_value()).unwrap())
        .collect();
    assert_eq!(got[0], NP_GOLDEN);
    assert_eq!(got[1], GNP_GOLDEN);
}

#[test]
fn stored_json_decodes_back_unchanged() {
    for golden in [NP_GOLDEN, GNP_GOLDEN] {
        let v: serde_json::Value = serde_json::from_str(golden).unwrap();
        let mut r = Resource::from_json_value(v.clone()).unwrap();
        r.apply_defaults();
        r.validate().unwrap();
        assert_eq!(serde_json::to_string(&r.to_json_value()).unwrap(), golden);
    }
}

#[test]
fn types_default_from_rules() {
    let doc = |spec: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {{name: p}}\nspec: {spec}\n"
        )
    };
    let types = |spec: &str| {
        let rs = decode_and_validate("t.yaml", &doc(spec)).unwrap();
        rs[0].resource.to_json_value()["spec"]["types"].clone()
    };
    assert_eq!(types("{}"), serde_json::json!(["Ingress"]));
    assert_eq!(
        types("{egress: [{action: Allow}]}"),
        serde_json::json!(["Egress"])
    );
    assert_eq!(
        types("{ingress: [{action: Allow}], egress: [{action: Allow}]}"),
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(
        types("{ingress: [{action: Allow}], types: [Egress]}"),
        serde_json::json!(["Egress"])
    );
}

#[test]
fn explicit_tier_sets_the_label() {
    let text = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: security.p, namespace: ns1, labels: {projectcalico.org/tier: wrong}}\nspec: {tier: security}\n";
    let rs = decode_and_validate("t.yaml", text).unwrap();
    let v = rs[0].resource.to_json_value();
    assert_eq!(
        v["metadata"]["labels"]["projectcalico.org/tier"],
        "security"
    );
    assert_eq!(v["spec"]["tier"], "security");
}

#[test]
fn tier_defaults() {
    let text = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\n";
    let rs = decode_and_validate("t.yaml", text).unwrap();
    assert_eq!(
        serde_json::to_string(&rs[0].resource.to_json_value()).unwrap(),
        r#"{"apiVersion":"projectcalico.org/v3","kind":"Tier","metadata":{"name":"security"},"spec":{"order":1000000,"defaultAction":"Deny"},"status":{}}"#
    );
}

#[test]
fn staged_policy_defaults() {
    let text = "apiVersion: projectcalico.org/v3\nkind: StagedGlobalNetworkPolicy\nmetadata: {name: p}\nspec: {selector: all()}\n---\napiVersion: projectcalico.org/v3\nkind: StagedNetworkPolicy\nmetadata: {name: p, namespace: ns1}\nspec: {stagedAction: Delete}\n";
    let rs = decode_and_validate("s.yaml", text).unwrap();
    let a = rs[0].resource.to_json_value();
    assert_eq!(a["spec"]["stagedAction"], "Set");
    assert_eq!(a["spec"]["types"], serde_json::json!(["Ingress"]));
    let b = rs[1].resource.to_json_value();
    assert_eq!(b["spec"]["stagedAction"], "Delete");
    assert!(b["spec"].get("types").is_none(), "{b}");
}

#[test]
fn defaulting_is_idempotent() {
    let mut rs = decode_documents("examples.yaml", EXAMPLES).unwrap();
    for r in &mut rs {
        r.resource.apply_defaults();
        let once = r.resource.clone();
        r.resource.apply_defaults();
        assert_eq!(once, r.resource);
    }
}

#[test]
fn errors_carry_document_and_field_path() {
    let text = "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: ns1}\nspec:\n  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [80, \"9010:9000\"]}\n";
    let err = decode_documents("p.yaml", text).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "p.yaml doc 1: spec.ingress[0].destination.ports[1]: range 9010:9000 is reversed"
        ),
        "{err}"
    );
    let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  selector: \"a ==\"\n";
    let err = decode_and_validate("g.yaml", text).unwrap_err().to_string();
    assert!(
        err.starts_with("g.yaml doc 1: spec.selector: invalid selector"),
        "{err}"
    );
}

#[test]
fn programmatic_policy_round_trips() {
    let np = calico_api::policy::NetworkPolicy::default();
    assert_eq!(
        <calico_api::policy::NetworkPolicy as CalicoResource>::KIND,
        "NetworkPolicy"
    );
    let v = Resource::from(np).to_json_value();
    assert_eq!(v["spec"], serde_json::json!({}));
}

#[test]
fn empty_yaml_values_decode_like_go() {
    // Go's decoder leaves a field untouched for `null`; an empty YAML value is null.
    let text = "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  selector:\n  ingress:\n  - action: Allow\n    source:\n    destination: {nets:, ports:}\n  egress:\n---\napiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec:\n---\napiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: h}\nspec: {node: n1, expectedIPs: [10.0.0.1], ports:, profiles:}\n";
    let rs = decode_and_validate("e.yaml", text).unwrap();
    assert_eq!(rs.len(), 3);
    assert_eq!(
        serde_json::to_string(&rs[0].resource.to_json_value()["spec"]).unwrap(),
        r#"{"tier":"default","ingress":[{"action":"Allow"}],"types":["Ingress"]}"#
    );
}
