//! Why a policy set or an input could not be built.

/// Every error names the resource / field / value that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A resource failed Calico's own validation (after Calico's defaulting).
    #[error("{kind} {name:?} is invalid: {errors}")]
    InvalidResource {
        kind: &'static str,
        name: String,
        errors: String,
    },
    /// A resource kind the evaluator does not take as input.
    #[error("{kind} {name:?}: kind is not a policy input of the evaluator")]
    UnsupportedKind { kind: &'static str, name: String },
    /// A construct whose semantics need data the evaluator does not have.
    #[error("{owner}: {what} is not supported by the reference evaluator")]
    Unsupported { owner: String, what: String },
    /// A selector (after Calico's v3 → v1 rewriting) does not parse.
    #[error("{owner}: selector {selector:?}: {reason}")]
    BadSelector {
        owner: String,
        selector: String,
        reason: String,
    },
    /// An address, CIDR, protocol or port that cannot be understood.
    #[error("{owner}: invalid {field} {value:?}")]
    BadValue {
        owner: String,
        field: &'static str,
        value: String,
    },
    /// Two endpoints (or two entries of one endpoint) claim the same address.
    #[error("address {address} belongs to both {first:?} and {second:?}")]
    DuplicateAddress {
        address: String,
        first: String,
        second: String,
    },
    /// Two endpoints with the same key.
    #[error("endpoint key {0:?} is used twice")]
    DuplicateEndpoint(String),
    /// Two resources of one kind with the same name (and namespace).
    #[error("{kind} {name:?} is given twice")]
    DuplicateResource { kind: &'static str, name: String },
    /// An endpoint names a profile that is neither given nor derivable (`kns.<ns>` /
    /// `ksa.<ns>.<sa>` are derived from namespace / service-account labels).
    #[error("endpoint {endpoint:?} refers to unknown profile {profile:?}")]
    UnknownProfile { endpoint: String, profile: String },
    /// Two sources disagree on the labels of one namespace or service account.
    #[error("conflicting labels for {what}: {first:?} vs {second:?}")]
    ConflictingLabels {
        what: String,
        first: String,
        second: String,
    },
    /// `evaluate_chain` was asked about an endpoint key that does not exist.
    #[error("no endpoint with key {0:?}")]
    UnknownEndpoint(String),
}

/// Rewriting errors keep their kind: validation failures stay [`EvalError::InvalidResource`],
/// Services matches [`EvalError::Unsupported`], and so on.
impl From<calico_policy_rules::RulesError> for EvalError {
    fn from(e: calico_policy_rules::RulesError) -> Self {
        use calico_policy_rules::RulesError as R;
        match e {
            R::InvalidResource { kind, name, errors } => {
                EvalError::InvalidResource { kind, name, errors }
            }
            R::Unsupported { owner, what } => EvalError::Unsupported { owner, what },
            R::BadSelector {
                owner,
                selector,
                reason,
            } => EvalError::BadSelector {
                owner,
                selector,
                reason,
            },
            R::BadValue {
                owner,
                field,
                value,
            } => EvalError::BadValue {
                owner,
                field,
                value,
            },
        }
    }
}
