//! Converting resources to and from the bytes stored under their keys.
//!
//! Calico stores the full v3 object as JSON with `kind` and `apiVersion` set and with
//! `resourceVersion` and `selfLink` cleared (`clientv3/resources.go resourceToKVPair`); the
//! revision is carried by the key's etcd ModRevision instead. Policies additionally store the
//! annotation `projectcalico.org/metadata: {"name":"<v3 name>"}` (`backend/etcdv3/etcdv3.go
//! defaultPolicyName`), which is removed again on read (`backend/model/keys.go
//! determinePolicyName`).

use calico_api::{KindInfo, Resource};
use calico_datastore::KeyValue;
use serde_json::{Map, Value};

use crate::error::ClientError;

/// Annotation Calico uses to remember a policy's v3 name in storage.
pub const POLICY_METADATA_ANNOTATION: &str = "projectcalico.org/metadata";
/// Label every policy carries with its tier (`apiv3.LabelTier`).
pub const TIER_LABEL: &str = "projectcalico.org/tier";

/// Kinds whose stored form carries [`POLICY_METADATA_ANNOTATION`].
pub fn is_policy_kind(kind: &str) -> bool {
    matches!(
        kind,
        "NetworkPolicy"
            | "GlobalNetworkPolicy"
            | "StagedNetworkPolicy"
            | "StagedGlobalNetworkPolicy"
    )
}

/// The JSON object as Go's `encoding/json` lays it out for Calico types: `kind`, then
/// `apiVersion` (the order of `metav1.TypeMeta`), then the body. Integral floats are written as
/// integers, as Go does (`order: 100`, not `100.0`).
pub fn to_calico_json(res: &Resource) -> Value {
    let mut v = res.to_json_value();
    normalize_numbers(&mut v);
    kind_first(v)
}

/// Reorders an object so that `kind` and `apiVersion` come first.
pub fn kind_first(v: Value) -> Value {
    match v {
        Value::Object(mut m) => {
            let mut out = Map::new();
            if let Some(k) = m.remove("kind") {
                out.insert("kind".into(), k);
            }
            if let Some(a) = m.remove("apiVersion") {
                out.insert("apiVersion".into(), a);
            }
            out.extend(m);
            Value::Object(out)
        }
        other => other,
    }
}

/// Rewrites floats without a fractional part as integers, recursively.
pub fn normalize_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64()
                && n.is_f64()
                && f.fract() == 0.0
                && f.abs() < 1e15
            {
                // The bound keeps the conversion exact (well inside f64's 53-bit mantissa).
                *v = Value::from(f as i64);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_numbers),
        Value::Object(m) => m.values_mut().for_each(normalize_numbers),
        _ => {}
    }
}

/// The bytes stored for `res`: resourceVersion and selfLink cleared, the policy-name annotation
/// added for policy kinds.
pub fn encode_for_storage(res: &Resource) -> Vec<u8> {
    let mut v = to_calico_json(res);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("selfLink");
        if is_policy_kind(res.kind()) {
            let name = res.metadata().name.clone();
            let ann = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(ann) = ann {
                let stored = serde_json::json!({ "name": name }).to_string();
                ann.insert(POLICY_METADATA_ANNOTATION.into(), Value::String(stored));
            }
        }
    }
    // Serializing a `Value` cannot fail.
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Decodes a stored key/value of `kind` into a resource with `resourceVersion` = the key's
/// ModRevision, applying Calico's read-side fix-ups.
pub fn decode_stored(kind: &KindInfo, kv: &KeyValue) -> Result<Resource, ClientError> {
    let corrupt = |message: String| ClientError::Corrupt {
        key: kv.key.clone(),
        message,
    };
    let mut v: Value =
        serde_json::from_slice(&kv.value).map_err(|e| corrupt(format!("invalid JSON: {e}")))?;
    let Value::Object(m) = &mut v else {
        return Err(corrupt("value is not a JSON object".into()));
    };
    // Objects written by other tools may omit the type fields; the key says what they are.
    m.entry("apiVersion")
        .or_insert_with(|| Value::String(calico_api::API_VERSION.into()));
    m.entry("kind")
        .or_insert_with(|| Value::String(kind.kind.into()));
    if m.get("kind").and_then(Value::as_str) != Some(kind.kind) {
        return Err(corrupt(format!(
            "stored kind {} does not match the key's kind {}",
            m.get("kind").map(Value::to_string).unwrap_or_default(),
            kind.kind
        )));
    }
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("selfLink");
    }
    let mut res = Resource::from_json_value(v).map_err(|e| corrupt(e.to_string()))?;
    // Calico fills pool and tier defaults on read too (`ippool.go convertIpPoolFromStorage`,
    // `tier.go List` with `DefaultTierFields`), so objects written by older writers read the same.
    if matches!(kind.kind, "IPPool" | "Tier") {
        res.apply_defaults();
    }
    if is_policy_kind(kind.kind) {
        fix_policy_name_on_read(&mut res).map_err(corrupt)?;
        let tier = policy_tier(&res);
        res.metadata_mut()
            .labels
            .entry(TIER_LABEL.into())
            .or_insert(tier);
    }
    res.metadata_mut().resource_version = kv.mod_revision.to_string();
    Ok(res)
}

/// `determinePolicyName`: the name comes from the metadata annotation when present (which is
/// then dropped); otherwise a legacy `default.` prefix is stripped for default-tier policies.
fn fix_policy_name_on_read(res: &mut Resource) -> Result<(), String> {
    let tier = policy_tier(res);
    let meta = res.metadata_mut();
    if let Some(raw) = meta.annotations.remove(POLICY_METADATA_ANNOTATION)
        && !raw.is_empty()
    {
        let v: Value = serde_json::from_str(&raw).map_err(|e| {
            format!("annotation {POLICY_METADATA_ANNOTATION:?} contained invalid JSON: {e}")
        })?;
        if let Some(name) = v.get("name").and_then(Value::as_str) {
            meta.name = name.to_string();
        }
        return Ok(());
    }
    if tier == "default"
        && let Some(stripped) = meta.name.strip_prefix("default.")
    {
        meta.name = stripped.to_string();
    }
    Ok(())
}

/// The tier a policy is in (`spec.tier`, defaulting to `default` like `names.TierOrDefault`).
pub fn policy_tier(res: &Resource) -> String {
    res.to_json_value()
        .pointer("/spec/tier")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("default")
        .to_string()
}
