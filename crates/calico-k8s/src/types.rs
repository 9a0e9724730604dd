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

use calico_api::ObjectMeta;
use serde::de::Deserializer;
use serde::{Deserialize, Serialize};

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

pub use calico_api::k8s::{
    IntOrString, IpBlock, LabelSelector, LabelSelectorRequirement, NetworkPolicyEgressRule,
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
};

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
