//! Start-up against the embedded store and a real etcd: the Node, its addresses and AS, the
//! default pools, ClusterInformation and the configuration defaults, as Calico writes them.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::sync::Arc;

use calico_api::Resource;
use calico_api::felixconfig::FelixConfiguration;
use calico_api::ippool::IPPool;
use calico_api::node::Node;
use calico_client::Client;
use calico_datastore::Datastore;
use calico_node::autodetect::{AutodetectError, HostInterface, HostNetwork};
use calico_node::config::{MapEnv, NodeConfig};
use calico_node::startup::{self, HostFacts, StartupError};
use serde_json::json;

mod common;

struct FakeHost(Vec<HostInterface>);

impl HostNetwork for FakeHost {
    fn interfaces(&self) -> Result<Vec<HostInterface>, AutodetectError> {
        Ok(self.0.clone())
    }
    fn source_address_towards(&self, dest: &str, version: u8) -> Result<IpAddr, AutodetectError> {
        Err(AutodetectError::Reach {
            dest: dest.into(),
            version,
            reason: "unreachable in this test".into(),
        })
    }
}

fn host(eth0: &[&str]) -> FakeHost {
    FakeHost(vec![
        HostInterface {
            index: 1,
            name: "lo".into(),
            addrs: vec!["127.0.0.1/8".parse().unwrap()],
        },
        HostInterface {
            index: 2,
            name: "eth0".into(),
            addrs: eth0.iter().map(|a| a.parse().unwrap()).collect(),
        },
    ])
}

const V6: HostFacts = HostFacts {
    ipv6_supported: true,
};
const NO_V6: HostFacts = HostFacts {
    ipv6_supported: false,
};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn cfg(&self, node: &str, pairs: &[(&str, &str)]) -> NodeConfig {
        let file = self.dir.path().join(format!("{node}.nodename"));
        let mut env = MapEnv::new(pairs.iter().copied());
        env.vars.insert("NODENAME".into(), node.into());
        env.vars
            .insert("CALICO_NODENAME_FILE".into(), file.display().to_string());
        NodeConfig::from_env(&env).unwrap()
    }
}

async fn get_node(c: &Client, name: &str) -> Option<Node> {
    c.get_as::<Node>("", name).await.ok()
}

async fn pools(c: &Client) -> Vec<IPPool> {
    c.list_as::<IPPool>(None).await.unwrap().0
}

