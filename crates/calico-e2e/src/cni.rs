//! Direct CNI invocations: what a container runtime does, minus the runtime. The plugin runs
//! as a child process started from a thread inside the node's namespace, so its "host side" is
//! the node, exactly as when kubelet or podman on that node calls it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calico_netlink::NetNs;

use crate::HarnessError;

/// One call of a plugin.
#[derive(Debug, Clone)]
pub struct CniCall {
    pub command: String,
    pub container_id: String,
    /// `CNI_NETNS`; `None` sends it empty (containerd's second DEL).
    pub netns: Option<PathBuf>,
    pub ifname: String,
    pub args: String,
    /// `CNI_PATH`: where the plugin finds its IPAM plugin.
    pub path: PathBuf,
    pub stdin: Vec<u8>,
    /// More environment for the plugin.
    pub extra_env: Vec<(String, String)>,
}

impl CniCall {
    pub fn new(
        command: &str,
        container_id: &str,
        netns: Option<&Path>,
        path: &Path,
        stdin: &[u8],
    ) -> CniCall {
        CniCall {
            command: command.to_string(),
            container_id: container_id.to_string(),
            netns: netns.map(Path::to_path_buf),
            ifname: "eth0".into(),
            args: String::new(),
            path: path.to_path_buf(),
            stdin: stdin.to_vec(),
            extra_env: Vec::new(),
        }
    }
}

/// What the plugin answered.
#[derive(Debug, Clone)]
pub struct CniOutcome {
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// Spawn to exit.
    pub elapsed: Duration,
}

impl CniOutcome {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// stdout as JSON (the result, or the error object).
    pub fn json(&self) -> Result<serde_json::Value, HarnessError> {
        serde_json::from_str(&self.stdout).map_err(|e| {
            HarnessError::Failed(format!(
                "plugin stdout is not JSON ({e}): {:?}; stderr: {}",
                self.stdout, self.stderr
            ))
        })
    }

    /// The result JSON of a successful call, or an error with the plugin's answer.
    pub fn result(&self) -> Result<serde_json::Value, HarnessError> {
        if !self.success() {
            return Err(HarnessError::Failed(format!(
                "plugin failed (exit {:?}): {} {}",
                self.exit_code, self.stdout, self.stderr
            )));
        }
        if self.stdout.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        self.json()
    }
}

/// Runs `plugin` for `call` from inside `host_ns`.
pub fn invoke(plugin: &Path, call: &CniCall, host_ns: &NetNs) -> Result<CniOutcome, HarnessError> {
    let netns = call
        .netns
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    // `CALICO_E2E_WRAP="strace -f -tt -o /tmp/trace"` runs the plugin under a profiler/tracer.
    let wrapper: Vec<String> = std::env::var("CALICO_E2E_WRAP")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(plugin);
            c
        }
        None => Command::new(plugin),
    };
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CNI_COMMAND", &call.command)
        .env("CNI_CONTAINERID", &call.container_id)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", &call.ifname)
        .env("CNI_ARGS", &call.args)
        .env("CNI_PATH", &call.path)
        .envs(call.extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let plugin_name = plugin.display().to_string();
    host_ns
        .run(move || -> Result<CniOutcome, HarnessError> {
            let started = Instant::now();
            let mut child = cmd
                .spawn()
                .map_err(|e| HarnessError::Io(format!("starting {plugin_name}"), e))?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(&call.stdin)
                    .map_err(|e| HarnessError::Io(format!("writing {plugin_name}'s stdin"), e))?;
            }
            let out = child
                .wait_with_output()
                .map_err(|e| HarnessError::Io(format!("waiting for {plugin_name}"), e))?;
            Ok(CniOutcome {
                exit_code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                elapsed: started.elapsed(),
            })
        })
        .map_err(|e| HarnessError::Failed(format!("entering the node namespace: {e}")))?
}
