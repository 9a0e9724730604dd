//! The per-session filter blocks and the kernel filter, statement by statement as confd writes
//! them (`buildImportFilter` / `buildExportFilter` in `bgp_processor.go`,
//! `calico_export_to_bgp_peers` and `calico_kernel_programming` in `bird*_ipam.cfg.template`,
//! `calico_aggr` in `bird*_aggr.cfg.template`).

use std::net::IpAddr;

use calico_bgp::rib::{PeerInfo, PeerType, PolicyResult, Route};
use calico_bgp_config::KernelTunnel;
use calico_bgp_packet::MpNextHop;

use crate::rules::{Action, Verdict, Working};
use crate::{
    FamilyPolicy, Inner, KernelPool, KernelVerdict, PeerPolicy, local_pref_from_priority,
    priority_from_local_pref,
};

/// The session `peer` of the plan of `route`'s family. Calico runs one BIRD per family, so a
/// route is only exchanged over the sessions of its own family's plan; anything else
/// (a peer no plan knows, an IPv6 route over an IPv4 session) is rejected.
fn session<'a>(
    inner: &'a Inner,
    peer: &PeerInfo,
    route: &Route,
) -> Option<(&'a FamilyPolicy, &'a PeerPolicy)> {
    let fam = inner.family(&route.prefix)?;
    let p = fam.peers.get(&peer.address)?;
    Some((fam, p))
}

/// ```text
/// import filter {
///   'bgp_<f>_importFilterV4'(<same as>);   # one per BGPFilter with rules, in peer order
///   if (defined(bgp_local_pref)&&(bgp_local_pref > 2147483647-NRP)) then preference = 200;
///   accept;
/// };
/// ```
/// The `preference` line has no RIB equivalent (see `CalicoPolicies::is_elevated`).
pub(crate) fn import(inner: &Inner, peer: &PeerInfo, route: &Route) -> PolicyResult {
    let Some((_, p)) = session(inner, peer, route) else {
        return PolicyResult::Reject;
    };
    let mut w = Working::new(route);
    // RFC 4271 §5.1.5: a LOCAL_PREF from an external peer is ignored. BIRD discards it on
    // receipt and attaches its default, so filters (priority matches) and the kernel metric
    // never see the peer's value; dropping it here keeps it out of the Loc-RIB too.
    if route.source.peer_type == PeerType::External && route.attrs.local_pref.is_some() {
        w.attrs_mut().local_pref = None;
    }
    for (f, same_as) in &p.import {
        match f.run(&mut w, *same_as) {
            Verdict::Accept => return w.into_result(Action::Accept),
            Verdict::Reject => return PolicyResult::Reject,
            Verdict::NoMatch => {}
        }
    }
    w.into_result(Action::Accept)
}

/// ```text
/// export filter {
///   <prologue: krt_metric / bgp_local_pref>
///   'bgp_<f>_exportFilterV4'(<same as>);   # one per BGPFilter with rules
///   calico_export_to_bgp_peers(<same as>);
///   reject;
/// };
/// ```
pub(crate) fn export(inner: &Inner, peer: &PeerInfo, route: &Route) -> PolicyResult {
    let Some((fam, p)) = session(inner, peer, route) else {
        return PolicyResult::Reject;
    };
    let mut w = Working::new(route);
    // Prologue: a BGP-learned route keeps its LOCAL_PREF and derives its metric from it; a
    // local route's metric (Felix's krt_metric, or normalRoutePriority) becomes its
    // LOCAL_PREF, so peers learn its priority.
    let krt_metric = if route.source.peer_type == PeerType::Local {
        let metric = route
            .attrs
            .local_pref
            .map_or(fam.normal_route_priority, priority_from_local_pref);
        w.set_local_pref(local_pref_from_priority(metric));
        metric
    } else {
        priority_from_local_pref(w.local_pref())
    };
    for (f, same_as) in &p.export {
        match f.run(&mut w, *same_as) {
            Verdict::Accept => return w.into_result(Action::Accept),
            Verdict::Reject => return PolicyResult::Reject,
            Verdict::NoMatch => {}
        }
    }
    let action = export_to_bgp_peers(fam, &mut w, krt_metric).unwrap_or(Action::Reject);
    w.into_result(action)
}

