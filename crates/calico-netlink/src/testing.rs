//! Fixtures for privileged tests (feature `testing`): throw-away named network namespaces.
//!
//! Tests build every namespace they touch with [`TestNetns`] and work inside them through
//! [`crate::RouteSocket::open_in`] / [`crate::NetNs::run`]; they never change the root namespace.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{ErrorKind, NetlinkError};
use crate::netns::NetNs;

/// Whether privileged netns tests can run here (effective uid 0 and `ip` available). Returns `false` with
/// a note on stderr otherwise, so the test can return early; PANICS instead when the environment variable
/// `CALICO_REQUIRE_ROOT=1` is set (CI), so a silently skipped suite cannot pass there.
pub fn require_root() -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("not running as root".to_string())
    } else {
        match Command::new("ip").arg("-V").output() {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!("`ip -V` failed with {}", out.status)),
            Err(e) => Some(format!("iproute2's `ip` is not available: {e}")),
        }
    };
    let strict = std::env::var("CALICO_REQUIRE_ROOT").as_deref() == Ok("1");
    match decide(reason, strict) {
        Ok(can_run) => can_run,
        Err(message) => panic!("{message}"),
    }
}

/// [`require_root`], and `nft` (nftables) runs: for tests that program nftables in their
/// own network namespaces. Skips or fails (`CALICO_REQUIRE_ROOT=1`) like [`require_root`].
pub fn require_root_and_nft() -> bool {
    if !require_root() {
        return false;
    }
    let reason = match Command::new("nft").arg("--version").output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!("`nft --version` failed with {}", out.status)),
        Err(e) => Some(format!("nftables' `nft` is not available: {e}")),
    };
    let strict = std::env::var("CALICO_REQUIRE_ROOT").as_deref() == Ok("1");
    match decide(reason, strict) {
        Ok(can_run) => can_run,
        Err(message) => panic!("{message}"),
    }
}

/// The policy of [`require_root`], separated from the environment so it can be tested:
/// `Ok(true)` = run, `Ok(false)` = skip (after a note on stderr), `Err` = the caller must panic.
fn decide(reason: Option<String>, strict: bool) -> Result<bool, String> {
    let Some(reason) = reason else {
        return Ok(true);
    };
    if strict {
        return Err(format!(
            "CALICO_REQUIRE_ROOT=1 but this netns test cannot run: {reason}"
        ));
    }
    eprintln!("skipping netns test: {reason} (set CALICO_REQUIRE_ROOT=1 to make this fatal)");
    Ok(false)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A named network namespace (`ip netns add <prefix>-<pid>-<n>`), deleted on drop (also when the test
/// panics). Deleting it destroys every interface inside, including veth ends whose peers live elsewhere.
#[derive(Debug)]
pub struct TestNetns {
    name: String,
    ns: Option<NetNs>,
}

impl TestNetns {
    /// Creates the namespace and brings its loopback up.
    pub fn new(prefix: &str) -> Result<TestNetns, NetlinkError> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        let op = format!("creating test network namespace {name}");
        if prefix.is_empty() || prefix.contains('/') {
            return Err(NetlinkError::invalid(
                op,
                "prefix must be non-empty without '/'",
            ));
        }
        run_ip(&op, &["netns", "add", &name])?;
        // From here on, Drop cleans up whatever fails below.
        let mut fixture = TestNetns { name, ns: None };
        let ns = NetNs::open(fixture.path())?;
        fixture.ns = Some(ns);
        let sock = crate::RouteSocket::open_in(fixture.ns())?;
        if let Some(lo) = sock.link_by_name("lo")? {
            sock.set_link_up(lo.index)?;
        }
        Ok(fixture)
    }

    /// The namespace's name (for `ip netns exec <name> ...`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> std::path::PathBuf {
        std::path::Path::new("/run/netns").join(&self.name)
    }

    /// The open namespace.
    pub fn ns(&self) -> &NetNs {
        // `ns` is only None inside `new` before it is set, and `new` never hands out the fixture before.
        match &self.ns {
            Some(ns) => ns,
            None => unreachable!("TestNetns::ns used before the namespace was opened"),
        }
    }

    /// Runs `ip netns exec <name> <args...>` and returns its stdout; a non-zero exit is an error with stderr.
    pub fn exec(&self, args: &[&str]) -> Result<String, NetlinkError> {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run_ip(&format!("running {:?} in {}", args, self.name), &full)
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        // Close our descriptor first so the namespace can really go away.
        self.ns = None;
        if let Err(e) = run_ip("deleting test netns", &["netns", "del", &self.name]) {
            eprintln!(
                "warning: could not delete test network namespace {}: {e}",
                self.name
            );
        }
    }
}

fn run_ip(op: &str, args: &[&str]) -> Result<String, NetlinkError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| NetlinkError::from_io(op, e))?;
    if !out.status.success() {
        return Err(NetlinkError::new(
            op,
            ErrorKind::Other,
            format!(
                "`ip {}` exited with {}: {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::decide;

    #[test]
    fn require_root_policy() {
        assert_eq!(decide(None, false), Ok(true));
        assert_eq!(decide(None, true), Ok(true));
        assert_eq!(decide(Some("not running as root".into()), false), Ok(false));
        let err = decide(Some("not running as root".into()), true).unwrap_err();
        assert_eq!(
            err,
            "CALICO_REQUIRE_ROOT=1 but this netns test cannot run: not running as root"
        );
    }
}
