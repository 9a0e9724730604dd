//! Unit tests: best-path table, route-reflection matrix, loop detection, graceful restart,
//! ADD-PATH, RFC 7606 actions, export rewriting, and a property test of incremental vs.
//! recomputed state.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use calico_bgp_packet::{
    Action, AsPath, AsSegment, Community, Family, MpNextHop, MpReach, Nlri, Origin, PathAttributes,
    SegmentType, Update,
};
use ipnet::IpNet;
use proptest::prelude::*;

use super::*;

mod incremental;

const LOCAL_AS: u32 = 64512;

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
fn pid(s: &str) -> PeerId {
    PeerId(s.parse().unwrap())
}

fn cfg(cluster: Option<&str>) -> RibConfig {
    RibConfig {
        local_as: LOCAL_AS,
        router_id: v4("10.0.0.1"),
        cluster_id: cluster.map(v4),
    }
}

/// Peer `10.0.0.<n>` with router id `1.1.1.<n>`.
fn peer(n: u8, asn: u32, rr_client: bool) -> PeerConfig {
    let t = if asn == LOCAL_AS {
        PeerType::Internal
    } else {
        PeerType::External
    };
    let mut info = PeerInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
        Ipv4Addr::new(1, 1, 1, n),
        asn,
        t,
    );
    info.rr_client = rr_client;
    PeerConfig::new(info, Some(v4("10.0.0.1")), Some("fd00::1".parse().unwrap()))
}

fn p(n: u8) -> PeerId {
    PeerId(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)))
}

fn base_attrs(path: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(path.to_vec())),
        ..PathAttributes::default()
    }
}

fn nh(n: u8) -> Option<MpNextHop> {
    Some(MpNextHop::Ipv4(Ipv4Addr::new(10, 0, 0, n)))
}

// ---- best path ---------------------------------------------------------------------------

/// One candidate in a best-path case: sending peer number, its AS, and attribute tweaks.
struct Cand {
    peer: u8,
    asn: u32,
    attrs: PathAttributes,
}

fn c(peer: u8, asn: u32, f: impl FnOnce(&mut PathAttributes)) -> Cand {
    let path = if asn == LOCAL_AS {
        vec![65000]
    } else {
        vec![asn]
    };
    let mut attrs = base_attrs(&path);
    f(&mut attrs);
    Cand { peer, asn, attrs }
}

/// Runs one case in every insertion order (rotations and reversal) and returns the winning
/// peer number; panics when the order changes the result.
fn winner(cands: Vec<Cand>) -> u8 {
    let n = cands.len();
    let mut results = Vec::new();
    let mut orders: Vec<Vec<usize>> = (0..n)
        .map(|r| (0..n).map(|i| (i + r) % n).collect())
        .collect();
    orders.push((0..n).rev().collect());
    for order in orders {
        let mut rib = Rib::new(cfg(None));
        for c in &cands {
            let _ = rib.add_peer(peer(c.peer, c.asn, false));
        }
        for &i in &order {
            let c = &cands[i];
            rib.announce(
                p(c.peer),
                net("192.0.2.0/24"),
                0,
                c.attrs.clone(),
                nh(c.peer),
            )
            .unwrap();
        }
        let best = rib.best(&net("192.0.2.0/24")).unwrap();
        let IpAddr::V4(a) = best.source.address else {
            panic!()
        };
        results.push(a.octets()[3]);
    }
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "order-dependent: {results:?}"
    );
    results[0]
}

