//! Backend-agnostic conformance suite: etcd v3 semantics every [`Datastore`] must show.
//!
//! Each function takes a store it may use exclusively for its duration (it checks exact revision
//! arithmetic, so no other writer may share the store meanwhile; other functions may run in
//! parallel against other stores) and panics with a message on the first violation. Keys live
//! under a unique prefix per call. Run the whole list with [`datastore_conformance_tests!`]:
//!
//! ```ignore
//! async fn fresh() -> calico_datastore::conformance::Fixture { /* a new, empty store */ }
//! calico_datastore::datastore_conformance_tests!(fresh);
//! ```
//!
//! The multi-process checks ([`multi_process_cas`], [`cross_process_watch`],
//! [`lease_outlives_its_process`]) spawn the `datastore-test-writer` binary of this crate
//! (`env!("CARGO_BIN_EXE_datastore-test-writer")` in integration tests), pointed at the same
//! store by a [`Backend`].
//!
//! Semantics follow etcd's API reference (<https://etcd.io/docs/v3.5/learning/api/>) and the
//! way Calico's etcdv3 backend uses it (`libcalico-go/lib/backend/etcdv3/etcdv3.go`). Points
//! where a backend could plausibly differ, pinned to what etcd 3.4/3.5 does:
//! - after `compact(r)`, a watch from `r` still works and one from `r - 1` yields `Compacted`
//!   (etcd keeps revision `r`); `compact` at or below the compaction point is `Compacted`,
//!   above the current revision `FutureRevision`;
//! - a watch may start in the future: it waits for that revision;
//! - empty keys and a key put twice (or put and deleted) in one txn branch are
//!   `InvalidRequest` (etcd's `InvalidArgument`), and change nothing;
//! - a txn that changes nothing (failed compares, reads, deleting absent keys) keeps the
//!   revision; a lease's keys go in one revision when it expires or is revoked.
//! Not part of the stable API: it exists for this crate's tests and benchmarks.

use std::any::Any;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{
    Compare, CompareOp, Datastore, DatastoreError, EventKind, KeyValue, RangeRequest, Revision,
    Txn, TxnOp, TxnOpResult, WatchEvent, WatchRequest, WatchStream,
};

/// How long any single expected event may take before the check fails.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A store for one conformance function, plus whatever must live as long as it (a temporary
/// directory, a server process).
pub struct Fixture {
    pub store: Arc<dyn Datastore>,
    pub guard: Box<dyn Any + Send>,
}

/// Which backend a child process (the test writer, the benchmark) opens, as command-line
/// arguments: `--embedded PATH` or `--etcd URL[,URL...]`. New backends add a variant here and a
/// branch in [`Backend::parse`], [`Backend::to_args`] and [`Backend::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Embedded(PathBuf),
    /// Comma-separated endpoint list, as Calico's `ETCD_ENDPOINTS`.
    Etcd(String),
}

impl Backend {
    /// Takes the backend selection off the front of `args` (removing it) and returns it.
    pub fn parse(args: &mut Vec<String>) -> Result<Backend, DatastoreError> {
        let usage = "expected --embedded PATH or --etcd URL[,URL...] as the first arguments";
        if args.len() < 2 {
            return Err(DatastoreError::Config(usage.to_string()));
        }
        let value = args.remove(1);
        let flag = args.remove(0);
        match flag.as_str() {
            "--embedded" => Ok(Backend::Embedded(PathBuf::from(value))),
            "--etcd" => Ok(Backend::Etcd(value)),
            other => Err(DatastoreError::Config(format!(
                "unknown backend {other:?}: {usage}"
            ))),
        }
    }

    pub fn to_args(&self) -> Vec<String> {
        match self {
            Backend::Embedded(path) => vec!["--embedded".into(), path.display().to_string()],
            Backend::Etcd(endpoints) => vec!["--etcd".into(), endpoints.clone()],
        }
    }

    /// Opens a client of this backend.
    pub async fn open(&self) -> Result<Arc<dyn Datastore>, DatastoreError> {
        match self {
            #[cfg(feature = "embedded")]
            Backend::Embedded(path) => Ok(Arc::new(crate::EmbeddedDatastore::open(path)?)),
            #[cfg(feature = "etcd")]
            Backend::Etcd(endpoints) => Ok(Arc::new(
                crate::etcd::EtcdDatastore::connect(crate::etcd::EtcdConfig::from_endpoints_str(
                    endpoints,
                )?)
                .await?,
            )),
            #[allow(unreachable_patterns)]
            other => Err(DatastoreError::Config(format!(
                "backend {other:?} is not compiled into this build"
            ))),
        }
    }
}

/// The `datastore-test-writer` binary and the store it should open.
#[derive(Debug, Clone)]
pub struct WriterProcess {
    pub program: PathBuf,
    pub backend: Backend,
}

