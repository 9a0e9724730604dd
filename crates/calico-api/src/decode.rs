//! Reading resource files the way calicoctl does: multi-document YAML (`---`), JSON objects or
//! arrays, and `<Kind>List` / `List` documents with `items`. Every error names the source, the
//! document number (1-based, as a user counts them) and the field.

use std::fmt;

use crate::errors::FieldErrors;
use crate::resource::{DecodeError, Resource, json_type_name};

/// Where in a file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentLocation {
    /// File name (or `-` for stdin) as the user gave it.
    pub source: String,
    /// 1-based document number within the file.
    pub doc: usize,
    /// 1-based item index when the document is a List.
    pub item: Option<usize>,
}

impl fmt::Display for DocumentLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} doc {}", self.source, self.doc)?;
        if let Some(i) = self.item {
            write!(f, " item {i}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// The text is not valid YAML/JSON.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    /// A document is not a valid resource.
    #[error("{location}: {error}")]
    Decode {
        location: DocumentLocation,
        error: DecodeError,
    },
    /// A document decoded but failed validation.
    #[error("{location}: {}", format_field_errors(.errors))]
    Invalid {
        location: DocumentLocation,
        errors: FieldErrors,
    },
    /// The file held no resources at all.
    #[error("{file}: no resources found")]
    Empty { file: String },
}

fn format_field_errors(errs: &FieldErrors) -> String {
    errs.to_string()
}

/// A decoded resource with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedResource {
    pub location: DocumentLocation,
    pub resource: Resource,
}

/// Splits `text` into JSON values, one per document (YAML is a superset of JSON, so one parser
/// reads both). Empty documents (e.g. a trailing `---`) are dropped.
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<serde_json::Value>, DocumentError> {
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| DocumentError::Syntax {
            file: source.to_string(),
            message: e.to_string(),
        })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Decodes every resource in `text` (without defaulting or validating). Lists are expanded in
/// place. Fails on the first bad document so nothing from a broken file is applied.
pub fn decode_documents(source: &str, text: &str) -> Result<Vec<LocatedResource>, DocumentError> {
    let docs = parse_documents(source, text)?;
    let mut out = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        let location = DocumentLocation {
            source: source.to_string(),
            doc: i + 1,
            item: None,
        };
        decode_one_document(doc, location, &mut out)?;
    }
    if out.is_empty() {
        return Err(DocumentError::Empty {
            file: source.to_string(),
        });
    }
    Ok(out)
}

/// Decodes, defaults and validates every resource in `text`; any invalid document fails the
/// whole file (calicoctl applies all or nothing).
pub fn decode_and_validate(
    source: &str,
    text: &str,
) -> Result<Vec<LocatedResource>, DocumentError> {
    let mut resources = decode_documents(source, text)?;
    for r in &mut resources {
        r.resource.apply_defaults();
        if let Err(errors) = r.resource.validate() {
            return Err(DocumentError::Invalid {
                location: r.location.clone(),
                errors,
            });
        }
    }
    Ok(resources)
}

fn decode_one_document(
    doc: serde_json::Value,
    location: DocumentLocation,
    out: &mut Vec<LocatedResource>,
) -> Result<(), DocumentError> {
    let decode_err = |location: &DocumentLocation, error| DocumentError::Decode {
        location: location.clone(),
        error,
    };
    match doc {
        // A bare JSON array of resources.
        serde_json::Value::Array(items) => {
            for (j, item) in items.into_iter().enumerate() {
                let loc = DocumentLocation {
                    item: Some(j + 1),
                    ..location.clone()
                };
                let resource = Resource::from_json_value(item).map_err(|e| decode_err(&loc, e))?;
                out.push(LocatedResource {
                    location: loc,
                    resource,
                });
            }
            Ok(())
        }
        serde_json::Value::Object(ref map) if is_list_kind(map) => {
            let items = match map.get("items") {
                Some(serde_json::Value::Array(items)) => items.clone(),
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(other) => {
                    return Err(decode_err(
                        &location,
                        DecodeError::NotAnObject(json_type_name(other)),
                    ));
                }
            };
            let item_kind = list_item_kind(map);
            for (j, mut item) in items.into_iter().enumerate() {
                let loc = DocumentLocation {
                    item: Some(j + 1),
                    ..location.clone()
                };
                // Items of a typed list may omit apiVersion/kind; they inherit them.
                if let (Some(kind), serde_json::Value::Object(m)) = (item_kind, &mut item) {
                    m.entry("kind")
                        .or_insert_with(|| serde_json::Value::String(kind.into()));
                    m.entry("apiVersion")
                        .or_insert_with(|| serde_json::Value::String(crate::API_VERSION.into()));
                }
                let resource = Resource::from_json_value(item).map_err(|e| decode_err(&loc, e))?;
                out.push(LocatedResource {
                    location: loc,
                    resource,
                });
            }
            Ok(())
        }
        other => {
            let resource =
                Resource::from_json_value(other).map_err(|e| decode_err(&location, e))?;
            out.push(LocatedResource { location, resource });
            Ok(())
        }
    }
}

fn is_list_kind(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    matches!(map.get("kind"), Some(serde_json::Value::String(k)) if k == "List" || crate::kinds::kind_for_list(k).is_some())
}

fn list_item_kind(map: &serde_json::Map<String, serde_json::Value>) -> Option<&'static str> {
    match map.get("kind") {
        Some(serde_json::Value::String(k)) => crate::kinds::kind_for_list(k).map(|ki| ki.kind),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_DOCS: &str = "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\n\
        metadata: {name: default}\nspec: {clusterGUID: abc, datastoreReady: true}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {name: other}\n---\n";

    #[test]
    fn multi_document_yaml() {
        let rs = decode_documents("f.yaml", TWO_DOCS).unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[1].location.doc, 2);
        assert_eq!(rs[1].resource.metadata().name, "other");
    }

    #[test]
    fn json_and_lists() {
        let text = r#"{"apiVersion":"projectcalico.org/v3","kind":"ClusterInformationList",
            "items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#;
        let rs = decode_documents("f.json", text).unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[1].location.to_string(), "f.json doc 1 item 2");
    }

    #[test]
    fn unknown_field_names_path_and_document() {
        let text = format!(
            "{TWO_DOCS}apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {{name: x}}\nspec: {{clusterGUIDx: 1}}\n"
        );
        let err = decode_documents("c.yaml", &text).unwrap_err().to_string();
        assert!(err.starts_with("c.yaml doc 3: spec"), "{err}");
        assert!(err.contains("clusterGUIDx"), "{err}");
    }

    #[test]
    fn syntax_error_and_empty() {
        assert!(matches!(
            decode_documents("bad.yaml", "a: [1, 2"),
            Err(DocumentError::Syntax { .. })
        ));
        assert!(matches!(
            decode_documents("e.yaml", "---\n"),
            Err(DocumentError::Empty { .. })
        ));
    }

    #[test]
    fn invalid_document_is_reported_with_location() {
        let text = "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\nmetadata: {name: Bad_Name}\n";
        let err = decode_and_validate("x.yaml", text).unwrap_err().to_string();
        assert!(err.starts_with("x.yaml doc 1: metadata.name: "), "{err}");
    }
}
