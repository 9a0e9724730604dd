//! Session computation: client.go `updatePeersV1` (which v1 peerings exist) followed by
//! bgp_processor.go `processPeers` (how each becomes a BIRD `protocol bgp`), seen from one node.

use std::collections::BTreeMap;
use std::net::IpAddr;

use calico_api::bgppeer::{BGPPeer, parse_peer_ip};
use calico_api::netutil::parse_ip;

use crate::cluster::{Index, NodeInfo};
use crate::truncate_filter_name;
use crate::types::{
    FilterCall, IpFamily, LocalWorkloadPeer, NextHop, PasswordResolver, PeerKind, PeerPlan,
    TtlSecurity,
};

/// A v1 peering value (`confd/pkg/backends/types.go` `BGPPeer`).
#[derive(Debug, Clone, Default)]
struct V1Peer {
    ip: Option<IpAddr>,
    as_num: u32,
    local_as: u32,
    rr_cluster_id: String,
    password: Option<String>,
    source_addr: String,
    restart_time: Option<u32>,
    keepalive_time: Option<u32>,
    port: u16,
    keep_next_hop: bool,
    calico_node: bool,
    num_allow_local_as: i32,
    ttl_security: u8,
    filters: Vec<String>,
    reachable_by: Option<IpAddr>,
    next_hop_mode: String,
    passive_mode: bool,
    local_bgp_peer: bool,
}

/// The v1 key: global (`/bgp/v1/global/peer_vX/<ip>-<port>`) or for our node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope {
    Global,
    Node,
}

type Key = (Scope, IpAddr, u16);

fn secs(d: calico_api::duration::Duration) -> u32 {
    // confd: int(math.Round(d.Seconds())).
    d.as_secs_f64().round().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// A selector that does not parse selects nothing (calicoctl validation rejects it earlier;
/// Calico's label manager logs it and matches nothing).
fn selector_matches(index: &Index<'_>, sel: &str, labels: &BTreeMap<String, String>) -> bool {
    match calico_selector::parse(sel) {
        Ok(s) => s.evaluate(labels),
        Err(e) => {
            index.warn(format!(
                "selector {sel:?} is invalid ({e}); it selects no node"
            ));
            false
        }
    }
}

fn nodes_matching<'a>(index: &'a Index<'_>, sel: &str) -> Vec<&'a NodeInfo<'a>> {
    index
        .nodes
        .iter()
        .filter(|n| selector_matches(index, sel, n.labels))
        .collect()
}

/// `getNextHopMode`: `nextHopMode` wins over the legacy `keepOriginalNextHop`.
fn next_hop_fields(p: &BGPPeer) -> (bool, String) {
    match &p.spec.next_hop_mode {
        Some(m) => (false, m.clone()),
        None => (p.spec.keep_original_next_hop, String::new()),
    }
}

/// `setPeerConfigFieldsFromV3Resource`.
fn apply_v3_fields(peers: &mut [V1Peer], p: &BGPPeer, passwords: &dyn PasswordResolver) {
    let password = p
        .spec
        .password
        .as_ref()
        .and_then(|pw| pw.secret_key_ref.as_ref())
        .and_then(|r| passwords.resolve(&r.name, &r.key));
    for v in peers {
        v.password = password.clone();
        v.source_addr = if p.spec.source_address.is_empty() {
            "UseNodeIP".to_string()
        } else {
            p.spec.source_address.clone()
        };
        if let Some(d) = p.spec.max_restart_time {
            v.restart_time = Some(secs(d));
        }
        if let Some(d) = p.spec.keepalive_time {
            v.keepalive_time = Some(secs(d));
        }
    }
}

/// `nodeAsBGPPeers`: a Calico node as a peer (selector peers and reverse peerings). Note that
/// confd does not mark these `calico_node`, so they never get the automatic passive rule.
fn node_as_peers(
    index: &Index<'_>,
    node: &NodeInfo<'_>,
    v4: bool,
    v6: bool,
    p: &BGPPeer,
) -> Vec<V1Peer> {
    let mut out = Vec::new();
    let addrs = [(v4, node.ipv4), (v6, node.ipv6)];
    for (want, addr) in addrs {
        let (true, Some(ip)) = (want, addr) else {
            continue;
        };
        let (keep, mode) = next_hop_fields(p);
        out.push(V1Peer {
            ip: Some(ip),
            ttl_security: p.spec.ttl_security.unwrap_or(0),
            filters: p.spec.filters.clone(),
            reachable_by: parse_ip(&p.spec.reachable_by),
            port: index
                .node_listen_port(node.name)
                .or(index.global_listen_port)
                .unwrap_or(0),
            as_num: index.node_as(node),
            rr_cluster_id: node.rr_cluster_id.to_string(),
            keep_next_hop: keep,
            next_hop_mode: mode,
            ..V1Peer::default()
        });
    }
    out
}

