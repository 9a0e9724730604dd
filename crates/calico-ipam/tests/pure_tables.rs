//! Calico's pure IPAM test tables re-encoded as data: `ipam_block_test.go` (block summary,
//! release, release by handle, garbage collection), `randomblock_test.go`, and
//! `namespace_selector_test.go`; plus golden block orders produced by Calico's generator.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use calico_ipam::block::{ReleaseOptions, sanitize_handle};
use calico_ipam::blockgen::block_order;
use calico_ipam::model::{AffinityOwner, AllocationAttribute, AllocationBlock, Time};
use calico_ipam::pools::{self, IntendedUse, Pool, PoolQuery};
use calico_ipam::{IpamError, Reservations};
use chrono::{DateTime, Duration, TimeZone, Utc};
use ipnet::IpNet;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// `makeTestBlock`: an empty 100.64.0.0/24 block.
fn test_block() -> AllocationBlock {
    AllocationBlock::new(net("100.64.0.0/24"), None, 0)
}

/// `allocateAttrib`: a new attribute linked from `ordinals`, removed from the free list.
fn allocate_attr(b: &mut AllocationBlock, ordinals: &[usize], a: AllocationAttribute) {
    let idx = b.attributes.len();
    b.attributes.push(a);
    for &o in ordinals {
        b.allocations[o] = Some(idx);
    }
    b.unallocated.retain(|o| !ordinals.contains(o));
}
fn allocate(b: &mut AllocationBlock, ordinals: &[usize], handle: &str) {
    allocate_attr(
        b,
        ordinals,
        AllocationAttribute {
            handle_id: Some(handle.into()),
            ..Default::default()
        },
    );
}
fn allocated(b: &AllocationBlock) -> Vec<usize> {
    (0..b.num_addresses())
        .filter(|o| b.allocations[*o].is_some())
        .collect()
}
fn tail(b: &AllocationBlock, n: usize) -> Vec<usize> {
    b.unallocated[b.unallocated.len() - n..].to_vec()
}

/// `testBlock.validate`: every allocation points at an attribute, every attribute is used,
/// free ordinals are unique and unallocated, and every ordinal is accounted for.
fn validate(b: &AllocationBlock) {
    let mut seen_attr = vec![false; b.attributes.len()];
    let mut seen = 0;
    for a in b.allocations.iter().flatten() {
        assert!(
            *a < b.attributes.len(),
            "allocation index within attributes"
        );
        seen_attr[*a] = true;
        seen += 1;
    }
    assert!(
        seen_attr.iter().all(|s| *s),
        "every attribute is referenced"
    );
    let mut free = b.unallocated.clone();
    free.sort_unstable();
    free.dedup();
    assert_eq!(
        free.len(),
        b.unallocated.len(),
        "free list has no duplicates"
    );
    assert!(b.unallocated.iter().all(|o| b.allocations[*o].is_none()));
    assert_eq!(
        seen + b.unallocated.len(),
        b.num_addresses(),
        "all addresses accounted for"
    );
}

// ---------------------------------------------------------------- summary information

#[test]
fn summary_information() {
    let mut b = test_block();
    assert!(b.is_empty());
    assert!(b.in_use_ips().is_empty());
    allocate(
        &mut b,
        &[0, 255],
        calico_ipam::model::WINDOWS_RESERVED_HANDLE,
    );
    assert!(b.is_empty(), "only Windows-reserved IPs: empty");
    allocate(&mut b, &[7], "x");
    assert!(!b.is_empty());
    assert_eq!(
        b.in_use_ips(),
        vec![ip("100.64.0.0"), ip("100.64.0.7"), ip("100.64.0.255")]
    );

    let b = test_block();
    assert_eq!(b.num_free(&Reservations::none()), 256);
    let half = Reservations::from_cidrs([net("100.64.0.0/25")]);
    assert_eq!(b.num_free(&half), 128);
    let all = Reservations::from_cidrs([net("100.64.0.0/24")]);
    assert_eq!(b.num_free(&all), 0);
    assert_eq!(b.num_reserved(&Reservations::none()), 0);
    assert_eq!(b.num_reserved(&half), 128);
    assert_eq!(b.num_reserved(&all), 256);
}

