//! Rule-level tests; confd's golden cases are in `tests/confd_cases.rs`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use calico_api::asnumber::ASNumber;
use calico_api::bgpfilter::{
    BGPFilter, BGPFilterAddCommunity, BGPFilterCommunityMatch, BGPFilterOperation,
    BGPFilterPrefixLength, BGPFilterPrependASPath, BGPFilterRule, BGPFilterSetPriority,
};
use calico_api::decode::decode_documents;
use calico_api::resource::Resource;
use calico_bgp::rib::{PeerInfo, PeerType, PolicyResult, Route};
use calico_bgp_config::{
    AffineBlock, BlockState, ClusterInput, CommunityRule, CommunityValue, IpFamily, KernelDecision,
    KernelTunnel, LocalInput, NodeBgpPlan, PoolPlan, StaticPasswords, plan,
};
use calico_bgp_packet::{
    AsPath, AsSegment, Community, MpNextHop, Origin, PathAttributes, SegmentType,
};

use super::rules::{CompiledFilter, RuleList, Verdict, Working, as_path_starts_with};
use super::*;

const CLUSTER: &str = r#"
kind: BGPConfiguration
apiVersion: projectcalico.org/v3
metadata: {name: default}
spec: {asNumber: 64512}
---
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: a}
spec: {bgp: {ipv4Address: 10.0.0.1/24, ipv6Address: "fd00::1/64"}}
---
kind: Node
apiVersion: projectcalico.org/v3
metadata: {name: b}
spec: {bgp: {ipv4Address: 10.0.0.2/24, ipv6Address: "fd00::2/64"}}
---
kind: BGPPeer
apiVersion: projectcalico.org/v3
metadata: {name: tor}
spec: {peerIP: 10.0.0.254, asNumber: 65000, filters: [f]}
---
kind: BGPPeer
apiVersion: projectcalico.org/v3
metadata: {name: tor6}
spec: {peerIP: "fd00::fe", asNumber: 65000, filters: [f]}
---
kind: IPPool
apiVersion: projectcalico.org/v3
metadata: {name: p1}
spec: {cidr: 10.65.0.0/16, ipipMode: Never}
---
kind: IPPool
apiVersion: projectcalico.org/v3
metadata: {name: p2}
spec: {cidr: 10.66.0.0/16, ipipMode: Never, disableBGPExport: true}
---
kind: IPPool
apiVersion: projectcalico.org/v3
metadata: {name: p6}
spec: {cidr: "fd00:65::/48", ipipMode: Never}
"#;

const MESH: &str = "10.0.0.2";
const TOR: &str = "10.0.0.254";

struct Fixture {
    v4: NodeBgpPlan,
    v6: NodeBgpPlan,
    filters: BTreeMap<String, BGPFilter>,
}

/// Node `a`'s plans, with BGPFilter `f` given as a YAML `spec`.
fn fixture(filter_spec: &str) -> Fixture {
    let text = format!(
        "{CLUSTER}---\nkind: BGPFilter\napiVersion: projectcalico.org/v3\nmetadata: {{name: f}}\nspec: {filter_spec}\n"
    );
    let (mut nodes, mut cfgs, mut peers, mut pools, mut filters) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in decode_documents("test", &text).unwrap() {
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
    let blocks = [
        AffineBlock {
            cidr: "10.65.1.0/26".parse().unwrap(),
            state: BlockState::Confirmed,
        },
        AffineBlock {
            cidr: "10.66.1.0/26".parse().unwrap(),
            state: BlockState::Confirmed,
        },
    ];
    let local = LocalInput {
        node_name: "a",
        affine_blocks: &blocks,
        router_id_env: None,
        local_workload_peers: &[],
    };
    let pw = StaticPasswords::new();
    Fixture {
        v4: plan(&cluster, &local, IpFamily::V4, &pw).unwrap(),
        v6: plan(&cluster, &local, IpFamily::V6, &pw).unwrap(),
        filters: filters
            .into_iter()
            .map(|f| (f.metadata.name.clone(), f))
            .collect(),
    }
}

impl Fixture {
    fn policies(&self) -> CalicoPolicies {
        CalicoPolicies::new(&[&self.v4, &self.v6], &self.filters).unwrap()
    }
}

fn peer(ip: &str) -> PeerInfo {
    let address: IpAddr = ip.parse().unwrap();
    let (asn, kind) = if ip.ends_with("254") || ip.ends_with("fe") {
        (65000, PeerType::External)
    } else {
        (64512, PeerType::Internal)
    };
    PeerInfo::new(address, Ipv4Addr::new(1, 1, 1, 1), asn, kind)
}

fn local_peer() -> PeerInfo {
    PeerInfo::new(
        IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Ipv4Addr::UNSPECIFIED,
        64512,
        PeerType::Local,
    )
}

fn route_from(prefix: &str, src: PeerInfo, edit: impl FnOnce(&mut PathAttributes)) -> Route {
    let mut attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        ..PathAttributes::default()
    };
    edit(&mut attrs);
    let next_hop = match src.peer_type {
        PeerType::Local => None,
        _ => Some(match src.address {
            IpAddr::V4(a) => MpNextHop::Ipv4(a),
            IpAddr::V6(global) => MpNextHop::Ipv6 {
                global,
                link_local: None,
            },
        }),
    };
    Route {
        prefix: prefix.parse().unwrap(),
        path_id: 0,
        attrs: Arc::new(attrs),
        next_hop,
        source: Arc::new(src),
        stale: false,
    }
}