/// `nodesWithIPPortAndAS`: Calico nodes that a `peerIP` (+ AS, + port) designates.
fn nodes_with_ip_port_as<'a>(
    index: &'a Index<'_>,
    ip: IpAddr,
    as_num: u32,
    port: u16,
) -> Vec<&'a NodeInfo<'a>> {
    let want_as = if as_num == 0 { index.global_as } else { as_num };
    index
        .nodes
        .iter()
        .filter(|n| n.ipv4 == Some(ip) || n.ipv6 == Some(ip))
        .filter(|n| index.node_as(n) == want_as)
        .filter(|n| {
            if port == 0 {
                return true;
            }
            // client.go: a node-specific port that differs excludes the node; otherwise a
            // global port that differs does.
            match index.node_listen_port(n.name) {
                Some(np) if np != port => false,
                _ => !matches!(index.global_listen_port, Some(gp) if gp != port),
            }
        })
        .collect()
}

/// The forward peers one BGPPeer describes (`updatePeersV1`, first loop body).
fn forward_peers(
    index: &Index<'_>,
    p: &BGPPeer,
    local_workloads: &[LocalWorkloadPeer],
    passwords: &dyn PasswordResolver,
) -> Vec<V1Peer> {
    if !p.spec.local_workload_selector.is_empty() {
        // `localBGPPeerDataAsBGPPeers`: one passive session per workload address, no source
        // address, and none of the password/timer fields.
        return local_workloads
            .iter()
            .filter(|w| w.bgp_peer_name == p.metadata.name)
            .flat_map(|w| [w.ipv4, w.ipv6])
            .flatten()
            .map(|ip| V1Peer {
                ip: Some(ip),
                local_as: p.spec.local_as_number.map_or(0, |a| a.0),
                filters: p.spec.filters.clone(),
                as_num: p.spec.as_number.0,
                source_addr: "None".to_string(),
                passive_mode: true,
                local_bgp_peer: true,
                ..V1Peer::default()
            })
            .collect();
    }
    if !p.spec.peer_selector.is_empty() {
        let mut peers: Vec<V1Peer> = nodes_matching(index, &p.spec.peer_selector)
            .into_iter()
            .flat_map(|n| node_as_peers(index, n, true, true, p))
            .collect();
        apply_v3_fields(&mut peers, p, passwords);
        return peers;
    }
    let Some((ip, mut port)) = parse_peer_ip(&p.spec.peer_ip) else {
        index.warn(format!(
            "BGPPeer {:?}: peerIP {:?} is not assigned or is malformed; skipped",
            p.metadata.name, p.spec.peer_ip
        ));
        return Vec::new();
    };
    if port == 0 {
        // A peer that is a Calico node is reached on that node's listen port.
        if let Some(n) = nodes_with_ip_port_as(index, ip, p.spec.as_number.0, 0).first() {
            if let Some(np) = index.node_listen_port(n.name) {
                port = np;
            } else if let Some(gp) = index.global_listen_port {
                port = gp;
            }
        }
    }
    let calico_node = index
        .nodes
        .iter()
        .any(|n| n.ipv4 == Some(ip) || n.ipv6 == Some(ip));
    let reachable_by = if p.spec.reachable_by.is_empty() {
        None
    } else {
        match parse_ip(&p.spec.reachable_by) {
            // A malformed or wrong-family gateway drops the whole peering (client.go logs it).
            Some(gw) if gw.is_ipv4() == ip.is_ipv4() => Some(gw),
            _ => {
                index.warn(format!(
                    "BGPPeer {:?}: reachableBy {:?} is malformed or not of the peer's family; skipped",
                    p.metadata.name, p.spec.reachable_by
                ));
                return Vec::new();
            }
        }
    };
    let (keep, mode) = next_hop_fields(p);
    let mut peers = vec![V1Peer {
        ip: Some(ip),
        as_num: p.spec.as_number.0,
        local_as: p.spec.local_as_number.map_or(0, |a| a.0),
        source_addr: p.spec.source_address.clone(),
        port,
        keep_next_hop: keep,
        next_hop_mode: mode,
        calico_node,
        ttl_security: p.spec.ttl_security.unwrap_or(0),
        filters: p.spec.filters.clone(),
        num_allow_local_as: p.spec.num_allowed_local_as_numbers.unwrap_or(0),
        reachable_by,
        ..V1Peer::default()
    }];
    apply_v3_fields(&mut peers, p, passwords);
    peers
}

