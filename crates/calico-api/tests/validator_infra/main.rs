//! Calico's validator test tables for the infrastructure kinds, re-encoded as data.
//!
//! Sources: `libcalico-go/lib/validator/v3/validator_test.go` (the `Validator` table: every
//! entry for IP pools, reservations, IPAM config, BGP config/peers/filters, nodes, Felix and
//! kube-controllers config), `libcalico-go/lib/validator/v3/crd_validation_test.go` and
//! `api/pkg/apis/projectcalico/v3/bgpfilter_test.go` (CEL rules).
//!
//! Each case is (description, kind, YAML body with `metadata`/`spec`, expectation). Calico's
//! tables often validate a bare spec struct; those are wrapped here in a resource with a valid
//! name. A case is run the way Calico's client runs a create: decode strictly, apply defaults,
//! validate. An invalid case must fail with an error whose path starts with the given prefix.

#![allow(clippy::unwrap_used)]

mod bgp;
mod bgpfilter;
mod felix;
mod ipam;
mod kcc;
mod node;

use calico_api::decode::{DocumentError, decode_documents};

/// What a case expects.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Valid,
    /// Invalid, with at least one error whose path starts with this prefix.
    Invalid(&'static str),
}

pub use Expect::{Invalid, Valid};

/// (description, kind, body, expectation)
pub type Case = (&'static str, &'static str, &'static str, Expect);

/// Runs one case; `Err` describes a mismatch.
pub fn run_case(case: &Case) -> Result<(), String> {
    let (desc, kind, body, expect) = *case;
    let text = format!("apiVersion: projectcalico.org/v3\nkind: {kind}\n{body}\n");
    let outcome: Result<(), Vec<String>> = match decode_documents("case", &text) {
        Err(DocumentError::Decode { error, .. }) => Err(vec![error.to_string()]),
        Err(e) => return Err(format!("{desc}: document did not parse: {e}")),
        Ok(mut rs) => {
            let r = &mut rs[0].resource;
            r.apply_defaults();
            match r.validate() {
                Ok(()) => Ok(()),
                Err(errs) => Err(errs.iter().map(|e| e.to_string()).collect()),
            }
        }
    };
    match (expect, outcome) {
        (Valid, Ok(())) => Ok(()),
        (Valid, Err(errs)) => Err(format!("{desc}: expected valid, got {errs:?}")),
        (Invalid(p), Ok(())) => Err(format!("{desc}: expected invalid at {p:?}, got valid")),
        (Invalid(p), Err(errs)) => {
            if errs.iter().any(|e| e.starts_with(p)) {
                Ok(())
            } else {
                Err(format!("{desc}: expected an error at {p:?}, got {errs:?}"))
            }
        }
    }
}

/// Runs a whole table and reports every mismatch at once.
pub fn run_table(name: &str, cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{name}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn table_sizes() {
    let total = ipam::CASES.len()
        + bgp::CONFIG_CASES.len()
        + bgp::PEER_CASES.len()
        + bgpfilter::FILTER_CASES.len()
        + node::CASES.len()
        + felix::CASES.len()
        + kcc::CASES.len();
    // Guard against a table being emptied by accident.
    assert!(total >= 250, "only {total} cases");
}

/// Over-long selectors (the schema's `maxLength: 1024`), generated rather than written inline.
#[test]
fn over_long_selectors_are_rejected() {
    let sel = format!("has({})", "a".repeat(1030));
    let cases = [
        (
            "IPPool",
            format!("metadata: {{name: p}}\nspec: {{cidr: 10.0.0.0/16, nodeSelector: '{sel}'}}"),
            "spec.nodeSelector",
        ),
        (
            "FelixConfiguration",
            format!("metadata: {{name: f}}\nspec: {{nodeSelector: '{sel}'}}"),
            "spec.nodeSelector",
        ),
        (
            "BGPPeer",
            format!("metadata: {{name: b}}\nspec: {{peerSelector: '{sel}'}}"),
            "spec.peerSelector",
        ),
    ];
    for (kind, body, path) in cases {
        let body: &'static str = Box::leak(body.into_boxed_str());
        run_case(&("over-long selector", kind, body, Invalid(path))).unwrap();
    }
}
