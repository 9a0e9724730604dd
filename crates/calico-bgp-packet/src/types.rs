//! Small value types shared by every message: address families, prefixes (NLRI), the
//! decode/encode context a session negotiates, and a bounds-checked reader.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The 2-octet AS number a 4-octet-AS speaker puts where an old speaker expects a 2-octet AS
/// (RFC 6793 §9).
pub const AS_TRANS: u16 = 23456;

/// Largest BGP message without the extended-message capability (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest BGP message once both sides advertised extended messages (RFC 8654 §4).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;
/// Length of the fixed header: 16-octet marker, 2-octet length, 1-octet type.
pub const HEADER_LEN: usize = 19;

/// An AFI/SAFI pair (RFC 4760 §5). Kept as raw numbers so that capabilities and MP attributes
/// for families we do not route still round-trip unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    /// Address Family Identifier (IANA: 1 = IPv4, 2 = IPv6).
    pub afi: u16,
    /// Subsequent AFI (1 = unicast, 2 = multicast, ...).
    pub safi: u8,
}

impl Family {
    /// IPv4 unicast (AFI 1, SAFI 1).
    pub const IPV4_UNICAST: Family = Family { afi: 1, safi: 1 };
    /// IPv6 unicast (AFI 2, SAFI 1).
    pub const IPV6_UNICAST: Family = Family { afi: 2, safi: 1 };

    /// Builds a family from its raw numbers.
    pub const fn new(afi: u16, safi: u8) -> Family {
        Family { afi, safi }
    }

    /// True for the two families whose NLRI this crate decodes into prefixes.
    pub fn is_unicast_ip(self) -> bool {
        self == Family::IPV4_UNICAST || self == Family::IPV6_UNICAST
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi {afi}/safi {safi}"),
        }
    }
}

/// One NLRI entry: a prefix plus, when ADD-PATH (RFC 7911) is in force for its family in the
/// direction being decoded/encoded, its path identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    /// The prefix; host bits are always zero (decoding masks them, RFC 4271 §4.3 says the
    /// trailing bits are irrelevant).
    pub prefix: IpNet,
    /// ADD-PATH path identifier, `None` when ADD-PATH is not negotiated for this direction.
    pub path_id: Option<u32>,
}

impl Nlri {
    /// A prefix without a path identifier. Host bits are cleared.
    pub fn new(prefix: IpNet) -> Nlri {
        Nlri {
            prefix: prefix.trunc(),
            path_id: None,
        }
    }

    /// A prefix with an ADD-PATH path identifier. Host bits are cleared.
    pub fn with_path_id(prefix: IpNet, path_id: u32) -> Nlri {
        Nlri {
            prefix: prefix.trunc(),
            path_id: Some(path_id),
        }
    }
}

impl fmt::Display for Nlri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path_id {
            Some(id) => write!(f, "{} (path-id {id})", self.prefix),
            None => write!(f, "{}", self.prefix),
        }
    }
}

/// Whether the peer is internal or external; the codec needs it only for the two RFC 7606
/// rules that depend on it (§7.5: LOCAL_PREF from an external peer is discarded; LOCAL_PREF is
/// mandatory from an internal peer, RFC 4271 §5.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerKind {
    /// Not known (e.g. before the OPEN exchange); no peer-type-dependent checks.
    #[default]
    Unknown,
    /// iBGP: same AS.
    Internal,
    /// eBGP: different AS.
    External,
}

/// What the session negotiated; passed to every decode and encode call. The same struct is
/// used for both directions: for decoding, `add_path_*` means "we receive path identifiers";
/// for encoding, "we send path identifiers" (RFC 7911 §4 negotiates each direction apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodecContext {
    /// Both sides advertised the 4-octet AS capability (RFC 6793): AS_PATH and AGGREGATOR
    /// carry 4-octet AS numbers and AS4_PATH/AS4_AGGREGATOR are not used.
    pub four_octet_as: bool,
    /// ADD-PATH path identifiers precede each IPv4 unicast NLRI.
    pub add_path_ipv4: bool,
    /// ADD-PATH path identifiers precede each IPv6 unicast NLRI.
    pub add_path_ipv6: bool,
    /// Both sides advertised the extended message capability (RFC 8654): messages other than
    /// OPEN and KEEPALIVE may be up to 65535 octets.
    pub extended_message: bool,
    /// Internal or external peer (see [`PeerKind`]).
    pub peer: PeerKind,
}