/// `calico_export_to_bgp_peers(internal_peer)`; `None` when it falls through (the caller's
/// final `reject;`).
///
/// The iBGP rejection of Felix's tunnel routes (`ifname ~ "*.cali"` …) and
/// `reject_local_routes()` (`ifname ~ "bpf*.cali"`) test the kernel interface of routes BIRD
/// learned from the kernel; our routes have no interface, so neither applies.
fn export_to_bgp_peers(fam: &FamilyPolicy, w: &mut Working<'_>, krt_metric: u32) -> Option<Action> {
    let net = w.route.prefix;
    if fam.disabled_pools.iter().any(|p| p.contains(&net)) {
        return Some(Action::Reject);
    }
    // apply_communities(): every matching rule adds its communities; no verdict.
    for (cidr, comms) in &fam.communities {
        if cidr.contains(&net) {
            for c in comms {
                w.add_community(*c);
            }
        }
    }
    // calico_aggr(): export our blocks, not the routes inside them, except elevated-priority
    // /32s (a live-migrated VM's address must win over the block elsewhere).
    for block in &fam.aggr_blocks {
        if net == *block {
            return Some(Action::Accept);
        }
        if block.contains(&net) {
            return Some(if krt_metric < fam.normal_route_priority {
                Action::Accept
            } else {
                Action::Reject
            });
        }
    }
    let accepted = fam.services.advertised.iter().any(|c| c.contains(&net))
        || fam
            .services
            .route_reflector_accepted
            .iter()
            .any(|c| c.contains(&net))
        || fam.enabled_pools.iter().any(|p| p.contains(&net));
    accepted.then_some(Action::Accept)
}

/// `filter calico_kernel_programming`, and BIRD's `krt_tunnel` for an accepted route.
pub(crate) fn kernel(inner: &Inner, route: &Route) -> (KernelVerdict, Option<&'static str>) {
    const REJECT: (KernelVerdict, Option<&str>) = (KernelVerdict::Reject, None);
    let Some(fam) = inner.family(&route.prefix) else {
        return REJECT;
    };
    let net = route.prefix;
    // Service CIDRs are advertised but never programmed.
    if fam
        .services
        .kernel_rejected
        .iter()
        .any(|c| c.contains(&net))
    {
        return REJECT;
    }
    let from_bgp = route.source.peer_type != PeerType::Local;
    // SetMetricForBGPRoutes: BGP routes get `2147483647 - bgp_local_pref` (BIRD attaches the
    // default LOCAL_PREF 100 to every received route); static/local routes keep no krt_metric,
    // which BIRD writes as no metric attribute at all.
    let metric = if from_bgp {
        priority_from_local_pref(route.local_pref())
    } else {
        0
    };
    let next_hop: Option<IpAddr> = route.next_hop.map(|nh| match nh {
        MpNextHop::Ipv4(a) => IpAddr::V4(a),
        MpNextHop::Ipv6 { global, .. } => IpAddr::V6(global),
    });
    // WireGuard: `bgp_next_hop = <peer>` is only defined for BGP routes.
    if from_bgp
        && let Some(nh) = next_hop
        && fam.wireguard_next_hops.contains(&nh)
    {
        return REJECT;
    }
    for (pool, stmt) in &fam.kernel_pools {
        if !pool.contains(&net) {
            continue;
        }
        return match stmt {
            KernelPool::Reject => REJECT,
            KernelPool::Accept { tunnel } => {
                let tunnel = match tunnel {
                    KernelTunnel::None => None,
                    KernelTunnel::Ipip => Some("tunl0"),
                    // `if (defined(bgp_next_hop)&&(bgp_next_hop ~ <subnet>)) then krt_tunnel="";
                    // else krt_tunnel="tunl0";`
                    KernelTunnel::IpipCrossSubnet { local_subnet } => {
                        match next_hop.filter(|_| from_bgp) {
                            Some(nh) if local_subnet.contains(&nh) => None,
                            _ => Some("tunl0"),
                        }
                    }
                };
                (KernelVerdict::Accept { metric }, tunnel)
            }
        };
    }
    (KernelVerdict::Accept { metric }, None)
}
