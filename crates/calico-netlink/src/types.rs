//! Plain data types exchanged with callers. They do not expose netlink-packet-route's types, so the
//! rust-netlink family (which ships breaking minors often) can be upgraded without touching callers.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::NetNs;

/// An Ethernet MAC address.
pub type MacAddr = [u8; 6];

/// Formats a MAC the way `ip link` and Calico do: lowercase, colon separated (`ee:ee:ee:ee:ee:ee`).
pub fn format_mac(mac: &MacAddr) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-` separators, any case), as Go's `net.ParseMAC` accepts for
/// 48-bit addresses (Calico's `cni.projectcalico.org/hwAddr` annotation goes through it).
pub fn parse_mac(text: &str) -> Option<MacAddr> {
    let sep = if text.contains('-') { '-' } else { ':' };
    let mut mac = [0u8; 6];
    let mut parts = text.split(sep);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(mac)
}

/// A network interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `None` for links without a 6-byte hardware address (loopback has all zeros, tunnels have none).
    pub mac: Option<MacAddr>,
    pub mtu: u32,
    /// `IFF_UP`: administratively up.
    pub admin_up: bool,
    /// `IFLA_INFO_KIND` ("veth", "bridge", ...); `None` for physical and loopback devices.
    pub kind: Option<String>,
    /// `IFF_LOWER_UP`: the carrier is up (for a veth: both ends are admin up).
    pub lower_up: bool,
    /// `IFLA_LINK`: for a veth, the peer's ifindex (in the peer's namespace, see `link_netnsid`).
    pub peer_index: Option<u32>,
    /// `IFLA_LINK_NETNSID`: set when the peer lives in another namespace.
    pub link_netnsid: Option<i32>,
}

/// A veth pair to create with ONE `RTM_NEWLINK`: `name` is born in the socket's namespace, `peer_name` in
/// `peer_netns` (or the socket's namespace when `None`). Neither end is ever moved afterwards.
/// `mtu` applies to both ends (as Calico's vishvananda/netlink call does).
#[derive(Debug, Clone, Copy)]
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub mac: Option<MacAddr>,
    pub mtu: Option<u32>,
    pub peer_name: &'a str,
    pub peer_mac: Option<MacAddr>,
    pub peer_netns: Option<&'a NetNs>,
}

/// An interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    pub index: u32,
    pub addr: IpNet,
}

/// `rtm_type` of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
    Local,
    Other(u8),
}

/// `rtm_scope` of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteScope {
    /// RT_SCOPE_UNIVERSE (0): gatewayed and blackhole routes.
    Universe,
    /// RT_SCOPE_SITE (200).
    Site,
    /// RT_SCOPE_LINK (253): directly attached, e.g. Calico's `<pod ip>/32 dev caliX scope link`.
    Link,
    /// RT_SCOPE_HOST (254): local addresses.
    Host,
    /// RT_SCOPE_NOWHERE (255).
    Nowhere,
    Other(u8),
}

impl RouteScope {
    pub fn to_u8(self) -> u8 {
        match self {
            RouteScope::Universe => 0,
            RouteScope::Site => 200,
            RouteScope::Link => 253,
            RouteScope::Host => 254,
            RouteScope::Nowhere => 255,
            RouteScope::Other(v) => v,
        }
    }

    pub fn from_u8(v: u8) -> RouteScope {
        match v {
            0 => RouteScope::Universe,
            200 => RouteScope::Site,
            253 => RouteScope::Link,
            254 => RouteScope::Host,
            255 => RouteScope::Nowhere,
            v => RouteScope::Other(v),
        }
    }
}

impl RouteKind {
    pub fn to_u8(self) -> u8 {
        match self {
            RouteKind::Unicast => 1,
            RouteKind::Local => 2,
            RouteKind::Blackhole => 6,
            RouteKind::Unreachable => 7,
            RouteKind::Prohibit => 8,
            RouteKind::Other(v) => v,
        }
    }

    pub fn from_u8(v: u8) -> RouteKind {
        match v {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            6 => RouteKind::Blackhole,
            7 => RouteKind::Unreachable,
            8 => RouteKind::Prohibit,
            v => RouteKind::Other(v),
        }
    }
}

/// A route. `dst` must be a network address (no host bits: `10.0.0.0/24`, not `10.0.0.1/24`).
///
/// Dumps report what the kernel stores, which differs from what was added in two IPv6 cases: IPv6 routes
/// always come back with scope `Universe` (the IPv6 FIB has no scopes), and an IPv6 route added without a
/// metric comes back with `metric: Some(1024)` (IP6_RT_PRIO_USER). Compare those fields per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub dst: IpNet,
    pub kind: RouteKind,
    /// 254 = main.
    pub table: u32,
    pub protocol: u8,
    pub scope: RouteScope,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub metric: Option<u32>,
    pub onlink: bool,
}

impl Route {
    /// `<dst> dev <oif> scope link proto <protocol>` in the main table: Calico's route to a local workload.
    pub fn link_scope(dst: IpNet, oif: u32, protocol: u8) -> Route {
        Route {
            dst,
            kind: RouteKind::Unicast,
            table: crate::RT_TABLE_MAIN,
            protocol,
            scope: RouteScope::Link,
            oif: Some(oif),
            gateway: None,
            metric: None,
            onlink: false,
        }
    }

    /// `<dst> via <gateway> dev <oif>` in the main table.
    pub fn via(dst: IpNet, gateway: IpAddr, oif: u32, protocol: u8) -> Route {
        Route {
            gateway: Some(gateway),
            scope: RouteScope::Universe,
            ..Route::link_scope(dst, oif, protocol)
        }
    }

    /// `blackhole <dst> proto <protocol>` in the main table: Felix's route for an affine IPAM block.
    pub fn blackhole(dst: IpNet, protocol: u8) -> Route {
        Route {
            dst,
            kind: RouteKind::Blackhole,
            table: crate::RT_TABLE_MAIN,
            protocol,
            scope: RouteScope::Universe,
            oif: None,
            gateway: None,
            metric: None,
            onlink: false,
        }
    }
}

impl fmt::Display for Route {
    /// `ip route`-like text, used in error messages (`oif` as an index: names need a lookup).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RouteKind::Unicast => {}
            RouteKind::Blackhole => write!(f, "blackhole ")?,
            RouteKind::Unreachable => write!(f, "unreachable ")?,
            RouteKind::Prohibit => write!(f, "prohibit ")?,
            RouteKind::Local => write!(f, "local ")?,
            RouteKind::Other(v) => write!(f, "type {v} ")?,
        }
        write!(f, "{}", self.dst)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(oif) = self.oif {
            write!(f, " dev #{oif}")?;
        }
        if self.table != crate::RT_TABLE_MAIN {
            write!(f, " table {}", self.table)?;
        }
        write!(f, " proto {}", self.protocol)?;
        match self.scope {
            RouteScope::Universe => {}
            RouteScope::Link => write!(f, " scope link")?,
            RouteScope::Host => write!(f, " scope host")?,
            RouteScope::Site => write!(f, " scope site")?,
            RouteScope::Nowhere => write!(f, " scope nowhere")?,
            RouteScope::Other(v) => write!(f, " scope {v}")?,
        }
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if self.onlink {
            write!(f, " onlink")?;
        }
        Ok(())
    }
}

/// Which routes [`crate::RouteSocket::routes`] returns. With neither `v4` nor `v6` set, both families are
/// dumped. `None` fields do not filter; `table: None` means every table (main, local, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteFilter {
    pub v4: bool,
    pub v6: bool,
    pub table: Option<u32>,
    pub protocol: Option<u8>,
    pub oif: Option<u32>,
}

impl RouteFilter {
    /// Both families, main table, any protocol and interface.
    pub fn main_table() -> RouteFilter {
        RouteFilter {
            v4: true,
            v6: true,
            table: Some(crate::RT_TABLE_MAIN),
            protocol: None,
            oif: None,
        }
    }

    pub(crate) fn matches(&self, r: &Route) -> bool {
        let (v4, v6) = if !self.v4 && !self.v6 {
            (true, true)
        } else {
            (self.v4, self.v6)
        };
        let family_ok = match r.dst {
            IpNet::V4(_) => v4,
            IpNet::V6(_) => v6,
        };
        family_ok
            && self.table.is_none_or(|t| t == r.table)
            && self.protocol.is_none_or(|p| p == r.protocol)
            && self.oif.is_none_or(|o| Some(o) == r.oif)
    }
}

/// A neighbour (ARP/NDP) entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neighbour {
    pub index: u32,
    pub ip: IpAddr,
    pub mac: Option<MacAddr>,
    /// `NUD_PERMANENT`.
    pub permanent: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trip() {
        assert_eq!(format_mac(&[0xee; 6]), "ee:ee:ee:ee:ee:ee");
        assert_eq!(
            parse_mac("EE:ee:01:02:03:0a"),
            Some([0xee, 0xee, 1, 2, 3, 10])
        );
        assert_eq!(
            parse_mac("ee-ee-01-02-03-0a"),
            Some([0xee, 0xee, 1, 2, 3, 10])
        );
        for bad in [
            "",
            "ee:ee",
            "ee:ee:ee:ee:ee:ee:ee",
            "e:ee:ee:ee:ee:ee",
            "zz:ee:ee:ee:ee:ee",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn scope_and_kind_codes() {
        for s in [
            RouteScope::Universe,
            RouteScope::Site,
            RouteScope::Link,
            RouteScope::Host,
            RouteScope::Nowhere,
            RouteScope::Other(7),
        ] {
            assert_eq!(RouteScope::from_u8(s.to_u8()), s);
        }
        assert_eq!(RouteScope::Link.to_u8(), 253);
        for k in [
            RouteKind::Unicast,
            RouteKind::Local,
            RouteKind::Blackhole,
            RouteKind::Unreachable,
            RouteKind::Prohibit,
            RouteKind::Other(9),
        ] {
            assert_eq!(RouteKind::from_u8(k.to_u8()), k);
        }
        assert_eq!(RouteKind::Blackhole.to_u8(), 6);
    }

    #[test]
    fn route_display() {
        let r = Route::link_scope("10.0.0.5/32".parse().unwrap(), 7, 3);
        assert_eq!(r.to_string(), "10.0.0.5/32 dev #7 proto 3 scope link");
        let r = Route::blackhole("10.0.0.0/26".parse().unwrap(), 80);
        assert_eq!(r.to_string(), "blackhole 10.0.0.0/26 proto 80");
        let r = Route::via(
            "0.0.0.0/0".parse().unwrap(),
            "169.254.1.1".parse().unwrap(),
            2,
            3,
        );
        assert_eq!(r.to_string(), "0.0.0.0/0 via 169.254.1.1 dev #2 proto 3");
    }

    #[test]
    fn filter_matching() {
        let v4 = Route::link_scope("10.0.0.5/32".parse().unwrap(), 7, 3);
        let v6 = Route::link_scope("fd00::5/128".parse().unwrap(), 8, 80);
        let all = RouteFilter::default();
        assert!(all.matches(&v4) && all.matches(&v6));
        let only6 = RouteFilter {
            v6: true,
            ..RouteFilter::default()
        };
        assert!(!only6.matches(&v4) && only6.matches(&v6));
        let proto = RouteFilter {
            protocol: Some(80),
            ..RouteFilter::default()
        };
        assert!(!proto.matches(&v4) && proto.matches(&v6));
        let oif = RouteFilter {
            oif: Some(7),
            ..RouteFilter::default()
        };
        assert!(oif.matches(&v4) && !oif.matches(&v6));
        let table = RouteFilter {
            table: Some(100),
            ..RouteFilter::default()
        };
        assert!(!table.matches(&v4));
    }
}
