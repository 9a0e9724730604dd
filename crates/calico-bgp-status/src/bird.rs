//! BIRD-compatible renderings, so that what calico-rs prints matches what Calico printed from
//! BIRD 1.6 (Calico's fork, `projectcalico/bird`).
//!
//! * [`protocol_name`]: confd's protocol names (`bgp_processor.go` `buildPeerFromData`).
//! * [`protocol_time`]: the `since` column of `show protocols`. BIRD 1.6 defaults
//!   `timeformat protocol` to `"%T"` for times less than 20 hours ago and `"%F"` for older
//!   ones (`conf/conf.c` `config_alloc`: `{"%T", "%F", 20*3600}`; `tm_format_datetime` picks
//!   the first format when `now - t < limit`), in the daemon's local time. Calico's templates
//!   never set `timeformat`, so `calicoctl node status` shows `09:47:20` or `2016-11-21`.
//! * [`PeerStatus::info_column`] and [`PeerStatus::display_address`]: the INFO and PEER
//!   ADDRESS cells of `calicoctl node status`.
//! * [`LastError`]: the text BIRD shows after the BGP state for a session's last error
//!   (`proto/bgp/bgp.c` `bgp_err_classes`, `bgp_misc_errors`, `bgp_last_errmsg`;
//!   `packets.c` `bgp_msg_table`), which is what [`PeerStatus::info`] should carry.

use std::net::IpAddr;
use std::time::SystemTime;

use chrono::{DateTime, TimeZone};

use crate::types::{PeerStatus, PeerType};

/// BIRD's `timeformat protocol` limit: times at least this old print as a date.
pub const DATE_AFTER_SECS: u64 = 20 * 3600;

/// BGP's well-known port (RFC 4271 §8.2.1); a peer on another port gets `_port_<n>` in its
/// name.
pub const BGP_PORT: u16 = 179;

/// The BIRD protocol name Calico's confd gives a peer: `<prefix>_<address with . or : as _>`,
/// plus `_port_<port>` when the BGPPeer sets a port (`Mesh_10_0_0_2`,
/// `Node_fd00__2_port_1790`, `Local_Workload_10_65_0_5`). `port` is `None` when the peer
/// resource leaves it unset.
pub fn protocol_name(peer_type: PeerType, addr: IpAddr, port: Option<u16>) -> String {
    let sep = match addr {
        IpAddr::V4(_) => '.',
        IpAddr::V6(_) => ':',
    };
    let mut name = format!(
        "{}_{}",
        peer_type.protocol_prefix(),
        addr.to_string().replace(sep, "_")
    );
    if let Some(p) = port.filter(|&p| p > 0) {
        name.push_str(&format!("_port_{p}"));
    }
    name
}

/// `since` as BIRD 1.6 prints it in `show protocols`: `HH:MM:SS` when less than 20 hours
/// before `now` (or in the future), else `YYYY-MM-DD`, in the time zone `tz`.
pub fn protocol_time<Tz: TimeZone>(since: SystemTime, now: SystemTime, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let recent = match now.duration_since(since) {
        Ok(age) => age.as_secs() < DATE_AFTER_SECS,
        // A time after `now` (clock stepped back): BIRD's delta is negative, so "%T".
        Err(_) => true,
    };
    let local = DateTime::<chrono::Utc>::from(since).with_timezone(tz);
    if recent {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d").to_string()
    }
}

/// [`protocol_time`] in the local time zone of this process (`TZ`, else `/etc/localtime`),
/// as BIRD uses its own.
pub fn protocol_time_local(since: SystemTime, now: SystemTime) -> String {
    protocol_time(since, now, &chrono::Local)
}

impl PeerStatus {
    /// The INFO cell of `calicoctl node status`: the BGP state, then the extra info when there
    /// is some (`Established`, `Active Socket: Connection refused`). calicoctl splits BIRD's
    /// line on whitespace and re-joins the info words with single spaces, so BIRD's padding of
    /// the state (`%-14s`) and any run of spaces in the message collapse to one.
    pub fn info_column(&self) -> String {
        let info = self.info.trim();
        let words = if info.is_empty() || info == self.bgp_state.trim() {
            self.bgp_state.split_whitespace().collect::<Vec<_>>()
        } else {
            self.bgp_state
                .split_whitespace()
                .chain(info.split_whitespace())
                .collect()
        };
        words.join(" ")
    }

