//! StagedKubernetesNetworkPolicy (`api/pkg/apis/projectcalico/v3/stagedkubernetesnetworkpolicy.go`):
//! a Kubernetes `networking.k8s.io/v1` NetworkPolicy spec plus a `stagedAction`, evaluated for
//! audit only. The spec types here mirror the Kubernetes ones field for field.
//!
//! Validation follows Calico's `validateStagedKubernetesNetworkPolicy`: metadata rules; with
//! `stagedAction: Delete` every other spec field must be unset; otherwise the policy must convert
//! to a Calico policy the way `K8sNetworkPolicyToCalico` converts it — the part that can fail is
//! the port conversion (`port[:endPort]` must parse as a Calico port or range). The CRD adds the
//! `stagedAction` enum/default and at most two `policyTypes`. Calico applies no other defaults.

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::numorstring::Port;
use crate::policy::StagedAction;
use crate::resource::{CalicoResource, validate_namespaced_meta};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StagedKubernetesNetworkPolicy {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: StagedKubernetesNetworkPolicySpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StagedKubernetesNetworkPolicySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_action: Option<StagedAction>,
    /// Go has no omitempty here: `"podSelector": {}` is always written.
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub pod_selector: LabelSelector,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ingress: Vec<NetworkPolicyIngressRule>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub egress: Vec<NetworkPolicyEgressRule>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub policy_types: Vec<String>,
}

pub use crate::k8s::{
    IntOrString, IpBlock, LabelSelector, LabelSelectorRequirement, NetworkPolicyEgressRule,
    NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
};

impl NetworkPolicyPort {
    /// Calico `k8sPortToCalico`: `port` or `port:endPort` parsed as a Calico port; `None` when
    /// no port is given (all ports).
    pub fn to_calico(&self) -> Result<Option<Port>, String> {
        let Some(port) = &self.port else {
            return Ok(None);
        };
        let mut text = port.to_string();
        if let Some(end) = self.end_port {
            text = format!("{text}:{end}");
        }
        Port::parse(&text)
            .map(Some)
            .map_err(|e| format!("invalid port {text}: {e}"))
    }
}

impl StagedKubernetesNetworkPolicySpec {
    fn is_zero_except_action(&self) -> bool {
        self.pod_selector == LabelSelector::default()
            && self.ingress.is_empty()
            && self.egress.is_empty()
            && self.policy_types.is_empty()
    }
}

fn validate_ports(ports: &[NetworkPolicyPort], path: &FieldPath, errs: &mut FieldErrors) {
    for (i, p) in ports.iter().enumerate() {
        if let Err(e) = p.to_calico() {
            errs.push(
                &path.index(i),
                format!(
                    "conversion to stagednetworkpolicy failed: k8s rule couldn't be converted: {e}"
                ),
            );
        }
    }
}

impl CalicoResource for StagedKubernetesNetworkPolicy {
    const KIND: &'static str = "StagedKubernetesNetworkPolicy";

    crate::resource::metadata_accessors!();
    fn apply_defaults(&mut self) {
        // CRD default; Calico's client runs no other defaulting for this kind.
        self.spec.staged_action.get_or_insert(StagedAction::Set);
    }
    fn validate(&self, errs: &mut FieldErrors) {
        validate_namespaced_meta(&self.metadata, errs);
        let spec = FieldPath::root().field("spec");
        let types = spec.field("policyTypes");
        if self.spec.policy_types.len() > 2 {
            errs.push(
                &types,
                format!(
                    "Too many: {}: must have at most 2 items",
                    self.spec.policy_types.len()
                ),
            );
        }
        if self.spec.staged_action == Some(StagedAction::Delete) {
            if !self.spec.is_zero_except_action() {
                errs.push(
                    &spec,
                    "Spec fields should all be zero-value if stagedAction is Delete",
                );
            }
            return;
        }
        let ingress: Vec<&[NetworkPolicyPort]> = self
            .spec
            .ingress
            .iter()
            .map(|r| r.ports.as_slice())
            .collect();
        let egress: Vec<&[NetworkPolicyPort]> = self
            .spec
            .egress
            .iter()
            .map(|r| r.ports.as_slice())
            .collect();
        for (direction, rules) in [("ingress", ingress), ("egress", egress)] {
            for (i, ports) in rules.into_iter().enumerate() {
                validate_ports(ports, &spec.field(direction).index(i).field("ports"), errs);
            }
        }
    }
}
