//! The nftables policy driver on a real kernel, inside throw-away network namespaces: apply,
//! list, drift repair, atomic failure, and real TCP traffic between two veth "pods" filtered
//! by a ruleset compiled with calico-nft. The root network namespace is never touched: every
//! `nft` runs through `nsenter --net=<test netns>` (the driver) or `ip netns exec` (the test's
//! own tampering).
//!
//! Without root these tests skip with a note, and FAIL when `CALICO_REQUIRE_ROOT=1` (CI), as
//! `calico_netlink::testing::require_root` decides; a missing `nft` binary is treated the same.

#![allow(clippy::unwrap_used)] // a test: a panic is the failure report

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use calico_dataplane_model::{
    DataplaneModel, IpSet, IpSetKind, IpSetMember, Policy, PolicyId, PolicyKind, PortRange,
    Profile, Rule, RuleAction, TierDefaultAction, TierInfo, WorkloadEndpoint, WorkloadEndpointId,
};
use calico_felix::policy::{
    DataplaneError, NftDriver, NftMetrics, PolicyDataplane, PolicyManager, SyncAction,
};
use calico_netlink::testing::{TestNetns, require_root_and_nft};
use calico_netlink::workload::{WorkloadSpec, setup_workload};
use calico_netlink::{IpNet, RTPROT_BOOT, Route, RouteSocket, VethSpec, sysctl};
use calico_nft::{NftConfig, Ruleset, compile};

/// `nft <args>` inside the test namespace (the test's own tampering, not the driver's).
fn nft(ns: &TestNetns, args: &str) -> String {
    let mut full = vec!["nft"];
    full.extend(args.split_whitespace());
    ns.exec(&full).unwrap()
}