fn bgp(prefix: &str, from: &str) -> Route {
    route_from(prefix, peer(from), |_| {})
}

fn local(prefix: &str) -> Route {
    route_from(prefix, local_peer(), |_| {})
}

const NORMAL_LP: u32 = BIRD_INT_MAX - 1024;

fn with_normal_lp(r: &Route) -> PolicyResult {
    let mut a = (*r.attrs).clone();
    a.local_pref = Some(NORMAL_LP);
    PolicyResult::Modify(a)
}

const NO_RULES: &str = "{}";

// ---------------------------------------------------------------- compile errors

fn rule(action: &str) -> BGPFilterRule {
    BGPFilterRule {
        action: action.to_string(),
        ..BGPFilterRule::default()
    }
}

#[test]
fn bad_rules_are_errors_naming_the_rule() {
    type Mutate = fn(&mut BGPFilterRule);
    let cases: &[(Mutate, &str)] = &[
        (|r| r.action = "Drop".into(), "action \"Drop\""),
        (|r| r.peer_type = "xBGP".into(), "peerType \"xBGP\""),
        (|r| r.cidr = "10.0.0.0/8".into(), "without matchOperator"),
        (
            |r| {
                r.cidr = "10.0.0.0/8".into();
                r.match_operator = "Within".into();
            },
            "matchOperator \"Within\"",
        ),
        (
            |r| {
                r.cidr = "10.0.0.1/8".into();
                r.match_operator = "In".into();
            },
            "host bits",
        ),
        (
            |r| {
                r.cidr = "fd00::/8".into();
                r.match_operator = "In".into();
            },
            "address family",
        ),
        (
            |r| {
                r.cidr = "10.0.0.0/8".into();
                r.match_operator = "In".into();
                r.prefix_length = Some(BGPFilterPrefixLength {
                    min: Some(28),
                    max: Some(24),
                });
            },
            "empty range {28,24}",
        ),
        (|r| r.source = "Kernel".into(), "source \"Kernel\""),
        (
            |r| r.communities = Some(BGPFilterCommunityMatch { values: vec![] }),
            "communities.values is empty",
        ),
        (
            |r| {
                r.communities = Some(BGPFilterCommunityMatch {
                    values: vec!["70000:1".into()],
                })
            },
            "part \"70000\"",
        ),
        (|r| r.priority = Some(-1), "priority -1"),
        (
            |r| r.operations = vec![BGPFilterOperation::default()],
            "operations[0]: no operation set",
        ),
        (
            |r| {
                r.operations = vec![BGPFilterOperation {
                    set_priority: Some(BGPFilterSetPriority { value: None }),
                    ..BGPFilterOperation::default()
                }]
            },
            "setPriority has no value",
        ),
        (
            |r| {
                r.operations = vec![BGPFilterOperation {
                    add_community: Some(BGPFilterAddCommunity {
                        value: Some("1:2:3:4".into()),
                    }),
                    ..BGPFilterOperation::default()
                }]
            },
            "neither aa:nn nor aa:nn:mm",
        ),
    ];
    for (i, (mutate, want)) in cases.iter().enumerate() {
        let mut r = rule("Accept");
        mutate(&mut r);
        let rules = vec![rule("Accept"), r];
        let err = CompiledFilter::compile("f", RuleList::ImportV4, &rules).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("BGPFilter \"f\" importV4[1]: ") && msg.contains(want),
            "case {i}: {msg}"
        );
    }
}

