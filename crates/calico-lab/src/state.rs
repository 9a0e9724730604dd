//! The lab's state directory and its record (`lab.json`): which namespaces, processes and pods
//! the lab made, so that later commands (and `down` after a crash) find exactly those and
//! nothing else.
//!
//! Layout of the directory (default `/run/calico-lab`, `CALICO_LAB_DIR` overrides):
//! `.calico-lab` (marker), `lab.json`, `calico.db*` (embedded datastore), `etcd/` (the lab's
//! etcd: data, log, PID), `cni/` (plugin links), `nodes/<node>/{calico-node.pid,calico-node.log,ipam.sock,bgp.ctl,nodename,cni.log}`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{LabError, io};

/// Default state directory.
pub const DEFAULT_DIR: &str = "/run/calico-lab";
/// Default namespace prefix.
pub const DEFAULT_PREFIX: &str = "calico-lab-";
/// The file marking a directory as a lab's (down removes only known files of marked dirs).
pub const MARKER: &str = ".calico-lab";

/// Where the lab lives and how its namespaces are named.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub prefix: String,
}

impl Layout {
    /// From `CALICO_LAB_DIR` / `CALICO_LAB_PREFIX` (or the defaults).
    pub fn from_env() -> Result<Layout, LabError> {
        let dir = std::env::var_os("CALICO_LAB_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
        let prefix = std::env::var("CALICO_LAB_PREFIX")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_PREFIX.to_string());
        validate_prefix(&prefix)?;
        if !dir.is_absolute() {
            return Err(LabError::invalid(
                "CALICO_LAB_DIR",
                format!("{} is not an absolute path", dir.display()),
            ));
        }
        Ok(Layout { dir, prefix })
    }

    pub fn record(&self) -> PathBuf {
        self.dir.join("lab.json")
    }
    pub fn store(&self) -> PathBuf {
        self.dir.join("calico.db")
    }
    pub fn cni_dir(&self) -> PathBuf {
        self.dir.join("cni")
    }
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.join("nodes").join(node)
    }
    pub fn pid_file(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("calico-node.pid")
    }
    pub fn agent_log(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("calico-node.log")
    }
    pub fn ipam_socket(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("ipam.sock")
    }
    pub fn bgp_socket(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("bgp.ctl")
    }
    pub fn nodename_file(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("nodename")
    }
    pub fn etcd_dir(&self) -> PathBuf {
        self.dir.join("etcd")
    }
    pub fn etcd_pid(&self) -> PathBuf {
        self.etcd_dir().join("etcd.pid")
    }
    pub fn fabric_netns(&self) -> String {
        format!("{}fabric", self.prefix)
    }
    pub fn node_netns(&self, node: &str) -> String {
        format!("{}{node}", self.prefix)
    }
    /// Pod namespaces carry a `pod.` infix: node names made by the lab (`nodeN`) never start
    /// with it, and a Kubernetes namespace name cannot contain the `.` separating it from the pod.
    pub fn pod_netns(&self, namespace: &str, pod: &str) -> String {
        format!("{}pod.{namespace}.{pod}", self.prefix)
    }
}

/// Namespace names go into `/run/netns/<name>`: keep the prefix to a safe alphabet.
pub fn validate_prefix(prefix: &str) -> Result<(), LabError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= 64
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !prefix.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(LabError::invalid(
            "CALICO_LAB_PREFIX",
            format!("{prefix:?}: use 1-64 of [A-Za-z0-9._-], not starting with '.'"),
        ))
    }
}

/// One simulated host.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    pub name: String,
    /// Address on the fabric (no prefix length).
    pub ip: String,
    pub netns: String,
    /// Whether it is one of the route reflectors.
    pub route_reflector: bool,
}

/// One pod made through the CNI plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PodRecord {
    pub name: String,
    pub namespace: String,
    pub node: String,
    pub netns: String,
    pub container_id: String,
    pub ip: String,
    /// Host-side interface (`caliXXXXXXXXXXX`).
    pub host_iface: String,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub service_account: String,
}

