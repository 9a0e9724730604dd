//! Shared by the scenario test files: run each scenario on a fresh embedded store, and all of
//! them in turn on one real etcd (wiped before each).

#![allow(dead_code)]

use calico_datastore::Datastore;

/// Deletes everything under `/calico/`, so the next etcd scenario starts empty.
pub async fn wipe(store: &dyn Datastore) {
    store
        .txn(calico_datastore::Txn {
            compare: vec![],
            success: vec![calico_datastore::TxnOp::Delete {
                key: "/calico/".into(),
                prefix: true,
                prev_kv: false,
            }],
            failure: vec![],
        })
        .await
        .unwrap();
}

/// `scenarios!(a, b, ...)`: each `async fn a(store: Arc<dyn Datastore>)` as its own test on a
/// fresh embedded store, plus one test running them all on a real etcd.
#[macro_export]
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store: std::sync::Arc<dyn calico_datastore::Datastore> = std::sync::Arc::new(
                        calico_datastore::EmbeddedDatastore::open(dir.path().join("s.db")).unwrap(),
                    );
                    super::$name(store).await;
                }
            )*
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn etcd_scenarios() {
            let Some(etcd) = calico_datastore::testing::EtcdServer::start_or_skip() else {
                return;
            };
            let store: std::sync::Arc<dyn calico_datastore::Datastore> = std::sync::Arc::new(
                calico_datastore::etcd::EtcdDatastore::connect(etcd.config())
                    .await
                    .unwrap(),
            );
            $(
                common::wipe(store.as_ref()).await;
                eprintln!("etcd {} {}", module_path!(), stringify!($name));
                $name(store.clone()).await;
            )*
        }
    };
}
