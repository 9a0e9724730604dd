//! UPDATE message (RFC 4271 §4.3) with RFC 7606 revised error handling: the decoder keeps
//! going where RFC 7606 allows it and reports each error with the action it calls for.
//!
//! | What is wrong | Subcode | Action |
//! |---|---|---|
//! | withdrawn/attribute lengths exceed the message (§3 a) | 1 | session-reset |
//! | malformed withdrawn routes or NLRI field (§5.3) | 10 | session-reset |
//! | attribute runs past the attribute list (§4) | 1 | treat-as-withdraw once an MP attribute was parsed, else session-reset (§5.2: hidden MP NLRI) |
//! | MP_REACH/MP_UNREACH twice (§3 g) | 1 | session-reset |
//! | any other attribute twice (§3 g) | 1 | attribute-discard (first kept) |
//! | unrecognized well-known attribute | 2 | session-reset |
//! | missing ORIGIN/AS_PATH (+NEXT_HOP with NLRI, +LOCAL_PREF on iBGP) (§3 d) | 3 | treat-as-withdraw |
//! | flags conflict with the type (§3 c) | 4 | the attribute's own malformed action |
//! | ORIGIN, AS_PATH, NEXT_HOP, MED, LOCAL_PREF, COMMUNITIES, ORIGINATOR_ID, CLUSTER_LIST, EXTENDED_COMMUNITIES, LARGE_COMMUNITY malformed (§7.1–7.5, 7.8–7.10, 7.14, RFC 8092) | 5, 6, 8, 11 | treat-as-withdraw |
//! | ATOMIC_AGGREGATE, AGGREGATOR, AS4_PATH, AS4_AGGREGATOR malformed (§7.6, 7.7, RFC 6793 §6) | 5, 9 | attribute-discard |
//! | MP_REACH/MP_UNREACH malformed (§7.11, RFC 4760 §7) | 9 | AFI/SAFI-disable (session-reset if the AFI/SAFI is unreadable) |
//! | MP_REACH next hop not a host address | 8 | treat-as-withdraw (NLRI kept) |
//! | LOCAL_PREF from an eBGP peer (§7.5) | — | dropped silently |

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::attributes::{
    Aggregator, AsPath, AsSegment, Community, LargeCommunity, MpNextHop, MpReach, MpUnreach,
    Origin, PathAttributes, RawAttribute, SegmentType, attr_type as t, expected_flags, flags,
    put_attr,
};
use crate::error::{Action, DecodeError, EncodeError, UpdateError, UpdateErrorKind};
use crate::types::{
    AS_TRANS, CodecContext, Family, Nlri, PeerKind, be16, be32, decode_prefixes, encode_prefix,
    ipv4_at, ipv6_at, prefix_wire_len, put_u16,
};

/// An UPDATE message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Update {
    /// IPv4 unicast withdrawn routes (the Withdrawn Routes field).
    pub withdrawn: Vec<Nlri>,
    /// Path attributes.
    pub attributes: PathAttributes,
    /// MP_REACH_NLRI.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI.
    pub mp_unreach: Option<MpUnreach>,
    /// IPv4 unicast announced routes (the NLRI field).
    pub nlri: Vec<Nlri>,
}

/// A decoded UPDATE with the errors RFC 7606 lets a speaker survive. `action()` says what
/// to do with the routes; errors that need a session reset are returned as `Err` instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateDecoded {
    /// The UPDATE. Attributes that were discarded or malformed are absent; all NLRI are
    /// present (also under treat-as-withdraw, so the RIB knows what to withdraw).
    pub update: Update,
    /// Non-fatal errors, in the order found.
    pub errors: Vec<UpdateError>,
}

impl UpdateDecoded {
    /// The most severe action over all errors, `None` when the UPDATE was clean.
    pub fn action(&self) -> Option<Action> {
        self.errors.iter().map(|e| e.action).max()
    }
}

