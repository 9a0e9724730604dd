//! Routes: dump with filters, add (exclusive), replace, delete.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol,
    RouteScope as NlScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::{ErrorKind, NetlinkError};
use crate::socket::RouteSocket;
use crate::types::{Route, RouteFilter, RouteKind, RouteScope};

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

fn table_header(table: u32) -> u8 {
    // rtm_table is 8 bits; larger ids travel only in RTA_TABLE with rtm_table = RT_TABLE_UNSPEC (iproute2).
    u8::try_from(table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC)
}

/// Rejects routes the kernel would refuse with a bare EINVAL, explaining why.
/// One change of [`RouteSocket::apply_routes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteChange {
    /// Add or replace (as [`RouteSocket::replace_route`]).
    Replace(Route),
    /// Delete (as [`RouteSocket::delete_route`]).
    Delete(Route),
}

impl RouteChange {
    pub fn route(&self) -> &Route {
        match self {
            RouteChange::Replace(r) | RouteChange::Delete(r) => r,
        }
    }
}

fn validate(op: &str, r: &Route) -> Result<(), NetlinkError> {
    if r.dst.trunc() != r.dst {
        return Err(NetlinkError::invalid(
            op,
            format!(
                "destination {} has host bits set (the network is {})",
                r.dst,
                r.dst.trunc()
            ),
        ));
    }
    if let Some(gw) = r.gateway
        && gw.is_ipv4() != r.dst.addr().is_ipv4()
    {
        return Err(NetlinkError::invalid(
            op,
            format!(
                "gateway {gw} is not of the same address family as {}",
                r.dst
            ),
        ));
    }
    if r.table == 0 {
        return Err(NetlinkError::invalid(
            op,
            "table 0 (unspecified) is not a table",
        ));
    }
    Ok(())
}

/// The netlink message for a route. For deletion the scope is sent as RT_SCOPE_NOWHERE, which the IPv4
/// FIB treats as "any scope" (as `ip route del` does); every other given field must match.
fn route_message(r: &Route, for_delete: bool) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match r.dst {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = r.dst.prefix_len();
    msg.header.table = table_header(r.table);
    msg.header.protocol = RouteProtocol::from(r.protocol);
    msg.header.scope = if for_delete {
        NlScope::from(RouteScope::Nowhere.to_u8())
    } else {
        NlScope::from(r.scope.to_u8())
    };
    msg.header.kind = RouteType::from(r.kind.to_u8());
    if r.onlink {
        msg.header.flags = RouteFlags::Onlink;
    }
    msg.attributes
        .push(RouteAttribute::Destination(route_address(r.dst.addr())));
    msg.attributes.push(RouteAttribute::Table(r.table));
    if let Some(oif) = r.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    if let Some(gw) = r.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(route_address(gw)));
    }
    if let Some(metric) = r.metric {
        msg.attributes.push(RouteAttribute::Priority(metric));
    }
    msg
}

/// Converts a dumped route; `None` for families and shapes we do not model (MPLS, cache clones).
pub(crate) fn route_from_message(msg: &RouteMessage) -> Option<Route> {
    if msg.header.flags.contains(RouteFlags::Cloned) {
        return None;
    }
    let mut dst_ip: Option<IpAddr> = None;
    let mut table = u32::from(msg.header.table);
    let mut oif = None;
    let mut gateway = None;
    let mut metric = None;
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst_ip = Some(IpAddr::V4(*ip)),
            RouteAttribute::Destination(RouteAddress::Inet6(ip)) => dst_ip = Some(IpAddr::V6(*ip)),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Oif(i) => oif = Some(*i),
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(IpAddr::V4(*ip)),
            RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => gateway = Some(IpAddr::V6(*ip)),
            RouteAttribute::Priority(p) => metric = Some(*p),
            _ => {}
        }
    }
    let unspecified = match msg.header.address_family {
        AddressFamily::Inet => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        AddressFamily::Inet6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let dst = IpNet::new(
        dst_ip.unwrap_or(unspecified),
        msg.header.destination_prefix_length,
    )
    .ok()?;
    Some(Route {
        dst,
        kind: RouteKind::from_u8(msg.header.kind.into()),
        table,
        protocol: msg.header.protocol.into(),
        scope: RouteScope::from_u8(msg.header.scope.into()),
        oif,
        gateway,
        metric,
        onlink: msg.header.flags.contains(RouteFlags::Onlink),
    })
}

impl RouteSocket {
    /// `ip route`-like description with the interface name resolved (only used on error paths).
    fn describe_route(&self, r: &Route) -> String {
        let text = r.to_string();
        match r.oif {
            Some(oif) => text.replace(
                &format!("dev #{oif}"),
                &format!("dev {}", self.describe_index(oif)),
            ),
            None => text,
        }
    }

