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
}