impl Update {
    /// The End-of-RIB marker for `family` (RFC 4724 §2): an empty UPDATE for IPv4 unicast,
    /// an UPDATE with only an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Update {
        if family == Family::IPV4_UNICAST {
            return Update::default();
        }
        Update {
            mp_unreach: Some(MpUnreach {
                family,
                withdrawn: Vec::new(),
                raw: Vec::new(),
            }),
            ..Update::default()
        }
    }

    /// The family this UPDATE marks End-of-RIB for, if it is such a marker.
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || self.mp_reach.is_some() {
            return None;
        }
        match &self.mp_unreach {
            None if self.attributes == PathAttributes::default() => Some(Family::IPV4_UNICAST),
            Some(u)
                if u.withdrawn.is_empty()
                    && u.raw.is_empty()
                    && self.attributes == PathAttributes::default() =>
            {
                Some(u.family)
            }
            _ => None,
        }
    }

    /// Every announced (family, NLRI): the NLRI field and MP_REACH_NLRI.
    pub fn announced(&self) -> impl Iterator<Item = (Family, &Nlri)> {
        let v4 = self.nlri.iter().map(|n| (Family::IPV4_UNICAST, n));
        let mp = self
            .mp_reach
            .iter()
            .flat_map(|r| r.nlri.iter().map(move |n| (r.family, n)));
        v4.chain(mp)
    }

    /// Every withdrawn (family, NLRI): the Withdrawn Routes field and MP_UNREACH_NLRI.
    pub fn withdrawn_routes(&self) -> impl Iterator<Item = (Family, &Nlri)> {
        let v4 = self.withdrawn.iter().map(|n| (Family::IPV4_UNICAST, n));
        let mp = self
            .mp_unreach
            .iter()
            .flat_map(|r| r.withdrawn.iter().map(move |n| (r.family, n)));
        v4.chain(mp)
    }

    /// Decodes an UPDATE body (the message without its 19-octet header).
    pub fn decode_body(body: &[u8], ctx: &CodecContext) -> Result<UpdateDecoded, DecodeError> {
        decode_update(body, ctx).map_err(DecodeError::Update)
    }

    /// Encodes the UPDATE body. MP_REACH_NLRI and MP_UNREACH_NLRI go first (RFC 7606 §5.1).
    pub fn encode_body(&self, ctx: &CodecContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        put_u16(out, 0);
        for n in &self.withdrawn {
            check_v4(n)?;
            encode_prefix(n, ctx.add_path_ipv4, out);
        }
        let wlen = out.len() - start - 2;
        let wlen16 = u16::try_from(wlen).map_err(|_| EncodeError::MessageTooLong {
            length: wlen,
            max: ctx.max_message_len(),
        })?;
        out[start..start + 2].copy_from_slice(&wlen16.to_be_bytes());
        let astart = out.len();
        put_u16(out, 0);
        let mut v = Vec::new();
        if let Some(r) = &self.mp_reach {
            v.clear();
            put_u16(&mut v, r.family.afi);
            v.push(r.family.safi);
            if r.family.is_unicast_ip() {
                let nh = r.next_hop.ok_or_else(|| {
                    EncodeError::Invalid(format!("MP_REACH_NLRI for {} has no next hop", r.family))
                })?;
                if r.family == Family::IPV6_UNICAST && matches!(nh, MpNextHop::Ipv4(_)) {
                    // RFC 2545 §2: IPv6 NLRI need an IPv6 next hop (16 or 32 octets).
                    return Err(EncodeError::Invalid(format!(
                        "IPv6 routes with the IPv4 next hop {nh}"
                    )));
                }
                nh.encode(&mut v);
                v.push(0);
                let add_path = ctx.add_path(r.family);
                for n in &r.nlri {
                    check_family(n, r.family)?;
                    encode_prefix(n, add_path, &mut v);
                }
            } else {
                v.extend_from_slice(&r.raw);
            }
            put_attr(out, flags::OPTIONAL, t::MP_REACH_NLRI, &v)?;
        }
        if let Some(u) = &self.mp_unreach {
            v.clear();
            put_u16(&mut v, u.family.afi);
            v.push(u.family.safi);
            if u.family.is_unicast_ip() {
                let add_path = ctx.add_path(u.family);
                for n in &u.withdrawn {
                    check_family(n, u.family)?;
                    encode_prefix(n, add_path, &mut v);
                }
            } else {
                v.extend_from_slice(&u.raw);
            }
            put_attr(out, flags::OPTIONAL, t::MP_UNREACH_NLRI, &v)?;
        }
        self.attributes.encode(ctx, out)?;
        let alen = out.len() - astart - 2;
        let alen16 = u16::try_from(alen).map_err(|_| EncodeError::MessageTooLong {
            length: alen,
            max: ctx.max_message_len(),
        })?;
        out[astart..astart + 2].copy_from_slice(&alen16.to_be_bytes());
        for n in &self.nlri {
            check_v4(n)?;
            encode_prefix(n, ctx.add_path_ipv4, out);
        }
        Ok(())
    }

    /// Packs announcements of many prefixes sharing one attribute set into as few UPDATEs
    /// as fit the context's maximum message size (BIRD packs 100k routes into ~225 UPDATEs,
    /// GoBGP sends one per prefix; bgp.md §4.3). IPv4 unicast goes into the NLRI field and
    /// needs `attributes.next_hop`; every other family goes into MP_REACH_NLRI with
    /// `next_hop`. All of `nlri` must belong to `family`.
    pub fn pack_announcements(
        attributes: &PathAttributes,
        family: Family,
        next_hop: Option<MpNextHop>,
        nlri: &[Nlri],
        ctx: &CodecContext,
    ) -> Result<Vec<Update>, EncodeError> {
        let template = if family == Family::IPV4_UNICAST {
            Update {
                attributes: attributes.clone(),
                ..Update::default()
            }
        } else {
            Update {
                attributes: attributes.clone(),
                mp_reach: Some(MpReach {
                    family,
                    next_hop,
                    nlri: Vec::new(),
                    raw: Vec::new(),
                }),
                ..Update::default()
            }
        };
        pack(template, family, nlri, ctx, |u, chunk| {
            match &mut u.mp_reach {
                Some(r) => r.nlri = chunk,
                None => u.nlri = chunk,
            }
        })
    }

    /// Packs withdrawals of many prefixes of one family into as few UPDATEs as fit: the
    /// Withdrawn Routes field for IPv4 unicast, MP_UNREACH_NLRI otherwise.
    pub fn pack_withdrawals(
        family: Family,
        nlri: &[Nlri],
        ctx: &CodecContext,
    ) -> Result<Vec<Update>, EncodeError> {
        let template = if family == Family::IPV4_UNICAST {
            Update::default()
        } else {
            Update {
                mp_unreach: Some(MpUnreach {
                    family,
                    withdrawn: Vec::new(),
                    raw: Vec::new(),
                }),
                ..Update::default()
            }
        };
        pack(template, family, nlri, ctx, |u, chunk| {
            match &mut u.mp_unreach {
                Some(r) => r.withdrawn = chunk,
                None => u.withdrawn = chunk,
            }
        })
    }

    /// Octets the IPv4 NLRI field needs for `nlri` in this context: lets a speaker pack as
    /// many prefixes per UPDATE as fit (BIRD packs 100k routes into ~225 UPDATEs, bgp.md §4.3).
    pub fn nlri_wire_len(nlri: &[Nlri], ctx: &CodecContext) -> usize {
        nlri.iter()
            .map(|n| prefix_wire_len(n, ctx.add_path_ipv4))
            .sum()
    }
}