#[test]
fn best_path_table() {
    let ibgp = LOCAL_AS;
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Vec<Cand>, u8)> = vec![
        (
            "higher local pref wins",
            vec![
                c(2, ibgp, |a| a.local_pref = Some(100)),
                c(3, ibgp, |a| a.local_pref = Some(200)),
            ],
            3,
        ),
        (
            "missing local pref is 100: beats 50",
            vec![c(2, ibgp, |a| a.local_pref = Some(50)), c(3, ibgp, |_| {})],
            3,
        ),
        (
            "missing local pref is 100: loses to 101",
            vec![c(2, ibgp, |a| a.local_pref = Some(101)), c(3, ibgp, |_| {})],
            2,
        ),
        (
            "shorter AS path wins",
            vec![
                c(2, 65001, |a| {
                    a.as_path = Some(AsPath::sequence(vec![65001, 65005]))
                }),
                c(3, 65002, |a| {
                    a.as_path = Some(AsPath::sequence(vec![65002]))
                }),
            ],
            3,
        ),
        (
            "AS_SET counts 1",
            vec![
                c(2, 65001, |a| {
                    a.as_path = Some(AsPath {
                        segments: vec![
                            AsSegment {
                                kind: SegmentType::Sequence,
                                asns: vec![65001],
                            },
                            AsSegment {
                                kind: SegmentType::Set,
                                asns: vec![1, 2, 3, 4],
                            },
                        ],
                    })
                }),
                c(3, 65002, |a| {
                    a.as_path = Some(AsPath::sequence(vec![65002, 7, 8]))
                }),
            ],
            2,
        ),
        (
            "local pref beats path length",
            vec![
                c(2, ibgp, |a| {
                    a.local_pref = Some(200);
                    a.as_path = Some(AsPath::sequence(vec![1, 2, 3, 4]));
                }),
                c(3, ibgp, |a| a.local_pref = Some(100)),
            ],
            2,
        ),
        (
            "lower origin wins",
            vec![
                c(2, 65001, |a| a.origin = Some(Origin::Incomplete)),
                c(3, 65002, |a| a.origin = Some(Origin::Egp)),
            ],
            3,
        ),
        (
            "IGP beats EGP",
            vec![
                c(2, 65001, |a| a.origin = Some(Origin::Igp)),
                c(3, 65002, |a| a.origin = Some(Origin::Egp)),
            ],
            2,
        ),
        (
            "path length beats origin",
            vec![
                c(2, 65001, |a| {
                    a.origin = Some(Origin::Igp);
                    a.as_path = Some(AsPath::sequence(vec![65001, 9]));
                }),
                c(3, 65002, |a| a.origin = Some(Origin::Incomplete)),
            ],
            3,
        ),
        (
            "lower MED wins within the same neighbour AS",
            vec![
                c(2, 65001, |a| a.med = Some(20)),
                c(3, 65001, |a| a.med = Some(10)),
            ],
            3,
        ),
        (
            "missing MED is 0",
            vec![
                c(2, 65001, |a| a.med = Some(5)),
                c(3, 65001, |a| a.med = None),
            ],
            3,
        ),
        (
            "MED ignored across neighbour ASes: router id decides",
            vec![
                c(2, 65001, |a| a.med = Some(10)),
                c(3, 65002, |a| a.med = Some(0)),
            ],
            2,
        ),
        (
            "MED non-transitive: order independent",
            vec![
                // A(65001, MED 10), B(65001, MED 5), C(65002, MED 0): B eliminates A; B vs C
                // go to router id → B (peer 3 < peer 4).
                c(2, 65001, |a| a.med = Some(10)),
                c(3, 65001, |a| a.med = Some(5)),
                c(4, 65002, |a| a.med = Some(0)),
            ],
            3,
        ),
        (
            "origin beats MED",
            vec![
                c(2, 65001, |a| {
                    a.med = Some(0);
                    a.origin = Some(Origin::Egp)
                }),
                c(3, 65001, |a| a.med = Some(100)),
            ],
            3,
        ),
        (
            "eBGP over iBGP",
            vec![
                c(2, ibgp, |a| a.as_path = Some(AsPath::sequence(vec![65009]))),
                c(3, 65009, |a| {
                    a.as_path = Some(AsPath::sequence(vec![65009]))
                }),
            ],
            3,
        ),
        (
            "MED beats eBGP over iBGP (same neighbour AS)",
            vec![
                c(2, ibgp, |a| {
                    a.as_path = Some(AsPath::sequence(vec![65009]));
                    a.med = Some(1);
                }),
                c(3, 65009, |a| {
                    a.as_path = Some(AsPath::sequence(vec![65009]));
                    a.med = Some(2);
                }),
            ],
            2,
        ),
        (
            "lowest router id",
            vec![c(4, ibgp, |_| {}), c(3, ibgp, |_| {})],
            3,
        ),
        (
            "ORIGINATOR_ID replaces the router id",
            vec![
                c(2, ibgp, |a| a.originator_id = Some(v4("9.9.9.9"))),
                c(3, ibgp, |a| a.originator_id = Some(v4("1.1.1.200"))),
            ],
            3,
        ),
        (
            "shorter CLUSTER_LIST with equal originator",
            vec![
                c(2, ibgp, |a| {
                    a.originator_id = Some(v4("5.5.5.5"));
                    a.cluster_list = vec![v4("7.7.7.1"), v4("7.7.7.2")];
                }),
                c(3, ibgp, |a| {
                    a.originator_id = Some(v4("5.5.5.5"));
                    a.cluster_list = vec![v4("7.7.7.1")];
                }),
            ],
            3,
        ),
        (
            "lowest peer address as last resort",
            vec![
                c(5, ibgp, |a| a.originator_id = Some(v4("5.5.5.5"))),
                c(4, ibgp, |a| a.originator_id = Some(v4("5.5.5.5"))),
            ],
            4,
        ),
        (
            "combination: local pref > everything else",
            vec![
                c(2, 65001, |a| a.med = Some(0)),
                c(3, ibgp, |a| {
                    a.local_pref = Some(150);
                    a.origin = Some(Origin::Incomplete);
                    a.as_path = Some(AsPath::sequence(vec![1, 2, 3, 4, 5]));
                }),
                c(4, 65001, |a| a.med = Some(3)),
            ],
            3,
        ),
        (
            "combination: path length, then MED among the survivors",
            vec![
                c(2, 65001, |a| {
                    a.as_path = Some(AsPath::sequence(vec![65001, 1, 2]))
                }),
                c(3, 65001, |a| a.med = Some(50)),
                c(4, 65001, |a| a.med = Some(40)),
                c(5, ibgp, |a| {
                    a.as_path = Some(AsPath::sequence(vec![65001]));
                    a.med = Some(40)
                }),
            ],
            4,
        ),
    ];
    for (name, cands, want) in cases {
        assert_eq!(winner(cands), want, "case: {name}");
    }
}

#[test]
fn locally_originated_beats_learned_and_local_pref_beats_local() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, LOCAL_AS, false)).unwrap();
    rib.add_peer(peer(3, 65001, false)).unwrap();
    let pre = net("10.65.0.0/26");
    rib.announce(p(2), pre, 0, base_attrs(&[]), nh(2)).unwrap();
    let ch = rib.originate(pre, base_attrs(&[]), None).unwrap().unwrap();
    assert_eq!(ch.new_best.unwrap().source.peer_type, PeerType::Local);
    assert_eq!(ch.old_best.unwrap().source.address, p(2).0);
    // LOCAL_PREF from an external peer is ignored (RFC 4271 §5.1.5): no change.
    let mut a = base_attrs(&[]);
    a.local_pref = Some(500);
    assert_eq!(rib.announce(p(3), pre, 0, a.clone(), nh(3)).unwrap(), None);
    assert_eq!(rib.best(&pre).unwrap().source.peer_type, PeerType::Local);
    // An internal route with a higher LOCAL_PREF still wins (step 1 before step 2).
    let ch = rib.announce(p(2), pre, 0, a, nh(2)).unwrap().unwrap();
    assert_eq!(ch.new_best.unwrap().source.address, p(2).0);
}

#[test]
fn stale_routes_are_not_penalised() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, LOCAL_AS, false)).unwrap();
    rib.add_peer(peer(3, LOCAL_AS, false)).unwrap();
    let pre = net("10.65.0.0/26");
    rib.announce(p(2), pre, 0, base_attrs(&[]), nh(2)).unwrap();
    rib.announce(p(3), pre, 0, base_attrs(&[]), nh(3)).unwrap();
    assert_eq!(rib.best(&pre).unwrap().source.address, p(2).0);
    assert!(
        rib.peer_restarting(p(2), &[Family::IPV4_UNICAST])
            .unwrap()
            .is_empty()
    );
    let best = rib.best(&pre).unwrap();
    assert_eq!(best.source.address, p(2).0);
    assert!(best.stale);
}

