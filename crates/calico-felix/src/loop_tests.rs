//! The Felix loop against the embedded datastore and an in-memory kernel.

use super::*;
use crate::manager::fake::FakeDataplane;
use crate::routes::KernelRouteKind;
use calico_datastore::EmbeddedDatastore;

fn wep_json(node: &str, iface: &str, ip: &str) -> String {
    format!(
        r#"{{"apiVersion":"projectcalico.org/v3","kind":"WorkloadEndpoint","metadata":{{"name":"x","namespace":"default"}},"spec":{{"node":"{node}","interfaceName":"{iface}","ipNetworks":["{ip}/32"],"mac":"02:00:00:00:00:01"}}}}"#
    )
}

fn block_json(cidr: &str, node: &str) -> String {
    format!(
        r#"{{"cidr":"{cidr}","affinity":"host:{node}","allocations":[null],"unallocated":[0],"attributes":null,"deleted":false}}"#
    )
}

async fn wait_for<F: Fn(&crate::manager::fake::FakeKernel) -> bool>(
    dp: &FakeDataplane,
    what: &str,
    f: F,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if f(&dp.0.lock().unwrap()) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn has_route(k: &crate::manager::fake::FakeKernel, dst: &str, kind: KernelRouteKind) -> bool {
    let dst: ipnet::IpNet = dst.parse().unwrap();
    k.routes
        .iter()
        .any(|r| r.dst == dst && r.kind == kind && r.protocol == FELIX_ROUTE_PROTOCOL)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_endpoints_and_blocks_and_repairs_drift() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Datastore> =
        Arc::new(EmbeddedDatastore::open(dir.path().join("c.db")).unwrap());
    let wep_key = format!("{}default/n1-k8s-a-eth0", model::WEP_PREFIX);
    store
        .put(
            &wep_key,
            wep_json("n1", "cali1", "10.0.0.1").into_bytes(),
            None,
        )
        .await
        .unwrap();
    store
        .put(
            &format!("{}default/n2-k8s-b-eth0", model::WEP_PREFIX),
            wep_json("n2", "cali2", "10.0.1.1").into_bytes(),
            None,
        )
        .await
        .unwrap();
    let dp = FakeDataplane::default();
    dp.0.lock().unwrap().links.insert("cali1".into(), 4);
    let mut cfg = FelixConfig::new("n1");
    cfg.route_refresh_interval = Duration::from_millis(300);
    cfg.retry_interval = Duration::from_millis(50);
    let mut registry = Registry::default();
    let felix = Felix::with_dataplane(cfg, Arc::clone(&store), &mut registry, Box::new(dp.clone()));
    let mut status = felix.status();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(felix.run(shutdown.clone()));

    wait_for(&dp, "workload route", |k| {
        has_route(k, "10.0.0.1/32", KernelRouteKind::Unicast)
    })
    .await;
    assert!(
        !dp.0
            .lock()
            .unwrap()
            .routes
            .iter()
            .any(|r| r.dst.to_string() == "10.0.1.1/32"),
        "remote endpoint routed"
    );
    status.wait_for(|s| s.ready).await.unwrap();
    assert_eq!(dp.0.lock().unwrap().forwarding, Some((true, true)));

    // A block claimed by this node gets a blackhole; another node's does not.
    store
        .put(
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26",
            block_json("10.0.0.0/26", "n1").into_bytes(),
            None,
        )
        .await
        .unwrap();
    store
        .put(
            "/calico/ipam/v2/assignment/ipv4/block/10.0.1.0-26",
            block_json("10.0.1.0/26", "n2").into_bytes(),
            None,
        )
        .await
        .unwrap();
    wait_for(&dp, "blackhole", |k| {
        has_route(k, "10.0.0.0/26", KernelRouteKind::Blackhole)
    })
    .await;
    assert!(!has_route(
        &dp.0.lock().unwrap(),
        "10.0.1.0/26",
        KernelRouteKind::Blackhole
    ));

    // Drift: someone deletes our route; the periodic refresh restores it.
    dp.0.lock()
        .unwrap()
        .routes
        .retain(|r| r.dst.to_string() != "10.0.0.1/32");
    wait_for(&dp, "repaired route", |k| {
        has_route(k, "10.0.0.1/32", KernelRouteKind::Unicast)
    })
    .await;

    // An endpoint whose interface appears later is routed once it exists (retry).
    let key3 = format!("{}default/n1-k8s-c-eth0", model::WEP_PREFIX);
    store
        .put(
            &key3,
            wep_json("n1", "cali3", "10.0.0.3").into_bytes(),
            None,
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!has_route(
        &dp.0.lock().unwrap(),
        "10.0.0.3/32",
        KernelRouteKind::Unicast
    ));
    dp.0.lock().unwrap().links.insert("cali3".into(), 9);
    wait_for(&dp, "late interface", |k| {
        has_route(k, "10.0.0.3/32", KernelRouteKind::Unicast)
    })
    .await;

    // Deleting the endpoint and releasing the block removes exactly our routes.
    let foreign = routes::KernelRoute {
        dst: "172.16.0.0/16".parse().unwrap(),
        kind: KernelRouteKind::Unicast,
        table: routes::MAIN_TABLE,
        protocol: 2,
        link_scope: true,
        oif: Some(1),
        gateway: None,
        metric: 0,
    };
    dp.0.lock().unwrap().routes.push(foreign.clone());
    store.delete(&wep_key, None).await.unwrap();
    store
        .delete("/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26", None)
        .await
        .unwrap();
    wait_for(&dp, "removal", |k| {
        !has_route(k, "10.0.0.1/32", KernelRouteKind::Unicast)
            && !has_route(k, "10.0.0.0/26", KernelRouteKind::Blackhole)
    })
    .await;
    assert!(
        dp.0.lock().unwrap().routes.contains(&foreign),
        "foreign route removed"
    );

    let text = {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(&mut s, &registry).unwrap();
        s
    };
    assert!(text.contains("felix_active_local_endpoints 1"), "{text}");
    assert!(
        text.contains("felix_cluster_num_workload_endpoints 2"),
        "{text}"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kernel_read_failure_marks_not_ready_then_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Datastore> =
        Arc::new(EmbeddedDatastore::open(dir.path().join("c.db")).unwrap());
    let dp = FakeDataplane::default();
    dp.0.lock().unwrap().fail_dump = true;
    let mut cfg = FelixConfig::new("n1");
    cfg.retry_interval = Duration::from_millis(30);
    let mut registry = Registry::default();
    let felix = Felix::with_dataplane(cfg, store, &mut registry, Box::new(dp.clone()));
    let mut status = felix.status();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(felix.run(shutdown.clone()));
    status
        .wait_for(|s| !s.ready && s.detail.contains("injected"))
        .await
        .unwrap();
    dp.0.lock().unwrap().fail_dump = false;
    tokio::time::timeout(Duration::from_secs(5), status.wait_for(|s| s.ready))
        .await
        .unwrap()
        .unwrap();
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
