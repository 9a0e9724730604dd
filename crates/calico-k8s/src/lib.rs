//! calico-k8s: the Kubernetes resources Calico turns into Calico policy objects, and the
//! conversions themselves, exactly as `libcalico-go/lib/backend/k8s/conversion/conversion.go`
//! does them.
//!
//! It owns:
//! - typed `networking.k8s.io/v1` NetworkPolicy and the `v1` Namespace / ServiceAccount shapes
//!   ([`types`]), decoded from YAML or JSON the way `kubectl` sends them ([`decode`]), with the
//!   API server's defaulting and validation (errors name the field:
//!   `spec.ingress[0].ports[1].port: Invalid value: ...`, see [`validate`]);
//! - `K8sNetworkPolicyToCalico` ([`convert::k8s_network_policy_to_calico`]): tier `default`,
//!   order 1000, label selectors rewritten to Calico selector text ([`selector`]), one rule per
//!   protocol × peer, named ports, `endPort` ranges, `ipBlock` → `nets`/`notNets`, `policyTypes`
//!   handling, unconvertible rules dropped and reported;
//! - `NamespaceToProfile` / `ServiceAccountToProfile` ([`profile`]): `kns.<ns>` / `ksa.<ns>.<sa>`
//!   profiles carrying `pcns.` / `pcsa.` labels, UID conversion, profile revisions;
//! - the staged variant: `StagedKubernetesNetworkPolicy` → staged Calico policy ([`staged`]).
//!
//! Pure: no I/O, no datastore, no Kubernetes client. It depends only on `calico-api` (the output
//! types and shared validators) and must not depend on anything that talks to a network, a
//! datastore or a dataplane.
//!
//! ```
//! let yaml = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
//!     metadata: {name: allow-web, namespace: prod}\n\
//!     spec:\n  podSelector: {matchLabels: {app: web}}\n\
//!     \x20 ingress: [{ports: [{port: 80}, {port: 81}], from: [{namespaceSelector: {}}]}]\n";
//! let objs = calico_k8s::decode_and_admit("web.yaml", yaml).unwrap();
//! let calico_k8s::K8sResource::NetworkPolicy(np) = &objs[0] else { unreachable!() };
//! let conv = calico_k8s::k8s_network_policy_to_calico(np).unwrap();
//! let spec = &conv.policy.spec;
//! assert_eq!(spec.selector, "projectcalico.org/orchestrator == 'k8s' && app == 'web'");
//! assert_eq!(spec.order, Some(1000.0));
//! assert_eq!(spec.ingress[0].source.namespace_selector, "all()");
//! assert_eq!(spec.ingress[0].destination.ports[0].to_string(), "80:81");
//! ```
//!
//! Label rewriting that happens *after* this conversion (a namespaced policy's selectors ANDed
//! with `projectcalico.org/namespace == '<ns>'`, namespace selectors prefixed with `pcns.`) is
//! Calico's v3→v1 update processor and belongs to the calculation graph, not here.

pub mod convert;
pub mod decode;
pub mod profile;
pub mod selector;
pub mod staged;
pub mod types;
pub mod validate;

pub use convert::{
    CalicoObject, DroppedRule, InvalidPort, KIND_KUBERNETES_NETWORK_POLICY,
    LEGACY_POLICY_NAME_PREFIX, PeerFields, PolicyConversion, PolicyConversionError,
    RuleConversionError, RuleDirection, convert_resource, k8s_network_policy_to_calico,
    k8s_peer_to_calico_fields, legacy_policy_name, simplify_ports,
};
pub use decode::{DecodeError, K8sResource, decode_and_admit, decode_documents, decode_value};
pub use profile::{
    ConversionError, NAME_LABEL, NAMESPACE_LABEL_PREFIX, NAMESPACE_PROFILE_PREFIX,
    ProfileConversion, SERVICE_ACCOUNT_LABEL_PREFIX, SERVICE_ACCOUNT_PROFILE_PREFIX, convert_uid,
    join_profile_revisions, namespace_to_profile, profile_name_to_namespace,
    profile_name_to_service_account, service_account_to_profile, split_profile_revision,
};
pub use selector::{SelectorType, k8s_selector_to_calico};
pub use staged::{StagedConversion, StagedConversionError, staged_k8s_policy_to_calico};
pub use types::{
    IntOrString, IpBlock, LabelSelector, LabelSelectorRequirement, Namespace, NetworkPolicy,
    NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec, ServiceAccount,
};