#[test]
fn multipath_returns_equal_paths_up_to_router_id() {
    let mut rib = Rib::new(cfg(None));
    for n in 2..=5 {
        rib.add_peer(peer(n, LOCAL_AS, false)).unwrap();
    }
    let pre = net("10.65.1.0/26");
    rib.announce(p(4), pre, 0, base_attrs(&[]), nh(4)).unwrap();
    rib.announce(p(2), pre, 0, base_attrs(&[]), nh(2)).unwrap();
    let mut worse = base_attrs(&[]);
    worse.med = Some(10);
    rib.announce(p(3), pre, 0, worse, nh(3)).unwrap();
    let mut lower = base_attrs(&[]);
    lower.local_pref = Some(90);
    rib.announce(p(5), pre, 0, lower, nh(5)).unwrap();
    let mp: Vec<IpAddr> = rib
        .multipath(&pre)
        .iter()
        .map(|r| r.source.address)
        .collect();
    assert_eq!(mp, vec![p(2).0, p(4).0]);
    assert!(rib.multipath(&net("10.99.0.0/16")).is_empty());
}

// ---- loop detection ------------------------------------------------------------------------

#[test]
fn loop_detection() {
    let mut rib = Rib::new(cfg(Some("10.255.0.1")));
    rib.add_peer(peer(2, 65001, false)).unwrap();
    rib.add_peer(peer(3, LOCAL_AS, true)).unwrap();
    let pre = net("192.0.2.0/24");
    // eBGP route with our AS in the path: dropped (kept in Adj-RIB-In only).
    let ch = rib
        .announce(p(2), pre, 0, base_attrs(&[65001, LOCAL_AS, 7]), nh(2))
        .unwrap();
    assert!(ch.is_none());
    assert_eq!(rib.adj_rib_in(p(2)).unwrap().count(), 1);
    assert!(rib.best(&pre).is_none());
    // Our AS inside an AS_SET also counts.
    let mut set_path = base_attrs(&[]);
    set_path.as_path = Some(AsPath {
        segments: vec![
            AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![65001],
            },
            AsSegment {
                kind: SegmentType::Set,
                asns: vec![LOCAL_AS],
            },
        ],
    });
    assert!(
        rib.announce(p(2), pre, 0, set_path, nh(2))
            .unwrap()
            .is_none()
    );
    // iBGP routes are not checked for our AS (they never carry it unless it left and came back
    // through an eBGP hop, which the eBGP entry point catches).
    let ch = rib
        .announce(p(3), pre, 0, base_attrs(&[LOCAL_AS]), nh(3))
        .unwrap();
    assert!(ch.is_some());
    // ORIGINATOR_ID == our router id: ours came back.
    let mut a = base_attrs(&[]);
    a.originator_id = Some(v4("10.0.0.1"));
    let ch = rib.announce(p(3), pre, 0, a, nh(3)).unwrap().unwrap();
    assert!(ch.new_best.is_none());
    // Our cluster id in the CLUSTER_LIST.
    let mut a = base_attrs(&[]);
    a.cluster_list = vec![v4("10.9.9.9"), v4("10.255.0.1")];
    assert!(rib.announce(p(3), pre, 0, a, nh(3)).unwrap().is_none());
    // Another cluster id is fine.
    let mut a = base_attrs(&[]);
    a.cluster_list = vec![v4("10.9.9.9")];
    assert!(rib.announce(p(3), pre, 0, a, nh(3)).unwrap().is_some());
    // Without a cluster id of our own, no CLUSTER_LIST check.
    let mut plain = Rib::new(cfg(None));
    plain.add_peer(peer(3, LOCAL_AS, false)).unwrap();
    let mut a = base_attrs(&[]);
    a.cluster_list = vec![v4("10.255.0.1")];
    assert!(plain.announce(p(3), pre, 0, a, nh(3)).unwrap().is_some());
}

// ---- import policy -------------------------------------------------------------------------

struct TestImport;
impl ImportPolicy for TestImport {
    fn import(&self, peer: &PeerInfo, route: &Route) -> PolicyResult {
        if matches!(route.prefix, IpNet::V4(_)) && route.prefix.prefix_len() > 28 {
            PolicyResult::Reject
        } else if peer.asn == 65001 {
            let mut a = (*route.attrs).clone();
            a.local_pref = Some(300);
            PolicyResult::Modify(a)
        } else {
            PolicyResult::Accept
        }
    }
}

#[test]
fn import_policy_applies_and_reimport() {
    let mut rib = Rib::with_policies(cfg(None), Box::new(TestImport), Box::new(AcceptAll));
    rib.add_peer(peer(2, 65001, false)).unwrap();
    rib.add_peer(peer(3, LOCAL_AS, false)).unwrap();
    let pre = net("192.0.2.0/24");
    assert!(
        rib.announce(p(2), net("192.0.2.1/32"), 0, base_attrs(&[65001]), nh(2))
            .unwrap()
            .is_none()
    );
    let mut lp = base_attrs(&[65001]);
    lp.local_pref = Some(200);
    rib.announce(p(3), pre, 0, lp, nh(3)).unwrap();
    rib.announce(p(2), pre, 0, base_attrs(&[65001]), nh(2))
        .unwrap();
    let best = rib.best(&pre).unwrap();
    assert_eq!((best.source.address, best.local_pref()), (p(2).0, 300));
    // Adj-RIB-In keeps the unmodified route.
    let raw = rib
        .adj_rib_in(p(2))
        .unwrap()
        .find(|r| r.prefix == pre)
        .unwrap();
    assert_eq!(raw.attrs.local_pref, None);
    // Policy change → reimport: peer 3 wins again.
    rib.set_import_policy(Box::new(AcceptAll));
    let ch = rib.reimport(p(2)).unwrap();
    assert_eq!(ch.len(), 2, "{ch:?}"); // the /24 changes best, the /32 appears
    assert_eq!(rib.best(&pre).unwrap().source.address, p(3).0);
    assert!(rib.best(&net("192.0.2.1/32")).is_some());
}

// ---- graceful restart ----------------------------------------------------------------------