impl WriterProcess {
    /// `program --<backend> <value> <args...>` with piped stdout.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(self.backend.to_args())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        cmd
    }

    /// Runs the writer to completion and returns its stdout; panics if it fails.
    pub async fn run(&self, args: &[&str]) -> String {
        let out = self
            .command(args)
            .output()
            .await
            .expect("spawn datastore-test-writer");
        assert!(
            out.status.success(),
            "datastore-test-writer {args:?} failed: {}",
            out.status
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

static PREFIX_SEQ: AtomicU64 = AtomicU64::new(0);

/// A key prefix no other call (in this or another process) uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "/conformance/{test}/{}-{nanos}-{}/",
        std::process::id(),
        PREFIX_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The next batch of events, failing the check after [`EVENT_TIMEOUT`] or on an error.
pub async fn next_batch(stream: &mut WatchStream) -> Vec<WatchEvent> {
    match tokio::time::timeout(EVENT_TIMEOUT, stream.next()).await {
        Ok(Some(Ok(batch))) => batch,
        Ok(Some(Err(e))) => panic!("watch failed: {e}"),
        Ok(None) => panic!("watch ended unexpectedly"),
        Err(_) => panic!("no watch event within {EVENT_TIMEOUT:?}"),
    }
}

/// Collects exactly `n` events (batch by batch), checking that no revision is split across
/// batches and that revisions never go backwards.
pub async fn collect_events(stream: &mut WatchStream, n: usize) -> Vec<WatchEvent> {
    let mut out: Vec<WatchEvent> = Vec::new();
    let mut batch_revs: BTreeSet<Revision> = BTreeSet::new();
    while out.len() < n {
        let batch = next_batch(stream).await;
        assert!(!batch.is_empty(), "watch delivered an empty batch");
        let revs: BTreeSet<Revision> = batch.iter().map(|e| e.kv.mod_revision).collect();
        for rev in &revs {
            assert!(
                !batch_revs.contains(rev),
                "events of revision {rev} were split across batches"
            );
        }
        batch_revs.extend(revs);
        out.extend(batch);
    }
    assert_eq!(out.len(), n, "more events than expected: {out:#?}");
    for pair in out.windows(2) {
        assert!(
            pair[0].kv.mod_revision <= pair[1].kv.mod_revision,
            "events out of revision order: {pair:#?}"
        );
    }
    out
}

/// Asserts the stream stays silent for `quiet`.
pub async fn expect_no_events(stream: &mut WatchStream, quiet: Duration) {
    if let Ok(got) = tokio::time::timeout(quiet, stream.next()).await {
        panic!("expected no watch event, got {got:?}");
    }
}

async fn must_get(store: &dyn Datastore, key: &str) -> KeyValue {
    store
        .get(key)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("{key} should exist"))
}

fn v(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

// ------------------------------------------------------------------------------------------
// Key/value semantics
// ------------------------------------------------------------------------------------------

/// Create, read, update, put, delete and re-create one key; revisions and versions as etcd
/// keeps them.
pub async fn crud(store: &dyn Datastore) {
    let key = format!("{}key", unique_prefix("crud"));
    assert_eq!(store.get(&key).await.expect("get"), None);
    let rev0 = store.current_revision().await.expect("current revision");
    assert!(rev0 >= 1, "revisions start at 1, got {rev0}");

    let r1 = store.create(&key, v("v1"), None).await.expect("create");
    assert_eq!(r1, rev0 + 1, "a write advances the revision by one");
    let kv = must_get(store, &key).await;
    assert_eq!(
        kv,
        KeyValue {
            key: key.clone(),
            value: v("v1"),
            create_revision: r1,
            mod_revision: r1,
            version: 1,
            lease: 0,
        }
    );

    let r2 = store.update(&key, v("v2"), r1, None).await.expect("update");
    assert_eq!(r2, r1 + 1);
    let kv = must_get(store, &key).await;
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"v2"[..], r1, r2, 2)
    );

    let r3 = store.put(&key, v("v3"), None).await.expect("put");
    assert_eq!(r3, r2 + 1);
    assert_eq!(must_get(store, &key).await.version, 3);
    assert_eq!(store.current_revision().await.expect("rev"), r3);

    let deleted = store.delete(&key, None).await.expect("delete");
    assert_eq!(
        (
            deleted.value.as_slice(),
            deleted.mod_revision,
            deleted.version
        ),
        (&b"v3"[..], r3, 3),
        "delete returns the value it removed"
    );
    assert_eq!(store.get(&key).await.expect("get"), None);
    let r4 = store.current_revision().await.expect("rev");
    assert_eq!(r4, r3 + 1, "a delete is a write");

    assert!(matches!(
        store.delete(&key, None).await,
        Err(DatastoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.update(&key, v("x"), r3, None).await,
        Err(DatastoreError::NotFound { .. })
    ));
    assert_eq!(
        store.current_revision().await.expect("rev"),
        r4,
        "failed writes don't advance the revision"
    );

    let r5 = store
        .create(&key, v("again"), None)
        .await
        .expect("re-create");
    let kv = must_get(store, &key).await;
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r5, r5, 1),
        "a re-created key starts a new life"
    );
}

/// `create` of an existing key fails with `AlreadyExists` and changes nothing.
pub async fn create_existing_fails(store: &dyn Datastore) {
    let key = format!("{}k", unique_prefix("create-existing"));
    let r1 = store.create(&key, v("first"), None).await.expect("create");
    match store.create(&key, v("second"), None).await {
        Err(DatastoreError::AlreadyExists { key: k }) => assert_eq!(k, key),
        other => panic!("second create: expected AlreadyExists, got {other:?}"),
    }
    let kv = must_get(store, &key).await;
    assert_eq!((kv.value, kv.mod_revision), (v("first"), r1));
    assert_eq!(store.current_revision().await.expect("rev"), r1);
}

