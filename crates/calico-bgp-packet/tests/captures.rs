//! Real captures (tests/data/, made by tests/data/capture.sh with BIRD 2.0.12 and GoBGP 3.10
//! from Debian talking to examples/capture_peer in a network namespace): every message
//! decodes cleanly in the negotiated context, re-encodes to bytes that decode to the same
//! message, and carries what the speakers were configured to send.

#![allow(clippy::unwrap_used)]

use std::net::Ipv4Addr;
use std::path::Path;

use calico_bgp_packet::*;

struct Capture {
    remote: Open,
    rx: CodecContext,
    messages: Vec<(String, Vec<u8>, Message)>,
}

fn load(name: &str) -> Capture {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let open_of = |b: &[u8]| match decode(b, &CodecContext::initial()).unwrap().message {
        Message::Open(o) => o,
        m => panic!("not an OPEN: {m:?}"),
    };
    let local = open_of(&read("local-open.bin"));
    let remote = open_of(&read("000-open.bin"));
    let (rx, _) = Open::negotiate(&local, &remote);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.ends_with(".bin") && f != "local-open.bin")
        .collect();
    files.sort();
    let mut messages = Vec::new();
    for f in files {
        let bytes = read(&f);
        let ctx = if f == "000-open.bin" {
            CodecContext::initial()
        } else {
            rx
        };
        let d = decode(&bytes, &ctx).unwrap_or_else(|e| panic!("{name}/{f}: {e}"));
        assert!(d.errors.is_empty(), "{name}/{f}: {:?}", d.errors);
        // Our re-encoding decodes to the same message.
        let again = d.message.encode(&ctx).unwrap();
        assert_eq!(
            decode(&again, &ctx).unwrap().message,
            d.message,
            "{name}/{f}"
        );
        messages.push((f, bytes, d.message));
    }
    Capture {
        remote,
        rx,
        messages,
    }
}

fn updates(c: &Capture) -> Vec<&Update> {
    c.messages
        .iter()
        .filter_map(|(_, _, m)| match m {
            Message::Update(u) => Some(u),
            _ => None,
        })
        .collect()
}

