//! Reading `-f FILE|DIR|-` the way calicoctl does (`commands/file`, `resourcemgr
//! CreateResourcesFromFile`): a file, every `.yaml`/`.yml`/`.json` file of a directory (of its
//! subdirectories too with `-R`), or stdin; multi-document YAML, JSON, `List` kinds.
//!
//! Documents may be `projectcalico.org/v3` resources or the Kubernetes kinds of [`crate::k8s`]
//! (`networking.k8s.io/v1` NetworkPolicy, `v1` Namespace / ServiceAccount), mixed freely; a
//! Kubernetes document is decoded, defaulted and validated by `calico-k8s` as the API server
//! would admit it.
//!
//! Unlike calicoctl, every document of every file is decoded (and, for writes, defaulted and
//! validated) before anything is sent to the datastore: one bad document means nothing is
//! applied, and the error names the file, the document and the field.

use std::io::Read;
use std::path::{Path, PathBuf};

use calico_api::Resource;
use calico_api::decode::{DocumentError, DocumentLocation, parse_documents};
use calico_api::resource::DecodeError as CalicoDecodeError;
use calico_k8s::{DecodeError as K8sDecodeError, K8sResource};
use serde_json::{Map, Value};

/// How strictly to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Decode only (delete/get by file only need kinds and names).
    Decode,
    /// Decode, default and validate (create/apply/replace/validate).
    Validate,
}

/// One document's object.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    /// Both boxed: the objects are large and of very different sizes.
    Calico(Box<Resource>),
    Kube(Box<K8sResource>),
}

/// A decoded object with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedDoc {
    pub location: DocumentLocation,
    pub doc: Doc,
}

/// `apiVersion`s whose documents go to the Kubernetes decoder.
const KUBE_API_VERSIONS: [&str; 2] = ["v1", "networking.k8s.io/v1"];

fn is_resource_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                collect_dir(&p, recursive, out)?;
            }
        } else if is_resource_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads every resource named by `filename`. Errors are complete messages.
