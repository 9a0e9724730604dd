//! Per-peer session configuration and the OPEN we send.

use std::net::Ipv4Addr;
use std::time::Duration;

use calico_bgp_packet::{
    AddPathFamily, Capability, Family, GracefulRestart, GracefulRestartFamily, Open,
};

/// Our graceful restart capability (RFC 4724 §3, RFC 8538).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Restart time we advertise, in seconds (12 bits). Calico: `BGPPeer.maxRestartTime` or
    /// `BGPConfiguration.nodeMeshMaxRestartTime`, BIRD's default 120 s otherwise.
    pub restart_time: u16,
    /// Restart State (R) bit: set while we come back from our own restart, so peers do not
    /// wait for our End-of-RIB before sending theirs (RFC 4724 §4.1).
    pub restart_state: bool,
    /// Forwarding State (F) bit for every advertised family: we kept the kernel routes.
    pub forwarding_state: bool,
    /// Advertise the N bit (RFC 8538): NOTIFICATIONs other than Hard Reset also keep routes.
    pub notification: bool,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            restart_time: 120,
            restart_state: false,
            forwarding_state: true,
            notification: true,
        }
    }
}

/// Everything a session needs to know about the peer and ourselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our AS (Calico default 64512).
    pub local_as: u32,
    /// The AS the peer must announce (BGPPeer `asNumber`, or the node's AS for mesh peers).
    pub peer_as: u32,
    /// Our BGP identifier (Calico's router id: the node's IPv4 address by default).
    pub router_id: Ipv4Addr,
    /// Hold time we propose, in seconds (0 or at least 3). BIRD's default is 240.
    pub hold_time: u16,
    /// Keepalive interval override (BGPPeer `keepaliveTime`); `None` = negotiated hold / 3.
    pub keepalive_time: Option<u16>,
    /// Hold time while waiting for the peer's OPEN (RFC 4271 §8.2.2: "a large value",
    /// 4 minutes suggested).
    pub open_hold_time: Duration,
    /// ConnectRetryTimer (BIRD `connect retry time 5`).
    pub connect_retry_time: Duration,
    /// Wait in Active after every (re)start before the first outbound attempt (BIRD
    /// `connect delay time 2` in Calico's template): it gives a peer that connects to us a
    /// head start and so avoids most collisions. Zero connects at once.
    pub connect_delay: Duration,
    /// Listen only, never connect. Calico's mesh rule: the side whose peer address is
    /// greater (as a string) is passive (bgp.md §2.2).
    pub passive: bool,
    /// Restart automatically after an error (DampPeerOscillations-style back-off).
    pub automatic_restart: bool,
    /// First idle hold time after an error (BIRD `error wait time 5,30`: 5 s).
    pub idle_hold_time: Duration,
    /// Largest idle hold time; it doubles per error up to this (30 s).
    pub idle_hold_max: Duration,
    /// A session that stayed Established this long resets the back-off (BIRD's
    /// `error forget time`, 300 s).
    pub error_forget_time: Duration,
    /// Families we advertise with the multiprotocol capability (RFC 4760).
    pub families: Vec<Family>,
    /// Capabilities the peer must advertise, else Unsupported Capability (2/7, RFC 5492 §5).
    /// `Multiprotocol(f)` is satisfied when `f` is among the peer's families (IPv4 unicast
    /// is implied when the peer sends no multiprotocol capability); any other entry when the
    /// peer sent a capability with the same code.
    pub required_capabilities: Vec<Capability>,
    /// Advertise route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Advertise the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// Advertise extended messages (RFC 8654).
    pub extended_message: bool,
    /// ADD-PATH modes we advertise (RFC 7911); empty = none. Calico sets `add paths on`.
    pub add_path: Vec<AddPathFamily>,
    /// Graceful restart; `None` = not advertised, and we are no helper either.
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Honour RFC 7606 AFI/SAFI-disable (RFC 4760 §7) by handing the UPDATE to the RIB,
    /// which must then drop and ignore that family from this peer. Off: such errors reset
    /// the session, the fallback RFC 4760 §7 allows for speakers that do not implement it.
    pub afi_safi_disable: bool,
    /// How long stale routes wait for End-of-RIB after the peer came back (FRR's
    /// `stalepath-time` default, 360 s).
    pub stale_routes_time: Duration,
}

impl SessionConfig {
    /// A configuration with Calico's defaults for the given ASes and router id: IPv4 and
    /// IPv6 unicast, IPv4 unicast required, route refresh, 4-octet AS, graceful restart.
    pub fn new(local_as: u32, peer_as: u32, router_id: Ipv4Addr) -> SessionConfig {
        SessionConfig {
            local_as,
            peer_as,
            router_id,
            hold_time: 240,
            keepalive_time: None,
            open_hold_time: Duration::from_secs(240),
            connect_retry_time: Duration::from_secs(5),
            connect_delay: Duration::from_secs(2),
            passive: false,
            automatic_restart: true,
            idle_hold_time: Duration::from_secs(5),
            idle_hold_max: Duration::from_secs(30),
            error_forget_time: Duration::from_secs(300),
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            required_capabilities: vec![Capability::Multiprotocol(Family::IPV4_UNICAST)],
            route_refresh: true,
            four_octet_as: true,
            extended_message: false,
            add_path: Vec::new(),
            graceful_restart: Some(GracefulRestartConfig::default()),
            afi_safi_disable: false,
            stale_routes_time: Duration::from_secs(360),
        }
    }

    /// The OPEN this configuration sends.
    pub fn open(&self) -> Open {
        let mut caps: Vec<Capability> = self
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        if self.route_refresh {
            caps.push(Capability::RouteRefresh);
        }
        if self.extended_message {
            caps.push(Capability::ExtendedMessage);
        }
        if let Some(gr) = &self.graceful_restart {
            caps.push(Capability::GracefulRestart(GracefulRestart {
                restart_state: gr.restart_state,
                notification: gr.notification,
                restart_time: gr.restart_time.min(0x0fff),
                families: self
                    .families
                    .iter()
                    .map(|f| GracefulRestartFamily {
                        family: *f,
                        forwarding_state: gr.forwarding_state,
                    })
                    .collect(),
            }));
        }
        if self.four_octet_as {
            caps.push(Capability::FourOctetAs(self.local_as));
        }
        if !self.add_path.is_empty() {
            caps.push(Capability::AddPath(self.add_path.clone()));
        }
        Open::new(self.local_as, self.hold_time, self.router_id, caps)
    }
}
