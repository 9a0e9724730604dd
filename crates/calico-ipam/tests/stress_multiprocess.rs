//! K allocator processes (each its own datastore client; two per "node") allocating and
//! releasing at once against the embedded store and a real etcd. Every allocation and release
//! is logged with the datastore revision it committed at; the parent then checks that no
//! address was ever held by two handles (per address, the revision intervals
//! [allocated, released) never overlap), that each release freed exactly what was allocated,
//! that no handle leaked, and that the stored blocks and handles are consistent. The batched
//! variants put a [`NodeAllocator`] (several tasks sharing batches) in two of the processes,
//! racing plain IpamClient processes on the same nodes' blocks.
//!
//! The workers are this same test binary re-run with `IPAM_STRESS_WORKER` set (see
//! [`stress_worker`]), so no extra binary is needed.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use calico_datastore::Datastore;
use calico_ipam::{AutoAssignArgs, BatchConfig, IpamClient, NodeAllocator};
use common::*;
use serde_json::json;

const WORKERS: usize = 4;
const ITERATIONS: usize = 40;

/// Worker entry point; a no-op unless run by the parent test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stress_worker() {
    let Ok(spec) = std::env::var("IPAM_STRESS_WORKER") else {
        return;
    };
    let spec: serde_json::Value = serde_json::from_str(&spec).unwrap();
    let backend = spec["backend"].as_str().unwrap();
    let store: Arc<dyn Datastore> = if let Some(path) = backend.strip_prefix("embedded:") {
        Arc::new(calico_datastore::EmbeddedDatastore::open(path).unwrap())
    } else if let Some(ep) = backend.strip_prefix("etcd:") {
        let cfg = calico_datastore::etcd::EtcdConfig::new(vec![ep.to_string()]);
        Arc::new(
            calico_datastore::etcd::EtcdDatastore::connect(cfg)
                .await
                .unwrap(),
        )
    } else {
        panic!("unknown backend {backend}");
    };
    let id = spec["id"].as_u64().unwrap();
    let node = spec["node"].as_str().unwrap();
    let c = client(&store);
    if spec["endless"].as_bool() == Some(true) {
        // Crash-injection mode: allocate and release until killed.
        let mut i = 0usize;
        loop {
            let h = format!("w{id}-{i}");
            let mut args = AutoAssignArgs::v4(node, &h, 1 + i % 3);
            args.num6 = i % 2;
            c.auto_assign(&args).await.unwrap();
            if i % 2 == 1 {
                c.release_by_handle(&format!("w{id}-{}", i - 1))
                    .await
                    .unwrap();
            }
            if i >= 4 {
                // Idempotent when already released; keeps each worker to a few live handles.
                c.release_by_handle(&format!("w{id}-{}", i - 4))
                    .await
                    .unwrap();
            }
            i += 1;
        }
    }
    if spec["batched"].as_bool() == Some(true) {
        // Through a NodeAllocator, from several tasks at once so requests share batches.
        let na = NodeAllocator::new(
            c,
            node,
            BatchConfig {
                low_water: 4,
                ..BatchConfig::default()
            },
        )
        .unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                let a = Alloc::Batched(na.clone());
                let node = node.to_string();
                tokio::spawn(async move {
                    run_iterations(&a, id, &node, (t..ITERATIONS).step_by(4)).await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        na.settle().await.unwrap();
    } else {
        run_iterations(&Alloc::Plain(c), id, node, 0..ITERATIONS).await;
    }
}

/// The allocator a worker uses: IpamClient directly, or the batching NodeAllocator.
enum Alloc {
    Plain(IpamClient),
    Batched(NodeAllocator),
}

impl Alloc {
    async fn assign(&self, args: &AutoAssignArgs) -> calico_ipam::Assignment {
        match self {
            Alloc::Plain(c) => c.auto_assign(args).await.unwrap(),
            Alloc::Batched(n) => n.auto_assign(args).await.unwrap(),
        }
    }
    async fn release(&self, h: &str) -> calico_ipam::client::HandleRelease {
        match self {
            Alloc::Plain(c) => c.release_handle(h).await.unwrap(),
            Alloc::Batched(n) => n.release_by_handle(h).await.unwrap(),
        }
    }
}

/// Allocates handle `w<id>-<i>` for each `i`, releasing every third one it holds, and logs
/// each event with its commit revision.
async fn run_iterations(a: &Alloc, id: u64, node: &str, iters: impl Iterator<Item = usize>) {
    let mut live: Vec<String> = Vec::new();
    for (k, i) in iters.enumerate() {
        let h = format!("w{id}-{i}");
        let mut args = AutoAssignArgs::v4(node, &h, 1 + i % 2);
        if i % 5 == 0 {
            args.num6 = 1;
        }
        let got = a.assign(&args).await;
        for n in got.ipv4.iter().chain(got.ipv6.iter()) {
            println!("IPAMEV A {} {h} {}", n.addr(), got.revision);
        }
        live.push(h);
        if k % 3 == 2 {
            let gone = live.remove(k % live.len());
            let r = a.release(&gone).await;
            println!("IPAMEV R {gone} {} {}", r.revision, r.released);
        }
    }
    for h in live {
        println!("IPAMEV L {h}");
    }
}

async fn setup(store: &dyn Datastore) {
    // Small blocks so nodes claim several, run out, and borrow from each other.
    put_pool(
        store,
        "v4",
        json!({"cidr": "10.20.0.0/24", "blockSize": 28}),
    )
    .await;
    put_pool(store, "v6", json!({"cidr": "fd20::/120", "blockSize": 124})).await;
    put_node(store, "node-a", &[]).await;
    put_node(store, "node-b", &[]).await;
}

/// Starts `WORKERS` endless allocators, SIGKILLs each (by its PID) at a different moment
/// mid-work, then checks the store is consistent and that a fresh allocator can carry on and
/// clean up everything the dead ones held.
async fn crash_and_recover(store: &dyn Datastore, backend: &str, store_arc: Arc<dyn Datastore>) {
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..WORKERS)
        .map(|id| {
            let spec = json!({
                "backend": backend,
                "id": id,
                "node": if id % 2 == 0 { "node-a" } else { "node-b" },
                "endless": true,
            });
            Command::new(&exe)
                .args([
                    "--exact",
                    "stress_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("IPAM_STRESS_WORKER", spec.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.iter_mut().enumerate() {
        // Kill each worker mid-work: once it holds addresses, after a staggered extra delay.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while store
            .list(&format!("/calico/ipam/v2/handle/w{i}-"))
            .await
            .unwrap()
            .kvs
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "worker {i} never allocated"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50 + 137 * i as u64)).await;
        assert!(
            child.try_wait().unwrap().is_none(),
            "worker {i} died before it was killed"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let held = check_consistency(store).await;
    assert!(
        !held.is_empty(),
        "the workers allocated something before dying"
    );
    let c = client(&store_arc);
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node-a", "after-crash", 3))
        .await
        .unwrap();
    assert_eq!(got.ipv4.len(), 3);
    for h in held.keys() {
        assert!(
            c.release_by_handle(h).await.unwrap() >= 1,
            "{h} held addresses"
        );
    }
    c.release_by_handle("after-crash").await.unwrap();
    assert!(check_consistency(store).await.is_empty(), "nothing leaked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_injection_embedded() {
    let (store, dir) = embedded();
    setup(store.as_ref()).await;
    let path = dir.path().join("store.db");
    crash_and_recover(
        store.as_ref(),
        &format!("embedded:{}", path.display()),
        store.clone(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_injection_etcd() {
    let Some(etcd) = calico_datastore::testing::EtcdServer::start_or_skip() else {
        return;
    };
    let store: Arc<dyn Datastore> = Arc::new(
        calico_datastore::etcd::EtcdDatastore::connect(etcd.config())
            .await
            .unwrap(),
    );
    setup(store.as_ref()).await;
    crash_and_recover(
        store.as_ref(),
        &format!("etcd:{}", etcd.endpoint()),
        store.clone(),
    )
    .await;
}

/// Runs the workers; with `batched`, workers 0 and 1 (one per node) go through a
/// NodeAllocator while 2 and 3 write the same nodes' blocks with IpamClient directly.
fn run_workers(backend: &str, batched: bool) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|id| {
            let spec = json!({
                "backend": backend,
                "id": id,
                "node": if id % 2 == 0 { "node-a" } else { "node-b" },
                "batched": batched && id < 2,
            });
            Command::new(&exe)
                .args([
                    "--exact",
                    "stress_worker",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("IPAM_STRESS_WORKER", spec.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut lines = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "worker failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        lines.extend(
            text.lines()
                // libtest prints "test stress_worker ... " without a newline before the test
                // runs, so the first event may share its line.
                .filter_map(|l| l.find("IPAMEV ").map(|i| l[i + 7..].to_string())),
        );
    }
    lines
}

/// What the event log says is still held: live handle -> its addresses.
type Holdings = BTreeMap<String, BTreeSet<IpAddr>>;

/// Checks the workers' event log on its own: every handle accounted for, each release freed
/// exactly what its handle was given, and per address the holding intervals
/// [allocation revision, release revision) never overlap.
fn check_log(lines: &[String], handles: usize) -> Result<Holdings, String> {
    let mut allocs: BTreeMap<IpAddr, Vec<(i64, String)>> = BTreeMap::new();
    let mut by_handle: Holdings = BTreeMap::new();
    let mut released: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    let mut live: BTreeSet<String> = BTreeSet::new();
    for l in lines {
        let f: Vec<&str> = l.split(' ').collect();
        match f.as_slice() {
            ["A", ip, h, rev] => {
                let ip: IpAddr = ip.parse().map_err(|e| format!("{l}: {e}"))?;
                let rev: i64 = rev.parse().map_err(|e| format!("{l}: {e}"))?;
                allocs.entry(ip).or_default().push((rev, h.to_string()));
                by_handle.entry(h.to_string()).or_default().insert(ip);
            }
            ["R", h, rev, n] => {
                let rev: i64 = rev.parse().map_err(|e| format!("{l}: {e}"))?;
                let n: usize = n.parse().map_err(|e| format!("{l}: {e}"))?;
                released.insert(h.to_string(), (rev, n));
            }
            ["L", h] => {
                live.insert(h.to_string());
            }
            _ => return Err(format!("bad event {l:?}")),
        }
    }
    if live.len() + released.len() != handles {
        return Err(format!(
            "{} live + {} released handles, expected {handles}",
            live.len(),
            released.len()
        ));
    }
    for (h, (_, n)) in &released {
        let given = by_handle.get(h).map_or(0, BTreeSet::len);
        if given != *n {
            return Err(format!("release of {h} freed {n}, it was given {given}"));
        }
    }
    for (ip, mut holds) in allocs {
        holds.sort();
        for pair in holds.windows(2) {
            let (a0, h0) = &pair[0];
            let (a1, h1) = &pair[1];
            match released.get(h0) {
                None => {
                    return Err(format!(
                        "{ip} given to {h1} at rev {a1} while {h0} (since {a0}) still held it"
                    ));
                }
                Some((r0, _)) if r0 > a1 => {
                    return Err(format!(
                        "{ip}: {h0} held it [{a0}, {r0}) but {h1} got it at {a1}"
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(by_handle
        .into_iter()
        .filter(|(h, _)| live.contains(h))
        .collect())
}

#[test]
fn the_log_checker_catches_double_allocation_and_bad_release_counts() {
    let log = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ok = log(&["A 10.0.0.1 a 5", "R a 7 1", "A 10.0.0.1 b 7", "L b"]);
    assert_eq!(check_log(&ok, 2).unwrap().len(), 1);
    let overlap = log(&["A 10.0.0.1 a 5", "R a 9 1", "A 10.0.0.1 b 7", "L b"]);
    assert!(check_log(&overlap, 2).unwrap_err().contains("held it"));
    let never_released = log(&["A 10.0.0.1 a 5", "A 10.0.0.1 b 7", "L a", "L b"]);
    assert!(
        check_log(&never_released, 2)
            .unwrap_err()
            .contains("still held")
    );
    let short_release = log(&["A 10.0.0.1 a 5", "A 10.0.0.2 a 5", "R a 9 1"]);
    assert!(
        check_log(&short_release, 1)
            .unwrap_err()
            .contains("freed 1")
    );
    assert!(check_log(&log(&["L a"]), 2).is_err());
}

/// Checks the log, then the store against it: it holds exactly the live handles with exactly
/// their addresses, and blocks and handles agree.
async fn verify(store: &dyn Datastore, lines: &[String]) {
    let live = check_log(lines, WORKERS * ITERATIONS).unwrap();
    let counts = check_consistency(store).await;
    let expected: BTreeMap<String, u64> = live
        .iter()
        .map(|(h, ips)| (h.clone(), ips.len() as u64))
        .collect();
    assert_eq!(
        counts, expected,
        "stored handles are exactly the live ones (no leak)"
    );
    let blocks = store.list("/calico/ipam/v2/assignment/").await.unwrap();
    let mut stored: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for kv in blocks.kvs {
        let b: calico_ipam::AllocationBlock =
            calico_ipam::model::decode(&kv.key, &kv.value).unwrap();
        for h in b.count_by_handle().keys() {
            stored
                .entry(h.clone())
                .or_default()
                .extend(b.ips_by_handle(h));
        }
    }
    assert_eq!(
        stored, live,
        "each live handle holds exactly the addresses it was given"
    );
}

/// Runs the worker processes against a fresh embedded store and checks the result.
async fn stress_embedded(batched: bool) {
    let (store, dir) = embedded();
    setup(store.as_ref()).await;
    let path = dir.path().join("store.db");
    let lines = run_workers(&format!("embedded:{}", path.display()), batched);
    verify(store.as_ref(), &lines).await;
}

/// Runs the worker processes against a fresh real etcd and checks the result.
async fn stress_etcd(batched: bool) {
    let Some(etcd) = calico_datastore::testing::EtcdServer::start_or_skip() else {
        return;
    };
    let store: Arc<dyn Datastore> = Arc::new(
        calico_datastore::etcd::EtcdDatastore::connect(etcd.config())
            .await
            .unwrap(),
    );
    setup(store.as_ref()).await;
    let lines = run_workers(&format!("etcd:{}", etcd.endpoint()), batched);
    verify(store.as_ref(), &lines).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_process_stress_embedded() {
    stress_embedded(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_process_stress_etcd() {
    stress_etcd(false).await;
}

/// The same check with batching allocators in the mix, each sharing its node's blocks with an
/// unbatched IpamClient process (the conflicting external writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_process_stress_batched_embedded() {
    stress_embedded(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_process_stress_batched_etcd() {
    stress_etcd(true).await;
}
