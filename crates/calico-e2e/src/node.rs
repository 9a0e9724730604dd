//! A simulated host: a network namespace with an uplink-like dummy interface, a directory for
//! its state (datastore file, IPAM socket, CNI config, plugin directory, logs) and, when
//! started, its `calico-node` agent, run inside the namespace and stopped by PID on drop.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use calico_netlink::testing::TestNetns;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::HarnessError;

/// Default pool of the scenarios (the seeds' walkthrough uses 10.244.0.0/16).
pub const POOL_CIDR: &str = "10.244.0.0/16";

/// Where [`Node::use_etcd`]'s etcd listens, on the node's own loopback.
pub const ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

/// One simulated node.
pub struct Node {
    pub name: String,
    pub ns: TestNetns,
    pub dir: tempfile::TempDir,
    /// The datastore file (shared by every node of a cluster).
    pub store_path: PathBuf,
    /// The node's address on its dummy uplink (what autodetection should find).
    pub address: String,
    agent: Option<Child>,
    /// An etcd serving this node on its own loopback (see [`Node::use_etcd`]).
    etcd: Option<Child>,
    /// Extra environment for the agent (`FELIX_*` overrides and the like).
    pub agent_env: Vec<(String, String)>,
    /// The node's IPv6 address, when [`Node::enable_ipv6`] made it dual-stack.
    pub ipv6: Option<String>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |e| HarnessError::Io(what, e)
}

