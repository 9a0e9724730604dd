//! Neighbour (ARP/NDP) entries.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{ErrorKind, NetlinkError};
use crate::socket::RouteSocket;
use crate::types::{MacAddr, Neighbour, format_mac};

fn neighbour_message(index: u32, ip: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.ifindex = index;
    msg.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.attributes
        .push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
            IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
        }));
    msg
}

impl RouteSocket {
    /// Sets a permanent neighbour entry `ip lladdr mac dev <index>`, replacing any existing entry
    /// (`ip neigh replace ... nud permanent`).
    pub fn set_neighbour(&self, index: u32, ip: IpAddr, mac: MacAddr) -> Result<(), NetlinkError> {
        let mut msg = neighbour_message(index, ip);
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        self.request(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(|_| ())
        .map_err(|f| {
            f.into_error(format!(
                "setting neighbour {ip} lladdr {} dev {}",
                format_mac(&mac),
                self.describe_index(index)
            ))
        })
    }

    /// Deletes the neighbour entry. `Ok(false)` when there was none.
    pub fn delete_neighbour(&self, index: u32, ip: IpAddr) -> Result<bool, NetlinkError> {
        match self.request(
            RouteNetlinkMessage::DelNeighbour(neighbour_message(index, ip)),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(f) if f.kind() == ErrorKind::NotFound => Ok(false),
            Err(f) => Err(f.into_error(format!(
                "deleting neighbour {ip} dev {}",
                self.describe_index(index)
            ))),
        }
    }

    /// Neighbour entries of one link (`Some(index)`) or of all links, both families.
    pub fn neighbours(&self, index: Option<u32>) -> Result<Vec<Neighbour>, NetlinkError> {
        let mut req = NeighbourMessage::default();
        // Strict dump checking wants the interface filter as NDA_IFINDEX, with ndm_ifindex left 0.
        if let Some(i) = index {
            req.attributes.push(NeighbourAttribute::IfIndex(i));
        }
        let replies = self
            .dump(RouteNetlinkMessage::GetNeighbour(req))
            .map_err(|f| f.into_error("listing neighbours"))?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewNeighbour(msg) = m else {
                continue;
            };
            if index.is_some_and(|i| i != msg.header.ifindex) {
                continue;
            }
            let mut ip = None;
            let mut mac = None;
            for attr in &msg.attributes {
                match attr {
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        ip = Some(IpAddr::V4(*v4))
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        ip = Some(IpAddr::V6(*v6))
                    }
                    NeighbourAttribute::LinkLayerAddress(bytes) => {
                        mac = <MacAddr>::try_from(bytes.as_slice()).ok()
                    }
                    _ => {}
                }
            }
            if let Some(ip) = ip {
                out.push(Neighbour {
                    index: msg.header.ifindex,
                    ip,
                    mac,
                    permanent: msg.header.state == NeighbourState::Permanent,
                });
            }
        }
        Ok(out)
    }
}
