//! Owns "which BGP sessions and routes this node must have, by Calico's rules": the Rust
//! equivalent of confd's `getBGPConfig(4|6)` (`confd/pkg/backends/calico/bgp_processor.go`)
//! together with the peering computation of `client.go` (`updatePeersV1`): node-to-node mesh,
//! explicit global / node-specific / selector peers and their automatic reverse peerings,
//! route-reflector client marking, the "higher address is passive" rule, passwords, ports,
//! TTL security, next-hop modes, restart and keepalive times, BGPFilter calls, communities,
//! listen address/port, the router id (including `CALICO_ROUTER_ID=hash`), blackhole statics for
//! affine IPAM blocks, and the per-pool export / kernel-programming decisions.
//!
//! Input is typed `projectcalico.org/v3` resources from `calico-api`; output is a typed
//! [`NodeBgpPlan`] per address family. This crate must not do I/O (secrets come through the
//! [`PasswordResolver`] trait, environment overrides through [`LocalInput`]), must not speak BGP,
//! and must not depend on a datastore, a runtime or the speaker.

mod cluster;
mod peers;
mod pools;
mod types;

pub use cluster::ClusterInput;
pub use types::*;

use std::net::{IpAddr, Ipv4Addr};

use sha2::{Digest, Sha256};

/// Computes this node's plan for one address family, as confd's `getBGPConfig(4|6)` does.
pub fn plan(
    cluster: &ClusterInput<'_>,
    local: &LocalInput<'_>,
    family: IpFamily,
    passwords: &dyn PasswordResolver,
) -> Result<NodeBgpPlan, PlanError> {
    let index = cluster::Index::build(cluster);
    let me = index
        .node(local.node_name)
        .ok_or_else(|| PlanError::UnknownNode(local.node_name.to_string()))?;
    // Our own address must be usable; another node's bad address only loses that address.
    for e in &index.bad_addresses {
        match e {
            PlanError::BadNodeAddress { node, .. } if node == local.node_name => {
                return Err(e.clone());
            }
            other => index.warn(other.to_string()),
        }
    }

    let router_id = router_id(local, me.ipv4)?;
    let as_number = me.as_number.unwrap_or(index.global_as);
    let own_address = me.address(family);

    // confd sets `listen bgp address` only for bindMode NodeIP and only when the node has an
    // address of this family; the port comes from `node.<name>` then `default`.
    let listen_address = if index.bind_node_ip {
        own_address
    } else {
        None
    };
    let listen_port = index.listen_port_for(local.node_name);

    let normal_route_priority = index.normal_route_priority(family);
    let mut plan = NodeBgpPlan {
        family,
        node_name: local.node_name.to_string(),
        family_enabled: own_address.is_some(),
        own_address,
        router_id,
        as_number,
        listen_address,
        listen_port,
        normal_route_priority,
        debug: index.debug_mode(local.node_name),
        direct_interfaces_excluded: index.ignored_interfaces.clone(),
        peers: Vec::new(),
        statics: Vec::new(),
        communities: index.communities(local.node_name, family),
        pools: Vec::new(),
        ibgp_reject_interfaces: Vec::new(),
        wireguard_rejected_next_hops: Vec::new(),
        warnings: Vec::new(),
    };

    // bird6.cfg prints "IPv6 disabled on this node" (and bird.cfg the IPv4 equivalent) when the
    // node has no address of the family: no sessions at all then.
    if own_address.is_some() {
        plan.peers = peers::compute(
            &index,
            local.node_name,
            family,
            as_number,
            local.local_workload_peers,
            passwords,
        );
    }
    plan.statics = statics(local, family, &plan.peers);
    let (pools, ibgp_ifaces) = pools::compute(&index, me, family);
    plan.pools = pools;
    plan.ibgp_reject_interfaces = ibgp_ifaces;
    plan.wireguard_rejected_next_hops = index.wireguard_next_hops(local.node_name, family);
    plan.warnings = index.take_warnings();
    Ok(plan)
}

