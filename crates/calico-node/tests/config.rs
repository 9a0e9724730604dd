//! The environment as Calico's calico-node reads it, table by table.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use calico_client::DatastoreType;
use calico_node::autodetect::AutodetectMethod;
use calico_node::config::{ConfigError, IpSetting, MapEnv, NetworkingBackend, NodeConfig};
use ipnet::IpNet;

fn cfg(pairs: &[(&str, &str)]) -> Result<NodeConfig, ConfigError> {
    let mut env = MapEnv::new(pairs.iter().copied());
    if !env.vars.contains_key("NODENAME") {
        env.vars.insert("NODENAME".into(), "node1".into());
    }
    NodeConfig::from_env(&env)
}

fn err(pairs: &[(&str, &str)]) -> String {
    cfg(pairs).unwrap_err().to_string()
}

#[test]
fn defaults() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.node_name, "node1");
    assert_eq!(c.datastore.datastore_type, DatastoreType::Embedded);
    assert_eq!(c.ipv4, IpSetting::Unset);
    assert_eq!(c.ipv6, IpSetting::Unset);
    assert_eq!(c.ipv4_autodetection, AutodetectMethod::FirstFound);
    assert_eq!(c.as_number, None);
    assert_eq!(c.networking_backend, NetworkingBackend::Bird);
    let v4 = c.pools.ipv4.as_ref().unwrap();
    assert_eq!(v4.cidr, None);
    assert_eq!(v4.block_size, 26);
    assert_eq!(v4.ipip_mode, "Never");
    assert_eq!(v4.vxlan_mode, "Never");
    assert!(v4.nat_outgoing);
    let v6 = c.pools.ipv6.as_ref().unwrap();
    assert_eq!(v6.block_size, 122);
    assert!(!v6.nat_outgoing);
    assert!(!c.pools.disabled);
    assert_eq!(c.felix.health_port, 9099);
    assert_eq!(c.felix.health_host, "localhost");
    assert!(c.felix.health_enabled);
    assert!(!c.felix.prometheus_metrics_enabled);
    assert_eq!(c.felix.prometheus_metrics_port, 9091);
    assert_eq!(c.felix.reporting_interval, None);
    assert_eq!(c.felix.interface_prefixes, vec!["cali".to_string()]);
    assert_eq!(c.felix.status_region(), "no-region");
    assert_eq!(c.ipam_socket, PathBuf::from("/var/run/calico/ipam.sock"));
    assert_eq!(c.netns, None);
    assert_eq!(c.nodename_file, PathBuf::from("/var/lib/calico/nodename"));
    assert!(c.warnings.is_empty());
}

#[test]
fn node_name_precedence() {
    let f = PathBuf::from("/tmp/nodename-test");
    let base =
        || MapEnv::new([("CALICO_NODENAME_FILE", "/tmp/nodename-test")]).with_hostname("Host-A");
    // Host name, lower-cased.
    assert_eq!(NodeConfig::from_env(&base()).unwrap().node_name, "host-a");
    // HOSTNAME beats the host name.
    let mut e = base();
    e.vars.insert("HOSTNAME".into(), " Pod-Host ".into());
    assert_eq!(NodeConfig::from_env(&e).unwrap().node_name, "pod-host");
    // The node-name file beats HOSTNAME.
    let e = e.with_file(f.clone(), "from-file\n");
    assert_eq!(NodeConfig::from_env(&e).unwrap().node_name, "from-file");
    // NODENAME beats everything (trimmed, not lower-cased: an upper-case name is refused).
    let mut e2 = e.clone();
    e2.vars.insert("NODENAME".into(), " explicit ".into());
    assert_eq!(NodeConfig::from_env(&e2).unwrap().node_name, "explicit");
    e2.vars.insert("NODENAME".into(), "Bad_Name".into());
    let msg = NodeConfig::from_env(&e2).unwrap_err().to_string();
    assert!(msg.starts_with("NODENAME=\"Bad_Name\""), "{msg}");
    // Nothing at all.
    let msg = NodeConfig::from_env(&MapEnv::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("set NODENAME"), "{msg}");
}