fn announced(c: &Capture) -> Vec<(Family, String, Option<u32>)> {
    updates(c)
        .iter()
        .flat_map(|u| {
            u.announced()
                .map(|(f, n)| (f, n.prefix.to_string(), n.path_id))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// How many captured messages our encoder reproduces byte for byte.
fn identical(c: &Capture) -> usize {
    c.messages
        .iter()
        .filter(|(f, bytes, m)| {
            let ctx = if f == "000-open.bin" {
                CodecContext::initial()
            } else {
                c.rx
            };
            let same = m.encode(&ctx).unwrap() == *bytes;
            if !same {
                eprintln!("  {f}: same message, different encoding");
            }
            same
        })
        .count()
}

#[test]
fn bird_ibgp_mesh_session() {
    // Calico's mesh shape: iBGP, ADD-PATH, graceful restart, IPv4 + IPv6.
    let c = load("bird-ibgp");
    assert_eq!(c.remote.asn(), 64512);
    assert_eq!(c.remote.bgp_id, Ipv4Addr::new(10, 99, 0, 1));
    assert!(c.remote.graceful_restart().is_some());
    assert!(c.rx.four_octet_as && c.rx.add_path_ipv4 && c.rx.add_path_ipv6);
    let mut got = announced(&c);
    got.sort();
    let v4: Vec<_> = got
        .iter()
        .filter(|(f, ..)| *f == Family::IPV4_UNICAST)
        .map(|(_, p, id)| (p.as_str(), id.is_some()))
        .collect();
    assert_eq!(
        v4,
        vec![
            ("10.64.0.0/26", true),
            ("10.64.0.64/26", true),
            ("192.168.7.1/32", true)
        ]
    );
    assert!(
        got.iter()
            .any(|(f, p, _)| *f == Family::IPV6_UNICAST && p == "fd00:1::/122")
    );
    let u = updates(&c)
        .into_iter()
        .find(|u| !u.nlri.is_empty())
        .unwrap();
    let a = &u.attributes;
    assert_eq!(a.origin, Some(Origin::Igp));
    assert_eq!(a.as_path, Some(AsPath::default()));
    assert_eq!(a.local_pref, Some(100));
    assert!(a.communities.contains(&Community::from_parts(64512, 100)));
    assert!(a.communities.contains(&Community::NO_EXPORT));
    assert_eq!(
        a.large_communities,
        vec![LargeCommunity {
            global_admin: 64512,
            local_data1: 1,
            local_data2: 2
        }]
    );
    let v6 = updates(&c)
        .into_iter()
        .find_map(|u| u.mp_reach.as_ref())
        .unwrap();
    assert!(
        matches!(v6.next_hop, Some(MpNextHop::Ipv6 { global, .. }) if global == "2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap())
    );
    // End-of-RIB for both families (RFC 4724), and `disable s6` withdrew the IPv6 routes.
    let eor: Vec<_> = updates(&c)
        .iter()
        .filter_map(|u| u.end_of_rib_family())
        .collect();
    assert!(eor.contains(&Family::IPV4_UNICAST) && eor.contains(&Family::IPV6_UNICAST));
    assert!(updates(&c).iter().any(|u| {
        u.withdrawn_routes()
            .any(|(f, n)| f == Family::IPV6_UNICAST && n.prefix.to_string() == "fd00:2::/64")
    }));
    eprintln!(
        "bird-ibgp: {} of {} byte-identical",
        identical(&c),
        c.messages.len()
    );
}

#[test]
fn bird_ebgp_four_octet() {
    let c = load("bird-ebgp");
    assert!(c.rx.four_octet_as);
    let u = updates(&c)
        .into_iter()
        .find(|u| !u.nlri.is_empty())
        .unwrap();
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::sequence(vec![64512, 4200000001]))
    );
    assert_eq!(u.attributes.med, Some(50));
    assert_eq!(u.attributes.next_hop, Some(Ipv4Addr::new(10, 99, 0, 1)));
    eprintln!(
        "bird-ebgp: {} of {} byte-identical",
        identical(&c),
        c.messages.len()
    );
}

#[test]
fn bird_to_an_old_two_octet_speaker() {
    // RFC 6793: BIRD sends AS_TRANS in AS_PATH plus AS4_PATH; we rebuild the real path.
    let c = load("bird-old");
    assert!(!c.rx.four_octet_as);
    let (_, bytes, m) = c
        .messages
        .iter()
        .find(|(_, _, m)| matches!(m, Message::Update(u) if !u.nlri.is_empty()))
        .unwrap();
    assert!(
        bytes.windows(2).any(|w| w == [0x5b, 0xa0]),
        "AS_TRANS on the wire"
    );
    let Message::Update(u) = m else { panic!() };
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::sequence(vec![64512, 4200000001]))
    );
    assert_eq!(u.attributes.large_communities[0].global_admin, 4200000001);
    eprintln!(
        "bird-old: {} of {} byte-identical",
        identical(&c),
        c.messages.len()
    );
}

#[test]
fn gobgp_ebgp_session() {
    let c = load("gobgp");
    assert_eq!(c.remote.asn(), 64512);
    let all = announced(&c);
    assert!(all.iter().any(|(_, p, _)| p == "10.65.0.0/26"));
    assert!(
        all.iter()
            .any(|(f, p, _)| *f == Family::IPV6_UNICAST && p == "fd00:9::/64")
    );
    let u = updates(&c)
        .into_iter()
        .find(|u| {
            u.nlri
                .iter()
                .any(|n| n.prefix.to_string() == "10.65.0.0/26")
        })
        .unwrap();
    assert_eq!(u.attributes.med, Some(10));
    assert_eq!(
        u.attributes.communities,
        vec![Community::from_parts(64512, 200)]
    );
    assert_eq!(u.attributes.large_communities[0].local_data1, 3);
    assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![64512])));
    // `gobgp global rib del` became a withdrawal.
    assert!(updates(&c).iter().any(|u| {
        u.withdrawn
            .iter()
            .any(|n| n.prefix.to_string() == "10.65.0.64/26")
    }));
    eprintln!(
        "gobgp: {} of {} byte-identical",
        identical(&c),
        c.messages.len()
    );
}
