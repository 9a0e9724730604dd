//! The datastore-backed allocator against the embedded store and a real etcd (skipped with a
//! note when etcd is not installed, unless `CI` is set). Each scenario runs on both backends;
//! behaviour follows Calico's `ipam_test.go` where it applies.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use calico_datastore::Datastore;
use calico_ipam::block::ReleaseOptions;
use calico_ipam::blockgen::block_order;
use calico_ipam::model::{self, AffinityOwner, AffinityState, BlockAffinity, IpamConfig};
use calico_ipam::{AssignArgs, AutoAssignArgs, IntendedUse, IpamError};
use chrono::{DateTime, Duration, TimeZone, Utc};
use common::*;
use ipnet::IpNet;
use serde_json::json;

async fn basic_setup(store: &dyn Datastore) {
    put_pool(
        store,
        "pool4",
        json!({"cidr": "10.0.0.0/24", "blockSize": 26}),
    )
    .await;
    put_pool(
        store,
        "pool6",
        json!({"cidr": "fd00::/120", "blockSize": 122}),
    )
    .await;
    put_node(store, "node1", &[("zone", "a")]).await;
    put_node(store, "node2", &[("zone", "b")]).await;
}

async fn auto_assign_claims_a_block_in_calico_order(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    let c = client(&store);
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "k8s-pod-network.a", 3))
        .await
        .unwrap();
    let first = block_order(&net("10.0.0.0/24"), 26, "node1", 0)
        .next()
        .unwrap();
    assert_eq!(got.ipv4.len(), 3);
    for (i, n) in got.ipv4.iter().enumerate() {
        assert_eq!(n.prefix_len(), 26, "block-masked like Calico");
        assert_eq!(n.trunc(), first);
        assert_eq!(
            n.addr(),
            block(store.as_ref(), &first.to_string())
                .await
                .unwrap()
                .ip_at(i)
        );
    }
    let b = block(store.as_ref(), &first.to_string()).await.unwrap();
    assert_eq!(b.affinity.as_deref(), Some("host:node1"));
    assert!(b.affinity_claim_time.is_some());
    let aff = store
        .get(&model::affinity_key(&AffinityOwner::host("node1"), &first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        BlockAffinity::decode(&aff.key, &aff.value).unwrap().state,
        AffinityState::Confirmed
    );
    let h = handle(store.as_ref(), "k8s-pod-network.a").await.unwrap();
    assert_eq!(h.block, BTreeMap::from([(first.to_string(), 3)]));
    // A second request on the same node uses the same block.
    let more = c
        .auto_assign(&AutoAssignArgs::v4("node1", "k8s-pod-network.b", 2))
        .await
        .unwrap();
    assert!(more.ipv4.iter().all(|n| n.trunc() == first));
    assert_eq!(
        check_consistency(store.as_ref())
            .await
            .values()
            .sum::<u64>(),
        5
    );
}

async fn release_by_handle_and_fifo_reuse(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    let c = client(&store);
    let a = c
        .auto_assign(&AutoAssignArgs::v4("node1", "a", 2))
        .await
        .unwrap();
    assert_eq!(
        c.ips_by_handle("a").await.unwrap(),
        a.ipv4.iter().map(|n| n.addr()).collect::<Vec<_>>()
    );
    assert_eq!(c.release_by_handle("a").await.unwrap(), 2);
    assert!(
        handle(store.as_ref(), "a").await.is_none(),
        "handle deleted"
    );
    assert_eq!(c.release_by_handle("a").await.unwrap(), 0, "idempotent");
    // Released addresses go to the tail: the next allocation gets fresh ones.
    let b = c
        .auto_assign(&AutoAssignArgs::v4("node1", "b", 1))
        .await
        .unwrap();
    assert!(!a.ipv4.iter().any(|n| n.addr() == b.ipv4[0].addr()));
    let blk = block(store.as_ref(), &b.ipv4[0].trunc().to_string())
        .await
        .unwrap();
    assert_eq!(
        blk.affinity.as_deref(),
        Some("host:node1"),
        "affine block stays"
    );
    check_consistency(store.as_ref()).await;
}

async fn claims_more_blocks_then_hits_the_block_limit(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    let c = client(&store);
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "big", 70))
        .await
        .unwrap();
    let blocks: std::collections::BTreeSet<IpNet> = got.ipv4.iter().map(|n| n.trunc()).collect();
    assert_eq!(blocks.len(), 2);
    c.set_config(&IpamConfig {
        strict_affinity: true,
        max_blocks_per_host: 2,
        ..IpamConfig::default()
    })
    .await
    .unwrap();
    let err = c
        .auto_assign(&AutoAssignArgs::v4("node1", "more", 60))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::BlockLimit { limit: 2 }), "{err}");
    assert!(
        handle(store.as_ref(), "more").await.is_none(),
        "nothing persisted on failure"
    );
    // A per-request limit below the configured one wins.
    let mut args = AutoAssignArgs::v4("node2", "n2", 1);
    args.max_blocks_per_host = 1;
    c.auto_assign(&args).await.unwrap();
    args.handle_id = Some("n2b".into());
    args.num4 = 64;
    assert!(matches!(
        c.auto_assign(&args).await,
        Err(IpamError::BlockLimit { limit: 1 })
    ));
    check_consistency(store.as_ref()).await;
}