pub fn load(
    filename: &str,
    recursive: bool,
    skip_empty: bool,
    check: Check,
) -> Result<Vec<LocatedDoc>, String> {
    let mut sources: Vec<(String, String)> = Vec::new();
    if filename == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading stdin: {e}"))?;
        // Documents read from stdin are reported as `stdin doc N: ...`.
        sources.push(("stdin".into(), text));
    } else {
        let path = Path::new(filename);
        let files = if path.is_dir() {
            let mut files = Vec::new();
            collect_dir(path, recursive, &mut files)?;
            if files.is_empty() && !skip_empty {
                return Err(format!("no resources specified in directory {filename}"));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        for f in files {
            let text =
                std::fs::read_to_string(&f).map_err(|e| format!("open {}: {e}", f.display()))?;
            sources.push((f.display().to_string(), text));
        }
    }
    let mut out = Vec::new();
    for (name, text) in sources {
        match decode_text(&name, &text, check) {
            Ok(rs) => out.extend(rs),
            Err(DocumentError::Empty { .. }) if skip_empty => {}
            Err(DocumentError::Empty { file }) => {
                return Err(format!("no resources specified in file {file}"));
            }
            Err(e) => return Err(massage(&e.to_string())),
        }
    }
    Ok(out)
}

/// Decodes (and with [`Check::Validate`], defaults and validates) every object in `text`.
/// The first bad document fails the whole text.
pub fn decode_text(
    source: &str,
    text: &str,
    check: Check,
) -> Result<Vec<LocatedDoc>, DocumentError> {
    let mut out = Vec::new();
    for (i, doc) in parse_documents(source, text)?.into_iter().enumerate() {
        let location = DocumentLocation {
            source: source.to_string(),
            doc: i + 1,
            item: None,
        };
        for (loc, item) in expand(doc, location)? {
            let mut d = decode_item(item, &loc)?;
            if check == Check::Validate {
                admit(&mut d, &loc)?;
            }
            out.push(LocatedDoc {
                location: loc,
                doc: d,
            });
        }
    }
    if out.is_empty() {
        return Err(DocumentError::Empty {
            file: source.to_string(),
        });
    }
    Ok(out)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn str_field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

/// The kind every item of a list document is, when it is a typed list: `(apiVersion, kind)`
/// the items inherit when they omit them. `None` when the document is not a list; `Some(None)`
/// for a generic `List`, whose items name their own kinds.
fn list_item_kind(map: &Map<String, Value>) -> Option<Option<(String, String)>> {
    let kind = str_field(map, "kind")?;
    if kind == "List" {
        return Some(None);
    }
    let item = kind.strip_suffix("List")?;
    let api_version = str_field(map, "apiVersion").unwrap_or("");
    if KUBE_API_VERSIONS.contains(&api_version) {
        // `NetworkPolicyList` of networking.k8s.io/v1 is Kubernetes', not Calico's.
        return calico_k8s::decode::is_k8s_kind(api_version, item)
            .then(|| Some((api_version.to_string(), item.to_string())));
    }
    // Calico's typed lists: items inherit the kind and projectcalico.org/v3 (calico-api's
    // reader does the same).
    calico_api::kinds::kind_for_list(kind)
        .map(|ki| Some((calico_api::API_VERSION.to_string(), ki.kind.to_string())))
}

/// The objects of one document: itself, or the items of a JSON array or a list document.
fn expand(
    doc: Value,
    location: DocumentLocation,
) -> Result<Vec<(DocumentLocation, Value)>, DocumentError> {
    let item_loc = |j: usize| DocumentLocation {
        item: Some(j + 1),
        ..location.clone()
    };
    match doc {
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .map(|(j, item)| (item_loc(j), item))
            .collect()),
        Value::Object(mut map) => {
            let Some(inherit) = list_item_kind(&map) else {
                return Ok(vec![(location, Value::Object(map))]);
            };
            let items = match map.remove("items") {
                Some(Value::Array(items)) => items,
                None | Some(Value::Null) => Vec::new(),
                Some(other) => {
                    return Err(DocumentError::Decode {
                        location,
                        error: CalicoDecodeError::NotAnObject(type_name(&other)),
                    });
                }
            };
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(j, mut item)| {
                    if let (Some((api_version, kind)), Value::Object(m)) = (&inherit, &mut item) {
                        m.entry("kind").or_insert_with(|| kind.as_str().into());
                        m.entry("apiVersion")
                            .or_insert_with(|| api_version.as_str().into());
                    }
                    (item_loc(j), item)
                })
                .collect())
        }
        other => Ok(vec![(location, other)]),
    }
}

/// Decodes one object: a Kubernetes kind by `calico-k8s`, anything else as a Calico resource.
fn decode_item(item: Value, loc: &DocumentLocation) -> Result<Doc, DocumentError> {
    let kube = match &item {
        Value::Object(m) => str_field(m, "apiVersion").filter(|v| KUBE_API_VERSIONS.contains(v)),
        _ => None,
    };
    if let Some(api_version) = kube {
        let kind = match &item {
            Value::Object(m) => str_field(m, "kind").unwrap_or(""),
            _ => "",
        };
        if !kind.is_empty() && !calico_k8s::decode::is_k8s_kind(api_version, kind) {
            return Err(kube_error(
                loc,
                format!(
                    "kind: {kind:?} of apiVersion {api_version:?} is not supported: calicoctl \
                     accepts projectcalico.org/v3 kinds, networking.k8s.io/v1 NetworkPolicy and \
                     v1 Namespace and ServiceAccount"
                ),
            ));
        }
        return calico_k8s::decode_value(item)
            .map(|r| Doc::Kube(Box::new(r)))
            .map_err(|e| kube_error(loc, relocated(&e)));
    }
    Resource::from_json_value(item)
        .map(|r| Doc::Calico(Box::new(r)))
        .map_err(|error| DocumentError::Decode {
            location: loc.clone(),
            error,
        })
}

