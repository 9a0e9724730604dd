//! The datastore: one trait with etcd v3 semantics, and the backends behind it.
//!
//! This crate owns the storage contract every other component talks to: keys are UTF-8 strings
//! laid out the way Calico lays them out in etcd (`/calico/resources/v3/projectcalico.org/...`,
//! `/calico/ipam/v2/...`), values are opaque bytes, and every write advances one global revision,
//! exactly like etcd's MVCC store. Revisions let callers do compare-and-swap (Calico's
//! `resourceVersion` is the etcd `ModRevision`) and resume watches.
//!
//! Backends:
//! - [`embedded`] — the zero-set-up default: one SQLite file in WAL mode with a revision log,
//!   shared safely by several processes on one machine (the way k3s's kine serves etcd semantics).
//! - [`etcd`] — a real etcd v3 cluster (several endpoints, TLS client certificates).
//!
//! It knows nothing about Calico resources (no dependency on `calico-api`): typed access and the
//! key layout live in `calico-client`. It must not depend on netlink, nftables or any dataplane.

mod error;
mod types;

#[doc(hidden)]
pub mod conformance;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "embedded")]
pub use embedded::{EmbeddedDatastore, EmbeddedOptions};

#[cfg(feature = "etcd")]
pub mod etcd;
#[cfg(feature = "test-etcd")]
pub mod testing;

pub use error::DatastoreError;
pub use types::*;

use async_trait::async_trait;

/// A store with etcd v3 semantics.
///
/// Backends implement the primitive operations ([`Datastore::range`], [`Datastore::txn`],
/// [`Datastore::watch`], leases, compaction); the conveniences that Calico's clients use
/// (create / update / delete with compare-and-swap) are provided on top of `txn` so that every
/// backend gets the same semantics.
#[async_trait]
pub trait Datastore: Send + Sync {
    /// Reads one key, or every key under a prefix, at the current revision.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, DatastoreError>;

    /// Runs an atomic transaction: if every compare holds, the `success` ops run, otherwise the
    /// `failure` ops. All puts/deletes of one transaction share one new revision (etcd
    /// semantics); a transaction that writes nothing does not advance the revision.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse, DatastoreError>;

    /// Watches `key` (or every key under it when `prefix` is set) starting at
    /// `start_revision` inclusive (0 = only changes after now). Events arrive in revision order,
    /// each exactly once. If history at `start_revision` was compacted the stream yields
    /// [`DatastoreError::Compacted`] and ends: the caller must resync (list, then watch from the
    /// list's revision + 1). A backend that loses its connection resumes transparently from the
    /// next unseen revision, or yields `Compacted` if it can no longer.
    async fn watch(&self, req: WatchRequest) -> Result<WatchStream, DatastoreError>;

    /// Grants a lease with the given time-to-live in seconds; keys put with the lease are deleted
    /// (with delete events) when it expires or is revoked.
    async fn lease_grant(&self, ttl_seconds: i64) -> Result<LeaseId, DatastoreError>;

    /// Refreshes a lease's TTL; returns the TTL granted, or `LeaseNotFound` if it expired.
    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<i64, DatastoreError>;

    /// Revokes a lease, deleting every key attached to it.
    async fn lease_revoke(&self, lease: LeaseId) -> Result<(), DatastoreError>;

    /// Discards history at revisions below `revision`: watches from older revisions then fail
    /// with `Compacted`. The current value of every key is kept.
    async fn compact(&self, revision: Revision) -> Result<(), DatastoreError>;

    /// The store's current revision (that of the latest write).
    async fn current_revision(&self) -> Result<Revision, DatastoreError>;

    // ---- conveniences built on the primitives (same semantics on every backend) ----

    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, DatastoreError> {
        let resp = self.range(RangeRequest::key(key)).await?;
        Ok(resp.kvs.into_iter().next())
    }

