//! The node's IPAM service over its real Unix socket, against the embedded store: a burst of
//! concurrent assigns, releases, and the IPAM records' consistency afterwards.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use calico_api::Resource;
use calico_client::Client;
use calico_datastore::{Datastore, EmbeddedDatastore};
use calico_ipam::model::{self, AllocationBlock, IpamHandle};
use calico_ipam_rpc::{AssignRequest, IpamAgentClient, codes};
use calico_node::ipam_service::{self, IpamService, ServiceError};
use ipnet::IpNet;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn seed(store: &Arc<dyn Datastore>, pool_cidr: &str) {
    let c = Client::new(store.clone());
    c.create(
        Resource::from_json_value(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "Node",
            "metadata": {"name": "node1"},
            "spec": {"bgp": {"ipv4Address": "10.0.0.5/24"}}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    c.create(
        Resource::from_json_value(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
            "metadata": {"name": "pool1"},
            "spec": {"cidr": pool_cidr, "blockSize": 26}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
}

/// Live allocations per handle, checked against the handle records: every handle's per-block
/// counts equal what the blocks hold, and no empty handle is stored.
async fn consistent(store: &dyn Datastore) -> BTreeMap<String, u64> {
    let snap = store.list(model::IPAM_PREFIX).await.unwrap();
    let mut from_blocks: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut from_handles: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for kv in &snap.kvs {
        if kv.key.starts_with("/calico/ipam/v2/assignment/") {
            let b: AllocationBlock = model::decode(&kv.key, &kv.value).unwrap();
            let used = b.allocations.iter().flatten().count();
            assert_eq!(used + b.unallocated.len(), b.num_addresses(), "{}", b.cidr);
            for (h, n) in b.count_by_handle() {
                from_blocks
                    .entry(h)
                    .or_default()
                    .insert(b.cidr.to_string(), n);
            }
        } else if let Some(h) = kv.key.strip_prefix(model::HANDLE_PREFIX) {
            let rec: IpamHandle = model::decode(&kv.key, &kv.value).unwrap();
            assert!(
                rec.block.values().sum::<u64>() > 0,
                "empty handle {h} stored"
            );
            from_handles.insert(h.to_string(), rec.block.clone());
        }
    }
    assert_eq!(from_blocks, from_handles);
    from_blocks
        .into_iter()
        .map(|(h, m)| (h, m.values().sum()))
        .collect()
}

fn req(handle: &str) -> AssignRequest {
    let mut attrs = BTreeMap::new();
    attrs.insert("node".to_string(), "node1".to_string());
    AssignRequest {
        node: "node1".into(),
        handle_id: handle.into(),
        num4: 1,
        num6: 0,
        attrs,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_over_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Datastore> =
        Arc::new(EmbeddedDatastore::open(dir.path().join("s.db")).unwrap());
    seed(&store, "10.244.0.0/16").await;

    let mut registry = prometheus_client::registry::Registry::default();
    let service = Arc::new(IpamService::new(store.clone(), "node1", &mut registry).unwrap());
    // The parent directory does not exist yet: the service creates it.
    let path = dir.path().join("run/calico/ipam.sock");
    let listener = ipam_service::bind_socket(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(ipam_service::run(
        listener,
        path.clone(),
        service.clone(),
        shutdown.clone(),
    ));

    // A second agent cannot take the socket over while this one serves.
    assert!(matches!(
        ipam_service::bind_socket(&path),
        Err(ServiceError::Socket { .. })
    ));

    // 30 plugins at once.
    let p = path.clone();
    let assigned: Vec<(String, IpNet)> = tokio::task::spawn_blocking(move || {
        let barrier = Arc::new(std::sync::Barrier::new(30));
        let threads: Vec<_> = (0..30)
            .map(|i| {
                let p = p.clone();
                let b = barrier.clone();
                std::thread::spawn(move || {
                    let c = IpamAgentClient::new(p, Duration::from_secs(30));
                    let h = format!("k8s-pod-network.c{i:02}");
                    b.wait();
                    let a = c.assign(&req(&h)).unwrap();
                    assert_eq!(a.ipv4.len(), 1);
                    assert!(a.ipv6.is_empty());
                    (h, a.ipv4[0])
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    })
    .await
    .unwrap();
    let pool: IpNet = "10.244.0.0/16".parse().unwrap();
    let distinct: BTreeSet<IpAddr> = assigned.iter().map(|(_, n)| n.addr()).collect();
    assert_eq!(distinct.len(), 30);
    for (_, n) in &assigned {
        assert_eq!(n.prefix_len(), 26, "{n}: Calico returns the block's prefix");
        assert!(pool.contains(&n.addr()), "{n}");
    }
    service.allocator().settle().await.unwrap();
    let held = consistent(store.as_ref()).await;
    assert_eq!(held.len(), 30);
    assert!(held.values().all(|n| *n == 1));
    let stats = service.allocator().stats();
    assert_eq!(stats.requests, 30);
    assert!(stats.commits < 30, "not batched: {stats:?}");

    // Release: half by handle, half by address under their handle, one stale attempt.
    let c = IpamAgentClient::new(&path, Duration::from_secs(30));
    let (by_handle, by_ip) = assigned.split_at(15);
    for (h, _) in by_handle {
        assert_eq!(c.release_handle("node1", h).unwrap(), 1);
        assert_eq!(c.release_handle("node1", h).unwrap(), 0);
    }
    let (h0, ip0) = &by_ip[0];
    let err = c
        .release_ips("node1", &[ip0.addr()], Some("someone-else"))
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::STALE_RELEASE), "{err}");
    for (h, n) in by_ip {
        assert_eq!(
            c.release_ips("node1", &[n.addr()], Some(h)).unwrap(),
            Vec::<IpAddr>::new()
        );
    }
    // Released addresses are reported as unallocated now.
    assert_eq!(
        c.release_ips("node1", &[ip0.addr()], Some(h0)).unwrap(),
        vec![ip0.addr()]
    );
    service.allocator().settle().await.unwrap();
    assert!(consistent(store.as_ref()).await.is_empty());

    // The service's metrics were counted.
    let text = calico_node::metrics::render(&registry).unwrap();
    assert!(
        text.contains("calico_node_ipam_requests_total{op=\"assign\",result=\"ok\"} 30"),
        "{text}"
    );
    assert!(
        text.contains(
            "calico_node_ipam_requests_total{op=\"release_ips\",result=\"stale_release\"} 1"
        ),
        "{text}"
    );

    // Shutdown removes the socket.
    shutdown.cancel();
    server.await.unwrap();
    assert!(!path.exists());
    assert!(matches!(
        c.ping(),
        Err(calico_ipam_rpc::RpcError::Unreachable { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_codes() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Datastore> =
        Arc::new(EmbeddedDatastore::open(dir.path().join("s.db")).unwrap());
    // A /26 pool: one block of 64 addresses.
    seed(&store, "10.9.0.0/26").await;
    let mut registry = prometheus_client::registry::Registry::default();
    let service = Arc::new(IpamService::new(store.clone(), "node1", &mut registry).unwrap());
    let path = dir.path().join("ipam.sock");
    let listener = ipam_service::bind_socket(&path).unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(ipam_service::run(
        listener,
        path.clone(),
        service,
        shutdown.clone(),
    ));
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        let c = IpamAgentClient::new(&p, Duration::from_secs(30));
        assert_eq!(c.ping().unwrap(), "node1");
        let mut big = req("big");
        big.num4 = 64;
        assert_eq!(c.assign(&big).unwrap().ipv4.len(), 64);
        let err = c.assign(&req("one-more")).unwrap_err();
        assert_eq!(err.code(), Some(codes::POOL_EXHAUSTED), "{err}");
        let mut other_pool = req("x");
        other_pool.ipv4_pools = vec!["10.99.0.0/16".parse().unwrap()];
        let err = c.assign(&other_pool).unwrap_err();
        assert_eq!(err.code(), Some(codes::NO_POOL), "{err}");
        let mut wrong = req("y");
        wrong.node = "node2".into();
        assert_eq!(
            c.assign(&wrong).unwrap_err().code(),
            Some(codes::WRONG_NODE)
        );
    })
    .await
    .unwrap();
    shutdown.cancel();
    server.await.unwrap();
}

#[tokio::test]
async fn socket_path_handling() {
    let dir = tempfile::tempdir().unwrap();
    // A stale socket (its listener is gone) is replaced.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let l = ipam_service::bind_socket(&stale).unwrap();
    drop(l);
    // A regular file is never removed.
    let file = dir.path().join("file.sock");
    std::fs::write(&file, "keep me").unwrap();
    let err = ipam_service::bind_socket(&file).unwrap_err().to_string();
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

async fn create_pool(store: &Arc<dyn Datastore>, name: &str, spec: serde_json::Value) {
    Client::new(store.clone())
        .create(
            Resource::from_json_value(json!({
                "apiVersion": "projectcalico.org/v3", "kind": "IPPool",
                "metadata": {"name": name}, "spec": spec
            }))
            .unwrap(),
        )
        .await
        .unwrap();
}

fn ips_req(handle: &str, ips: &[&str]) -> calico_ipam_rpc::AssignIpsRequest {
    calico_ipam_rpc::AssignIpsRequest {
        node: "node1".into(),
        handle_id: handle.into(),
        ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        attrs: [("pod".to_string(), "web".to_string())]
            .into_iter()
            .collect(),
    }
}

/// `IP=` requests (Calico's AssignIP per address): exact addresses, all or nothing, error codes,
/// and coexistence with the batching allocator working on the same block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specific_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Datastore> =
        Arc::new(EmbeddedDatastore::open(dir.path().join("s.db")).unwrap());
    // One /26 block of IPv4, an IPv6 pool, and a pool reserved for tunnel addresses.
    seed(&store, "10.9.0.0/26").await;
    create_pool(
        &store,
        "pool6",
        json!({"cidr": "fd00:9::/120", "blockSize": 122}),
    )
    .await;
    create_pool(
        &store,
        "tunnels",
        json!({"cidr": "10.77.0.0/24", "blockSize": 26, "allowedUses": ["Tunnel"]}),
    )
    .await;
    let mut registry = prometheus_client::registry::Registry::default();
    let service = Arc::new(IpamService::new(store.clone(), "node1", &mut registry).unwrap());
    let path = dir.path().join("ipam.sock");
    let listener = ipam_service::bind_socket(&path).unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(ipam_service::run(
        listener,
        path.clone(),
        service.clone(),
        shutdown.clone(),
    ));

    let p = path.clone();
    let auto = tokio::task::spawn_blocking(move || {
        let c = IpamAgentClient::new(&p, Duration::from_secs(30));
        // The batch takes the block first (and caches it).
        let first = c.assign(&req("auto-1")).unwrap().ipv4[0];

        // Exactly the requested address, as a host prefix; dual stack in one request.
        let a = c
            .assign_ips(&ips_req("net.c1", &["10.9.0.40", "fd00:9::40"]))
            .unwrap();
        assert_eq!(a.ipv4, vec!["10.9.0.40/32".parse::<IpNet>().unwrap()]);
        assert_eq!(a.ipv6, vec!["fd00:9::40/128".parse::<IpNet>().unwrap()]);

        // Refusals, each with its code; the failing handle holds nothing afterwards, and an
        // address assigned before the failing one was released again.
        let cases: &[(&str, &[&str], &str, &str)] = &[
            (
                "in use",
                &["10.9.0.40"],
                codes::ADDRESS_IN_USE,
                "already assigned",
            ),
            (
                "second in use",
                &["10.9.0.41", "fd00:9::40"],
                codes::ADDRESS_IN_USE,
                "fd00:9::40",
            ),
            (
                "no pool",
                &["192.168.7.7"],
                codes::NO_POOL,
                "not in a configured pool",
            ),
            (
                "second without pool",
                &["10.9.0.42", "fd00:77::1"],
                codes::NO_POOL,
                "fd00:77::1",
            ),
            (
                "pool for tunnels only",
                &["10.77.0.9"],
                codes::INVALID_ARGUMENT,
                "Workload",
            ),
        ];
        for (name, ips, code, needle) in cases {
            let err = c.assign_ips(&ips_req("net.bad", ips)).unwrap_err();
            assert_eq!(err.code(), Some(*code), "{name}: {err}");
            assert!(err.to_string().contains(needle), "{name}: {err}");
            assert_eq!(c.release_handle("node1", "net.bad").unwrap(), 0, "{name}");
        }
        // 10.9.0.41 and 10.9.0.42 were given back: they can be had now.
        let b = c
            .assign_ips(&ips_req("net.c2", &["10.9.0.41", "10.9.0.42"]))
            .unwrap();
        assert_eq!(b.ipv4.len(), 2);
        first
    })
    .await
    .unwrap();

    service.allocator().settle().await.unwrap();
    let held = consistent(store.as_ref()).await;
    assert_eq!(
        held,
        [
            ("auto-1".to_string(), 1),
            ("net.c1".to_string(), 2),
            ("net.c2".to_string(), 2)
        ]
        .into_iter()
        .collect()
    );

    // The batch, which cached the block before the direct assignments, never hands those
    // addresses out: the rest of the block (64 - 4) is served, then it is exhausted.
    let p = path.clone();
    tokio::task::spawn_blocking(move || {
        let c = IpamAgentClient::new(&p, Duration::from_secs(30));
        let mut big = req("auto-2");
        big.num4 = 60;
        let got: BTreeSet<IpAddr> = c
            .assign(&big)
            .unwrap()
            .ipv4
            .iter()
            .map(|n| n.addr())
            .collect();
        assert_eq!(got.len(), 60);
        for taken in [
            auto.addr(),
            "10.9.0.40".parse().unwrap(),
            "10.9.0.41".parse().unwrap(),
        ] {
            assert!(!got.contains(&taken), "{taken} handed out twice");
        }
        let err = c.assign(&req("auto-3")).unwrap_err();
        assert_eq!(err.code(), Some(codes::POOL_EXHAUSTED), "{err}");
        // DEL of a specific-address workload releases both families.
        assert_eq!(c.release_handle("node1", "net.c1").unwrap(), 2);
        assert_eq!(
            c.assign_ips(&ips_req("net.c3", &["10.9.0.40"]))
                .unwrap()
                .ipv4,
            vec!["10.9.0.40/32".parse::<IpNet>().unwrap()]
        );
    })
    .await
    .unwrap();

    let text = calico_node::metrics::render(&registry).unwrap();
    for line in [
        "calico_node_ipam_requests_total{op=\"assign_ips\",result=\"ok\"} 3",
        "calico_node_ipam_requests_total{op=\"assign_ips\",result=\"address_in_use\"} 2",
        "calico_node_ipam_requests_total{op=\"assign_ips\",result=\"no_pool\"} 2",
        "calico_node_ipam_requests_total{op=\"assign_ips\",result=\"invalid_argument\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    shutdown.cancel();
    server.await.unwrap();
}
