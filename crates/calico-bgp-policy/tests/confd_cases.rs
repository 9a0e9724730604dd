//! confd's golden cases as route tables: each case's `input.yaml` (copied from
//! `confd/tests/mock_data/calicoctl/<case>/`, see `tests/data/README.md`) is planned for node
//! `kube-master` with confd's standard block affinities, and routes are run through the
//! resulting policies. The expected verdicts were read off the golden BIRD configs of the same
//! case (`confd/tests/compiled_templates/<case>/bird*.cfg`), statement by statement; each table
//! quotes the statements it exercises.

#![allow(clippy::unwrap_used)] // a panic is a test failure.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

use calico_api::bgpfilter::BGPFilter;
use calico_api::decode::decode_documents;
use calico_api::resource::Resource;
use calico_bgp::rib::{PeerId, PeerInfo, PeerType, PolicyResult, Route};
use calico_bgp_config::{
    AffineBlock, BlockState, ClusterInput, IpFamily, LocalInput, NodeBgpPlan, StaticPasswords, plan,
};
use calico_bgp_packet::{AsPath, Community, LargeCommunity, MpNextHop, Origin, PathAttributes};
use calico_bgp_policy::{BIRD_INT_MAX, CalicoPolicies, KernelVerdict};

const OUR_AS: u32 = 64512;
/// `2147483647 - 1024`: the LOCAL_PREF of a normal-priority route.
const NORMAL_LP: u32 = BIRD_INT_MAX - 1024;

/// `standardBlockAffinities` of confd's tests/helpers_test.go.
fn standard_blocks() -> Vec<AffineBlock> {
    [
        ("10.0.0.0/30", BlockState::Implicit),
        ("10.1.0.0/24", BlockState::Implicit),
        ("10.2.0.1/32", BlockState::Implicit),
        ("192.168.221.192/26", BlockState::Implicit),
        ("192.168.221.64/26", BlockState::Confirmed),
        ("192.168.221.0/26", BlockState::Pending),
    ]
    .into_iter()
    .map(|(c, state)| AffineBlock {
        cidr: c.parse().unwrap(),
        state,
    })
    .collect()
}

struct Case {
    v4: NodeBgpPlan,
    v6: NodeBgpPlan,
    pol: CalicoPolicies,
}

fn load(dir: &str) -> Case {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir)
        .join("input.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let (mut nodes, mut cfgs, mut peers, mut pools, mut filters) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in decode_documents(dir, &text).unwrap() {
        match d.resource {
            Resource::Node(n) => nodes.push(n),
            Resource::BGPConfiguration(c) => cfgs.push(c),
            Resource::BGPPeer(p) => peers.push(p),
            Resource::IPPool(p) => pools.push(p),
            Resource::BGPFilter(f) => filters.push(f),
            _ => {}
        }
    }
    let cluster = ClusterInput {
        nodes: &nodes,
        bgp_configurations: &cfgs,
        bgp_peers: &peers,
        ip_pools: &pools,
        bgp_filters: &filters,
    };
    let blocks = standard_blocks();
    let local = LocalInput {
        node_name: "kube-master",
        affine_blocks: &blocks,
        router_id_env: None,
        local_workload_peers: &[],
    };
    let pw = StaticPasswords::new();
    let v4 = plan(&cluster, &local, IpFamily::V4, &pw).unwrap();
    let v6 = plan(&cluster, &local, IpFamily::V6, &pw).unwrap();
    let by_name: BTreeMap<String, BGPFilter> = filters
        .into_iter()
        .map(|f| (f.metadata.name.clone(), f))
        .collect();
    let pol = CalicoPolicies::new(&[&v4, &v6], &by_name).unwrap();
    Case { v4, v6, pol }
}

type Edit = fn(&mut PathAttributes);

fn none(_: &mut PathAttributes) {}

