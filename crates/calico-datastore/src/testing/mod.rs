//! Test support shared with other crates' tests (feature `test-etcd`): a real etcd server on
//! loopback, started and stopped per test.
//!
//! Enable it from another crate with
//! `calico-datastore = { workspace = true, features = ["test-etcd"] }` under
//! `[dev-dependencies]`, then:
//!
//! ```no_run
//! # async fn demo() {
//! use calico_datastore::testing::EtcdServer;
//! let Some(etcd) = EtcdServer::start_or_skip() else { return };
//! let store = calico_datastore::etcd::EtcdDatastore::connect(etcd.config()).await.unwrap();
//! # drop(store);
//! # }
//! ```

mod etcd;

pub use etcd::{EtcdServer, HarnessError, TlsFiles, etcd_installed, free_port};
