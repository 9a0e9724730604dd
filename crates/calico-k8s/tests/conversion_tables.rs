//! Data-driven tests: the tables under `tests/data/` (Calico's conversion tests re-encoded as
//! input YAML → expected Calico YAML, plus malformed inputs with their exact errors).

// Helpers outside #[test] functions unwrap too: a panic is the test failure we want.
#![allow(clippy::unwrap_used)]

use calico_api::CalicoResource;
use calico_api::policy::NetworkPolicy as CalicoPolicy;
use calico_api::profile::Profile;
use calico_k8s::{
    K8sResource, LabelSelector, RuleDirection, SelectorType, decode_value,
    k8s_network_policy_to_calico, k8s_selector_to_calico, namespace_to_profile,
    service_account_to_profile,
};
use serde_json::{Value, json};

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = calico_api::decode::parse_documents(&path, &text).unwrap();
    assert_eq!(docs.len(), 1, "{name}: one document holding a list");
    let Value::Array(cases) = docs.into_iter().next().unwrap() else {
        panic!("{name}: not a list");
    };
    assert!(!cases.is_empty());
    cases
}

fn case_name(case: &Value) -> String {
    case["name"].as_str().unwrap().to_string()
}

/// Fills in a NetworkPolicy document's apiVersion/kind/metadata when the table leaves them out.
fn k8s_policy_doc(mut doc: Value, default_meta: Value) -> Value {
    let m = doc.as_object_mut().unwrap();
    m.entry("apiVersion")
        .or_insert(json!("networking.k8s.io/v1"));
    m.entry("kind").or_insert(json!("NetworkPolicy"));
    m.entry("metadata").or_insert(default_meta);
    doc
}

#[test]
fn network_policy_conversion_table() {
    let cases = load("networkpolicy_conversion.yaml");
    for case in &cases {
        let name = case_name(case);
        let input = k8s_policy_doc(
            case["input"].clone(),
            json!({"name": "test.policy", "namespace": "default",
                   "uid": "30316465-6365-4463-ad63-3564622d3638"}),
        );
        let K8sResource::NetworkPolicy(np) = decode_value(input).unwrap() else {
            panic!("{name}: not a NetworkPolicy");
        };

        let mut expected = case["expected"].clone();
        let e = expected.as_object_mut().unwrap();
        e.entry("metadata").or_insert(json!({
            "name": "test.policy", "namespace": "default",
            "uid": "0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c"}));
        let spec = e.get_mut("spec").unwrap().as_object_mut().unwrap();
        spec.entry("tier").or_insert(json!("default"));
        spec.entry("order").or_insert(json!(1000));
        let expected: CalicoPolicy = serde_json::from_value(expected)
            .unwrap_or_else(|err| panic!("{name}: bad expected value: {err}"));

        let got = k8s_network_policy_to_calico(&np).unwrap();
        assert_eq!(
            got.policy,
            expected,
            "{name}\n got: {}",
            serde_json::to_string_pretty(&got.policy).unwrap()
        );

        let want_dropped = case["dropped"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            got.dropped.len(),
            want_dropped.len(),
            "{name}: {:?}",
            got.dropped
        );
        for (d, w) in got.dropped.iter().zip(&want_dropped) {
            let dir = match w[0].as_str().unwrap() {
                "ingress" => RuleDirection::Ingress,
                _ => RuleDirection::Egress,
            };
            assert_eq!(d.direction, dir, "{name}");
            assert_eq!(d.index as u64, w[1].as_u64().unwrap(), "{name}");
            let prefix = w[2].as_str().unwrap();
            assert!(
                d.reason.starts_with(prefix),
                "{name}: {:?} vs {prefix:?}",
                d.reason
            );
        }
        assert_eq!(got.error().is_some(), !want_dropped.is_empty(), "{name}");

        // Every converted policy with a valid name is a valid Calico policy, and its selectors
        // parse with Calico's grammar.
        if calico_api::policy::is_network_policy_name(&got.policy.metadata.name) {
            let mut errs = calico_api::FieldErrors::new();
            got.policy.validate(&mut errs);
            assert!(errs.is_empty(), "{name}: {errs}");
        }
        for rule in got
            .policy
            .spec
            .ingress
            .iter()
            .chain(&got.policy.spec.egress)
        {
            for sel in [
                &rule.source.selector,
                &rule.source.namespace_selector,
                &rule.destination.selector,
                &rule.destination.namespace_selector,
            ] {
                calico_selector::parse(sel).unwrap_or_else(|e| panic!("{name}: {sel:?}: {e}"));
            }
        }
        calico_selector::parse(&got.policy.spec.selector).unwrap();
    }
}