#[test]
fn a_bad_filter_fails_even_when_no_session_uses_it() {
    let mut fx = fixture(NO_RULES);
    let mut other = BGPFilter::default();
    other.spec.export_v4 = vec![rule("Maybe")];
    fx.filters.insert("unused".into(), other);
    let err = CalicoPolicies::new(&[&fx.v4], &fx.filters).unwrap_err();
    assert!(
        matches!(err, PolicyError::BadRule { ref filter, .. } if filter == "unused"),
        "{err}"
    );
    // The IPv6 plan does not render IPv4 rules.
    assert!(CalicoPolicies::new(&[&fx.v6], &fx.filters).is_ok());
}

#[test]
fn plan_level_errors() {
    let fx = fixture("{importV4: [{action: Reject}]}");
    assert_eq!(
        CalicoPolicies::new(&[&fx.v4, &fx.v4], &fx.filters).unwrap_err(),
        PolicyError::DuplicateFamily(IpFamily::V4)
    );
    // The plan calls a function of a filter the map does not hold.
    let err = CalicoPolicies::new(&[&fx.v4], &BTreeMap::new()).unwrap_err();
    assert_eq!(
        err,
        PolicyError::UnknownFilterFunction {
            peer: "Global_10_0_0_254".into(),
            function: "bgp_f_importFilterV4".into()
        }
    );
    let mut bad = fx.v4.clone();
    bad.normal_route_priority = 0;
    assert_eq!(
        CalicoPolicies::new(&[&bad], &fx.filters).unwrap_err(),
        PolicyError::BadNormalRoutePriority(0)
    );
    let mut bad = fx.v4.clone();
    bad.communities = vec![CommunityRule {
        cidr: "10.65.0.0/16".into(),
        communities: vec![CommunityValue::Standard(65536, 1)],
    }];
    assert!(matches!(
        CalicoPolicies::new(&[&bad], &fx.filters).unwrap_err(),
        PolicyError::BadCommunity { .. }
    ));
    let mut bad = fx.v4.clone();
    bad.communities = vec![CommunityRule {
        cidr: "ten/8".into(),
        communities: vec![CommunityValue::Standard(1, 1)],
    }];
    assert!(matches!(
        CalicoPolicies::new(&[&bad], &fx.filters).unwrap_err(),
        PolicyError::BadCidr { .. }
    ));
}

// ---------------------------------------------------------------- matching

fn run_rules(rules: &[BGPFilterRule], route: &Route, internal: bool) -> Verdict {
    let f = CompiledFilter::compile("f", RuleList::ImportV4, rules).unwrap();
    f.run(&mut Working::new(route), internal)
}

fn cidr_rule(cidr: &str, op: &str, len: Option<(Option<i32>, Option<i32>)>) -> BGPFilterRule {
    BGPFilterRule {
        cidr: cidr.into(),
        match_operator: op.into(),
        prefix_length: len.map(|(min, max)| BGPFilterPrefixLength { min, max }),
        ..rule("Accept")
    }
}

