//! Why an update was refused. A refused update changes nothing: the previous state of that
//! resource stays in force.

use calico_policy_rules::RulesError;

use crate::ResourceKey;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
/// Keys and causes are boxed to keep `Result<_, CalcError>` small.
pub enum CalcError {
    /// The value's kind, namespace or name is not the key's.
    #[error("update for {key}: the value is {kind} {name:?}, which is not that resource")]
    KeyMismatch {
        key: Box<ResourceKey>,
        kind: &'static str,
        name: String,
    },
    /// Validation (after Calico's client defaulting) or v3 → v1 rewriting failed; the
    /// cause names the field.
    #[error("{key}: {source}")]
    Rules {
        key: Box<ResourceKey>,
        #[source]
        source: Box<RulesError>,
    },
    /// An endpoint or network set whose content cannot be used.
    #[error("{key}: invalid {field} {value:?}: {reason}")]
    BadValue {
        key: Box<ResourceKey>,
        field: &'static str,
        value: String,
        reason: String,
    },
}