#[test]
fn graceful_restart_flows() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, 65001, false)).unwrap();
    let v6 = |s: &str| {
        Some(MpNextHop::Ipv6 {
            global: s.parse().unwrap(),
            link_local: None,
        })
    };
    let a = net("10.65.0.0/26");
    let b = net("10.65.0.64/26");
    let c6 = net("fd00:65::/122");
    for pre in [a, b] {
        rib.announce(p(2), pre, 0, base_attrs(&[65001]), nh(2))
            .unwrap();
    }
    rib.announce(p(2), c6, 0, base_attrs(&[65001]), v6("fd00::2"))
        .unwrap();
    // Restart preserving IPv4 only: the IPv6 route goes, the IPv4 ones become stale.
    let ch = rib.peer_restarting(p(2), &[Family::IPV4_UNICAST]).unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!((ch[0].prefix, ch[0].new_best.is_none()), (c6, true));
    assert!(rib.best(&a).unwrap().stale && rib.best(&b).unwrap().stale);
    assert!(rib.adj_rib_in(p(2)).unwrap().all(|r| r.stale));
    // Re-announce `a` with the same content: stale cleared, no Loc-RIB change (FIB is right).
    assert!(
        rib.announce(p(2), a, 0, base_attrs(&[65001]), nh(2))
            .unwrap()
            .is_none()
    );
    assert!(!rib.best(&a).unwrap().stale);
    // End-of-RIB for IPv4: `b` was not refreshed and goes.
    let ch = rib.flush_stale(p(2), Family::IPV4_UNICAST).unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].prefix, b);
    assert!(rib.best(&a).is_some() && rib.best(&b).is_none());
    // Flushing the other family touches nothing.
    assert!(
        rib.flush_stale(p(2), Family::IPV6_UNICAST)
            .unwrap()
            .is_empty()
    );
    // Session down without GR: everything goes.
    let ch = rib.peer_down(p(2)).unwrap();
    assert_eq!(ch.len(), 1);
    assert!(rib.is_empty());
}

#[test]
fn stale_refresh_with_new_attributes_is_a_change() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, 65001, false)).unwrap();
    let a = net("10.65.0.0/26");
    rib.announce(p(2), a, 0, base_attrs(&[65001]), nh(2))
        .unwrap();
    rib.peer_restarting(p(2), &[Family::IPV4_UNICAST]).unwrap();
    let ch = rib
        .announce(p(2), a, 0, base_attrs(&[65001]), nh(9))
        .unwrap()
        .unwrap();
    assert!(ch.old_best.unwrap().stale);
    assert!(!ch.new_best.unwrap().stale);
    assert!(
        rib.flush_stale(p(2), Family::IPV4_UNICAST)
            .unwrap()
            .is_empty()
    );
}

// ---- ADD-PATH -------------------------------------------------------------------------------

#[test]
fn add_path_ids_are_separate_paths() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, LOCAL_AS, false)).unwrap();
    let pre = net("10.65.0.0/26");
    let mut lp = base_attrs(&[]);
    lp.local_pref = Some(200);
    rib.announce(p(2), pre, 1, base_attrs(&[]), nh(3)).unwrap();
    rib.announce(p(2), pre, 2, lp, nh(4)).unwrap();
    assert_eq!(rib.candidates(&pre).len(), 2);
    assert_eq!(rib.best(&pre).unwrap().path_id, 2);
    // Withdrawing path 2 leaves path 1.
    let ch = rib.withdraw(p(2), pre, 2).unwrap().unwrap();
    assert_eq!(ch.new_best.unwrap().path_id, 1);
    // Withdrawing an unknown path id is a no-op.
    assert!(rib.withdraw(p(2), pre, 7).unwrap().is_none());
    assert_eq!(rib.adj_rib_in(p(2)).unwrap().count(), 1);
    // Equal paths from one peer: lowest path id is chosen.
    rib.announce(p(2), pre, 0, base_attrs(&[]), nh(3)).unwrap();
    assert_eq!(rib.best(&pre).unwrap().path_id, 0);
}

// ---- UPDATE application (RFC 7606) -------------------------------------------------------------

fn v6_update(prefixes: &[&str], path_id: Option<u32>) -> Update {
    Update {
        attributes: base_attrs(&[65001]),
        mp_reach: Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: Some(MpNextHop::Ipv6 {
                global: "fd00::2".parse().unwrap(),
                link_local: None,
            }),
            nlri: prefixes
                .iter()
                .map(|s| Nlri {
                    prefix: net(s),
                    path_id,
                })
                .collect(),
            raw: Vec::new(),
        }),
        ..Update::default()
    }
}