    /// Lists every key under `prefix`, sorted by key, with the revision the listing was taken at
    /// (use `revision + 1` to watch for what follows).
    async fn list(&self, prefix: &str) -> Result<RangeResponse, DatastoreError> {
        self.range(RangeRequest::prefix(prefix)).await
    }

    /// Creates `key`; fails with `AlreadyExists` if it is present (Calico's etcdv3 backend:
    /// `If Version(key) == 0 Then Put`). Returns the new revision.
    async fn create(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, DatastoreError> {
        let resp = self
            .txn(Txn {
                compare: vec![Compare::version(key, CompareOp::Equal, 0)],
                success: vec![TxnOp::put(key, value, lease)],
                failure: vec![],
            })
            .await?;
        if resp.succeeded {
            Ok(resp.revision)
        } else {
            Err(DatastoreError::AlreadyExists {
                key: key.to_string(),
            })
        }
    }

    /// Replaces `key` only if its mod revision is still `expected` (Calico's `Update`:
    /// `If ModRevision(key) == rev Then Put Else Get`). Fails with `NotFound` when the key is
    /// gone and `Conflict` (carrying the current revision) when someone else wrote it first.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
        lease: Option<LeaseId>,
    ) -> Result<Revision, DatastoreError> {
        let resp = self
            .txn(Txn {
                compare: vec![Compare::mod_revision(key, CompareOp::Equal, expected)],
                success: vec![TxnOp::put(key, value, lease)],
                failure: vec![TxnOp::get(key)],
            })
            .await?;
        if resp.succeeded {
            return Ok(resp.revision);
        }
        match first_range(resp.results).and_then(|kvs| kvs.into_iter().next()) {
            Some(kv) => Err(DatastoreError::Conflict {
                key: key.to_string(),
                expected,
                actual: kv.mod_revision,
            }),
            None => Err(DatastoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }

    /// Writes `key` unconditionally (Calico's `Apply`). Returns the new revision.
    async fn put(
        &self,
        key: &str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> Result<Revision, DatastoreError> {
        let resp = self
            .txn(Txn {
                compare: vec![],
                success: vec![TxnOp::put(key, value, lease)],
                failure: vec![],
            })
            .await?;
        Ok(resp.revision)
    }

    /// Deletes `key`, only if its mod revision is `expected` when one is given. Returns the value
    /// that was deleted. `NotFound` if absent, `Conflict` if the revision moved on.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<KeyValue, DatastoreError> {
        let compare = match expected {
            Some(rev) => vec![Compare::mod_revision(key, CompareOp::Equal, rev)],
            None => vec![Compare::version(key, CompareOp::Greater, 0)],
        };
        let resp = self
            .txn(Txn {
                compare,
                success: vec![TxnOp::Delete {
                    key: key.to_string(),
                    prefix: false,
                    prev_kv: true,
                }],
                failure: vec![TxnOp::get(key)],
            })
            .await?;
        if resp.succeeded {
            return match resp.results.into_iter().next() {
                Some(TxnOpResult::Delete { prev_kvs, .. }) => prev_kvs
                    .into_iter()
                    .next()
                    .ok_or_else(|| DatastoreError::NotFound {
                        key: key.to_string(),
                    }),
                _ => Err(DatastoreError::Backend(format!(
                    "delete of {key}: transaction returned no delete result"
                ))),
            };
        }
        match (
            expected,
            first_range(resp.results).and_then(|kvs| kvs.into_iter().next()),
        ) {
            (Some(expected), Some(kv)) => Err(DatastoreError::Conflict {
                key: key.to_string(),
                expected,
                actual: kv.mod_revision,
            }),
            _ => Err(DatastoreError::NotFound {
                key: key.to_string(),
            }),
        }
    }
}

fn first_range(results: Vec<TxnOpResult>) -> Option<Vec<KeyValue>> {
    results.into_iter().find_map(|r| match r {
        TxnOpResult::Range(resp) => Some(resp.kvs),
        _ => None,
    })
}
