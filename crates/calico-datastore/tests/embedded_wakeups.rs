//! Watch wake-ups of the embedded store: an idle watching process costs (almost) no CPU, yet a
//! commit by another process reaches its watcher within milliseconds, also after the commit
//! signal file was deleted or replaced; and with kernel wake-ups off, polling still works.
//!
//! The watching process is this test binary run again on the ignored `watcher_child` test (with
//! its parameters in the environment), so its CPU use is measured alone, from
//! `/proc/self/task/*/schedstat` (nanoseconds on CPU, and timeslices = wake-ups per thread).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use calico_datastore::conformance::next_batch;
use calico_datastore::embedded::{EmbeddedOptions, Synchronous};
use calico_datastore::{Datastore, EmbeddedDatastore, WatchEvent, WatchRequest, WatchStream};
use tokio::io::{AsyncBufReadExt, BufReader};

const CHILD_STORE: &str = "CALICO_TEST_WAKEUPS_STORE";
const CHILD_KERNEL: &str = "CALICO_TEST_WAKEUPS_KERNEL";
const CHILD_EVENTS: &str = "CALICO_TEST_WAKEUPS_EVENTS";
const IDLE: Duration = Duration::from_secs(3);
const WRITES: usize = 200;

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Per thread of this process: (name, ns on CPU, timeslices run).
fn thread_stats() -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        // A thread may end between listing and reading.
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("schedstat")),
        ) else {
            continue;
        };
        let f: Vec<u64> = stat
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        out.push((comm.trim().to_string(), f[0], f[2]));
    }
    out
}

/// The watching process. Prints `@idle <elapsed_ns> <process_cpu_ns> <poller_cpu_ns>
/// <poller_wakeups> <process_wakeups>` after an idle spell with one open watch, then `@lat <ns>` (arrival minus
/// the send time carried in the value) per event, then `@done`.
#[test]
#[ignore = "run as a child process by the other tests of this file"]
fn watcher_child() {
    let Ok(path) = std::env::var(CHILD_STORE) else {
        return;
    };
    let kernel = std::env::var(CHILD_KERNEL).unwrap() == "1";
    let events: usize = std::env::var(CHILD_EVENTS).unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = EmbeddedDatastore::open_with(
            &path,
            EmbeddedOptions {
                watch_kernel_wakeups: kernel,
                ..Default::default()
            },
        )
        .unwrap();
        let mut w = store.watch(WatchRequest::prefix("/lat/", 0)).await.unwrap();
        // Let start-up work (blocking threads, the first rounds) settle.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let poller = |stats: &[(String, u64, u64)]| {
            let p: Vec<_> = stats.iter().filter(|s| s.0 == "datastore-watch").collect();
            assert_eq!(p.len(), 1, "one poller thread: {stats:?}");
            (p[0].1, p[0].2)
        };
        let before = thread_stats();
        let t0 = now_nanos();
        tokio::time::sleep(IDLE).await;
        let after = thread_stats();
        let elapsed = now_nanos() - t0;
        let cpu = |s: &[(String, u64, u64)]| s.iter().map(|t| t.1).sum::<u64>();
        let slices = |s: &[(String, u64, u64)]| s.iter().map(|t| t.2).sum::<u64>();
        let ((p0_ns, p0_n), (p1_ns, p1_n)) = (poller(&before), poller(&after));
        println!(
            "@idle {elapsed} {} {} {} {}",
            cpu(&after) - cpu(&before),
            p1_ns - p0_ns,
            p1_n - p0_n,
            // Threads that started during the spell count from zero: an over-estimate.
            slices(&after).saturating_sub(slices(&before))
        );
        let mut seen = 0;
        while seen < events {
            for ev in next_batch(&mut w).await {
                let arrived = now_nanos();
                let sent: u64 = std::str::from_utf8(&ev.kv.value).unwrap().parse().unwrap();
                println!("@lat {}", arrived.saturating_sub(sent));
                seen += 1;
            }
        }
        println!("@done");
    });
}

struct ChildReport {
    elapsed_ns: u64,
    process_cpu_ns: u64,
    poller_cpu_ns: u64,
    poller_wakeups: u64,
    process_wakeups: u64,
    latencies: Vec<Duration>,
}

