//! The conformance suite against the embedded SQLite backend: every single-store check on a
//! fresh file, plus the checks that need several processes sharing one file.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::sync::Arc;

use calico_datastore::conformance::{self, Backend, Fixture, WriterProcess};
use calico_datastore::{Datastore, EmbeddedDatastore};

async fn fresh() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedDatastore::open(dir.path().join("store.db")).unwrap();
    Fixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

calico_datastore::datastore_conformance_tests!(fresh);

fn writer(path: &std::path::Path) -> WriterProcess {
    WriterProcess {
        program: env!("CARGO_BIN_EXE_datastore-test-writer").into(),
        backend: Backend::Embedded(path.to_path_buf()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_process_cas_8_writers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = EmbeddedDatastore::open(&path).unwrap();
    let report = conformance::multi_process_cas(&store, &writer(&path), 8, 50).await;
    eprintln!("{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_process_watch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = EmbeddedDatastore::open(&path).unwrap();
    conformance::cross_process_watch(&store, &writer(&path)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_outlives_its_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = EmbeddedDatastore::open(&path).unwrap();
    conformance::lease_outlives_its_process(&store, &writer(&path)).await;
}

/// Two handles on one file in this process behave like two processes: what one writes, the
/// other reads and watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let a = EmbeddedDatastore::open(&path).unwrap();
    let b = EmbeddedDatastore::open(&path).unwrap();
    let mut w = b
        .watch(calico_datastore::WatchRequest::prefix("/x/", 0))
        .await
        .unwrap();
    let rev = a.put("/x/k", b"v".to_vec(), None).await.unwrap();
    assert_eq!(b.get("/x/k").await.unwrap().unwrap().mod_revision, rev);
    let evs = conformance::collect_events(&mut w, 1).await;
    assert_eq!(evs[0].kv.mod_revision, rev);
}