#[test]
fn cidr_and_prefix_length_matching() {
    use Verdict::{Accept as A, NoMatch as N};
    let pl = Some((Some(24), Some(28)));
    let table: &[(BGPFilterRule, &str, Verdict)] = &[
        (cidr_rule("10.244.0.0/16", "In", None), "10.244.0.0/16", A),
        (cidr_rule("10.244.0.0/16", "In", None), "10.244.3.0/24", A),
        (cidr_rule("10.244.0.0/16", "In", None), "10.0.0.0/8", N),
        (cidr_rule("10.244.0.0/16", "NotIn", None), "10.0.0.0/8", A),
        (
            cidr_rule("10.244.0.0/16", "NotIn", None),
            "10.244.3.0/24",
            N,
        ),
        (
            cidr_rule("10.244.0.0/16", "Equal", None),
            "10.244.0.0/16",
            A,
        ),
        (
            cidr_rule("10.244.0.0/16", "Equal", None),
            "10.244.0.0/17",
            N,
        ),
        (
            cidr_rule("10.244.0.0/16", "NotEqual", None),
            "10.244.0.0/17",
            A,
        ),
        (
            cidr_rule("10.244.0.0/16", "NotEqual", None),
            "10.244.0.0/16",
            N,
        ),
        // `net ~ [ 10.244.0.0/16{24,28} ]`
        (cidr_rule("10.244.0.0/16", "In", pl), "10.244.3.0/24", A),
        (cidr_rule("10.244.0.0/16", "In", pl), "10.244.3.16/28", A),
        (cidr_rule("10.244.0.0/16", "In", pl), "10.244.3.16/29", N),
        (cidr_rule("10.244.0.0/16", "In", pl), "10.244.0.0/16", N),
        (cidr_rule("10.244.0.0/16", "In", pl), "10.245.3.0/24", N),
        (cidr_rule("10.244.0.0/16", "NotIn", pl), "10.244.0.0/16", A),
        (cidr_rule("10.244.0.0/16", "NotIn", pl), "10.244.3.0/24", N),
        // Only a max: min is the CIDR's own length (`{16,20}`).
        (
            cidr_rule("10.244.0.0/16", "In", Some((None, Some(20)))),
            "10.244.0.0/16",
            A,
        ),
        (
            cidr_rule("10.244.0.0/16", "In", Some((None, Some(20)))),
            "10.244.0.0/21",
            N,
        ),
        // A min below the CIDR length is raised to it (`{16,32}`).
        (
            cidr_rule("10.244.0.0/16", "In", Some((Some(8), None))),
            "10.0.0.0/8",
            N,
        ),
        (
            cidr_rule("10.244.0.0/16", "In", Some((Some(8), None))),
            "10.244.1.1/32",
            A,
        ),
        // BIRD compares a prefix with a prefix set as different types: `=` never holds,
        // `!=` always does.
        (cidr_rule("10.244.0.0/16", "Equal", pl), "10.244.3.0/24", N),
        (
            cidr_rule("10.244.0.0/16", "NotEqual", pl),
            "10.244.3.0/24",
            A,
        ),
    ];
    for (i, (r, prefix, want)) in table.iter().enumerate() {
        let route = bgp(prefix, MESH);
        assert_eq!(
            run_rules(std::slice::from_ref(r), &route, true),
            *want,
            "row {i}: {} {} {prefix}",
            r.match_operator,
            r.cidr
        );
    }
}

#[test]
fn as_path_prefix_matching() {
    let seq = |v: &[u32]| AsSegment {
        kind: SegmentType::Sequence,
        asns: v.to_vec(),
    };
    let set = |v: &[u32]| AsSegment {
        kind: SegmentType::Set,
        asns: v.to_vec(),
    };
    let path = |segs: Vec<AsSegment>| AsPath { segments: segs };
    let table: &[(Option<AsPath>, &[u32], bool)] = &[
        (Some(path(vec![seq(&[65000])])), &[65000], true),
        (
            Some(path(vec![seq(&[65000, 65001, 3])])),
            &[65000, 65001],
            true,
        ),
        (Some(path(vec![seq(&[65001, 65000])])), &[65000], false),
        (Some(path(vec![seq(&[65000])])), &[65000, 65001], false),
        (Some(path(vec![])), &[65000], false),
        (None, &[65000], false),
        // Segments continue one another.
        (
            Some(path(vec![seq(&[65000]), seq(&[65001])])),
            &[65000, 65001],
            true,
        ),
        // An AS_SET is one position, matched by any member.
        (
            Some(path(vec![seq(&[65000]), set(&[7, 65001])])),
            &[65000, 65001],
            true,
        ),
        (
            Some(path(vec![set(&[7, 65001]), seq(&[9])])),
            &[65001, 9],
            true,
        ),
        (Some(path(vec![set(&[7, 65001])])), &[7, 65001], false),
    ];
    for (i, (p, prefix, want)) in table.iter().enumerate() {
        assert_eq!(as_path_starts_with(p.as_ref(), prefix), *want, "row {i}");
    }
}

