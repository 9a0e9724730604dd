//! `calicoctl ipam` end to end: the built binary against the embedded store (and the same flow
//! against a real etcd), with pools, nodes and workload endpoints written by `calicoctl apply`
//! and allocations made by `calico_ipam::IpamClient` over the same datastore, as the CNI
//! plugin would make them.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use calico_client::{ApiConfig, Client};
use calico_datastore::Datastore;
use calico_datastore::testing::EtcdServer;
use calico_ipam::model::AffinityOwner;
use calico_ipam::{AssignArgs, AutoAssignArgs, DatastoreResources, IpamClient};
use common::Ctl;
use serde_json::Value;

const POOL_AND_NODES: &str = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool1
spec:
  cidr: 10.10.0.0/16
  blockSize: 26
  ipipMode: Never
  natOutgoing: true
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: nodea
spec: {}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: nodeb
spec: {}
";

async fn open(env: BTreeMap<&'static str, String>) -> Arc<dyn Datastore> {
    let cfg = ApiConfig::from_env(|k| env.get(k).cloned()).unwrap();
    cfg.connect().await.unwrap()
}

fn ipam(ds: &Arc<dyn Datastore>) -> IpamClient {
    IpamClient::new(ds.clone(), Arc::new(DatastoreResources::new(ds.clone())))
}

/// One pod's address, as the CNI plugin allocates it.
async fn alloc_pod(ipam: &IpamClient, node: &str, pod: &str) -> IpAddr {
    let mut args = AutoAssignArgs::v4(node, &format!("k8s-pod-network.{pod}"), 1);
    args.attrs = BTreeMap::from([
        ("namespace".to_string(), "default".to_string()),
        ("node".to_string(), node.to_string()),
        ("pod".to_string(), pod.to_string()),
    ]);
    ipam.auto_assign(&args).await.unwrap().ipv4[0].addr()
}