#[test]
fn datastore_settings() {
    let c = cfg(&[
        ("DATASTORE_TYPE", "etcdv3"),
        (
            "ETCD_ENDPOINTS",
            "http://127.0.0.1:2379,http://127.0.0.1:22379",
        ),
    ])
    .unwrap();
    assert_eq!(c.datastore.datastore_type, DatastoreType::EtcdV3);
    assert_eq!(
        c.datastore.spec.etcd_endpoints,
        "http://127.0.0.1:2379,http://127.0.0.1:22379"
    );
    // Endpoints alone select etcd, as Calico does.
    let c = cfg(&[("ETCD_ENDPOINTS", "http://127.0.0.1:2379")]).unwrap();
    assert_eq!(c.datastore.datastore_type, DatastoreType::EtcdV3);
    let c = cfg(&[
        ("DATASTORE_TYPE", "embedded"),
        ("CALICO_DATASTORE_PATH", "/tmp/x/calico.db"),
    ])
    .unwrap();
    assert_eq!(
        c.datastore.embedded_path(),
        PathBuf::from("/tmp/x/calico.db")
    );
    let c = cfg(&[
        ("ETCD_ENDPOINTS", "https://127.0.0.1:2379"),
        ("ETCD_KEY_FILE", "/k.pem"),
        ("ETCD_CERT_FILE", "/c.pem"),
        ("ETCD_CA_CERT_FILE", "/ca.pem"),
    ])
    .unwrap();
    assert_eq!(c.datastore.spec.etcd_ca_cert_file, "/ca.pem");

    assert!(err(&[("DATASTORE_TYPE", "kubernetes")]).starts_with("DATASTORE_TYPE="));
    assert!(err(&[("DATASTORE_TYPE", "consul")]).contains("datastore"));
    assert!(err(&[("DATASTORE_TYPE", "etcdv3")]).contains("no etcd endpoints"));
}

#[test]
fn ip_settings() {
    let a = |ip: &str, prefix: Option<u8>| IpSetting::Address {
        ip: ip.parse().unwrap(),
        prefix,
    };
    let cases: &[(&str, &str, IpSetting)] = &[
        ("IP", "", IpSetting::Unset),
        ("IP", "autodetect", IpSetting::Autodetect),
        ("IP", "none", IpSetting::None),
        ("IP", "10.0.0.5", a("10.0.0.5", None)),
        ("IP", "10.0.0.5/24", a("10.0.0.5", Some(24))),
        ("IP6", "autodetect", IpSetting::Autodetect),
        ("IP6", "fd00::5/64", a("fd00::5", Some(64))),
        ("IP6", "fd00::5", a("fd00::5", None)),
    ];
    for (var, val, want) in cases {
        let c = cfg(&[(var, val)]).unwrap();
        let got = if *var == "IP" { &c.ipv4 } else { &c.ipv6 };
        assert_eq!(got, want, "{var}={val}");
    }
    for (var, val) in [
        ("IP", "fd00::5"),
        ("IP", "10.0.0.300"),
        ("IP", "10.0.0.5/33"),
        ("IP", "auto"),
        ("IP6", "10.0.0.5"),
        ("IP6", "fd00::5/129"),
    ] {
        let msg = err(&[(var, val)]);
        assert!(msg.starts_with(&format!("{var}={val:?}")), "{msg}");
    }
}

#[test]
fn autodetection_methods() {
    let c = cfg(&[
        ("IP_AUTODETECTION_METHOD", "interface=eth.*,ens3"),
        ("IP6_AUTODETECTION_METHOD", "can-reach=fd00::1"),
    ])
    .unwrap();
    assert_eq!(
        c.ipv4_autodetection,
        AutodetectMethod::Interface(vec!["eth.*".into(), "ens3".into()])
    );
    assert_eq!(
        c.ipv6_autodetection,
        AutodetectMethod::CanReach("fd00::1".into())
    );
    let msg = err(&[("IP_AUTODETECTION_METHOD", "guess")]);
    assert!(
        msg.starts_with("IP_AUTODETECTION_METHOD=\"guess\""),
        "{msg}"
    );
    let msg = err(&[("IP_AUTODETECTION_METHOD", "cidr=10.0.0.0/40")]);
    assert!(msg.starts_with("IP_AUTODETECTION_METHOD="), "{msg}");
}

