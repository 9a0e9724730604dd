//! The RIB of the speaker: Adj-RIB-In per peer, the Loc-RIB with best-path selection, and
//! Adj-RIB-Out per peer (RFC 4271 §3.2, §9), with route reflection (RFC 4456), graceful-
//! restart stale handling (RFC 4724 §4.2), ADD-PATH path ids kept apart (RFC 7911) and
//! RFC 7606 treat-as-withdraw.
//!
//! Data flow, and what each call returns:
//!
//! * [`Rib::apply_update`] / [`Rib::announce`] / [`Rib::withdraw`] / [`Rib::originate`] and
//!   the session calls ([`Rib::peer_down`], [`Rib::peer_restarting`], [`Rib::flush_stale`])
//!   change Adj-RIB-In, run loop detection and the [`ImportPolicy`], update the Loc-RIB
//!   candidates and return one [`LocRibChange`] per prefix whose best path changed. The
//!   speaker programs the FIB from these.
//! * [`Rib::export_changes`] turns those changes into per-peer [`OutDelta`]s for every peer
//!   whose session is up, updating each Adj-RIB-Out and suppressing no-op re-announcements.
//! * [`Rib::session_established`] fills a peer's Adj-RIB-Out from the Loc-RIB and returns
//!   the [`FullDump`] to send, with the End-of-RIB markers; [`Rib::full_dump`] computes the
//!   same without touching state (route refresh).
//!
//! Only the best path is advertised (no ADD-PATH transmit yet, see the crate report).
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use calico_bgp::rib::{PeerConfig, PeerId, PeerInfo, PeerType, Rib, RibConfig};
//! use calico_bgp_packet::{AsPath, MpNextHop, Origin, PathAttributes};
//!
//! let mut rib = Rib::new(RibConfig {
//!     local_as: 64512,
//!     router_id: Ipv4Addr::new(10, 0, 0, 1),
//!     cluster_id: None,
//! });
//! // An eBGP top-of-rack router and an iBGP mesh peer.
//! let tor = PeerInfo::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)), Ipv4Addr::new(10, 0, 0, 254), 65000, PeerType::External);
//! let mesh = PeerInfo::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), Ipv4Addr::new(10, 0, 0, 2), 64512, PeerType::Internal);
//! let local = Some(Ipv4Addr::new(10, 0, 0, 1));
//! rib.add_peer(PeerConfig::new(tor.clone(), local, None))?;
//! rib.add_peer(PeerConfig::new(mesh.clone(), local, None))?;
//! rib.session_established(tor.id())?; // initial table: empty, then End-of-RIB
//!
//! // The mesh peer announces its IPAM block: program the FIB, then tell the ToR.
//! let attrs = PathAttributes {
//!     origin: Some(Origin::Igp),
//!     as_path: Some(AsPath::default()),
//!     local_pref: Some(100),
//!     ..PathAttributes::default()
//! };
//! let block = "10.65.1.0/26".parse()?;
//! let next_hop = Some(MpNextHop::Ipv4(Ipv4Addr::new(10, 0, 0, 2)));
//! let changes: Vec<_> = rib.announce(mesh.id(), block, 0, attrs, next_hop)?.into_iter().collect();
//! assert_eq!(changes[0].new_best.as_ref().unwrap().next_hop, next_hop); // → kernel route
//! let out = rib.export_changes(&changes);
//! assert_eq!(out[0].peer, tor.id());
//! let sent = out[0].route.as_ref().unwrap();
//! assert_eq!(sent.attrs.as_path, Some(AsPath::sequence(vec![64512]))); // our AS prepended
//! assert_eq!(sent.next_hop, MpNextHop::Ipv4(Ipv4Addr::new(10, 0, 0, 1))); // next hop self
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod best;
mod export;
mod types;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use smallvec::SmallVec;

use calico_bgp_packet::{Action, Family, MpNextHop, Nlri, PathAttributes, Update, UpdateError};
use ipnet::IpNet;

pub use types::{
    AcceptAll, DEFAULT_LOCAL_PREF, ExportPolicy, FullDump, ImportPolicy, LocRibChange, NextHopMode,
    OutDelta, OutRoute, PeerConfig, PeerId, PeerInfo, PeerType, PolicyResult, RibConfig, RibError,
    Route, family_of,
};

