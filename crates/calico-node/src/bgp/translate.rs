//! Pure: a node's confd-equivalent plans (`calico_bgp_config::NodeBgpPlan`, IPv4 and IPv6)
//! become the speaker's configuration, the way confd's `bird.cfg` / `bird6.cfg` become BIRD
//! protocols. One speaker serves both families: IPv4 peers carry IPv4 routes and IPv6 peers
//! IPv6 routes, as Calico's separate `bird` and `bird6` do.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use calico_bgp::rib::NextHopMode;
use calico_bgp_config::{NextHop, NodeBgpPlan, PeerPlan, StaticRoute, TtlSecurity};
use calico_bgp_speaker::speaker::{PeerSpec, SpeakerConfig};
use ipnet::IpNet;

/// BIRD's default `graceful restart time`.
const DEFAULT_RESTART_TIME: u16 = 120;

/// What the speaker and the FIB writer must do for this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub speaker: SpeakerConfig,
    /// `route <peer>/32 via <reachableBy>` statics: kernel routes so a peer behind a gateway
    /// is reachable.
    pub kernel_statics: Vec<(IpNet, IpAddr)>,
    /// Things confd would configure that this speaker does not do, for the log.
    pub warnings: Vec<String>,
}

/// Why there is nothing to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("node {0} has no IPv4 address and CALICO_ROUTER_ID is not set: BGP needs a router id")]
    NoRouterId(String),
}