    /// Routes matching `filter`. The kernel filters (strict dump checking) and we filter again, so the
    /// result is exact on kernels that ignore some filter fields.
    pub fn routes(&self, filter: &RouteFilter) -> Result<Vec<Route>, NetlinkError> {
        let (v4, v6) = if !filter.v4 && !filter.v6 {
            (true, true)
        } else {
            (filter.v4, filter.v6)
        };
        let mut out = Vec::new();
        for (family, wanted) in [(AddressFamily::Inet, v4), (AddressFamily::Inet6, v6)] {
            if !wanted {
                continue;
            }
            let mut req = RouteMessage::default();
            req.header.address_family = family;
            if let Some(t) = filter.table {
                req.header.table = table_header(t);
                req.attributes.push(RouteAttribute::Table(t));
            }
            if let Some(p) = filter.protocol {
                req.header.protocol = RouteProtocol::from(p);
            }
            if let Some(o) = filter.oif {
                req.attributes.push(RouteAttribute::Oif(o));
            }
            // Converted as the replies arrive: a large table never exists as raw messages.
            // An interrupted dump starts over: what it delivered so far is dropped.
            let found = std::cell::RefCell::new(Vec::new());
            let result = self.dump_each(
                RouteNetlinkMessage::GetRoute(req),
                &mut |m| {
                    if let RouteNetlinkMessage::NewRoute(msg) = m
                        && let Some(r) = route_from_message(&msg)
                        && filter.matches(&r)
                    {
                        found.borrow_mut().push(r);
                    }
                },
                &mut || found.borrow_mut().clear(),
            );
            let replies = match result {
                Ok(()) => found.into_inner(),
                // A filter on a table or interface that does not exist: nothing matches. (IPv4 answers
                // ENOENT for a missing table, both families ENODEV for a missing oif.)
                Err(f) if f.kind() == ErrorKind::NotFound => continue,
                Err(f) => {
                    let fam = if family == AddressFamily::Inet {
                        "IPv4"
                    } else {
                        "IPv6"
                    };
                    return Err(f.into_error(format!("listing {fam} routes ({filter:?})")));
                }
            };
            out.extend(replies);
        }
        Ok(out)
    }

    /// Adds a route; an existing route with the same key gives `ErrorKind::Exists`.
    pub fn add_route(&self, r: &Route) -> Result<(), NetlinkError> {
        let op = || format!("adding route {}", self.describe_route(r));
        validate(&op(), r)?;
        self.request(
            RouteNetlinkMessage::NewRoute(route_message(r, false)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(|_| ())
        .map_err(|f| f.into_error(op()))
    }

    /// Adds or replaces the route with the same key (destination, table, TOS, metric).
    pub fn replace_route(&self, r: &Route) -> Result<(), NetlinkError> {
        let op = || format!("replacing route {}", self.describe_route(r));
        validate(&op(), r)?;
        self.request(
            RouteNetlinkMessage::NewRoute(route_message(r, false)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(|_| ())
        .map_err(|f| f.into_error(op()))
    }

    /// Applies many route changes with requests in flight together (see
    /// [`RouteSocket::request_batch`]); each result as [`Self::replace_route`] /
    /// [`Self::delete_route`] would give it, in order.
    pub fn apply_routes(&self, changes: &[RouteChange]) -> Vec<Result<bool, NetlinkError>> {
        // One window at a time: only that many encoded requests exist at once.
        changes
            .chunks(crate::socket::BATCH_WINDOW)
            .flat_map(|chunk| self.apply_window(chunk))
            .collect()
    }

    fn apply_window(&self, changes: &[RouteChange]) -> Vec<Result<bool, NetlinkError>> {
        let mut out: Vec<Option<Result<bool, NetlinkError>>> = Vec::with_capacity(changes.len());
        let mut msgs = Vec::with_capacity(changes.len());
        let mut index = Vec::with_capacity(changes.len());
        for (i, c) in changes.iter().enumerate() {
            let r = c.route();
            let op = self.change_description(c);
            match validate(&op, r) {
                Err(e) => out.push(Some(Err(e))),
                Ok(()) => {
                    out.push(None);
                    index.push(i);
                    msgs.push(match c {
                        RouteChange::Replace(r) => (
                            RouteNetlinkMessage::NewRoute(route_message(r, false)),
                            NLM_F_CREATE | NLM_F_REPLACE,
                        ),
                        RouteChange::Delete(r) => {
                            (RouteNetlinkMessage::DelRoute(route_message(r, true)), 0)
                        }
                    });
                }
            }
        }
        for (result, i) in self.request_batch(msgs).into_iter().zip(index) {
            let c = &changes[i];
            out[i] = Some(match (c, result) {
                (_, Ok(())) => Ok(true),
                (RouteChange::Delete(_), Err(f)) if f.kind() == ErrorKind::NotFound => Ok(false),
                (_, Err(f)) => Err(f.into_error(self.change_description(c))),
            });
        }
        out.into_iter().map(|r| r.unwrap_or(Ok(false))).collect()
    }

    fn change_description(&self, c: &RouteChange) -> String {
        match c {
            RouteChange::Replace(r) => format!("replacing route {}", self.describe_route(r)),
            RouteChange::Delete(r) => format!("deleting route {}", self.describe_route(r)),
        }
    }

    /// Deletes the route. `Ok(false)` when no route matches (destination, table, kind, protocol, oif,
    /// gateway and metric as given; any scope).
    pub fn delete_route(&self, r: &Route) -> Result<bool, NetlinkError> {
        let op = || format!("deleting route {}", self.describe_route(r));
        validate(&op(), r)?;
        match self.request(RouteNetlinkMessage::DelRoute(route_message(r, true)), 0) {
            Ok(_) => Ok(true),
            Err(f) if f.kind() == ErrorKind::NotFound => Ok(false),
            Err(f) => Err(f.into_error(op())),
        }
    }
}