/// Route counts of one peer ([`Rib::peer_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStats {
    /// Routes in its Adj-RIB-In.
    pub received: usize,
    /// Of those, Loc-RIB candidates (passed loop detection and import policy).
    pub imported: usize,
    /// Of those, best paths.
    pub preferred: usize,
    /// Routes still stale from a graceful restart.
    pub stale: usize,
    /// Routes in its Adj-RIB-Out.
    pub exported: usize,
}

/// Adj-RIB-In key: prefix and ADD-PATH path id.
type PathKey = (IpNet, u32);

/// Per-peer state.
struct Peer {
    cfg: PeerConfig,
    info: Arc<PeerInfo>,
    /// Routes as received (before import policy), so a policy change can be re-applied.
    adj_in: HashMap<PathKey, Arc<Route>>,
    /// What we advertised; `None` while the session is not established.
    adj_out: Option<HashMap<IpNet, Arc<OutRoute>>>,
    /// Families disabled for the rest of this session (RFC 4760 §7 AFI/SAFI-disable).
    disabled: Vec<Family>,
}

/// Loc-RIB entry: the candidates that passed import, and the chosen one. Almost every
/// prefix has one candidate (a Calico block comes from one node), so it is stored inline:
/// no heap allocation per prefix.
#[derive(Default)]
struct Dest {
    candidates: SmallVec<[Arc<Route>; 1]>,
    /// Index into `candidates` (u32 keeps the entry small; a prefix never has 4G paths).
    best: Option<u32>,
}

impl Dest {
    fn best(&self) -> Option<&Arc<Route>> {
        self.best.and_then(|i| self.candidates.get(i as usize))
    }
}

/// The RIB. See the module docs for the data flow.
pub struct Rib {
    cfg: RibConfig,
    peers: HashMap<PeerId, Peer>,
    loc: BTreeMap<IpNet, Dest>,
    import: Box<dyn ImportPolicy + Send + Sync>,
    export: Box<dyn ExportPolicy + Send + Sync>,
    /// Report changes of the ECMP set too (see [`Rib::set_ecmp`]).
    ecmp: bool,
}

impl std::fmt::Debug for Rib {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rib")
            .field("cfg", &self.cfg)
            .field("peers", &self.peers.len())
            .field("prefixes", &self.loc.len())
            .finish()
    }
}

impl Rib {
    /// An empty RIB that accepts and exports everything.
    pub fn new(cfg: RibConfig) -> Rib {
        Rib::with_policies(cfg, Box::new(AcceptAll), Box::new(AcceptAll))
    }

    /// An empty RIB with import and export policies.
    pub fn with_policies(
        cfg: RibConfig,
        import: Box<dyn ImportPolicy + Send + Sync>,
        export: Box<dyn ExportPolicy + Send + Sync>,
    ) -> Rib {
        let local = PeerInfo::new(
            PeerId::LOCAL.0,
            cfg.router_id,
            cfg.local_as,
            PeerType::Local,
        );
        let mut peers = HashMap::new();
        peers.insert(
            PeerId::LOCAL,
            Peer {
                cfg: PeerConfig::new(local.clone(), None, None),
                info: Arc::new(local),
                adj_in: HashMap::new(),
                adj_out: None,
                disabled: Vec::new(),
            },
        );
        Rib {
            cfg,
            peers,
            loc: BTreeMap::new(),
            import,
            export,
            ecmp: false,
        }
    }

    /// With ECMP on (BIRD `merge paths on` in Calico's kernel protocol), a change of the
    /// [`Rib::multipath`] set of a prefix is reported as a [`LocRibChange`] even when the best
    /// path stays the same (then `old_best` and `new_best` are the same path), so the speaker
    /// knows to rewrite the kernel's multipath route. Off by default.
    pub fn set_ecmp(&mut self, on: bool) {
        self.ecmp = on;
    }

    /// The speaker-wide settings.
    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    /// Replaces the import policy; call [`Rib::reimport`] for each peer afterwards.
    pub fn set_import_policy(&mut self, p: Box<dyn ImportPolicy + Send + Sync>) {
        self.import = p;
    }

