//! proptest strategies shared by the round-trip and oracle tests.

#![allow(dead_code)] // each test binary uses a subset
#![allow(clippy::unwrap_used)]

use std::net::{Ipv4Addr, Ipv6Addr};

use calico_bgp_packet::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

pub fn ctx() -> impl Strategy<Value = CodecContext> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(four, ap4, ap6)| CodecContext {
        four_octet_as: four,
        add_path_ipv4: ap4,
        add_path_ipv6: ap6,
        extended_message: false,
        peer: PeerKind::Unknown,
    })
}

pub fn v4_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()))
}

pub fn v6_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
}

pub fn nlri(prefix: impl Strategy<Value = IpNet>, add_path: bool) -> impl Strategy<Value = Nlri> {
    (prefix, any::<u32>()).prop_map(move |(p, id)| Nlri {
        prefix: p,
        path_id: add_path.then_some(id),
    })
}

/// A valid host address for NEXT_HOP (RFC 4271 §6.3).
pub fn host_v4() -> impl Strategy<Value = Ipv4Addr> {
    (1u8..=223, any::<[u8; 3]>()).prop_map(|(a, r)| Ipv4Addr::new(a, r[0], r[1], r[2]))
}

pub fn host_v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(|a| Ipv6Addr::from((a & !(0xff << 120)) | (0x20 << 120)))
}

pub fn as_path() -> impl Strategy<Value = AsPath> {
    let seg = |kinds: Vec<SegmentType>| {
        (prop::sample::select(kinds), vec(any::<u32>(), 1..8))
            .prop_map(|(kind, asns)| AsSegment { kind, asns })
    };
    (
        vec(
            seg(vec![SegmentType::ConfedSequence, SegmentType::ConfedSet]),
            0..2,
        ),
        vec(seg(vec![SegmentType::Sequence, SegmentType::Set]), 0..4),
    )
        .prop_map(|(mut confed, rest)| {
            confed.extend(rest);
            AsPath { segments: confed }
        })
}

pub fn attributes(with_next_hop: bool) -> impl Strategy<Value = PathAttributes> {
    let origin = prop::sample::select(vec![Origin::Igp, Origin::Egp, Origin::Incomplete]);
    (
        (
            option::of(origin),
            option::of(as_path()),
            if with_next_hop {
                option::of(host_v4()).boxed()
            } else {
                Just(None).boxed()
            },
            option::of(any::<u32>()),
            option::of(any::<u32>()),
            any::<bool>(),
            option::of(
                (any::<u32>(), any::<[u8; 4]>()).prop_map(|(asn, a)| Aggregator {
                    asn,
                    address: Ipv4Addr::from(a),
                }),
            ),
        ),
        (
            vec(any::<u32>().prop_map(Community), 0..10),
            option::of(any::<[u8; 4]>().prop_map(Ipv4Addr::from)),
            vec(any::<[u8; 4]>().prop_map(Ipv4Addr::from), 0..5),
            vec(any::<[u8; 8]>(), 0..4),
            vec(
                any::<(u32, u32, u32)>().prop_map(|(g, a, b)| LargeCommunity {
                    global_admin: g,
                    local_data1: a,
                    local_data2: b,
                }),
                0..4,
            ),
            prop::collection::btree_map(100u8..=250, vec(any::<u8>(), 0..300), 0..3),
        ),
    )
        .prop_map(
            |(
                (origin, as_path, next_hop, med, local_pref, atomic_aggregate, aggregator),
                (communities, originator_id, cluster_list, ext, large, unknown),
            )| {
                PathAttributes {
                    origin,
                    as_path,
                    next_hop,
                    med,
                    local_pref,
                    atomic_aggregate,
                    aggregator,
                    communities,
                    originator_id,
                    cluster_list,
                    extended_communities: ext,
                    large_communities: large,
                    unknown: unknown
                        .into_iter()
                        .map(|(type_code, value)| RawAttribute {
                            flags: flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL,
                            type_code,
                            value,
                        })
                        .collect(),
                }
            },
        )
}

pub fn mp_next_hop(v4_allowed: bool) -> impl Strategy<Value = MpNextHop> {
    let v6 = (
        host_v6(),
        option::of(any::<u128>().prop_map(Ipv6Addr::from)),
    )
        .prop_map(|(global, link_local)| MpNextHop::Ipv6 { global, link_local });
    if v4_allowed {
        prop_oneof![host_v4().prop_map(MpNextHop::Ipv4), v6].boxed()
    } else {
        v6.boxed()
    }
}

pub fn mp_reach(c: CodecContext) -> impl Strategy<Value = MpReach> {
    let v4 = (
        mp_next_hop(true),
        vec(nlri(v4_prefix(), c.add_path_ipv4), 0..20),
    )
        .prop_map(|(nh, nlri)| MpReach {
            family: Family::IPV4_UNICAST,
            next_hop: Some(nh),
            nlri,
            raw: Vec::new(),
        });
    let v6 = (
        mp_next_hop(false),
        vec(nlri(v6_prefix(), c.add_path_ipv6), 0..20),
    )
        .prop_map(|(nh, nlri)| MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: Some(nh),
            nlri,
            raw: Vec::new(),
        });
    let other = (
        1u16..=2,
        prop::sample::select(vec![2u8, 4, 128]),
        vec(any::<u8>(), 0..20),
        vec(any::<u8>(), 0..40),
    )
        .prop_map(|(afi, safi, nh, nlri)| {
            // RFC 4760 §3: next hop length, next hop, reserved octet, NLRI.
            let mut raw = vec![nh.len() as u8];
            raw.extend_from_slice(&nh);
            raw.push(0);
            raw.extend_from_slice(&nlri);
            MpReach {
                family: Family::new(afi, safi),
                next_hop: None,
                nlri: Vec::new(),
                raw,
            }
        });
    prop_oneof![v4, v6, other]
}

