//! Reading the Kubernetes kinds from YAML or JSON text the way `kubectl apply -f` reads them:
//! multi-document YAML, JSON objects, `List` / `<Kind>List` documents with `items`; strict
//! field checking; every error names the file, the document (1-based) and the field.
//!
//! [`decode_and_admit`] additionally does what the API server does before storing: defaults,
//! then validation ([`crate::validate`]).

use calico_api::decode::parse_documents;
use calico_api::{FieldErrors, ObjectMeta};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{
    CORE_API_VERSION, NETWORKING_API_VERSION, Namespace, NetworkPolicy, ServiceAccount,
};

/// One decoded Kubernetes object of a kind Calico converts.
#[derive(Debug, Clone, PartialEq)]
pub enum K8sResource {
    NetworkPolicy(NetworkPolicy),
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
}

/// `(apiVersion, kind)` of every kind here.
pub const KINDS: [(&str, &str); 3] = [
    (NETWORKING_API_VERSION, "NetworkPolicy"),
    (CORE_API_VERSION, "Namespace"),
    (CORE_API_VERSION, "ServiceAccount"),
];

/// Whether a document with this `apiVersion` and `kind` is one of ours (so a caller such as
/// calicoctl can route it here instead of to the `projectcalico.org/v3` decoder).
pub fn is_k8s_kind(api_version: &str, kind: &str) -> bool {
    KINDS.iter().any(|(a, k)| *a == api_version && *k == kind)
}

impl K8sResource {
    pub fn kind(&self) -> &'static str {
        match self {
            K8sResource::NetworkPolicy(_) => "NetworkPolicy",
            K8sResource::Namespace(_) => "Namespace",
            K8sResource::ServiceAccount(_) => "ServiceAccount",
        }
    }

    pub fn api_version(&self) -> &'static str {
        match self {
            K8sResource::NetworkPolicy(_) => NETWORKING_API_VERSION,
            K8sResource::Namespace(_) | K8sResource::ServiceAccount(_) => CORE_API_VERSION,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            K8sResource::NetworkPolicy(r) => &r.metadata,
            K8sResource::Namespace(r) => &r.metadata,
            K8sResource::ServiceAccount(r) => &r.metadata,
        }
    }

    /// The API server's defaults (see each kind's `apply_defaults`).
    pub fn apply_defaults(&mut self) {
        match self {
            K8sResource::NetworkPolicy(r) => r.apply_defaults(),
            K8sResource::Namespace(r) => r.apply_defaults(),
            K8sResource::ServiceAccount(r) => r.apply_defaults(),
        }
    }

    /// The API server's validation.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        match self {
            K8sResource::NetworkPolicy(r) => r.validate(),
            K8sResource::Namespace(r) => r.validate(),
            K8sResource::ServiceAccount(r) => r.validate(),
        }
    }

    /// The object as Kubernetes writes it: `apiVersion`, `kind`, then the fields.
    pub fn to_json_value(&self) -> serde_json::Value {
        fn body<T: Serialize>(t: &T) -> serde_json::Map<String, serde_json::Value> {
            // Plain data structs with string keys always serialize to an object.
            match serde_json::to_value(t) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            }
        }
        let mut out = serde_json::Map::new();
        out.insert("apiVersion".into(), self.api_version().into());
        out.insert("kind".into(), self.kind().into());
        out.extend(match self {
            K8sResource::NetworkPolicy(r) => body(r),
            K8sResource::Namespace(r) => body(r),
            K8sResource::ServiceAccount(r) => body(r),
        });
        serde_json::Value::Object(out)
    }
}

/// Why text could not be read as Kubernetes objects. `location` is `<file> doc <n>[ item <m>]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{location}: expected an object with apiVersion, kind and metadata, found {found}")]
    NotAnObject {
        location: String,
        found: &'static str,
    },
    #[error("{location}: apiVersion: missing")]
    MissingApiVersion { location: String },
    #[error("{location}: kind: missing")]
    MissingKind { location: String },
    #[error(
        "{location}: kind: {kind:?} of apiVersion {api_version:?} is not supported here (expected \
         networking.k8s.io/v1 NetworkPolicy, v1 Namespace or v1 ServiceAccount)"
    )]
    Unsupported {
        location: String,
        api_version: String,
        kind: String,
    },
    #[error("{location}: {path}: {message}")]
    Field {
        location: String,
        path: String,
        message: String,
    },
    #[error("{location}: {errors}")]
    Invalid {
        location: String,
        errors: FieldErrors,
    },
    #[error("{file}: no resources found")]
    Empty { file: String },
}

fn type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

fn decode_kind<T: DeserializeOwned>(
    value: serde_json::Value,
    location: &str,
) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        DecodeError::Field {
            location: location.to_string(),
            path: if path == "." { "(root)".into() } else { path },
            message: e.into_inner().to_string(),
        }
    })
}