#[derive(Clone, Copy)]
enum Src {
    /// Learned from this BGP peer (address, AS).
    Bgp(&'static str, u32),
    /// Our own route (IPAM block, static, Felix's kernel route).
    Local,
}

#[derive(Clone, Copy)]
enum Want {
    Accept,
    Reject,
    /// Accepted with the route's attributes changed by this edit.
    Modify(Edit),
}

struct Row {
    prefix: &'static str,
    src: Src,
    attrs: Edit,
    want: Want,
}

const fn row(prefix: &'static str, src: Src, attrs: Edit, want: Want) -> Row {
    Row {
        prefix,
        src,
        attrs,
        want,
    }
}

fn peer_info(ip: &str, asn: u32) -> PeerInfo {
    let address: IpAddr = ip.parse().unwrap();
    let router_id = match address {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::new(10, 9, 9, 9),
    };
    let kind = if asn == OUR_AS {
        PeerType::Internal
    } else {
        PeerType::External
    };
    PeerInfo::new(address, router_id, asn, kind)
}

fn base_attrs(src: Src) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(match src {
            Src::Bgp(_, asn) if asn != OUR_AS => AsPath::sequence(vec![asn]),
            _ => AsPath::default(),
        }),
        ..PathAttributes::default()
    }
}

fn route(r: &Row) -> Route {
    let prefix: ipnet::IpNet = r.prefix.parse().unwrap();
    let mut attrs = base_attrs(r.src);
    (r.attrs)(&mut attrs);
    let (source, next_hop) = match r.src {
        Src::Bgp(ip, asn) => {
            let info = peer_info(ip, asn);
            let nh = match info.address {
                IpAddr::V4(a) => MpNextHop::Ipv4(a),
                IpAddr::V6(global) => MpNextHop::Ipv6 {
                    global,
                    link_local: None,
                },
            };
            (info, Some(nh))
        }
        Src::Local => (
            PeerInfo::new(
                PeerId::LOCAL.0,
                Ipv4Addr::UNSPECIFIED,
                OUR_AS,
                PeerType::Local,
            ),
            None,
        ),
    };
    Route {
        prefix,
        path_id: 0,
        attrs: Arc::new(attrs),
        next_hop,
        source: Arc::new(source),
        stale: false,
    }
}

fn expected(r: &Route, want: Want) -> PolicyResult {
    match want {
        Want::Accept => PolicyResult::Accept,
        Want::Reject => PolicyResult::Reject,
        Want::Modify(edit) => {
            let mut a = (*r.attrs).clone();
            edit(&mut a);
            PolicyResult::Modify(a)
        }
    }
}

/// Runs `rows` through the import policy (routes from the session peer itself).
fn check_import(case: &str, c: &Case, rows: &[Row]) {
    let import = c.pol.import();
    for (i, r) in rows.iter().enumerate() {
        let route = route(r);
        let got = import.import(&route.source, &route);
        assert_eq!(
            got,
            expected(&route, r.want),
            "{case} import row {i} ({})",
            r.prefix
        );
    }
}

/// Runs `rows` through the export policy towards the session `(ip, as)`.
fn check_export(case: &str, c: &Case, to: (&str, u32), rows: &[Row]) {
    let export = c.pol.export();
    let peer = peer_info(to.0, to.1);
    for (i, r) in rows.iter().enumerate() {
        let route = route(r);
        let got = export.export(&peer, &route);
        assert_eq!(
            got,
            expected(&route, r.want),
            "{case} export to {} row {i} ({})",
            to.0,
            r.prefix
        );
    }
}

const G3: Src = Src::Bgp("10.192.0.3", OUR_AS);
const G4: (&str, u32) = ("10.192.0.4", OUR_AS);

fn lp(p: u32) -> u32 {
    BIRD_INT_MAX - p
}

fn normal_lp(a: &mut PathAttributes) {
    a.local_pref = Some(NORMAL_LP);
}

