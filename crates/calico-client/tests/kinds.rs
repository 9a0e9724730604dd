//! Calico's per-kind client rules: policy name annotation and tier checks, built-in tiers,
//! the virtual default-allow profile, IP pool overlap and immutability, namespaced keys.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use calico_api::Resource;
use calico_client::{Client, ClientError, EventType};
use serde_json::{Value, json};

fn res(v: Value) -> Resource {
    Resource::from_json_value(v).unwrap()
}

fn np(ns: &str, name: &str, tier: Option<&str>) -> Resource {
    let mut spec = json!({"selector": "app == 'backend'", "order": 100});
    if let Some(t) = tier {
        spec["tier"] = json!(t);
    }
    res(
        json!({"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns}, "spec": spec}),
    )
}

fn pool(name: &str, cidr: &str) -> Resource {
    res(
        json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": name}, "spec": {"cidr": cidr}}),
    )
}

async fn setup() -> (Arc<common::MemStore>, Client) {
    let store = common::MemStore::new();
    let client = Client::new(store.clone());
    client.ensure_initialized("", "").await.unwrap();
    (store, client)
}

#[tokio::test]
async fn builtin_tiers_are_created_and_protected() {
    let (store, client) = setup().await;
    for (name, action, order) in [
        ("default", "Deny", 1_000_000.0),
        ("kube-admin", "Pass", 1_000.0),
        ("kube-baseline", "Pass", 10_000_000.0),
    ] {
        let t = client.get("Tier", "", name).await.unwrap().to_json_value();
        assert_eq!(t["spec"]["defaultAction"], action, "{name}");
        assert_eq!(t["spec"]["order"].as_f64(), Some(order), "{name}");
        assert!(
            store
                .raw(&format!(
                    "/calico/resources/v3/projectcalico.org/tiers/{name}"
                ))
                .is_some()
        );
        let e = client.delete("Tier", "", name, None).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("operation Delete is not supported on {name}: Cannot delete {name} tier")
        );
    }
}

#[tokio::test]
async fn policies_store_their_name_annotation_and_need_their_tier() {
    let (store, client) = setup().await;
    let e = client
        .create(np("prod", "p1", Some("security")))
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "resource does not exist: Tier(security)");

    let out = client
        .create(np("prod", "allow-frontend", None))
        .await
        .unwrap();
    assert_eq!(
        out.metadata().labels.get("projectcalico.org/tier").unwrap(),
        "default"
    );
    let raw = store
        .raw("/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-frontend")
        .unwrap();
    let stored: Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(
        stored["metadata"]["annotations"]["projectcalico.org/metadata"],
        r#"{"name":"allow-frontend"}"#
    );
    assert_eq!(stored["spec"]["tier"], "default");
    let got = client
        .get("NetworkPolicy", "prod", "allow-frontend")
        .await
        .unwrap();
    assert!(
        got.metadata().annotations.is_empty(),
        "the annotation is dropped on read"
    );
    assert_eq!(got, out);

    // A namespaced kind needs a namespace.
    let e = client
        .get("NetworkPolicy", "", "allow-frontend")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "error with field Metadata.Namespace (namespace is not specified on namespaced resource)"
    );

    // A tier with policies cannot be deleted; an empty one can.
    let tier = res(json!({"apiVersion": "projectcalico.org/v3", "kind": "Tier",
        "metadata": {"name": "security"}, "spec": {"order": 10}}));
    client.create(tier).await.unwrap();
    client
        .create(np("dev", "security.p1", Some("security")))
        .await
        .unwrap();
    let e = client
        .delete("Tier", "", "security", None)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "operation delete is not supported on security: Cannot delete a non-empty tier"
    );
    client
        .delete("NetworkPolicy", "dev", "security.p1", None)
        .await
        .unwrap();
    client.delete("Tier", "", "security", None).await.unwrap();
}

#[tokio::test]
async fn legacy_default_prefix_is_stripped_on_read() {
    let (store, client) = setup().await;
    // A policy written by Calico <= 3.28 (no metadata annotation, "default." prefix).
    let legacy = json!({"kind": "NetworkPolicy", "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "default.old", "namespace": "prod"},
        "spec": {"tier": "default", "selector": "all()"}});
    calico_datastore::Datastore::put(
        store.as_ref(),
        "/calico/resources/v3/projectcalico.org/networkpolicies/prod/default.old",
        serde_json::to_vec(&legacy).unwrap(),
        None,
    )
    .await
    .unwrap();
    let got = client
        .get("NetworkPolicy", "prod", "default.old")
        .await
        .unwrap();
    assert_eq!(got.metadata().name, "old");
    assert_eq!(
        got.metadata().labels.get("projectcalico.org/tier").unwrap(),
        "default"
    );
}