    /// Replaces the export policy; call [`Rib::refresh_exports`] for each peer afterwards.
    pub fn set_export_policy(&mut self, p: Box<dyn ExportPolicy + Send + Sync>) {
        self.export = p;
    }

    /// Registers a peer (its session not yet established).
    pub fn add_peer(&mut self, cfg: PeerConfig) -> Result<(), RibError> {
        let id = cfg.info.id();
        if id == PeerId::LOCAL {
            return Err(RibError::ReservedAddress(id.0));
        }
        if self.peers.contains_key(&id) {
            return Err(RibError::DuplicatePeer(id));
        }
        self.peers.insert(
            id,
            Peer {
                info: Arc::new(cfg.info.clone()),
                cfg,
                adj_in: HashMap::new(),
                adj_out: None,
                disabled: Vec::new(),
            },
        );
        Ok(())
    }

    /// Removes a peer and all its routes (BGPPeer deleted).
    pub fn remove_peer(&mut self, id: PeerId) -> Result<Vec<LocRibChange>, RibError> {
        let changes = self.peer_down(id)?;
        self.peers.remove(&id);
        Ok(changes)
    }

    /// Updates the peer's identity after the OPEN exchange (router id, AS may only be known
    /// then). Its routes keep pointing at the old identity until re-announced, so call this
    /// before the first UPDATE of a session.
    pub fn update_peer(&mut self, cfg: PeerConfig) -> Result<(), RibError> {
        let id = cfg.info.id();
        let peer = self.peers.get_mut(&id).ok_or(RibError::UnknownPeer(id))?;
        peer.info = Arc::new(cfg.info.clone());
        peer.cfg = cfg;
        Ok(())
    }

    /// The peers (without the local pseudo-peer), in address order.
    pub fn peers(&self) -> Vec<&PeerConfig> {
        let mut v: Vec<&PeerConfig> = self
            .peers
            .iter()
            .filter(|(id, _)| **id != PeerId::LOCAL)
            .map(|(_, p)| &p.cfg)
            .collect();
        v.sort_by_key(|c| c.info.address);
        v
    }

    fn peer(&self, id: PeerId) -> Result<&Peer, RibError> {
        self.peers.get(&id).ok_or(RibError::UnknownPeer(id))
    }

    // ---- Adj-RIB-In -----------------------------------------------------------------------

    /// Applies a decoded UPDATE from `peer` with the RFC 7606 action its decoder reported
    /// (`UpdateDecoded::action()`): treat-as-withdraw withdraws every announced NLRI,
    /// AFI/SAFI-disable drops the peer's routes of that family and ignores the family for the
    /// rest of the session (RFC 4760 §7; cleared by [`Rib::peer_down`],
    /// [`Rib::peer_restarting`] and [`Rib::session_established`]), attribute-discard is applied normally. Families other than IPv4/
    /// IPv6 unicast are ignored. End-of-RIB markers carry no routes and change nothing here;
    /// the speaker turns them into [`Rib::flush_stale`].
    pub fn apply_update(
        &mut self,
        peer: PeerId,
        update: &Update,
        action: Option<Action>,
    ) -> Result<Vec<LocRibChange>, RibError> {
        let mut changes = Vec::new();
        match action {
            Some(Action::SessionReset) => return Err(RibError::SessionReset),
            Some(Action::AfiSafiDisable(f)) => {
                changes.extend(self.drop_routes(peer, |r| r.family() == f)?);
                let p = self
                    .peers
                    .get_mut(&peer)
                    .ok_or(RibError::UnknownPeer(peer))?;
                if !p.disabled.contains(&f) {
                    p.disabled.push(f);
                }
            }
            _ => {}
        }
        let disabled = self.peer(peer)?.disabled.clone();
        let usable = |f: Family| f.is_unicast_ip() && !disabled.contains(&f);
        for (family, nlri) in update.withdrawn_routes() {
            if usable(family) {
                changes.extend(self.withdraw(peer, nlri.prefix, nlri.path_id.unwrap_or(0))?);
            }
        }
        let treat_as_withdraw = action == Some(Action::TreatAsWithdraw);
        let attrs = Arc::new(update.attributes.clone());
        let v4_next_hop = update.attributes.next_hop.map(MpNextHop::Ipv4);
        let handle = |rib: &mut Rib, nlri: &Nlri, nh: Option<MpNextHop>| {
            let path_id = nlri.path_id.unwrap_or(0);
            // A route without a next hop is unusable; the codec already reports a missing
            // NEXT_HOP as treat-as-withdraw (RFC 7606 §3 d), this only guards the RIB.
            if treat_as_withdraw || nh.is_none() {
                rib.withdraw(peer, nlri.prefix, path_id)
            } else {
                rib.announce_shared(peer, nlri.prefix, path_id, attrs.clone(), nh)
            }
        };
        for nlri in &update.nlri {
            if usable(Family::IPV4_UNICAST) {
                changes.extend(handle(self, nlri, v4_next_hop)?);
            }
        }
        if let Some(mp) = &update.mp_reach
            && usable(mp.family)
        {
            for nlri in &mp.nlri {
                changes.extend(handle(self, nlri, mp.next_hop)?);
            }
        }
        Ok(changes)
    }