async fn fresh_node(store: Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    let env = Env::new();
    let cfg = env.cfg("node1", &[("IP", "autodetect"), ("AS", "64512")]);
    let h = host(&["10.0.0.5/24", "fd00::5/64"]);
    let r = startup::run(&cfg, &c, &h, V6).await.unwrap();
    assert!(r.node_written);
    assert_eq!(
        r.pools_created,
        vec![
            "default-ipv4-ippool".to_string(),
            "default-ipv6-ippool".into()
        ]
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    let n = get_node(&c, "node1").await.unwrap();
    let bgp = n.spec.bgp.as_ref().unwrap();
    assert_eq!(bgp.ipv4_address, "10.0.0.5/24");
    assert_eq!(bgp.ipv6_address, "");
    assert_eq!(bgp.as_number.unwrap().0, 64512);
    // IP given explicitly: the interface list (default exclusions apply: no lo).
    assert_eq!(
        serde_json::to_value(&n.spec.interfaces).unwrap(),
        json!([{"name": "eth0", "addresses": ["10.0.0.5"]}])
    );
    assert!(n.metadata.uid.len() > 10);
    assert_eq!(
        r.node.metadata.resource_version,
        n.metadata.resource_version
    );

    // The stored JSON is Calico's.
    let raw = store
        .get("/calico/resources/v3/projectcalico.org/nodes/node1")
        .await
        .unwrap()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(v["kind"], "Node");
    assert_eq!(
        v["spec"]["bgp"],
        json!({"asNumber": 64512, "ipv4Address": "10.0.0.5/24"})
    );

    let ps = pools(&c).await;
    let v4 = ps
        .iter()
        .find(|p| p.metadata.name == "default-ipv4-ippool")
        .unwrap();
    assert_eq!(
        serde_json::to_value(&v4.spec).unwrap(),
        json!({
            "cidr": "192.168.0.0/16",
            "vxlanMode": "Never",
            "ipipMode": "Never",
            "natOutgoing": true,
            "blockSize": 26,
            "nodeSelector": "all()",
            "allowedUses": ["Workload", "Tunnel"],
            "assignmentMode": "Automatic"
        })
    );
    let v6 = ps
        .iter()
        .find(|p| p.metadata.name == "default-ipv6-ippool")
        .unwrap();
    let cidr: ipnet::IpNet = v6.spec.cidr.parse().unwrap();
    assert_eq!(cidr.prefix_len(), 48);
    assert_eq!(v6.spec.cidr.get(..2), Some("fd"));
    assert_eq!(v6.spec.block_size, 122);
    assert!(!v6.spec.nat_outgoing);

    let ci = c
        .get("ClusterInformation", "", "default")
        .await
        .unwrap()
        .to_json_value();
    assert_eq!(ci["spec"]["datastoreReady"], true);
    assert_eq!(ci["spec"]["calicoVersion"], startup::CALICO_VERSION);
    let guid = ci["spec"]["clusterGUID"].as_str().unwrap();
    assert_eq!(guid.len(), 32);
    assert_eq!(guid, r.cluster_guid);

    let fc = c.get_as::<FelixConfiguration>("", "default").await.unwrap();
    // calico-node's defaults (plus those Calico's client adds to every FelixConfiguration).
    let fcv = serde_json::to_value(&fc.spec).unwrap();
    assert_eq!(fcv["reportingInterval"], "0s");
    assert_eq!(fcv["logSeverityScreen"], "Info");
    assert_eq!(fcv["nftablesMode"], "Auto");
    let fcn = c
        .get_as::<FelixConfiguration>("", "node.node1")
        .await
        .unwrap();
    assert_eq!(fcn.spec.default_endpoint_to_host_action, "Return");
    assert!(c.get("BGPConfiguration", "", "default").await.is_ok());
    let ic = c
        .get("IPAMConfiguration", "", "default")
        .await
        .unwrap()
        .to_json_value();
    assert_eq!(
        ic["spec"],
        json!({"strictAffinity": false, "autoAllocateBlocks": true,
               "kubeVirtVMAddressPersistence": "Enabled"})
    );
    assert!(c.get("Tier", "", "default").await.is_ok());
    assert_eq!(
        std::fs::read_to_string(&cfg.nodename_file).unwrap(),
        "node1"
    );

    // A second start that detects the same address writes nothing (AS is left out: Calico
    // rewrites the Node whenever AS is set).
    let rev = store.current_revision().await.unwrap();
    let cfg2 = env.cfg("node1", &[("IP", "autodetect")]);
    let r2 = startup::run(&cfg2, &c, &h, V6).await.unwrap();
    assert!(!r2.node_written);
    assert!(r2.pools_created.is_empty());
    assert_eq!(r2.cluster_guid, guid);
    assert_eq!(store.current_revision().await.unwrap(), rev);
    assert_eq!(
        get_node(&c, "node1")
            .await
            .unwrap()
            .spec
            .bgp
            .unwrap()
            .as_number
            .unwrap()
            .0,
        64512
    );

    // IP unset: the address is kept (no detection), and Calico drops the interface list.
    let r3 = startup::run(&env.cfg("node1", &[]), &c, &host(&["10.0.0.7/24"]), V6)
        .await
        .unwrap();
    assert!(r3.node_written);
    let n = get_node(&c, "node1").await.unwrap();
    assert_eq!(n.spec.bgp.unwrap().ipv4_address, "10.0.0.5/24");
    assert!(n.spec.interfaces.is_empty());
    assert!(
        r3.warnings
            .iter()
            .any(|w| w.contains("Unable to confirm IPv4 address 10.0.0.5")),
        "{:?}",
        r3.warnings
    );
}

async fn existing_fields_are_kept(store: Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    let env = Env::new();
    let pre = Resource::from_json_value(json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "Node",
        "metadata": {"name": "node1", "labels": {"rack": "r1"}},
        "spec": {
            "bgp": {"ipv4Address": "10.0.0.9/24", "ipv4IPIPTunnelAddr": "192.168.5.1",
                    "routeReflectorClusterID": "224.0.0.1"},
            "ipv4VXLANTunnelAddr": "192.168.5.2"
        }
    }))
    .unwrap();
    c.create(pre).await.unwrap();
    // No prefix: the interface's is used.
    let cfg = env.cfg("node1", &[("IP", "10.0.0.5"), ("NO_DEFAULT_POOLS", "true")]);
    let r = startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), NO_V6)
        .await
        .unwrap();
    assert!(r.node_written);
    assert!(r.pools_created.is_empty());
    assert!(pools(&c).await.is_empty());
    let n = get_node(&c, "node1").await.unwrap();
    assert_eq!(
        n.metadata.labels.get("rack").map(String::as_str),
        Some("r1")
    );
    let bgp = n.spec.bgp.unwrap();
    assert_eq!(bgp.ipv4_address, "10.0.0.5/24");
    assert_eq!(bgp.ipv4_ipip_tunnel_addr, "192.168.5.1");
    assert_eq!(bgp.route_reflector_cluster_id, "224.0.0.1");
    assert_eq!(bgp.as_number, None);
    assert_eq!(n.spec.ipv4_vxlan_tunnel_addr, "192.168.5.2");
    // Calico warns that the address changed (it may be two nodes with one name).
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("has changed from 10.0.0.9 to 10.0.0.5")),
        "{:?}",
        r.warnings
    );

    // IP6 without a prefix is a host address even where the interface has a /64 (Calico
    // looks the prefix up for IP only).
    let cfg = env.cfg(
        "node1",
        &[
            ("IP", "10.0.0.5"),
            ("IP6", "fd00::5"),
            ("NO_DEFAULT_POOLS", "true"),
        ],
    );
    let r = startup::run(&cfg, &c, &host(&["10.0.0.5/24", "fd00::5/64"]), NO_V6)
        .await
        .unwrap();
    let bgp = r.node.spec.bgp.clone().unwrap();
    assert_eq!(bgp.ipv6_address, "fd00::5/128");
    assert_eq!(bgp.ipv4_address, "10.0.0.5/24");
    // Both families given: the interface list carries both.
    assert_eq!(
        serde_json::to_value(&r.node.spec.interfaces).unwrap(),
        json!([{"name": "eth0", "addresses": ["10.0.0.5", "fd00::5"]}])
    );

    // An address that is not on this host is kept as a host route, with a warning.
    let cfg = env.cfg(
        "node1",
        &[
            ("IP", "10.1.1.1"),
            ("IP6", "none"),
            ("NO_DEFAULT_POOLS", "true"),
        ],
    );
    let r = startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), NO_V6)
        .await
        .unwrap();
    assert_eq!(r.node.spec.bgp.unwrap().ipv4_address, "10.1.1.1/32");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("Unable to confirm IPv4 address 10.1.1.1")),
        "{:?}",
        r.warnings
    );
}