impl CodecContext {
    /// The context every session starts with (only OPEN/NOTIFICATION are exchanged before
    /// negotiation): 2-octet AS, no ADD-PATH, 4096-octet messages.
    pub fn initial() -> CodecContext {
        CodecContext::default()
    }

    /// Largest message this context allows.
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }

    /// Whether NLRI of `family` carry ADD-PATH path identifiers in this context.
    pub fn add_path(&self, family: Family) -> bool {
        match family {
            Family::IPV4_UNICAST => self.add_path_ipv4,
            Family::IPV6_UNICAST => self.add_path_ipv6,
            _ => false,
        }
    }
}

/// Why reading a prefix failed; turned into the right error by the caller, which knows
/// whether it was the NLRI field, the withdrawn routes or an MP attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrefixError {
    /// Prefix length larger than the address family allows.
    TooLong { len: u8, max: u8 },
    /// The data ended inside a prefix or path identifier.
    Truncated,
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::TooLong { len, max } => write!(f, "prefix length {len} exceeds {max}"),
            PrefixError::Truncated => f.write_str("prefix runs past the end of its field"),
        }
    }
}

/// Decodes a list of `<length, prefix>` tuples (optionally preceded by 4-octet path
/// identifiers) that fills `data` exactly (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3).
pub(crate) fn decode_prefixes(
    mut data: &[u8],
    ipv6: bool,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), PrefixError> {
    let max: u8 = if ipv6 { 128 } else { 32 };
    while !data.is_empty() {
        let path_id = if add_path {
            if data.len() < 4 {
                return Err(PrefixError::Truncated);
            }
            let id = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
            data = &data[4..];
            Some(id)
        } else {
            None
        };
        let Some((&len, rest)) = data.split_first() else {
            return Err(PrefixError::Truncated);
        };
        if len > max {
            return Err(PrefixError::TooLong { len, max });
        }
        let n = usize::from(len).div_ceil(8);
        if rest.len() < n {
            return Err(PrefixError::Truncated);
        }
        let prefix = if ipv6 {
            let mut o = [0u8; 16];
            o[..n].copy_from_slice(&rest[..n]);
            // Length checked against 128 above, so `new` cannot fail.
            IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(o), len)
                    .map_err(|_| PrefixError::TooLong { len, max })?
                    .trunc(),
            )
        } else {
            let mut o = [0u8; 4];
            o[..n].copy_from_slice(&rest[..n]);
            IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(o), len)
                    .map_err(|_| PrefixError::TooLong { len, max })?
                    .trunc(),
            )
        };
        out.push(Nlri { prefix, path_id });
        data = &rest[n..];
    }
    Ok(())
}

/// Appends one NLRI in wire form. A path identifier is written only when `add_path` is set
/// (a missing one is sent as 0, RFC 7911 leaves the value to the sender).
pub(crate) fn encode_prefix(nlri: &Nlri, add_path: bool, out: &mut Vec<u8>) {
    if add_path {
        out.extend_from_slice(&nlri.path_id.unwrap_or(0).to_be_bytes());
    }
    let len = nlri.prefix.prefix_len();
    out.push(len);
    let n = usize::from(len).div_ceil(8);
    match nlri.prefix.trunc().addr() {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()[..n]),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()[..n]),
    }
}

/// Wire size of one NLRI.
pub(crate) fn prefix_wire_len(nlri: &Nlri, add_path: bool) -> usize {
    1 + usize::from(nlri.prefix.prefix_len()).div_ceil(8) + if add_path { 4 } else { 0 }
}

/// Appends a big-endian u16.
pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a big-endian u32.
pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Reads a big-endian u16 at `at`; callers check the length first.
pub(crate) fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

/// Reads a big-endian u32 at `at`; callers check the length first.
pub(crate) fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

/// Reads an IPv4 address at `at`; callers check the length first.
pub(crate) fn ipv4_at(d: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(d[at], d[at + 1], d[at + 2], d[at + 3])
}

/// Reads an IPv6 address at `at`; callers check the length first.
pub(crate) fn ipv6_at(d: &[u8], at: usize) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&d[at..at + 16]);
    Ipv6Addr::from(o)
}
