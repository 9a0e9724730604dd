//! Adj-RIB-Out: which Loc-RIB best paths go to which peer, and how their attributes are
//! rewritten (RFC 4271 §9.2 and §5.1, RFC 4456 §8, RFC 1997 well-known communities).

use std::collections::HashMap;
use std::sync::Arc;

use calico_bgp_packet::{Community, Family, MpNextHop};
use ipnet::IpNet;

use super::types::{
    FullDump, LocRibChange, NextHopMode, OutDelta, OutRoute, PeerConfig, PeerId, PeerType,
    PolicyResult, RibError, Route, family_of,
};
use super::{Peer, Rib};

impl Rib {
    /// Whether `route` may be sent to `dest` at all (before policy).
    fn eligible(&self, dest: &PeerConfig, route: &Route) -> bool {
        let src = &route.source;
        // Never back to the peer it came from (RFC 4271 §9.2 leaves it open; BIRD and every
        // common speaker suppress it, and the peer would drop it as a loop anyway).
        if src.address == dest.info.address {
            return false;
        }
        if !dest.families.contains(&route.family()) {
            return false;
        }
        let comms = &route.attrs.communities;
        if comms.contains(&Community::NO_ADVERTISE) {
            return false;
        }
        if dest.info.peer_type == PeerType::External
            && (comms.contains(&Community::NO_EXPORT)
                || comms.contains(&Community::NO_EXPORT_SUBCONFED))
        {
            return false;
        }
        match (src.peer_type, dest.info.peer_type) {
            (PeerType::Internal, PeerType::Internal) => match self.cfg.cluster_id {
                // RFC 4271 §9.2.1: iBGP-learned routes are not sent to iBGP peers...
                None => false,
                // ...unless we reflect (RFC 4456 §8): from a client to all clients and
                // non-clients; from a non-client to clients only.
                Some(_) => src.rr_client || dest.info.rr_client,
            },
            _ => true,
        }
    }

    /// The route as `dest` should receive it, or `None` when it must not be advertised.
    pub(super) fn export_route(&self, dest: &PeerConfig, route: &Route) -> Option<OutRoute> {
        if !self.eligible(dest, route) {
            return None;
        }
        let mut attrs = match self.export.export(&dest.info, route) {
            PolicyResult::Accept => (*route.attrs).clone(),
            PolicyResult::Reject => return None,
            PolicyResult::Modify(a) => a,
        };
        let self_hop = match route.prefix {
            IpNet::V4(_) => dest.local_v4.map(MpNextHop::Ipv4),
            IpNet::V6(_) => dest.local_v6.map(|global| MpNextHop::Ipv6 {
                global,
                link_local: None,
            }),
        };
        let ebgp = dest.info.peer_type == PeerType::External;
        let keep = match dest.next_hop_mode {
            NextHopMode::Auto => !ebgp,
            NextHopMode::SelfHop => false,
            NextHopMode::Keep => true,
        };
        // Our own routes (next hop `None`) always carry our address.
        let next_hop = match route.next_hop {
            Some(nh) if keep => nh,
            _ => self_hop?,
        };
        if attrs.origin.is_none() {
            attrs.origin = Some(calico_bgp_packet::Origin::Igp);
        }
        let mut path = attrs.as_path.take().unwrap_or_default();
        if ebgp {
            // RFC 4271 §5.1.2: prepend our AS; §5.1.5: no LOCAL_PREF to external peers;
            // §5.1.4: a MED learned from another AS is not passed on; RFC 4456 §8: the RR
            // attributes are non-transitive and stay inside the AS.
            path.prepend(dest.local_as.unwrap_or(self.cfg.local_as));
            attrs.local_pref = None;
            if route.source.peer_type != PeerType::Local {
                attrs.med = None;
            }
            attrs.originator_id = None;
            attrs.cluster_list.clear();
        } else {
            // §5.1.5: LOCAL_PREF is always sent to internal peers; a value the export
            // policy set (Calico's priorities, BGPFilter `setPriority`) wins over the route's.
            attrs.local_pref = Some(attrs.local_pref.unwrap_or(route.local_pref()));
            if route.source.peer_type == PeerType::External {
                // Not reflected: the ORIGINATOR_ID/CLUSTER_LIST an eBGP peer might have sent
                // are not ours to keep.
                attrs.originator_id = None;
                attrs.cluster_list.clear();
            }
            if route.source.peer_type == PeerType::Internal
                && let Some(cluster) = self.cfg.cluster_id
            {
                // Reflection (RFC 4456 §8): ORIGINATOR_ID names the route's originator in the
                // AS; our cluster id goes first in the CLUSTER_LIST.
                attrs.originator_id.get_or_insert(route.source.router_id);
                attrs.cluster_list.insert(0, cluster);
            }
        }
        attrs.as_path = Some(path);
        // The next hop travels in `OutRoute::next_hop`; keep NEXT_HOP consistent for IPv4.
        attrs.next_hop = match next_hop {
            MpNextHop::Ipv4(a) => Some(a),
            MpNextHop::Ipv6 { .. } => None,
        };
        Some(OutRoute { attrs, next_hop })
    }

