//! Network-policy scenarios on a real two-node cluster: namespaces `x`, `y`, `z` with pods
//! `a`, `b`, `c` each (the layout of Kubernetes' network-policy e2e suite, `anchors.md` §4),
//! spread over both nodes, every pod serving TCP and UDP on ports 80 and 81.
//!
//! The expected matrix is never written by hand: it is what `calico-policy-eval` (the
//! reference evaluator) decides for the resources actually stored in the datastore, read back
//! with `calicoctl get`. So a scenario checks the whole chain (calicoctl → datastore →
//! calculation graph → nftables → kernel) against Calico's semantics.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use calico_policy_eval::{Packet, PolicySet, Resources, Verdict, evaluate};

use crate::HarnessError;
use crate::cluster::{Cluster, calicoctl, calicoctl_apply};
use crate::node::Pod;
use crate::reach::{Cell, Matrix, Proto, Servers, Target};

pub mod host;

/// The namespaces and pod names of the upstream suite.
pub const NAMESPACES: [&str; 3] = ["x", "y", "z"];
pub const PODS: [&str; 3] = ["a", "b", "c"];
/// The ports every pod serves.
pub const PORTS: [u16; 2] = [80, 81];

/// Calico's WorkloadEndpoint name for a Kubernetes pod: `<node>-k8s-<pod>-eth0`, each `-`
/// inside a part doubled (`names.WorkloadEndpointIdentifiers.CalculateWorkloadEndpointName`).
pub fn wep_name(node: &str, pod: &str) -> String {
    let esc = |s: &str| s.replace('-', "--");
    format!("{}-k8s-{}-eth0", esc(node), esc(pod))
}

/// One pod of the scenario cluster, with its servers running.
pub struct ScenarioPod {
    /// `<namespace>/<name>`, the key the evaluator uses.
    pub key: String,
    pub node: String,
    pub pod: Pod,
    _servers: Servers,
}

/// The cluster, its pods and their servers. Drop order: pods (servers stopped, namespaces
/// deleted) before the cluster.
pub struct PolicyCluster {
    pub pods: Vec<ScenarioPod>,
    pub cluster: Cluster,
}