/// Shared packing loop: the template's encoded size is the fixed cost, each prefix adds its
/// wire size; 2 octets are kept spare for an MP attribute switching to the extended length.
fn pack(
    template: Update,
    family: Family,
    nlri: &[Nlri],
    ctx: &CodecContext,
    fill: impl Fn(&mut Update, Vec<Nlri>),
) -> Result<Vec<Update>, EncodeError> {
    let mut base = Vec::new();
    template.encode_body(ctx, &mut base)?;
    let max = ctx.max_message_len();
    let fixed = crate::types::HEADER_LEN + base.len() + 2;
    if fixed >= max {
        return Err(EncodeError::MessageTooLong { length: fixed, max });
    }
    let budget = max - fixed;
    let add_path = ctx.add_path(family);
    let mut out = Vec::new();
    let mut chunk: Vec<Nlri> = Vec::new();
    let mut used = 0;
    for n in nlri {
        let w = prefix_wire_len(n, add_path);
        if used + w > budget && !chunk.is_empty() {
            let mut u = template.clone();
            fill(&mut u, std::mem::take(&mut chunk));
            out.push(u);
            used = 0;
        }
        chunk.push(*n);
        used += w;
    }
    if !chunk.is_empty() {
        let mut u = template;
        fill(&mut u, chunk);
        out.push(u);
    }
    Ok(out)
}

fn check_v4(n: &Nlri) -> Result<(), EncodeError> {
    if n.prefix.addr().is_ipv4() {
        Ok(())
    } else {
        Err(EncodeError::Invalid(format!(
            "IPv6 prefix {} in the IPv4 NLRI/withdrawn field",
            n.prefix
        )))
    }
}

fn check_family(n: &Nlri, family: Family) -> Result<(), EncodeError> {
    let ok = match family {
        Family::IPV4_UNICAST => n.prefix.addr().is_ipv4(),
        _ => n.prefix.addr().is_ipv6(),
    };
    if ok {
        Ok(())
    } else {
        Err(EncodeError::Invalid(format!(
            "prefix {} does not belong to {family}",
            n.prefix
        )))
    }
}

/// The RFC 7606 §7 action for a malformed attribute of this type (MP attributes are
/// handled apart, they need the AFI/SAFI).
fn malformed_action(type_code: u8) -> Action {
    match type_code {
        // RFC 7606 §7.6, §7.7; RFC 6793 §6 for AS4_PATH/AS4_AGGREGATOR.
        t::ATOMIC_AGGREGATE | t::AGGREGATOR | t::AS4_PATH | t::AS4_AGGREGATOR => {
            Action::AttributeDiscard
        }
        // RFC 7606 §7.1–7.5, 7.8–7.10, 7.14; RFC 8092 §6.
        _ => Action::TreatAsWithdraw,
    }
}