#[test]
fn operations_apply_in_order_then_the_action() {
    let r = BGPFilterRule {
        operations: vec![
            BGPFilterOperation {
                prepend_as_path: Some(BGPFilterPrependASPath {
                    prefix: vec![ASNumber(65001), ASNumber(65002)],
                }),
                ..BGPFilterOperation::default()
            },
            BGPFilterOperation {
                add_community: Some(BGPFilterAddCommunity {
                    value: Some("65000:7".into()),
                }),
                ..BGPFilterOperation::default()
            },
            BGPFilterOperation {
                set_priority: Some(BGPFilterSetPriority { value: Some(512) }),
                ..BGPFilterOperation::default()
            },
        ],
        ..rule("Accept")
    };
    let f = CompiledFilter::compile("f", RuleList::ExportV4, &[r]).unwrap();
    let route = route_from("10.65.1.0/26", peer(MESH), |a| {
        a.as_path = Some(AsPath::sequence(vec![7]))
    });
    let mut w = Working::new(&route);
    assert_eq!(f.run(&mut w, true), Verdict::Accept);
    let PolicyResult::Modify(a) = w.into_result(rules::Action::Accept) else {
        panic!("expected modified attributes");
    };
    // The first listed AS ends up leftmost.
    assert_eq!(a.as_path, Some(AsPath::sequence(vec![65001, 65002, 7])));
    assert_eq!(a.communities, vec![Community::from_parts(65000, 7)]);
    assert_eq!(a.local_pref, Some(BIRD_INT_MAX - 512));

    // Operations with a Reject action are applied and then thrown away.
    let mut rej = rule("Reject");
    rej.operations = vec![BGPFilterOperation {
        set_priority: Some(BGPFilterSetPriority { value: Some(5) }),
        ..BGPFilterOperation::default()
    }];
    assert_eq!(run_rules(&[rej], &route, true), Verdict::Reject);
}

#[test]
fn peer_type_guards() {
    let ibgp = BGPFilterRule {
        peer_type: "iBGP".into(),
        ..rule("Reject")
    };
    let ebgp = BGPFilterRule {
        peer_type: "eBGP".into(),
        ..rule("Accept")
    };
    let route = bgp("10.65.1.0/26", MESH);
    let rules = [ibgp, ebgp];
    assert_eq!(run_rules(&rules, &route, true), Verdict::Reject);
    assert_eq!(run_rules(&rules, &route, false), Verdict::Accept);
}

#[test]
fn interface_rules_see_an_empty_interface_name() {
    // BIRD's `ifname` of a route without an interface is "": only an all-`*` glob matches.
    for (glob, want) in [
        ("*", Verdict::Reject),
        ("**", Verdict::Reject),
        ("eth*", Verdict::NoMatch),
        ("*.cali", Verdict::NoMatch),
    ] {
        let r = BGPFilterRule {
            interface: glob.into(),
            ..rule("Reject")
        };
        assert_eq!(
            run_rules(std::slice::from_ref(&r), &bgp("10.65.1.0/26", MESH), true),
            want,
            "{glob}"
        );
        assert_eq!(
            run_rules(&[r], &local("10.65.1.0/26"), true),
            want,
            "{glob}"
        );
    }
}

#[test]
fn priority_matches_default_local_pref_of_received_routes() {
    // BIRD attaches LOCAL_PREF 100 to a received route without one: priority 2147483547.
    let r = BGPFilterRule {
        priority: Some(i64::from(BIRD_INT_MAX - 100)),
        ..rule("Accept")
    };
    assert_eq!(
        run_rules(&[r], &bgp("10.65.1.0/26", TOR), false),
        Verdict::Accept
    );
}

