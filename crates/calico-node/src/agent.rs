//! The running agent: start-up, then the IPAM service, Felix (routes), health, metrics and
//! status reports side by side until shutdown. What `calico-node` with no arguments runs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_client::Client;
use calico_datastore::Datastore;
use calico_felix::{Felix, FelixConfig, FelixError};
use calico_netlink::{NetNs, NetlinkError};
use prometheus_client::registry::Registry;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::NodeConfig;
use crate::health::{HealthAggregator, serve_http};
use crate::host::NetlinkHost;
use crate::ipam_service::{self, IpamService, ServiceError};
use crate::startup::{self, HostFacts, StartupError};
use crate::status::{self, StatusReporter};

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("connecting to the datastore: {0}")]
    Datastore(#[source] calico_client::ClientError),
    #[error("network namespace {path}: {source}")]
    Netns {
        path: String,
        #[source]
        source: NetlinkError,
    },
    #[error("start-up failed: {0}")]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Ipam(#[from] ServiceError),
    #[error("{what} on {host}:{port}: {source}")]
    Listen {
        what: &'static str,
        host: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("felix: {0}")]
    Felix(#[from] FelixError),
    #[error("BGP: {0}")]
    Bgp(#[from] crate::bgp::BgpError),
    #[error("policy: {0}")]
    Policy(#[from] crate::policy::PolicyError),
    #[error("{0} stopped unexpectedly")]
    Stopped(&'static str),
}

/// Binds a TCP listener inside `ns` (the socket stays in the namespace it was created in),
/// or in the agent's own namespace. An empty host means every address.
pub fn bind_tcp(
    ns: Option<&NetNs>,
    host: &str,
    port: u16,
) -> std::io::Result<std::net::TcpListener> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    let bind = move || -> std::io::Result<std::net::TcpListener> {
        let l = std::net::TcpListener::bind(resolve_prefer_v4(host, port)?)?;
        l.set_nonblocking(true)?;
        Ok(l)
    };
    match ns {
        None => bind(),
        Some(ns) => ns.run(bind).map_err(std::io::Error::other)?,
    }
}

/// Resolves `host:port` (inside the calling thread's namespace, through the resolver) the way
/// Go's `net.Listen` does for a name: the first IPv4 address if there is one, else the first
/// address. So `localhost` is 127.0.0.1 even where `::1` is listed first.
pub fn resolve_prefer_v4(host: &str, port: u16) -> std::io::Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} resolves to no address"),
            )
        })
}

