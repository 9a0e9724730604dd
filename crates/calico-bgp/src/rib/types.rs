//! Value types of the RIB: who a route came from, the route itself, the per-peer export
//! settings, policy hooks, and the change records the RIB hands back to the speaker.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use calico_bgp_packet::{Family, MpNextHop, Origin, PathAttributes};
use ipnet::IpNet;

/// LOCAL_PREF assumed when a route carries none (RFC 4271 §9.1.1 leaves the degree of
/// preference to local policy; BIRD's `default bgp_local_pref` and every common speaker use
/// 100, and Calico's BIRD config relies on it).
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Speaker-wide settings the RIB needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RibConfig {
    /// Our AS (Calico `asNumber`, default 64512).
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Route-reflector cluster id (Calico `routeReflectorClusterID`). `Some` makes this
    /// speaker a route reflector (RFC 4456); `None` is a plain iBGP speaker.
    pub cluster_id: Option<Ipv4Addr>,
}

/// Identifies a peer by its address (one session per peer address, as in Calico's BIRD
/// config). [`PeerId::LOCAL`] is the pseudo-peer of locally originated routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub IpAddr);

impl PeerId {
    /// The pseudo-peer that holds our own routes (`0.0.0.0` is never a BGP peer address).
    pub const LOCAL: PeerId = PeerId(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == PeerId::LOCAL {
            f.write_str("local")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// Relationship of a route's source to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerType {
    /// iBGP peer (same AS).
    Internal,
    /// eBGP peer (different AS).
    External,
    /// Locally originated (IPAM blocks, borrowed /32s, service IPs).
    Local,
}

/// Where a route came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerInfo {
    /// Peer address (the session's remote address).
    pub address: IpAddr,
    /// The peer's BGP identifier from its OPEN.
    pub router_id: Ipv4Addr,
    /// The peer's AS.
    pub asn: u32,
    /// iBGP / eBGP / local.
    pub peer_type: PeerType,
    /// The peer is one of our route-reflector clients (Calico: a node peering with a node that
    /// has `routeReflectorClusterID`, BIRD `rr client`).
    pub rr_client: bool,
}

impl PeerInfo {
    /// The key of this peer.
    pub fn id(&self) -> PeerId {
        PeerId(self.address)
    }

    /// Convenience constructor.
    pub fn new(address: IpAddr, router_id: Ipv4Addr, asn: u32, peer_type: PeerType) -> PeerInfo {
        PeerInfo {
            address,
            router_id,
            asn,
            peer_type,
            rr_client: false,
        }
    }
}

/// What the RIB needs to know about a peer to build its Adj-RIB-Out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// Identity and role.
    pub info: PeerInfo,
    /// How the advertised next hop is chosen (Calico `nextHopMode`).
    pub next_hop_mode: NextHopMode,
    /// Our AS towards this peer when it differs from the global one (Calico BGPPeer
    /// `localASNumber`, BIRD `local as`): prepended on eBGP export and checked for loops.
    pub local_as: Option<u32>,
    /// How many times our AS may appear in a received AS_PATH before the route counts as a
    /// loop (Calico `numAllowedLocalASNumbers`, BIRD `allow local as <n>`); 0 = never.
    pub allow_local_as: u32,
    /// Our IPv4 address on this session: the next hop we advertise for IPv4 routes.
    pub local_v4: Option<Ipv4Addr>,
    /// Our IPv6 address on this session: the next hop for IPv6 routes (RFC 2545).
    pub local_v6: Option<Ipv6Addr>,
    /// Families negotiated (RFC 4760); only these are exported and get End-of-RIB.
    pub families: Vec<Family>,
}

impl PeerConfig {
    /// A peer with both unicast families, no next-hop-self and the given local addresses.
    pub fn new(info: PeerInfo, local_v4: Option<Ipv4Addr>, local_v6: Option<Ipv6Addr>) -> Self {
        PeerConfig {
            info,
            next_hop_mode: NextHopMode::Auto,
            local_as: None,
            allow_local_as: 0,
            local_v4,
            local_v6,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        }
    }
}

