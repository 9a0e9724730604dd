//! Errors of the typed client, worded like libcalico-go's (`libcalico-go/lib/errors/errors.go`)
//! so calicoctl users see the messages they know: `resource already exists: IPPool(pool1)`,
//! `resource does not exist: NetworkPolicy(prod/allow)`, `update conflict: Tier(t1)`.

use calico_api::FieldErrors;
use calico_datastore::DatastoreError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// Create of a key that exists (`ErrorResourceAlreadyExists`).
    #[error("resource already exists: {id}{}", suffix(.reason))]
    AlreadyExists { id: String, reason: Option<String> },

    /// Read, update or delete of a key that is absent (`ErrorResourceDoesNotExist`).
    #[error("resource does not exist: {id}{}", suffix(.reason))]
    DoesNotExist { id: String, reason: Option<String> },

    /// The resourceVersion given is not the stored one (`ErrorResourceUpdateConflict`).
    #[error("update conflict: {id}{}", suffix(.reason))]
    UpdateConflict { id: String, reason: Option<String> },

    /// Calico refuses the operation on this object (`ErrorOperationNotSupported`), e.g.
    /// deleting the `default` tier or updating the built-in `projectcalico-default-allow` profile.
    #[error("operation {operation} is not supported on {id}{}", suffix(.reason))]
    OperationNotSupported {
        operation: String,
        id: String,
        reason: Option<String>,
    },

    /// One metadata field is wrong for the request (`ErrorValidation` with one `ErroredField`),
    /// e.g. a resourceVersion on a create. Printed as Calico prints it:
    /// `error with field Metadata.ResourceVersion = '12' (field must not be set for a Create request)`.
    #[error("error with field {field}{} ({reason})", value_part(.value))]
    InvalidField {
        field: String,
        value: Option<String>,
        reason: String,
    },

    /// The resource failed calico-api validation; paths name the JSON fields.
    #[error("{}", format_field_errors(.0))]
    Invalid(FieldErrors),

    /// Kind name not known at all.
    #[error("resource type '{0}' is not supported")]
    UnknownKind(String),

    /// Kind listed in the kinds table whose model calico-api does not implement yet.
    #[error("resource type '{0}' is not implemented")]
    UnsupportedKind(String),

    /// A resource of another kind where a specific kind type was asked for.
    #[error("expected a {expected} resource, found {found}")]
    KindMismatch { expected: String, found: String },

    /// A stored value that does not decode as its kind.
    #[error("failed to parse datastore entry key={key}: {message}")]
    Corrupt { key: String, message: String },

    /// Bad or unusable client configuration (config file, environment).
    #[error("{0}")]
    Config(String),

    /// Any other datastore failure (connection, compaction, ...).
    #[error(transparent)]
    Datastore(DatastoreError),
}

impl ClientError {
    /// Maps a datastore error for the resource `id` onto Calico's error kinds.
    pub fn from_datastore(err: DatastoreError, id: &str) -> ClientError {
        match err {
            DatastoreError::AlreadyExists { .. } => ClientError::AlreadyExists {
                id: id.to_string(),
                reason: None,
            },
            DatastoreError::NotFound { .. } => ClientError::DoesNotExist {
                id: id.to_string(),
                reason: None,
            },
            DatastoreError::Conflict { .. } => ClientError::UpdateConflict {
                id: id.to_string(),
                reason: None,
            },
            other => ClientError::Datastore(other),
        }
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, ClientError::AlreadyExists { .. })
    }
    pub fn is_does_not_exist(&self) -> bool {
        matches!(self, ClientError::DoesNotExist { .. })
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, ClientError::UpdateConflict { .. })
    }
    pub fn is_not_supported(&self) -> bool {
        matches!(self, ClientError::OperationNotSupported { .. })
    }
}

impl From<DatastoreError> for ClientError {
    fn from(e: DatastoreError) -> Self {
        ClientError::Datastore(e)
    }
}

fn suffix(reason: &Option<String>) -> String {
    match reason {
        Some(r) if !r.is_empty() => format!(": {r}"),
        _ => String::new(),
    }
}

fn value_part(value: &Option<String>) -> String {
    match value {
        Some(v) => format!(" = '{v}'"),
        None => String::new(),
    }
}

/// Calico's `ErrorValidation` layout: one field inline, several as a list.
fn format_field_errors(errs: &FieldErrors) -> String {
    match errs.len() {
        0 => "unknown validation error".to_string(),
        1 => format!("error with field {}", errs.0[0]),
        _ => {
            let mut s = "error with the following fields:".to_string();
            for e in errs.iter() {
                s.push_str("\n-  ");
                s.push_str(&e.to_string());
            }
            s
        }
    }
}
