//! BGP convergence as the kernel shows it: a node's own blocks are its `blackhole <block>`
//! routes (what calico-node originates), and the cluster has converged when every node holds a
//! `proto bgp` route `<block> via <owner's address>` for every block of every other node.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use calico_netlink::{NetNs, RouteFilter, RouteKind, RouteSocket};

use crate::error::LabError;
use crate::lab::progress;
use crate::state::LabRecord;
use crate::sys;

/// `rtm_protocol` of the routes the BGP speaker installs (iproute2's `bgp`).
pub const PROTO_BGP: u8 = 186;

/// A route socket per node, opened once: polling through netlink dumps instead of an `ip`
/// process per node and poll keeps the wait itself from loading a 2-core machine.
pub struct RouteView {
    sockets: Vec<RouteSocket>,
}

/// What one node's main table says: its blackholed blocks and its BGP routes.
#[derive(Debug, Default)]
pub struct NodeRoutes {
    pub own_blocks: BTreeSet<ipnet::IpNet>,
    pub bgp: BTreeSet<(ipnet::IpNet, IpAddr)>,
}

impl RouteView {
    pub fn open(lab: &LabRecord) -> Result<RouteView, LabError> {
        let sockets = lab
            .nodes
            .iter()
            .map(|n| {
                let ns = NetNs::open(sys::netns_path(&n.netns))
                    .map_err(|e| LabError::Failed(format!("opening namespace {}: {e}", n.netns)))?;
                RouteSocket::open_in(&ns).map_err(|e| {
                    LabError::Failed(format!("opening a route socket in {}: {e}", n.netns))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteView { sockets })
    }

    fn node_routes(&self, i: usize) -> Result<NodeRoutes, LabError> {
        let filter = RouteFilter {
            v4: true,
            v6: false,
            table: Some(254),
            protocol: None,
            oif: None,
        };
        let routes = self.sockets[i]
            .routes(&filter)
            .map_err(|e| LabError::Failed(format!("listing routes: {e}")))?;
        let mut out = NodeRoutes::default();
        for r in routes {
            match (r.kind, r.protocol, r.gateway) {
                (RouteKind::Blackhole, _, _) => {
                    out.own_blocks.insert(r.dst);
                }
                (RouteKind::Unicast, PROTO_BGP, Some(gw)) => {
                    out.bgp.insert((r.dst, gw));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// How many (node, remote block) routes are still missing.
    pub fn missing_routes(&self, lab: &LabRecord) -> Result<usize, LabError> {
        let tables = (0..lab.nodes.len())
            .map(|i| self.node_routes(i))
            .collect::<Result<Vec<_>, _>>()?;
        let ips = lab
            .nodes
            .iter()
            .map(|n| {
                n.ip.parse::<IpAddr>()
                    .map_err(|_| LabError::invalid("node address", n.ip.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(missing(&tables, &ips))
    }
}

/// Routes node i lacks for node j's blocks (via j's address), summed over all i != j.
fn missing(tables: &[NodeRoutes], ips: &[IpAddr]) -> usize {
    let mut n = 0;
    for (i, have) in tables.iter().enumerate() {
        for (j, theirs) in tables.iter().enumerate() {
            if i != j {
                n += theirs
                    .own_blocks
                    .iter()
                    .filter(|b| !have.bgp.contains(&(**b, ips[j])))
                    .count();
            }
        }
    }
    n
}

/// Waits until nothing is missing; returns how long it took.
pub fn wait_converged(
    lab: &LabRecord,
    timeout: Duration,
    start: Instant,
) -> Result<Duration, LabError> {
    let view = RouteView::open(lab)?;
    let began = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let missing = view.missing_routes(lab)?;
        if missing == 0 {
            return Ok(began.elapsed());
        }
        if began.elapsed() > timeout {
            return Err(LabError::Failed(format!(
                "BGP did not converge in {timeout:?}: {missing} routes to remote blocks still missing \
                 (`calico-lab status` shows the sessions)"
            )));
        }
        if last_report.elapsed() > Duration::from_secs(3) {
            progress(
                start,
                &format!("waiting for BGP: {missing} routes to remote blocks missing"),
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> ipnet::IpNet {
        s.parse().unwrap_or_else(|_| unreachable!())
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn a_route_counts_only_with_the_owners_next_hop() {
        let ips = [ip("192.168.20.11"), ip("192.168.20.12")];
        let mut a = NodeRoutes::default();
        a.own_blocks.insert(net("10.244.1.0/26"));
        let mut b = NodeRoutes::default();
        b.own_blocks.insert(net("10.244.2.0/26"));
        b.own_blocks.insert(net("10.244.3.0/26"));
        // a has one of b's blocks, via the wrong node for the other; b has nothing.
        a.bgp.insert((net("10.244.2.0/26"), ips[1]));
        a.bgp.insert((net("10.244.3.0/26"), ips[0]));
        assert_eq!(missing(&[a, b], &ips), 2);
    }

    #[test]
    fn nothing_missing_when_everyone_has_everything() {
        let ips = [ip("192.168.20.11"), ip("192.168.20.12")];
        let mut a = NodeRoutes::default();
        a.own_blocks.insert(net("10.244.1.0/26"));
        a.bgp.insert((net("10.244.2.0/26"), ips[1]));
        let mut b = NodeRoutes::default();
        b.own_blocks.insert(net("10.244.2.0/26"));
        b.bgp.insert((net("10.244.1.0/26"), ips[0]));
        assert_eq!(missing(&[a, b], &ips), 0);
    }
}
