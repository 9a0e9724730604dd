//! Real traffic through a compiled table: two "pods" (network namespaces behind veths named
//! `calia` / `calib`) routed by a "host" namespace that holds table inet calico. Everything
//! runs inside `unshare --net --mount` (a private mount namespace for `ip netns`), never in
//! the host's network namespace. Needs root, `ip` and python3; fails without them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use calico_dataplane_model::*;
use calico_nft::{NftConfig, compile, diff};
use common::in_netns;

const TOPOLOGY: &str = r#"
set -e
mount --make-rprivate /
mount -t tmpfs none /run
ip link set lo up
sysctl -qw net.ipv4.ip_forward=1
for p in a b; do
  ip netns add $p
  ip link add cali$p type veth peer name eth0 netns $p
  ip netns exec $p ip link set lo up
  ip netns exec $p ip link set eth0 up
done
ip addr add 10.0.1.1/24 dev calia; ip link set calia up
ip addr add 10.0.2.1/24 dev calib; ip link set calib up
ip netns exec a ip addr add 10.0.1.2/24 dev eth0
ip netns exec a ip route add default via 10.0.1.1
ip netns exec b ip addr add 10.0.2.2/24 dev eth0
ip netns exec b ip route add default via 10.0.2.1
ip netns exec b ip addr add 10.0.9.9/32 dev eth0
PY=$(command -v python3)
cat > $DIR/srv.py <<'P'
import socket, sys, threading, time
def serve(addr, port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(b'ok'); c.close()
for spec in sys.argv[1:]:
    a, p = spec.rsplit(':', 1)
    threading.Thread(target=serve, args=(a, int(p)), daemon=True).start()
time.sleep(60)
P
cat > $DIR/cli.py <<'P'
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
    print('open' if s.recv(2) == b'ok' else 'closed')
except Exception:
    print('closed')
P
ip netns exec b $PY $DIR/srv.py 0.0.0.0:80 0.0.0.0:81 & S1=$!
ip netns exec a $PY $DIR/srv.py 0.0.0.0:80 & S2=$!
$PY $DIR/srv.py 10.0.2.1:80 & S3=$!
cat > $DIR/udp.py <<'P'
import socket, sys
if sys.argv[1] == 'recv':
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 9999)); s.settimeout(1.5)
    try:
        _, src = s.recvfrom(100); print('udp from', src[0])
    except Exception:
        print('udp none')
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[2], 0))
    s.sendto(b'x', (sys.argv[3], 9999))
P
trap 'kill $S1 $S2 $S3' EXIT
sleep 0.5
check() { echo "$1 $2 $(ip netns exec $1 $PY $DIR/cli.py $2 $3):$3"; }
spoof() { ip netns exec a $PY $DIR/udp.py recv & R=$!; sleep 0.3; ip netns exec b $PY $DIR/udp.py send 10.0.9.9 10.0.1.2; wait $R; }
host() { echo "host $1 $($PY $DIR/cli.py $1 $2):$2"; }
"#;

fn wep(name: &str, iface: &str, ingress: &[PolicyId]) -> (WorkloadEndpointId, WorkloadEndpoint) {
    (
        WorkloadEndpointId {
            orchestrator_id: "k8s".into(),
            workload_id: format!("ns/{name}"),
            endpoint_id: "eth0".into(),
        },
        WorkloadEndpoint {
            interface_name: iface.into(),
            profile_ids: vec!["kns.ns".into()],
            tiers: if ingress.is_empty() {
                vec![]
            } else {
                vec![
                    TierInfo {
                        name: "security".into(),
                        default_action: TierDefaultAction::Deny,
                        ingress_policies: vec![ingress[0].clone()],
                        egress_policies: vec![],
                    },
                    TierInfo {
                        name: "default".into(),
                        default_action: TierDefaultAction::Deny,
                        ingress_policies: ingress[1..].to_vec(),
                        egress_policies: vec![],
                    },
                ]
            },
            ..WorkloadEndpoint::default()
        },
    )
}

fn pid(tier: &str, name: &str) -> PolicyId {
    PolicyId {
        tier: tier.into(),
        kind: PolicyKind::NetworkPolicy,
        namespace: "ns".into(),
        name: name.into(),
    }
}

