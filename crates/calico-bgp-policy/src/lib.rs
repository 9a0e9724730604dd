//! Calico's BIRD filters as RIB policies: turns a [`NodeBgpPlan`] (from `calico-bgp-config`)
//! and the cluster's `BGPFilter` resources into implementations of
//! [`calico_bgp::rib::ImportPolicy`] and [`calico_bgp::rib::ExportPolicy`], plus the kernel
//! programming decision of BIRD's `filter calico_kernel_programming`.
//!
//! What is reproduced, and where Calico defines it (commit 87c15906):
//!
//! * per-session `import filter { … }` / `export filter { … }` blocks built by confd's
//!   `buildImportFilter` / `buildExportFilter` (`confd/pkg/backends/calico/bgp_processor.go`);
//! * the BGPFilter functions rendered by `BGPFilterBIRDFuncs`
//!   (`confd/pkg/resource/template/template_funcs.go`): ordered rules, the first matching rule
//!   ends the whole filter (BIRD's `accept;`/`reject;` inside a function terminate the filter);
//! * `calico_export_to_bgp_peers`, `apply_communities`, `calico_aggr` and
//!   `calico_kernel_programming` from the `bird*_ipam.cfg` / `bird*_aggr.cfg` templates
//!   (`node/filesystem/etc/calico/confd/templates/`).
//!
//! Priorities follow Calico's mapping between a kernel metric (lower wins) and BGP LOCAL_PREF
//! (higher wins): `local_pref = 2147483647 - metric` ([`BIRD_INT_MAX`]). A locally originated
//! route (`PeerType::Local`) carries its priority the same way: `LOCAL_PREF` absent means the
//! plan's `normalRoutePriority`, `Some(lp)` means metric `2147483647 - lp` (BIRD reads Felix's
//! `krt_metric` from the kernel route instead).
//!
//! Not applicable to a speaker that is not BIRD, and documented where it matters: routes carry
//! no interface name, which BIRD's `ifname` shows as the empty string (as for its blackhole
//! routes). A BGPFilter `interface` glob therefore matches only when it is all `*`, and
//! Calico's interface-based rejections (`*.cali`, `*.calico`, `tunl0`, `bpf*.cali`) never
//! match; in BIRD a BGP route's `ifname` is the interface towards its next hop, so a glob
//! such as `eth*` can match there and cannot here. BIRD's protocol `preference` has no
//! equivalent either (see [`CalicoPolicies::is_elevated`]).
//!
//! This crate is pure: no I/O, no runtime, no datastore. It must not depend on the speaker
//! (`calico-bgp-speaker`) or on anything that does I/O.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use calico_api::{decode::decode_documents, resource::Resource};
//! use calico_bgp::rib::{PeerInfo, PeerType, PolicyResult, Rib, RibConfig, Route};
//! use calico_bgp_config::{AffineBlock, BlockState, ClusterInput, IpFamily, LocalInput, StaticPasswords, plan};
//! use calico_bgp_policy::{CalicoPolicies, KernelVerdict};
//!
//! let yaml = "kind: Node\napiVersion: projectcalico.org/v3\nmetadata: {name: a}\n\
//!             spec: {bgp: {ipv4Address: 10.0.0.1/24}}\n---\n\
//!             kind: Node\napiVersion: projectcalico.org/v3\nmetadata: {name: b}\n\
//!             spec: {bgp: {ipv4Address: 10.0.0.2/24}}\n---\n\
//!             kind: IPPool\napiVersion: projectcalico.org/v3\nmetadata: {name: p}\n\
//!             spec: {cidr: 10.65.0.0/16}\n";
//! let (mut nodes, mut pools) = (vec![], vec![]);
//! for d in decode_documents("example", yaml)? {
//!     match d.resource {
//!         Resource::Node(n) => nodes.push(n),
//!         Resource::IPPool(p) => pools.push(p),
//!         _ => {}
//!     }
//! }
//! let cluster = ClusterInput { nodes: &nodes, ip_pools: &pools, ..ClusterInput::default() };
//! let blocks = [AffineBlock { cidr: "10.65.1.0/26".parse()?, state: BlockState::Confirmed }];
//! let local = LocalInput { node_name: "a", affine_blocks: &blocks, ..LocalInput::default() };
//! let v4 = plan(&cluster, &local, IpFamily::V4, &StaticPasswords::new())?;
//!
//! let policies = CalicoPolicies::new(&[&v4], &BTreeMap::new())?;
//! // The RIB runs them on every import and export; the FIB writer asks the kernel filter.
//! let rib = Rib::with_policies(
//!     RibConfig { local_as: v4.as_number, router_id: "10.0.0.1".parse()?, cluster_id: None },
//!     policies.import(),
//!     policies.export(),
//! );
//! # let _ = rib;
//! let mesh = PeerInfo::new("10.0.0.2".parse()?, "10.0.0.2".parse()?, 64512, PeerType::Internal);
//! let tor = PeerInfo::new("10.0.0.254".parse()?, "10.0.0.254".parse()?, 65000, PeerType::External);
//! let block = Route {
//!     prefix: "10.65.1.0/26".parse()?,
//!     path_id: 0,
//!     attrs: Arc::default(),
//!     next_hop: None,
//!     source: Arc::new(PeerInfo::new("0.0.0.0".parse()?, "10.0.0.1".parse()?, 64512, PeerType::Local)),
//!     stale: false,
//! };
//! // To the mesh peer: accepted by calico_aggr, with the normal priority as LOCAL_PREF.
//! let PolicyResult::Modify(sent) = policies.export().export(&mesh, &block) else { panic!() };
//! assert_eq!(sent.local_pref, Some(2147483647 - 1024));
//! // No session to 10.0.0.254 in the plan (no BGPPeer): nothing is exported to it.
//! assert_eq!(policies.export().export(&tor, &block), PolicyResult::Reject);
//! // Our no-encap pool's block goes to the kernel (as BIRD's blackhole, without a metric).
//! assert_eq!(policies.kernel_accepts(&block), KernelVerdict::Accept { metric: 0 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod flow;
mod rules;

