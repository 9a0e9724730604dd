//! What the speaker reports: itself ([`SpeakerStatus`]) and each BGP session ([`PeerStatus`]).
//!
//! The fields follow what Calico's consumers read from BIRD: `calicoctl node status` reads
//! the `state`, `since` and `info` columns of `show protocols` for each `Mesh_`/`Node_`/
//! `Global_` protocol; the CalicoNodeStatus populators (`node/pkg/status/populators`) read the
//! router id, AS, up time, graceful-restart progress and route counts. Times travel as
//! RFC 3339 strings (UTC, nanoseconds when present) so a human reading the socket with `socat`
//! understands them.

use std::net::{IpAddr, Ipv4Addr};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// How the peering came about, as Calico names its BIRD protocols (confd's
/// `bgp_processor.go`: `Mesh_`, `Global_`, `Node_`, `Local_Workload_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub enum PeerType {
    /// The node-to-node mesh (`Mesh_<ip>`).
    NodeMesh,
    /// A BGPPeer without a node selector (`Global_<ip>`).
    Global,
    /// A BGPPeer for this node only, by `node` or `nodeSelector` (`Node_<ip>`).
    NodeSpecific,
    /// A BGPPeer with a `localWorkloadSelector`: a workload on this node (`Local_Workload_<ip>`).
    LocalWorkload,
}

impl PeerType {
    /// The prefix of Calico's BIRD protocol name for this kind of peer.
    pub fn protocol_prefix(self) -> &'static str {
        match self {
            PeerType::NodeMesh => "Mesh",
            PeerType::Global => "Global",
            PeerType::NodeSpecific => "Node",
            PeerType::LocalWorkload => "Local_Workload",
        }
    }

    /// The PEER TYPE column of `calicoctl node status` (status.go's `bgpTypeMap`). Local
    /// workload peers have none: their protocol names do not match calicoctl's
    /// `^(Global|Node|Mesh)_(.+)$`, so Calico never lists them.
    pub fn display(self) -> Option<&'static str> {
        match self {
            PeerType::NodeMesh => Some("node-to-node mesh"),
            PeerType::Global => Some("global"),
            PeerType::NodeSpecific => Some("node specific"),
            PeerType::LocalWorkload => None,
        }
    }
}

/// Which of Calico's two BGP daemons the session belongs to: `bird` (IPv4) or `bird6` (IPv6).
/// calico-rs runs one speaker for both, but keeps the split for the status tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    #[serde(rename = "IPv4")]
    Ipv4,
    #[serde(rename = "IPv6")]
    Ipv6,
}

impl Family {
    /// The family of a peer address (Calico peers a v4 address from `bird`, a v6 one from
    /// `bird6`).
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// `4` or `6`, as in calicoctl's "IPv4 BGP status".
    pub fn number(self) -> u8 {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 6,
        }
    }
}

/// One BGP session, as BIRD's `show protocols` line for it would describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The protocol name Calico would give it (e.g. `Mesh_10_0_0_2`,
    /// `Node_fd00__2_port_1790`); see [`crate::bird::protocol_name`].
    pub name: String,
    pub peer_address: IpAddr,
    /// The peer's TCP port (179 unless the BGPPeer sets another).
    pub port: u16,
    pub peer_type: PeerType,
    /// BIRD's protocol state: `up` once Established, `start` while connecting, `down` when
    /// shut down, `stop` while stopping (BIRD 1.6 `proto_state_name`).
    pub state: String,
    /// The BGP FSM state as BIRD names it: `Idle`, `Connect`, `Active`, `OpenSent`,
    /// `OpenConfirm`, `Established` (plus BIRD's `Passive` for a passive session waiting in
    /// Idle, and `Down`).
    pub bgp_state: String,
    /// When `state` last changed (BIRD's `since` column).
    #[serde(with = "rfc3339")]
    pub since: SystemTime,
    /// What BIRD prints after the BGP state in the info column: the last error with its class
    /// prefix (`Socket: Connection refused`, `Received: Hold timer expired`,
    /// `BGP Error: Hold timer expired`, `Error: Neighbor lost`; see
    /// [`crate::bird::LastError`]), empty when there is none.
    /// A value equal to `bgp_state` is treated as empty (see [`PeerStatus::info_column`]).
    #[serde(default)]
    pub info: String,
    /// Routes accepted from the peer (after import policy).
    #[serde(default)]
    pub routes_imported: u64,
    /// Routes advertised to the peer (after export policy).
    #[serde(default)]
    pub routes_exported: u64,
    pub family: Family,
}