/// RFC 4760 §7 / RFC 7606 §7.11: a malformed MP attribute disables its AFI/SAFI when the
/// family can be read, else the session is reset.
fn mp_action(value: &[u8]) -> Action {
    if value.len() >= 3 {
        Action::AfiSafiDisable(Family::new(be16(value, 0), value[2]))
    } else {
        Action::SessionReset
    }
}

fn fatal(kind: UpdateErrorKind) -> UpdateError {
    UpdateError::new(kind, Action::SessionReset)
}

fn list_error(reason: String) -> UpdateErrorKind {
    UpdateErrorKind::MalformedAttributeList { reason }
}

fn decode_update(body: &[u8], ctx: &CodecContext) -> Result<UpdateDecoded, UpdateError> {
    // RFC 4271 §6.3 / RFC 7606 §3 a: lengths that do not fit the message leave nothing to
    // trust; Malformed Attribute List, session reset.
    if body.len() < 4 {
        return Err(fatal(list_error(format!(
            "body of {} octets is shorter than the two length fields",
            body.len()
        ))));
    }
    let wlen = usize::from(be16(body, 0));
    if 2 + wlen + 2 > body.len() {
        return Err(fatal(list_error(format!(
            "withdrawn routes length {wlen} exceeds the {} octets available",
            body.len() - 4
        ))));
    }
    let wdata = &body[2..2 + wlen];
    let alen = usize::from(be16(body, 2 + wlen));
    let astart = 4 + wlen;
    if astart + alen > body.len() {
        return Err(fatal(list_error(format!(
            "total path attribute length {alen} exceeds the {} octets available",
            body.len() - astart
        ))));
    }
    let adata = &body[astart..astart + alen];
    let ndata = &body[astart + alen..];

    let mut update = Update::default();
    let mut errors = Vec::new();
    decode_prefixes(wdata, false, ctx.add_path_ipv4, &mut update.withdrawn).map_err(|e| {
        fatal(UpdateErrorKind::InvalidNetworkField {
            field: "withdrawn routes",
            reason: e.to_string(),
        })
    })?;
    // RFC 7606 §5.3: a malformed NLRI field means the NLRI cannot be trusted: session reset.
    decode_prefixes(ndata, false, ctx.add_path_ipv4, &mut update.nlri).map_err(|e| {
        fatal(UpdateErrorKind::InvalidNetworkField {
            field: "NLRI",
            reason: e.to_string(),
        })
    })?;

    let seen = decode_attributes(adata, ctx, &mut update, &mut errors)?;

    // RFC 4271 §6.3 / RFC 7606 §3 d: mandatory well-known attributes must be present when
    // the UPDATE announces routes. RFC 4760 §3 makes NEXT_HOP mandatory only with NLRI in
    // the NLRI field.
    let reach = !update.nlri.is_empty() || update.mp_reach.is_some();
    if reach {
        let required = [
            Some(t::ORIGIN),
            Some(t::AS_PATH),
            (!update.nlri.is_empty()).then_some(t::NEXT_HOP),
            // RFC 4271 §5.1.5: LOCAL_PREF is mandatory on internal sessions.
            (ctx.peer == PeerKind::Internal).then_some(t::LOCAL_PREF),
        ];
        for code in required.into_iter().flatten() {
            if !seen.has(code) {
                errors.push(UpdateError::new(
                    UpdateErrorKind::MissingWellKnown { type_code: code },
                    Action::TreatAsWithdraw,
                ));
            }
        }
    }
    Ok(UpdateDecoded { update, errors })
}

/// Raw AS4_PATH/AS4_AGGREGATOR collected while parsing, merged at the end (RFC 6793 §4.2.3).
#[derive(Default)]
struct As4 {
    path: Option<AsPath>,
    aggregator: Option<Aggregator>,
}

/// Which attribute type codes appeared (a 256-bit set; cheaper than `[bool; 256]` on the
/// per-UPDATE hot path).
#[derive(Default, Clone, Copy)]
struct Seen([u64; 4]);

impl Seen {
    fn has(&self, code: u8) -> bool {
        self.0[usize::from(code >> 6)] & (1 << (code & 63)) != 0
    }
    fn set(&mut self, code: u8) {
        self.0[usize::from(code >> 6)] |= 1 << (code & 63);
    }
}

