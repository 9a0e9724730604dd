//! Plain request/response types shared by every backend, modelled on etcd v3's KV API.

use crate::DatastoreError;

/// A store-wide revision (etcd's `Revision`/`ModRevision`). Starts at 1 for an empty store;
/// every write transaction increments it by exactly one.
pub type Revision = i64;

/// A lease id (etcd's `LeaseID`); 0 means "no lease".
pub type LeaseId = i64;

/// One key's current value and its bookkeeping revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created this key (since it was last absent).
    pub create_revision: Revision,
    /// Revision of the last write to this key. This is Calico's `resourceVersion`.
    pub mod_revision: Revision,
    /// Number of writes since creation (1 after create); 0 means the key does not exist.
    pub version: i64,
    /// Lease the key is attached to, or 0.
    pub lease: LeaseId,
}

/// A read of one key or of every key under a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeRequest {
    pub key: String,
    /// When set, `key` is a prefix and every key starting with it is returned.
    pub prefix: bool,
    /// At most this many keys (0 = no limit); `more` tells whether more existed.
    pub limit: i64,
    /// Only count the keys, return no values.
    pub count_only: bool,
}

impl RangeRequest {
    pub fn key(key: &str) -> Self {
        RangeRequest {
            key: key.to_string(),
            ..Default::default()
        }
    }
    pub fn prefix(prefix: &str) -> Self {
        RangeRequest {
            key: prefix.to_string(),
            prefix: true,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResponse {
    /// Matching keys in ascending key order.
    pub kvs: Vec<KeyValue>,
    /// Number of keys that matched (even when `limit` or `count_only` cut `kvs`).
    pub count: i64,
    /// Whether `limit` cut the result.
    pub more: bool,
    /// The store revision this read was served at.
    pub revision: Revision,
}

/// What a transaction compares on a key (etcd `Compare.target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    /// Number of writes since creation; 0 = absent.
    Version(i64),
    CreateRevision(Revision),
    ModRevision(Revision),
    Value(Vec<u8>),
    Lease(LeaseId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Greater,
    Less,
}

/// One guard of a transaction. As in etcd, a compare on an absent key sees version,
/// create/mod revision and lease 0, and a value compare on an absent key never holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub op: CompareOp,
    pub target: CompareTarget,
}

impl Compare {
    pub fn version(key: &str, op: CompareOp, version: i64) -> Self {
        Compare {
            key: key.to_string(),
            op,
            target: CompareTarget::Version(version),
        }
    }
    pub fn mod_revision(key: &str, op: CompareOp, rev: Revision) -> Self {
        Compare {
            key: key.to_string(),
            op,
            target: CompareTarget::ModRevision(rev),
        }
    }
    pub fn create_revision(key: &str, op: CompareOp, rev: Revision) -> Self {
        Compare {
            key: key.to_string(),
            op,
            target: CompareTarget::CreateRevision(rev),
        }
    }
    pub fn value(key: &str, op: CompareOp, value: Vec<u8>) -> Self {
        Compare {
            key: key.to_string(),
            op,
            target: CompareTarget::Value(value),
        }
    }

    /// Evaluates this compare against a key's current state (`None` = absent). Backends that
    /// evaluate compares themselves (the embedded store) use this so the semantics are shared.
    pub fn holds(&self, current: Option<&KeyValue>) -> bool {
        use std::cmp::Ordering;
        // etcd (server/etcdserver/apply.go applyCompare): a value compare on an absent key
        // always fails, whatever the operator — an empty value and "no value" can't be told
        // apart on the wire, so etcd refuses to guess.
        if current.is_none() && matches!(self.target, CompareTarget::Value(_)) {
            return false;
        }
        let ord: Ordering = match &self.target {
            CompareTarget::Version(v) => current.map_or(0, |kv| kv.version).cmp(v),
            CompareTarget::CreateRevision(r) => current.map_or(0, |kv| kv.create_revision).cmp(r),
            CompareTarget::ModRevision(r) => current.map_or(0, |kv| kv.mod_revision).cmp(r),
            CompareTarget::Lease(l) => current.map_or(0, |kv| kv.lease).cmp(l),
            CompareTarget::Value(v) => current
                .map_or(&[][..], |kv| kv.value.as_slice())
                .cmp(v.as_slice()),
        };
        match self.op {
            CompareOp::Equal => ord == Ordering::Equal,
            CompareOp::NotEqual => ord != Ordering::Equal,
            CompareOp::Greater => ord == Ordering::Greater,
            CompareOp::Less => ord == Ordering::Less,
        }
    }
}

/// One operation inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Put {
        key: String,
        value: Vec<u8>,
        lease: Option<LeaseId>,
        prev_kv: bool,
    },
    /// Deletes `key`, or every key under it when `prefix` is set.
    Delete {
        key: String,
        prefix: bool,
        prev_kv: bool,
    },
    Range(RangeRequest),
}