/// Pod b: tier security passes everything from 10.0.0.0/16, denies the rest; tier default
/// allows TCP 80 from the pods in set s:a. Pod a has no policy (profile allows). With
/// `spoof_ok`, pod b may send from 10.0.9.0/24 (allowSpoofedSourcePrefixes), which strict
/// RPF otherwise drops.
fn model(ports: &[u16], spoof_ok: bool) -> DataplaneModel {
    let mut m = DataplaneModel::default();
    m.ip_sets.insert(
        "s:a".into(),
        IpSet {
            kind: Some(IpSetKind::Addresses),
            members: [IpSetMember::Address("10.0.1.2".parse().unwrap())].into(),
        },
    );
    let mut pass = Rule::any(RuleAction::Pass);
    pass.src.nets = vec!["10.0.0.0/16".parse().unwrap()];
    m.policies.insert(
        pid("security", "security.pass-internal"),
        Policy {
            namespace: "ns".into(),
            inbound: vec![pass, Rule::any(RuleAction::Deny)],
            ..Policy::default()
        },
    );
    let mut allow = Rule::any(RuleAction::Allow);
    allow.protocol = Some(6);
    allow.src.ip_sets = vec!["s:a".into()];
    allow.dst.ports = ports
        .iter()
        .map(|p| PortRange {
            first: *p,
            last: *p,
        })
        .collect();
    m.policies.insert(
        pid("default", "allow-a"),
        Policy {
            namespace: "ns".into(),
            inbound: vec![allow],
            ..Policy::default()
        },
    );
    m.profiles.insert(
        "kns.ns".into(),
        Profile {
            inbound: vec![Rule::any(RuleAction::Allow)],
            outbound: vec![Rule::any(RuleAction::Allow)],
        },
    );
    let (ida, a) = wep("a", "calia", &[]);
    let (idb, mut b) = wep(
        "b",
        "calib",
        &[
            pid("security", "security.pass-internal"),
            pid("default", "allow-a"),
        ],
    );
    m.workload_endpoints.insert(ida, a);
    if spoof_ok {
        b.allow_spoofed_source_prefixes = vec!["10.0.9.0/24".parse().unwrap()];
    }
    m.workload_endpoints.insert(idb, b);
    m
}

#[test]
fn policy_and_rpf_decide_real_traffic_and_a_diff_changes_them() {
    let cfg = NftConfig::default();
    let before = compile(&model(&[80], false), &cfg).unwrap();
    let after = compile(&model(&[80, 81], true), &cfg).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("full.nft"), before.full_replace_script()).unwrap();
    std::fs::write(dir.path().join("diff.nft"), diff(&before, &after)).unwrap();
    let script = format!(
        "DIR={}\n{TOPOLOGY}\n\
         check a 10.0.2.2 80; check a 10.0.2.2 81; check b 10.0.1.2 80; host 10.0.2.2 81; spoof\n\
         nft -f $DIR/full.nft\n\
         echo applied\n\
         check a 10.0.2.2 80; check a 10.0.2.2 81; check b 10.0.1.2 80; host 10.0.2.2 81\n\
         check b 10.0.2.1 80; spoof\n\
         nft -f $DIR/diff.nft\n\
         echo diffed\n\
         check a 10.0.2.2 80; check a 10.0.2.2 81; spoof\n",
        dir.path().display()
    );
    let (ok, out, err) = in_netns_with_mount(&script);
    assert!(ok, "script failed: {err}\n{out}");
    let want = "\
a 10.0.2.2 open:80
a 10.0.2.2 open:81
b 10.0.1.2 open:80
host 10.0.2.2 open:81
udp from 10.0.9.9
applied
a 10.0.2.2 open:80
a 10.0.2.2 closed:81
b 10.0.1.2 open:80
host 10.0.2.2 open:81
b 10.0.2.1 closed:80
udp none
diffed
a 10.0.2.2 open:80
a 10.0.2.2 open:81
udp from 10.0.9.9
";
    assert_eq!(out, want, "stderr: {err}");
}

