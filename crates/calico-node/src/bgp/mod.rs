//! calico-node's BGP part, where Calico runs confd + BIRD: the datastore is read and watched
//! ([`inputs`]), Calico's peering rules (`calico-bgp-config`) turn it into this node's plan,
//! [`translate`] turns the plan into the native speaker's configuration (applied live: only
//! changed sessions restart), and the [`fib`] writer puts learned routes into the kernel.
//! Status goes to `calicoctl node status` over the status socket and to Prometheus.
//!
//! Runs only with `CALICO_NETWORKING_BACKEND=bird` (Calico's default); with `vxlan` or
//! `none` Calico runs no BIRD either.

pub mod fib;
pub mod inputs;
pub mod nodestatus;
pub mod services;
pub mod status;
pub mod translate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calico_api::bgpfilter::BGPFilter;
use calico_bgp::fsm::State;
use calico_bgp_config::{ClusterInput, LocalInput, NodeBgpPlan};
use calico_bgp_policy::{CalicoPolicies, KernelVerdict};
use calico_bgp_speaker::peer::{SocketFactory, SocketFamily};
use calico_bgp_speaker::speaker::{
    FibMessage, Speaker, SpeakerConfig, SpeakerOptions, SpeakerStatus,
};
use calico_client::Client;
use calico_datastore::WatchRequest;
use calico_felix::dataplane::RouteDataplane;
use calico_felix::netlink::NetlinkDataplane;
use calico_netlink::NetNs;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use fib::{FibInput, FibStats};

/// Errors that stop the BGP part.
#[derive(Debug, thiserror::Error)]
pub enum BgpError {
    #[error("reading {what} from the datastore: {reason}")]
    Read { what: &'static str, reason: String },
    #[error("opening the kernel routing table for BGP routes: {0}")]
    Dataplane(String),
    #[error("starting the BGP FIB writer: {0}")]
    Thread(#[source] std::io::Error),
}

/// Settings of the BGP part (from calico-node's environment).
#[derive(Debug, Clone)]
pub struct BgpSettings {
    pub node_name: String,
    /// `CALICO_ROUTER_ID`.
    pub router_id_env: Option<String>,
    /// `CALICO_BGP_SECRETS_DIR`: where `secretKeyRef` passwords are read.
    pub secrets_dir: PathBuf,
    /// The node's network namespace (`CALICO_NODE_NETNS`); sockets and routes live there.
    pub netns: Option<PathBuf>,
    /// Full FIB reconciliation and datastore re-read interval.
    pub refresh: Duration,
    /// How long to gather datastore changes before recomputing the plan.
    pub debounce: Duration,
    /// Where `calicoctl node status` and `-bird-ready` ask (`CALICO_BGP_STATUS_SOCKET`).
    pub status_socket: PathBuf,
}

/// The latest speaker status, for the status socket, readiness and metrics.
#[derive(Clone, Default)]
pub struct StatusCell(Arc<Mutex<Option<SpeakerStatus>>>);

impl StatusCell {
    pub fn get(&self) -> Option<SpeakerStatus> {
        self.0.lock().ok().and_then(|s| s.clone())
    }

    fn set(&self, s: SpeakerStatus) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some(s);
        }
    }
}

/// Prometheus metrics of the speaker (BIRD has none; names follow Felix's `felix_*` style
/// under `calico_bgp_`).
#[derive(Clone)]
struct BgpMetrics {
    peer_established: Family<Vec<(String, String)>, Gauge>,
    routes_received: Family<Vec<(String, String)>, Gauge>,
    routes_exported: Family<Vec<(String, String)>, Gauge>,
    messages: Family<Vec<(String, String)>, Gauge>,
    peers_established: Gauge,
    peers_configured: Gauge,
    loc_rib_routes: Gauge,
    fib_routes: Gauge,
    fib_write_failures: Gauge,
}

