//! Property test: random announce/withdraw/originate/restart/flush/down sequences from five
//! peers (two RR clients, a non-client, two eBGP peers of one AS) against a brute-force
//! recomputation: Loc-RIB best == selection over Adj-RIB-In after import, and per-peer
//! Adj-RIB-Out deltas replayed on empty tables == the full dump == the stored Adj-RIB-Out.

#![allow(clippy::unwrap_used)]

use super::*;

// ---- property test -------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Announce {
        peer: u8,
        prefix: u8,
        path_id: u32,
        lp: u32,
        len: u8,
        med: u32,
        origin: u8,
    },
    Withdraw {
        peer: u8,
        prefix: u8,
        path_id: u32,
    },
    Originate {
        prefix: u8,
    },
    Restart {
        peer: u8,
    },
    Flush {
        peer: u8,
    },
    Down {
        peer: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..5, 0u8..6, 0u32..2, prop::sample::select(vec![90u32, 100, 100, 110]), 0u8..2, 0u32..3, prop::sample::select(vec![0u8, 0, 0, 2]))
            .prop_map(|(peer, prefix, path_id, lp, len, med, origin)| Op::Announce { peer, prefix, path_id, lp, len, med, origin }),
        3 => (0u8..5, 0u8..6, 0u32..2).prop_map(|(peer, prefix, path_id)| Op::Withdraw { peer, prefix, path_id }),
        1 => (0u8..6).prop_map(|prefix| Op::Originate { prefix }),
        1 => (0u8..5).prop_map(|peer| Op::Restart { peer }),
        1 => (0u8..5).prop_map(|peer| Op::Flush { peer }),
        1 => (0u8..5).prop_map(|peer| Op::Down { peer }),
    ]
}

/// Five peers: two RR clients, one non-client, two eBGP (the same neighbour AS, so MED
/// matters across them).
fn prop_peers() -> Vec<PeerConfig> {
    vec![
        peer(2, LOCAL_AS, true),
        peer(3, LOCAL_AS, true),
        peer(4, LOCAL_AS, false),
        peer(5, 65005, false),
        peer(6, 65005, false),
    ]
}

fn prop_prefix(i: u8) -> IpNet {
    if i.is_multiple_of(2) {
        net(&format!("10.{i}.0.0/24"))
    } else {
        net(&format!("fd00:{i}::/64"))
    }
}