/// The sharded layout on real traffic: a shard table evaluates workload egress at prerouting
/// and clears the accept mark after it, so the main table's `wl-to-host` still applies
/// `DefaultEndpointToHostAction` to traffic a workload's egress policy allowed (the main
/// table reads that bit as "accepted by the raw / pre-DNAT stage"); egress denies hold for
/// forwarded and host-bound traffic alike; ingress is evaluated at forward.
#[test]
fn sharded_tables_keep_endpoint_to_host_action_and_egress_policy() {
    use calico_nft::{EndpointToHostAction, PolicyTables};
    // Pod a's egress: deny TCP 81 (to anyone), allow the rest.
    let with_egress_deny = || {
        let mut m = model(&[80, 81], false);
        let mut deny = Rule::any(RuleAction::Deny);
        deny.protocol = Some(6);
        deny.dst.ports = vec![PortRange {
            first: 81,
            last: 81,
        }];
        m.policies.insert(
            pid("default", "a-egress"),
            Policy {
                namespace: "ns".into(),
                outbound: vec![deny, Rule::any(RuleAction::Allow)],
                ..Policy::default()
            },
        );
        let id = WorkloadEndpointId {
            orchestrator_id: "k8s".into(),
            workload_id: "ns/a".into(),
            endpoint_id: "eth0".into(),
        };
        if let Some(a) = m.workload_endpoints.get_mut(&id) {
            a.tiers = vec![TierInfo {
                name: "default".into(),
                default_action: TierDefaultAction::Deny,
                ingress_policies: vec![],
                egress_policies: vec![pid("default", "a-egress")],
            }];
        }
        m
    };
    let dir = tempfile::tempdir().unwrap();
    let mut script = format!("DIR={}\n{TOPOLOGY}\n", dir.path().display());
    for (k, action) in [
        EndpointToHostAction::Drop,
        EndpointToHostAction::Accept,
        EndpointToHostAction::Return,
    ]
    .into_iter()
    .enumerate()
    {
        let cfg = NftConfig {
            shards: 2,
            endpoint_to_host_action: action,
            ..NftConfig::default()
        };
        let tables = PolicyTables::compile(&with_egress_deny(), &cfg).unwrap();
        assert_eq!(
            tables.tables().count(),
            2,
            "main + the shard of namespace ns"
        );
        for (j, t) in tables.full_replace_scripts().iter().enumerate() {
            let file = dir.path().join(format!("{k}-{j}.nft"));
            std::fs::write(&file, t).unwrap();
            script.push_str(&format!("nft -f {}\n", file.display()));
        }
        script.push_str(&format!(
            "echo {action:?}\n\
             check a 10.0.2.1 80; check a 10.0.2.1 81; check a 10.0.2.2 80; check a 10.0.2.2 81\n\
             check b 10.0.1.2 80; check b 10.0.2.1 80\n"
        ));
    }
    let (ok, out, err) = in_netns_with_mount(&script);
    assert!(ok, "script failed: {err}\n{out}");
    let want = "\
Drop
a 10.0.2.1 closed:80
a 10.0.2.1 closed:81
a 10.0.2.2 open:80
a 10.0.2.2 closed:81
b 10.0.1.2 open:80
b 10.0.2.1 closed:80
Accept
a 10.0.2.1 open:80
a 10.0.2.1 closed:81
a 10.0.2.2 open:80
a 10.0.2.2 closed:81
b 10.0.1.2 open:80
b 10.0.2.1 open:80
Return
a 10.0.2.1 open:80
a 10.0.2.1 closed:81
a 10.0.2.2 open:80
a 10.0.2.2 closed:81
b 10.0.1.2 open:80
b 10.0.2.1 open:80
";
    assert_eq!(out, want, "stderr: {err}");
}

