//! The policy half of Felix in calico-node (issue 6): datastore → calculation graph →
//! nftables ruleset → kernel, kept in step for as long as the agent runs.
//!
//! - [`inputs`]: one list + one watch of the `projectcalico.org/v3` root, filtered to the kinds
//!   the graph uses.
//! - `calico_calc::CalcGraph` turns them into this node's [`DataplaneModel`]: local endpoints
//!   with their tiers, active policies and profiles, IP sets.
//! - `calico_nft::compile` renders the model; `calico_felix::policy::PolicyManager` programs
//!   it (a full atomic replace at start and after trouble, minimal diffs otherwise) and repairs
//!   drift every `NftablesRefreshInterval` (Felix's default 90 s).
//!
//! Like Felix, a datastore outage leaves the programmed policy in force (traffic keeps being
//! policed with the last known rules), and a resource that fails to decode or to convert is
//! logged and leaves the previous state of that resource in force rather than removing it:
//! a typo in a policy must not open the network.

pub mod inputs;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calico_api::felixconfig::FelixConfigurationSpec;
use calico_calc::{CalcGraph, ResourceKey};
use calico_datastore::{Datastore, DatastoreError, EventKind, WatchRequest};
use calico_felix::policy::{NftDriver, NftMetrics, PolicyDataplane, PolicyManager, SyncAction};
use calico_nft::NftConfig;
use futures::FutureExt;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Settings of the policy loop.
#[derive(Debug, Clone)]
pub struct PolicySettings {
    /// Felix's host name: endpoints with `spec.node` equal to it are local.
    pub node_name: String,
    /// Program the table in this network namespace (else the agent's own).
    pub netns: Option<PathBuf>,
    /// `NftablesRefreshInterval` (90 s): how often the kernel's table is checked for drift.
    pub refresh: Duration,
    /// How soon to retry after a failed transaction.
    pub retry: Duration,
    /// How long to wait for more changes before programming a burst.
    pub debounce: Duration,
    /// The ruleset's settings (interface prefixes, failsafe ports, endpoint-to-host action).
    pub nft: NftConfig,
    /// The environment's layer of Felix's configuration (`FELIX_*`), when the loop follows
    /// the datastore's FelixConfigurations (`default` and `node.<name>`) while it runs:
    /// Felix restarts itself when they change; this loop re-derives its settings and
    /// reprograms the table instead. `None`: the settings stay as given.
    pub live_config: Option<FelixConfigurationSpec>,
}

impl PolicySettings {
    /// Follow the datastore's FelixConfigurations, layered under `env` as at start-up.
    pub fn with_live_config(mut self, env: FelixConfigurationSpec) -> PolicySettings {
        self.live_config = Some(env);
        self
    }
}

/// The two datastore layers of Felix's configuration this node reads.
#[derive(Debug, Default, Clone, PartialEq)]
struct FelixLayers {
    /// `node.<node name>`.
    node: Option<FelixConfigurationSpec>,
    /// `default`.
    global: Option<FelixConfigurationSpec>,
}

/// What the settings derived from Felix's configuration decide at run time.
#[derive(Debug, Clone, PartialEq)]
struct LiveSettings {
    nft: NftConfig,
    refresh: Duration,
}

/// Where FelixConfigurations are stored (`<root>felixconfigurations/<name>`).
const FELIX_CONFIG_PREFIX: &str = "/calico/resources/v3/projectcalico.org/felixconfigurations/";

/// Health of the policy loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatus {
    /// In sync with the datastore and the last transaction succeeded.
    pub ready: bool,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("datastore: {0}")]
    Datastore(#[from] DatastoreError),
    #[error("policy worker stopped: {0}")]
    Worker(String),
}

struct LoopMetrics {
    bad_resources: Counter,
    calc_updates: Counter,
}

/// The policy loop of one node.
pub struct PolicyAgent {
    settings: PolicySettings,
    store: Arc<dyn Datastore>,
    manager: Arc<Mutex<PolicyManager<Box<dyn PolicyDataplane>>>>,
    metrics: LoopMetrics,
    status_tx: watch::Sender<PolicyStatus>,
}

