//! [`RouteDataplane`] on the real kernel, through `calico-netlink`, inside the namespace the
//! agent was given (the netlink socket is bound to it when opened; sysctls are written from a
//! thread switched into it).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use calico_netlink::{NetNs, Route, RouteFilter, RouteKind, RouteScope, RouteSocket};

use crate::dataplane::{DataplaneError, RouteDataplane};
use crate::routes::{KernelRoute, KernelRouteKind};

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

fn to_kernel(r: &Route) -> KernelRoute {
    KernelRoute {
        dst: r.dst,
        kind: match r.kind {
            RouteKind::Unicast => KernelRouteKind::Unicast,
            RouteKind::Blackhole => KernelRouteKind::Blackhole,
            _ => KernelRouteKind::Other,
        },
        table: r.table,
        protocol: r.protocol,
        link_scope: r.scope == RouteScope::Link,
        oif: r.oif,
        gateway: r.gateway,
        metric: r.metric.unwrap_or(0),
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

    fn replace_route(&mut self, route: &KernelRoute) -> Result<(), DataplaneError> {
        self.socket.replace_route(&to_netlink(route)?).map_err(err)
    }

    fn delete_route(&mut self, route: &KernelRoute) -> Result<bool, DataplaneError> {
        self.socket.delete_route(&to_netlink(route)?).map_err(err)
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

    fn set_neighbour(
        &mut self,
        index: u32,
        ip: IpAddr,
        mac: [u8; 6],
    ) -> Result<(), DataplaneError> {
        self.socket.set_neighbour(index, ip, mac).map_err(err)
    }
}