#[test]
fn local_pref_from_an_external_peer_is_ignored() {
    // The filter matches priority 2147483547, i.e. the default LOCAL_PREF 100.
    let fx = fixture("{importV4: [{priority: 2147483547, action: Reject}]}");
    let imp = fx.policies().import();
    let tor = peer(TOR);
    // A ToR that sends LOCAL_PREF 5000 anyway: BIRD discards it and attaches 100.
    let sent = route_from("10.98.0.0/24", peer(TOR), |a| a.local_pref = Some(5000));
    assert_eq!(imp.import(&tor, &sent), PolicyResult::Reject);
    let fx = fixture("{importV4: [{cidr: 10.99.0.0/16, matchOperator: In, action: Reject}]}");
    let imp = fx.policies().import();
    let PolicyResult::Modify(a) = imp.import(&tor, &sent) else {
        panic!("expected the LOCAL_PREF to be dropped");
    };
    assert_eq!(a.local_pref, None);
    // From an internal peer it is the real thing.
    let mesh_sent = route_from("10.98.0.0/24", peer(MESH), |a| a.local_pref = Some(5000));
    assert_eq!(imp.import(&peer(MESH), &mesh_sent), PolicyResult::Accept);
}

// ---------------------------------------------------------------- sessions

#[test]
fn import_chain_and_default_accept() {
    let fx = fixture(
        "{importV4: [{cidr: 10.99.0.0/16, matchOperator: In, action: Reject}], \
         importV6: [{cidr: 'fd00:99::/32', matchOperator: In, action: Reject}]}",
    );
    let pol = fx.policies();
    let imp = pol.import();
    let tor = peer(TOR);
    assert_eq!(
        imp.import(&tor, &bgp("10.99.1.0/24", TOR)),
        PolicyResult::Reject
    );
    assert_eq!(
        imp.import(&tor, &bgp("10.98.1.0/24", TOR)),
        PolicyResult::Accept
    );
    // Mesh sessions have no filters: `accept;`.
    assert_eq!(
        imp.import(&peer(MESH), &bgp("10.99.1.0/24", MESH)),
        PolicyResult::Accept
    );
    let tor6 = peer("fd00::fe");
    assert_eq!(
        imp.import(&tor6, &bgp("fd00:99::/48", "fd00::fe")),
        PolicyResult::Reject
    );
    // An IPv6 route over the IPv4 session, or a peer no plan knows: no such Calico session.
    assert_eq!(
        imp.import(&tor, &bgp("fd00:98::/48", TOR)),
        PolicyResult::Reject
    );
    let stranger = peer("10.0.0.77");
    assert_eq!(
        imp.import(&stranger, &bgp("10.98.1.0/24", "10.0.0.77")),
        PolicyResult::Reject
    );
}

#[test]
fn export_to_bgp_peers_pools_blocks_and_priorities() {
    let fx = fixture(NO_RULES);
    let pol = fx.policies();
    let exp = pol.export();
    let mesh = peer(MESH);
    let tor = peer(TOR);
    let block = local("10.65.1.0/26");
    for p in [&mesh, &tor] {
        assert_eq!(
            exp.export(p, &block),
            with_normal_lp(&block),
            "{:?}",
            p.address
        );
    }
    // Already carrying its priority: unchanged.
    let block_lp = route_from("10.65.1.0/26", local_peer(), |a| {
        a.local_pref = Some(NORMAL_LP)
    });
    assert_eq!(exp.export(&tor, &block_lp), PolicyResult::Accept);
    // Inside our block: aggregated unless elevated.
    assert_eq!(
        exp.export(&tor, &local("10.65.1.5/32")),
        PolicyResult::Reject
    );
    let elevated = route_from("10.65.1.5/32", local_peer(), |a| {
        a.local_pref = Some(BIRD_INT_MAX - 512)
    });
    assert_eq!(exp.export(&tor, &elevated), PolicyResult::Accept);
    // A BGP route inside our block with an elevated LOCAL_PREF escapes aggregation too.
    let learned = route_from("10.65.1.6/32", peer(MESH), |a| {
        a.local_pref = Some(BIRD_INT_MAX - 512)
    });
    assert_eq!(exp.export(&tor, &learned), PolicyResult::Accept);
    // Elsewhere in the pool.
    let r = local("10.65.9.0/26");
    assert_eq!(exp.export(&tor, &r), with_normal_lp(&r));
    // disableBGPExport rejects first, even our own block in that pool.
    assert_eq!(
        exp.export(&tor, &local("10.66.1.0/26")),
        PolicyResult::Reject
    );
    assert_eq!(
        exp.export(&tor, &bgp("10.66.9.0/24", MESH)),
        PolicyResult::Reject
    );
    // Outside every pool.
    assert_eq!(
        exp.export(&tor, &local("172.31.0.0/24")),
        PolicyResult::Reject
    );
    assert_eq!(
        exp.export(&mesh, &bgp("8.8.8.0/24", TOR)),
        PolicyResult::Reject
    );
    // IPv6 pool over the IPv6 session only.
    let r6 = local("fd00:65::/122");
    assert_eq!(exp.export(&peer("fd00::fe"), &r6), with_normal_lp(&r6));
    assert_eq!(exp.export(&tor, &r6), PolicyResult::Reject);
}