impl BgpMetrics {
    fn register(registry: &mut Registry) -> BgpMetrics {
        let m = BgpMetrics {
            peer_established: Family::default(),
            routes_received: Family::default(),
            routes_exported: Family::default(),
            messages: Family::default(),
            peers_established: Gauge::default(),
            peers_configured: Gauge::default(),
            loc_rib_routes: Gauge::default(),
            fib_routes: Gauge::default(),
            fib_write_failures: Gauge::default(),
        };
        // Per-peer families, then plain gauges: (name, help, metric).
        let families = [
            (
                "calico_bgp_peer_established",
                "1 when the BGP session to the peer is Established",
                &m.peer_established,
            ),
            (
                "calico_bgp_peer_routes_received",
                "Routes in the peer's Adj-RIB-In",
                &m.routes_received,
            ),
            (
                "calico_bgp_peer_routes_exported",
                "Routes advertised to the peer",
                &m.routes_exported,
            ),
            (
                "calico_bgp_peer_messages",
                "BGP messages exchanged with the peer since the session was configured, by direction and type",
                &m.messages,
            ),
        ];
        for (name, help, metric) in families {
            registry.register(name, help, metric.clone());
        }
        let gauges = [
            (
                "calico_bgp_peers_established",
                "BGP sessions Established",
                &m.peers_established,
            ),
            (
                "calico_bgp_peers_configured",
                "BGP sessions configured",
                &m.peers_configured,
            ),
            (
                "calico_bgp_loc_rib_routes",
                "Prefixes in the Loc-RIB",
                &m.loc_rib_routes,
            ),
            (
                "calico_bgp_fib_routes",
                "Learned routes the speaker keeps in the kernel",
                &m.fib_routes,
            ),
            (
                "calico_bgp_fib_write_failures",
                "Kernel route writes that failed since start",
                &m.fib_write_failures,
            ),
        ];
        for (name, help, metric) in gauges {
            registry.register(name, help, metric.clone());
        }
        m
    }

    fn update(&self, s: &SpeakerStatus, fib: FibStats) {
        self.peer_established.clear();
        self.routes_received.clear();
        self.routes_exported.clear();
        self.messages.clear();
        let mut up = 0;
        for p in &s.peers {
            let labels = vec![
                ("peer".to_string(), p.spec.address.to_string()),
                ("name".to_string(), p.spec.name.clone()),
            ];
            let established = p.session.state == State::Established;
            up += i64::from(established);
            self.peer_established
                .get_or_create(&labels)
                .set(i64::from(established));
            self.routes_received
                .get_or_create(&labels)
                .set(p.routes.received as i64);
            self.routes_exported
                .get_or_create(&labels)
                .set(p.routes.exported as i64);
            for (direction, counts) in [
                ("sent", &p.messages.sent),
                ("received", &p.messages.received),
            ] {
                for (code, name) in calico_bgp_speaker::peer::MESSAGE_TYPES
                    .iter()
                    .enumerate()
                    .skip(1)
                {
                    let mut l = labels.clone();
                    l.push(("direction".to_string(), direction.to_string()));
                    l.push(("type".to_string(), name.to_string()));
                    self.messages.get_or_create(&l).set(counts[code] as i64);
                }
            }
        }
        self.peers_established.set(up);
        self.peers_configured.set(s.peers.len() as i64);
        self.loc_rib_routes.set(s.loc_rib_routes as i64);
        self.fib_routes.set(fib.routes as i64);
        self.fib_write_failures.set(fib.failures as i64);
    }
}

/// Sockets inside the node's namespace (a helper thread enters it to create each socket;
/// the socket stays bound to that namespace).
fn socket_factory(ns: Option<Arc<NetNs>>) -> SocketFactory {
    Arc::new(move |family| {
        let make = move || match family {
            SocketFamily::V4 => TcpSocket::new_v4(),
            SocketFamily::V6 => TcpSocket::new_v6(),
        };
        match &ns {
            Some(ns) => ns.run(make).map_err(std::io::Error::other)?,
            None => make(),
        }
    })
}