    /// [`Rib::apply_update`] for the fsm's `Action::DeliverUpdate { update, errors }`: the
    /// most severe action of `errors` applies (as `UpdateDecoded::action`).
    pub fn apply_delivered(
        &mut self,
        peer: PeerId,
        update: &Update,
        errors: &[UpdateError],
    ) -> Result<Vec<LocRibChange>, RibError> {
        self.apply_update(peer, update, errors.iter().map(|e| e.action).max())
    }

    /// Stores a route from `peer` in its Adj-RIB-In and updates the Loc-RIB. A route for an
    /// already known (prefix, path id) replaces it and clears its stale flag (RFC 4724 §4.2).
    pub fn announce(
        &mut self,
        peer: PeerId,
        prefix: IpNet,
        path_id: u32,
        attrs: PathAttributes,
        next_hop: Option<MpNextHop>,
    ) -> Result<Option<LocRibChange>, RibError> {
        self.announce_shared(peer, prefix, path_id, Arc::new(attrs), next_hop)
    }

    fn announce_shared(
        &mut self,
        peer: PeerId,
        prefix: IpNet,
        path_id: u32,
        attrs: Arc<PathAttributes>,
        next_hop: Option<MpNextHop>,
    ) -> Result<Option<LocRibChange>, RibError> {
        let prefix = prefix.trunc();
        if next_hop.is_none() && peer != PeerId::LOCAL {
            // `None` means "ourselves" and is only meaningful for our own routes.
            return Err(RibError::BadRoute {
                prefix,
                reason: "a route learned from a peer needs a next hop",
            });
        }
        let p = self
            .peers
            .get_mut(&peer)
            .ok_or(RibError::UnknownPeer(peer))?;
        // RFC 4271 §5.1.5: LOCAL_PREF from an external peer is ignored (BIRD drops it too);
        // an import policy may still set one.
        let attrs = if p.info.peer_type == PeerType::External && attrs.local_pref.is_some() {
            let mut a = (*attrs).clone();
            a.local_pref = None;
            Arc::new(a)
        } else {
            attrs
        };
        let route = Arc::new(Route {
            prefix,
            path_id,
            attrs,
            next_hop,
            source: p.info.clone(),
            stale: false,
        });
        p.adj_in.insert((prefix, path_id), route.clone());
        let candidate = self.imported(route);
        Ok(self.set_candidate(prefix, peer, path_id, candidate))
    }

    /// Removes a route from `peer`'s Adj-RIB-In (and the Loc-RIB). Unknown routes are ignored
    /// (RFC 4271 §9: withdrawing something never announced is not an error).
    pub fn withdraw(
        &mut self,
        peer: PeerId,
        prefix: IpNet,
        path_id: u32,
    ) -> Result<Option<LocRibChange>, RibError> {
        let prefix = prefix.trunc();
        let p = self
            .peers
            .get_mut(&peer)
            .ok_or(RibError::UnknownPeer(peer))?;
        if p.adj_in.remove(&(prefix, path_id)).is_none() {
            return Ok(None);
        }
        Ok(self.set_candidate(prefix, peer, path_id, None))
    }