/// Parses the path attributes. Returns which type codes were present (even if malformed).
fn decode_attributes(
    mut data: &[u8],
    ctx: &CodecContext,
    update: &mut Update,
    errors: &mut Vec<UpdateError>,
) -> Result<Seen, UpdateError> {
    let mut seen = Seen::default();
    let mut as4 = As4::default();
    while !data.is_empty() {
        // RFC 7606 §4: an attribute header or value running past the Total Path Attribute
        // Length is treat-as-withdraw, relying on that length to find the NLRI field. But
        // treat-as-withdraw needs every NLRI located (§5.2): if no MP attribute was parsed
        // yet, MP NLRI may hide in the unparsed rest, so the session is reset instead.
        let overrun = |reason: String, mp_seen: bool| {
            UpdateError::new(
                list_error(reason),
                if mp_seen {
                    Action::TreatAsWithdraw
                } else {
                    Action::SessionReset
                },
            )
        };
        let mp_seen = seen.has(t::MP_REACH_NLRI) || seen.has(t::MP_UNREACH_NLRI);
        let fl = data[0];
        let hdr = if fl & flags::EXTENDED_LENGTH != 0 {
            4
        } else {
            3
        };
        if data.len() < hdr {
            let e = overrun(
                format!(
                    "{} trailing octets are too few for an attribute header",
                    data.len()
                ),
                mp_seen,
            );
            if e.action == Action::SessionReset {
                return Err(e);
            }
            errors.push(e);
            break;
        }
        let code = data[1];
        let len = if hdr == 4 {
            usize::from(be16(data, 2))
        } else {
            usize::from(data[2])
        };
        if data.len() < hdr + len {
            let e = overrun(
                format!(
                    "attribute {} length {len} runs past the path attributes ({} octets left)",
                    crate::error::attribute_name(code),
                    data.len() - hdr
                ),
                mp_seen,
            );
            if e.action == Action::SessionReset {
                return Err(e);
            }
            errors.push(e);
            break;
        }
        let raw = &data[..hdr + len];
        let value = &data[hdr..hdr + len];
        data = &data[hdr + len..];

        if seen.has(code) {
            // RFC 7606 §3 g: repeated MP attributes reset the session; any other repeat is
            // discarded and processing continues.
            if code == t::MP_REACH_NLRI || code == t::MP_UNREACH_NLRI {
                return Err(fatal(list_error(format!(
                    "attribute {} appears more than once",
                    crate::error::attribute_name(code)
                ))));
            }
            errors.push(UpdateError::new(
                list_error(format!(
                    "attribute {} appears more than once; the repeat is discarded",
                    crate::error::attribute_name(code)
                )),
                Action::AttributeDiscard,
            ));
            continue;
        }
        seen.set(code);

        let Some(want) = expected_flags(code) else {
            if fl & flags::OPTIONAL == 0 {
                // RFC 4271 §6.3: unrecognised well-known attribute.
                return Err(fatal(UpdateErrorKind::UnrecognizedWellKnown {
                    type_code: code,
                    attr: raw.to_vec(),
                }));
            }
            if fl & flags::TRANSITIVE != 0 {
                // RFC 4271 §5/§9: keep unrecognised optional transitive attributes for
                // propagation, with the Partial bit set.
                update.attributes.unknown.push(RawAttribute {
                    flags: (fl & (flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL))
                        | flags::PARTIAL,
                    type_code: code,
                    value: value.to_vec(),
                });
            }
            // Unrecognised optional non-transitive attributes are quietly ignored.
            continue;
        };
        let ot = fl & (flags::OPTIONAL | flags::TRANSITIVE);
        // Partial may only be set on optional transitive attributes (RFC 4271 §4.3).
        let partial_bad = fl & flags::PARTIAL != 0 && want != (flags::OPTIONAL | flags::TRANSITIVE);
        if ot != want || partial_bad {
            // RFC 7606 §3 c: flags in conflict make the attribute malformed, handled as the
            // attribute's own malformation rule says.
            let action = if code == t::MP_REACH_NLRI || code == t::MP_UNREACH_NLRI {
                mp_action(value)
            } else {
                malformed_action(code)
            };
            let e = UpdateError::new(
                UpdateErrorKind::AttributeFlags {
                    type_code: code,
                    flags: fl,
                    attr: raw.to_vec(),
                },
                action,
            );
            if action == Action::SessionReset {
                return Err(e);
            }
            errors.push(e);
            continue;
        }
        if let Err(e) = decode_known(code, value, raw, ctx, update, &mut as4) {
            if e.action == Action::SessionReset {
                return Err(e);
            }
            errors.push(e);
        }
    }
    if !ctx.four_octet_as {
        merge_as4(&mut update.attributes, as4);
    }
    Ok(seen)
}

fn length_error(code: u8, value: &[u8], raw: &[u8], expected: &str) -> UpdateError {
    UpdateError::new(
        UpdateErrorKind::AttributeLength {
            type_code: code,
            length: value.len(),
            expected: expected.to_string(),
            attr: raw.to_vec(),
        },
        malformed_action(code),
    )
}

fn check_len(code: u8, value: &[u8], raw: &[u8], want: usize) -> Result<(), UpdateError> {
    if value.len() == want {
        Ok(())
    } else {
        Err(length_error(code, value, raw, &want.to_string()))
    }
}