/// Builds the speaker configuration from the node's plans. `workloads` are this node's
/// workload addresses: those outside every affine block are borrowed and advertised as
/// host routes (what BIRD does by learning the kernel's /32 workload routes).
pub fn translate(
    v4: &NodeBgpPlan,
    v6: &NodeBgpPlan,
    workloads: &[IpNet],
) -> Result<Translated, TranslateError> {
    let router_id = v4
        .router_id
        .or(v6.router_id)
        .ok_or_else(|| TranslateError::NoRouterId(v4.node_name.clone()))?;
    let mut warnings = Vec::new();
    let mut peers = Vec::new();
    let mut cluster_id: Option<Ipv4Addr> = None;
    for plan in [v4, v6] {
        if !plan.family_enabled {
            continue;
        }
        for p in &plan.peers {
            if p.rr_client
                && cluster_id.is_none()
                && let Some(id) = &p.rr_cluster_id
            {
                match id.parse::<Ipv4Addr>() {
                    Ok(a) => cluster_id = Some(a),
                    Err(_) => warnings.push(format!(
                        "routeReflectorClusterID {id:?} is not an IPv4 address; not reflecting"
                    )),
                }
            }
            if let TtlSecurity::On(hops) = p.ttl_security {
                warnings.push(format!(
                    "{}: ttlSecurity {hops} (RFC 5082 GTSM) is not applied by this speaker",
                    p.name
                ));
            }
            peers.push(peer_spec(p, plan));
        }
    }
    // One session per peer address: a BGPPeer that names the same address twice (e.g. a
    // global and a node-specific peering to one router) keeps the first, as BIRD would
    // refuse the duplicate protocol's neighbor.
    let mut seen = BTreeSet::new();
    peers.retain(|p: &PeerSpec| {
        let fresh = seen.insert(p.address);
        if !fresh {
            warnings.push(format!(
                "{}: a second session to {} is not started (one session per peer address)",
                p.name, p.address
            ));
        }
        fresh
    });

    let mut originated = BTreeSet::new();
    let mut blocks = Vec::new();
    let mut kernel_statics = Vec::new();
    for plan in [v4, v6] {
        for s in &plan.statics {
            match s {
                StaticRoute::Blackhole(net) => {
                    originated.insert(*net);
                    blocks.push(*net);
                }
                StaticRoute::Via { dst, via } => kernel_statics.push((*dst, *via)),
            }
        }
    }
    for w in workloads {
        let host = match w.addr() {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let enabled = match w.addr() {
            IpAddr::V4(_) => v4.family_enabled,
            IpAddr::V6(_) => v6.family_enabled,
        };
        if enabled && w.prefix_len() == host && !blocks.iter().any(|b| b.contains(w)) {
            originated.insert(*w);
        }
    }

    let listen = listen_address(v4, v6);
    Ok(Translated {
        speaker: SpeakerConfig {
            router_id,
            local_as: v4.as_number,
            cluster_id,
            listen: Some(listen),
            peers,
            originated,
        },
        kernel_statics,
        warnings,
    })
}

/// confd: `listen bgp address <nodeIP> port <p>` with `bindMode: NodeIP`; otherwise every
/// address (dual-stack when the node has IPv6).
fn listen_address(v4: &NodeBgpPlan, v6: &NodeBgpPlan) -> SocketAddr {
    let port = v4.listen_port.or(v6.listen_port).unwrap_or(179);
    if let Some(a) = v4.listen_address.or(v6.listen_address) {
        return SocketAddr::new(a, port);
    }
    if v6.family_enabled {
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
    } else {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
    }
}

fn peer_spec(p: &PeerPlan, plan: &NodeBgpPlan) -> PeerSpec {
    let mut s = PeerSpec::new(p.name.clone(), p.ip, p.as_number);
    s.port = p.port.unwrap_or(179);
    s.local_as = p.local_as.filter(|a| *a != plan.as_number);
    s.source_address = p.source_address;
    s.passive = p.passive;
    s.rr_client = p.rr_client;
    s.password = p.password.clone();
    s.restart_time = p
        .graceful_restart_time
        .map_or(DEFAULT_RESTART_TIME, |t| t.min(u32::from(u16::MAX)) as u16);
    s.keepalive_time = p.keepalive_time.map(|t| t.min(u32::from(u16::MAX)) as u16);
    if let Some(k) = s.keepalive_time {
        // BIRD derives the hold time from an explicit keepalive time only when the hold
        // time is unset; keep hold ≥ 3 × keepalive so the session does not flap.
        s.hold_time = s.hold_time.max(k.saturating_mul(3));
    }
    s.next_hop_mode = match p.next_hop {
        NextHop::Auto => NextHopMode::Auto,
        NextHop::SelfAddr => NextHopMode::SelfHop,
        NextHop::Keep => NextHopMode::Keep,
    };
    s.allow_local_as = p.allow_local_as.unwrap_or(0);
    // BIRD template timers: `connect delay time 2; connect retry time 5; error wait time 5,30`.
    s.connect_delay = Duration::from_secs(2);
    s.connect_retry = Duration::from_secs(5);
    s.idle_hold = Duration::from_secs(5);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use calico_bgp_config::{DebugMode, IpFamily, PeerKind};

    fn plan(family: IpFamily, own: Option<&str>) -> NodeBgpPlan {
        NodeBgpPlan {
            family,
            node_name: "node-1".into(),
            family_enabled: own.is_some(),
            own_address: own.map(|a| a.parse().unwrap()),
            router_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
            as_number: 64512,
            listen_address: None,
            listen_port: None,
            normal_route_priority: 1024,
            debug: DebugMode::Default,
            direct_interfaces_excluded: Vec::new(),
            peers: Vec::new(),
            statics: Vec::new(),
            communities: Vec::new(),
            pools: Vec::new(),
            ibgp_reject_interfaces: Vec::new(),
            wireguard_rejected_next_hops: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn peer(name: &str, ip: &str, asn: u32) -> PeerPlan {
        PeerPlan {
            name: name.into(),
            kind: PeerKind::Mesh,
            ip: ip.parse().unwrap(),
            port: None,
            as_number: asn,
            local_as: None,
            source_address: Some("10.0.0.1".parse().unwrap()),
            passive: false,
            rr_client: false,
            rr_cluster_id: None,
            password: None,
            ttl_security: TtlSecurity::Off,
            graceful_restart_time: None,
            keepalive_time: None,
            next_hop: NextHop::Auto,
            allow_local_as: None,
            internal: true,
            import_filters: Vec::new(),
            export_filters: Vec::new(),
            reachable_by: None,
        }
    }

    #[test]
    fn mesh_blocks_and_borrowed_addresses() {
        let mut v4 = plan(IpFamily::V4, Some("10.0.0.1"));
        let mut p2 = peer("Mesh_10_0_0_2", "10.0.0.2", 64512);
        p2.passive = true;
        v4.peers = vec![p2, peer("Mesh_10_0_0_3", "10.0.0.3", 64512)];
        v4.statics = vec![StaticRoute::Blackhole("10.65.0.0/26".parse().unwrap())];
        let v6 = plan(IpFamily::V6, None);
        let workloads: Vec<IpNet> = ["10.65.0.5/32", "10.65.9.7/32", "fd00::1/128"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let t = translate(&v4, &v6, &workloads).unwrap();
        let s = &t.speaker;
        assert_eq!(s.router_id, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(s.local_as, 64512);
        assert_eq!(s.listen, Some("0.0.0.0:179".parse().unwrap()));
        assert_eq!(s.peers.len(), 2);
        assert!(s.peers[0].passive && !s.peers[1].passive);
        assert_eq!(s.peers[0].name, "Mesh_10_0_0_2");
        assert_eq!(s.peers[0].source_address, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(s.peers[0].restart_time, 120);
        // The block, and the borrowed address outside it; not the one inside it, and not
        // the IPv6 one on a node without IPv6.
        let want: BTreeSet<IpNet> = ["10.65.0.0/26", "10.65.9.7/32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(s.originated, want);
    }

    #[test]
    fn peer_knobs_map_to_the_speaker() {
        let mut v4 = plan(IpFamily::V4, Some("10.0.0.1"));
        let mut p = peer("Global_192_0_2_1_port_1179", "192.0.2.1", 65000);
        p.port = Some(1179);
        p.password = Some("pw".into());
        p.graceful_restart_time = Some(300);
        p.keepalive_time = Some(100);
        p.next_hop = NextHop::Keep;
        p.allow_local_as = Some(2);
        p.local_as = Some(65100);
        p.ttl_security = TtlSecurity::On(1);
        v4.peers = vec![p];
        v4.listen_port = Some(1790);
        let t = translate(&v4, &plan(IpFamily::V6, None), &[]).unwrap();
        let s = &t.speaker.peers[0];
        assert_eq!(s.port, 1179);
        assert_eq!(s.password.as_deref(), Some("pw"));
        assert_eq!(s.restart_time, 300);
        assert_eq!(s.keepalive_time, Some(100));
        assert_eq!(s.hold_time, 300);
        assert_eq!(s.next_hop_mode, NextHopMode::Keep);
        assert_eq!(s.allow_local_as, 2);
        assert_eq!(s.local_as, Some(65100));
        assert_eq!(t.speaker.listen, Some("0.0.0.0:1790".parse().unwrap()));
        assert!(
            t.warnings.iter().any(|w| w.contains("ttlSecurity")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn route_reflector_and_dual_stack() {
        let mut v4 = plan(IpFamily::V4, Some("10.0.0.1"));
        let mut c = peer("Node_10_0_0_5", "10.0.0.5", 64512);
        c.rr_client = true;
        c.rr_cluster_id = Some("244.0.0.1".into());
        v4.peers = vec![c];
        let mut v6 = plan(IpFamily::V6, Some("fd00::1"));
        v6.peers = vec![peer("Mesh_fd00__2", "fd00::2", 64512)];
        v6.statics = vec![StaticRoute::Blackhole("fd00:65::/122".parse().unwrap())];
        let t = translate(&v4, &v6, &[]).unwrap();
        assert_eq!(t.speaker.cluster_id, Some(Ipv4Addr::new(244, 0, 0, 1)));
        assert!(t.speaker.peers[0].rr_client);
        assert_eq!(t.speaker.listen, Some("[::]:179".parse().unwrap()));
        assert_eq!(
            t.speaker.peers[1].families,
            vec![calico_bgp_packet::Family::IPV6_UNICAST]
        );
        assert!(
            t.speaker
                .originated
                .contains(&"fd00:65::/122".parse().unwrap())
        );
    }

    #[test]
    fn no_router_id_is_an_error() {
        let mut v4 = plan(IpFamily::V4, None);
        v4.router_id = None;
        let mut v6 = plan(IpFamily::V6, Some("fd00::1"));
        v6.router_id = None;
        assert_eq!(
            translate(&v4, &v6, &[]),
            Err(TranslateError::NoRouterId("node-1".into()))
        );
    }

    #[test]
    fn duplicate_peer_addresses_keep_the_first() {
        let mut v4 = plan(IpFamily::V4, Some("10.0.0.1"));
        v4.peers = vec![
            peer("Global_192_0_2_1", "192.0.2.1", 65000),
            peer("Node_192_0_2_1", "192.0.2.1", 65000),
        ];
        let t = translate(&v4, &plan(IpFamily::V6, None), &[]).unwrap();
        assert_eq!(t.speaker.peers.len(), 1);
        assert_eq!(t.speaker.peers[0].name, "Global_192_0_2_1");
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("one session per peer address"))
        );
    }
}