    /// Originates a local route (an IPAM block, a borrowed /32, a service IP). `next_hop`
    /// `None` means "ourselves": each peer gets its session's local address.
    pub fn originate(
        &mut self,
        prefix: IpNet,
        attrs: PathAttributes,
        next_hop: Option<MpNextHop>,
    ) -> Result<Option<LocRibChange>, RibError> {
        match (&prefix, next_hop) {
            (_, None)
            | (IpNet::V4(_), Some(MpNextHop::Ipv4(_)))
            | (IpNet::V6(_), Some(MpNextHop::Ipv6 { .. })) => {}
            _ => {
                return Err(RibError::BadRoute {
                    prefix,
                    reason: "next hop family differs from the prefix family",
                });
            }
        }
        self.announce(PeerId::LOCAL, prefix, 0, attrs, next_hop)
    }

    /// Withdraws a locally originated route.
    pub fn withdraw_local(&mut self, prefix: IpNet) -> Option<LocRibChange> {
        // The local pseudo-peer always exists.
        self.withdraw(PeerId::LOCAL, prefix, 0).ok().flatten()
    }

    /// Session lost without graceful restart (or the restart timer expired): all of the
    /// peer's routes go, and its Adj-RIB-Out is forgotten.
    pub fn peer_down(&mut self, peer: PeerId) -> Result<Vec<LocRibChange>, RibError> {
        let changes = self.drop_routes(peer, |_| true)?;
        if let Some(p) = self.peers.get_mut(&peer) {
            p.adj_out = None;
            p.disabled.clear();
        }
        Ok(changes)
    }

    /// The peer restarts with graceful restart (RFC 4724 §4.2, fsm `PeerRestarting`): its
    /// routes of `preserved` families are kept and marked stale, routes of other families are
    /// deleted, and its Adj-RIB-Out is forgotten (the new session gets a full dump). Stale
    /// marking does not change any best path, so only the deleted families produce changes.
    pub fn peer_restarting(
        &mut self,
        peer: PeerId,
        preserved: &[Family],
    ) -> Result<Vec<LocRibChange>, RibError> {
        let changes = self.drop_routes(peer, |r| !preserved.contains(&r.family()))?;
        let p = self
            .peers
            .get_mut(&peer)
            .ok_or(RibError::UnknownPeer(peer))?;
        p.adj_out = None;
        p.disabled.clear();
        let mut marked = Vec::new();
        for route in p.adj_in.values_mut() {
            if !route.stale {
                Arc::make_mut(route).stale = true;
                marked.push((route.prefix, route.path_id));
            }
        }
        // Mirror the flag on the Loc-RIB copies (which may carry policy-modified attributes).
        for (prefix, path_id) in marked {
            if let Some(dest) = self.loc.get_mut(&prefix) {
                for c in dest.candidates.iter_mut() {
                    if c.source.address == peer.0 && c.path_id == path_id {
                        Arc::make_mut(c).stale = true;
                    }
                }
            }
        }
        Ok(changes)
    }

    /// End-of-RIB received for `family` or the stale timer fired (fsm `StaleRoutesFlush`):
    /// routes of the family still stale are deleted (RFC 4724 §4.2).
    pub fn flush_stale(
        &mut self,
        peer: PeerId,
        family: Family,
    ) -> Result<Vec<LocRibChange>, RibError> {
        self.drop_routes(peer, |r| r.stale && r.family() == family)
    }

    /// Re-runs the import policy over the peer's Adj-RIB-In (after a policy change).
    pub fn reimport(&mut self, peer: PeerId) -> Result<Vec<LocRibChange>, RibError> {
        let routes: Vec<Arc<Route>> = self.peer(peer)?.adj_in.values().cloned().collect();
        let mut changes = Vec::new();
        for route in routes {
            let (prefix, path_id) = (route.prefix, route.path_id);
            let candidate = self.imported(route);
            changes.extend(self.set_candidate(prefix, peer, path_id, candidate));
        }
        Ok(changes)
    }

    fn drop_routes(
        &mut self,
        peer: PeerId,
        pred: impl Fn(&Route) -> bool,
    ) -> Result<Vec<LocRibChange>, RibError> {
        let p = self
            .peers
            .get_mut(&peer)
            .ok_or(RibError::UnknownPeer(peer))?;
        let mut gone: Vec<PathKey> = p
            .adj_in
            .iter()
            .filter(|(_, r)| pred(r))
            .map(|(k, _)| *k)
            .collect();
        gone.sort_unstable();
        for k in &gone {
            p.adj_in.remove(k);
        }
        Ok(gone
            .into_iter()
            .filter_map(|(prefix, path_id)| self.set_candidate(prefix, peer, path_id, None))
            .collect())
    }