async fn address_conflict_writes_nothing(store: Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    let env = Env::new();
    let other = Resource::from_json_value(json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "Node",
        "metadata": {"name": "node2"},
        "spec": {"bgp": {"ipv4Address": "10.0.0.5/24"}}
    }))
    .unwrap();
    c.create(other).await.unwrap();
    let rev = store.current_revision().await.unwrap();
    let cfg = env.cfg("node1", &[("IP", "autodetect")]);
    let err = startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), V6)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StartupError::AddressConflict { version: 4, other, .. } if other == "node2"),
        "{err}"
    );
    assert!(err.to_string().contains("10.0.0.5"), "{err}");
    assert_eq!(
        store.current_revision().await.unwrap(),
        rev,
        "something was written"
    );
    assert!(get_node(&c, "node1").await.is_none());
    assert!(!cfg.nodename_file.exists());

    // DISABLE_NODE_IP_CHECK skips the check, as in Calico.
    let cfg = env.cfg(
        "node1",
        &[("IP", "autodetect"), ("DISABLE_NODE_IP_CHECK", "true")],
    );
    startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), V6)
        .await
        .unwrap();
}

async fn autodetect_failure_writes_nothing(store: Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    let env = Env::new();
    let rev = store.current_revision().await.unwrap();
    let cfg = env.cfg("node1", &[]);
    // Only loopback and link-local: nothing to detect.
    let err = startup::run(&cfg, &c, &host(&["169.254.9.9/16"]), V6)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StartupError::Autodetect { version: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("IP_AUTODETECTION_METHOD"), "{err}");
    assert_eq!(store.current_revision().await.unwrap(), rev);

    let cfg = env.cfg("node1", &[("IP_AUTODETECTION_METHOD", "interface=ens.*")]);
    let err = startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), V6)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no valid host interfaces found"),
        "{err}"
    );

    // IP=none and IP6 unset: no address at all is refused with Calico's message.
    let cfg = env.cfg("node1", &[("IP", "none")]);
    let err = startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), V6)
        .await
        .unwrap_err();
    assert!(matches!(err, StartupError::NoAddress), "{err}");
    assert_eq!(store.current_revision().await.unwrap(), rev);
}

