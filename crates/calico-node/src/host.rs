//! The real [`HostNetwork`]: interfaces and addresses read over netlink (`calico-netlink`)
//! in the agent's network namespace (`CALICO_NODE_NETNS`, else the agent's own), and the
//! `can-reach=` source address from a UDP connect made inside that namespace. Read-only: it
//! never changes anything in any namespace.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use calico_netlink::{NetNs, NetlinkError, RouteSocket};
use ipnet::IpNet;

use crate::autodetect::{AutodetectError, HostInterface, HostNetwork, udp_source_address};

/// The host network of one namespace.
pub struct NetlinkHost {
    ns: Option<NetNs>,
}

impl NetlinkHost {
    /// The namespace at `path`, or the calling process's own when `None`.
    pub fn open(path: Option<&Path>) -> Result<NetlinkHost, NetlinkError> {
        let ns = match path {
            Some(p) => Some(NetNs::open(p)?),
            None => None,
        };
        Ok(NetlinkHost { ns })
    }

    /// The namespace handle, when one was given.
    pub fn netns(&self) -> Option<&NetNs> {
        self.ns.as_ref()
    }

    fn socket(&self) -> Result<RouteSocket, NetlinkError> {
        match &self.ns {
            Some(ns) => RouteSocket::open_in(ns),
            None => RouteSocket::open(),
        }
    }
}

impl HostNetwork for NetlinkHost {
    fn interfaces(&self) -> Result<Vec<HostInterface>, AutodetectError> {
        let e = |e: NetlinkError| AutodetectError::Enumerate(e.to_string());
        let sock = self.socket().map_err(e)?;
        let mut links = sock.links().map_err(e)?;
        // Go's net.Interfaces lists by index; keep that order whatever the dump gave.
        links.sort_by_key(|l| l.index);
        let mut by_index: BTreeMap<u32, Vec<IpNet>> = BTreeMap::new();
        for a in sock.addresses(None).map_err(e)? {
            by_index.entry(a.index).or_default().push(a.addr);
        }
        Ok(links
            .into_iter()
            .map(|l| HostInterface {
                addrs: by_index.remove(&l.index).unwrap_or_default(),
                index: l.index,
                name: l.name,
            })
            .collect())
    }

    fn source_address_towards(&self, dest: &str, version: u8) -> Result<IpAddr, AutodetectError> {
        match &self.ns {
            None => udp_source_address(dest, version),
            Some(ns) => ns.run(|| udp_source_address(dest, version)).map_err(|e| {
                AutodetectError::Reach {
                    dest: dest.to_string(),
                    version,
                    reason: e.to_string(),
                }
            })?,
        }
    }
}
