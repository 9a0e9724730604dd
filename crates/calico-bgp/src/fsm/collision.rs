//! Connection collision detection (RFC 4271 §6.8, RFC 6286 §2.3).

use std::net::Ipv4Addr;

use super::Direction;

/// Which of two connections to the same peer survives a collision, given both BGP
/// identifiers and AS numbers.
///
/// RFC 4271 §6.8: when the local identifier is lower than the remote one, the connection
/// the local system initiated is closed (the inbound one survives); otherwise the one the
/// peer initiated is closed. Identifiers are compared as 4-octet unsigned integers.
/// RFC 6286 §2.3: equal identifiers are only legal between different ASes; then the
/// connection initiated by the speaker with the larger AS survives.
pub fn collision_survivor(
    local_id: Ipv4Addr,
    local_as: u32,
    remote_id: Ipv4Addr,
    remote_as: u32,
) -> Direction {
    let (l, r) = (u32::from(local_id), u32::from(remote_id));
    if l == r {
        return if local_as > remote_as {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
    }
    if l < r {
        Direction::Inbound
    } else {
        Direction::Outbound
    }
}
