//! What `fuzz/fuzz_targets/bgp_decode.rs` checks, run on ~10k deterministic inputs so CI
//! (which runs unit tests, not cargo-fuzz) covers it: random bytes and mutations of valid
//! messages never panic, framing and decoding agree, and on 4-octet sessions a decoded
//! message re-encodes to something that decodes to the same message.

#![allow(clippy::unwrap_used)] // seed builders outside #[test] fns unwrap too

use std::net::Ipv4Addr;

use calico_bgp_packet::*;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn contexts() -> Vec<CodecContext> {
    let mut v = Vec::new();
    for bits in 0..16u8 {
        v.push(CodecContext {
            four_octet_as: bits & 1 != 0,
            add_path_ipv4: bits & 2 != 0,
            add_path_ipv6: bits & 4 != 0,
            extended_message: bits & 8 != 0,
            peer: match bits % 3 {
                0 => PeerKind::Unknown,
                1 => PeerKind::Internal,
                _ => PeerKind::External,
            },
        });
    }
    v
}

/// The property every input must satisfy; returns whether it decoded.
fn check(data: &[u8], ctx: &CodecContext) -> bool {
    let framed = frame(data, ctx);
    let decoded = decode(data, ctx);
    match (&framed, &decoded) {
        // A message that decodes was framed as exactly this many bytes.
        (Ok(Frame::Complete(n)), Ok(_)) => assert_eq!(*n, data.len()),
        (_, Ok(_)) => panic!("decoded but framing said {framed:?}"),
        // Header errors are the same whichever function finds them.
        (Err(f), Err(d)) => assert_eq!(f, d),
        _ => {}
    }
    if let Err(e) = &decoded {
        let n = e.notification();
        assert!((1..=7).contains(&n.code), "{e}");
        assert!(!e.to_string().is_empty());
    }
    let Ok(d) = decoded else {
        return false;
    };
    for e in &d.errors {
        assert_ne!(
            e.action,
            Action::SessionReset,
            "session reset returned as Ok: {e}"
        );
        assert_eq!(e.notification().code, code::UPDATE_MESSAGE);
    }
    if let Ok(bytes) = d.message.encode(ctx) {
        let again = decode(&bytes, ctx)
            .unwrap_or_else(|e| panic!("re-encoded {:?} does not decode: {e}", d.message));
        if ctx.four_octet_as {
            assert_eq!(again.message, d.message);
        }
    }
    true
}

