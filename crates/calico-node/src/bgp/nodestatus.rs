//! CalicoNodeStatus: when a user creates one for this node (`spec.node`), calico-node fills in
//! its `status` every `updatePeriodSeconds` with the requested classes, as Calico's
//! `node/pkg/status` reporter does from BIRD's `show status` / `show protocols` /
//! `show route`: `Agent` (daemon state, version, router id, boot and reconfiguration times),
//! `BGP` (peers per family with type, state and since) and `Routes` (Loc-RIB paths: `FIB` for
//! the best path, `RIB` for the others, learned from `NodeMesh` / `BGPPeer` with the peer IP,
//! or `Static` for our own). The status is written only when it changed; `updatePeriodSeconds:
//! 0` stops updates.
//!
//! The mapping here is pure; [`report`] is the thin datastore shell.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use calico_api::nodestatus::{
    BGPDaemonStatus, CalicoNodeBGPRouteStatus, CalicoNodeBGPStatus, CalicoNodePeer,
    CalicoNodeRoute, CalicoNodeRouteLearnedFrom, CalicoNodeStatus,
};
use calico_bgp::fsm::State;
use calico_bgp_speaker::speaker::{RibEntry, Speaker, SpeakerStatus};
use calico_client::Client;

use super::status::{bgp_state, peer_type};

/// What BIRD reports as its version; ours names the project.
pub const DAEMON_VERSION: &str = concat!("calico-rs-bgp v", env!("CARGO_PKG_VERSION"));

/// BIRD's `show status` time format (`%Y-%m-%d %H:%M:%S`, as Calico's bird.cfg sets
/// `timeformat base iso long`).
fn iso_long(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn peer_type_name(name: &str) -> &'static str {
    match peer_type(name) {
        calico_bgp_status::PeerType::NodeMesh => "NodeMesh",
        calico_bgp_status::PeerType::Global => "GlobalPeer",
        _ => "NodePeer",
    }
}

/// Fills the requested `classes` of `status` from the speaker's state (both families).
pub fn populate(
    classes: &[String],
    speaker: &SpeakerStatus,
    routes: &[RibEntry],
    reconfigured: SystemTime,
    status: &mut calico_api::nodestatus::CalicoNodeStatusStatus,
) {
    let names: HashMap<IpAddr, &str> = speaker
        .peers
        .iter()
        .map(|p| (p.spec.address, p.spec.name.as_str()))
        .collect();
    for class in classes {
        match class.as_str() {
            "Agent" => {
                let daemon = BGPDaemonStatus {
                    state: if speaker.initial_sync_complete {
                        "Ready".into()
                    } else {
                        "NotReady".into()
                    },
                    version: DAEMON_VERSION.into(),
                    router_id: speaker.router_id.map(|r| r.to_string()).unwrap_or_default(),
                    last_boot_time: iso_long(speaker.started),
                    last_reconfiguration_time: iso_long(reconfigured),
                };
                status.agent.bird_v4 = daemon.clone();
                status.agent.bird_v6 = daemon;
            }
            "BGP" => {
                let mut bgp = CalicoNodeBGPStatus::default();
                for p in &speaker.peers {
                    let established = p.session.state == State::Established;
                    let peer = CalicoNodePeer {
                        peer_ip: p.spec.address.to_string(),
                        type_: peer_type_name(&p.spec.name).into(),
                        state: bgp_state(p.session.state).into(),
                        since: calico_bgp_status::bird::protocol_time_local(
                            p.session.since,
                            SystemTime::now(),
                        ),
                    };
                    if p.spec.address.is_ipv4() {
                        bgp.peers_v4.push(peer);
                        *if established {
                            &mut bgp.number_established_v4
                        } else {
                            &mut bgp.number_not_established_v4
                        } += 1;
                    } else {
                        bgp.peers_v6.push(peer);
                        *if established {
                            &mut bgp.number_established_v6
                        } else {
                            &mut bgp.number_not_established_v6
                        } += 1;
                    }
                }
                status.bgp = bgp;
            }
            "Routes" => {
                let mut r = CalicoNodeBGPRouteStatus::default();
                for e in routes {
                    let learned_from = match e.from {
                        None => CalicoNodeRouteLearnedFrom {
                            source_type: "Static".into(),
                            peer_ip: String::new(),
                        },
                        Some(ip) => CalicoNodeRouteLearnedFrom {
                            source_type: match names.get(&ip).map(|n| peer_type_name(n)) {
                                Some("NodeMesh") => "NodeMesh".into(),
                                _ => "BGPPeer".into(),
                            },
                            peer_ip: ip.to_string(),
                        },
                    };
                    let route = CalicoNodeRoute {
                        type_: if e.best { "FIB".into() } else { "RIB".into() },
                        destination: e.prefix.to_string(),
                        gateway: e.next_hop.map(|g| g.to_string()).unwrap_or_default(),
                        interface: String::new(),
                        learned_from,
                    };
                    if e.prefix.addr().is_ipv4() {
                        r.routes_v4.push(route);
                    } else {
                        r.routes_v6.push(route);
                    }
                }
                status.routes = r;
            }
            other => tracing::warn!(class = other, "CalicoNodeStatus: unknown class; ignored"),
        }
    }
}

/// Per CalicoNodeStatus resource: when it was last written.
#[derive(Default)]
pub struct Reporter {
    last: HashMap<String, Instant>,
}

