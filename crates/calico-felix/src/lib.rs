//! The Felix part of calico-node that issue 4 needs: it follows this node's WorkloadEndpoints and
//! affine IPAM blocks in the datastore and keeps the kernel's main table in step: a
//! `<ip>/32 dev cali… scope link` route per local workload address, a blackhole per affine
//! block, all tagged with Felix's route protocol (80), plus the host-side interface settings and
//! neighbour entries Felix re-asserts (`felix/dataplane/linux/endpoint_mgr.go`, `route_mgr.go`,
//! `felix/routetable`).
//!
//! Layout: [`model`] decodes datastore records, [`routes`] is the pure planner, [`manager`]
//! applies a plan through the [`dataplane::RouteDataplane`] trait, [`netlink`] is that trait on
//! the real kernel, and [`Felix`] is the loop tying the datastore watch, periodic refresh and
//! retries together. Policy (issue 6) will join here.
//!
//! Must not depend on calico-node (which composes this crate), on the CNI plugin, or on any
//! kernel state outside the network namespace it is given.

pub mod dataplane;
pub mod manager;
pub mod metrics;
pub mod model;
pub mod netlink;
pub mod policy;
pub mod routes;
mod syncer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calico_datastore::{Datastore, DatastoreError};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::dataplane::{DataplaneError, RouteDataplane};
use crate::manager::{RouteManager, SyncReport};
use crate::metrics::{FelixMetrics, resync_state};
use crate::model::LocalState;

/// Felix's route protocol (`felix/dataplane/linux/dataplanedefs` `ProtoBoot` is what the CNI
/// plugin uses; 80 = 0x50 is Felix's own, shown as `proto 80` by `ip route`).
pub const FELIX_ROUTE_PROTOCOL: u8 = 80;

/// Settings of the Felix part (Felix's names in comments).
#[derive(Debug, Clone)]
pub struct FelixConfig {
    /// `FelixHostname` / calico-node's `NODENAME`.
    pub node_name: String,
    /// `RouteRefreshInterval` (90 s): how often the whole table is re-read and repaired.
    pub route_refresh_interval: Duration,
    /// `InterfacePrefix` (`cali`).
    pub interface_prefixes: Vec<String>,
    /// Protocol our routes carry.
    pub route_protocol: u8,
    /// Run the dataplane in this network namespace instead of the agent's own.
    pub netns: Option<PathBuf>,
    /// How soon to retry after a failed change or a route waiting for its interface.
    pub retry_interval: Duration,
    /// `IPForwarding` (`Enabled`): turn on host-wide IPv4 forwarding (and IPv6 with
    /// `ipv6_enabled`), re-asserted on every full sync.
    pub ip_forwarding: bool,
    /// `IPv6Support` (true).
    pub ipv6_enabled: bool,
}

impl FelixConfig {
    /// Felix's defaults for node `node_name`.
    pub fn new(node_name: impl Into<String>) -> FelixConfig {
        FelixConfig {
            node_name: node_name.into(),
            route_refresh_interval: Duration::from_secs(90),
            interface_prefixes: vec!["cali".into()],
            route_protocol: FELIX_ROUTE_PROTOCOL,
            netns: None,
            retry_interval: Duration::from_secs(1),
            ip_forwarding: true,
            ipv6_enabled: true,
        }
    }
}

