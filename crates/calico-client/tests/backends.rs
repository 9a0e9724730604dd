//! The client's CAS and watch semantics on the real backends: the embedded SQLite store and a
//! real etcd (skipped with a note when etcd is not installed, unless `CI` is set).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use calico_api::Resource;
use calico_client::{Client, EventType};
use calico_datastore::Datastore;
use serde_json::json;

fn pool(name: &str, cidr: &str) -> Resource {
    Resource::from_json_value(
        json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": name}, "spec": {"cidr": cidr}}),
    )
    .unwrap()
}

async fn scenario(ds: Arc<dyn Datastore>) {
    let client = Client::new(ds);
    client.ensure_initialized("", "").await.unwrap();
    let start = client.list("IPPool", None).await.unwrap();
    let mut w = client
        .watch("IPPool", None, Some(&start.revision.to_string()))
        .await
        .unwrap();

    let v1 = client.create(pool("p1", "10.10.0.0/16")).await.unwrap();
    let mut j = v1.to_json_value();
    j["spec"]["natOutgoing"] = json!(true);
    let v2 = client
        .update(Resource::from_json_value(j.clone()).unwrap())
        .await
        .unwrap();
    // The same update again carries a stale resourceVersion.
    let e = client
        .update(Resource::from_json_value(j).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "update conflict: IPPool(p1)");
    let gone = client
        .delete("IPPool", "", "p1", Some(&v2.metadata().resource_version))
        .await
        .unwrap();
    assert_eq!(gone.metadata().uid, v1.metadata().uid);

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .expect("watch event in time")
            .unwrap()
            .unwrap();
        seen.push(ev);
    }
    assert_eq!(seen[0].event_type, EventType::Added);
    assert_eq!(seen[0].object.as_ref(), Some(&v1));
    assert_eq!(seen[1].event_type, EventType::Modified);
    assert_eq!(seen[1].object.as_ref(), Some(&v2));
    assert_eq!(seen[1].previous.as_ref(), Some(&v1));
    assert_eq!(seen[2].event_type, EventType::Deleted);
    assert_eq!(seen[2].previous.as_ref(), Some(&v2));
}

#[tokio::test]
async fn embedded_backend() {
    let dir = tempfile::tempdir().unwrap();
    let ds = calico_datastore::EmbeddedDatastore::open(dir.path().join("c.db")).unwrap();
    scenario(Arc::new(ds)).await;
}

#[tokio::test]
async fn etcd_backend() {
    let Some(etcd) = calico_datastore::testing::EtcdServer::start_or_skip() else {
        return;
    };
    let ds = calico_datastore::etcd::EtcdDatastore::connect(etcd.config())
        .await
        .unwrap();
    scenario(Arc::new(ds)).await;
}