    /// Loop detection and import policy; `None` when the route must not be a candidate.
    fn imported(&self, route: Arc<Route>) -> Option<Arc<Route>> {
        if self.is_looped(&route) {
            return None;
        }
        if route.source.peer_type == PeerType::Local {
            return Some(route);
        }
        match self.import.import(&route.source, &route) {
            PolicyResult::Accept => Some(route),
            PolicyResult::Reject => None,
            PolicyResult::Modify(attrs) => {
                let mut r = (*route).clone();
                r.attrs = Arc::new(attrs);
                Some(Arc::new(r))
            }
        }
    }

    /// RFC 4271 §9.1.2 (our AS in the AS_PATH of an eBGP route more often than the peer's
    /// `allow_local_as` permits) and RFC 4456 §8 (ORIGINATOR_ID is our router id; our cluster
    /// id is in the CLUSTER_LIST).
    pub fn is_looped(&self, route: &Route) -> bool {
        let a = &route.attrs;
        if route.source.peer_type == PeerType::Local {
            return false;
        }
        if route.source.peer_type == PeerType::External
            && let Some(path) = &a.as_path
        {
            let peer = self.peers.get(&PeerId(route.source.address));
            let our_as = peer
                .and_then(|p| p.cfg.local_as)
                .unwrap_or(self.cfg.local_as);
            let allowed = peer.map_or(0, |p| p.cfg.allow_local_as);
            let seen = path
                .segments
                .iter()
                .flat_map(|s| s.asns.iter())
                .filter(|&&asn| asn == our_as)
                .count();
            if seen > allowed as usize {
                return true;
            }
        }
        if a.originator_id == Some(self.cfg.router_id) {
            return true;
        }
        self.cfg
            .cluster_id
            .is_some_and(|c| a.cluster_list.contains(&c))
    }

    /// Replaces the candidate of (`peer`, `path_id`) for `prefix` and reselects.
    fn set_candidate(
        &mut self,
        prefix: IpNet,
        peer: PeerId,
        path_id: u32,
        route: Option<Arc<Route>>,
    ) -> Option<LocRibChange> {
        let local_as = self.cfg.local_as;
        let ecmp = self.ecmp;
        let dest = self.loc.entry(prefix).or_default();
        let old = dest.best().cloned();
        let old_set = if ecmp {
            ecmp_set(dest, local_as)
        } else {
            Vec::new()
        };
        let pos = dest
            .candidates
            .iter()
            .position(|c| c.source.address == peer.0 && c.path_id == path_id);
        match (pos, route) {
            (Some(i), Some(r)) => dest.candidates[i] = r,
            (Some(i), None) => {
                dest.candidates.swap_remove(i);
            }
            (None, Some(r)) => dest.candidates.push(r),
            (None, None) => {}
        }
        dest.best = best::select(&dest.candidates, local_as).and_then(|i| u32::try_from(i).ok());
        let new = dest.best().cloned();
        let unchanged = match (&old, &new) {
            (None, None) => true,
            (Some(a), Some(b)) => {
                a.same_path(b) && (!ecmp || same_set(&old_set, &ecmp_set(dest, local_as)))
            }
            _ => false,
        };
        if dest.candidates.is_empty() {
            self.loc.remove(&prefix);
        }
        (!unchanged).then_some(LocRibChange {
            prefix,
            old_best: old,
            new_best: new,
        })
    }

    // ---- queries ---------------------------------------------------------------------------

    /// The best path for `prefix`.
    pub fn best(&self, prefix: &IpNet) -> Option<&Arc<Route>> {
        self.loc.get(prefix).and_then(Dest::best)
    }

    /// All paths equal to the best up to the router-id step (ECMP, BIRD `merge paths on`),
    /// best first; empty when the prefix is unknown.
    pub fn multipath(&self, prefix: &IpNet) -> Vec<&Arc<Route>> {
        self.loc.get(prefix).map_or_else(Vec::new, |d| {
            best::multipath(&d.candidates, self.cfg.local_as)
                .into_iter()
                .map(|i| &d.candidates[i])
                .collect()
        })
    }