/// The v1 peerings visible to `me`: global ones and those keyed to this node, with
/// `updatePeersV1`'s precedence (first emitted wins; a node peering that duplicates a global
/// one is dropped).
fn v1_peerings(
    index: &Index<'_>,
    me: &str,
    local_workloads: &[LocalWorkloadPeer],
    passwords: &dyn PasswordResolver,
) -> BTreeMap<Key, V1Peer> {
    let mut out: BTreeMap<Key, V1Peer> = BTreeMap::new();
    let emit = |out: &mut BTreeMap<Key, V1Peer>, scope: Scope, peer: V1Peer| {
        let Some(ip) = peer.ip else { return };
        let key = (scope, ip, peer.port);
        if out.contains_key(&key) {
            return;
        }
        if scope == Scope::Node && out.contains_key(&(Scope::Global, ip, peer.port)) {
            return;
        }
        out.insert(key, peer);
    };

    for global_pass in [true, false] {
        for p in &index.peers {
            let is_global = p.spec.node_selector.is_empty() && p.spec.node.is_empty();
            if global_pass != is_global {
                continue;
            }
            let applies_to_me = if !p.spec.node_selector.is_empty() {
                index
                    .node(me)
                    .is_some_and(|n| selector_matches(index, &p.spec.node_selector, n.labels))
            } else {
                is_global || p.spec.node == me
            };
            if !applies_to_me {
                continue;
            }
            let scope = if global_pass {
                Scope::Global
            } else {
                Scope::Node
            };
            for peer in forward_peers(index, p, local_workloads, passwords) {
                emit(&mut out, scope, peer);
            }
        }
    }

    // Automatic reverse peerings: the nodes a BGPPeer points at peer back with the nodes it
    // applies to (reversePeering Auto, the default).
    for p in &index.peers {
        if p.spec.reverse_peering.as_deref() == Some("Manual")
            || !p.spec.local_workload_selector.is_empty()
        {
            continue;
        }
        let (targets, v4, v6): (Vec<&NodeInfo<'_>>, bool, bool) =
            if !p.spec.peer_selector.is_empty() {
                (nodes_matching(index, &p.spec.peer_selector), true, true)
            } else {
                let Some((ip, port)) = parse_peer_ip(&p.spec.peer_ip) else {
                    continue;
                };
                (
                    nodes_with_ip_port_as(index, ip, p.spec.as_number.0, port),
                    ip.is_ipv4(),
                    ip.is_ipv6(),
                )
            };
        if !targets.iter().any(|n| n.name == me) {
            continue;
        }
        let sources: Vec<&NodeInfo<'_>> = if !p.spec.node_selector.is_empty() {
            nodes_matching(index, &p.spec.node_selector)
        } else if !p.spec.node.is_empty() {
            // client.go uses the name as given; a node without a resource yields no peers.
            index.node(&p.spec.node).into_iter().collect()
        } else {
            index.nodes.iter().collect()
        };
        let mut peers: Vec<V1Peer> = sources
            .into_iter()
            .flat_map(|n| node_as_peers(index, n, v4, v6, p))
            .collect();
        apply_v3_fields(&mut peers, p, passwords);
        for peer in peers {
            emit(&mut out, Scope::Node, peer);
        }
    }
    out
}

fn peer_name(prefix: &str, ip: IpAddr, port: Option<u16>) -> String {
    let ip_text = ip.to_string().replace(['.', ':'], "_");
    match port {
        Some(p) => format!("{prefix}_{ip_text}_port_{p}"),
        None => format!("{prefix}_{ip_text}"),
    }
}

/// `buildImportFilter` / `buildExportFilter`: one call per listed BGPFilter that has rules
/// for this direction and family (unknown filters are skipped, as confd does).
fn filter_calls(
    index: &Index<'_>,
    names: &[String],
    family: IpFamily,
    import: bool,
    same_as: bool,
) -> Vec<FilterCall> {
    let mut out = Vec::new();
    for name in names {
        let Some(f) = index.filters.get(name.as_str()) else {
            continue;
        };
        let rules = match (import, family) {
            (true, IpFamily::V4) => &f.spec.import_v4,
            (true, IpFamily::V6) => &f.spec.import_v6,
            (false, IpFamily::V4) => &f.spec.export_v4,
            (false, IpFamily::V6) => &f.spec.export_v6,
        };
        if rules.is_empty() {
            continue;
        }
        let has_peer_type = rules.iter().any(|r| !r.peer_type.is_empty());
        out.push(FilterCall {
            function: format!(
                "bgp_{}_{}Filter{}",
                truncate_filter_name(name),
                if import { "import" } else { "export" },
                family.suffix()
            ),
            internal_peer_arg: has_peer_type.then_some(same_as),
        });
    }
    out
}