#[test]
fn apply_update_actions() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, 65001, false)).unwrap();
    let mut u = Update {
        attributes: base_attrs(&[65001]),
        nlri: vec![Nlri::new(net("10.1.0.0/24")), Nlri::new(net("10.2.0.0/24"))],
        ..Update::default()
    };
    u.attributes.next_hop = Some(v4("10.0.0.2"));
    let ch = rib.apply_update(p(2), &u, None).unwrap();
    assert_eq!(ch.len(), 2);
    assert_eq!(
        rib.best(&net("10.1.0.0/24")).unwrap().next_hop,
        Some(MpNextHop::Ipv4(v4("10.0.0.2")))
    );
    let ch = rib
        .apply_update(p(2), &v6_update(&["fd00:1::/64"], Some(5)), None)
        .unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!(rib.best(&net("fd00:1::/64")).unwrap().path_id, 5);
    // Attribute-discard: applied normally.
    assert!(
        rib.apply_update(p(2), &u, Some(Action::AttributeDiscard))
            .unwrap()
            .is_empty()
    );
    // Treat-as-withdraw: the announced NLRI are withdrawn.
    let ch = rib
        .apply_update(p(2), &u, Some(Action::TreatAsWithdraw))
        .unwrap();
    assert_eq!(ch.len(), 2);
    assert!(ch.iter().all(|c| c.new_best.is_none()));
    // AFI/SAFI-disable: all IPv6 routes from the peer go and this UPDATE's IPv6 NLRI are ignored.
    rib.apply_update(p(2), &u, None).unwrap();
    let ch = rib
        .apply_update(
            p(2),
            &v6_update(&["fd00:2::/64"], Some(5)),
            Some(Action::AfiSafiDisable(Family::IPV6_UNICAST)),
        )
        .unwrap();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].prefix, net("fd00:1::/64"));
    assert!(rib.best(&net("fd00:2::/64")).is_none());
    assert_eq!(rib.len(), 2);
    // ...and stays disabled for the session: a later clean IPv6 UPDATE is ignored too.
    let later = v6_update(&["fd00:3::/64"], None);
    assert!(rib.apply_update(p(2), &later, None).unwrap().is_empty());
    rib.peer_down(p(2)).unwrap();
    assert_eq!(rib.apply_update(p(2), &later, None).unwrap().len(), 1);
    rib.apply_update(p(2), &u, None).unwrap();
    // Withdrawals through the withdrawn-routes field.
    let w = Update {
        withdrawn: vec![Nlri::new(net("10.1.0.0/24"))],
        ..Update::default()
    };
    assert_eq!(rib.apply_update(p(2), &w, None).unwrap().len(), 1);
    // Session reset must not reach the RIB; unknown peers are errors.
    assert_eq!(
        rib.apply_update(p(2), &u, Some(Action::SessionReset)),
        Err(RibError::SessionReset)
    );
    assert_eq!(
        rib.apply_update(p(9), &u, None),
        Err(RibError::UnknownPeer(p(9)))
    );
    // End-of-RIB changes nothing.
    assert!(
        rib.apply_update(p(2), &Update::end_of_rib(Family::IPV4_UNICAST), None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn peer_management_errors() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, 65001, false)).unwrap();
    assert_eq!(
        rib.add_peer(peer(2, 65001, false)),
        Err(RibError::DuplicatePeer(p(2)))
    );
    let mut local = peer(2, 65001, false);
    local.info.address = PeerId::LOCAL.0;
    assert_eq!(
        rib.add_peer(local),
        Err(RibError::ReservedAddress(PeerId::LOCAL.0))
    );
    assert!(matches!(
        rib.originate(net("fd00::/64"), base_attrs(&[]), nh(1)),
        Err(RibError::BadRoute { .. })
    ));
    rib.announce(p(2), net("10.1.0.0/24"), 0, base_attrs(&[65001]), nh(2))
        .unwrap();
    assert_eq!(rib.remove_peer(p(2)).unwrap().len(), 1);
    assert!(rib.peers().is_empty());
    assert_eq!(
        rib.session_established(p(2)),
        Err(RibError::UnknownPeer(p(2)))
    );
}

// ---- Adj-RIB-Out ----------------------------------------------------------------------------

/// Source/destination roles for the reflection matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Client,
    NonClient,
    Ebgp,
}

fn role_peer(n: u8, r: Role) -> PeerConfig {
    match r {
        Role::Client => peer(n, LOCAL_AS, true),
        Role::NonClient => peer(n, LOCAL_AS, false),
        Role::Ebgp => peer(n, 65000 + u32::from(n), false),
    }
}

#[test]
fn route_reflection_matrix() {
    use Role::*;
    // (source, destination, reflected by an RR, sent by a plain iBGP speaker)
    let matrix = [
        (Client, Client, true, false),
        (Client, NonClient, true, false),
        (Client, Ebgp, true, true),
        (NonClient, Client, true, false),
        (NonClient, NonClient, false, false),
        (NonClient, Ebgp, true, true),
        (Ebgp, Client, true, true),
        (Ebgp, NonClient, true, true),
        (Ebgp, Ebgp, true, true),
    ];
    for (src, dst, rr_sends, plain_sends) in matrix {
        for (cluster, want) in [(Some("10.255.0.1"), rr_sends), (None, plain_sends)] {
            let mut rib = Rib::new(cfg(cluster));
            let (sp, dp) = (role_peer(2, src), role_peer(3, dst));
            let (src_as, dst_as) = (sp.info.asn, dp.info.asn);
            rib.add_peer(sp).unwrap();
            rib.add_peer(dp).unwrap();
            rib.session_established(p(2)).unwrap();
            rib.session_established(p(3)).unwrap();
            let path = if src == Ebgp { vec![src_as] } else { vec![] };
            let ch = rib
                .announce(p(2), net("10.70.0.0/26"), 0, base_attrs(&path), nh(2))
                .unwrap();
            let deltas = rib.export_changes(&ch.into_iter().collect::<Vec<_>>());
            let to_dst: Vec<_> = deltas.iter().filter(|d| d.peer == p(3)).collect();
            assert!(deltas.iter().all(|d| d.peer != p(2)), "sent back to source");
            assert_eq!(
                !to_dst.is_empty(),
                want,
                "{src:?} → {dst:?} cluster {cluster:?}"
            );
            let Some(d) = to_dst.first() else { continue };
            let out = d.route.as_ref().unwrap();
            let reflected = src != Ebgp && dst != Ebgp;
            if dst == Ebgp {
                assert_eq!(
                    out.attrs.as_path.as_ref().unwrap().first_as(),
                    Some(LOCAL_AS)
                );
                assert_eq!(out.attrs.local_pref, None);
                assert_eq!(out.attrs.originator_id, None);
                assert!(out.attrs.cluster_list.is_empty());
                assert_eq!(out.next_hop, MpNextHop::Ipv4(v4("10.0.0.1")));
            } else {
                assert_eq!(out.attrs.local_pref, Some(100));
                assert_eq!(out.attrs.as_path.as_ref().unwrap().path_len(), path.len());
                // iBGP keeps the next hop.
                assert_eq!(out.next_hop, MpNextHop::Ipv4(v4("10.0.0.2")));
            }
            if reflected {
                assert_eq!(out.attrs.originator_id, Some(v4("1.1.1.2")));
                assert_eq!(out.attrs.cluster_list, vec![v4("10.255.0.1")]);
            } else if dst != Ebgp {
                assert_eq!(out.attrs.originator_id, None);
                assert!(out.attrs.cluster_list.is_empty());
            }
            let _ = dst_as;
        }
    }
}

