//! `calicoctl` on the lab's datastore: the lab hands resources to the cluster exactly as a user
//! would (`apply`, `label`, `patch`), so what it writes goes through the same validation.

use std::path::Path;
use std::process::Command;

use crate::error::{LabError, io};
use crate::state::{Datastore, LabRecord};
use crate::sys;

/// A `calicoctl` command pointed at the lab's datastore. With etcd it runs inside the fabric
/// namespace, where the lab's etcd (and the nodes' network) is reachable.
pub fn command(lab: &LabRecord) -> Command {
    let calicoctl = lab.bin_dir.join("calicoctl");
    let mut cmd = match &lab.datastore {
        Datastore::Etcd { .. } => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &format!("{}fabric", lab.prefix)])
                .arg(&calicoctl);
            c
        }
        Datastore::Embedded { .. } => Command::new(&calicoctl),
    };
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    match &lab.datastore {
        Datastore::Embedded { path } => {
            cmd.env("DATASTORE_TYPE", "embedded")
                .env("CALICO_DATASTORE_PATH", path);
        }
        Datastore::Etcd { endpoints, .. } => {
            cmd.env("DATASTORE_TYPE", "etcdv3")
                .env("ETCD_ENDPOINTS", endpoints);
        }
    }
    cmd
}

/// `calicoctl <args>`; stdout.
pub fn run(lab: &LabRecord, args: &[&str]) -> Result<String, LabError> {
    sys::run(command(lab).args(args))
}

/// `calicoctl apply -f <file>`.
pub fn apply_file(lab: &LabRecord, file: &Path) -> Result<String, LabError> {
    sys::run(command(lab).arg("apply").arg("-f").arg(file))
}

/// `calicoctl apply` of YAML text (through a temporary file in `dir`).
pub fn apply_yaml(lab: &LabRecord, dir: &Path, yaml: &str) -> Result<String, LabError> {
    let file = dir.join(format!("apply-{}.yaml", std::process::id()));
    std::fs::write(&file, yaml).map_err(io(format!("writing {}", file.display())))?;
    let out = apply_file(lab, &file);
    let _ = std::fs::remove_file(&file);
    out
}

/// `calicoctl node status` for one node, through its BGP status socket.
pub fn node_status(lab: &LabRecord, socket: &Path) -> Result<String, LabError> {
    sys::run(
        Command::new(lab.bin_dir.join("calicoctl"))
            .env_clear()
            .env("CALICO_BGP_STATUS_SOCKET", socket)
            .args(["node", "status"]),
    )
}
