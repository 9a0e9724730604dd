//! The Kubernetes `networking.k8s.io/v1` NetworkPolicy spec shapes
//! (`k8s.io/api/networking/v1/types.go`, `metav1.LabelSelector`, `intstr.IntOrString`) that
//! two kinds share: Kubernetes NetworkPolicy itself (calico-k8s) and Calico's
//! StagedKubernetesNetworkPolicy (`crate::stagedk8spolicy`), whose spec is the same plus a
//! `stagedAction`.
//!
//! Field names, optionality and JSON shapes follow the Kubernetes types so that what `kubectl`
//! accepts decodes here: unknown fields are rejected, a `null` list or selector reads as
//! absent, `port` is a number or a string. Presence matters and is kept: a peer's
//! `podSelector: {}` (all pods) differs from no `podSelector`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// `metav1.LabelSelector`: `matchLabels` ANDed with `matchExpressions`; empty selects all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
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
        deserialize_with = "crate::netutil::null_as_default",
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
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<NetworkPolicyPort>,
    /// Empty: from anywhere.
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
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
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<NetworkPolicyPort>,
    /// Empty: to anywhere.
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
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
        deserialize_with = "crate::netutil::null_as_default",
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