#[test]
fn sessions_come_from_the_plan() {
    let c = load("bgpfilter/match_operators");
    let names: Vec<String> = c.pol.peers().into_iter().map(|(_, n)| n).collect();
    let mut want: Vec<String> = c.v4.peers.iter().map(|p| p.name.clone()).collect();
    want.extend(c.v6.peers.iter().map(|p| p.name.clone()));
    want.sort();
    let mut names_sorted = names.clone();
    names_sorted.sort();
    assert_eq!(names_sorted, want);
    assert!(names.contains(&"Global_10_192_0_3".to_string()));
}

/// ```text
/// 'bgp_test-filter-match-operators_importFilterV4'():
///   if ((net ~ 44.0.0.0/16)) then { accept; }
///   if ((net !~ 44.1.0.0/16)) then { reject; }
///   if ((net = 44.2.0.0/16)) then { accept; }
///   if ((net != 44.3.0.0/16)) then { reject; }
/// exportFilterV4: the same with 77.x
/// ```
#[test]
fn match_operators() {
    let c = load("bgpfilter/match_operators");
    check_import(
        "match_operators",
        &c,
        &[
            row("44.0.0.0/16", G3, none, Want::Accept),
            row("44.0.7.0/24", G3, none, Want::Accept),
            // Not in 44.1/16: rule 2.
            row("10.0.0.0/8", G3, none, Want::Reject),
            row("44.2.0.0/16", G3, none, Want::Reject),
            // In 44.1/16 and not 44.3/16: rule 4.
            row("44.1.0.0/24", G3, none, Want::Reject),
            row("44.1.0.0/16", G3, none, Want::Reject),
        ],
    );
    check_export(
        "match_operators",
        &c,
        G4,
        &[
            // Local routes get their LOCAL_PREF from the prologue, then rule 1 accepts.
            row("77.0.1.0/24", Src::Local, none, Want::Modify(normal_lp)),
            // A BGP route keeps its attributes.
            row("77.0.1.0/24", G3, none, Want::Accept),
            row("10.1.0.0/24", Src::Local, none, Want::Reject),
            row("77.1.0.0/16", G3, none, Want::Reject),
        ],
    );
    // IPv6: the same shape with 9000:n:: (export) and 5000:n:: (import) pools of rules.
    let v6_peer = c.v6.peers.first().unwrap();
    let src6 = Src::Bgp("2001::103", OUR_AS);
    assert_eq!(v6_peer.ip, "2001::103".parse::<IpAddr>().unwrap());
    check_import(
        "match_operators v6",
        &c,
        &[
            row("5000::/64", src6, none, Want::Accept),
            row("2002::/64", src6, none, Want::Reject),
        ],
    );
}

/// ```text
/// importFilterV4: if (((defined(source))&&(source ~ [ RTS_BGP ]))) then { accept; } reject;
/// exportFilterV4: the same
/// ```
#[test]
fn match_source() {
    let c = load("bgpfilter/match_source");
    check_import(
        "match_source",
        &c,
        &[row("8.8.8.0/24", G3, none, Want::Accept)],
    );
    check_export(
        "match_source",
        &c,
        G4,
        &[
            // A route learned over BGP is accepted by the filter (before calico_aggr).
            row("8.8.8.0/24", G3, none, Want::Accept),
            // Our own block is not from RTS_BGP: `reject;` ends the filter before
            // calico_export_to_bgp_peers could accept it.
            row("10.1.0.0/24", Src::Local, none, Want::Reject),
        ],
    );
}

/// ```text
/// importFilterV4:
///   if ((net ~ 44.0.0.0/16)) then { accept; }
///   if ((net ~ 44.1.0.0/16)&&(source ~ [ RTS_BGP ])) then { reject; }
///   if ((source ~ [ RTS_BGP ])) then { accept; }
///   if (((defined(ifname))&&(ifname ~ "iface"))) then { reject; }
/// exportFilterV4:
///   if ((net !~ 77.0.0.0/16)&&((defined(ifname))&&(ifname ~ "eth0"))) then { accept; }
///   if ((net ~ 77.1.0.0/16)&&(source ~ [ RTS_BGP ])) then { reject; }
///   if ((source ~ [ RTS_BGP ])) then { accept; }
///   reject;
/// ```
/// Our routes have no interface name, so the `ifname` rules never match.
#[test]
fn match_interface() {
    let c = load("bgpfilter/match_interface");
    check_import(
        "match_interface",
        &c,
        &[
            row("44.0.1.0/24", G3, none, Want::Accept),
            row("44.1.1.0/24", G3, none, Want::Reject),
            row("8.8.8.0/24", G3, none, Want::Accept),
        ],
    );
    check_export(
        "match_interface",
        &c,
        G4,
        &[
            // Would need ifname eth0: falls to the final `reject;`.
            row("10.1.0.0/24", Src::Local, none, Want::Reject),
            row("77.1.1.0/24", G3, none, Want::Reject),
            row("8.8.8.0/24", G3, none, Want::Accept),
        ],
    );
}

