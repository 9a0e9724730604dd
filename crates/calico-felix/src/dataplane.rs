//! The kernel side of the route manager, behind a trait so the sync logic is tested without root.
//! The real implementation ([`crate::netlink::NetlinkDataplane`]) talks netlink inside the
//! agent's network namespace.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::routes::KernelRoute;

/// A failed kernel operation, described for logs and health detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DataplaneError(pub String);

/// What the route manager needs from the kernel. Calls are synchronous (netlink round trips of
/// microseconds); the agent runs them on a blocking thread.
pub trait RouteDataplane: Send + 'static {
    /// Interface name → index, for every link of the namespace.
    fn links(&mut self) -> Result<BTreeMap<String, u32>, DataplaneError>;
    /// The main table's routes, IPv4 and IPv6.
    fn routes(&mut self) -> Result<Vec<KernelRoute>, DataplaneError>;
    /// The main table's routes of one protocol (a kernel driver asks the kernel to filter).
    fn routes_of_protocol(&mut self, protocol: u8) -> Result<Vec<KernelRoute>, DataplaneError> {
        Ok(self
            .routes()?
            .into_iter()
            .filter(|r| r.protocol == protocol)
            .collect())
    }
    fn replace_route(&mut self, route: &KernelRoute) -> Result<(), DataplaneError>;
    /// `Ok(false)` when the route was already gone.
    fn delete_route(&mut self, route: &KernelRoute) -> Result<bool, DataplaneError>;
    /// Applies many changes; one result per change, in order (`Ok(false)`: a delete found
    /// nothing). A kernel driver sends them with many requests in flight.
    fn apply_routes(
        &mut self,
        ops: &[crate::routes::RouteOp],
    ) -> Vec<Result<bool, DataplaneError>> {
        ops.iter()
            .map(|op| match op {
                crate::routes::RouteOp::Replace(r) => self.replace_route(r).map(|()| true),
                crate::routes::RouteOp::Delete(r) => self.delete_route(r),
            })
            .collect()
    }
    /// Felix's host-side settings of a workload interface (`proxy_arp`, `forwarding`, ...).
    fn configure_interface(
        &mut self,
        interface: &str,
        ipv4: bool,
        ipv6: bool,
    ) -> Result<(), DataplaneError>;
    /// Host-wide forwarding (`net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding`), as Felix's
    /// `configureKernel` does when `IPForwarding` is `Enabled`.
    fn enable_forwarding(&mut self, ipv4: bool, ipv6: bool) -> Result<(), DataplaneError>;
    /// A permanent neighbour entry workload address → container MAC on the host side.
    fn set_neighbour(&mut self, index: u32, ip: IpAddr, mac: [u8; 6])
    -> Result<(), DataplaneError>;
}
