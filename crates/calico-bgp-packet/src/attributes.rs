//! Path attribute values (RFC 4271 §4.3/§5, RFC 1997, RFC 4456, RFC 4760, RFC 6793, RFC 8092)
//! and their wire encoding. Decoding with validation lives in `update::attrs_decode`, which
//! needs the whole UPDATE to classify errors (RFC 7606).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::EncodeError;
use crate::types::{AS_TRANS, CodecContext, Family, Nlri, put_u16, put_u32};

/// Path attribute type codes (IANA "BGP Path Attributes").
pub mod attr_type {
    /// ORIGIN (RFC 4271).
    pub const ORIGIN: u8 = 1;
    /// AS_PATH (RFC 4271).
    pub const AS_PATH: u8 = 2;
    /// NEXT_HOP (RFC 4271).
    pub const NEXT_HOP: u8 = 3;
    /// MULTI_EXIT_DISC (RFC 4271).
    pub const MULTI_EXIT_DISC: u8 = 4;
    /// LOCAL_PREF (RFC 4271).
    pub const LOCAL_PREF: u8 = 5;
    /// ATOMIC_AGGREGATE (RFC 4271).
    pub const ATOMIC_AGGREGATE: u8 = 6;
    /// AGGREGATOR (RFC 4271).
    pub const AGGREGATOR: u8 = 7;
    /// COMMUNITIES (RFC 1997).
    pub const COMMUNITIES: u8 = 8;
    /// ORIGINATOR_ID (RFC 4456).
    pub const ORIGINATOR_ID: u8 = 9;
    /// CLUSTER_LIST (RFC 4456).
    pub const CLUSTER_LIST: u8 = 10;
    /// MP_REACH_NLRI (RFC 4760).
    pub const MP_REACH_NLRI: u8 = 14;
    /// MP_UNREACH_NLRI (RFC 4760).
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// EXTENDED COMMUNITIES (RFC 4360).
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    /// AS4_PATH (RFC 6793).
    pub const AS4_PATH: u8 = 17;
    /// AS4_AGGREGATOR (RFC 6793).
    pub const AS4_AGGREGATOR: u8 = 18;
    /// LARGE_COMMUNITY (RFC 8092).
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flags {
    /// Optional (1) or well-known (0).
    pub const OPTIONAL: u8 = 0x80;
    /// Transitive.
    pub const TRANSITIVE: u8 = 0x40;
    /// Partial: some speaker on the path did not recognise this optional transitive attribute.
    pub const PARTIAL: u8 = 0x20;
    /// The length field is 2 octets.
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// ORIGIN values (RFC 4271 §5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// 0: learned from an interior protocol.
    Igp,
    /// 1: learned via EGP.
    Egp,
    /// 2: learned some other way.
    Incomplete,
}

impl Origin {
    /// Wire value.
    pub fn value(self) -> u8 {
        match self {
            Origin::Igp => 0,
            Origin::Egp => 1,
            Origin::Incomplete => 2,
        }
    }

    /// From the wire value.
    pub fn from_value(v: u8) -> Option<Origin> {
        match v {
            0 => Some(Origin::Igp),
            1 => Some(Origin::Egp),
            2 => Some(Origin::Incomplete),
            _ => None,
        }
    }
}

/// AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3 for the confederation ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentType {
    /// 1: unordered set.
    Set,
    /// 2: ordered sequence.
    Sequence,
    /// 3: confederation sequence.
    ConfedSequence,
    /// 4: confederation set.
    ConfedSet,
}

impl SegmentType {
    /// Wire value.
    pub fn value(self) -> u8 {
        match self {
            SegmentType::Set => 1,
            SegmentType::Sequence => 2,
            SegmentType::ConfedSequence => 3,
            SegmentType::ConfedSet => 4,
        }
    }

    /// From the wire value.
    pub fn from_value(v: u8) -> Option<SegmentType> {
        match v {
            1 => Some(SegmentType::Set),
            2 => Some(SegmentType::Sequence),
            3 => Some(SegmentType::ConfedSequence),
            4 => Some(SegmentType::ConfedSet),
            _ => None,
        }
    }

    /// Confederation segments do not count towards the path length (RFC 5065 §5.3).
    pub fn is_confed(self) -> bool {
        matches!(self, SegmentType::ConfedSequence | SegmentType::ConfedSet)
    }
}

/// One AS_PATH segment. AS numbers are always held as 4-octet values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    /// Segment type.
    pub kind: SegmentType,
    /// AS numbers (never empty on the wire, RFC 7606 §7.2).
    pub asns: Vec<u32>,
}

