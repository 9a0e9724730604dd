//! BGPPeer (`api/pkg/apis/projectcalico/v3/bgppeer.go`): which nodes peer with which remote
//! (an explicit `peerIP`, other Calico nodes by `peerSelector`, or local workloads by
//! `localWorkloadSelector`), and how.
//!
//! Validation combines `validateBGPPeerSpec` and the `IP:port` / `reachableBy` field validators
//! (`libcalico-go/lib/validator/v3/validator.go`) with the CRD schema and CEL rules on
//! `BGPPeerSpec`. Calico's client adds one datastore check (every name in `filters` must exist);
//! see [`BGPPeer::missing_filters`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::asnumber::ASNumber;
use crate::bgpconfig::{BGPPassword, validate_bgp_password};
use crate::duration::Duration;
use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil::{self, is_false};
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};
use crate::validation;

pub const SOURCE_ADDRESSES: &[&str] = &["UseNodeIP", "None"];
pub const NEXT_HOP_MODES: &[&str] = &["Auto", "Self", "Keep"];
pub const REVERSE_PEERING: &[&str] = &["Auto", "Manual"];

const SELECTOR_MAX_LEN: usize = 1024;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPeer {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: BGPPeerSpec,
}

/// Field order follows the Go struct.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPeerSpec {
    /// The one node this peering applies to (exclusive with `nodeSelector`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// The nodes this peering applies to; neither field set means every node.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    /// `IP`, `IPv4:port` or `[IPv6]:port`.
    #[serde(rename = "peerIP", default, skip_serializing_if = "String::is_empty")]
    pub peer_ip: String,
    /// The peer's AS (0 = unset; must be unset with `peerSelector`).
    #[serde(default, skip_serializing_if = "is_zero_as")]
    pub as_number: ASNumber,
    #[serde(
        rename = "localASNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub local_as_number: Option<ASNumber>,
    /// Peer with the Calico nodes this selects.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_selector: String,
    /// Deprecated in favour of `nextHopMode: Keep`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub keep_original_next_hop: bool,
    /// `Auto` | `Self` | `Keep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<BGPPassword>,
    /// `UseNodeIP` (the default behaviour) | `None`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_time: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalive_time: Option<Duration>,
    #[serde(
        rename = "numAllowedLocalASNumbers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub num_allowed_local_as_numbers: Option<i32>,
    /// GTSM hop count.
    #[serde(
        rename = "ttlSecurity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_security: Option<u8>,
    /// Gateway through which the peer is reached (adds a /32 or /128 static route).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reachable_by: String,
    /// Names of BGPFilters applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// Peer with local workloads this selects (needs `asNumber`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub local_workload_selector: String,
    /// `Auto` | `Manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_peering: Option<String>,
}

fn is_zero_as(a: &ASNumber) -> bool {
    a.0 == 0
}

/// Calico's `processIPPort`: accepts `<IP>`, `<IPv4>:<port>` and `[<IP>]:<port>` (port
/// 1–65535) and returns the address and port (0 when none was given).
pub fn parse_peer_ip(s: &str) -> Option<(IpAddr, u16)> {
    if s.is_empty() {
        return None;
    }
    if is_ipv4_port_format(s) || is_ipv6_port_format(s) {
        let (host, port) = split_host_port(s)?;
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let port: u16 = port.parse().ok()?;
        if port < 1 {
            return None;
        }
        return Some((netutil::parse_ip(host)?, port));
    }
    Some((netutil::parse_ip(s)?, 0))
}

/// `^(\d+).(\d+).(\d+).(\d+):(\d+)$` (the unescaped `.` matches any character).
fn is_ipv4_port_format(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    // Regex backtracking aside, the digit runs are maximal: a separator must follow each.
    for sep in [None, Some(()), Some(()), Some(())] {
        if sep.is_some() {
            if i >= b.len() {
                return false;
            }
            // `.` matches any single character (a UTF-8 sequence counts as one).
            let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
            i += ch_len;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    if i >= b.len() || b[i] != b':' {
        return false;
    }
    i += 1;
    digits(&mut i) && i == b.len()
}

/// `^\[[0-9a-fA-F:.]+\]:(\d+)$`.
fn is_ipv6_port_format(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('[') else {
        return false;
    };
    let Some(close) = rest.find(']') else {
        return false;
    };
    let inner = &rest[..close];
    let after = &rest[close + 1..];
    !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        && after
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Go's `net.SplitHostPort` for the two shapes above.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &rest[..close];
        let port = rest[close + 1..].strip_prefix(':')?;
        return Some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        // "too many colons"
        return None;
    }
    Some((host, port))
}

impl CalicoResource for BGPPeer {
    const KIND: &'static str = "BGPPeer";

    crate::resource::metadata_accessors!();

    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        validate_bgp_peer_spec(&self.spec, &FieldPath::root().field("spec"), errs);
    }
}