/// Addresses the agent actually listens on (ports may have been 0).
#[derive(Debug, Clone, Default)]
pub struct Listening {
    pub health: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

/// Runs the agent until `shutdown` is cancelled (or a component fails). `started` is the
/// process start, for status-report uptime.
pub async fn run(
    cfg: NodeConfig,
    shutdown: CancellationToken,
    started: Instant,
) -> Result<(), AgentError> {
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let store: Arc<dyn Datastore> = cfg
        .datastore
        .connect()
        .await
        .map_err(AgentError::Datastore)?;
    let client = Client::new(store.clone());
    let netns_err = |source| AgentError::Netns {
        path: cfg
            .netns
            .as_ref()
            .map_or_else(|| "(own)".into(), |p| p.display().to_string()),
        source,
    };
    let host = Arc::new(NetlinkHost::open(cfg.netns.as_deref()).map_err(netns_err)?);

    // Calico's start-up, with IPv6 support judged inside the node's namespace.
    let facts = match host.netns() {
        Some(ns) => ns.run(HostFacts::detect).map_err(netns_err)?,
        None => HostFacts::detect(),
    };
    let report = startup::run(&cfg, &client, host.as_ref(), facts).await?;
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    tracing::info!(
        node = %cfg.node_name,
        ipv4 = %report.node.spec.bgp.as_ref().map(|b| b.ipv4_address.as_str()).unwrap_or(""),
        pools_created = ?report.pools_created,
        "start-up complete"
    );

    let mut registry = Registry::default();
    let felix_host = cfg
        .felix
        .felix_hostname
        .clone()
        .unwrap_or_else(|| cfg.node_name.clone());
    crate::metrics::register_felix_host(&mut registry, &felix_host);
    if cfg.felix.prometheus_process_metrics_enabled {
        crate::metrics::register_process_metrics(&mut registry);
    }
    let health = HealthAggregator::new();

    // The IPAM service.
    let service = Arc::new(IpamService::new(
        store.clone(),
        &cfg.node_name,
        &mut registry,
    )?);
    let listener = ipam_service::bind_socket(&cfg.ipam_socket)?;
    let ipam_health = health.register("ipam_service", true, true, None);
    tracing::info!(socket = %cfg.ipam_socket.display(), "IPAM service listening");

    // Felix.
    let mut fcfg = FelixConfig::new(felix_host.clone());
    if let Some(d) = cfg.felix.route_refresh_interval {
        fcfg.route_refresh_interval = d;
    }
    fcfg.interface_prefixes = cfg.felix.interface_prefixes.clone();
    fcfg.netns = cfg.netns.clone();
    fcfg.ipv6_enabled = cfg.felix.ipv6_support;
    // `IPForwarding` (Felix default `Enabled`): anything but `Disabled` turns forwarding on.
    fcfg.ip_forwarding = !cfg
        .felix
        .spec
        .ip_forwarding
        .eq_ignore_ascii_case("disabled");
    let felix = Felix::new(fcfg, store.clone(), &mut registry)?;

    // Felix's policy half: calculation graph → nftables.
    let (policy_settings, policy_warnings) = crate::policy::settings_from_felix(
        &felix_host,
        cfg.netns.clone(),
        &cfg.felix.interface_prefixes,
        &crate::policy::policy_spec_from_datastore(&client, &felix_host, &cfg.felix.spec).await,
    );
    for w in &policy_warnings {
        tracing::warn!("{w}");
    }
    // FelixConfiguration changes apply while the agent runs (Felix restarts itself for them).
    let mut policy_settings = policy_settings.with_live_config(cfg.felix.spec.clone());
    policy_settings.nft.shards = cfg.nft_shards;
    let policy = crate::policy::PolicyAgent::new(policy_settings, store.clone(), &mut registry);
    let mut policy_status = policy.status();
    let policy_health = health.register("felix-policy", true, true, None);

    // The BGP speaker (where Calico runs BIRD), with Calico's default backend only.
    let bgp = if cfg.networking_backend == crate::config::NetworkingBackend::Bird {
        let settings = crate::bgp::BgpSettings {
            node_name: cfg.node_name.clone(),
            router_id_env: cfg.router_id.clone(),
            secrets_dir: cfg.bgp_secrets_dir.clone(),
            netns: cfg.netns.clone(),
            refresh: cfg
                .felix
                .route_refresh_interval
                .unwrap_or(Duration::from_secs(90)),
            debounce: Duration::from_millis(100),
            status_socket: cfg.bgp_status_socket.clone(),
        };
        Some(crate::bgp::prepare(
            settings,
            client.clone(),
            &mut registry,
        )?)
    } else {
        None
    };
    let mut felix_status = felix.status();
    let felix_health = health.register("felix", true, true, None);

    // Listeners, inside the node's namespace.
    let health_listener = if cfg.felix.health_enabled {
        let l = bind_tcp(host.netns(), &cfg.felix.health_host, cfg.felix.health_port).map_err(
            |source| AgentError::Listen {
                what: "health endpoint",
                host: cfg.felix.health_host.clone(),
                port: cfg.felix.health_port,
                source,
            },
        )?;
        Some(
            tokio::net::TcpListener::from_std(l).map_err(|source| AgentError::Listen {
                what: "health endpoint",
                host: cfg.felix.health_host.clone(),
                port: cfg.felix.health_port,
                source,
            })?,
        )
    } else {
        None
    };
    let metrics_listener = if cfg.felix.prometheus_metrics_enabled {
        let err = |source| AgentError::Listen {
            what: "metrics endpoint",
            host: cfg.felix.prometheus_metrics_host.clone(),
            port: cfg.felix.prometheus_metrics_port,
            source,
        };
        let l = bind_tcp(
            host.netns(),
            &cfg.felix.prometheus_metrics_host,
            cfg.felix.prometheus_metrics_port,
        )
        .map_err(err)?;
        Some(tokio::net::TcpListener::from_std(l).map_err(err)?)
    } else {
        None
    };
    let listening = Listening {
        health: health_listener.as_ref().and_then(|l| l.local_addr().ok()),
        metrics: metrics_listener.as_ref().and_then(|l| l.local_addr().ok()),
    };
    tracing::info!(health = ?listening.health, metrics = ?listening.metrics, "endpoints listening");

    let registry = Arc::new(registry);
    let (interval, ttl) = status::effective_intervals(&client, &felix_host, &cfg.felix).await;
    let reporter = StatusReporter::new(
        store.clone(),
        &cfg.felix.status_region(),
        &felix_host,
        ttl,
        started,
    );

    let mut tasks: JoinSet<(&'static str, Result<(), AgentError>)> = JoinSet::new();
    {
        let sd = shutdown.clone();
        let path = cfg.ipam_socket.clone();
        let svc = service.clone();
        tasks.spawn(async move {
            ipam_service::run(listener, path, svc, sd).await;
            ("ipam service", Ok(()))
        });
        ipam_health.report(true, true, "");
    }
    {
        let sd = shutdown.clone();
        tasks.spawn(async move { ("felix", felix.run(sd).await.map_err(AgentError::from)) });
    }
    {
        let sd = shutdown.clone();
        tasks.spawn(async move { ("policy", policy.run(sd).await.map_err(AgentError::from)) });
    }
    {
        // The policy loop's status feeds the aggregator.
        let sd = shutdown.clone();
        tasks.spawn(async move {
            loop {
                {
                    let s = policy_status.borrow_and_update().clone();
                    policy_health.report(true, s.ready, s.detail);
                }
                tokio::select! {
                    () = sd.cancelled() => return ("policy health", Ok(())),
                    r = policy_status.changed() => if r.is_err() {
                        if !sd.is_cancelled() {
                            policy_health.report(false, false, "policy loop stopped");
                        }
                        return ("policy health", Ok(()));
                    }
                }
            }
        });
    }
    if let Some(bgp) = bgp {
        let sd = shutdown.clone();
        tasks.spawn(async move { ("bgp", bgp.run(sd).await.map_err(AgentError::from)) });
    }
    {
        // Felix's status feeds the aggregator.
        let sd = shutdown.clone();
        tasks.spawn(async move {
            loop {
                {
                    let s = felix_status.borrow_and_update().clone();
                    felix_health.report(s.live, s.ready, s.detail);
                }
                tokio::select! {
                    () = sd.cancelled() => return ("felix health", Ok(())),
                    r = felix_status.changed() => if r.is_err() {
                        // Felix is gone (its task reports why, unless this is shutdown).
                        if !sd.is_cancelled() {
                            felix_health.report(false, false, "felix stopped");
                        }
                        return ("felix health", Ok(()));
                    }
                }
            }
        });
    }
    {
        // Datastore reachability (readiness only, as a lost datastore leaves pods working).
        let sd = shutdown.clone();
        let ds_health = health.register("datastore", false, true, Some(Duration::from_secs(30)));
        let store = store.clone();
        tasks.spawn(async move {
            loop {
                match tokio::time::timeout(Duration::from_secs(5), store.current_revision()).await {
                    Ok(Ok(_)) => ds_health.report(true, true, ""),
                    Ok(Err(e)) => ds_health.report(true, false, format!("unreachable: {e}")),
                    Err(_) => ds_health.report(true, false, "no answer within 5s"),
                }
                tokio::select! {
                    () = sd.cancelled() => return ("datastore check", Ok(())),
                    () = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
        });
    }
    if let Some(l) = health_listener {
        let sd = shutdown.clone();
        let router = health.router();
        tasks.spawn(async move {
            let r = serve_http(l, router, sd).await;
            (
                "health endpoint",
                r.map_err(|source| AgentError::Listen {
                    what: "health endpoint",
                    host: String::new(),
                    port: 0,
                    source,
                }),
            )
        });
    }
    if let Some(l) = metrics_listener {
        let sd = shutdown.clone();
        let router = crate::metrics::router(registry.clone());
        tasks.spawn(async move {
            let r = serve_http(l, router, sd).await;
            (
                "metrics endpoint",
                r.map_err(|source| AgentError::Listen {
                    what: "metrics endpoint",
                    host: String::new(),
                    port: 0,
                    source,
                }),
            )
        });
    }
    {
        let sd = shutdown.clone();
        tasks.spawn(async move {
            reporter.run(interval, status::FIRST_REPORT_DELAY, sd).await;
            ("status reporter", Ok(()))
        });
    }
    {
        let sd = shutdown.clone();
        let (cfg, client, host) = (cfg.clone(), client.clone(), host.clone());
        tasks.spawn(async move {
            startup::monitor_addresses(&cfg, &client, host.as_ref(), sd).await;
            ("address monitor", Ok(()))
        });
    }

    // Until shutdown, any task ending is a failure of the agent: stop everything.
    const OPTIONAL: [&str; 2] = ["status reporter", "address monitor"];
    let mut first_err = None;
    while let Some(joined) = tasks.join_next().await {
        let (name, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "agent task panicked");
                first_err.get_or_insert(AgentError::Stopped("a task"));
                shutdown.cancel();
                continue;
            }
        };
        match result {
            Err(e) => {
                tracing::error!(component = name, error = %e, "component failed; shutting down");
                first_err.get_or_insert(e);
                shutdown.cancel();
            }
            // These return at once when disabled (no reports; no autodetection).
            Ok(()) if !shutdown.is_cancelled() && !OPTIONAL.contains(&name) => {
                tracing::error!(component = name, "component stopped; shutting down");
                first_err.get_or_insert(AgentError::Stopped(name));
                shutdown.cancel();
            }
            Ok(()) => tracing::debug!(component = name, "stopped"),
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => {
            tracing::info!("calico-node stopped");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_resolve_to_ipv4_first() {
        assert_eq!(
            resolve_prefer_v4("localhost", 9099).unwrap(),
            "127.0.0.1:9099".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve_prefer_v4("::1", 1).unwrap(),
            "[::1]:1".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            resolve_prefer_v4("0.0.0.0", 0).unwrap(),
            "0.0.0.0:0".parse::<SocketAddr>().unwrap()
        );
    }
}
