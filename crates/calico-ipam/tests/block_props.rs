//! Property tests of the pure block operations against a simple reference model: no address is
//! handed out twice, a release frees exactly what it names, per-handle counts stay consistent,
//! and the block's internal structure stays valid.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use calico_ipam::Reservations;
use calico_ipam::block::ReleaseOptions;
use calico_ipam::model::{AffinityOwner, AllocationBlock};
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Assign { n: usize, handle: u8 },
    ReleaseAddr { pick: usize, with_handle: bool },
    ReleaseHandle { handle: u8 },
    Tick { secs: i64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1usize..6, 0u8..4).prop_map(|(n, handle)| Op::Assign { n, handle }),
        (any::<usize>(), any::<bool>())
            .prop_map(|(pick, with_handle)| Op::ReleaseAddr { pick, with_handle }),
        (0u8..4).prop_map(|handle| Op::ReleaseHandle { handle }),
        (0i64..40).prop_map(|secs| Op::Tick { secs }),
    ]
}

fn check_structure(b: &AllocationBlock) {
    let mut used = vec![false; b.attributes.len()];
    for a in b.allocations.iter().flatten() {
        assert!(*a < b.attributes.len());
        used[*a] = true;
    }
    let free: BTreeSet<usize> = b.unallocated.iter().copied().collect();
    assert_eq!(free.len(), b.unallocated.len(), "duplicate free ordinal");
    for o in &free {
        assert!(b.allocations[*o].is_none(), "free ordinal {o} is allocated");
    }
    let taken = b.allocations.iter().filter(|a| a.is_some()).count();
    assert_eq!(taken + free.len(), b.num_addresses());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn block_ops_match_reference(ops in proptest::collection::vec(op(), 1..60), cooldown in 0i64..30, reserve_low in any::<bool>()) {
        let mut now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut b = AllocationBlock::new("10.9.0.0/28".parse().unwrap(), None, 1);
        let owner = AffinityOwner::host("n");
        let reservations = if reserve_low {
            Reservations::from_cidrs(["10.9.0.0/30".parse().unwrap()])
        } else {
            Reservations::none()
        };
        // Reference: live address -> handle; cooling addresses -> release time.
        let mut live: BTreeMap<IpAddr, String> = BTreeMap::new();
        let mut cooling: BTreeMap<IpAddr, chrono::DateTime<Utc>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Assign { n, handle } => {
                    let h = format!("h{handle}");
                    let free_before = b.num_free(&reservations);
                    let got = b.auto_assign(n, Some(&h), &BTreeMap::new(), &owner, false, &reservations).unwrap();
                    prop_assert_eq!(got.len(), n.min(free_before));
                    for ip in got {
                        prop_assert!(!reservations.matches_ip(ip), "reserved {} handed out", ip);
                        prop_assert!(!live.contains_key(&ip) && !cooling.contains_key(&ip), "{} handed out twice", ip);
                        live.insert(ip, h.clone());
                    }
                    b.bump_sequence();
                }
                Op::ReleaseAddr { pick, with_handle } => {
                    let all: Vec<IpAddr> = (0..16).map(|o| b.ip_at(o)).collect();
                    let ip = all[pick % all.len()];
                    let handle = if with_handle { live.get(&ip).cloned() } else { None };
                    let out = b.release(&[ReleaseOptions { address: ip, handle, sequence_number: None }], now, cooldown).unwrap();
                    if let Some(h) = live.remove(&ip) {
                        prop_assert!(out.unallocated.is_empty());
                        prop_assert_eq!(out.count_by_handle, BTreeMap::from([(h, 1u64)]));
                        cooling.insert(ip, now);
                    } else {
                        prop_assert_eq!(out.unallocated, vec![ip]);
                    }
                    b.bump_sequence();
                }
                Op::ReleaseHandle { handle } => {
                    let h = format!("h{handle}");
                    let mine: Vec<IpAddr> = live.iter().filter(|(_, v)| **v == h).map(|(k, _)| *k).collect();
                    let n = b.release_by_handle(&h, None, now, cooldown);
                    prop_assert_eq!(n, mine.len());
                    for ip in mine {
                        live.remove(&ip);
                        cooling.insert(ip, now);
                    }
                    b.bump_sequence();
                }
                Op::Tick { secs } => {
                    now += Duration::seconds(secs);
                    b.garbage_collect(now, cooldown);
                }
            }
            // Cooled-down addresses leave the reference once their time is up.
            cooling.retain(|_, t| *t + Duration::seconds(cooldown) > now);
            check_structure(&b);
            let in_use: BTreeSet<IpAddr> = b.in_use_ips().into_iter().collect();
            let expected: BTreeSet<IpAddr> = live.keys().chain(cooling.keys()).copied().collect();
            prop_assert_eq!(in_use, expected);
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for h in live.values() {
                *counts.entry(h.clone()).or_insert(0) += 1;
            }
            prop_assert_eq!(b.count_by_handle(), counts);
        }
    }

    #[test]
    fn stale_sequence_number_never_frees_a_reused_address(extra in 0usize..5) {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut b = AllocationBlock::new("10.9.0.0/30".parse().unwrap(), None, 100);
        let owner = AffinityOwner::host("n");
        let r = Reservations::none();
        let first = b.auto_assign(4, Some("old"), &BTreeMap::new(), &owner, false, &r).unwrap();
        let ip = first[0];
        let old_seq = b.sequence_of(0);
        b.bump_sequence();
        b.release(&[ReleaseOptions::address(ip)], now, 0).unwrap();
        for _ in 0..=extra { b.bump_sequence(); }
        let again = b.auto_assign(1, Some("new"), &BTreeMap::new(), &owner, false, &r).unwrap();
        prop_assert_eq!(again, vec![ip]);
        let stale = ReleaseOptions { address: ip, handle: None, sequence_number: Some(old_seq) };
        prop_assert!(b.release(&[stale], now, 0).is_err());
        prop_assert_eq!(b.ips_by_handle("new"), vec![ip]);
    }
}