#[cfg(test)]
mod bird_differential;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use calico_api::bgpfilter::BGPFilter;
use calico_bgp::rib::{ExportPolicy, ImportPolicy, PeerInfo, PolicyResult, Route};
use calico_bgp_config::{
    CommunityValue, IpFamily, KernelDecision, KernelTunnel, NodeBgpPlan, StaticRoute,
    truncate_filter_name,
};
use calico_bgp_packet::{Community, LargeCommunity};
use ipnet::IpNet;

use crate::rules::CompiledFilter;

pub use crate::rules::RuleList;

/// 2^31 - 1: Calico converts between a route priority (kernel metric, lower wins) and BGP
/// LOCAL_PREF (higher wins) with `x = 2147483647 - y` (`BirdIntMaxValue` in confd's
/// `template_funcs.go`).
pub const BIRD_INT_MAX: u32 = 2_147_483_647;

/// Calico's priority (kernel metric) for a LOCAL_PREF value. Values above [`BIRD_INT_MAX`]
/// (never produced by Calico) count as priority 0.
pub fn priority_from_local_pref(local_pref: u32) -> u32 {
    BIRD_INT_MAX.saturating_sub(local_pref)
}

/// The LOCAL_PREF that carries a Calico priority (kernel metric).
pub fn local_pref_from_priority(priority: u32) -> u32 {
    BIRD_INT_MAX.saturating_sub(priority)
}

/// Input that BIRD would refuse (confd fails to render, so the old config stays in force).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Two plans of the same address family were given.
    #[error("two BGP plans for {0:?}: give at most one IPv4 and one IPv6 plan")]
    DuplicateFamily(IpFamily),
    /// A session calls a BGPFilter function no filter in the map defines (the plan was
    /// computed from other filters than the ones given here).
    #[error("BGP peer {peer}: filter function {function:?} matches no BGPFilter given")]
    UnknownFilterFunction { peer: String, function: String },
    /// A BGPFilter rule that cannot be rendered (confd's `filterStatement` errors).
    #[error("BGPFilter {filter:?} {list}[{index}]: {reason}")]
    BadRule {
        filter: String,
        /// `importV4`, `exportV6`, …
        list: &'static str,
        index: usize,
        reason: String,
    },
    /// A `prefixAdvertisements` community that does not fit its format.
    #[error("community rule for {cidr:?}: {reason}")]
    BadCommunity { cidr: String, reason: String },
    /// A CIDR in the plan that is not a network.
    #[error("{what}: {value:?} is not a CIDR")]
    BadCidr { what: &'static str, value: String },
    /// `ipv4NormalRoutePriority` / `ipv6NormalRoutePriority` outside 1..=2147483646.
    #[error("normal route priority {0} is outside 1..=2147483646")]
    BadNormalRoutePriority(i64),
}

