//! Cases of Calico's `libcalico-go/lib/ipam/ipam_test.go` for the calls beyond allocate and
//! release (ClaimAffinity, GetAssignmentAttributes, ReleasePoolAffinities, GetUtilization,
//! findOrClaimBlock), as scenarios over the datastore-backed allocator (embedded store; all of
//! them again on a real etcd in one test, skipped with a note when etcd is not installed).
//! The mapping from each Calico Describe/It/Entry to the test here is in `tests/CALICO_CASES.md`.
//!
//! Where our documented differences apply (all-or-nothing instead of Calico's partial
//! results, one transaction per operation), the assertion is on OUR behaviour and the comment
//! names the Calico case and how it differs.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use calico_datastore::Datastore;
use calico_ipam::model::{self, AffinityOwner};
use calico_ipam::{AssignArgs, IpamError};
use common::*;
use serde_json::json;

/// Calico's "ClaimAffinity: claim IPNet vs actual number of blocks claimed" table: (CIDR,
/// host, clean first, pools, address AssignIP'd to host-a first, claimed, failed, error).
async fn claim_affinity_table(store: Arc<dyn Datastore>) {
    type Row = (
        &'static str,
        &'static str,
        bool,
        [&'static str; 2],
        Option<&'static str>,
        usize,
        usize,
        Option<&'static str>,
    );
    let rows: &[Row] = &[
        (
            "192.168.1.0/26",
            "host-a",
            true,
            ["192.168.1.0/24", "fd80:24e2:f998:72d6::/120"],
            None,
            1,
            0,
            None,
        ),
        (
            "192.168.1.0/27",
            "host-a",
            true,
            ["192.168.1.0/24", "fd80:24e2:f998:72d6::/120"],
            None,
            0,
            0,
            Some("The requested CIDR (192.168.1.0/27) is smaller than the minimum."),
        ),
        (
            "10.0.0.0/24",
            "host-b",
            true,
            ["10.0.0.0/24", "fd80:24e2:f998:72d6::/120"],
            Some("10.0.0.1"),
            3,
            1,
            None,
        ),
        (
            "10.0.0.0/24",
            "host-a",
            true,
            ["10.0.0.0/24", "fd80:24e2:f998:72d6::/120"],
            None,
            4,
            0,
            None,
        ),
        (
            "10.0.0.0/24",
            "host-b",
            false,
            ["10.0.0.0/24", "fd80:24e2:f998:72d6::/120"],
            None,
            0,
            4,
            None,
        ),
    ];
    let c = client(&store);
    for (i, (cidr, host, clean, pools, pre, n_claimed, n_failed, want_err)) in
        rows.iter().enumerate()
    {
        if *clean {
            wipe(store.as_ref()).await;
        }
        put_node(store.as_ref(), "host-a", &[]).await;
        put_node(store.as_ref(), host, &[]).await;
        for (j, p) in pools.iter().enumerate() {
            put_pool(store.as_ref(), &format!("pool{j}"), json!({"cidr": p})).await;
        }
        if let Some(a) = pre {
            c.assign_ip(&assign_args(a, "host-a", None)).await.unwrap();
        }
        match (
            c.claim_affinity(&AffinityOwner::host(*host), &net(cidr))
                .await,
            want_err,
        ) {
            (Ok((claimed, failed)), None) => {
                assert_eq!(
                    (claimed.len(), failed.len()),
                    (*n_claimed, *n_failed),
                    "row {i}"
                );
                for b in &claimed {
                    assert_eq!(
                        block(store.as_ref(), &b.to_string())
                            .await
                            .unwrap()
                            .affinity,
                        Some(format!("host:{host}")),
                        "row {i}"
                    );
                }
            }
            (Err(e), Some(msg)) => assert_eq!(e.to_string(), *msg, "row {i}"),
            (got, want) => panic!("row {i}: got {got:?}, want {want:?}"),
        }
        check_consistency(store.as_ref()).await;
    }
    assert!(matches!(
        c.claim_affinity(&AffinityOwner::host("host-a"), &net("99.0.0.0/26"))
            .await,
        Err(IpamError::CidrNotInPool(_))
    ));
}

/// "RemoveIPAMHost tests / should succeed if the host already doesn't exist": releasing all
/// affinities of an unknown host is a no-op, not an error.
async fn release_affinities_of_unknown_host(store: Arc<dyn Datastore>) {
    let c = client(&store);
    assert!(
        c.release_host_affinities(&AffinityOwner::host("randomhost"), false)
            .await
            .unwrap()
            .is_empty()
    );
}

/// "Allocation attributes tests" (4 Its): no pool, no block, an assigned address (its handle
/// and attributes), and an unassigned address in an existing block.
async fn assignment_attributes(store: Arc<dyn Datastore>) {
    let c = client(&store);
    let sentinel = ip("10.0.0.1");
    assert!(matches!(
        c.assignment_attributes(sentinel).await,
        Err(IpamError::NotInPool(_))
    ));
    put_pool(store.as_ref(), "p", json!({"cidr": "10.0.0.0/24"})).await;
    let host = "allocation-attributes";
    put_node(store.as_ref(), host, &[]).await;
    assert!(matches!(
        c.assignment_attributes(sentinel).await,
        Err(IpamError::BlockNotFound(_))
    ));
    let attrs = BTreeMap::from([
        (model::attr::NODE.to_string(), host.to_string()),
        (
            model::attr::TYPE.to_string(),
            model::attr::TYPE_VXLAN.to_string(),
        ),
    ]);
    c.assign_ip(&AssignArgs {
        attrs: attrs.clone(),
        ..assign_args("10.0.0.2", host, None)
    })
    .await
    .unwrap();
    assert!(matches!(
        c.assignment_attributes(sentinel).await,
        Err(IpamError::NotAssigned(_))
    ));
    c.assign_ip(&AssignArgs {
        attrs: attrs.clone(),
        ..assign_args("10.0.0.1", host, Some("my-test-handle"))
    })
    .await
    .unwrap();
    let got = c.assignment_attributes(sentinel).await.unwrap();
    assert_eq!(got.active_owner_attrs, attrs);
    assert_eq!(got.handle_id.as_deref(), Some("my-test-handle"));
    check_consistency(store.as_ref()).await;
}

/// "Affinity FV tests / should release older blocks created without an explicit affinity
/// type": a block stored without an affinity plus a confirmed affinity key for it (as older
/// Calico versions left them); releasing the pool's affinities removes both. Also: a
/// non-empty affine block in the pool keeps its addresses and loses its affinity, and
/// affinities outside the pool are untouched.
async fn release_pool_affinities(store: Arc<dyn Datastore>) {
    let host = "host-affinity-fvs";
    put_node(store.as_ref(), host, &[]).await;
    put_node(store.as_ref(), "other", &[]).await;
    put_pool(
        store.as_ref(),
        "p",
        json!({"cidr": "10.0.0.0/24", "blockSize": 30}),
    )
    .await;
    put_pool(
        store.as_ref(),
        "q",
        json!({"cidr": "10.1.0.0/24", "blockSize": 30}),
    )
    .await;
    let cidr = net("10.0.0.0/24");
    let b = calico_ipam::AllocationBlock::new(cidr, None, 0);
    store
        .create(&model::block_key(&cidr), model::encode(&b), None)
        .await
        .unwrap();
    store
        .create(
            &model::affinity_key(&AffinityOwner::host(host), &cidr),
            br#"{"state":"confirmed"}"#.to_vec(),
            None,
        )
        .await
        .unwrap();
    let c = client(&store);
    let released = c
        .release_pool_affinities(&net("10.0.0.0/16"))
        .await
        .unwrap();
    assert_eq!(released, vec![cidr]);
    assert!(blocks(store.as_ref()).await.is_empty());
    assert!(
        store
            .list("/calico/ipam/v2/host/")
            .await
            .unwrap()
            .kvs
            .is_empty()
    );
    // A used block in pool p, and one in pool q.
    let mut a = auto("other", "h", 1);
    a.ipv4_pools = vec![net("10.0.0.0/24")];
    let in_p = c.auto_assign(&a).await.unwrap().ipv4[0].trunc();
    a.ipv4_pools = vec![net("10.1.0.0/24")];
    a.handle_id = Some("hq".into());
    let in_q = c.auto_assign(&a).await.unwrap().ipv4[0].trunc();
    assert_eq!(
        c.release_pool_affinities(&net("10.0.0.0/24"))
            .await
            .unwrap(),
        vec![in_p]
    );
    assert_eq!(
        block(store.as_ref(), &in_p.to_string())
            .await
            .unwrap()
            .affinity,
        None
    );
    assert_eq!(affine_blocks(&c, "other", 4).await, vec![in_q]);
    c.release_by_handle("h").await.unwrap();
    assert!(block(store.as_ref(), &in_p.to_string()).await.is_none());
    check_consistency(store.as_ref()).await;
}

/// "GetUtilization with reservations / should discount reserved addresses" (4 Entries): a /24
/// pool with one /26 block holding 10.0.0.5; (reserved CIDRs, pool counts, block counts) as
/// (capacity, in use, reserved, available).
async fn utilization_with_reservations(store: Arc<dyn Datastore>) {
    type Counts = (usize, usize, usize, usize);
    let rows: &[(&[&str], Counts, Counts)] = &[
        (&["10.0.0.32/30"], (256, 1, 4, 251), (64, 1, 4, 59)),
        (&["10.0.0.128/25"], (256, 1, 128, 127), (64, 1, 0, 63)),
        (&["10.0.0.5/32"], (256, 1, 1, 255), (64, 1, 1, 63)),
        (
            &["10.0.0.0/25", "10.0.0.5/32", "10.0.0.64/26"],
            (256, 1, 128, 128),
            (64, 1, 64, 0),
        ),
    ];
    let c = client(&store);
    for (i, (resv, want_pool, want_block)) in rows.iter().enumerate() {
        wipe(store.as_ref()).await;
        put_node(store.as_ref(), "host-a", &[]).await;
        put_pool(store.as_ref(), "p", json!({"cidr": "10.0.0.0/24"})).await;
        c.assign_ip(&assign_args("10.0.0.5", "host-a", None))
            .await
            .unwrap();
        put_reservation(store.as_ref(), "resv", resv).await;
        let usage = c.utilization(&["10.0.0.0/24".to_string()]).await.unwrap();
        assert_eq!(usage.len(), 1, "row {i}");
        let p = &usage[0];
        assert_eq!(p.blocks.len(), 1, "row {i}");
        let b = &p.blocks[0];
        assert_eq!(
            (p.capacity, p.in_use, p.reserved, p.available),
            *want_pool,
            "row {i} pool"
        );
        assert_eq!(
            (b.capacity, b.in_use, b.reserved, b.available),
            *want_block,
            "row {i} block"
        );
    }
    // Without a selection: every pool plus the orphaned-blocks entry, which lists a block
    // whose pool is gone.
    delete_pool(store.as_ref(), "p").await;
    let usage = c.utilization(&[]).await.unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].name, calico_ipam::utilization::ORPHANED_BLOCKS);
    assert_eq!(usage[0].blocks.len(), 1);
}

