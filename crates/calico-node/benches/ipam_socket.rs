//! The node's IPAM service as the CNI plugin sees it: requests over the real Unix socket with
//! the synchronous client, against the embedded store and (when `etcd` is installed) a local
//! etcd. Prints latency percentiles for:
//!
//! - `ping` round trips (the socket + JSON overhead alone);
//! - sequential assign-then-release pairs (one pod at a time);
//! - a 30-pod burst: 30 plugin processes' worth of concurrent assigns, then 30 concurrent
//!   releases by handle (what a node sees when a deployment scales up and down).
//!
//! Run: `cargo bench -p calico-node --bench ipam_socket`. `CALICO_BENCH_NO_ETCD=1` skips etcd.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_api::Resource;
use calico_client::Client;
use calico_datastore::{Datastore, EmbeddedDatastore};
use calico_ipam_rpc::{AssignRequest, IpamAgentClient};
use calico_node::ipam_service::{self, IpamService};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn line(what: &str, v: Vec<Duration>) {
    println!(
        "{what:<34} n={:<4} p50={:>9.3?} p99={:>9.3?} max={:>9.3?}",
        v.len(),
        pct(v.clone(), 0.5),
        pct(v.clone(), 0.99),
        pct(v, 1.0)
    );
}

fn req(handle: &str) -> AssignRequest {
    AssignRequest {
        node: "node1".into(),
        handle_id: handle.into(),
        num4: 1,
        ..Default::default()
    }
}

async fn seed(store: &Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    for doc in [
        json!({"apiVersion": "projectcalico.org/v3", "kind": "Node",
               "metadata": {"name": "node1"}, "spec": {"bgp": {"ipv4Address": "10.0.0.5/24"}}}),
        json!({"apiVersion": "projectcalico.org/v3", "kind": "IPPool",
               "metadata": {"name": "pool1"}, "spec": {"cidr": "10.244.0.0/16"}}),
    ] {
        c.create(Resource::from_json_value(doc).unwrap())
            .await
            .unwrap();
    }
}

fn bench_client(path: &Path) {
    let c = IpamAgentClient::new(path, Duration::from_secs(30));
    // Warm-up: the first assign claims the node's block.
    c.assign(&req("warm")).unwrap();
    c.release_handle("node1", "warm").unwrap();

    let pings: Vec<Duration> = (0..1000)
        .map(|_| {
            let t = Instant::now();
            c.ping().unwrap();
            t.elapsed()
        })
        .collect();
    line("ping round trip", pings);

    let mut assigns = Vec::new();
    let mut releases = Vec::new();
    for i in 0..200 {
        let h = format!("seq-{i}");
        let t = Instant::now();
        c.assign(&req(&h)).unwrap();
        assigns.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(c.release_handle("node1", &h).unwrap(), 1);
        releases.push(t.elapsed());
    }
    line("sequential assign", assigns);
    line("sequential release", releases);

    for round in 0..3 {
        let run = |op: &'static str| -> (Vec<Duration>, Duration) {
            let barrier = Arc::new(std::sync::Barrier::new(30));
            let wall = Instant::now();
            let threads: Vec<_> = (0..30)
                .map(|i| {
                    let p: PathBuf = path.to_path_buf();
                    let b = barrier.clone();
                    std::thread::spawn(move || {
                        let c = IpamAgentClient::new(p, Duration::from_secs(30));
                        let h = format!("burst-{round}-{i}");
                        b.wait();
                        let t = Instant::now();
                        if op == "assign" {
                            c.assign(&req(&h)).unwrap();
                        } else {
                            assert_eq!(c.release_handle("node1", &h).unwrap(), 1);
                        }
                        t.elapsed()
                    })
                })
                .collect();
            let v = threads.into_iter().map(|t| t.join().unwrap()).collect();
            (v, wall.elapsed())
        };
        let (a, aw) = run("assign");
        line(&format!("30-pod burst assign (round {round})"), a);
        println!("{:<34} wall={aw:.3?}", "");
        let (r, rw) = run("release");
        line(&format!("30-pod burst release (round {round})"), r);
        println!("{:<34} wall={rw:.3?}", "");
    }
}

async fn run_on(store: Arc<dyn Datastore>, dir: &Path) {
    seed(&store).await;
    let mut registry = prometheus_client::registry::Registry::default();
    let service = Arc::new(IpamService::new(store, "node1", &mut registry).unwrap());
    let path = dir.join("ipam.sock");
    let listener = ipam_service::bind_socket(&path).unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(ipam_service::run(
        listener,
        path.clone(),
        service.clone(),
        shutdown.clone(),
    ));
    let p = path.clone();
    tokio::task::spawn_blocking(move || bench_client(&p))
        .await
        .unwrap();
    println!("allocator: {:?}", service.allocator().stats());
    shutdown.cancel();
    server.await.unwrap();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        println!("== embedded store ==");
        let store: Arc<dyn Datastore> =
            Arc::new(EmbeddedDatastore::open(dir.path().join("b.db")).unwrap());
        run_on(store, dir.path()).await;
        if std::env::var_os("CALICO_BENCH_NO_ETCD").is_some() {
            return;
        }
        match calico_datastore::testing::EtcdServer::start() {
            Ok(etcd) => {
                println!("== etcd (local, one member) ==");
                let store: Arc<dyn Datastore> = Arc::new(
                    calico_datastore::etcd::EtcdDatastore::connect(etcd.config())
                        .await
                        .unwrap(),
                );
                let d2 = tempfile::tempdir().unwrap();
                run_on(store, d2.path()).await;
            }
            Err(e) => println!("etcd skipped: {e}"),
        }
    });
}
