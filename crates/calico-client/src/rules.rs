//! Calico's per-kind client rules (the `libcalico-go/lib/clientv3/<kind>.go` wrappers around
//! the generic resource code), expressed over the JSON form of resources so they hold whatever
//! struct layout calico-api gives each kind:
//!
//! - singletons: ClusterInformation, KubeControllersConfiguration and IPAMConfiguration may only
//!   be named `default`;
//! - policies (`networkpolicy.go`, `globalnetworkpolicy.go`, staged variants): the tier must
//!   exist before a policy is created in it;
//! - tiers (`tier.go`): the built-in tiers cannot be deleted, nor can a tier that still holds
//!   policies;
//! - profiles (`profile.go`, `lib/resources/static.go`): `projectcalico-default-allow` is a
//!   virtual, read-only profile that get/list return but that is never stored;
//! - IP pools (`ippool.go`): a new pool may not overlap another pool; an existing pool's CIDR and
//!   blockSize cannot change.

use calico_api::{FieldErrors, FieldPath, KindInfo, Resource};
use serde_json::{Value, json};

use crate::client::Client;
use crate::codec::{is_policy_kind, policy_tier};
use crate::error::ClientError;

/// The virtual profile every etcd-mode Calico serves (`resources.DefaultAllowProfileName`).
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";

/// `(name, defaultAction, order)` of the tiers `EnsureInitialized` creates
/// (`names.DefaultTierName` etc., orders from `apiv3.DefaultTierOrder`, `KubeAdminTierOrder`,
/// `KubeBaselineTierOrder`).
pub const BUILTIN_TIERS: [(&str, &str, f64); 3] = [
    ("default", "Deny", 1_000_000.0),
    ("kube-admin", "Pass", 1_000.0),
    ("kube-baseline", "Pass", 10_000_000.0),
];

/// Tiers that can never be deleted (`names.TierIsProtected`).
pub fn tier_is_protected(name: &str) -> bool {
    BUILTIN_TIERS.iter().any(|(n, _, _)| *n == name)
}

fn singleton_message(kind: &str) -> Option<&'static str> {
    match kind {
        "ClusterInformation" => {
            Some("Cannot create a Cluster Information resource with a name other than \"default\"")
        }
        "KubeControllersConfiguration" => Some(
            "Cannot create a Kube Controllers Configuration resource with a name other than \"default\"",
        ),
        "IPAMConfiguration" => {
            Some("Cannot create an IPAMConfiguration resource with a name other than \"default\"")
        }
        _ => None,
    }
}

fn singleton_error(kind: &str, name: &str) -> Option<ClientError> {
    let msg = singleton_message(kind)?;
    (name != "default").then(|| ClientError::InvalidField {
        field: "Metadata.Name".into(),
        value: Some(name.to_string()),
        reason: msg.to_string(),
    })
}

/// The virtual default-allow profile (resourceVersion "1", as Calico returns it).
pub fn default_allow_profile() -> Option<Resource> {
    if !Resource::supports_kind("Profile") {
        return None;
    }
    Resource::from_json_value(json!({
        "apiVersion": calico_api::API_VERSION,
        "kind": "Profile",
        "metadata": {"name": DEFAULT_ALLOW_PROFILE, "resourceVersion": "1"},
        "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
    }))
    .ok()
}

pub(crate) fn virtual_get(ki: &KindInfo, name: &str) -> Option<Resource> {
    if ki.kind == "Profile" && name == DEFAULT_ALLOW_PROFILE {
        return default_allow_profile();
    }
    None
}

pub(crate) fn virtual_list(ki: &KindInfo) -> Vec<Resource> {
    if ki.kind == "Profile" {
        return default_allow_profile().into_iter().collect();
    }
    Vec::new()
}