/// The global table on real traffic: pods a (namespace x) and b (namespace y) in different
/// shard tables; a security tier (default Pass) of GlobalNetworkPolicies before each pod's
/// own default-tier policy. b's ingress: the global policy allows TCP 80 (b's own policy,
/// which denies it, is skipped), passes 81 and 82 (b's own policy allows 81 and 83 only),
/// denies 83 (b's allow does not matter) and has no rule for 85 (the tier passes it on). a's
/// egress: the global policy allows TCP 85, which a's own policy denies. The global table's
/// egress verdict for a (at prerouting) must not stand in for b's ingress (at forward).
/// The model of `global_table_decides_before_the_shard_tables`; with `b_prefix_gone`, b's
/// security tier also has a NetworkPolicy (which decides nothing), so b has no global prefix.
fn global_model(b_prefix_gone: bool) -> DataplaneModel {
    let tcp_ports = |action: RuleAction, ports: &[u16]| {
        let mut r = Rule::any(action);
        r.protocol = Some(6);
        r.dst.ports = ports
            .iter()
            .map(|p| PortRange {
                first: *p,
                last: *p,
            })
            .collect();
        r
    };
    let gnp = |name: &str| PolicyId {
        tier: "security".into(),
        kind: PolicyKind::GlobalNetworkPolicy,
        namespace: String::new(),
        name: format!("security.{name}"),
    };
    let np = |ns: &str, name: &str| PolicyId {
        tier: name
            .split_once('.')
            .map_or("default", |(tier, _)| tier)
            .into(),
        kind: PolicyKind::NetworkPolicy,
        namespace: ns.into(),
        name: name.into(),
    };
    let mut m = DataplaneModel::default();
    m.policies.insert(
        gnp("b-in"),
        Policy {
            inbound: vec![
                tcp_ports(RuleAction::Allow, &[80]),
                tcp_ports(RuleAction::Pass, &[81, 82]),
                tcp_ports(RuleAction::Deny, &[83]),
            ],
            ..Policy::default()
        },
    );
    m.policies.insert(
        np("y", "b-own"),
        Policy {
            namespace: "y".into(),
            inbound: vec![tcp_ports(RuleAction::Allow, &[81, 83])],
            ..Policy::default()
        },
    );
    m.policies.insert(
        gnp("a-out"),
        Policy {
            outbound: vec![tcp_ports(RuleAction::Allow, &[85])],
            ..Policy::default()
        },
    );
    m.policies.insert(
        np("x", "a-own"),
        Policy {
            namespace: "x".into(),
            outbound: vec![
                tcp_ports(RuleAction::Deny, &[85]),
                Rule::any(RuleAction::Allow),
            ],
            ..Policy::default()
        },
    );
    let tier = |name: &str, action, ingress: Vec<PolicyId>, egress: Vec<PolicyId>| TierInfo {
        name: name.into(),
        default_action: action,
        ingress_policies: ingress,
        egress_policies: egress,
    };
    let mut b_security = vec![gnp("b-in")];
    if b_prefix_gone {
        b_security.push(np("y", "security.nothing"));
        m.policies.insert(
            np("y", "security.nothing"),
            Policy {
                namespace: "y".into(),
                inbound: vec![tcp_ports(RuleAction::Deny, &[9])],
                ..Policy::default()
            },
        );
    }
    m.workload_endpoints.insert(
        id("x", "a"),
        WorkloadEndpoint {
            interface_name: "calia".into(),
            tiers: vec![
                tier(
                    "security",
                    TierDefaultAction::Pass,
                    vec![],
                    vec![gnp("a-out")],
                ),
                tier(
                    "default",
                    TierDefaultAction::Deny,
                    vec![],
                    vec![np("x", "a-own")],
                ),
            ],
            ..WorkloadEndpoint::default()
        },
    );
    m.workload_endpoints.insert(
        id("y", "b"),
        WorkloadEndpoint {
            interface_name: "calib".into(),
            tiers: vec![
                tier("security", TierDefaultAction::Pass, b_security, vec![]),
                tier(
                    "default",
                    TierDefaultAction::Deny,
                    vec![np("y", "b-own")],
                    vec![],
                ),
            ],
            ..WorkloadEndpoint::default()
        },
    );
    m
}

fn id(ns: &str, pod: &str) -> WorkloadEndpointId {
    WorkloadEndpointId {
        orchestrator_id: "k8s".into(),
        workload_id: format!("{ns}/{pod}"),
        endpoint_id: "eth0".into(),
    }
}

