//! Shared by the integration tests: golden model files and running nft in a throwaway
//! network namespace (never in the root one).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use calico_dataplane_model::{
    DataplaneModel, HostEndpoint, IpSet, Policy, PolicyId, Profile, WorkloadEndpoint,
    WorkloadEndpointId,
};
use calico_nft::{EndpointToHostAction, NftConfig};
use serde::Deserialize;

/// A golden file: the model (maps with struct keys written as lists) and config tweaks.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoldenModel {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub ip_sets: BTreeMap<String, IpSet>,
    #[serde(default)]
    pub policies: Vec<PolicyEntry>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    #[serde(default)]
    pub workload_endpoints: Vec<WepEntry>,
    #[serde(default)]
    pub host_endpoints: BTreeMap<String, HostEndpoint>,
    #[serde(default)]
    pub endpoint_to_host_action: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEntry {
    pub id: PolicyId,
    pub policy: Policy,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WepEntry {
    pub id: WorkloadEndpointId,
    pub endpoint: WorkloadEndpoint,
}

impl GoldenModel {
    pub fn model(&self) -> DataplaneModel {
        DataplaneModel {
            ip_sets: self.ip_sets.clone(),
            policies: self
                .policies
                .iter()
                .map(|p| (p.id.clone(), p.policy.clone()))
                .collect(),
            profiles: self.profiles.clone(),
            workload_endpoints: self
                .workload_endpoints
                .iter()
                .map(|w| (w.id.clone(), w.endpoint.clone()))
                .collect(),
            host_endpoints: self.host_endpoints.clone(),
        }
    }

    pub fn config(&self) -> NftConfig {
        let mut cfg = NftConfig::default();
        match self.endpoint_to_host_action.as_deref() {
            None | Some("Drop") => {}
            Some("Accept") => cfg.endpoint_to_host_action = EndpointToHostAction::Accept,
            Some("Return") => cfg.endpoint_to_host_action = EndpointToHostAction::Return,
            Some(other) => panic!("unknown endpointToHostAction {other}"),
        }
        cfg
    }
}

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Every `tests/golden/*.yaml`, sorted, with its parsed content.
pub fn golden_models() -> Vec<(PathBuf, GoldenModel)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no golden models");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let m: GoldenModel =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, m)
        })
        .collect()
}

/// Runs a shell script inside a fresh network namespace (`unshare --net`), so nothing it
/// does touches the host's network namespace. `stdin` is fed to the script. Panics (the
/// test fails) when the namespace cannot be created: these tests need root.
pub fn in_netns(script: &str, stdin: &str) -> (bool, String, String) {
    let mut child = Command::new("unshare")
        .args(["--net", "sh", "-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare (util-linux) must be installed; these tests need root");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("unshare failed"),
        "cannot create a network namespace (need root): {stderr}"
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        stderr,
    )
}