fn check_multiple(code: u8, value: &[u8], raw: &[u8], unit: usize) -> Result<(), UpdateError> {
    if !value.is_empty() && value.len().is_multiple_of(unit) {
        Ok(())
    } else {
        Err(length_error(
            code,
            value,
            raw,
            &format!("a non-zero multiple of {unit}"),
        ))
    }
}

/// RFC 4271 §6.3: the NEXT_HOP must be a valid host address. Unspecified, multicast,
/// broadcast and class E addresses never are.
fn valid_v4_host(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.octets()[0] >= 240)
}

fn valid_v6_host(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_multicast())
}

fn decode_known(
    code: u8,
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
    update: &mut Update,
    as4: &mut As4,
) -> Result<(), UpdateError> {
    let attrs = &mut update.attributes;
    match code {
        t::ORIGIN => {
            check_len(code, value, raw, 1)?;
            attrs.origin = Some(Origin::from_value(value[0]).ok_or_else(|| {
                UpdateError::new(
                    UpdateErrorKind::InvalidOrigin {
                        value: value[0],
                        attr: raw.to_vec(),
                    },
                    Action::TreatAsWithdraw,
                )
            })?);
        }
        t::AS_PATH => {
            let path = decode_as_path(value, ctx.four_octet_as).map_err(|reason| {
                UpdateError::new(
                    UpdateErrorKind::MalformedAsPath {
                        reason,
                        attr: raw.to_vec(),
                    },
                    Action::TreatAsWithdraw,
                )
            })?;
            // RFC 7606 §7.2 / RFC 5065 §5.2: confederation segments from an external peer
            // (this codec does not model confederation membership) are treat-as-withdraw.
            if ctx.peer == PeerKind::External && path.segments.iter().any(|s| s.kind.is_confed()) {
                return Err(UpdateError::new(
                    UpdateErrorKind::MalformedAsPath {
                        reason: "confederation segment from an external peer".into(),
                        attr: raw.to_vec(),
                    },
                    Action::TreatAsWithdraw,
                ));
            }
            attrs.as_path = Some(path);
        }
        t::NEXT_HOP => {
            check_len(code, value, raw, 4)?;
            let nh = ipv4_at(value, 0);
            if !valid_v4_host(nh) {
                return Err(UpdateError::new(
                    UpdateErrorKind::InvalidNextHop {
                        next_hop: nh.to_string(),
                        attr: raw.to_vec(),
                    },
                    Action::TreatAsWithdraw,
                ));
            }
            attrs.next_hop = Some(nh);
        }
        t::MULTI_EXIT_DISC => {
            check_len(code, value, raw, 4)?;
            attrs.med = Some(be32(value, 0));
        }
        t::LOCAL_PREF => {
            // RFC 7606 §7.5: from an external peer LOCAL_PREF is discarded whatever it holds.
            if ctx.peer == PeerKind::External {
                return Ok(());
            }
            check_len(code, value, raw, 4)?;
            attrs.local_pref = Some(be32(value, 0));
        }
        t::ATOMIC_AGGREGATE => {
            check_len(code, value, raw, 0)?;
            attrs.atomic_aggregate = true;
        }
        t::AGGREGATOR => {
            if ctx.four_octet_as {
                check_len(code, value, raw, 8)?;
                attrs.aggregator = Some(Aggregator {
                    asn: be32(value, 0),
                    address: ipv4_at(value, 4),
                });
            } else {
                check_len(code, value, raw, 6)?;
                attrs.aggregator = Some(Aggregator {
                    asn: u32::from(be16(value, 0)),
                    address: ipv4_at(value, 2),
                });
            }
        }
        t::COMMUNITIES => {
            check_multiple(code, value, raw, 4)?;
            attrs.communities = value
                .chunks_exact(4)
                .map(|c| Community(be32(c, 0)))
                .collect();
        }
        t::ORIGINATOR_ID => {
            check_len(code, value, raw, 4)?;
            attrs.originator_id = Some(ipv4_at(value, 0));
        }
        t::CLUSTER_LIST => {
            check_multiple(code, value, raw, 4)?;
            attrs.cluster_list = value.chunks_exact(4).map(|c| ipv4_at(c, 0)).collect();
        }
        t::EXTENDED_COMMUNITIES => {
            check_multiple(code, value, raw, 8)?;
            attrs.extended_communities = value
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    a
                })
                .collect();
        }
        t::LARGE_COMMUNITY => {
            check_multiple(code, value, raw, 12)?;
            attrs.large_communities = value
                .chunks_exact(12)
                .map(|c| LargeCommunity {
                    global_admin: be32(c, 0),
                    local_data1: be32(c, 4),
                    local_data2: be32(c, 8),
                })
                .collect();
        }
        t::AS4_PATH => {
            // RFC 6793 §3: between two 4-octet speakers AS4_PATH is meaningless: discarded.
            if ctx.four_octet_as {
                return Ok(());
            }
            let path = decode_as_path(value, true).map_err(|reason| {
                UpdateError::new(
                    UpdateErrorKind::OptionalAttribute {
                        type_code: code,
                        reason,
                        attr: raw.to_vec(),
                    },
                    Action::AttributeDiscard,
                )
            })?;
            if path.segments.iter().any(|s| s.kind.is_confed()) {
                // RFC 6793 §3: confederation segments must not appear in AS4_PATH.
                return Err(UpdateError::new(
                    UpdateErrorKind::OptionalAttribute {
                        type_code: code,
                        reason: "contains a confederation segment".into(),
                        attr: raw.to_vec(),
                    },
                    Action::AttributeDiscard,
                ));
            }
            as4.path = Some(path);
        }
        t::AS4_AGGREGATOR => {
            if ctx.four_octet_as {
                return Ok(());
            }
            check_len(code, value, raw, 8)?;
            as4.aggregator = Some(Aggregator {
                asn: be32(value, 0),
                address: ipv4_at(value, 4),
            });
        }
        t::MP_REACH_NLRI => {
            let (reach, err) = decode_mp_reach(value, raw, ctx)?;
            update.mp_reach = Some(reach);
            if let Some(e) = err {
                return Err(e);
            }
        }
        t::MP_UNREACH_NLRI => update.mp_unreach = Some(decode_mp_unreach(value, raw, ctx)?),
        _ => {}
    }
    Ok(())
}