    /// The PEER ADDRESS cell of `calicoctl node status`. calicoctl recovers the address from
    /// the protocol name by turning every `_` back into `.` (IPv4) or `:` (IPv6), so a peer
    /// on a port other than 179 shows as `10.0.0.2.port.1790` / `fd00::2:port:1790`; kept
    /// as Calico prints it.
    pub fn display_address(&self) -> String {
        let addr = self.peer_address.to_string();
        if self.port == BGP_PORT || self.port == 0 {
            return addr;
        }
        let sep = match self.peer_address {
            IpAddr::V4(_) => '.',
            IpAddr::V6(_) => ':',
        };
        format!("{addr}{sep}port{sep}{}", self.port)
    }
}

/// A BIRD "miscellaneous" error (`BE_MISC`, shown as `Error: <text>`), BIRD 1.6's
/// `bgp_misc_errors` (Calico ships a BIRD 1.6 fork, whose MD5 text differs from BIRD 2's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MiscError {
    NeighborLost,
    InvalidNextHop,
    Md5AuthFailed,
    NoListeningSocket,
    LinkDown,
    BfdSessionDown,
    GracefulRestart,
}

impl MiscError {
    pub fn text(self) -> &'static str {
        match self {
            MiscError::NeighborLost => "Neighbor lost",
            MiscError::InvalidNextHop => "Invalid next hop",
            MiscError::Md5AuthFailed => "Kernel MD5 auth failed",
            MiscError::NoListeningSocket => "No listening socket",
            MiscError::LinkDown => "Link down",
            MiscError::BfdSessionDown => "BFD session down",
            MiscError::GracefulRestart => "Graceful restart",
        }
    }
}

/// The last error of a session, by BIRD's error class. [`LastError::info`] renders it as
/// BIRD's `show protocols` does after the state: `Socket: Connection refused`,
/// `Received: Hold timer expired` (the peer's hold timer ran out), `BGP Error: Hold timer
/// expired` (ours did: BIRD sends the NOTIFICATION itself, `bgp_hold_timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastError {
    /// `Error: ...` (`BE_MISC`).
    Misc(MiscError),
    /// `Socket: <strerror>` (`BE_SOCKET`); `None` is a connection closed by the peer
    /// (`Socket: Connection closed`).
    Socket(Option<i32>),
    /// `Received: <notification>`: the peer sent a NOTIFICATION (`BE_BGP_RX`).
    Received { code: u8, subcode: u8 },
    /// `BGP Error: <notification>`: we sent a NOTIFICATION (`BE_BGP_TX`).
    Sent { code: u8, subcode: u8 },
    /// `Automatic shutdown: Route limit exceeded` (`BE_AUTO_DOWN`).
    RouteLimitExceeded,
}

impl LastError {
    /// The text for [`PeerStatus::info`].
    pub fn info(&self) -> String {
        match self {
            LastError::Misc(m) => format!("Error: {}", m.text()),
            LastError::Socket(None) => "Socket: Connection closed".to_string(),
            LastError::Socket(Some(errno)) => format!("Socket: {}", strerror(*errno)),
            LastError::Received { code, subcode } => {
                format!("Received: {}", notification_text(*code, *subcode))
            }
            LastError::Sent { code, subcode } => {
                format!("BGP Error: {}", notification_text(*code, *subcode))
            }
            LastError::RouteLimitExceeded => "Automatic shutdown: Route limit exceeded".to_string(),
        }
    }
}

/// The C library's text for an errno (what BIRD's `strerror` prints), without the
/// ` (os error N)` that Rust's `io::Error` adds.
pub fn strerror(errno: i32) -> String {
    let full = std::io::Error::from_raw_os_error(errno).to_string();
    let suffix = format!(" (os error {errno})");
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}

