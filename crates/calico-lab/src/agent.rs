//! A node's `calico-node`: started inside the node's namespace as a daemon (own session via
//! `setsid`, stdin closed, output to a log in the state directory) so it outlives `up`, with
//! its PID recorded for `down`. Configured as Calico's node image is, through its environment.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use calico_netlink::NetNs;

use crate::error::{LabError, io};
use crate::state::{Datastore, LabRecord, Layout, NodeRecord};
use crate::sys;

/// Felix's health port (`FELIX_HEALTHPORT` default), served on the node's own loopback.
pub const HEALTH_PORT: u16 = 9099;

/// The environment Calico's node image takes, pointed at the lab's files.
fn agent_env(layout: &Layout, lab: &LabRecord, node: &NodeRecord) -> Vec<(String, String)> {
    let p = |path: std::path::PathBuf| path.display().to_string();
    let mut env = vec![
        ("NODENAME".into(), node.name.clone()),
        (
            "CALICO_IPAM_SOCKET".into(),
            p(layout.ipam_socket(&node.name)),
        ),
        // Not the host's /var/run/calico/bgp.ctl, nor /var/lib/calico/nodename.
        (
            "CALICO_BGP_STATUS_SOCKET".into(),
            p(layout.bgp_socket(&node.name)),
        ),
        (
            "CALICO_NODENAME_FILE".into(),
            p(layout.nodename_file(&node.name)),
        ),
        ("CALICO_NODE_NETNS".into(), p(sys::netns_path(&node.netns))),
        // calico-node's first-found autodetection picks eth0's address on the fabric.
        ("IP".into(), "autodetect".into()),
        ("CALICO_IPV4POOL_CIDR".into(), lab.pool.clone()),
        ("FELIX_HEALTHENABLED".into(), "true".into()),
        ("RUST_LOG".into(), "info".into()),
        // Marks the process as this lab's: `down` checks it in /proc/<pid>/environ.
        ("CALICO_LAB_DIR".into(), p(layout.dir.clone())),
    ];
    match &lab.datastore {
        Datastore::Embedded { path } => {
            env.push(("DATASTORE_TYPE".into(), "embedded".into()));
            env.push(("CALICO_DATASTORE_PATH".into(), p(path.clone())));
        }
        Datastore::Etcd { endpoints, .. } => {
            env.push(("DATASTORE_TYPE".into(), "etcdv3".into()));
            env.push(("ETCD_ENDPOINTS".into(), endpoints.clone()));
        }
    }
    env
}

/// Starts the node's agent and records its PID; returns it.
pub fn start(layout: &Layout, lab: &LabRecord, node: &NodeRecord) -> Result<u32, LabError> {
    let dir = layout.node_dir(&node.name);
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    let log = File::options()
        .create(true)
        .append(true)
        .open(layout.agent_log(&node.name))
        .map_err(io("opening the agent log"))?;
    let log2 = log.try_clone().map_err(io("cloning the agent log"))?;
    let binary = lab.bin_dir.join("calico-node");
    // `setsid` (not a process-group leader here, so it execs without forking: the PID we get
    // is calico-node's) gives the agent its own session: no terminal hang-up reaches it.
    let mut cmd = Command::new(sys::which("setsid")?);
    cmd.arg(&binary)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(agent_env(layout, lab, node))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    let ns = NetNs::open(sys::netns_path(&node.netns))
        .map_err(|e| LabError::Failed(format!("opening namespace {}: {e}", node.netns)))?;
    let child = ns
        .run(move || cmd.spawn())
        .map_err(|e| LabError::Failed(format!("entering {}: {e}", node.netns)))?
        .map_err(io(format!("starting calico-node for {}", node.name)))?;
    let mut child = child;
    let pid = child.id();
    // Until `setsid` has exec'd, /proc shows setsid: wait for calico-node to be the process
    // (so every later check by cmdline holds), or for an early exit.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !sys::is_our_process(pid, &binary, &layout.dir) {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(LabError::Failed(format!(
                "calico-node of {} exited at once ({status}); the end of {}:\n{}",
                node.name,
                layout.agent_log(&node.name).display(),
                log_tail(layout, &node.name, 30)
            )));
        }
        if std::time::Instant::now() > deadline {
            return Err(LabError::Failed(format!(
                "process {pid} never became {}",
                binary.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The Child handle is dropped without waiting: the agent is a daemon now.
    drop(child);
    std::fs::write(layout.pid_file(&node.name), format!("{pid}\n"))
        .map_err(io("recording the agent PID"))?;
    Ok(pid)
}

/// The recorded PID of the node's agent when it is alive and ours.
pub fn running_pid(layout: &Layout, lab: &LabRecord, node: &str) -> Option<u32> {
    let pid = sys::read_pid(&layout.pid_file(node))?;
    sys::is_our_process(pid, &lab.bin_dir.join("calico-node"), &layout.dir).then_some(pid)
}

/// Stops the node's agent (SIGTERM, SIGKILL after 10 s) if it runs.
pub fn stop(layout: &Layout, lab: &LabRecord, node: &str) -> Result<(), LabError> {
    if let Some(pid) = sys::read_pid(&layout.pid_file(node)) {
        sys::stop_process(
            pid,
            &lab.bin_dir.join("calico-node"),
            &layout.dir,
            Duration::from_secs(10),
        )?;
    }
    let _ = std::fs::remove_file(layout.pid_file(node));
    Ok(())
}

/// Whether the agent answers `/readiness` with 200/204 (Felix's health endpoint).
pub fn is_ready(node: &NodeRecord) -> bool {
    matches!(
        http_get(&node.netns, HEALTH_PORT, "/readiness"),
        Ok(200 | 204)
    )
}

/// A plain HTTP/1.0 GET to `127.0.0.1:<port>` inside `netns`; the status code.
pub fn http_get(netns: &str, port: u16, path: &str) -> Result<u16, LabError> {
    let ns = NetNs::open(sys::netns_path(netns))
        .map_err(|e| LabError::Failed(format!("opening namespace {netns}: {e}")))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let mut stream = ns
        .run(move || {
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))
        })
        .map_err(|e| LabError::Failed(format!("entering {netns}: {e}")))?
        .map_err(io(format!("connecting to port {port} in {netns}")))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(io("setting a timeout"))?;
    stream
        .write_all(request.as_bytes())
        .map_err(io("sending the request"))?;
    let mut resp = String::new();
    stream
        .read_to_string(&mut resp)
        .map_err(io("reading the response"))?;
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| LabError::Failed(format!("bad HTTP response: {resp:?}")))
}

/// The last `n` lines of the node's agent log.
pub fn log_tail(layout: &Layout, node: &str, n: usize) -> String {
    let text = std::fs::read_to_string(layout.agent_log(node)).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