/// "IPAM findOrClaimBlock test" (3 of 4 Its), through `auto_assign` rather than Calico's
/// internal `blockAssignState`: two /30 blocks claimed for host-a with Windows-style
/// host-reserved ends (2 at the start, 1 at the end: one usable address each). Affine blocks
/// are used in order before a new claim; a block fully covered by an IPReservation, or whose
/// only usable address is taken, is skipped; with no claim allowed the request hits the
/// block limit.
async fn find_or_claim_block(store: Arc<dyn Datastore>) {
    let host = "host-a";
    let rsvd = calico_ipam::HostReservedAttr {
        start_of_block: 2,
        end_of_block: 1,
        handle: "findOrClaimBlock".into(),
        note: "ipam ut".into(),
    };
    let owner = AffinityOwner::host(host);
    let c = client(&store);
    let setup = || async {
        wipe(store.as_ref()).await;
        put_node(store.as_ref(), host, &[]).await;
        put_pool(
            store.as_ref(),
            "p",
            json!({"cidr": "10.0.0.0/24", "blockSize": 30}),
        )
        .await;
        for b in ["10.0.0.0/30", "10.0.0.4/30"] {
            c.claim_block(&owner, &net(b), Some(&rsvd)).await.unwrap();
        }
    };
    let one = |h: &str| {
        let mut a = auto(host, h, 1);
        a.host_reserved_v4 = Some(rsvd.clone());
        a
    };
    // Should find or claim blocks.
    setup().await;
    let got = |a: calico_ipam::Assignment| a.ipv4[0];
    assert_eq!(
        got(c.auto_assign(&one("a")).await.unwrap()).addr(),
        ip("10.0.0.2")
    );
    assert_eq!(
        got(c.auto_assign(&one("b")).await.unwrap()).addr(),
        ip("10.0.0.6")
    );
    let third = got(c.auto_assign(&one("c")).await.unwrap()).trunc();
    assert!(
        ![net("10.0.0.0/30"), net("10.0.0.4/30")].contains(&third),
        "new claim"
    );
    assert_eq!(affine_blocks(&c, host, 4).await.len(), 3);
    check_consistency_ignoring(store.as_ref(), "findOrClaimBlock").await;
    // Should skip blocks that are reserved.
    setup().await;
    put_reservation(store.as_ref(), "r", &["10.0.0.0/30"]).await;
    assert_eq!(
        got(c.auto_assign(&one("a")).await.unwrap()).addr(),
        ip("10.0.0.6")
    );
    assert_eq!(affine_blocks(&c, host, 4).await.len(), 2, "no new claim");
    // Should skip blocks having insufficient ip; no new claim allowed -> block limit.
    setup().await;
    c.assign_ip(&assign_args("10.0.0.2", host, None))
        .await
        .unwrap();
    assert_eq!(
        got(c.auto_assign(&one("a")).await.unwrap()).addr(),
        ip("10.0.0.6")
    );
    let mut limited = one("b");
    limited.max_blocks_per_host = 2;
    assert!(matches!(
        c.auto_assign(&limited).await,
        Err(IpamError::BlockLimit { limit: 2 })
    ));
    let new = got(c.auto_assign(&one("b")).await.unwrap()).trunc();
    assert!(![net("10.0.0.0/30"), net("10.0.0.4/30")].contains(&new));
    check_consistency_ignoring(store.as_ref(), "findOrClaimBlock").await;
}

scenarios!(
    etcd_all_calico_api_cases, "case";
    claim_affinity_table,
    release_affinities_of_unknown_host,
    assignment_attributes,
    release_pool_affinities,
    utilization_with_reservations,
    find_or_claim_block,
);
