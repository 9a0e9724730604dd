//! IPAM benchmark (plain `harness = false` binary). Prints, for the embedded store and (when
//! the `etcd` binary is installed) a temporary local etcd:
//!
//! - a 100-pod burst on one node, one request after another (what Calico's CNI plugin does
//!   under its host-wide lock), as 100 concurrent `IpamClient` requests (which contend on the
//!   node's block: each lost compare-and-swap is retried), and as 100 concurrent requests
//!   through the batching [`NodeAllocator`] (one transaction per batch), cold and warm;
//! - steady allocate/release churn on one node (pairs per second), unbatched and batched;
//! - 8 nodes allocating 25 addresses each from one pool at once, unbatched and batched.
//!
//! Run: `cargo bench -p calico-ipam --bench ipam`. `CALICO_BENCH_NO_ETCD=1` skips etcd.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use calico_datastore::{Datastore, EmbeddedDatastore};
use calico_ipam::{AutoAssignArgs, BatchConfig, DatastoreResources, IpamClient, NodeAllocator};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut n = 0;
        let mut embedded = || {
            n += 1;
            Arc::new(EmbeddedDatastore::open(dir.path().join(format!("b{n}.db"))).unwrap())
                as Arc<dyn Datastore>
        };
        println!("== embedded store ==");
        run_all(&mut embedded).await;
        if std::env::var_os("CALICO_BENCH_NO_ETCD").is_some() {
            return;
        }
        match calico_datastore::testing::EtcdServer::start() {
            Ok(etcd) => {
                println!("== etcd (local, one member) ==");
                let cfg = etcd.config();
                let store: Arc<dyn Datastore> = Arc::new(
                    calico_datastore::etcd::EtcdDatastore::connect(cfg)
                        .await
                        .unwrap(),
                );
                let mut fresh = || store.clone();
                run_all(&mut fresh).await;
            }
            Err(e) => println!("etcd skipped: {e}"),
        }
    });
}

async fn wipe(store: &dyn Datastore) {
    store
        .txn(calico_datastore::Txn {
            compare: vec![],
            success: vec![calico_datastore::TxnOp::Delete {
                key: "/calico/".into(),
                prefix: true,
                prev_kv: false,
            }],
            failure: vec![],
        })
        .await
        .unwrap();
}

async fn setup(store: &Arc<dyn Datastore>) -> IpamClient {
    wipe(store.as_ref()).await;
    let pool = serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
        "metadata": {"name": "p"}, "spec": {"cidr": "10.0.0.0/16", "blockSize": 26}});
    store
        .put(
            "/calico/resources/v3/projectcalico.org/ippools/p",
            serde_json::to_vec(&pool).unwrap(),
            None,
        )
        .await
        .unwrap();
    for i in 0..8 {
        let node = serde_json::json!({"apiVersion": "projectcalico.org/v3", "kind": "Node",
            "metadata": {"name": format!("node{i}")}, "spec": {}});
        store
            .put(
                &format!("/calico/resources/v3/projectcalico.org/nodes/node{i}"),
                serde_json::to_vec(&node).unwrap(),
                None,
            )
            .await
            .unwrap();
    }
    IpamClient::new(
        store.clone(),
        Arc::new(DatastoreResources::new(store.clone())),
    )
}