fn validate_bgp_peer_spec(spec: &BGPPeerSpec, path: &FieldPath, errs: &mut FieldErrors) {
    if !spec.node.is_empty() && (spec.node.len() > 253 || !netutil::is_name(&spec.node)) {
        errs.push(
            &path.field("node"),
            format!(
                "invalid node name {:?}: must be a valid resource name",
                spec.node
            ),
        );
    }
    for (name, sel) in [
        ("nodeSelector", &spec.node_selector),
        ("peerSelector", &spec.peer_selector),
        ("localWorkloadSelector", &spec.local_workload_selector),
    ] {
        if sel.is_empty() {
            continue;
        }
        if sel.len() > SELECTOR_MAX_LEN {
            errs.push(
                &path.field(name),
                format!("Too long: may not be longer than {SELECTOR_MAX_LEN}"),
            );
        } else {
            validation::validate_selector(sel, &path.field(name), errs);
        }
    }

    let mut peer_addr = None;
    if !spec.peer_ip.is_empty() {
        if spec.peer_ip.len() > 64 {
            errs.push(&path.field("peerIP"), "Too long: may not be longer than 64");
        } else {
            match parse_peer_ip(&spec.peer_ip) {
                Some((ip, _)) => peer_addr = Some(ip),
                None => errs.push(
                    &path.field("peerIP"),
                    format!(
                        "invalid peerIP {:?}: expected <IP>, <IPv4>:<port> or [<IPv6>]:<port>",
                        spec.peer_ip
                    ),
                ),
            }
        }
    }

    let mut reachable = None;
    if !spec.reachable_by.is_empty() {
        if spec.reachable_by.len() > 64 {
            errs.push(
                &path.field("reachableBy"),
                "Too long: may not be longer than 64",
            );
        } else {
            match netutil::parse_ip(&spec.reachable_by) {
                Some(ip) => reachable = Some(ip),
                None => errs.push(
                    &path.field("reachableBy"),
                    format!("invalid reachableBy address {:?}", spec.reachable_by),
                ),
            }
        }
    }
    if let (Some(r), Some(p)) = (reachable, peer_addr)
        && netutil::ip_version(&r) != netutil::ip_version(&p)
    {
        errs.push(
            &path.field("reachableBy"),
            "ReachableBy and PeerIP address family mismatched",
        );
    }

    // CEL rules on BGPPeerSpec.
    if !spec.node.is_empty() && !spec.node_selector.is_empty() {
        errs.push(
            &path.field("nodeSelector"),
            "node and nodeSelector cannot both be set",
        );
    }
    if !spec.peer_ip.is_empty() && !spec.peer_selector.is_empty() {
        errs.push(
            &path.field("peerSelector"),
            "peerIP and peerSelector cannot both be set",
        );
    }
    if !spec.peer_selector.is_empty() && spec.as_number.0 != 0 {
        errs.push(
            &path.field("asNumber"),
            "asNumber must be empty when peerSelector is set",
        );
    }
    if !spec.local_workload_selector.is_empty() {
        if !spec.peer_ip.is_empty() {
            errs.push(
                &path.field("peerIP"),
                "peerIP must be empty when localWorkloadSelector is set",
            );
        }
        if !spec.peer_selector.is_empty() {
            errs.push(
                &path.field("peerSelector"),
                "peerSelector must be empty when localWorkloadSelector is set",
            );
        }
        if spec.as_number.0 == 0 {
            errs.push(
                &path.field("asNumber"),
                "asNumber is required when localWorkloadSelector is set",
            );
        }
    }
    if !spec.reachable_by.is_empty() && spec.peer_ip.is_empty() {
        errs.push(
            &path.field("reachableBy"),
            "reachableBy must be empty when peerIP is empty",
        );
    }
    if spec.keep_original_next_hop && spec.next_hop_mode.is_some() {
        errs.push(
            &path.field("nextHopMode"),
            "keepOriginalNextHop and nextHopMode cannot both be set; keepOriginalNextHop is \
             deprecated, use nextHopMode instead",
        );
    }

    // Enums.
    if let Some(m) = &spec.next_hop_mode {
        netutil::check_enum(m, NEXT_HOP_MODES, &path.field("nextHopMode"), errs);
    }
    if !spec.source_address.is_empty() {
        netutil::check_enum(
            &spec.source_address,
            SOURCE_ADDRESSES,
            &path.field("sourceAddress"),
            errs,
        );
    }
    if let Some(r) = &spec.reverse_peering {
        netutil::check_enum(r, REVERSE_PEERING, &path.field("reversePeering"), errs);
    }

    if let Some(pw) = &spec.password {
        validate_bgp_password(pw, &path.field("password"), errs);
    }
    for (i, f) in spec.filters.iter().enumerate() {
        if !netutil::is_name(f) {
            errs.push(
                &path.field("filters").index(i),
                format!("invalid BGPFilter name {f:?}: must be a valid resource name"),
            );
        }
    }
}

impl BGPPeer {
    /// The datastore check Calico's client makes on create/update: the names in `filters` that
    /// are not among `existing` BGPFilter names (report as "BGPFilter(s) not found").
    pub fn missing_filters<'a>(&'a self, existing: &[&str]) -> Vec<&'a str> {
        self.spec
            .filters
            .iter()
            .map(String::as_str)
            .filter(|f| !existing.contains(f))
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn peer_ip_forms() {
        assert_eq!(parse_peer_ip("10.0.0.1").unwrap().1, 0);
        assert_eq!(parse_peer_ip("10.0.0.1:1790").unwrap().1, 1790);
        assert_eq!(parse_peer_ip("[fd00::1]:1790").unwrap().1, 1790);
        assert_eq!(parse_peer_ip("[192.168.0.1]:500").unwrap().1, 500);
        assert!(parse_peer_ip("fd00::1").is_some());
        for bad in [
            "192.168.0.0:65536",
            "192.168.0.0:0",
            "192.168.0.330:170",
            "[9000::]:98956",
            "192.168.0.0:",
            "[9000::]:",
            "[9000::FFFFF]:170",
            ":8552",
            "[]:8552",
            "999.999.999.999",
            "xyz:::",
        ] {
            assert!(parse_peer_ip(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn missing_filters() {
        let p = BGPPeer {
            spec: BGPPeerSpec {
                filters: vec!["a".into(), "b".into()],
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(p.missing_filters(&["a"]), vec!["b"]);
    }
}