#[test]
fn as_number_and_backend() {
    assert_eq!(cfg(&[("AS", "64512")]).unwrap().as_number.unwrap().0, 64512);
    assert_eq!(cfg(&[("AS", "1.10")]).unwrap().as_number.unwrap().0, 65546);
    assert!(err(&[("AS", "-1")]).starts_with("AS=\"-1\""));
    assert!(err(&[("AS", "4294967296")]).starts_with("AS="));
    assert_eq!(
        cfg(&[("CALICO_NETWORKING_BACKEND", "none")])
            .unwrap()
            .networking_backend,
        NetworkingBackend::None
    );
    assert_eq!(
        cfg(&[("CALICO_NETWORKING_BACKEND", "vxlan")])
            .unwrap()
            .networking_backend,
        NetworkingBackend::Vxlan
    );
    assert!(
        err(&[("CALICO_NETWORKING_BACKEND", "gobgp")]).starts_with("CALICO_NETWORKING_BACKEND=")
    );
}

#[test]
fn pool_settings() {
    let c = cfg(&[
        ("CALICO_IPV4POOL_CIDR", "10.244.1.7/16"),
        ("CALICO_IPV4POOL_BLOCK_SIZE", "24"),
        ("CALICO_IPV4POOL_VXLAN", "CrossSubnet"),
        ("CALICO_IPV4POOL_NAT_OUTGOING", "false"),
        (
            "CALICO_IPV4POOL_NODE_SELECTOR",
            "kubernetes.io/os == 'linux'",
        ),
        ("CALICO_IPV6POOL_CIDR", "none"),
    ])
    .unwrap();
    let v4 = c.pools.ipv4.unwrap();
    // Host bits are masked, as cnet.ParseCIDR does.
    assert_eq!(v4.cidr, Some("10.244.0.0/16".parse::<IpNet>().unwrap()));
    assert_eq!(v4.block_size, 24);
    assert_eq!(v4.vxlan_mode, "CrossSubnet");
    assert_eq!(v4.ipip_mode, "Never");
    assert!(!v4.nat_outgoing);
    assert_eq!(v4.node_selector, "kubernetes.io/os == 'linux'");
    assert_eq!(c.pools.ipv6, None);

    // IPIP is configuration: accepted even where the kernel has no ipip module.
    for (val, mode) in [
        ("Always", "Always"),
        ("always", "Always"),
        ("cross-subnet", "CrossSubnet"),
        ("off", "Never"),
        ("Never", "Never"),
    ] {
        let c = cfg(&[("CALICO_IPV4POOL_IPIP", val)]).unwrap();
        assert_eq!(c.pools.ipv4.unwrap().ipip_mode, mode, "{val}");
    }

    let c = cfg(&[("NO_DEFAULT_POOLS", "true")]).unwrap();
    assert!(c.pools.disabled);
    assert_eq!(c.pools.ipv4, None);
    let c = cfg(&[
        ("CALICO_IPV6POOL_CIDR", "fd12:3456::/48"),
        ("CALICO_IPV6POOL_BLOCK_SIZE", "120"),
    ])
    .unwrap();
    let v6 = c.pools.ipv6.unwrap();
    assert_eq!(v6.cidr, Some("fd12:3456::/48".parse::<IpNet>().unwrap()));
    assert_eq!(v6.block_size, 120);

    let bad: &[(&[(&str, &str)], &str)] = &[
        (
            &[("CALICO_IPV4POOL_CIDR", "10.0.0.0/40")],
            "CALICO_IPV4POOL_CIDR=",
        ),
        (
            &[("CALICO_IPV4POOL_CIDR", "fd00::/48")],
            "CALICO_IPV4POOL_CIDR=",
        ),
        (
            &[("CALICO_IPV6POOL_CIDR", "10.0.0.0/16")],
            "CALICO_IPV6POOL_CIDR=",
        ),
        (
            &[("CALICO_IPV4POOL_BLOCK_SIZE", "19")],
            "CALICO_IPV4POOL_BLOCK_SIZE=\"19\"",
        ),
        (
            &[("CALICO_IPV4POOL_BLOCK_SIZE", "33")],
            "CALICO_IPV4POOL_BLOCK_SIZE=",
        ),
        (
            &[("CALICO_IPV4POOL_BLOCK_SIZE", "x")],
            "CALICO_IPV4POOL_BLOCK_SIZE=",
        ),
        (
            &[("CALICO_IPV6POOL_BLOCK_SIZE", "115")],
            "CALICO_IPV6POOL_BLOCK_SIZE=",
        ),
        (
            &[("CALICO_IPV4POOL_IPIP", "sometimes")],
            "CALICO_IPV4POOL_IPIP=",
        ),
        (
            &[("CALICO_IPV4POOL_VXLAN", "yes")],
            "CALICO_IPV4POOL_VXLAN=",
        ),
        (
            &[("CALICO_IPV6POOL_VXLAN", "maybe")],
            "CALICO_IPV6POOL_VXLAN=",
        ),
        (
            &[("CALICO_IPV4POOL_NAT_OUTGOING", "perhaps")],
            "CALICO_IPV4POOL_NAT_OUTGOING=",
        ),
        (
            &[("CALICO_IPV4POOL_NODE_SELECTOR", "a ==")],
            "CALICO_IPV4POOL_NODE_SELECTOR=",
        ),
        // Pool smaller than its blocks (Calico's IPPool validation).
        (
            &[("CALICO_IPV4POOL_CIDR", "10.0.0.0/28")],
            "CALICO_IPV4POOL_CIDR / CALICO_IPV4POOL_BLOCK_SIZE",
        ),
        // IPIP and VXLAN together.
        (
            &[
                ("CALICO_IPV4POOL_IPIP", "Always"),
                ("CALICO_IPV4POOL_VXLAN", "Always"),
            ],
            "CALICO_IPV4POOL_IPIP / CALICO_IPV4POOL_VXLAN",
        ),
        (
            &[
                ("NO_DEFAULT_POOLS", "true"),
                ("CALICO_IPV4POOL_CIDR", "10.0.0.0/16"),
            ],
            "NO_DEFAULT_POOLS",
        ),
    ];
    for (pairs, needle) in bad {
        let msg = err(pairs);
        assert!(msg.contains(needle), "{pairs:?}: {msg}");
    }
}