/// Property-test import policy: rejects some paths and raises LOCAL_PREF on others, so the
/// Loc-RIB holds modified copies of Adj-RIB-In routes.
struct PropImport;
impl ImportPolicy for PropImport {
    fn import(&self, peer: &PeerInfo, route: &Route) -> PolicyResult {
        match (route.attrs.med, route.path_id) {
            (Some(1), 1) => PolicyResult::Reject,
            (Some(2), _) if peer.peer_type == PeerType::External => {
                let mut a = (*route.attrs).clone();
                a.local_pref = Some(105);
                PolicyResult::Modify(a)
            }
            _ => PolicyResult::Accept,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn incremental_matches_recomputation(ops in prop::collection::vec(op(), 1..60), ecmp in any::<bool>()) {
        let mut rib = Rib::with_policies(cfg(Some("10.255.0.1")), Box::new(PropImport), Box::new(AcceptAll));
        rib.set_ecmp(ecmp);
        // The FIB as a speaker would program it from the changes alone: best path and, with
        // ECMP, the multipath set read at the time of each change.
        type Fib = BTreeMap<IpNet, (Arc<Route>, Vec<(IpAddr, u32)>)>;
        let mp_key = |rib: &Rib, p: &IpNet| -> Vec<(IpAddr, u32)> {
            let mut v: Vec<_> = rib.multipath(p).iter().map(|r| (r.source.address, r.path_id)).collect();
            v.sort();
            v
        };
        let mut fib: Fib = BTreeMap::new();
        let peers = prop_peers();
        for pc in &peers {
            rib.add_peer(pc.clone()).unwrap();
            rib.session_established(pc.info.id()).unwrap();
        }
        // Adj-RIB-Out rebuilt from deltas alone, per peer.
        let mut replay: BTreeMap<PeerId, BTreeMap<IpNet, Arc<OutRoute>>> = BTreeMap::new();
        for o in ops {
            let pid_of = |i: u8| peers[usize::from(i)].info.id();
            let changes: Vec<LocRibChange> = match o {
                Op::Announce { peer, prefix, path_id, lp, len, med, origin } => {
                    let pc = &peers[usize::from(peer)];
                    let first = if pc.info.peer_type == PeerType::External { pc.info.asn } else { 65100 };
                    let mut path = vec![first];
                    path.extend((0..len).map(|i| 65200 + u32::from(i)));
                    let mut a = base_attrs(&path);
                    a.local_pref = (pc.info.peer_type == PeerType::Internal).then_some(lp);
                    a.med = Some(med);
                    a.origin = Origin::from_value(origin);
                    let pre = prefix_ip(prefix);
                    let hop = match pre { IpNet::V4(_) => nh(peer + 2), IpNet::V6(_) => Some(MpNextHop::Ipv6 { global: "fd00::9".parse().unwrap(), link_local: None }) };
                    rib.announce(pid_of(peer), pre, path_id, a, hop).unwrap().into_iter().collect()
                }
                Op::Withdraw { peer, prefix, path_id } => rib.withdraw(pid_of(peer), prefix_ip(prefix), path_id).unwrap().into_iter().collect(),
                Op::Originate { prefix } => rib.originate(prefix_ip(prefix), base_attrs(&[]), None).unwrap().into_iter().collect(),
                Op::Restart { peer } => rib.peer_restarting(pid_of(peer), &[Family::IPV4_UNICAST]).unwrap(),
                Op::Flush { peer } => {
                    let mut c = rib.flush_stale(pid_of(peer), Family::IPV4_UNICAST).unwrap();
                    c.extend(rib.flush_stale(pid_of(peer), Family::IPV6_UNICAST).unwrap());
                    c
                }
                Op::Down { peer } => rib.peer_down(pid_of(peer)).unwrap(),
            };
            // Restart/Down forget the Adj-RIB-Out: bring the session back like the speaker would.
            if let Op::Restart { peer } | Op::Down { peer } = o {
                let id = pid_of(peer);
                let dump = rib.session_established(id).unwrap();
                replay.insert(id, dump.routes.into_iter().collect());
            }
            for c in &changes {
                match &c.new_best {
                    Some(b) => { fib.insert(c.prefix, (b.clone(), mp_key(&rib, &c.prefix))); }
                    None => { prop_assert!(fib.remove(&c.prefix).is_some()); }
                }
            }
            for d in rib.export_changes(&changes) {
                let t = replay.entry(d.peer).or_default();
                match d.route {
                    Some(r) => { t.insert(d.prefix, r); }
                    None => { prop_assert!(t.remove(&d.prefix).is_some(), "withdraw of unsent {}", d.prefix); }
                }
            }
        }
        // Loc-RIB best == brute force from Adj-RIB-In.
        let mut all: BTreeMap<IpNet, Vec<Arc<Route>>> = BTreeMap::new();
        for id in std::iter::once(PeerId::LOCAL).chain(peers.iter().map(|p| p.info.id())) {
            for r in rib.adj_rib_in(id).unwrap() {
                if let Some(imp) = rib.imported(r.clone()) {
                    all.entry(r.prefix).or_default().push(imp);
                }
            }
        }
        let brute: BTreeMap<IpNet, Arc<Route>> = all
            .into_iter()
            .filter_map(|(p, c)| best::select(&c, LOCAL_AS).map(|i| (p, c[i].clone())))
            .collect();
        let got: BTreeMap<IpNet, Arc<Route>> = rib.loc_rib().map(|(p, r)| (*p, r.clone())).collect();
        prop_assert_eq!(brute.len(), got.len());
        for (p, b) in &brute {
            prop_assert!(got[p].same_path(b), "{}: {:?} vs {:?}", p, got[p], b);
            prop_assert_eq!(got[p].stale, b.stale);
        }
        // The FIB replayed from changes matches the Loc-RIB (and, with ECMP, its multipath sets).
        prop_assert_eq!(fib.len(), got.len());
        for (p, (b, mp)) in &fib {
            prop_assert!(got[p].same_path(b));
            if ecmp {
                prop_assert_eq!(mp, &mp_key(&rib, p), "{}", p);
            }
        }
        // Deltas replayed on empty tables == full dump == stored Adj-RIB-Out.
        for pc in &peers {
            let id = pc.info.id();
            let dump: BTreeMap<IpNet, Arc<OutRoute>> = rib.full_dump(id).unwrap().routes.into_iter().collect();
            let rep = replay.remove(&id).unwrap_or_default();
            prop_assert_eq!(&rep, &dump, "peer {}", id);
            let stored: BTreeMap<IpNet, Arc<OutRoute>> = rib.adj_rib_out(id).unwrap().into_iter().collect();
            prop_assert_eq!(&stored, &dump);
            // Never back to the source.
            for p in dump.keys() {
                prop_assert!(rib.best(p).unwrap().source.address != id.0);
            }
        }
    }
}

fn prefix_ip(i: u8) -> IpNet {
    prop_prefix(i)
}
