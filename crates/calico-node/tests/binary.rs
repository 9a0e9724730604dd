//! The `calico-node` binary end to end (root only: it runs in a throw-away network namespace,
//! never in the root one): start it configured by the environment with the embedded store,
//! wait for readiness, check what start-up stored, assign over the IPAM socket, scrape
//! /metrics, watch the status report and Felix's blackhole route appear, then SIGTERM it and
//! check it exits cleanly and removes its socket.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_api::ippool::IPPool;
use calico_api::node::Node;
use calico_client::Client;
use calico_datastore::{Datastore, EmbeddedDatastore};
use calico_ipam_rpc::{AssignRequest, IpamAgentClient};
use calico_netlink::testing::{TestNetns, require_root};

/// GET `path` on 127.0.0.1:`port` inside the namespace; (status, body).
fn http_get(ns: &TestNetns, port: u16, path: &str) -> Result<(u16, String), String> {
    let path = path.to_string();
    ns.ns()
        .run(move || -> Result<(u16, String), String> {
            let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).map_err(|e| e.to_string())?;
            let code = out
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("bad answer {out:?}"))?;
            let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
            Ok((code, body))
        })
        .unwrap()
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        // Only if the test failed before the orderly stop: kill our own child by PID.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    calico_datastore::testing::free_port()
}

/// The whole scenario against one datastore: `ds_env` selects it for the agent (and its
/// probe), `store` reads it from the test.
fn agent_runs_serves_and_stops(ds_env: &[(String, String)], store: Arc<dyn Datastore>) {
    let ns = TestNetns::new("cnode-bin").unwrap();
    // The node's uplink (a veth pair: no dummy driver everywhere), with the node address.
    for cmd in [
        "ip link add eth0 type veth peer name veth-up",
        "ip addr add 10.99.0.5/24 dev eth0",
        "ip link set eth0 up",
        "ip link set veth-up up",
    ] {
        ns.exec(&cmd.split(' ').collect::<Vec<_>>()).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("run/ipam.sock");
    let (hport, mport) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_calico-node"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .env("NODENAME", "node1")
        .envs(ds_env.iter().map(|(k, v)| (k, v)))
        .env("CALICO_NODENAME_FILE", dir.path().join("nodename"))
        .env("CALICO_IPAM_SOCKET", &sock)
        // Not the host's /var/run/calico/bgp.ctl.
        .env("CALICO_BGP_STATUS_SOCKET", dir.path().join("run/bgp.ctl"))
        .env("CALICO_NODE_NETNS", ns.path())
        .env("IP", "autodetect")
        .env("AS", "64512")
        .env("CALICO_IPV4POOL_CIDR", "10.244.0.0/16")
        .env("CALICO_IPV6POOL_CIDR", "none")
        // FELIX_HEALTHHOST left at its default, localhost: bound as 127.0.0.1, as Go does.
        .env("FELIX_HEALTHPORT", hport.to_string())
        .env("FELIX_PROMETHEUSMETRICSENABLED", "true")
        .env("FELIX_PROMETHEUSMETRICSHOST", "127.0.0.1")
        .env("FELIX_PROMETHEUSMETRICSPORT", mport.to_string())
        .env("FELIX_REPORTINGINTERVALSECS", "1")
        .env("FELIX_REPORTINGTTLSECS", "30")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut agent = Agent(child);
    let pid = agent.0.id();

    // Ready: 200 with the component table.
    let body = wait_for("readiness", Duration::from_secs(60), || {
        assert!(
            agent.0.try_wait().unwrap().is_none(),
            "calico-node exited early"
        );
        match http_get(&ns, hport, "/readiness") {
            Ok((200, body)) => Some(body),
            _ => None,
        }
    });
    for c in ["ipam_service", "felix", "datastore", "reporting ready"] {
        assert!(body.contains(c), "{c} missing from:\n{body}");
    }
    let (code, _) = http_get(&ns, hport, "/liveness").unwrap();
    assert_eq!(code, 200);
    // The probe flag agrees (it enters the namespace itself).
    let probe = Command::new(env!("CARGO_BIN_EXE_calico-node"))
        .args(["-felix-ready", "-bird-ready"])
        .env_clear()
        .env("CALICO_BGP_STATUS_SOCKET", dir.path().join("run/bgp.ctl"))
        .env("NODENAME", "node1")
        .envs(ds_env.iter().map(|(k, v)| (k, v)))
        .env("CALICO_NODE_NETNS", ns.path())
        .env("FELIX_HEALTHPORT", hport.to_string())
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // What start-up stored.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(store.clone());
    let node: Node = rt.block_on(client.get_as("", "node1")).unwrap();
    let bgp = node.spec.bgp.unwrap();
    assert_eq!(bgp.ipv4_address, "10.99.0.5/24");
    assert_eq!(bgp.as_number.unwrap().0, 64512);
    let ci = rt
        .block_on(client.get("ClusterInformation", "", "default"))
        .unwrap()
        .to_json_value();
    assert_eq!(ci["spec"]["datastoreReady"], true);
    assert_eq!(ci["spec"]["clusterGUID"].as_str().unwrap().len(), 32);
    let (pools, _) = rt.block_on(client.list_as::<IPPool>(None)).unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].metadata.name, "default-ipv4-ippool");
    assert_eq!(pools[0].spec.cidr, "10.244.0.0/16");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("nodename")).unwrap(),
        "node1"
    );

    // An address over the socket, as the CNI plugin asks for it.
    let ipam = IpamAgentClient::new(&sock, Duration::from_secs(30));
    assert_eq!(ipam.ping().unwrap(), "node1");
    let a = ipam
        .assign(&AssignRequest {
            node: "node1".into(),
            handle_id: "k8s-pod-network.abc".into(),
            num4: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(a.ipv4.len(), 1);
    let ip = a.ipv4[0];
    assert_eq!(ip.prefix_len(), 26);
    let block = ip.trunc();

    // Felix programs the blackhole for the now-affine block, with its protocol, in the
    // node's namespace.
    wait_for("blackhole route", Duration::from_secs(30), || {
        let routes = ns.exec(&["ip", "route", "show", "proto", "80"]).unwrap();
        routes.contains(&format!("blackhole {block}")).then_some(())
    });

    // Metrics: ours, Felix's and the process's.
    let (code, text) = http_get(&ns, mport, "/metrics").unwrap();
    assert_eq!(code, 200);
    for m in [
        "felix_host{host=\"node1\"} 1",
        "calico_node_ipam_requests_total{op=\"assign\",result=\"ok\"} 1",
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "process_start_time_seconds ",
        "felix_resyncs_started",
        "felix_nft_apply_seconds_count ",
        "felix_nft_chains ",
        "felix_nft_resyncs_total 0",
        "felix_calc_bad_resources_total 0",
    ] {
        assert!(text.contains(m), "{m} missing from /metrics:\n{text}");
    }
    // The policy table is programmed in the node's namespace (and only there).
    wait_for("the policy table", Duration::from_secs(30), || {
        let tables = ns.exec(&["nft", "list", "tables"]).unwrap();
        tables.contains("table inet calico").then_some(())
    });

    // Status reports (Felix waits 10 s before the first).
    let last = "/calico/felix/v2/no-region/host/node1/last_reported_status";
    wait_for("status report", Duration::from_secs(30), || {
        rt.block_on(store.get(last)).unwrap()
    });
    let active = rt
        .block_on(store.get("/calico/felix/v2/no-region/host/node1/status"))
        .unwrap()
        .unwrap();
    assert_ne!(active.lease, 0);

    // SIGTERM by PID: a clean exit that removes the socket.
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = wait_for("exit", Duration::from_secs(30), || {
        agent.0.try_wait().unwrap()
    });
    assert!(status.success(), "calico-node exited with {status}");
    assert!(!Path::new(&sock).exists(), "socket left behind");
}

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn agent_on_the_embedded_store() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("calico.db");
    // The test reads through a second handle on the same store file.
    let store: Arc<dyn Datastore> = Arc::new(EmbeddedDatastore::open(&db).unwrap());
    agent_runs_serves_and_stops(
        &env(&[
            ("DATASTORE_TYPE", "embedded".into()),
            ("CALICO_DATASTORE_PATH", db.display().to_string()),
        ]),
        store,
    );
}

