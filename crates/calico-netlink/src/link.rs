//! Links: dump/lookup, veth creation (one `RTM_NEWLINK`, peer born in its namespace), delete, up/down, MTU,
//! MAC, and (for the benchmark's slow path) moving a link to another namespace.

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};

use crate::error::{ErrorKind, NetlinkError};
use crate::socket::RouteSocket;
use crate::types::{Link, MacAddr, VethSpec, format_mac};
use crate::{NetNs, socket::Fail};

/// Linux's IFNAMSIZ is 16 including the terminating NUL.
const MAX_IFNAME: usize = 15;

/// Rejects names the kernel would refuse (`dev_valid_name`), with a message naming the bad name.
pub(crate) fn validate_ifname(op: &str, name: &str) -> Result<(), NetlinkError> {
    let problem = if name.is_empty() {
        Some("interface name is empty".to_string())
    } else if name.len() > MAX_IFNAME {
        Some(format!(
            "interface name {name:?} is {} bytes long, the kernel allows at most {MAX_IFNAME}",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some(format!("interface name {name:?} is reserved"))
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some(format!(
            "interface name {name:?} contains '/', ':' or whitespace"
        ))
    } else {
        None
    };
    match problem {
        Some(p) => Err(NetlinkError::invalid(op, p)),
        None => Ok(()),
    }
}

pub(crate) fn link_from_message(msg: LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        mtu: 0,
        admin_up: msg.header.flags.contains(LinkFlags::Up),
        kind: None,
        lower_up: msg.header.flags.contains(LinkFlags::LowerUp),
        peer_index: None,
        link_netnsid: None,
    };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Address(bytes) => {
                link.mac = <MacAddr>::try_from(bytes.as_slice()).ok();
            }
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::Link(peer) => link.peer_index = Some(peer),
            LinkAttribute::LinkNetNsId(id) => link.link_netnsid = Some(id),
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

fn describe_veth(spec: &VethSpec<'_>) -> String {
    let peer_ns = match spec.peer_netns {
        Some(ns) => format!(" in network namespace {}", ns.path().display()),
        None => String::new(),
    };
    format!(
        "creating veth {} with peer {}{peer_ns}",
        spec.name, spec.peer_name
    )
}

impl RouteSocket {
    /// Every link in the socket's namespace.
    pub fn links(&self) -> Result<Vec<Link>, NetlinkError> {
        let replies = self
            .dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))
            .map_err(|f| f.into_error("listing links"))?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from_message(l)),
                _ => None,
            })
            .collect())
    }

    fn get_link(
        &self,
        msg: LinkMessage,
        op: impl Fn() -> String,
    ) -> Result<Option<Link>, NetlinkError> {
        match self.request(RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_from_message(l)),
                _ => None,
            })),
            Err(f) if f.kind() == ErrorKind::NotFound => Ok(None),
            Err(f) => Err(f.into_error(op())),
        }
    }

    /// The link named `name`, or `None`.
    pub fn link_by_name(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let op = || format!("looking up link {name}");
        validate_ifname(&op(), name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(msg, op)
    }

    /// The link with ifindex `index`, or `None`.
    pub fn link_by_index(&self, index: u32) -> Result<Option<Link>, NetlinkError> {
        if index == 0 {
            return Err(NetlinkError::invalid(
                "looking up link by index",
                "ifindex 0 is not a link",
            ));
        }
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.get_link(msg, || format!("looking up link with index {index}"))
    }

    /// `name (index N)` for error messages; falls back to the bare index when the lookup fails.
    pub(crate) fn describe_index(&self, index: u32) -> String {
        match self.link_by_index(index) {
            Ok(Some(l)) => l.name,
            _ => format!("#{index}"),
        }
    }

    /// Creates a veth pair with ONE `RTM_NEWLINK`: `spec.name` in this socket's namespace and
    /// `spec.peer_name` directly in `spec.peer_netns` (via `IFLA_NET_NS_FD` in the peer's `ifinfomsg`), so
    /// neither end is ever moved. Both names are checked first. An existing name gives `ErrorKind::Exists`.
    pub fn create_veth(&self, spec: &VethSpec<'_>) -> Result<(), NetlinkError> {
        let op = describe_veth(spec);
        validate_ifname(&op, spec.name)?;
        validate_ifname(&op, spec.peer_name)?;
        if let Some(mtu) = spec.mtu
            && mtu < 68
        {
            return Err(NetlinkError::invalid(
                op,
                format!("MTU {mtu} is below the IPv4 minimum of 68"),
            ));
        }
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.to_string()));
        if let Some(mtu) = spec.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(ns) = spec.peer_netns {
            peer.attributes.push(LinkAttribute::NetNsFd(ns.raw_fd()));
        }

        let mut msg = LinkMessage::default();
        msg.attributes
            .push(LinkAttribute::IfName(spec.name.to_string()));
        if let Some(mtu) = spec.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = spec.mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
            .map_err(|f| f.into_error(op))?;
        Ok(())
    }

    /// Deletes the link named `name` (for a veth, both ends go). `Ok(false)` when there is no such link.
    pub fn delete_link(&self, name: &str) -> Result<bool, NetlinkError> {
        let op = format!("deleting link {name}");
        validate_ifname(&op, name)?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(_) => Ok(true),
            Err(f) if f.kind() == ErrorKind::NotFound => Ok(false),
            Err(f) => Err(f.into_error(op)),
        }
    }

    /// Deletes the link with ifindex `index`. `Ok(false)` when there is no such link.
    pub fn delete_link_by_index(&self, index: u32) -> Result<bool, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        match self.request(RouteNetlinkMessage::DelLink(msg), 0) {
            Ok(_) => Ok(true),
            Err(f) if f.kind() == ErrorKind::NotFound => Ok(false),
            Err(f) => Err(f.into_error(format!("deleting link with index {index}"))),
        }
    }

    /// `link caliX (index 5)`, or `link with index 5` when it cannot be resolved (error paths only).
    pub(crate) fn describe_link(&self, index: u32) -> String {
        match self.link_by_index(index) {
            Ok(Some(l)) => format!("link {} (index {index})", l.name),
            _ => format!("link with index {index}"),
        }
    }

    /// Sends an `RTM_SETLINK`; on error the operation reads `<what> link caliX (index 5)<suffix>`.
    fn set_link(
        &self,
        index: u32,
        msg: LinkMessage,
        what: &str,
        suffix: &str,
    ) -> Result<(), NetlinkError> {
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .map(|_| ())
            .map_err(|f: Fail| {
                f.into_error(format!("{what} {}{suffix}", self.describe_link(index)))
            })
    }

    fn flags_msg(index: u32, up: bool) -> LinkMessage {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        msg.header.change_mask = LinkFlags::Up;
        msg
    }

    /// Sets the link administratively up.
    pub fn set_link_up(&self, index: u32) -> Result<(), NetlinkError> {
        self.set_link(index, Self::flags_msg(index, true), "bringing up", "")
    }

    /// Sets the link administratively down.
    pub fn set_link_down(&self, index: u32) -> Result<(), NetlinkError> {
        self.set_link(index, Self::flags_msg(index, false), "bringing down", "")
    }

    /// Sets the link's MTU.
    pub fn set_link_mtu(&self, index: u32, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(index, msg, &format!("setting MTU {mtu} on"), "")
    }

    /// Sets the link's MAC address.
    pub fn set_link_mac(&self, index: u32, mac: MacAddr) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.set_link(
            index,
            msg,
            &format!("setting MAC {} on", format_mac(&mac)),
            "",
        )
    }

    /// Renames the link (it must be down, or the kernel answers EBUSY).
    pub fn set_link_name(&self, index: u32, name: &str) -> Result<(), NetlinkError> {
        let what = format!("renaming to {name}");
        validate_ifname(&what, name)?;
        let suffix = format!(" to {name}");
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.set_link(index, msg, "renaming", &suffix)
    }

    /// Moves a link into another namespace (`ip link set dev X netns Y`). This is the slow path Calico's
    /// plumbing avoids (the kernel unregisters and re-registers the device, with an RCU grace period); it
    /// exists for the benchmark that measures the difference and for callers adopting foreign links.
    pub fn move_link_to_netns(&self, index: u32, ns: &NetNs) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::NetNsFd(ns.raw_fd()));
        self.set_link(
            index,
            msg,
            "moving",
            &format!(" to network namespace {}", ns.path().display()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for ok in ["eth0", "cali7fcc33642a0", "a", "veth.1"] {
            assert!(validate_ifname("t", ok).is_ok(), "{ok}");
        }
        for bad in ["", "cali7fcc33642a0x", ".", "..", "a/b", "a b", "a:b"] {
            let e = validate_ifname("creating veth", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert!(e.to_string().starts_with("creating veth: "), "{e}");
        }
    }
}
