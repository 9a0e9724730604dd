//! OPEN message (RFC 4271 §4.2) with optional parameters (RFC 5492 capabilities, RFC 9072
//! extended optional parameters length).

use std::net::Ipv4Addr;

use crate::error::{DecodeError, EncodeError};
use crate::types::{AS_TRANS, CodecContext, Family, PeerKind, be16, be32, put_u16, put_u32};

/// Capability codes (IANA "Capability Codes").
pub mod capability_code {
    /// Multiprotocol extensions (RFC 4760).
    pub const MULTIPROTOCOL: u8 = 1;
    /// Route refresh (RFC 2918).
    pub const ROUTE_REFRESH: u8 = 2;
    /// Extended next hop encoding (RFC 8950).
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    /// Extended message (RFC 8654).
    pub const EXTENDED_MESSAGE: u8 = 6;
    /// Graceful restart (RFC 4724).
    pub const GRACEFUL_RESTART: u8 = 64;
    /// 4-octet AS number (RFC 6793).
    pub const FOUR_OCTET_AS: u8 = 65;
    /// ADD-PATH (RFC 7911).
    pub const ADD_PATH: u8 = 69;
    /// Enhanced route refresh (RFC 7313).
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
}

/// Graceful restart capability (RFC 4724 §3, N bit from RFC 8538).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// Restart State (R) bit: the sender has restarted.
    pub restart_state: bool,
    /// Notification (N) bit: graceful restart also covers NOTIFICATIONs (RFC 8538).
    pub notification: bool,
    /// Restart time in seconds (12 bits, at most 4095).
    pub restart_time: u16,
    /// Families with their Forwarding State (F) bit.
    pub families: Vec<GracefulRestartFamily>,
}

/// One AFI/SAFI in the graceful restart capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    /// The family.
    pub family: Family,
    /// Forwarding state was preserved across the restart.
    pub forwarding_state: bool,
}

/// One AFI/SAFI in the ADD-PATH capability (RFC 7911 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddPathFamily {
    /// The family.
    pub family: Family,
    /// The sender can receive multiple paths.
    pub receive: bool,
    /// The sender can send multiple paths.
    pub send: bool,
}

/// One entry of the extended next hop capability (RFC 8950 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtendedNextHopFamily {
    /// NLRI AFI.
    pub afi: u16,
    /// NLRI SAFI (2 octets in this capability).
    pub safi: u16,
    /// Next hop AFI.
    pub next_hop_afi: u16,
}

/// A capability advertisement (RFC 5492 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// Multiprotocol extensions for one AFI/SAFI (RFC 4760 §8).
    Multiprotocol(Family),
    /// Route refresh (RFC 2918).
    RouteRefresh,
    /// Enhanced route refresh (RFC 7313).
    EnhancedRouteRefresh,
    /// Extended next hop encoding (RFC 8950).
    ExtendedNextHop(Vec<ExtendedNextHopFamily>),
    /// Extended message (RFC 8654).
    ExtendedMessage,
    /// Graceful restart (RFC 4724).
    GracefulRestart(GracefulRestart),
    /// 4-octet AS number support, with the speaker's real AS (RFC 6793).
    FourOctetAs(u32),
    /// ADD-PATH (RFC 7911).
    AddPath(Vec<AddPathFamily>),
    /// Anything else, preserved as received.
    Unknown {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Vec<u8>,
    },
}

