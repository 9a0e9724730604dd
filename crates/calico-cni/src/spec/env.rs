//! The `CNI_*` environment (SPEC.md section 2 "Parameters" and the per-verb required
//! variables), read through a lookup function so it is testable without touching the process
//! environment.
//!
//! Required variables per verb follow the spec text: ADD and CHECK need `CNI_CONTAINERID`,
//! `CNI_NETNS` and `CNI_IFNAME`; DEL needs `CNI_CONTAINERID` and `CNI_IFNAME` (no netns:
//! containerd's second DEL and `ctr --rm` send `CNI_NETNS=""`); GC needs `CNI_PATH`; STATUS
//! and VERSION need nothing else. libcni's `skel` also insists on `CNI_PATH` for every verb;
//! we only need it where we delegate, and say so then. Container ID and interface name are
//! validated as `skel` does (`utils.ValidateContainerID`, `utils.ValidateInterfaceName`).

use std::path::PathBuf;

use super::error::{CniError, ErrorCode};

/// The verb in `CNI_COMMAND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            other => {
                return Err(CniError::invalid_env(format!(
                    "unknown CNI_COMMAND: {other}"
                )));
            }
        })
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Version => "VERSION",
            Command::Status => "STATUS",
            Command::Gc => "GC",
        }
    }
}

/// Everything the runtime passed in the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniEnv {
    pub command: Command,
    /// Empty for VERSION, STATUS and GC.
    pub container_id: String,
    /// `None` when `CNI_NETNS` is unset or empty (allowed for DEL).
    pub netns: Option<PathBuf>,
    pub ifname: String,
    /// The raw `CNI_ARGS` string (parsed by [`crate::args`]).
    pub args: String,
    /// `CNI_PATH` split at `:`, empty entries dropped.
    pub path: Vec<PathBuf>,
}

impl CniEnv {
    /// Reads the process environment.
    pub fn from_process() -> Result<CniEnv, CniError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the variables through `get` (empty values count as unset, as in libcni).
    pub fn from_lookup<F>(get: F) -> Result<CniEnv, CniError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let var = |k: &str| get(k).filter(|v| !v.is_empty());
        let Some(command) = var("CNI_COMMAND") else {
            return Err(CniError::invalid_env(
                "required env variables [CNI_COMMAND] missing",
            ));
        };
        let command = Command::parse(&command)?;
        let (need_id, need_netns, need_ifname, need_path) = match command {
            Command::Add | Command::Check => (true, true, true, false),
            Command::Del => (true, false, true, false),
            Command::Gc => (false, false, false, true),
            Command::Status | Command::Version => (false, false, false, false),
        };
        let container_id = var("CNI_CONTAINERID");
        let netns = var("CNI_NETNS");
        let ifname = var("CNI_IFNAME");
        let path = var("CNI_PATH");