impl PolicyCluster {
    /// Two nodes; namespaces x, y, z (labelled `ns=<name>`) created as Kubernetes Namespaces
    /// through calicoctl; pods a, b, c in each (labelled `pod=<name>`), alternating between
    /// the nodes; then waits until every pod reaches every other one (no policy yet).
    pub fn start() -> Result<PolicyCluster, HarnessError> {
        let mut cluster = Cluster::new(2)?;
        cluster.start()?;
        for n in &mut cluster.nodes {
            n.wait_ready(Duration::from_secs(30))?;
        }
        let store = cluster.store().to_path_buf();
        let mut yaml = String::new();
        for ns in NAMESPACES {
            yaml.push_str(&format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: \"{ns}\"\n  labels:\n    ns: \"{ns}\"\n---\n"
            ));
        }
        calicoctl_apply(&store, &yaml)?;
        let mut pods = Vec::new();
        let mut i = 0usize;
        for ns in NAMESPACES {
            for name in PODS {
                let node = &cluster.nodes[i % cluster.nodes.len()];
                i += 1;
                let pod = node.add_pod(ns, name)?;
                let patch = serde_json::json!({"metadata": {"labels": {
                    "pod": name,
                    "projectcalico.org/namespace": ns,
                    "projectcalico.org/orchestrator": "k8s",
                }}});
                calicoctl(
                    &store,
                    &[
                        "patch",
                        "workloadendpoint",
                        &wep_name(&node.name, name),
                        "-n",
                        ns,
                        "-p",
                        &patch.to_string(),
                    ],
                )?;
                let servers = Servers::start(pod.ns.ns(), pod.ip, &PORTS)?;
                pods.push(ScenarioPod {
                    key: format!("{ns}/{name}"),
                    node: node.name.clone(),
                    pod,
                    _servers: servers,
                });
            }
        }
        let pc = PolicyCluster { pods, cluster };
        let open = pc.wait_for_expected("the cluster without policy", Duration::from_secs(60))?;
        if open.cells.values().any(|reached| !reached) {
            return Err(HarnessError::Failed(format!(
                "without any policy every pod must reach every other one:\n{}",
                open.table(Proto::Tcp, 80)
            )));
        }
        Ok(pc)
    }

    pub fn store(&self) -> PathBuf {
        self.cluster.store().to_path_buf()
    }

    /// The probes of every scenario.
    pub fn probes() -> Vec<(Proto, u16)> {
        vec![
            (Proto::Tcp, 80),
            (Proto::Tcp, 81),
            (Proto::Udp, 80),
            (Proto::Udp, 81),
            (Proto::Icmp, 0),
        ]
    }

    /// Observes the matrix.
    pub fn observe(&self) -> Result<Matrix, HarnessError> {
        let targets: Vec<Target<'_>> = self
            .pods
            .iter()
            .map(|p| Target {
                name: p.key.clone(),
                ns: p.pod.ns.ns(),
                ip: p.pod.ip,
            })
            .collect();
        Matrix::probe_all(&targets, &Self::probes(), Duration::from_millis(700), 48)
    }

    /// What Calico's semantics say, for the resources now in the datastore.
    pub fn expected(&self) -> Result<Matrix, HarnessError> {
        expected_matrix(&self.store(), &self.pod_ips(), &Self::probes())
    }

    fn pod_ips(&self) -> Vec<(String, IpAddr)> {
        self.pods
            .iter()
            .map(|p| (p.key.clone(), p.pod.ip))
            .collect()
    }

    /// Waits until the observed matrix equals the expected one (policy reaches the dataplane
    /// asynchronously); on timeout the error shows the differences and both truth tables.
    /// Returns the matrix that was reached.
    pub fn wait_for_expected(
        &self,
        scenario: &str,
        timeout: Duration,
    ) -> Result<Matrix, HarnessError> {
        let expected = self.expected()?;
        let deadline = Instant::now() + timeout;
        loop {
            let observed = self.observe()?;
            let diff = observed.differences(&expected);
            if diff.is_empty() {
                return Ok(observed);
            }
            if Instant::now() >= deadline {
                let mut tables = String::new();
                for (proto, port) in Self::probes() {
                    tables.push_str(&format!(
                        "expected:\n{}observed:\n{}",
                        expected.table(proto, port),
                        observed.table(proto, port)
                    ));
                }
                return Err(HarnessError::Failed(format!(
                    "{scenario}: the observed reachability never matched the expected one within {timeout:?}:\n{diff}\n{tables}\nagent logs:\n{}",
                    self.cluster.logs()
                )));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Reads every policy-relevant resource from the datastore with calicoctl and builds the
/// evaluator's view of it.
pub fn stored_policy_set(store: &Path) -> Result<PolicySet, HarnessError> {
    PolicySet::from_resources(stored_resources(store)?)
        .map_err(|e| HarnessError::Failed(format!("stored resources: {e}")))
}

/// The evaluator's inputs as stored in the datastore (every policy-relevant kind, read back
/// with calicoctl), with Felix's default configuration; callers may add what the datastore
/// does not hold (node addresses) before building the [`PolicySet`].
pub fn stored_resources(store: &Path) -> Result<Resources, HarnessError> {
    let mut text = String::new();
    for kind in [
        "workloadendpoints",
        "hostendpoints",
        "networkpolicies",
        "globalnetworkpolicies",
        "tiers",
        "profiles",
        "networksets",
        "globalnetworksets",
    ] {
        let out = calicoctl(store, &["get", kind, "--all-namespaces", "-o", "yaml"])
            .or_else(|_| calicoctl(store, &["get", kind, "-o", "yaml"]))?;
        text.push_str(&out);
        text.push_str("\n---\n");
    }
    Resources::from_yaml(&text).map_err(|e| HarnessError::Failed(format!("stored resources: {e}")))
}

/// The expected matrix over `pods` (`(key, address)`) for `probes`.
pub fn expected_matrix(
    store: &Path,
    pods: &[(String, IpAddr)],
    probes: &[(Proto, u16)],
) -> Result<Matrix, HarnessError> {
    let set = stored_policy_set(store)?;
    let mut m = Matrix::default();
    for (from, src) in pods {
        for (to, dst) in pods {
            if from == to {
                continue;
            }
            for &(proto, port) in probes {
                let packet = match proto {
                    Proto::Tcp => Packet::tcp(&src.to_string(), &dst.to_string(), port),
                    Proto::Udp => Packet::udp(&src.to_string(), &dst.to_string(), port),
                    // Echo request: type 8 (ICMPv6: 128).
                    Proto::Icmp => Packet::icmp(
                        &src.to_string(),
                        &dst.to_string(),
                        if src.is_ipv4() { 8 } else { 128 },
                        0,
                    ),
                }
                .map_err(|e| HarnessError::Failed(e.to_string()))?;
                let verdict = evaluate(&set, &packet).overall;
                m.cells.insert(
                    Cell {
                        from: from.clone(),
                        to: to.clone(),
                        proto,
                        port,
                    },
                    verdict == Verdict::Allow,
                );
            }
        }
    }
    Ok(m)
}