/// `update` with a stale revision fails with `Conflict` carrying the key's actual revision
/// (Calico turns it into a resource-version conflict and the caller re-reads).
pub async fn update_conflict(store: &dyn Datastore) {
    let key = format!("{}k", unique_prefix("update-conflict"));
    let r1 = store.create(&key, v("0"), None).await.expect("create");
    let r2 = store.update(&key, v("1"), r1, None).await.expect("update");
    match store.update(&key, v("stale"), r1, None).await {
        Err(DatastoreError::Conflict {
            key: k,
            expected,
            actual,
        }) => assert_eq!((k, expected, actual), (key.clone(), r1, r2)),
        other => panic!("stale update: expected Conflict, got {other:?}"),
    }
    assert_eq!(must_get(store, &key).await.value, v("1"));
    assert_eq!(store.current_revision().await.expect("rev"), r2);
}

/// `delete` with an expected revision: stale -> `Conflict`, current -> deleted, absent ->
/// `NotFound`.
pub async fn delete_with_revision(store: &dyn Datastore) {
    let key = format!("{}k", unique_prefix("delete-rev"));
    let r1 = store.create(&key, v("a"), None).await.expect("create");
    let r2 = store.put(&key, v("b"), None).await.expect("put");
    match store.delete(&key, Some(r1)).await {
        Err(DatastoreError::Conflict {
            expected, actual, ..
        }) => assert_eq!((expected, actual), (r1, r2)),
        other => panic!("stale delete: expected Conflict, got {other:?}"),
    }
    assert_eq!(must_get(store, &key).await.value, v("b"));
    let gone = store.delete(&key, Some(r2)).await.expect("delete");
    assert_eq!((gone.value, gone.mod_revision), (v("b"), r2));
    assert!(matches!(
        store.delete(&key, Some(r2)).await,
        Err(DatastoreError::NotFound { .. })
    ));
}

/// A transaction over several keys is atomic: all of its writes share one revision, and a
/// failed compare writes nothing and runs the failure branch.
pub async fn txn_atomic_multi_key(store: &dyn Datastore) {
    let p = unique_prefix("txn-atomic");
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    let before = store.current_revision().await.expect("rev");
    let resp = store
        .txn(Txn {
            compare: vec![
                Compare::version(&a, CompareOp::Equal, 0),
                Compare::version(&b, CompareOp::Equal, 0),
            ],
            success: vec![
                TxnOp::put(&a, v("a1"), None),
                TxnOp::put(&b, v("b1"), None),
                TxnOp::put(&c, v("c1"), None),
            ],
            failure: vec![],
        })
        .await
        .expect("txn");
    assert!(resp.succeeded);
    assert_eq!(resp.revision, before + 1, "one transaction, one revision");
    assert_eq!(resp.results.len(), 3);
    for key in [&a, &b, &c] {
        let kv = must_get(store, key).await;
        assert_eq!((kv.mod_revision, kv.version), (resp.revision, 1), "{key}");
    }
    let r1 = resp.revision;

    // One stale compare: nothing is written, the failure branch reads.
    let resp = store
        .txn(Txn {
            compare: vec![
                Compare::mod_revision(&a, CompareOp::Equal, r1),
                Compare::mod_revision(&b, CompareOp::Equal, r1 - 1),
            ],
            success: vec![
                TxnOp::put(&a, v("a2"), None),
                TxnOp::put(&b, v("b2"), None),
                TxnOp::delete(&c),
            ],
            failure: vec![TxnOp::get(&b)],
        })
        .await
        .expect("txn");
    assert!(!resp.succeeded);
    assert_eq!(resp.revision, r1, "a failed txn writes nothing");
    match resp.results.as_slice() {
        [TxnOpResult::Range(r)] => {
            assert_eq!(r.kvs.len(), 1);
            assert_eq!(r.kvs[0].value, v("b1"));
        }
        other => panic!("failure branch results: {other:?}"),
    }
    assert_eq!(must_get(store, &a).await.value, v("a1"));
    assert_eq!(must_get(store, &c).await.value, v("c1"));

    // Put and delete in one transaction: one revision, with prev values reported.
    let resp = store
        .txn(Txn {
            compare: vec![Compare::value(&a, CompareOp::Equal, v("a1"))],
            success: vec![
                TxnOp::Put {
                    key: a.clone(),
                    value: v("a2"),
                    lease: None,
                    prev_kv: true,
                },
                TxnOp::Delete {
                    key: c.clone(),
                    prefix: false,
                    prev_kv: true,
                },
            ],
            failure: vec![],
        })
        .await
        .expect("txn");
    assert!(resp.succeeded);
    assert_eq!(resp.revision, r1 + 1);
    match resp.results.as_slice() {
        [
            TxnOpResult::Put { prev_kv: Some(pa) },
            TxnOpResult::Delete { deleted, prev_kvs },
        ] => {
            assert_eq!(pa.value, v("a1"));
            assert_eq!(*deleted, 1);
            assert_eq!(prev_kvs.len(), 1);
            assert_eq!(prev_kvs[0].value, v("c1"));
        }
        other => panic!("put+delete results: {other:?}"),
    }
    assert_eq!(must_get(store, &a).await.mod_revision, r1 + 1);
    assert_eq!(store.get(&c).await.expect("get"), None);
}

