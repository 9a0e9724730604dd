//! The route manager's pure core: which routes this node must have, and the smallest set of
//! changes that takes the kernel's main table there.
//!
//! Ownership follows Felix (`felix/routetable/route_table.go`, `ownershippol/`): a route is ours
//! when it carries our route protocol (Felix's 80). We replace whatever sits at a destination we
//! need (including the CNI plugin's own `proto boot` route for a new pod, which Felix also takes
//! over), and we delete only routes of our own protocol that nothing asks for any more: routes
//! that other software put in the table are never removed (issue 4: "removes only its own stale
//! routes"). Replacing in place (RTM_NEWROUTE with NLM_F_REPLACE) never leaves a window without
//! a route, which is what lets the agent restart under running pods.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::LocalState;

/// The kernel's main routing table.
pub const MAIN_TABLE: u32 = 254;

/// What a kernel route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelRouteKind {
    Unicast,
    Blackhole,
    /// Anything else (unreachable, prohibit, local, ...): never one of ours.
    Other,
}

/// A route as the route manager sees it (the dataplane shell converts to and from netlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub dst: IpNet,
    pub kind: KernelRouteKind,
    pub table: u32,
    pub protocol: u8,
    /// `scope link` (a directly connected destination).
    pub link_scope: bool,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    /// Route priority; 0 when unset. Ours are 0 so they replace the CNI plugin's route.
    pub metric: u32,
}

/// Where traffic to a destination must go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// `<ip>/32 dev <interface> scope link`: a local workload.
    Workload { interface: String },
    /// `blackhole <block>`: an affine block, so that unallocated addresses of it are dropped
    /// here rather than bounced back towards the network (Calico's `blackhole <block> proto bird`).
    Blackhole,
    /// `<dst> via <gateway> [dev <interface>]`: a remote node's block (what BIRD installs for
    /// routes learned over BGP, and the BGP speaker will). Without an interface the kernel
    /// picks it from the gateway's connected route.
    Via {
        gateway: IpAddr,
        interface: Option<String>,
        /// Route priority (lower wins); 0 = none. Calico's BIRD writes BGP routes with
        /// `krt_metric = 2147483647 - LOCAL_PREF`, so a preferred route wins in the kernel too.
        metric: u32,
    },
}

/// The routes this node must have, by destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredRoutes {
    pub routes: BTreeMap<IpNet, Target>,
    /// Destinations claimed by more than one endpoint (the first key wins; reported, not routed twice).
    pub conflicts: Vec<(IpNet, String)>,
}

impl DesiredRoutes {
    /// Routes for every local endpoint address and every affine block.
    pub fn from_state(state: &LocalState) -> DesiredRoutes {
        let mut out = DesiredRoutes::default();
        for cidr in state.blocks.values() {
            out.routes.insert(cidr.trunc(), Target::Blackhole);
        }
        for ep in state.endpoints.values() {
            for net in &ep.networks {
                let dst = IpNet::from(net.addr());
                match out.routes.get(&dst) {
                    Some(Target::Workload { interface }) if interface != &ep.interface => {
                        out.conflicts.push((dst, ep.key.clone()));
                    }
                    _ => {
                        out.routes.insert(
                            dst,
                            Target::Workload {
                                interface: ep.interface.clone(),
                            },
                        );
                    }
                }
            }
        }
        out
    }

    /// Interfaces of local workloads.
    pub fn interfaces(&self) -> BTreeSet<&str> {
        self.routes
            .values()
            .filter_map(|t| match t {
                Target::Workload { interface } => Some(interface.as_str()),
                Target::Blackhole | Target::Via { .. } => None,
            })
            .collect()
    }
}

/// One change to the kernel table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    /// Add, or replace what is at the same destination and metric.
    Replace(KernelRoute),
    Delete(KernelRoute),
}

/// The changes for one sync, and what could not be done yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePlan {
    pub ops: Vec<RouteOp>,
    /// Workload routes whose interface does not exist (yet): retried later.
    pub waiting: Vec<(IpNet, String)>,
}

/// The route that implements `target` for `dst`, or `None` when its interface is missing.
pub fn wanted_route(
    dst: IpNet,
    target: &Target,
    links: &BTreeMap<String, u32>,
    protocol: u8,
) -> Option<KernelRoute> {
    let (kind, link_scope, oif, gateway) = match target {
        Target::Workload { interface } => (
            KernelRouteKind::Unicast,
            true,
            Some(*links.get(interface)?),
            None,
        ),
        Target::Blackhole => (KernelRouteKind::Blackhole, false, None, None),
        Target::Via {
            gateway, interface, ..
        } => {
            let oif = match interface {
                Some(name) => Some(*links.get(name)?),
                None => None,
            };
            (KernelRouteKind::Unicast, false, oif, Some(*gateway))
        }
    };
    let metric = match target {
        Target::Via { metric, .. } => *metric,
        _ => 0,
    };
    Some(KernelRoute {
        dst,
        kind,
        table: MAIN_TABLE,
        protocol,
        link_scope,
        oif,
        gateway,
        metric,
    })
}