impl PolicyAgent {
    /// The loop over the real `nft` (in `settings.netns` when set).
    pub fn new(
        settings: PolicySettings,
        store: Arc<dyn Datastore>,
        registry: &mut Registry,
    ) -> PolicyAgent {
        let driver = NftDriver::new(settings.nft.table.clone(), settings.netns.clone());
        Self::with_dataplane(settings, store, registry, Box::new(driver))
    }

    /// The loop over any policy dataplane (tests use a recording one).
    pub fn with_dataplane(
        settings: PolicySettings,
        store: Arc<dyn Datastore>,
        registry: &mut Registry,
        dataplane: Box<dyn PolicyDataplane>,
    ) -> PolicyAgent {
        let nft_metrics = NftMetrics::register(registry);
        let bad_resources = Counter::default();
        registry.register(
            "felix_calc_bad_resources",
            "Datastore resources that could not be decoded or converted (their previous state stays in force)",
            bad_resources.clone(),
        );
        let calc_updates = Counter::default();
        registry.register(
            "felix_calc_updates",
            "Dataplane model updates produced by the calculation graph",
            calc_updates.clone(),
        );
        let (status_tx, _) = watch::channel(PolicyStatus {
            ready: false,
            detail: "waiting for the first datastore sync".into(),
        });
        PolicyAgent {
            settings,
            store,
            manager: Arc::new(Mutex::new(PolicyManager::new(dataplane, nft_metrics))),
            metrics: LoopMetrics {
                bad_resources,
                calc_updates,
            },
            status_tx,
        }
    }

    pub fn status(&self) -> watch::Receiver<PolicyStatus> {
        self.status_tx.subscribe()
    }

    fn set_status(&self, ready: bool, detail: impl Into<String>) {
        let s = PolicyStatus {
            ready,
            detail: detail.into(),
        };
        self.status_tx.send_if_modified(|cur| {
            let changed = *cur != s;
            *cur = s;
            changed
        });
    }

