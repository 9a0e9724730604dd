//! Golden vectors: byte arrays built by hand from the RFC message layouts, decoded and
//! re-encoded byte for byte.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns unwrap too

use std::net::{Ipv4Addr, Ipv6Addr};

use calico_bgp_packet::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars())
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const MARKER: &str = "ffffffffffffffffffffffffffffffff";

fn four() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    }
}

fn roundtrip_bytes(bytes: &[u8], ctx: &CodecContext) -> Message {
    assert_eq!(frame(bytes, ctx).unwrap(), Frame::Complete(bytes.len()));
    let d = decode(bytes, ctx).unwrap();
    assert!(d.errors.is_empty(), "unexpected errors {:?}", d.errors);
    assert_eq!(d.message.encode(ctx).unwrap(), bytes, "re-encoding differs");
    d.message
}

#[test]
fn keepalive() {
    let b = hex(&format!("{MARKER} 0013 04"));
    assert_eq!(roundtrip_bytes(&b, &four()), Message::Keepalive);
}

#[test]
fn open_with_capabilities() {
    // RFC 4271 §4.2 layout; capabilities RFC 5492 §4 in one optional parameter.
    let b = hex(&format!(
        "{MARKER} 0045 01
         04 fc00 005a 0a000001 28
         02 26
           01 04 0001 00 01          # MP ipv4 unicast
           01 04 0002 00 01          # MP ipv6 unicast
           02 00                     # route refresh
           46 00                     # enhanced route refresh
           41 04 fdea0001            # 4-octet AS 4259971073
           40 06 8078 0001 01 80     # GR: R bit, 120 s, ipv4 unicast F bit
           45 04 0001 01 03          # ADD-PATH ipv4 unicast send+receive
           06 00                     # extended message"
    ));
    let m = roundtrip_bytes(&b, &CodecContext::initial());
    let Message::Open(o) = m else {
        panic!("not an OPEN")
    };
    assert_eq!(o.my_as, 64512);
    assert_eq!(o.hold_time, 90);
    assert_eq!(o.bgp_id, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(o.asn(), 4259971073);
    assert_eq!(
        o.multiprotocol(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    assert!(o.has_capability(capability_code::ROUTE_REFRESH));
    assert!(o.has_capability(capability_code::ENHANCED_ROUTE_REFRESH));
    assert!(o.has_capability(capability_code::EXTENDED_MESSAGE));
    let gr = o.graceful_restart().unwrap();
    assert!(gr.restart_state && !gr.notification);
    assert_eq!(gr.restart_time, 120);
    assert_eq!(
        gr.families,
        vec![GracefulRestartFamily {
            family: Family::IPV4_UNICAST,
            forwarding_state: true
        }]
    );
    assert_eq!(
        o.add_path(),
        &[AddPathFamily {
            family: Family::IPV4_UNICAST,
            receive: true,
            send: true
        }]
    );
}

#[test]
fn open_with_parameters_split_and_unknown_capability() {
    // Two optional parameters (one capability each, the Cisco style) and an unknown
    // capability 128 that must be preserved. Re-encoding puts both in one parameter, so
    // compare values, not bytes.
    let b = hex(&format!(
        "{MARKER} 002b 01 04 0001 00b4 c0a80001 0e
         02 06 01 04 0001 00 01
         02 04 80 02 abcd"
    ));
    let d = decode(&b, &CodecContext::initial()).unwrap();
    let Message::Open(o) = d.message else {
        panic!()
    };
    assert_eq!(
        o.capabilities,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Unknown {
                code: 128,
                value: vec![0xab, 0xcd]
            }
        ]
    );
    let again = decode(
        &Message::Open(o.clone())
            .encode(&CodecContext::initial())
            .unwrap(),
        &CodecContext::initial(),
    )
    .unwrap();
    assert_eq!(again.message, Message::Open(o));
}

#[test]
fn open_rfc9072_extended_parameters() {
    // RFC 9072 §2: Non-Ext OP Len 255, Non-Ext OP Type 255, 2-octet Extended Opt. Parm.
    // Length, then parameters with 2-octet lengths.
    let b = hex(&format!(
        "{MARKER} 0025 01 04 0001 00b4 c0a80001 ff ff 0005
         02 0002 02 00"
    ));
    let d = decode(&b, &CodecContext::initial()).unwrap();
    let Message::Open(o) = d.message else {
        panic!()
    };
    assert_eq!(o.capabilities, vec![Capability::RouteRefresh]);
}

#[test]
fn update_ipv4_four_octet() {
    // ORIGIN IGP, AS_PATH SEQUENCE [65001 4200000000], NEXT_HOP 10.0.0.2, LOCAL_PREF 100,
    // COMMUNITIES [64512:100, NO_EXPORT], NLRI 10.64.0.0/26 and 192.168.0.0/16.
    let b = hex(&format!(
        "{MARKER} 0049 02
         0000
         002a
           40 01 01 00
           40 02 0a 02 02 0000fde9 fa56ea00
           40 03 04 0a000002
           40 05 04 00000064
           c0 08 08 fc000064 ffffff01
         1a 0a400000
         10 c0a8"
    ));
    let m = roundtrip_bytes(&b, &four());
    let Message::Update(u) = m else { panic!() };
    let a = &u.attributes;
    assert_eq!(a.origin, Some(Origin::Igp));
    assert_eq!(a.as_path, Some(AsPath::sequence(vec![65001, 4200000000])));
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(a.local_pref, Some(100));
    assert_eq!(
        a.communities,
        vec![Community::from_parts(64512, 100), Community::NO_EXPORT]
    );
    assert_eq!(
        u.nlri,
        vec![
            Nlri::new("10.64.0.0/26".parse().unwrap()),
            Nlri::new("192.168.0.0/16".parse().unwrap())
        ]
    );
}

#[test]
fn update_withdraw_and_end_of_rib() {
    let b = hex(&format!("{MARKER} 001b 02 0004 18 0a0001 0000"));
    let Message::Update(u) = roundtrip_bytes(&b, &four()) else {
        panic!()
    };
    assert_eq!(u.withdrawn, vec![Nlri::new("10.0.1.0/24".parse().unwrap())]);
    let eor = hex(&format!("{MARKER} 0017 02 0000 0000"));
    let Message::Update(u) = roundtrip_bytes(&eor, &four()) else {
        panic!()
    };
    assert_eq!(u.end_of_rib_family(), Some(Family::IPV4_UNICAST));
    // RFC 4724 §2: IPv6 End-of-RIB is an MP_UNREACH_NLRI with no withdrawn routes.
    let eor6 = hex(&format!("{MARKER} 001d 02 0000 0006 800f 03 0002 01"));
    let Message::Update(u) = roundtrip_bytes(&eor6, &four()) else {
        panic!()
    };
    assert_eq!(u.end_of_rib_family(), Some(Family::IPV6_UNICAST));
    assert_eq!(Update::end_of_rib(Family::IPV6_UNICAST), u);
}

#[test]
fn update_mp_reach_ipv6_with_link_local() {
    // RFC 4760 §3 + RFC 2545 §3: next hop length 32 = global + link-local.
    let b = hex(&format!(
        "{MARKER} 006d 02 0000 0056
         80 0e 3f 0002 01 20
            20010db8000000000000000000000001
            fe800000000000000000000000000001
            00
            40 20010db800010000
            7f 20010db8000200000000000000000000
         40 01 01 00
         40 02 06 02 01 0000fde8
         80 04 04 00000000"
    ));
    let Message::Update(u) = roundtrip_bytes(&b, &four()) else {
        panic!()
    };
    let r = u.mp_reach.unwrap();
    assert_eq!(r.family, Family::IPV6_UNICAST);
    assert_eq!(
        r.next_hop,
        Some(MpNextHop::Ipv6 {
            global: "2001:db8::1".parse::<Ipv6Addr>().unwrap(),
            link_local: Some("fe80::1".parse().unwrap())
        })
    );
    assert_eq!(
        r.nlri,
        vec![
            Nlri::new("2001:db8:1::/64".parse().unwrap()),
            Nlri::new("2001:db8:2::/127".parse().unwrap())
        ]
    );
    assert_eq!(u.attributes.med, Some(0));
}

#[test]
fn update_add_path_ipv4() {
    // RFC 7911 §3: a 4-octet path identifier precedes each prefix.
    let ctx = CodecContext {
        four_octet_as: true,
        add_path_ipv4: true,
        ..CodecContext::default()
    };
    let b = hex(&format!(
        "{MARKER} 002e 02 0000 000e
         40 01 01 02
         40 02 00
         40 03 04 0a000001
         00000007 20 0a000001"
    ));
    let Message::Update(u) = roundtrip_bytes(&b, &ctx) else {
        panic!()
    };
    assert_eq!(u.attributes.origin, Some(Origin::Incomplete));
    assert_eq!(u.attributes.as_path, Some(AsPath::default()));
    assert_eq!(
        u.nlri,
        vec![Nlri::with_path_id("10.0.0.1/32".parse().unwrap(), 7)]
    );
}

#[test]
fn update_two_octet_session_merges_as4_path() {
    // RFC 6793 §4.2.3: an OLD speaker's AS_PATH [65001 AS_TRANS AS_TRANS] with
    // AS4_PATH [4200000000 4200000001] becomes [65001 4200000000 4200000001].
    let b = hex(&format!(
        "{MARKER} 0052 02 0000 0037
         40 01 01 00
         40 02 08 02 03 fde9 5ba0 5ba0
         40 03 04 0a000002
         c0 07 06 5ba0 0a000009
         c0 11 0a 02 02 fa56ea00 fa56ea01
         c0 12 08 fa56ea02 0a000009
         18 0a0a0a"
    ));
    let ctx = CodecContext::initial();
    let d = decode(&b, &ctx).unwrap();
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    let Message::Update(u) = &d.message else {
        panic!()
    };
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::sequence(vec![65001, 4200000000, 4200000001]))
    );
    assert_eq!(
        u.attributes.aggregator,
        Some(Aggregator {
            asn: 4200000002,
            address: Ipv4Addr::new(10, 0, 0, 9)
        })
    );
    // Our encoder, as a NEW speaker talking to an OLD peer, puts the whole path into
    // AS4_PATH (RFC 6793 §4.2.2); decoding that gives the same path back.
    let out = d.message.encode(&ctx).unwrap();
    assert!(
        out.windows(17)
            .any(|w| w == hex("c0 11 0e 02 03 0000fde9 fa56ea00 fa56ea01"))
    );
    assert_eq!(decode(&out, &ctx).unwrap().message, d.message);
}

