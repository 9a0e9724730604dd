//! What the policy calculation reads from the datastore: every `projectcalico.org/v3`
//! resource of the kinds Felix's calculation graph uses (`felix/calc/calc_graph.go`:
//! endpoints, policies, tiers, profiles, network sets), read with one list of the v3 root
//! and followed with one watch of it, so that no change falls between list and watch.

use calico_api::{KindInfo, Resource};
use calico_client::codec::decode_stored;
use calico_client::keys::{RESOURCES_ROOT, parse_key};
use calico_datastore::KeyValue;

/// The kinds the calculation graph consumes.
pub const POLICY_KINDS: [&str; 8] = [
    "WorkloadEndpoint",
    "HostEndpoint",
    "NetworkPolicy",
    "GlobalNetworkPolicy",
    "Tier",
    "Profile",
    "NetworkSet",
    "GlobalNetworkSet",
];

/// Identity of a stored policy-relevant object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kind: &'static KindInfo,
    pub namespace: String,
    pub name: String,
}

/// The kind, namespace and name of `key` when it is one of [`POLICY_KINDS`]; `None` for
/// other kinds and for keys of an unexpected shape (skipped, as Calico's syncer skips them).
pub fn classify(key: &str) -> Option<StoredKey> {
    let rest = key.strip_prefix(RESOURCES_ROOT)?;
    let plural = rest.split('/').next()?;
    let kind = calico_api::kinds::all_kinds()
        .iter()
        .find(|k| k.plural == plural && POLICY_KINDS.contains(&k.kind))?;
    let (namespace, name) = parse_key(kind, key)?;
    Some(StoredKey {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// Decodes a stored value the way calicoctl reads it (defaults and policy-name fix-ups
/// included). An error names the key and what is wrong with the value.
pub fn decode(key: &StoredKey, kv: &KeyValue) -> Result<Resource, String> {
    decode_stored(key.kind, kv).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified_by_kind() {
        let k =
            classify("/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow").unwrap();
        assert_eq!(
            (k.kind.kind, k.namespace.as_str(), k.name.as_str()),
            ("NetworkPolicy", "prod", "allow")
        );
        let k =
            classify("/calico/resources/v3/projectcalico.org/globalnetworkpolicies/deny").unwrap();
        assert_eq!(
            (k.kind.kind, k.namespace.as_str()),
            ("GlobalNetworkPolicy", "")
        );
        let k = classify(
            "/calico/resources/v3/projectcalico.org/workloadendpoints/ns1/n1-k8s-pod-eth0",
        )
        .unwrap();
        assert_eq!(k.kind.kind, "WorkloadEndpoint");
        // Kinds the graph does not use, and malformed keys, are skipped.
        assert!(classify("/calico/resources/v3/projectcalico.org/ippools/default").is_none());
        assert!(classify("/calico/resources/v3/projectcalico.org/nodes/n1").is_none());
        assert!(
            classify("/calico/resources/v3/projectcalico.org/networkpolicies/only-ns").is_none()
        );
        assert!(classify("/calico/ipam/v2/host/n1").is_none());
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        let key = "/calico/resources/v3/projectcalico.org/tiers/security";
        let k = classify(key).unwrap();
        let kv = KeyValue {
            key: key.into(),
            value: b"{not json".to_vec(),
            create_revision: 1,
            mod_revision: 1,
            version: 1,
            lease: 0,
        };
        let err = decode(&k, &kv).unwrap_err();
        assert!(err.contains("tiers/security"), "{err}");
    }
}
