//! Best-path selection (RFC 4271 §9.1.2.2) as an elimination process over all candidates of
//! one prefix. Pairwise comparison is not enough: the MED step compares only routes from the
//! same neighbouring AS, which makes "better than" non-transitive, so a pairwise pick would
//! depend on arrival order. Eliminating step by step over the whole set, as §9.1.2.2 is
//! written, gives one answer whatever the order.
//!
//! Steps, in order:
//! 1. highest LOCAL_PREF (absent = [`DEFAULT_LOCAL_PREF`](super::DEFAULT_LOCAL_PREF));
//! 2. locally originated over learned (BIRD, Cisco "weight"/locally sourced);
//! 3. shortest AS_PATH (an AS_SET counts 1, confederation segments 0);
//! 4. lowest ORIGIN (IGP < EGP < INCOMPLETE);
//! 5. lowest MED, only among routes with the same neighbouring AS (missing MED = 0);
//! 6. eBGP over iBGP;
//! 7. (lowest IGP cost to the next hop: skipped — calico-node peers are directly connected,
//!    or reached over the node's default route, and the RIB has no IGP metric to compare;
//!    BIRD with `igp table` unset behaves the same)
//!    — routes still equal here are the ECMP set ([`multipath`], BIRD `merge paths`);
//! 8. lowest router id (ORIGINATOR_ID when present, RFC 4456 §9);
//! 9. shortest CLUSTER_LIST (RFC 4456 §9);
//! 10. lowest peer address;
//! 11. lowest ADD-PATH path id (only to make the choice deterministic between two paths of
//!     one peer).
//!
//! Stale routes (RFC 4724) are not penalised: §4.2 says to keep using them, so they lose only
//! through these steps.

use std::sync::Arc;

use super::types::{PeerType, Route};

/// Keeps the indices whose key is the minimum.
fn keep_min<K: Ord>(set: &mut Vec<usize>, cands: &[Arc<Route>], key: impl Fn(&Route) -> K) {
    if set.len() < 2 {
        return;
    }
    let Some(min) = set.iter().map(|&i| key(&cands[i])).min() else {
        return;
    };
    set.retain(|&i| key(&cands[i]) == min);
}

/// Steps 1–6: the candidates equal up to (and including) the eBGP/iBGP step.
fn equal_best(cands: &[Arc<Route>], local_as: u32) -> Vec<usize> {
    let mut set: Vec<usize> = (0..cands.len()).collect();
    keep_min(&mut set, cands, |r| std::cmp::Reverse(r.local_pref()));
    keep_min(&mut set, cands, |r| r.source.peer_type != PeerType::Local);
    keep_min(&mut set, cands, |r| r.as_path_len());
    keep_min(&mut set, cands, |r| r.origin());
    if set.len() > 1 {
        // Step 5: drop a route when another one from the same neighbouring AS has a lower MED.
        let survivors: Vec<usize> = set
            .iter()
            .copied()
            .filter(|&i| {
                let (asn, med) = (cands[i].neighbor_as(local_as), cands[i].med());
                !set.iter()
                    .any(|&j| cands[j].neighbor_as(local_as) == asn && cands[j].med() < med)
            })
            .collect();
        set = survivors;
    }
    keep_min(&mut set, cands, |r| {
        r.source.peer_type != PeerType::External
    });
    set
}

/// Index of the best candidate, `None` when there are none.
pub fn select(cands: &[Arc<Route>], local_as: u32) -> Option<usize> {
    let mut set = equal_best(cands, local_as);
    keep_min(&mut set, cands, |r| r.selection_router_id());
    keep_min(&mut set, cands, |r| r.attrs.cluster_list.len());
    keep_min(&mut set, cands, |r| r.source.address);
    keep_min(&mut set, cands, |r| r.path_id);
    set.first().copied()
}

/// Indices of all candidates equal to the best up to the step before the router-id
/// comparison (the ECMP set for BIRD-style `merge paths`), best first.
pub fn multipath(cands: &[Arc<Route>], local_as: u32) -> Vec<usize> {
    let mut set = equal_best(cands, local_as);
    if let Some(best) = select(cands, local_as)
        && let Some(pos) = set.iter().position(|&i| i == best)
    {
        set.swap(0, pos);
    }
    set
}