#[test]
fn felix_overrides() {
    let c = cfg(&[
        ("FELIX_HEALTHPORT", "19099"),
        ("FELIX_HEALTHHOST", "127.0.0.1"),
        ("FELIX_PROMETHEUSMETRICSENABLED", "true"),
        ("FELIX_PROMETHEUSMETRICSPORT", "0"),
        ("FELIX_REPORTINGINTERVALSECS", "2.5"),
        ("FELIX_REPORTINGTTLSECS", "10"),
        ("FELIX_ROUTEREFRESHINTERVAL", "30"),
        ("FELIX_INTERFACEPREFIX", "cali,tap"),
        ("Felix_IPv6Support", "f"),
        ("FELIX_OPENSTACKREGION", "region-one"),
        ("FELIX_LOGSEVERITYSCREEN", "Debug"),
        ("FELIX_IPTABLESREFRESHINTERVAL", "20"),
        ("FELIX_BPFENABLED", "false"),
        ("FELIX_NOSUCHTHING", "1"),
    ])
    .unwrap();
    let f = &c.felix;
    assert_eq!(f.health_port, 19099);
    assert_eq!(f.health_host, "127.0.0.1");
    assert!(f.prometheus_metrics_enabled);
    assert_eq!(f.prometheus_metrics_port, 0);
    assert_eq!(f.reporting_interval, Some(Duration::from_millis(2500)));
    assert_eq!(f.reporting_ttl, Some(Duration::from_secs(10)));
    assert_eq!(f.route_refresh_interval, Some(Duration::from_secs(30)));
    assert_eq!(f.interface_prefixes, vec!["cali".to_string(), "tap".into()]);
    assert!(!f.ipv6_support);
    assert_eq!(f.status_region(), "region-region-one");
    // Through the FelixConfiguration field table.
    assert_eq!(f.spec.log_severity_screen, "Debug");
    assert_eq!(
        serde_json::to_value(&f.spec).unwrap(),
        serde_json::json!({
            "logSeverityScreen": "Debug",
            "iptablesRefreshInterval": "20s",
            "ipv6Support": false,
            "bpfEnabled": false,
            "bpfLogLevel": ""
        })
    );
    assert_eq!(f.unknown, vec!["FELIX_NOSUCHTHING".to_string()]);
    assert_eq!(c.warnings.len(), 1);

    let bad: &[(&str, &str)] = &[
        ("FELIX_HEALTHPORT", "65536"),
        ("FELIX_HEALTHPORT", "http"),
        ("FELIX_HEALTHENABLED", "maybe"),
        ("FELIX_HEALTHHOST", "not a host"),
        ("FELIX_REPORTINGINTERVALSECS", "-1"),
        ("FELIX_REPORTINGTTLSECS", "soon"),
        ("FELIX_INTERFACEPREFIX", "cali,,tap"),
        ("FELIX_OPENSTACKREGION", "Upper"),
        ("FELIX_LOGSEVERITYSCREEN", "Chatty"),
        ("FELIX_BPFENABLED", "perhaps"),
    ];
    for (var, val) in bad {
        let msg = err(&[(var, val)]);
        assert!(
            msg.starts_with(&format!("{var}={val:?}")),
            "{var}={val}: {msg}"
        );
    }
}

