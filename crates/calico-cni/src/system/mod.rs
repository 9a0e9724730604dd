//! The real implementations of the plugin traits and the two `main`s.
//!
//! stdout carries exactly one JSON document (the result, the VERSION answer, or the error);
//! logs go to stderr and, with `log_file_path`, to that file too, at `log_level` (Calico's
//! `ConfigureLogging`: debug, info, error; anything else is info). Nothing is opened before
//! the environment and stdin are read, and VERSION needs neither the datastore nor netlink.

pub mod agent;
pub mod dataplane;
pub mod exec;
pub mod store;

use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::Mutex;

use tracing_subscriber::fmt::writer::{BoxMakeWriter, MakeWriterExt};

use crate::netconf::NetConf;
use crate::plugin::calico::CalicoPlugin;
use crate::plugin::ipam::IpamPlugin;
use crate::plugin::{HostEnv, Response, Verbs, dispatch};
use crate::spec::{CniEnv, CniError, Command, ErrorCode, SUPPORTED_VERSIONS};

/// Which binary is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Calico,
    CalicoIpam,
}

impl Which {
    fn about(&self) -> &'static str {
        match self {
            Which::Calico => "Calico CNI plugin (calico-rs)",
            Which::CalicoIpam => "Calico CNI IPAM (calico-rs)",
        }
    }
}

/// The tracing level for Calico's `log_level`.
pub fn log_level(name: &str) -> tracing::Level {
    match name.to_ascii_lowercase().as_str() {
        "debug" => tracing::Level::DEBUG,
        "error" => tracing::Level::ERROR,
        "warning" | "warn" => tracing::Level::WARN,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    }
}

fn configure_logging(conf: Option<&NetConf>) {
    let level = conf
        .map(|c| log_level(&c.log_level))
        .unwrap_or(tracing::Level::INFO);
    let path = conf.map(|c| c.log_file_path.as_str()).unwrap_or("");
    let file = if path.is_empty() {
        None
    } else {
        let p = std::path::Path::new(path);
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("cannot open log file {path}: {e}");
                None
            }
        }
    };
    let writer = match file {
        Some(f) => BoxMakeWriter::new(std::io::stderr.and(Mutex::new(f))),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(writer)
        .with_ansi(false)
        .try_init();
}

fn print_json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Runs one plugin invocation from the process environment; returns the exit code.
pub fn main(which: Which) -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-v" || a == "--version") {
        println!("{} {}", which.about(), env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if which == Which::Calico && argv.iter().any(|a| a == "-t") {
        return test_connection();
    }
    // skel: without CNI_COMMAND, say what we are on stderr and exit 0.
    if std::env::var("CNI_COMMAND")
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        eprintln!("{}", which.about());
        eprintln!(
            "CNI protocol versions supported: {}",
            SUPPORTED_VERSIONS.join(", ")
        );
        return 0;
    }
    let env = CniEnv::from_process();
    let mut stdin = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
        let err = CniError::new(
            ErrorCode::IO_FAILURE,
            format!("error reading from stdin: {e}"),
        );
        print_json(&err.to_json(crate::spec::CURRENT_VERSION));
        return 1;
    }
    let conf = match &env {
        Ok(e) if e.command != Command::Version => NetConf::parse(&stdin).ok(),
        _ => None,
    };
    configure_logging(conf.as_ref());

    let resp = match (which, &env) {
        (_, Err(_)) => dispatch(&NoVerbs, env.clone(), &stdin),
        (_, Ok(e)) if e.command == Command::Version => dispatch(&NoVerbs, env.clone(), &stdin),
        (Which::Calico, Ok(_)) => match build_calico(conf.as_ref()) {
            Ok(p) => dispatch(&p, env.clone(), &stdin),
            Err(e) => dispatch(&Failing(e), env.clone(), &stdin),
        },
        (Which::CalicoIpam, Ok(_)) => match build_ipam(conf.as_ref()) {
            Ok(p) => dispatch(&p, env.clone(), &stdin),
            Err(e) => dispatch(&Failing(e), env.clone(), &stdin),
        },
    };
    finish(resp, env.as_ref().ok().map(|e| e.command))
}

/// Calico's `calico -t` (used by the installer before writing the CNI config): reads the
/// network configuration on stdin and checks the datastore answers and is ready. Errors are
/// printed as Calico prints them (code 100, "data store connection failed").
fn test_connection() -> i32 {
    let mut stdin = Vec::new();
    let result = std::io::stdin()
        .read_to_end(&mut stdin)
        .map_err(|e| {
            CniError::new(
                ErrorCode::IO_FAILURE,
                format!("failed to read from stdin: {e}"),
            )
        })
        .and_then(|_| NetConf::parse(&stdin))
        .and_then(|conf| {
            configure_logging(Some(&conf));
            let store = store::ClientStore::new(api_config(Some(&conf))?)?;
            match crate::plugin::EndpointStore::datastore_ready(&store) {
                Ok(true) => Ok(()),
                Ok(false) => Err(CniError::internal(
                    "Calico is currently not ready to process requests",
                )),
                Err(e) => Err(CniError::internal(format!(
                    "error getting ClusterInformation: {e}"
                ))),
            }
        });
    match result {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "data store connection failed");
            let err = CniError::new(ErrorCode(100), "data store connection failed")
                .with_details(e.to_string());
            print_json(&err.to_json(crate::spec::CURRENT_VERSION));
            1
        }
    }
}

