//! Behaviour specific to the embedded SQLite backend: file format and schema versioning,
//! several processes opening one fresh file, lock contention, auto-compaction, slow watchers.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use calico_datastore::conformance::{Backend, WriterProcess, collect_events};
use calico_datastore::embedded::{EmbeddedOptions, SCHEMA_VERSION};
use calico_datastore::{Datastore, DatastoreError, EmbeddedDatastore, WatchRequest};

fn temp_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    (dir, path)
}

#[tokio::test]
async fn file_is_wal_and_records_its_schema_version() {
    let (_dir, path) = temp_store();
    drop(EmbeddedDatastore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[tokio::test]
async fn newer_schema_is_refused_with_a_clear_error() {
    let (_dir, path) = temp_store();
    drop(EmbeddedDatastore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_version (version, applied_at_ms) VALUES (?1, 0)",
        [SCHEMA_VERSION + 1],
    )
    .unwrap();
    drop(conn);
    match EmbeddedDatastore::open(&path) {
        Err(DatastoreError::Config(msg)) => {
            assert!(
                msg.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
                "{msg}"
            );
            assert!(msg.contains("upgrade"), "{msg}");
        }
        Err(e) => panic!("expected a Config error, got {e:?}"),
        Ok(_) => panic!("a newer schema must be refused"),
    }
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_refused() {
    let (_dir, path) = temp_store();
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    match EmbeddedDatastore::open(&path) {
        Err(DatastoreError::Config(msg)) => assert!(msg.contains("store.db"), "{msg}"),
        Err(e) => panic!("expected a Config error, got {e:?}"),
        Ok(_) => panic!("garbage must not open"),
    }
}

#[tokio::test]
async fn a_missing_directory_is_a_config_error() {
    let (dir, _) = temp_store();
    let path = dir.path().join("no/such/dir/store.db");
    assert!(matches!(
        EmbeddedDatastore::open(&path),
        Err(DatastoreError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_reopening() {
    let (_dir, path) = temp_store();
    let store = EmbeddedDatastore::open(&path).unwrap();
    let r1 = store.put("/a", b"1".to_vec(), None).await.unwrap();
    let r2 = store.put("/b", b"2".to_vec(), None).await.unwrap();
    store.compact(r2).await.unwrap();
    drop(store);
    let store = EmbeddedDatastore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), r2);
    assert_eq!(store.compact_revision().await.unwrap(), r2);
    assert_eq!(store.get("/a").await.unwrap().unwrap().mod_revision, r1);
    assert_eq!(store.put("/c", vec![], None).await.unwrap(), r2 + 1);
}

/// Eight processes create the same fresh file at once: schema creation and the switch to WAL
/// must not fail in any of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_racing_to_create_one_file() {
    let (_dir, path) = temp_store();
    let writer = WriterProcess {
        program: env!("CARGO_BIN_EXE_datastore-test-writer").into(),
        backend: Backend::Embedded(path.clone()),
    };
    let children: Vec<_> = (0..8)
        .map(|i| {
            writer
                .command(&["put", "--key", &format!("/race/{i}"), "--value", "x"])
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().await.unwrap();
        assert!(out.status.success());
    }
    let store = EmbeddedDatastore::open(&path).unwrap();
    assert_eq!(store.list("/race/").await.unwrap().count, 8);
    assert_eq!(store.current_revision().await.unwrap(), 9);
}

/// A writer that can't get the lock within the busy timeout gets `Unavailable`, not a hang or
/// a generic error; reads still work meanwhile (WAL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_held_beyond_busy_timeout_is_unavailable() {
    let (_dir, path) = temp_store();
    let store = EmbeddedDatastore::open_with(
        &path,
        EmbeddedOptions {
            busy_timeout: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .unwrap();
    store.put("/k", b"v".to_vec(), None).await.unwrap();
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    match store.put("/k", b"w".to_vec(), None).await {
        Err(DatastoreError::Unavailable(msg)) => assert!(msg.contains("locked"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(store.get("/k").await.unwrap().unwrap().value, b"v");
    blocker.execute_batch("COMMIT").unwrap();
    store.put("/k", b"w".to_vec(), None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_compaction_keeps_recent_history() {
    let (_dir, path) = temp_store();
    let store = EmbeddedDatastore::open_with(
        &path,
        EmbeddedOptions {
            auto_compact_retain: Some(10),
            ..Default::default()
        },
    )
    .unwrap();
    let mut last = 0;
    for i in 0..40 {
        last = store
            .put(&format!("/k/{}", i % 3), vec![i], None)
            .await
            .unwrap();
    }
    let compacted = store.compact_revision().await.unwrap();
    assert!(
        compacted > 1 && last - compacted >= 10 && last - compacted <= 12,
        "compact revision {compacted} at revision {last}"
    );
    let mut w = store.watch(WatchRequest::prefix("/k/", 1)).await.unwrap();
    assert!(matches!(
        w.next().await,
        Some(Err(DatastoreError::Compacted { .. }))
    ));
    let mut w = store
        .watch(WatchRequest::prefix("/k/", compacted))
        .await
        .unwrap();
    collect_events(&mut w, (last - compacted + 1) as usize).await;
    assert_eq!(store.list("/k/").await.unwrap().count, 3);
}

/// A watcher that doesn't read while thousands of revisions go by (its channel fills up), and
/// one that replays more history than one poll round reads, both get every event once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_replaying_watchers_lose_nothing() {
    let (_dir, path) = temp_store();
    let store = EmbeddedDatastore::open(&path).unwrap();
    let mut slow = store.watch(WatchRequest::prefix("/s/", 0)).await.unwrap();
    let first = store.current_revision().await.unwrap() + 1;
    let n = 2500;
    for i in 0..n {
        store
            .put(&format!("/s/{}", i % 7), i.to_string().into_bytes(), None)
            .await
            .unwrap();
        if i % 10 == 0 {
            // Give the poller rounds to fill the slow watcher's channel.
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
    }
    let check = |evs: &[calico_datastore::WatchEvent]| {
        for (i, e) in evs.iter().enumerate() {
            assert_eq!(e.kv.mod_revision, first + i as i64);
            assert_eq!(e.kv.value, i.to_string().into_bytes());
        }
    };
    check(&collect_events(&mut slow, n).await);
    let mut replay = store
        .watch(WatchRequest::prefix("/s/", first))
        .await
        .unwrap();
    check(&collect_events(&mut replay, n).await);
}

#[tokio::test]
async fn bad_requests_are_rejected() {
    let (_dir, path) = temp_store();
    let store = EmbeddedDatastore::open(&path).unwrap();
    assert!(matches!(
        store
            .watch(WatchRequest {
                key: "/k".into(),
                prefix: false,
                start_revision: -1,
                prev_kv: false,
            })
            .await,
        Err(DatastoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        store.watch(WatchRequest::default()).await,
        Err(DatastoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        store.lease_grant(0).await,
        Err(DatastoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        store.lease_grant(i64::MAX).await,
        Err(DatastoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        store
            .range(calico_datastore::RangeRequest {
                key: "/k".into(),
                limit: -1,
                ..Default::default()
            })
            .await,
        Err(DatastoreError::InvalidRequest(_))
    ));
    // The empty prefix means every key, as in etcd.
    store.put("/a", vec![], None).await.unwrap();
    store.put("z", vec![], None).await.unwrap();
    assert_eq!(store.list("").await.unwrap().count, 2);
}

/// Dropping the last handle of a store stops its poller: open watch streams end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_end_when_the_store_is_dropped() {
    let (_dir, path) = temp_store();
    let store = EmbeddedDatastore::open(&path).unwrap();
    let mut w = store.watch(WatchRequest::prefix("/", 0)).await.unwrap();
    store.put("/k", b"v".to_vec(), None).await.unwrap();
    collect_events(&mut w, 1).await;
    drop(store);
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
        Ok(None) => {}
        other => panic!("expected the stream to end, got {other:?}"),
    }
}
