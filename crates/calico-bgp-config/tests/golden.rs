//! Calico's confd golden corpus (`confd/tests/mock_data/calicoctl/**/input.yaml` →
//! `confd/tests/compiled_templates/**/bird*.cfg`, commit 87c15906) as acceptance data: the
//! facts we model are extracted from each golden BIRD config and compared with the plan computed
//! from the same input for node `kube-master` (confd's test `NODENAME`) with the block
//! affinities confd's test harness creates (`standardBlockAffinities` in `helpers_test.go`).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns; a panic is a test failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use calico_api::decode::decode_documents;
use calico_api::resource::Resource;
use calico_bgp_config::{
    AffineBlock, BlockState, ClusterInput, IpFamily, KernelDecision, KernelTunnel, LocalInput,
    LocalWorkloadPeer, NextHop, NodeBgpPlan, StaticPasswords, StaticRoute, TtlSecurity, plan,
};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

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

#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Peer {
    name: String,
    neighbor: String,
    local_as: Option<String>,
    source: Option<String>,
    ttl: String,
    passive: bool,
    restart: Option<String>,
    keepalive: Option<String>,
    rr_cluster_id: Option<String>,
    password: Option<String>,
    next_hop: &'static str,
    allow_local_as: Option<String>,
    internal: Option<bool>,
    filter_calls: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    disabled: bool,
    router_id: Option<String>,
    local_as: Option<String>,
    listen: Option<String>,
    peers: Vec<Peer>,
    statics: Vec<String>,
    export_pools: Vec<String>,
    kernel_pools: Vec<String>,
    ibgp_ifaces: Option<String>,
    communities: Vec<String>,
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)? + i;
    Some(&s[i..j])
}

/// Extracts the modelled facts from a golden BIRD config (+ its aggr and ipam files).
fn parse_golden(cfg: &str, aggr: &str, ipam: &str) -> Facts {
    let mut f = Facts {
        disabled: cfg.contains("disabled on this node."),
        ..Facts::default()
    };
    let mut cur: Option<Peer> = None;
    let mut in_template = false;
    let mut in_communities = false;
    let mut depth = 0usize;
    for raw in cfg.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        // A block ends when its braces balance (filters nest `{ … }` inside a peer).
        depth = (depth + opens).saturating_sub(closes);
        if let Some(v) = line.strip_prefix("router id ") {
            f.router_id = Some(v.trim_end_matches(';').to_string());
        } else if line.starts_with("listen bgp") {
            f.listen = Some(line.to_string());
        } else if line.starts_with("template bgp bgp_template") {
            in_template = true;
        } else if line.starts_with("function apply_communities") {
            in_communities = true;
        } else if let Some(rest) = line.strip_prefix("protocol bgp ") {
            cur = Some(Peer {
                name: rest.split_whitespace().next().unwrap().to_string(),
                next_hop: "auto",
                ..Peer::default()
            });
        } else if line == "}" && depth == 0 {
            if let Some(p) = cur.take() {
                f.peers.push(p);
            }
            in_template = false;
            in_communities = false;
        } else if in_communities {
            if let Some(c) = between(line, "net ~ ", " )") {
                f.communities.push(format!("net {c}"));
            } else if line.contains("community.add") {
                f.communities.push(line.to_string());
            }
        } else if in_template {
            if let Some(v) = line.strip_prefix("local as ") {
                f.local_as = Some(v.trim_end_matches(';').to_string());
            }
        } else if let Some(p) = cur.as_mut() {
            let v = |prefix: &str| {
                line.strip_prefix(prefix)
                    .map(|v| v.trim_end_matches(';').to_string())
            };
            if let Some(x) = v("neighbor ") {
                p.neighbor = x;
            } else if let Some(x) = v("local as ") {
                p.local_as = Some(x);
            } else if let Some(x) = v("source address ") {
                p.source = Some(x);
            } else if line.starts_with("ttl security") || line.starts_with("multihop") {
                p.ttl.push_str(line);
            } else if line == "passive on;" {
                p.passive = true;
            } else if let Some(x) = v("graceful restart time ") {
                p.restart = Some(x);
            } else if let Some(x) = v("keepalive time ") {
                p.keepalive = Some(x);
            } else if let Some(x) = v("rr cluster id ") {
                p.rr_cluster_id = Some(x);
            } else if let Some(x) = v("password ") {
                p.password = Some(x.trim_matches('"').to_string());
            } else if line == "next hop keep;" {
                p.next_hop = "keep";
            } else if line == "next hop self;" {
                p.next_hop = "self";
            } else if let Some(x) = v("allow local as ") {
                p.allow_local_as = Some(x);
            } else if let Some(x) = between(line, "calico_export_to_bgp_peers(", ")") {
                p.internal = Some(x == "true");
            } else if line.starts_with("'bgp_") {
                p.filter_calls.push(line.to_string());
            }
        }
    }
    for line in aggr.lines().map(str::trim) {
        if let Some(r) = line.strip_prefix("route ") {
            f.statics.push(r.trim_end_matches(';').to_string());
        }
    }
    let mut section = "";
    for line in ipam.lines().map(str::trim) {
        if line.starts_with("function calico_export_to_bgp_peers") {
            section = "export";
        } else if line.starts_with("filter calico_kernel_programming") {
            section = "kernel";
        } else if line.starts_with("if ((ifname") && section == "export" {
            f.ibgp_ifaces = Some(line.to_string());
        } else if let Some(cidr) = between(line, "if (net ~ ", ") then {") {
            let body = line.split(") then {").nth(1).unwrap_or("");
            let body = body
                .split('#')
                .next()
                .unwrap()
                .trim()
                .trim_end_matches('}')
                .trim();
            let entry = format!("{cidr} {body}");
            match section {
                "export" => f.export_pools.push(entry),
                "kernel" => f.kernel_pools.push(entry),
                _ => {}
            }
        }
    }
    f
}