async fn borrowing_and_strict_affinity(store: Arc<dyn Datastore>) {
    put_pool(
        store.as_ref(),
        "tiny",
        json!({"cidr": "10.1.0.0/26", "blockSize": 26}),
    )
    .await;
    put_node(store.as_ref(), "node1", &[]).await;
    put_node(store.as_ref(), "node2", &[]).await;
    let c = client(&store);
    c.auto_assign(&AutoAssignArgs::v4("node1", "a", 1))
        .await
        .unwrap();
    // node2 cannot claim a block (none left) and borrows from node1's.
    let b = c
        .auto_assign(&AutoAssignArgs::v4("node2", "b", 1))
        .await
        .unwrap();
    assert_eq!(b.ipv4[0].trunc(), net("10.1.0.0/26"));
    let blk = block(store.as_ref(), "10.1.0.0/26").await.unwrap();
    assert_eq!(
        blk.affinity.as_deref(),
        Some("host:node1"),
        "borrowing keeps the affinity"
    );
    c.set_config(&IpamConfig {
        strict_affinity: true,
        ..IpamConfig::default()
    })
    .await
    .unwrap();
    let err = c
        .auto_assign(&AutoAssignArgs::v4("node2", "c", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            IpamError::Exhausted {
                requested: 1,
                assigned: 0,
                ..
            }
        ),
        "{err}"
    );
    // Exhaustion: 64 addresses, 2 used.
    c.set_config(&IpamConfig::default()).await.unwrap();
    c.auto_assign(&AutoAssignArgs::v4("node1", "d", 62))
        .await
        .unwrap();
    assert!(matches!(
        c.auto_assign(&AutoAssignArgs::v4("node2", "e", 1)).await,
        Err(IpamError::Exhausted { .. })
    ));
    check_consistency(store.as_ref()).await;
}

async fn assign_specific_ip(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    put_pool(
        store.as_ref(),
        "lb",
        json!({"cidr": "10.9.0.0/24", "allowedUses": ["LoadBalancer"]}),
    )
    .await;
    let c = client(&store);
    let args = |ipa: &str, h: &str| AssignArgs {
        ip: ip(ipa),
        handle_id: Some(h.into()),
        attrs: BTreeMap::from([("pod".to_string(), "p".to_string())]),
        hostname: "node1".into(),
        host_reserved: None,
        intended_use: Some(IntendedUse::Workload),
    };
    c.assign_ip(&args("10.0.0.130", "x")).await.unwrap();
    let b = block(store.as_ref(), "10.0.0.128/26").await.unwrap();
    assert_eq!(
        b.affinity.as_deref(),
        Some("host:node1"),
        "the block was claimed for the host"
    );
    assert_eq!(b.ips_by_handle("x"), vec![ip("10.0.0.130")]);
    assert!(matches!(
        c.assign_ip(&args("10.0.0.130", "y")).await,
        Err(IpamError::AlreadyAssigned(_))
    ));
    assert!(matches!(
        c.assign_ip(&args("192.168.0.1", "y")).await,
        Err(IpamError::NotInPool(_))
    ));
    assert!(matches!(
        c.assign_ip(&args("10.9.0.1", "y")).await,
        Err(IpamError::UseNotAllowed { .. })
    ));
    // Auto-assign on node1 now never hands out .130.
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "z", 64))
        .await
        .unwrap();
    assert!(!got.ipv4.iter().any(|n| n.addr() == ip("10.0.0.130")));
    check_consistency(store.as_ref()).await;
}

async fn release_ips_checks_handles_and_sequence_numbers(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    let c = client(&store);
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "h1", 2))
        .await
        .unwrap();
    let (a, b) = (got.ipv4[0].addr(), got.ipv4[1].addr());
    let blk = block(store.as_ref(), &got.ipv4[0].trunc().to_string())
        .await
        .unwrap();
    let seq = blk.sequence_of(blk.ordinal_of(a).unwrap());
    let wrong_handle = ReleaseOptions {
        address: a,
        handle: Some("other".into()),
        sequence_number: None,
    };
    assert!(matches!(
        c.release_ips(&[wrong_handle]).await,
        Err(IpamError::BadHandle { .. })
    ));
    let wrong_seq = ReleaseOptions {
        address: a,
        handle: Some("h1".into()),
        sequence_number: Some(seq + 1),
    };
    assert!(matches!(
        c.release_ips(&[wrong_seq]).await,
        Err(IpamError::BadSequenceNumber { .. })
    ));
    let ok = ReleaseOptions {
        address: a,
        handle: Some("h1".into()),
        sequence_number: Some(seq),
    };
    assert!(c.release_ips(&[ok]).await.unwrap().is_empty());
    assert_eq!(
        c.release_ips(&[ReleaseOptions::address(a)]).await.unwrap(),
        vec![a],
        "idempotent"
    );
    assert_eq!(handle(store.as_ref(), "h1").await.unwrap().total(), 1);
    // Outside every block: reported as not allocated.
    assert_eq!(
        c.release_ips(&[ReleaseOptions::address(ip("10.200.0.1"))])
            .await
            .unwrap(),
        vec![ip("10.200.0.1")]
    );
    c.release_ips(&[ReleaseOptions::address(b)]).await.unwrap();
    assert!(handle(store.as_ref(), "h1").await.is_none());
    check_consistency(store.as_ref()).await;
}

async fn dual_stack_is_all_or_nothing(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    put_pool(
        store.as_ref(),
        "pool6",
        json!({"cidr": "fd00::/122", "blockSize": 122}),
    )
    .await;
    let c = client(&store);
    let mut args = AutoAssignArgs::v4("node1", "ds", 1);
    args.num6 = 1;
    let got = c.auto_assign(&args).await.unwrap();
    assert_eq!((got.ipv4.len(), got.ipv6.len()), (1, 1));
    assert_eq!(handle(store.as_ref(), "ds").await.unwrap().total(), 2);
    // Fill the only IPv6 block, then ask for 1+1: fails, and no IPv4 address is taken.
    let mut fill = AutoAssignArgs::v4("node1", "fill", 0);
    fill.num6 = 63;
    c.auto_assign(&fill).await.unwrap();
    let before = check_consistency(store.as_ref()).await;
    args.handle_id = Some("ds2".into());
    assert!(matches!(
        c.auto_assign(&args).await,
        Err(IpamError::Exhausted { version: 6, .. })
    ));
    assert!(handle(store.as_ref(), "ds2").await.is_none());
    assert_eq!(
        check_consistency(store.as_ref()).await,
        before,
        "IPv4 half was not persisted"
    );
}

