//! The command line: `up`, `down`, `status`, `check`, `exec`, `restart`, `pod`, `namespace`,
//! `apply`, and what each prints.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::error::LabError;
use crate::lab::{UpOptions, progress};
use crate::state::{Datastore, LabRecord, Layout};
use crate::{agent, cni, ctl, k8s, lab, probe, routes, sys};

/// A multi-node Calico cluster in network namespaces.
#[derive(Parser, Debug)]
#[command(
    name = "calico-lab",
    version,
    after_help = "Examples (as root):\n  \
calico-lab up                                   4 nodes, mesh, 2 pods each\n  \
calico-lab up --nodes 50 --route-reflectors 2   reflectors instead of the mesh\n  \
calico-lab up --datastore etcd                  an etcd run by the lab instead of the embedded store\n  \
calico-lab status\n  \
calico-lab exec node1 -- ip route\n  \
calico-lab namespace add dev --labels team=a\n  \
calico-lab pod add node2 web --namespace dev --labels app=web\n  \
calico-lab apply -f policy.yaml\n  \
calico-lab down\n\n\
State lives in /run/calico-lab (CALICO_LAB_DIR); namespaces are named calico-lab-* (CALICO_LAB_PREFIX)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Build the cluster, wait for BGP, print routes and the connectivity matrix.
    Up(UpArgs),
    /// Remove every namespace, process and file of the lab (idempotent).
    Down,
    /// Nodes (agent, memory, sessions), BGP sessions per node, pods with addresses.
    Status {
        /// Print every node's `calicoctl node status` table (the default up to 8 nodes).
        #[arg(long)]
        sessions: bool,
    },
    /// Wait for BGP convergence again and print the connectivity matrix.
    Check {
        /// Seconds to wait for convergence.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Run a command in a node's or a pod's namespace: `exec node1 -- ip route`.
    Exec {
        /// A node (`node1`), a pod (`node1-pod1` or `<namespace>/<pod>`), or `fabric`.
        target: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Restart a node's calico-node (SIGTERM, or SIGKILL with --kill).
    Restart {
        node: String,
        #[arg(long)]
        kill: bool,
    },
    /// Add or delete a pod.
    #[command(subcommand)]
    Pod(PodCmd),
    /// Add or delete a Kubernetes-style namespace (its kns.<name> Profile).
    #[command(subcommand)]
    Namespace(NsCmd),
    /// Hand resources (policies, ...) to the lab's datastore: `apply -f policy.yaml`.
    Apply {
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    #[arg(long, default_value_t = 2)]
    pods_per_node: usize,
    /// The IPv4 pool (/26 blocks).
    #[arg(long, default_value = "10.244.0.0/16")]
    pool: String,
    /// K nodes become route reflectors; the node-to-node mesh is turned off.
    #[arg(long, default_value_t = 0)]
    route_reflectors: usize,
    /// `embedded` (one SQLite file shared by the nodes) or `etcd`.
    #[arg(long, default_value = "embedded")]
    datastore: String,
    /// With --datastore etcd: an etcd of yours, reachable from the node namespaces (the nodes
    /// live on 192.168.20.0/24, not on the host's loopback). Without it the lab runs its own
    /// etcd in the fabric namespace at http://192.168.20.2:2379.
    #[arg(long)]
    etcd_endpoints: Option<String>,
    /// Seconds to wait for BGP convergence.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

#[derive(Subcommand, Debug)]
enum PodCmd {
    /// `pod add <node> <name> [--namespace ns] [--labels k=v,...] [--service-account sa]`
    Add {
        node: String,
        name: String,
        #[arg(long, default_value = "default")]
        namespace: String,
        #[arg(long, default_value = "")]
        labels: String,
        #[arg(long, default_value = "default")]
        service_account: String,
    },
    /// `pod del <name> [--namespace ns]` (or `<namespace>/<name>`).
    Del {
        name: String,
        #[arg(long)]
        namespace: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum NsCmd {
    Add {
        name: String,
        #[arg(long, default_value = "")]
        labels: String,
    },
    Del {
        name: String,
    },
}

pub fn run() -> Result<ExitCode, LabError> {
    let cli = Cli::parse();
    let layout = Layout::from_env()?;
    match cli.command {
        Cmd::Up(args) => up(&layout, args),
        Cmd::Down => {
            for line in lab::down(&layout)? {
                println!("{line}");
            }
            println!("lab in {} is down", layout.dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { sessions } => status(&layout, sessions),
        Cmd::Check { timeout } => {
            let lab = load(&layout)?;
            check(&lab, Duration::from_secs(timeout), Instant::now())
        }
        Cmd::Exec { target, command } => exec(&layout, &target, &command),
        Cmd::Restart { node, kill } => restart(&layout, &node, kill),
        Cmd::Pod(cmd) => pod(&layout, cmd),
        Cmd::Namespace(cmd) => namespace(&layout, cmd),
        Cmd::Apply { file } => {
            let lab = load(&layout)?;
            if !file.is_file() {
                return Err(LabError::invalid(
                    "-f",
                    format!("{} is not a file", file.display()),
                ));
            }
            print!("{}", ctl::apply_file(&lab, &file)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(layout: &Layout) -> Result<LabRecord, LabError> {
    sys::require_root()?;
    LabRecord::load(layout)
}

fn up(layout: &Layout, args: UpArgs) -> Result<ExitCode, LabError> {
    let start = Instant::now();
    let pool: ipnet::Ipv4Net = args
        .pool
        .parse()
        .map_err(|_| LabError::invalid("--pool", format!("{:?} is not an IPv4 CIDR", args.pool)))?;
    let datastore = match (args.datastore.as_str(), args.etcd_endpoints) {
        ("embedded", None) => Datastore::Embedded {
            path: layout.store(),
        },
        ("embedded", Some(_)) => {
            return Err(LabError::invalid(
                "--etcd-endpoints",
                "only with --datastore etcd",
            ));
        }
        ("etcd", None) => Datastore::Etcd {
            endpoints: crate::etcd::ENDPOINT.to_string(),
            managed: true,
        },
        ("etcd", Some(endpoints)) if !endpoints.trim().is_empty() => Datastore::Etcd {
            endpoints,
            managed: false,
        },
        ("etcd", Some(_)) => {
            return Err(LabError::invalid("--etcd-endpoints", "empty"));
        }
        (other, _) => {
            return Err(LabError::invalid(
                "--datastore",
                format!("{other:?} (embedded or etcd)"),
            ));
        }
    };
    let opts = UpOptions {
        nodes: args.nodes,
        pods_per_node: args.pods_per_node,
        pool: pool.trunc(),
        route_reflectors: args.route_reflectors,
        datastore,
    };
    let lab = match lab::up(layout, &opts, start) {
        Ok(lab) => lab,
        Err(e @ (LabError::AlreadyRunning { .. } | LabError::NotRoot)) => return Err(e),
        Err(e) => {
            return Err(LabError::Failed(format!(
                "{e}\nthe half-built lab stays for inspection: `calico-lab down` removes it"
            )));
        }
    };
    let code = check(&lab, Duration::from_secs(args.timeout), start)?;
    println!();
    println!("Look further:");
    println!("  calico-lab status                         nodes, BGP sessions, pods");
    println!("  calico-lab exec node1 -- ip route         any command in a node");
    if let Some(p) = lab.pods.get(1).or(lab.pods.first()) {
        let to = lab.pods.last().map(|q| q.ip.as_str()).unwrap_or("");
        println!("  calico-lab exec {} -- busybox ping -c 2 {to}", p.name);
    }
    println!("  calico-lab apply -f policy.yaml           hand resources to the cluster");
    println!("  calico-lab down                           remove everything");
    Ok(code)
}

/// Convergence, routes per node, the matrix; exit 1 when the matrix is incomplete.
fn check(lab: &LabRecord, timeout: Duration, start: Instant) -> Result<ExitCode, LabError> {
    let took = routes::wait_converged(lab, timeout, start)?;
    progress(
        start,
        &format!(
            "BGP converged: every node has a route to every other node's block ({:.1}s)",
            took.as_secs_f64()
        ),
    );
    let shown = if lab.nodes.len() <= 8 {
        lab.nodes.len()
    } else {
        3
    };
    for node in &lab.nodes[..shown] {
        println!();
        println!(
            "{} ({}{}) $ ip route",
            node.name,
            node.ip,
            if node.route_reflector {
                ", route reflector"
            } else {
                ""
            }
        );
        print!("{}", sys::ip_in(&node.netns, &["-4", "route"])?);
    }
    if shown < lab.nodes.len() {
        println!(
            "\n... {} more nodes: `calico-lab exec <node> -- ip route`",
            lab.nodes.len() - shown
        );
    }
    if lab.pods.len() < 2 {
        println!("\nfewer than two pods: no connectivity matrix");
        return Ok(ExitCode::SUCCESS);
    }
    let m = probe::probe(&lab.pods, 10, Duration::from_millis(300))?;
    println!();
    println!("Pod-to-pod connectivity:");
    print!("{}", probe::render(&lab.pods, &m));
    progress(start, "done");
    Ok(if m.complete() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// (established, configured) peers in a `calicoctl node status` table.
fn count_sessions(table: &str) -> (usize, usize) {
    let rows: Vec<&str> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.contains("PEER ADDRESS"))
        .collect();
    let up = rows.iter().filter(|l| l.contains("Established")).count();
    (up, rows.len())
}

fn status(layout: &Layout, all_sessions: bool) -> Result<ExitCode, LabError> {
    let lab = load(layout)?;
    println!(
        "lab in {} (namespaces {}*), pool {}, datastore {}",
        layout.dir.display(),
        lab.prefix,
        lab.pool,
        match &lab.datastore {
            Datastore::Embedded { path } => format!("embedded {}", path.display()),
            Datastore::Etcd { endpoints, managed } => format!(
                "etcd {endpoints}{}",
                if *managed { " (run by the lab)" } else { "" }
            ),
        }
    );
    println!();
    println!(
        "{:<10} {:<16} {:<16} {:>8} {:>10}  {:<6} BGP SESSIONS",
        "NODE", "ADDRESS", "ROLE", "PID", "RSS", "READY"
    );
    let mut total_rss = 0;
    let mut tables = Vec::new();
    for n in &lab.nodes {
        let table = ctl::node_status(&lab, &layout.bgp_socket(&n.name));
        let sessions = match &table {
            Ok(t) => {
                let (up, all) = count_sessions(t);
                format!("{up}/{all} Established")
            }
            Err(_) => "-".to_string(),
        };
        let pid = agent::running_pid(layout, &lab, &n.name);
        let rss = pid.and_then(sys::rss_kib);
        total_rss += rss.unwrap_or(0);
        println!(
            "{:<10} {:<16} {:<16} {:>8} {:>10}  {:<6} {sessions}",
            n.name,
            n.ip,
            if n.route_reflector {
                "route-reflector"
            } else {
                "node"
            },
            pid.map(|p| p.to_string())
                .unwrap_or_else(|| "stopped".into()),
            rss.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                .unwrap_or_default(),
            if pid.is_some() && agent::is_ready(n) {
                "yes"
            } else {
                "no"
            }
        );
        tables.push(table);
    }
    println!("total agent RSS {:.1} MiB", total_rss as f64 / 1024.0);
    if all_sessions || lab.nodes.len() <= 8 {
        for (n, table) in lab.nodes.iter().zip(tables) {
            println!();
            println!("{} $ calicoctl node status", n.name);
            match table {
                Ok(text) => print!("{text}"),
                Err(e) => println!("  (no status: {e})"),
            }
        }
    } else {
        println!("(`calico-lab status --sessions` prints every node's peer table)");
    }
    println!();
    println!(
        "{:<12} {:<24} {:<10} {:<16} {:<16}",
        "NAMESPACE", "POD", "NODE", "IP", "HOST IFACE"
    );
    for p in &lab.pods {
        println!(
            "{:<12} {:<24} {:<10} {:<16} {:<16}",
            p.namespace, p.name, p.node, p.ip, p.host_iface
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn exec(layout: &Layout, target: &str, command: &[String]) -> Result<ExitCode, LabError> {
    let lab = load(layout)?;
    let netns = if target == "fabric" {
        layout.fabric_netns()
    } else if let Ok(node) = lab.node(target) {
        node.netns.clone()
    } else if let Some(pod) = lab.find_pod(target) {
        pod.netns.clone()
    } else {
        return Err(LabError::invalid(
            "exec target",
            format!("{target:?} is neither a node, a pod (name or namespace/name) nor `fabric`"),
        ));
    };
    let status = Command::new("ip")
        .args(["netns", "exec", &netns])
        .args(command)
        .status()
        .map_err(crate::error::io("running ip netns exec"))?;
    Ok(ExitCode::from(
        u8::try_from(status.code().unwrap_or(1)).unwrap_or(1),
    ))
}

fn restart(layout: &Layout, node: &str, kill: bool) -> Result<ExitCode, LabError> {
    let lab = load(layout)?;
    let rec = lab.node(node)?.clone();
    let start = Instant::now();
    if let Some(pid) = agent::running_pid(layout, &lab, node) {
        if kill {
            let raw =
                i32::try_from(pid).map_err(|_| LabError::Failed("PID out of range".into()))?;
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(raw),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        agent::stop(layout, &lab, node)?;
        progress(start, &format!("calico-node {pid} of {node} stopped"));
    }
    let pid = agent::start(layout, &lab, &rec)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !agent::is_ready(&rec) {
        if agent::running_pid(layout, &lab, node).is_none() || Instant::now() > deadline {
            return Err(LabError::Failed(format!(
                "calico-node of {node} did not come back; the end of its log:\n{}",
                agent::log_tail(layout, node, 30)
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    progress(start, &format!("calico-node {pid} of {node} ready"));
    Ok(ExitCode::SUCCESS)
}

fn pod(layout: &Layout, cmd: PodCmd) -> Result<ExitCode, LabError> {
    let mut lab = load(layout)?;
    match cmd {
        PodCmd::Add {
            node,
            name,
            namespace,
            labels,
            service_account,
        } => {
            let labels: BTreeMap<String, String> = k8s::parse_labels(&labels)?;
            let pod = k8s::add_pod(
                layout,
                &lab,
                &node,
                &namespace,
                &name,
                labels,
                &service_account,
            )?;
            println!(
                "pod {}/{} on {}: {} (host side {}, namespace {})",
                pod.namespace, pod.name, pod.node, pod.ip, pod.host_iface, pod.netns
            );
            lab.pods.push(pod);
            lab.save(layout)?;
        }
        PodCmd::Del { name, namespace } => {
            let spec = match namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name,
            };
            let pod = lab.find_pod(&spec).cloned().ok_or_else(|| {
                LabError::invalid(
                    "pod",
                    format!("{spec:?} not found (or ambiguous: use <namespace>/<name>)"),
                )
            })?;
            cni::del_pod(layout, &lab, &pod)?;
            lab.pods.retain(|p| p != &pod);
            lab.save(layout)?;
            println!("pod {}/{} deleted", pod.namespace, pod.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn namespace(layout: &Layout, cmd: NsCmd) -> Result<ExitCode, LabError> {
    let mut lab = load(layout)?;
    match cmd {
        NsCmd::Add { name, labels } => {
            let labels = k8s::parse_labels(&labels)?;
            k8s::add_namespace(layout, &mut lab, &name, &labels)?;
            lab.save(layout)?;
            println!("namespace {name}: profile kns.{name} written");
        }
        NsCmd::Del { name } => {
            k8s::del_namespace(&mut lab, &name)?;
            lab.save(layout)?;
            println!("namespace {name}: profile kns.{name} deleted");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_counted_from_the_peer_table() {
        let table = "Calico process is running.\n\nIPv4 BGP status\n\
+---------------+-------------------+-------+----------+-------------+\n\
| PEER ADDRESS  | PEER TYPE         | STATE | SINCE    | INFO        |\n\
+---------------+-------------------+-------+----------+-------------+\n\
| 192.168.20.12 | node-to-node mesh | up    | 19:49:04 | Established |\n\
| 192.168.20.13 | node-to-node mesh | start | 19:49:04 | Connect     |\n\
+---------------+-------------------+-------+----------+-------------+\n";
        assert_eq!(count_sessions(table), (1, 2));
        assert_eq!(count_sessions("No IPv4 peers found.\n"), (0, 0));
    }
}