/// ```text
/// function 'bgp_test-filter-peertype_importFilterV4'(bool is_same_as) {
///   if (is_same_as) then { if (((65000, 100) ~ bgp_community)) then { bgp_local_pref = 2147483547; accept; } }
///   accept;
/// }
/// function 'bgp_test-filter-peertype_exportFilterV4'(bool is_same_as) {
///   if (!is_same_as) then { if ((net ~ 10.0.0.0/8)) then { accept; } }
///   if (is_same_as) then { if ((net ~ 172.16.0.0/12)) then { reject; } }
///   reject;
/// }
/// ```
/// Both sessions are iBGP (`(true)`).
#[test]
fn peer_type() {
    let c = load("bgpfilter/peer_type");
    assert!(c.v4.peers.iter().all(|p| p.internal));
    check_import(
        "peer_type",
        &c,
        &[
            row(
                "10.5.0.0/24",
                G3,
                |a| a.communities.push(Community::from_parts(65000, 100)),
                Want::Modify(|a| a.local_pref = Some(lp(100))),
            ),
            row("10.5.0.0/24", G3, none, Want::Accept),
        ],
    );
    check_export(
        "peer_type",
        &c,
        G4,
        &[
            // The eBGP-only accept does not apply to an iBGP session.
            row("10.5.0.0/24", G3, none, Want::Reject),
            row("172.16.1.0/24", G3, none, Want::Reject),
            row("10.1.0.0/24", Src::Local, none, Want::Reject),
        ],
    );
}

/// ```text
/// importFilterV4:
///   if ((bgp_path ~ [= 65000 * =])) then { bgp_local_pref = 2147483547; accept; }
///   if ((bgp_path ~ [= 65000 65001 * =])) then { bgp_local_pref = 2147483447; accept; }
///   accept;
/// exportFilterV4:
///   if ((defined(bgp_local_pref)&&(bgp_local_pref = 2147483547))) then { bgp_community.add((65000, 100)); accept; }
///   if ((defined(bgp_local_pref)&&(bgp_local_pref = 2147483447))) then { bgp_path.prepend(65001); bgp_path.prepend(65000); accept; }
///   reject;
/// ```
#[test]
fn as_path_and_priority() {
    let c = load("bgpfilter/as_path_and_priority");
    check_import(
        "as_path_and_priority",
        &c,
        &[
            row(
                "20.0.0.0/24",
                G3,
                |a| a.as_path = Some(AsPath::sequence(vec![65000, 65001, 7])),
                // Rule 1 already matches a path starting 65000.
                Want::Modify(|a| a.local_pref = Some(lp(100))),
            ),
            row(
                "20.0.0.0/24",
                G3,
                |a| a.as_path = Some(AsPath::sequence(vec![65000])),
                Want::Modify(|a| a.local_pref = Some(lp(100))),
            ),
            row(
                "20.0.0.0/24",
                G3,
                |a| a.as_path = Some(AsPath::sequence(vec![65001, 65000])),
                Want::Accept,
            ),
            row("20.0.0.0/24", G3, none, Want::Accept),
        ],
    );
    check_export(
        "as_path_and_priority",
        &c,
        G4,
        &[
            row(
                "20.0.0.0/24",
                G3,
                |a| a.local_pref = Some(lp(100)),
                Want::Modify(|a| a.communities.push(Community::from_parts(65000, 100))),
            ),
            row(
                "20.0.0.0/24",
                G3,
                |a| {
                    a.local_pref = Some(lp(200));
                    a.as_path = Some(AsPath::sequence(vec![7]));
                },
                Want::Modify(|a| a.as_path = Some(AsPath::sequence(vec![65000, 65001, 7]))),
            ),
            // A local route of priority 200 (Felix's elevated metric) matches by its priority.
            row(
                "10.1.0.5/32",
                Src::Local,
                |a| a.local_pref = Some(lp(200)),
                Want::Modify(|a| a.as_path = Some(AsPath::sequence(vec![65000, 65001]))),
            ),
            row("20.0.0.0/24", G3, none, Want::Reject),
            row("10.1.0.0/24", Src::Local, none, Want::Reject),
        ],
    );
}