#[test]
fn selector_conversion_table() {
    for case in load("selector_conversion.yaml") {
        let name = case_name(&case);
        let kind = match case["type"].as_str().unwrap() {
            "pod" => SelectorType::Pod,
            "namespace" => SelectorType::Namespace,
            other => panic!("{name}: type {other}"),
        };
        let sel: Option<LabelSelector> = serde_json::from_value(case["selector"].clone()).unwrap();
        let got = k8s_selector_to_calico(sel.as_ref(), kind);
        assert_eq!(got, case["expected"].as_str().unwrap(), "{name}");
        if !got.is_empty() {
            calico_selector::parse(&got).unwrap_or_else(|e| panic!("{name}: {got:?}: {e}"));
        }
    }
}

#[test]
fn profile_conversion_table() {
    for case in load("profile_conversion.yaml") {
        let name = case_name(&case);
        let expected: Profile = serde_json::from_value(case["expected"].clone()).unwrap();
        let got = match decode_value(case["input"].clone()).unwrap() {
            K8sResource::Namespace(ns) => namespace_to_profile(&ns).unwrap(),
            K8sResource::ServiceAccount(sa) => service_account_to_profile(&sa).unwrap(),
            K8sResource::NetworkPolicy(_) => panic!("{name}: not a profile source"),
        };
        assert_eq!(got.profile, expected, "{name}");
        assert_eq!(got.revision, case["revision"].as_str().unwrap(), "{name}");
        let mut errs = calico_api::FieldErrors::new();
        got.profile.validate(&mut errs);
        assert!(errs.is_empty(), "{name}: {errs}");
    }
}

#[test]
fn admission_table() {
    for case in load("admission.yaml") {
        let name = case_name(&case);
        let doc = k8s_policy_doc(
            case["doc"].clone(),
            json!({"name": "p", "namespace": "default"}),
        );
        if let Some(parts) = case.get("decode_error") {
            let err = decode_value(doc).unwrap_err().to_string();
            for p in parts.as_array().unwrap() {
                assert!(
                    err.contains(p.as_str().unwrap()),
                    "{name}: {err:?} lacks {p}"
                );
            }
            continue;
        }
        let mut r = decode_value(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        r.apply_defaults();
        let got: Vec<String> = match r.validate() {
            Ok(()) => Vec::new(),
            Err(errs) => errs.iter().map(|e| e.to_string()).collect(),
        };
        let want: Vec<String> = case["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap().to_string())
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn upstream_style_policies_admitted_and_converted() {
    for case in load("upstream_style.yaml") {
        let name = case_name(&case);
        let objs = calico_k8s::decode_and_admit(&name, case["text"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(objs.len(), 1, "{name}");
        let K8sResource::NetworkPolicy(np) = &objs[0] else {
            panic!("{name}: not a NetworkPolicy");
        };
        let mut spec = case["expected"].clone();
        let s = spec.as_object_mut().unwrap();
        s.entry("tier").or_insert(json!("default"));
        s.entry("order").or_insert(json!(1000));
        let expected: CalicoPolicy = serde_json::from_value(json!({
            "metadata": {"name": np.metadata.name, "namespace": np.metadata.namespace},
            "spec": spec,
        }))
        .unwrap_or_else(|e| panic!("{name}: bad expected value: {e}"));
        let got = k8s_network_policy_to_calico(np).unwrap();
        assert!(got.dropped.is_empty(), "{name}");
        assert_eq!(
            got.policy,
            expected,
            "{name}\n got: {}",
            serde_json::to_string_pretty(&got.policy).unwrap()
        );
        let mut errs = calico_api::FieldErrors::new();
        got.policy.validate(&mut errs);
        assert!(errs.is_empty(), "{name}: {errs}");
    }
}