fn driver(ns: &TestNetns) -> NftDriver {
    NftDriver::new("calico", Some(ns.path()))
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn wep_id(pod: &str) -> WorkloadEndpointId {
    WorkloadEndpointId {
        orchestrator_id: "k8s".into(),
        workload_id: format!("default/{pod}"),
        endpoint_id: "eth0".into(),
    }
}

const CLIENTS: &str = "s:test-clients";
const A4: &str = "10.65.0.1/32";
const A6: &str = "fd00:65::1/128";
const B4: &str = "10.65.0.2/32";
const B6: &str = "fd00:65::2/128";

fn allow_80_id() -> PolicyId {
    PolicyId {
        tier: "default".into(),
        kind: PolicyKind::NetworkPolicy,
        namespace: "default".into(),
        name: "allow-80".into(),
    }
}

/// Two pods, `pod-a` (10.65.0.1, fd00:65::1 on `calia`) and `pod-b` (10.65.0.2, fd00:65::2 on
/// `calib`), both with an allow-all profile. `pod-b` has ingress policy `allow-80`: TCP to port 80 from addresses in
/// the IP set `CLIENTS`, whose members are `clients`; anything else to `pod-b` ends at the
/// default tier's implicit deny.
fn model(clients: &[&str]) -> DataplaneModel {
    let mut m = DataplaneModel::default();
    m.ip_sets.insert(
        CLIENTS.into(),
        IpSet {
            kind: Some(IpSetKind::Addresses),
            members: clients
                .iter()
                .map(|a| IpSetMember::Address(a.parse().unwrap()))
                .collect::<BTreeSet<_>>(),
        },
    );
    let mut allow_80 = Rule::any(RuleAction::Allow);
    allow_80.protocol = Some(6);
    allow_80.dst.ports = vec![PortRange {
        first: 80,
        last: 80,
    }];
    allow_80.src.ip_sets = vec![CLIENTS.into()];
    m.policies.insert(
        allow_80_id(),
        Policy {
            namespace: "default".into(),
            inbound: vec![allow_80],
            ..Policy::default()
        },
    );
    m.profiles.insert(
        "kns.default".into(),
        Profile {
            inbound: vec![Rule::any(RuleAction::Allow)],
            outbound: vec![Rule::any(RuleAction::Allow)],
        },
    );
    let endpoint = |iface: &str, v4: &str, v6: &str, tiers: Vec<TierInfo>| WorkloadEndpoint {
        interface_name: iface.into(),
        profile_ids: vec!["kns.default".into()],
        ipv4_nets: vec![net(v4)],
        ipv6_nets: vec![net(v6)],
        tiers,
        ..WorkloadEndpoint::default()
    };
    m.workload_endpoints
        .insert(wep_id("pod-a"), endpoint("calia", A4, A6, vec![]));
    m.workload_endpoints.insert(
        wep_id("pod-b"),
        endpoint(
            "calib",
            B4,
            B6,
            vec![TierInfo {
                name: "default".into(),
                default_action: TierDefaultAction::Deny,
                ingress_policies: vec![allow_80_id()],
                egress_policies: vec![],
            }],
        ),
    );
    m.check_references(true).unwrap();
    m
}

fn ruleset(m: &DataplaneModel) -> Ruleset {
    compile(m, &NftConfig::default()).unwrap()
}

fn manager(ns: &TestNetns) -> PolicyManager<NftDriver> {
    PolicyManager::new(driver(ns), NftMetrics::default())
}

#[test]
fn apply_list_and_repair_drift() {
    if !require_root_and_nft() {
        return;
    }
    let node = TestNetns::new("felix-nft").unwrap();
    let mut m = manager(&node);
    assert_eq!(
        m.dataplane_mut().list_table("calico").unwrap(),
        None,
        "fresh netns"
    );
    assert_eq!(
        m.dataplane_mut().tables().unwrap(),
        Some(Default::default())
    );
    // Nothing programmed yet: nothing to compare, nothing to do.
    assert!(!m.check_drift().unwrap());

    let first = ruleset(&model(&["10.65.0.1"]));
    m.set_target(first.clone());
    assert_eq!(m.sync().unwrap(), SyncAction::FullReplace);
    let listed = m.dataplane_mut().list_table("calico").unwrap().unwrap();
    assert_eq!(listed, first.shape(), "kernel listing vs compiled shape");
    // The first replace created the table without deleting it first; the listing of tables
    // now has it (and only the inet ones: the one ip table added here is not listed).
    nft(&node, "add table ip other");
    assert_eq!(
        m.dataplane_mut().tables().unwrap(),
        Some(["calico".to_string()].into())
    );
    assert!(listed.chains.len() >= 3, "{listed:?}");
    assert!(nft(&node, "list table inet calico").contains("10.65.0.1"));
    assert!(!m.check_drift().unwrap(), "no drift right after applying");
    assert_eq!(m.resyncs(), 0);

    // A second sync of the same target sends nothing.
    m.set_target(first.clone());
    assert_eq!(m.sync().unwrap(), SyncAction::Nothing);

    // An incremental change goes out as a diff and lands exactly.
    let second = ruleset(&model(&["10.65.0.1", "10.65.0.7"]));
    m.set_target(second.clone());
    assert_eq!(m.sync().unwrap(), SyncAction::Diff);
    assert_eq!(
        m.dataplane_mut().list_table("calico").unwrap().unwrap(),
        second.shape()
    );
    assert!(nft(&node, "list table inet calico").contains("10.65.0.7"));
    assert!(!m.check_drift().unwrap());

    // Drift 1: someone flushes the table (chains stay, every rule goes).
    nft(&node, "flush table inet calico");
    assert_ne!(
        m.dataplane_mut().list_table("calico").unwrap().unwrap(),
        second.shape()
    );
    assert!(m.check_drift().unwrap(), "flushed table is drift");
    assert_eq!(m.resyncs(), 1);
    assert_eq!(
        m.dataplane_mut().list_table("calico").unwrap().unwrap(),
        second.shape(),
        "repaired"
    );
    assert!(!m.check_drift().unwrap());

    // Drift 2: the table is deleted outright.
    nft(&node, "delete table inet calico");
    assert_eq!(m.dataplane_mut().list_table("calico").unwrap(), None);
    assert!(m.check_drift().unwrap());
    assert_eq!(m.resyncs(), 2);
    assert_eq!(
        m.dataplane_mut().list_table("calico").unwrap().unwrap(),
        second.shape()
    );

    // Drift 3: a set element removed behind our back.
    let set_name = second
        .set_names()
        .find(|name| {
            second
                .set_elements(name)
                .is_some_and(|mut e| e.any(|e| e == "10.65.0.7"))
        })
        .expect("the IPv4 clients set")
        .to_string();
    node.exec(&[
        "nft",
        "delete",
        "element",
        "inet",
        "calico",
        &set_name,
        "{ 10.65.0.7 }",
    ])
    .unwrap();
    assert!(m.check_drift().unwrap());
    assert_eq!(m.resyncs(), 3);
    assert!(nft(&node, "list table inet calico").contains("10.65.0.7"));

    // Going back to the first ruleset after repairs is a diff again.
    m.set_target(first.clone());
    assert_eq!(m.sync().unwrap(), SyncAction::Diff);
    assert_eq!(
        m.dataplane_mut().list_table("calico").unwrap().unwrap(),
        first.shape()
    );
}

#[test]
fn a_bad_script_fails_with_nfts_message_and_changes_nothing() {
    if !require_root_and_nft() {
        return;
    }
    let node = TestNetns::new("felix-nftbad").unwrap();
    let mut m = manager(&node);
    let good = ruleset(&model(&["10.65.0.1"]));
    m.set_target(good.clone());
    m.sync().unwrap();
    let before = nft(&node, "list table inet calico");

    // Syntax error: nothing of the script is applied, and the error carries nft's words.
    let mut d = driver(&node);
    let generation = d.generation().unwrap().unwrap();
    let err = d
        .apply("add chain inet calico extra\nadd rule inet calico extra bogus-keyword\n")
        .unwrap_err();
    let stderr = err.nft_stderr().expect("nft ran and failed");
    assert!(stderr.contains("Error"), "{err}");
    assert!(stderr.contains("bogus-keyword"), "{err}");
    assert_eq!(stderr, stderr.trim());
    assert!(matches!(err, DataplaneError::Failed { .. }));

    // Semantic error (an element for a set that does not exist) after a valid
    // command in the same script: the kernel rejects the whole batch.
    let err = d
        .apply(
            "add chain inet calico extra\n\
             add element inet calico no-such-set { 10.9.9.9 }\n",
        )
        .unwrap_err();
    assert!(err.nft_stderr().unwrap().contains("no-such-set"), "{err}");
    assert_eq!(nft(&node, "list table inet calico"), before, "atomic");
    assert_eq!(d.list_table("calico").unwrap().unwrap(), good.shape());
    assert!(
        !m.check_drift().unwrap(),
        "the failed scripts left no trace"
    );
    assert_eq!(
        d.generation().unwrap(),
        Some(generation),
        "no commit happened"
    );
    // One good script is one commit.
    d.apply("add chain inet calico extra\n").unwrap();
    assert_eq!(d.generation().unwrap(), Some(generation.wrapping_add(1)));
}

/// The real driver, counting how often the table is listed.
struct Counting {
    inner: NftDriver,
    lists: usize,
}

impl PolicyDataplane for Counting {
    fn apply(&mut self, script: &str) -> Result<(), DataplaneError> {
        self.inner.apply(script)
    }
    fn list_table(
        &mut self,
        table: &str,
    ) -> Result<Option<calico_nft::TableShape>, DataplaneError> {
        self.lists += 1;
        self.inner.list_table(table)
    }
    fn generation(&mut self) -> Result<Option<u32>, DataplaneError> {
        self.inner.generation()
    }
}

#[test]
fn drift_checks_list_only_after_foreign_commits() {
    if !require_root_and_nft() {
        return;
    }
    let node = TestNetns::new("felix-nftgen").unwrap();
    let mut m = PolicyManager::new(
        Counting {
            inner: driver(&node),
            lists: 0,
        },
        NftMetrics::default(),
    );
    let rs = ruleset(&model(&["10.65.0.1"]));
    m.set_target(rs.clone());
    m.sync().unwrap();
    assert!(!m.check_drift().unwrap());
    assert_eq!(m.dataplane().lists, 0, "our own commit was the last one");

    // Someone else's table: one listing shows our table intact, later checks skip again.
    nft(&node, "add table inet other");
    assert!(!m.check_drift().unwrap());
    assert!(!m.check_drift().unwrap());
    assert_eq!(m.dataplane().lists, 1);

    // Someone empties one of our sets: listed, repaired.
    let set = rs
        .set_names()
        .find(|n| {
            rs.set_elements(n)
                .is_some_and(|mut e| e.any(|e| e == "10.65.0.1"))
        })
        .unwrap()
        .to_string();
    node.exec(&["nft", "flush", "set", "inet", "calico", &set])
        .unwrap();
    assert!(m.check_drift().unwrap());
    assert_eq!((m.dataplane().lists, m.resyncs()), (2, 1));
    assert_eq!(
        m.dataplane_mut().list_table("calico").unwrap(),
        Some(rs.shape())
    );
    assert!(!m.check_drift().unwrap());
    assert_eq!(m.dataplane().lists, 3, "only the explicit listing above");
}

fn host_with_uplink() -> TestNetns {
    // A default route (to a dummy uplink) makes the host answer proxy ARP for the pods'
    // gateway 169.254.1.1, as on a real node.
    let host = TestNetns::new("felix-nfthost").unwrap();
    let s = RouteSocket::open_in(host.ns()).unwrap();
    s.create_veth(&VethSpec {
        name: "uplink0",
        mac: None,
        mtu: None,
        peer_name: "uplink1",
        peer_mac: None,
        peer_netns: None,
    })
    .unwrap();
    for n in ["uplink0", "uplink1"] {
        s.set_link_up(s.link_by_name(n).unwrap().unwrap().index)
            .unwrap();
    }
    let up = s.link_by_name("uplink0").unwrap().unwrap().index;
    s.add_route(&Route::link_scope(net("0.0.0.0/0"), up, RTPROT_BOOT))
        .unwrap();
    host.ns()
        .run(|| {
            sysctl::write("net/ipv4/ip_forward", "1")?;
            sysctl::write("net/ipv6/conf/all/forwarding", "1")
        })
        .unwrap()
        .unwrap();
    host
}

fn pod(host: &TestNetns, name: &str, host_if: &str, v4: &str, v6: &str) -> TestNetns {
    let pod = TestNetns::new(name).unwrap();
    let addrs = [net(v4), net(v6)];
    setup_workload(&WorkloadSpec {
        host_ns: host.ns(),
        container_ns: pod.ns(),
        host_if,
        container_if: "eth0",
        addresses: &addrs,
        mtu: 1400,
        container_mac: None,
        host_route_protocol: RTPROT_BOOT,
    })
    .unwrap();
    pod
}

/// A TCP connection from `client` to `to`, with a payload both ways. `Ok` = it worked;
/// `Err(kind)` = how it failed (a dropped SYN times out).
fn tcp(client: &TestNetns, listener: &TcpListener, to: SocketAddr) -> Result<(), ErrorKind> {
    let stream = client
        .ns()
        .run(|| TcpStream::connect_timeout(&to, Duration::from_millis(700)))
        .unwrap();
    let mut stream = stream.map_err(|e| e.kind())?;
    let (mut server, _) = listener.accept().unwrap();
    stream.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    server.write_all(b"pong").unwrap();
    stream.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
    Ok(())
}

#[test]
fn real_traffic_is_filtered_by_the_compiled_ruleset() {
    if !require_root_and_nft() {
        return;
    }
    let host = host_with_uplink();
    let pod_a = pod(&host, "felix-nftpa", "calia", A4, A6);
    let pod_b = pod(&host, "felix-nftpb", "calib", B4, B6);
    let b4: IpAddr = net(B4).addr();
    let b6: IpAddr = net(B6).addr();
    // Listeners of pod-b: (address, port) → socket.
    let listeners: Vec<(SocketAddr, TcpListener)> = [(b4, 80), (b4, 81), (b6, 80), (b6, 81)]
        .into_iter()
        .map(|(ip, port)| {
            let addr = SocketAddr::new(ip, port);
            let l = pod_b
                .ns()
                .run(move || TcpListener::bind(addr))
                .unwrap()
                .unwrap();
            (addr, l)
        })
        .collect();
    // What pod-a gets on every (address, port) of pod-b, in the order of `listeners`.
    let probe = || -> Vec<Result<(), ErrorKind>> {
        listeners
            .iter()
            .map(|(addr, l)| tcp(&pod_a, l, *addr))
            .collect()
    };
    let open = Ok(());
    let dropped = Err(ErrorKind::TimedOut);

    // Without a policy table everything answers: what follows is the policy's doing. (The
    // first IPv6 connection waits for neighbour discovery; on a loaded machine that can take
    // longer than one probe's timeout, so the precondition may take a few tries.)
    let mut baseline = probe();
    for _ in 0..5 {
        if baseline == [open, open, open, open] {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
        baseline = probe();
    }
    assert_eq!(baseline, [open, open, open, open]);

    let mut m = PolicyManager::new(driver(&host), NftMetrics::default());
    let clients = [A4, A6].map(|a| a.split('/').next().unwrap());
    m.set_target(ruleset(&model(&clients)));
    assert_eq!(m.sync().unwrap(), SyncAction::FullReplace);
    // Port 80 allowed from the clients set, 81 dropped (not refused), in both families.
    assert_eq!(probe(), [open, dropped, open, dropped]);

    // pod-a leaves the IPv4 clients: a diff (one set element) closes IPv4 port 80 only.
    m.set_target(ruleset(&model(&clients[1..])));
    assert_eq!(m.sync().unwrap(), SyncAction::Diff);
    assert_eq!(probe(), [dropped, dropped, open, dropped]);

    // And back.
    m.set_target(ruleset(&model(&clients)));
    assert_eq!(m.sync().unwrap(), SyncAction::Diff);
    assert_eq!(probe(), [open, dropped, open, dropped]);

    // A flushed table lets everything through until the drift check repairs it.
    host.exec(&["nft", "flush", "table", "inet", "calico"])
        .unwrap();
    assert_eq!(probe(), [open, open, open, open]);
    assert!(m.check_drift().unwrap());
    assert_eq!(m.resyncs(), 1);
    assert_eq!(probe(), [open, dropped, open, dropped]);
}