fn wep_yaml(node: &str, pod: &str, ip: IpAddr) -> String {
    format!(
        "apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: {node}-k8s-{pod}-eth0
  namespace: default
spec:
  orchestrator: k8s
  node: {node}
  pod: {pod}
  endpoint: eth0
  interfaceName: cali{pod}
  ipNetworks: [\"{ip}/32\"]
"
    )
}

/// Sets ClusterInformation `datastoreReady` (what `calicoctl datastore migrate lock` does).
async fn set_datastore_ready(ds: &Arc<dyn Datastore>, ready: bool) {
    let client = Client::new(ds.clone());
    let ci = client
        .get("ClusterInformation", "", "default")
        .await
        .unwrap();
    let mut v = ci.to_json_value();
    v["spec"]["datastoreReady"] = Value::Bool(ready);
    let res = calico_api::Resource::from_json_value(v).unwrap();
    client.update(res).await.unwrap();
}

fn report_path(ctl: &Ctl, name: &str) -> String {
    ctl.dir.path().join(name).display().to_string()
}

async fn ipam_flow(ctl: &Ctl, ds: Arc<dyn Datastore>) {
    let f = ctl.file("setup.yaml", POOL_AND_NODES);
    ctl.run(&["apply", "-f", &f]).ok();
    let ipam = ipam(&ds);

    // Nothing allocated yet: the pool row only.
    let out = ctl.run(&["ipam", "show"]).ok().stdout;
    assert_eq!(
        out,
        "\
+----------+--------------+-----------+------------+--------------+--------------+
| GROUPING | CIDR         | IPS TOTAL | IPS IN USE | IPS RESERVED | IPS FREE     |
+----------+--------------+-----------+------------+--------------+--------------+
| IP Pool  | 10.10.0.0/16 |     65536 |     0 (0%) |       0 (0%) | 65536 (100%) |
+----------+--------------+-----------+------------+--------------+--------------+
"
    );

    // pod1 (nodea) has a workload endpoint; pod2 (nodea) and pod3 (nodeb) leak; pod4 runs on
    // nodea but borrowed an address from nodeb's block and leaks too.
    let ip1 = alloc_pod(&ipam, "nodea", "pod1").await;
    let ip2 = alloc_pod(&ipam, "nodea", "pod2").await;
    let ip3 = alloc_pod(&ipam, "nodeb", "pod3").await;
    let IpAddr::V4(v3) = ip3 else { panic!() };
    let ip4 = IpAddr::V4((u32::from(v3) + 10).into());
    ipam.assign_ip(&AssignArgs {
        ip: ip4,
        handle_id: Some("k8s-pod-network.pod4".into()),
        attrs: BTreeMap::from([
            ("namespace".to_string(), "default".to_string()),
            ("node".to_string(), "nodea".to_string()),
            ("pod".to_string(), "pod4".to_string()),
        ]),
        hostname: "nodea".into(),
        host_reserved: None,
        intended_use: None,
    })
    .await
    .unwrap();
    let w = ctl.file("wep.yaml", &wep_yaml("nodea", "pod1", ip1));
    ctl.run(&["apply", "-f", &w]).ok();
    // A handle whose addresses are gone (a crash between Calico's handle and block writes).
    ds.put(
        "/calico/ipam/v2/handle/k8s-pod-network.ghost",
        br#"{"block":{"10.10.200.0/26":1},"deleted":false}"#.to_vec(),
        None,
    )
    .await
    .unwrap();

    let out = ctl.run(&["ipam", "show"]).ok().stdout;
    assert!(
        out.contains(
            "| IP Pool  | 10.10.0.0/16 |     65536 |     4 (0%) |       0 (0%) | 65532 (100%) |"
        ),
        "{out}"
    );
    let out = ctl.run(&["ipam", "show", "--show-blocks"]).ok().stdout;
    let blocks: Vec<&str> = out.lines().filter(|l| l.starts_with("| Block")).collect();
    assert_eq!(blocks.len(), 2, "{out}");
    // nodeb's block holds pod3 and pod4 (borrowed by nodea), nodea's pod1 and pod2.
    assert!(
        blocks
            .iter()
            .all(|l| l.ends_with("|        64 |     2 (3%) |       0 (0%) |     62 (97%) |")),
        "{out}"
    );

    // One address.
    let out = ctl
        .run(&["ipam", "show", &format!("--ip={ip1}")])
        .ok()
        .stdout;
    assert_eq!(
        out,
        format!(
            "IP {ip1} is in use\nHandle ID: k8s-pod-network.pod1\nActive Owner Attributes:\n  namespace: default\n  node: nodea\n  pod: pod1\n"
        )
    );
    let out = ctl
        .run(&["ipam", "show", "--ip", "10.10.255.1"])
        .ok()
        .stdout;
    assert_eq!(out, "10.10.255.1 is not assigned\n");
    let out = ctl.run(&["ipam", "show", "--ip", "10.99.0.1"]).ok().stdout;
    assert_eq!(out, "10.99.0.1 is not assigned\n");
    let out = ctl.run(&["ipam", "show", "--ip", "bogus"]).fails().stdout;
    assert_eq!(
        out,
        "Error executing command: invalid IP address specified: bogus\n"
    );

    // Borrowed: pod4's address, from nodeb's block.
    let out = ctl.run(&["ipam", "show", "--show-borrowed"]).ok().stdout;
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| 10.")).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(
        rows[0].starts_with(&format!("| {ip4} | nodea          |")),
        "{out}"
    );
    assert!(
        rows[0].contains("| nodeb       | pod  | default/pod4 |"),
        "{out}"
    );

    // nodeb goes away with its workloads.
    ctl.run(&["delete", "node", "nodeb"]).ok();

    let out = ctl
        .run(&["ipam", "check", "--show-problem-ips"])
        .ok()
        .stdout;
    for want in [
        "Checking IPAM for inconsistencies...\n\nLoading all IPAM blocks...\nFound 2 IPAM blocks.\n",
        "IPAM blocks record 4 allocations.\n",
        "Loading all IPAM pools...\n  10.10.0.0/16\nFound 1 active IP pools.\n",
        "Found 0 node tunnel IPs.\n",
        "Found 1 workload IPs.\nWorkloads and nodes are using 1 IPs.\n",
        "  nodea has 3 allocations\n  nodeb has 1 allocations\nNode with most allocations has 3; median is 1\n",
        &format!(
            "  {ip2} leaked; attrs Main:k8s-pod-network.pod2 Extra:namespace=default,node=nodea,pod=pod2\n"
        ),
        "Found 3 IPs that are allocated in IPAM but not actually in use.\n",
        "Found 0 in-use IPs that are not in active IP pools.\n",
        "Found 1 handles with no matching IPs (and 4 handles with matches).\n",
        "Found 0 handles mentioned in blocks with no matching handle resource.\n",
        "is affine to node nodeb, which no longer exists.\n",
        "Found 1 block affinities of nodes that no longer exist.\n",
        "Found 0 invalid IPAMBlocks.\nCheck complete; found 5 problems.\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    // A report made while the datastore is not locked is refused without --force, and once
    // the lock changes ClusterInformation it is stale (not overridable).
    let early = report_path(ctl, "early.json");
    ctl.run(&["ipam", "check", "-o", &early]).ok();
    let err = ctl
        .run(&["ipam", "release", "--from-report", &early])
        .fails()
        .stderr;
    assert_eq!(
        err,
        "data store is not locked. Either lock the data store, or re-run with --force\n"
    );
    set_datastore_ready(&ds, false).await;
    let err = ctl
        .run(&["ipam", "release", "--from-report", &early, "--force"])
        .fails()
        .stderr;
    assert!(
        err.starts_with("the provided reports are all stale"),
        "{err}"
    );

    // The real report, made while locked.
    let path = report_path(ctl, "report.json");
    ctl.run(&["ipam", "check", "-o", &path]).ok();
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(report["version"], format!("v{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(report["datastoreLocked"], true);
    assert!(!report["clusterGUID"].as_str().unwrap().is_empty());
    let a1 = &report["allocations"][ip1.to_string()][0];
    assert_eq!(a1["inUse"], true);
    assert_eq!(
        a1["owners"],
        serde_json::json!(["Workload(default/nodea-k8s-pod1-eth0)"])
    );
    assert_eq!(a1["handle"], "k8s-pod-network.pod1");
    let a4 = &report["allocations"][ip4.to_string()][0];
    assert_eq!(a4["inUse"], false);
    assert_eq!(a4["borrowed"], true);
    assert_eq!(a4["owners"], Value::Null);
    assert_eq!(report["leakedHandles"][0]["ID"], "k8s-pod-network.ghost");
    assert_eq!(report["deletedNodeAffinities"][0]["node"], "nodeb");

    // Reports from another cluster are refused even with --force; another version needs it.
    let mut other = report.clone();
    other["clusterGUID"] = Value::String("not-this-cluster".into());
    let other_path = ctl.file("other.json", &other.to_string());
    let err = ctl
        .run(&["ipam", "release", "--from-report", &other_path, "--force"])
        .fails()
        .stderr;
    assert!(
        err.contains("mismatched cluster GUID. Refusing to release"),
        "{err}"
    );
    let mut old = report.clone();
    old["version"] = Value::String("v3.0.0".into());
    let old_path = ctl.file("old.json", &old.to_string());
    let err = ctl
        .run(&["ipam", "release", "--from-report", &old_path])
        .fails()
        .stderr;
    assert!(
        err.contains("different version (v3.0.0) of calicoctl"),
        "{err}"
    );

    // pod2's address is reused by a new pod after the report: the release must not free it.
    ipam.release_ips(&[calico_ipam::ReleaseOptions::address(ip2)])
        .await
        .unwrap();
    ipam.assign_ip(&AssignArgs {
        ip: ip2,
        handle_id: Some("k8s-pod-network.pod5".into()),
        attrs: BTreeMap::from([("node".to_string(), "nodea".to_string())]),
        hostname: "nodea".into(),
        host_reserved: None,
        intended_use: None,
    })
    .await
    .unwrap();

    let out = ctl
        .run(&["ipam", "release", "--from-report", &path])
        .ok()
        .stdout;
    for want in [
        "Releasing 3 old IPs...\n",
        "Problems are often caused by an out-of-date IPAM report.",
        "Released 2 IPs successfully\n",
        "Deleting 1 handles...\nKey: '.' = Deleted OK; 'x' = skip, handle missing/changed.\n.\nReleased 1 handles; 0 skipped; 0 errors.\n",
        "Released 1 block affinities; 0 skipped; 0 errors.\n",
        "You may now unlock the data store.\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(
        ipam.ips_by_handle("k8s-pod-network.pod5").await.unwrap(),
        vec![ip2]
    );
    assert!(ipam.ips_by_handle("k8s-pod-network.pod3").await.is_err());
    assert!(
        ds.get("/calico/ipam/v2/handle/k8s-pod-network.ghost")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        ipam.list_affinities(&AffinityOwner::host("nodeb"), 4)
            .await
            .unwrap()
            .is_empty(),
        "nodeb's affinity is released"
    );
    assert_eq!(
        ipam.list_blocks(4).await.unwrap().len(),
        1,
        "nodeb's emptied block is gone"
    );

    // A second release of the same report finds nothing left to do.
    let out = ctl
        .run(&["ipam", "release", "--from-report", &path])
        .ok()
        .stdout;
    assert!(
        out.contains("Released 0 handles; 1 skipped; 0 errors."),
        "{out}"
    );

    // pod5 has no endpoint either: the only problem left.
    set_datastore_ready(&ds, true).await;
    let out = ctl.run(&["ipam", "check"]).ok().stdout;
    assert!(out.contains("Check complete; found 1 problems.\n"), "{out}");

    // release --ip.
    let out = ctl
        .run(&["ipam", "release", &format!("--ip={ip2}")])
        .ok()
        .stdout;
    assert_eq!(out, format!("Successfully released IP address {ip2}\n"));
    let err = ctl
        .run(&["ipam", "release", &format!("--ip={ip2}")])
        .fails()
        .stderr;
    assert_eq!(err, format!("IP address {ip2} is not assigned\n"));
    let out = ctl.run(&["ipam", "check"]).ok().stdout;
    assert!(out.contains("Check complete; found 0 problems.\n"), "{out}");

    // configure, with Calico's rules.
    let out = ctl
        .run(&["ipam", "show", "--show-configuration"])
        .ok()
        .stdout;
    assert_eq!(
        out,
        "\
+------------------------------+-----------+
| PROPERTY                     | VALUE     |
+------------------------------+-----------+
| StrictAffinity               | false     |
| AutoAllocateBlocks           | true      |
| MaxBlocksPerHost             | 0         |
| KubeVirtVMAddressPersistence | \"Enabled\" |
| IPCooldownSeconds            | 0         |
+------------------------------+-----------+
"
    );
    let err = ctl
        .run(&["ipam", "configure", "--max-blocks-per-host=4"])
        .fails()
        .stderr;
    assert_eq!(
        err,
        "error: MaxBlocksPerHost requires StrictAffinity to be enabled\n"
    );
    let err = ctl.run(&["ipam", "configure"]).fails().stderr;
    assert_eq!(err, "at least one configuration option must be specified\n");
    let out = ctl
        .run(&[
            "ipam",
            "configure",
            "--strictaffinity=true",
            "--max-blocks-per-host=4",
        ])
        .ok()
        .stdout;
    assert_eq!(
        out,
        "Successfully set StrictAffinity to: true\nSuccessfully set MaxBlocksPerHost to: 4\n"
    );
    let cfg = ipam.get_config().await.unwrap();
    assert!(cfg.strict_affinity);
    assert_eq!(cfg.max_blocks_per_host, 4);
    let out = ctl
        .run(&["ipam", "show", "--show-configuration"])
        .ok()
        .stdout;
    assert!(
        out.contains("| StrictAffinity               | true      |"),
        "{out}"
    );
    assert!(
        out.contains("| MaxBlocksPerHost             | 4         |"),
        "{out}"
    );
    let err = ctl
        .run(&["ipam", "configure", "--strictaffinity=false"])
        .fails()
        .stderr;
    assert_eq!(
        err,
        "error: MaxBlocksPerHost requires StrictAffinity to be enabled\n"
    );
}

#[tokio::test]
async fn ipam_commands_on_the_embedded_store() {
    let ctl = Ctl::embedded();
    let db = ctl.dir.path().join("calico.db").display().to_string();
    let ds = open(BTreeMap::from([("CALICO_DATASTORE_PATH", db)])).await;
    ipam_flow(&ctl, ds).await;
}

#[tokio::test]
async fn ipam_commands_on_etcd() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ctl = Ctl::etcd(&etcd.endpoint());
    let ds = open(BTreeMap::from([
        ("DATASTORE_TYPE", "etcdv3".to_string()),
        ("ETCD_ENDPOINTS", etcd.endpoint()),
    ]))
    .await;
    ipam_flow(&ctl, ds).await;
}

const SECOND_SETUP: &str = "\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool2
spec:
  cidr: 10.20.0.0/24
  blockSize: 26
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool3
spec:
  cidr: 10.30.0.0/24
  blockSize: 26
---
apiVersion: projectcalico.org/v3
kind: IPReservation
metadata:
  name: res1
spec:
  reservedCIDRs: [\"10.20.0.0/30\", \"10.20.0.2\", \"10.20.0.200/32\"]
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: nodea
spec:
  ipv4VXLANTunnelAddr: 10.20.0.100
  wireguard:
    interfaceIPv4Address: 192.168.77.1
";

/// Reservations in the pool table, orphaned blocks, node addresses without allocations,
/// cool-down and a corrupt block.
#[tokio::test]
async fn check_and_show_edge_cases_on_the_embedded_store() {
    let ctl = Ctl::embedded();
    let db = ctl.dir.path().join("calico.db").display().to_string();
    let ds = open(BTreeMap::from([("CALICO_DATASTORE_PATH", db)])).await;
    let f = ctl.file("setup.yaml", SECOND_SETUP);
    ctl.run(&["apply", "-f", &f]).ok();
    let ipam = ipam(&ds);

    let mut args = AutoAssignArgs::v4("nodea", "k8s-pod-network.p1", 1);
    args.ipv4_pools = vec!["10.20.0.0/24".parse().unwrap()];
    let p1 = ipam.auto_assign(&args).await.unwrap().ipv4[0].addr();
    let mut args = AutoAssignArgs::v4("nodea", "k8s-pod-network.p2", 1);
    args.ipv4_pools = vec!["10.30.0.0/24".parse().unwrap()];
    let p2 = ipam.auto_assign(&args).await.unwrap().ipv4[0].addr();
    // A LoadBalancer service address (the attributes Calico's controller writes): with no
    // Kubernetes API to list services, check must not call it leaked.
    let mut args = AutoAssignArgs::v4("nodea", "lb-svc1", 1);
    args.ipv4_pools = vec!["10.20.0.0/24".parse().unwrap()];
    args.attrs = BTreeMap::from([
        ("service".to_string(), "svc1".to_string()),
        ("namespace".to_string(), "default".to_string()),
        ("type".to_string(), "LoadBalancer".to_string()),
    ]);
    let lb = ipam.auto_assign(&args).await.unwrap().ipv4[0].addr();
    ctl.run(&["delete", "ippool", "pool3"]).ok();
    ds.put(
        "/calico/ipam/v2/assignment/ipv4/block/10.99.0.0-30",
        br#"{"cidr":"10.99.0.0/30","affinity":null,"allocations":[null,null,null,null],"unallocated":[0,1,1,2],"attributes":null,"sequenceNumber":0,"sequenceNumberForAllocation":null,"deleted":false}"#.to_vec(),
        None,
    )
    .await
    .unwrap();

    let out = ctl.run(&["ipam", "show", "--show-blocks"]).ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    // Pool: 256 addresses, 5 reserved (10.20.0.0/30 with .2 nested in it, plus .200), 2 in use.
    assert!(
        lines[3]
            .starts_with("| IP Pool  | 10.20.0.0/24   |       256 |     2 (1%) |       5 (2%) |"),
        "{out}"
    );
    assert!(lines[3].ends_with("249 (97%) |"), "{out}");
    // Its block, then the orphaned blocks with no pool row.
    assert!(lines[4].starts_with("| Block    | 10.20.0."), "{out}");
    assert!(lines[5].starts_with("| Block    | 10.30.0."), "{out}");
    assert!(lines[6].starts_with("| Block    | 10.99.0.0/30 "), "{out}");
    assert_eq!(lines.len(), 8, "{out}");

    let out = ctl.run(&["ipam", "check", "--show-all-ips"]).ok().stdout;
    for want in [
        &format!("  {p1} allocated; attrs Main:k8s-pod-network.p1 Extra:\n"),
        "  10.20.0.100 belongs to Node(nodea)\n",
        "  192.168.77.1 in use by Node(nodea) is not in any active IP pool.\n",
        "  10.20.0.100 in use by Node(nodea) and in active IPAM pool but has no IPAM allocation.\n",
        "Found 2 node tunnel IPs.\n",
        &format!("  {lb} belongs to Service(default/svc1)\n"),
        "No Kubernetes API in this datastore: 1 service load balancer IP allocation(s) assumed in use.\n",
        "Found 2 IPs that are allocated in IPAM but not actually in use.\n",
        "Found 1 in-use IPs that are not in active IP pools.\n",
        "Found 1 in-use IPs that are in active IP pools but have no corresponding IPAM allocation.\n",
        "  IPAMBlock BlockKey(cidr=10.99.0.0/30) is invalid: ordinal 1 appears more than once in Unallocated array\n",
        "Check complete; found 5 problems.\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    // A released address cooling down is neither a leak nor "in use" to show --ip.
    ctl.run(&["ipam", "configure", "--ip-cooldown-seconds=3600"])
        .ok();
    ctl.run(&["ipam", "release", "--ip", &p1.to_string()]).ok();
    let err = ctl
        .run(&["ipam", "show", "--ip", &p1.to_string()])
        .fails()
        .stderr;
    assert_eq!(err, format!("address {p1} is in cooldown\n"));
    // An address of a deleted pool is "not assigned" to show --ip (enabled pools only).
    let out = ctl
        .run(&["ipam", "show", "--ip", &p2.to_string()])
        .ok()
        .stdout;
    assert_eq!(out, format!("{p2} is not assigned\n"));
    let out = ctl.run(&["ipam", "check"]).ok().stdout;
    assert!(
        out.contains("Found 1 IPs that are allocated in IPAM but not actually in use.\n"),
        "{out}"
    );
    let out = ctl
        .run(&["ipam", "show", "--show-configuration"])
        .ok()
        .stdout;
    assert!(
        out.contains("| IPCooldownSeconds            | 3600      |"),
        "{out}"
    );
}

/// Addresses a Windows node reserves in its blocks are never leaks, in the summary or in the
/// report, so a release from the report leaves them alone.
#[tokio::test]
async fn windows_reserved_addresses_survive_check_and_release() {
    let ctl = Ctl::embedded();
    let db = ctl.dir.path().join("calico.db").display().to_string();
    let ds = open(BTreeMap::from([("CALICO_DATASTORE_PATH", db)])).await;
    let f = ctl.file(
        "setup.yaml",
        "apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool4
spec:
  cidr: 10.40.0.0/24
  blockSize: 26
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: win1
spec: {}
",
    );
    ctl.run(&["apply", "-f", &f]).ok();
    let ipam = ipam(&ds);
    let mut args = AutoAssignArgs::v4("win1", "k8s-pod-network.w1", 1);
    args.host_reserved_v4 = Some(calico_ipam::HostReservedAttr {
        start_of_block: 3,
        end_of_block: 1,
        handle: "windows-reserved-ipam-handle".into(),
        note: "windows host rsvd".into(),
    });
    let pod = ipam.auto_assign(&args).await.unwrap().ipv4[0].addr();

    let path = report_path(&ctl, "report.json");
    let out = ctl.run(&["ipam", "check", "-o", &path]).ok().stdout;
    assert!(out.contains("IPAM blocks record 5 allocations.\n"), "{out}");
    assert!(
        out.contains("Found 1 IPs that are allocated in IPAM but not actually in use.\n"),
        "{out}"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let allocs = report["allocations"].as_object().unwrap();
    assert_eq!(allocs.len(), 5);
    let reserved: Vec<&Value> = allocs
        .values()
        .map(|l| &l[0])
        .filter(|a| a["owners"] == serde_json::json!(["Reserved for Windows"]))
        .collect();
    assert_eq!(reserved.len(), 4);
    assert!(
        reserved
            .iter()
            .all(|a| a["inUse"] == true && a.get("handle").is_none())
    );

    let out = ctl
        .run(&["ipam", "release", "--from-report", &path, "--force"])
        .ok()
        .stdout;
    assert!(
        out.starts_with("WARNING: Data store is not locked. Ignoring due to --force option\n"),
        "{out}"
    );
    assert!(
        out.contains("Releasing 1 old IPs...\nReleased 1 IPs successfully\n"),
        "{out}"
    );
    assert!(ipam.ips_by_handle("k8s-pod-network.w1").await.is_err());
    let blocks = ipam.list_blocks(4).await.unwrap();
    let b = blocks.values().next().unwrap();
    assert_eq!(
        b.in_use_ips().len(),
        4,
        "the reserved addresses stay allocated"
    );
    assert!(!b.in_use_ips().contains(&pod));
}
