//! The plan's types: what a node must run, independent of how a speaker runs it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

/// An address family; confd renders one BIRD config per family (`getBGPConfig(4|6)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn matches(self, ip: IpAddr) -> bool {
        matches!(
            (self, ip),
            (IpFamily::V4, IpAddr::V4(_)) | (IpFamily::V6, IpAddr::V6(_))
        )
    }
    /// The suffix confd uses in BGPFilter function names (`…FilterV4`).
    pub fn suffix(self) -> &'static str {
        match self {
            IpFamily::V4 => "V4",
            IpFamily::V6 => "V6",
        }
    }
}

/// IPAM affinity state of a block; confd drops pending affinities from its cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockState {
    /// Legacy affinity without a state: implicitly confirmed.
    Implicit,
    Confirmed,
    Pending,
}

/// A block affine to this node (`/calico/ipam/v2/host/<node>/ipv4/block/<cidr>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffineBlock {
    pub cidr: IpNet,
    pub state: BlockState,
}

/// What is specific to the node computing its plan.
#[derive(Debug, Clone, Default)]
pub struct LocalInput<'a> {
    /// `NODENAME`.
    pub node_name: &'a str,
    pub affine_blocks: &'a [AffineBlock],
    /// `CALICO_ROUTER_ID` (`hash` or an IPv4 address), if set.
    pub router_id_env: Option<&'a str>,
    /// Workloads on this node that run a BGP speaker (Calico's local BGP peer watcher reads
    /// them from the endpoint-status files); matched to BGPPeers with `localWorkloadSelector`.
    pub local_workload_peers: &'a [LocalWorkloadPeer],
}

/// An active local workload BGP peer: the workload's addresses and the BGPPeer naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalWorkloadPeer {
    /// The BGPPeer resource (`bgpPeerName` of the endpoint status).
    pub bgp_peer_name: String,
    pub ipv4: Option<IpAddr>,
    pub ipv6: Option<IpAddr>,
}

/// Resolves `secretKeyRef`s (Calico reads Kubernetes Secrets in the calico-system namespace).
/// `None` means unreadable: confd then configures the session without a password.
pub trait PasswordResolver {
    fn resolve(&self, secret_name: &str, key: &str) -> Option<String>;
}

/// A fixed map of `(secret name, key) → value`.
#[derive(Debug, Clone, Default)]
pub struct StaticPasswords(pub BTreeMap<(String, String), String>);

impl StaticPasswords {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, secret: &str, key: &str, value: &str) -> Self {
        self.0
            .insert((secret.to_string(), key.to_string()), value.to_string());
        self
    }
}

impl PasswordResolver for StaticPasswords {
    fn resolve(&self, secret_name: &str, key: &str) -> Option<String> {
        self.0
            .get(&(secret_name.to_string(), key.to_string()))
            .cloned()
    }
}

/// Where a session comes from; it also decides the protocol name prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerKind {
    /// `Mesh_<ip>`: node-to-node mesh.
    Mesh,
    /// `Global_<ip>`: a BGPPeer without `node`/`nodeSelector`.
    Global,
    /// `Node_<ip>`: a node-scoped BGPPeer or an automatic reverse peering.
    NodeSpecific,
    /// `Local_Workload_<ip>`: a peer inside a local workload.
    LocalWorkload,
}

impl PeerKind {
    pub fn prefix(self) -> &'static str {
        match self {
            PeerKind::Mesh => "Mesh",
            PeerKind::Global => "Global",
            PeerKind::NodeSpecific => "Node",
            PeerKind::LocalWorkload => "Local_Workload",
        }
    }
}

/// `nextHopMode` as confd applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NextHop {
    /// BIRD's default (no statement).
    #[default]
    Auto,
    /// `next hop self;`
    SelfAddr,
    /// `next hop keep;`
    Keep,
}

/// RFC 5082 GTSM: `ttl security on; multihop N;`, or off with plain `multihop;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlSecurity {
    Off,
    /// Expected hop count.
    On(u8),
}

/// A call to a BGPFilter function in a peer's import or export filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterCall {
    /// The BIRD symbol, e.g. `bgp_myfilter_importFilterV4` (name truncated as confd does).
    pub function: String,
    /// `Some(same_as)` when the filter has `peerType` rules for this direction and family:
    /// confd then passes whether the peer is iBGP.
    pub internal_peer_arg: Option<bool>,
}

/// One BGP session, with exactly the knobs confd writes into its `protocol bgp` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerPlan {
    /// `Mesh_10_192_0_3`, `Node_…`, `Global_…`, `Local_Workload_…`, plus `_port_<n>`.
    pub name: String,
    pub kind: PeerKind,
    pub ip: IpAddr,
    /// `neighbor … port N`; `None` means 179.
    pub port: Option<u16>,
    pub as_number: u32,
    /// `local as` override for this session.
    pub local_as: Option<u32>,
    pub source_address: Option<IpAddr>,
    pub passive: bool,
    /// `rr client; rr cluster id <id>;` (set together).
    pub rr_client: bool,
    pub rr_cluster_id: Option<String>,
    pub password: Option<String>,
    pub ttl_security: TtlSecurity,
    /// Seconds (`graceful restart time`); `None` is BIRD's default (120 s).
    pub graceful_restart_time: Option<u32>,
    /// Seconds (`keepalive time`).
    pub keepalive_time: Option<u32>,
    pub next_hop: NextHop,
    /// `allow local as N`.
    pub allow_local_as: Option<u32>,
    /// Peer AS equals our effective local AS: `calico_export_to_bgp_peers(true)`.
    pub internal: bool,
    pub import_filters: Vec<FilterCall>,
    pub export_filters: Vec<FilterCall>,
    /// `reachableBy` gateway (a static route to the peer is added).
    pub reachable_by: Option<IpAddr>,
}

