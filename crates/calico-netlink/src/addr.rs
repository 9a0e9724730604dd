//! Interface addresses.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{ErrorKind, NetlinkError};
use crate::socket::RouteSocket;
use crate::types::Address;

fn address_message(index: u32, addr: IpNet, nodad: bool) -> AddressMessage {
    let mut msg = AddressMessage::default();
    if nodad {
        msg.header.flags = AddressHeaderFlags::Nodad;
    }
    msg.header.index = index;
    msg.header.prefix_len = addr.prefix_len();
    msg.header.family = match addr {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    // As iproute2 does for a non point-to-point address: IFA_LOCAL is the interface's own address and
    // IFA_ADDRESS the same (it would be the peer's on a point-to-point link).
    if let IpNet::V4(v4) = addr {
        msg.attributes.push(AddressAttribute::Local(addr.addr()));
        if v4.prefix_len() <= 30 {
            msg.attributes
                .push(AddressAttribute::Broadcast(v4.broadcast()));
        }
    }
    msg.attributes.push(AddressAttribute::Address(addr.addr()));
    msg
}

impl RouteSocket {
    /// Addresses of one link (`Some(index)`) or of all links.
    pub fn addresses(&self, index: Option<u32>) -> Result<Vec<Address>, NetlinkError> {
        let mut req = AddressMessage::default();
        if let Some(i) = index {
            req.header.index = i;
        }
        let op = || match index {
            Some(i) => format!(
                "listing addresses of link {} (index {i})",
                self.describe_index(i)
            ),
            None => "listing addresses".to_string(),
        };
        let replies = match self.dump(RouteNetlinkMessage::GetAddress(req)) {
            Ok(r) => r,
            Err(f) => return Err(f.into_error(op())),
        };
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewAddress(msg) = m else {
                continue;
            };
            // Strict checking filters by index kernel-side; filter again in case the kernel did not.
            if index.is_some_and(|i| i != msg.header.index) {
                continue;
            }
            let mut local: Option<IpAddr> = None;
            let mut address: Option<IpAddr> = None;
            for attr in &msg.attributes {
                match attr {
                    AddressAttribute::Local(ip) => local = Some(*ip),
                    AddressAttribute::Address(ip) => address = Some(*ip),
                    _ => {}
                }
            }
            // IPv4 reports the own address in IFA_LOCAL; IPv6 only has IFA_ADDRESS.
            let Some(ip) = local.or(address) else {
                continue;
            };
            let Ok(net) = IpNet::new(ip, msg.header.prefix_len) else {
                continue;
            };
            out.push(Address {
                index: msg.header.index,
                addr: net,
            });
        }
        Ok(out)
    }

    /// Adds `addr` (e.g. `10.0.0.5/32`) to link `index`. An existing identical address gives
    /// `ErrorKind::Exists`.
    pub fn add_address(&self, index: u32, addr: IpNet) -> Result<(), NetlinkError> {
        self.add_address_inner(index, addr, false)
    }

    /// Like [`RouteSocket::add_address`], with `IFA_F_NODAD`: an IPv6 address is usable the moment this
    /// returns. Without it, even with `accept_dad=0`, the kernel first marks the address tentative and
    /// clears that from a work queue, so a `bind()` right after can fail with EADDRNOTAVAIL (a workload
    /// started straight after CNI ADD would see that). No effect on IPv4.
    pub fn add_address_nodad(&self, index: u32, addr: IpNet) -> Result<(), NetlinkError> {
        self.add_address_inner(index, addr, addr.addr().is_ipv6())
    }

    fn add_address_inner(&self, index: u32, addr: IpNet, nodad: bool) -> Result<(), NetlinkError> {
        self.request(
            RouteNetlinkMessage::NewAddress(address_message(index, addr, nodad)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(|_| ())
        .map_err(|f| {
            let hint = match (&addr, f.errno()) {
                // The kernel answers EACCES when IPv6 is disabled on the interface (disable_ipv6=1).
                (IpNet::V6(_), Some(13)) => " (is IPv6 disabled on this interface?)",
                _ => "",
            };
            f.into_error(format!(
                "adding address {addr} to {} (index {index}){hint}",
                self.describe_index(index)
            ))
        })
    }

    /// Removes `addr` from link `index`. `Ok(false)` when it was not there.
    pub fn delete_address(&self, index: u32, addr: IpNet) -> Result<bool, NetlinkError> {
        match self.request(
            RouteNetlinkMessage::DelAddress(address_message(index, addr, false)),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(f) if f.kind() == ErrorKind::NotFound => Ok(false),
            Err(f) => Err(f.into_error(format!(
                "deleting address {addr} from {} (index {index})",
                self.describe_index(index)
            ))),
        }
    }
}
