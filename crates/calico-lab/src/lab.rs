//! `up` and `down`: building the cluster (fabric, nodes, agents, reflectors, pods) and taking
//! away exactly what was built.
//!
//! Topology (as in Calico's walkthroughs): a fabric namespace holding the bridge `br0` (the
//! data-centre L2 network); per node a namespace whose `eth0` is one end of a veth pair created
//! inside the node namespace with its peer born straight in the fabric namespace and enslaved to
//! `br0`, so no interface ever exists in the root namespace.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{LabError, io};
use crate::state::{self, Datastore, LabRecord, Layout, NodeRecord, PodRecord};
use crate::{agent, cni, ctl, sys};

/// The fabric subnet (the seeds' node addresses).
pub const FABRIC_NET: [u8; 3] = [192, 168, 20];
/// Node N gets `192.168.20.(10+N)`.
pub const FIRST_HOST: u8 = 10;
/// Most nodes the /24 holds with that numbering.
pub const MAX_NODES: usize = 240;

/// What `up` builds.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub nodes: usize,
    pub pods_per_node: usize,
    pub pool: ipnet::Ipv4Net,
    pub route_reflectors: usize,
    pub datastore: Datastore,
}

impl UpOptions {
    pub fn validate(&self) -> Result<(), LabError> {
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(LabError::invalid(
                "--nodes",
                format!("{} (1 to {MAX_NODES})", self.nodes),
            ));
        }
        if self.pods_per_node > 100 {
            return Err(LabError::invalid(
                "--pods-per-node",
                format!("{} (0 to 100)", self.pods_per_node),
            ));
        }
        if self.route_reflectors >= self.nodes && self.route_reflectors > 0 {
            return Err(LabError::invalid(
                "--route-reflectors",
                format!(
                    "{} reflectors need at least {} nodes",
                    self.route_reflectors,
                    self.route_reflectors + 1
                ),
            ));
        }
        // Calico's default block size is /26: the pool must hold at least one block.
        if self.pool.prefix_len() > 26 {
            return Err(LabError::invalid(
                "--pool",
                format!("{} is smaller than one /26 block", self.pool),
            ));
        }
        let fabric = ipnet::Ipv4Net::new(Ipv4Addr::from([192, 168, 20, 0]), 24)
            .map_err(|e| LabError::Failed(e.to_string()))?;
        if fabric.contains(&self.pool.network()) || self.pool.contains(&fabric.network()) {
            return Err(LabError::invalid(
                "--pool",
                format!("{} overlaps the node network {fabric}", self.pool),
            ));
        }
        Ok(())
    }
}

fn node_name(i: usize) -> String {
    format!("node{i}")
}

fn node_ip(i: usize) -> Result<Ipv4Addr, LabError> {
    let host = u8::try_from(usize::from(FIRST_HOST) + i)
        .map_err(|_| LabError::invalid("--nodes", format!("node {i} is beyond the /24")))?;
    Ok(Ipv4Addr::from([
        FABRIC_NET[0],
        FABRIC_NET[1],
        FABRIC_NET[2],
        host,
    ]))
}

/// A line of progress on stderr, with the time since `start`.
pub fn progress(start: Instant, msg: &str) {
    eprintln!("[{:6.1}s] {msg}", start.elapsed().as_secs_f64());
}

/// Refuses when anything of a lab with this layout exists.
pub fn ensure_no_lab(layout: &Layout) -> Result<(), LabError> {
    let mut what = Vec::new();
    if layout.record().exists() {
        what.push(format!("{} exists", layout.record().display()));
    }
    let ns = sys::lab_namespaces(&layout.prefix)?;
    if !ns.is_empty() {
        what.push(format!(
            "{} network namespaces named {}*",
            ns.len(),
            layout.prefix
        ));
    }
    if what.is_empty() {
        Ok(())
    } else {
        Err(LabError::AlreadyRunning {
            dir: layout.dir.display().to_string(),
            what: what.join(", "),
        })
    }
}

