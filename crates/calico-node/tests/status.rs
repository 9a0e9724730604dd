//! Felix's status reports, on the embedded store and a real etcd.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_api::Resource;
use calico_client::Client;
use calico_datastore::Datastore;
use calico_node::config::FelixEnv;
use calico_node::status::{self, StatusReport, StatusReporter};
use serde_json::json;
use tokio_util::sync::CancellationToken;

mod common;

async fn read(store: &dyn Datastore, key: &str) -> Option<(serde_json::Value, i64)> {
    let kv = store.get(key).await.unwrap()?;
    Some((serde_json::from_slice(&kv.value).unwrap(), kv.lease))
}

async fn reports_and_ttl(store: Arc<dyn Datastore>) {
    let active = "/calico/felix/v2/no-region/host/node1/status";
    let last = "/calico/felix/v2/no-region/host/node1/last_reported_status";
    assert_eq!(status::active_key("no-region", "node1"), active);
    assert_eq!(status::last_key("no-region", "node1"), last);

    let started = Instant::now() - Duration::from_secs(5);
    let mut r = StatusReporter::new(
        store.clone(),
        "no-region",
        "node1",
        Duration::from_secs(2),
        started,
    );
    let first = r.report_once().await.unwrap();
    assert!(first.first_update);
    assert!(first.uptime >= 5.0);
    let (v, lease) = read(store.as_ref(), active).await.unwrap();
    assert_ne!(lease, 0, "the active key carries a lease");
    // Exactly Calico's shape and key order.
    let obj = v.as_object().unwrap();
    assert_eq!(
        obj.keys().collect::<Vec<_>>(),
        vec!["time", "uptime", "first_update"]
    );
    assert_eq!(v["first_update"], true);
    let t = v["time"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
    assert!(t.ends_with('Z') && !t.contains('.'), "{t}");
    let (lv, llease) = read(store.as_ref(), last).await.unwrap();
    assert_eq!(llease, 0, "last_reported_status has no TTL");
    assert_eq!(lv, v);

    let second = r.report_once().await.unwrap();
    assert!(!second.first_update);
    let (v2, _) = read(store.as_ref(), active).await.unwrap();
    let parsed: StatusReport = serde_json::from_value(v2).unwrap();
    assert!(!parsed.first_update);
    assert!(parsed.uptime >= first.uptime);

    // Without further reports the active key expires; the last one stays.
    let deadline = Instant::now() + Duration::from_secs(15);
    while read(store.as_ref(), active).await.is_some() {
        assert!(Instant::now() < deadline, "status key did not expire");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(read(store.as_ref(), last).await.is_some());
}

async fn run_loop_and_region(store: Arc<dyn Datastore>) {
    let shutdown = CancellationToken::new();
    let r = StatusReporter::new(
        store.clone(),
        "region-r1",
        "node2",
        Duration::from_secs(90),
        Instant::now(),
    );
    let task = tokio::spawn(r.run(Duration::from_millis(100), Duration::ZERO, shutdown.clone()));
    let key = "/calico/felix/v2/region-r1/host/node2/last_reported_status";
    let deadline = Instant::now() + Duration::from_secs(10);
    // Wait for a report with first_update false (i.e. at least the second one).
    loop {
        if let Some((v, _)) = read(store.as_ref(), key).await
            && v["first_update"] == false
        {
            break;
        }
        assert!(Instant::now() < deadline, "no repeated reports");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();

    // Interval 0: reports are disabled, run returns at once.
    let r = StatusReporter::new(
        store.clone(),
        "no-region",
        "node3",
        Duration::from_secs(90),
        Instant::now(),
    );
    tokio::time::timeout(
        Duration::from_secs(1),
        r.run(Duration::ZERO, Duration::ZERO, CancellationToken::new()),
    )
    .await
    .unwrap();
    assert!(
        read(
            store.as_ref(),
            "/calico/felix/v2/no-region/host/node3/last_reported_status"
        )
        .await
        .is_none()
    );
}

async fn interval_precedence(store: Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    let env = FelixEnv::default();
    // Nothing anywhere: Felix's defaults.
    assert_eq!(
        status::effective_intervals(&c, "node1", &env).await,
        (Duration::from_secs(30), Duration::from_secs(90))
    );
    // calico-node's global default (0 = disabled).
    c.create(
        Resource::from_json_value(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "FelixConfiguration",
            "metadata": {"name": "default"},
            "spec": {"reportingInterval": "0s", "reportingTTL": "45s"}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        status::effective_intervals(&c, "node1", &env).await,
        (Duration::ZERO, Duration::from_secs(45))
    );
    // The per-node object wins over the global one.
    c.create(
        Resource::from_json_value(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "FelixConfiguration",
            "metadata": {"name": "node.node1"},
            "spec": {"reportingInterval": "1m"}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        status::effective_intervals(&c, "node1", &env).await,
        (Duration::from_secs(60), Duration::from_secs(45))
    );
    // The environment wins over both.
    let env = FelixEnv {
        reporting_interval: Some(Duration::from_secs(5)),
        reporting_ttl: Some(Duration::from_secs(15)),
        ..FelixEnv::default()
    };
    assert_eq!(
        status::effective_intervals(&c, "node1", &env).await,
        (Duration::from_secs(5), Duration::from_secs(15))
    );
}

scenarios!(reports_and_ttl, run_loop_and_region, interval_precedence);
