//! etcd-specific behaviour of the etcd backend, against a real etcd started per test:
//! connection handling (TLS client certificates, several endpoints, dead endpoints), watch
//! resumption across an etcd restart, compaction, leases. The backend-agnostic semantics are in
//! `etcd_conformance.rs`.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::time::Duration;

use calico_datastore::etcd::{EtcdConfig, EtcdDatastore};
use calico_datastore::testing::{EtcdServer, free_port};
use calico_datastore::{
    Compare, CompareOp, Datastore, DatastoreError, EventKind, RangeRequest, Txn, TxnOp,
    TxnOpResult, WatchEvent, WatchRequest, WatchStream,
};

const WAIT: Duration = Duration::from_secs(15);

async fn connect(etcd: &EtcdServer) -> EtcdDatastore {
    EtcdDatastore::connect(etcd.config()).await.unwrap()
}

async fn next_batch(w: &mut WatchStream) -> Vec<WatchEvent> {
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(Some(Ok(batch))) => batch,
        other => panic!("expected a batch of events, got {other:?}"),
    }
}

async fn assert_quiet(w: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(300), w.next()).await {
        panic!("expected no more events, got {item:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_and_compare_and_swap() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let r0 = ds.current_revision().await.unwrap();

    let r1 = ds.create("/calico/a", b"1".to_vec(), None).await.unwrap();
    assert_eq!(r1, r0 + 1);
    assert_eq!(
        ds.create("/calico/a", b"x".to_vec(), None).await,
        Err(DatastoreError::AlreadyExists {
            key: "/calico/a".into()
        })
    );
    let kv = ds.get("/calico/a").await.unwrap().unwrap();
    assert_eq!(
        (
            kv.value.as_slice(),
            kv.create_revision,
            kv.mod_revision,
            kv.version
        ),
        (&b"1"[..], r1, r1, 1)
    );

    let r2 = ds
        .update("/calico/a", b"2".to_vec(), r1, None)
        .await
        .unwrap();
    assert_eq!(r2, r1 + 1);
    assert_eq!(
        ds.update("/calico/a", b"3".to_vec(), r1, None).await,
        Err(DatastoreError::Conflict {
            key: "/calico/a".into(),
            expected: r1,
            actual: r2
        })
    );
    assert!(matches!(
        ds.update("/calico/missing", b"3".to_vec(), r1, None).await,
        Err(DatastoreError::NotFound { .. })
    ));
    assert!(matches!(
        ds.delete("/calico/a", Some(r1)).await,
        Err(DatastoreError::Conflict { actual, .. }) if actual == r2
    ));
    let deleted = ds.delete("/calico/a", Some(r2)).await.unwrap();
    assert_eq!(deleted.value, b"2");
    assert_eq!(ds.get("/calico/a").await.unwrap(), None);
    assert!(matches!(
        ds.delete("/calico/a", None).await,
        Err(DatastoreError::NotFound { .. })
    ));

    for k in ["/p/b", "/p/a", "/p/c", "/q/a"] {
        ds.put(k, k.as_bytes().to_vec(), None).await.unwrap();
    }
    let list = ds.list("/p/").await.unwrap();
    let keys: Vec<_> = list.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/a", "/p/b", "/p/c"]);
    assert_eq!(list.count, 3);
    assert_eq!(list.revision, ds.current_revision().await.unwrap());
    let limited = ds
        .range(RangeRequest {
            key: "/p/".into(),
            prefix: true,
            limit: 2,
            count_only: false,
        })
        .await
        .unwrap();
    assert_eq!(
        (limited.kvs.len(), limited.count, limited.more),
        (2, 3, true)
    );
    let counted = ds
        .range(RangeRequest {
            key: "/p/".into(),
            prefix: true,
            limit: 0,
            count_only: true,
        })
        .await
        .unwrap();
    assert_eq!((counted.kvs.len(), counted.count), (0, 3));
    assert_eq!(
        ds.list("").await.unwrap().count,
        4,
        "empty prefix = every key"
    );
    assert!(matches!(
        ds.range(RangeRequest::key("")).await,
        Err(DatastoreError::InvalidRequest(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_run_one_branch_at_one_revision() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    ds.put("/t/x", b"old".to_vec(), None).await.unwrap();
    ds.put("/t/d/1", b"1".to_vec(), None).await.unwrap();
    let rd2 = ds.put("/t/d/2", b"2".to_vec(), None).await.unwrap();

    // Success branch: several writes share one new revision.
    let resp = ds
        .txn(Txn {
            compare: vec![
                Compare::value("/t/x", CompareOp::Equal, b"old".to_vec()),
                Compare::version("/t/new", CompareOp::Equal, 0),
            ],
            success: vec![
                TxnOp::Put {
                    key: "/t/x".into(),
                    value: b"new".to_vec(),
                    lease: None,
                    prev_kv: true,
                },
                TxnOp::put("/t/new", b"n".to_vec(), None),
                TxnOp::Delete {
                    key: "/t/d/".into(),
                    prefix: true,
                    prev_kv: true,
                },
                TxnOp::Range(RangeRequest::prefix("/t/")),
            ],
            failure: vec![],
        })
        .await
        .unwrap();
    assert!(resp.succeeded);
    assert_eq!(resp.revision, rd2 + 1);
    assert_eq!(resp.results.len(), 4);
    match &resp.results[0] {
        TxnOpResult::Put { prev_kv: Some(p) } => assert_eq!(p.value, b"old"),
        other => panic!("{other:?}"),
    }
    match &resp.results[2] {
        TxnOpResult::Delete { deleted, prev_kvs } => {
            assert_eq!(*deleted, 2);
            assert_eq!(prev_kvs.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    match &resp.results[3] {
        TxnOpResult::Range(r) => {
            // The read inside the transaction sees the transaction's own writes.
            let keys: Vec<_> = r.kvs.iter().map(|kv| kv.key.as_str()).collect();
            assert_eq!(keys, ["/t/new", "/t/x"]);
        }
        other => panic!("{other:?}"),
    }
    let x = ds.get("/t/x").await.unwrap().unwrap();
    assert_eq!((x.mod_revision, x.version), (resp.revision, 2));

    // Failure branch: only reads, so the revision does not move.
    let resp2 = ds
        .txn(Txn {
            compare: vec![Compare::mod_revision("/t/x", CompareOp::Less, 1)],
            success: vec![TxnOp::delete("/t/x")],
            failure: vec![TxnOp::get("/t/x"), TxnOp::get("/t/absent")],
        })
        .await
        .unwrap();
    assert!(!resp2.succeeded);
    assert_eq!(resp2.revision, resp.revision);
    match (&resp2.results[0], &resp2.results[1]) {
        (TxnOpResult::Range(a), TxnOpResult::Range(b)) => {
            assert_eq!(a.kvs[0].value, b"new");
            assert!(b.kvs.is_empty());
        }
        other => panic!("{other:?}"),
    }

    // etcd: a value compare on an absent key is always false, whatever the operator.
    let resp3 = ds
        .txn(Txn {
            compare: vec![Compare::value(
                "/t/absent",
                CompareOp::NotEqual,
                b"z".to_vec(),
            )],
            success: vec![],
            failure: vec![],
        })
        .await
        .unwrap();
    assert!(!resp3.succeeded);

    // etcd refuses to write one key twice in a transaction.
    let dup = ds
        .txn(Txn {
            compare: vec![],
            success: vec![
                TxnOp::put("/t/dup", b"1".to_vec(), None),
                TxnOp::put("/t/dup", b"2".to_vec(), None),
            ],
            failure: vec![],
        })
        .await;
    assert!(
        matches!(dup, Err(DatastoreError::InvalidRequest(_))),
        "{dup:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_revisions_in_order_with_prev_kv() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let start = ds.put("/w/a", b"1".to_vec(), None).await.unwrap();
    ds.put("/other", b"x".to_vec(), None).await.unwrap();
    let multi = ds
        .txn(Txn {
            compare: vec![],
            success: vec![
                TxnOp::put("/w/b", b"2".to_vec(), None),
                TxnOp::put("/w/a", b"3".to_vec(), None),
            ],
            failure: vec![],
        })
        .await
        .unwrap()
        .revision;
    let del = ds.delete("/w/b", None).await.unwrap();

    // Replay from history.
    let mut w = ds
        .watch(WatchRequest {
            key: "/w/".into(),
            prefix: true,
            start_revision: start,
            prev_kv: true,
        })
        .await
        .unwrap();
    let b1 = next_batch(&mut w).await;
    assert_eq!(b1.len(), 1);
    assert_eq!((b1[0].kind, b1[0].kv.mod_revision), (EventKind::Put, start));
    let b2 = next_batch(&mut w).await;
    assert_eq!(b2.len(), 2, "both writes of one transaction in one batch");
    assert!(b2.iter().all(|e| e.kv.mod_revision == multi));
    let a = b2.iter().find(|e| e.kv.key == "/w/a").unwrap();
    assert_eq!(a.prev_kv.as_ref().unwrap().value, b"1");
    let b3 = next_batch(&mut w).await;
    assert_eq!(b3[0].kind, EventKind::Delete);
    assert_eq!(b3[0].kv.key, "/w/b");
    assert_eq!(b3[0].kv.mod_revision, del.mod_revision + 1);
    assert_eq!(b3[0].kv.version, 0);
    assert_eq!(b3[0].prev_kv.as_ref().unwrap().value, b"2");

    // Live events after the replay, and a "from now" watch sees writes made after it returns.
    let mut now = ds.watch(WatchRequest::prefix("/w/", 0)).await.unwrap();
    let r = ds.put("/w/c", b"4".to_vec(), None).await.unwrap();
    for stream in [&mut w, &mut now] {
        let b = next_batch(stream).await;
        assert_eq!((b[0].kv.key.as_str(), b[0].kv.mod_revision), ("/w/c", r));
    }
    assert_quiet(&mut now).await;
    assert_quiet(&mut w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_resumes_after_etcd_restart() {
    let Some(mut etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let first = ds.put("/r/a", b"1".to_vec(), None).await.unwrap();
    let mut w = ds.watch(WatchRequest::prefix("/r/", first)).await.unwrap();
    assert_eq!(next_batch(&mut w).await[0].kv.mod_revision, first);

    // Restart with no writes in between; the stream must carry on afterwards.
    tokio::task::block_in_place(|| etcd.restart()).unwrap();
    let second = ds.put("/r/b", b"2".to_vec(), None).await.unwrap();
    let b = next_batch(&mut w).await;
    assert_eq!(
        (b[0].kv.key.as_str(), b[0].kv.mod_revision),
        ("/r/b", second)
    );

    // A longer outage: etcd down for a while, then several writes straight after it is back.
    // The watch reconnects at the next unseen revision: no gap, no duplicate.
    tokio::task::block_in_place(|| etcd.stop());
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| etcd.start_again()).unwrap();
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(ds.put(&format!("/r/k{i}"), vec![i], None).await.unwrap());
    }
    let mut seen = Vec::new();
    while seen.len() < revs.len() {
        for e in next_batch(&mut w).await {
            seen.push(e.kv.mod_revision);
        }
    }
    assert_eq!(seen, revs);
    assert_quiet(&mut w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_ends_old_watches() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let r1 = ds.put("/c/a", b"1".to_vec(), None).await.unwrap();
    ds.put("/c/a", b"2".to_vec(), None).await.unwrap();
    let r3 = ds.put("/c/a", b"3".to_vec(), None).await.unwrap();
    ds.compact(r3).await.unwrap();

    let mut w = ds.watch(WatchRequest::prefix("/c/", r1)).await.unwrap();
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(Some(Err(DatastoreError::Compacted {
            requested,
            compact_revision,
        }))) => {
            assert_eq!(requested, r1);
            assert_eq!(compact_revision, r3);
        }
        other => panic!("expected Compacted, got {other:?}"),
    }
    assert!(matches!(
        tokio::time::timeout(WAIT, w.next()).await,
        Ok(None)
    ));

    // From the compaction point on, history is still there; current values are kept.
    let mut ok = ds.watch(WatchRequest::prefix("/c/", r3)).await.unwrap();
    assert_eq!(next_batch(&mut ok).await[0].kv.value, b"3");
    assert_eq!(ds.get("/c/a").await.unwrap().unwrap().value, b"3");

    assert!(matches!(
        ds.compact(r1).await,
        Err(DatastoreError::Compacted { requested, compact_revision })
            if requested == r1 && compact_revision == r3
    ));
    let current = ds.current_revision().await.unwrap();
    assert_eq!(
        ds.compact(current + 10).await,
        Err(DatastoreError::FutureRevision {
            requested: current + 10,
            current
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_and_revoke() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let short = ds.lease_grant(1).await.unwrap();
    let r = ds
        .put("/l/short", b"s".to_vec(), Some(short))
        .await
        .unwrap();
    assert_eq!(ds.get("/l/short").await.unwrap().unwrap().lease, short);
    let mut w = ds.watch(WatchRequest::prefix("/l/", r + 1)).await.unwrap();
    // etcd raises TTLs below its minimum (1.5 x election timeout, 2 s here) and checks expiry
    // every 500 ms.
    let b = next_batch(&mut w).await;
    assert_eq!(
        (b[0].kind, b[0].kv.key.as_str()),
        (EventKind::Delete, "/l/short")
    );
    assert_eq!(ds.get("/l/short").await.unwrap(), None);
    assert_eq!(
        ds.lease_keep_alive(short).await,
        Err(DatastoreError::LeaseNotFound(short))
    );

    let long = ds.lease_grant(60).await.unwrap();
    let ttl = ds.lease_keep_alive(long).await.unwrap();
    assert!((1..=60).contains(&ttl), "{ttl}");
    ds.put("/l/long", b"l".to_vec(), Some(long)).await.unwrap();
    ds.lease_revoke(long).await.unwrap();
    assert_eq!(next_batch(&mut w).await[0].kv.key, "/l/long"); // its put
    let gone = next_batch(&mut w).await;
    assert_eq!(
        (gone[0].kind, gone[0].kv.key.as_str()),
        (EventKind::Delete, "/l/long")
    );
    assert_eq!(
        ds.lease_revoke(long).await,
        Err(DatastoreError::LeaseNotFound(long))
    );
    assert!(matches!(
        ds.lease_grant(0).await,
        Err(DatastoreError::InvalidRequest(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_certificates() {
    let Some(etcd) = EtcdServer::start_tls_or_skip() else {
        return;
    };
    assert!(etcd.endpoint().starts_with("https://"));
    let ds = connect(&etcd).await;
    let r = ds.create("/tls/a", b"1".to_vec(), None).await.unwrap();
    let mut w = ds.watch(WatchRequest::prefix("/tls/", r)).await.unwrap();
    assert_eq!(next_batch(&mut w).await[0].kv.mod_revision, r);

    // The same certificates given inline (Calico's etcdCACert/etcdCert/etcdKey).
    let files = etcd.tls_files().unwrap();
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap();
    let inline = EtcdConfig::new([etcd.endpoint()]).with_inline_tls(
        &read(&files.ca_cert),
        &read(&files.client_cert),
        &read(&files.client_key),
    );
    let ds2 = EtcdDatastore::connect(inline).await.unwrap();
    assert_eq!(ds2.get("/tls/a").await.unwrap().unwrap().value, b"1");

    // The same CA but no client certificate: etcd (--client-cert-auth) refuses the handshake.
    let mut no_cert = EtcdConfig::new([etcd.endpoint()]);
    no_cert.ca_cert_file = Some(files.ca_cert.clone());
    no_cert.dial_timeout = Duration::from_secs(3);
    let err = EtcdDatastore::connect(no_cert).await.unwrap_err();
    eprintln!("without client certificate: {err}");
    match &err {
        DatastoreError::Unavailable(m) => assert!(m.contains(&etcd.endpoint()), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }

    // A CA that did not sign the server certificate: our side refuses the server.
    let mut wrong_ca = etcd.config();
    wrong_ca.ca_cert_file = Some(files.client_cert.clone());
    wrong_ca.dial_timeout = Duration::from_secs(3);
    assert!(matches!(
        EtcdDatastore::connect(wrong_ca).await,
        Err(DatastoreError::Unavailable(_))
    ));

    // Plain http against a TLS config is named before dialling.
    let mut mixed = etcd.config();
    mixed.endpoints = vec![etcd.endpoint().replace("https://", "http://")];
    assert!(matches!(
        EtcdDatastore::connect(mixed).await,
        Err(DatastoreError::Config(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_endpoints_with_a_dead_one_first() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let dead = format!("http://127.0.0.1:{}", free_port());
    let cfg = EtcdConfig::from_endpoints_str(&format!("{dead},{}", etcd.endpoint())).unwrap();
    let ds = EtcdDatastore::connect(cfg).await.unwrap();
    for i in 0..20u8 {
        ds.put(&format!("/m/{i}"), vec![i], None).await.unwrap();
    }
    assert_eq!(ds.list("/m/").await.unwrap().count, 20);
    let mut w = ds.watch(WatchRequest::prefix("/m/", 0)).await.unwrap();
    let r = ds.put("/m/x", b"x".to_vec(), None).await.unwrap();
    assert_eq!(next_batch(&mut w).await[0].kv.mod_revision, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_is_unavailable() {
    let mut cfg = EtcdConfig::new([format!("http://127.0.0.1:{}", free_port())]);
    cfg.dial_timeout = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let err = EtcdDatastore::connect(cfg).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    match err {
        DatastoreError::Unavailable(m) => assert!(m.contains("cannot reach etcd at"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_fast_while_etcd_is_down() {
    let Some(mut etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let mut cfg = etcd.config();
    cfg.request_timeout = Duration::from_secs(3);
    let ds = EtcdDatastore::connect(cfg).await.unwrap();
    tokio::task::block_in_place(|| etcd.stop());
    let err = ds.put("/down", b"x".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, DatastoreError::Unavailable(_)), "{err:?}");
    tokio::task::block_in_place(|| etcd.start_again()).unwrap();
    // The same client recovers once etcd is back.
    let mut ok = false;
    for _ in 0..50 {
        if ds.put("/down", b"y".to_vec(), None).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ok, "client did not recover after etcd came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_password() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    etcd.enable_auth("s3cret").unwrap();
    let ds = EtcdDatastore::connect(etcd.config().with_credentials("root", "s3cret"))
        .await
        .unwrap();
    let r = ds.put("/auth/a", b"1".to_vec(), None).await.unwrap();
    let mut w = ds.watch(WatchRequest::prefix("/auth/", r)).await.unwrap();
    assert_eq!(next_batch(&mut w).await[0].kv.mod_revision, r);

    for cfg in [
        etcd.config(),
        etcd.config().with_credentials("root", "wrong"),
    ] {
        match EtcdDatastore::connect(cfg).await {
            Err(DatastoreError::Config(m)) => assert!(m.contains("credentials"), "{m}"),
            other => panic!("expected a credentials error, got {other:?}"),
        }
    }
}

fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn harness_kills_etcd_on_drop_and_on_panic() {
    let Some(mut etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let first = etcd.pid().unwrap();
    etcd.restart().unwrap();
    let second = etcd.pid().unwrap();
    assert_ne!(first, second);
    assert!(!process_exists(first), "restart left the old etcd running");
    drop(etcd);
    assert!(!process_exists(second), "drop left etcd running");

    // A test that panics while holding the server still kills it (Drop runs while unwinding).
    let (tx, rx) = std::sync::mpsc::channel();
    let joined = std::thread::spawn(move || {
        let etcd = EtcdServer::start().unwrap();
        tx.send(etcd.pid().unwrap()).unwrap();
        panic!("simulated test failure");
    })
    .join();
    assert!(joined.is_err());
    let pid = rx.recv().unwrap();
    assert!(
        !process_exists(pid),
        "a panicking test left etcd {pid} running"
    );
}

/// Puts, retrying while the cluster elects a new leader (callers such as Calico's clients retry
/// `Unavailable` the same way).
async fn put_retrying(ds: &EtcdDatastore, key: &str, value: &[u8]) -> i64 {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match ds.put(key, value.to_vec(), None).await {
            Ok(rev) => return rev,
            Err(DatastoreError::Unavailable(m)) if std::time::Instant::now() < deadline => {
                eprintln!("retrying put of {key}: {m}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("put {key}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_member_failures_are_survived() {
    let Some(mut etcd) = EtcdServer::start_cluster_or_skip(3) else {
        return;
    };
    let ds = connect(&etcd).await;
    let start = put_retrying(&ds, "/f/0", b"0").await;
    // Requests (and so the watch) start on the first member.
    let mut w = ds.watch(WatchRequest::prefix("/f/", start)).await.unwrap();
    let mut expected = vec![start];

    for down in [0, 1] {
        tokio::task::block_in_place(|| etcd.stop_member(down));
        if down == 0 {
            // A new watch while the member the client prefers is down goes to a live one.
            let mut fresh = ds.watch(WatchRequest::prefix("/g/", 0)).await.unwrap();
            let r = put_retrying(&ds, "/g/k", b"g").await;
            assert_eq!(next_batch(&mut fresh).await[0].kv.mod_revision, r);
        }
        for i in 0..5 {
            let key = format!("/f/{down}-{i}");
            expected.push(put_retrying(&ds, &key, b"x").await);
        }
        tokio::task::block_in_place(|| etcd.start_member(down)).unwrap();
    }
    let last = *expected.last().unwrap();
    let mut seen = Vec::new();
    while seen.last().is_none_or(|r| *r < last) {
        seen.extend(next_batch(&mut w).await.iter().map(|e| e.kv.mod_revision));
    }
    // A put that timed out during the election may still have been committed, and was then
    // retried: such extra revisions are fine, lost or repeated ones are not.
    assert!(
        seen.windows(2).all(|p| p[0] < p[1]),
        "revisions repeated or out of order: {seen:?}"
    );
    for rev in &expected {
        assert!(seen.contains(rev), "revision {rev} missing from {seen:?}");
    }
    assert_quiet(&mut w).await;
    assert_eq!(ds.list("/f/").await.unwrap().count, 11);
}

/// Listings and watch catch-up batches larger than gRPC's usual 4 MiB message limit (etcd's Go
/// client accepts up to 2 GiB; Calico lists every workload endpoint in one range).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_over_four_mib() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let big = vec![b'v'; 1024 * 1024]; // under etcd's 1.5 MiB request limit
    let mut first = 0;
    for i in 0..6 {
        let r = ds
            .put(&format!("/big/{i}"), big.clone(), None)
            .await
            .unwrap();
        if i == 0 {
            first = r;
        }
    }
    let list = ds.list("/big/").await.unwrap();
    assert_eq!(list.kvs.len(), 6);
    assert!(list.kvs.iter().all(|kv| kv.value.len() == big.len()));
    // A watch from the first revision gets all six from history in one etcd response.
    let mut w = ds
        .watch(WatchRequest::prefix("/big/", first))
        .await
        .unwrap();
    let mut n = 0;
    while n < 6 {
        n += next_batch(&mut w).await.len();
    }
    assert_eq!(n, 6);
}

/// etcd's own count of open watchers (`/metrics`, plain HTTP on the client port).
fn etcd_watchers(etcd: &EtcdServer) -> u64 {
    use std::io::{Read, Write};
    let addr = etcd.endpoint().trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("etcd_debugging_mvcc_watcher_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .expect("etcd_debugging_mvcc_watcher_total in /metrics")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_watch_cancels_it_in_etcd() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let base = etcd_watchers(&etcd);
    let watches: Vec<WatchStream> = open_watches(&ds, 3).await;
    assert_eq!(etcd_watchers(&etcd), base + 3);
    drop(watches);
    let deadline = std::time::Instant::now() + WAIT;
    while etcd_watchers(&etcd) != base {
        assert!(
            std::time::Instant::now() < deadline,
            "dropped watches still open in etcd"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn open_watches(ds: &EtcdDatastore, n: usize) -> Vec<WatchStream> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(
            ds.watch(WatchRequest::prefix(&format!("/drop/{i}/"), 0))
                .await
                .unwrap(),
        );
    }
    out
}

/// A watch that lives through etcd restarts while another client keeps writing delivers exactly
/// the history etcd has: the same events a fresh watch replays afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumed_watch_equals_replayed_history_under_load() {
    let Some(mut etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let start = ds.current_revision().await.unwrap() + 1;
    let mut live = ds
        .watch(WatchRequest::prefix("/load/", start))
        .await
        .unwrap();
    let writer = {
        let ds = connect(&etcd).await;
        tokio::spawn(async move {
            for i in 0..300u32 {
                let key = format!("/load/{}", i % 17);
                // Writes fail while etcd is down; keep going, like a real client would retry.
                let _ = ds.put(&key, i.to_le_bytes().to_vec(), None).await;
                if i % 5 == 0 {
                    let _ = ds.delete(&format!("/load/{}", (i + 3) % 17), None).await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::block_in_place(|| etcd.restart()).unwrap();
    }
    writer.await.unwrap();
    let end = ds.put("/load/end", b"end".to_vec(), None).await.unwrap();

    let mut got = Vec::new();
    while got.last().is_none_or(|(rev, _, _)| *rev < end) {
        for e in next_batch(&mut live).await {
            got.push((e.kv.mod_revision, e.kv.key.clone(), e.kind));
        }
    }
    let mut replay = ds
        .watch(WatchRequest::prefix("/load/", start))
        .await
        .unwrap();
    let mut want = Vec::new();
    while want.last().is_none_or(|(rev, _, _)| *rev < end) {
        for e in next_batch(&mut replay).await {
            want.push((e.kv.mod_revision, e.kv.key.clone(), e.kind));
        }
    }
    assert!(
        want.len() > 50,
        "too few writes got through: {}",
        want.len()
    );
    assert_eq!(
        got, want,
        "live watch across restarts differs from etcd's history"
    );
}

/// As with the embedded store, dropping the last handle of the store ends its watch streams.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_end_when_the_store_is_dropped() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ds = connect(&etcd).await;
    let clone = ds.clone();
    let mut w = ds.watch(WatchRequest::prefix("/end/", 0)).await.unwrap();
    let r = ds.put("/end/k", b"v".to_vec(), None).await.unwrap();
    assert_eq!(next_batch(&mut w).await[0].kv.mod_revision, r);
    drop(ds);
    // A clone still holds the store: the watch goes on.
    let r2 = clone.put("/end/k", b"w".to_vec(), None).await.unwrap();
    assert_eq!(next_batch(&mut w).await[0].kv.mod_revision, r2);
    drop(clone);
    match tokio::time::timeout(WAIT, w.next()).await {
        Ok(None) => {}
        other => panic!("expected the stream to end, got {other:?}"),
    }
}