/// The same facts, rendered from our plan in BIRD's vocabulary.
fn facts_from_plan(p: &NodeBgpPlan) -> Facts {
    let mut f = Facts {
        disabled: !p.family_enabled,
        router_id: p.router_id.map(|r| r.to_string()),
        local_as: Some(p.as_number.to_string()),
        ..Facts::default()
    };
    if p.listen_address.is_some() || p.listen_port.is_some() {
        let mut l = "listen bgp".to_string();
        if let Some(a) = p.listen_address {
            l.push_str(&format!(" address {a}"));
        }
        if let Some(port) = p.listen_port {
            l.push_str(&format!(" port {port}"));
        }
        l.push(';');
        f.listen = Some(l);
    }
    if !p.family_enabled {
        // Nothing but the header is rendered for a disabled family.
        f.local_as = None;
    }
    for peer in &p.peers {
        let mut neighbor = peer.ip.to_string();
        if let Some(port) = peer.port {
            neighbor.push_str(&format!(" port {port}"));
        }
        neighbor.push_str(&format!(" as {}", peer.as_number));
        let mut calls = Vec::new();
        for c in peer.import_filters.iter().chain(&peer.export_filters) {
            calls.push(match c.internal_peer_arg {
                Some(b) => format!("'{}'({b});", c.function),
                None => format!("'{}'();", c.function),
            });
        }
        f.peers.push(Peer {
            name: peer.name.clone(),
            neighbor,
            local_as: peer.local_as.map(|a| a.to_string()),
            source: peer.source_address.map(|a| a.to_string()),
            ttl: match peer.ttl_security {
                TtlSecurity::Off => "ttl security off;multihop;".to_string(),
                TtlSecurity::On(n) => format!("ttl security on;multihop {n};"),
            },
            passive: peer.passive,
            restart: peer.graceful_restart_time.map(|t| t.to_string()),
            keepalive: peer.keepalive_time.map(|t| t.to_string()),
            rr_cluster_id: if peer.rr_client {
                peer.rr_cluster_id.clone()
            } else {
                None
            },
            password: peer.password.clone(),
            next_hop: match peer.next_hop {
                NextHop::Auto => "auto",
                NextHop::Keep => "keep",
                NextHop::SelfAddr => "self",
            },
            allow_local_as: peer.allow_local_as.map(|a| a.to_string()),
            internal: Some(peer.internal),
            filter_calls: calls,
        });
    }
    for s in &p.statics {
        f.statics.push(match s {
            StaticRoute::Blackhole(n) => format!("{n} blackhole"),
            StaticRoute::Via { dst, via } => format!("{dst} via {via}"),
        });
    }
    for pool in &p.pools {
        let c = pool.cidr;
        if !pool.export {
            f.export_pools.push(format!("{c} reject;"));
        }
    }
    for pool in &p.pools {
        if pool.export {
            f.export_pools.push(format!("{} accept;", pool.cidr));
        }
    }
    for pool in &p.pools {
        let Some(k) = &pool.kernel else { continue };
        let entry = match k {
            KernelDecision::RejectVxlan | KernelDecision::RejectFelixOwns => {
                format!("{} reject;", pool.cidr)
            }
            // IPv6 kernel filters list only rejections (the filter ends in `accept;`).
            KernelDecision::Program { .. } if p.family == IpFamily::V6 => continue,
            KernelDecision::Program { tunnel } => match tunnel {
                KernelTunnel::None => format!("{} accept;", pool.cidr),
                KernelTunnel::Ipip => format!("{} krt_tunnel=\"tunl0\"; accept;", pool.cidr),
                KernelTunnel::IpipCrossSubnet { local_subnet } => format!(
                    "{} if (defined(bgp_next_hop)&&(bgp_next_hop ~ {local_subnet})) then krt_tunnel=\"\"; else krt_tunnel=\"tunl0\"; accept;",
                    pool.cidr
                ),
            },
        };
        f.kernel_pools.push(entry);
    }
    let conds: Vec<String> = p
        .ibgp_reject_interfaces
        .iter()
        .map(|i| format!("(ifname ~ \"{i}\")"))
        .collect();
    f.ibgp_ifaces = Some(format!("if ({}) then {{", conds.join(" || ")));
    for rule in &p.communities {
        f.communities.push(format!("net {}", rule.cidr));
        for c in &rule.communities {
            f.communities.push(match c {
                calico_bgp_config::CommunityValue::Standard(a, b) => {
                    format!("bgp_community.add(({a}, {b}));")
                }
                calico_bgp_config::CommunityValue::Large(a, b, c) => {
                    format!("bgp_large_community.add(({a}, {b}, {c}));")
                }
            });
        }
    }
    f
}