async fn run_all(fresh: &mut dyn FnMut() -> Arc<dyn Datastore>) {
    // Burst, sequential.
    let c = setup(&fresh()).await;
    let t = Instant::now();
    for i in 0..100 {
        c.auto_assign(&AutoAssignArgs::v4(
            "node0",
            &format!("k8s-pod-network.{i}"),
            1,
        ))
        .await
        .unwrap();
    }
    println!(
        "100-pod burst, sequential:   {:>8.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // Burst, concurrent.
    let c = setup(&fresh()).await;
    let t = Instant::now();
    concurrent_burst(0..100, |args| {
        let c = c.clone();
        async move {
            c.auto_assign(&args).await.unwrap();
        }
    })
    .await;
    println!(
        "100-pod burst, concurrent:   {:>8.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // Burst, concurrent, batched: a fresh node (no block yet, so the first batch claims).
    let c = setup(&fresh()).await;
    let na = NodeAllocator::new(c, "node0", BatchConfig::default()).unwrap();
    let t = Instant::now();
    concurrent_burst(0..100, |args| {
        let na = na.clone();
        async move {
            na.auto_assign(&args).await.unwrap();
        }
    })
    .await;
    let s = na.stats();
    println!(
        "100-pod burst, batched:      {:>8.1} ms   ({} commits, {} conflicts, {} claims)",
        t.elapsed().as_secs_f64() * 1e3,
        s.commits,
        s.conflicts,
        s.claims_on_demand + s.claims_ahead
    );

    // A second burst on the same node: blocks cached and claimed ahead of need.
    let t = Instant::now();
    concurrent_burst(100..200, |args| {
        let na = na.clone();
        async move {
            na.auto_assign(&args).await.unwrap();
        }
    })
    .await;
    println!(
        "100-pod burst, batched, warm:{:>8.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // Churn, batched (one caller, so one request per transaction: the latency floor).
    let c = setup(&fresh()).await;
    let na = NodeAllocator::new(c, "node0", BatchConfig::default()).unwrap();
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        let h = format!("churn.{i}");
        na.auto_assign(&AutoAssignArgs::v4("node0", &h, 1))
            .await
            .unwrap();
        na.release_by_handle(&h).await.unwrap();
    }
    println!(
        "churn, batched, sequential:  {:>8.1} pairs/s",
        n as f64 / t.elapsed().as_secs_f64()
    );

    // Churn, batched, 20 pods cycling at once.
    let c = setup(&fresh()).await;
    let na = NodeAllocator::new(c, "node0", BatchConfig::default()).unwrap();
    let t = Instant::now();
    let tasks: Vec<_> = (0..20)
        .map(|k| {
            let na = na.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    let h = format!("churn.{k}.{i}");
                    na.auto_assign(&AutoAssignArgs::v4("node0", &h, 1))
                        .await
                        .unwrap();
                    na.release_by_handle(&h).await.unwrap();
                }
            })
        })
        .collect();
    join(tasks).await;
    println!(
        "churn, batched, 20 at once:  {:>8.1} pairs/s",
        400.0 / t.elapsed().as_secs_f64()
    );

    // Churn.
    let c = setup(&fresh()).await;
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        let h = format!("churn.{i}");
        c.auto_assign(&AutoAssignArgs::v4("node0", &h, 1))
            .await
            .unwrap();
        c.release_by_handle(&h).await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "allocate+release churn:      {:>8.1} pairs/s",
        n as f64 / secs
    );

    // 8 nodes at once.
    let c = setup(&fresh()).await;
    let t = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|node| {
            let c = c.clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    c.auto_assign(&AutoAssignArgs::v4(
                        &format!("node{node}"),
                        &format!("n{node}.{i}"),
                        1,
                    ))
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    join(tasks).await;
    println!(
        "8 nodes x 25 pods at once:   {:>8.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    // 8 nodes at once, batched: one NodeAllocator per node, 25 concurrent requests each.
    let c = setup(&fresh()).await;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for node in 0..8 {
        let na =
            NodeAllocator::new(c.clone(), &format!("node{node}"), BatchConfig::default()).unwrap();
        for i in 0..25 {
            let na = na.clone();
            tasks.push(tokio::spawn(async move {
                na.auto_assign(&AutoAssignArgs::v4(
                    &format!("node{node}"),
                    &format!("n{node}.{i}"),
                    1,
                ))
                .await
                .unwrap();
            }));
        }
    }
    join(tasks).await;
    println!(
        "8 nodes x 25 pods, batched:  {:>8.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}

/// 100-pod burst shape shared by the unbatched and batched runs: one spawned task per pod
/// `k8s-pod-network.{i}` of `pods` on node0, each allocating one IPv4 address through
/// `assign`, all awaited (a panicking task fails the benchmark).
async fn concurrent_burst<F, Fut>(pods: Range<usize>, assign: F)
where
    F: Fn(AutoAssignArgs) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let tasks: Vec<_> = pods
        .map(|i| {
            tokio::spawn(assign(AutoAssignArgs::v4(
                "node0",
                &format!("k8s-pod-network.{i}"),
                1,
            )))
        })
        .collect();
    join(tasks).await;
}

/// Waits for every spawned task, re-raising a task's panic.
async fn join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.unwrap();
    }
}
