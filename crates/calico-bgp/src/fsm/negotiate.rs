//! Checking the peer's OPEN against our configuration (RFC 4271 §6.2, RFC 5492, RFC 6793)
//! and working out what the session negotiated.

use std::net::Ipv4Addr;
use std::time::Duration;

use calico_bgp_packet::{
    AS_TRANS, Capability, CodecContext, DecodeError, Family, GracefulRestartFamily, Notification,
    Open, capability_code,
};

use super::ConnId;
use super::config::SessionConfig;

/// Why the peer's OPEN is refused. Each maps to the NOTIFICATION of RFC 4271 §6.2 /
/// RFC 5492 §5 ([`OpenError::notification`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The peer announced another AS than configured (2/2).
    #[error("OPEN: peer AS {got} does not match the configured AS {expected}")]
    BadPeerAs {
        /// The AS the OPEN announced (4-octet capability, else the 2-octet field).
        got: u32,
        /// The configured peer AS.
        expected: u32,
    },
    /// The 2-octet AS field contradicts the 4-octet AS capability (2/2, RFC 6793 §4.1).
    #[error("OPEN: 2-octet AS {my_as} contradicts the 4-octet AS capability {four_octet}")]
    InconsistentAs {
        /// The 2-octet field.
        my_as: u16,
        /// The capability value.
        four_octet: u32,
    },
    /// The BGP identifier is 0 or, for an internal peer, equal to ours (2/3, RFC 6286 §2.2).
    #[error("OPEN: bad BGP identifier {0}")]
    BadBgpIdentifier(Ipv4Addr),
    /// Hold time 1 or 2 (2/6).
    #[error("OPEN: unacceptable hold time {0}s (must be 0 or at least 3)")]
    UnacceptableHoldTime(u16),
    /// A required capability is missing (2/7; data names it).
    #[error("OPEN: the peer lacks the required capability {0:?}")]
    MissingCapability(Capability),
}

impl OpenError {
    /// The NOTIFICATION to send.
    pub fn notification(&self) -> Notification {
        match self {
            OpenError::BadPeerAs { got, .. } => DecodeError::BadPeerAs(*got).notification(),
            OpenError::InconsistentAs { four_octet, .. } => {
                DecodeError::BadPeerAs(*four_octet).notification()
            }
            OpenError::BadBgpIdentifier(id) => DecodeError::BadBgpIdentifier(*id).notification(),
            OpenError::UnacceptableHoldTime(h) => {
                DecodeError::UnacceptableHoldTime(*h).notification()
            }
            OpenError::MissingCapability(c) => DecodeError::UnsupportedCapability {
                code: c.code(),
                value: c.value(),
            }
            .notification(),
        }
    }
}

/// The peer's graceful restart capability as it matters to a helper (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerGracefulRestart {
    /// How long we keep its routes when the session drops.
    pub restart_time: Duration,
    /// The peer has just restarted (R bit).
    pub restart_state: bool,
    /// Both sides set the N bit (RFC 8538): NOTIFICATIONs other than Hard Reset keep routes.
    pub notification: bool,
    /// Families the peer preserves, with their forwarding-state bit.
    pub families: Vec<GracefulRestartFamily>,
}

/// What one session negotiated; handed to the speaker in [`super::Action::SessionUp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The connection the session runs on.
    pub conn: ConnId,
    /// The OPEN we sent.
    pub local_open: Open,
    /// The OPEN the peer sent.
    pub remote_open: Open,
    /// The peer's AS (4-octet capability, else the 2-octet field).
    pub remote_as: u32,
    /// The peer's BGP identifier.
    pub remote_id: Ipv4Addr,
    /// min(our hold time, theirs); 0 = no hold timer and no keepalives.
    pub hold_time: u16,
    /// Keepalive interval in seconds: hold / 3 (or the configured keepalive, never more);
    /// 0 when the hold time is 0.
    pub keepalive_time: u16,
    /// Families both sides advertised (IPv4 unicast is implied for a side that sent no
    /// multiprotocol capability at all, RFC 4760 §8 practice).
    pub families: Vec<Family>,
    /// The peer accepts ROUTE-REFRESH from us (RFC 2918).
    pub peer_route_refresh: bool,
    /// We accept ROUTE-REFRESH from the peer.
    pub local_route_refresh: bool,
    /// Both sides speak 4-octet AS (RFC 6793).
    pub four_octet_as: bool,
    /// Decoding context for what the peer sends.
    pub rx: CodecContext,
    /// Encoding context for what we send.
    pub tx: CodecContext,
    /// The peer's graceful restart capability, when both sides advertised one (we are its
    /// helper only when we advertised GR ourselves).
    pub peer_graceful_restart: Option<PeerGracefulRestart>,
}