async fn heals_half_finished_claims(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    let c = client(&store);
    let node1 = AffinityOwner::host("node1");
    // 1. A pending affinity without its block (a Calico process died between the steps).
    let cidr = net("10.0.0.192/26");
    store
        .put(
            &model::affinity_key(&node1, &cidr),
            br#"{"state":"pending","deleted":false}"#.to_vec(),
            None,
        )
        .await
        .unwrap();
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "h", 1))
        .await
        .unwrap();
    assert_eq!(
        got.ipv4[0].trunc(),
        cidr,
        "the affinity's block was created and used"
    );
    let aff = store
        .get(&model::affinity_key(&node1, &cidr))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        BlockAffinity::decode(&aff.key, &aff.value).unwrap().state,
        AffinityState::Confirmed
    );
    // 2. A stale affinity: node2 believes it owns node1's block.
    let node2 = AffinityOwner::host("node2");
    store
        .put(
            &model::affinity_key(&node2, &cidr),
            br#"{"state":"confirmed","deleted":false}"#.to_vec(),
            None,
        )
        .await
        .unwrap();
    let got2 = c
        .auto_assign(&AutoAssignArgs::v4("node2", "h2", 1))
        .await
        .unwrap();
    assert_ne!(got2.ipv4[0].trunc(), cidr);
    assert!(
        store
            .get(&model::affinity_key(&node2, &cidr))
            .await
            .unwrap()
            .is_none(),
        "stale affinity removed"
    );
    // 3. A block affine to node1 whose affinity key vanished: claiming it (as find-usable-block
    //    does when it walks onto it) restores the affinity instead of failing.
    store
        .delete(&model::affinity_key(&node1, &cidr), None)
        .await
        .unwrap();
    assert_eq!(
        c.claim_block(&node1, &cidr, None).await.unwrap(),
        calico_ipam::client::ClaimOutcome::AlreadyOurs
    );
    assert!(
        store
            .get(&model::affinity_key(&node1, &cidr))
            .await
            .unwrap()
            .is_some(),
        "affinity healed"
    );
    assert_eq!(
        c.claim_block(&node2, &cidr, None).await.unwrap(),
        calico_ipam::client::ClaimOutcome::TakenByOther
    );
    // 4. A legacy empty affinity value counts as confirmed.
    store
        .put(&model::affinity_key(&node1, &cidr), Vec::new(), None)
        .await
        .unwrap();
    let got4 = c
        .auto_assign(&AutoAssignArgs::v4("node1", "h4", 1))
        .await
        .unwrap();
    assert_eq!(got4.ipv4[0].trunc(), cidr);
    check_consistency(store.as_ref()).await;
}

async fn release_block_affinity_rules(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    let c = client(&store);
    let node1 = AffinityOwner::host("node1");
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "h", 1))
        .await
        .unwrap();
    let cidr = got.ipv4[0].trunc();
    assert!(matches!(
        c.release_block_affinity(&node1, &cidr, true).await,
        Err(IpamError::BlockNotEmpty { .. })
    ));
    assert!(matches!(
        c.release_block_affinity(&AffinityOwner::host("node2"), &cidr, false)
            .await,
        Err(IpamError::NotOwner { .. })
    ));
    c.release_block_affinity(&node1, &cidr, false)
        .await
        .unwrap();
    let b = block(store.as_ref(), &cidr.to_string()).await.unwrap();
    assert_eq!(
        b.affinity, None,
        "non-empty block keeps its addresses, loses its affinity"
    );
    assert!(
        store
            .get(&model::affinity_key(&node1, &cidr))
            .await
            .unwrap()
            .is_none()
    );
    // Releasing the last address of an unowned block deletes the block.
    c.release_by_handle("h").await.unwrap();
    assert!(block(store.as_ref(), &cidr.to_string()).await.is_none());
    // An empty affine block: released with the block.
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "h2", 1))
        .await
        .unwrap();
    c.release_by_handle("h2").await.unwrap();
    let released = c.release_host_affinities(&node1, true).await.unwrap();
    assert_eq!(released, vec![got.ipv4[0].trunc()]);
    assert!(
        block(store.as_ref(), &got.ipv4[0].trunc().to_string())
            .await
            .is_none()
    );
    check_consistency(store.as_ref()).await;
}