#[test]
fn ips_by_handle_zero_one_many_and_attributes() {
    let mut b = test_block();
    assert!(b.ips_by_handle("none").is_empty());
    allocate(&mut b, &[3], "one");
    allocate(&mut b, &[10, 11, 12], "many");
    assert_eq!(b.ips_by_handle("one"), vec![ip("100.64.0.3")]);
    assert_eq!(b.ips_by_handle("many").len(), 3);
    assert!(b.attributes_of(ip("100.64.0.4")).unwrap().is_none());
    assert_eq!(
        b.attributes_of(ip("100.64.0.3"))
            .unwrap()
            .unwrap()
            .handle_id
            .as_deref(),
        Some("one")
    );
    assert!(matches!(
        b.attributes_of(ip("10.0.0.1")),
        Err(IpamError::NotInBlock { .. })
    ));
}

// ---------------------------------------------------------------- release

#[test]
fn releasing_ips() {
    // deallocates a single IP
    let mut b = test_block();
    allocate(&mut b, &[13], "unlucky");
    let out = b
        .release(
            &[ReleaseOptions {
                address: ip("100.64.0.13"),
                handle: Some("unlucky".into()),
                sequence_number: None,
            }],
            now(),
            0,
        )
        .unwrap();
    assert!(out.unallocated.is_empty());
    assert_eq!(
        out.count_by_handle,
        BTreeMap::from([("unlucky".to_string(), 1)])
    );
    assert!(allocated(&b).is_empty());
    validate(&b);

    // deallocates one IP leaving its shared attributes behind
    let mut b = test_block();
    allocate(&mut b, &[13, 26, 39], "lucky");
    let out = b
        .release(&[ReleaseOptions::address(ip("100.64.0.13"))], now(), 0)
        .unwrap();
    assert_eq!(
        out.count_by_handle,
        BTreeMap::from([("lucky".to_string(), 1)])
    );
    assert_eq!(allocated(&b), vec![26, 39]);
    validate(&b);

    // deallocates all IPs with a shared attribute
    let mut b = test_block();
    allocate(&mut b, &[13, 26, 39], "lucky");
    let opts: Vec<_> = ["100.64.0.13", "100.64.0.26", "100.64.0.39"]
        .iter()
        .map(|a| ReleaseOptions::address(ip(a)))
        .collect();
    let out = b.release(&opts, now(), 0).unwrap();
    assert_eq!(
        out.count_by_handle,
        BTreeMap::from([("lucky".to_string(), 3)])
    );
    assert!(allocated(&b).is_empty());
    validate(&b);

    // does nothing when no such IP exists
    let mut b = test_block();
    let out = b
        .release(
            &[ReleaseOptions {
                address: ip("100.64.0.13"),
                handle: Some("unlucky".into()),
                sequence_number: None,
            }],
            now(),
            0,
        )
        .unwrap();
    assert_eq!(out.unallocated, vec![ip("100.64.0.13")]);
    assert!(out.count_by_handle.is_empty());
    validate(&b);

    // returns an error if the handles do not match
    let mut b = test_block();
    allocate(&mut b, &[100], "newstuff");
    let before = b.clone();
    let err = b
        .release(
            &[ReleaseOptions {
                address: ip("100.64.0.100"),
                handle: Some("oldstuff".into()),
                sequence_number: None,
            }],
            now(),
            0,
        )
        .unwrap_err();
    assert!(matches!(err, IpamError::BadHandle { .. }));
    assert_eq!(b, before, "a refused release changes nothing");
    validate(&b);

    // returns an error if the sequence numbers do not match
    let mut b = test_block();
    allocate(&mut b, &[13], "unlucky");
    b.sequence_number_for_allocation.insert("13".into(), 10);
    let err = b
        .release(
            &[ReleaseOptions {
                address: ip("100.64.0.13"),
                handle: Some("unlucky".into()),
                sequence_number: Some(999),
            }],
            now(),
            0,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        IpamError::BadSequenceNumber {
            requested: 999,
            expected: 10,
            ..
        }
    ));
    validate(&b);
}