#[test]
fn as4_path_ignored_when_aggregator_is_not_as_trans() {
    let b = hex(&format!(
        "{MARKER} 0041 02 0000 0026
         40 01 01 00
         40 02 06 02 02 fde9 5ba0
         40 03 04 0a000002
         c0 07 06 fdea 0a000009
         c0 11 06 02 01 fa56ea00
         18 0a0a0a"
    ));
    let d = decode(&b, &CodecContext::initial()).unwrap();
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::sequence(vec![65001, 23456]))
    );
}

#[test]
fn unknown_transitive_attribute_gets_partial_bit() {
    // Type 99 optional transitive, not partial on receipt; kept with Partial set. Type 98
    // optional non-transitive: quietly dropped (RFC 4271 §5).
    let b = hex(&format!(
        "{MARKER} 0027 02 0000 0010
         40 01 01 00
         40 02 00
         c0 63 02 beef
         80 62 01 00"
    ));
    let d = decode(&b, &four()).unwrap();
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(
        u.attributes.unknown,
        vec![RawAttribute {
            flags: 0xe0,
            type_code: 99,
            value: vec![0xbe, 0xef]
        }]
    );
    let out = Message::Update(u).encode(&four()).unwrap();
    assert!(
        out.windows(5).any(|w| w == [0xe0, 0x63, 0x02, 0xbe, 0xef]),
        "forwarded with Partial set"
    );
}