async fn reservations_and_selectors(store: Arc<dyn Datastore>) {
    put_pool(
        store.as_ref(),
        "a",
        json!({"cidr": "10.2.0.0/26", "nodeSelector": "zone == 'a'"}),
    )
    .await;
    put_pool(
        store.as_ref(),
        "b",
        json!({"cidr": "10.3.0.0/26", "nodeSelector": "zone == 'b'"}),
    )
    .await;
    put_pool(
        store.as_ref(),
        "ns",
        json!({"cidr": "10.4.0.0/26", "namespaceSelector": "team == 'x'"}),
    )
    .await;
    put_pool(
        store.as_ref(),
        "off",
        json!({"cidr": "10.5.0.0/26", "disabled": true}),
    )
    .await;
    put_node(store.as_ref(), "node1", &[("zone", "a")]).await;
    put_reservation(store.as_ref(), "r", &["10.2.0.0/30", "10.2.0.5"]).await;
    let c = client(&store);
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "h", 3))
        .await
        .unwrap();
    let addrs: Vec<IpAddr> = got.ipv4.iter().map(|n| n.addr()).collect();
    assert_eq!(
        addrs,
        vec![ip("10.2.0.4"), ip("10.2.0.6"), ip("10.2.0.7")],
        "reserved skipped"
    );
    let mut args = AutoAssignArgs::v4("node1", "ns", 1);
    args.namespace_labels = Some(BTreeMap::from([("team".to_string(), "x".to_string())]));
    args.ipv4_pools = vec![net("10.4.0.0/26")];
    assert_eq!(
        c.auto_assign(&args).await.unwrap().ipv4[0].trunc(),
        net("10.4.0.0/26")
    );
    args.ipv4_pools = vec![net("10.5.0.0/26")];
    assert!(matches!(
        c.auto_assign(&args).await,
        Err(IpamError::PoolNotFound(_))
    ));
    assert!(matches!(
        c.auto_assign(&AutoAssignArgs::v4("ghost", "g", 1)).await,
        Err(IpamError::NodeNotFound(_))
    ));
    let mut tunnel = AutoAssignArgs::v4("node1", "vxlan-tunnel-addr-node1", 1);
    tunnel.intended_use = IntendedUse::Tunnel;
    tunnel.attrs = BTreeMap::from([
        ("node".to_string(), "node1".to_string()),
        ("type".to_string(), model::attr::TYPE_VXLAN.to_string()),
    ]);
    let t = c.auto_assign(&tunnel).await.unwrap();
    assert_eq!(t.ipv4[0].trunc(), net("10.2.0.0/26"));
    check_consistency(store.as_ref()).await;
}

async fn cooldown_delays_reuse(store: Arc<dyn Datastore>) {
    put_pool(
        store.as_ref(),
        "tiny",
        json!({"cidr": "10.6.0.0/30", "blockSize": 30}),
    )
    .await;
    put_node(store.as_ref(), "node1", &[]).await;
    let now: Arc<Mutex<DateTime<Utc>>> = Arc::new(Mutex::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let clock_now = now.clone();
    let c = client(&store).with_clock(Arc::new(move || *clock_now.lock().unwrap()));
    c.set_config(&IpamConfig {
        ip_cooldown_seconds: 60,
        ..IpamConfig::default()
    })
    .await
    .unwrap();
    c.auto_assign(&AutoAssignArgs::v4("node1", "all", 4))
        .await
        .unwrap();
    c.release_by_handle("all").await.unwrap();
    assert!(
        matches!(
            c.auto_assign(&AutoAssignArgs::v4("node1", "x", 1)).await,
            Err(IpamError::Exhausted { .. })
        ),
        "released addresses cool down"
    );
    *now.lock().unwrap() += Duration::seconds(61);
    c.auto_assign(&AutoAssignArgs::v4("node1", "x", 4))
        .await
        .unwrap();
    check_consistency(store.as_ref()).await;
}

async fn concurrent_tasks_never_share_an_address(store: Arc<dyn Datastore>) {
    put_pool(
        store.as_ref(),
        "p",
        json!({"cidr": "10.7.0.0/24", "blockSize": 28}),
    )
    .await;
    for n in 0..3 {
        put_node(store.as_ref(), &format!("node{n}"), &[]).await;
    }
    let held: Arc<Mutex<BTreeMap<IpAddr, String>>> = Arc::default();
    let mut tasks = Vec::new();
    for t in 0..6 {
        let c = client(&store);
        let held = held.clone();
        tasks.push(tokio::spawn(async move {
            let node = format!("node{}", t % 3);
            let mut mine: Vec<String> = Vec::new();
            for i in 0..12 {
                let h = format!("t{t}-{i}");
                let got = c
                    .auto_assign(&AutoAssignArgs::v4(&node, &h, 1 + i % 2))
                    .await
                    .unwrap();
                {
                    let mut g = held.lock().unwrap();
                    for n in &got.ipv4 {
                        let prev = g.insert(n.addr(), h.clone());
                        assert!(
                            prev.is_none(),
                            "{} handed to {h} while held by {prev:?}",
                            n.addr()
                        );
                    }
                }
                mine.push(h);
                if i % 3 == 2 {
                    let gone = mine.remove(0);
                    // Forget the addresses before releasing, so a concurrent allocator may
                    // reuse them as soon as the release commits.
                    held.lock().unwrap().retain(|_, v| *v != gone);
                    assert!(c.release_by_handle(&gone).await.unwrap() >= 1);
                }
            }
            mine
        }));
    }
    let mut live_handles = Vec::new();
    for t in tasks {
        live_handles.extend(t.await.unwrap());
    }
    let counts = check_consistency(store.as_ref()).await;
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for (_, h) in held.lock().unwrap().iter() {
        *expected.entry(h.clone()).or_insert(0) += 1;
    }
    assert_eq!(
        counts, expected,
        "stored allocations are exactly the ones handed out"
    );
    assert_eq!(counts.len(), live_handles.len(), "no handle leaked");
}

async fn pool_changes_and_host_reserved_addresses(store: Arc<dyn Datastore>) {
    put_pool(
        store.as_ref(),
        "a",
        json!({"cidr": "10.2.0.0/26", "nodeSelector": "zone == 'a'"}),
    )
    .await;
    put_node(store.as_ref(), "node1", &[("zone", "a")]).await;
    let c = client(&store);
    let node1 = AffinityOwner::host("node1");
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "h", 1))
        .await
        .unwrap();
    let old = got.ipv4[0].trunc();
    c.release_by_handle("h").await.unwrap();
    // The pool stops selecting node1 and another pool does: the empty affine block of the old
    // pool is released on the next allocation (Calico `prepareAffinityBlocksForHost`).
    put_pool(
        store.as_ref(),
        "a",
        json!({"cidr": "10.2.0.0/26", "nodeSelector": "zone == 'b'"}),
    )
    .await;
    put_pool(store.as_ref(), "c", json!({"cidr": "10.8.0.0/26"})).await;
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node1", "h2", 1))
        .await
        .unwrap();
    assert_eq!(got.ipv4[0].trunc(), net("10.8.0.0/26"));
    assert!(
        block(store.as_ref(), &old.to_string()).await.is_none(),
        "old empty block released"
    );
    assert!(
        store
            .get(&model::affinity_key(&node1, &old))
            .await
            .unwrap()
            .is_none()
    );
    // Windows-style host-reserved addresses at both ends of a new block.
    put_node(store.as_ref(), "win", &[]).await;
    put_pool(
        store.as_ref(),
        "w",
        json!({"cidr": "10.10.0.0/28", "blockSize": 28}),
    )
    .await;
    let mut args = AutoAssignArgs::v4("win", "wh", 12);
    args.ipv4_pools = vec![net("10.10.0.0/28")];
    args.host_reserved_v4 = Some(calico_ipam::HostReservedAttr {
        start_of_block: 3,
        end_of_block: 1,
        handle: model::WINDOWS_RESERVED_HANDLE.into(),
        note: "windows".into(),
    });
    let got = c.auto_assign(&args).await.unwrap();
    let addrs: Vec<String> = got.ipv4.iter().map(|n| n.addr().to_string()).collect();
    assert_eq!(addrs.first().map(String::as_str), Some("10.10.0.3"));
    assert_eq!(addrs.last().map(String::as_str), Some("10.10.0.14"));
    args.handle_id = Some("wh2".into());
    args.num4 = 1;
    args.host_reserved_v4 = Some(calico_ipam::HostReservedAttr {
        start_of_block: 0,
        end_of_block: 0,
        handle: "x".into(),
        note: String::new(),
    });
    assert!(matches!(
        c.auto_assign(&args).await,
        Err(IpamError::InvalidArgument(_))
    ));
    // The Windows-reserved handle is not a real handle: it has no handle record.
    let counts = check_consistency_ignoring(store.as_ref(), model::WINDOWS_RESERVED_HANDLE).await;
    assert_eq!(counts.get("wh"), Some(&12));
}