/// All sessions of `me` for `family`, sorted by name.
pub(crate) fn compute(
    index: &Index<'_>,
    me: &str,
    family: IpFamily,
    node_as: u32,
    local_workloads: &[LocalWorkloadPeer],
    passwords: &dyn PasswordResolver,
) -> Vec<PeerPlan> {
    let Some(my) = index.node(me) else {
        return Vec::new();
    };
    let Some(my_ip) = my.address(family) else {
        return Vec::new();
    };
    let my_ip_text = my_ip.to_string();
    let cluster_id = my.rr_cluster_id;
    let mut out = Vec::new();

    // Node-to-node mesh: not on route reflectors, never to route reflectors.
    if cluster_id.is_empty() && index.mesh_enabled {
        let mesh_password = index
            .global
            .and_then(|g| g.spec.node_mesh_password.as_ref())
            .and_then(|pw| pw.secret_key_ref.as_ref())
            .and_then(|r| passwords.resolve(&r.name, &r.key));
        let restart = index
            .global
            .and_then(|g| g.spec.node_mesh_max_restart_time)
            .map(secs);
        for n in &index.nodes {
            let Some(ip) = n.address(family) else {
                continue;
            };
            if ip == my_ip || !n.rr_cluster_id.is_empty() {
                continue;
            }
            let as_number = index.node_as(n);
            out.push(PeerPlan {
                name: peer_name("Mesh", ip, None),
                kind: PeerKind::Mesh,
                ip,
                port: index.node_listen_port(n.name).or(index.global_listen_port),
                as_number,
                local_as: None,
                source_address: Some(my_ip),
                // "Make mesh unidirectional to avoid race conditions": the side whose
                // address sorts higher as text waits.
                passive: ip.to_string() > my_ip_text,
                rr_client: false,
                rr_cluster_id: None,
                password: mesh_password.clone().filter(|p| !p.is_empty()),
                ttl_security: TtlSecurity::Off,
                graceful_restart_time: restart,
                keepalive_time: None,
                next_hop: NextHop::Auto,
                allow_local_as: None,
                internal: as_number == node_as,
                import_filters: Vec::new(),
                export_filters: Vec::new(),
                reachable_by: None,
            });
        }
    }

    for ((scope, ip, _), v) in v1_peerings(index, me, local_workloads, passwords) {
        if !family.matches(ip) || ip == my_ip {
            continue;
        }
        let kind = match scope {
            _ if v.local_bgp_peer => PeerKind::LocalWorkload,
            Scope::Global => PeerKind::Global,
            Scope::Node => PeerKind::NodeSpecific,
        };
        let port = (v.port > 0).then_some(v.port);
        let local_as = (v.local_as != 0).then_some(v.local_as);
        let effective_as = local_as.unwrap_or(node_as);
        let same_as = v.as_num == effective_as;
        let mut next_hop = match v.next_hop_mode.as_str() {
            "Self" => NextHop::SelfAddr,
            "Keep" => NextHop::Keep,
            _ => NextHop::Auto,
        };
        // Legacy keepOriginalNextHop only applies to eBGP peers.
        if v.keep_next_hop && !same_as {
            next_hop = NextHop::Keep;
        }
        // RFC 4456: a route reflector treats every iBGP peer outside its cluster as a client.
        let rr = same_as && !cluster_id.is_empty() && v.rr_cluster_id != cluster_id;
        // Global and local-workload peers that are Calico nodes follow the mesh's passive rule
        // unless already passive.
        let passive = v.passive_mode
            || (matches!(kind, PeerKind::Global | PeerKind::LocalWorkload)
                && v.calico_node
                && ip.to_string() > my_ip_text);
        out.push(PeerPlan {
            name: peer_name(kind.prefix(), ip, port),
            kind,
            ip,
            port,
            as_number: v.as_num,
            local_as,
            source_address: (v.source_addr == "UseNodeIP").then_some(my_ip),
            passive,
            rr_client: rr,
            rr_cluster_id: rr.then(|| cluster_id.to_string()),
            password: v.password.filter(|p| !p.is_empty()),
            ttl_security: if v.ttl_security > 0 {
                TtlSecurity::On(v.ttl_security)
            } else {
                TtlSecurity::Off
            },
            graceful_restart_time: v.restart_time,
            keepalive_time: v.keepalive_time,
            next_hop,
            allow_local_as: u32::try_from(v.num_allow_local_as).ok().filter(|n| *n > 0),
            internal: same_as,
            import_filters: filter_calls(index, &v.filters, family, true, same_as),
            export_filters: filter_calls(index, &v.filters, family, false, same_as),
            reachable_by: v.reachable_by,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