#[test]
fn extended_length_flag_both_ways() {
    // An ORIGIN sent with the extended-length bit (allowed, RFC 4271 §4.3) decodes; we
    // re-encode with a 1-octet length. A 300-octet COMMUNITIES gets the extended length.
    let b = hex(&format!(
        "{MARKER} 001f 02 0000 0008 50 01 0001 00 40 02 00"
    ));
    let d = decode(&b, &four()).unwrap();
    assert!(d.errors.is_empty());
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    let mut u2 = u.clone();
    u2.attributes.communities = (0..75).map(Community).collect();
    let out = Message::Update(u2.clone()).encode(&four()).unwrap();
    assert!(out.windows(4).any(|w| w == [0xd0, 0x08, 0x01, 0x2c]));
    assert_eq!(decode(&out, &four()).unwrap().message, Message::Update(u2));
}

#[test]
fn notification_and_route_refresh() {
    // Cease / Administrative Shutdown with an RFC 8203 message.
    let b = hex(&format!("{MARKER} 001a 03 06 02 04 62796521"));
    let Message::Notification(n) = roundtrip_bytes(&b, &four()) else {
        panic!()
    };
    assert_eq!(n.shutdown_message(), Some("bye!"));
    assert_eq!(
        n.to_string(),
        "Cease (6) / Administrative Shutdown (2): \"bye!\""
    );
    assert_eq!(
        Notification::cease_with_message(subcode::CEASE_ADMIN_SHUTDOWN, "bye!"),
        n
    );
    // RFC 2918 ROUTE-REFRESH for IPv6 unicast; RFC 7313 BoRR subtype 1.
    let rr = hex(&format!("{MARKER} 0017 05 0002 01 01"));
    assert_eq!(
        roundtrip_bytes(&rr, &four()),
        Message::RouteRefresh(RouteRefresh {
            family: Family::IPV6_UNICAST,
            subtype: 1
        })
    );
}