/// Builds the lab. The record is saved as soon as there is something to clean up, so `down`
/// after a failure or a killed `up` finds everything.
pub fn up(layout: &Layout, opts: &UpOptions, start: Instant) -> Result<LabRecord, LabError> {
    opts.validate()?;
    sys::require_root()?;
    for tool in ["ip", "setsid"] {
        sys::which(tool)?;
    }
    let bin_dir = sys::bin_dir()?;
    sys::check_binaries(&bin_dir)?;
    ensure_no_lab(layout)?;
    state::create_dir(layout)?;
    let cni_dir = layout.cni_dir();
    std::fs::create_dir_all(&cni_dir).map_err(io("creating the CNI plugin directory"))?;
    for plugin in ["calico", "calico-ipam"] {
        let link = cni_dir.join(plugin);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(bin_dir.join(plugin), &link)
            .map_err(io(format!("linking {}", link.display())))?;
    }
    let mut lab = LabRecord {
        prefix: layout.prefix.clone(),
        pool: opts.pool.to_string(),
        datastore: opts.datastore.clone(),
        bin_dir,
        nodes: Vec::new(),
        pods: Vec::new(),
        namespaces: Vec::new(),
    };
    for i in 1..=opts.nodes {
        let name = node_name(i);
        lab.nodes.push(NodeRecord {
            netns: layout.node_netns(&name),
            ip: node_ip(i)?.to_string(),
            route_reflector: i <= opts.route_reflectors,
            name,
        });
    }
    lab.save(layout)?;

    build_fabric(layout, &lab)?;
    progress(
        start,
        &format!(
            "fabric {} with bridge br0 and {} node namespaces on 192.168.20.0/24",
            layout.fabric_netns(),
            lab.nodes.len()
        ),
    );

    if let Datastore::Etcd { managed: true, .. } = &lab.datastore {
        let pid = crate::etcd::start(layout)?;
        progress(
            start,
            &format!("etcd {pid} serving {} in the fabric", crate::etcd::ENDPOINT),
        );
    }

    if opts.route_reflectors > 0 {
        // Calico's route-reflector recipe: mesh off, every non-reflector peers with the
        // reflectors, and the reflectors with each other.
        ctl::apply_yaml(
            &lab,
            &layout.dir,
            "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata:\n  name: default\nspec:\n  nodeToNodeMeshEnabled: false\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: peer-with-route-reflectors\nspec:\n  nodeSelector: \"!has(route-reflector)\"\n  peerSelector: has(route-reflector)\n---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: route-reflector-mesh\nspec:\n  nodeSelector: has(route-reflector)\n  peerSelector: has(route-reflector)\n",
        )?;
    }
    start_agents(layout, &lab, start)?;

    if opts.route_reflectors > 0 {
        for node in lab.nodes.iter().filter(|n| n.route_reflector) {
            ctl::run(
                &lab,
                &["label", "nodes", &node.name, "route-reflector=true"],
            )?;
            // One cluster ID shared by the reflectors (Calico's docs use 244.0.0.1).
            ctl::run(
                &lab,
                &[
                    "patch",
                    "node",
                    &node.name,
                    "-p",
                    r#"{"spec":{"bgp":{"routeReflectorClusterID":"244.0.0.1"}}}"#,
                ],
            )?;
        }
        progress(
            start,
            &format!(
                "{} route reflector(s) labelled, mesh off",
                opts.route_reflectors
            ),
        );
    }

    // The `default` namespace, as Kubernetes always has it (its kns./ksa. profiles).
    crate::k8s::add_namespace(layout, &mut lab, "default", &Default::default())?;
    lab.save(layout)?;
    let pods = create_pods(layout, &lab, opts.pods_per_node)?;
    lab.pods = pods;
    lab.save(layout)?;
    progress(start, &format!("{} pods created via CNI", lab.pods.len()));
    Ok(lab)
}

fn build_fabric(layout: &Layout, lab: &LabRecord) -> Result<(), LabError> {
    let fabric = layout.fabric_netns();
    sys::netns_add(&fabric)?;
    sys::ip_in(&fabric, &["link", "add", "br0", "type", "bridge"]).map_err(|e| {
        LabError::KernelFeature {
            what: "create a bridge".into(),
            module: "bridge".into(),
            detail: e.to_string(),
        }
    })?;
    sys::ip_in(&fabric, &["link", "set", "br0", "up"])?;
    for (i, node) in lab.nodes.iter().enumerate() {
        sys::netns_add(&node.netns)?;
        let port = format!("port{}", i + 1);
        sys::ip_in(
            &node.netns,
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns", &fabric,
            ],
        )
        .map_err(|e| LabError::KernelFeature {
            what: "create a veth pair".into(),
            module: "veth".into(),
            detail: e.to_string(),
        })?;
        sys::ip_in(&fabric, &["link", "set", &port, "master", "br0"])?;
        sys::ip_in(&fabric, &["link", "set", &port, "up"])?;
        let cidr = format!("{}/24", node.ip);
        sys::ip_in(&node.netns, &["addr", "add", &cidr, "dev", "eth0"])?;
        sys::ip_in(&node.netns, &["link", "set", "eth0", "up"])?;
        // A default route, as every real host has: the node answers a pod's ARP for
        // 169.254.1.1 by proxy ARP only with a unicast route to it through another interface.
        sys::ip_in(&node.netns, &["route", "add", "default", "dev", "eth0"])?;
    }
    pin_neighbours(lab)
}

