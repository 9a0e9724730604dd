//! The records' JSON is byte-for-byte what Calico writes. Golden strings were produced by Go's
//! `encoding/json` from structs with Calico's field tags (libcalico-go/lib/backend/model).

#![allow(clippy::unwrap_used)]
use std::collections::BTreeMap;

use calico_ipam::block::HostReservedAttr;
use calico_ipam::model::{
    self, AffinityOwner, AffinityState, AllocationAttribute, AllocationBlock, BlockAffinity,
    IpamConfig, IpamConfigRecord, IpamHandle, Time,
};
use chrono::{TimeZone, Utc};
use ipnet::IpNet;

const FRESH: &str = r#"{"cidr":"10.0.1.0/30","affinity":"host:node1","affinity_claim_time":"2026-11-22T14:00:05Z","allocations":[null,null,null,null],"unallocated":[0,1,2,3],"attributes":null,"sequenceNumber":1795788005123456789,"sequenceNumberForAllocation":{},"deleted":false}"#;
const USED: &str = r#"{"cidr":"fd00:10:244::/126","affinity":null,"allocations":[0,null,1,0],"unallocated":[1],"attributes":[{"handle_id":"k8s-pod-network.abc","secondary":{"namespace":"default","node":"node1","pod":"nginx","timestamp":"2026-11-22 14:00:05.1 +0000 UTC"}},{"releasedAt":"2026-11-22T14:01:00Z"}],"sequenceNumber":12,"sequenceNumberForAllocation":{"0":10,"10":1,"2":11,"3":10},"deleted":false,"hostAffinity":"node1"}"#;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn new_block_encodes_like_calico() {
    let claim = Utc.with_ymd_and_hms(2026, 11, 22, 14, 0, 5).unwrap()
        + chrono::Duration::nanoseconds(123_456_789);
    let mut b = AllocationBlock::new(net("10.0.1.0/30"), None, 1_795_788_005_123_456_789);
    b.affinity = Some(AffinityOwner::host("node1").affinity_string());
    b.affinity_claim_time = Some(Time::new(claim));
    assert_eq!(String::from_utf8(model::encode(&b)).unwrap(), FRESH);
    let back: AllocationBlock = model::decode("k", FRESH.as_bytes()).unwrap();
    assert_eq!(back, b);
}

#[test]
fn used_block_round_trips_byte_for_byte() {
    let b: AllocationBlock = model::decode("k", USED.as_bytes()).unwrap();
    assert_eq!(b.allocations, vec![Some(0), None, Some(1), Some(0)]);
    assert_eq!(
        b.attributes[0].handle_id.as_deref(),
        Some("k8s-pod-network.abc")
    );
    assert_eq!(
        b.attributes[1],
        AllocationAttribute {
            released_at: Some(Time::new(
                Utc.with_ymd_and_hms(2026, 11, 22, 14, 1, 0).unwrap()
            )),
            ..Default::default()
        }
    );
    assert_eq!(b.sequence_of(2), 11);
    assert_eq!(b.host_affinity.as_deref(), Some("node1"));
    assert_eq!(String::from_utf8(model::encode(&b)).unwrap(), USED);
}

#[test]
fn decoding_tolerates_nulls_and_unknown_fields() {
    let j = r#"{"cidr":"10.0.0.0/31","affinity":null,"allocations":[null,null],"unallocated":null,"attributes":[],"sequenceNumber":0,"sequenceNumberForAllocation":null,"deleted":false,"futureField":1}"#;
    let b: AllocationBlock = model::decode("k", j.as_bytes()).unwrap();
    assert!(b.unallocated.is_empty() && b.attributes.is_empty());
    let err =
        model::decode::<AllocationBlock>("/calico/ipam/v2/x", b"{\"cidr\":\"bad\"}").unwrap_err();
    assert!(err.to_string().contains("/calico/ipam/v2/x"), "{err}");
}