/// ```text
/// importFilterV4:
///   if (((65000, 100) ~ bgp_community)) then { bgp_local_pref = 2147483391; accept; }
///   reject;
/// exportFilterV4:
///   if (((65000, 42) ~ bgp_community)) then { bgp_community.add((65001, 200)); bgp_path.prepend(65000); accept; }
///   reject;
/// ```
#[test]
fn communities_and_operations() {
    let c = load("bgpfilter/communities_and_operations");
    check_import(
        "communities_and_operations",
        &c,
        &[
            row(
                "30.0.0.0/24",
                G3,
                |a| a.communities.push(Community::from_parts(65000, 100)),
                Want::Modify(|a| a.local_pref = Some(lp(256))),
            ),
            row(
                "30.0.0.0/24",
                G3,
                |a| a.communities.push(Community::from_parts(65000, 101)),
                Want::Reject,
            ),
        ],
    );
    check_export(
        "communities_and_operations",
        &c,
        G4,
        &[
            row(
                "30.0.0.0/24",
                G3,
                |a| a.communities.push(Community::from_parts(65000, 42)),
                Want::Modify(|a| {
                    a.communities.push(Community::from_parts(65001, 200));
                    a.as_path = Some(AsPath::sequence(vec![65000]));
                }),
            ),
            row("30.0.0.0/24", G3, none, Want::Reject),
        ],
    );
}

/// ```text
/// importFilterV4:
///   if (((65000, 100, 200) ~ bgp_large_community)) then { bgp_large_community.add((65001, 300, 400)); accept; }
///   reject;
/// exportFilterV4:
///   if (((65000, 100, 200) ~ bgp_large_community)) then { accept; }
///   reject;
/// ```
#[test]
fn large_community() {
    let c = load("bgpfilter/large_community");
    fn lc(g: u32, a: u32, b: u32) -> LargeCommunity {
        LargeCommunity {
            global_admin: g,
            local_data1: a,
            local_data2: b,
        }
    }
    check_import(
        "large_community",
        &c,
        &[
            row(
                "40.0.0.0/24",
                G3,
                |a| a.large_communities.push(lc(65000, 100, 200)),
                Want::Modify(|a| a.large_communities.push(lc(65001, 300, 400))),
            ),
            // A standard community with the same numbers is not the large one.
            row(
                "40.0.0.0/24",
                G3,
                |a| a.communities.push(Community::from_parts(65000, 100)),
                Want::Reject,
            ),
        ],
    );
    check_export(
        "large_community",
        &c,
        G4,
        &[
            row(
                "40.0.0.0/24",
                G3,
                |a| a.large_communities.push(lc(65000, 100, 200)),
                Want::Accept,
            ),
            row("40.0.0.0/24", G3, none, Want::Reject),
        ],
    );
}

