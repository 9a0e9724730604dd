//! Calico's own start-up tables (`node/pkg/lifecycle/startup/startup_test.go`), re-encoded as
//! data: the default-pool environment table, the `=none` table, the variables that make
//! start-up exit, and node-name determination.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::Arc;

use calico_api::ippool::IPPool;
use calico_client::Client;
use calico_datastore::{Datastore, EmbeddedDatastore};
use calico_node::autodetect::{AutodetectError, HostInterface, HostNetwork};
use calico_node::config::{MapEnv, NodeConfig};
use calico_node::startup::{self, HostFacts};

struct Host;

impl HostNetwork for Host {
    fn interfaces(&self) -> Result<Vec<HostInterface>, AutodetectError> {
        Ok(vec![HostInterface {
            index: 2,
            name: "eth0".into(),
            addrs: vec!["10.0.0.5/24".parse().unwrap()],
        }])
    }
    fn source_address_towards(&self, dest: &str, version: u8) -> Result<IpAddr, AutodetectError> {
        Err(AutodetectError::Reach {
            dest: dest.into(),
            version,
            reason: "not in this test".into(),
        })
    }
}

const ULA: &str = "<random ULA /48>";

/// (name, env, v4 CIDR, v6 CIDR, IPIP v4, VXLAN v4, VXLAN v6, NAT v4, NAT v6, block v4,
///  block v6, selector v4, selector v6, disableBGPExport v4, v6). "Off" is Calico's test's
/// stand-in for "Never".
type PoolRow = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    i64,
    i64,
    &'static str,
    &'static str,
    bool,
    bool,
);

const V6_80: &str = "fdff:ffff:ffff:ffff:ffff::/80";