#[test]
fn handle_affinity_and_config_encode_like_calico() {
    let mut h = IpamHandle::default();
    h.increment(&net("fd00::/122"), 2);
    h.increment(&net("10.0.1.0/26"), 1);
    assert_eq!(
        String::from_utf8(model::encode(&h)).unwrap(),
        r#"{"block":{"10.0.1.0/26":1,"fd00::/122":2},"deleted":false}"#
    );
    assert_eq!(
        String::from_utf8(model::encode(&BlockAffinity::confirmed())).unwrap(),
        r#"{"state":"confirmed","deleted":false}"#
    );
    let cfg = IpamConfig {
        strict_affinity: true,
        auto_allocate_blocks: true,
        max_blocks_per_host: 4,
        ip_cooldown_seconds: 30,
    };
    assert_eq!(
        String::from_utf8(model::encode(&cfg.to_record())).unwrap(),
        r#"{"strict_affinity":true,"auto_allocate_blocks":true,"maxBlocksPerHost":4,"ipCooldownSeconds":30}"#
    );
    assert_eq!(
        String::from_utf8(model::encode(&IpamConfig::default().to_record())).unwrap(),
        r#"{"auto_allocate_blocks":true}"#
    );
    // Fields left out are false/zero, as Go decodes them.
    let r: IpamConfigRecord = model::decode("k", b"{\"strict_affinity\":true}").unwrap();
    assert!(!IpamConfig::from_record(&r).auto_allocate_blocks);
}

#[test]
fn affinity_states_and_legacy_empty_value() {
    for (j, s) in [
        (
            r#"{"state":"pending","deleted":false}"#,
            AffinityState::Pending,
        ),
        (
            r#"{"state":"confirmed","deleted":false}"#,
            AffinityState::Confirmed,
        ),
        (
            r#"{"state":"pendingDeletion","deleted":false}"#,
            AffinityState::PendingDeletion,
        ),
        (r#"{}"#, AffinityState::Legacy),
    ] {
        assert_eq!(BlockAffinity::decode("k", j.as_bytes()).unwrap().state, s);
    }
    let legacy = BlockAffinity::decode("k", b"").unwrap();
    assert!(legacy.state.is_confirmed());
    assert!(!AffinityState::Pending.is_confirmed());
    assert!(BlockAffinity::decode("k", br#"{"state":"weird"}"#).is_err());
}

/// Key layout (calico-features.md §11; `keys_test.go`).
#[test]
fn keys_match_calico_layout() {
    let v4 = net("10.0.1.0/26");
    let v6 = net("fd00::/122");
    assert_eq!(
        model::block_key(&v4),
        "/calico/ipam/v2/assignment/ipv4/block/10.0.1.0-26"
    );
    assert_eq!(
        model::block_key(&v6),
        "/calico/ipam/v2/assignment/ipv6/block/fd00::-122"
    );
    let h = AffinityOwner::host("node1");
    assert_eq!(
        model::affinity_key(&h, &v4),
        "/calico/ipam/v2/host/node1/ipv4/block/10.0.1.0-26"
    );
    assert_eq!(
        model::affinity_key(&AffinityOwner::virtual_owner("load-balancer"), &v6),
        "/calico/ipam/v2/virtual/load-balancer/ipv6/block/fd00::-122"
    );
    assert_eq!(
        model::handle_key("k8s-pod-network.abc"),
        "/calico/ipam/v2/handle/k8s-pod-network.abc"
    );
    assert_eq!(model::CONFIG_KEY, "/calico/ipam/v2/config");
    assert_eq!(model::cidr_from_key(&model::block_key(&v6)).unwrap(), v6);
    assert_eq!(
        model::cidr_from_key(&model::affinity_key(&h, &v4)).unwrap(),
        v4
    );
    assert!(model::cidr_from_key("/calico/ipam/v2/handle/x").is_err());
}

#[test]
fn windows_reserved_block_layout() {
    let r = HostReservedAttr {
        start_of_block: 3,
        end_of_block: 1,
        handle: model::WINDOWS_RESERVED_HANDLE.into(),
        note: "windows host reserved".into(),
    };
    let b = AllocationBlock::new(net("10.0.0.0/29"), Some(&r), 1);
    assert_eq!(b.unallocated, vec![3, 4, 5, 6]);
    assert_eq!(
        b.allocations,
        vec![Some(0), Some(0), Some(0), None, None, None, None, Some(0)]
    );
    assert_eq!(
        b.attributes[0].active_owner_attrs,
        BTreeMap::from([("note".to_string(), "windows host reserved".to_string())])
    );
    // Only Windows-reserved addresses: the block counts as empty (`empty()`).
    assert!(b.is_empty());
}