/// The speaker and all its sessions, as one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerStatus {
    pub router_id: Ipv4Addr,
    pub as_number: u32,
    /// When the speaker started (BIRD's `show status` "Last reboot").
    #[serde(with = "rfc3339")]
    pub up_since: SystemTime,
    /// True while the speaker, restarted with graceful restart, still waits for its peers'
    /// End-of-RIB before touching the FIB (BIRD's code 0024 "Graceful restart recovery in
    /// progress", which calico-node's readiness check looks for).
    #[serde(default)]
    pub graceful_restart_in_progress: bool,
    /// In the speaker's configuration order (BIRD lists protocols in config order).
    #[serde(default)]
    pub peers: Vec<PeerStatus>,
}

impl SpeakerStatus {
    /// The sessions of one family, in order.
    pub fn peers_of(&self, family: Family) -> impl Iterator<Item = &PeerStatus> {
        self.peers.iter().filter(move |p| p.family == family)
    }
}

/// `SystemTime` as an RFC 3339 string in UTC.
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let dt: DateTime<Utc> = (*t).into();
        s.serialize_str(&dt.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(SystemTime::from)
            .map_err(|e| serde::de::Error::custom(format!("invalid RFC 3339 time {s:?}: {e}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn peer() -> PeerStatus {
        PeerStatus {
            name: "Mesh_10_0_0_2".into(),
            peer_address: "10.0.0.2".parse().unwrap(),
            port: 179,
            peer_type: PeerType::NodeMesh,
            state: "up".into(),
            bgp_state: "Established".into(),
            since: SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 250_000_000),
            info: String::new(),
            routes_imported: 3,
            routes_exported: 1,
            family: Family::Ipv4,
        }
    }

    #[test]
    fn wire_shape() {
        let v = serde_json::to_value(peer()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "Mesh_10_0_0_2", "peer_address": "10.0.0.2", "port": 179,
                "peer_type": "NodeMesh", "state": "up", "bgp_state": "Established",
                "since": "2023-11-14T22:13:20.250Z", "info": "",
                "routes_imported": 3, "routes_exported": 1, "family": "IPv4"
            })
        );
        let back: PeerStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, peer());
    }

    #[test]
    fn times_round_trip_and_accept_offsets() {
        for t in [
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH + Duration::new(1_763_800_000, 1),
            SystemTime::UNIX_EPOCH - Duration::from_secs(86_400),
        ] {
            let mut p = peer();
            p.since = t;
            let back: PeerStatus =
                serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            assert_eq!(back.since, t);
        }
        let mut v = serde_json::to_value(peer()).unwrap();
        v["since"] = "2023-11-15T00:13:20.25+02:00".into();
        let p: PeerStatus = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.since, peer().since);
        v["since"] = "yesterday".into();
        let e = serde_json::from_value::<PeerStatus>(v).unwrap_err();
        assert!(
            e.to_string()
                .contains("invalid RFC 3339 time \"yesterday\""),
            "{e}"
        );
    }

    #[test]
    fn peer_types_and_families() {
        assert_eq!(PeerType::NodeMesh.display(), Some("node-to-node mesh"));
        assert_eq!(PeerType::Global.display(), Some("global"));
        assert_eq!(PeerType::NodeSpecific.display(), Some("node specific"));
        assert_eq!(PeerType::LocalWorkload.display(), None);
        assert_eq!(Family::of("fd00::1".parse().unwrap()), Family::Ipv6);
        assert_eq!(Family::of("10.0.0.1".parse().unwrap()), Family::Ipv4);
        let s = SpeakerStatus {
            router_id: "10.0.0.1".parse().unwrap(),
            as_number: 64512,
            up_since: SystemTime::UNIX_EPOCH,
            graceful_restart_in_progress: false,
            peers: vec![peer(), {
                let mut p = peer();
                p.family = Family::Ipv6;
                p
            }],
        };
        assert_eq!(s.peers_of(Family::Ipv4).count(), 1);
        assert_eq!(s.peers_of(Family::Ipv6).count(), 1);
    }
}
