//! An in-memory `Datastore` with etcd semantics for the client's tests: one revision counter,
//! create/mod revisions and versions per key, transactions evaluated with the trait's shared
//! `Compare::holds`, and watches served from an event log.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use calico_datastore::*;

type EventSender = tokio::sync::mpsc::Sender<Result<Vec<WatchEvent>, DatastoreError>>;

#[derive(Default)]
struct State {
    rev: Revision,
    kvs: BTreeMap<String, KeyValue>,
    log: Vec<WatchEvent>,
    watchers: Vec<(WatchRequest, EventSender)>,
}

#[derive(Default, Clone)]
pub struct MemStore {
    st: Arc<Mutex<State>>,
}

impl MemStore {
    pub fn new() -> Arc<MemStore> {
        Arc::new(MemStore::default())
    }
    /// Raw value under a key (to check what is stored).
    pub fn raw(&self, key: &str) -> Option<KeyValue> {
        self.st.lock().unwrap().kvs.get(key).cloned()
    }
    pub fn keys(&self) -> Vec<String> {
        self.st.lock().unwrap().kvs.keys().cloned().collect()
    }
}

fn matches(req_key: &str, prefix: bool, key: &str) -> bool {
    if prefix {
        key.starts_with(req_key)
    } else {
        key == req_key
    }
}

fn range(st: &State, req: &RangeRequest) -> RangeResponse {
    let kvs: Vec<KeyValue> = st
        .kvs
        .values()
        .filter(|kv| matches(&req.key, req.prefix, &kv.key))
        .cloned()
        .collect();
    RangeResponse {
        count: kvs.len() as i64,
        kvs,
        more: false,
        revision: st.rev,
    }
}

#[async_trait]
impl Datastore for MemStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, DatastoreError> {
        Ok(range(&self.st.lock().unwrap(), &req))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, DatastoreError> {
        let mut st = self.st.lock().unwrap();
        let ok = txn.compare.iter().all(|c| c.holds(st.kvs.get(&c.key)));
        let ops = if ok { txn.success } else { txn.failure };
        let writes = ops.iter().any(|o| !matches!(o, TxnOp::Range(_)));
        let new_rev = st.rev + 1;
        let mut results = Vec::new();
        let mut events = Vec::new();
        for op in ops {
            match op {
                TxnOp::Range(r) => results.push(TxnOpResult::Range(range(&st, &r))),
                TxnOp::Put {
                    key, value, lease, ..
                } => {
                    let prev = st.kvs.get(&key).cloned();
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision: prev.as_ref().map_or(new_rev, |p| p.create_revision),
                        mod_revision: new_rev,
                        version: prev.as_ref().map_or(1, |p| p.version + 1),
                        lease: lease.unwrap_or(0),
                    };
                    st.kvs.insert(key, kv.clone());
                    events.push(WatchEvent {
                        kind: EventKind::Put,
                        kv,
                        prev_kv: prev.clone(),
                    });
                    results.push(TxnOpResult::Put { prev_kv: prev });
                }
                TxnOp::Delete { key, prefix, .. } => {
                    let doomed: Vec<String> = st
                        .kvs
                        .keys()
                        .filter(|k| matches(&key, prefix, k))
                        .cloned()
                        .collect();
                    let mut prev_kvs = Vec::new();
                    for k in doomed {
                        if let Some(p) = st.kvs.remove(&k) {
                            events.push(WatchEvent {
                                kind: EventKind::Delete,
                                kv: KeyValue {
                                    key: k.clone(),
                                    value: vec![],
                                    create_revision: 0,
                                    mod_revision: new_rev,
                                    version: 0,
                                    lease: 0,
                                },
                                prev_kv: Some(p.clone()),
                            });
                            prev_kvs.push(p);
                        }
                    }
                    results.push(TxnOpResult::Delete {
                        deleted: prev_kvs.len() as i64,
                        prev_kvs,
                    });
                }
            }
        }
        if writes {
            st.rev = new_rev;
            st.log.extend(events.iter().cloned());
            st.watchers.retain(|(req, tx)| {
                let batch: Vec<WatchEvent> = events
                    .iter()
                    .filter(|e| matches(&req.key, req.prefix, &e.kv.key))
                    .cloned()
                    .collect();
                batch.is_empty() || tx.try_send(Ok(batch)).is_ok()
            });
        }
        Ok(TxnResponse {
            succeeded: ok,
            revision: st.rev,
            results,
        })
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream, DatastoreError> {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut st = self.st.lock().unwrap();
        if req.start_revision > 0 {
            let mut by_rev: BTreeMap<Revision, Vec<WatchEvent>> = BTreeMap::new();
            for e in st.log.iter().filter(|e| {
                e.kv.mod_revision >= req.start_revision && matches(&req.key, req.prefix, &e.kv.key)
            }) {
                by_rev.entry(e.kv.mod_revision).or_default().push(e.clone());
            }
            for (_, b) in by_rev {
                let _ = tx.try_send(Ok(b));
            }
        }
        st.watchers.push((req, tx));
        Ok(WatchStream::new(rx, None))
    }

    async fn lease_grant(&self, _ttl: i64) -> Result<LeaseId, DatastoreError> {
        Ok(1)
    }
    async fn lease_keep_alive(&self, _lease: LeaseId) -> Result<i64, DatastoreError> {
        Ok(60)
    }
    async fn lease_revoke(&self, _lease: LeaseId) -> Result<(), DatastoreError> {
        Ok(())
    }
    async fn compact(&self, _revision: Revision) -> Result<(), DatastoreError> {
        Ok(())
    }
    async fn current_revision(&self) -> Result<Revision, DatastoreError> {
        Ok(self.st.lock().unwrap().rev)
    }
}
