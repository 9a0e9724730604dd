//! podman 4.3 with its CNI backend as a real CNI client nobody here wrote
//! (`../shared/reference/cni-runtimes.md`): a private `containers.conf`, its own storage, runc,
//! containers made from a busybox rootfs directory, and every podman command run inside a node's
//! network namespace through `nsenter --net=` (not `ip netns exec`, which remounts /sys and hides
//! the cgroup mounts runc needs), so the host side of every pod lands in that namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::HarnessError;

/// Marker written into the rootfs, to prove a container really runs on it (under a plain
/// chroot runc silently used the host's root instead).
pub const ROOTFS_MARKER: &str = "calico-e2e-rootfs";

/// One private podman installation whose commands run in one network namespace.
pub struct Podman {
    dir: tempfile::TempDir,
    netns_path: PathBuf,
    network: String,
}

impl Podman {
    /// Sets up a private podman whose CNI networks are the conflists in `conf_dir` and whose
    /// plugins are in `plugin_dir`; commands run in the network namespace at `netns_path`.
    pub fn new(
        netns_path: &Path,
        plugin_dir: &Path,
        conf_dir: &Path,
        network: &str,
    ) -> Result<Podman, HarnessError> {
        for tool in ["podman", "runc", "nsenter", "busybox"] {
            crate::require_tool(tool)?;
        }
        let dir = tempfile::Builder::new()
            .prefix("calico-e2e-podman-")
            .tempdir()
            .map_err(|e| HarnessError::Io("creating the podman directory".into(), e))?;
        let rootfs = dir.path().join("rootfs");
        for sub in ["bin", "proc", "sys", "dev", "etc", "tmp"] {
            std::fs::create_dir_all(rootfs.join(sub))
                .map_err(|e| HarnessError::Io(format!("creating rootfs/{sub}"), e))?;
        }
        let busybox = crate::which("busybox")?;
        std::fs::copy(&busybox, rootfs.join("bin/busybox"))
            .map_err(|e| HarnessError::Io("copying busybox into the rootfs".into(), e))?;
        for applet in [
            "sh", "sleep", "ping", "ip", "cat", "ls", "hostname", "nc", "true",
        ] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
                .map_err(|e| HarnessError::Io(format!("linking {applet}"), e))?;
        }
        std::fs::write(rootfs.join("marker"), ROOTFS_MARKER)
            .map_err(|e| HarnessError::Io("writing the rootfs marker".into(), e))?;
        let conf = format!(
            r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["{plugins}"]
network_config_dir = "{confs}"
[engine]
runtime = "runc"
lock_type = "file"
cgroup_manager = "cgroupfs"
"#,
            plugins = plugin_dir.display(),
            confs = conf_dir.display()
        );
        std::fs::write(dir.path().join("containers.conf"), conf)
            .map_err(|e| HarnessError::Io("writing containers.conf".into(), e))?;
        Ok(Podman {
            dir,
            netns_path: netns_path.to_path_buf(),
            network: network.to_string(),
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.netns_path.display()))
            .arg("podman")
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            // vfs needs no overlay mount, so nothing is left mounted if a test dies.
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--cgroup-manager")
            .arg("cgroupfs")
            .args(args)
            .env("CONTAINERS_CONF", d.join("containers.conf"));
        c
    }

    /// Runs one podman command; an error carries podman's stderr.
    pub fn run(&self, args: &[&str]) -> Result<String, HarnessError> {
        let out = self.output(args)?;
        if !out.status.success() {
            return Err(HarnessError::Command(
                format!("podman {}", args.join(" ")),
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Runs one podman command and returns its raw output, whatever its status.
    pub fn output(&self, args: &[&str]) -> Result<Output, HarnessError> {
        self.command(args)
            .output()
            .map_err(|e| HarnessError::Io(format!("running podman {}", args.join(" ")), e))
    }

    /// Starts a detached container `name` on the network, sleeping.
    pub fn start(&self, name: &str) -> Result<String, HarnessError> {
        let rootfs = self.dir.path().join("rootfs");
        let rootfs = rootfs.to_string_lossy();
        self.run(&[
            "run",
            "-d",
            "--name",
            name,
            "--network",
            &self.network,
            "--rootfs",
            &rootfs,
            "/bin/sleep",
            "600",
        ])
    }

    /// `podman exec <name> <args>`.
    pub fn exec(&self, name: &str, args: &[&str]) -> Result<String, HarnessError> {
        let mut all = vec!["exec", name];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// The container's address on the network, as podman recorded it from the CNI result.
    pub fn address(&self, name: &str) -> Result<String, HarnessError> {
        let fmt = format!(
            "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
            self.network
        );
        self.run(&["inspect", name, "--format", &fmt])
    }

    /// The full container ID.
    pub fn container_id(&self, name: &str) -> Result<String, HarnessError> {
        self.run(&["inspect", name, "--format", "{{.Id}}"])
    }

    /// `podman rm -f -t 0 <names>` (sends CNI DEL).
    pub fn remove(&self, names: &[&str]) -> Result<(), HarnessError> {
        let mut all = vec!["rm", "-f", "-t", "0"];
        all.extend_from_slice(names);
        self.run(&all).map(|_| ())
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Best effort: stop whatever a failed test left running, so no container process and
        // no podman-made network namespace outlives the test.
        let _ = self.output(&["rm", "-a", "-f", "-t", "0"]);
    }
}