/// What `filter calico_kernel_programming` decides for a best route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelVerdict {
    /// Write it to the kernel FIB with this metric (0 = no metric attribute, the kernel's
    /// default, as BIRD does for routes without `krt_metric`).
    Accept { metric: u32 },
    /// Leave the kernel alone for this prefix.
    Reject,
}

/// Service IP advertisement, which confd keeps outside the plan: the `/calico/staticroutes*`
/// (advertised) and `/calico/rejectcidrs*` (never programmed) keys written by its route
/// generator from `BGPConfiguration.serviceClusterIPs`/`serviceExternalIPs`/
/// `serviceLoadBalancerIPs`, and a route reflector's `serviceLoadBalancerIPs`/
/// `serviceExternalIPs` ranges that it re-exports (`bird_ipam.cfg.template`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRoutes {
    /// `if ( net ~ <cidr> ) then { accept; }` in `calico_export_to_bgp_peers`.
    pub advertised: Vec<IpNet>,
    /// `if ( net ~ <cidr> ) then { reject; }` first in `calico_kernel_programming`.
    pub kernel_rejected: Vec<IpNet>,
    /// Accepted for export when this node is a route reflector (pass them only then).
    pub route_reflector_accepted: Vec<IpNet>,
}

/// One session's filter chain. (`calico_export_to_bgp_peers(internal)` uses its argument only
/// for the interface-based iBGP rejections, which never match our routes.)
#[derive(Debug)]
pub(crate) struct PeerPolicy {
    pub name: String,
    /// The BGPFilter functions called, each with its `is_same_as` argument.
    pub import: Vec<(Arc<CompiledFilter>, bool)>,
    pub export: Vec<(Arc<CompiledFilter>, bool)>,
}

/// A pool statement of `calico_kernel_programming`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KernelPool {
    Accept { tunnel: KernelTunnel },
    Reject,
}

/// Everything one family's BIRD config decides.
#[derive(Debug)]
pub(crate) struct FamilyPolicy {
    pub normal_route_priority: u32,
    pub peers: HashMap<IpAddr, PeerPolicy>,
    /// `disableBGPExport` pools: rejected before anything else in `calico_export_to_bgp_peers`.
    pub disabled_pools: Vec<IpNet>,
    /// All other pools, accepted last.
    pub enabled_pools: Vec<IpNet>,
    /// `apply_communities()`.
    pub communities: Vec<(IpNet, Vec<CommunityValue>)>,
    /// `calico_aggr()`: this node's confirmed blocks.
    pub aggr_blocks: Vec<IpNet>,
    pub services: ServiceRoutes,
    pub wireguard_next_hops: Vec<IpAddr>,
    /// In statement order; IPv6 keeps only the rejections, as confd does.
    pub kernel_pools: Vec<(IpNet, KernelPool)>,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub v4: Option<FamilyPolicy>,
    pub v6: Option<FamilyPolicy>,
}

impl Inner {
    pub fn family(&self, prefix: &IpNet) -> Option<&FamilyPolicy> {
        match prefix {
            IpNet::V4(_) => self.v4.as_ref(),
            IpNet::V6(_) => self.v6.as_ref(),
        }
    }
}

/// Calico's filters for one node, shared by the import and export policies handed to the RIB.
#[derive(Debug, Clone)]
pub struct CalicoPolicies {
    inner: Arc<Inner>,
}

impl CalicoPolicies {
    /// `plans`: the v4 and/or v6 plan; `filters`: all BGPFilter resources by name.
    pub fn new(
        plans: &[&NodeBgpPlan],
        filters: &BTreeMap<String, BGPFilter>,
    ) -> Result<CalicoPolicies, PolicyError> {
        Self::with_services(
            plans,
            filters,
            &ServiceRoutes::default(),
            &ServiceRoutes::default(),
        )
    }

    /// [`CalicoPolicies::new`] plus the service routes of each family (see [`ServiceRoutes`];
    /// entries of the other family are ignored).
    pub fn with_services(
        plans: &[&NodeBgpPlan],
        filters: &BTreeMap<String, BGPFilter>,
        services_v4: &ServiceRoutes,
        services_v6: &ServiceRoutes,
    ) -> Result<CalicoPolicies, PolicyError> {
        let mut inner = Inner::default();
        for plan in plans {
            let services = match plan.family {
                IpFamily::V4 => services_v4,
                IpFamily::V6 => services_v6,
            };
            let fp = compile_family(plan, filters, services)?;
            let slot = match plan.family {
                IpFamily::V4 => &mut inner.v4,
                IpFamily::V6 => &mut inner.v6,
            };
            if slot.is_some() {
                return Err(PolicyError::DuplicateFamily(plan.family));
            }
            *slot = Some(fp);
        }
        Ok(CalicoPolicies {
            inner: Arc::new(inner),
        })
    }

