//! Kubernetes-style object metadata, as every `projectcalico.org/v3` resource carries it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::validation;

/// `metadata` of a resource (Kubernetes `ObjectMeta`). Fields Calico does not interpret
/// (owner references, managed fields) are carried through unchanged so nothing a user wrote is
/// lost on a round trip.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generate_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The datastore revision of the stored object (etcd ModRevision); cleared before storing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// RFC 3339 time the object was first stored; `null` is accepted on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "scalar_string_map"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "scalar_string_map"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_fields: Vec<serde_json::Value>,
}

impl ObjectMeta {
    pub fn named(name: &str) -> Self {
        ObjectMeta {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Calico's `validateObjectMeta`: the name is a DNS-1123 subdomain (≤ 253 chars), label keys
    /// and values and annotation keys follow Kubernetes' rules. Kinds with stricter name rules
    /// (tiers, policies) check those in their own `validate`.
    pub fn validate(&self, path: &FieldPath, errs: &mut FieldErrors) {
        let name_path = path.field("name");
        if self.name.is_empty() {
            errs.push(&name_path, "name is required");
        } else {
            if self.name.len() > validation::DNS1123_SUBDOMAIN_MAX_LEN {
                errs.push(
                    &name_path,
                    format!(
                        "name is too long by {} bytes",
                        self.name.len() - validation::DNS1123_SUBDOMAIN_MAX_LEN
                    ),
                );
            }
            if !validation::is_dns1123_subdomain(&self.name) {
                errs.push(
                    &name_path,
                    format!(
                        "name must consist of lower case alphanumeric characters, '-' or '.' \
                         (regex: {})",
                        validation::NAME_SUBDOMAIN_FMT
                    ),
                );
            }
        }
        validation::validate_labels(&self.labels, &path.field("labels"), errs);
        validation::validate_annotations(&self.annotations, &path.field("annotations"), errs);
    }
}

/// Reads a `map[string]string` the way calicoctl's YAML decoder does: it converts YAML to JSON
/// guided by the Go target type, so an unquoted scalar such as `routeReflector: true` or
/// `rack: 1` becomes the string `"true"` / `"1"` instead of a type error. `null` maps to empty.
fn scalar_string_map<'de, D>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let raw: Option<BTreeMap<String, serde_json::Value>> = Option::deserialize(deserializer)?;
    let mut out = BTreeMap::new();
    for (k, v) in raw.unwrap_or_default() {
        let s = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Null => String::new(),
            other => {
                return Err(D::Error::custom(format!(
                    "value of {k:?} must be a string, found {}",
                    crate::resource::json_type_name(&other)
                )));
            }
        };
        out.insert(k, s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquoted_label_scalars_become_strings() {
        let m: ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "n", "labels": {"routeReflector": true, "rack": 1, "app": "x"}
        }))
        .unwrap();
        assert_eq!(m.labels["routeReflector"], "true");
        assert_eq!(m.labels["rack"], "1");
        let bad = serde_json::from_value::<ObjectMeta>(serde_json::json!({
            "name": "n", "labels": {"a": [1]}
        }));
        assert!(bad.unwrap_err().to_string().contains("must be a string"));
    }
}