/// Kubernetes Secrets present in one step: (name, key, value).
type Secrets<'a> = &'a [(&'a str, &'a str, &'a str)];

/// One confd test run: resources from `input` (a mock_data dir), goldens from `golden`.
struct Case<'a> {
    /// mock_data dirs applied in order; a later resource replaces an earlier one of the same
    /// kind and name (the daemon tests' `upsertResources` steps).
    inputs: &'a [&'a str],
    /// `BGPConfiguration default` `programClusterRoutes` set after applying (confd's
    /// `TestProgramClusterRoutes`).
    program_cluster_routes: Option<&'a str>,
    golden: &'a str,
    node: &'a str,
    /// confd's oneshot tests create `standardBlockAffinities`; its daemon tests for other
    /// nodes run `withoutBlockAffinities()`.
    blocks: bool,
    router_id_env: Option<&'a str>,
    /// Kubernetes Secrets present: (name, key, value).
    secrets: Secrets<'a>,
    local_workloads: &'a [LocalWorkloadPeer],
}

fn oneshot(dir: &str, env_router_id: Option<&str>) {
    run(&Case {
        inputs: &[dir],
        program_cluster_routes: None,
        golden: dir,
        node: "kube-master",
        blocks: true,
        router_id_env: env_router_id,
        secrets: &[],
        local_workloads: &[],
    });
}

