//! The system around the lab: required privileges and tools, the sibling binaries, `ip`
//! invocations (always `ip -n <lab namespace>` or `ip netns`, never a bare `ip` that would act
//! on the root namespace), and the processes the lab started (checked through `/proc` before
//! any signal, so a recycled PID is never hit).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{LabError, io};

/// The binaries `calico-lab` runs, all from the same build.
pub const BINARIES: [&str; 4] = ["calico-node", "calico", "calico-ipam", "calicoctl"];

/// Fails with [`LabError::NotRoot`] unless the effective uid is 0.
pub fn require_root() -> Result<(), LabError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

/// The path of `tool` on PATH (or /usr/sbin, /sbin).
pub fn which(tool: &str) -> Result<PathBuf, LabError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .ok_or_else(|| LabError::MissingTool(tool.to_string()))
}

/// The directory of the running `calico-lab`, where `cargo build --bins` put its siblings.
pub fn bin_dir() -> Result<PathBuf, LabError> {
    let exe = std::env::current_exe().map_err(io("locating the calico-lab executable"))?;
    // Resolve symlinks (a `calico-lab` linked into /usr/local/bin still finds its siblings).
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| LabError::Failed(format!("{} has no directory", exe.display())))
}

/// Checks that every sibling binary exists in `dir`.
pub fn check_binaries(dir: &Path) -> Result<(), LabError> {
    for name in BINARIES {
        if !dir.join(name).is_file() {
            return Err(LabError::MissingBinary {
                name: name.to_string(),
                dir: dir.display().to_string(),
            });
        }
    }
    Ok(())
}

/// Runs a command and returns its stdout; a failure carries its stderr.
pub fn run(cmd: &mut Command) -> Result<String, LabError> {
    let what = describe(cmd);
    let out = cmd.output().map_err(io(format!("running `{what}`")))?;
    if !out.status.success() {
        return Err(LabError::Command {
            cmd: what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ip -n <netns> <args>`.
pub fn ip_in(netns: &str, args: &[&str]) -> Result<String, LabError> {
    run(Command::new("ip").arg("-n").arg(netns).args(args))
}

/// Whether `name` is one the lab with `prefix` makes: `<prefix>fabric`, `<prefix>node<N>` or
/// `<prefix>pod.<namespace>.<pod>`. Another lab whose prefix merely starts with ours (say
/// `calico-lab-x-` next to `calico-lab-`) never matches.
pub fn is_lab_namespace(prefix: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(prefix) else {
        return false;
    };
    rest == "fabric"
        || rest
            .strip_prefix("node")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        || rest.strip_prefix("pod.").is_some_and(|p| {
            p.split_once('.')
                .is_some_and(|(ns, pod)| !ns.is_empty() && !pod.is_empty())
        })
}

/// `ip -n <netns> -batch -` with `commands` on stdin (one `ip` process for many changes).
pub fn ip_batch(netns: &str, commands: &str) -> Result<(), LabError> {
    use std::io::Write;
    let what = format!("ip -n {netns} -batch -");
    let mut child = Command::new("ip")
        .args(["-n", netns, "-batch", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(io(format!("running `{what}`")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(commands.as_bytes())
            .map_err(io(format!("feeding `{what}`")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(io(format!("waiting for `{what}`")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            cmd: what,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Every named network namespace of the lab with `prefix` (see [`is_lab_namespace`]).
pub fn lab_namespaces(prefix: &str) -> Result<Vec<String>, LabError> {
    // /run/netns is where `ip netns add` mounts them; absent = none exist.
    let entries = match std::fs::read_dir("/run/netns") {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LabError::Io("listing /run/netns".into(), e)),
    };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_lab_namespace(prefix, n))
        .collect();
    out.sort();
    Ok(out)
}

/// `ip netns add <name>` and loopback up inside it.
pub fn netns_add(name: &str) -> Result<(), LabError> {
    run(Command::new("ip").args(["netns", "add", name]))?;
    ip_in(name, &["link", "set", "lo", "up"])?;
    Ok(())
}

/// `ip netns del <name>` (deleting a namespace destroys every interface in it, with the
/// peers of its veths wherever they are).
pub fn netns_del(name: &str) -> Result<(), LabError> {
    run(Command::new("ip").args(["netns", "del", name])).map(|_| ())
}

/// `/run/netns/<name>`.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new("/run/netns").join(name)
}

/// Whether `pid` is a live (non-zombie) process running a program named like `binary` with
/// `CALICO_LAB_DIR=<dir>` in its environment: the proof that it is ours, checked before every
/// signal.
pub fn is_our_process(pid: u32, binary: &Path, dir: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else {
        return false;
    };
    let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    // Same program name (a lab started by another build of calico-lab still counts: the
    // marker below is what proves the process belongs to this lab).
    let name =
        |p: &[u8]| -> Vec<u8> { p.rsplit(|b| *b == b'/').next().unwrap_or_default().to_vec() };
    if argv0.is_empty() || name(argv0) != name(binary.as_os_str().as_encoded_bytes()) {
        return false;
    }
    if is_zombie(pid) {
        return false;
    }
    let marker = format!("CALICO_LAB_DIR={}", dir.display());
    std::fs::read(proc.join("environ"))
        .map(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        .unwrap_or(false)
}

/// Every live process that [`is_our_process`] accepts: what `down` stops when a PID file is
/// missing (an `up` killed between starting an agent and recording it).
pub fn our_processes(binary: &Path, dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| is_our_process(*pid, binary, dir))
        .collect()
}

/// A zombie has exited; only its parent's wait is missing.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(true)
}

/// Resident memory of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// SIGTERM, then SIGKILL after `grace`, to a process verified as ours; waits until it is gone.
pub fn stop_process(pid: u32, binary: &Path, dir: &Path, grace: Duration) -> Result<(), LabError> {
    let Ok(raw) = i32::try_from(pid) else {
        return Ok(());
    };
    if !is_our_process(pid, binary, dir) {
        return Ok(());
    }
    let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while is_our_process(pid, binary, dir) {
        if Instant::now() > deadline {
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            let hard = Instant::now() + Duration::from_secs(5);
            while is_our_process(pid, binary, dir) {
                if Instant::now() > hard {
                    return Err(LabError::Failed(format!(
                        "process {pid} ({}) survived SIGKILL",
                        binary.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The PID recorded in `file`, if any.
pub fn read_pid(file: &Path) -> Option<u32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_labs_own_namespace_names_match() {
        let p = "calico-lab-";
        for ok in [
            "calico-lab-fabric",
            "calico-lab-node12",
            "calico-lab-pod.default.a-1",
        ] {
            assert!(is_lab_namespace(p, ok), "{ok}");
        }
        for other in [
            "calico-lab-x-fabric",
            "calico-lab-x-node1",
            "calico-lab-node",
            "calico-lab-nodex",
            "calico-lab-pod.default",
            "calico-labfabric",
            "fabric",
        ] {
            assert!(!is_lab_namespace(p, other), "{other}");
        }
    }
}