/// Every compare target and operator, including etcd's view of an absent key (version, create
/// and mod revision 0, empty value).
pub async fn txn_compare_targets(store: &dyn Datastore) {
    let p = unique_prefix("txn-compare");
    let key = format!("{p}k");
    let absent = format!("{p}absent");
    let r1 = store.put(&key, v("m"), None).await.expect("put");
    let r2 = store.put(&key, v("m"), None).await.expect("put");
    let cases: Vec<(Compare, bool)> = vec![
        (Compare::version(&key, CompareOp::Equal, 2), true),
        (Compare::version(&key, CompareOp::Greater, 1), true),
        (Compare::version(&key, CompareOp::Less, 2), false),
        (Compare::version(&key, CompareOp::NotEqual, 2), false),
        (Compare::create_revision(&key, CompareOp::Equal, r1), true),
        (Compare::create_revision(&key, CompareOp::Less, r1), false),
        (Compare::mod_revision(&key, CompareOp::Equal, r2), true),
        (Compare::mod_revision(&key, CompareOp::Greater, r1), true),
        (Compare::value(&key, CompareOp::Equal, v("m")), true),
        (Compare::value(&key, CompareOp::Greater, v("a")), true),
        (Compare::value(&key, CompareOp::Less, v("a")), false),
        (Compare::value(&key, CompareOp::NotEqual, v("z")), true),
        (
            Compare {
                key: key.clone(),
                op: CompareOp::Equal,
                target: crate::CompareTarget::Lease(0),
            },
            true,
        ),
        (Compare::version(&absent, CompareOp::Equal, 0), true),
        (Compare::mod_revision(&absent, CompareOp::Equal, 0), true),
        (
            Compare::create_revision(&absent, CompareOp::Greater, 0),
            false,
        ),
    ];
    for (cmp, want) in cases {
        let resp = store
            .txn(Txn {
                compare: vec![cmp.clone()],
                success: vec![],
                failure: vec![],
            })
            .await
            .expect("txn");
        assert_eq!(resp.succeeded, want, "compare {cmp:?}");
        assert_eq!(
            resp.revision, r2,
            "a read-only txn does not advance the revision"
        );
    }
    // Deleting nothing is not a write either (etcd only bumps the revision on changes).
    let resp = store
        .txn(Txn {
            compare: vec![],
            success: vec![
                TxnOp::delete(&absent),
                TxnOp::Delete {
                    key: format!("{p}nothing/"),
                    prefix: true,
                    prev_kv: false,
                },
            ],
            failure: vec![],
        })
        .await
        .expect("txn");
    assert_eq!(resp.revision, r2);
    assert_eq!(store.current_revision().await.expect("rev"), r2);
}

/// What etcd refuses before running anything: empty keys, a key put twice in one branch, a key
/// both put and deleted in one branch.
pub async fn txn_rejects_bad_input(store: &dyn Datastore) {
    let p = unique_prefix("txn-bad");
    let before = store.current_revision().await.expect("rev");
    let bad = |r: Result<_, DatastoreError>, what: &str| match r {
        Err(DatastoreError::InvalidRequest(_)) => {}
        other => panic!("{what}: expected InvalidRequest, got {other:?}"),
    };
    bad(
        store.put("", v("x"), None).await.map(|_| ()),
        "put of empty key",
    );
    bad(store.get("").await.map(|_| ()), "get of empty key");
    let twice = Txn {
        compare: vec![],
        success: vec![
            TxnOp::put(&format!("{p}k"), v("1"), None),
            TxnOp::put(&format!("{p}k"), v("2"), None),
        ],
        failure: vec![],
    };
    bad(store.txn(twice).await.map(|_| ()), "same key put twice");
    let put_and_delete = Txn {
        compare: vec![],
        success: vec![
            TxnOp::put(&format!("{p}dir/k"), v("1"), None),
            TxnOp::Delete {
                key: format!("{p}dir/"),
                prefix: true,
                prev_kv: false,
            },
        ],
        failure: vec![],
    };
    bad(
        store.txn(put_and_delete).await.map(|_| ()),
        "key put and deleted in one branch",
    );
    assert_eq!(store.current_revision().await.expect("rev"), before);
    assert_eq!(store.list(&p).await.expect("list").count, 0);
}

/// Prefix listings: sorted by key bytes, only keys under the prefix, the revision they were
/// taken at, `limit`/`more`/`count` and `count_only`.
pub async fn list_prefix(store: &dyn Datastore) {
    let p = unique_prefix("list");
    let outside = format!("{}x", p.trim_end_matches('/'));
    for k in ["b", "é", "a", "c/d", "ab"] {
        store
            .put(&format!("{p}{k}"), v(k), None)
            .await
            .expect("put");
    }
    let last = store.put(&outside, v("out"), None).await.expect("put");
    let resp = store.list(&p).await.expect("list");
    let keys: Vec<&str> = resp.kvs.iter().map(|kv| &kv.key[p.len()..]).collect();
    assert_eq!(keys, ["a", "ab", "b", "c/d", "é"], "sorted by key bytes");
    assert_eq!(resp.count, 5);
    assert!(!resp.more);
    assert_eq!(
        resp.revision, last,
        "the listing carries the store revision"
    );
    for kv in &resp.kvs {
        assert_eq!(kv.value, &kv.key.as_bytes()[p.len()..]);
    }

    let resp = store
        .range(RangeRequest {
            key: p.clone(),
            prefix: true,
            limit: 2,
            count_only: false,
        })
        .await
        .expect("range with limit");
    assert_eq!(resp.kvs.len(), 2);
    assert_eq!(resp.kvs[1].key, format!("{p}ab"));
    assert!(resp.more);
    assert_eq!(resp.count, 5);

    let resp = store
        .range(RangeRequest {
            key: p.clone(),
            prefix: true,
            limit: 0,
            count_only: true,
        })
        .await
        .expect("count only");
    assert!(resp.kvs.is_empty());
    assert_eq!(resp.count, 5);

    let resp = store
        .range(RangeRequest::key(&format!("{p}c")))
        .await
        .expect("exact key");
    assert!(
        resp.kvs.is_empty(),
        "a single-key read is not a prefix read"
    );
}

