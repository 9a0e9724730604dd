//! `calico-node`: with no arguments, runs the agent (start-up, then IPAM service, Felix, health,
//! metrics and status reports) until SIGTERM or SIGINT. Calico's own flags that make sense
//! here are accepted: `-startup` (start-up only, then exit), `-felix-live` / `-felix-ready`
//! (health probes, exit 0 when healthy), `-v` (version).

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use calico_node::config::NodeConfig;
use tokio_util::sync::CancellationToken;

fn usage() -> ExitCode {
    eprintln!(
        "usage: calico-node                  run the agent (configured by the environment)\n       \
         calico-node -startup         run start-up only (Node, pools, ClusterInformation)\n       \
         calico-node -felix-live      exit 0 if the agent is live (add -felix-ready for readiness)\n       \
         calico-node -bird-ready      exit 0 if every IPv4 BGP peer is Established (-bird6-ready: IPv6; -bird-live)\n       \
         calico-node -v               print the version"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let started = Instant::now();
    // RUST_LOG when set; else Felix's FELIX_LOGSEVERITYSCREEN (Calico's levels), else info.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = std::env::var("FELIX_LOGSEVERITYSCREEN")
            .map(|l| log_level(&l))
            .unwrap_or("info");
        tracing_subscriber::EnvFilter::new(level)
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags: Vec<&str> = args.iter().map(String::as_str).collect();
    match flags.as_slice() {
        [] => agent(started, false),
        ["-v" | "--version" | "-version"] => {
            println!("{}", calico_node::startup::CALICO_VERSION);
            ExitCode::SUCCESS
        }
        ["-startup"] => agent(started, true),
        probes
            if probes.iter().all(|f| {
                matches!(
                    *f,
                    "-felix-live"
                        | "-felix-ready"
                        | "-bird-live"
                        | "-bird-ready"
                        | "-bird6-live"
                        | "-bird6-ready"
                )
            }) =>
        {
            probe(probes)
        }
        _ => usage(),
    }
}

/// Calico's log severities (`Trace`, `Debug`, `Info`, `Warning`, `Error`, `Fatal`, any case)
/// as tracing levels; anything else is `info`.
fn log_level(severity: &str) -> &'static str {
    match severity.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "warning" | "warn" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => "info",
    }
}

fn config() -> Option<NodeConfig> {
    match NodeConfig::from_process_env() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!("invalid configuration: {e}");
            None
        }
    }
}

fn agent(started: Instant, startup_only: bool) -> ExitCode {
    let Some(cfg) = config() else {
        return ExitCode::FAILURE;
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        if startup_only {
            return match startup_only_run(&cfg).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            };
        }
        let shutdown = CancellationToken::new();
        let signals = {
            let sd = shutdown.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    tracing::error!("cannot install signal handlers");
                    sd.cancel();
                    return;
                };
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT: shutting down"),
                    () = sd.cancelled() => {}
                }
                sd.cancel();
            })
        };
        let result = calico_node::agent::run(cfg, shutdown.clone(), started).await;
        shutdown.cancel();
        let _ = signals.await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("calico-node failed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn startup_only_run(cfg: &NodeConfig) -> Result<(), String> {
    let store = cfg.datastore.connect().await.map_err(|e| e.to_string())?;
    let client = calico_client::Client::new(store);
    let host =
        calico_node::host::NetlinkHost::open(cfg.netns.as_deref()).map_err(|e| e.to_string())?;
    let facts = match host.netns() {
        Some(ns) => ns
            .run(calico_node::startup::HostFacts::detect)
            .map_err(|e| e.to_string())?,
        None => calico_node::startup::HostFacts::detect(),
    };
    let report = calico_node::startup::run(cfg, &client, &host, facts)
        .await
        .map_err(|e| e.to_string())?;
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    Ok(())
}

/// Calico's `-bird-live` / `-bird-ready` (and the `bird6` forms, for IPv6 peers): ask the
/// speaker's status socket. Live = it answers; ready = no graceful-restart recovery running
/// and every peer of the family Established (`node/pkg/health/bird`).
fn bird_probe(cfg: &NodeConfig, flag: &str) -> Result<(), String> {
    use calico_bgp_status::Family;
    if cfg.networking_backend != calico_node::config::NetworkingBackend::Bird {
        return Ok(());
    }
    let status = calico_bgp_status::query(&cfg.bgp_status_socket, Duration::from_secs(2))
        .map_err(|e| format!("BGP speaker is not running: {e}"))?;
    if flag.ends_with("-live") {
        return Ok(());
    }
    let family = if flag.starts_with("-bird6") {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    let mut only = status.clone();
    only.peers.retain(|p| p.family == family);
    calico_node::bgp::status::readiness(&only)
}

/// Calico's `-felix-live` / `-felix-ready`: GET the agent's health endpoint (inside
/// `CALICO_NODE_NETNS` when set); `-bird*` probes ask the BGP speaker ([`bird_probe`]).
fn probe(flags: &[&str]) -> ExitCode {
    let Some(cfg) = config() else {
        return ExitCode::FAILURE;
    };
    for f in flags {
        let path = match *f {
            "-felix-live" => "/liveness",
            "-felix-ready" => "/readiness",
            bird => {
                if let Err(e) = bird_probe(&cfg, bird) {
                    eprintln!("calico/node is not ready: {e}");
                    return ExitCode::FAILURE;
                }
                continue;
            }
        };
        let host = cfg.felix.health_host.clone();
        let port = cfg.felix.health_port;
        let get = move || http_status(&host, port, path);
        let status = match &cfg.netns {
            None => get(),
            Some(p) => match calico_netlink::NetNs::open(p) {
                Ok(ns) => ns.run(get).unwrap_or_else(|e| Err(e.to_string())),
                Err(e) => Err(e.to_string()),
            },
        };
        match status {
            Ok(200 | 204) => {}
            Ok(code) => {
                eprintln!("calico/node is not ready: felix {path} answered {code}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("calico/node is not ready: felix {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn http_status(host: &str, port: u16, path: &str) -> Result<u16, String> {
    let addr = calico_node::agent::resolve_prefer_v4(host, port).map_err(|e| e.to_string())?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("{addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}
