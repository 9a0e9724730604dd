//! [`RouteDataplane`] on the real kernel, through `calico-netlink`, inside the namespace the
//! agent was given (the netlink socket is bound to it when opened; sysctls are written from a
//! thread switched into it).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use calico_netlink::{NetNs, Route, RouteChange, RouteFilter, RouteKind, RouteScope, RouteSocket};

use crate::dataplane::{DataplaneError, RouteDataplane};
use crate::routes::{KernelRoute, KernelRouteKind, RouteOp};

/// The kernel of one network namespace.
pub struct NetlinkDataplane {
    ns: NetNs,
    socket: RouteSocket,
}

fn err(e: calico_netlink::NetlinkError) -> DataplaneError {
    DataplaneError(e.to_string())
}

impl NetlinkDataplane {
    /// Opens the namespace at `netns` (the agent's own when `None`).
    pub fn open(netns: Option<&Path>) -> Result<NetlinkDataplane, DataplaneError> {
        let ns = match netns {
            Some(p) => NetNs::open(p).map_err(err)?,
            None => NetNs::current().map_err(err)?,
        };
        let socket = RouteSocket::open_in(&ns).map_err(err)?;
        Ok(NetlinkDataplane { ns, socket })
    }
}

/// The kernel's metric for an IPv6 route added without one.
const IPV6_DEFAULT_METRIC: u32 = 1024;

/// Converts a dumped route, undoing the kernel's IPv6 normalisation: IPv6 routes come back with
/// scope universe whatever was asked and with metric 1024 when none was given, so without this
/// every sync would see our own IPv6 routes as different and rewrite them.
fn to_kernel(r: &Route) -> KernelRoute {
    let v6 = matches!(r.dst, ipnet::IpNet::V6(_));
    let link_scope = if v6 {
        r.kind == RouteKind::Unicast && r.oif.is_some() && r.gateway.is_none()
    } else {
        r.scope == RouteScope::Link
    };
    let metric = match r.metric {
        Some(IPV6_DEFAULT_METRIC) if v6 => 0,
        m => m.unwrap_or(0),
    };
    KernelRoute {
        dst: r.dst,
        kind: match r.kind {
            RouteKind::Unicast => KernelRouteKind::Unicast,
            RouteKind::Blackhole => KernelRouteKind::Blackhole,
            _ => KernelRouteKind::Other,
        },
        table: r.table,
        protocol: r.protocol,
        link_scope,
        // The kernel reports IPv6 blackholes as `dev lo`; a blackhole has no interface.
        oif: if r.kind == RouteKind::Blackhole {
            None
        } else {
            r.oif
        },
        gateway: r.gateway,
        metric,
    }
}

fn to_netlink(r: &KernelRoute) -> Result<Route, DataplaneError> {
    let kind = match r.kind {
        KernelRouteKind::Unicast => RouteKind::Unicast,
        KernelRouteKind::Blackhole => RouteKind::Blackhole,
        KernelRouteKind::Other => {
            return Err(DataplaneError(format!(
                "refusing to program route {} of an unknown type",
                r.dst
            )));
        }
    };
    Ok(Route {
        dst: r.dst,
        kind,
        table: r.table,
        protocol: r.protocol,
        scope: if r.link_scope {
            RouteScope::Link
        } else {
            RouteScope::Universe
        },
        oif: r.oif,
        gateway: r.gateway,
        metric: (r.metric != 0).then_some(r.metric),
        onlink: false,
    })
}

impl RouteDataplane for NetlinkDataplane {
    fn links(&mut self) -> Result<BTreeMap<String, u32>, DataplaneError> {
        Ok(self
            .socket
            .links()
            .map_err(err)?
            .into_iter()
            .map(|l| (l.name, l.index))
            .collect())
    }

    fn routes(&mut self) -> Result<Vec<KernelRoute>, DataplaneError> {
        Ok(self
            .socket
            .routes(&RouteFilter::main_table())
            .map_err(err)?
            .iter()
            .map(to_kernel)
            .collect())
    }

    fn routes_of_protocol(&mut self, protocol: u8) -> Result<Vec<KernelRoute>, DataplaneError> {
        let filter = RouteFilter {
            protocol: Some(protocol),
            ..RouteFilter::main_table()
        };
        Ok(self
            .socket
            .routes(&filter)
            .map_err(err)?
            .iter()
            .map(to_kernel)
            .collect())
    }

    fn replace_route(&mut self, route: &KernelRoute) -> Result<(), DataplaneError> {
        self.socket.replace_route(&to_netlink(route)?).map_err(err)
    }

    fn delete_route(&mut self, route: &KernelRoute) -> Result<bool, DataplaneError> {
        self.socket.delete_route(&to_netlink(route)?).map_err(err)
    }

    fn apply_routes(&mut self, ops: &[RouteOp]) -> Vec<Result<bool, DataplaneError>> {
        // Converted a window at a time, so a large batch never exists twice in memory.
        ops.chunks(256)
            .flat_map(|chunk| self.apply_chunk(chunk))
            .collect()
    }

    fn configure_interface(
        &mut self,
        interface: &str,
        ipv4: bool,
        ipv6: bool,
    ) -> Result<(), DataplaneError> {
        self.ns
            .run(|| calico_netlink::workload::configure_host_side(interface, ipv4, ipv6))
            .map_err(err)?
            .map_err(err)
    }

    fn enable_forwarding(&mut self, ipv4: bool, ipv6: bool) -> Result<(), DataplaneError> {
        self.ns
            .run(|| -> Result<(), calico_netlink::NetlinkError> {
                if ipv4 {
                    calico_netlink::sysctl::write("net/ipv4/ip_forward", "1")?;
                }
                if ipv6 {
                    calico_netlink::sysctl::write("net/ipv6/conf/all/forwarding", "1")?;
                }
                Ok(())
            })
            .map_err(err)?
            .map_err(err)
    }

    fn set_neighbour(
        &mut self,
        index: u32,
        ip: IpAddr,
        mac: [u8; 6],
    ) -> Result<(), DataplaneError> {
        self.socket.set_neighbour(index, ip, mac).map_err(err)
    }
}

impl NetlinkDataplane {
    fn apply_chunk(&mut self, ops: &[RouteOp]) -> Vec<Result<bool, DataplaneError>> {
        let mut out: Vec<Option<Result<bool, DataplaneError>>> = Vec::with_capacity(ops.len());
        let mut changes = Vec::with_capacity(ops.len());
        let mut index = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let converted = match op {
                RouteOp::Replace(r) => to_netlink(r).map(RouteChange::Replace),
                RouteOp::Delete(r) => to_netlink(r).map(RouteChange::Delete),
            };
            match converted {
                Ok(c) => {
                    out.push(None);
                    changes.push(c);
                    index.push(i);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        for (r, i) in self.socket.apply_routes(&changes).into_iter().zip(index) {
            out[i] = Some(r.map_err(err));
        }
        out.into_iter().map(|r| r.unwrap_or(Ok(false))).collect()
    }
}