// ------------------------------------------------------------------------------------------
// Watches
// ------------------------------------------------------------------------------------------

/// A prefix watch with prev_kv sees every change under the prefix, in order, with the right
/// revisions and previous values; keys outside the prefix are filtered; all events of one
/// transaction arrive together.
pub async fn watch_prefix_prev_kv(store: &dyn Datastore) {
    let p = unique_prefix("watch-prefix");
    let mut w = store
        .watch(WatchRequest {
            key: p.clone(),
            prefix: true,
            start_revision: 0,
            prev_kv: true,
        })
        .await
        .expect("watch");
    let (a, b, c, d) = (
        format!("{p}a"),
        format!("{p}b"),
        format!("{p}c"),
        format!("{p}d"),
    );
    let r1 = store.put(&a, v("a1"), None).await.expect("put");
    let r2 = store.put(&b, v("b1"), None).await.expect("put");
    store
        .put(&format!("{}other", p.trim_end_matches('/')), v("no"), None)
        .await
        .expect("put outside");
    let r3 = store.put(&a, v("a2"), None).await.expect("put");
    store.delete(&b, None).await.expect("delete");
    let r4 = r3 + 1;
    let resp = store
        .txn(Txn {
            compare: vec![],
            success: vec![TxnOp::put(&c, v("c1"), None), TxnOp::put(&d, v("d1"), None)],
            failure: vec![],
        })
        .await
        .expect("txn");
    let r5 = resp.revision;

    let evs = collect_events(&mut w, 6).await;
    let summary: Vec<(EventKind, &str, Revision)> = evs
        .iter()
        .map(|e| (e.kind, e.kv.key.as_str(), e.kv.mod_revision))
        .collect();
    assert_eq!(
        summary,
        vec![
            (EventKind::Put, a.as_str(), r1),
            (EventKind::Put, b.as_str(), r2),
            (EventKind::Put, a.as_str(), r3),
            (EventKind::Delete, b.as_str(), r4),
            (EventKind::Put, c.as_str(), r5),
            (EventKind::Put, d.as_str(), r5),
        ]
    );
    assert_eq!(evs[0].prev_kv, None, "a create has no previous value");
    assert_eq!(evs[0].kv.version, 1);
    let prev = evs[2].prev_kv.as_ref().expect("update carries prev_kv");
    assert_eq!((prev.value.as_slice(), prev.mod_revision), (&b"a1"[..], r1));
    assert_eq!(
        (evs[2].kv.version, evs[2].kv.create_revision),
        (2, r1),
        "put event carries the new key state"
    );
    let del = &evs[3];
    assert!(
        del.kv.value.is_empty() && del.kv.version == 0,
        "delete event: {del:?}"
    );
    let prev = del.prev_kv.as_ref().expect("delete carries prev_kv");
    assert_eq!(prev.value, v("b1"));
    expect_no_events(&mut w, Duration::from_millis(200)).await;

    // A single-key watch without prev_kv.
    let mut one = store
        .watch(WatchRequest {
            key: a.clone(),
            prefix: false,
            start_revision: 0,
            prev_kv: false,
        })
        .await
        .expect("watch key");
    store
        .put(&format!("{a}a"), v("longer key"), None)
        .await
        .expect("put");
    let r = store.put(&a, v("a3"), None).await.expect("put");
    let evs = collect_events(&mut one, 1).await;
    assert_eq!(
        (evs[0].kv.key.as_str(), evs[0].kv.mod_revision),
        (a.as_str(), r)
    );
    assert_eq!(evs[0].prev_kv, None, "prev_kv only when asked for");
}

