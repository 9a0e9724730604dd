//! The Kubernetes kinds calicoctl accepts next to `projectcalico.org/v3` ones:
//! `networking.k8s.io/v1` NetworkPolicy and `v1` Namespace / ServiceAccount.
//!
//! Calico's etcd datastore holds no Kubernetes objects. In an etcd-mode cluster,
//! calico-kube-controllers watches the Kubernetes API and writes what each object means to
//! Calico (`kube-controllers/pkg/converter/*_converter.go`):
//! - a NetworkPolicy becomes the Calico NetworkPolicy `knp.default.<name>` in the same namespace
//!   (`KubernetesNetworkPolicyEtcdPrefix`; libcalico-go `K8sNetworkPolicyToCalico`; rules that
//!   cannot be converted are dropped and the rest stored);
//! - a Namespace becomes the Profile `kns.<name>` (`NamespaceToProfile`);
//! - a ServiceAccount becomes the Profile `ksa.<namespace>.<name>` (`ServiceAccountToProfile`).
//!
//! The controllers keep only name (and namespace) of the converted object's metadata, so
//! resourceVersion, UID and timestamps of the Kubernetes object never reach the datastore. The
//! conversions themselves are `calico-k8s`'s; this module maps kinds, names and datastore
//! objects, so `apply`/`create`/`replace`/`delete`/`get` can play the API server plus the
//! controllers for these kinds.

use calico_api::{ObjectMeta, Resource};
use calico_k8s::{
    CalicoObject, DroppedRule, K8sResource, LEGACY_POLICY_NAME_PREFIX, NAMESPACE_PROFILE_PREFIX,
    SERVICE_ACCOUNT_PROFILE_PREFIX, convert_resource, legacy_policy_name,
};

/// One of the Kubernetes kinds calicoctl converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeKind {
    NetworkPolicy,
    Namespace,
    ServiceAccount,
}

/// Names accepted on the command line (lower case), after kubectl's: the resource, its plural,
/// its short name and, for NetworkPolicy, the group-qualified forms. Plain `networkpolicy`
/// stays Calico's NetworkPolicy, as in calicoctl.
const NAMES: &[(&str, KubeKind)] = &[
    ("networkpolicy.networking.k8s.io", KubeKind::NetworkPolicy),
    ("networkpolicies.networking.k8s.io", KubeKind::NetworkPolicy),
    ("netpol", KubeKind::NetworkPolicy),
    ("netpols", KubeKind::NetworkPolicy),
    ("namespace", KubeKind::Namespace),
    ("namespaces", KubeKind::Namespace),
    ("ns", KubeKind::Namespace),
    ("serviceaccount", KubeKind::ServiceAccount),
    ("serviceaccounts", KubeKind::ServiceAccount),
    ("sa", KubeKind::ServiceAccount),
];

impl KubeKind {
    pub fn of(r: &K8sResource) -> KubeKind {
        match r {
            K8sResource::NetworkPolicy(_) => KubeKind::NetworkPolicy,
            K8sResource::Namespace(_) => KubeKind::Namespace,
            K8sResource::ServiceAccount(_) => KubeKind::ServiceAccount,
        }
    }

    /// The kind a command-line name means (case-insensitive), if it is one of these.
    pub fn lookup(name: &str) -> Option<KubeKind> {
        let lower = name.to_ascii_lowercase();
        NAMES.iter().find(|(n, _)| *n == lower).map(|(_, k)| *k)
    }

