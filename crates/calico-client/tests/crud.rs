//! CRUD, compare-and-swap and watch semantics of the client, against an in-memory store with
//! etcd semantics. ClusterInformation is the kind every calico-api build has.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use calico_api::Resource;
use calico_client::{Client, ClientError, EventType};
use serde_json::{Value, json};

const CI_KEY: &str = "/calico/resources/v3/projectcalico.org/clusterinformations/default";

fn ci(name: &str, guid: &str) -> Resource {
    Resource::from_json_value(json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "ClusterInformation",
        "metadata": {"name": name, "labels": {"a": "b"}},
        "spec": {"clusterGUID": guid, "datastoreReady": true},
    }))
    .unwrap()
}

fn setup() -> (Arc<common::MemStore>, Client) {
    let store = common::MemStore::new();
    let client = Client::new(store.clone());
    (store, client)
}

#[tokio::test]
async fn create_stores_calico_json_and_returns_revision() {
    let (store, client) = setup();
    let out = client.create(ci("default", "g1")).await.unwrap();
    let raw = store.raw(CI_KEY).expect("stored under Calico's key");
    assert_eq!(
        out.metadata().resource_version,
        raw.mod_revision.to_string()
    );

    let text = String::from_utf8(raw.value.clone()).unwrap();
    assert!(
        text.starts_with(
            r#"{"kind":"ClusterInformation","apiVersion":"projectcalico.org/v3","metadata":"#
        ),
        "{text}"
    );
    let v: Value = serde_json::from_slice(&raw.value).unwrap();
    let meta = &v["metadata"];
    assert!(
        meta.get("resourceVersion").is_none(),
        "resourceVersion is not stored"
    );
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36);
    let ts = meta["creationTimestamp"].as_str().unwrap();
    assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");
    assert_eq!(v["spec"]["clusterGUID"], "g1");
    assert_eq!(out.metadata().uid, meta["uid"]);

    let got = client
        .get("ClusterInformation", "", "default")
        .await
        .unwrap();
    assert_eq!(got, out);
}

#[tokio::test]
async fn create_errors_are_calico_worded() {
    let (_s, client) = setup();
    client.create(ci("default", "g1")).await.unwrap();
    let e = client.create(ci("default", "g2")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource already exists: ClusterInformation(default)"
    );

    let e = client.create(ci("other", "g")).await.unwrap_err();
    assert!(
        e.to_string().contains("with a name other than \"default\""),
        "{e}"
    );

    let mut with_rv = ci("default", "g");
    with_rv.metadata_mut().resource_version = "7".into();
    let e = client.create(with_rv).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "error with field Metadata.ResourceVersion = '7' (field must not be set for a Create request)"
    );

    let e = client.create(ci("", "g")).await.unwrap_err();
    assert!(
        e.to_string().starts_with("error with field Metadata.Name"),
        "{e}"
    );

    // The singleton rule comes before validation, as in Calico's clusterInformation.Create.
    let e = client.create(ci("Bad_Name", "g")).await.unwrap_err();
    assert!(matches!(e, ClientError::InvalidField { .. }), "{e}");

    let e = client
        .get("ClusterInformation", "", "nope")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource does not exist: ClusterInformation(nope)"
    );
    let e = client.get("Bogus", "", "x").await.unwrap_err();
    assert_eq!(e.to_string(), "resource type 'Bogus' is not supported");
}