#[test]
fn service_routes() {
    let fx = fixture(NO_RULES);
    let v4 = ServiceRoutes {
        advertised: vec![
            "10.96.0.0/12".parse().unwrap(),
            "fd00:96::/112".parse().unwrap(),
        ],
        kernel_rejected: vec!["10.96.0.0/12".parse().unwrap()],
        route_reflector_accepted: vec!["192.0.2.0/24".parse().unwrap()],
    };
    let pol = CalicoPolicies::with_services(
        &[&fx.v4, &fx.v6],
        &fx.filters,
        &v4,
        &ServiceRoutes::default(),
    )
    .unwrap();
    let exp = pol.export();
    let tor = peer(TOR);
    let svc = local("10.96.0.0/12");
    assert_eq!(exp.export(&tor, &svc), with_normal_lp(&svc));
    let lb = local("192.0.2.7/32");
    assert_eq!(exp.export(&tor, &lb), with_normal_lp(&lb));
    assert_eq!(pol.kernel_accepts(&svc), KernelVerdict::Reject);
    // The IPv6 CIDR in the IPv4 list is ignored.
    assert_eq!(
        exp.export(&peer("fd00::fe"), &local("fd00:96::/112")),
        PolicyResult::Reject
    );
    // Without service routes the same prefix is not exported.
    assert_eq!(
        fx.policies().export().export(&tor, &svc),
        PolicyResult::Reject
    );
}

// ---------------------------------------------------------------- kernel