fn seeds() -> Vec<Vec<u8>> {
    let ctx = CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    };
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![64512, 4_200_000_000])),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 2)),
        med: Some(5),
        local_pref: Some(100),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 65000,
            address: Ipv4Addr::new(1, 2, 3, 4),
        }),
        communities: vec![Community::NO_EXPORT],
        originator_id: Some(Ipv4Addr::new(9, 9, 9, 9)),
        cluster_list: vec![Ipv4Addr::new(8, 8, 8, 8)],
        extended_communities: vec![[0, 2, 0, 1, 0, 0, 0, 1]],
        large_communities: vec![LargeCommunity {
            global_admin: 1,
            local_data1: 2,
            local_data2: 3,
        }],
        unknown: vec![RawAttribute {
            flags: 0xe0,
            type_code: 200,
            value: vec![1, 2, 3],
        }],
    };
    let msgs = [
        Message::Keepalive,
        Message::Open(Open::new(
            4_200_000_000,
            90,
            Ipv4Addr::new(10, 0, 0, 1),
            vec![
                Capability::Multiprotocol(Family::IPV4_UNICAST),
                Capability::Multiprotocol(Family::IPV6_UNICAST),
                Capability::RouteRefresh,
                Capability::FourOctetAs(4_200_000_000),
                Capability::GracefulRestart(GracefulRestart {
                    restart_state: true,
                    notification: false,
                    restart_time: 120,
                    families: vec![GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        forwarding_state: true,
                    }],
                }),
                Capability::AddPath(vec![AddPathFamily {
                    family: Family::IPV4_UNICAST,
                    receive: true,
                    send: true,
                }]),
            ],
        )),
        Message::Update(Update {
            withdrawn: vec![Nlri::new("10.1.0.0/16".parse().unwrap())],
            attributes: attrs.clone(),
            nlri: vec![
                Nlri::new("10.64.0.0/26".parse().unwrap()),
                Nlri::new("192.168.1.1/32".parse().unwrap()),
            ],
            ..Update::default()
        }),
        Message::Update(Update {
            attributes: PathAttributes {
                next_hop: None,
                ..attrs
            },
            mp_reach: Some(MpReach {
                family: Family::IPV6_UNICAST,
                next_hop: Some(MpNextHop::Ipv6 {
                    global: "2001:db8::1".parse().unwrap(),
                    link_local: Some("fe80::1".parse().unwrap()),
                }),
                nlri: vec![Nlri::new("2001:db8:1::/64".parse().unwrap())],
                raw: Vec::new(),
            }),
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                withdrawn: vec![Nlri::new("2001:db8:2::/48".parse().unwrap())],
                raw: Vec::new(),
            }),
            ..Update::default()
        }),
        Message::Notification(Notification::cease_with_message(2, "maintenance")),
        Message::RouteRefresh(RouteRefresh {
            family: Family::IPV4_UNICAST,
            subtype: 0,
        }),
    ];
    msgs.iter().map(|m| m.encode(&ctx).unwrap()).collect()
}

#[test]
fn ten_thousand_inputs_never_panic() {
    let mut rng = Rng(0x5eed_b9b0_0000_0001);
    let ctxs = contexts();
    let seeds = seeds();
    let mut decoded = 0usize;
    let mut total = 0usize;
    for i in 0..10_000 {
        let ctx = &ctxs[i % ctxs.len()];
        let mut data = if i % 5 == 0 {
            // Pure noise behind a valid marker, sometimes with a fitting length.
            let len = 19 + rng.below(120);
            let mut d = vec![0xffu8; 16];
            d.extend((16..len).map(|_| rng.byte()));
            d
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        // 1-4 mutations: flip, overwrite, insert, delete, truncate.
        for _ in 0..1 + rng.below(4) {
            if data.is_empty() {
                break;
            }
            let at = rng.below(data.len());
            match rng.below(6) {
                0 => data[at] ^= 1 << rng.below(8),
                1 => data[at] = rng.byte(),
                2 => data.insert(at, rng.byte()),
                3 => {
                    data.remove(at);
                }
                4 => data.truncate(at.max(1)),
                _ => {
                    // Mutate the body only: keeps the header sane so the deep code runs.
                    if data.len() > 19 {
                        let b = 19 + rng.below(data.len() - 19);
                        data[b] = rng.byte();
                    }
                }
            }
        }
        // Usually fix the header length so decoding gets past framing.
        if rng.below(4) != 0 && data.len() >= 19 && data.len() <= 65535 {
            let l = data.len() as u16;
            data[16..18].copy_from_slice(&l.to_be_bytes());
        }
        total += 1;
        if check(&data, ctx) {
            decoded += 1;
        }
    }
    eprintln!("fuzz smoke: {decoded} of {total} inputs decoded");
    // The mutations must leave a good share decodable, or the deep paths were not reached.
    assert!(decoded > total / 20, "only {decoded} of {total} decoded");
    assert!(
        decoded < total,
        "every mutated input decoded: mutations are not working"
    );
}

#[test]
fn every_truncation_of_every_seed() {
    for ctx in contexts() {
        for seed in seeds() {
            for cut in 0..seed.len() {
                let mut d = seed[..cut].to_vec();
                if d.len() >= 19 {
                    let l = d.len() as u16;
                    d[16..18].copy_from_slice(&l.to_be_bytes());
                }
                check(&d, &ctx);
            }
        }
    }
}