/// Permanent ARP entries for every other node on every node's `eth0`.
///
/// The kernel's ARP table is one table for all network namespaces, and its size limit
/// (`net.ipv4.neigh.default.gc_thresh3`, 1024 by default) is a host-wide setting the lab may
/// not change. A full mesh needs N*(N-1) node-to-node entries (2450 at 50 nodes): beyond ~30
/// nodes the table overflows ("neighbor table overflow!"), SYNs and pod traffic are dropped and
/// BGP crawls. Permanent entries are exempt from that limit (Linux 4.20, "neighbor: Improve
/// garbage collection"), so the lab pins them, as hosts with static ARP do; the remaining
/// dynamic entries (pods and their gateway) stay far below the limit.
fn pin_neighbours(lab: &LabRecord) -> Result<(), LabError> {
    let mut macs = Vec::with_capacity(lab.nodes.len());
    for node in &lab.nodes {
        let out = sys::ip_in(&node.netns, &["-j", "link", "show", "eth0"])?;
        let json: serde_json::Value = serde_json::from_str(&out)
            .map_err(|e| LabError::Failed(format!("`ip -j link` output is not JSON: {e}")))?;
        let mac = json[0]["address"]
            .as_str()
            .ok_or_else(|| LabError::Failed(format!("no MAC for eth0 of {}", node.name)))?;
        macs.push(mac.to_string());
    }
    for node in &lab.nodes {
        let batch: String = lab
            .nodes
            .iter()
            .zip(&macs)
            .filter(|(other, _)| other.name != node.name)
            .map(|(other, mac)| {
                format!(
                    "neigh replace {} lladdr {mac} dev eth0 nud permanent\n",
                    other.ip
                )
            })
            .collect();
        sys::ip_batch(&node.netns, &batch)?;
    }
    Ok(())
}

/// Starts every agent and waits until all are ready. The first node starts alone (it creates
/// the default IPPool and cluster information), the rest together.
fn start_agents(layout: &Layout, lab: &LabRecord, start: Instant) -> Result<(), LabError> {
    let timeout = Duration::from_secs(60 + 2 * lab.nodes.len() as u64);
    let (first, rest) = lab
        .nodes
        .split_first()
        .ok_or_else(|| LabError::Failed("no nodes".into()))?;
    agent::start(layout, lab, first)?;
    wait_ready(layout, lab, std::slice::from_ref(first), timeout, start)?;
    for node in rest {
        agent::start(layout, lab, node)?;
    }
    wait_ready(layout, lab, rest, timeout, start)?;
    progress(
        start,
        &format!("{} calico-node agents ready", lab.nodes.len()),
    );
    Ok(())
}