#[test]
fn kernel_metric_wireguard_and_ordering() {
    let mut fx = fixture(NO_RULES);
    fx.v4.wireguard_rejected_next_hops = vec!["10.0.0.2".parse().unwrap()];
    // v4 statements run in order: the first matching pool decides.
    fx.v4.pools = vec![
        PoolPlan {
            cidr: "10.0.0.0/8".parse().unwrap(),
            export: true,
            kernel: Some(KernelDecision::Program {
                tunnel: KernelTunnel::IpipCrossSubnet {
                    local_subnet: "10.0.0.0/24".parse().unwrap(),
                },
            }),
        },
        PoolPlan {
            cidr: "10.1.0.0/16".parse().unwrap(),
            export: true,
            kernel: Some(KernelDecision::RejectVxlan),
        },
    ];
    // bird6 keeps only the rejections, so the overlapping VXLAN pool wins.
    fx.v6.pools = vec![
        PoolPlan {
            cidr: "fd00:65::/48".parse().unwrap(),
            export: true,
            kernel: Some(KernelDecision::Program {
                tunnel: KernelTunnel::None,
            }),
        },
        PoolPlan {
            cidr: "fd00:65::/64".parse().unwrap(),
            export: true,
            kernel: Some(KernelDecision::RejectVxlan),
        },
    ];
    let pol = fx.policies();
    let via = |prefix: &str, nh: &str, lp: Option<u32>| {
        route_from(prefix, peer(nh), |a| a.local_pref = lp)
    };
    assert_eq!(
        pol.kernel_accepts(&via("10.1.2.0/26", "10.0.0.3", Some(NORMAL_LP))),
        KernelVerdict::Accept { metric: 1024 }
    );
    // Next hop in our subnet: no tunnel; outside: tunl0.
    assert_eq!(
        pol.kernel_tunnel(&via("10.1.2.0/26", "10.0.0.3", None)),
        None
    );
    assert_eq!(
        pol.kernel_tunnel(&via("10.1.2.0/26", "10.0.9.3", None)),
        Some("tunl0")
    );
    // Received without LOCAL_PREF: BIRD's default 100.
    assert_eq!(
        pol.kernel_accepts(&via("172.16.0.0/24", TOR, None)),
        KernelVerdict::Accept {
            metric: BIRD_INT_MAX - 100
        }
    );
    // WireGuard peer's next hop.
    assert_eq!(
        pol.kernel_accepts(&via("10.1.2.0/26", MESH, Some(NORMAL_LP))),
        KernelVerdict::Reject
    );
    // Our own routes: no metric attribute.
    assert_eq!(
        pol.kernel_accepts(&local("10.65.1.0/26")),
        KernelVerdict::Accept { metric: 0 }
    );
    let v6 = |p: &str| via(p, "fd00::fe", Some(NORMAL_LP));
    assert_eq!(
        pol.kernel_accepts(&v6("fd00:65::/122")),
        KernelVerdict::Reject
    );
    assert_eq!(
        pol.kernel_accepts(&v6("fd00:65:0:1::/122")),
        KernelVerdict::Accept { metric: 1024 }
    );
    // A family without a plan: nothing is programmed.
    let v4_only = CalicoPolicies::new(&[&fx.v4], &fx.filters).unwrap();
    assert_eq!(
        v4_only.kernel_accepts(&v6("fd00:65:0:1::/122")),
        KernelVerdict::Reject
    );
}

#[test]
fn elevated_priority_boundary() {
    let pol = fixture(NO_RULES).policies();
    let with_lp = |lp| route_from("10.65.1.5/32", peer(MESH), |a| a.local_pref = Some(lp));
    assert!(!pol.is_elevated(&with_lp(NORMAL_LP)));
    assert!(pol.is_elevated(&with_lp(NORMAL_LP + 1)));
    assert!(!pol.is_elevated(&bgp("10.65.1.5/32", TOR)));
}

#[test]
fn long_filter_names_resolve_through_confd_truncation() {
    let name = "a-very-long-bgp-filter-name-that-does-not-fit-in-a-bird-symbol";
    let spec = "{importV4: [{cidr: 10.99.0.0/16, matchOperator: In, action: Reject}]}";
    let text = CLUSTER.replace("filters: [f]", &format!("filters: [{name}]"));
    let doc = format!(
        "{text}---\nkind: BGPFilter\napiVersion: projectcalico.org/v3\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    );
    let mut filters = Vec::new();
    let (mut nodes, mut cfgs, mut peers, mut pools) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in decode_documents("test", &doc).unwrap() {
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
    let local_in = LocalInput {
        node_name: "a",
        ..LocalInput::default()
    };
    let v4 = plan(&cluster, &local_in, IpFamily::V4, &StaticPasswords::new()).unwrap();
    let call = &v4.peer("Global_10_0_0_254").unwrap().import_filters[0].function;
    assert!(call.len() <= 64 && !call.contains(name), "{call}");
    let map: BTreeMap<String, BGPFilter> = filters
        .into_iter()
        .map(|f| (f.metadata.name.clone(), f))
        .collect();
    let pol = CalicoPolicies::new(&[&v4], &map).unwrap();
    assert_eq!(
        pol.import().import(&peer(TOR), &bgp("10.99.1.0/24", TOR)),
        PolicyResult::Reject
    );
}

#[test]
fn priority_conversions() {
    assert_eq!(priority_from_local_pref(BIRD_INT_MAX - 1024), 1024);
    assert_eq!(local_pref_from_priority(1024), BIRD_INT_MAX - 1024);
    assert_eq!(priority_from_local_pref(u32::MAX), 0);
    assert_eq!(priority_from_local_pref(100), BIRD_INT_MAX - 100);
}