/// Decodes AS_PATH/AS4_PATH segments (RFC 4271 §4.3, RFC 7606 §7.2: unknown segment type,
/// zero segment length, or a segment overrunning the attribute is malformed).
pub(crate) fn decode_as_path(mut v: &[u8], four: bool) -> Result<AsPath, String> {
    let w = if four { 4 } else { 2 };
    let mut segments = Vec::new();
    while !v.is_empty() {
        if v.len() < 2 {
            return Err("segment header is truncated".into());
        }
        let kind = SegmentType::from_value(v[0])
            .ok_or_else(|| format!("unknown segment type {}", v[0]))?;
        let n = usize::from(v[1]);
        if n == 0 {
            return Err("segment of length 0".into());
        }
        if v.len() < 2 + n * w {
            return Err(format!(
                "segment of {n} {w}-octet AS numbers runs past the attribute"
            ));
        }
        let asns = v[2..2 + n * w]
            .chunks_exact(w)
            .map(|c| {
                if four {
                    be32(c, 0)
                } else {
                    u32::from(be16(c, 0))
                }
            })
            .collect();
        segments.push(AsSegment { kind, asns });
        v = &v[2 + n * w..];
    }
    Ok(AsPath { segments })
}

/// RFC 6793 §4.2.3: rebuild the real AS path and aggregator from AS4_PATH/AS4_AGGREGATOR.
fn merge_as4(attrs: &mut PathAttributes, as4: As4) {
    // An AGGREGATOR with a real (non-AS_TRANS) AS means the aggregation happened after the
    // last 4-octet speaker: AS4_AGGREGATOR and AS4_PATH are ignored.
    if let Some(agg) = &mut attrs.aggregator {
        if agg.asn != u32::from(AS_TRANS) {
            return;
        }
        if let Some(a4) = as4.aggregator {
            *agg = a4;
        }
    }
    let (Some(path), Some(p4)) = (&attrs.as_path, as4.path) else {
        return;
    };
    let n = path.path_len();
    let n4 = p4.path_len();
    if n < n4 {
        // AS4_PATH longer than AS_PATH: AS4_PATH is ignored.
        return;
    }
    let mut need = n - n4;
    let mut merged: Vec<AsSegment> = Vec::new();
    let mut prev_taken = true;
    for seg in &path.segments {
        if seg.kind.is_confed() {
            // A confed segment is kept if it leads or is adjacent to a kept segment.
            if prev_taken {
                merged.push(seg.clone());
                continue;
            }
            break;
        }
        if need == 0 {
            break;
        }
        match seg.kind {
            SegmentType::Set => {
                merged.push(seg.clone());
                need -= 1;
            }
            _ => {
                let k = need.min(seg.asns.len());
                merged.push(AsSegment {
                    kind: seg.kind,
                    asns: seg.asns[..k].to_vec(),
                });
                need -= k;
                prev_taken = k == seg.asns.len();
            }
        }
    }
    // Join the AS_PATH part and the AS4_PATH part into one sequence where they meet; the
    // segments inside AS4_PATH stay as they were sent.
    let mut rest = p4.segments.into_iter();
    if let Some(first) = rest.next() {
        match merged.last_mut() {
            Some(last)
                if last.kind == SegmentType::Sequence
                    && first.kind == SegmentType::Sequence
                    && last.asns.len() + first.asns.len() <= 255 =>
            {
                last.asns.extend(first.asns)
            }
            _ => merged.push(first),
        }
    }
    merged.extend(rest);
    attrs.as_path = Some(AsPath { segments: merged });
}

