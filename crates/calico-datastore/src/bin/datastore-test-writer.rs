//! Test helper: a separate process that writes to a datastore, for the multi-process checks of
//! `calico_datastore::conformance` (compare-and-swap races, cross-process watches, leases that
//! outlive their process, crash safety) and the benchmark.
//!
//! Usage: `datastore-test-writer (--embedded PATH | --etcd URL[,URL...]) COMMAND [OPTIONS]`
//!
//! Commands:
//! - `cas --key K --count N`: N read-modify-write increments of the decimal counter at K with
//!   `update`, retrying on `Conflict`; prints `conflicts <n>`.
//! - `put --key K --value V [--lease-ttl SECONDS]`: one put (under a new lease if asked);
//!   prints `revision <rev>`.
//! - `delete --key K`: deletes K; prints `revision <rev>`.
//! - `put-loop --prefix P [--count N]`: puts `P<i>` = `i` for i = 0, 1, ... (N times, or until
//!   killed), printing `committed <i> <rev>` after each commit returns.

use std::io::Write;
use std::process::ExitCode;

use calico_datastore::conformance::Backend;
use calico_datastore::{Datastore, DatastoreError};

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("datastore-test-writer: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(std::env::args().skip(1).collect())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("datastore-test-writer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--name value` options after the command.
struct Opts(Vec<String>);

impl Opts {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .position(|a| a == name)
            .and_then(|i| self.0.get(i + 1))
            .map(String::as_str)
    }
    fn req(&self, name: &str) -> Result<&str, DatastoreError> {
        self.get(name)
            .ok_or_else(|| DatastoreError::Config(format!("missing option {name}")))
    }
    fn num(&self, name: &str) -> Result<Option<u64>, DatastoreError> {
        self.get(name)
            .map(|s| {
                s.parse()
                    .map_err(|e| DatastoreError::Config(format!("{name} {s:?}: {e}")))
            })
            .transpose()
    }
}

async fn run(mut args: Vec<String>) -> Result<(), DatastoreError> {
    let backend = Backend::parse(&mut args)?;
    if args.is_empty() {
        return Err(DatastoreError::Config(
            "missing command (cas, put, delete, put-loop)".into(),
        ));
    }
    let command = args.remove(0);
    let opts = Opts(args);
    let store = backend.open().await?;
    let mut out = std::io::stdout().lock();
    let print = |out: &mut std::io::StdoutLock<'_>, line: String| -> Result<(), DatastoreError> {
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(|e| DatastoreError::Backend(format!("stdout: {e}")))
    };
    match command.as_str() {
        "cas" => {
            let key = opts.req("--key")?;
            let count = opts.num("--count")?.unwrap_or(1);
            let conflicts = cas(&*store, key, count).await?;
            print(&mut out, format!("conflicts {conflicts}"))
        }
        "put" => {
            let key = opts.req("--key")?;
            let value = opts.req("--value")?;
            let lease = match opts.num("--lease-ttl")? {
                Some(ttl) => Some(store.lease_grant(ttl as i64).await?),
                None => None,
            };
            let rev = store.put(key, value.as_bytes().to_vec(), lease).await?;
            print(&mut out, format!("revision {rev}"))
        }
        "delete" => {
            let key = opts.req("--key")?;
            store.delete(key, None).await?;
            let rev = store.current_revision().await?;
            print(&mut out, format!("revision {rev}"))
        }
        "put-loop" => {
            let prefix = opts.req("--prefix")?;
            let count = opts.num("--count")?.unwrap_or(u64::MAX);
            for i in 0..count {
                let rev = store
                    .put(&format!("{prefix}{i}"), i.to_string().into_bytes(), None)
                    .await?;
                print(&mut out, format!("committed {i} {rev}"))?;
            }
            Ok(())
        }
        other => Err(DatastoreError::Config(format!(
            "unknown command {other:?} (cas, put, delete, put-loop)"
        ))),
    }
}

/// `count` increments of the counter at `key`; returns how many conflicts were retried.
async fn cas(store: &dyn Datastore, key: &str, count: u64) -> Result<u64, DatastoreError> {
    let mut conflicts = 0;
    for _ in 0..count {
        loop {
            let kv = store
                .get(key)
                .await?
                .ok_or_else(|| DatastoreError::NotFound { key: key.into() })?;
            let n: u64 = std::str::from_utf8(&kv.value)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    DatastoreError::InvalidRequest(format!("{key} does not hold a counter"))
                })?;
            match store
                .update(key, (n + 1).to_string().into_bytes(), kv.mod_revision, None)
                .await
            {
                Ok(_) => break,
                Err(DatastoreError::Conflict { .. }) => conflicts += 1,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(conflicts)
}