impl TxnOp {
    pub fn put(key: &str, value: Vec<u8>, lease: Option<LeaseId>) -> Self {
        TxnOp::Put {
            key: key.to_string(),
            value,
            lease,
            prev_kv: false,
        }
    }
    pub fn delete(key: &str) -> Self {
        TxnOp::Delete {
            key: key.to_string(),
            prefix: false,
            prev_kv: false,
        }
    }
    pub fn get(key: &str) -> Self {
        TxnOp::Range(RangeRequest::key(key))
    }
}

/// A compare-and-swap transaction (etcd `Txn`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

/// The result of one [`TxnOp`], in the order the ops were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOpResult {
    Put {
        prev_kv: Option<KeyValue>,
    },
    Delete {
        deleted: i64,
        prev_kvs: Vec<KeyValue>,
    },
    Range(RangeResponse),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether every compare held (and so the `success` branch ran).
    pub succeeded: bool,
    /// The store revision after the transaction (the new one if it wrote anything).
    pub revision: Revision,
    pub results: Vec<TxnOpResult>,
}

/// A watch on one key or a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchRequest {
    pub key: String,
    pub prefix: bool,
    /// First revision to deliver, inclusive; 0 = only changes after the watch starts.
    pub start_revision: Revision,
    /// Also deliver the previous value with each event.
    pub prev_kv: bool,
}

impl WatchRequest {
    pub fn prefix(prefix: &str, start_revision: Revision) -> Self {
        WatchRequest {
            key: prefix.to_string(),
            prefix: true,
            start_revision,
            prev_kv: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change. For a delete, `kv` carries the key, `mod_revision` = the delete's revision,
/// empty value and version 0 (as etcd reports it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev_kv: Option<KeyValue>,
}

/// The receiving end of a watch. Dropping it cancels the watch.
///
/// Yields batches of events in revision order (all events of one revision arrive in one batch),
/// `Err(Compacted)` when the watch can't continue without a resync, and `None` once the watch
/// ended (the store shut down).
pub struct WatchStream {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<WatchEvent>, DatastoreError>>,
    _guard: Option<Box<dyn std::any::Any + Send>>,
}

impl WatchStream {
    /// Builds a stream from a channel a backend feeds. `guard` is kept alive with the stream
    /// (e.g. a task handle that aborts the producer when dropped).
    pub fn new(
        rx: tokio::sync::mpsc::Receiver<Result<Vec<WatchEvent>, DatastoreError>>,
        guard: Option<Box<dyn std::any::Any + Send>>,
    ) -> Self {
        WatchStream { rx, _guard: guard }
    }

    /// The next batch of events, or an error after which the stream is finished.
    pub async fn next(&mut self) -> Option<Result<Vec<WatchEvent>, DatastoreError>> {
        self.rx.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: &[u8]) -> KeyValue {
        KeyValue {
            key: "k".into(),
            value: value.to_vec(),
            create_revision: 2,
            mod_revision: 5,
            version: 3,
            lease: 0,
        }
    }

    #[test]
    fn compares_on_present_keys() {
        let cur = kv(b"b");
        assert!(Compare::mod_revision("k", CompareOp::Equal, 5).holds(Some(&cur)));
        assert!(Compare::mod_revision("k", CompareOp::Less, 6).holds(Some(&cur)));
        assert!(!Compare::mod_revision("k", CompareOp::Greater, 5).holds(Some(&cur)));
        assert!(Compare::version("k", CompareOp::NotEqual, 0).holds(Some(&cur)));
        assert!(Compare::value("k", CompareOp::Greater, b"a".to_vec()).holds(Some(&cur)));
        assert!(Compare::value("k", CompareOp::Equal, b"b".to_vec()).holds(Some(&cur)));
    }

    #[test]
    fn compares_on_absent_keys_follow_etcd() {
        assert!(Compare::version("k", CompareOp::Equal, 0).holds(None));
        assert!(Compare::mod_revision("k", CompareOp::Equal, 0).holds(None));
        assert!(Compare::create_revision("k", CompareOp::Less, 1).holds(None));
        // A value compare never holds on an absent key, even NotEqual or Equal-to-empty.
        assert!(!Compare::value("k", CompareOp::NotEqual, b"z".to_vec()).holds(None));
        assert!(!Compare::value("k", CompareOp::Equal, Vec::new()).holds(None));
    }
}