#[test]
fn releasing_by_handle() {
    // does nothing when no such handle exists
    let mut b = test_block();
    assert_eq!(b.release_by_handle("nosuchhandle", None, now(), 0), 0);
    validate(&b);

    // removes an existing allocation
    let mut b = test_block();
    allocate(&mut b, &[15], "fifteen");
    allocate(&mut b, &[20], "twenty");
    assert_eq!(b.release_by_handle("fifteen", None, now(), 0), 1);
    assert_eq!(allocated(&b), vec![20]);
    assert_eq!(tail(&b, 1), vec![15], "released ordinal goes to the tail");
    validate(&b);

    // skips removal if the sequence numbers do not match
    let mut b = test_block();
    allocate(&mut b, &[15], "teens");
    allocate(&mut b, &[16], "teens");
    allocate(&mut b, &[17, 18], "teens");
    for (o, s) in [("15", 10), ("16", 10), ("17", 999), ("18", 10)] {
        b.sequence_number_for_allocation.insert(o.into(), s);
    }
    assert_eq!(b.release_by_handle("teens", Some(10), now(), 0), 3);
    assert_eq!(allocated(&b), vec![17]);
    validate(&b);

    // several allocations with the same handle, different or shared attributes
    for shared in [false, true] {
        let mut b = test_block();
        if shared {
            allocate(&mut b, &[15, 25, 35], "several");
        } else {
            for o in [15, 25, 35] {
                allocate(&mut b, &[o], "several");
            }
        }
        assert_eq!(b.release_by_handle("several", None, now(), 0), 3);
        assert!(allocated(&b).is_empty());
        let mut t = tail(&b, 3);
        t.sort_unstable();
        assert_eq!(t, vec![15, 25, 35]);
        validate(&b);
    }
}

#[test]
fn garbage_collection() {
    // produces valid block from an empty block
    let mut b = test_block();
    assert!(!b.garbage_collect(now(), 0));
    validate(&b);

    // clears unused attributes
    let mut b = test_block();
    for h in ["spurious1", "spurious2"] {
        b.attributes.push(AllocationAttribute {
            handle_id: Some(h.into()),
            ..Default::default()
        });
    }
    allocate(&mut b, &[32], "thirty-two");
    assert!(b.garbage_collect(now(), 0));
    assert_eq!(allocated(&b).len(), 1);
    assert_eq!(b.attributes.len(), 1);
    validate(&b);

    // some old and some new released IPs
    let mut b = test_block();
    let released = |t| AllocationAttribute {
        released_at: Some(Time::new(t)),
        ..Default::default()
    };
    allocate_attr(&mut b, &[31, 33], released(now() - Duration::minutes(1)));
    allocate_attr(&mut b, &[42, 44], released(now() + Duration::minutes(1)));
    allocate(&mut b, &[52, 54], "fifties");
    assert!(b.garbage_collect(now(), 30));
    assert_eq!(allocated(&b).len(), 4, "42, 44, 52, 54 remain");
    assert_eq!(b.num_free(&Reservations::none()), 256 - 4);
    validate(&b);
}

#[test]
fn cooldown_holds_released_addresses_then_appends_them_to_the_free_list() {
    let mut b = test_block();
    let owner = AffinityOwner::host("n");
    let got = b
        .auto_assign(
            2,
            Some("h"),
            &BTreeMap::new(),
            &owner,
            false,
            &Reservations::none(),
        )
        .unwrap();
    assert_eq!(got, vec![ip("100.64.0.0"), ip("100.64.0.1")]);
    b.release(&[ReleaseOptions::address(got[0])], now(), 60)
        .unwrap();
    // Cooling down: still taken, not reusable, not counted as the handle's any more.
    assert_eq!(allocated(&b), vec![0, 1]);
    assert_eq!(b.ips_by_handle("h"), vec![got[1]]);
    assert!(!b.garbage_collect(now() + Duration::seconds(59), 60));
    assert!(b.garbage_collect(now() + Duration::seconds(60), 60));
    assert_eq!(allocated(&b), vec![1]);
    assert_eq!(*b.unallocated.last().unwrap(), 0, "FIFO: reused last");
    // A release of an address in cooldown is a no-op reported as unallocated.
    let mut b2 = test_block();
    allocate(&mut b2, &[5], "x");
    b2.release(&[ReleaseOptions::address(ip("100.64.0.5"))], now(), 60)
        .unwrap();
    let out = b2
        .release(&[ReleaseOptions::address(ip("100.64.0.5"))], now(), 60)
        .unwrap();
    assert_eq!(out.unallocated, vec![ip("100.64.0.5")]);
}