/// Both families, as confd renders `bird.cfg` and `bird6.cfg`.
pub fn plan_both(
    cluster: &ClusterInput<'_>,
    local: &LocalInput<'_>,
    passwords: &dyn PasswordResolver,
) -> Result<(NodeBgpPlan, NodeBgpPlan), PlanError> {
    Ok((
        plan(cluster, local, IpFamily::V4, passwords)?,
        plan(cluster, local, IpFamily::V6, passwords)?,
    ))
}

/// `router id`: `$CALICO_ROUTER_ID`, a hash of the node name when that is `hash`, else the
/// node's IPv4 address, which confd uses for bird6 too because a router id is 4 octets.
fn router_id(local: &LocalInput<'_>, ipv4: Option<IpAddr>) -> Result<Option<Ipv4Addr>, PlanError> {
    match local.router_id_env {
        Some("hash") => Ok(Some(hash_to_ipv4(local.node_name))),
        Some(v) if !v.is_empty() => v
            .parse::<Ipv4Addr>()
            .map(Some)
            .map_err(|_| PlanError::BadRouterId(v.to_string())),
        _ => Ok(match ipv4 {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        }),
    }
}

/// confd's `HashToIPv4`: the first four bytes of SHA-256(node name), with a first octet above
/// 223 lowered by 32 so the id never falls into the multicast/reserved ranges.
pub fn hash_to_ipv4(node_name: &str) -> Ipv4Addr {
    let digest = Sha256::digest(node_name.as_bytes());
    let mut first = digest[0];
    if first > 223 {
        first -= 32;
    }
    Ipv4Addr::new(first, digest[1], digest[2], digest[3])
}

/// `bird_aggr.cfg`'s `static_template`: a blackhole per affine block (confirmed or legacy,
/// never pending, never a /32 — confd's template skips `/32` keys), then `<peer>/32 via
/// <reachableBy>` for every peer that has `reachableBy`.
fn statics(local: &LocalInput<'_>, family: IpFamily, peers: &[PeerPlan]) -> Vec<StaticRoute> {
    let mut blocks: Vec<&AffineBlock> = local
        .affine_blocks
        .iter()
        .filter(|b| family.matches(b.cidr.addr()))
        .filter(|b| b.state != BlockState::Pending)
        .filter(|b| !(b.cidr.addr().is_ipv4() && b.cidr.prefix_len() == 32))
        .collect();
    // confd lists `/ipam/v2/host/<node>/ipv4/block/<a.b.c.d-len>` keys in string order.
    blocks.sort_by_key(|b| block_key(&b.cidr));
    let mut out: Vec<StaticRoute> = blocks
        .into_iter()
        .map(|b| StaticRoute::Blackhole(b.cidr))
        .collect();
    for p in peers {
        if let Some(via) = p.reachable_by {
            let prefix = if p.ip.is_ipv4() { 32 } else { 128 };
            if let Ok(dst) = ipnet::IpNet::new(p.ip, prefix) {
                out.push(StaticRoute::Via { dst, via });
            }
        }
    }
    out
}

fn block_key(cidr: &ipnet::IpNet) -> String {
    format!("{}-{}", cidr.addr(), cidr.prefix_len())
}

/// Truncates a BGPFilter name the way confd's `TruncateAndHashName` does so the BIRD symbol
/// `bgp_<name>_importFilterV4` stays within BIRD's 64-character limit: names longer than 45
/// characters keep their first 28 characters plus `_` and 16 upper-case hex digits of
/// SHA-256(name).
pub fn truncate_filter_name(name: &str) -> String {
    const MAX: usize = 64 - "bgp__importFilterV4".len();
    const HASH_CHARS: usize = 16;
    if name.len() <= MAX {
        return name.to_string();
    }
    let keep = MAX - HASH_CHARS - 1;
    let mut cut = keep;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("{}_{}", &name[..cut], &hex[..HASH_CHARS])
}

#[cfg(test)]
mod tests;
