//! End-to-end harness for the whole agent + CNI path: locates the real binaries (`calico`,
//! `calico-ipam`, `calico-node`) built from this workspace, runs them inside network namespaces
//! that the harness creates and deletes, drives them through real CNI clients (direct CNI
//! invocations, podman), and measures them against Debian's reference plugins.
//!
//! Everything here happens in namespaces made for the purpose: nothing in this crate may touch
//! the root network namespace, and every process it starts is stopped by PID when its guard
//! drops, even when a test fails. Depends on the binaries' crates only through their
//! executables (and on calico-netlink for namespaces), never on their internals.

pub mod bgp_peers;
pub mod cluster;
pub mod cni;
pub mod differential;
pub mod fabric;
pub mod node;
pub mod podman;
pub mod policy;
pub mod reach;
pub mod store;
pub mod traffic;

use std::path::{Path, PathBuf};

/// What can go wrong while setting up or driving a scenario.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("`{0}` failed: {1}")]
    Command(String, String),
    #[error("{0} is not installed (scripts/install-deps.sh installs it)")]
    MissingTool(String),
    #[error(
        "binary {name} not found in {dir}: build it first with `cargo build --workspace --bins`"
    )]
    MissingBinary { name: String, dir: String },
    #[error("{0}")]
    Failed(String),
}

/// The path of `tool` on PATH.
pub fn which(tool: &str) -> Result<PathBuf, HarnessError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| HarnessError::MissingTool(tool.to_string()))
}

/// Fails (never skips) when `tool` is missing.
pub fn require_tool(tool: &str) -> Result<(), HarnessError> {
    which(tool).map(|_| ())
}

/// The workspace's target profile directory (`target/debug`), found from the running test or
/// bench executable (`target/debug/deps/<test>` or `target/debug/<bin>`).
pub fn profile_dir() -> Result<PathBuf, HarnessError> {
    let exe = std::env::current_exe()
        .map_err(|e| HarnessError::Io("locating the test executable".into(), e))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    Ok(dir)
}

/// Path of a workspace binary, with an error saying how to build it when absent.
pub fn binary(name: &str) -> Result<PathBuf, HarnessError> {
    let dir = profile_dir()?;
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(HarnessError::MissingBinary {
            name: name.to_string(),
            dir: dir.display().to_string(),
        })
    }
}

/// Runs a command and returns its stdout; a failure carries its stderr.
pub fn run_checked(cmd: &mut std::process::Command) -> Result<String, HarnessError> {
    let what = format!("{cmd:?}");
    let out = cmd
        .output()
        .map_err(|e| HarnessError::Io(format!("running {what}"), e))?;
    if !out.status.success() {
        return Err(HarnessError::Command(
            what,
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