impl Node {
    /// Creates the namespace (with an uplink `eth0` holding `address`, e.g. `10.200.0.1/24`)
    /// and the state directory. `store_path` = `None` gives the node a datastore of its own.
    pub fn new(name: &str, address: &str, store_path: Option<&Path>) -> Result<Node, HarnessError> {
        let ns = TestNetns::new("e2e-node")
            .map_err(|e| HarnessError::Failed(format!("creating namespace: {e}")))?;
        for args in [
            // This kernel has no dummy driver: a veth pair whose far end stays in the node
            // stands in for the uplink.
            vec![
                "link", "add", "eth0", "type", "veth", "peer", "name", "uplink0",
            ],
            vec!["addr", "add", address, "dev", "eth0"],
            vec!["link", "set", "eth0", "up"],
            vec!["link", "set", "uplink0", "up"],
            // A default route, as every real host has. Calico depends on it: the host answers
            // a pod's ARP for 169.254.1.1 by proxy ARP only when it has a unicast route to
            // that address through another interface.
            vec!["route", "add", "default", "dev", "eth0"],
        ] {
            crate::run_checked(Command::new("ip").arg("-n").arg(ns.name()).args(&args))?;
        }
        let dir = tempfile::Builder::new()
            .prefix(&format!("calico-e2e-{name}-"))
            .tempdir()
            .map_err(io("creating the node directory"))?;
        let store_path = store_path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.path().join("calico.db"));
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).map_err(io("creating the plugin directory"))?;
        for plugin in ["calico", "calico-ipam"] {
            std::os::unix::fs::symlink(crate::binary(plugin)?, bin.join(plugin))
                .map_err(io(format!("linking {plugin}")))?;
        }
        std::fs::create_dir_all(dir.path().join("net.d")).map_err(io("creating net.d"))?;
        Ok(Node {
            name: name.to_string(),
            ns,
            dir,
            store_path,
            address: address.to_string(),
            agent: None,
            etcd: None,
            agent_env: Vec::new(),
            ipv6: None,
        })
    }

    pub fn netns_path(&self) -> PathBuf {
        self.ns.path().to_path_buf()
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.path().join("ipam.sock")
    }

    /// Directory holding `calico` and `calico-ipam` (the runtime's `CNI_PATH`).
    /// The agent's BGP status socket (what `calicoctl node status` reads).
    pub fn bgp_status_socket(&self) -> PathBuf {
        self.dir.path().join("bgp.ctl")
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// Directory holding only this node's conflist (podman's `network_config_dir`).
    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("net.d")
    }

    pub fn cni_log_path(&self) -> PathBuf {
        self.dir.path().join("cni.log")
    }

    pub fn agent_log_path(&self) -> PathBuf {
        self.dir.path().join("calico-node.log")
    }

    /// The `calico` network configuration for this node (Calico's fields; the embedded
    /// datastore and the agent socket are ours).
    pub fn netconf(&self, network: &str, cni_version: &str) -> serde_json::Value {
        serde_json::json!({
            "cniVersion": cni_version,
            "name": network,
            "type": "calico",
            "log_level": "debug",
            "log_file_path": self.cni_log_path(),
            "nodename": self.name,
            // calico-node writes it at start-up; the plugin refuses to run before it exists.
            "nodename_file": self.dir.path().join("nodename"),
            "datastore_type": if self.etcd.is_some() { "etcdv3" } else { "embedded" },
            "datastore_path": self.store_path,
            "etcd_endpoints": if self.etcd.is_some() { ETCD_ENDPOINT } else { "" },
            "mtu": 1440,
            "ipam": if self.ipv6.is_some() {
                serde_json::json!({"type": "calico-ipam", "agent_socket": self.socket_path(),
                    "assign_ipv4": "true", "assign_ipv6": "true"})
            } else {
                serde_json::json!({"type": "calico-ipam", "agent_socket": self.socket_path()})
            },
        })
    }

    /// Makes the node dual-stack: `address` (e.g. `fd00:200::1/64`) on its uplink (without
    /// duplicate address detection, so it is usable at once), IPv6 autodetection and the
    /// IPv6 pool `pool` for the agent, IPv6 addresses for pods. Call before
    /// [`Node::start_agent`].
    pub fn enable_ipv6(&mut self, address: &str, pool: &str) -> Result<(), HarnessError> {
        self.ip(&["addr", "add", address, "dev", "eth0", "nodad"])?;
        self.ip(&["-6", "route", "add", "default", "dev", "eth0"])?;
        self.agent_env.push(("IP6".into(), "autodetect".into()));
        self.agent_env
            .push(("CALICO_IPV6POOL_CIDR".into(), pool.to_string()));
        self.agent_env
            .push(("FELIX_IPV6SUPPORT".into(), "true".into()));
        self.ipv6 = Some(address.to_string());
        Ok(())
    }

    /// Writes `<network>.conflist` (one `calico` plugin) into [`Node::conf_dir`].
    pub fn write_conflist(&self, network: &str) -> Result<PathBuf, HarnessError> {
        let mut plugin = self.netconf(network, "1.0.0");
        if let Some(m) = plugin.as_object_mut() {
            m.remove("cniVersion");
            m.remove("name");
        }
        let list = serde_json::json!({"cniVersion": "1.0.0", "name": network, "plugins": [plugin]});
        let path = self.conf_dir().join(format!("{network}.conflist"));
        std::fs::write(&path, list.to_string()).map_err(io("writing the conflist"))?;
        Ok(path)
    }

    /// Switches this node to a real etcd v3 datastore: an `etcd` started inside the node's
    /// namespace (so the agent and the plugins, which run there, reach it on loopback), with
    /// its data in the node's directory. Call before [`Node::start_agent`].
    pub fn use_etcd(&mut self) -> Result<(), HarnessError> {
        let etcd = crate::which("etcd")?;
        let data = self.dir.path().join("etcd");
        let log =
            File::create(self.dir.path().join("etcd.log")).map_err(io("creating the etcd log"))?;
        let mut cmd = Command::new(etcd);
        cmd.arg("--data-dir")
            .arg(&data)
            .args([
                "--listen-client-urls",
                ETCD_ENDPOINT,
                "--advertise-client-urls",
                ETCD_ENDPOINT,
            ])
            .args(["--listen-peer-urls", "http://127.0.0.1:2380"])
            .args(["--initial-advertise-peer-urls", "http://127.0.0.1:2380"])
            .args(["--initial-cluster", "default=http://127.0.0.1:2380"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(io("cloning the etcd log"))?)
            .stderr(log);
        let child = self
            .ns
            .ns()
            .run(move || cmd.spawn())
            .map_err(|e| HarnessError::Failed(format!("entering {}: {e}", self.name)))?
            .map_err(io("starting etcd"))?;
        self.etcd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !matches!(self.http_get(2379, "/health"), Ok((200, _))) {
            if Instant::now() > deadline {
                return Err(HarnessError::Failed(format!(
                    "etcd in {} not healthy after 20 s",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Starts `calico-node` inside the namespace and waits until `/readiness` answers 200/204.
    pub fn start_agent(&mut self) -> Result<(), HarnessError> {
        if self.agent.is_some() {
            return Err(HarnessError::Failed(format!(
                "agent of {} already running",
                self.name
            )));
        }
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.agent_log_path())
            .map_err(io("opening the agent log"))?;
        let log2 = log.try_clone().map_err(io("cloning the agent log"))?;
        let mut cmd = Command::new(crate::binary("calico-node")?);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("NODENAME", &self.name)
            .env(
                "DATASTORE_TYPE",
                if self.etcd.is_some() {
                    "etcdv3"
                } else {
                    "embedded"
                },
            )
            .env(
                "ETCD_ENDPOINTS",
                if self.etcd.is_some() {
                    ETCD_ENDPOINT
                } else {
                    ""
                },
            )
            .env("CALICO_DATASTORE_PATH", &self.store_path)
            .env("CALICO_IPAM_SOCKET", self.socket_path())
            // Not the host's /var/run/calico/bgp.ctl.
            .env("CALICO_BGP_STATUS_SOCKET", self.bgp_status_socket())
            .env("CALICO_NODE_NETNS", self.ns.path())
            // Not the host's /var/lib/calico/nodename.
            .env("CALICO_NODENAME_FILE", self.dir.path().join("nodename"))
            .env("IP", "autodetect")
            .env("CALICO_IPV4POOL_CIDR", POOL_CIDR)
            .env("FELIX_HEALTHENABLED", "true")
            .env("FELIX_PROMETHEUSMETRICSENABLED", "true")
            .env("FELIX_ROUTEREFRESHINTERVAL", "2")
            .env("RUST_LOG", "info")
            .envs(self.agent_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = self
            .ns
            .ns()
            .run(move || cmd.spawn())
            .map_err(|e| HarnessError::Failed(format!("entering {}: {e}", self.name)))?
            .map_err(io("starting calico-node"))?;
        self.agent = Some(child);
        self.wait_ready(Duration::from_secs(20))
    }

    /// PID of the running agent.
    pub fn agent_pid(&self) -> Option<u32> {
        self.agent.as_ref().map(Child::id)
    }

    /// Waits for `/readiness` to answer 200 or 204.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.agent.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.agent = None;
                return Err(HarnessError::Failed(format!(
                    "calico-node of {} exited ({status}) before it was ready; log:\n{}",
                    self.name,
                    self.agent_log_tail()
                )));
            }
            if let Ok((code, _)) = self.http_get(9099, "/readiness")
                && (code == 200 || code == 204)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(HarnessError::Failed(format!(
                    "calico-node of {} not ready after {timeout:?}; log:\n{}",
                    self.name,
                    self.agent_log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the agent with `signal` and waits for it to exit; returns its exit status text.
    pub fn stop_agent(&mut self, signal: Signal) -> Result<String, HarnessError> {
        let Some(mut child) = self.agent.take() else {
            return Err(HarnessError::Failed(format!(
                "agent of {} is not running",
                self.name
            )));
        };
        let pid = i32::try_from(child.id())
            .map_err(|_| HarnessError::Failed("PID out of range".into()))?;
        kill(Pid::from_raw(pid), signal)
            .map_err(|e| HarnessError::Failed(format!("signalling calico-node: {e}")))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match child.try_wait().map_err(io("waiting for calico-node"))? {
                Some(status) => return Ok(status.to_string()),
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(HarnessError::Failed(format!(
                        "calico-node of {} ignored {signal:?} for 15 s",
                        self.name
                    )));
                }
                None => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// The last lines of the agent's log.
    pub fn agent_log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.agent_log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// A plain HTTP GET to `127.0.0.1:<port><path>` inside the node's namespace.
    pub fn http_get(&self, port: u16, path: &str) -> Result<(u16, String), HarnessError> {
        let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        self.ns
            .ns()
            .run(move || -> Result<(u16, String), HarnessError> {
                let mut s = TcpStream::connect(("127.0.0.1", port))
                    .map_err(io(format!("connecting to port {port}")))?;
                s.set_read_timeout(Some(Duration::from_secs(5)))
                    .map_err(io("setting a timeout"))?;
                s.write_all(request.as_bytes())
                    .map_err(io("sending the request"))?;
                let mut resp = String::new();
                s.read_to_string(&mut resp)
                    .map_err(io("reading the response"))?;
                let code = resp
                    .split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| HarnessError::Failed(format!("bad HTTP response: {resp:?}")))?;
                let body = resp
                    .split_once("\r\n\r\n")
                    .map(|(_, b)| b.to_string())
                    .unwrap_or_default();
                Ok((code, body))
            })
            .map_err(|e| HarnessError::Failed(format!("entering the namespace: {e}")))?
    }

    /// `ip -n <node> <args>`, stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, HarnessError> {
        crate::run_checked(Command::new("ip").arg("-n").arg(self.ns.name()).args(args))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for mut child in [self.agent.take(), self.etcd.take()].into_iter().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A pod made by a direct CNI ADD: its namespace, container ID and first address.
pub struct Pod {
    pub ns: TestNetns,
    pub container_id: String,
    pub namespace: String,
    pub name: String,
    pub ip: std::net::IpAddr,
    /// The pod's IPv6 address on a dual-stack node.
    pub ip6: Option<std::net::IpAddr>,
    pub result: serde_json::Value,
}

impl Node {
    /// The CNI call a kubelet would make for pod `<namespace>/<name>`.
    pub fn cni_call(
        &self,
        command: &str,
        pod_ns: Option<&Path>,
        container_id: &str,
        namespace: &str,
        name: &str,
    ) -> crate::cni::CniCall {
        let conf = self.netconf("k8s-pod-network", "1.0.0");
        let mut call = crate::cni::CniCall::new(
            command,
            container_id,
            pod_ns,
            &self.plugin_dir(),
            conf.to_string().as_bytes(),
        );
        call.args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};K8S_POD_INFRA_CONTAINER_ID={container_id}"
        );
        call
    }

    /// Creates a pod namespace and runs `calico` ADD for it.
    pub fn add_pod(&self, namespace: &str, name: &str) -> Result<Pod, HarnessError> {
        let ns = TestNetns::new("e2e-pod")
            .map_err(|e| HarnessError::Failed(format!("creating pod namespace: {e}")))?;
        // A 64-hex container ID, as runtimes make them (derived from the pod's name).
        let hex: String = format!("{namespace}/{name}")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let container_id = format!("{hex:0>64}");
        let container_id = container_id[container_id.len() - 64..].to_string();
        let pod_ns = ns.path();
        let call = self.cni_call(
            "ADD",
            Some(pod_ns.as_path()),
            &container_id,
            namespace,
            name,
        );
        let out = crate::cni::invoke(&crate::binary("calico")?, &call, self.ns.ns())?;
        let result = out.result()?;
        let ip = result["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                HarnessError::Failed(format!("ADD result without an address: {result}"))
            })?;
        let ip6 = result["ips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["address"].as_str()?.split('/').next()?.parse().ok())
            .find(|a: &std::net::IpAddr| a.is_ipv6());
        Ok(Pod {
            ip6,
            ns,
            container_id,
            namespace: namespace.to_string(),
            name: name.to_string(),
            ip,
            result,
        })
    }

    /// Runs `calico` DEL for `pod`.
    pub fn del_pod(&self, pod: &Pod) -> Result<(), HarnessError> {
        let pod_ns = pod.ns.path();
        let call = self.cni_call(
            "DEL",
            Some(pod_ns.as_path()),
            &pod.container_id,
            &pod.namespace,
            &pod.name,
        );
        crate::cni::invoke(&crate::binary("calico")?, &call, self.ns.ns())?
            .result()
            .map(|_| ())
    }
}