#[test]
fn reflection_keeps_existing_originator_and_prepends_cluster() {
    let mut rib = Rib::new(cfg(Some("10.255.0.1")));
    rib.add_peer(peer(2, LOCAL_AS, true)).unwrap();
    rib.add_peer(peer(3, LOCAL_AS, true)).unwrap();
    rib.session_established(p(3)).unwrap();
    let mut a = base_attrs(&[]);
    a.originator_id = Some(v4("9.9.9.9"));
    a.cluster_list = vec![v4("10.254.0.1")];
    let ch = rib
        .announce(p(2), net("10.70.0.0/26"), 0, a, nh(2))
        .unwrap();
    let d = rib.export_changes(&ch.into_iter().collect::<Vec<_>>());
    let out = d[0].route.as_ref().unwrap();
    assert_eq!(out.attrs.originator_id, Some(v4("9.9.9.9")));
    assert_eq!(
        out.attrs.cluster_list,
        vec![v4("10.255.0.1"), v4("10.254.0.1")]
    );
}

#[test]
fn export_rewrites_next_hop_self_med_and_communities() {
    let mut rib = Rib::new(cfg(None));
    let mut nhs = peer(3, LOCAL_AS, false);
    nhs.next_hop_mode = NextHopMode::SelfHop;
    rib.add_peer(peer(2, 65002, false)).unwrap();
    rib.add_peer(nhs).unwrap();
    rib.add_peer(peer(4, 65004, false)).unwrap();
    for n in [2, 3, 4] {
        rib.session_established(p(n)).unwrap();
    }
    // eBGP-learned with MED → iBGP (next-hop-self) keeps the MED; eBGP drops it.
    let mut a = base_attrs(&[65002]);
    a.med = Some(7);
    let ch: Vec<_> = rib
        .announce(p(2), net("10.80.0.0/24"), 0, a, nh(2))
        .unwrap()
        .into_iter()
        .collect();
    let d = rib.export_changes(&ch);
    let to = |n: u8| {
        d.iter()
            .find(|x| x.peer == p(n))
            .unwrap()
            .route
            .clone()
            .unwrap()
    };
    assert_eq!(to(3).next_hop, MpNextHop::Ipv4(v4("10.0.0.1")));
    assert_eq!(to(3).attrs.med, Some(7));
    assert_eq!(to(4).attrs.med, None);
    assert_eq!(
        to(4).attrs.as_path,
        Some(AsPath::sequence(vec![LOCAL_AS, 65002]))
    );
    // Locally originated: next hop is ours, our MED goes to eBGP; IPv6 uses the v6 address.
    let mut a = base_attrs(&[]);
    a.med = Some(3);
    let ch: Vec<_> = rib
        .originate(net("fd00:65::/122"), a, None)
        .unwrap()
        .into_iter()
        .collect();
    let d = rib.export_changes(&ch);
    let r = d
        .iter()
        .find(|x| x.peer == p(4))
        .unwrap()
        .route
        .clone()
        .unwrap();
    assert_eq!(r.attrs.med, Some(3));
    assert_eq!(
        r.next_hop,
        MpNextHop::Ipv6 {
            global: "fd00::1".parse::<Ipv6Addr>().unwrap(),
            link_local: None
        }
    );
    assert_eq!(r.attrs.next_hop, None);
    // NO_EXPORT: iBGP only. NO_ADVERTISE: nobody.
    let mut a = base_attrs(&[]);
    a.communities = vec![Community::NO_EXPORT];
    let ch: Vec<_> = rib
        .originate(net("10.81.0.0/24"), a, None)
        .unwrap()
        .into_iter()
        .collect();
    let peers: Vec<PeerId> = rib.export_changes(&ch).iter().map(|d| d.peer).collect();
    assert_eq!(peers, vec![p(3)]);
    let mut a = base_attrs(&[]);
    a.communities = vec![Community::NO_ADVERTISE];
    let ch: Vec<_> = rib
        .originate(net("10.82.0.0/24"), a, None)
        .unwrap()
        .into_iter()
        .collect();
    assert!(rib.export_changes(&ch).is_empty());
}

#[test]
fn best_path_change_withdraws_from_new_source_and_suppresses_duplicates() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, 65002, false)).unwrap();
    rib.add_peer(peer(3, 65003, false)).unwrap();
    rib.session_established(p(2)).unwrap();
    rib.session_established(p(3)).unwrap();
    let pre = net("10.90.0.0/24");
    let ch: Vec<_> = rib
        .announce(p(2), pre, 0, base_attrs(&[65002, 1, 2]), nh(2))
        .unwrap()
        .into_iter()
        .collect();
    let d = rib.export_changes(&ch);
    assert_eq!(
        d.iter()
            .map(|x| (x.peer, x.route.is_some()))
            .collect::<Vec<_>>(),
        vec![(p(3), true)]
    );
    // Peer 3 sends a shorter path: it becomes best; peer 3 gets a withdrawal, peer 2 the route.
    let ch: Vec<_> = rib
        .announce(p(3), pre, 0, base_attrs(&[65003]), nh(3))
        .unwrap()
        .into_iter()
        .collect();
    let d = rib.export_changes(&ch);
    let mut got: Vec<_> = d.iter().map(|x| (x.peer, x.route.is_some())).collect();
    got.sort();
    assert_eq!(got, vec![(p(2), true), (p(3), false)]);
    // Exporting the same change again produces nothing.
    assert!(rib.export_changes(&ch).is_empty());
    // Peers whose session is down get nothing.
    rib.peer_down(p(2)).unwrap();
    let ch: Vec<_> = rib.withdraw(p(3), pre, 0).unwrap().into_iter().collect();
    let d = rib.export_changes(&ch);
    assert!(d.is_empty(), "{d:?}");
}

struct DenyV6;
impl ExportPolicy for DenyV6 {
    fn export(&self, _peer: &PeerInfo, route: &Route) -> PolicyResult {
        match route.prefix {
            IpNet::V6(_) => PolicyResult::Reject,
            IpNet::V4(_) => {
                let mut a = (*route.attrs).clone();
                a.communities.push(Community::from_parts(64512, 100));
                PolicyResult::Modify(a)
            }
        }
    }
}