fn wait_ready(
    layout: &Layout,
    lab: &LabRecord,
    nodes: &[NodeRecord],
    timeout: Duration,
    start: Instant,
) -> Result<(), LabError> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<&NodeRecord> = nodes.iter().collect();
    let mut last_report = Instant::now();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for node in pending {
            if agent::running_pid(layout, lab, &node.name).is_none() {
                return Err(LabError::Failed(format!(
                    "calico-node of {} exited; the end of {}:\n{}",
                    node.name,
                    layout.agent_log(&node.name).display(),
                    agent::log_tail(layout, &node.name, 30)
                )));
            }
            if !agent::is_ready(node) {
                still.push(node);
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let first = pending[0];
            return Err(LabError::Failed(format!(
                "{} agent(s) not ready after {timeout:?} ({}, ...); the end of {}:\n{}",
                pending.len(),
                first.name,
                layout.agent_log(&first.name).display(),
                agent::log_tail(layout, &first.name, 30)
            )));
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            progress(
                start,
                &format!("waiting for {} agent(s) to be ready", pending.len()),
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// `pods_per_node` pods on every node, `default/<node>-pod<j>`; nodes in parallel (a few at a
/// time), pods of one node one after the other, as one kubelet would.
fn create_pods(
    layout: &Layout,
    lab: &LabRecord,
    pods_per_node: usize,
) -> Result<Vec<PodRecord>, LabError> {
    let mut all = Vec::new();
    for chunk in lab.nodes.chunks(8) {
        let results: Vec<Result<Vec<PodRecord>, LabError>> = std::thread::scope(|s| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|node| {
                    s.spawn(move || {
                        (1..=pods_per_node)
                            .map(|j| {
                                let pod = cni::add_pod(
                                    layout,
                                    lab,
                                    &node.name,
                                    "default",
                                    &format!("{}-pod{j}", node.name),
                                )?;
                                crate::k8s::label_pod(layout, lab, &pod)?;
                                Ok(pod)
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(LabError::Failed("pod thread panicked".into())))
                })
                .collect()
        });
        for r in results {
            all.extend(r?);
        }
    }
    Ok(all)
}

/// Takes the lab away: agents (verified PIDs), namespaces with the lab's prefix, the files of
/// the state directory. Works without `lab.json` (a crashed `up`) and when nothing is left.
pub fn down(layout: &Layout) -> Result<Vec<String>, LabError> {
    sys::require_root()?;
    let mut done = Vec::new();
    let record = LabRecord::load(layout).ok();
    let binary = match &record {
        Some(lab) => lab.bin_dir.join("calico-node"),
        None => sys::bin_dir()?.join("calico-node"),
    };
    // Agents: every PID file under nodes/ (those of a half-built lab too).
    let nodes_dir = layout.dir.join("nodes");
    if let Ok(entries) = std::fs::read_dir(&nodes_dir) {
        for e in entries.flatten() {
            let pid_file = e.path().join("calico-node.pid");
            if let Some(pid) = sys::read_pid(&pid_file) {
                if sys::is_our_process(pid, &binary, &layout.dir) {
                    sys::stop_process(pid, &binary, &layout.dir, Duration::from_secs(10))?;
                    done.push(format!("stopped calico-node {pid}"));
                }
                let _ = std::fs::remove_file(&pid_file);
            }
        }
    }
    // Agents started but not yet recorded when `up` died: found by their marker.
    for pid in sys::our_processes(&binary, &layout.dir) {
        sys::stop_process(pid, &binary, &layout.dir, Duration::from_secs(10))?;
        done.push(format!("stopped calico-node {pid} (unrecorded)"));
    }
    for pid in crate::etcd::stop(layout)? {
        done.push(format!("stopped etcd {pid}"));
    }
    // Pods first, nodes, then the fabric (deleting a namespace takes its veth ends along).
    let mut namespaces = sys::lab_namespaces(&layout.prefix)?;
    let fabric = layout.fabric_netns();
    let pod_prefix = format!("{}pod.", layout.prefix);
    namespaces.sort_by_key(|n| (!n.starts_with(&pod_prefix), *n == fabric));
    for ns in namespaces {
        sys::netns_del(&ns)?;
        done.push(format!("deleted namespace {ns}"));
    }
    if state::is_lab_dir(&layout.dir) {
        remove_state(layout)?;
        done.push(format!("removed {}", layout.dir.display()));
    }
    Ok(done)
}

/// Removes the files the lab writes, then the directory if it is empty.
fn remove_state(layout: &Layout) -> Result<(), LabError> {
    let dir = &layout.dir;
    let known = |name: &str| {
        name == "lab.json"
            || name == "lab.json.tmp"
            || name.starts_with("calico.db")
            || name.starts_with("apply-")
            || name == state::MARKER
    };
    for sub in ["nodes", "cni", "etcd"] {
        let p: PathBuf = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).map_err(io(format!("removing {}", p.display())))?;
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if known(&name) && name != state::MARKER {
                std::fs::remove_file(e.path())
                    .map_err(io(format!("removing {}", e.path().display())))?;
            }
        }
    }
    std::fs::remove_file(dir.join(state::MARKER)).map_err(io("removing the state marker"))?;
    // Only when empty: a user's own files in a custom CALICO_LAB_DIR stay.
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> UpOptions {
        UpOptions {
            nodes: 4,
            pods_per_node: 2,
            pool: "10.244.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
            route_reflectors: 0,
            datastore: Datastore::Embedded {
                path: PathBuf::from("/x"),
            },
        }
    }

    #[test]
    fn options_are_checked() {
        assert!(opts().validate().is_ok());
        let bad = [
            UpOptions { nodes: 0, ..opts() },
            UpOptions {
                nodes: 241,
                ..opts()
            },
            UpOptions {
                route_reflectors: 4,
                ..opts()
            },
            UpOptions {
                pool: "10.244.0.0/27".parse().unwrap_or_else(|_| unreachable!()),
                ..opts()
            },
            UpOptions {
                pool: "192.168.0.0/16".parse().unwrap_or_else(|_| unreachable!()),
                ..opts()
            },
        ];
        for o in bad {
            assert!(o.validate().is_err(), "{o:?}");
        }
    }

    #[test]
    fn node_addresses_follow_the_seeds() {
        assert_eq!(node_ip(1).ok(), Some(Ipv4Addr::new(192, 168, 20, 11)));
        assert_eq!(node_ip(240).ok(), Some(Ipv4Addr::new(192, 168, 20, 250)));
        assert!(node_ip(246).is_err());
    }
}
