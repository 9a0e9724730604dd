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