#[tokio::test]
async fn namespaced_lists_and_watches() {
    let (_s, client) = setup().await;
    client.create(np("a", "p1", None)).await.unwrap();
    client.create(np("b", "p2", None)).await.unwrap();
    client.create(np("a", "p3", None)).await.unwrap();
    let all = client.list("NetworkPolicy", None).await.unwrap();
    let names: Vec<_> = all.items.iter().map(|r| r.display_name()).collect();
    assert_eq!(names, ["a/p1", "a/p3", "b/p2"]);
    let only_a = client.list("NetworkPolicy", Some("a")).await.unwrap();
    assert_eq!(only_a.items.len(), 2);
    assert_eq!(only_a.revision, all.revision);

    let mut w = client
        .watch("NetworkPolicy", Some("b"), Some(&all.revision.to_string()))
        .await
        .unwrap();
    client.create(np("a", "p4", None)).await.unwrap();
    client.create(np("b", "p5", None)).await.unwrap();
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!(ev.event_type, EventType::Added);
    assert_eq!(ev.object.unwrap().display_name(), "b/p5");
}

#[tokio::test]
async fn default_allow_profile_is_virtual() {
    let (store, client) = setup().await;
    let p = client
        .get("Profile", "", "projectcalico-default-allow")
        .await
        .unwrap();
    assert_eq!(p.metadata().resource_version, "1");
    let v = p.to_json_value();
    assert_eq!(v["spec"]["ingress"][0]["action"], "Allow");
    assert_eq!(v["spec"]["egress"][0]["action"], "Allow");
    let list = client.list("Profile", None).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(
        store
            .keys()
            .iter()
            .all(|k| !k.contains("projectcalico-default-allow"))
    );

    let e = client.create(p.clone()).await.unwrap_err();
    assert!(e.is_already_exists(), "{e}");
    let e = client.update(p.clone()).await.unwrap_err();
    assert!(e.is_not_supported(), "{e}");
    let e = client
        .delete("Profile", "", "projectcalico-default-allow", None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot be deleted"), "{e}");
}

#[tokio::test]
async fn ip_pools_do_not_overlap_and_keep_their_cidr() {
    let (_s, client) = setup().await;
    let a = client.create(pool("a", "10.0.0.0/16")).await.unwrap();
    let v = a.to_json_value();
    assert_eq!(v["spec"]["blockSize"], 26);
    assert_eq!(v["spec"]["nodeSelector"], "all()");
    let e = client.create(pool("b", "10.0.128.0/17")).await.unwrap_err();
    assert!(matches!(e, ClientError::Invalid(_)));
    assert_eq!(
        e.to_string(),
        "error with field spec.cidr: IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.0.0.0/16"
    );
    client.create(pool("c", "10.1.0.0/16")).await.unwrap();

    let mut moved = a.clone();
    let mut j = moved.to_json_value();
    j["spec"]["cidr"] = json!("10.2.0.0/16");
    moved = res(j);
    let e = client.update(moved).await.unwrap_err();
    assert!(
        e.to_string().contains("IPPool CIDR cannot be modified"),
        "{e}"
    );

    let mut j = a.to_json_value();
    j["spec"]["blockSize"] = json!(28);
    let e = client.update(res(j)).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("IPPool BlockSize cannot be modified"),
        "{e}"
    );

    // Other changes go through.
    let mut j = a.to_json_value();
    j["spec"]["natOutgoing"] = json!(true);
    let out = client.update(res(j)).await.unwrap();
    assert_eq!(out.to_json_value()["spec"]["natOutgoing"], true);
}

#[tokio::test]
async fn apply_creates_then_updates_and_honours_resource_version() {
    let (_s, client) = setup().await;
    let first = client.apply(pool("p", "10.5.0.0/16")).await.unwrap();
    let mut j = pool("p", "10.5.0.0/16").to_json_value();
    j["spec"]["natOutgoing"] = json!(true);
    let second = client.apply(res(j.clone())).await.unwrap();
    assert_eq!(second.metadata().uid, first.metadata().uid);
    assert_ne!(
        second.metadata().resource_version,
        first.metadata().resource_version
    );
    // Carrying the old resourceVersion makes apply a compare-and-swap that fails.
    j["metadata"]["resourceVersion"] = json!(first.metadata().resource_version);
    let e = client.apply(res(j.clone())).await.unwrap_err();
    assert!(e.is_conflict(), "{e}");
    j["metadata"]["resourceVersion"] = json!(second.metadata().resource_version);
    client.apply(res(j)).await.unwrap();
}

#[tokio::test]
async fn patch_merges_and_keeps_identity() {
    let (_s, client) = setup().await;
    let p = client.create(pool("p", "10.6.0.0/16")).await.unwrap();
    let patch = calico_client::Patch::parse(
        "merge",
        r#"{"spec":{"disabled":true},"metadata":{"labels":{"x":"y"}}}"#,
    )
    .unwrap();
    let out = client.patch("IPPool", "", "p", &patch).await.unwrap();
    let v = out.to_json_value();
    assert_eq!(v["spec"]["disabled"], true);
    assert_eq!(v["metadata"]["labels"]["x"], "y");
    assert_eq!(out.metadata().uid, p.metadata().uid);
    let rename = calico_client::Patch::parse("merge", r#"{"metadata":{"name":"q"}}"#).unwrap();
    assert!(client.patch("IPPool", "", "p", &rename).await.is_err());
}
