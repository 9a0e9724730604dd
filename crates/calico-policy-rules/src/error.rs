//! Why a resource could not be rewritten to its v1 form.

/// Every error names the resource (and, below it, the rule and side) and the field or value
/// that is wrong. Owners of rule errors read like `default/np/prod/web ingress[2] source`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// A resource failed Calico's own validation (after Calico's client defaulting).
    #[error("{kind} {name:?} is invalid: {errors}")]
    InvalidResource {
        kind: &'static str,
        name: String,
        errors: String,
    },
    /// A construct whose v1 form needs data this crate does not have (Kubernetes Services
    /// matches need Service endpoints).
    #[error("{owner}: {what} is not supported")]
    Unsupported { owner: String, what: String },
    /// A selector (after Calico's v3 → v1 rewriting) does not parse.
    #[error("{owner}: selector {selector:?}: {reason}")]
    BadSelector {
        owner: String,
        selector: String,
        reason: String,
    },
    /// An address, CIDR, protocol, port, ICMP value, action or IP version that cannot be
    /// understood.
    #[error("{owner}: invalid {field} {value:?}")]
    BadValue {
        owner: String,
        field: &'static str,
        value: String,
    },
}
