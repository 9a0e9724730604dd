//! calico-netlink: the synchronous kernel-networking shell shared by Calico's CNI plugin (a short-lived
//! binary with no async runtime) and the calico-node agent.
//!
//! It owns: network-namespace handles ([`NetNs`]), a blocking `NETLINK_ROUTE` socket ([`RouteSocket`]) for
//! links, veth pairs, addresses, routes and neighbours, `/proc/sys` access ([`sysctl`]), Calico's workload
//! plumbing ([`workload`]: what `cni-plugin/pkg/dataplane/linux/dataplane_linux.go` does for a pod), and,
//! behind the `testing` feature, a netns fixture for privileged tests ([`testing`]).
//!
//! It must not depend on tokio or on any other calico-* crate (datastore, API types): it is the bottom layer,
//! and the CNI binary links it without a runtime. Requests are built with `netlink-packet-route` and sent on
//! `netlink-sys` sockets directly (netavark's approach), with every request acknowledged and checked.
//! `unsafe` is forbidden: namespace switches use nix's safe `setns` on a scoped helper thread.
//!
//! ```no_run
//! use calico_netlink::workload::{WorkloadSpec, setup_workload, teardown_workload};
//! use calico_netlink::{NetNs, RTPROT_BOOT};
//!
//! # fn main() -> Result<(), calico_netlink::NetlinkError> {
//! let host = NetNs::current()?;
//! let pod = NetNs::open("/var/run/netns/cni-1234")?;
//! let addresses = ["10.244.220.81/26".parse().expect("literal")];
//! let spec = WorkloadSpec {
//!     host_ns: &host,
//!     container_ns: &pod,
//!     host_if: "cali7fcc33642a0",
//!     container_if: "eth0",
//!     addresses: &addresses,
//!     mtu: 1450,
//!     container_mac: None,
//!     host_route_protocol: RTPROT_BOOT,
//! };
//! let ifaces = setup_workload(&spec)?;
//! println!("pod MAC {}", calico_netlink::format_mac(&ifaces.container_mac));
//! teardown_workload(&host, Some(&pod), "cali7fcc33642a0", "eth0")?;
//! # Ok(())
//! # }
//! ```

mod error;
mod netns;
mod socket;
mod types;

mod addr;
mod link;
mod neigh;
mod route;

pub mod sysctl;
#[cfg(feature = "testing")]
pub mod testing;
pub mod workload;

pub use error::{ErrorKind, NetlinkError};
pub use ipnet::IpNet;
pub use netns::NetNs;
pub use route::RouteChange;
pub use socket::RouteSocket;
pub use types::{
    Address, Link, MacAddr, Neighbour, Route, RouteFilter, RouteKind, RouteScope, VethSpec,
    format_mac, parse_mac,
};

/// Calico's host-side veth MAC, `ee:ee:ee:ee:ee:ee` (dataplane_linux.go `hostSideMAC`): every workload sees
/// the same gateway MAC, and the host answers ARP for 169.254.1.1 by proxy ARP.
pub const HOST_SIDE_MAC: MacAddr = [0xee; 6];

/// Route protocol `boot` (3): what Calico's CNI plugin tags its host route with (netlink's default when the
/// route is added without a protocol).
pub const RTPROT_BOOT: u8 = 3;

/// Felix's own route protocol (0x50 = 80): routes the agent programs.
pub const RTPROT_CALICO: u8 = 80;

/// The main routing table.
pub const RT_TABLE_MAIN: u32 = 254;

/// Both handle types cross threads (the agent shares them between tasks).
#[allow(dead_code)]
fn assert_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<NetNs>();
    check::<RouteSocket>();
    check::<NetlinkError>();
}