#[test]
fn export_policy_and_refresh_exports() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, 65002, false)).unwrap();
    rib.originate(net("10.65.0.0/26"), base_attrs(&[]), None)
        .unwrap();
    rib.originate(net("fd00:65::/122"), base_attrs(&[]), None)
        .unwrap();
    let dump = rib.session_established(p(2)).unwrap();
    assert_eq!(dump.routes.len(), 2);
    assert_eq!(
        dump.end_of_rib,
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    rib.set_export_policy(Box::new(DenyV6));
    let d = rib.refresh_exports(p(2)).unwrap();
    assert_eq!(d.len(), 2);
    assert!(
        d.iter()
            .any(|x| x.prefix == net("fd00:65::/122") && x.route.is_none())
    );
    let v4r = d.iter().find(|x| x.prefix == net("10.65.0.0/26")).unwrap();
    assert!(
        v4r.route
            .as_ref()
            .unwrap()
            .attrs
            .communities
            .contains(&Community::from_parts(64512, 100))
    );
    assert_eq!(rib.adj_rib_out(p(2)).unwrap().len(), 1);
    assert!(rib.refresh_exports(p(2)).unwrap().is_empty());
}

#[test]
fn pid_helper_parses() {
    assert_eq!(pid("10.0.0.2"), p(2));
    assert_eq!(PeerId::LOCAL.to_string(), "local");
}

#[test]
fn equal_advertisements_share_one_allocation() {
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, 65002, false)).unwrap();
    rib.add_peer(peer(3, LOCAL_AS, false)).unwrap();
    rib.add_peer(peer(4, LOCAL_AS, false)).unwrap();
    for n in [3, 4] {
        rib.session_established(p(n)).unwrap();
    }
    let mut u = Update {
        attributes: base_attrs(&[65002]),
        nlri: vec![Nlri::new(net("10.1.0.0/24")), Nlri::new(net("10.2.0.0/24"))],
        ..Update::default()
    };
    u.attributes.next_hop = Some(v4("10.0.0.2"));
    let ch = rib.apply_update(p(2), &u, None).unwrap();
    let d = rib.export_changes(&ch);
    assert_eq!(d.len(), 4);
    let first = d[0].route.as_ref().unwrap();
    assert!(
        d.iter()
            .all(|x| Arc::ptr_eq(x.route.as_ref().unwrap(), first))
    );
    let dump = rib.full_dump(p(3)).unwrap();
    assert!(Arc::ptr_eq(&dump.routes[0].1, &dump.routes[1].1));
    assert_eq!(*dump.routes[0].1, **first);
}

#[test]
fn next_hop_keep_local_as_override_and_allow_local_as() {
    let mut rib = Rib::new(cfg(None));
    let mut keep = peer(3, 65003, false);
    keep.next_hop_mode = NextHopMode::Keep;
    keep.local_as = Some(65100);
    let mut allow = peer(2, 65002, false);
    allow.allow_local_as = 1;
    rib.add_peer(allow).unwrap();
    rib.add_peer(keep).unwrap();
    rib.add_peer(peer(4, 65004, false)).unwrap();
    rib.session_established(p(3)).unwrap();
    // One occurrence of our AS is allowed from peer 2, two are not.
    let pre = net("10.60.0.0/24");
    assert!(
        rib.announce(p(2), pre, 0, base_attrs(&[65002, LOCAL_AS]), nh(2))
            .unwrap()
            .is_some()
    );
    let d = rib.export_changes(
        &rib.best(&pre)
            .cloned()
            .map(|b| LocRibChange {
                prefix: pre,
                old_best: None,
                new_best: Some(b),
            })
            .into_iter()
            .collect::<Vec<_>>(),
    );
    let out = d[0].route.as_ref().unwrap();
    // Keep: the eBGP-learned next hop goes out unchanged; our AS towards peer 3 is 65100.
    assert_eq!(out.next_hop, MpNextHop::Ipv4(v4("10.0.0.2")));
    assert_eq!(
        out.attrs.as_path,
        Some(AsPath::sequence(vec![65100, 65002, LOCAL_AS]))
    );
    let ch = rib
        .announce(
            p(2),
            pre,
            0,
            base_attrs(&[65002, LOCAL_AS, 1, LOCAL_AS]),
            nh(2),
        )
        .unwrap()
        .unwrap();
    assert!(ch.new_best.is_none());
    // Peer 4 has no allowance.
    assert!(
        rib.announce(p(4), pre, 0, base_attrs(&[65004, LOCAL_AS]), nh(4))
            .unwrap()
            .is_none()
    );
    // Keep still sends our own address for our own routes.
    let ch: Vec<_> = rib
        .originate(net("10.61.0.0/26"), base_attrs(&[]), None)
        .unwrap()
        .into_iter()
        .collect();
    let d = rib.export_changes(&ch);
    assert_eq!(
        d[0].route.as_ref().unwrap().next_hop,
        MpNextHop::Ipv4(v4("10.0.0.1"))
    );
    // A loop on the peer's own local AS is caught too.
    let mut rib2 = Rib::new(cfg(None));
    let mut la = peer(5, 65005, false);
    la.local_as = Some(65100);
    rib2.add_peer(la).unwrap();
    assert!(
        rib2.announce(p(5), pre, 0, base_attrs(&[65005, 65100]), nh(5))
            .unwrap()
            .is_none()
    );
}

#[test]
fn ecmp_set_changes_are_reported_when_enabled() {
    for ecmp in [false, true] {
        let mut rib = Rib::new(cfg(None));
        rib.set_ecmp(ecmp);
        for n in [2, 3] {
            rib.add_peer(peer(n, LOCAL_AS, false)).unwrap();
        }
        let pre = net("10.65.2.0/26");
        assert!(
            rib.announce(p(2), pre, 0, base_attrs(&[]), nh(2))
                .unwrap()
                .is_some()
        );
        // An equal path from a higher router id: best unchanged, ECMP set grows.
        let ch = rib.announce(p(3), pre, 0, base_attrs(&[]), nh(3)).unwrap();
        assert_eq!(ch.is_some(), ecmp);
        if let Some(ch) = ch {
            assert!(
                ch.old_best
                    .unwrap()
                    .same_path(ch.new_best.as_ref().unwrap())
            );
        }
        assert_eq!(rib.multipath(&pre).len(), 2);
        // Peer 3 makes its path worse: ECMP set shrinks, best still peer 2.
        let mut worse = base_attrs(&[]);
        worse.local_pref = Some(50);
        assert_eq!(
            rib.announce(p(3), pre, 0, worse, nh(3)).unwrap().is_some(),
            ecmp
        );
        assert_eq!(rib.multipath(&pre).len(), 1);
        // A change outside the ECMP set reports nothing either way.
        let mut worse2 = base_attrs(&[]);
        worse2.local_pref = Some(40);
        assert!(rib.announce(p(3), pre, 0, worse2, nh(3)).unwrap().is_none());
    }
}