/// BIRD 1.6's description of a NOTIFICATION code and subcode (`bgp_error_dsc` over
/// `bgp_msg_table`: RFC 4271 §4.5 codes, RFC 6608 FSM subcodes, RFC 4486 Cease subcodes,
/// RFC 7313 ROUTE-REFRESH), `Unknown error <code>.<subcode>` for anything else.
pub fn notification_text(code: u8, subcode: u8) -> std::borrow::Cow<'static, str> {
    let known = match (code, subcode) {
        (1, 0) => "Invalid message header",
        (1, 1) => "Connection not synchronized",
        (1, 2) => "Bad message length",
        (1, 3) => "Bad message type",
        (2, 0) => "Invalid OPEN message",
        (2, 1) => "Unsupported version number",
        (2, 2) => "Bad peer AS",
        (2, 3) => "Bad BGP identifier",
        (2, 4) => "Unsupported optional parameter",
        (2, 5) => "Authentication failure",
        (2, 6) => "Unacceptable hold time",
        (2, 7) => "Required capability missing",
        (2, 8) => "No supported AFI/SAFI",
        (3, 0) => "Invalid UPDATE message",
        (3, 1) => "Malformed attribute list",
        (3, 2) => "Unrecognized well-known attribute",
        (3, 3) => "Missing mandatory attribute",
        (3, 4) => "Invalid attribute flags",
        (3, 5) => "Invalid attribute length",
        (3, 6) => "Invalid ORIGIN attribute",
        (3, 7) => "AS routing loop",
        (3, 8) => "Invalid NEXT_HOP attribute",
        (3, 9) => "Optional attribute error",
        (3, 10) => "Invalid network field",
        (3, 11) => "Malformed AS_PATH",
        (4, 0) => "Hold timer expired",
        (5, 0) => "Finite state machine error",
        (5, 1) => "Unexpected message in OpenSent state",
        (5, 2) => "Unexpected message in OpenConfirm state",
        (5, 3) => "Unexpected message in Established state",
        (6, 0) => "Cease",
        (6, 1) => "Maximum number of prefixes reached",
        (6, 2) => "Administrative shutdown",
        (6, 3) => "Peer de-configured",
        (6, 4) => "Administrative reset",
        (6, 5) => "Connection rejected",
        (6, 6) => "Other configuration change",
        (6, 7) => "Connection collision resolution",
        (6, 8) => "Out of Resources",
        (7, 0) => "Invalid ROUTE-REFRESH message",
        (7, 1) => "Invalid ROUTE-REFRESH message length",
        _ => return format!("Unknown error {code}.{subcode}").into(),
    };
    known.into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use chrono::{FixedOffset, Utc};

    use super::*;
    use crate::types::Family;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn names_follow_confd() {
        let cases: &[(PeerType, &str, Option<u16>, &str)] = &[
            (PeerType::NodeMesh, "10.0.0.2", None, "Mesh_10_0_0_2"),
            (
                PeerType::Global,
                "172.17.8.103",
                None,
                "Global_172_17_8_103",
            ),
            (
                PeerType::NodeSpecific,
                "fd80:24e2:f998:72d7::2",
                None,
                "Node_fd80_24e2_f998_72d7__2",
            ),
            (
                PeerType::NodeSpecific,
                "fd00::2",
                Some(1790),
                "Node_fd00__2_port_1790",
            ),
            (
                PeerType::Global,
                "10.0.0.9",
                Some(179),
                "Global_10_0_0_9_port_179",
            ),
            (PeerType::Global, "10.0.0.9", Some(0), "Global_10_0_0_9"),
            (
                PeerType::LocalWorkload,
                "10.65.0.5",
                None,
                "Local_Workload_10_65_0_5",
            ),
        ];
        for (t, a, port, want) in cases {
            assert_eq!(protocol_name(*t, a.parse().unwrap(), *port), *want);
        }
    }

    #[test]
    fn time_format_switches_to_date_at_20_hours() {
        // 2016-11-21 09:47:20 UTC.
        let since = at(1_479_721_640);
        let cases: &[(u64, &str)] = &[
            (0, "09:47:20"),
            (59, "09:47:20"),
            (DATE_AFTER_SECS - 1, "09:47:20"),
            (DATE_AFTER_SECS, "2016-11-21"),
            (400 * 86_400, "2016-11-21"),
        ];
        for (age, want) in cases {
            let now = since + Duration::from_secs(*age);
            assert_eq!(protocol_time(since, now, &Utc), *want, "age {age}");
        }
        // A since in the future (clock stepped back) still prints the time.
        assert_eq!(protocol_time(since, at(1_479_721_000), &Utc), "09:47:20");
    }

    #[test]
    fn time_format_uses_the_time_zone() {
        let since = at(1_479_721_640); // 09:47:20 UTC
        let plus10 = FixedOffset::east_opt(10 * 3600).unwrap();
        let minus10 = FixedOffset::west_opt(10 * 3600).unwrap();
        assert_eq!(protocol_time(since, since, &plus10), "19:47:20");
        assert_eq!(protocol_time(since, since, &minus10), "23:47:20");
        let later = since + Duration::from_secs(3 * 86_400);
        assert_eq!(protocol_time(since, later, &minus10), "2016-11-20");
        assert_eq!(protocol_time(since, later, &plus10), "2016-11-21");
    }

    fn peer(addr: &str, port: u16, bgp_state: &str, info: &str) -> PeerStatus {
        let peer_address: IpAddr = addr.parse().unwrap();
        PeerStatus {
            name: protocol_name(PeerType::Global, peer_address, None),
            peer_address,
            port,
            peer_type: PeerType::Global,
            state: "start".into(),
            bgp_state: bgp_state.into(),
            since: at(0),
            info: info.into(),
            routes_imported: 0,
            routes_exported: 0,
            family: Family::of(peer_address),
        }
    }

    #[test]
    fn info_column_like_calicoctl() {
        let cases: &[(&str, &str, &str)] = &[
            ("Established", "", "Established"),
            ("Established", "Established", "Established"),
            (
                "Active",
                "Socket: Connection refused",
                "Active Socket: Connection refused",
            ),
            ("Active", "  Socket:   error ", "Active Socket: error"),
            ("Connect", "", "Connect"),
            (
                "Idle",
                "Received: Hold timer expired",
                "Idle Received: Hold timer expired",
            ),
        ];
        for (state, info, want) in cases {
            assert_eq!(peer("10.0.0.1", 179, state, info).info_column(), *want);
        }
    }

    #[test]
    fn display_address_like_calicoctl() {
        assert_eq!(
            peer("10.0.0.1", 179, "Idle", "").display_address(),
            "10.0.0.1"
        );
        assert_eq!(
            peer("10.0.0.1", 1790, "Idle", "").display_address(),
            "10.0.0.1.port.1790"
        );
        assert_eq!(
            peer("fd00::2", 1790, "Idle", "").display_address(),
            "fd00::2:port:1790"
        );
        assert_eq!(
            peer("fd00::2", 179, "Idle", "").display_address(),
            "fd00::2"
        );
    }

    #[test]
    fn last_errors_like_bird() {
        let cases: &[(LastError, &str)] = &[
            (LastError::Socket(None), "Socket: Connection closed"),
            (LastError::Socket(Some(111)), "Socket: Connection refused"),
            (LastError::Socket(Some(113)), "Socket: No route to host"),
            (
                LastError::Received {
                    code: 4,
                    subcode: 0,
                },
                "Received: Hold timer expired",
            ),
            (
                LastError::Sent {
                    code: 2,
                    subcode: 2,
                },
                "BGP Error: Bad peer AS",
            ),
            (
                LastError::Received {
                    code: 6,
                    subcode: 2,
                },
                "Received: Administrative shutdown",
            ),
            (
                LastError::Received {
                    code: 6,
                    subcode: 9,
                },
                "Received: Unknown error 6.9",
            ),
            (
                LastError::Misc(MiscError::Md5AuthFailed),
                "Error: Kernel MD5 auth failed",
            ),
            (
                LastError::Misc(MiscError::NeighborLost),
                "Error: Neighbor lost",
            ),
            (
                LastError::RouteLimitExceeded,
                "Automatic shutdown: Route limit exceeded",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.info(), *want, "{e:?}");
        }
        // What calicoctl then shows, e.g. for a peer that refuses connections.
        let mut p = peer("10.0.0.1", 179, "Active", "");
        p.info = LastError::Socket(Some(111)).info();
        assert_eq!(p.info_column(), "Active Socket: Connection refused");
    }
}
