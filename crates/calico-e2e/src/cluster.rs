//! A small cluster for the BGP scenarios: nodes `node1..nodeN` on `10.200.0.<i>/24`, all on
//! one [`Fabric`] and one datastore file, plus the calicoctl calls and waits the scenarios
//! share.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::HarnessError;
use crate::fabric::Fabric;
use crate::node::Node;

/// Nodes on one fabric sharing one datastore. Drop order: nodes (agents stopped) before the
/// fabric.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub fabric: Fabric,
}

impl Cluster {
    /// `n` nodes attached to a new fabric, agents not started yet (so a scenario can apply
    /// resources or change the nodes first).
    pub fn new(n: usize) -> Result<Cluster, HarnessError> {
        let mut fabric = Fabric::new()?;
        let mut nodes: Vec<Node> = Vec::with_capacity(n);
        for i in 1..=n {
            let store = nodes.first().map(|f| f.store_path.clone());
            let node = Node::new(
                &format!("node{i}"),
                &format!("10.200.0.{i}/24"),
                store.as_deref(),
            )?;
            fabric.attach(&node)?;
            nodes.push(node);
        }
        Ok(Cluster { nodes, fabric })
    }

    /// Starts every agent.
    pub fn start(&mut self) -> Result<(), HarnessError> {
        for n in &mut self.nodes {
            n.start_agent()?;
        }
        Ok(())
    }

    /// The shared datastore file.
    pub fn store(&self) -> &Path {
        &self.nodes[0].store_path
    }

    /// The end of every agent's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}:\n{}", n.name, n.agent_log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs the workspace's calicoctl against the embedded datastore at `store`.
pub fn calicoctl(store: &Path, args: &[&str]) -> Result<String, HarnessError> {
    let out = Command::new(crate::binary("calicoctl")?)
        .env_clear()
        .env("DATASTORE_TYPE", "embedded")
        .env("CALICO_DATASTORE_PATH", store)
        .args(args)
        .output()
        .map_err(|e| HarnessError::Io("running calicoctl".into(), e))?;
    if !out.status.success() {
        return Err(HarnessError::Command(
            format!("calicoctl {}", args.join(" ")),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `calicoctl apply -f` of `yaml`.
pub fn calicoctl_apply(store: &Path, yaml: &str) -> Result<(), HarnessError> {
    let dir = tempfile::tempdir().map_err(|e| HarnessError::Io("temp dir".into(), e))?;
    let file = dir.path().join("resources.yaml");
    std::fs::write(&file, yaml).map_err(|e| HarnessError::Io("writing resources".into(), e))?;
    calicoctl(store, &["apply", "-f", &file.display().to_string()]).map(|_| ())
}

/// The `proto bgp` route of `node` covering `ip` (IPv4 or IPv6), as (prefix, gateway).
pub fn bgp_route_to(node: &Node, ip: IpAddr) -> Option<(IpNet, IpAddr)> {
    crate::bgp_peers::fib_routes(node.ns.name())
        .ok()?
        .into_iter()
        .find(|r| r.protocol == "bgp" && r.dst.contains(&ip))
        .and_then(|r| Some((r.dst, r.gateway?)))
}

/// Polls `check` every 100 ms until it holds; panics after `timeout` with `what` and `log()`.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> bool,
    log: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "{what}\n{}", log());
        std::thread::sleep(Duration::from_millis(100));
    }
}
