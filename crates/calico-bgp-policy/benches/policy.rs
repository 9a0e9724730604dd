//! Per-route cost of Calico's filters (issue 5 "speed"): 10k IPv4 /26 routes through
//!
//! * `import`: a ToR session whose BGPFilter has 10 rules, none matching (the worst case: every
//!   rule is tested, then the default accept);
//! * `export`: our own blocks towards the ToR through the same 10 export rules, then
//!   `calico_export_to_bgp_peers` with 4 pools (1 disabled), 64 affine blocks and a community
//!   rule (the LOCAL_PREF prologue modifies every route);
//! * `kernel`: `calico_kernel_programming` with 4 pools and 2 WireGuard next hops.
//!
//! Criterion reports routes/s (Elements = 10k).
//!
//! Recorded 2026-11-22 on the shared 2-vCPU VM, other builds running: import ~0.95 ms per 10k
//! (~10.5M routes/s), export ~7 ms per 10k (~1.4M routes/s: every local route is copied to
//! set its LOCAL_PREF and gets two communities), kernel ~0.23 ms per 10k (~43M routes/s).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use calico_api::bgpfilter::BGPFilter;
use calico_api::decode::decode_documents;
use calico_api::resource::Resource;
use calico_bgp::rib::{PeerInfo, PeerType, Route};
use calico_bgp_config::{
    AffineBlock, BlockState, ClusterInput, IpFamily, LocalInput, StaticPasswords, plan,
};
use calico_bgp_packet::{AsPath, Community, MpNextHop, Origin, PathAttributes};
use calico_bgp_policy::CalicoPolicies;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};

const N: u32 = 10_000;

fn setup() -> CalicoPolicies {
    let mut yaml = String::from(
        r#"
kind: BGPConfiguration
apiVersion: projectcalico.org/v3
metadata: {name: default}
spec:
  asNumber: 64512
  communities: [{name: c, value: "65000:1"}]
  prefixAdvertisements: [{cidr: 10.64.0.0/10, communities: [c, "65000:2"]}]
---
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: a}
spec: {bgp: {ipv4Address: 10.0.0.1/24}}
---
kind: BGPPeer
apiVersion: projectcalico.org/v3
metadata: {name: tor}
spec: {peerIP: 10.0.0.254, asNumber: 65000, filters: [f]}
"#,
    );
    for (i, (cidr, extra)) in [
        ("10.64.0.0/12", ""),
        ("10.80.0.0/12", ", vxlanMode: Always"),
        ("10.96.0.0/12", ", disableBGPExport: true"),
        ("10.112.0.0/12", ", ipipMode: Always"),
    ]
    .iter()
    .enumerate()
    {
        yaml.push_str(&format!(
            "---\nkind: IPPool\napiVersion: projectcalico.org/v3\nmetadata: {{name: p{i}}}\nspec: {{cidr: {cidr}{extra}}}\n"
        ));
    }
    let mut rules = String::new();
    for i in 0..10 {
        rules.push_str(&format!(
            "  - {{cidr: 172.{i}.0.0/16, matchOperator: In, communities: {{values: ['65000:{i}']}}, action: Reject}}\n"
        ));
    }
    yaml.push_str(&format!(
        "---\nkind: BGPFilter\napiVersion: projectcalico.org/v3\nmetadata: {{name: f}}\nspec:\n importV4:\n{rules} exportV4:\n{rules}"
    ));
    let (mut nodes, mut cfgs, mut peers, mut pools, mut filters) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in decode_documents("bench", &yaml).unwrap() {
        match d.resource {
            Resource::Node(n) => nodes.push(n),
            Resource::BGPConfiguration(c) => cfgs.push(c),
            Resource::BGPPeer(p) => peers.push(p),
            Resource::IPPool(p) => pools.push(p),
            Resource::BGPFilter(f) => filters.push(f),
            _ => {}
        }
    }
    let blocks: Vec<AffineBlock> = (0..64u32)
        .map(|i| AffineBlock {
            cidr: IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a40_0000 + (i << 6)), 26).unwrap()),
            state: BlockState::Confirmed,
        })
        .collect();
    let cluster = ClusterInput {
        nodes: &nodes,
        bgp_configurations: &cfgs,
        bgp_peers: &peers,
        ip_pools: &pools,
        bgp_filters: &filters,
    };
    let local = LocalInput {
        node_name: "a",
        affine_blocks: &blocks,
        ..LocalInput::default()
    };
    let mut v4 = plan(&cluster, &local, IpFamily::V4, &StaticPasswords::new()).unwrap();
    v4.wireguard_rejected_next_hops = vec![
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 8)),
    ];
    let map: BTreeMap<String, BGPFilter> = filters
        .into_iter()
        .map(|f| (f.metadata.name.clone(), f))
        .collect();
    CalicoPolicies::new(&[&v4], &map).unwrap()
}

fn routes(source: PeerInfo, next_hop: Option<MpNextHop>) -> Vec<Route> {
    let attrs = Arc::new(PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![65000])),
        communities: vec![Community::from_parts(65000, 99)],
        ..PathAttributes::default()
    });
    let source = Arc::new(source);
    (0..N)
        .map(|i| Route {
            prefix: IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a40_0000 + (i << 6)), 26).unwrap()),
            path_id: 0,
            attrs: attrs.clone(),
            next_hop,
            source: source.clone(),
            stale: false,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let pol = setup();
    let import = pol.import();
    let export = pol.export();
    let tor = PeerInfo::new(
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254)),
        Ipv4Addr::new(10, 0, 0, 254),
        65000,
        PeerType::External,
    );
    let received = routes(
        tor.clone(),
        Some(MpNextHop::Ipv4(Ipv4Addr::new(10, 0, 0, 254))),
    );
    let ours = routes(
        PeerInfo::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Ipv4Addr::UNSPECIFIED,
            64512,
            PeerType::Local,
        ),
        None,
    );
    let mut g = c.benchmark_group("calico_policy");
    g.throughput(Throughput::Elements(u64::from(N)));
    g.bench_function("import 10k via 10 rules", |b| {
        b.iter(|| {
            for r in &received {
                black_box(import.import(&tor, r));
            }
        })
    });
    g.bench_function("export 10k local via 10 rules + pools/blocks", |b| {
        b.iter(|| {
            for r in &ours {
                black_box(export.export(&tor, r));
            }
        })
    });
    g.bench_function("kernel 10k", |b| {
        b.iter(|| {
            for r in &received {
                black_box(pol.kernel_accepts(r));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