#[test]
fn auto_assign_skips_reserved_and_keeps_their_order_and_checks_affinity() {
    let mut b = AllocationBlock::new(net("10.0.0.0/29"), None, 7);
    b.affinity = Some("host:a".into());
    let r = Reservations::from_cidrs([net("10.0.0.0/31"), net("10.0.0.4/32")]);
    let got = b
        .auto_assign(
            3,
            Some("h"),
            &BTreeMap::new(),
            &AffinityOwner::host("a"),
            true,
            &r,
        )
        .unwrap();
    assert_eq!(got, vec![ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.5")]);
    assert_eq!(b.unallocated, vec![0, 1, 4, 6, 7]);
    assert_eq!(b.sequence_of(2), 7);
    assert_eq!(b.attributes.len(), 1, "one attribute shared by the request");
    // Strict affinity refuses other owners and unowned blocks; borrowing ignores it.
    let err = b
        .auto_assign(
            1,
            None,
            &BTreeMap::new(),
            &AffinityOwner::host("b"),
            true,
            &r,
        )
        .unwrap_err();
    assert!(matches!(err, IpamError::AffinityMismatch { .. }));
    assert!(
        b.auto_assign(
            1,
            None,
            &BTreeMap::new(),
            &AffinityOwner::host("b"),
            false,
            &r
        )
        .is_ok()
    );
    b.affinity = None;
    assert!(matches!(
        b.auto_assign(
            1,
            None,
            &BTreeMap::new(),
            &AffinityOwner::host("a"),
            true,
            &r
        ),
        Err(IpamError::NoAffinity(_))
    ));
    // Specific assignment.
    let mut b = AllocationBlock::new(net("10.0.0.0/29"), None, 7);
    let o = AffinityOwner::host("a");
    b.assign(ip("10.0.0.6"), Some("h"), &BTreeMap::new(), &o, false)
        .unwrap();
    assert!(!b.unallocated.contains(&6));
    assert!(matches!(
        b.assign(ip("10.0.0.6"), Some("h"), &BTreeMap::new(), &o, false),
        Err(IpamError::AlreadyAssigned(_))
    ));
    assert!(matches!(
        b.assign(ip("10.0.1.6"), Some("h"), &BTreeMap::new(), &o, false),
        Err(IpamError::NotInBlock { .. })
    ));
    assert_eq!(sanitize_handle("abc\r\ndef"), "abc");
}

// ---------------------------------------------------------------- block order

/// `randomblock_test.go`: every block of the pool exactly once, all inside the pool.
#[test]
fn random_block_generator_covers_each_block_once() {
    for (cidr, bs) in [
        ("10.10.0.0/24", 26),
        ("fd80:24e2:f998:72d6::/120", 122),
        ("10.10.0.0/16", 20),
        ("fd80:24e2:f998:72d6::/114", 116),
        ("10.10.0.0/24", 32),
        ("fd80:24e2:f998:72d6::/120", 128),
    ] {
        let pool = net(cidr);
        let blocks: Vec<IpNet> = block_order(&pool, bs, "testHost", 42).collect();
        let expected = 1usize << (bs - pool.prefix_len());
        assert_eq!(blocks.len(), expected, "{cidr}/{bs}");
        let mut uniq = blocks.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), expected);
        assert!(
            blocks
                .iter()
                .all(|b| pool.contains(b) && b.prefix_len() == bs)
        );
    }
}