/// The AS_PATH attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    /// Segments in wire order.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path that is one AS_SEQUENCE (empty path for no ASNs).
    pub fn sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Path length for best-path selection (RFC 4271 §9.1.2.2 a: a set counts 1;
    /// RFC 5065 §5.3: confederation segments count 0).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                _ => 0,
            })
            .sum()
    }

    /// The first AS of the first AS_SEQUENCE (the neighbour AS, RFC 4271 §9.1.2.2 d).
    pub fn first_as(&self) -> Option<u32> {
        match self.segments.first() {
            Some(s) if s.kind == SegmentType::Sequence => s.asns.first().copied(),
            _ => None,
        }
    }

    /// Whether `asn` appears anywhere (loop detection, RFC 4271 §9.1.2).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Prepends `asn` as the new first AS (RFC 4271 §5.1.2 b).
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentType::Sequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn],
                },
            ),
        }
    }

    fn any_wide(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > u32::from(u16::MAX)))
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let list: Vec<String> = s.asns.iter().map(|a| a.to_string()).collect();
            match s.kind {
                SegmentType::Sequence => write!(f, "{}", list.join(" "))?,
                SegmentType::Set => write!(f, "{{{}}}", list.join(","))?,
                SegmentType::ConfedSequence => write!(f, "({})", list.join(" "))?,
                SegmentType::ConfedSet => write!(f, "[{}]", list.join(","))?,
            }
        }
        Ok(())
    }
}

/// AGGREGATOR (RFC 4271 §5.1.7); the AS is always held as 4 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    /// AS of the aggregating speaker.
    pub asn: u32,
    /// Its BGP identifier/address.
    pub address: Ipv4Addr,
}

/// An RFC 1997 community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// NO_EXPORT (RFC 1997).
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    /// NO_ADVERTISE (RFC 1997).
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    /// NO_EXPORT_SUBCONFED (RFC 1997).
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// NOPEER (RFC 3765).
    pub const NO_PEER: Community = Community(0xFFFF_FF04);
    /// GRACEFUL_SHUTDOWN (RFC 8326).
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xFFFF_0000);
    /// LLGR_STALE (RFC 9494).
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    /// NO_LLGR (RFC 9494).
    pub const NO_LLGR: Community = Community(0xFFFF_0007);
    /// BLACKHOLE (RFC 7999).
    pub const BLACKHOLE: Community = Community(0xFFFF_029A);

    /// `asn:value` form.
    pub fn from_parts(asn: u16, value: u16) -> Community {
        Community((u32::from(asn) << 16) | u32::from(value))
    }

    /// Name of a well-known community.
    pub fn well_known_name(self) -> Option<&'static str> {
        Some(match self {
            Community::NO_EXPORT => "no-export",
            Community::NO_ADVERTISE => "no-advertise",
            Community::NO_EXPORT_SUBCONFED => "no-export-subconfed",
            Community::NO_PEER => "no-peer",
            Community::GRACEFUL_SHUTDOWN => "graceful-shutdown",
            Community::LLGR_STALE => "llgr-stale",
            Community::NO_LLGR => "no-llgr",
            Community::BLACKHOLE => "blackhole",
            _ => return None,
        })
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.well_known_name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff),
        }
    }
}

/// An RFC 8092 large community.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// Global administrator (an AS).
    pub global_admin: u32,
    /// First local data part.
    pub local_data1: u32,
    /// Second local data part.
    pub local_data2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.global_admin, self.local_data1, self.local_data2
        )
    }
}

/// An attribute this crate does not interpret: unknown optional transitive attributes are kept
/// (with the Partial bit set, RFC 4271 §5) so they can be passed on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Flags (the extended-length bit is recomputed when encoding; the low 4 bits are zero).
    pub flags: u8,
    /// Type code.
    pub type_code: u8,
    /// Value.
    pub value: Vec<u8>,
}

/// The next hop of MP_REACH_NLRI (RFC 4760 §3, RFC 2545 §3 for IPv6, RFC 8950 for IPv6 next
/// hops of IPv4 NLRI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    /// 4 octets.
    Ipv4(Ipv4Addr),
    /// 16 octets (global) or 32 (global + link-local).
    Ipv6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address, when 32 octets were sent.
        link_local: Option<Ipv6Addr>,
    },
}

impl MpNextHop {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MpNextHop::Ipv4(a) => {
                out.push(4);
                out.extend_from_slice(&a.octets());
            }
            MpNextHop::Ipv6 { global, link_local } => {
                out.push(if link_local.is_some() { 32 } else { 16 });
                out.extend_from_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.extend_from_slice(&ll.octets());
                }
            }
        }
    }
}