/// A Kubernetes decoding problem as a document error (`<location>: <message>`).
fn kube_error(loc: &DocumentLocation, message: String) -> DocumentError {
    DocumentError::Syntax {
        file: loc.to_string(),
        message,
    }
}

/// The message of a `calico-k8s` error without the location it carries (it decoded a lone
/// value, so that location is a placeholder); the caller puts the document's in front.
fn relocated(e: &K8sDecodeError) -> String {
    match e {
        K8sDecodeError::Field { path, message, .. } => format!("{path}: {message}"),
        K8sDecodeError::Invalid { errors, .. } => errors.to_string(),
        K8sDecodeError::NotAnObject { found, .. } => {
            format!("expected an object with apiVersion, kind and metadata, found {found}")
        }
        K8sDecodeError::MissingApiVersion { .. } => "apiVersion: missing".into(),
        K8sDecodeError::MissingKind { .. } => "kind: missing".into(),
        K8sDecodeError::Unsupported {
            api_version, kind, ..
        } => format!("kind: {kind:?} of apiVersion {api_version:?} is not supported"),
        K8sDecodeError::Syntax { message, .. } => message.clone(),
        K8sDecodeError::Empty { .. } => "no resources found".into(),
    }
}

/// Defaults and validates one object: a Calico resource as libcalico-go's client does, a
/// Kubernetes object as the API server does.
fn admit(doc: &mut Doc, loc: &DocumentLocation) -> Result<(), DocumentError> {
    match doc {
        Doc::Calico(r) => {
            r.apply_defaults();
            r.validate().map_err(|errors| DocumentError::Invalid {
                location: loc.clone(),
                errors,
            })
        }
        Doc::Kube(r) => {
            // kubectl fills an absent namespace from its context; calicoctl's `-n` plays that
            // role and is resolved later (`commands`), so the API server's `default` is only
            // used to validate and then taken back out.
            let had_namespace = !r.metadata().namespace.is_empty();
            r.apply_defaults();
            r.validate().map_err(|errors| DocumentError::Invalid {
                location: loc.clone(),
                errors,
            })?;
            if !had_namespace {
                crate::k8s::set_namespace(r, String::new());
            }
            Ok(())
        }
    }
}