/// Next-hop handling on export (Calico BGPPeer `nextHopMode`, BIRD `next hop self|keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NextHopMode {
    /// BIRD's default: our address towards eBGP peers, the route's own next hop towards iBGP
    /// peers (RFC 4271 §5.1.3; RFC 4456 §8 for reflected routes).
    #[default]
    Auto,
    /// Always our address (`next hop self`, Calico `nextHopMode: Self`).
    SelfHop,
    /// Always the route's own next hop (`next hop keep`, Calico `nextHopMode: Keep` or the
    /// legacy `keepOriginalNextHop`). Our own routes still get our address.
    Keep,
}

/// A path to a prefix as held in Adj-RIB-In and Loc-RIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// IPv4 or IPv6 unicast prefix (host bits clear).
    pub prefix: IpNet,
    /// ADD-PATH path identifier (RFC 7911); 0 when ADD-PATH is not in use.
    pub path_id: u32,
    /// Path attributes (shared: every prefix of one UPDATE points at one allocation).
    pub attrs: Arc<PathAttributes>,
    /// Next hop: NEXT_HOP for IPv4 NLRI, the MP_REACH_NLRI next hop otherwise. `None` for
    /// locally originated routes ("self").
    pub next_hop: Option<MpNextHop>,
    /// Who sent it.
    pub source: Arc<PeerInfo>,
    /// Kept across a peer restart (RFC 4724 §4.2) and not yet refreshed.
    pub stale: bool,
}

impl Route {
    /// The route's address family.
    pub fn family(&self) -> Family {
        family_of(&self.prefix)
    }

    /// LOCAL_PREF, [`DEFAULT_LOCAL_PREF`] when absent.
    pub fn local_pref(&self) -> u32 {
        self.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF)
    }

    /// ORIGIN; a route without one ranks as INCOMPLETE (the least preferred).
    pub fn origin(&self) -> Origin {
        self.attrs.origin.unwrap_or(Origin::Incomplete)
    }

    /// AS_PATH length for selection (RFC 4271 §9.1.2.2 a: an AS_SET counts 1).
    pub fn as_path_len(&self) -> usize {
        self.attrs.as_path.as_ref().map_or(0, |p| p.path_len())
    }

    /// MED; a missing MED is 0 (RFC 4271 §9.1.2.2 c, the "lowest possible value").
    pub fn med(&self) -> u32 {
        self.attrs.med.unwrap_or(0)
    }

    /// The neighbouring AS for MED comparison (RFC 4271 §9.1.2.2 c: the first AS of the
    /// AS_PATH); routes with an empty path come from our own AS.
    pub fn neighbor_as(&self, local_as: u32) -> u32 {
        self.attrs
            .as_path
            .as_ref()
            .and_then(|p| p.first_as())
            .unwrap_or(local_as)
    }

    /// The identifier compared in the router-id step: ORIGINATOR_ID when present (RFC 4456
    /// §9), else the sender's BGP identifier.
    pub fn selection_router_id(&self) -> Ipv4Addr {
        self.attrs.originator_id.unwrap_or(self.source.router_id)
    }

    /// Same source, path id, attributes and next hop: everything but the stale flag. A
    /// refresh of a stale route with identical content is no Loc-RIB change (the FIB entry is
    /// already right).
    pub fn same_path(&self, other: &Route) -> bool {
        self.source.address == other.source.address
            && self.path_id == other.path_id
            && self.prefix == other.prefix
            && self.next_hop == other.next_hop
            && (Arc::ptr_eq(&self.attrs, &other.attrs) || self.attrs == other.attrs)
    }
}

/// The family of a unicast prefix.
pub fn family_of(prefix: &IpNet) -> Family {
    match prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}