fn etcd_store(etcd: &calico_datastore::testing::EtcdServer) -> Arc<dyn Datastore> {
    // The etcd client's connection tasks run on the runtime it was made on: one with its own
    // worker thread, kept for the rest of the test process.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(async {
        calico_datastore::etcd::EtcdDatastore::connect(etcd.config())
            .await
            .unwrap()
    });
    std::mem::forget(rt);
    Arc::new(store)
}

#[test]
fn agent_on_etcd_with_tls() {
    if !require_root() {
        return;
    }
    let Some(etcd) = calico_datastore::testing::EtcdServer::start_tls_or_skip() else {
        return;
    };
    let tls = etcd.tls_files().unwrap();
    // The ETCD_*_FILE settings, exactly as a calico-node manifest passes them.
    agent_runs_serves_and_stops(
        &env(&[
            ("DATASTORE_TYPE", "etcdv3".into()),
            ("ETCD_ENDPOINTS", etcd.endpoint()),
            ("ETCD_CA_CERT_FILE", tls.ca_cert.display().to_string()),
            ("ETCD_CERT_FILE", tls.client_cert.display().to_string()),
            ("ETCD_KEY_FILE", tls.client_key.display().to_string()),
        ]),
        etcd_store(&etcd),
    );
}

#[test]
fn bad_configuration_fails_fast_naming_the_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_calico-node"))
        .env_clear()
        .env("NODENAME", "node1")
        .env("CALICO_IPV4POOL_BLOCK_SIZE", "40")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CALICO_IPV4POOL_BLOCK_SIZE"), "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_calico-node"))
        .arg("-bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v = Command::new(env!("CARGO_BIN_EXE_calico-node"))
        .arg("-v")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with('v'));
}