fn run(case: &Case<'_>) {
    let dir = case.golden;
    let base = data_dir().join(dir);
    let mut docs: Vec<Resource> = Vec::new();
    for input in case.inputs {
        let text = std::fs::read_to_string(data_dir().join(input).join("input.yaml")).unwrap();
        for d in decode_documents(input, &text).unwrap() {
            let same = |r: &Resource| {
                r.kind() == d.resource.kind() && r.metadata().name == d.resource.metadata().name
            };
            match docs.iter_mut().find(|r| same(r)) {
                Some(slot) => *slot = d.resource,
                None => docs.push(d.resource),
            }
        }
    }
    let (mut nodes, mut cfgs, mut peers, mut pools, mut filters) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for d in docs {
        match d {
            Resource::Node(n) => nodes.push(n),
            Resource::BGPConfiguration(c) => cfgs.push(c),
            Resource::BGPPeer(p) => peers.push(p),
            Resource::IPPool(p) => pools.push(p),
            Resource::BGPFilter(f) => filters.push(f),
            _ => {}
        }
    }
    if let Some(pcr) = case.program_cluster_routes {
        let default = cfgs
            .iter_mut()
            .find(|c| c.metadata.name == "default")
            .unwrap();
        default.spec.program_cluster_routes = Some(pcr.to_string());
    }
    let cluster = ClusterInput {
        nodes: &nodes,
        bgp_configurations: &cfgs,
        bgp_peers: &peers,
        ip_pools: &pools,
        bgp_filters: &filters,
    };
    let blocks = if case.blocks {
        standard_blocks()
    } else {
        Vec::new()
    };
    let local = LocalInput {
        node_name: case.node,
        affine_blocks: &blocks,
        router_id_env: case.router_id_env,
        local_workload_peers: case.local_workloads,
    };
    let passwords = case
        .secrets
        .iter()
        .fold(StaticPasswords::new(), |p, (n, k, v)| p.with(n, k, v));
    for (family, cfg, aggr, ipam) in [
        (IpFamily::V4, "bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg"),
        (
            IpFamily::V6,
            "bird6.cfg",
            "bird6_aggr.cfg",
            "bird6_ipam.cfg",
        ),
    ] {
        let read = |f: &str| std::fs::read_to_string(base.join(f)).unwrap_or_default();
        let mut golden = parse_golden(&read(cfg), &read(aggr), &read(ipam));
        let plan = plan(&cluster, &local, family, &passwords).unwrap();
        assert!(plan.warnings.is_empty(), "{dir}: {:?}", plan.warnings);
        let mut ours = facts_from_plan(&plan);
        if golden.disabled {
            // confd renders no template and no sessions for a disabled family (the listen
            // line, router id and filters are still written).
            ours.peers.clear();
            golden.local_as = None;
        }
        if golden.ibgp_ifaces.is_none() {
            ours.ibgp_ifaces = None;
        }
        // bird6_aggr.cfg lists IPv6 blocks only; our blocks input has none.
        let peers_g: BTreeMap<_, _> = golden.peers.iter().map(|p| (p.name.clone(), p)).collect();
        let peers_o: BTreeMap<_, _> = ours.peers.iter().map(|p| (p.name.clone(), p)).collect();
        assert_eq!(
            peers_g.keys().collect::<Vec<_>>(),
            peers_o.keys().collect::<Vec<_>>(),
            "{dir} {cfg}: peer names"
        );
        for (name, g) in &peers_g {
            assert_eq!(*g, peers_o[name], "{dir} {cfg}: peer {name}");
        }
        assert_eq!(golden, ours, "{dir} {cfg}");
    }
}

macro_rules! golden {
    ($($name:ident => $dir:literal $(, $env:literal)?;)*) => {
        $(
            #[test]
            fn $name() {
                #[allow(unused_mut, unused_assignments)]
                let mut env: Option<&str> = None;
                $( env = Some($env); )?
                oneshot($dir, env);
            }
        )*
    };
}

golden! {
    mesh_bgp_export => "mesh/bgp-export";
    mesh_ipip_always => "mesh/ipip-always";
    mesh_ipip_cross_subnet => "mesh/ipip-cross-subnet";
    mesh_ipip_off => "mesh/ipip-off";
    mesh_vxlan_always => "mesh/vxlan-always";
    mesh_hash => "mesh/hash", "hash";
    mesh_communities => "mesh/communities";
    mesh_restart_time => "mesh/restart-time";
    mesh_route_reflector_mesh_enabled => "mesh/route-reflector-mesh-enabled";
    explicit_global => "explicit_peering/global";
    explicit_global_external => "explicit_peering/global-external";
    explicit_global_ipv6 => "explicit_peering/global-ipv6";
    explicit_specific_node => "explicit_peering/specific_node";
    explicit_selectors => "explicit_peering/selectors";
    explicit_route_reflector => "explicit_peering/route_reflector";
    explicit_route_reflector_v6_by_ip => "explicit_peering/route_reflector_v6_by_ip";
    explicit_keepnexthop => "explicit_peering/keepnexthop";
    explicit_keepnexthop_global => "explicit_peering/keepnexthop-global";
    explicit_local_as => "explicit_peering/local-as";
    explicit_local_as_global => "explicit_peering/local-as-global";
    explicit_local_as_ipv6 => "explicit_peering/local-as-ipv6";
    explicit_local_as_global_ipv6 => "explicit_peering/local-as-global-ipv6";
    ttl_security_explicit_node => "ttl_security/explicit_node";
    ttl_security_peer_selector => "ttl_security/peer_selector";
    ttl_security_global => "ttl_security/global";
    next_hop_mode_global_peers => "next_hop_mode/global_peers";
    next_hop_mode_route_reflectors => "next_hop_mode/route_reflectors";
    reverse_peering_auto => "reverse_peering/auto";
    reverse_peering_manual => "reverse_peering/manual";
    cluster_routes_default => "cluster_routes/default";
    cluster_routes_enabled => "cluster_routes/enabled";
    cluster_routes_ipip_only => "cluster_routes/ipip-only";
    cluster_routes_noencap_only => "cluster_routes/noencap-only";
    ignored_interfaces => "ignored_interfaces";
}