    /// How messages name the kind. NetworkPolicy carries its group so it is never mistaken for
    /// Calico's kind of the same name.
    pub fn display(self) -> &'static str {
        match self {
            KubeKind::NetworkPolicy => "NetworkPolicy.networking.k8s.io",
            KubeKind::Namespace => "Namespace",
            KubeKind::ServiceAccount => "ServiceAccount",
        }
    }

    /// Whether the Kubernetes kind lives in a namespace (what `-n`/`-A` apply to).
    pub fn namespaced(self) -> bool {
        !matches!(self, KubeKind::Namespace)
    }

    /// The Calico kind the controllers store it as.
    pub fn stored_kind(self) -> &'static str {
        match self {
            KubeKind::NetworkPolicy => "NetworkPolicy",
            KubeKind::Namespace | KubeKind::ServiceAccount => "Profile",
        }
    }

    /// `(namespace, name)` of the Calico object for the Kubernetes object `namespace/name`
    /// (`namespace` already resolved; empty for a Namespace).
    pub fn stored_id(self, namespace: &str, name: &str) -> (String, String) {
        match self {
            KubeKind::NetworkPolicy => (namespace.to_string(), legacy_policy_name(name)),
            KubeKind::Namespace => (String::new(), format!("{NAMESPACE_PROFILE_PREFIX}{name}")),
            KubeKind::ServiceAccount => (
                String::new(),
                calico_k8s::profile::service_account_profile_name(namespace, name),
            ),
        }
    }

    /// Which stored objects belong to this kind within `namespace` ("" = every namespace):
    /// the Calico list scope and the name prefix to keep.
    pub fn stored_scope(self, namespace: &str) -> (Option<String>, String) {
        match self {
            KubeKind::NetworkPolicy => (
                (!namespace.is_empty()).then(|| namespace.to_string()),
                LEGACY_POLICY_NAME_PREFIX.to_string(),
            ),
            KubeKind::Namespace => (None, NAMESPACE_PROFILE_PREFIX.to_string()),
            KubeKind::ServiceAccount if namespace.is_empty() => {
                (None, SERVICE_ACCOUNT_PROFILE_PREFIX.to_string())
            }
            // Namespace names have no dots, so `ksa.<ns>.` never matches another namespace's.
            KubeKind::ServiceAccount => (
                None,
                format!("{SERVICE_ACCOUNT_PROFILE_PREFIX}{namespace}."),
            ),
        }
    }
}

/// The Kubernetes object's namespace (empty for a Namespace).
pub fn namespace_of(r: &K8sResource) -> &str {
    &r.metadata().namespace
}

fn metadata_mut(r: &mut K8sResource) -> &mut ObjectMeta {
    match r {
        K8sResource::NetworkPolicy(np) => &mut np.metadata,
        K8sResource::Namespace(n) => &mut n.metadata,
        K8sResource::ServiceAccount(sa) => &mut sa.metadata,
    }
}

/// Sets the namespace after calicoctl's `-n` resolution.
pub fn set_namespace(r: &mut K8sResource, ns: String) {
    metadata_mut(r).namespace = ns;
}