/// Start revisions are inclusive; a watcher that drops its stream and resumes from the last
/// revision it saw + 1 gets every change exactly once.
pub async fn watch_resume(store: &dyn Datastore) {
    let p = unique_prefix("watch-resume");
    let key = format!("{p}k");
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(store.put(&key, v(&i.to_string()), None).await.expect("put"));
    }
    let mut w = store
        .watch(WatchRequest::prefix(&p, revs[2]))
        .await
        .expect("watch");
    let evs = collect_events(&mut w, 3).await;
    let got: Vec<Revision> = evs.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(got, revs[2..].to_vec(), "start revision is inclusive");
    drop(w);

    for i in 5..8 {
        revs.push(store.put(&key, v(&i.to_string()), None).await.expect("put"));
    }
    // A consumer that handles one event, "crashes" (drops the stream) and resumes from the
    // revision after the last one it handled, with more writes while nobody watches.
    let mut seen: Vec<Revision> = Vec::new();
    let mut next = revs[0];
    while seen.len() < revs.len() {
        assert!(seen.len() <= revs.len(), "duplicates: {seen:?}");
        let mut w = store
            .watch(WatchRequest::prefix(&p, next))
            .await
            .expect("watch");
        let batch = next_batch(&mut w).await;
        drop(w);
        let first = batch[0].kv.mod_revision;
        assert!(
            first >= next,
            "event {first} before the start revision {next}"
        );
        seen.push(first);
        next = first + 1;
        if seen.len() == 3 {
            for _ in 0..3 {
                revs.push(store.put(&key, v("more"), None).await.expect("put"));
            }
        }
    }
    assert_eq!(seen, revs, "no gaps, no duplicates across resumptions");
    let values: Vec<Vec<u8>> = {
        let mut w = store
            .watch(WatchRequest::prefix(&p, revs[0]))
            .await
            .expect("watch");
        collect_events(&mut w, revs.len())
            .await
            .into_iter()
            .map(|e| e.kv.value)
            .collect()
    };
    assert_eq!(values[0], v("0"));
    assert_eq!(values[7], v("7"));
}

/// A start revision in the future waits for it (etcd accepts it).
pub async fn watch_future_start(store: &dyn Datastore) {
    let p = unique_prefix("watch-future");
    let key = format!("{p}k");
    let now = store.current_revision().await.expect("rev");
    let mut w = store
        .watch(WatchRequest::prefix(&p, now + 2))
        .await
        .expect("watch");
    let r1 = store.put(&key, v("1"), None).await.expect("put");
    let r2 = store.put(&key, v("2"), None).await.expect("put");
    assert_eq!((r1, r2), (now + 1, now + 2));
    let evs = collect_events(&mut w, 1).await;
    assert_eq!(evs[0].kv.mod_revision, r2);
    assert_eq!(evs[0].kv.value, v("2"));
}

/// A prefix delete removes every key in one revision, reported as one batch of delete events.
pub async fn watch_delete_prefix(store: &dyn Datastore) {
    let p = unique_prefix("watch-delprefix");
    for k in ["x/1", "x/2", "y"] {
        store
            .put(&format!("{p}{k}"), v(k), None)
            .await
            .expect("put");
    }
    let mut w = store
        .watch(WatchRequest {
            key: p.clone(),
            prefix: true,
            start_revision: 0,
            prev_kv: true,
        })
        .await
        .expect("watch");
    let resp = store
        .txn(Txn {
            compare: vec![],
            success: vec![TxnOp::Delete {
                key: format!("{p}x/"),
                prefix: true,
                prev_kv: true,
            }],
            failure: vec![],
        })
        .await
        .expect("delete prefix");
    match resp.results.as_slice() {
        [TxnOpResult::Delete { deleted, prev_kvs }] => {
            assert_eq!(*deleted, 2);
            assert_eq!(prev_kvs.len(), 2);
        }
        other => panic!("delete prefix results: {other:?}"),
    }
    let evs = collect_events(&mut w, 2).await;
    for (e, k) in evs.iter().zip(["x/1", "x/2"]) {
        assert_eq!(e.kind, EventKind::Delete);
        assert_eq!(e.kv.key, format!("{p}{k}"));
        assert_eq!(e.kv.mod_revision, resp.revision);
        assert_eq!(e.prev_kv.as_ref().map(|kv| kv.value.clone()), Some(v(k)));
    }
    assert_eq!(store.list(&p).await.expect("list").count, 1);
}