impl fmt::Display for MpNextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MpNextHop::Ipv4(a) => write!(f, "{a}"),
            MpNextHop::Ipv6 {
                global,
                link_local: None,
            } => write!(f, "{global}"),
            MpNextHop::Ipv6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} (link-local {ll})"),
        }
    }
}

/// MP_REACH_NLRI (RFC 4760 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    /// AFI/SAFI.
    pub family: Family,
    /// Next hop; `None` only for families this crate does not decode (see `raw`).
    pub next_hop: Option<MpNextHop>,
    /// Prefixes, for IPv4/IPv6 unicast.
    pub nlri: Vec<Nlri>,
    /// For other families: next hop length + next hop + reserved octet + NLRI, as received.
    pub raw: Vec<u8>,
}

/// MP_UNREACH_NLRI (RFC 4760 §4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    /// AFI/SAFI.
    pub family: Family,
    /// Withdrawn prefixes, for IPv4/IPv6 unicast.
    pub withdrawn: Vec<Nlri>,
    /// For other families: the withdrawn routes as received.
    pub raw: Vec<u8>,
}

/// The path attributes of an UPDATE except MP_REACH_NLRI/MP_UNREACH_NLRI (which are part of
/// [`crate::Update`] because they carry NLRI, not route properties). AS numbers are always
/// 4-octet here: AS4_PATH/AS4_AGGREGATOR are merged on decode and generated on encode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathAttributes {
    /// ORIGIN.
    pub origin: Option<Origin>,
    /// AS_PATH.
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (IPv4 NLRI field only).
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    pub atomic_aggregate: bool,
    /// AGGREGATOR.
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES, empty when absent.
    pub communities: Vec<Community>,
    /// ORIGINATOR_ID.
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST, empty when absent.
    pub cluster_list: Vec<Ipv4Addr>,
    /// EXTENDED COMMUNITIES (RFC 4360), 8 octets each, kept opaque; empty when absent.
    pub extended_communities: Vec<[u8; 8]>,
    /// LARGE_COMMUNITY, empty when absent.
    pub large_communities: Vec<LargeCommunity>,
    /// Unrecognised optional transitive attributes, Partial bit set.
    pub unknown: Vec<RawAttribute>,
}

const WELL_KNOWN: u8 = flags::TRANSITIVE;
const OPT_NON_TRANSITIVE: u8 = flags::OPTIONAL;
const OPT_TRANSITIVE: u8 = flags::OPTIONAL | flags::TRANSITIVE;

/// The Optional/Transitive bits a recognised attribute must carry (RFC 4271 §5, RFC 1997,
/// RFC 4456, RFC 4760, RFC 6793, RFC 8092); `None` for types this crate does not recognise.
pub(crate) fn expected_flags(type_code: u8) -> Option<u8> {
    use attr_type as t;
    Some(match type_code {
        t::ORIGIN | t::AS_PATH | t::NEXT_HOP | t::LOCAL_PREF | t::ATOMIC_AGGREGATE => WELL_KNOWN,
        t::MULTI_EXIT_DISC
        | t::ORIGINATOR_ID
        | t::CLUSTER_LIST
        | t::MP_REACH_NLRI
        | t::MP_UNREACH_NLRI => OPT_NON_TRANSITIVE,
        t::AGGREGATOR
        | t::COMMUNITIES
        | t::EXTENDED_COMMUNITIES
        | t::AS4_PATH
        | t::AS4_AGGREGATOR
        | t::LARGE_COMMUNITY => OPT_TRANSITIVE,
        _ => return None,
    })
}