/// The datastore the lab's processes share.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Datastore {
    Embedded {
        path: PathBuf,
    },
    /// `managed`: the lab runs this etcd itself (in the fabric namespace, see `etcd.rs`).
    Etcd {
        endpoints: String,
        #[serde(default)]
        managed: bool,
    },
}

/// Everything `lab.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LabRecord {
    pub prefix: String,
    pub pool: String,
    pub datastore: Datastore,
    /// Directory holding the binaries the lab runs.
    pub bin_dir: PathBuf,
    pub nodes: Vec<NodeRecord>,
    pub pods: Vec<PodRecord>,
    /// Kubernetes-style namespaces created (`kns.<name>` profiles).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

impl LabRecord {
    pub fn load(layout: &Layout) -> Result<LabRecord, LabError> {
        let path = layout.record();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LabError::NoLab(layout.dir.display().to_string()));
            }
            Err(e) => return Err(LabError::Io(format!("reading {}", path.display()), e)),
        };
        serde_json::from_str(&text).map_err(|e| {
            LabError::Failed(format!(
                "{} is damaged ({e}): run `calico-lab down` to clean up",
                path.display()
            ))
        })
    }

    /// Writes atomically (temp file + rename), so a crash never leaves half a record.
    pub fn save(&self, layout: &Layout) -> Result<(), LabError> {
        let path = layout.record();
        let tmp = layout.dir.join("lab.json.tmp");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| LabError::Failed(format!("encoding the lab record: {e}")))?;
        std::fs::write(&tmp, text).map_err(io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, &path).map_err(io(format!("writing {}", path.display())))
    }

    pub fn node(&self, name: &str) -> Result<&NodeRecord, LabError> {
        self.nodes.iter().find(|n| n.name == name).ok_or_else(|| {
            LabError::invalid(
                "node",
                format!(
                    "{name:?} is not a node of this lab (nodes: {})",
                    self.nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// A pod by `name` (unique across namespaces) or `namespace/name`.
    pub fn find_pod(&self, spec: &str) -> Option<&PodRecord> {
        match spec.split_once('/') {
            Some((ns, name)) => self
                .pods
                .iter()
                .find(|p| p.namespace == ns && p.name == name),
            None => {
                let mut it = self.pods.iter().filter(|p| p.name == spec);
                let first = it.next()?;
                it.next().is_none().then_some(first)
            }
        }
    }
}

/// Creates the state directory and its marker.
pub fn create_dir(layout: &Layout) -> Result<(), LabError> {
    std::fs::create_dir_all(&layout.dir).map_err(io(format!(
        "creating the state directory {}",
        layout.dir.display()
    )))?;
    std::fs::write(layout.dir.join(MARKER), "calico-lab state directory\n")
        .map_err(io("writing the state marker"))
}

/// Whether `dir` is a lab state directory (has the marker).
pub fn is_lab_dir(dir: &Path) -> bool {
    dir.join(MARKER).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        assert!(validate_prefix("calico-lab-").is_ok());
        assert!(validate_prefix("t_1.x-").is_ok());
        for bad in ["", "a/b", ".x", "a b", &"x".repeat(65)] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pods_are_found_by_name_or_namespace_and_name() {
        let pod = |ns: &str, name: &str| PodRecord {
            name: name.into(),
            namespace: ns.into(),
            node: "node1".into(),
            netns: String::new(),
            container_id: String::new(),
            ip: String::new(),
            host_iface: String::new(),
            labels: Default::default(),
            service_account: String::new(),
        };
        let lab = LabRecord {
            prefix: "p-".into(),
            pool: "10.244.0.0/16".into(),
            datastore: Datastore::Etcd {
                endpoints: String::new(),
                managed: false,
            },
            bin_dir: PathBuf::new(),
            nodes: vec![],
            pods: vec![pod("default", "a"), pod("x", "a"), pod("x", "b")],
            namespaces: vec![],
        };
        assert!(lab.find_pod("a").is_none(), "ambiguous");
        assert_eq!(lab.find_pod("x/a").map(|p| p.namespace.as_str()), Some("x"));
        assert_eq!(lab.find_pod("b").map(|p| p.name.as_str()), Some("b"));
        assert!(lab.find_pod("c").is_none());
    }
}