/// ```text
/// importFilterV4:
///   if (((65000, 100) ~ bgp_community)) then { bgp_local_pref = 2147483547; accept; }
///   if ((bgp_path ~ [= 65000 * =])) then { bgp_local_pref = 2147483447; accept; }
///   accept;
/// exportFilterV4(bool is_same_as):   # called with (false): eBGP session, AS 64517
///   if (!is_same_as) then { if ((bgp_local_pref = 2147483547)) then { bgp_community.add((65000, 100)); accept; } }
///   if (!is_same_as) then { if ((bgp_local_pref = 2147483447)) then { bgp_community.add((65000, 200)); bgp_path.prepend(65000); accept; } }
///   reject;
/// ```
#[test]
fn kubevirt_live_migration() {
    let c = load("bgpfilter/kubevirt_live_migration");
    let tor = Src::Bgp("10.192.0.3", 64517);
    check_import(
        "kubevirt_live_migration",
        &c,
        &[
            row(
                "10.1.0.9/32",
                tor,
                |a| a.communities.push(Community::from_parts(65000, 100)),
                Want::Modify(|a| a.local_pref = Some(lp(100))),
            ),
            row(
                "10.1.0.9/32",
                tor,
                |a| a.as_path = Some(AsPath::sequence(vec![65000, 64517])),
                Want::Modify(|a| a.local_pref = Some(lp(200))),
            ),
            row("10.1.0.9/32", tor, none, Want::Accept),
        ],
    );
    check_export(
        "kubevirt_live_migration",
        &c,
        ("10.192.0.3", 64517),
        &[
            // Felix's elevated /32 of a migrated VM (metric 100) gets the community.
            row(
                "10.1.0.9/32",
                Src::Local,
                |a| a.local_pref = Some(lp(100)),
                Want::Modify(|a| a.communities.push(Community::from_parts(65000, 100))),
            ),
            row(
                "10.1.0.9/32",
                Src::Local,
                |a| a.local_pref = Some(lp(200)),
                Want::Modify(|a| {
                    a.communities.push(Community::from_parts(65000, 200));
                    a.as_path = Some(AsPath::sequence(vec![65000]));
                }),
            ),
            // Normal priority: the filter's final `reject;`.
            row("10.1.0.0/24", Src::Local, none, Want::Reject),
        ],
    );
    // The imported priorities: elevated routes win over the kernel's, with their metric.
    let elevated = route(&row(
        "10.1.0.9/32",
        tor,
        |a| a.local_pref = Some(lp(100)),
        Want::Accept,
    ));
    assert!(c.pol.is_elevated(&elevated));
    assert_eq!(
        c.pol.kernel_accepts(&elevated),
        KernelVerdict::Accept { metric: 100 }
    );
    let normal = route(&row(
        "10.1.0.9/32",
        tor,
        |a| a.local_pref = Some(NORMAL_LP),
        Want::Accept,
    ));
    assert!(!c.pol.is_elevated(&normal));
    assert_eq!(
        c.pol.kernel_accepts(&normal),
        KernelVerdict::Accept { metric: 1024 }
    );
}

/// Two filters chained: the first function that matches ends the filter.
/// ```text
/// 'bgp_test-filter-1_importFilterV4'();  # 44.0/16&ifname eth* accept; 44.1/16&BGP reject; BGP accept; reject
/// 'bgp_test-filter-2_importFilterV4'();
/// export: test-filter-1: 77.0/16 accept; 77.1/16&BGP reject; BGP accept; ifname eth0 reject
///         test-filter-2: 77.2/16 accept; 77.3/16&BGP reject; BGP accept; reject
/// ```
#[test]
fn multi_filter() {
    let c = load("bgpfilter/multi_filter/global_peer");
    check_import(
        "multi_filter",
        &c,
        &[
            row("44.0.1.0/24", G3, none, Want::Accept),
            row("44.1.1.0/24", G3, none, Want::Reject),
            // filter-2 would accept 44.2/16, but filter-1 already accepted every BGP route.
            row("44.3.1.0/24", G3, none, Want::Accept),
        ],
    );
    check_export(
        "multi_filter",
        &c,
        ("10.192.0.3", OUR_AS),
        &[
            row("77.0.1.0/24", Src::Local, none, Want::Modify(normal_lp)),
            // No rule of filter-1 matches a local 77.2/16 route; filter-2's first rule does.
            row("77.2.1.0/24", Src::Local, none, Want::Modify(normal_lp)),
            // filter-2's final `reject;`, before calico_aggr could accept our block.
            row("10.1.0.0/24", Src::Local, none, Want::Reject),
            row(
                "77.1.1.0/24",
                Src::Bgp("10.192.0.4", OUR_AS),
                none,
                Want::Reject,
            ),
        ],
    );
}