/// Appends one attribute TLV, choosing the extended length only when needed.
pub(crate) fn put_attr(
    out: &mut Vec<u8>,
    flag_bits: u8,
    type_code: u8,
    value: &[u8],
) -> Result<(), EncodeError> {
    let f = flag_bits & (flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL);
    if value.len() > 255 {
        let len = u16::try_from(value.len()).map_err(|_| EncodeError::AttributeTooLong {
            type_code,
            length: value.len(),
        })?;
        out.push(f | flags::EXTENDED_LENGTH);
        out.push(type_code);
        put_u16(out, len);
    } else {
        out.push(f);
        out.push(type_code);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
    Ok(())
}

/// Encodes an AS path with 2- or 4-octet AS numbers; segments longer than 255 are split.
/// In 2-octet mode numbers above 65535 become AS_TRANS (RFC 6793 §4.2.2). Confederation
/// segments are left out when `skip_confed` (AS4_PATH must not carry them, RFC 6793 §3).
pub(crate) fn encode_as_path(path: &AsPath, four: bool, skip_confed: bool, out: &mut Vec<u8>) {
    for seg in &path.segments {
        if skip_confed && seg.kind.is_confed() {
            continue;
        }
        for chunk in seg.asns.chunks(255) {
            out.push(seg.kind.value());
            out.push(chunk.len() as u8);
            for &a in chunk {
                if four {
                    put_u32(out, a);
                } else {
                    put_u16(out, u16::try_from(a).unwrap_or(AS_TRANS));
                }
            }
        }
    }
}

impl PathAttributes {
    /// Encodes ORIGIN..LARGE_COMMUNITY and unknown attributes (MP attributes are written by
    /// the UPDATE encoder, first, per RFC 7606 §5.1).
    pub(crate) fn encode(&self, ctx: &CodecContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        use attr_type as t;
        let mut v: Vec<u8> = Vec::with_capacity(64);
        if let Some(o) = self.origin {
            put_attr(out, WELL_KNOWN, t::ORIGIN, &[o.value()])?;
        }
        let mut as4_path = None;
        if let Some(p) = &self.as_path {
            v.clear();
            encode_as_path(p, ctx.four_octet_as, false, &mut v);
            put_attr(out, WELL_KNOWN, t::AS_PATH, &v)?;
            if !ctx.four_octet_as && p.any_wide() {
                as4_path = Some(p);
            }
        }
        if let Some(nh) = self.next_hop {
            put_attr(out, WELL_KNOWN, t::NEXT_HOP, &nh.octets())?;
        }
        if let Some(m) = self.med {
            put_attr(
                out,
                OPT_NON_TRANSITIVE,
                t::MULTI_EXIT_DISC,
                &m.to_be_bytes(),
            )?;
        }
        if let Some(lp) = self.local_pref {
            put_attr(out, WELL_KNOWN, t::LOCAL_PREF, &lp.to_be_bytes())?;
        }
        if self.atomic_aggregate {
            put_attr(out, WELL_KNOWN, t::ATOMIC_AGGREGATE, &[])?;
        }
        let mut as4_aggregator = None;
        if let Some(a) = self.aggregator {
            v.clear();
            if ctx.four_octet_as {
                put_u32(&mut v, a.asn);
            } else {
                let narrow = u16::try_from(a.asn).ok();
                put_u16(&mut v, narrow.unwrap_or(AS_TRANS));
                if narrow.is_none() {
                    as4_aggregator = Some(a);
                }
            }
            v.extend_from_slice(&a.address.octets());
            put_attr(out, OPT_TRANSITIVE, t::AGGREGATOR, &v)?;
        }
        if !self.communities.is_empty() {
            v.clear();
            for c in &self.communities {
                put_u32(&mut v, c.0);
            }
            put_attr(out, OPT_TRANSITIVE, t::COMMUNITIES, &v)?;
        }
        if let Some(id) = self.originator_id {
            put_attr(out, OPT_NON_TRANSITIVE, t::ORIGINATOR_ID, &id.octets())?;
        }
        if !self.cluster_list.is_empty() {
            v.clear();
            for c in &self.cluster_list {
                v.extend_from_slice(&c.octets());
            }
            put_attr(out, OPT_NON_TRANSITIVE, t::CLUSTER_LIST, &v)?;
        }
        if !self.extended_communities.is_empty() {
            v.clear();
            for c in &self.extended_communities {
                v.extend_from_slice(c);
            }
            put_attr(out, OPT_TRANSITIVE, t::EXTENDED_COMMUNITIES, &v)?;
        }
        if let Some(p) = as4_path {
            v.clear();
            encode_as_path(p, true, true, &mut v);
            put_attr(out, OPT_TRANSITIVE, t::AS4_PATH, &v)?;
        }
        if let Some(a) = as4_aggregator {
            v.clear();
            put_u32(&mut v, a.asn);
            v.extend_from_slice(&a.address.octets());
            put_attr(out, OPT_TRANSITIVE, t::AS4_AGGREGATOR, &v)?;
        }
        if !self.large_communities.is_empty() {
            v.clear();
            for c in &self.large_communities {
                put_u32(&mut v, c.global_admin);
                put_u32(&mut v, c.local_data1);
                put_u32(&mut v, c.local_data2);
            }
            put_attr(out, OPT_TRANSITIVE, t::LARGE_COMMUNITY, &v)?;
        }
        for u in &self.unknown {
            put_attr(out, u.flags, u.type_code, &u.value)?;
        }
        Ok(())
    }
}
