//! Crash safety of the embedded store: a writer process killed with SIGKILL in the middle of
//! its write loop leaves a file that opens, passes SQLite's integrity check and is consistent:
//! the revision is the last committed one and every logged key is readable.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use calico_datastore::conformance::{Backend, WriterProcess, collect_events};
use calico_datastore::{Datastore, EmbeddedDatastore, WatchRequest};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Runs `put-loop` under `prefix` for `run_for`, kills it with SIGKILL, and returns the last
/// `(index, revision)` it reported as committed.
async fn write_then_kill(
    writer: &WriterProcess,
    prefix: &str,
    run_for: Duration,
) -> Option<(u64, i64)> {
    let mut child = writer
        .command(&["put-loop", "--prefix", prefix])
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = None;
    let deadline = tokio::time::Instant::now() + run_for;
    loop {
        tokio::select! {
            line = lines.next_line() => match line.unwrap() {
                Some(l) => last = Some(parse_committed(&l)),
                None => panic!("writer {pid} exited before it was killed"),
            },
            _ = tokio::time::sleep_until(deadline) => break,
        }
    }
    // tokio's kill sends SIGKILL to this child's PID: no destructor, no rollback, no flush.
    child.start_kill().unwrap();
    while let Some(l) = lines.next_line().await.unwrap() {
        last = Some(parse_committed(&l));
    }
    let status = child.wait().await.unwrap();
    assert!(
        !status.success(),
        "writer {pid} should have died of SIGKILL"
    );
    last
}

fn parse_committed(line: &str) -> (u64, i64) {
    let mut it = line.strip_prefix("committed ").unwrap().split(' ');
    let i = it.next().unwrap().parse().unwrap();
    let rev = it.next().unwrap().parse().unwrap();
    (i, rev)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_write_loop_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let writer = WriterProcess {
        program: env!("CARGO_BIN_EXE_datastore-test-writer").into(),
        backend: Backend::Embedded(path.clone()),
    };
    let mut expected_keys = 0u64;
    for (round, ms) in [150u64, 237, 311].into_iter().enumerate() {
        let prefix = format!("/crash/{round}/");
        let before = if path.exists() {
            EmbeddedDatastore::open(&path)
                .unwrap()
                .current_revision()
                .await
                .unwrap()
        } else {
            1
        };
        let last = write_then_kill(&writer, &prefix, Duration::from_millis(ms)).await;
        let (last_i, last_rev) = last.expect("the writer committed something before the kill");

        // The file passes SQLite's own check after the crash.
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(check, "ok");
        }

        let store = EmbeddedDatastore::open(&path).unwrap();
        let rev = store.current_revision().await.unwrap();
        // Every reported commit survived; at most one more (committed, not yet printed).
        assert!(
            rev == last_rev || rev == last_rev + 1,
            "round {round}: revision {rev}, last reported commit {last_rev}"
        );
        let listed = store.list(&prefix).await.unwrap();
        let n = (rev - before) as u64;
        assert_eq!(listed.count as u64, n, "one key per committed revision");
        assert!(n > last_i, "every reported commit is in the store");
        for kv in &listed.kvs {
            let i: u64 = kv.key[prefix.len()..].parse().unwrap();
            assert_eq!(kv.value, i.to_string().into_bytes());
            assert_eq!(kv.mod_revision, before + 1 + i as i64, "{}", kv.key);
            assert_eq!(kv.version, 1);
        }
        expected_keys += n;

        // The log agrees with the state: one put event per key, nothing more.
        let mut w = store
            .watch(WatchRequest::prefix(&prefix, before + 1))
            .await
            .unwrap();
        let evs = collect_events(&mut w, n as usize).await;
        assert_eq!(evs.last().unwrap().kv.mod_revision, rev);

        // And the store keeps working.
        let after = store
            .put("/crash/after", b"x".to_vec(), None)
            .await
            .unwrap();
        assert_eq!(after, rev + 1);
        store.delete("/crash/after", None).await.unwrap();
    }
    let store = EmbeddedDatastore::open(&path).unwrap();
    assert_eq!(
        store.list("/crash/").await.unwrap().count as u64,
        expected_keys
    );
}