#[test]
fn ours() {
    let c = cfg(&[
        ("CALICO_IPAM_SOCKET", "/run/calico-n1/ipam.sock"),
        ("CALICO_NODE_NETNS", "/run/netns/n1"),
        ("CALICO_NODENAME_FILE", "/tmp/n1/nodename"),
        ("DISABLE_NODE_IP_CHECK", "true"),
        ("CLUSTER_TYPE", "k8s,bgp"),
    ])
    .unwrap();
    assert_eq!(c.ipam_socket, PathBuf::from("/run/calico-n1/ipam.sock"));
    assert_eq!(c.netns, Some(PathBuf::from("/run/netns/n1")));
    assert_eq!(c.nodename_file, PathBuf::from("/tmp/n1/nodename"));
    assert!(c.disable_node_ip_check);
    assert_eq!(c.cluster_type, "k8s,bgp");
    assert_eq!(
        cfg(&[("AUTODETECT_POLL_INTERVAL", "1m30s")])
            .unwrap()
            .autodetect_poll_interval,
        Duration::from_secs(90)
    );
    assert_eq!(
        cfg(&[]).unwrap().autodetect_poll_interval,
        Duration::from_secs(60)
    );
    assert!(err(&[("AUTODETECT_POLL_INTERVAL", "60")]).starts_with("AUTODETECT_POLL_INTERVAL="));
    assert!(err(&[("AUTODETECT_POLL_INTERVAL", "-1s")]).starts_with("AUTODETECT_POLL_INTERVAL="));
    assert!(err(&[("CALICO_IPAM_SOCKET", "ipam.sock")]).starts_with("CALICO_IPAM_SOCKET="));
    assert!(err(&[("CALICO_NODE_NETNS", "n1")]).starts_with("CALICO_NODE_NETNS="));
}

#[test]
fn failsafe_ports_use_felixs_port_list_syntax() {
    let c = cfg(&[
        (
            "FELIX_FAILSAFEINBOUNDHOSTPORTS",
            "tcp:81, udp:68,179,tcp:10.1.2.3/8:22,udp:[fd00::1/64]:53",
        ),
        ("FELIX_FAILSAFEOUTBOUNDHOSTPORTS", ""),
    ])
    .unwrap();
    let inbound = c.felix.spec.failsafe_inbound_host_ports.clone().unwrap();
    let got: Vec<(String, u16, String)> = inbound
        .iter()
        .map(|p| (p.protocol.clone(), p.port, p.net.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("TCP".to_string(), 81, String::new()),
            ("UDP".into(), 68, String::new()),
            ("TCP".into(), 179, String::new()),
            ("TCP".into(), 22, "10.0.0.0/8".into()),
            ("UDP".into(), 53, "fd00::/64".into()),
        ]
    );
    assert_eq!(c.felix.spec.failsafe_outbound_host_ports, Some(vec![]));
    for bad in [
        "icmp:1",
        "tcp:x",
        "tcp:1:2:3",
        "tcp:99999",
        "tcp:not-a-net:22",
    ] {
        let err = cfg(&[("FELIX_FAILSAFEINBOUNDHOSTPORTS", bad)]).unwrap_err();
        assert!(
            err.to_string().contains("FELIX_FAILSAFEINBOUNDHOSTPORTS"),
            "{bad}: {err}"
        );
    }
}