    /// The Loc-RIB candidates of `prefix` (after import policy), in no particular order.
    pub fn candidates(&self, prefix: &IpNet) -> &[Arc<Route>] {
        self.loc.get(prefix).map_or(&[], |d| &d.candidates)
    }

    /// The Loc-RIB best paths in prefix order.
    pub fn loc_rib(&self) -> impl Iterator<Item = (&IpNet, &Arc<Route>)> {
        self.loc
            .iter()
            .filter_map(|(p, d)| d.best().map(|b| (p, b)))
    }

    /// Number of prefixes in the Loc-RIB.
    pub fn len(&self) -> usize {
        self.loc.len()
    }

    /// Whether the Loc-RIB is empty.
    pub fn is_empty(&self) -> bool {
        self.loc.is_empty()
    }

    /// Route counts of one peer, as BIRD's `show protocols all` prints them (for metrics).
    pub fn peer_stats(&self, peer: PeerId) -> Result<PeerStats, RibError> {
        let p = self.peer(peer)?;
        let mut st = PeerStats {
            received: p.adj_in.len(),
            stale: p.adj_in.values().filter(|r| r.stale).count(),
            exported: p.adj_out.as_ref().map_or(0, HashMap::len),
            ..PeerStats::default()
        };
        for dest in self.loc.values() {
            for (i, c) in dest.candidates.iter().enumerate() {
                if c.source.address == peer.0 {
                    st.imported += 1;
                    if dest.best.map(|b| b as usize) == Some(i) {
                        st.preferred += 1;
                    }
                }
            }
        }
        Ok(st)
    }

    /// [`Rib::peer_stats`] of every peer in one pass over the Loc-RIB (what a status report
    /// wants: the cost does not grow with peers × prefixes).
    pub fn all_peer_stats(&self) -> HashMap<PeerId, PeerStats> {
        let mut out: HashMap<PeerId, PeerStats> = self
            .peers
            .iter()
            .map(|(id, p)| {
                (
                    *id,
                    PeerStats {
                        received: p.adj_in.len(),
                        stale: p.adj_in.values().filter(|r| r.stale).count(),
                        exported: p.adj_out.as_ref().map_or(0, HashMap::len),
                        ..PeerStats::default()
                    },
                )
            })
            .collect();
        for dest in self.loc.values() {
            for (i, c) in dest.candidates.iter().enumerate() {
                if let Some(st) = out.get_mut(&PeerId(c.source.address)) {
                    st.imported += 1;
                    if dest.best.map(|b| b as usize) == Some(i) {
                        st.preferred += 1;
                    }
                }
            }
        }
        out
    }

    /// A peer's Adj-RIB-In (as received, before import policy), in no particular order.
    pub fn adj_rib_in(
        &self,
        peer: PeerId,
    ) -> Result<impl Iterator<Item = &Arc<Route>> + '_, RibError> {
        Ok(self.peer(peer)?.adj_in.values())
    }

    /// A peer's Adj-RIB-Out in prefix order; empty while its session is down.
    pub fn adj_rib_out(&self, peer: PeerId) -> Result<Vec<(IpNet, Arc<OutRoute>)>, RibError> {
        let mut v: Vec<(IpNet, Arc<OutRoute>)> = self
            .peer(peer)?
            .adj_out
            .iter()
            .flatten()
            .map(|(p, r)| (*p, r.clone()))
            .collect();
        v.sort_by_key(|(p, _)| *p);
        Ok(v)
    }
}

/// The ECMP set of a destination, sorted by source and path id for comparison.
fn ecmp_set(dest: &Dest, local_as: u32) -> Vec<Arc<Route>> {
    let mut v: Vec<Arc<Route>> = best::multipath(&dest.candidates, local_as)
        .into_iter()
        .map(|i| dest.candidates[i].clone())
        .collect();
    v.sort_by_key(|r| (r.source.address, r.path_id));
    v
}

fn same_set(a: &[Arc<Route>], b: &[Arc<Route>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_path(y))
}