#[test]
fn peer_stats_and_missing_next_hop() {
    let mut rib = Rib::with_policies(cfg(None), Box::new(TestImport), Box::new(AcceptAll));
    rib.add_peer(peer(2, 65001, false)).unwrap();
    rib.add_peer(peer(3, LOCAL_AS, false)).unwrap();
    rib.session_established(p(3)).unwrap();
    rib.announce(p(2), net("10.1.0.0/24"), 0, base_attrs(&[65001]), nh(2))
        .unwrap();
    rib.announce(p(2), net("10.1.1.1/32"), 0, base_attrs(&[65001]), nh(2))
        .unwrap(); // rejected
    rib.announce(p(3), net("10.2.0.0/24"), 0, base_attrs(&[]), nh(3))
        .unwrap();
    let mut lp = base_attrs(&[]);
    lp.local_pref = Some(400);
    let ch = rib
        .announce(p(3), net("10.1.0.0/24"), 0, lp, nh(3))
        .unwrap();
    assert!(ch.is_some());
    let s2 = rib.peer_stats(p(2)).unwrap();
    assert_eq!(
        s2,
        PeerStats {
            received: 2,
            imported: 1,
            preferred: 0,
            stale: 0,
            exported: 0
        }
    );
    rib.export_changes(&[]);
    let dump = rib.session_established(p(3)).unwrap();
    assert_eq!(
        dump.routes.len(),
        0,
        "iBGP routes are not sent back to an iBGP peer"
    );
    let s3 = rib.peer_stats(p(3)).unwrap();
    assert_eq!((s3.received, s3.imported, s3.preferred), (2, 2, 2));
    rib.peer_restarting(p(2), &[Family::IPV4_UNICAST]).unwrap();
    assert_eq!(rib.peer_stats(p(2)).unwrap().stale, 2);
    // A learned route without a next hop is refused by `announce` and withdrawn by
    // `apply_update`.
    assert!(matches!(
        rib.announce(p(2), net("10.3.0.0/24"), 0, base_attrs(&[65001]), None),
        Err(RibError::BadRoute { .. })
    ));
    let u = Update {
        attributes: base_attrs(&[65001]),
        nlri: vec![Nlri::new(net("10.1.0.0/24"))],
        ..Update::default()
    };
    rib.apply_update(p(2), &u, None).unwrap();
    assert_eq!(rib.peer_stats(p(2)).unwrap().received, 1);
}

#[test]
fn apply_delivered_and_route_refresh() {
    use calico_bgp_packet::{CodecContext, Decoded, Message, UpdateError, decode};
    let mut rib = Rib::new(cfg(None));
    rib.add_peer(peer(2, 65002, false)).unwrap();
    rib.add_peer(peer(3, 65003, false)).unwrap();
    rib.session_established(p(3)).unwrap();
    let mut u = Update {
        attributes: base_attrs(&[65002]),
        nlri: vec![Nlri::new(net("10.1.0.0/24"))],
        ..Update::default()
    };
    u.attributes.next_hop = Some(v4("10.0.0.2"));
    let ch = rib.apply_delivered(p(2), &u, &[]).unwrap();
    rib.export_changes(&ch);
    rib.originate(net("fd00:65::/122"), base_attrs(&[]), None)
        .map(|c| rib.export_changes(&c.into_iter().collect::<Vec<_>>()))
        .unwrap();
    // An UPDATE with a malformed ORIGIN decodes with a treat-as-withdraw error.
    let mut bytes = Message::Update(u.clone())
        .encode(&CodecContext::initial())
        .unwrap();
    // ORIGIN value is the first attribute's value octet: header 19 + withdrawn len 2 +
    // attrs len 2 + flags/type/len 3.
    bytes[19 + 2 + 2 + 3] = 7;
    let Ok(Decoded {
        message: Message::Update(ud),
        errors,
    }) = decode(&bytes, &CodecContext::initial())
    else {
        panic!("decode")
    };
    let errors: Vec<UpdateError> = errors;
    assert!(!errors.is_empty());
    let ch = rib.apply_delivered(p(2), &ud, &errors).unwrap();
    assert_eq!(ch.len(), 1);
    assert!(ch[0].new_best.is_none());
    let d = rib.export_changes(&ch);
    assert_eq!(d.len(), 1);
    // Route refresh resends what peer 3 holds, per family.
    let v6 = rib.route_refresh(p(3), Family::IPV6_UNICAST).unwrap();
    assert_eq!(v6.routes.len(), 1);
    assert!(v6.end_of_rib.is_empty());
    assert!(
        rib.route_refresh(p(3), Family::IPV4_UNICAST)
            .unwrap()
            .routes
            .is_empty()
    );
}

/// Calico's priorities travel as LOCAL_PREF set by the export policy; the RIB must send the
/// policy's value to internal peers, not the route's own (or the default 100).
#[test]
fn export_policy_local_pref_reaches_internal_peers() {
    struct Priority;
    impl ExportPolicy for Priority {
        fn export(&self, _peer: &PeerInfo, route: &Route) -> PolicyResult {
            let mut a = (*route.attrs).clone();
            a.local_pref = Some(2_147_482_623);
            PolicyResult::Modify(a)
        }
    }
    let mut rib = Rib::new(cfg(None));
    rib.set_export_policy(Box::new(Priority));
    rib.add_peer(peer(2, LOCAL_AS, false)).unwrap();
    rib.add_peer(peer(3, 65003, false)).unwrap();
    rib.originate(net("10.65.0.0/26"), base_attrs(&[]), None)
        .unwrap();
    let ibgp = rib.session_established(p(2)).unwrap();
    assert_eq!(ibgp.routes[0].1.attrs.local_pref, Some(2_147_482_623));
    // Never to external peers (RFC 4271 §5.1.5).
    let ebgp = rib.session_established(p(3)).unwrap();
    assert_eq!(ebgp.routes[0].1.attrs.local_pref, None);
}