/// The first blocks Calico's `randomBlockGenerator` returns for these hosts, printed by Go
/// (math/rand seeded with FNV-1 32 of the host name, then big.Int.Rand).
#[test]
fn block_order_matches_calico_for_golden_hosts() {
    let golden: &[(&str, u8, &str, &[&str])] = &[
        (
            "10.0.0.0/16",
            26,
            "node1",
            &[
                "10.0.166.128/26",
                "10.0.166.192/26",
                "10.0.167.0/26",
                "10.0.167.64/26",
            ],
        ),
        (
            "10.0.0.0/16",
            26,
            "node2",
            &[
                "10.0.104.0/26",
                "10.0.104.64/26",
                "10.0.104.128/26",
                "10.0.104.192/26",
            ],
        ),
        (
            "10.0.0.0/16",
            26,
            "testHost",
            &[
                "10.0.4.128/26",
                "10.0.4.192/26",
                "10.0.5.0/26",
                "10.0.5.64/26",
            ],
        ),
        (
            "192.168.0.0/16",
            26,
            "kind-control-plane",
            &[
                "192.168.82.0/26",
                "192.168.82.64/26",
                "192.168.82.128/26",
                "192.168.82.192/26",
            ],
        ),
        (
            "10.10.0.0/24",
            26,
            "testHost",
            &[
                "10.10.0.128/26",
                "10.10.0.192/26",
                "10.10.0.0/26",
                "10.10.0.64/26",
            ],
        ),
        (
            "10.10.0.0/16",
            20,
            "testHost",
            &[
                "10.10.112.0/20",
                "10.10.128.0/20",
                "10.10.144.0/20",
                "10.10.160.0/20",
            ],
        ),
        (
            "172.16.0.0/12",
            26,
            "worker-1",
            &[
                "172.31.158.64/26",
                "172.31.158.128/26",
                "172.31.158.192/26",
                "172.31.159.0/26",
            ],
        ),
        (
            "10.0.0.0/8",
            26,
            "ip-10-0-0-1.ec2.internal",
            &[
                "10.208.138.192/26",
                "10.208.139.0/26",
                "10.208.139.64/26",
                "10.208.139.128/26",
            ],
        ),
        (
            "fd80:24e2:f998:72d6::/120",
            122,
            "testHost",
            &[
                "fd80:24e2:f998:72d6::80/122",
                "fd80:24e2:f998:72d6::c0/122",
                "fd80:24e2:f998:72d6::/122",
                "fd80:24e2:f998:72d6::40/122",
            ],
        ),
        (
            "fd00::/48",
            122,
            "node1",
            &[
                "fd00::df9b:fa8:334a:557b:7740/122",
                "fd00::df9b:fa8:334a:557b:7780/122",
                "fd00::df9b:fa8:334a:557b:77c0/122",
                "fd00::df9b:fa8:334a:557b:7800/122",
            ],
        ),
        (
            "fd00:10:244::/64",
            122,
            "worker-1",
            &[
                "fd00:10:244:0:9905:f003:c7bd:fb00/122",
                "fd00:10:244:0:9905:f003:c7bd:fb40/122",
                "fd00:10:244:0:9905:f003:c7bd:fb80/122",
                "fd00:10:244:0:9905:f003:c7bd:fbc0/122",
            ],
        ),
        (
            "fd80:24e2:f998:72d6::/114",
            116,
            "testHost",
            &[
                "fd80:24e2:f998:72d6::2000/116",
                "fd80:24e2:f998:72d6::3000/116",
                "fd80:24e2:f998:72d6::/116",
                "fd80:24e2:f998:72d6::1000/116",
            ],
        ),
        (
            "10.0.0.0/16",
            26,
            "",
            &[
                "10.0.67.192/26",
                "10.0.68.0/26",
                "10.0.68.64/26",
                "10.0.68.128/26",
            ],
        ),
    ];
    for (pool, bs, host, want) in golden {
        let got: Vec<String> = block_order(&net(pool), *bs, host, 0)
            .take(want.len())
            .map(|b| b.to_string())
            .collect();
        assert_eq!(got, *want, "{pool}/{bs} for {host:?}");
    }
}

// ---------------------------------------------------------------- pools

fn pool(name: &str, cidr: &str) -> Pool {
    Pool {
        name: name.into(),
        cidr: net(cidr),
        block_size: if cidr.contains(':') { 122 } else { 26 },
        disabled: false,
        node_selector: String::new(),
        namespace_selector: String::new(),
        allowed_uses: vec!["Workload".into(), "Tunnel".into()],
        assignment_mode: "Automatic".into(),
    }
}

fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `namespace_selector_test.go`, re-encoded: (selector, namespace labels, Ok(matches) | Err).
#[test]
fn namespace_selector_table() {
    let east_prod = labels(&[("region", "east"), ("environment", "production")]);
    type Row = (&'static str, Option<BTreeMap<String, String>>, Option<bool>);
    let table: Vec<Row> = vec![
        ("", Some(labels(&[("region", "east")])), Some(true)),
        (r#"region == "east""#, Some(east_prod.clone()), Some(true)),
        (
            r#"region == "east" && environment == "production""#,
            Some(labels(&[
                ("region", "east"),
                ("environment", "production"),
                ("team", "backend"),
            ])),
            Some(true),
        ),
        (
            r#"region in {"east", "west"}"#,
            Some(labels(&[("region", "west")])),
            Some(true),
        ),
        ("has(region)", Some(east_prod.clone()), Some(true)),
        (
            r#"region == "east""#,
            Some(labels(&[("region", "west"), ("environment", "production")])),
            Some(false),
        ),
        (
            r#"region == "east""#,
            Some(labels(&[("environment", "production")])),
            Some(false),
        ),
        (r#"region == "east""#, Some(labels(&[])), Some(false)),
        (r#"region == "east""#, None, Some(false)),
        ("region == ", Some(labels(&[("region", "east")])), None),
        (
            r#"region === "east""#,
            Some(labels(&[("region", "east")])),
            None,
        ),
        (
            r#"region == "us-east-1""#,
            Some(labels(&[("region", "us-east-1")])),
            Some(true),
        ),
    ];
    for (sel, ns, want) in table {
        let mut p = pool("p", "10.0.0.0/16");
        p.namespace_selector = sel.into();
        match (p.selects_namespace(ns.as_ref()), want) {
            (Ok(m), Some(w)) => assert_eq!(m, w, "{sel:?} on {ns:?}"),
            (Err(_), None) => {}
            (got, want) => panic!("{sel:?} on {ns:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn pool_selection_rules() {
    let node = labels(&[("zone", "a")]);
    let mut a = pool("a-pool", "10.0.0.0/16");
    a.node_selector = "zone == 'a'".into();
    let mut b = pool("b-pool", "10.1.0.0/16");
    b.node_selector = "zone == 'b'".into();
    let mut manual = pool("c-manual", "10.2.0.0/16");
    manual.assignment_mode = "Manual".into();
    let mut off = pool("d-off", "10.3.0.0/16");
    off.disabled = true;
    let mut lb = pool("e-lb", "10.4.0.0/16");
    lb.allowed_uses = vec!["LoadBalancer".into()];
    let v6 = pool("f-v6", "fd00::/48");
    let all = vec![
        lb.clone(),
        off.clone(),
        manual.clone(),
        b.clone(),
        a.clone(),
        v6.clone(),
    ];
    let q = PoolQuery {
        requested: &[],
        node_labels: &node,
        namespace_labels: None,
        max_prefix_len: None,
    };
    let (sel, enabled) = pools::determine_pools(&all, 4, &q).unwrap();
    let names: Vec<_> = sel.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["a-pool", "e-lb"],
        "node selector, Automatic, enabled, sorted by name"
    );
    assert_eq!(
        enabled.len(),
        4,
        "disabled and other-family pools are not enabled"
    );
    let w: Vec<_> = pools::filter_by_use(&sel, IntendedUse::Workload)
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(w, vec!["a-pool"]);
    let l: Vec<_> = pools::filter_by_use(&sel, IntendedUse::LoadBalancer)
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(l, vec!["e-lb"]);
    // Explicit pools win over selectors and assignment mode, but must exist and be enabled.
    let req = [net("10.2.0.0/16"), net("10.1.0.0/16")];
    let q = PoolQuery {
        requested: &req,
        ..q
    };
    let (sel, _) = pools::determine_pools(&all, 4, &q).unwrap();
    assert_eq!(
        sel.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        vec!["c-manual", "b-pool"]
    );
    let req = [net("10.3.0.0/16")];
    let q = PoolQuery {
        requested: &req,
        ..q
    };
    assert!(matches!(
        pools::determine_pools(&all, 4, &q),
        Err(IpamError::PoolNotFound(_))
    ));
    // Block sizes longer than the reserved-address limit are skipped.
    let q = PoolQuery {
        requested: &[],
        max_prefix_len: Some(24),
        ..q
    };
    assert!(pools::determine_pools(&all, 4, &q).is_err());
}