/// ```text
/// function apply_communities () {
///   if ( net ~ 192.168.0.0/16 ) then {
///     bgp_large_community.add((100, 555, 107));
///     bgp_community.add((100, 6532));
///     bgp_community.add((5663, 12));
///   }
/// }
/// calico_export_to_bgp_peers(true): apply_communities(); calico_aggr(); if (net ~ 192.168.0.0/16) then { accept; }
/// ```
#[test]
fn mesh_communities() {
    let c = load("mesh/communities");
    fn comms(a: &mut PathAttributes) {
        a.local_pref = Some(NORMAL_LP);
        a.large_communities.push(LargeCommunity {
            global_admin: 100,
            local_data1: 555,
            local_data2: 107,
        });
        a.communities.push(Community::from_parts(100, 6532));
        a.communities.push(Community::from_parts(5663, 12));
    }
    check_export(
        "mesh/communities",
        &c,
        ("10.192.0.3", OUR_AS),
        &[
            // Our confirmed block: communities, then calico_aggr's `net = block` accept.
            row("192.168.221.64/26", Src::Local, none, Want::Modify(comms)),
            // Inside our block at normal priority: aggregated away.
            row("192.168.221.70/32", Src::Local, none, Want::Reject),
            // Elevated /32 inside the block escapes aggregation.
            row(
                "192.168.221.70/32",
                Src::Local,
                |a| a.local_pref = Some(lp(512)),
                Want::Modify(|a| {
                    comms(a);
                    a.local_pref = Some(lp(512));
                }),
            ),
            // Elsewhere in the pool: accepted by the pool statement.
            row("192.168.5.0/24", Src::Local, none, Want::Modify(comms)),
            // An existing community is not added twice (BIRD's set add).
            row(
                "192.168.5.0/24",
                Src::Local,
                |a| a.communities.push(Community::from_parts(100, 6532)),
                Want::Modify(|a| {
                    a.local_pref = Some(NORMAL_LP);
                    a.large_communities.push(LargeCommunity {
                        global_admin: 100,
                        local_data1: 555,
                        local_data2: 107,
                    });
                    a.communities.push(Community::from_parts(5663, 12));
                }),
            ),
            // Not in a pool, not a block: the final `reject;`.
            row("172.20.0.0/24", Src::Local, none, Want::Reject),
            // The implicitly confirmed block outside every pool is still ours to export.
            row("10.1.0.0/24", Src::Local, none, Want::Modify(normal_lp)),
            // The pending block is not aggregated (confd renders only a comment for it); it
            // lies inside the pool, whose statement accepts it.
            row("192.168.221.0/26", Src::Local, none, Want::Modify(comms)),
        ],
    );
    // A route learned over iBGP is not ours to aggregate: inside the pool, accepted with the
    // communities (route reflection decides elsewhere whether it may go out at all).
    check_export(
        "mesh/communities reflected",
        &c,
        ("10.192.0.3", OUR_AS),
        &[row(
            "192.168.7.0/26",
            Src::Bgp("10.192.0.4", OUR_AS),
            |a| a.local_pref = Some(NORMAL_LP),
            Want::Modify(|a| {
                a.large_communities.push(LargeCommunity {
                    global_admin: 100,
                    local_data1: 555,
                    local_data2: 107,
                });
                a.communities.push(Community::from_parts(100, 6532));
                a.communities.push(Community::from_parts(5663, 12));
            }),
        )],
    );
}

