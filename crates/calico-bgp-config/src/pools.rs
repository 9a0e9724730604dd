//! Per-pool decisions: bgp_processor.go `processIPPools` / `processIPPool` and the
//! `programClusterRoutes` policy (`design/cluster-route-programming/DESIGN.md`).

use calico_api::ippool::IPPool;
use calico_api::netutil::parse_cidr;

use crate::cluster::{Index, NodeInfo};
use crate::types::{IpFamily, KernelDecision, KernelTunnel, PoolPlan};

/// Which pools BIRD programs into the kernel, from `BGPConfiguration.programClusterRoutes`.
/// Unset and unknown values mean `EnabledNoEncapOnly` (Felix owns IPIP since v3.33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClusterRoutePolicy {
    ipip: bool,
    no_encap: bool,
}

fn policy(index: &Index<'_>) -> ClusterRoutePolicy {
    let v = index
        .global
        .and_then(|g| g.spec.program_cluster_routes.as_deref());
    match v {
        Some("Disabled") => ClusterRoutePolicy {
            ipip: false,
            no_encap: false,
        },
        Some("Enabled") => ClusterRoutePolicy {
            ipip: true,
            no_encap: true,
        },
        Some("EnabledIPIPOnly") => ClusterRoutePolicy {
            ipip: true,
            no_encap: false,
        },
        _ => ClusterRoutePolicy {
            ipip: false,
            no_encap: true,
        },
    }
}

fn mode_on(mode: &str) -> bool {
    mode == "Always" || mode == "CrossSubnet"
}

fn decide(
    pool: &IPPool,
    p: ClusterRoutePolicy,
    family: IpFamily,
    me: &NodeInfo<'_>,
) -> Option<(ipnet::IpNet, bool, Option<KernelDecision>)> {
    let cidr = parse_cidr(&pool.spec.cidr)?.network();
    if !family.matches(cidr.addr()) {
        return None;
    }
    let export = !pool.spec.disable_bgp_export;
    let local_subnet = match family {
        IpFamily::V4 => me.network_v4,
        IpFamily::V6 => me.network_v6,
    };
    let vxlan = mode_on(&pool.spec.vxlan_mode);
    let ipip = mode_on(&pool.spec.ipip_mode);
    let bird_programs = !vxlan && if ipip { p.ipip } else { p.no_encap };
    let kernel = if vxlan {
        KernelDecision::RejectVxlan
    } else if bird_programs {
        let tunnel = match (family, pool.spec.ipip_mode.as_str()) {
            (IpFamily::V4, "Always") => KernelTunnel::Ipip,
            (IpFamily::V4, "CrossSubnet") => match local_subnet {
                Some(s) => KernelTunnel::IpipCrossSubnet { local_subnet: s },
                None => KernelTunnel::Ipip,
            },
            _ => KernelTunnel::None,
        };
        KernelDecision::Program { tunnel }
    } else {
        KernelDecision::RejectFelixOwns
    };
    // confd writes IPv4 kernel statements only when it knows the node's subnet.
    let kernel = (family == IpFamily::V6 || local_subnet.is_some()).then_some(kernel);
    Some((cidr, export, kernel))
}

/// The pools of `family` (sorted by CIDR text, as confd sorts its statements) and the interface
/// patterns whose routes are never exported to iBGP peers.
pub(crate) fn compute(
    index: &Index<'_>,
    me: &NodeInfo<'_>,
    family: IpFamily,
) -> (Vec<PoolPlan>, Vec<&'static str>) {
    let p = policy(index);
    let mut pools: Vec<PoolPlan> = index
        .pools
        .iter()
        .filter_map(|pool| decide(pool, p, family, me))
        .map(|(cidr, export, kernel)| PoolPlan {
            cidr,
            export,
            kernel,
        })
        .collect();
    pools.sort_by_key(|p| p.cidr.to_string());
    // Felix's VXLAN (`*.cali`) and WireGuard (`*.calico`) routes are never re-exported over
    // iBGP; neither is `tunl0` when Felix, not BIRD, programs IPIP routes.
    let mut ifaces = vec!["*.cali", "*.calico"];
    if !p.ipip {
        ifaces.push("tunl0");
    }
    (pools, ifaces)
}