/// calicoctl's `MassageError`: an unknown field is reported as "field in document is not
/// recognized or is in the wrong location".
fn massage(msg: &str) -> String {
    if let Some(i) = msg.find("unknown field `") {
        let rest = &msg[i + "unknown field `".len()..];
        if let Some(end) = rest.find('`') {
            return format!(
                "{}field in document is not recognized or is in the wrong location: {}",
                &msg[..i],
                &rest[..end]
            );
        }
    }
    msg.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIXED: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---\n\
        apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
        metadata: {name: p, namespace: prod}\nspec: {selector: all()}\n---\n\
        apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web}\n\
        spec: {podSelector: {}, ingress: [{ports: [{port: 80}]}]}\n";

    fn kinds(docs: &[LocatedDoc]) -> Vec<String> {
        docs.iter()
            .map(|d| match &d.doc {
                Doc::Calico(r) => format!("v3 {}", r.kind()),
                Doc::Kube(r) => format!("{} {}", r.api_version(), r.kind()),
            })
            .collect()
    }

    #[test]
    fn mixed_documents_go_to_their_decoders() {
        let docs = decode_text("m.yaml", MIXED, Check::Validate).unwrap();
        assert_eq!(
            kinds(&docs),
            [
                "v1 Namespace",
                "v3 NetworkPolicy",
                "networking.k8s.io/v1 NetworkPolicy"
            ]
        );
        assert_eq!(docs[2].location.to_string(), "m.yaml doc 3");
        let Doc::Kube(k) = &docs[2].doc else { panic!() };
        let K8sResource::NetworkPolicy(np) = k.as_ref() else {
            panic!()
        };
        // Admitted: the API server's defaults are in, but the namespace is left to `-n`.
        assert_eq!(np.spec.ingress[0].ports[0].protocol.as_deref(), Some("TCP"));
        assert_eq!(np.spec.policy_types, ["Ingress"]);
        assert!(np.metadata.namespace.is_empty());
        let Doc::Calico(r) = &docs[1].doc else {
            panic!()
        };
        // Calico's defaulting ran on the v3 policy.
        assert_eq!(r.to_json_value()["spec"]["tier"], "default");

        // Decoding only: no defaults.
        let docs = decode_text("m.yaml", MIXED, Check::Decode).unwrap();
        let Doc::Kube(k) = &docs[2].doc else { panic!() };
        let K8sResource::NetworkPolicy(np) = k.as_ref() else {
            panic!()
        };
        assert!(np.spec.ingress[0].ports[0].protocol.is_none());
    }

    #[test]
    fn lists_of_either_api() {
        let text = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicyList\nitems:\n\
            - metadata: {name: a, namespace: x}\n  spec: {podSelector: {}}\n---\n\
            apiVersion: projectcalico.org/v3\nkind: NetworkPolicyList\nitems:\n\
            - metadata: {name: b, namespace: x}\n  spec: {selector: all()}\n---\n\
            apiVersion: v1\nkind: List\nitems:\n\
            - {apiVersion: v1, kind: ServiceAccount, metadata: {name: sa, namespace: x}}\n\
            - {apiVersion: projectcalico.org/v3, kind: Tier, metadata: {name: t}, spec: {order: 5}}\n";
        let docs = decode_text("l.yaml", text, Check::Validate).unwrap();
        assert_eq!(
            kinds(&docs),
            [
                "networking.k8s.io/v1 NetworkPolicy",
                "v3 NetworkPolicy",
                "v1 ServiceAccount",
                "v3 Tier"
            ]
        );
        assert_eq!(docs[3].location.to_string(), "l.yaml doc 3 item 2");
    }

    #[test]
    fn kubernetes_errors_name_document_and_field() {
        let bad_port = "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\n\
            spec: {order: 5}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
            metadata: {name: web, namespace: x}\n\
            spec: {podSelector: {}, ingress: [{ports: [{port: 0}]}]}\n";
        let e = decode_text("b.yaml", bad_port, Check::Validate)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("b.yaml doc 2: spec.ingress[0].ports[0].port: "),
            "{e}"
        );
        // Decoding alone does not validate.
        assert!(decode_text("b.yaml", bad_port, Check::Decode).is_ok());

        let unknown = "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\nspek: {}\n";
        let e = massage(
            &decode_text("u.yaml", unknown, Check::Decode)
                .unwrap_err()
                .to_string(),
        );
        assert_eq!(
            e,
            "u.yaml doc 1: spek: field in document is not recognized or is in the wrong \
             location: spek"
        );

        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n";
        let e = decode_text("p.yaml", pod, Check::Decode)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.yaml doc 1: kind: \"Pod\" of apiVersion \"v1\" is not supported"),
            "{e}"
        );

        let no_kind = "apiVersion: networking.k8s.io/v1\nmetadata: {name: x}\n";
        let e = decode_text("k.yaml", no_kind, Check::Decode)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "k.yaml doc 1: kind: missing");

        // Calico documents keep calico-api's messages.
        let v2 = "apiVersion: projectcalico.org/v2\nkind: Tier\nmetadata: {name: t}\n";
        let e = decode_text("v.yaml", v2, Check::Decode)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("v.yaml doc 1: apiVersion: unsupported"),
            "{e}"
        );
        assert!(matches!(
            decode_text("e.yaml", "---\n", Check::Decode),
            Err(DocumentError::Empty { .. })
        ));
    }

    #[test]
    fn unknown_fields_are_massaged() {
        assert_eq!(
            massage("f.yaml doc 1: spec: unknown field `cidrx`, expected one of `cidr`"),
            "f.yaml doc 1: spec: field in document is not recognized or is in the wrong location: cidrx"
        );
        assert_eq!(massage("other"), "other");
    }
}