    /// The import policy (shares state with `self`).
    pub fn import(&self) -> Box<dyn ImportPolicy + Send + Sync> {
        Box::new(CalicoImport(self.inner.clone()))
    }

    /// The export policy (shares state with `self`).
    pub fn export(&self) -> Box<dyn ExportPolicy + Send + Sync> {
        Box::new(CalicoExport(self.inner.clone()))
    }

    /// `filter calico_kernel_programming`: may this best route be written to the kernel FIB?
    pub fn kernel_accepts(&self, route: &Route) -> KernelVerdict {
        flow::kernel(&self.inner, route).0
    }

    /// Whether an accepted kernel route goes through the IPIP device: BIRD's
    /// `krt_tunnel="tunl0"` for IPv4 IPIP pools that BIRD programs (`ipipMode: Always`, or
    /// `CrossSubnet` with a next hop outside this node's subnet). `None` for a plain route or a
    /// rejected one.
    pub fn kernel_tunnel(&self, route: &Route) -> Option<&'static str> {
        flow::kernel(&self.inner, route).1
    }

    /// Whether the route's priority beats the normal one (`bgp_local_pref > 2147483647 -
    /// normalRoutePriority`). BIRD then raises the import `preference` so the route wins over
    /// a local workload route learned from the kernel (kubevirt live migration); the RIB has no
    /// protocol preference, so the speaker asks here.
    pub fn is_elevated(&self, route: &Route) -> bool {
        self.inner
            .family(&route.prefix)
            .is_some_and(|f| route.local_pref() > local_pref_from_priority(f.normal_route_priority))
    }

    /// The session names (plan `PeerPlan::name`) this policy knows, per address.
    pub fn peers(&self) -> Vec<(IpAddr, String)> {
        let mut out: Vec<(IpAddr, String)> = [&self.inner.v4, &self.inner.v6]
            .into_iter()
            .flatten()
            .flat_map(|f| f.peers.iter().map(|(a, p)| (*a, p.name.clone())))
            .collect();
        out.sort();
        out
    }
}

struct CalicoImport(Arc<Inner>);
struct CalicoExport(Arc<Inner>);

impl ImportPolicy for CalicoImport {
    fn import(&self, peer: &PeerInfo, route: &Route) -> PolicyResult {
        flow::import(&self.0, peer, route)
    }
}

impl ExportPolicy for CalicoExport {
    fn export(&self, peer: &PeerInfo, route: &Route) -> PolicyResult {
        flow::export(&self.0, peer, route)
    }
}

fn parse_net(what: &'static str, s: &str) -> Result<IpNet, PolicyError> {
    calico_api::netutil::parse_cidr_or_ip(s)
        .map(|c| c.network())
        .ok_or_else(|| PolicyError::BadCidr {
            what,
            value: s.to_string(),
        })
}

/// The BIRD function names confd gives a filter's rule lists (`BGPFilterFunctionName`).
fn function_name(filter: &str, import: bool, family: IpFamily) -> String {
    format!(
        "bgp_{}_{}Filter{}",
        truncate_filter_name(filter),
        if import { "import" } else { "export" },
        family.suffix()
    )
}

