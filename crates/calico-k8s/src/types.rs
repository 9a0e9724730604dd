//! The Kubernetes shapes Calico converts: `networking.k8s.io/v1` NetworkPolicy
//! (`k8s.io/api/networking/v1/types.go`), and the `v1` Namespace and ServiceAccount
//! (`k8s.io/api/core/v1/types.go`) of which only the metadata matters to Calico.
//!
//! Field names, optionality and JSON shapes follow the Kubernetes types so that what `kubectl`
//! accepts decodes here: unknown fields are rejected (kubectl's default strict field
//! validation), a `null` list or selector reads as absent, `port` is a number or a string
//! (`intstr.IntOrString`). `apiVersion` / `kind` are checked by [`crate::decode`], not stored.
//!
//! Presence matters in this API and is kept: a peer's `podSelector: {}` (all pods) differs from
//! no `podSelector`, an `ingress: []` from no rule at all only through `policyTypes`.

use std::collections::BTreeMap;
use std::fmt;

use calico_api::ObjectMeta;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// API group/version of NetworkPolicy.
pub const NETWORKING_API_VERSION: &str = "networking.k8s.io/v1";
/// API version of Namespace and ServiceAccount.
pub const CORE_API_VERSION: &str = "v1";

/// `null` reads as the default value (Go's decoder leaves a nil slice/map for `null`).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `networking.k8s.io/v1` NetworkPolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicy {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "null_as_default")]
    pub spec: NetworkPolicySpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicySpec {
    /// The pods the policy applies to; required in the API but `{}` (all pods of the
    /// namespace) when empty, and always written (Go has no `omitempty` here).
    #[serde(default, deserialize_with = "null_as_default")]
    pub pod_selector: LabelSelector,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ingress: Vec<NetworkPolicyIngressRule>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub egress: Vec<NetworkPolicyEgressRule>,
    /// `Ingress` and/or `Egress`; kept as text so an unsupported value is reported by
    /// validation with its path rather than as a decode error.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub policy_types: Vec<String>,
}

/// `metav1.LabelSelector`: `matchLabels` ANDed with `matchExpressions`; empty selects all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

impl LabelSelector {
    /// No terms at all (selects everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

/// One `matchExpressions` entry. `operator` is `In`, `NotIn`, `Exists` or `DoesNotExist`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub operator: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyIngressRule {
    /// Empty: all ports.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<NetworkPolicyPort>,
    /// Empty: from anywhere.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from: Vec<NetworkPolicyPeer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyEgressRule {
    /// Empty: all ports.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<NetworkPolicyPort>,
    /// Empty: to anywhere.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<NetworkPolicyPeer>,
}

/// A peer: pods (in this namespace, or in the namespaces `namespaceSelector` picks), or an
/// `ipBlock` (which excludes the other two).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_block: Option<IpBlock>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpBlock {
    #[serde(default)]
    pub cidr: String,
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub except: Vec<String>,
}

/// A port (number or named port) with its protocol; `endPort` makes a range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkPolicyPort {
    /// `TCP` (the default), `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i32>,
}

/// `intstr.IntOrString`: a JSON number (int32) or a JSON string. `"80"` stays a string, as in
/// Kubernetes (and is then not a valid port name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    Int(i32),
    Str(String),
}

impl fmt::Display for IntOrString {
    /// `intstr.IntOrString.String()`: the decimal number or the string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::Str(s) => f.write_str(s),
        }
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrString::Int(i) => s.serialize_i32(*i),
            IntOrString::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IntOrString, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("{v} does not fit in a 32-bit integer")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("{v} does not fit in a 32-bit integer")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IntOrString, E> {
                Err(E::custom(format!("{v} is not an integer")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::Str(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `v1` Namespace. Only the metadata (name, labels, uid, creationTimestamp, resourceVersion)
/// is used by Calico; `spec` / `status` are carried so `kubectl get -o yaml` output decodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Namespace {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// `v1` ServiceAccount. Only the metadata is used by Calico; the other fields are carried so
/// `kubectl get -o yaml` output decodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccount {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automount_service_account_token: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_or_string_shapes() {
        let p: NetworkPolicyPort =
            serde_json::from_value(serde_json::json!({"port": 80, "endPort": 90})).unwrap();
        assert_eq!(p.port, Some(IntOrString::Int(80)));
        assert_eq!(p.end_port, Some(90));
        let p: NetworkPolicyPort =
            serde_json::from_value(serde_json::json!({"port": "http"})).unwrap();
        assert_eq!(p.port, Some(IntOrString::Str("http".into())));
        let p: NetworkPolicyPort =
            serde_json::from_value(serde_json::json!({"port": "80"})).unwrap();
        assert_eq!(p.port, Some(IntOrString::Str("80".into())));
        assert!(
            serde_json::from_value::<NetworkPolicyPort>(serde_json::json!({"port": 1.5})).is_err()
        );
        assert!(
            serde_json::from_value::<NetworkPolicyPort>(serde_json::json!({"port": 4294967296u64}))
                .is_err()
        );
        assert_eq!(
            serde_json::to_value(IntOrString::Int(5)).unwrap(),
            serde_json::json!(5)
        );
    }

    #[test]
    fn null_and_presence() {
        let peer: NetworkPolicyPeer = serde_json::from_value(
            serde_json::json!({"podSelector": {}, "namespaceSelector": null}),
        )
        .unwrap();
        assert_eq!(peer.pod_selector, Some(LabelSelector::default()));
        assert_eq!(peer.namespace_selector, None);
        let spec: NetworkPolicySpec =
            serde_json::from_value(serde_json::json!({"podSelector": null, "ingress": null}))
                .unwrap();
        assert!(spec.ingress.is_empty());
        assert!(
            serde_json::from_value::<NetworkPolicySpec>(serde_json::json!({"podSelecter": {}}))
                .is_err()
        );
    }
}