async fn empty_blocks_of_other_nodes_are_reclaimed_after_a_minute(store: Arc<dyn Datastore>) {
    put_pool(store.as_ref(), "one", json!({"cidr": "10.11.0.0/26"})).await;
    put_node(store.as_ref(), "node1", &[]).await;
    put_node(store.as_ref(), "node2", &[]).await;
    let now: Arc<Mutex<DateTime<Utc>>> = Arc::new(Mutex::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let clock_now = now.clone();
    let c = client(&store).with_clock(Arc::new(move || *clock_now.lock().unwrap()));
    c.set_config(&IpamConfig {
        strict_affinity: true,
        ..IpamConfig::default()
    })
    .await
    .unwrap();
    c.auto_assign(&AutoAssignArgs::v4("node1", "a", 1))
        .await
        .unwrap();
    c.release_by_handle("a").await.unwrap();
    *now.lock().unwrap() += Duration::seconds(30);
    assert!(
        matches!(
            c.auto_assign(&AutoAssignArgs::v4("node2", "b", 1)).await,
            Err(IpamError::Exhausted { .. })
        ),
        "claimed 30 s ago: not reclaimed"
    );
    *now.lock().unwrap() += Duration::seconds(31);
    let got = c
        .auto_assign(&AutoAssignArgs::v4("node2", "b", 1))
        .await
        .unwrap();
    assert_eq!(got.ipv4[0].trunc(), net("10.11.0.0/26"));
    let b = block(store.as_ref(), "10.11.0.0/26").await.unwrap();
    assert_eq!(b.affinity.as_deref(), Some("host:node2"));
    let node1 = AffinityOwner::host("node1");
    assert!(
        store
            .get(&model::affinity_key(&node1, &net("10.11.0.0/26")))
            .await
            .unwrap()
            .is_none()
    );
    check_consistency(store.as_ref()).await;
}

/// A request spanning more blocks than etcd accepts in one transaction (128 operations) is
/// committed in rounds, and so are releases touching that many blocks.
async fn requests_larger_than_one_transaction(store: Arc<dyn Datastore>) {
    put_pool(
        store.as_ref(),
        "v4",
        json!({"cidr": "192.168.1.0/24", "blockSize": 30}),
    )
    .await;
    put_pool(
        store.as_ref(),
        "v6",
        json!({"cidr": "fd80::/120", "blockSize": 126}),
    )
    .await;
    put_node(store.as_ref(), "n", &[]).await;
    let c = client(&store);
    let mut args = AutoAssignArgs::v4("n", "big", 256);
    args.num6 = 256;
    args.max_blocks_per_host = 256;
    let got = c.auto_assign(&args).await.unwrap();
    assert_eq!((got.ipv4.len(), got.ipv6.len()), (256, 256));
    assert_eq!(
        handle(store.as_ref(), "big").await.unwrap().block.len(),
        128
    );
    assert_eq!(check_consistency(store.as_ref()).await["big"], 512);
    // Release 200 addresses (100 blocks' worth of v4 and v6) by address, then the rest.
    let some: Vec<ReleaseOptions> = got
        .ipv4
        .iter()
        .chain(got.ipv6.iter())
        .step_by(2)
        .take(200)
        .map(|n| ReleaseOptions {
            address: n.addr(),
            handle: Some("big".into()),
            sequence_number: None,
        })
        .collect();
    assert!(c.release_ips(&some).await.unwrap().is_empty());
    assert_eq!(check_consistency(store.as_ref()).await["big"], 312);
    assert_eq!(c.release_by_handle("big").await.unwrap(), 312);
    assert!(check_consistency(store.as_ref()).await.is_empty());
    // A multi-round request that fails part-way leaves nothing behind.
    let mut args = AutoAssignArgs::v4("n", "too-big", 256);
    args.num6 = 257;
    args.max_blocks_per_host = 256;
    assert!(matches!(
        c.auto_assign(&args).await,
        Err(IpamError::Exhausted { version: 6, .. })
    ));
    assert!(check_consistency(store.as_ref()).await.is_empty());
}

/// Calico's "AssignIP: requested IP vs returned error", "ReleaseOptions test" and "ReleaseIPs:
/// requested IPs to be released vs actual unallocated IPs" tables (`ipam_test.go`).
async fn calico_assign_ip_and_release_tables(store: Arc<dyn Datastore>) {
    let c = client(&store);
    let reset = |pools: &'static [&'static str]| {
        let store = store.clone();
        async move {
            wipe(store.as_ref()).await;
            for (i, p) in pools.iter().enumerate() {
                put_pool(store.as_ref(), &format!("pool{i}"), json!({"cidr": p})).await;
            }
            for n in ["test-host", "host-seqnum-test", "host-release"] {
                put_node(store.as_ref(), n, &[]).await;
            }
        }
    };
    const POOLS: &[&str] = &["192.168.1.0/24", "fd80:24e2:f998:72d6::/120"];
    let assign = |ipa: &str, host: &str| AssignArgs {
        ip: ip(ipa),
        handle_id: None,
        attrs: BTreeMap::new(),
        hostname: host.into(),
        host_reserved: None,
        intended_use: None,
    };
    // AssignIP table.
    for (addr, clean, want_err) in [
        ("192.168.1.0", true, None),
        ("fd80:24e2:f998:72d6::", true, None),
        ("1.1.1.1", true, Some("NotInPool")),
        ("192.168.1.0", true, None),
        ("192.168.1.0", false, Some("AlreadyAssigned")),
    ] {
        if clean {
            reset(POOLS).await;
        }
        let got = c.assign_ip(&assign(addr, "test-host")).await;
        match (got, want_err) {
            (Ok(()), None) => {}
            (Err(IpamError::NotInPool(_)), Some("NotInPool")) => {}
            (Err(IpamError::AlreadyAssigned(_)), Some("AlreadyAssigned")) => {}
            (got, want) => panic!("AssignIP {addr}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(
        IpamError::NotInPool(ip("1.1.1.1")).to_string(),
        "The provided IP address 1.1.1.1 is not in a configured pool"
    );
    // ReleaseOptions table: a block pre-created with sequence number 0 and no affinity.
    for (seq, handle_opt, want_err) in [
        (None, None, false),
        (Some(0), None, false),
        (Some(1), None, true),
        (None, Some("fakehandle"), true),
    ] {
        reset(&["192.168.0.0/16"]).await;
        let b = calico_ipam::AllocationBlock::new(net("192.168.0.0/26"), None, 0);
        store
            .create(&model::block_key(&b.cidr), model::encode(&b), None)
            .await
            .unwrap();
        c.assign_ip(&assign("192.168.0.1", "host-seqnum-test"))
            .await
            .unwrap();
        let opts = ReleaseOptions {
            address: ip("192.168.0.1"),
            handle: handle_opt.map(str::to_string),
            sequence_number: seq,
        };
        assert_eq!(
            c.release_ips(&[opts]).await.is_err(),
            want_err,
            "seq {seq:?} handle {handle_opt:?}"
        );
    }
    // ReleaseIPs table: which requested addresses come back as "not allocated".
    reset(POOLS).await;
    assert_eq!(
        c.release_ips(&[ReleaseOptions::address(ip("1.1.1.1"))])
            .await
            .unwrap(),
        vec![ip("1.1.1.1")]
    );
    assert_eq!(
        c.release_ips(&[ReleaseOptions::address(ip("192.168.1.0"))])
            .await
            .unwrap(),
        vec![ip("192.168.1.0")]
    );
    c.assign_ip(&assign("192.168.1.0", "host-release"))
        .await
        .unwrap();
    assert!(
        c.release_ips(&[ReleaseOptions::address(ip("192.168.1.0"))])
            .await
            .unwrap()
            .is_empty()
    );
    reset(POOLS).await;
    let mut args = AutoAssignArgs::v4("host-release", "x", 66);
    args.handle_id = None;
    let got = c.auto_assign(&args).await.unwrap();
    let all: Vec<ReleaseOptions> = got
        .ipv4
        .iter()
        .map(|n| ReleaseOptions::address(n.addr()))
        .collect();
    assert!(
        c.release_ips(&all).await.unwrap().is_empty(),
        "66 IPs across 2 blocks released"
    );
    reset(POOLS).await;
    c.assign_ip(&assign("192.168.1.0", "host-release"))
        .await
        .unwrap();
    assert!(
        c.release_ips(&[ReleaseOptions::address(ip("192.168.1.0"))])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        c.release_ips(&[ReleaseOptions::address(ip("192.168.1.1"))])
            .await
            .unwrap(),
        vec![ip("192.168.1.1")]
    );
    check_consistency(store.as_ref()).await;
}

/// Two nodes racing for the same free block (`ipam_block_reader_writer_test.go` claim races):
/// exactly one wins, the loser keeps no affinity, and bad names are refused up front.
async fn claim_races_and_name_checks(store: Arc<dyn Datastore>) {
    basic_setup(store.as_ref()).await;
    let c = client(&store);
    let cidr = net("10.0.0.64/26");
    for round in 0..5 {
        let owners: Vec<AffinityOwner> = (0..4)
            .map(|i| AffinityOwner::host(format!("racer{round}-{i}")))
            .collect();
        let tasks: Vec<_> = owners
            .iter()
            .cloned()
            .map(|o| {
                let c = c.clone();
                tokio::spawn(async move { (c.claim_block(&o, &cidr, None).await.unwrap(), o) })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (outcome, o) = t.await.unwrap();
            if outcome == calico_ipam::client::ClaimOutcome::Claimed {
                winners.push(o);
            } else {
                assert_eq!(outcome, calico_ipam::client::ClaimOutcome::TakenByOther);
                assert!(
                    store
                        .get(&model::affinity_key(&o, &cidr))
                        .await
                        .unwrap()
                        .is_none()
                );
            }
        }
        assert_eq!(winners.len(), 1, "exactly one claim wins");
        let b = block(store.as_ref(), &cidr.to_string()).await.unwrap();
        assert_eq!(b.affinity, Some(winners[0].affinity_string()));
        c.release_block_affinity(&winners[0], &cidr, true)
            .await
            .unwrap();
        assert!(block(store.as_ref(), &cidr.to_string()).await.is_none());
    }
    for (host, h) in [("", "h"), ("a/b", "h"), ("node1", "x/y"), ("node1", "")] {
        assert!(
            matches!(
                c.auto_assign(&AutoAssignArgs::v4(host, h, 1)).await,
                Err(IpamError::InvalidArgument(_))
            ),
            "{host:?} {h:?}"
        );
    }
    check_consistency(store.as_ref()).await;
}

/// One row of Calico's "AutoAssign: requested IPs vs returned IPs" table (`ipam_test.go`).
struct AutoRow {
    name: &'static str,
    host: &'static str,
    clean: bool,
    /// (cidr, block size, allowed uses; empty = default).
    pools: &'static [(&'static str, u8, &'static [&'static str])],
    /// Requested IPv4 pool, or "any".
    from: &'static str,
    use_: IntendedUse,
    n4: usize,
    n6: usize,
    block_limit: u32,
    strict: bool,
    /// `Ok((v4, v6))` assigned, or the error Calico gives. Where Calico hands out a partial
    /// result (its CNI plugin then fails the pod and releases it), we assign nothing and fail.
    want: Result<(usize, usize), &'static str>,
}