fn compile_family(
    plan: &NodeBgpPlan,
    filters: &BTreeMap<String, BGPFilter>,
    services: &ServiceRoutes,
) -> Result<FamilyPolicy, PolicyError> {
    let family = plan.family;
    let nrp = u32::try_from(plan.normal_route_priority)
        .ok()
        .filter(|p| (1..BIRD_INT_MAX).contains(p))
        .ok_or(PolicyError::BadNormalRoutePriority(
            plan.normal_route_priority,
        ))?;

    // confd renders every BGPFilter into bird.cfg, so one bad filter fails the whole config,
    // referenced or not.
    let mut functions: HashMap<String, Arc<CompiledFilter>> = HashMap::new();
    for (name, f) in filters {
        for import in [true, false] {
            let (list, rules) = match (import, family) {
                (true, IpFamily::V4) => (RuleList::ImportV4, &f.spec.import_v4),
                (true, IpFamily::V6) => (RuleList::ImportV6, &f.spec.import_v6),
                (false, IpFamily::V4) => (RuleList::ExportV4, &f.spec.export_v4),
                (false, IpFamily::V6) => (RuleList::ExportV6, &f.spec.export_v6),
            };
            if rules.is_empty() {
                continue;
            }
            let compiled = CompiledFilter::compile(name, list, rules)?;
            functions.insert(function_name(name, import, family), Arc::new(compiled));
        }
    }

    let mut peers = HashMap::new();
    for p in &plan.peers {
        let resolve = |calls: &[calico_bgp_config::FilterCall]| {
            calls
                .iter()
                .map(|c| {
                    let f = functions.get(&c.function).cloned().ok_or_else(|| {
                        PolicyError::UnknownFilterFunction {
                            peer: p.name.clone(),
                            function: c.function.clone(),
                        }
                    })?;
                    // Functions without peerType rules take no argument (and ignore it here).
                    Ok((f, c.internal_peer_arg.unwrap_or(p.internal)))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        // Keyed by address, as the RIB keys its peers: of two sessions to one address on
        // different ports (`…_port_<n>`), the last by name wins.
        peers.insert(
            p.ip,
            PeerPolicy {
                name: p.name.clone(),
                import: resolve(&p.import_filters)?,
                export: resolve(&p.export_filters)?,
            },
        );
    }

    let mut communities = Vec::new();
    for rule in &plan.communities {
        let net = parse_net("prefixAdvertisements cidr", &rule.cidr)?;
        for c in &rule.communities {
            if let CommunityValue::Standard(a, b) = c
                && (*a > u32::from(u16::MAX) || *b > u32::from(u16::MAX))
            {
                return Err(PolicyError::BadCommunity {
                    cidr: rule.cidr.clone(),
                    reason: format!("standard community {a}:{b} has a part above 65535"),
                });
            }
        }
        communities.push((net, rule.communities.clone()));
    }

    let aggr_blocks = plan
        .statics
        .iter()
        .filter_map(|s| match s {
            StaticRoute::Blackhole(b) => Some(*b),
            StaticRoute::Via { .. } => None,
        })
        .collect();

    let mut kernel_pools = Vec::new();
    for pool in &plan.pools {
        let stmt = match &pool.kernel {
            None => continue,
            Some(KernelDecision::Program { tunnel }) => {
                // bird6: only the reject statements are written (the final `accept;` covers
                // the rest), which matters for overlapping pools.
                if family == IpFamily::V6 {
                    continue;
                }
                KernelPool::Accept {
                    tunnel: tunnel.clone(),
                }
            }
            Some(KernelDecision::RejectVxlan | KernelDecision::RejectFelixOwns) => {
                KernelPool::Reject
            }
        };
        kernel_pools.push((pool.cidr, stmt));
    }

    let keep = |v: &[IpNet]| -> Vec<IpNet> {
        v.iter()
            .filter(|n| family.matches(n.addr()))
            .copied()
            .collect()
    };
    Ok(FamilyPolicy {
        normal_route_priority: nrp,
        peers,
        disabled_pools: plan
            .pools
            .iter()
            .filter(|p| !p.export)
            .map(|p| p.cidr)
            .collect(),
        enabled_pools: plan
            .pools
            .iter()
            .filter(|p| p.export)
            .map(|p| p.cidr)
            .collect(),
        communities,
        aggr_blocks,
        services: ServiceRoutes {
            advertised: keep(&services.advertised),
            kernel_rejected: keep(&services.kernel_rejected),
            route_reflector_accepted: keep(&services.route_reflector_accepted),
        },
        wireguard_next_hops: plan.wireguard_rejected_next_hops.clone(),
        kernel_pools,
    })
}

/// BIRD's `bgp_community.add((a, b))`: a set add (no duplicate), appended.
pub(crate) fn add_community(
    comms: &mut Vec<Community>,
    large: &mut Vec<LargeCommunity>,
    c: CommunityValue,
) {
    match c {
        CommunityValue::Standard(a, b) => {
            // Checked to fit 16 bits when compiled.
            let v = Community((a << 16) | (b & 0xffff));
            if !comms.contains(&v) {
                comms.push(v);
            }
        }
        CommunityValue::Large(g, l1, l2) => {
            let v = LargeCommunity {
                global_admin: g,
                local_data1: l1,
                local_data2: l2,
            };
            if !large.contains(&v) {
                large.push(v);
            }
        }
    }
}