/// After `compact(r)`: watching from below `r` yields `Compacted` and ends, from `r` works,
/// current values are intact; compacting again at or below `r`, or in the future, fails.
pub async fn compaction(store: &dyn Datastore) {
    let p = unique_prefix("compaction");
    let key = format!("{p}k");
    let r1 = store.put(&key, v("1"), None).await.expect("put");
    let r2 = store.put(&key, v("2"), None).await.expect("put");
    let r3 = store.put(&key, v("3"), None).await.expect("put");
    store.compact(r2).await.expect("compact");

    let mut w = store
        .watch(WatchRequest::prefix(&p, r1))
        .await
        .expect("watch call itself succeeds; the stream reports compaction");
    match tokio::time::timeout(EVENT_TIMEOUT, w.next()).await {
        Ok(Some(Err(DatastoreError::Compacted {
            compact_revision, ..
        }))) => assert_eq!(compact_revision, r2),
        other => panic!("watch from a compacted revision: expected Compacted, got {other:?}"),
    }
    match tokio::time::timeout(EVENT_TIMEOUT, w.next()).await {
        Ok(None) => {}
        other => panic!("the stream must end after Compacted, got {other:?}"),
    }

    let mut w = store
        .watch(WatchRequest::prefix(&p, r2))
        .await
        .expect("watch");
    let evs = collect_events(&mut w, 2).await;
    let got: Vec<Revision> = evs.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(got, vec![r2, r3], "the compaction revision itself is kept");

    let kv = must_get(store, &key).await;
    assert_eq!((kv.value, kv.create_revision, kv.version), (v("3"), r1, 3));

    assert!(
        matches!(
            store.compact(r2).await,
            Err(DatastoreError::Compacted { .. })
        ),
        "compacting at the compaction point again"
    );
    assert!(
        matches!(
            store.compact(r1).await,
            Err(DatastoreError::Compacted { .. })
        ),
        "compacting below the compaction point"
    );
    match store.compact(r3 + 100).await {
        Err(DatastoreError::FutureRevision { requested, .. }) => assert_eq!(requested, r3 + 100),
        other => panic!("compacting a future revision: expected FutureRevision, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Leases
// ------------------------------------------------------------------------------------------

/// Waits until `key` is gone (a lease expired), failing after [`EVENT_TIMEOUT`].
async fn wait_deleted(store: &dyn Datastore, key: &str) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while store.get(key).await.expect("get").is_some() {
        assert!(
            Instant::now() < deadline,
            "{key} still exists after its lease expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An expiring lease deletes its keys with delete events (one revision), and is gone after.
pub async fn lease_expiry(store: &dyn Datastore) {
    let p = unique_prefix("lease-expiry");
    let lease = store.lease_grant(2).await.expect("grant");
    let (a, b, keep) = (format!("{p}a"), format!("{p}b"), format!("{p}keep"));
    store.put(&a, v("a"), Some(lease)).await.expect("put a");
    store.put(&b, v("b"), Some(lease)).await.expect("put b");
    store.put(&keep, v("k"), None).await.expect("put keep");
    assert_eq!(must_get(store, &a).await.lease, lease);
    let mut w = store
        .watch(WatchRequest {
            key: p.clone(),
            prefix: true,
            start_revision: 0,
            prev_kv: true,
        })
        .await
        .expect("watch");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        store.get(&a).await.expect("get").is_some(),
        "key gone long before its TTL"
    );
    let started = Instant::now();
    let evs = collect_events(&mut w, 2).await;
    assert!(started.elapsed() < EVENT_TIMEOUT);
    assert!(evs.iter().all(|e| e.kind == EventKind::Delete));
    assert_eq!(
        evs[0].kv.mod_revision, evs[1].kv.mod_revision,
        "a lease's keys go in one revision"
    );
    let keys: Vec<&str> = evs.iter().map(|e| e.kv.key.as_str()).collect();
    assert_eq!(keys, [a.as_str(), b.as_str()]);
    assert_eq!(evs[0].prev_kv.as_ref().map(|kv| kv.lease), Some(lease));
    assert_eq!(store.get(&a).await.expect("get"), None);
    assert!(store.get(&keep).await.expect("get").is_some());
    assert!(matches!(
        store.lease_keep_alive(lease).await,
        Err(DatastoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        store.put(&a, v("late"), Some(lease)).await,
        Err(DatastoreError::LeaseNotFound(_))
    ));
}

/// Revoking a lease deletes its keys at once (with events); a revoked or unknown lease can't be
/// used, refreshed or revoked again.
pub async fn lease_revoke(store: &dyn Datastore) {
    let p = unique_prefix("lease-revoke");
    let lease = store.lease_grant(60).await.expect("grant");
    let (a, b, keep) = (format!("{p}a"), format!("{p}b"), format!("{p}keep"));
    store.put(&a, v("a"), Some(lease)).await.expect("put");
    store.put(&b, v("b"), Some(lease)).await.expect("put");
    store.put(&keep, v("k"), None).await.expect("put");
    let mut w = store
        .watch(WatchRequest::prefix(&p, 0))
        .await
        .expect("watch");
    let before = store.current_revision().await.expect("rev");
    store.lease_revoke(lease).await.expect("revoke");
    let evs = collect_events(&mut w, 2).await;
    for e in &evs {
        assert_eq!(e.kind, EventKind::Delete);
        assert_eq!(e.kv.mod_revision, before + 1);
    }
    assert_eq!(store.get(&a).await.expect("get"), None);
    assert_eq!(store.get(&b).await.expect("get"), None);
    assert!(store.get(&keep).await.expect("get").is_some());
    assert!(matches!(
        store.lease_revoke(lease).await,
        Err(DatastoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        store.lease_keep_alive(lease).await,
        Err(DatastoreError::LeaseNotFound(_))
    ));
    assert!(matches!(
        store.put(&a, v("x"), Some(lease)).await,
        Err(DatastoreError::LeaseNotFound(_))
    ));
    let unknown = lease.wrapping_add(1_000_003);
    assert!(matches!(
        store.put(&a, v("x"), Some(unknown)).await,
        Err(DatastoreError::LeaseNotFound(_))
    ));
    assert_eq!(store.get(&a).await.expect("get"), None);
}

/// Keep-alives hold a lease's keys past its TTL; once they stop, the keys go.
pub async fn lease_keep_alive(store: &dyn Datastore) {
    let p = unique_prefix("lease-keepalive");
    let key = format!("{p}k");
    let lease = store.lease_grant(2).await.expect("grant");
    store.put(&key, v("alive"), Some(lease)).await.expect("put");
    let held_until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < held_until {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let ttl = store.lease_keep_alive(lease).await.expect("keep alive");
        assert!(ttl >= 1, "keep-alive returns the TTL, got {ttl}");
        assert!(
            store.get(&key).await.expect("get").is_some(),
            "key expired despite keep-alives"
        );
    }
    wait_deleted(store, &key).await;
}

// ------------------------------------------------------------------------------------------
// Several processes
// ------------------------------------------------------------------------------------------

/// What [`multi_process_cas`] measured.
#[derive(Debug, Clone)]
pub struct CasReport {
    pub processes: usize,
    pub increments: usize,
    /// `Conflict`s the writers got (and retried).
    pub conflicts: u64,
    pub elapsed: Duration,
}

/// `processes` writer processes each do `increments` read-modify-write increments of one
/// counter with `update` (retrying on `Conflict`). The counter must end at
/// `processes * increments` and its history must be every value from 0 up, each once: no update
/// was lost or applied twice.
pub async fn multi_process_cas(
    store: &dyn Datastore,
    writer: &WriterProcess,
    processes: usize,
    increments: usize,
) -> CasReport {
    let key = format!("{}counter", unique_prefix("cas"));
    let start = store
        .create(&key, v("0"), None)
        .await
        .expect("create counter");
    let count = increments.to_string();
    let began = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|_| {
            writer
                .command(&["cas", "--key", &key, "--count", &count])
                .spawn()
                .expect("spawn cas writer")
        })
        .collect();
    let mut conflicts = 0;
    for child in children {
        let out = child.wait_with_output().await.expect("wait for cas writer");
        assert!(out.status.success(), "cas writer failed: {}", out.status);
        let stdout = String::from_utf8_lossy(&out.stdout);
        conflicts += stdout
            .lines()
            .find_map(|l| l.strip_prefix("conflicts "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("cas writer printed no conflict count: {stdout}"));
    }
    let elapsed = began.elapsed();
    let total = processes * increments;
    let kv = must_get(store, &key).await;
    assert_eq!(kv.value, v(&total.to_string()), "lost updates");
    assert_eq!(kv.version as usize, total + 1);

    let mut w = store
        .watch(WatchRequest::prefix(&key, start))
        .await
        .expect("watch history");
    let evs = collect_events(&mut w, total + 1).await;
    for (i, e) in evs.iter().enumerate() {
        assert_eq!(
            e.kv.value,
            v(&i.to_string()),
            "history of the counter: revision {} holds the wrong value",
            e.kv.mod_revision
        );
    }
    CasReport {
        processes,
        increments,
        conflicts,
        elapsed,
    }
}

/// Writes by another process reach a watcher here: puts and deletes, in order.
pub async fn cross_process_watch(store: &dyn Datastore, writer: &WriterProcess) {
    let p = unique_prefix("xproc-watch");
    let key = format!("{p}k");
    let mut w = store
        .watch(WatchRequest {
            key: p.clone(),
            prefix: true,
            start_revision: 0,
            prev_kv: true,
        })
        .await
        .expect("watch");
    let out = writer
        .run(&["put", "--key", &key, "--value", "from-child"])
        .await;
    let rev: Revision = out
        .trim()
        .strip_prefix("revision ")
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("writer output: {out}"));
    writer.run(&["delete", "--key", &key]).await;
    let evs = collect_events(&mut w, 2).await;
    assert_eq!(
        (
            evs[0].kind,
            evs[0].kv.value.as_slice(),
            evs[0].kv.mod_revision
        ),
        (EventKind::Put, &b"from-child"[..], rev)
    );
    assert_eq!(evs[1].kind, EventKind::Delete);
    assert_eq!(evs[1].kv.mod_revision, rev + 1);
    assert_eq!(
        evs[1].prev_kv.as_ref().map(|kv| kv.value.as_slice()),
        Some(&b"from-child"[..])
    );
}

/// A lease granted by a process that then exits still expires, deleting its key.
pub async fn lease_outlives_its_process(store: &dyn Datastore, writer: &WriterProcess) {
    let p = unique_prefix("xproc-lease");
    let key = format!("{p}k");
    let mut w = store
        .watch(WatchRequest::prefix(&p, 0))
        .await
        .expect("watch");
    writer
        .run(&[
            "put",
            "--key",
            &key,
            "--value",
            "leased",
            "--lease-ttl",
            "2",
        ])
        .await;
    let evs = collect_events(&mut w, 1).await;
    assert_eq!(evs[0].kind, EventKind::Put);
    assert!(evs[0].kv.lease != 0, "child attached a lease");
    let evs = collect_events(&mut w, 1).await;
    assert_eq!(
        evs[0].kind,
        EventKind::Delete,
        "lease of an exited process expired"
    );
    assert_eq!(store.get(&key).await.expect("get"), None);
}

/// Expands to one `#[tokio::test]` per single-store conformance function, each on a fresh
/// [`Fixture`] from `$fresh` (an `async fn() -> Fixture`).
#[macro_export]
macro_rules! datastore_conformance_tests {
    ($fresh:path) => {
        $crate::datastore_conformance_tests!(@each $fresh;
            crud, create_existing_fails, update_conflict, delete_with_revision,
            txn_atomic_multi_key, txn_compare_targets, txn_rejects_bad_input, list_prefix,
            watch_prefix_prev_kv, watch_resume, watch_future_start, watch_delete_prefix,
            compaction, lease_expiry, lease_revoke, lease_keep_alive);
    };
    (@each $fresh:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let fixture = $fresh().await;
                $crate::conformance::$name(&*fixture.store).await;
                drop(fixture);
            }
        )*
    };
}