#[test]
fn global_table_decides_before_the_shard_tables() {
    use calico_nft::{PolicyTables, shard_of};
    let m = global_model(false);
    let cfg = NftConfig {
        shards: 4,
        ..NftConfig::default()
    };
    assert_ne!(shard_of(&id("x", "a"), 4), shard_of(&id("y", "b"), 4));
    let tables = PolicyTables::compile(&m, &cfg).unwrap();
    assert_eq!(tables.tables().count(), 4, "main, global and two shards");
    let dir = tempfile::tempdir().unwrap();
    let mut script = format!(
        "DIR={}
{TOPOLOGY}
         ip netns exec b $PY $DIR/srv.py 0.0.0.0:82 0.0.0.0:83 0.0.0.0:85 & S4=$!
         trap 'kill $S1 $S2 $S3 $S4' EXIT
sleep 0.5
",
        dir.path().display()
    );
    for (j, t) in tables.full_replace_scripts().iter().enumerate() {
        let file = dir.path().join(format!("{j}.nft"));
        std::fs::write(&file, t).unwrap();
        script.push_str(&format!(
            "nft -f {}
",
            file.display()
        ));
    }
    script.push_str(
        "for p in 80 81 82 83 85; do check a 10.0.2.2 $p; done
",
    );
    let (ok, out, err) = in_netns_with_mount(&script);
    assert!(ok, "script failed: {err}\n{out}");
    let want = "\
a 10.0.2.2 open:80
a 10.0.2.2 open:81
a 10.0.2.2 closed:82
a 10.0.2.2 closed:83
a 10.0.2.2 closed:85
";
    assert_eq!(out, want, "stderr: {err}");
}

/// A full replace swaps one table at a time. When an endpoint's global prefix goes away (b's
/// security tier gains a NetworkPolicy while calico-node is down, say), the new global table
/// (applied first) no longer evaluates that tier for b while b's old shard chain still
/// starts after it: the shard chain sees that the group it trusts did not run and drops
/// (fail closed) instead of allowing TCP 83, which the security tier denies and b's own
/// policy allows. Once the new shard is in, b's whole chain decides again.
#[test]
fn a_shard_chain_never_goes_on_without_its_global_prefix() {
    use calico_nft::PolicyTables;
    let cfg = NftConfig {
        shards: 4,
        ..NftConfig::default()
    };
    let before = PolicyTables::compile(&global_model(false), &cfg).unwrap();
    let after = PolicyTables::compile(&global_model(true), &cfg).unwrap();
    assert!(after.global().is_some(), "a still has a global prefix");
    let dir = tempfile::tempdir().unwrap();
    let mut script = format!(
        "DIR={}\n{TOPOLOGY}\n\
         ip netns exec b $PY $DIR/srv.py 0.0.0.0:82 0.0.0.0:83 0.0.0.0:85 & S4=$!\n\
         trap 'kill $S1 $S2 $S3 $S4' EXIT\nsleep 0.5\n",
        dir.path().display()
    );
    let mut load = |name: &str, scripts: &[String]| {
        for (j, t) in scripts.iter().enumerate() {
            let file = dir.path().join(format!("{name}-{j}.nft"));
            std::fs::write(&file, t).unwrap();
            script.push_str(&format!("nft -f {}\n", file.display()));
        }
        script.push_str(&format!(
            "echo {name}; for p in 80 81 83; do check a 10.0.2.2 $p; done\n"
        ));
    };
    let new = after.full_replace_scripts();
    load("before", &before.full_replace_scripts());
    assert!(
        new[0].contains("table inet calico-global"),
        "the global table goes first"
    );
    load("global-swapped", &new[..1]);
    load("after", &new[1..]);
    let (ok, out, err) = in_netns_with_mount(&script);
    assert!(ok, "script failed: {err}\n{out}");
    let want = "\
before
a 10.0.2.2 open:80
a 10.0.2.2 open:81
a 10.0.2.2 closed:83
global-swapped
a 10.0.2.2 closed:80
a 10.0.2.2 closed:81
a 10.0.2.2 closed:83
after
a 10.0.2.2 open:80
a 10.0.2.2 open:81
a 10.0.2.2 closed:83
";
    assert_eq!(out, want, "stderr: {err}");
}

/// `in_netns` with a private mount namespace too (for `ip netns`' /run/netns).
fn in_netns_with_mount(script: &str) -> (bool, String, String) {
    let wrapped = format!("exec unshare --mount bash -c {}", shell_quote(script));
    in_netns(&wrapped, "")
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