/// Whether `have` already does what `want` asks (fields the kernel fills in are ignored).
fn satisfies(have: &KernelRoute, want: &KernelRoute) -> bool {
    have.dst == want.dst
        && have.kind == want.kind
        && have.table == want.table
        && have.protocol == want.protocol
        // A `via` route without a named interface gets the kernel's choice of one.
        && (have.oif == want.oif || (want.oif.is_none() && want.gateway.is_some()))
        && have.gateway == want.gateway
        && have.metric == want.metric
        && (want.kind != KernelRouteKind::Unicast || have.link_scope == want.link_scope)
}

/// The changes that take `actual` (the main table's routes, both families) to `desired`.
///
/// Deletions come first so that a destination moving between our routes never sees two.
pub fn plan(
    desired: &DesiredRoutes,
    links: &BTreeMap<String, u32>,
    actual: &[KernelRoute],
    protocol: u8,
) -> RoutePlan {
    let mut by_dst: BTreeMap<IpNet, Vec<&KernelRoute>> = BTreeMap::new();
    for r in actual.iter().filter(|r| r.table == MAIN_TABLE) {
        by_dst.entry(r.dst).or_default().push(r);
    }
    let mut deletes = Vec::new();
    let mut replaces = Vec::new();
    let mut waiting = Vec::new();
    for (dst, target) in &desired.routes {
        let existing = by_dst.get(dst).map(Vec::as_slice).unwrap_or_default();
        let Some(want) = wanted_route(*dst, target, links, protocol) else {
            match target {
                Target::Workload { interface }
                | Target::Via {
                    interface: Some(interface),
                    ..
                } => waiting.push((*dst, interface.clone())),
                Target::Blackhole
                | Target::Via {
                    interface: None, ..
                } => {}
            }
            // Our old route to a vanished interface went with the interface; any other of
            // ours at this destination is stale.
            deletes.extend(
                existing
                    .iter()
                    .filter(|r| r.protocol == protocol)
                    .map(|r| RouteOp::Delete((*r).clone())),
            );
            continue;
        };
        if !existing.iter().any(|r| satisfies(r, &want)) {
            replaces.push(RouteOp::Replace(want.clone()));
        }
        // Our own routes at this destination under another metric would shadow or duplicate it.
        deletes.extend(
            existing
                .iter()
                .filter(|r| r.protocol == protocol && r.metric != want.metric)
                .map(|r| RouteOp::Delete((*r).clone())),
        );
    }
    for (dst, routes) in &by_dst {
        if desired.routes.contains_key(dst) {
            continue;
        }
        deletes.extend(
            routes
                .iter()
                .filter(|r| r.protocol == protocol && r.kind != KernelRouteKind::Other)
                .map(|r| RouteOp::Delete((*r).clone())),
        );
    }
    deletes.extend(replaces);
    RoutePlan {
        ops: deletes,
        waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LocalEndpoint;

    const P: u8 = 80;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn state(eps: &[(&str, &str, &[&str])], blocks: &[&str]) -> LocalState {
        let mut s = LocalState::default();
        for (key, iface, nets) in eps {
            s.endpoints.insert(
                key.to_string(),
                LocalEndpoint {
                    key: key.to_string(),
                    interface: iface.to_string(),
                    networks: nets.iter().map(|n| net(n)).collect(),
                    mac: None,
                },
            );
        }
        for b in blocks {
            s.blocks.insert(format!("k/{b}"), net(b));
        }
        s
    }

    fn links(l: &[(&str, u32)]) -> BTreeMap<String, u32> {
        l.iter().map(|(n, i)| (n.to_string(), *i)).collect()
    }

    fn wl(dst: &str, oif: u32, proto: u8) -> KernelRoute {
        KernelRoute {
            dst: net(dst),
            kind: KernelRouteKind::Unicast,
            table: MAIN_TABLE,
            protocol: proto,
            link_scope: true,
            oif: Some(oif),
            gateway: None,
            metric: 0,
        }
    }

    fn bh(dst: &str, proto: u8) -> KernelRoute {
        KernelRoute {
            dst: net(dst),
            kind: KernelRouteKind::Blackhole,
            table: MAIN_TABLE,
            protocol: proto,
            link_scope: false,
            oif: None,
            gateway: None,
            metric: 0,
        }
    }

    #[test]
    fn fresh_node_gets_workload_and_blackhole_routes() {
        let d = DesiredRoutes::from_state(&state(
            &[("a", "cali1", &["10.0.0.1/32"])],
            &["10.0.0.0/26"],
        ));
        let p = plan(&d, &links(&[("cali1", 7)]), &[], P);
        assert_eq!(
            p.ops,
            vec![
                RouteOp::Replace(bh("10.0.0.0/26", P)),
                RouteOp::Replace(wl("10.0.0.1/32", 7, P))
            ]
        );
        assert!(p.waiting.is_empty());
    }

    #[test]
    fn in_sync_table_needs_nothing() {
        let d = DesiredRoutes::from_state(&state(
            &[("a", "cali1", &["10.0.0.1/32"])],
            &["10.0.0.0/26"],
        ));
        let actual = [
            bh("10.0.0.0/26", P),
            wl("10.0.0.1/32", 7, P),
            wl("192.168.1.0/24", 2, 2),
        ];
        assert_eq!(
            plan(&d, &links(&[("cali1", 7)]), &actual, P),
            RoutePlan::default()
        );
    }

    #[test]
    fn cni_route_is_taken_over_not_deleted_first() {
        let d = DesiredRoutes::from_state(&state(&[("a", "cali1", &["10.0.0.1/32"])], &[]));
        let p = plan(&d, &links(&[("cali1", 7)]), &[wl("10.0.0.1/32", 7, 3)], P);
        assert_eq!(p.ops, vec![RouteOp::Replace(wl("10.0.0.1/32", 7, P))]);
    }

    #[test]
    fn stale_routes_of_ours_go_foreign_ones_stay() {
        let d = DesiredRoutes::default();
        let foreign = wl("10.0.0.9/32", 9, 3);
        let actual = [
            bh("10.0.0.0/26", P),
            wl("10.0.0.1/32", 7, P),
            foreign,
            bh("10.9.0.0/26", 12),
        ];
        let p = plan(&d, &links(&[]), &actual, P);
        assert_eq!(
            p.ops,
            vec![
                RouteOp::Delete(bh("10.0.0.0/26", P)),
                RouteOp::Delete(wl("10.0.0.1/32", 7, P))
            ]
        );
    }

    #[test]
    fn missing_interface_waits() {
        let d = DesiredRoutes::from_state(&state(&[("a", "cali1", &["10.0.0.1/32"])], &[]));
        let p = plan(&d, &links(&[]), &[], P);
        assert!(p.ops.is_empty());
        assert_eq!(p.waiting, vec![(net("10.0.0.1/32"), "cali1".to_string())]);
    }

    #[test]
    fn moved_workload_and_wrong_kind_are_replaced() {
        let d = DesiredRoutes::from_state(&state(
            &[("a", "cali2", &["10.0.0.1/32"])],
            &["10.0.0.0/26"],
        ));
        let mut not_blackhole = wl("10.0.0.0/26", 3, P);
        not_blackhole.link_scope = false;
        let actual = [wl("10.0.0.1/32", 7, P), not_blackhole];
        let p = plan(&d, &links(&[("cali1", 7), ("cali2", 8)]), &actual, P);
        assert_eq!(
            p.ops,
            vec![
                RouteOp::Replace(bh("10.0.0.0/26", P)),
                RouteOp::Replace(wl("10.0.0.1/32", 8, P))
            ]
        );
    }

    #[test]
    fn our_duplicate_under_another_metric_is_removed() {
        let d = DesiredRoutes::from_state(&state(&[("a", "cali1", &["10.0.0.1/32"])], &[]));
        let mut dup = wl("10.0.0.1/32", 7, P);
        dup.metric = 1024;
        let p = plan(
            &d,
            &links(&[("cali1", 7)]),
            &[wl("10.0.0.1/32", 7, P), dup.clone()],
            P,
        );
        assert_eq!(p.ops, vec![RouteOp::Delete(dup)]);
    }

    #[test]
    fn conflicting_endpoints_are_reported() {
        let d = DesiredRoutes::from_state(&state(
            &[
                ("a", "cali1", &["10.0.0.1/32"]),
                ("b", "cali2", &["10.0.0.1/32", "fd00::5/128"]),
            ],
            &[],
        ));
        assert_eq!(d.conflicts, vec![(net("10.0.0.1/32"), "b".to_string())]);
        assert_eq!(
            d.routes.get(&net("10.0.0.1/32")),
            Some(&Target::Workload {
                interface: "cali1".into()
            })
        );
        assert!(d.routes.contains_key(&net("fd00::5/128")));
        assert_eq!(
            d.interfaces().into_iter().collect::<Vec<_>>(),
            vec!["cali1", "cali2"]
        );
    }

    #[test]
    fn via_routes_are_programmed_and_kept() {
        let gw: IpAddr = "10.200.0.2".parse().unwrap();
        let mut d = DesiredRoutes::default();
        d.routes.insert(
            net("10.70.1.0/26"),
            Target::Via {
                gateway: gw,
                interface: None,
                metric: 0,
            },
        );
        let p = plan(&d, &links(&[]), &[], 12);
        let RouteOp::Replace(want) = &p.ops[0] else {
            panic!("{p:?}")
        };
        assert_eq!(
            (want.gateway, want.oif, want.link_scope),
            (Some(gw), None, false)
        );
        // The kernel fills in the interface it resolved; that still satisfies the route.
        let mut have = want.clone();
        have.oif = Some(3);
        assert!(plan(&d, &links(&[]), &[have.clone()], 12).ops.is_empty());
        // A different gateway is replaced; with a named but missing interface it waits.
        have.gateway = Some("10.200.0.3".parse().unwrap());
        assert_eq!(plan(&d, &links(&[]), &[have], 12).ops.len(), 1);
        d.routes.insert(
            net("10.70.1.0/26"),
            Target::Via {
                gateway: gw,
                interface: Some("eth9".into()),
                metric: 0,
            },
        );
        assert_eq!(
            plan(&d, &links(&[]), &[], 12).waiting,
            vec![(net("10.70.1.0/26"), "eth9".to_string())]
        );
    }

    #[test]
    fn other_tables_are_ignored() {
        let mut r = wl("10.0.0.1/32", 7, P);
        r.table = 100;
        assert!(
            plan(&DesiredRoutes::default(), &links(&[]), &[r], P)
                .ops
                .is_empty()
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn apply(actual: &mut Vec<KernelRoute>, ops: &[RouteOp]) {
            for op in ops {
                match op {
                    RouteOp::Delete(r) => actual.retain(|a| a != r),
                    RouteOp::Replace(r) => {
                        actual.retain(|a| {
                            !(a.dst == r.dst && a.table == r.table && a.metric == r.metric)
                        });
                        actual.push(r.clone());
                    }
                }
            }
        }

        proptest! {
            /// Applying a plan converges in one step, keeps every foreign route, and a second
            /// plan is empty.
            #[test]
            fn plan_converges(
                eps in proptest::collection::vec((0u8..6, 0u8..4), 0..8),
                blocks in proptest::collection::vec(0u8..4, 0..4),
                existing in proptest::collection::vec((0u8..8, 0u8..4, prop::bool::ANY, 0u8..3), 0..12),
            ) {
                let mut s = LocalState::default();
                for (i, (ip, iface)) in eps.iter().enumerate() {
                    s.endpoints.insert(format!("ep{i}"), LocalEndpoint {
                        key: format!("ep{i}"),
                        interface: format!("cali{iface}"),
                        networks: vec![net(&format!("10.0.0.{ip}/32"))],
                        mac: None,
                    });
                }
                for b in &blocks {
                    s.blocks.insert(format!("b{b}"), net(&format!("10.1.{b}.0/26")));
                }
                let links = links(&[("cali0", 10), ("cali1", 11), ("cali2", 12)]);
                let mut actual: Vec<KernelRoute> = existing.iter().map(|(ip, oif, ours, metric)| {
                    let mut r = if ip % 2 == 0 { wl(&format!("10.0.0.{ip}/32"), 10 + *oif as u32, 3) } else { bh(&format!("10.1.{}.0/26", ip % 4), 3) };
                    if *ours { r.protocol = P; }
                    r.metric = *metric as u32 * 100;
                    r
                }).collect();
                actual.dedup_by(|a, b| a.dst == b.dst && a.metric == b.metric);
                let foreign: Vec<KernelRoute> = actual.iter().filter(|r| r.protocol != P).cloned().collect();
                let d = DesiredRoutes::from_state(&s);
                let p = plan(&d, &links, &actual, P);
                apply(&mut actual, &p.ops);
                let again = plan(&d, &links, &actual, P);
                prop_assert!(again.ops.is_empty(), "second plan not empty: {:?}", again.ops);
                for f in foreign {
                    // A foreign route survives unless one of ours replaced it at its destination.
                    prop_assert!(actual.contains(&f) || d.routes.contains_key(&f.dst) && f.metric == 0);
                }
                for r in actual.iter().filter(|r| r.protocol == P) {
                    prop_assert!(d.routes.contains_key(&r.dst));
                }
            }
        }
    }
}