impl Reporter {
    /// Writes every due CalicoNodeStatus of `node`.
    pub async fn report(
        &mut self,
        client: &Client,
        node: &str,
        speaker: &Speaker,
        reconfigured: SystemTime,
    ) {
        let list = match client.list_as::<CalicoNodeStatus>(None).await {
            Ok((l, _)) => l,
            Err(e) => {
                tracing::debug!(error = %e, "CalicoNodeStatus: listing");
                return;
            }
        };
        let mine: Vec<CalicoNodeStatus> =
            list.into_iter().filter(|s| s.spec.node == node).collect();
        self.last
            .retain(|name, _| mine.iter().any(|s| s.metadata.name == *name));
        let mut snapshot: Option<(SpeakerStatus, Vec<RibEntry>)> = None;
        for res in mine {
            let period = res.spec.update_period_seconds.unwrap_or(10);
            if period == 0 {
                continue;
            }
            let due = self
                .last
                .get(&res.metadata.name)
                .is_none_or(|t| t.elapsed().as_secs() >= u64::from(period));
            if !due {
                continue;
            }
            if snapshot.is_none() {
                let (Ok(st), Ok(routes)) = (speaker.status().await, speaker.routes().await) else {
                    return;
                };
                snapshot = Some((st, routes));
            }
            let Some((st, routes)) = snapshot.as_ref() else {
                return;
            };
            let mut status = res.status.clone();
            populate(&res.spec.classes, st, routes, reconfigured, &mut status);
            self.last.insert(res.metadata.name.clone(), Instant::now());
            let mut unchanged = res.status.clone();
            unchanged.last_updated = status.last_updated.clone();
            if unchanged == status {
                continue;
            }
            status.last_updated = Some(calico_client::now_rfc3339());
            let mut updated = res.clone();
            updated.status = status;
            let resource = calico_api::resource::Resource::CalicoNodeStatus(updated);
            if let Err(e) = client.update(resource).await {
                // A conflict means the user changed it meanwhile: the next round catches up.
                tracing::debug!(name = %res.metadata.name, error = %e, "CalicoNodeStatus: update");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_bgp::rib::PeerStats;
    use calico_bgp_speaker::peer::PeerSnapshot;
    use calico_bgp_speaker::speaker::{PeerSpec, PeerStatus};
    use std::net::Ipv4Addr;

    fn peer(name: &str, ip: &str, state: State) -> PeerStatus {
        PeerStatus {
            spec: PeerSpec::new(name, ip.parse().unwrap(), 64512),
            session: PeerSnapshot {
                state,
                since: SystemTime::now(),
                last_error: None,
                connect_error: None,
                remote_id: None,
                remote_as: None,
            },
            routes: PeerStats::default(),
            messages: Default::default(),
        }
    }

    #[test]
    fn classes_are_filled_like_calicos_reporter() {
        let speaker = SpeakerStatus {
            router_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
            local_as: Some(64512),
            listening: None,
            started: SystemTime::UNIX_EPOCH,
            initial_sync_complete: true,
            peers: vec![
                peer("Mesh_10_0_0_2", "10.0.0.2", State::Established),
                peer("Global_192_0_2_1", "192.0.2.1", State::Active),
                peer("Node_fd00__9", "fd00::9", State::Established),
            ],
            loc_rib_routes: 2,
        };
        let routes = vec![
            RibEntry {
                prefix: "10.65.0.0/26".parse().unwrap(),
                next_hop: None,
                from: None,
                best: true,
            },
            RibEntry {
                prefix: "10.65.1.0/26".parse().unwrap(),
                next_hop: Some("10.0.0.2".parse().unwrap()),
                from: Some("10.0.0.2".parse().unwrap()),
                best: true,
            },
            RibEntry {
                prefix: "10.65.1.0/26".parse().unwrap(),
                next_hop: Some("192.0.2.1".parse().unwrap()),
                from: Some("192.0.2.1".parse().unwrap()),
                best: false,
            },
        ];
        let mut st = calico_api::nodestatus::CalicoNodeStatusStatus::default();
        let classes: Vec<String> = ["Agent", "BGP", "Routes"].map(String::from).to_vec();
        populate(&classes, &speaker, &routes, SystemTime::now(), &mut st);
        assert_eq!(st.agent.bird_v4.state, "Ready");
        assert_eq!(st.agent.bird_v4.router_id, "10.0.0.1");
        assert_eq!(
            (
                st.bgp.number_established_v4,
                st.bgp.number_not_established_v4
            ),
            (1, 1)
        );
        assert_eq!(st.bgp.number_established_v6, 1);
        assert_eq!(st.bgp.peers_v4[1].type_, "GlobalPeer");
        assert_eq!(st.bgp.peers_v4[1].state, "Active");
        assert_eq!(st.bgp.peers_v6[0].type_, "NodePeer");
        let r = &st.routes.routes_v4;
        assert_eq!(r[0].learned_from.source_type, "Static");
        assert_eq!(
            (r[1].type_.as_str(), r[1].learned_from.source_type.as_str()),
            ("FIB", "NodeMesh")
        );
        assert_eq!(
            (r[2].type_.as_str(), r[2].learned_from.source_type.as_str()),
            ("RIB", "BGPPeer")
        );
        assert_eq!(r[2].learned_from.peer_ip, "192.0.2.1");
        // Only the classes asked for.
        let mut only = calico_api::nodestatus::CalicoNodeStatusStatus::default();
        populate(
            &["BGP".to_string()],
            &speaker,
            &routes,
            SystemTime::now(),
            &mut only,
        );
        assert!(only.routes.routes_v4.is_empty() && only.agent.bird_v4.state.is_empty());
    }
}