    /// Turns Loc-RIB changes into per-peer announcements and withdrawals for every peer whose
    /// session is up, updating their Adj-RIB-Out. An unchanged advertisement is not repeated.
    /// Deltas are grouped by change, peers in address order.
    pub fn export_changes(&mut self, changes: &[LocRibChange]) -> Vec<OutDelta> {
        let mut ids: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.adj_out.is_some())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let mut shared = Sharer::new(ids.len());
        let mut out = Vec::new();
        for change in changes {
            for (slot, id) in ids.iter().enumerate() {
                let Some(peer) = self.peers.get(id) else {
                    continue;
                };
                let new = change
                    .new_best
                    .as_ref()
                    .and_then(|b| self.export_route(&peer.cfg, b))
                    .map(|r| shared.share(slot, r));
                if let Some(d) = update_adj_out(self.peers.get_mut(id), *id, change.prefix, new) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// Everything `peer` should hold, computed from the Loc-RIB (for a route refresh, RFC
    /// 2918, or to check the Adj-RIB-Out). Does not change state.
    pub fn full_dump(&self, peer: PeerId) -> Result<FullDump, RibError> {
        let p = self.peers.get(&peer).ok_or(RibError::UnknownPeer(peer))?;
        let mut shared = Sharer::new(1);
        Ok(FullDump {
            routes: self
                .loc_rib()
                .filter_map(|(prefix, best)| {
                    self.export_route(&p.cfg, best)
                        .map(|r| (*prefix, shared.share(0, r)))
                })
                .collect(),
            end_of_rib: p.cfg.families.clone(),
        })
    }

    /// The peer asked for a route refresh of `family` (RFC 2918, fsm
    /// `RouteRefreshRequested`): what we advertised of that family, resent as is. No
    /// End-of-RIB follows (plain RFC 2918 has none; RFC 7313 markers are the speaker's).
    pub fn route_refresh(&self, peer: PeerId, family: Family) -> Result<FullDump, RibError> {
        let mut routes = self.adj_rib_out(peer)?;
        routes.retain(|(p, _)| family_of(p) == family);
        Ok(FullDump {
            routes,
            end_of_rib: Vec::new(),
        })
    }

    /// The peer's session reached Established: its Adj-RIB-Out is filled from the Loc-RIB and
    /// returned as the initial table, followed by End-of-RIB per family (RFC 4724 §2).
    pub fn session_established(&mut self, peer: PeerId) -> Result<FullDump, RibError> {
        let dump = self.full_dump(peer)?;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.adj_out = Some(dump.routes.iter().cloned().collect());
            p.disabled.clear();
        }
        Ok(dump)
    }

    /// Recomputes a peer's Adj-RIB-Out (after an export policy or peer config change) and
    /// returns the difference to what it holds. Nothing is returned while it is down.
    pub fn refresh_exports(&mut self, peer: PeerId) -> Result<Vec<OutDelta>, RibError> {
        let dump = self.full_dump(peer)?;
        let p = self
            .peers
            .get_mut(&peer)
            .ok_or(RibError::UnknownPeer(peer))?;
        let Some(old) = p.adj_out.as_ref() else {
            return Ok(Vec::new());
        };
        let new: HashMap<IpNet, Arc<OutRoute>> = dump.routes.into_iter().collect();
        let mut prefixes: Vec<IpNet> = old.keys().chain(new.keys()).copied().collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let mut out = Vec::new();
        for prefix in prefixes {
            let route = new.get(&prefix).cloned();
            out.extend(update_adj_out(Some(&mut *p), peer, prefix, route));
        }
        Ok(out)
    }
}

/// Shares one allocation between equal advertisements: the prefixes of one UPDATE, and the
/// same route sent to several iBGP peers, usually rewrite to identical attributes. Without it
/// every Adj-RIB-Out entry would own a copy of its attributes (100k prefixes × a 100-node
/// mesh would hold 10M copies); BIRD interns its attribute sets for the same reason.
struct Sharer {
    /// Last advertisement per destination peer (by slot).
    per_peer: Vec<Option<Arc<OutRoute>>>,
    /// Last advertisement to any peer.
    last: Option<Arc<OutRoute>>,
}

impl Sharer {
    fn new(peers: usize) -> Sharer {
        Sharer {
            per_peer: vec![None; peers],
            last: None,
        }
    }

    fn share(&mut self, slot: usize, r: OutRoute) -> Arc<OutRoute> {
        if let Some(a) = self.per_peer.get(slot).and_then(Option::as_ref)
            && **a == r
        {
            return a.clone();
        }
        let arc = match &self.last {
            Some(a) if **a == r => a.clone(),
            _ => Arc::new(r),
        };
        if let Some(s) = self.per_peer.get_mut(slot) {
            *s = Some(arc.clone());
        }
        self.last = Some(arc.clone());
        arc
    }
}

/// Records `new` as what `peer` holds for `prefix`; the delta when it differs.
fn update_adj_out(
    peer: Option<&mut Peer>,
    id: PeerId,
    prefix: IpNet,
    new: Option<Arc<OutRoute>>,
) -> Option<OutDelta> {
    let out = peer?.adj_out.as_mut()?;
    match new {
        Some(r) => {
            if out
                .get(&prefix)
                .is_some_and(|old| Arc::ptr_eq(old, &r) || **old == *r)
            {
                return None;
            }
            out.insert(prefix, r.clone());
            Some(OutDelta {
                peer: id,
                prefix,
                route: Some(r),
            })
        }
        None => out.remove(&prefix).map(|_| OutDelta {
            peer: id,
            prefix,
            route: None,
        }),
    }
}