/// A change of the best path for one prefix. `old_best == None` is a new prefix,
/// `new_best == None` a prefix that is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocRibChange {
    /// The prefix.
    pub prefix: IpNet,
    /// Best path before.
    pub old_best: Option<Arc<Route>>,
    /// Best path after.
    pub new_best: Option<Arc<Route>>,
}

/// What a policy decided for one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyResult {
    /// Take the route unchanged.
    Accept,
    /// Drop it (import: not a Loc-RIB candidate; export: not advertised / withdrawn).
    Reject,
    /// Take it with these attributes instead.
    Modify(PathAttributes),
}

/// Import policy (BGPFilter import rules, Calico's built-in filters), applied between
/// Adj-RIB-In and Loc-RIB. Adj-RIB-In keeps the unfiltered route so a policy change can be
/// re-applied without a route refresh ([`crate::rib::Rib::reimport`]).
pub trait ImportPolicy {
    /// Decides on `route` received from `peer`.
    fn import(&self, peer: &PeerInfo, route: &Route) -> PolicyResult;
}

/// Export policy (BGPFilter export rules), applied to the Loc-RIB best path before the
/// protocol's own attribute rewriting (as BIRD runs the export filter before the BGP
/// attribute update).
pub trait ExportPolicy {
    /// Decides whether and how `route` goes to `peer`.
    fn export(&self, peer: &PeerInfo, route: &Route) -> PolicyResult;
}

/// A policy that accepts everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptAll;

impl ImportPolicy for AcceptAll {
    fn import(&self, _peer: &PeerInfo, _route: &Route) -> PolicyResult {
        PolicyResult::Accept
    }
}

impl ExportPolicy for AcceptAll {
    fn export(&self, _peer: &PeerInfo, _route: &Route) -> PolicyResult {
        PolicyResult::Accept
    }
}

/// A route as advertised to one peer: attributes after export rewriting and the next hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutRoute {
    /// Attributes to send.
    pub attrs: PathAttributes,
    /// Next hop to send (NEXT_HOP for IPv4, MP_REACH_NLRI next hop for IPv6).
    pub next_hop: MpNextHop,
}

/// One outgoing change for one peer: `route == None` is a withdrawal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutDelta {
    /// Destination peer.
    pub peer: PeerId,
    /// Prefix.
    pub prefix: IpNet,
    /// What to announce, or `None` to withdraw.
    pub route: Option<Arc<OutRoute>>,
}

/// Everything to send to a peer whose session just came up or asked for a route refresh
/// (RFC 2918): the routes, then one End-of-RIB marker per family (RFC 4724 §2), which the
/// speaker sends after the last UPDATE of that family.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FullDump {
    /// Routes in prefix order.
    pub routes: Vec<(IpNet, Arc<OutRoute>)>,
    /// Families to close with an End-of-RIB marker.
    pub end_of_rib: Vec<Family>,
}

/// Errors of RIB operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RibError {
    /// The peer was never added with [`crate::rib::Rib::add_peer`].
    #[error("unknown BGP peer {0}")]
    UnknownPeer(PeerId),
    /// `add_peer` for an address that is already a peer.
    #[error("BGP peer {0} already exists")]
    DuplicatePeer(PeerId),
    /// The address is reserved for local origination.
    #[error("peer address {0} is reserved for locally originated routes")]
    ReservedAddress(IpAddr),
    /// An UPDATE whose errors demand a session reset reached the RIB (RFC 7606 §2); the
    /// speaker must send the NOTIFICATION and drop the session instead.
    #[error("UPDATE requires a session reset and must not be applied to the RIB")]
    SessionReset,
    /// A locally originated route for a family that is not IPv4/IPv6 unicast, or whose next
    /// hop does not match the prefix family.
    #[error("route for {prefix}: {reason}")]
    BadRoute {
        /// The prefix.
        prefix: IpNet,
        /// What is wrong.
        reason: &'static str,
    },
}