fn mp_error(reason: String, value: &[u8], raw: &[u8]) -> UpdateError {
    UpdateError::new(
        UpdateErrorKind::OptionalAttribute {
            type_code: raw.get(1).copied().unwrap_or(t::MP_REACH_NLRI),
            reason,
            attr: raw.to_vec(),
        },
        mp_action(value),
    )
}

fn decode_mp_reach(
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
) -> Result<(MpReach, Option<UpdateError>), UpdateError> {
    if value.len() < 5 {
        return Err(mp_error(
            format!(
                "length {} is shorter than AFI, SAFI, next hop length and reserved octet",
                value.len()
            ),
            value,
            raw,
        ));
    }
    let family = Family::new(be16(value, 0), value[2]);
    let nhl = usize::from(value[3]);
    if value.len() < 4 + nhl + 1 {
        return Err(mp_error(
            format!("next hop length {nhl} runs past the attribute"),
            value,
            raw,
        ));
    }
    if !family.is_unicast_ip() {
        // Families we do not route are kept opaque (the speaker did not negotiate them, so
        // it will ignore them).
        let reach = MpReach {
            family,
            next_hop: None,
            nlri: Vec::new(),
            raw: value[3..].to_vec(),
        };
        return Ok((reach, None));
    }
    let nh = &value[4..4 + nhl];
    // RFC 7606 §7.11: a next hop length the family does not allow makes the attribute
    // malformed. IPv4 NLRI may have an IPv6 next hop (RFC 8950).
    let next_hop = match (family, nhl) {
        (Family::IPV4_UNICAST, 4) => MpNextHop::Ipv4(ipv4_at(nh, 0)),
        (_, 16) => MpNextHop::Ipv6 {
            global: ipv6_at(nh, 0),
            link_local: None,
        },
        (_, 32) => MpNextHop::Ipv6 {
            global: ipv6_at(nh, 0),
            link_local: Some(ipv6_at(nh, 16)),
        },
        _ => {
            return Err(mp_error(
                format!("next hop length {nhl} is invalid for {family}"),
                value,
                raw,
            ));
        }
    };
    // The reserved (SNPA) octet at 4 + nhl is ignored on receipt (RFC 4760 §3).
    let mut nlri = Vec::new();
    decode_prefixes(
        &value[5 + nhl..],
        family == Family::IPV6_UNICAST,
        ctx.add_path(family),
        &mut nlri,
    )
    .map_err(|e| mp_error(format!("NLRI: {e}"), value, raw))?;
    let nh_ok = match next_hop {
        MpNextHop::Ipv4(a) => valid_v4_host(a),
        MpNextHop::Ipv6 { global, .. } => valid_v6_host(global),
    };
    let reach = MpReach {
        family,
        next_hop: Some(next_hop),
        nlri,
        raw: Vec::new(),
    };
    if !nh_ok {
        // The NLRI are parsed, so treat-as-withdraw is possible (RFC 7606 §7.3 / §7.11);
        // the attribute is kept so the RIB knows which routes to withdraw.
        let addr = match next_hop {
            MpNextHop::Ipv4(a) => IpAddr::V4(a),
            MpNextHop::Ipv6 { global, .. } => IpAddr::V6(global),
        };
        let e = UpdateError::new(
            UpdateErrorKind::InvalidNextHop {
                next_hop: addr.to_string(),
                attr: raw.to_vec(),
            },
            Action::TreatAsWithdraw,
        );
        return Ok((reach, Some(e)));
    }
    Ok((reach, None))
}

fn decode_mp_unreach(
    value: &[u8],
    raw: &[u8],
    ctx: &CodecContext,
) -> Result<MpUnreach, UpdateError> {
    if value.len() < 3 {
        return Err(mp_error(
            format!("length {} is shorter than AFI and SAFI", value.len()),
            value,
            raw,
        ));
    }
    let family = Family::new(be16(value, 0), value[2]);
    if !family.is_unicast_ip() {
        return Ok(MpUnreach {
            family,
            withdrawn: Vec::new(),
            raw: value[3..].to_vec(),
        });
    }
    let mut withdrawn = Vec::new();
    decode_prefixes(
        &value[3..],
        family == Family::IPV6_UNICAST,
        ctx.add_path(family),
        &mut withdrawn,
    )
    .map_err(|e| mp_error(format!("withdrawn routes: {e}"), value, raw))?;
    Ok(MpUnreach {
        family,
        withdrawn,
        raw: Vec::new(),
    })
}