#[tokio::test]
async fn update_is_compare_and_swap() {
    let (_s, client) = setup();
    let v1 = client.create(ci("default", "g1")).await.unwrap();

    let mut no_rv = v1.clone();
    no_rv.metadata_mut().resource_version.clear();
    let e = client.update(no_rv).await.unwrap_err();
    assert!(e.to_string().contains("Metadata.ResourceVersion"), "{e}");

    let mut change = v1.clone();
    if let Resource::ClusterInformation(c) = &mut change {
        c.spec.cluster_guid = "g2".into();
    }
    let v2 = client.update(change.clone()).await.unwrap();
    assert_ne!(
        v2.metadata().resource_version,
        v1.metadata().resource_version
    );
    assert_eq!(v2.metadata().uid, v1.metadata().uid);

    // Same edit again with the old version: someone else already wrote.
    let e = client.update(change).await.unwrap_err();
    assert!(e.is_conflict());
    assert_eq!(
        e.to_string(),
        "update conflict: ClusterInformation(default)"
    );

    // calicoctl replace with a stale version names both versions.
    let mut stale = ci("default", "g3");
    stale.metadata_mut().resource_version = v1.metadata().resource_version.clone();
    let e = client.replace(stale).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "update conflict: ClusterInformation(default): resource version '{}' is out of date \
             (latest: {}). Update the resource YAML/JSON in order to make changes",
            v1.metadata().resource_version,
            v2.metadata().resource_version
        )
    );

    // replace without a version takes the stored metadata (uid, creationTimestamp) and the
    // manifest's labels.
    let mut fresh = ci("default", "g4");
    fresh.metadata_mut().labels.clear();
    let v3 = client.replace(fresh).await.unwrap();
    assert_eq!(v3.metadata().uid, v1.metadata().uid);
    assert!(v3.metadata().labels.is_empty());

    // replace with the current version succeeds.
    let mut cur = ci("default", "g5");
    cur.metadata_mut().resource_version = v3.metadata().resource_version.clone();
    client.replace(cur).await.unwrap();

    // replace of something absent.
    let e = client
        .delete("ClusterInformation", "", "default", None)
        .await;
    assert!(e.is_ok());
    let e = client.replace(ci("default", "g")).await.unwrap_err();
    assert!(e.is_does_not_exist(), "{e}");
}

#[tokio::test]
async fn apply_of_cluster_information_is_refused() {
    let (_s, client) = setup();
    let e = client.apply(ci("default", "g")).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "operation apply is not supported on ClusterInformation: resource is readonly"
    );
}

#[tokio::test]
async fn delete_with_and_without_revision() {
    let (store, client) = setup();
    let v1 = client.create(ci("default", "g1")).await.unwrap();
    let mut change = v1.clone();
    change.metadata_mut().labels.insert("x".into(), "y".into());
    let v2 = client.update(change).await.unwrap();

    let e = client
        .delete(
            "ClusterInformation",
            "",
            "default",
            Some(&v1.metadata().resource_version),
        )
        .await
        .unwrap_err();
    assert!(e.is_conflict(), "{e}");
    let e = client
        .delete("ClusterInformation", "", "default", Some("abc"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ResourceVersion = 'abc'"), "{e}");

    let gone = client
        .delete(
            "ClusterInformation",
            "",
            "default",
            Some(&v2.metadata().resource_version),
        )
        .await
        .unwrap();
    assert_eq!(
        gone.metadata().labels.get("x").map(String::as_str),
        Some("y")
    );
    assert!(store.raw(CI_KEY).is_none());
    let e = client
        .delete("ClusterInformation", "", "default", None)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "resource does not exist: ClusterInformation(default)"
    );
}

#[tokio::test]
async fn list_carries_the_revision_and_skips_foreign_keys() {
    let (store, client) = setup();
    client.create(ci("default", "g1")).await.unwrap();
    // A key of another shape under the prefix is ignored, as Calico's list ignores it.
    calico_datastore::Datastore::put(
        store.as_ref(),
        "/calico/resources/v3/projectcalico.org/clusterinformations/a/b",
        b"{}".to_vec(),
        None,
    )
    .await
    .unwrap();
    let list = client.list("ClusterInformation", None).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.revision, 2);
    let v = list.to_json_value();
    assert_eq!(v["kind"], "ClusterInformationList");
    assert_eq!(v["metadata"]["resourceVersion"], "2");
    assert_eq!(v["items"][0]["kind"], "ClusterInformation");
}

#[tokio::test]
async fn corrupt_values_are_reported_with_the_key() {
    let (store, client) = setup();
    calico_datastore::Datastore::put(store.as_ref(), CI_KEY, b"not json".to_vec(), None)
        .await
        .unwrap();
    let e = client
        .get("ClusterInformation", "", "default")
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("failed to parse datastore entry key={CI_KEY}")),
        "{e}"
    );
}