/// What [`prepare`] sets up before the agent's tasks start.
pub struct BgpPart {
    settings: BgpSettings,
    client: Client,
    speaker: Speaker,
    fib_rx: mpsc::UnboundedReceiver<FibMessage>,
    fib_tx: mpsc::UnboundedSender<FibInput>,
    fib_stats: Arc<Mutex<FibStats>>,
    fib_thread: Option<std::thread::JoinHandle<()>>,
    metrics: BgpMetrics,
    pub status: StatusCell,
    /// Status refreshes so far (metrics go with every fifth).
    status_refreshes: u64,
    /// When the configuration last changed (CalicoNodeStatus `lastReconfigurationTime`).
    reconfigured: std::time::SystemTime,
    /// What the current policies were built from.
    policy_inputs: Option<(NodeBgpPlan, NodeBgpPlan, Vec<BGPFilter>, services::Services)>,
}

/// Opens the kernel side and starts the speaker (no sessions until the first plan).
pub fn prepare(
    settings: BgpSettings,
    client: Client,
    registry: &mut Registry,
) -> Result<BgpPart, BgpError> {
    let mut dataplane = NetlinkDataplane::open(settings.netns.as_deref())
        .map_err(|e| BgpError::Dataplane(e.to_string()))?;
    // Routes of ours already in the kernel mean we are restarting with forwarding state
    // kept (RFC 4724 §4.1): tell peers so, and keep the routes until they have resent theirs.
    let restarting = dataplane
        .routes()
        .map_err(|e| BgpError::Dataplane(e.to_string()))?
        .iter()
        .any(|r| r.protocol == fib::RTPROT_BGP);
    if restarting {
        tracing::info!("BGP routes from an earlier run are in the kernel; restarting gracefully");
    }
    let ns = match &settings.netns {
        Some(p) => Some(Arc::new(
            NetNs::open(p).map_err(|e| BgpError::Dataplane(e.to_string()))?,
        )),
        None => None,
    };
    let options = SpeakerOptions {
        sockets: socket_factory(ns),
        restarting,
        restart_deferral: Duration::from_secs(120),
    };
    let (speaker, fib_rx) = Speaker::start(options);
    let (fib_tx, fib_inputs) = mpsc::unbounded_channel();
    let fib_stats = Arc::new(Mutex::new(FibStats::default()));
    let fib_thread = fib::spawn(dataplane, fib_inputs, settings.refresh, fib_stats.clone())
        .map_err(BgpError::Thread)?;
    Ok(BgpPart {
        settings,
        client,
        speaker,
        fib_rx,
        fib_tx,
        fib_stats,
        fib_thread: Some(fib_thread),
        metrics: BgpMetrics::register(registry),
        status: StatusCell::default(),
        policy_inputs: None,
        reconfigured: std::time::SystemTime::now(),
        status_refreshes: 0,
    })
}

impl BgpPart {
    /// Runs until `shutdown`; then closes the sessions without a NOTIFICATION (so peers keep
    /// our routes for our restart time) and leaves the kernel routes in place.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), BgpError> {
        // Speaker → FIB writer.
        let fib_tx = self.fib_tx.clone();
        let mut fib_rx = std::mem::replace(&mut self.fib_rx, mpsc::unbounded_channel().1);
        let forward = tokio::spawn(async move {
            while let Some(m) = fib_rx.recv().await {
                if fib_tx.send(FibInput::Speaker(m)).is_err() {
                    return;
                }
            }
        });