async fn pool_choices(store: Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    let env = Env::new();
    // A host address inside 192.168.0.0/16 moves the default pool to 172.16.0.0/16; IPIP is
    // accepted as configuration even where the kernel has no ipip module.
    let cfg = env.cfg(
        "node1",
        &[
            ("CALICO_IPV4POOL_IPIP", "Always"),
            ("CALICO_IPV4POOL_BLOCK_SIZE", "28"),
            ("CALICO_IPV6POOL_CIDR", "fd12:3456::/48"),
        ],
    );
    let r = startup::run(&cfg, &c, &host(&["192.168.1.5/24"]), NO_V6)
        .await
        .unwrap();
    // No IPv6 on this host: no IPv6 pool.
    assert_eq!(r.pools_created, vec!["default-ipv4-ippool".to_string()]);
    let p = &pools(&c).await[0];
    assert_eq!(p.spec.cidr, "172.16.0.0/16");
    assert_eq!(p.spec.ipip_mode, "Always");
    assert_eq!(p.spec.block_size, 28);

    // A pool of the family exists already: none is added, whatever its name.
    common::wipe(store.as_ref()).await;
    let own = Resource::from_json_value(json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPPool",
        "metadata": {"name": "mine"},
        "spec": {"cidr": "10.244.0.0/16"}
    }))
    .unwrap();
    c.create(own).await.unwrap();
    let cfg = env.cfg(
        "node1",
        &[
            ("CALICO_IPV4POOL_CIDR", "10.50.0.0/16"),
            ("CALICO_IPV6POOL_CIDR", "fd12:3456::/48"),
        ],
    );
    let r = startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), V6)
        .await
        .unwrap();
    assert_eq!(r.pools_created, vec!["default-ipv6-ippool".to_string()]);
    let names: Vec<String> = pools(&c).await.into_iter().map(|p| p.spec.cidr).collect();
    assert_eq!(
        names,
        vec!["fd12:3456::/48".to_string(), "10.244.0.0/16".into()]
    );

    // FELIX_IPV6SUPPORT=false: no IPv6 pool even where the host has IPv6.
    common::wipe(store.as_ref()).await;
    let cfg = env.cfg("node1", &[("FELIX_IPV6SUPPORT", "false")]);
    let r = startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), V6)
        .await
        .unwrap();
    assert_eq!(r.pools_created, vec!["default-ipv4-ippool".to_string()]);
}

