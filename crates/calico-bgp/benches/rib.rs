//! RIB insert throughput (issue 5 "speed"): 100k IPv4 prefixes from one peer into an empty
//! RIB, then the same 100k from a second peer with a better path (higher LOCAL_PREF), which
//! makes every prefix change its best path. Each prefix also goes through Adj-RIB-Out export
//! to one established eBGP peer, as in the speaker. Criterion reports routes/s
//! (Elements = 100k).
//!
//! A third case reflects 10k routes from one route-reflector client to 99 others.
//!
//! Recorded 2026-11-22 on the shared 2-vCPU VM (bgp.md §0), load ~1, other builds running:
//! first peer 70–85 ms per 100k (1.2–1.4M routes/s), better second peer 85–95 ms
//! (1.1–1.2M routes/s), RR 10k × 99 clients ~490 ms (~2.0M Adj-RIB-Out entries/s).

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use calico_bgp::rib::{PeerConfig, PeerId, PeerInfo, PeerType, Rib, RibConfig};
use calico_bgp_packet::{AsPath, MpNextHop, Nlri, Origin, PathAttributes, Update};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};

const N: u32 = 100_000;
const LOCAL_AS: u32 = 64512;

fn peer(n: u8, asn: u32) -> PeerConfig {
    let t = if asn == LOCAL_AS {
        PeerType::Internal
    } else {
        PeerType::External
    };
    PeerConfig::new(
        PeerInfo::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
            Ipv4Addr::new(1, 1, 1, n),
            asn,
            t,
        ),
        Some(Ipv4Addr::new(10, 0, 0, 1)),
        None,
    )
}

fn prefixes() -> Vec<IpNet> {
    // Calico-like /26 blocks out of 10.0.0.0/8 upwards.
    (0..N)
        .map(|i| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0A00_0000 + (i << 6)), 26).unwrap()))
        .collect()
}

/// UPDATEs of 440 prefixes each (BIRD's packing of /26s into 4 KiB, bgp.md §4.3).
fn updates(from: u8, local_pref: u32) -> Vec<Update> {
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![])),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, from)),
        local_pref: Some(local_pref),
        ..PathAttributes::default()
    };
    prefixes()
        .chunks(440)
        .map(|c| Update {
            attributes: attrs.clone(),
            nlri: c.iter().map(|p| Nlri::new(*p)).collect(),
            ..Update::default()
        })
        .collect()
}

fn rib() -> Rib {
    let mut rib = Rib::new(RibConfig {
        local_as: LOCAL_AS,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        cluster_id: None,
    });
    rib.add_peer(peer(2, LOCAL_AS)).unwrap();
    rib.add_peer(peer(3, LOCAL_AS)).unwrap();
    rib.add_peer(peer(4, 65004)).unwrap();
    rib.session_established(PeerId(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 4))))
        .unwrap();
    rib
}

fn apply(rib: &mut Rib, from: u8, ups: &[Update]) -> usize {
    let id = PeerId(IpAddr::V4(Ipv4Addr::new(10, 0, 0, from)));
    let mut n = 0;
    for u in ups {
        let ch = rib.apply_update(id, u, None).unwrap();
        n += ch.len();
        black_box(rib.export_changes(&ch));
    }
    n
}

fn bench(c: &mut Criterion) {
    let first = updates(2, 100);
    let second = updates(3, 200);
    let probe = prefixes()[0];
    let mut g = c.benchmark_group("rib");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(N)));
    g.bench_function("insert_100k_first_peer", |b| {
        b.iter_batched(
            rib,
            |mut r| {
                assert_eq!(apply(&mut r, 2, &first), N as usize);
                black_box(r)
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("insert_100k_better_second_peer", |b| {
        b.iter_batched(
            || {
                let mut r = rib();
                apply(&mut r, 2, &first);
                r
            },
            |mut r| {
                // Every prefix changes best path; the eBGP peer's advertisement stays the
                // same after rewriting (next hop self, no LOCAL_PREF) and is suppressed.
                assert_eq!(apply(&mut r, 3, &second), N as usize);
                let best = r.best(&probe).unwrap();
                assert_eq!(
                    best.next_hop,
                    Some(MpNextHop::Ipv4(Ipv4Addr::new(10, 0, 0, 3)))
                );
                black_box(r)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // Route reflector with 100 clients: 10k /26 blocks from one client are reflected to the
    // other 99 (~1M Adj-RIB-Out entries). Elements = routes × destinations.
    const RR_N: u32 = 10_000;
    let rr_first: Vec<Update> = {
        let mut u = updates(2, 100);
        u.truncate((RR_N / 440 + 1) as usize);
        let total: usize = u.iter().map(|x| x.nlri.len()).sum();
        let extra = total - RR_N as usize;
        if let Some(last) = u.last_mut() {
            last.nlri.truncate(last.nlri.len() - extra);
        }
        u
    };
    let mut g = c.benchmark_group("rib_rr");
    g.sample_size(10);
    g.throughput(Throughput::Elements(u64::from(RR_N) * 99));
    g.bench_function("reflect_10k_to_99_clients", |b| {
        b.iter_batched(
            || {
                let mut r = Rib::new(RibConfig {
                    local_as: LOCAL_AS,
                    router_id: Ipv4Addr::new(10, 0, 0, 1),
                    cluster_id: Some(Ipv4Addr::new(10, 255, 0, 1)),
                });
                for n in 2..=101u8 {
                    let mut pc = peer(n, LOCAL_AS);
                    pc.info.rr_client = true;
                    r.add_peer(pc).unwrap();
                    r.session_established(PeerId(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))))
                        .unwrap();
                }
                r
            },
            |mut r| {
                let id = PeerId(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
                let mut sent = 0;
                for u in &rr_first {
                    let ch = r.apply_update(id, u, None).unwrap();
                    sent += r.export_changes(&ch).len();
                }
                assert_eq!(sent, RR_N as usize * 99);
                black_box(r)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