async fn calico_auto_assign_table(store: Arc<dyn Datastore>) {
    const DEFAULT_V6: (&str, u8, &[&str]) = ("fd80:24e2:f998:72d6::/120", 122, &[]);
    let rows = [
        AutoRow {
            name: "workload IP from tunnel pool fails",
            host: "test-host",
            clean: true,
            pools: &[
                ("192.168.2.0/24", 32, &["Workload"]),
                ("192.168.3.0/24", 32, &["Tunnel"]),
            ],
            from: "192.168.3.0/24",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Err("NoQualifiedPool"),
        },
        AutoRow {
            name: "workload IP from workload pool",
            host: "test-host",
            clean: true,
            pools: &[
                ("192.168.2.0/24", 32, &["Workload"]),
                ("192.168.3.0/24", 32, &["Tunnel"]),
            ],
            from: "192.168.2.0/24",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Ok((1, 0)),
        },
        AutoRow {
            name: "workload IP from any workload pool",
            host: "test-host",
            clean: true,
            pools: &[
                ("192.168.2.0/24", 32, &["Workload"]),
                ("192.168.3.0/24", 32, &["Tunnel"]),
            ],
            from: "any",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Ok((1, 0)),
        },
        AutoRow {
            name: "no workload pools",
            host: "test-host",
            clean: true,
            pools: &[("192.168.3.0/24", 32, &["Tunnel"])],
            from: "any",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Err("NoQualifiedPool"),
        },
        AutoRow {
            name: "tunnel IP from tunnel pool",
            host: "test-host",
            clean: true,
            pools: &[
                ("192.168.2.0/24", 32, &["Workload"]),
                ("192.168.3.0/24", 32, &["Tunnel"]),
            ],
            from: "192.168.3.0/24",
            use_: IntendedUse::Tunnel,
            n4: 1,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Ok((1, 0)),
        },
        AutoRow {
            name: "1 v4 1 v6 - tiny block",
            host: "test-host",
            clean: true,
            pools: &[
                ("192.168.1.0/24", 32, &[]),
                ("fd80:24e2:f998:72d6::/120", 128, &[]),
            ],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 1,
            block_limit: 0,
            strict: false,
            want: Ok((1, 1)),
        },
        AutoRow {
            name: "1 v4 1 v6 - big block",
            host: "test-host",
            clean: true,
            pools: &[
                ("192.168.0.0/16", 20, &[]),
                ("fd80:24e2:f998:72d6::/110", 116, &[]),
            ],
            from: "192.168.0.0/16",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 1,
            block_limit: 0,
            strict: false,
            want: Ok((1, 1)),
        },
        AutoRow {
            name: "1 v4 1 v6 - default block",
            host: "test-host",
            clean: true,
            pools: &[("192.168.1.0/24", 26, &[]), DEFAULT_V6],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 1,
            block_limit: 0,
            strict: false,
            want: Ok((1, 1)),
        },
        AutoRow {
            name: "256 v4 256 v6",
            host: "test-host",
            clean: true,
            pools: &[("192.168.1.0/24", 26, &[]), DEFAULT_V6],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 256,
            n6: 256,
            block_limit: 0,
            strict: false,
            want: Ok((256, 256)),
        },
        AutoRow {
            name: "256 v4 256 v6 - small blocks",
            host: "test-host",
            clean: true,
            pools: &[
                ("192.168.1.0/24", 30, &[]),
                ("fd80:24e2:f998:72d6::/120", 126, &[]),
            ],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 256,
            n6: 256,
            block_limit: 256,
            strict: false,
            want: Ok((256, 256)),
        },
        AutoRow {
            name: "256 v4 0 v6 block limit",
            host: "test-host",
            clean: true,
            pools: &[("192.168.1.0/24", 26, &[]), DEFAULT_V6],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 256,
            n6: 0,
            block_limit: 1,
            strict: false,
            want: Err("BlockLimit"),
        },
        AutoRow {
            name: "256 v4 0 v6 block limit 2",
            host: "test-host",
            clean: true,
            pools: &[("192.168.1.0/24", 26, &[]), DEFAULT_V6],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 256,
            n6: 0,
            block_limit: 2,
            strict: false,
            want: Err("BlockLimit"),
        },
        AutoRow {
            name: "0 v4 256 v6 block limit",
            host: "test-host",
            clean: true,
            pools: &[("192.168.1.0/24", 26, &[]), DEFAULT_V6],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 0,
            n6: 256,
            block_limit: 1,
            strict: false,
            want: Err("BlockLimit"),
        },
        AutoRow {
            name: "257 v4 0 v6",
            host: "test-host",
            clean: true,
            pools: &[("192.168.1.0/24", 26, &[]), DEFAULT_V6],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 257,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Err("Exhausted"),
        },
        AutoRow {
            name: "0 v4 257 v6",
            host: "test-host",
            clean: true,
            pools: &[("192.168.1.0/24", 26, &[]), DEFAULT_V6],
            from: "192.168.1.0/24",
            use_: IntendedUse::Workload,
            n4: 0,
            n6: 257,
            block_limit: 0,
            strict: false,
            want: Err("Exhausted"),
        },
        AutoRow {
            name: "1 v4 0 v6 host-a",
            host: "host-a",
            clean: true,
            pools: &[
                ("10.0.0.0/25", 26, &[]),
                ("fd80:24e2:f998:72d6::/121", 122, &[]),
            ],
            from: "10.0.0.0/25",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Ok((1, 0)),
        },
        AutoRow {
            name: "1 v4 0 v6 host-b (other block)",
            host: "host-b",
            clean: false,
            pools: &[
                ("10.0.0.0/25", 26, &[]),
                ("fd80:24e2:f998:72d6::/121", 122, &[]),
            ],
            from: "10.0.0.0/25",
            use_: IntendedUse::Workload,
            n4: 1,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Ok((1, 0)),
        },
        AutoRow {
            name: "64 v4 0 v6 host-a (63 own + 1 borrowed)",
            host: "host-a",
            clean: false,
            pools: &[
                ("10.0.0.0/25", 26, &[]),
                ("fd80:24e2:f998:72d6::/121", 122, &[]),
            ],
            from: "10.0.0.0/25",
            use_: IntendedUse::Workload,
            n4: 64,
            n6: 0,
            block_limit: 0,
            strict: false,
            want: Ok((64, 0)),
        },
        AutoRow {
            name: "256 v4 0 v6 strict affinity",
            host: "test-host",
            clean: true,
            pools: &[
                ("192.168.1.0/26", 26, &[]),
                ("192.168.1.64/26", 26, &[]),
                DEFAULT_V6,
            ],
            from: "192.168.1.0/26",
            use_: IntendedUse::Workload,
            n4: 256,
            n6: 0,
            block_limit: 0,
            strict: true,
            want: Err("Exhausted"),
        },
    ];
    let c = client(&store);
    for (i, row) in rows.iter().enumerate() {
        if row.clean {
            wipe(store.as_ref()).await;
            for (j, (cidr, bs, uses)) in row.pools.iter().enumerate() {
                let mut spec = json!({"cidr": cidr, "blockSize": bs});
                if !uses.is_empty() {
                    spec["allowedUses"] = json!(uses);
                }
                put_pool(store.as_ref(), &format!("pool{j}"), spec).await;
            }
            for n in ["test-host", "host-a", "host-b"] {
                put_node(store.as_ref(), n, &[]).await;
            }
        }
        c.set_config(&IpamConfig {
            strict_affinity: row.strict,
            ..IpamConfig::default()
        })
        .await
        .unwrap();
        let mut args = AutoAssignArgs::v4(row.host, &format!("h{i}"), row.n4);
        args.num6 = row.n6;
        args.intended_use = row.use_;
        args.max_blocks_per_host = row.block_limit;
        if row.from != "any" {
            args.ipv4_pools = vec![net(row.from)];
        }
        let got = c.auto_assign(&args).await;
        match (&got, row.want) {
            (Ok(a), Ok((n4, n6))) => {
                assert_eq!((a.ipv4.len(), a.ipv6.len()), (n4, n6), "{}", row.name);
                if row.from != "any" {
                    assert!(
                        a.ipv4.iter().all(|n| net(row.from).contains(&n.addr())),
                        "{}",
                        row.name
                    );
                }
            }
            (Err(e), Err(kind)) => {
                let ok = match kind {
                    "NoQualifiedPool" => matches!(e, IpamError::NoQualifiedPool(_)),
                    "BlockLimit" => {
                        matches!(e, IpamError::BlockLimit { limit } if *limit == row.block_limit)
                    }
                    "Exhausted" => matches!(e, IpamError::Exhausted { .. }),
                    _ => false,
                };
                assert!(ok, "{}: got {e}, want {kind}", row.name);
                assert!(
                    handle(store.as_ref(), &format!("h{i}")).await.is_none(),
                    "{}",
                    row.name
                );
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", row.name),
        }
        check_consistency(store.as_ref()).await;
    }
}

scenarios!(
    etcd_all_scenarios, "scenario";
    auto_assign_claims_a_block_in_calico_order,
    release_by_handle_and_fifo_reuse,
    claims_more_blocks_then_hits_the_block_limit,
    borrowing_and_strict_affinity,
    assign_specific_ip,
    release_ips_checks_handles_and_sequence_numbers,
    dual_stack_is_all_or_nothing,
    heals_half_finished_claims,
    release_block_affinity_rules,
    reservations_and_selectors,
    cooldown_delays_reuse,
    pool_changes_and_host_reserved_addresses,
    empty_blocks_of_other_nodes_are_reclaimed_after_a_minute,
    calico_auto_assign_table,
    requests_larger_than_one_transaction,
    calico_assign_ip_and_release_tables,
    claim_races_and_name_checks,
    concurrent_tasks_never_share_an_address,
);