impl Negotiated {
    /// Whether routes survive the loss of this session and how: `Some` when the peer does
    /// graceful restart.
    pub fn graceful_restart(&self) -> Option<&PeerGracefulRestart> {
        self.peer_graceful_restart.as_ref()
    }
}

/// Families a side advertises; IPv4 unicast when it sent no multiprotocol capability.
fn effective_families(open: &Open) -> Vec<Family> {
    let mp = open.multiprotocol();
    if mp.is_empty() {
        vec![Family::IPV4_UNICAST]
    } else {
        mp
    }
}

/// Checks the peer's OPEN (`remote`) against `config` (whose OPEN we sent) and negotiates
/// the session. The codec already rejected version ≠ 4, AS 0, identifier 0.0.0.0 and hold
/// times 1–2 ([`calico_bgp_packet::decode`]); they are checked again here because an
/// [`Open`] can also be built in code.
pub fn validate_open(
    config: &SessionConfig,
    remote: &Open,
    conn: ConnId,
) -> Result<Negotiated, OpenError> {
    let local = config.open();
    // RFC 6793 §4.1: a 4-octet speaker puts its AS in the 2-octet field when it fits, else
    // AS_TRANS; anything else is inconsistent. AS_TRANS is tolerated for a small AS too.
    let remote_as = remote.asn();
    if let Some(four) = remote.four_octet_as() {
        let fits = u16::try_from(four).ok();
        if remote.my_as != AS_TRANS && fits != Some(remote.my_as) {
            return Err(OpenError::InconsistentAs {
                my_as: remote.my_as,
                four_octet: four,
            });
        }
    }
    if remote_as != config.peer_as || remote_as == 0 {
        return Err(OpenError::BadPeerAs {
            got: remote_as,
            expected: config.peer_as,
        });
    }
    if remote.bgp_id.is_unspecified()
        || (remote.bgp_id == config.router_id && remote_as == config.local_as)
    {
        return Err(OpenError::BadBgpIdentifier(remote.bgp_id));
    }
    if remote.hold_time == 1 || remote.hold_time == 2 {
        return Err(OpenError::UnacceptableHoldTime(remote.hold_time));
    }
    let remote_families = effective_families(remote);
    for req in &config.required_capabilities {
        let present = match req {
            Capability::Multiprotocol(f) => remote_families.contains(f),
            other => remote.has_capability(other.code()),
        };
        if !present {
            return Err(OpenError::MissingCapability(req.clone()));
        }
    }
    let local_families = effective_families(&local);
    let families: Vec<Family> = local_families
        .iter()
        .copied()
        .filter(|f| remote_families.contains(f))
        .collect();
    let hold_time = config.hold_time.min(remote.hold_time);
    let keepalive_time = if hold_time == 0 {
        0
    } else {
        let third = (hold_time / 3).max(1);
        config.keepalive_time.map_or(third, |k| k.clamp(1, third))
    };
    let (rx, tx) = Open::negotiate(&local, remote);
    let peer_graceful_restart = match (&config.graceful_restart, remote.graceful_restart()) {
        (Some(ours), Some(theirs)) => Some(PeerGracefulRestart {
            restart_time: Duration::from_secs(u64::from(theirs.restart_time)),
            restart_state: theirs.restart_state,
            notification: ours.notification && theirs.notification,
            families: theirs
                .families
                .iter()
                .copied()
                .filter(|f| families.contains(&f.family))
                .collect(),
        }),
        _ => None,
    };
    Ok(Negotiated {
        conn,
        remote_as,
        remote_id: remote.bgp_id,
        hold_time,
        keepalive_time,
        families,
        peer_route_refresh: remote.has_capability(capability_code::ROUTE_REFRESH)
            || remote.has_capability(capability_code::ENHANCED_ROUTE_REFRESH),
        local_route_refresh: config.route_refresh,
        four_octet_as: rx.four_octet_as,
        rx,
        tx,
        peer_graceful_restart,
        local_open: local,
        remote_open: remote.clone(),
    })
}
