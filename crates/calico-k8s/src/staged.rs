//! StagedKubernetesNetworkPolicy → staged Calico policy (Calico
//! `ConvertStagedKubernetesNetworkPolicyV3ToV1Value` up to the v1 model:
//! `ConvertStagedKubernetesPolicyToK8SEnforced` then `K8sNetworkPolicyToCalico`).
//!
//! A staged Kubernetes policy is a Kubernetes NetworkPolicy spec plus a `stagedAction`; Felix
//! evaluates the converted policy for flow-log audit only. Unlike the enforced path, any rule
//! that fails to convert fails the whole staged policy (Calico returns the error and sends
//! nothing), and `stagedAction: Delete` produces nothing at all.

use calico_api::policy::{NetworkPolicy as CalicoPolicy, StagedAction};
use calico_api::stagedk8spolicy::StagedKubernetesNetworkPolicy;

use crate::convert::{PolicyConversionError, k8s_network_policy_to_calico};
use crate::profile::ConversionError;
use crate::types::{NetworkPolicy, NetworkPolicySpec};

/// Why a staged Kubernetes policy could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StagedConversionError {
    #[error("{0}")]
    Conversion(#[from] ConversionError),
    #[error("{0}")]
    Rules(#[from] PolicyConversionError),
}

/// The converted staged policy: the action to stage and the Calico policy it would enforce.
#[derive(Debug, Clone, PartialEq)]
pub struct StagedConversion {
    /// As written; Calico leaves it unset when the user did (the CRD default is `Set`).
    pub staged_action: Option<StagedAction>,
    pub policy: CalicoPolicy,
}

/// `ConvertStagedKubernetesPolicyToK8SEnforced`: the Kubernetes policy a staged one stands for.
/// Metadata is copied except `resourceVersion` and `uid`, which must not carry over to a new
/// object.
pub fn staged_to_enforced(
    staged: &StagedKubernetesNetworkPolicy,
) -> Result<(Option<StagedAction>, NetworkPolicy), StagedConversionError> {
    // The staged spec is the Kubernetes spec plus `stagedAction` (`calico_api::k8s` shapes).
    let spec = NetworkPolicySpec {
        pod_selector: staged.spec.pod_selector.clone(),
        ingress: staged.spec.ingress.clone(),
        egress: staged.spec.egress.clone(),
        policy_types: staged.spec.policy_types.clone(),
    };
    let mut metadata = staged.metadata.clone();
    metadata.resource_version.clear();
    metadata.uid.clear();
    Ok((staged.spec.staged_action, NetworkPolicy { metadata, spec }))
}

/// Converts a staged Kubernetes policy as Calico's syncer does: `None` for
/// `stagedAction: Delete`; an error if the UID is bad or any rule does not convert.
pub fn staged_k8s_policy_to_calico(
    staged: &StagedKubernetesNetworkPolicy,
) -> Result<Option<StagedConversion>, StagedConversionError> {
    if staged.spec.staged_action == Some(StagedAction::Delete) {
        return Ok(None);
    }
    let (staged_action, np) = staged_to_enforced(staged)?;
    let conv = k8s_network_policy_to_calico(&np)?;
    if let Some(err) = conv.error() {
        return Err(err.into());
    }
    Ok(Some(StagedConversion {
        staged_action,
        policy: conv.policy,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(v: serde_json::Value) -> StagedKubernetesNetworkPolicy {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn converts_like_the_enforced_policy() {
        let s = staged(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "9",
                         "uid": "30316465-6365-4463-ad63-3564622d3638", "labels": {"a": "b"}},
            "spec": {"stagedAction": "Set", "podSelector": {"matchLabels": {"app": "x"}},
                     "ingress": [{"ports": [{"port": 80}, {"port": 81}],
                                  "from": [{"namespaceSelector": {}}]}],
                     "policyTypes": ["Ingress"]}
        }));
        let (action, np) = staged_to_enforced(&s).unwrap();
        assert_eq!(action, Some(StagedAction::Set));
        assert!(np.metadata.uid.is_empty() && np.metadata.resource_version.is_empty());
        assert_eq!(np.metadata.labels["a"], "b");
        let got = staged_k8s_policy_to_calico(&s).unwrap().unwrap();
        assert_eq!(got.staged_action, Some(StagedAction::Set));
        let want = k8s_network_policy_to_calico(&np).unwrap().policy;
        assert_eq!(got.policy, want);
        assert!(got.policy.metadata.uid.is_empty());
        assert_eq!(
            got.policy.spec.selector,
            "projectcalico.org/orchestrator == 'k8s' && app == 'x'"
        );
        assert_eq!(
            got.policy.spec.ingress[0].destination.ports[0].to_string(),
            "80:81"
        );
        assert_eq!(
            got.policy.spec.ingress[0].source.namespace_selector,
            "all()"
        );
    }

    #[test]
    fn delete_gives_nothing_and_bad_rules_fail_the_whole_policy() {
        let del = staged(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"}, "spec": {"stagedAction": "Delete"}}));
        assert_eq!(staged_k8s_policy_to_calico(&del), Ok(None));

        let bad = staged(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": 80}]},
                                                    {"ports": [{"port": "-1:-2"}]}]}}));
        let err = staged_k8s_policy_to_calico(&bad).unwrap_err();
        assert!(matches!(&err, StagedConversionError::Rules(e) if e.rules.len() == 1));
        assert!(
            err.to_string()
                .starts_with("policy: p: error with rule spec.ingress[1] (k8s rule couldn't be converted: failed to parse k8s port: invalid port -1:-2"),
            "{err}"
        );
    }
}
