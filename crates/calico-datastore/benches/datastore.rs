//! Datastore benchmark (plain `harness = false` binary: the multi-process part doesn't fit
//! criterion's model). Prints figures for one backend:
//!
//! - sequential puts (writes/s) and gets (reads/s) from one client;
//! - compare-and-swap increments of one counter by 8 concurrent writers, as tokio tasks sharing
//!   one client and as 8 separate processes (`datastore-test-writer cas`): throughput and the
//!   share of attempts that hit `Conflict`;
//! - watch latency write -> event (p50/p99), with the watcher on the writing client and on a
//!   second client (for the embedded store: another connection and poller, i.e. what another
//!   process sees);
//! - CPU used by an idle process with one open watch, and how often its poller threads wake.
//!
//! Backend: `CALICO_BENCH_ETCD=http://127.0.0.1:2379` benchmarks etcd (`CALICO_BENCH_ETCD=start`
//! starts a temporary local etcd for the run); otherwise the embedded
//! store in a temporary file (`CALICO_BENCH_EMBEDDED=PATH` to choose the file), measured with
//! both `synchronous` settings with kernel wake-ups for watchers, and once more polling instead
//! (`watch_kernel_wakeups: false`, the behaviour before kernel wake-ups). `CALICO_BENCH_N` scales the operation counts (default 2000).
//!
//! Run: `cargo bench -p calico-datastore --bench datastore`.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use calico_datastore::conformance::{self, Backend, WriterProcess};
use calico_datastore::embedded::{EmbeddedOptions, Synchronous};
use calico_datastore::{Datastore, DatastoreError, EmbeddedDatastore, WatchRequest};

