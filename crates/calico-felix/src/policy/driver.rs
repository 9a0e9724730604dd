//! [`NftDriver`]: the [`PolicyDataplane`] on the real `nft` binary.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use calico_nft::bytecode::TableOp;
use calico_nft::{ElementOp, TablePlan, TableShape};

use super::{DataplaneError, PolicyDataplane};

/// Runs `nft` for one `inet` table, in the agent's network namespace or (with `netns`) in the
/// namespace at that path through `nsenter --net=<path>`.
///
/// Every [`PolicyDataplane::apply`] is one `nft -f -` process with the script on stdin: nft
/// sends the whole script to the kernel as one netlink batch, which the kernel commits
/// atomically (a syntax or semantic error anywhere rejects all of it, and packets never see a
/// half-applied script).
#[derive(Debug, Clone)]
pub struct NftDriver {
    table: String,
    netns: Option<PathBuf>,
    nft: PathBuf,
    nsenter: PathBuf,
    /// The netfilter netlink socket for element batches and generation reads.
    socket: super::generation::SharedSocket,
}

impl NftDriver {
    /// A driver for `table inet <table>`, using `nft` and `nsenter` from `PATH`.
    pub fn new(table: impl Into<String>, netns: Option<PathBuf>) -> NftDriver {
        NftDriver {
            table: table.into(),
            netns,
            nft: PathBuf::from("nft"),
            nsenter: PathBuf::from("nsenter"),
            socket: Default::default(),
        }
    }

    /// Uses this `nft` binary instead of the one on `PATH`.
    pub fn with_nft_binary(mut self, nft: impl Into<PathBuf>) -> NftDriver {
        self.nft = nft.into();
        self
    }

    /// The managed table's name (family `inet`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The network namespace the driver works in (`None`: the agent's own).
    pub fn netns(&self) -> Option<&Path> {
        self.netns.as_deref()
    }

    /// `nft <args>`, wrapped in `nsenter --net=<path> --` when a namespace is set.
    fn command(&self, args: &[&str]) -> (Command, String) {
        let nft_line = format!("{} {}", self.nft.display(), args.join(" "));
        match &self.netns {
            None => {
                let mut cmd = Command::new(&self.nft);
                cmd.args(args);
                (cmd, nft_line)
            }
            Some(ns) => {
                let mut cmd = Command::new(&self.nsenter);
                cmd.arg(format!("--net={}", ns.display()))
                    .arg("--")
                    .arg(&self.nft)
                    .args(args);
                let line = format!(
                    "{} --net={} -- {nft_line}",
                    self.nsenter.display(),
                    ns.display()
                );
                (cmd, line)
            }
        }
    }