#[test]
fn framing_stream() {
    let ka = hex(&format!("{MARKER} 0013 04"));
    let ctx = four();
    let mut stream = ka.clone();
    stream.extend_from_slice(&ka[..10]);
    assert_eq!(frame(&stream, &ctx).unwrap(), Frame::Complete(19));
    assert_eq!(frame(&stream[19..], &ctx).unwrap(), Frame::NeedMore(19));
    assert_eq!(frame(&[], &ctx).unwrap(), Frame::NeedMore(19));
    // A long UPDATE header announces its length before the body arrives.
    let hdr = hex(&format!("{MARKER} 0800 02"));
    assert_eq!(frame(&hdr, &ctx).unwrap(), Frame::NeedMore(0x800));
    // 5000 octets need the extended message capability (RFC 8654).
    let big = hex(&format!("{MARKER} 1388 02"));
    assert_eq!(
        frame(&big, &ctx).unwrap_err().notification(),
        Notification::new(1, 2, vec![0x13, 0x88])
    );
    let ext = CodecContext {
        extended_message: true,
        ..ctx
    };
    assert_eq!(frame(&big, &ext).unwrap(), Frame::NeedMore(5000));
    // A bad marker is reported as soon as the first byte shows it.
    assert_eq!(
        frame(&[0xff, 0xfe], &ctx).unwrap_err(),
        DecodeError::ConnectionNotSynchronized
    );
}

#[test]
fn large_communities_originator_cluster_list() {
    let b = hex(&format!(
        "{MARKER} 004a 02 0000 002f
         40 01 01 00
         40 02 00
         40 03 04 0a000002
         80 09 04 0a000001
         80 0a 08 01010101 02020202
         c0 20 0c 0000fc00 00000001 00000002
         18 0a0a0a"
    ));
    let Message::Update(u) = roundtrip_bytes(&b, &four()) else {
        panic!()
    };
    assert_eq!(u.attributes.originator_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(
        u.attributes.cluster_list,
        vec![Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)]
    );
    assert_eq!(u.attributes.large_communities[0].to_string(), "64512:1:2");
}

#[test]
fn negotiate_contexts() {
    let ap = |receive, send| {
        Capability::AddPath(vec![AddPathFamily {
            family: Family::IPV4_UNICAST,
            receive,
            send,
        }])
    };
    let id = Ipv4Addr::new(1, 1, 1, 1);
    let local = Open::new(
        64512,
        90,
        id,
        vec![
            Capability::FourOctetAs(64512),
            Capability::ExtendedMessage,
            ap(true, false),
        ],
    );
    let remote = Open::new(
        64512,
        90,
        id,
        vec![Capability::FourOctetAs(64512), ap(true, true)],
    );
    let (rx, tx) = Open::negotiate(&local, &remote);
    assert!(rx.four_octet_as && tx.four_octet_as);
    assert!(
        !rx.extended_message,
        "only one side advertised extended messages"
    );
    assert_eq!(rx.peer, PeerKind::Internal);
    assert!(rx.add_path_ipv4 && !rx.add_path_ipv6);
    assert!(!tx.add_path_ipv4, "we did not advertise send");
    let old = Open::new(65001, 90, id, vec![]);
    let (rx, _) = Open::negotiate(&local, &old);
    assert!(!rx.four_octet_as && !rx.add_path_ipv4);
    assert_eq!(rx.peer, PeerKind::External);
}