const WRITERS: usize = 8;

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn n_ops() -> usize {
    std::env::var("CALICO_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

async fn run() {
    let n = n_ops();
    let writer_bin = env!("CARGO_BIN_EXE_datastore-test-writer");
    if let Ok(endpoints) = std::env::var("CALICO_BENCH_ETCD") {
        // `start`: a throw-away single-member etcd on loopback (killed when this returns).
        let _server;
        let endpoints = if endpoints == "start" {
            let server = calico_datastore::testing::EtcdServer::start().unwrap();
            let ep = server.endpoint();
            _server = server;
            ep
        } else {
            endpoints
        };
        let backend = Backend::Etcd(endpoints.clone());
        println!("== backend: etcd {endpoints}");
        let a = backend.open().await.unwrap();
        let b = backend.open().await.unwrap();
        bench_one(&*a, &*b, n).await;
        cas_processes(&*a, &backend, writer_bin, n).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = std::env::var("CALICO_BENCH_EMBEDDED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.path().join("bench.db"));
    for (sync, kernel) in [
        (Synchronous::Full, true),
        (Synchronous::Normal, true),
        (Synchronous::Normal, false),
    ] {
        let opts = EmbeddedOptions {
            synchronous: sync,
            watch_kernel_wakeups: kernel,
            ..Default::default()
        };
        println!(
            "== backend: embedded {} (synchronous={sync:?}, watchers {})",
            path.display(),
            if kernel {
                "woken by the kernel"
            } else {
                "polling"
            }
        );
        let a = EmbeddedDatastore::open_with(&path, opts.clone()).unwrap();
        let b = EmbeddedDatastore::open_with(&path, opts).unwrap();
        bench_one(&a, &b, n).await;
    }
    // The writer processes open the file with the default options (synchronous=Full).
    let a = EmbeddedDatastore::open(&path).unwrap();
    cas_processes(&a, &Backend::Embedded(path.clone()), writer_bin, n).await;
}

async fn bench_one(a: &dyn Datastore, b: &dyn Datastore, n: usize) {
    let prefix = conformance::unique_prefix("bench");
    let value = vec![b'x'; 512];

    let t = Instant::now();
    for i in 0..n {
        a.put(&format!("{prefix}seq/{}", i % 200), value.clone(), None)
            .await
            .unwrap();
    }
    report_rate("sequential puts (512 B values)", n, t.elapsed(), "writes/s");

    let t = Instant::now();
    for i in 0..n {
        a.get(&format!("{prefix}seq/{}", i % 200)).await.unwrap();
    }
    report_rate("sequential gets", n, t.elapsed(), "reads/s");

    cas_tasks(a, &prefix, n).await;
    watch_latency(
        "watch latency, watcher on the writing client",
        a,
        a,
        &prefix,
        n,
    )
    .await;
    watch_latency(
        "watch latency, watcher on a second client",
        a,
        b,
        &prefix,
        n,
    )
    .await;
    idle_watch_cpu(b, &prefix).await;
}

/// CPU time this process spends while one watch is open and nothing is written (the cost of
/// noticing other processes' commits), and how often the embedded store's poller threads wake.
/// Linux only: sums `/proc/self/task/*/schedstat` (ns on CPU, timeslices run).
async fn idle_watch_cpu(store: &dyn Datastore, prefix: &str) {
    /// (ns on CPU of all threads, timeslices of the "datastore-watch" threads)
    fn cpu() -> Option<(u64, u64)> {
        let (mut ns, mut poller_slices) = (0, 0);
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let dir = task.ok()?.path();
            let (Ok(comm), Ok(stat)) = (
                std::fs::read_to_string(dir.join("comm")),
                std::fs::read_to_string(dir.join("schedstat")),
            ) else {
                continue;
            };
            let f: Vec<u64> = stat
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            ns += f.first()?;
            if comm.trim() == "datastore-watch" {
                poller_slices += f.get(2)?;
            }
        }
        Some((ns, poller_slices))
    }
    let _w = store
        .watch(WatchRequest::prefix(&format!("{prefix}idle/"), 0))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (Some((ns0, wake0)), t) = (cpu(), Instant::now()) else {
        return;
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let Some((ns1, wake1)) = cpu() else { return };
    let secs = t.elapsed().as_secs_f64();
    println!(
        "idle process with one open watch: {:.3}% of one core, poller threads wake {:.1} times/s",
        100.0 * (ns1 - ns0) as f64 / 1e9 / secs,
        (wake1 - wake0) as f64 / secs
    );
}

fn report_rate(what: &str, n: usize, took: Duration, unit: &str) {
    println!(
        "{what}: {n} in {:.3}s = {:.0} {unit}",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
}

/// 8 tokio tasks on one client increment one counter with `update`, retrying on `Conflict`.
async fn cas_tasks(store: &dyn Datastore, prefix: &str, n: usize) {
    let key = format!("{prefix}cas-counter");
    store.create(&key, b"0".to_vec(), None).await.unwrap();
    let per_writer = (n / WRITERS).max(1);
    let conflicts = AtomicU64::new(0);
    let t = Instant::now();
    let tasks = (0..WRITERS).map(|_| async {
        for _ in 0..per_writer {
            loop {
                let kv = store.get(&key).await.unwrap().unwrap();
                let v: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                match store
                    .update(
                        &key,
                        (v + 1).to_string().into_bytes(),
                        kv.mod_revision,
                        None,
                    )
                    .await
                {
                    Ok(_) => break,
                    Err(DatastoreError::Conflict { .. }) => {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("update: {e}"),
                }
            }
        }
    });
    futures::future::join_all(tasks).await;
    let took = t.elapsed();
    let total = per_writer * WRITERS;
    let final_value = store.get(&key).await.unwrap().unwrap().value;
    assert_eq!(final_value, total.to_string().into_bytes(), "lost update");
    print_cas(
        "CAS, 8 concurrent tasks on one client",
        total,
        conflicts.into_inner(),
        took,
    );
}

fn print_cas(what: &str, total: usize, conflicts: u64, took: Duration) {
    let attempts = total as u64 + conflicts;
    println!(
        "{what}: {total} increments in {:.3}s = {:.0} increments/s, {conflicts} conflicts \
         ({:.1}% of {attempts} attempts)",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64(),
        100.0 * conflicts as f64 / attempts as f64
    );
}

/// 8 writer processes increment one counter; checked for lost updates by the conformance code.
async fn cas_processes(store: &dyn Datastore, backend: &Backend, bin: &str, n: usize) {
    let writer = WriterProcess {
        program: bin.into(),
        backend: backend.clone(),
    };
    let per_writer = (n / WRITERS).max(1);
    let report = conformance::multi_process_cas(store, &writer, WRITERS, per_writer).await;
    print_cas(
        "CAS, 8 concurrent processes (incl. process start-up)",
        WRITERS * per_writer,
        report.conflicts,
        report.elapsed,
    );
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Writes one key every 2 ms carrying its send time; the watcher measures arrival - send.
async fn watch_latency(
    what: &str,
    writer: &dyn Datastore,
    watcher: &dyn Datastore,
    prefix: &str,
    n: usize,
) {
    let samples = (n / 4).clamp(50, 1000);
    let key = format!("{prefix}{}", conformance::unique_prefix("latency"));
    let mut w = watcher.watch(WatchRequest::prefix(&key, 0)).await.unwrap();
    let mut lat: Vec<Duration> = Vec::with_capacity(samples);
    let recv = async {
        while lat.len() < samples {
            for ev in conformance::next_batch(&mut w).await {
                let arrived = now_nanos();
                let sent: u128 = std::str::from_utf8(&ev.kv.value).unwrap().parse().unwrap();
                lat.push(Duration::from_nanos((arrived - sent) as u64));
            }
        }
    };
    let mut put_took: Vec<Duration> = Vec::with_capacity(samples);
    let send = async {
        for _ in 0..samples {
            let t = Instant::now();
            writer
                .put(&key, now_nanos().to_string().into_bytes(), None)
                .await
                .unwrap();
            put_took.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::join!(recv, send);
    let (p50, p99, max) = percentiles(&mut lat);
    let (w50, w99, _) = percentiles(&mut put_took);
    println!(
        "{what}: {samples} events, write start -> event p50 {p50:.2} ms, p99 {p99:.2} ms, \
         max {max:.2} ms (the put itself: p50 {w50:.2} ms, p99 {w99:.2} ms)"
    );
}

/// p50, p99 and max in milliseconds.
fn percentiles(samples: &mut [Duration]) -> (f64, f64, f64) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(at(0.50)), ms(at(0.99)), ms(samples[samples.len() - 1]))
}