async fn policy_only_mode(store: Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    let env = Env::new();
    let cfg = env.cfg(
        "node1",
        &[
            ("CALICO_NETWORKING_BACKEND", "none"),
            ("AS", "64512"),
            ("NO_DEFAULT_POOLS", "true"),
        ],
    );
    // No address anywhere, and none needed.
    let r = startup::run(&cfg, &c, &host(&[]), V6).await.unwrap();
    assert!(r.node_written);
    let n = get_node(&c, "node1").await.unwrap();
    assert_eq!(n.spec.bgp, None);
}

async fn address_monitor(store: Arc<dyn Datastore>) {
    let c = Client::new(store.clone());
    let env = Env::new();
    let cfg = env.cfg(
        "node1",
        &[
            ("IP", "autodetect"),
            ("NO_DEFAULT_POOLS", "true"),
            ("AUTODETECT_POLL_INTERVAL", "100ms"),
        ],
    );
    startup::run(&cfg, &c, &host(&["10.0.0.5/24"]), V6)
        .await
        .unwrap();
    // Same address: nothing to write.
    assert!(
        !startup::recheck_addresses(&cfg, &c, &host(&["10.0.0.5/24"]))
            .await
            .unwrap()
    );
    // The host's address changed: the Node follows.
    assert!(
        startup::recheck_addresses(&cfg, &c, &host(&["10.0.0.6/24"]))
            .await
            .unwrap()
    );
    let ip4 = |n: Node| n.spec.bgp.unwrap().ipv4_address;
    assert_eq!(ip4(get_node(&c, "node1").await.unwrap()), "10.0.0.6/24");

    // The new address belongs to another node: refused, and (autodetecting) our stale
    // address is cleared so it cannot be mistaken for ours, as Calico's clearNodeIPs does.
    c.create(
        Resource::from_json_value(json!({
            "apiVersion": "projectcalico.org/v3", "kind": "Node",
            "metadata": {"name": "node2"},
            "spec": {"bgp": {"ipv4Address": "10.0.0.7/24"}}
        }))
        .unwrap(),
    )
    .await
    .unwrap();
    let err = startup::recheck_addresses(&cfg, &c, &host(&["10.0.0.7/24"]))
        .await
        .unwrap_err();
    assert!(matches!(err, StartupError::AddressConflict { .. }), "{err}");
    assert_eq!(get_node(&c, "node1").await.unwrap().spec.bgp, None);

    // The monitor loop applies changes by itself and stops on shutdown.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (cfg2, c2, sd) = (cfg.clone(), c.clone(), shutdown.clone());
    let task = tokio::spawn(async move {
        startup::monitor_addresses(&cfg2, &c2, &host(&["10.0.0.9/24"]), sd).await;
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(b) = get_node(&c, "node1").await.unwrap().spec.bgp
            && b.ipv4_address == "10.0.0.9/24"
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "monitor did not update the node"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();

    // Without autodetection the monitor does not run at all.
    let fixed = env.cfg(
        "node1",
        &[("IP", "10.0.0.9/24"), ("NO_DEFAULT_POOLS", "true")],
    );
    tokio::time::timeout(
        std::time::Duration::from_secs(1),
        startup::monitor_addresses(
            &fixed,
            &c,
            &host(&[]),
            tokio_util::sync::CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
}

scenarios!(
    fresh_node,
    existing_fields_are_kept,
    address_conflict_writes_nothing,
    autodetect_failure_writes_nothing,
    pool_choices,
    policy_only_mode,
    address_monitor,
);