golden! {
    bgpfilter_single_filter_global_peer => "bgpfilter/single_filter/global_peer";
    bgpfilter_single_filter_explicit_peer => "bgpfilter/single_filter/explicit_peer";
    bgpfilter_multi_filter_explicit_peer => "bgpfilter/multi_filter/explicit_peer";
    bgpfilter_multi_filter_global_peer => "bgpfilter/multi_filter/global_peer";
    bgpfilter_match_interface => "bgpfilter/match_interface";
    bgpfilter_filter_names => "bgpfilter/filter_names";
    bgpfilter_import_only_explicit_peer => "bgpfilter/import_only/explicit_peer";
    bgpfilter_import_only_global_peer => "bgpfilter/import_only/global_peer";
    bgpfilter_v6_only_global_peer => "bgpfilter/v6_only/global_peer";
    bgpfilter_export_only_explicit_peer => "bgpfilter/export_only/explicit_peer";
    bgpfilter_export_only_global_peer => "bgpfilter/export_only/global_peer";
    bgpfilter_v4_only_explicit_peer => "bgpfilter/v4_only/explicit_peer";
    bgpfilter_v4_only_global_peer => "bgpfilter/v4_only/global_peer";
    bgpfilter_v6_only_explicit_peer => "bgpfilter/v6_only/explicit_peer";
    bgpfilter_communities_and_operations => "bgpfilter/communities_and_operations";
    bgpfilter_peer_type => "bgpfilter/peer_type";
    bgpfilter_as_path_and_priority => "bgpfilter/as_path_and_priority";
    bgpfilter_large_community => "bgpfilter/large_community";
    bgpfilter_kubevirt_live_migration => "bgpfilter/kubevirt_live_migration";
}

golden! {
    reachable_by_global_peers => "reachable_by/global_peers";
    reachable_by_route_reflectors => "reachable_by/route_reflectors";
    felix_cluster_routing => "felix_cluster_routing";
    bgpfilter_match_source => "bgpfilter/match_source";
    bgpfilter_match_operators => "bgpfilter/match_operators";
    bgpfilter_node_mesh => "bgpfilter/node_mesh";
}

/// Daemon-mode steps (`TestDaemonModeRendering`): a step's input is upserted over the base.
#[test]
fn upsert_steps() {
    for (base, step) in [
        (
            "explicit_peering/selectors",
            "explicit_peering/selectors/step2",
        ),
        ("mesh/communities", "mesh/communities/step2"),
    ] {
        run(&Case {
            inputs: &[base, step],
            program_cluster_routes: None,
            golden: step,
            node: "kube-master",
            blocks: true,
            router_id_env: None,
            secrets: &[],
            local_workloads: &[],
        });
    }
}

/// confd's `TestProgramClusterRoutes`: the same input under each `programClusterRoutes`.
#[test]
fn program_cluster_routes_steps() {
    for (value, golden) in [
        ("EnabledNoEncapOnly", "mesh/restart-time"),
        ("Disabled", "mesh/restart-time/pcr-disabled"),
        ("Enabled", "mesh/restart-time/pcr-enabled"),
        ("EnabledIPIPOnly", "mesh/restart-time/pcr-ipip-only"),
    ] {
        run(&Case {
            inputs: &["mesh/restart-time"],
            program_cluster_routes: Some(value),
            golden,
            node: "kube-master",
            blocks: true,
            router_id_env: None,
            secrets: &[],
            local_workloads: &[],
        });
    }
}