    /// Runs `nft <args>` with `stdin` fed to it; `Ok` holds stdout when it exited with 0.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<Vec<u8>, DataplaneError> {
        let (mut cmd, line) = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| DataplaneError::Spawn {
            command: line.clone(),
            source,
        })?;
        let output = match (stdin, child.stdin.take()) {
            (Some(script), Some(mut pipe)) => {
                // Feed stdin from a second thread while this one drains stdout/stderr: a
                // large script and a chatty error output could otherwise fill both pipes
                // and deadlock the two processes.
                std::thread::scope(|s| {
                    let writer = s.spawn(move || pipe.write_all(script.as_bytes()));
                    let out = child.wait_with_output();
                    let written = match writer.join() {
                        Ok(r) => r,
                        Err(panic) => std::panic::resume_unwind(panic),
                    };
                    finish(out, written)
                })
            }
            _ => finish(child.wait_with_output(), Ok(())),
        }
        .map_err(|source| DataplaneError::Io {
            command: line.clone(),
            source,
        })?;
        if !output.status.success() {
            return Err(DataplaneError::Failed {
                command: line,
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(output.stdout)
    }

    /// Whether `table inet <table>` exists, from `nft -j list tables`.
    fn table_exists(&self, table: &str) -> Result<bool, DataplaneError> {
        Ok(self.inet_tables()?.contains(table))
    }

    /// The names of the namespace's `inet` tables, from `nft -j list tables`.
    fn inet_tables(&self) -> Result<BTreeSet<String>, DataplaneError> {
        let args = ["-j", "list", "tables"];
        let out = self.run(&args, None)?;
        let listing = |detail: String| DataplaneError::Listing {
            command: format!("nft {}", args.join(" ")),
            detail,
        };
        let json: serde_json::Value =
            serde_json::from_slice(&out).map_err(|e| listing(e.to_string()))?;
        let items = json
            .get("nftables")
            .and_then(|v| v.as_array())
            .ok_or_else(|| listing("no top-level \"nftables\" array".into()))?;
        Ok(items
            .iter()
            .filter_map(|item| item.get("table"))
            .filter(|t| t.get("family").and_then(|f| f.as_str()) == Some("inet"))
            .filter_map(|t| t.get("name").and_then(|n| n.as_str()))
            .map(str::to_string)
            .collect())
    }
}

/// Combines the process result with the stdin writer's: a write error only matters when the
/// process itself succeeded (a failing nft may close stdin early, giving EPIPE, and its
/// stderr is the useful message then).
fn finish(out: std::io::Result<Output>, written: std::io::Result<()>) -> std::io::Result<Output> {
    let out = out?;
    if out.status.success() {
        written?;
    }
    Ok(out)
}

impl NftDriver {
    /// The largest batch the kept socket takes in one send (opening it if need be).
    fn send_limit(&mut self, op: &str) -> Result<usize, DataplaneError> {
        self.socket.with(self.netns.as_deref(), op, |socket, _| {
            Ok((super::generation::send_limit(socket), 0))
        })
    }
}

impl PolicyDataplane for NftDriver {
    fn apply(&mut self, script: &str) -> Result<(), DataplaneError> {
        if script.trim().is_empty() {
            return Ok(());
        }
        self.run(&["-f", "-"], Some(script)).map(|_| ())
    }

    fn tables(&mut self) -> Result<Option<BTreeSet<String>>, DataplaneError> {
        self.inet_tables().map(Some)
    }

    fn list_table(&mut self, table: &str) -> Result<Option<TableShape>, DataplaneError> {
        let args = ["-j", "list", "table", "inet", table];
        match self.run(&args, None) {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out);
                TableShape::from_nft_json(&text, table)
                    .map(Some)
                    .map_err(|e| DataplaneError::Listing {
                        command: format!("nft {}", args.join(" ")),
                        detail: e.to_string(),
                    })
            }
            // nft reports a missing table as a failure ("No such file or directory"); ask for
            // the table list rather than match on the message, which is not a stable interface.
            Err(e @ DataplaneError::Failed { .. }) => match self.table_exists(table) {
                Ok(false) => Ok(None),
                Ok(true) | Err(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    fn generation(&mut self) -> Result<Option<u32>, DataplaneError> {
        self.socket.with(
            self.netns.as_deref(),
            "netlink NFT_MSG_GETGEN",
            |socket, seq| super::generation::read_generation(socket, seq).map(|g| (Some(g), 1)),
        )
    }

    /// One nfnetlink batch straight to the kernel (no `nft` process, so no cache of the
    /// table to load first); a batch too large for one netlink send goes through `nft`.
    fn apply_elements(&mut self, table: &str, ops: &[ElementOp]) -> Result<(), DataplaneError> {
        if ops.is_empty() {
            return Ok(());
        }
        use super::netlink_elements::{OP, encode, send};
        let limit = self.send_limit(OP)?;
        if encode(table, ops, 1)?.bytes.len() > limit {
            return self.apply(&calico_nft::render_elements(table, ops));
        }
        self.socket.with(self.netns.as_deref(), OP, |socket, seq| {
            let batch = encode(table, ops, seq)?;
            let used = u32::try_from(batch.messages.len() + 2).unwrap_or(u32::MAX);
            send(socket, &batch, table, ops).map(|()| ((), used))
        })
    }

    /// One nfnetlink batch of chain, rule, set and element messages straight to the kernel,
    /// on the same kept socket as [`PolicyDataplane::apply_elements`]. A plan that cannot go
    /// as one netlink send is refused with [`DataplaneError::NoNetlinkPath`] before anything
    /// is sent; a refused batch changes nothing (the kernel aborts all of it) and the error
    /// names the op.
    fn apply_plan(&mut self, table: &str, ops: &[TableOp]) -> Result<(), DataplaneError> {
        self.send_plans(&[(table, ops)])
    }

    fn apply_plans(&mut self, plans: &[TablePlan]) -> Result<(), DataplaneError> {
        let plans: Vec<(&str, &[TableOp])> = plans
            .iter()
            .map(|p| (p.table.as_str(), p.ops.as_slice()))
            .collect();
        self.send_plans(&plans)
    }
}

impl NftDriver {
    /// One nfnetlink batch of table operations for one or more tables (one transaction).
    fn send_plans(&mut self, plans: &[(&str, &[TableOp])]) -> Result<(), DataplaneError> {
        if plans.iter().all(|(_, ops)| ops.is_empty()) {
            return Ok(());
        }
        use super::netlink_table::{OP, encode_plans, send_plans};
        // Encoded (and validated) before the socket is taken: a refusal here keeps it.
        let mut batch = encode_plans(plans, 1)?;
        let limit = self.send_limit(OP)?;
        if batch.len() > limit {
            return Err(DataplaneError::NoNetlinkPath {
                what: format!(
                    "a batch of {} bytes is larger than one netlink send on this socket ({limit})",
                    batch.len()
                ),
            });
        }
        self.socket.with(self.netns.as_deref(), OP, |socket, seq| {
            batch.renumber(seq);
            send_plans(socket, &batch, plans).map(|()| ((), batch.seqs_used()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines() {
        let d = NftDriver::new("calico", None);
        let (cmd, line) = d.command(&["-f", "-"]);
        assert_eq!(cmd.get_program(), "nft");
        assert_eq!(line, "nft -f -");
        let d = NftDriver::new("calico", Some("/run/netns/n1".into()));
        let (cmd, line) = d.command(&["-j", "list", "tables"]);
        assert_eq!(cmd.get_program(), "nsenter");
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            ["--net=/run/netns/n1", "--", "nft", "-j", "list", "tables"]
        );
        assert_eq!(line, "nsenter --net=/run/netns/n1 -- nft -j list tables");
    }

    #[test]
    fn missing_binary_is_a_spawn_error_naming_the_command() {
        let mut d = NftDriver::new("calico", None).with_nft_binary("/nonexistent/nft");
        let err = d.apply("add table inet calico").unwrap_err();
        assert!(matches!(err, DataplaneError::Spawn { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/nft -f -"), "{err}");
    }

    #[test]
    fn a_missing_namespace_is_reported_by_nsenter() {
        // nsenter fails opening the path, before entering anything or running nft.
        let mut d = NftDriver::new("calico", Some("/nonexistent/netns".into()));
        let err = d.apply("add table inet calico\n").unwrap_err();
        let stderr = err.nft_stderr().expect("nsenter ran and failed");
        assert!(stderr.contains("/nonexistent/netns"), "{err}");
        assert!(
            err.to_string().contains("nsenter --net=/nonexistent/netns"),
            "{err}"
        );
        let err = d.generation().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/netns"), "{err}");
    }

    #[test]
    fn empty_script_runs_nothing() {
        // With a binary that does not exist, running anything would fail.
        let mut d = NftDriver::new("calico", None).with_nft_binary("/nonexistent/nft");
        d.apply("").unwrap();
        d.apply(" \n").unwrap();
    }

    #[test]
    fn failure_carries_trimmed_stderr() {
        // `/bin/sh -f -` stands in for `nft -f -`: it runs the "script" it gets on stdin, so
        // the test controls what the fake nft prints and how it exits (no temporary
        // executable, so no ETXTBSY race with other tests forking).
        let mut d = NftDriver::new("calico", None).with_nft_binary("/bin/sh");
        let err = d
            .apply("echo '  Error: syntax error, unexpected newline  ' >&2\nexit 1\n")
            .unwrap_err();
        assert_eq!(
            err.nft_stderr(),
            Some("Error: syntax error, unexpected newline")
        );
        assert!(err.to_string().contains("/bin/sh -f -"), "{err}");
        d.apply("exit 0\n").unwrap();
    }

    #[test]
    fn large_script_is_streamed() {
        // 8 MiB of comment lines, then a command that reports success only after all of it
        // was read: no pipe deadlock and nothing cut short.
        let mut d = NftDriver::new("calico", None).with_nft_binary("/bin/sh");
        let mut script = String::new();
        while script.len() < 8 << 20 {
            script.push_str("# padding padding padding padding padding padding padding\n");
        }
        script.push_str("echo read-all >&2\nexit 3\n");
        let err = d.apply(&script).unwrap_err();
        assert_eq!(err.nft_stderr(), Some("read-all"));
    }
}