#[tokio::test]
async fn watch_reports_added_modified_deleted() {
    let (_s, client) = setup();
    let mut w = client
        .watch("ClusterInformation", None, None)
        .await
        .unwrap();
    let v1 = client.create(ci("default", "g1")).await.unwrap();
    let mut change = v1.clone();
    change.metadata_mut().labels.insert("x".into(), "y".into());
    let v2 = client.update(change).await.unwrap();
    client
        .delete("ClusterInformation", "", "default", None)
        .await
        .unwrap();

    let e1 = w.next().await.unwrap().unwrap();
    assert_eq!(e1.event_type, EventType::Added);
    assert_eq!(e1.object.as_ref(), Some(&v1));
    let e2 = w.next().await.unwrap().unwrap();
    assert_eq!(e2.event_type, EventType::Modified);
    assert_eq!(e2.object.as_ref(), Some(&v2));
    assert_eq!(e2.previous.as_ref(), Some(&v1));
    let e3 = w.next().await.unwrap().unwrap();
    assert_eq!(e3.event_type, EventType::Deleted);
    assert!(e3.object.is_none());
    assert_eq!(e3.previous.as_ref(), Some(&v2));

    // A watch from a resourceVersion replays what came after it.
    let mut w2 = client
        .watch(
            "ClusterInformation",
            None,
            Some(&v1.metadata().resource_version),
        )
        .await
        .unwrap();
    assert_eq!(
        w2.next().await.unwrap().unwrap().event_type,
        EventType::Modified
    );
    assert_eq!(
        w2.next().await.unwrap().unwrap().event_type,
        EventType::Deleted
    );
}

#[tokio::test]
async fn ensure_initialized_creates_cluster_information_once() {
    let (store, client) = setup();
    client
        .ensure_initialized("v3.31.0", "k8s,bgp")
        .await
        .unwrap();
    let ci = client
        .get("ClusterInformation", "", "default")
        .await
        .unwrap();
    let v = ci.to_json_value();
    assert_eq!(v["spec"]["clusterGUID"].as_str().unwrap().len(), 32);
    assert_eq!(v["spec"]["datastoreReady"], true);
    assert_eq!(v["spec"]["calicoVersion"], "v3.31.0");
    let rev = calico_datastore::Datastore::current_revision(store.as_ref())
        .await
        .unwrap();
    // Idempotent: nothing to change, nothing written.
    client.ensure_initialized("", "").await.unwrap();
    client.ensure_initialized("v3.31.0", "bgp").await.unwrap();
    assert_eq!(
        calico_datastore::Datastore::current_revision(store.as_ref())
            .await
            .unwrap(),
        rev
    );
    // A new cluster type is merged in.
    client.ensure_initialized("", "kdd").await.unwrap();
    let v = client
        .get("ClusterInformation", "", "default")
        .await
        .unwrap()
        .to_json_value();
    assert_eq!(v["spec"]["clusterType"], "k8s,bgp,kdd");
    assert_eq!(
        v["spec"]["clusterGUID"],
        ci.to_json_value()["spec"]["clusterGUID"]
    );
}

#[tokio::test]
async fn typed_access() {
    use calico_api::clusterinfo::ClusterInformation;
    let (_s, client) = setup();
    client.create(ci("default", "g1")).await.unwrap();
    let typed: ClusterInformation = client.get_as("", "default").await.unwrap();
    assert_eq!(typed.spec.cluster_guid, "g1");
    assert!(!typed.metadata.resource_version.is_empty());
    let (all, rev) = client.list_as::<ClusterInformation>(None).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(rev.to_string(), typed.metadata.resource_version);
    let e = calico_client::into_kind::<ClusterInformation>(
        calico_client::rules::default_allow_profile().unwrap(),
    )
    .unwrap_err();
    assert!(matches!(e, ClientError::KindMismatch { .. }), "{e}");
}

#[tokio::test]
async fn watch_from_the_largest_revision_is_an_error_not_an_overflow() {
    let (_s, client) = setup();
    let rv = i64::MAX.to_string();
    let e = client
        .watch("ClusterInformation", None, Some(&rv))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, ClientError::InvalidField { .. }), "{e}");
    assert!(e.to_string().contains(&rv), "{e}");
}

#[tokio::test]
async fn deleting_a_corrupt_entry_succeeds_and_clears_it() {
    let (store, client) = setup();
    let rev =
        calico_datastore::Datastore::put(store.as_ref(), CI_KEY, b"{\"spec\":7".to_vec(), None)
            .await
            .unwrap();
    // Reads name the key ...
    let e = client
        .get("ClusterInformation", "", "default")
        .await
        .unwrap_err();
    assert!(e.to_string().contains(CI_KEY), "{e}");
    // ... and the delete that clears the entry reports what it deleted, not a failure.
    let gone = client
        .delete("ClusterInformation", "", "default", None)
        .await
        .unwrap();
    assert_eq!(gone.kind(), "ClusterInformation");
    assert_eq!(gone.metadata().name, "default");
    assert_eq!(gone.metadata().resource_version, rev.to_string());
    assert!(
        calico_datastore::Datastore::get(store.as_ref(), CI_KEY)
            .await
            .unwrap()
            .is_none()
    );
}