impl Capability {
    /// The capability code.
    pub fn code(&self) -> u8 {
        use capability_code as c;
        match self {
            Capability::Multiprotocol(_) => c::MULTIPROTOCOL,
            Capability::RouteRefresh => c::ROUTE_REFRESH,
            Capability::EnhancedRouteRefresh => c::ENHANCED_ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => c::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => c::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => c::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => c::FOUR_OCTET_AS,
            Capability::AddPath(_) => c::ADD_PATH,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// The capability value in wire form.
    pub fn value(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match self {
            Capability::Multiprotocol(f) => {
                put_u16(&mut v, f.afi);
                v.push(0);
                v.push(f.safi);
            }
            Capability::RouteRefresh
            | Capability::EnhancedRouteRefresh
            | Capability::ExtendedMessage => {}
            Capability::ExtendedNextHop(list) => {
                for e in list {
                    put_u16(&mut v, e.afi);
                    put_u16(&mut v, e.safi);
                    put_u16(&mut v, e.next_hop_afi);
                }
            }
            Capability::GracefulRestart(gr) => {
                let mut flags_time = gr.restart_time & 0x0fff;
                if gr.restart_state {
                    flags_time |= 0x8000;
                }
                if gr.notification {
                    flags_time |= 0x4000;
                }
                put_u16(&mut v, flags_time);
                for f in &gr.families {
                    put_u16(&mut v, f.family.afi);
                    v.push(f.family.safi);
                    v.push(if f.forwarding_state { 0x80 } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => put_u32(&mut v, *asn),
            Capability::AddPath(list) => {
                for e in list {
                    put_u16(&mut v, e.family.afi);
                    v.push(e.family.safi);
                    v.push(u8::from(e.receive) | (u8::from(e.send) << 1));
                }
            }
            Capability::Unknown { value, .. } => v.extend_from_slice(value),
        }
        v
    }

    /// Parses one capability value. A known capability whose value has the wrong shape is an
    /// error: acting on half of it could mis-negotiate the session.
    pub fn decode(code: u8, value: &[u8]) -> Result<Capability, DecodeError> {
        use capability_code as c;
        let bad = |what: &str| {
            DecodeError::MalformedOpen(format!(
                "capability {what} (code {code}) has invalid length {}",
                value.len()
            ))
        };
        Ok(match code {
            c::MULTIPROTOCOL => {
                if value.len() != 4 {
                    return Err(bad("multiprotocol"));
                }
                Capability::Multiprotocol(Family::new(be16(value, 0), value[3]))
            }
            c::ROUTE_REFRESH | c::ENHANCED_ROUTE_REFRESH | c::EXTENDED_MESSAGE => {
                if !value.is_empty() {
                    return Err(bad(match code {
                        c::ROUTE_REFRESH => "route-refresh",
                        c::EXTENDED_MESSAGE => "extended-message",
                        _ => "enhanced-route-refresh",
                    }));
                }
                match code {
                    c::ROUTE_REFRESH => Capability::RouteRefresh,
                    c::EXTENDED_MESSAGE => Capability::ExtendedMessage,
                    _ => Capability::EnhancedRouteRefresh,
                }
            }
            c::EXTENDED_NEXT_HOP => {
                if value.is_empty() || !value.len().is_multiple_of(6) {
                    return Err(bad("extended-next-hop"));
                }
                Capability::ExtendedNextHop(
                    value
                        .chunks_exact(6)
                        .map(|e| ExtendedNextHopFamily {
                            afi: be16(e, 0),
                            safi: be16(e, 2),
                            next_hop_afi: be16(e, 4),
                        })
                        .collect(),
                )
            }
            c::GRACEFUL_RESTART => {
                if value.len() < 2 || !(value.len() - 2).is_multiple_of(4) {
                    return Err(bad("graceful-restart"));
                }
                let ft = be16(value, 0);
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: ft & 0x8000 != 0,
                    notification: ft & 0x4000 != 0,
                    restart_time: ft & 0x0fff,
                    families: value[2..]
                        .chunks_exact(4)
                        .map(|e| GracefulRestartFamily {
                            family: Family::new(be16(e, 0), e[2]),
                            forwarding_state: e[3] & 0x80 != 0,
                        })
                        .collect(),
                })
            }
            c::FOUR_OCTET_AS => {
                if value.len() != 4 {
                    return Err(bad("4-octet-AS"));
                }
                Capability::FourOctetAs(be32(value, 0))
            }
            c::ADD_PATH => {
                if value.is_empty() || !value.len().is_multiple_of(4) {
                    return Err(bad("ADD-PATH"));
                }
                let mut list = Vec::with_capacity(value.len() / 4);
                for e in value.chunks_exact(4) {
                    // RFC 7911 §4: Send/Receive is 1, 2 or 3.
                    if !(1..=3).contains(&e[3]) {
                        return Err(DecodeError::MalformedOpen(format!(
                            "capability ADD-PATH has invalid send/receive value {}",
                            e[3]
                        )));
                    }
                    list.push(AddPathFamily {
                        family: Family::new(be16(e, 0), e[2]),
                        receive: e[3] & 1 != 0,
                        send: e[3] & 2 != 0,
                    });
                }
                Capability::AddPath(list)
            }
            _ => Capability::Unknown {
                code,
                value: value.to_vec(),
            },
        })
    }
}

/// An OPEN message. The version is always 4 (anything else is rejected when decoding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    /// The 2-octet "My Autonomous System" field; AS_TRANS when the real AS needs 4 octets.
    pub my_as: u16,
    /// Proposed hold time in seconds (0 or at least 3).
    pub hold_time: u16,
    /// BGP identifier (router id).
    pub bgp_id: Ipv4Addr,
    /// Capabilities, in the order received, flattened over all optional parameters.
    pub capabilities: Vec<Capability>,
}

/// Optional parameter type for capabilities (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;

impl Open {
    /// An OPEN for `asn` (AS_TRANS goes into the 2-octet field when `asn` needs 4 octets;
    /// the caller adds [`Capability::FourOctetAs`]).
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, capabilities: Vec<Capability>) -> Open {
        Open {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The sender's AS: from the 4-octet AS capability if present, else the 2-octet field.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    /// The AS in the 4-octet AS capability, if advertised.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// Families advertised with the multiprotocol capability.
    pub fn multiprotocol(&self) -> Vec<Family> {
        self.capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect()
    }

    /// Whether a capability with this code was advertised.
    pub fn has_capability(&self, code: u8) -> bool {
        self.capabilities.iter().any(|c| c.code() == code)
    }

    /// The graceful restart capability, if advertised.
    pub fn graceful_restart(&self) -> Option<&GracefulRestart> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }

    /// ADD-PATH entries, if advertised.
    pub fn add_path(&self) -> &[AddPathFamily] {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::AddPath(l) => Some(l.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// The codec contexts a session uses once both OPENs are known: `(receive, send)`.
    /// 4-octet AS and extended messages need both sides' capability (RFC 6793 §3,
    /// RFC 8654 §3); ADD-PATH is per direction and family (RFC 7911 §5: we receive path
    /// identifiers when we advertised "receive" and the peer "send", and vice versa); the
    /// peer is internal when both ASes are equal.
    pub fn negotiate(local: &Open, remote: &Open) -> (CodecContext, CodecContext) {
        let four = local.four_octet_as().is_some() && remote.four_octet_as().is_some();
        let ext = local.has_capability(capability_code::EXTENDED_MESSAGE)
            && remote.has_capability(capability_code::EXTENDED_MESSAGE);
        let peer = if local.asn() == remote.asn() {
            PeerKind::Internal
        } else {
            PeerKind::External
        };
        let mode = |open: &Open, family: Family| {
            open.add_path()
                .iter()
                .find(|a| a.family == family)
                .map_or((false, false), |a| (a.receive, a.send))
        };
        let (l4, r4) = (
            mode(local, Family::IPV4_UNICAST),
            mode(remote, Family::IPV4_UNICAST),
        );
        let (l6, r6) = (
            mode(local, Family::IPV6_UNICAST),
            mode(remote, Family::IPV6_UNICAST),
        );
        let base = CodecContext {
            four_octet_as: four,
            extended_message: ext,
            peer,
            ..CodecContext::default()
        };
        let rx = CodecContext {
            add_path_ipv4: l4.0 && r4.1,
            add_path_ipv6: l6.0 && r6.1,
            ..base
        };
        let tx = CodecContext {
            add_path_ipv4: l4.1 && r4.0,
            add_path_ipv6: l6.1 && r6.0,
            ..base
        };
        (rx, tx)
    }

    /// Decodes the OPEN body (after the 19-octet header) and applies the RFC 4271 §6.2
    /// checks that need no configuration: version, hold time, BGP identifier, AS 0
    /// (RFC 7607), optional parameter types and lengths.
    pub fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        if body.len() < 10 {
            return Err(DecodeError::BadMessageLength {
                length: (body.len() + 19) as u16,
                msg_type: Some(1),
            });
        }
        let version = body[0];
        if version != 4 {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let my_as = be16(body, 1);
        let hold_time = be16(body, 3);
        let bgp_id = crate::types::ipv4_at(body, 5);
        let opt_len = usize::from(body[9]);
        let rest = &body[10..];
        let mut capabilities = Vec::new();
        // RFC 9072: a non-extended length of 255 with a first parameter type of 255 marks
        // the extended encoding (2-octet lengths throughout).
        let (params, extended) = if opt_len == 255 && rest.first() == Some(&255) {
            if rest.len() < 3 {
                return Err(DecodeError::MalformedOpen(
                    "extended optional parameters length is truncated".into(),
                ));
            }
            let ext_len = usize::from(be16(rest, 1));
            if rest.len() != 3 + ext_len {
                return Err(DecodeError::MalformedOpen(format!(
                    "extended optional parameters length {ext_len} does not match the {} octets present",
                    rest.len() - 3
                )));
            }
            (&rest[3..], true)
        } else {
            if rest.len() != opt_len {
                return Err(DecodeError::MalformedOpen(format!(
                    "optional parameters length {opt_len} does not match the {} octets present",
                    rest.len()
                )));
            }
            (rest, false)
        };
        let hdr = if extended { 3 } else { 2 };
        let mut p = params;
        while !p.is_empty() {
            if p.len() < hdr {
                return Err(DecodeError::MalformedOpen(
                    "optional parameter header is truncated".into(),
                ));
            }
            let ptype = p[0];
            let plen = if extended {
                usize::from(be16(p, 1))
            } else {
                usize::from(p[1])
            };
            if p.len() < hdr + plen {
                return Err(DecodeError::MalformedOpen(format!(
                    "optional parameter type {ptype} length {plen} runs past the parameters"
                )));
            }
            let value = &p[hdr..hdr + plen];
            p = &p[hdr + plen..];
            if ptype != PARAM_CAPABILITIES {
                // RFC 4271 §6.2; type 1 (authentication) is deprecated (RFC 5492 §... ).
                return Err(DecodeError::UnsupportedOptionalParameter(ptype));
            }
            let mut c = value;
            while !c.is_empty() {
                if c.len() < 2 || c.len() < 2 + usize::from(c[1]) {
                    return Err(DecodeError::MalformedOpen(
                        "capability length runs past its optional parameter".into(),
                    ));
                }
                let code = c[0];
                let len = usize::from(c[1]);
                capabilities.push(Capability::decode(code, &c[2..2 + len])?);
                c = &c[2 + len..];
            }
        }
        let open = Open {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        };
        // RFC 4271 §6.2: hold time 1 and 2 are unacceptable.
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::UnacceptableHoldTime(hold_time));
        }
        // RFC 6286 §2.2: any non-zero 4-octet value is a valid identifier.
        if bgp_id.is_unspecified() {
            return Err(DecodeError::BadBgpIdentifier(bgp_id));
        }
        // RFC 7607: AS 0 in the OPEN (either field) is a Bad Peer AS.
        if my_as == 0 {
            return Err(DecodeError::BadPeerAs(0));
        }
        if open.four_octet_as() == Some(0) {
            return Err(DecodeError::BadPeerAs(0));
        }
        Ok(open)
    }

    /// Encodes the OPEN body. Capabilities go into one optional parameter; when they need
    /// more than 255 octets they are spread over several parameters (RFC 5492 §4 allows
    /// either).
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(4);
        put_u16(out, self.my_as);
        put_u16(out, self.hold_time);
        out.extend_from_slice(&self.bgp_id.octets());
        let mut params: Vec<u8> = Vec::new();
        let mut current: Vec<u8> = Vec::new();
        for cap in &self.capabilities {
            let value = cap.value();
            if value.len() > 255 {
                return Err(EncodeError::Open(format!(
                    "capability code {} value of {} octets exceeds 255",
                    cap.code(),
                    value.len()
                )));
            }
            if current.len() + 2 + value.len() > 255 {
                params.push(PARAM_CAPABILITIES);
                params.push(current.len() as u8);
                params.append(&mut current);
            }
            current.push(cap.code());
            current.push(value.len() as u8);
            current.extend_from_slice(&value);
        }
        if !current.is_empty() {
            params.push(PARAM_CAPABILITIES);
            params.push(current.len() as u8);
            params.append(&mut current);
        }
        if params.len() > 255 {
            return Err(EncodeError::Open(format!(
                "optional parameters of {} octets exceed 255",
                params.len()
            )));
        }
        out.push(params.len() as u8);
        out.extend_from_slice(&params);
        Ok(())
    }
}