/// Health of the Felix part, as the agent's `/liveness` and `/readiness` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FelixStatus {
    pub live: bool,
    /// In sync with the datastore and the last dataplane apply succeeded.
    pub ready: bool,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FelixError {
    #[error("dataplane: {0}")]
    Dataplane(#[from] DataplaneError),
    #[error("datastore: {0}")]
    Datastore(#[from] DatastoreError),
    #[error("dataplane worker stopped: {0}")]
    Worker(String),
}

type SharedManager = Arc<Mutex<RouteManager<Box<dyn RouteDataplane>>>>;

/// The Felix loop of one node.
pub struct Felix {
    cfg: FelixConfig,
    store: Arc<dyn Datastore>,
    manager: SharedManager,
    metrics: FelixMetrics,
    status_tx: watch::Sender<FelixStatus>,
}

impl Felix {
    /// Felix on the real kernel (netlink, in `cfg.netns` when set).
    pub fn new(
        cfg: FelixConfig,
        store: Arc<dyn Datastore>,
        registry: &mut Registry,
    ) -> Result<Felix, FelixError> {
        let dp = netlink::NetlinkDataplane::open(cfg.netns.as_deref())?;
        Ok(Self::with_dataplane(cfg, store, registry, Box::new(dp)))
    }

    /// Felix over any dataplane (tests use an in-memory kernel).
    pub fn with_dataplane(
        cfg: FelixConfig,
        store: Arc<dyn Datastore>,
        registry: &mut Registry,
        dataplane: Box<dyn RouteDataplane>,
    ) -> Felix {
        let metrics = FelixMetrics::register(registry);
        metrics.resync_state.set(resync_state::WAIT_FOR_READY);
        let (status_tx, _) = watch::channel(FelixStatus {
            live: true,
            ready: false,
            detail: "waiting for the first datastore sync".into(),
        });
        Felix {
            manager: Arc::new(Mutex::new(RouteManager::new(dataplane, cfg.route_protocol))),
            cfg,
            store,
            metrics,
            status_tx,
        }
    }

    pub fn status(&self) -> watch::Receiver<FelixStatus> {
        self.status_tx.subscribe()
    }

    fn set_status(&self, ready: bool, detail: impl Into<String>) {
        let s = FelixStatus {
            live: true,
            ready,
            detail: detail.into(),
        };
        self.status_tx.send_if_modified(|cur| {
            let changed = *cur != s;
            *cur = s;
            changed
        });
    }

    /// Runs until `shutdown` is cancelled. Datastore trouble is retried with back-off (the
    /// routes already programmed stay as they are meanwhile: an outage never tears down
    /// working pods); only a dataplane worker crash ends the loop with an error.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), FelixError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            self.metrics.resyncs_started.inc();
            self.metrics.resync_state.set(resync_state::RESYNC);
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = self.sync_session() => r,
            };
            match outcome {
                Ok(why) => {
                    tracing::info!(reason = %why, "resyncing with the datastore");
                    backoff = Duration::from_millis(200);
                }
                Err(FelixError::Datastore(e)) => {
                    self.metrics.resync_state.set(resync_state::WAIT_FOR_READY);
                    self.set_status(false, format!("datastore unavailable: {e}"));
                    tracing::warn!(error = %e, retry_in = ?backoff, "datastore sync failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e),
            }
            if shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// One list + watch session; returns when the watch must be re-established.
    async fn sync_session(&self) -> Result<String, FelixError> {
        let node = self.cfg.node_name.clone();
        let (mut state, mut watches) = syncer::snapshot(self.store.as_ref(), &node).await?;
        self.metrics.resync_state.set(resync_state::IN_SYNC);
        let mut full = true;
        let mut next_refresh = Instant::now() + self.cfg.route_refresh_interval;
        loop {
            let report = self.apply(&state, full).await?;
            full = false;
            let retry = !report.failures.is_empty() || report.waiting > 0;
            let wake = if retry {
                (Instant::now() + self.cfg.retry_interval).min(next_refresh)
            } else {
                next_refresh
            };
            tokio::select! {
                ev = watches.next(&node, &mut state) => {
                    if let Some(why) = ev? {
                        return Ok(why);
                    }
                    // Coalesce a burst: take whatever else is already queued before applying.
                    while let Some(more) = watches.try_next(&node, &mut state)? {
                        if let Some(why) = more {
                            return Ok(why);
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    if Instant::now() >= next_refresh {
                        full = true;
                        next_refresh = Instant::now() + self.cfg.route_refresh_interval;
                    }
                }
            }
        }
    }

    async fn apply(&self, state: &LocalState, full: bool) -> Result<SyncReport, FelixError> {
        let started = Instant::now();
        let manager = Arc::clone(&self.manager);
        let snapshot = state.clone();
        let forwarding = (full && self.cfg.ip_forwarding).then_some(self.cfg.ipv6_enabled);
        let result = tokio::task::spawn_blocking(move || {
            let mut m = manager
                .lock()
                .map_err(|_| DataplaneError("route manager poisoned".into()))?;
            if let Some(ipv6) = forwarding {
                m.dataplane_mut().enable_forwarding(true, ipv6)?;
            }
            m.sync(&snapshot, full)
        })
        .await
        .map_err(|e| FelixError::Worker(e.to_string()))?;
        let elapsed = started.elapsed().as_secs_f64();
        if full {
            self.metrics.route_table_resync_seconds.observe(elapsed);
        } else {
            self.metrics
                .int_dataplane_apply_time_seconds
                .observe(elapsed);
        }
        self.metrics
            .active_local_endpoints
            .set(state.endpoints.len() as i64);
        self.metrics
            .cluster_num_workload_endpoints
            .set(state.cluster_endpoints as i64);
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                self.metrics.int_dataplane_failures.inc();
                self.set_status(false, format!("reading the kernel failed: {e}"));
                tracing::warn!(error = %e, "dataplane sync failed; retrying");
                return Ok(SyncReport {
                    failures: vec![e.to_string()],
                    ..SyncReport::default()
                });
            }
        };
        self.metrics
            .route_table_num_routes
            .set(report.managed_routes as i64);
        self.metrics
            .route_table_num_ifaces
            .set(report.interfaces as i64);
        if report.failures.is_empty() {
            self.set_status(true, "in sync");
        } else {
            self.metrics.int_dataplane_failures.inc();
            for f in &report.failures {
                tracing::warn!(error = %f, "dataplane change failed; retrying");
            }
            self.set_status(
                false,
                format!("dataplane changes failed: {}", report.failures.join("; ")),
            );
        }
        Ok(report)
    }
}

impl RouteDataplane for Box<dyn RouteDataplane> {
    fn links(&mut self) -> Result<std::collections::BTreeMap<String, u32>, DataplaneError> {
        (**self).links()
    }
    fn routes(&mut self) -> Result<Vec<routes::KernelRoute>, DataplaneError> {
        (**self).routes()
    }
    fn replace_route(&mut self, route: &routes::KernelRoute) -> Result<(), DataplaneError> {
        (**self).replace_route(route)
    }
    fn delete_route(&mut self, route: &routes::KernelRoute) -> Result<bool, DataplaneError> {
        (**self).delete_route(route)
    }
    fn configure_interface(
        &mut self,
        interface: &str,
        ipv4: bool,
        ipv6: bool,
    ) -> Result<(), DataplaneError> {
        (**self).configure_interface(interface, ipv4, ipv6)
    }
    fn set_neighbour(
        &mut self,
        index: u32,
        ip: std::net::IpAddr,
        mac: [u8; 6],
    ) -> Result<(), DataplaneError> {
        (**self).set_neighbour(index, ip, mac)
    }
    fn enable_forwarding(&mut self, ipv4: bool, ipv6: bool) -> Result<(), DataplaneError> {
        (**self).enable_forwarding(ipv4, ipv6)
    }
}

#[cfg(test)]
mod loop_tests;
