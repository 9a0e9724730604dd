//! The speaker's state in the shape `calicoctl node status` and the readiness probe read
//! (`calico-bgp-status`), with BIRD's words: protocol state `up`/`start`, the BGP state, and
//! BIRD 1.6's last-error texts in the info column.

use std::net::Ipv4Addr;
use std::time::SystemTime;

use calico_bgp::fsm::{DownReason, State};
use calico_bgp_speaker::speaker;
use calico_bgp_status::bird::LastError;
use calico_bgp_status::{Family, PeerStatus, PeerType, SpeakerStatus};

/// The BGP state name BIRD prints.
pub fn bgp_state(s: State) -> &'static str {
    match s {
        State::Idle => "Idle",
        State::Connect => "Connect",
        State::Active => "Active",
        State::OpenSent => "OpenSent",
        State::OpenConfirm => "OpenConfirm",
        State::Established => "Established",
    }
}

/// The peer type from confd's protocol name prefix.
pub fn peer_type(name: &str) -> PeerType {
    if name.starts_with("Mesh_") {
        PeerType::NodeMesh
    } else if name.starts_with("Global_") {
        PeerType::Global
    } else if name.starts_with("Local_Workload_") {
        PeerType::LocalWorkload
    } else {
        PeerType::NodeSpecific
    }
}

/// BIRD's last error for a session that is not up.
pub fn last_error(snap: &calico_bgp_speaker::peer::PeerSnapshot) -> Option<LastError> {
    if snap.state == State::Established {
        return None;
    }
    if let Some(errno) = snap.connect_error {
        return Some(LastError::Socket(Some(errno)));
    }
    match snap.last_error.as_ref()? {
        DownReason::ManualStop => None,
        DownReason::HoldTimerExpired => Some(LastError::Sent {
            code: 4,
            subcode: 0,
        }),
        DownReason::ConnectionFailed | DownReason::PeerReconnected => Some(LastError::Socket(None)),
        DownReason::NotificationReceived(n) => Some(LastError::Received {
            code: n.code,
            subcode: n.subcode,
        }),
        DownReason::NotificationSent(n) => Some(LastError::Sent {
            code: n.code,
            subcode: n.subcode,
        }),
    }
}

/// Converts the speaker's status for the status socket.
pub fn convert(s: &speaker::SpeakerStatus) -> SpeakerStatus {
    let peers = s
        .peers
        .iter()
        .map(|p| PeerStatus {
            name: p.spec.name.clone(),
            peer_address: p.spec.address,
            port: p.spec.port,
            peer_type: peer_type(&p.spec.name),
            state: if p.session.state == State::Established {
                "up".into()
            } else {
                "start".into()
            },
            bgp_state: bgp_state(p.session.state).into(),
            since: p.session.since,
            info: last_error(&p.session).map(|e| e.info()).unwrap_or_default(),
            routes_imported: p.routes.imported as u64,
            routes_exported: p.routes.exported as u64,
            family: Family::of(p.spec.address),
        })
        .collect();
    SpeakerStatus {
        router_id: s.router_id.unwrap_or(Ipv4Addr::UNSPECIFIED),
        as_number: s.local_as.unwrap_or(0),
        up_since: s.started,
        graceful_restart_in_progress: !s.initial_sync_complete,
        peers,
    }
}

/// Calico's `-bird-ready` rule (`node/pkg/health/bird`): not ready while graceful-restart
/// recovery runs or while any configured peer is not Established; the message names them.
pub fn readiness(s: &SpeakerStatus) -> Result<(), String> {
    if s.graceful_restart_in_progress {
        return Err("BGP graceful restart recovery in progress".into());
    }
    let down: Vec<String> = s
        .peers
        .iter()
        .filter(|p| p.bgp_state != "Established")
        .map(|p| p.peer_address.to_string())
        .collect();
    if down.is_empty() {
        Ok(())
    } else {
        Err(format!("BGP not established with {}", down.join(",")))
    }
}

/// An empty status for before the first plan.
pub fn not_configured(started: SystemTime) -> SpeakerStatus {
    SpeakerStatus {
        router_id: Ipv4Addr::UNSPECIFIED,
        as_number: 0,
        up_since: started,
        graceful_restart_in_progress: false,
        peers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_bgp::rib::PeerStats;
    use calico_bgp_packet::Notification;
    use calico_bgp_speaker::peer::PeerSnapshot;
    use calico_bgp_speaker::speaker::PeerSpec;

    fn snap(state: State) -> PeerSnapshot {
        PeerSnapshot {
            state,
            since: SystemTime::UNIX_EPOCH,
            last_error: None,
            connect_error: None,
            remote_id: None,
            remote_as: None,
        }
    }

    #[test]
    fn info_column_uses_birds_words() {
        let mut s = snap(State::Active);
        s.connect_error = Some(111);
        assert_eq!(last_error(&s).unwrap().info(), "Socket: Connection refused");
        let mut s = snap(State::Idle);
        s.last_error = Some(DownReason::NotificationReceived(Notification::new(
            6,
            2,
            vec![],
        )));
        assert_eq!(
            last_error(&s).unwrap().info(),
            "Received: Administrative shutdown"
        );
        s.last_error = Some(DownReason::HoldTimerExpired);
        assert_eq!(
            last_error(&s).unwrap().info(),
            "BGP Error: Hold timer expired"
        );
        assert_eq!(last_error(&snap(State::Established)), None);
    }

    #[test]
    fn status_and_readiness() {
        let mut spec = PeerSpec::new("Mesh_10_0_0_2", "10.0.0.2".parse().unwrap(), 64512);
        spec.port = 179;
        let mut st = speaker::SpeakerStatus {
            router_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
            local_as: Some(64512),
            listening: None,
            started: SystemTime::UNIX_EPOCH,
            initial_sync_complete: true,
            peers: vec![speaker::PeerStatus {
                spec: spec.clone(),
                session: snap(State::Established),
                messages: Default::default(),
                routes: PeerStats {
                    imported: 3,
                    exported: 2,
                    ..PeerStats::default()
                },
            }],
            loc_rib_routes: 5,
        };
        let c = convert(&st);
        assert_eq!(c.peers[0].peer_type, PeerType::NodeMesh);
        assert_eq!(c.peers[0].state, "up");
        assert_eq!(c.peers[0].bgp_state, "Established");
        assert_eq!(
            (c.peers[0].routes_imported, c.peers[0].routes_exported),
            (3, 2)
        );
        assert_eq!(readiness(&c), Ok(()));
        st.peers[0].session = snap(State::Connect);
        assert_eq!(
            readiness(&convert(&st)),
            Err("BGP not established with 10.0.0.2".into())
        );
        st.initial_sync_complete = false;
        assert!(
            readiness(&convert(&st))
                .unwrap_err()
                .contains("graceful restart")
        );
        assert_eq!(peer_type("Global_192_0_2_1"), PeerType::Global);
        assert_eq!(peer_type("Node_10_0_0_9_port_1790"), PeerType::NodeSpecific);
    }
}
