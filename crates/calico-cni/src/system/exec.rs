//! Delegation by exec (SPEC.md section 4, libcni `invoke`): the plugin binary is looked up in
//! `CNI_PATH`, run with the caller's environment (the verb in `CNI_COMMAND`) and the same
//! stdin; its stderr goes to ours, its stdout is the result, and a failure is the CNI error it
//! printed. Like Calico's `AddIgnoreUnknownArgs`, `IgnoreUnknown=1` is put in front of
//! `CNI_ARGS` so a strict IPAM plugin does not reject the Kubernetes keys.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use serde::Deserialize;

use crate::plugin::IpamExec;
use crate::spec::{CniEnv, CniError, Command, ErrorCode};

/// Runs delegated plugins as child processes.
#[derive(Debug, Clone, Default)]
pub struct ExecIpam;

/// libcni retries a plugin whose binary is being replaced ("text file busy") for ~5 s.
const BUSY_RETRIES: usize = 5;
const ETXTBSY: i32 = 26;

/// Finds `plugin` in `dirs` (the first regular file of that name).
pub fn find_in_path(plugin: &str, dirs: &[PathBuf]) -> Result<PathBuf, CniError> {
    if plugin.is_empty() || plugin.contains('/') {
        return Err(CniError::invalid_netconf(format!(
            "invalid plugin name {plugin:?}: it must be a file name in CNI_PATH"
        )));
    }
    if dirs.is_empty() {
        return Err(CniError::invalid_env(format!(
            "CNI_PATH is empty: cannot find the {plugin} plugin"
        )));
    }
    dirs.iter()
        .map(|d| d.join(plugin))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            CniError::internal(format!(
                "failed to find plugin {plugin:?} in path {:?}",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
            ))
        })
}

#[derive(Deserialize)]
struct ErrorJson {
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

/// The error a failed plugin reported on stdout, or a generic one.
pub fn plugin_error(plugin: &str, status: &str, stdout: &[u8]) -> CniError {
    match serde_json::from_slice::<ErrorJson>(stdout) {
        Ok(e) => CniError {
            code: ErrorCode(e.code),
            msg: e.msg,
            details: e.details,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(stdout);
            let text = text.trim();
            CniError::internal(if text.is_empty() {
                format!("plugin {plugin} failed ({status}) with no error message")
            } else {
                format!("plugin {plugin} failed ({status}): {text}")
            })
        }
    }
}

pub(crate) fn cni_args_for_delegate(args: &str) -> String {
    if args.is_empty() {
        "IgnoreUnknown=1".to_string()
    } else {
        format!("IgnoreUnknown=1;{args}")
    }
}

fn run_once(
    path: &Path,
    command: Command,
    env: &CniEnv,
    stdin: &[u8],
) -> std::io::Result<std::process::Output> {
    let joined = std::env::join_paths(&env.path).unwrap_or_default();
    let mut child = Process::new(path)
        .env("CNI_COMMAND", command.as_str())
        .env("CNI_CONTAINERID", &env.container_id)
        .env(
            "CNI_NETNS",
            env.netns
                .as_deref()
                .map(Path::as_os_str)
                .unwrap_or_default(),
        )
        .env("CNI_IFNAME", &env.ifname)
        .env("CNI_ARGS", cni_args_for_delegate(&env.args))
        .env("CNI_PATH", joined)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    if let Some(mut w) = child.stdin.take() {
        // A plugin that exits without reading stdin closes the pipe; its exit status decides.
        let _ = w.write_all(stdin);
    }
    child.wait_with_output()
}

impl IpamExec for ExecIpam {
    fn exec(
        &self,
        plugin: &str,
        command: Command,
        env: &CniEnv,
        stdin: &[u8],
    ) -> Result<Vec<u8>, CniError> {
        let path = find_in_path(plugin, &env.path)?;
        let mut attempt = 0;
        let out = loop {
            match run_once(&path, command, env, stdin) {
                Ok(out) => break out,
                Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(CniError::internal(format!(
                        "failed to run plugin {}: {e}",
                        path.display()
                    )));
                }
            }
        };
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(plugin_error(plugin, &out.status.to_string(), &out.stdout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn env(dirs: Vec<PathBuf>) -> CniEnv {
        CniEnv {
            command: Command::Add,
            container_id: "c1".into(),
            netns: Some(PathBuf::from("/run/netns/x")),
            ifname: "eth0".into(),
            args: "K8S_POD_NAME=p".into(),
            path: dirs,
        }
    }

    #[test]
    fn runs_with_same_stdin_and_cni_environment() {
        let d = tempfile::tempdir().unwrap();
        let empty = tempfile::tempdir().unwrap();
        // Echo back the environment and stdin so the test sees what the delegate got.
        script(
            d.path(),
            "fake-ipam",
            r#"read -r line
printf '{"cmd":"%s","args":"%s","netns":"%s","cid":"%s","stdin":%s}' "$CNI_COMMAND" "$CNI_ARGS" "$CNI_NETNS" "$CNI_CONTAINERID" "$line""#,
        );
        let e = env(vec![empty.path().to_path_buf(), d.path().to_path_buf()]);
        let out = ExecIpam
            .exec("fake-ipam", Command::Del, &e, b"{\"name\":\"n\"}\n")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["cmd"], "DEL");
        assert_eq!(v["args"], "IgnoreUnknown=1;K8S_POD_NAME=p");
        assert_eq!(v["netns"], "/run/netns/x");
        assert_eq!(v["cid"], "c1");
        assert_eq!(v["stdin"]["name"], "n");
    }

    #[test]
    fn failures_carry_the_plugins_error() {
        let d = tempfile::tempdir().unwrap();
        script(
            d.path(),
            "bad",
            r#"echo '{"cniVersion":"1.0.0","code":11,"msg":"try later","details":"agent down"}'; exit 1"#,
        );
        script(d.path(), "silent", "exit 3");
        let e = env(vec![d.path().to_path_buf()]);
        let err = ExecIpam.exec("bad", Command::Add, &e, b"{}").unwrap_err();
        assert_eq!(err.code, ErrorCode::TRY_AGAIN_LATER);
        assert_eq!(err.msg, "try later");
        assert_eq!(err.details, "agent down");
        let err = ExecIpam
            .exec("silent", Command::Add, &e, b"{}")
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::INTERNAL);
        assert!(err.msg.contains("no error message"), "{err}");
        let err = ExecIpam
            .exec("absent", Command::Add, &e, b"{}")
            .unwrap_err();
        assert!(
            err.msg.contains("failed to find plugin \"absent\""),
            "{err}"
        );
        let err = ExecIpam
            .exec("x", Command::Add, &env(Vec::new()), b"{}")
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::INVALID_ENV);
        assert!(find_in_path("../x", &[d.path().to_path_buf()]).is_err());
    }
}