        // The status socket (`calicoctl node status`, `-bird-ready`).
        // Every query sees the speaker's state of that moment (calico-node's runtime is
        // multi-threaded, so the server's task may wait for the speaker in place); the last
        // refreshed status is the fallback.
        let cell = self.status.clone();
        let live = self.speaker.status_handle();
        let started = std::time::SystemTime::now();
        let provider: calico_bgp_status::StatusProvider = Arc::new(move || {
            let fresh = match tokio::runtime::Handle::try_current() {
                Ok(rt) if rt.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| rt.block_on(live.status())).ok()
                }
                _ => None,
            };
            fresh
                .or_else(|| cell.get())
                .map_or_else(|| status::not_configured(started), |s| status::convert(&s))
        });
        let status_server = match calico_bgp_status::serve(&self.settings.status_socket, provider)
            .await
        {
            Ok(h) => Some(h),
            Err(e) => {
                // calicoctl node status and -bird-ready will say the speaker is not
                // running; routing itself is unaffected.
                tracing::warn!(socket = %self.settings.status_socket.display(), error = %e, "BGP status socket unavailable");
                None
            }
        };

        let mut last_applied: Option<(SpeakerConfig, Vec<String>)> = None;
        let mut node_status = nodestatus::Reporter::default();
        let mut node_status_tick = tokio::time::interval(Duration::from_secs(2));
        // Status for calicoctl node status and the probes every second; Prometheus gauges every
        // fifth refresh (a full mesh has ~13 labelled series per peer).
        let mut status_tick = tokio::time::interval(Duration::from_secs(1));
        'outer: loop {
            let snap = tokio::select! {
                () = shutdown.cancelled() => break 'outer,
                r = inputs::load(&self.client, &self.settings.node_name) => r,
            };
            let snap = match snap {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "BGP: reading the datastore; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => break 'outer,
                        () = tokio::time::sleep(Duration::from_secs(2)) => continue 'outer,
                    }
                }
            };
            self.apply(&snap, &mut last_applied).await;

            // Wait for a change (or the periodic re-read).
            let start = snap.revision.saturating_add(1);
            let ds = self.client.datastore().clone();
            let host_prefix = format!("/calico/ipam/v2/host/{}/", self.settings.node_name);
            let w1 = ds
                .watch(WatchRequest::prefix(
                    "/calico/resources/v3/projectcalico.org/",
                    start,
                ))
                .await;
            let w2 = ds.watch(WatchRequest::prefix(&host_prefix, start)).await;
            let (mut w1, mut w2) = match (w1, w2) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(error = %e, "BGP: watching the datastore; re-reading");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue 'outer;
                }
            };
            let resync = tokio::time::sleep(self.settings.refresh);
            tokio::pin!(resync);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break 'outer,
                    _ = w1.next() => break,
                    _ = w2.next() => break,
                    () = &mut resync => break,
                    _ = status_tick.tick() => self.refresh_status().await,
                    _ = node_status_tick.tick() => {
                        node_status
                            .report(&self.client, &self.settings.node_name, &self.speaker, self.reconfigured)
                            .await;
                    }
                }
            }
            // Gather a burst of changes into one recomputation.
            tokio::select! {
                () = shutdown.cancelled() => break 'outer,
                () = tokio::time::sleep(self.settings.debounce) => {}
            }
        }

        tracing::info!("BGP: stopping; sessions closed for a graceful restart, kernel routes kept");
        if let Some(h) = status_server {
            h.abort();
        }
        self.speaker.shutdown(true).await;
        forward.abort();
        drop(self.fib_tx);
        if let Some(t) = self.fib_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        Ok(())
    }

    /// Calico's filters (BGPFilters, `calico_export_to_bgp_peers`, `calico_kernel_programming`)
    /// for the current plans; re-applied to every route only when they changed.
    async fn apply_policies(
        &mut self,
        v4: &NodeBgpPlan,
        v6: &NodeBgpPlan,
        filters: &[BGPFilter],
        svc: &services::Services,
    ) {
        let inputs = (v4.clone(), v6.clone(), filters.to_vec(), svc.clone());
        if self.policy_inputs.as_ref() == Some(&inputs) {
            return;
        }
        let by_name: BTreeMap<String, BGPFilter> = filters
            .iter()
            .map(|f| (f.metadata.name.clone(), f.clone()))
            .collect();
        let policies = match CalicoPolicies::with_services(&[v4, v6], &by_name, &svc.v4, &svc.v6) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "BGP: filters refused; keeping the previous ones");
                return;
            }
        };
        if let Err(e) = self
            .speaker
            .set_policies(Arc::from(policies.import()), Arc::from(policies.export()))
            .await
        {
            tracing::warn!(error = %e, "BGP: setting the route policies");
            return;
        }
        let kernel = policies.clone();
        let filter: calico_bgp_speaker::speaker::KernelPolicy =
            Arc::new(move |route| match kernel.kernel_accepts(route) {
                KernelVerdict::Accept { metric } => Some(metric),
                KernelVerdict::Reject => None,
            });
        if let Err(e) = self.speaker.set_kernel_policy(filter).await {
            tracing::warn!(error = %e, "BGP: setting the kernel policy");
            return;
        }
        self.policy_inputs = Some(inputs);
    }

    async fn refresh_status(&mut self) {
        if let Ok(s) = self.speaker.status().await {
            if self.status_refreshes.is_multiple_of(5) {
                let fib = self.fib_stats.lock().map(|g| *g).unwrap_or_default();
                self.metrics.update(&s, fib);
            }
            self.status_refreshes = self.status_refreshes.wrapping_add(1);
            self.status.set(s);
        }
    }

    async fn apply(
        &mut self,
        snap: &inputs::Snapshot,
        last: &mut Option<(SpeakerConfig, Vec<String>)>,
    ) {
        let cluster = ClusterInput {
            nodes: &snap.nodes,
            bgp_configurations: &snap.bgp_configurations,
            bgp_peers: &snap.bgp_peers,
            ip_pools: &snap.ip_pools,
            bgp_filters: &snap.bgp_filters,
        };
        let local = LocalInput {
            node_name: &self.settings.node_name,
            affine_blocks: &snap.affine_blocks,
            router_id_env: self.settings.router_id_env.as_deref(),
            local_workload_peers: &[],
        };
        let secrets = inputs::SecretFiles {
            dir: self.settings.secrets_dir.clone(),
        };
        let (v4, v6) = match calico_bgp_config::plan_both(&cluster, &local, &secrets) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "BGP: no plan for this node yet");
                return;
            }
        };
        let mut t = match translate::translate(&v4, &v6, &snap.workload_addresses) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "BGP: not running");
                return;
            }
        };
        let labels = snap
            .nodes
            .iter()
            .find(|n| n.metadata.name == self.settings.node_name)
            .map(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        let svc = services::services(
            &snap.bgp_configurations,
            &labels,
            t.speaker.cluster_id.is_some(),
        );
        t.warnings.extend(svc.warnings.iter().cloned());
        t.speaker.originated.extend(svc.originated());
        self.apply_policies(&v4, &v6, &snap.bgp_filters, &svc).await;
        let mut warnings: Vec<String> = v4
            .warnings
            .iter()
            .chain(&v6.warnings)
            .chain(&t.warnings)
            .cloned()
            .collect();
        warnings.sort();
        warnings.dedup();
        if last
            .as_ref()
            .is_some_and(|(c, w)| *c == t.speaker && *w == warnings)
        {
            return;
        }
        if last.as_ref().is_none_or(|(_, w)| *w != warnings) {
            for w in &warnings {
                tracing::warn!("BGP: {w}");
            }
        }
        tracing::info!(
            peers = t.speaker.peers.len(),
            originated = t.speaker.originated.len(),
            router_id = %t.speaker.router_id,
            as_number = t.speaker.local_as,
            inputs = ?inputs::summary(snap),
            "BGP: applying configuration"
        );
        if let Err(e) = self.speaker.apply(t.speaker.clone()).await {
            tracing::warn!(error = %e, "BGP: configuration refused; keeping the previous one");
            return;
        }
        let _ = self
            .fib_tx
            .send(FibInput::Statics(t.kernel_statics.clone()));
        *last = Some((t.speaker, warnings));
        self.reconfigured = std::time::SystemTime::now();
        // A new configuration refreshes the metrics at once too.
        self.status_refreshes = 0;
        self.refresh_status().await;
    }
}