/// Runs `watcher_child` on a store at `path`, writes `WRITES` keys from this process once it
/// reports its idle figures (one every 5 ms, value = send time), and collects its report.
async fn run_child(path: &Path, kernel: bool) -> ChildReport {
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "watcher_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_STORE, path)
        .env(CHILD_KERNEL, if kernel { "1" } else { "0" })
        .env(CHILD_EVENTS, WRITES.to_string())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut report = ChildReport {
        elapsed_ns: 0,
        process_cpu_ns: 0,
        poller_cpu_ns: 0,
        poller_wakeups: 0,
        process_wakeups: 0,
        latencies: Vec::new(),
    };
    let writer = Arc::new(
        EmbeddedDatastore::open_with(
            path,
            EmbeddedOptions {
                // The disk is not under test: keep fsync out of the latency.
                synchronous: Synchronous::Normal,
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let mut writes = None;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            // libtest's own "test watcher_child ... " may precede a report on its line.
            let Some((_, line)) = line.split_once('@') else {
                continue;
            };
            let f: Vec<u64> = line
                .split(' ')
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            if line.starts_with("idle ") {
                [
                    report.elapsed_ns,
                    report.process_cpu_ns,
                    report.poller_cpu_ns,
                    report.poller_wakeups,
                    report.process_wakeups,
                ] = f[..].try_into().unwrap();
                // The child watches: write now.
                let writer = writer.clone();
                writes = Some(tokio::spawn(async move {
                    for i in 0..WRITES {
                        let sent = now_nanos().to_string().into_bytes();
                        writer.put(&format!("/lat/{i}"), sent, None).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }));
            } else if line.starts_with("lat ") {
                report.latencies.push(Duration::from_nanos(f[0]));
            } else if line == "done" {
                return;
            }
        }
        panic!("the watcher child exited without finishing");
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the watcher child reports within a minute");
    writes.unwrap().await.unwrap();
    assert!(child.wait().await.unwrap().success());
    report
}

fn p50(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn p99(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[(samples.len() * 99 / 100).min(samples.len() - 1)]
}

fn temp_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    // Create the file (and its schema) before the child opens it.
    drop(EmbeddedDatastore::open(&path).unwrap());
    (dir, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watcher_process_sleeps_and_wakes_at_once_for_other_processes() {
    let (_dir, path) = temp_store();
    let mut r = run_child(&path, true).await;
    let secs = r.elapsed_ns as f64 / 1e9;
    let process_share = r.process_cpu_ns as f64 / r.elapsed_ns as f64;
    let wakeups_per_s = r.poller_wakeups as f64 / secs;
    let process_wakeups_per_s = r.process_wakeups as f64 / secs;
    eprintln!(
        "idle watcher process: {:.3}% of a core, {process_wakeups_per_s:.1} wake-ups/s \
         (poller {:.3}%, {wakeups_per_s:.1} wake-ups/s)",
        100.0 * process_share,
        100.0 * r.poller_cpu_ns as f64 / r.elapsed_ns as f64
    );
    // Polling every 2 ms cost ~2-3% of a core and ~500 wake-ups/s; the safety poll and the
    // lease check (every 250 ms) leave a few wake-ups per second. The wake-up counts are the
    // proof: they do not depend on how loaded the machine is. CPU time does (a debug build
    // on CI with other tests running measured 0.6% for the same few wake-ups), so its bound
    // only catches a gross regression.
    assert!(
        wakeups_per_s < 25.0,
        "idle poller wakes {wakeups_per_s:.1} times a second"
    );
    assert!(
        process_wakeups_per_s < 100.0,
        "idle watcher process wakes {process_wakeups_per_s:.1} times a second"
    );
    assert!(
        process_share < 0.02,
        "idle watcher uses {:.3}% of a core",
        100.0 * process_share
    );
    // Only the kernel wake-up can deliver within 20 ms: the next safety poll or lease check
    // would be up to 250 ms away (a median of ~125 ms). The median carries that proof. The
    // p99 bound only catches events left to a later poll or lost: on a loaded shared 2-core
    // machine single deliveries were seen at 48 ms and, with eight builds running, 200 ms.
    let (median, p) = (p50(&mut r.latencies), p99(&mut r.latencies));
    eprintln!("cross-process write -> event p50 {median:?} p99 {p:?}");
    assert!(median < Duration::from_millis(20), "p50 {median:?}");
    assert!(p < Duration::from_millis(1000), "p99 {p:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_kernel_wakeups_polling_still_delivers_other_processes_writes() {
    let (_dir, path) = temp_store();
    let mut r = run_child(&path, false).await;
    let (median, p) = (p50(&mut r.latencies), p99(&mut r.latencies));
    eprintln!("polling: cross-process write -> event p50 {median:?} p99 {p:?}");
    assert!(median < Duration::from_millis(20), "p50 {median:?}");
    // See above: the tail only has to show nothing waited for a much later poll.
    assert!(p < Duration::from_millis(1000), "p99 {p:?}");
}

async fn next_within(w: &mut WatchStream, limit: Duration) -> Vec<WatchEvent> {
    tokio::time::timeout(limit, next_batch(w))
        .await
        .expect("the event arrives through a kernel wake-up, long before any periodic check")
}

/// A deleted or replaced signal file is recreated by the next commit and watched again. The
/// watching store's safety poll and lease check are an hour away, so only a kernel wake-up can
/// deliver in time. (Two stores in one process share no wake-ups: like two processes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_file_deleted_or_replaced_keeps_waking_watchers() {
    let (dir, path) = temp_store();
    let hour = Duration::from_secs(3600);
    let watcher = EmbeddedDatastore::open_with(
        &path,
        EmbeddedOptions {
            watch_safety_poll_interval: hour,
            lease_check_interval: hour,
            ..Default::default()
        },
    )
    .unwrap();
    let writer = EmbeddedDatastore::open(&path).unwrap();
    let signal = dir.path().join("store.db-notify");
    assert!(signal.exists());
    let mut w = watcher
        .watch(WatchRequest::prefix("/re/", 0))
        .await
        .unwrap();
    let limit = Duration::from_secs(5);

    let rev = writer.put("/re/a", b"1".to_vec(), None).await.unwrap();
    assert_eq!(next_within(&mut w, limit).await[0].kv.mod_revision, rev);

    // Deleted: the next commit recreates it (IN_CREATE in the directory).
    std::fs::remove_file(&signal).unwrap();
    let rev = writer.put("/re/b", b"2".to_vec(), None).await.unwrap();
    assert!(signal.exists());
    assert_eq!(next_within(&mut w, limit).await[0].kv.mod_revision, rev);
    // ... and the new file is watched (IN_MODIFY), not just its creation seen.
    let rev = writer.put("/re/c", b"3".to_vec(), None).await.unwrap();
    assert_eq!(next_within(&mut w, limit).await[0].kv.mod_revision, rev);

    // Replaced by a rename (IN_MOVED_TO), then written to.
    let tmp = dir.path().join("replacement");
    std::fs::write(&tmp, b"\n").unwrap();
    std::fs::rename(&tmp, &signal).unwrap();
    let rev = writer.put("/re/d", b"4".to_vec(), None).await.unwrap();
    let evs = next_within(&mut w, limit).await;
    assert_eq!(evs.last().unwrap().kv.mod_revision, rev);
    let rev = writer.put("/re/e", b"5".to_vec(), None).await.unwrap();
    assert_eq!(next_within(&mut w, limit).await[0].kv.mod_revision, rev);
}

/// inotify instances this process holds (each store's poller has one).
fn inotify_instances() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy() == "anon_inode:inotify")
        .count()
}

/// A store that is only read and written starts no poller (no thread, connection or inotify
/// instance): the CNI plugin opens one per call. The first watch starts exactly one, and a
/// lease grant needs one too (someone must expire the lease).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poller_starts_on_first_watch_or_lease_only() {
    let dir = tempfile::tempdir().unwrap();
    let before = inotify_instances();
    let a = EmbeddedDatastore::open(dir.path().join("a.db")).unwrap();
    a.put("/k", b"v".to_vec(), None).await.unwrap();
    a.get("/k").await.unwrap();
    assert_eq!(
        inotify_instances(),
        before,
        "reads and writes started a poller"
    );
    let mut w = a.watch(WatchRequest::prefix("/", 0)).await.unwrap();
    let _w2 = a.watch(WatchRequest::prefix("/x", 0)).await.unwrap();
    assert_eq!(inotify_instances(), before + 1);
    a.put("/k", b"v2".to_vec(), None).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), w.next())
        .await
        .unwrap();
    assert!(
        matches!(got, Some(Ok(ref evs)) if !evs.is_empty()),
        "{got:?}"
    );
    let b = EmbeddedDatastore::open(dir.path().join("b.db")).unwrap();
    b.lease_grant(30).await.unwrap();
    assert_eq!(inotify_instances(), before + 2);
}