/// What the controllers would write for `r` (namespace resolved, admitted): the Calico object,
/// defaulted and validated as calico-kube-controllers' client would, and the Kubernetes rules
/// that could not be converted (left out, as the policy controller does).
pub fn to_calico(r: &K8sResource) -> Result<(Resource, Vec<DroppedRule>), String> {
    // The API server assigns uid, resourceVersion and creationTimestamp itself, ignoring what
    // a manifest says, and the controllers drop them from what they store; so a manifest's
    // values (e.g. a uid that is no UUID, which the UID conversion would refuse) play no part.
    let mut r = r.clone();
    let meta = metadata_mut(&mut r);
    meta.uid.clear();
    meta.resource_version.clear();
    meta.creation_timestamp = None;
    let r = &r;
    let converted = convert_resource(r).map_err(|e| e.to_string())?;
    let (ns, name) = KubeKind::of(r).stored_id(namespace_of(r), &r.metadata().name);
    // The converters keep only name and namespace ("ResourceVersion, CreationTimeStamp, etc
    // are not relevant so we ignore them").
    let meta = ObjectMeta {
        name,
        namespace: ns,
        ..ObjectMeta::default()
    };
    let (mut res, dropped) = match converted {
        CalicoObject::NetworkPolicy(mut conv) => {
            conv.policy.metadata = meta;
            (Resource::NetworkPolicy(conv.policy), conv.dropped)
        }
        CalicoObject::Profile(mut conv) => {
            conv.profile.metadata = meta;
            (Resource::Profile(conv.profile), Vec::new())
        }
    };
    res.apply_defaults();
    res.validate().map_err(|errs| {
        format!(
            "the converted {} {:?}: {errs}",
            res.kind(),
            res.metadata().name
        )
    })?;
    Ok((res, dropped))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn admit(text: &str) -> K8sResource {
        calico_k8s::decode_and_admit("t.yaml", text)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn command_line_names() {
        assert_eq!(
            KubeKind::lookup("NetworkPolicy.networking.k8s.io"),
            Some(KubeKind::NetworkPolicy)
        );
        assert_eq!(KubeKind::lookup("netpol"), Some(KubeKind::NetworkPolicy));
        assert_eq!(KubeKind::lookup("ns"), Some(KubeKind::Namespace));
        assert_eq!(
            KubeKind::lookup("ServiceAccounts"),
            Some(KubeKind::ServiceAccount)
        );
        // Plain `networkpolicy` is Calico's kind, never this one.
        assert_eq!(KubeKind::lookup("networkpolicy"), None);
        // No name here is also one of Calico's kind names.
        for (name, _) in NAMES {
            assert!(calico_api::lookup_kind(name).is_none(), "{name}");
        }
    }

    #[test]
    fn stored_names_follow_the_controllers() {
        assert_eq!(
            KubeKind::NetworkPolicy.stored_id("prod", "allow-web"),
            ("prod".to_string(), "knp.default.allow-web".to_string())
        );
        assert_eq!(
            KubeKind::Namespace.stored_id("", "prod"),
            (String::new(), "kns.prod".to_string())
        );
        assert_eq!(
            KubeKind::ServiceAccount.stored_id("prod", "web.v2"),
            (String::new(), "ksa.prod.web.v2".to_string())
        );
        assert_eq!(
            KubeKind::ServiceAccount.stored_scope("prod"),
            (None, "ksa.prod.".to_string())
        );
        assert_eq!(
            KubeKind::ServiceAccount.stored_scope(""),
            (None, "ksa.".to_string())
        );
        assert_eq!(
            KubeKind::NetworkPolicy.stored_scope("prod"),
            (Some("prod".to_string()), "knp.default.".to_string())
        );
        assert_eq!(
            KubeKind::NetworkPolicy.stored_scope(""),
            (None, "knp.default.".to_string())
        );
    }

    #[test]
    fn policy_conversion_keeps_only_name_and_namespace() {
        let np = admit(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
             metadata: {name: web, namespace: prod, uid: 30316465-6365-4463-ad63-3564383439ab, \
             resourceVersion: \"42\", labels: {a: b}}\n\
             spec: {podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: 80}]}]}\n",
        );
        let (res, dropped) = to_calico(&np).unwrap();
        assert!(dropped.is_empty());
        let Resource::NetworkPolicy(p) = &res else {
            panic!("{res:?}")
        };
        assert_eq!(p.metadata.name, "knp.default.web");
        assert_eq!(p.metadata.namespace, "prod");
        assert!(p.metadata.uid.is_empty());
        assert!(p.metadata.resource_version.is_empty());
        assert!(!p.metadata.labels.contains_key("a"));
        // The spec is calico-k8s's conversion, unchanged but for Calico's defaulting.
        let K8sResource::NetworkPolicy(k) = &np else {
            panic!()
        };
        let mut want = calico_k8s::k8s_network_policy_to_calico(k).unwrap().policy;
        want.metadata = p.metadata.clone();
        let mut want = Resource::NetworkPolicy(want);
        want.apply_defaults();
        assert_eq!(res, want);
        assert_eq!(p.spec.order, Some(1000.0));
        assert_eq!(
            p.spec.selector,
            "projectcalico.org/orchestrator == 'k8s' && app == 'web'"
        );
    }

    #[test]
    fn namespace_and_service_account_profiles() {
        let ns =
            admit("apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {team: a}}\n");
        let (res, _) = to_calico(&ns).unwrap();
        let Resource::Profile(p) = &res else {
            panic!("{res:?}")
        };
        assert_eq!(p.metadata.name, "kns.prod");
        assert_eq!(p.spec.labels_to_apply["pcns.team"], "a");
        assert_eq!(
            p.spec.labels_to_apply["pcns.projectcalico.org/name"],
            "prod"
        );
        // The API server's defaulting label arrives too.
        assert_eq!(
            p.spec.labels_to_apply["pcns.kubernetes.io/metadata.name"],
            "prod"
        );
        assert_eq!(p.spec.ingress.len(), 1);

        let mut sa =
            admit("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web, labels: {r: x}}\n");
        set_namespace(&mut sa, "dev".into());
        let (res, _) = to_calico(&sa).unwrap();
        let Resource::Profile(p) = &res else {
            panic!("{res:?}")
        };
        assert_eq!(p.metadata.name, "ksa.dev.web");
        assert_eq!(p.spec.labels_to_apply["pcsa.r"], "x");
        assert_eq!(p.spec.labels_to_apply["pcsa.projectcalico.org/name"], "web");
        assert!(p.spec.ingress.is_empty() && p.spec.egress.is_empty());
    }

    #[test]
    fn server_assigned_metadata_in_a_manifest_plays_no_part() {
        let ns = admit(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, uid: nope, \
             resourceVersion: \"7\", creationTimestamp: \"2020-01-01T00:00:00Z\"}\n",
        );
        // Calico's UID conversion would refuse "nope"; the API server never lets it through.
        let (res, _) = to_calico(&ns).unwrap();
        let m = res.metadata();
        assert_eq!(m.name, "kns.prod");
        assert!(m.uid.is_empty() && m.resource_version.is_empty());
        assert!(m.creation_timestamp.is_none());
    }
}