/// `calico_kernel_programming` under each `programClusterRoutes` (confd's
/// `TestProgramClusterRoutes` goldens). Pools: 192.168/16 IPIP Always, 172.16/16 IPIP
/// CrossSubnet, 172.17/16 no encap; node subnet 10.192.0.0/16.
#[test]
fn cluster_routes_kernel() {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum K {
        Plain,
        Tunl0,
        Reject,
    }
    type KernelRow = (&'static str, Src, K);
    let same_subnet = Src::Bgp("10.192.0.3", OUR_AS);
    let cases: [(&str, [KernelRow; 5]); 4] = [
        (
            "cluster_routes/default",
            [
                ("192.168.3.0/26", same_subnet, K::Reject),
                ("172.16.3.0/26", same_subnet, K::Reject),
                ("172.17.3.0/26", same_subnet, K::Plain),
                ("8.8.8.0/24", same_subnet, K::Plain),
                ("2002::/122", Src::Bgp("2001::102", OUR_AS), K::Plain),
            ],
        ),
        (
            "cluster_routes/enabled",
            [
                ("192.168.3.0/26", same_subnet, K::Tunl0),
                ("172.16.3.0/26", same_subnet, K::Plain),
                ("172.16.3.0/26", Src::Bgp("10.200.0.3", OUR_AS), K::Tunl0),
                ("172.17.3.0/26", same_subnet, K::Plain),
                ("2010::/122", Src::Bgp("2001::102", OUR_AS), K::Plain),
            ],
        ),
        (
            "cluster_routes/ipip-only",
            [
                ("192.168.3.0/26", same_subnet, K::Tunl0),
                ("172.16.3.0/26", same_subnet, K::Plain),
                ("172.17.3.0/26", same_subnet, K::Reject),
                ("2002::/122", Src::Bgp("2001::102", OUR_AS), K::Reject),
                ("2010::/122", Src::Bgp("2001::102", OUR_AS), K::Reject),
            ],
        ),
        (
            "cluster_routes/noencap-only",
            [
                ("192.168.3.0/26", same_subnet, K::Reject),
                ("172.16.3.0/26", same_subnet, K::Reject),
                ("172.17.3.0/26", same_subnet, K::Plain),
                ("172.17.3.0/26", Src::Local, K::Plain),
                ("2002::/122", Src::Bgp("2001::102", OUR_AS), K::Plain),
            ],
        ),
    ];
    for (dir, rows) in cases {
        let c = load(dir);
        for (prefix, src, want) in rows {
            let r = route(&row(
                prefix,
                src,
                |a| a.local_pref = Some(NORMAL_LP),
                Want::Accept,
            ));
            let verdict = c.pol.kernel_accepts(&r);
            let got = match (verdict, c.pol.kernel_tunnel(&r)) {
                (KernelVerdict::Reject, _) => K::Reject,
                (KernelVerdict::Accept { .. }, Some("tunl0")) => K::Tunl0,
                (KernelVerdict::Accept { .. }, None) => K::Plain,
                (v, t) => panic!("{dir} {prefix}: unexpected {v:?} {t:?}"),
            };
            assert_eq!(got, want, "{dir} {prefix} from {:?}", r.source.address);
            if let KernelVerdict::Accept { metric } = verdict {
                // BGP routes: 2147483647 - LOCAL_PREF; our own: no metric attribute.
                let want_metric = if matches!(src, Src::Local) { 0 } else { 1024 };
                assert_eq!(metric, want_metric, "{dir} {prefix}");
            }
        }
    }
}

/// A route is only exported over a session of the plan: these inputs disable the mesh and
/// define no peers, so even our own pool route goes nowhere.
#[test]
fn no_session_no_export() {
    for dir in [
        "cluster_routes/default",
        "cluster_routes/enabled",
        "cluster_routes/ipip-only",
    ] {
        let c = load(dir);
        let to = ("10.192.0.3", OUR_AS);
        assert!(c.v4.peers.is_empty(), "{dir}");
        check_export(
            dir,
            &c,
            to,
            &[row("192.168.3.0/26", Src::Local, none, Want::Reject)],
        );
    }
}