fn finish(resp: Response, command: Option<Command>) -> i32 {
    if let Some(e) = &resp.error {
        tracing::error!(command = ?command, code = e.code.0, error = %e, "CNI request failed");
    }
    if let Some(v) = &resp.stdout {
        print_json(v);
    }
    resp.exit_code
}

type RealCalico = CalicoPlugin<dataplane::NetlinkDataplane, LocalIpam, store::ClientStore>;

/// Delegation to the IPAM plugin, with `calico-ipam` run in this process.
///
/// Calico's `calico` plugin execs `calico-ipam` like any other IPAM plugin. Ours runs the very
/// same code (the `calico-ipam` binary is `dispatch` over [`IpamPlugin`]) without the process:
/// same stdin, same environment (with `IgnoreUnknown=1`, as for an exec'ed delegate), same
/// result and errors, minus a process start and a second datastore connection per pod, which
/// is most of what a burst of pods on a busy node waits for. Any other IPAM type (e.g.
/// `host-local`) is exec'ed from `CNI_PATH` as the spec says. Set
/// `CALICO_CNI_EXEC_IPAM=1` to exec `calico-ipam` too (what Calico does).
pub struct LocalIpam {
    conf: Option<NetConf>,
}

impl crate::plugin::IpamExec for LocalIpam {
    fn exec(
        &self,
        plugin: &str,
        command: Command,
        env: &CniEnv,
        stdin: &[u8],
    ) -> Result<Vec<u8>, CniError> {
        let forced_exec = std::env::var("CALICO_CNI_EXEC_IPAM").as_deref() == Ok("1");
        if plugin != "calico-ipam" || forced_exec {
            return exec::ExecIpam.exec(plugin, command, env, stdin);
        }
        let ipam = build_ipam(self.conf.as_ref())?;
        let mut delegate_env = env.clone();
        delegate_env.command = command;
        delegate_env.args = exec::cni_args_for_delegate(&env.args);
        let resp = dispatch(&ipam, Ok(delegate_env), stdin);
        if let Some(e) = resp.error {
            return Err(e);
        }
        Ok(resp
            .stdout
            .map(|v| serde_json::to_vec(&v).unwrap_or_default())
            .unwrap_or_default())
    }
}
type RealIpam = IpamPlugin<agent::RpcAgent, Rc<store::ClientStore>, Rc<store::ClientStore>>;

/// A datastore configuration from the netconf (or the environment when stdin did not parse;
/// dispatch reports the parse error before any verb runs).
fn api_config(conf: Option<&NetConf>) -> Result<calico_client::ApiConfig, CniError> {
    let env = |k: &str| std::env::var(k).ok();
    match conf {
        Some(c) => c.api_config(env),
        None => NetConf::default().api_config(env),
    }
}

fn build_calico(conf: Option<&NetConf>) -> Result<RealCalico, CniError> {
    Ok(CalicoPlugin {
        dataplane: dataplane::NetlinkDataplane,
        ipam: LocalIpam {
            conf: conf.cloned(),
        },
        store: store::ClientStore::new(api_config(conf)?)?,
        host: HostEnv::system(),
    })
}

fn build_ipam(conf: Option<&NetConf>) -> Result<RealIpam, CniError> {
    let socket = conf
        .unwrap_or(&NetConf::default())
        .agent_socket(|k| std::env::var(k).ok());
    // One lazily connected store serves both pool names and allocation reads.
    let store = Rc::new(store::ClientStore::new(api_config(conf)?)?);
    Ok(IpamPlugin {
        agent: agent::RpcAgent::new(socket, agent::AGENT_TIMEOUT),
        pools: Rc::clone(&store),
        allocations: store,
        host: HostEnv::system(),
    })
}

/// Verbs for paths that never reach a verb (environment errors, VERSION).
struct NoVerbs;

/// Verbs that all fail with the error met while building the real plugin (e.g. a datastore
/// configuration that cannot be used), after dispatch's own checks.
struct Failing(CniError);

macro_rules! all_verbs {
    ($t:ty, $body:expr) => {
        impl Verbs for $t {
            fn add(
                &self,
                _: &crate::plugin::Request<'_>,
            ) -> Result<crate::spec::CniResult, CniError> {
                Err($body(self))
            }
            fn del(&self, _: &crate::plugin::Request<'_>) -> Result<(), CniError> {
                Err($body(self))
            }
            fn check(&self, _: &crate::plugin::Request<'_>) -> Result<(), CniError> {
                Err($body(self))
            }
            fn status(&self, _: &crate::plugin::Request<'_>) -> Result<(), CniError> {
                Err($body(self))
            }
            fn gc(&self, _: &crate::plugin::Request<'_>) -> Result<(), CniError> {
                Err($body(self))
            }
        }
    };
}

all_verbs!(NoVerbs, |_: &NoVerbs| CniError::internal("no verb to run"));
all_verbs!(Failing, |s: &Failing| s.0.clone());