    /// Runs until `shutdown`. Datastore trouble is retried with back-off while the programmed
    /// table stays in force.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), PolicyError> {
        let mut backoff = Duration::from_millis(200);
        loop {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                r = self.session() => r,
            };
            match outcome {
                Ok(why) => {
                    tracing::info!(reason = %why, "policy: resyncing with the datastore");
                    backoff = Duration::from_millis(200);
                }
                Err(PolicyError::Datastore(e)) => {
                    self.set_status(false, format!("datastore unavailable: {e}"));
                    tracing::warn!(error = %e, retry_in = ?backoff, "policy: datastore sync failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes one stored key/value into an update for the graph; `None` for keys the graph
    /// does not use and for values that do not decode (logged and counted: the previous
    /// state of that resource stays in force).
    fn decode(
        &self,
        kv: &calico_datastore::KeyValue,
        deleted: bool,
    ) -> Option<(ResourceKey, Option<calico_api::Resource>)> {
        let key = inputs::classify(&kv.key)?;
        let rkey = ResourceKey::new(key.kind.kind, &key.namespace, &key.name);
        if deleted {
            return Some((rkey, None));
        }
        match inputs::decode(&key, kv) {
            Ok(r) => Some((rkey, Some(r))),
            Err(e) => {
                self.metrics.bad_resources.inc();
                tracing::warn!(key = %kv.key, error = %e, "policy: skipping an undecodable resource; its previous state stays in force");
                None
            }
        }
    }

    /// Whether a local host endpoint waits to be resolved by its expected IPs.
    fn needs_host_interfaces(&self, graph: &CalcGraph) -> bool {
        graph
            .model()
            .host_endpoints
            .values()
            .any(|h| h.interface_name.is_empty())
    }

    /// The host's interfaces and addresses; `Some(empty)` when they cannot be read (logged;
    /// such host endpoints then govern nothing until the next poll).
    async fn read_host_interfaces(
        &self,
    ) -> Option<std::collections::BTreeMap<String, std::collections::BTreeSet<std::net::IpAddr>>>
    {
        let netns = self.settings.netns.clone();
        match tokio::task::spawn_blocking(move || host_interfaces(netns.as_deref())).await {
            Ok(Ok(m)) => Some(m),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "policy: cannot list the host's interfaces for host endpoints without an interface name");
                Some(Default::default())
            }
            Err(e) => {
                tracing::warn!(error = %e, "policy: interface listing task failed");
                Some(Default::default())
            }
        }
    }

    /// Tracks the FelixConfigurations this node reads (`default`, `node.<name>`) when the
    /// settings follow the datastore. A value that does not decode keeps the previous layer
    /// (logged and counted, like any bad resource).
    fn felix_layer(
        &self,
        layers: &mut FelixLayers,
        kv: &calico_datastore::KeyValue,
        deleted: bool,
    ) {
        if self.settings.live_config.is_none() {
            return;
        }
        let Some(name) = kv.key.strip_prefix(FELIX_CONFIG_PREFIX) else {
            return;
        };
        let slot = if name == "default" {
            &mut layers.global
        } else if name.strip_prefix("node.") == Some(self.settings.node_name.as_str()) {
            &mut layers.node
        } else {
            return;
        };
        if deleted {
            *slot = None;
            return;
        }
        let Some(kind) = calico_api::kinds::kind_info("FelixConfiguration") else {
            return;
        };
        match calico_client::codec::decode_stored(kind, kv) {
            Ok(calico_api::Resource::FelixConfiguration(fc)) => *slot = Some(fc.spec),
            Ok(other) => {
                tracing::warn!(key = %kv.key, kind = other.kind(), "policy: unexpected kind under the FelixConfiguration key; ignored")
            }
            Err(e) => {
                self.metrics.bad_resources.inc();
                tracing::warn!(key = %kv.key, error = %e, "policy: undecodable FelixConfiguration; its previous state stays in force");
            }
        }
    }

    /// The settings Felix's layered configuration gives now; `None` when the settings do not
    /// follow the datastore.
    fn live_settings(&self, layers: &FelixLayers) -> Option<LiveSettings> {
        let env = self.settings.live_config.as_ref()?;
        let merged = merge_policy_spec(env, layers.node.as_ref(), layers.global.as_ref());
        let (s, warnings) = settings_from_felix(
            &self.settings.node_name,
            self.settings.netns.clone(),
            &self.settings.nft.iface_prefixes,
            &merged,
        );
        for w in warnings {
            tracing::warn!("{w}");
        }
        Some(LiveSettings {
            nft: NftConfig {
                table: self.settings.nft.table.clone(),
                shards: self.settings.nft.shards,
                ..s.nft
            },
            refresh: s.refresh,
        })
    }

    /// Feeds a batch to the graph at once (each endpoint's tiers are then recomputed once
    /// per batch, not once per policy).
    fn feed(&self, graph: &mut CalcGraph, batch: Vec<(ResourceKey, Option<calico_api::Resource>)>) {
        for e in graph.on_updates(batch) {
            self.metrics.bad_resources.inc();
            tracing::warn!(error = %e, "policy: resource not applied; its previous state stays in force");
        }
    }

    /// One list + watch session; returns why the watch must be re-established.
    async fn session(&self) -> Result<String, PolicyError> {
        let mut graph = CalcGraph::new(&self.settings.node_name);
        let listed = self.store.list(calico_client::keys::RESOURCES_ROOT).await?;
        let mut layers = FelixLayers::default();
        for kv in &listed.kvs {
            self.felix_layer(&mut layers, kv, false);
        }
        let mut live = LiveSettings {
            nft: self.settings.nft.clone(),
            refresh: self.settings.refresh,
        };
        if let Some(next) = self.live_settings(&layers) {
            if next != live {
                tracing::info!(
                    "policy: Felix configuration differs from the one read at start-up; using the datastore's"
                );
            }
            live = next;
        }
        let batch: Vec<(ResourceKey, Option<calico_api::Resource>)> = listed
            .kvs
            .iter()
            .filter_map(|kv| self.decode(kv, false))
            .collect();
        // A resync must not program this node's host endpoints found by their expected IPs
        // as absent for a moment: read the interfaces before the first compile.
        let unnamed_hep = batch.iter().any(|(_, r)| {
            matches!(r, Some(calico_api::Resource::HostEndpoint(h))
                if h.spec.node == self.settings.node_name && h.spec.interface_name.is_empty())
        });
        if unnamed_hep {
            live.nft.host_interfaces = self.read_host_interfaces().await;
        }
        self.feed(&mut graph, batch);
        let mut watch = self
            .store
            .watch(WatchRequest::prefix(
                calico_client::keys::RESOURCES_ROOT,
                listed.revision + 1,
            ))
            .await?;
        // A new session (a new graph) compiles from scratch.
        let mut fresh = true;
        let mut ok = self.program(&mut graph, &mut fresh, &live.nft).await?;
        let mut next_refresh = Instant::now() + live.refresh;
        let mut next_iface_poll = Instant::now() + HOST_IFACE_POLL;
        loop {
            let mut wake = if ok {
                next_refresh
            } else {
                (Instant::now() + self.settings.retry).min(next_refresh)
            };
            if live.nft.host_interfaces.is_some() {
                wake = wake.min(next_iface_poll);
            }
            let mut changed = false;
            let mut pending = Vec::new();
            let layers_before = layers.clone();
            tokio::select! {
                batch = watch.next() => {
                    match batch {
                        None => return Ok("watch ended".into()),
                        Some(Err(e)) => return Ok(format!("watch failed: {e}")),
                        Some(Ok(events)) => {
                            for ev in &events {
                                self.felix_layer(&mut layers, &ev.kv, ev.kind == EventKind::Delete);
                            }
                            pending.extend(events.iter().filter_map(|ev| {
                                self.decode(&ev.kv, ev.kind == EventKind::Delete)
                            }));
                            changed = true;
                        }
                    }
                    // Coalesce a burst (a calicoctl apply of many objects, a namespace of pods).
                    let until = tokio::time::Instant::now() + self.settings.debounce;
                    loop {
                        match watch.next().now_or_never() {
                            Some(Some(Ok(events))) => {
                                for ev in &events {
                                    self.felix_layer(&mut layers, &ev.kv, ev.kind == EventKind::Delete);
                                }
                                pending.extend(events.iter().filter_map(|ev| {
                                    self.decode(&ev.kv, ev.kind == EventKind::Delete)
                                }));
                            }
                            Some(None) => return Ok("watch ended".into()),
                            Some(Some(Err(e))) => return Ok(format!("watch failed: {e}")),
                            None => {
                                if tokio::time::Instant::now() >= until {
                                    break;
                                }
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
            if !pending.is_empty() {
                self.feed(&mut graph, pending);
            }
            if layers != layers_before
                && let Some(mut next) = self.live_settings(&layers)
                && {
                    next.nft.host_interfaces = live.nft.host_interfaces.clone();
                    next != live
                }
            {
                tracing::info!(
                    "policy: Felix configuration changed; reprogramming the policy table"
                );
                if next.nft != live.nft {
                    // Base chains and failsafes change: compile everything anew.
                    fresh = true;
                    changed = true;
                }
                if next.refresh != live.refresh {
                    next_refresh = Instant::now() + next.refresh;
                }
                live = next;
            }
            if changed || !ok {
                ok = self.program(&mut graph, &mut fresh, &live.nft).await?;
            }
            // Host endpoints without an interface name follow their expected IPs around the
            // host's interfaces (Felix's interface monitor; here a poll while any exists). The
            // graph's model is current only after `program` flushed it.
            let want_ifaces = self.needs_host_interfaces(&graph);
            if want_ifaces != live.nft.host_interfaces.is_some()
                || (want_ifaces && Instant::now() >= next_iface_poll)
            {
                next_iface_poll = Instant::now() + HOST_IFACE_POLL;
                let ifaces = if want_ifaces {
                    self.read_host_interfaces().await
                } else {
                    None
                };
                if ifaces != live.nft.host_interfaces {
                    live.nft.host_interfaces = ifaces;
                    fresh = true;
                    ok = self.program(&mut graph, &mut fresh, &live.nft).await?;
                }
            }
            if Instant::now() >= next_refresh {
                next_refresh = Instant::now() + live.refresh;
                ok = self.check_drift().await? && ok;
            }
        }
    }

    /// Compiles what changed in the graph's model and programs it. The manager's newest
    /// ruleset (its pending target, else what it applied) is the model as of the previous call,
    /// so only what the flushed updates touch is re-rendered (`calico_nft::recompile`);
    /// `fresh` forces a compile from scratch. `Ok(false)`: compiling or the transaction failed
    /// (the previous table stays in force) and will be retried.
    async fn program(
        &self,
        graph: &mut CalcGraph,
        fresh: &mut bool,
        cfg: &NftConfig,
    ) -> Result<bool, PolicyError> {
        let updates = graph.flush();
        self.metrics.calc_updates.inc_by(updates.len() as u64);
        let started = Instant::now();
        // Everything in place: no copy of a model or ruleset that can hold 10k policies.
        // calico-node's runtime is multi-threaded, so other tasks move to other workers
        // while this one compiles and waits for `nft`.
        let result = tokio::task::block_in_place(|| -> Result<SyncAction, String> {
            let mut m = self
                .manager
                .lock()
                .map_err(|_| "policy manager poisoned".to_string())?;
            let prev = m.target().or(m.applied());
            let next = match prev {
                Some(prev) if !*fresh => {
                    if updates.is_empty() {
                        None
                    } else {
                        Some(prev.recompile(graph.model(), &updates, cfg))
                    }
                }
                _ => Some(calico_nft::PolicyTables::compile(graph.model(), cfg)),
            };
            match next {
                None => {}
                Some(Ok(r)) => {
                    *fresh = false;
                    m.set_target(r);
                }
                Some(Err(e)) => {
                    // The next attempt compiles from scratch.
                    *fresh = true;
                    return Err(format!("compiling the ruleset: {e}"));
                }
            }
            m.sync().map_err(|e| e.to_string())
        });
        match result {
            Ok(action) => {
                tracing::debug!(?action, elapsed = ?started.elapsed(), "policy programmed");
                self.set_status(true, "in sync");
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "policy: programming failed; retrying");
                self.set_status(false, format!("programming policy failed: {e}"));
                Ok(false)
            }
        }
    }

    /// Felix's periodic refresh: re-applies the table when it drifted. `Ok(false)` on failure.
    async fn check_drift(&self) -> Result<bool, PolicyError> {
        let manager = Arc::clone(&self.manager);
        let result = tokio::task::spawn_blocking(move || -> Result<bool, String> {
            let mut m = manager
                .lock()
                .map_err(|_| "policy manager poisoned".to_string())?;
            m.check_drift().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| PolicyError::Worker(e.to_string()))?;
        match result {
            Ok(drift) => {
                if drift {
                    tracing::info!("policy: table drift repaired");
                }
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "policy: drift check failed; retrying");
                self.set_status(false, format!("checking the policy table failed: {e}"));
                Ok(false)
            }
        }
    }
}

/// How often the host's interfaces are read while a host endpoint without an interface name
/// waits to be resolved by its expected IPs.
const HOST_IFACE_POLL: Duration = Duration::from_secs(5);

/// The interfaces of the namespace at `netns` (the agent's own when `None`) with their
/// addresses, for resolving host endpoints by their expected IPs.
fn host_interfaces(
    netns: Option<&std::path::Path>,
) -> Result<std::collections::BTreeMap<String, std::collections::BTreeSet<std::net::IpAddr>>, String>
{
    use calico_netlink::{NetNs, RouteSocket};
    let ns = match netns {
        Some(p) => NetNs::open(p),
        None => NetNs::current(),
    }
    .map_err(|e| e.to_string())?;
    let socket = RouteSocket::open_in(&ns).map_err(|e| e.to_string())?;
    let links = socket.links().map_err(|e| e.to_string())?;
    let addrs = socket.addresses(None).map_err(|e| e.to_string())?;
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeSet<std::net::IpAddr>> =
        links
            .iter()
            .map(|l| (l.name.clone(), Default::default()))
            .collect();
    for a in addrs {
        if let Some(l) = links.iter().find(|l| l.index == a.index) {
            out.entry(l.name.clone()).or_default().insert(a.addr.addr());
        }
    }
    Ok(out)
}

/// The policy loop's settings from Felix's configuration (env `FELIX_*` merged into a
/// FelixConfiguration spec): `NftablesRefreshInterval` (default 90 s), `InterfacePrefix`,
/// `FailsafeInboundHostPorts` / `FailsafeOutboundHostPorts`, `DefaultEndpointToHostAction`,
/// `LogPrefix`, `IPv6Support`. Returns the settings and warnings about values that were not
/// understood.
pub fn settings_from_felix(
    node_name: &str,
    netns: Option<PathBuf>,
    iface_prefixes: &[String],
    spec: &calico_api::felixconfig::FelixConfigurationSpec,
) -> (PolicySettings, Vec<String>) {
    let mut warnings = Vec::new();
    let mut nft = NftConfig {
        iface_prefixes: iface_prefixes.to_vec(),
        // `IPv6Support` (default true): without it no IPv6 rules or sets are programmed.
        ipv6: spec.ipv6_support.unwrap_or(true),
        ..NftConfig::default()
    };
    // Entries without a net go to the failsafe sets; entries with one become rules for that
    // net (Felix's `failsafeInChain` / `failsafeOutChain`).
    type Entries = (Vec<(u8, u16)>, Vec<(u8, u16, ipnet::IpNet)>);
    let mut ports = |list: &Option<Vec<calico_api::felixconfig::ProtoPort>>,
                     field: &str|
     -> Option<Entries> {
        let list = list.as_ref()?;
        let mut out: Entries = (Vec::new(), Vec::new());
        for p in list {
            // `ProtoPort.protocol` defaults to TCP (`felix/config/param_types.go`).
            let proto = match p.protocol.to_ascii_lowercase().as_str() {
                "" | "tcp" => 6,
                "udp" => 17,
                "sctp" => 132,
                other => {
                    warnings.push(format!(
                        "{field}: protocol {other:?} of port {} is not tcp, udp or sctp; entry ignored",
                        p.port
                    ));
                    continue;
                }
            };
            if p.net.is_empty() {
                out.0.push((proto, p.port));
                continue;
            }
            // A CIDR or a single address (`cnet.ParseCIDROrIP`); Felix skips what does not
            // parse.
            let net = p
                .net
                .parse::<ipnet::IpNet>()
                .or_else(|_| p.net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(net) => out.1.push((proto, p.port, net.trunc())),
                Err(_) => warnings.push(format!(
                    "{field}: net {:?} of port {} is not a CIDR or an IP address; entry ignored",
                    p.net, p.port
                )),
            }
        }
        Some(out)
    };
    if let Some((v, nets)) = ports(
        &spec.failsafe_inbound_host_ports,
        "FailsafeInboundHostPorts",
    ) {
        nft.failsafe_inbound = v;
        nft.failsafe_inbound_nets = nets;
    }
    if let Some((v, nets)) = ports(
        &spec.failsafe_outbound_host_ports,
        "FailsafeOutboundHostPorts",
    ) {
        nft.failsafe_outbound = v;
        nft.failsafe_outbound_nets = nets;
    }
    nft.endpoint_to_host_action = match spec
        .default_endpoint_to_host_action
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "drop" => calico_nft::EndpointToHostAction::Drop,
        "accept" => calico_nft::EndpointToHostAction::Accept,
        "return" => calico_nft::EndpointToHostAction::Return,
        other => {
            warnings.push(format!(
                "DefaultEndpointToHostAction {other:?} is not Drop, Accept or Return; using Drop"
            ));
            calico_nft::EndpointToHostAction::Drop
        }
    };
    if !spec.log_prefix.is_empty() {
        nft.log_prefix = spec.log_prefix.clone();
    }
    // `NftablesRefreshInterval` [Default: 90s]; zero or negative means the default.
    let refresh = spec
        .nftables_refresh_interval
        .filter(|d| d.nanos() > 0)
        .map_or(Duration::from_secs(90), |d| {
            Duration::from_nanos(u64::try_from(d.nanos()).unwrap_or(u64::MAX))
        });
    (
        PolicySettings {
            node_name: node_name.to_string(),
            netns,
            refresh,
            retry: Duration::from_secs(1),
            debounce: Duration::from_millis(20),
            nft,
            live_config: None,
        },
        warnings,
    )
}

/// The policy fields of Felix's configuration with Felix's precedence
/// (`felix/config/config_params.go`: environment over the per-node FelixConfiguration
/// `node.<name>` over the global `default`). A field counts as set when present (lists,
/// durations) or non-empty (strings).
pub fn merge_policy_spec(
    env: &FelixConfigurationSpec,
    node: Option<&FelixConfigurationSpec>,
    global: Option<&FelixConfigurationSpec>,
) -> FelixConfigurationSpec {
    let layers: Vec<&FelixConfigurationSpec> =
        [Some(env), node, global].into_iter().flatten().collect();
    let first_some = |f: fn(&FelixConfigurationSpec) -> bool| layers.iter().find(|s| f(s)).copied();
    let mut out = env.clone();
    if let Some(s) = first_some(|s| s.failsafe_inbound_host_ports.is_some()) {
        out.failsafe_inbound_host_ports = s.failsafe_inbound_host_ports.clone();
    }
    if let Some(s) = first_some(|s| s.failsafe_outbound_host_ports.is_some()) {
        out.failsafe_outbound_host_ports = s.failsafe_outbound_host_ports.clone();
    }
    if let Some(s) = first_some(|s| !s.default_endpoint_to_host_action.is_empty()) {
        out.default_endpoint_to_host_action = s.default_endpoint_to_host_action.clone();
    }
    if let Some(s) = first_some(|s| !s.log_prefix.is_empty()) {
        out.log_prefix = s.log_prefix.clone();
    }
    if let Some(s) = first_some(|s| s.nftables_refresh_interval.is_some()) {
        out.nftables_refresh_interval = s.nftables_refresh_interval;
    }
    out
}

/// Reads `node.<node>` and `default` FelixConfigurations (absent ones are skipped; a read
/// error is logged and that layer skipped) and merges them under `env`.
pub async fn policy_spec_from_datastore(
    client: &calico_client::Client,
    node: &str,
    env: &FelixConfigurationSpec,
) -> FelixConfigurationSpec {
    let read = |name: String| {
        let client = client.clone();
        async move {
            match client
                .get_as::<calico_api::felixconfig::FelixConfiguration>("", &name)
                .await
            {
                Ok(fc) => Some(fc.spec),
                Err(e) if e.is_does_not_exist() => None,
                Err(e) => {
                    tracing::warn!(felixconfiguration = %name, error = %e, "policy: cannot read Felix configuration; using the other layers");
                    None
                }
            }
        }
    };
    let node_spec = read(format!("node.{node}")).await;
    let global = read("default".to_string()).await;
    merge_policy_spec(env, node_spec.as_ref(), global.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> FelixConfigurationSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn environment_wins_over_node_over_global() {
        let env = spec(serde_json::json!({"logPrefix": "env"}));
        let node = spec(serde_json::json!({
            "failsafeInboundHostPorts": [{"protocol": "TCP", "port": 81}],
            "logPrefix": "node"
        }));
        let global = spec(serde_json::json!({
            "failsafeInboundHostPorts": [{"protocol": "TCP", "port": 82}],
            "failsafeOutboundHostPorts": [],
            "defaultEndpointToHostAction": "Accept",
            "nftablesRefreshInterval": "30s"
        }));
        let m = merge_policy_spec(&env, Some(&node), Some(&global));
        assert_eq!(m.log_prefix, "env");
        assert_eq!(m.failsafe_inbound_host_ports.as_ref().unwrap()[0].port, 81);
        assert_eq!(m.failsafe_outbound_host_ports, Some(vec![]));
        assert_eq!(m.default_endpoint_to_host_action, "Accept");
        assert!(m.nftables_refresh_interval.is_some());
        let m = merge_policy_spec(&env, None, None);
        assert_eq!(m, env);
    }
}