#[test]
fn packing_fills_messages() {
    use ipnet::{IpNet, Ipv4Net, Ipv6Net};
    let ctx = CodecContext {
        four_octet_as: true,
        add_path_ipv4: true,
        ..CodecContext::default()
    };
    let v4: Vec<Nlri> = (0..10_000u32)
        .map(|i| {
            Nlri::with_path_id(
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + i), 32).unwrap()),
                1,
            )
        })
        .collect();
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 1)),
        local_pref: Some(100),
        ..PathAttributes::default()
    };
    let ups = Update::pack_announcements(&attrs, Family::IPV4_UNICAST, None, &v4, &ctx).unwrap();
    // 9 octets per prefix with ADD-PATH: ~450 per 4096-octet message.
    assert_eq!(ups.len(), 10_000usize.div_ceil(447), "{}", ups.len());
    let mut back = Vec::new();
    for u in &ups {
        let b = Message::Update(u.clone()).encode(&ctx).unwrap();
        assert!(b.len() <= 4096);
        let Message::Update(d) = decode(&b, &ctx).unwrap().message else {
            panic!()
        };
        back.extend(d.nlri);
    }
    assert_eq!(back, v4);
    // IPv6 through MP_REACH_NLRI (extended attribute length) and MP_UNREACH_NLRI.
    let v6: Vec<Nlri> = (0..1000u128)
        .map(|i| {
            Nlri::new(IpNet::V6(
                Ipv6Net::new(Ipv6Addr::from(0xfd00u128 << 112 | i << 6), 122).unwrap(),
            ))
        })
        .collect();
    let nh = MpNextHop::Ipv6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let attrs6 = PathAttributes {
        next_hop: None,
        ..attrs
    };
    let ups =
        Update::pack_announcements(&attrs6, Family::IPV6_UNICAST, Some(nh), &v6, &ctx).unwrap();
    let wds = Update::pack_withdrawals(Family::IPV6_UNICAST, &v6, &ctx).unwrap();
    for (list, total) in [(ups, 1000), (wds, 1000)] {
        let mut n = 0;
        let count = list.len();
        for (i, u) in list.into_iter().enumerate() {
            let b = Message::Update(u).encode(&ctx).unwrap();
            assert!(b.len() <= 4096, "{}", b.len());
            // Every message but the last is full (no room for another 17-octet prefix).
            assert!(i + 1 == count || b.len() > 4096 - 17, "{}", b.len());
            let Message::Update(d) = decode(&b, &ctx).unwrap().message else {
                panic!()
            };
            n += d.announced().count() + d.withdrawn_routes().count();
        }
        assert_eq!(n, total);
    }
}

#[test]
fn encode_errors_leave_the_buffer_alone() {
    let ctx = four();
    let mut out = vec![1, 2, 3];
    let v6_in_v4_field = Message::Update(Update {
        nlri: vec![Nlri::new("2001:db8::/32".parse().unwrap())],
        ..Update::default()
    });
    let e = v6_in_v4_field.encode_into(&ctx, &mut out).unwrap_err();
    assert_eq!(
        e.to_string(),
        "IPv6 prefix 2001:db8::/32 in the IPv4 NLRI/withdrawn field"
    );
    assert_eq!(out, vec![1, 2, 3]);
    let v4_next_hop_for_v6 = Message::Update(Update {
        mp_reach: Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: Some(MpNextHop::Ipv4(Ipv4Addr::new(10, 0, 0, 1))),
            nlri: vec![],
            raw: vec![],
        }),
        ..Update::default()
    });
    assert!(v4_next_hop_for_v6.encode_into(&ctx, &mut out).is_err());
    // Too many prefixes for 4096 octets.
    let big = Message::Update(Update {
        withdrawn: (0..2000u32)
            .map(|i| Nlri::new(format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap()))
            .collect(),
        ..Update::default()
    });
    assert!(matches!(
        big.encode_into(&ctx, &mut out),
        Err(EncodeError::MessageTooLong { max: 4096, .. })
    ));
    assert_eq!(out, vec![1, 2, 3]);
}