        let mut missing = Vec::new();
        if need_id && container_id.is_none() {
            missing.push("CNI_CONTAINERID");
        }
        if need_netns && netns.is_none() {
            missing.push("CNI_NETNS");
        }
        if need_ifname && ifname.is_none() {
            missing.push("CNI_IFNAME");
        }
        if need_path && path.is_none() {
            missing.push("CNI_PATH");
        }
        if !missing.is_empty() {
            return Err(CniError::invalid_env(format!(
                "required env variables [{}] missing",
                missing.join(",")
            )));
        }
        // VERSION is answered whatever else is set (podman probes with dummy values).
        let validate = !matches!(command, Command::Version);
        let container_id = container_id.unwrap_or_default();
        let ifname = ifname.unwrap_or_default();
        if validate && need_id {
            validate_container_id(&container_id)?;
        }
        if validate && need_ifname {
            validate_interface_name(&ifname)?;
        }
        Ok(CniEnv {
            command,
            container_id,
            netns: netns.map(PathBuf::from),
            ifname,
            args: var("CNI_ARGS").unwrap_or_default(),
            path: path
                .map(|p| {
                    p.split(':')
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// libcni `ValidateContainerID`: `[a-zA-Z0-9][a-zA-Z0-9_.\-]*`.
pub fn validate_container_id(id: &str) -> Result<(), CniError> {
    let mut chars = id.chars();
    let Some(first) = chars.next() else {
        return Err(CniError::new(
            ErrorCode::UNKNOWN_CONTAINER,
            "missing containerID",
        ));
    };
    let ok = first.is_ascii_alphanumeric()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(
            CniError::invalid_env("invalid characters in CNI_CONTAINERID").with_details(id),
        );
    }
    Ok(())
}

/// libcni `ValidateInterfaceName` (the kernel's `dev_valid_name`): not empty, at most 15
/// bytes, not `.` or `..`, no `/`, `:` or whitespace.
pub fn validate_interface_name(name: &str) -> Result<(), CniError> {
    if name.is_empty() {
        return Err(CniError::invalid_env("CNI_IFNAME: interface name is empty"));
    }
    if name.len() > 15 {
        return Err(
            CniError::invalid_env("CNI_IFNAME: interface name is too long").with_details(format!(
                "{name:?} has {} bytes; at most 15 are allowed",
                name.len()
            )),
        );
    }
    if name == "." || name == ".." {
        return Err(CniError::invalid_env(
            "CNI_IFNAME: interface name is . or ..",
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(CniError::invalid_env(
            "CNI_IFNAME: interface name contains / or : or whitespace characters",
        )
        .with_details(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<CniEnv, CniError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CniEnv::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn add_reads_everything() {
        let e = env(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc123"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "IgnoreUnknown=1"),
            ("CNI_PATH", "/opt/cni/bin::/usr/lib/cni"),
        ])
        .unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(e.netns, Some(PathBuf::from("/run/netns/x")));
        assert_eq!(
            e.path,
            vec![PathBuf::from("/opt/cni/bin"), PathBuf::from("/usr/lib/cni")]
        );
    }

    #[test]
    fn missing_variables_are_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "required env variables [CNI_COMMAND] missing"),
            (
                &[("CNI_COMMAND", "ADD")],
                "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing",
            ),
            (
                &[
                    ("CNI_COMMAND", "CHECK"),
                    ("CNI_CONTAINERID", "a"),
                    ("CNI_IFNAME", "eth0"),
                ],
                "required env variables [CNI_NETNS] missing",
            ),
            (
                &[("CNI_COMMAND", "DEL"), ("CNI_NETNS", "")],
                "required env variables [CNI_CONTAINERID,CNI_IFNAME] missing",
            ),
            (
                &[("CNI_COMMAND", "GC")],
                "required env variables [CNI_PATH] missing",
            ),
            (&[("CNI_COMMAND", "FROB")], "unknown CNI_COMMAND: FROB"),
        ];
        for (pairs, want) in cases {
            let e = env(pairs).unwrap_err();
            assert_eq!(e.code, ErrorCode::INVALID_ENV, "{pairs:?}");
            assert_eq!(e.msg, *want, "{pairs:?}");
        }
    }

    #[test]
    fn del_without_netns_and_version_with_dummies() {
        let e = env(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "c1"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_NETNS", ""),
        ])
        .unwrap();
        assert_eq!(e.netns, None);
        // podman's VERSION probe.
        let v = env(&[
            ("CNI_COMMAND", "VERSION"),
            ("CNI_NETNS", "dummy"),
            ("CNI_IFNAME", "dummy"),
            ("CNI_PATH", "dummy"),
        ])
        .unwrap();
        assert_eq!(v.command, Command::Version);
        assert!(env(&[("CNI_COMMAND", "STATUS")]).is_ok());
    }

    #[test]
    fn container_id_and_ifname_validation() {
        assert!(validate_container_id("cnitool-0123abcd").is_ok());
        assert!(validate_container_id("default-ctrD").is_ok());
        assert_eq!(
            validate_container_id("").unwrap_err().code,
            ErrorCode::UNKNOWN_CONTAINER
        );
        for bad in ["-abc", "a b", "a/b", "_x"] {
            assert_eq!(
                validate_container_id(bad).unwrap_err().code,
                ErrorCode::INVALID_ENV,
                "{bad}"
            );
        }
        assert!(validate_interface_name("eth0").is_ok());
        assert!(validate_interface_name("abcdefghijklmno").is_ok());
        for bad in ["", "abcdefghijklmnop", ".", "..", "a/b", "a:b", "a b"] {
            let e = validate_interface_name(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::INVALID_ENV, "{bad:?}");
            assert!(e.msg.starts_with("CNI_IFNAME"), "{bad:?}: {e}");
        }
    }
}