fn spec_str(res: &Resource, field: &str) -> Option<String> {
    res.to_json_value()
        .get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub(crate) async fn before_create(client: &Client, res: &mut Resource) -> Result<(), ClientError> {
    let kind = res.kind();
    let name = res.metadata().name.clone();
    if let Some(e) = singleton_error(kind, &name) {
        return Err(e);
    }
    if kind == "Profile" && name == DEFAULT_ALLOW_PROFILE {
        return Err(ClientError::AlreadyExists {
            id: DEFAULT_ALLOW_PROFILE.into(),
            reason: Some(format!(
                "{DEFAULT_ALLOW_PROFILE} already exists. The profile \"{DEFAULT_ALLOW_PROFILE}\" \
                 is default provided by Calico"
            )),
        });
    }
    if is_policy_kind(kind) {
        // The tier must exist (Calico reads it and returns the read's error).
        let tier = policy_tier(res);
        client.get("Tier", "", &tier).await?;
    }
    Ok(())
}

/// Checks that need the defaulted, validated object (IP pool overlap).
pub(crate) async fn after_validate_create(
    client: &Client,
    res: &Resource,
) -> Result<(), ClientError> {
    if res.kind() != "IPPool" {
        return Ok(());
    }
    let Some(cidr) = spec_str(res, "cidr").and_then(|c| c.parse::<ipnet::IpNet>().ok()) else {
        return Ok(());
    };
    let name = &res.metadata().name;
    let mut errs = FieldErrors::new();
    for other in client.list("IPPool", None).await?.items {
        if &other.metadata().name == name {
            continue;
        }
        let Some(other_cidr_s) = spec_str(&other, "cidr") else {
            continue;
        };
        let Ok(other_cidr) = other_cidr_s.parse::<ipnet::IpNet>() else {
            continue;
        };
        if nets_overlap(&cidr, &other_cidr) {
            errs.push(
                &FieldPath::root().field("spec").field("cidr"),
                format!(
                    "IPPool({name}) CIDR overlaps with IPPool({}) CIDR {other_cidr_s}",
                    other.metadata().name
                ),
            );
        }
    }
    errs.into_result().map_err(ClientError::Invalid)
}

fn nets_overlap(a: &ipnet::IpNet, b: &ipnet::IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// `profile.go`: the virtual default-allow profile refuses `operation` ("Update"/"Delete").
fn default_allow_profile_is_read_only(operation: &str, past: &str) -> ClientError {
    ClientError::OperationNotSupported {
        operation: operation.into(),
        id: DEFAULT_ALLOW_PROFILE.into(),
        reason: Some(format!(
            "The profile \"{DEFAULT_ALLOW_PROFILE}\" is a default provided by Calico and cannot \
             be {past}"
        )),
    }
}

pub(crate) async fn before_update(client: &Client, res: &mut Resource) -> Result<(), ClientError> {
    let kind = res.kind();
    let name = res.metadata().name.clone();
    if kind == "IPAMConfiguration"
        && let Some(e) = singleton_error(kind, &name)
    {
        return Err(e);
    }
    if kind == "Profile" && name == DEFAULT_ALLOW_PROFILE {
        return Err(default_allow_profile_is_read_only("Update", "updated"));
    }
    if kind == "IPPool" {
        let old = client.get("IPPool", "", &name).await?;
        let mut new = res.clone();
        new.apply_defaults();
        let mut errs = FieldErrors::new();
        let spec = FieldPath::root().field("spec");
        let (oc, nc) = (spec_str(&old, "cidr"), spec_str(&new, "cidr"));
        let same_net = match (&oc, &nc) {
            (Some(o), Some(n)) => {
                o == n
                    || matches!((o.parse::<ipnet::IpNet>(), n.parse::<ipnet::IpNet>()),
                        (Ok(a), Ok(b)) if a == b)
            }
            _ => oc == nc,
        };
        if !same_net {
            errs.push(&spec.field("cidr"), "IPPool CIDR cannot be modified");
        }
        let block = |r: &Resource| r.to_json_value().pointer("/spec/blockSize").cloned();
        if block(&old) != block(&new) {
            errs.push(
                &spec.field("blockSize"),
                "IPPool BlockSize cannot be modified",
            );
        }
        errs.into_result().map_err(ClientError::Invalid)?;
    }
    Ok(())
}

pub(crate) async fn before_delete(
    client: &Client,
    ki: &KindInfo,
    _namespace: &str,
    name: &str,
) -> Result<(), ClientError> {
    if ki.kind == "Profile" && name == DEFAULT_ALLOW_PROFILE {
        return Err(default_allow_profile_is_read_only("Delete", "deleted"));
    }
    if ki.kind == "Tier" {
        if tier_is_protected(name) {
            return Err(ClientError::OperationNotSupported {
                operation: "Delete".into(),
                id: name.to_string(),
                reason: Some(format!("Cannot delete {name} tier")),
            });
        }
        for kind in [
            "NetworkPolicy",
            "GlobalNetworkPolicy",
            "StagedNetworkPolicy",
            "StagedGlobalNetworkPolicy",
        ] {
            if !Resource::supports_kind(kind) {
                continue;
            }
            let list = client.list(kind, None).await?;
            if list.items.iter().any(|p| policy_tier(p) == name) {
                return Err(ClientError::OperationNotSupported {
                    operation: "delete".into(),
                    id: name.to_string(),
                    reason: Some("Cannot delete a non-empty tier".into()),
                });
            }
        }
    }
    Ok(())
}

/// `ensureClusterInformation` (`clientv3/client.go`).
pub(crate) async fn ensure_cluster_information(
    client: &Client,
    calico_version: &str,
    cluster_type: &str,
) -> Result<(), ClientError> {
    const ATTEMPTS: usize = 5;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let current = match client.get("ClusterInformation", "", "default").await {
            Ok(ci) => ci,
            Err(e) if e.is_does_not_exist() => {
                let mut spec = serde_json::Map::new();
                spec.insert("clusterGUID".into(), Value::String(new_cluster_guid()));
                if !cluster_type.is_empty() {
                    spec.insert("clusterType".into(), Value::String(cluster_type.into()));
                }
                if !calico_version.is_empty() {
                    spec.insert("calicoVersion".into(), Value::String(calico_version.into()));
                }
                spec.insert("datastoreReady".into(), Value::Bool(true));
                let res = decode_internal(json!({
                    "apiVersion": calico_api::API_VERSION,
                    "kind": "ClusterInformation",
                    "metadata": {"name": "default"},
                    "spec": spec,
                }))?;
                match client.create(res).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_already_exists() => {
                        last = Some(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let mut v = current.to_json_value();
        let mut changed = false;
        {
            let spec = v
                .as_object_mut()
                .map(|m| m.entry("spec").or_insert_with(|| json!({})));
            let Some(Value::Object(spec)) = spec else {
                return Ok(());
            };
            let get = |spec: &serde_json::Map<String, Value>, k: &str| {
                spec.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            if !calico_version.is_empty() && get(spec, "calicoVersion") != calico_version {
                spec.insert("calicoVersion".into(), Value::String(calico_version.into()));
                changed = true;
            }
            if get(spec, "clusterGUID").is_empty() {
                spec.insert("clusterGUID".into(), Value::String(new_cluster_guid()));
                changed = true;
            }
            if spec.get("datastoreReady").is_none_or(Value::is_null) {
                spec.insert("datastoreReady".into(), Value::Bool(true));
                changed = true;
            }
            if !cluster_type.is_empty() {
                let existing = get(spec, "clusterType");
                let merged = merge_cluster_types(&existing, cluster_type);
                if merged != existing {
                    spec.insert("clusterType".into(), Value::String(merged));
                    changed = true;
                }
            }
        }
        if !changed {
            return Ok(());
        }
        match client.update(decode_internal(v)?).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::UpdateConflict {
        id: "ClusterInformation(default)".into(),
        reason: None,
    }))
}

/// Appends the types of `local` (comma-separated) missing from `existing`, keeping order.
fn merge_cluster_types(existing: &str, local: &str) -> String {
    if existing.is_empty() {
        return local.to_string();
    }
    let mut all: Vec<&str> = existing.split(',').collect();
    for t in local.split(',') {
        if !all.contains(&t) {
            all.push(t);
        }
    }
    all.join(",")
}

fn new_cluster_guid() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `ensureTierExists`: create, treating "already exists" as success.
pub(crate) async fn ensure_tier(
    client: &Client,
    name: &str,
    default_action: &str,
    order: f64,
) -> Result<(), ClientError> {
    let tier = decode_internal(json!({
        "apiVersion": calico_api::API_VERSION,
        "kind": "Tier",
        "metadata": {"name": name},
        "spec": {"order": order, "defaultAction": default_action},
    }))?;
    match client.create(tier).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => Err(e),
    }
}

fn decode_internal(v: Value) -> Result<Resource, ClientError> {
    Resource::from_json_value(v).map_err(|e| {
        ClientError::Config(format!(
            "internal resource does not match the API model: {e}"
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cluster_types_merge_like_calico() {
        assert_eq!(merge_cluster_types("", "k8s,bgp"), "k8s,bgp");
        assert_eq!(merge_cluster_types("k8s,bgp", "bgp,kdd"), "k8s,bgp,kdd");
        assert_eq!(merge_cluster_types("k8s", "k8s"), "k8s");
    }

    #[test]
    fn overlap() {
        let a: ipnet::IpNet = "10.0.0.0/16".parse().unwrap();
        let b: ipnet::IpNet = "10.0.5.0/24".parse().unwrap();
        let c: ipnet::IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(nets_overlap(&a, &b) && nets_overlap(&b, &a));
        assert!(!nets_overlap(&a, &c));
    }

    #[test]
    fn protected_tiers() {
        assert!(tier_is_protected("default"));
        assert!(tier_is_protected("kube-admin"));
        assert!(!tier_is_protected("security"));
    }
}
