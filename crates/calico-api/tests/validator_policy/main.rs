//! Calico's v3 validator table for the policy-side kinds, run as data: every case is decoded
//! as a document, defaulted and validated, and must be accepted or rejected exactly as Calico
//! does. A rejected case is either a decode error (the JSON cannot be a valid value, e.g. a
//! reversed port range) or a validation error; both name the field.

#![allow(clippy::unwrap_used)]

mod cases;
mod crd;

use calico_api::Resource;
use calico_api::resource::DecodeError;

pub struct Case {
    /// Line of the Entry in Calico's validator_test.go.
    pub line: u32,
    pub desc: &'static str,
    pub doc: &'static str,
    pub valid: bool,
    /// For a rejected case: the field path one of the errors must be reported at.
    pub path: Option<&'static str>,
    /// Calico checked a bare sub-struct with Go validators only: also run it inside a Profile
    /// (the kind without a CRD) and expect the same verdict.
    pub bare: bool,
}

/// The same rule in a Profile, where only the Go validators apply (Calico's bare-struct case).
fn as_profile(doc: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "Profile",
        "metadata": {"name": "test"},
        "spec": {"ingress": doc["spec"]["ingress"].clone()},
    })
}

pub struct CrdCase {
    /// The Go test function (`TestCRDValidation_<test>`).
    pub test: &'static str,
    pub name: &'static str,
    pub doc: &'static str,
    /// Substring one error message must contain; empty when the resource is valid.
    pub msg: &'static str,
}

/// Expands `<<x*N>>` placeholders (long names and label values).
fn expand(doc: &str) -> String {
    let mut out = String::new();
    let mut rest = doc;
    while let Some(start) = rest.find("<<x*") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        let end = after.find(">>").unwrap();
        let n: usize = after[..end].parse().unwrap();
        out.push_str(&"x".repeat(n));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Decodes, defaults and validates; returns every error as `path: message`.
pub fn check(doc: &serde_json::Value) -> Result<Resource, Vec<String>> {
    let mut r = Resource::from_json_value(doc.clone()).map_err(|e| match e {
        DecodeError::Field(f) => vec![f.to_string()],
        other => vec![other.to_string()],
    })?;
    r.apply_defaults();
    r.validate()
        .map_err(|errs| errs.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    Ok(r)
}

#[test]
fn calico_validator_table() {
    let mut failures = Vec::new();
    for c in cases::CASES {
        let doc: serde_json::Value = serde_json::from_str(&expand(c.doc))
            .unwrap_or_else(|e| panic!("line {}: bad case JSON: {e}", c.line));
        if c.bare && check(&as_profile(&doc)).is_ok() != c.valid {
            failures.push(format!(
                "line {} {:?}: Go-only verdict differs (as a Profile rule)",
                c.line, c.desc
            ));
        }
        match (check(&doc), c.valid) {
            (Ok(_), true) => {}
            (Err(errs), false) => {
                let want = c.path.unwrap_or("");
                if !errs.iter().any(|e| e.starts_with(&format!("{want}: "))) {
                    failures.push(format!(
                        "line {} {:?}: rejected, but not at {want}: {errs:?}",
                        c.line, c.desc
                    ));
                }
            }
            (Ok(_), false) => failures.push(format!(
                "line {} {:?}: accepted, Calico rejects it\n    {}",
                c.line, c.desc, c.doc
            )),
            (Err(e), true) => failures.push(format!(
                "line {} {:?}: rejected, Calico accepts it: {e:?}\n    {}",
                c.line, c.desc, c.doc
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from Calico:\n{}",
        failures.len(),
        cases::CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn calico_crd_validation_tests() {
    let mut failures = Vec::new();
    for c in crd::CRD_CASES {
        let doc: serde_json::Value = serde_json::from_str(c.doc).unwrap();
        match check(&doc) {
            Ok(_) if c.msg.is_empty() => {}
            Ok(_) => failures.push(format!("{}/{}: accepted", c.test, c.name)),
            Err(errs) if c.msg.is_empty() => {
                failures.push(format!("{}/{}: rejected: {errs:?}", c.test, c.name))
            }
            Err(errs) => {
                if !errs.iter().any(|e| e.contains(c.msg)) {
                    failures.push(format!(
                        "{}/{}: no error mentions {:?}: {errs:?}",
                        c.test, c.name, c.msg
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn table_covers_the_policy_share() {
    assert!(cases::CASES.len() >= 300, "{}", cases::CASES.len());
    let invalid = cases::CASES.iter().filter(|c| !c.valid).count();
    assert!(invalid > 100, "{invalid}");
}

#[test]
#[ignore]
fn dump_errors() {
    for c in cases::CASES {
        let doc: serde_json::Value = serde_json::from_str(&expand(c.doc)).unwrap();
        if let Err(e) = check(&doc) {
            println!("{} {:?} => {:?}", c.line, c.desc, e);
        }
        assert_eq!(c.valid, c.path.is_none(), "line {}", c.line);
    }
}
