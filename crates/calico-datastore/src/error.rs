use crate::Revision;

/// Everything a datastore operation can fail with. Callers match on the variants: IPAM retries on
/// `Conflict`, calicoctl maps `AlreadyExists`/`NotFound` to Calico's messages, watchers resync on
/// `Compacted`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatastoreError {
    #[error("resource already exists: {key}")]
    AlreadyExists { key: String },
    #[error("resource does not exist: {key}")]
    NotFound { key: String },
    #[error("update conflict: {key} is at revision {actual}, expected {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    #[error(
        "required revision {requested} has been compacted (compact revision {compact_revision})"
    )]
    Compacted {
        requested: Revision,
        compact_revision: Revision,
    },
    #[error("requested revision {requested} is in the future (current revision {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("lease {0} not found")]
    LeaseNotFound(i64),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("datastore unavailable: {0}")]
    Unavailable(String),
    #[error("configuration error: {0}")]
    Config(String),
    #[error("datastore error: {0}")]
    Backend(String),
}
