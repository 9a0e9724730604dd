//! Decode/encode throughput of the UPDATEs a Calico node exchanges: IPv4 with 1 and 500
//! prefixes (BIRD packs ~440 /32s per UPDATE, bgp.md §4.3) and an IPv6 MP_REACH_NLRI UPDATE.
//! Criterion reports messages/s (Elements = 1) for the single-prefix case and prefixes/s
//! (Elements = prefix count) for the others.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use calico_bgp_packet::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

fn attrs(next_hop: Option<Ipv4Addr>) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![64512, 65001])),
        next_hop,
        local_pref: Some(100),
        communities: vec![Community::from_parts(64512, 100)],
        ..PathAttributes::default()
    }
}

fn v4_update(n: u32) -> Update {
    Update {
        attributes: attrs(Some(Ipv4Addr::new(10, 0, 0, 2))),
        nlri: (0..n)
            .map(|i| {
                let a = Ipv4Addr::from(0x0a40_0000 + (i << 6));
                Nlri::new(IpNet::V4(Ipv4Net::new(a, 26).unwrap()))
            })
            .collect(),
        ..Update::default()
    }
}

fn v6_update(n: u32) -> Update {
    Update {
        attributes: attrs(None),
        mp_reach: Some(MpReach {
            family: Family::IPV6_UNICAST,
            next_hop: Some(MpNextHop::Ipv6 {
                global: "2001:db8::2".parse().unwrap(),
                link_local: Some("fe80::2".parse().unwrap()),
            }),
            nlri: (0..n)
                .map(|i| {
                    let a = Ipv6Addr::from(
                        0xfd00_0000_0000_0000_0000_0000_0000_0000u128 + (u128::from(i) << 58),
                    );
                    Nlri::new(IpNet::V6(Ipv6Net::new(a, 122).unwrap()))
                })
                .collect(),
            raw: Vec::new(),
        }),
        ..Update::default()
    }
}

fn bench(c: &mut Criterion) {
    let ctx = CodecContext {
        four_octet_as: true,
        peer: PeerKind::Internal,
        ..CodecContext::default()
    };
    let cases = [
        ("ipv4_1", v4_update(1), 1u64),
        ("ipv4_500", v4_update(500), 500),
        ("ipv6_mp_reach_100", v6_update(100), 100),
    ];
    let mut g = c.benchmark_group("codec");
    for (name, update, prefixes) in cases {
        let msg = Message::Update(update);
        let bytes = msg.encode(&ctx).unwrap();
        assert_eq!(decode(&bytes, &ctx).unwrap().message, msg);
        g.throughput(Throughput::Elements(prefixes));
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| decode(black_box(&bytes), &ctx).unwrap())
        });
        let mut out = Vec::with_capacity(bytes.len());
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                out.clear();
                black_box(&msg).encode_into(&ctx, &mut out).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