/// confd's `TestNodeMeshBGPPassword`: the mesh password follows the referenced Secret key.
#[test]
fn mesh_password_steps() {
    let steps: [(&str, Secrets<'_>); 5] = [
        ("mesh/password/step1", &[]),
        (
            "mesh/password/step2",
            &[("my-secrets-1", "a", "password-a")],
        ),
        (
            "mesh/password/step3",
            &[("my-secrets-1", "a", "new-password-a")],
        ),
        // The key changed to one that is not referenced: no password.
        (
            "mesh/password/step1",
            &[("my-secrets-1", "b", "password-b")],
        ),
        ("mesh/password/step1", &[]),
    ];
    for (golden, secrets) in steps {
        run(&Case {
            inputs: &["mesh_password"],
            program_cluster_routes: None,
            golden,
            node: "kube-master",
            blocks: true,
            router_id_env: None,
            secrets,
            local_workloads: &[],
        });
    }
}

/// confd's `TestBGPPeerPassword` (node `node1`, no block affinities).
#[test]
fn peer_password_steps() {
    let steps: [(&str, Secrets<'_>); 6] = [
        ("password/step1", &[]),
        ("password/step2", &[("my-secrets-1", "b", "password-b")]),
        (
            "password/step3",
            &[
                ("my-secrets-1", "b", "password-b"),
                ("my-secrets-1", "a", "password-a"),
                ("my-secrets-2", "c", "password-c"),
            ],
        ),
        (
            "password/step4",
            &[
                ("my-secrets-1", "b", "password-b"),
                ("my-secrets-1", "a", "password-a"),
            ],
        ),
        (
            "password/step5",
            &[
                ("my-secrets-1", "b", "new-password-b"),
                ("my-secrets-1", "a", "new-password-a"),
            ],
        ),
        ("password/step6", &[("my-secrets-1", "b", "new-password-b")]),
    ];
    for (golden, secrets) in steps {
        run(&Case {
            inputs: &["password"],
            program_cluster_routes: None,
            golden,
            node: "node1",
            blocks: false,
            router_id_env: None,
            secrets,
            local_workloads: &[],
        });
    }
}

/// Guards against a parser that silently extracts nothing: the goldens do carry the facts.
#[test]
fn golden_parser_extracts_facts() {
    let read = |p: &str| std::fs::read_to_string(data_dir().join(p)).unwrap();
    let pw = parse_golden(&read("password/step3/bird.cfg"), "", "");
    assert!(
        pw.peers.iter().filter(|p| p.password.is_some()).count() >= 2,
        "{pw:?}"
    );
    let f = parse_golden(
        &read("bgpfilter/single_filter/global_peer/bird.cfg"),
        "",
        "",
    );
    assert!(f.peers.iter().any(|p| !p.filter_calls.is_empty()), "{f:?}");
    let rr = parse_golden(&read("explicit_peering/route_reflector/bird.cfg"), "", "");
    assert!(rr.peers.iter().any(|p| p.rr_cluster_id.is_some()), "{rr:?}");
    assert!(rr.peers.iter().all(|p| p.internal.is_some()), "{rr:?}");
    let mesh = parse_golden(
        &read("mesh/ipip-always/bird.cfg"),
        &read("mesh/ipip-always/bird_aggr.cfg"),
        &read("mesh/ipip-always/bird_ipam.cfg"),
    );
    assert!(mesh.peers.iter().any(|p| p.passive), "{mesh:?}");
    assert_eq!(mesh.statics.len(), 4, "{mesh:?}");
    assert!(
        !mesh.kernel_pools.is_empty() && !mesh.export_pools.is_empty(),
        "{mesh:?}"
    );
    let hash = parse_golden(&read("mesh/hash/bird.cfg"), "", "");
    assert_ne!(hash.router_id.as_deref(), Some("10.192.0.2"));
}

/// confd's `TestLocalBGPPeer`: two workloads on this node with endpoint-status `bgpPeerName`s.
#[test]
fn local_workload_peers() {
    let w = |name: &str, v4: &str, v6: &str| LocalWorkloadPeer {
        bgp_peer_name: name.to_string(),
        ipv4: Some(v4.parse().unwrap()),
        ipv6: Some(v6.parse().unwrap()),
    };
    let workloads = [
        w(
            "test-global-peer-with-filter",
            "192.168.162.134",
            "fd00:10:244:0:586d:4461:e980:a284",
        ),
        w(
            "test-node-peer-with-filter",
            "192.168.162.136",
            "fd00:10:244:0:586d:4461:e980:a286",
        ),
    ];
    run(&Case {
        inputs: &["local_bgp_peer"],
        program_cluster_routes: None,
        golden: "explicit_peering/local_bgp_peer",
        node: "kube-master",
        blocks: true,
        router_id_env: None,
        secrets: &[],
        local_workloads: &workloads,
    });
}