fn get_str<'a>(map: &'a serde_json::Map<String, serde_json::Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(|v| v.as_str())
}

/// Decodes one object (`apiVersion` and `kind` required) at `location`.
fn decode_object(value: serde_json::Value, location: &str) -> Result<K8sResource, DecodeError> {
    let serde_json::Value::Object(mut map) = value else {
        return Err(DecodeError::NotAnObject {
            location: location.to_string(),
            found: type_name(&value),
        });
    };
    let Some(api_version) = get_str(&map, "apiVersion").map(str::to_string) else {
        return Err(DecodeError::MissingApiVersion {
            location: location.to_string(),
        });
    };
    let Some(kind) = get_str(&map, "kind").map(str::to_string) else {
        return Err(DecodeError::MissingKind {
            location: location.to_string(),
        });
    };
    map.remove("apiVersion");
    map.remove("kind");
    let body = serde_json::Value::Object(map);
    match (api_version.as_str(), kind.as_str()) {
        (NETWORKING_API_VERSION, "NetworkPolicy") => {
            decode_kind(body, location).map(K8sResource::NetworkPolicy)
        }
        (CORE_API_VERSION, "Namespace") => decode_kind(body, location).map(K8sResource::Namespace),
        (CORE_API_VERSION, "ServiceAccount") => {
            decode_kind(body, location).map(K8sResource::ServiceAccount)
        }
        _ => Err(DecodeError::Unsupported {
            location: location.to_string(),
            api_version,
            kind,
        }),
    }
}

/// Decodes one JSON value holding a single object.
pub fn decode_value(value: serde_json::Value) -> Result<K8sResource, DecodeError> {
    decode_object(value, "input")
}

fn is_list(map: &serde_json::Map<String, serde_json::Value>) -> Option<Option<&'static str>> {
    let kind = get_str(map, "kind")?;
    if kind == "List" {
        return Some(None);
    }
    KINDS
        .iter()
        .find(|(_, k)| kind.strip_suffix("List") == Some(*k))
        .map(|(_, k)| Some(*k))
}

/// Decodes every object in `text` (no defaults, no validation). Lists are expanded in place;
/// items of a typed list (`NetworkPolicyList`) may omit `apiVersion`/`kind`. Fails on the first
/// bad document, so nothing from a broken file is applied.
pub fn decode_documents(source: &str, text: &str) -> Result<Vec<K8sResource>, DecodeError> {
    let docs = parse_documents(source, text).map_err(|e| DecodeError::Syntax {
        file: source.to_string(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let location = format!("{source} doc {}", i + 1);
        let list_kind = match &doc {
            serde_json::Value::Object(map) => is_list(map),
            _ => None,
        };
        match (doc, list_kind) {
            (serde_json::Value::Object(mut map), Some(item_kind)) => {
                let items = match map.remove("items") {
                    Some(serde_json::Value::Array(items)) => items,
                    None | Some(serde_json::Value::Null) => Vec::new(),
                    Some(other) => {
                        return Err(DecodeError::Field {
                            location,
                            path: "items".into(),
                            message: format!("expected a list, found {}", type_name(&other)),
                        });
                    }
                };
                let list_version = get_str(&map, "apiVersion").map(str::to_string);
                for (j, mut item) in items.into_iter().enumerate() {
                    let loc = format!("{location} item {}", j + 1);
                    if let (Some(kind), serde_json::Value::Object(m)) = (item_kind, &mut item) {
                        m.entry("kind").or_insert_with(|| kind.into());
                        if let Some(v) = &list_version {
                            m.entry("apiVersion").or_insert_with(|| v.as_str().into());
                        }
                    }
                    out.push(decode_object(item, &loc)?);
                }
            }
            (serde_json::Value::Array(items), _) => {
                for (j, item) in items.into_iter().enumerate() {
                    out.push(decode_object(item, &format!("{location} item {}", j + 1))?);
                }
            }
            (doc, _) => out.push(decode_object(doc, &location)?),
        }
    }
    if out.is_empty() {
        return Err(DecodeError::Empty {
            file: source.to_string(),
        });
    }
    Ok(out)
}

/// Decodes, defaults and validates every object in `text`, as `kubectl apply` followed by the
/// API server would; any invalid object fails the whole file.
pub fn decode_and_admit(source: &str, text: &str) -> Result<Vec<K8sResource>, DecodeError> {
    let mut out = decode_documents(source, text)?;
    for (i, r) in out.iter_mut().enumerate() {
        r.apply_defaults();
        if let Err(errors) = r.validate() {
            return Err(DecodeError::Invalid {
                location: format!(
                    "{source} object {} ({} {:?})",
                    i + 1,
                    r.kind(),
                    r.metadata().name
                ),
                errors,
            });
        }
    }
    Ok(out)
}
