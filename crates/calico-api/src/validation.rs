//! Shared validators (Kubernetes name/label rules and Calico's common formats) used by every
//! kind's `validate`. Messages follow the Kubernetes/Calico wording users already know.

use std::collections::BTreeMap;

use crate::errors::{FieldErrors, FieldPath};

pub const DNS1123_LABEL_MAX_LEN: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;
pub const QUALIFIED_NAME_MAX_LEN: usize = 63;
pub const LABEL_VALUE_MAX_LEN: usize = 63;
/// Kubernetes' limit on the total size of all annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Calico's `nameLabelFmt` / `nameSubdomainFmt` regexes, quoted in error messages.
pub const NAME_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
pub const NAME_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

/// One DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?` (length not checked here).
pub fn is_dns1123_label_format(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A DNS-1123 label of at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= DNS1123_LABEL_MAX_LEN && is_dns1123_label_format(s)
}

/// Dot-separated DNS-1123 labels (Calico's `nameRegex`; length not checked here).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_dns1123_label_format)
}

/// The name part of a qualified name / a non-empty label value:
/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Kubernetes `IsQualifiedName`: `[prefix/]name`, prefix a DNS-1123 subdomain, name ≤ 63 chars.
/// Returns every problem found (empty = valid).
pub fn qualified_name_errors(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push("prefix part must be non-empty".to_string());
        } else if p.len() > DNS1123_SUBDOMAIN_MAX_LEN {
            out.push(format!(
                "prefix part must be no more than {DNS1123_SUBDOMAIN_MAX_LEN} characters"
            ));
        } else if !is_dns1123_subdomain(p) {
            out.push(format!(
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case \
                 alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
                 character (regex used for validation is '{NAME_SUBDOMAIN_FMT}')"
            ));
        }
        if name.contains('/') {
            out.push(
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and \
                 must start and end with an alphanumeric character with an optional DNS subdomain \
                 prefix and '/'"
                    .to_string(),
            );
            return out;
        }
    }
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX_LEN {
        out.push(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX_LEN} characters"
        ));
    } else if !is_qualified_name_part(name) {
        out.push(format!(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start \
             and end with an alphanumeric character (regex used for validation is \
             '{QUALIFIED_NAME_FMT}')"
        ));
    }
    out
}

/// Kubernetes `IsValidLabelValue`: empty, or ≤ 63 chars of the qualified-name-part format.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    if value.is_empty() {
        return out;
    }
    if value.len() > LABEL_VALUE_MAX_LEN {
        out.push(format!(
            "must be no more than {LABEL_VALUE_MAX_LEN} characters"
        ));
    }
    if !is_qualified_name_part(value) {
        out.push(format!(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', \
             '_' or '.', and must start and end with an alphanumeric character (regex used for \
             validation is '{QUALIFIED_NAME_FMT}')"
        ));
    }
    out
}

/// Calico's `validateObjectMetaLabels`: every key a qualified name, every value a label value.
pub fn validate_labels(
    labels: &BTreeMap<String, String>,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    for (k, v) in labels {
        for e in qualified_name_errors(k) {
            errs.push(&path.key(k), format!("invalid label key {k:?}: {e}"));
        }
        for e in label_value_errors(v) {
            errs.push(&path.key(k), format!("invalid label value {v:?}: {e}"));
        }
    }
}

/// Calico's `validateObjectMetaAnnotations`: keys are qualified names (checked lower-cased),
/// total size at most 256 KiB.
pub fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    let mut total = 0usize;
    for (k, v) in annotations {
        for e in qualified_name_errors(&k.to_ascii_lowercase()) {
            errs.push(&path.key(k), format!("invalid annotation key {k:?}: {e}"));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(
            path,
            format!("annotations total size {total} exceeds the limit of {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"),
        );
    }
}

/// A selector field: must parse with Calico's selector grammar.
pub fn validate_selector(selector: &str, path: &FieldPath, errs: &mut FieldErrors) {
    if let Err(e) = calico_selector::validate(selector) {
        errs.push(path, format!("invalid selector {selector:?}: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns1123_subdomain("default-ipv4-ippool"));
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("Upper"));
        assert!(!is_dns1123_subdomain("-lead"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain(""));
        assert!(is_dns1123_label("tier1"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
    }

    #[test]
    fn label_rules() {
        assert!(qualified_name_errors("app").is_empty());
        assert!(qualified_name_errors("projectcalico.org/namespace").is_empty());
        assert!(!qualified_name_errors("/app").is_empty());
        assert!(!qualified_name_errors("a/b/c").is_empty());
        assert!(!qualified_name_errors("-app").is_empty());
        assert!(!qualified_name_errors(&"a".repeat(64)).is_empty());
        assert!(label_value_errors("").is_empty());
        assert!(label_value_errors("v1.2_x-y").is_empty());
        assert!(!label_value_errors("bad value").is_empty());
    }
}