pub fn mp_unreach(c: CodecContext) -> impl Strategy<Value = MpUnreach> {
    prop_oneof![
        vec(nlri(v4_prefix(), c.add_path_ipv4), 0..20).prop_map(|w| MpUnreach {
            family: Family::IPV4_UNICAST,
            withdrawn: w,
            raw: Vec::new(),
        }),
        vec(nlri(v6_prefix(), c.add_path_ipv6), 0..20).prop_map(|w| MpUnreach {
            family: Family::IPV6_UNICAST,
            withdrawn: w,
            raw: Vec::new(),
        }),
        (vec(any::<u8>(), 0..40)).prop_map(|raw| MpUnreach {
            family: Family::new(25, 70),
            withdrawn: Vec::new(),
            raw,
        }),
    ]
}

pub fn update(c: CodecContext) -> impl Strategy<Value = Update> {
    (
        vec(nlri(v4_prefix(), c.add_path_ipv4), 0..30),
        attributes(true),
        option::of(mp_reach(c)),
        option::of(mp_unreach(c)),
        vec(nlri(v4_prefix(), c.add_path_ipv4), 0..30),
    )
        .prop_map(
            |(withdrawn, attributes, mp_reach, mp_unreach, nlri)| Update {
                withdrawn,
                attributes,
                mp_reach,
                mp_unreach,
                nlri,
            },
        )
        // RFC 6793 §4.2.3: a real (non-AS_TRANS) 2-octet AGGREGATOR makes the receiver
        // ignore AS4_PATH, so on a 2-octet session such a route cannot carry wide ASNs.
        .prop_filter("aggregator hides AS4_PATH", move |u| {
            if c.four_octet_as {
                return true;
            }
            let narrow_agg = u
                .attributes
                .aggregator
                .is_some_and(|a| a.asn <= 0xffff && a.asn != u32::from(AS_TRANS));
            let wide_path = u.attributes.as_path.as_ref().is_some_and(|p| {
                p.segments
                    .iter()
                    .any(|s| s.asns.iter().any(|&a| a > 0xffff))
            });
            !(narrow_agg && wide_path) && u.attributes.as_path.as_ref().is_none_or(confed_is_narrow)
        })
}

/// AS4_PATH never carries confederation segments (RFC 6793 §3), so on a 2-octet session
/// confederation member ASes must fit 2 octets (RFC 6793 §7).
pub fn confed_is_narrow(p: &AsPath) -> bool {
    p.segments
        .iter()
        .filter(|s| s.kind.is_confed())
        .all(|s| s.asns.iter().all(|&a| a <= 0xffff))
}

pub fn capability() -> impl Strategy<Value = Capability> {
    let fam = (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Family::new(a, s));
    prop_oneof![
        fam.clone().prop_map(Capability::Multiprotocol),
        Just(Capability::RouteRefresh),
        Just(Capability::EnhancedRouteRefresh),
        Just(Capability::ExtendedMessage),
        vec(any::<(u16, u16, u16)>(), 1..4).prop_map(|l| Capability::ExtendedNextHop(
            l.into_iter()
                .map(|(afi, safi, next_hop_afi)| ExtendedNextHopFamily {
                    afi,
                    safi,
                    next_hop_afi
                })
                .collect()
        )),
        (
            any::<bool>(),
            any::<bool>(),
            0u16..4096,
            vec((fam.clone(), any::<bool>()), 0..4)
        )
            .prop_map(|(r, n, t, f)| Capability::GracefulRestart(GracefulRestart {
                restart_state: r,
                notification: n,
                restart_time: t,
                families: f
                    .into_iter()
                    .map(|(family, forwarding_state)| GracefulRestartFamily {
                        family,
                        forwarding_state
                    })
                    .collect(),
            })),
        (1u32..).prop_map(Capability::FourOctetAs),
        vec((fam, 1u8..=3), 1..4).prop_map(|l| Capability::AddPath(
            l.into_iter()
                .map(|(family, m)| AddPathFamily {
                    family,
                    receive: m & 1 != 0,
                    send: m & 2 != 0
                })
                .collect()
        )),
        (
            prop::sample::select(vec![3u8, 4, 7, 8, 66, 71, 73, 128, 255]),
            vec(any::<u8>(), 0..20)
        )
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

pub fn message(c: CodecContext) -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            1u16..,
            prop_oneof![Just(0u16), 3u16..],
            1u32..,
            vec(capability(), 0..8)
        )
            .prop_map(|(my_as, hold_time, id, capabilities)| Message::Open(Open {
                my_as,
                hold_time,
                bgp_id: Ipv4Addr::from(id),
                capabilities,
            })),
        update(c).prop_map(Message::Update),
        (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..64))
            .prop_map(|(c, s, d)| Message::Notification(Notification::new(c, s, d))),
        Just(Message::Keepalive),
        (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(afi, safi, subtype)| {
            Message::RouteRefresh(RouteRefresh {
                family: Family::new(afi, safi),
                subtype,
            })
        }),
    ]
}

pub fn with_ctx() -> impl Strategy<Value = (CodecContext, Message)> {
    ctx().prop_flat_map(|c| (Just(c), message(c)))
}