#[rustfmt::skip]
const POOL_TABLE: &[PoolRow] = &[
    ("No env variables set", &[], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("IPv4 Pool env var set", &[("CALICO_IPV4POOL_CIDR", "172.16.0.0/24")], "172.16.0.0/24", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("IPv6 Pool env var set", &[("CALICO_IPV6POOL_CIDR", V6_80)], "192.168.0.0/16", V6_80, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("Both IPv4 and IPv6 Pool env var set", &[("CALICO_IPV4POOL_CIDR", "172.16.0.0/24"), ("CALICO_IPV6POOL_CIDR", V6_80)], "172.16.0.0/24", V6_80, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_IPIP set off", &[("CALICO_IPV4POOL_IPIP", "off")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_IPIP set Off", &[("CALICO_IPV4POOL_IPIP", "Off")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_IPIP set Never", &[("CALICO_IPV4POOL_IPIP", "Never")], "192.168.0.0/16", ULA, "Never", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_IPIP set empty string", &[("CALICO_IPV4POOL_IPIP", "")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_IPIP set always", &[("CALICO_IPV4POOL_IPIP", "always")], "192.168.0.0/16", ULA, "Always", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_IPIP set Always", &[("CALICO_IPV4POOL_IPIP", "Always")], "192.168.0.0/16", ULA, "Always", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_IPIP set cross-subnet", &[("CALICO_IPV4POOL_IPIP", "cross-subnet")], "192.168.0.0/16", ULA, "CrossSubnet", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_IPIP set CrossSubnet", &[("CALICO_IPV4POOL_IPIP", "CrossSubnet")], "192.168.0.0/16", ULA, "CrossSubnet", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_BLOCK_SIZE set 27", &[("CALICO_IPV4POOL_BLOCK_SIZE", "27")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 27, 122, "all()", "all()", false, false),
    ("IPv6 Pool and IPIP set", &[("CALICO_IPV6POOL_CIDR", V6_80), ("CALICO_IPV4POOL_IPIP", "always")], "192.168.0.0/16", V6_80, "Always", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("IPv6 NATOutgoing Set Enabled", &[("CALICO_IPV6POOL_NAT_OUTGOING", "true")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, true, 26, 122, "all()", "all()", false, false),
    ("IPv6 NATOutgoing Set Disabled", &[("CALICO_IPV6POOL_NAT_OUTGOING", "false")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("IPv4 NATOutgoing Set Disabled", &[("CALICO_IPV4POOL_NAT_OUTGOING", "false")], "192.168.0.0/16", ULA, "Off", "Off", "Off", false, false, 26, 122, "all()", "all()", false, false),
    ("IPv6 NAT OUTGOING and IPV4 NAT OUTGOING SET", &[("CALICO_IPV4POOL_NAT_OUTGOING", "false"), ("CALICO_IPV6POOL_NAT_OUTGOING", "true")], "192.168.0.0/16", ULA, "Off", "Off", "Off", false, true, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_BLOCK_SIZE set 123", &[("CALICO_IPV6POOL_BLOCK_SIZE", "123")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 123, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_NODE_SELECTOR set all()", &[("CALICO_IPV4POOL_NODE_SELECTOR", "all()")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_NODE_SELECTOR set has(something)", &[("CALICO_IPV4POOL_NODE_SELECTOR", "key == 'something'")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "key == 'something'", "all()", false, false),
    ("CALICO_IPV6POOL_NODE_SELECTOR set failed", &[("CALICO_IPV6POOL_NODE_SELECTOR", "has(something)")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "has(something)", false, false),
    ("CALICO_IPV4POOL_VXLAN set off", &[("CALICO_IPV4POOL_VXLAN", "off")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN set Off", &[("CALICO_IPV4POOL_VXLAN", "Off")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN set Never", &[("CALICO_IPV4POOL_VXLAN", "Never")], "192.168.0.0/16", ULA, "Off", "Never", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN set empty string", &[("CALICO_IPV4POOL_VXLAN", "")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN set always", &[("CALICO_IPV4POOL_VXLAN", "always")], "192.168.0.0/16", ULA, "Off", "Always", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN set Always", &[("CALICO_IPV4POOL_VXLAN", "Always")], "192.168.0.0/16", ULA, "Off", "Always", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN set cross-subnet", &[("CALICO_IPV4POOL_VXLAN", "cross-subnet")], "192.168.0.0/16", ULA, "Off", "CrossSubnet", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN set CrossSubnet", &[("CALICO_IPV4POOL_VXLAN", "CrossSubnet")], "192.168.0.0/16", ULA, "Off", "CrossSubnet", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_VXLAN set off", &[("CALICO_IPV4POOL_VXLAN", "off"), ("CALICO_IPV6POOL_VXLAN", "off")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_VXLAN set Off", &[("CALICO_IPV6POOL_VXLAN", "Off")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_VXLAN set Never", &[("CALICO_IPV6POOL_VXLAN", "Never")], "192.168.0.0/16", ULA, "Off", "Off", "Never", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_VXLAN set empty string", &[("CALICO_IPV6POOL_VXLAN", "")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_VXLAN set always", &[("CALICO_IPV6POOL_VXLAN", "always")], "192.168.0.0/16", ULA, "Off", "Off", "Always", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_VXLAN set Always", &[("CALICO_IPV6POOL_VXLAN", "Always")], "192.168.0.0/16", ULA, "Off", "Off", "Always", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_VXLAN set cross-subnet", &[("CALICO_IPV6POOL_VXLAN", "cross-subnet")], "192.168.0.0/16", ULA, "Off", "Off", "CrossSubnet", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV6POOL_VXLAN set CrossSubnet", &[("CALICO_IPV6POOL_VXLAN", "CrossSubnet")], "192.168.0.0/16", ULA, "Off", "Off", "CrossSubnet", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN and CALICO_IPV6POOL_VXLAN set CrossSubnet", &[("CALICO_IPV4POOL_VXLAN", "CrossSubnet"), ("CALICO_IPV6POOL_VXLAN", "CrossSubnet")], "192.168.0.0/16", ULA, "Off", "CrossSubnet", "CrossSubnet", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_VXLAN set CrossSubnet and CALICO_IPV6POOL_VXLAN set Always", &[("CALICO_IPV4POOL_VXLAN", "CrossSubnet"), ("CALICO_IPV6POOL_VXLAN", "Always")], "192.168.0.0/16", ULA, "Off", "CrossSubnet", "Always", true, false, 26, 122, "all()", "all()", false, false),
    ("CALICO_IPV4POOL_DISABLE_BGP_EXPORT set true", &[("CALICO_IPV4POOL_DISABLE_BGP_EXPORT", "true")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", true, false),
    ("CALICO_IPV6POOL_DISABLE_BGP_EXPORT set true", &[("CALICO_IPV6POOL_CIDR", V6_80), ("CALICO_IPV6POOL_DISABLE_BGP_EXPORT", "true")], "192.168.0.0/16", V6_80, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, true),
    ("CALICO_IPV4POOL_DISABLE_BGP_EXPORT and CALICO_IPV6POOL_DISABLE_BGP_EXPORT set true", &[("CALICO_IPV6POOL_CIDR", V6_80), ("CALICO_IPV4POOL_DISABLE_BGP_EXPORT", "true"), ("CALICO_IPV6POOL_DISABLE_BGP_EXPORT", "true")], "192.168.0.0/16", V6_80, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", true, true),
    ("CALICO_IPV4POOL_DISABLE_BGP_EXPORT and CALICO_IPV6POOL_DISABLE_BGP_EXPORT set false", &[("CALICO_IPV4POOL_DISABLE_BGP_EXPORT", "false"), ("CALICO_IPV6POOL_DISABLE_BGP_EXPORT", "false")], "192.168.0.0/16", ULA, "Off", "Off", "Off", true, false, 26, 122, "all()", "all()", false, false),
];

fn mode(m: &str) -> &str {
    if m == "Off" { "Never" } else { m }
}

fn config(env: &[(&str, &str)], dir: &std::path::Path) -> Result<NodeConfig, String> {
    let mut e = MapEnv::new(env.iter().copied());
    e.vars.insert("NODENAME".into(), "node1".into());
    e.vars.insert("IP".into(), "10.0.0.5/24".into());
    e.vars.insert(
        "CALICO_NODENAME_FILE".into(),
        dir.join("nodename").display().to_string(),
    );
    NodeConfig::from_env(&e).map_err(|e| e.to_string())
}

async fn pools_after_startup(env: &[(&str, &str)]) -> Vec<IPPool> {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Datastore> =
        Arc::new(EmbeddedDatastore::open(dir.path().join("s.db")).unwrap());
    let c = Client::new(store);
    let cfg = config(env, dir.path()).unwrap();
    startup::run(
        &cfg,
        &c,
        &Host,
        HostFacts {
            ipv6_supported: true,
        },
    )
    .await
    .unwrap();
    c.list_as::<IPPool>(None).await.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_pool_table() {
    for row in POOL_TABLE {
        let (name, env, v4, v6, ipip4, vx4, vx6, nat4, nat6, bs4, bs6, sel4, sel6, exp4, exp6) =
            *row;
        let pools = pools_after_startup(env).await;
        assert_eq!(pools.len(), 2, "{name}");
        let p4 = pools
            .iter()
            .find(|p| !p.spec.cidr.contains(':'))
            .unwrap_or_else(|| panic!("{name}: no IPv4 pool"));
        let p6 = pools
            .iter()
            .find(|p| p.spec.cidr.contains(':'))
            .unwrap_or_else(|| panic!("{name}: no IPv6 pool"));
        assert_eq!(p4.metadata.name, "default-ipv4-ippool", "{name}");
        assert_eq!(p6.metadata.name, "default-ipv6-ippool", "{name}");
        assert_eq!(p4.spec.cidr, v4, "{name}");
        if v6 == ULA {
            let n: ipnet::IpNet = p6.spec.cidr.parse().unwrap();
            assert_eq!(n.prefix_len(), 48, "{name}");
            let IpAddr::V6(a) = n.addr() else {
                panic!("{name}")
            };
            assert_eq!(a.octets()[0], 0xfd, "{name}");
        } else {
            assert_eq!(p6.spec.cidr, v6, "{name}");
        }
        assert_eq!(p4.spec.ipip_mode, mode(ipip4), "{name}");
        assert_eq!(
            p6.spec.ipip_mode, "Never",
            "{name}: IPIP on IPv6 is always off"
        );
        assert_eq!(p4.spec.vxlan_mode, mode(vx4), "{name}");
        assert_eq!(p6.spec.vxlan_mode, mode(vx6), "{name}");
        assert_eq!(p4.spec.nat_outgoing, nat4, "{name}");
        assert_eq!(p6.spec.nat_outgoing, nat6, "{name}");
        assert_eq!(p4.spec.block_size, bs4, "{name}");
        assert_eq!(p6.spec.block_size, bs6, "{name}");
        assert_eq!(p4.spec.node_selector, sel4, "{name}");
        assert_eq!(p6.spec.node_selector, sel6, "{name}");
        assert_eq!(p4.spec.disable_bgp_export, exp4, "{name}");
        assert_eq!(p6.spec.disable_bgp_export, exp6, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn none_table() {
    // (env, number of pools, IPv4 pool present, IPv6 pool present)
    type Row = (&'static [(&'static str, &'static str)], usize, bool, bool);
    let table: &[Row] = &[
        (&[("CALICO_IPV4POOL_CIDR", "none")], 1, false, true),
        (&[("CALICO_IPV6POOL_CIDR", "none")], 1, true, false),
        (
            &[
                ("CALICO_IPV4POOL_CIDR", "none"),
                ("CALICO_IPV6POOL_CIDR", "none"),
            ],
            0,
            false,
            false,
        ),
    ];
    for (env, n, v4, v6) in table {
        let pools = pools_after_startup(env).await;
        assert_eq!(pools.len(), *n, "{env:?}");
        assert_eq!(
            pools.iter().any(|p| !p.spec.cidr.contains(':')),
            *v4,
            "{env:?}"
        );
        assert_eq!(
            pools.iter().any(|p| p.spec.cidr.contains(':')),
            *v6,
            "{env:?}"
        );
    }
}

#[test]
fn variables_that_make_startup_exit() {
    let dir = tempfile::tempdir().unwrap();
    let table: &[(&str, &[(&str, &str)])] = &[
        (
            "Bad IPv4 Pool CIDR",
            &[("CALICO_IPV4POOL_CIDR", "172.16.0.0a/24")],
        ),
        (
            "Too small IPv4 Pool CIDR",
            &[("CALICO_IPV4POOL_CIDR", "172.16.0.0/27")],
        ),
        (
            "Single IPv4 is too small for a pool CIDR",
            &[("CALICO_IPV4POOL_CIDR", "10.0.0.0/32")],
        ),
        (
            "Small IPv6 is too small for a pool CIDR",
            &[("CALICO_IPV6POOL_CIDR", "fd00::/123")],
        ),
        (
            "Bad IPv4 Pool with good IPv6 Pool env var set",
            &[
                ("CALICO_IPV4POOL_CIDR", "172.16.0.0a/24"),
                ("CALICO_IPV6POOL_CIDR", V6_80),
            ],
        ),
        (
            "Invalid Env Var combo",
            &[
                ("NO_DEFAULT_POOLS", "true"),
                ("CALICO_IPV4POOL_CIDR", "172.16.0.0/24"),
            ],
        ),
        (
            "Bad IPv4 Pool IPIP Mode",
            &[("CALICO_IPV4POOL_IPIP", "badVal")],
        ),
        (
            "v6 Address in IPv4 Pool CIDR",
            &[("CALICO_IPV4POOL_CIDR", V6_80)],
        ),
        (
            "v4 Address in IPv6 Pool CIDR",
            &[("CALICO_IPV6POOL_CIDR", "172.16.0.0/24")],
        ),
        (
            "bad IPv4 node selector",
            &[("CALICO_IPV4POOL_NODE_SELECTOR", "all(nothing)")],
        ),
        (
            "bad IPv6 node selector",
            &[("CALICO_IPV6POOL_NODE_SELECTOR", "all(nothing)")],
        ),
        (
            "CALICO_IPV4POOL_BLOCK_SIZE set too small (19)",
            &[("CALICO_IPV4POOL_BLOCK_SIZE", "19")],
        ),
        (
            "CALICO_IPV4POOL_BLOCK_SIZE set too large (33)",
            &[("CALICO_IPV4POOL_BLOCK_SIZE", "33")],
        ),
        (
            "CALICO_IPV6POOL_BLOCK_SIZE set too small (115)",
            &[("CALICO_IPV6POOL_BLOCK_SIZE", "115")],
        ),
        (
            "CALICO_IPV6POOL_BLOCK_SIZE set too large (129)",
            &[("CALICO_IPV6POOL_BLOCK_SIZE", "129")],
        ),
    ];
    for (name, env) in table {
        let err = config(env, dir.path()).unwrap_err();
        // Every refusal names one of the variables of the row.
        assert!(env.iter().any(|(k, _)| err.contains(k)), "{name}: {err}");
    }
}

#[test]
fn node_name_determination() {
    // (NODENAME, HOSTNAME, expected); None = the host name (lower-cased).
    let table: &[(&str, &str, Option<&str>)] = &[
        ("abc-def.ghi123", "foo1.bar2-baz3", Some("abc-def.ghi123")),
        ("  ", "host123", Some("host123")),
        ("", "HOSTName", Some("hostname")),
        ("", "", None),
        ("  ", "  ", None),
    ];
    for (nodename, hostname, want) in table {
        let mut e = MapEnv::default().with_hostname("The-Host");
        for (k, v) in [("NODENAME", nodename), ("HOSTNAME", hostname)] {
            if !v.is_empty() {
                e.vars.insert(k.into(), v.to_string());
            }
        }
        e.vars.insert(
            "CALICO_NODENAME_FILE".into(),
            "/nonexistent/nodename".into(),
        );
        let got = NodeConfig::from_env(&e).unwrap().node_name;
        assert_eq!(got, want.unwrap_or("the-host"), "{nodename:?} {hostname:?}");
    }
    // Calico leaves an upper-case NODENAME as it is ("MyHostname-123"); such a name cannot be
    // a Node resource name, so the agent refuses it up front, naming the variable.
    let mut e = MapEnv::new([
        ("NODENAME", "MyHostname-123"),
        ("HOSTNAME", "valid.hostname"),
    ]);
    e.vars.insert(
        "CALICO_NODENAME_FILE".into(),
        "/nonexistent/nodename".into(),
    );
    let err = NodeConfig::from_env(&e).unwrap_err().to_string();
    assert!(err.starts_with("NODENAME=\"MyHostname-123\""), "{err}");
}