/// A route in `bird_aggr.cfg`'s static protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticRoute {
    /// `route <block> blackhole;` so the node originates its whole block.
    Blackhole(IpNet),
    /// `route <peer>/32 via <gw>;` for peers with `reachableBy`.
    Via { dst: IpNet, via: IpAddr },
}

/// A BGP community to add to matching routes (`apply_communities()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommunityValue {
    /// RFC 1997 `aa:nn`.
    Standard(u32, u32),
    /// RFC 8092 `aa:nn:mm`.
    Large(u32, u32, u32),
}

/// `if (net ~ <cidr>) then { bgp_community.add(..); … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityRule {
    /// The CIDR as written in the BGPConfiguration.
    pub cidr: String,
    pub communities: Vec<CommunityValue>,
}

/// How BIRD may install routes of a pool into the kernel (`calico_kernel_programming`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelDecision {
    /// Program it. `tunnel` is the IPv4 IPIP `krt_tunnel` behaviour.
    Program { tunnel: KernelTunnel },
    /// Don't: VXLAN routes are always Felix's.
    RejectVxlan,
    /// Don't: `programClusterRoutes` gives this pool's routes to Felix.
    RejectFelixOwns,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelTunnel {
    /// Plain route via the BGP next hop.
    None,
    /// `krt_tunnel="tunl0"` (ipipMode Always).
    Ipip,
    /// ipipMode CrossSubnet: no tunnel when the next hop is in this subnet, else `tunl0`.
    IpipCrossSubnet { local_subnet: IpNet },
}

/// The decisions for one IP pool of the family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolPlan {
    pub cidr: IpNet,
    /// `false` for `disableBGPExport` pools (rejected before anything else is accepted).
    pub export: bool,
    /// `None` when confd writes no kernel statement (IPv4 without a known local subnet).
    pub kernel: Option<KernelDecision>,
}

/// confd's BIRD debug level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugMode {
    None,
    /// `debug { states }` / peers `debug { states, routes, filters, events }`.
    Default,
    /// `debug all`.
    All,
}

/// Everything this node must run for one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeBgpPlan {
    pub family: IpFamily,
    pub node_name: String,
    /// `false` when the node has no BGP address of this family (no sessions then).
    pub family_enabled: bool,
    pub own_address: Option<IpAddr>,
    /// `None` when neither `CALICO_ROUTER_ID` nor a node IPv4 address gives one.
    pub router_id: Option<Ipv4Addr>,
    /// `local as` of the template.
    pub as_number: u32,
    /// `listen bgp address …` (bindMode NodeIP).
    pub listen_address: Option<IpAddr>,
    /// `listen bgp port …`.
    pub listen_port: Option<u16>,
    /// `ipv4NormalRoutePriority` / `ipv6NormalRoutePriority` (default 1024).
    pub normal_route_priority: i64,
    pub debug: DebugMode,
    /// `BGPConfiguration.ignoredInterfaces` (excluded ahead of `cali*`, `kube-ipvs*`).
    pub direct_interfaces_excluded: Vec<String>,
    /// Sorted by name, as confd does.
    pub peers: Vec<PeerPlan>,
    pub statics: Vec<StaticRoute>,
    pub communities: Vec<CommunityRule>,
    /// Sorted by CIDR text, as confd sorts its statements.
    pub pools: Vec<PoolPlan>,
    /// Interface patterns whose routes are never exported to iBGP peers (Felix's tunnels).
    pub ibgp_reject_interfaces: Vec<&'static str>,
    /// BGP next hops whose routes BIRD must not program (remote WireGuard nodes).
    pub wireguard_rejected_next_hops: Vec<IpAddr>,
    /// Inputs skipped the way confd logs and skips them (malformed peer addresses, invalid
    /// selectors, another node's unparsable BGP address).
    pub warnings: Vec<String>,
}

impl NodeBgpPlan {
    pub fn peer(&self, name: &str) -> Option<&PeerPlan> {
        self.peers.iter().find(|p| p.name == name)
    }
}

/// Input that cannot be planned.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("node {0:?} has no Node resource")]
    UnknownNode(String),
    #[error("CALICO_ROUTER_ID {0:?} is neither \"hash\" nor an IPv4 address")]
    BadRouterId(String),
    #[error("Node {node:?}: {field} {value:?} is not an IP address or CIDR")]
    BadNodeAddress {
        node: String,
        field: &'static str,
        value: String,
    },
}
