//! The speaker: one task owning the [`Rib`], the peer tasks and the listener.
//!
//! Peer tasks report [`PeerEvent`]s; the speaker applies them to the RIB, packs the
//! resulting Adj-RIB-Out changes into UPDATEs for every other established peer, and reports
//! best-path changes on the FIB channel ([`FibMessage`]) for calico-node to write into the
//! kernel. Configuration is applied live with [`Speaker::apply`]: peers that did not change
//! keep their sessions (Calico's confd + BIRD reconfigure behaves the same way: only changed
//! `protocol bgp` blocks restart).
//!
//! Inputs are handled in batches: after one input, whatever else is already queued is handled
//! too (up to [`BATCH_LIMIT`]) before the accumulated changes are packed and sent, so a burst
//! of UPDATEs from one peer leaves as few, full UPDATEs to the others (as BIRD's export
//! queue does) and as one FIB batch.
//!
//! Graceful restart (RFC 4724): the speaker reports [`FibMessage::InitialSyncComplete`]
//! once every configured peer has been established and has sent End-of-RIB for each
//! negotiated family, or after [`SpeakerOptions::restart_deferral`]. Until then the FIB
//! writer must keep routes a previous run left in the kernel (BIRD's `persist` + `-R`).
//! [`Speaker::shutdown`] with `graceful = true` closes sessions without a NOTIFICATION so
//! peers keep our routes for our restart time.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use calico_bgp::fsm::{GracefulRestartConfig, SessionConfig, State};
use calico_bgp::rib::{
    self, ExportPolicy, FullDump, ImportPolicy, LocRibChange, NextHopMode, OutDelta, OutRoute,
    PeerId, PeerInfo, PeerStats, PeerType, Rib, RibConfig, RibError, Route,
};
use calico_bgp_packet::{
    AsPath, Capability, CodecContext, Family, Message, MpNextHop, Nlri, Origin, PathAttributes,
    Update,
};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::listener::{self, PeerDirectory};
use crate::peer::{
    self, PeerCommand, PeerConfig, PeerEvent, PeerHandle, PeerSnapshot, SocketFactory,
};

/// How many queued inputs are handled before changes are flushed to peers and the FIB.
pub const BATCH_LIMIT: usize = 4096;

/// FIB changes handed to the writer as soon as this many have accumulated within a batch.
const FIB_CHUNK: usize = 2048;

/// One BGP session to run (what calico-node derives from a `calico_bgp_config::PeerPlan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// Calico's protocol name (`Mesh_10_0_0_2`, `Node_…`, `Global_…`), for status.
    pub name: String,
    pub address: IpAddr,
    /// Remote port (179 unless the peer listens elsewhere).
    pub port: u16,
    pub remote_as: u32,
    /// Our AS towards this peer when it differs from the speaker's (BGPPeer `localASNumber`).
    pub local_as: Option<u32>,
    /// Our source address for outbound connections (Calico: the node IP for mesh peers).
    pub source_address: Option<IpAddr>,
    /// Wait for the peer to connect (Calico's "higher address is passive" mesh rule).
    pub passive: bool,
    /// The peer is our route-reflector client (RFC 4456).
    pub rr_client: bool,
    /// TCP MD5 password (RFC 2385).
    pub password: Option<String>,
    /// Hold time we propose (BIRD's default 240 s).
    pub hold_time: u16,
    /// Keepalive time (BGPPeer `keepaliveTime`); `None` = hold / 3.
    pub keepalive_time: Option<u16>,
    /// Restart time we advertise in our graceful-restart capability (BIRD `graceful restart
    /// time`, Calico `maxRestartTime` / `nodeMeshMaxRestartTime`; default 120 s).
    pub restart_time: u16,
    pub next_hop_mode: NextHopMode,
    /// `numAllowedLocalASNumbers`.
    pub allow_local_as: u32,
    /// Connect retry, connect delay and idle hold (back-off start); Calico's BIRD template
    /// uses 5 s, 2 s and 5 s. Tests shorten them.
    pub connect_retry: Duration,
    pub connect_delay: Duration,
    pub idle_hold: Duration,
    /// Families offered and required on this session. Calico's BIRD runs IPv4 sessions for
    /// IPv4 routes and IPv6 sessions for IPv6 routes; [`PeerSpec::new`] does the same by
    /// the peer address.
    pub families: Vec<Family>,
}

impl PeerSpec {
    /// A peer with Calico's defaults.
    pub fn new(name: impl Into<String>, address: IpAddr, remote_as: u32) -> PeerSpec {
        PeerSpec {
            name: name.into(),
            address,
            port: 179,
            remote_as,
            local_as: None,
            source_address: None,
            passive: false,
            rr_client: false,
            password: None,
            hold_time: 240,
            keepalive_time: None,
            restart_time: 120,
            next_hop_mode: NextHopMode::Auto,
            allow_local_as: 0,
            connect_retry: Duration::from_secs(5),
            connect_delay: Duration::from_secs(2),
            idle_hold: Duration::from_secs(5),
            families: vec![if address.is_ipv4() {
                Family::IPV4_UNICAST
            } else {
                Family::IPV6_UNICAST
            }],
        }
    }
}

/// Everything the speaker runs; [`Speaker::apply`] takes the speaker to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub router_id: Ipv4Addr,
    pub local_as: u32,
    /// Route-reflector cluster id (Node `routeReflectorClusterID`): makes us a reflector.
    pub cluster_id: Option<Ipv4Addr>,
    /// Where to accept connections (Calico: `0.0.0.0:179`, or the node IP with
    /// `bindMode: NodeIP`); `None` accepts none (every peer must then be active).
    pub listen: Option<SocketAddr>,
    pub peers: Vec<PeerSpec>,
    /// Prefixes we originate: the node's affine IPAM blocks, borrowed /32s, static routes.
    pub originated: BTreeSet<IpNet>,
}

/// Settings fixed for the speaker's lifetime.
#[derive(Clone)]
pub struct SpeakerOptions {
    /// Opens sockets (calico-node: inside the node's network namespace).
    pub sockets: SocketFactory,
    /// We are restarting with the FIB kept (RFC 4724 Restart State and Forwarding State).
    pub restarting: bool,
    /// Longest wait for peers' End-of-RIB before the initial sync counts as complete.
    pub restart_deferral: Duration,
}

impl Default for SpeakerOptions {
    fn default() -> Self {
        SpeakerOptions {
            sockets: peer::default_socket_factory(),
            restarting: false,
            restart_deferral: Duration::from_secs(120),
        }
    }
}

/// Decides whether a learned best path goes into the kernel and with which metric (Calico's
/// `filter calico_kernel_programming`); `None` keeps it out. Set with
/// [`Speaker::set_kernel_policy`]; the default programs every learned route with metric 0.
pub type KernelPolicy = Arc<dyn Fn(&Route) -> Option<u32> + Send + Sync>;

/// What the kernel should have for a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FibTarget {
    /// The next hop (the IPv6 global one, as BIRD installs).
    pub gateway: IpAddr,
    /// Route priority (lower wins).
    pub metric: u32,
}

/// A change for the kernel: `target == None` removes our route for the prefix. Compact on
/// purpose (no reference to the RIB's route), so a burst of changes queued for the FIB writer
/// costs little memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibChange {
    pub prefix: IpNet,
    pub target: Option<FibTarget>,
}

impl FibChange {
    /// The gateway, when the prefix is to be routed.
    pub fn next_hop(&self) -> Option<IpAddr> {
        self.target.map(|t| t.gateway)
    }
}

/// The kernel route for a learned best path, if the policy wants one.
fn fib_target(policy: &KernelPolicy, route: &Route) -> Option<FibTarget> {
    let gateway = next_hop_ip(route)?;
    let metric = policy(route)?;
    Some(FibTarget { gateway, metric })
}

/// The address a route's next hop names.
pub fn next_hop_ip(route: &Route) -> Option<IpAddr> {
    match route.next_hop? {
        MpNextHop::Ipv4(a) => Some(IpAddr::V4(a)),
        MpNextHop::Ipv6 { global, link_local } => {
            if global.is_unspecified() {
                link_local.map(IpAddr::V6)
            } else {
                Some(IpAddr::V6(global))
            }
        }
    }
}

/// What the speaker tells the FIB writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibMessage {
    /// Learned best paths that changed (locally originated routes never appear here).
    Changes(Vec<FibChange>),
    /// Every peer has sent its initial table (or the deferral timer ran out): routes the
    /// FIB holds from an earlier run and that are not wanted now may be removed.
    InitialSyncComplete,
}

/// One peer in [`SpeakerStatus`].
#[derive(Debug, Clone, PartialEq)]
pub struct PeerStatus {
    pub spec: PeerSpec,
    pub session: PeerSnapshot,
    pub routes: PeerStats,
    pub messages: peer::MessageCounts,
}

/// The speaker's state for `calicoctl node status`, readiness and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakerStatus {
    pub router_id: Option<Ipv4Addr>,
    pub local_as: Option<u32>,
    pub listening: Option<SocketAddr>,
    pub started: SystemTime,
    pub initial_sync_complete: bool,
    pub peers: Vec<PeerStatus>,
    /// Prefixes in the Loc-RIB.
    pub loc_rib_routes: usize,
}

impl SpeakerStatus {
    /// Calico's readiness rule (`node/pkg/health/bird`): every configured peer established.
    pub fn all_established(&self) -> bool {
        self.peers
            .iter()
            .all(|p| p.session.state == State::Established)
    }
}

/// One path in the Loc-RIB (what BIRD's `show route` lists; CalicoNodeStatus `routes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibEntry {
    pub prefix: IpNet,
    /// The BGP next hop; `None` for our own routes.
    pub next_hop: Option<IpAddr>,
    /// The peer it came from; `None` for our own (originated) routes.
    pub from: Option<IpAddr>,
    /// The best path (what the FIB gets, BIRD's `*`).
    pub best: bool,
}

/// Errors of [`Speaker::apply`].
#[derive(Debug, thiserror::Error)]
pub enum SpeakerError {
    #[error("listening for BGP on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("BGP peer {address}: {reason}")]
    BadPeer { address: IpAddr, reason: String },
    #[error("originated route: {0}")]
    Route(#[from] RibError),
    #[error("the speaker task has ended")]
    Gone,
}

enum Input {
    Apply(
        Box<SpeakerConfig>,
        oneshot::Sender<Result<(), SpeakerError>>,
    ),
    Policies {
        import: SharedImport,
        export: SharedExport,
        done: oneshot::Sender<()>,
    },
    Peer {
        address: IpAddr,
        generation: u64,
        event: PeerEvent,
    },
    Status(oneshot::Sender<SpeakerStatus>),
    Routes(oneshot::Sender<Vec<RibEntry>>),
    Kernel(KernelPolicy, oneshot::Sender<()>),
    Shutdown {
        graceful: bool,
        done: oneshot::Sender<()>,
    },
}

/// A cloneable way to ask a running speaker for its status (for status servers).
#[derive(Clone)]
pub struct StatusHandle(mpsc::UnboundedSender<Input>);

impl StatusHandle {
    pub async fn status(&self) -> Result<SpeakerStatus, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send(Input::Status(tx))
            .map_err(|_| SpeakerError::Gone)?;
        rx.await.map_err(|_| SpeakerError::Gone)
    }
}

/// The handle of a running speaker.
pub struct Speaker {
    inputs: mpsc::UnboundedSender<Input>,
    task: JoinHandle<()>,
}

impl Speaker {
    /// Starts the speaker task (with no peers until the first [`Speaker::apply`]). Learned
    /// routes arrive on the returned receiver.
    pub fn start(options: SpeakerOptions) -> (Speaker, mpsc::UnboundedReceiver<FibMessage>) {
        let (inputs, rx) = mpsc::unbounded_channel();
        let (fib_tx, fib_rx) = mpsc::unbounded_channel();
        let core = Core {
            options,
            inputs: inputs.clone(),
            fib: fib_tx,
            cfg: None,
            rib: None,
            import: SharedImport(Arc::new(rib::AcceptAll)),
            export: SharedExport(Arc::new(rib::AcceptAll)),
            peers: HashMap::new(),
            directory: PeerDirectory::default(),
            listener: None,
            next_generation: 0,
            pending_out: HashMap::new(),
            pending_fib: Vec::new(),
            kernel: Arc::new(|_| Some(0)),
            started: SystemTime::now(),
            started_at: Instant::now(),
            initial_sync_complete: false,
        };
        let task = tokio::spawn(core.run(rx));
        (Speaker { inputs, task }, fib_rx)
    }

    /// Takes the speaker to `cfg`: peers added, removed or restarted (only those whose spec
    /// changed), originated prefixes announced or withdrawn, the listener (re)bound.
    pub async fn apply(&self, cfg: SpeakerConfig) -> Result<(), SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::Apply(Box::new(cfg), tx))
            .map_err(|_| SpeakerError::Gone)?;
        rx.await.map_err(|_| SpeakerError::Gone)?
    }

    /// Replaces the import and export policies and re-applies them to every route. They are
    /// kept for the speaker's lifetime (also across a RIB rebuilt for a new router id or AS).
    pub async fn set_policies(
        &self,
        import: Arc<dyn ImportPolicy + Send + Sync>,
        export: Arc<dyn ExportPolicy + Send + Sync>,
    ) -> Result<(), SpeakerError> {
        let (import, export) = (SharedImport(import), SharedExport(export));
        let (done, rx) = oneshot::channel();
        self.inputs
            .send(Input::Policies {
                import,
                export,
                done,
            })
            .map_err(|_| SpeakerError::Gone)?;
        rx.await.map_err(|_| SpeakerError::Gone)
    }

    /// Replaces the kernel policy; every learned best path is judged again and the FIB gets
    /// the differences.
    pub async fn set_kernel_policy(&self, policy: KernelPolicy) -> Result<(), SpeakerError> {
        let (done, rx) = oneshot::channel();
        self.inputs
            .send(Input::Kernel(policy, done))
            .map_err(|_| SpeakerError::Gone)?;
        rx.await.map_err(|_| SpeakerError::Gone)
    }

    /// A handle that only asks for the status, cloneable into other tasks.
    pub fn status_handle(&self) -> StatusHandle {
        StatusHandle(self.inputs.clone())
    }

    /// Every path of the Loc-RIB, best first per prefix.
    pub async fn routes(&self) -> Result<Vec<RibEntry>, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::Routes(tx))
            .map_err(|_| SpeakerError::Gone)?;
        rx.await.map_err(|_| SpeakerError::Gone)
    }

    pub async fn status(&self) -> Result<SpeakerStatus, SpeakerError> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .send(Input::Status(tx))
            .map_err(|_| SpeakerError::Gone)?;
        rx.await.map_err(|_| SpeakerError::Gone)
    }

    /// Ends every session and the task. `graceful`: close without a NOTIFICATION so peers
    /// that negotiated graceful restart keep our routes for our restart time (a restart);
    /// otherwise send Cease (a shutdown: peers withdraw our routes at once).
    pub async fn shutdown(self, graceful: bool) {
        let (done, rx) = oneshot::channel();
        if self.inputs.send(Input::Shutdown { graceful, done }).is_ok() {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }
}

struct PeerEntry {
    spec: PeerSpec,
    handle: PeerHandle,
    generation: u64,
    forwarder: JoinHandle<()>,
    /// Negotiated transmit context while established.
    tx_ctx: Option<CodecContext>,
    /// Families negotiated on the current session.
    families: Vec<Family>,
    /// Families whose End-of-RIB arrived on the current session.
    eor: HashSet<Family>,
    /// Has completed its initial table once (End-of-RIB for every family).
    synced: bool,
}

struct Core {
    options: SpeakerOptions,
    inputs: mpsc::UnboundedSender<Input>,
    fib: mpsc::UnboundedSender<FibMessage>,
    cfg: Option<SpeakerConfig>,
    rib: Option<Rib>,
    import: SharedImport,
    export: SharedExport,
    peers: HashMap<IpAddr, PeerEntry>,
    directory: PeerDirectory,
    listener: Option<(SocketAddr, Arc<TcpListener>, JoinHandle<()>)>,
    next_generation: u64,
    /// Per peer, the last change per prefix since the last flush.
    pending_out: HashMap<IpAddr, HashMap<IpNet, Option<Arc<OutRoute>>>>,
    pending_fib: Vec<FibChange>,
    kernel: KernelPolicy,
    started: SystemTime,
    started_at: Instant,
    initial_sync_complete: bool,
}

impl Core {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Input>) {
        let deferral = self.options.restart_deferral;
        loop {
            let deadline = (!self.initial_sync_complete && self.cfg.is_some())
                .then(|| self.started_at + deferral);
            let input = tokio::select! {
                i = rx.recv() => i,
                _ = sleep_until(deadline), if deadline.is_some() => {
                    tracing::info!(?deferral, "graceful-restart deferral over; initial sync complete");
                    self.complete_initial_sync();
                    continue;
                }
            };
            let Some(input) = input else { break };
            if self.handle(input).await {
                break;
            }
            for _ in 0..BATCH_LIMIT {
                match rx.try_recv() {
                    Ok(i) => {
                        if self.handle(i).await {
                            self.flush();
                            return;
                        }
                        // The FIB writer runs on its own thread: hand it work early so the
                        // kernel writes overlap the rest of the burst (BIRD interleaves its
                        // imports and kernel writes the same way).
                        if self.pending_fib.len() >= FIB_CHUNK {
                            let batch = std::mem::take(&mut self.pending_fib);
                            let _ = self.fib.send(FibMessage::Changes(batch));
                        }
                    }
                    Err(_) => break,
                }
            }
            self.flush();
            self.check_initial_sync();
        }
    }

    /// Handles one input; `true` ends the task.
    async fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Apply(cfg, reply) => {
                let r = self.apply(*cfg).await;
                // With no peers (or all already synced) the sync is complete right away;
                // a status asked for next must say so.
                self.check_initial_sync();
                let _ = reply.send(r);
            }
            Input::Policies {
                import,
                export,
                done,
            } => {
                self.set_policies(import, export);
                let _ = done.send(());
            }
            Input::Peer {
                address,
                generation,
                event,
            } => {
                if self
                    .peers
                    .get(&address)
                    .is_some_and(|p| p.generation == generation)
                {
                    self.peer_event(address, event);
                }
            }
            Input::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Input::Routes(reply) => {
                let _ = reply.send(self.rib_entries());
            }
            Input::Kernel(policy, done) => {
                self.kernel = policy;
                if let Some(rib) = self.rib.as_ref() {
                    let all: Vec<FibChange> = rib
                        .loc_rib()
                        .filter(|(_, r)| r.source.peer_type != PeerType::Local)
                        .map(|(p, r)| FibChange {
                            prefix: *p,
                            target: fib_target(&self.kernel, r),
                        })
                        .collect();
                    self.pending_fib.extend(all);
                }
                let _ = done.send(());
            }
            Input::Shutdown { graceful, done } => {
                self.flush();
                let peers: Vec<PeerEntry> = self.peers.drain().map(|(_, p)| p).collect();
                for p in peers {
                    p.forwarder.abort();
                    if graceful {
                        p.handle.abandon().await;
                    } else {
                        p.handle.stop().await;
                    }
                }
                if let Some((_, _, task)) = self.listener.take() {
                    task.abort();
                }
                let _ = done.send(());
                return true;
            }
        }
        false
    }

    fn status(&self) -> SpeakerStatus {
        let stats = self
            .rib
            .as_ref()
            .map(Rib::all_peer_stats)
            .unwrap_or_default();
        let mut peers: Vec<PeerStatus> = self
            .peers
            .values()
            .map(|p| PeerStatus {
                spec: p.spec.clone(),
                session: p.handle.snapshot(),
                messages: p.handle.message_counts(),
                routes: stats
                    .get(&PeerId(p.spec.address))
                    .copied()
                    .unwrap_or_default(),
            })
            .collect();
        peers.sort_by_key(|p| p.spec.address);
        SpeakerStatus {
            router_id: self.cfg.as_ref().map(|c| c.router_id),
            local_as: self.cfg.as_ref().map(|c| c.local_as),
            listening: self.listener.as_ref().map(|l| l.0),
            started: self.started,
            initial_sync_complete: self.initial_sync_complete,
            peers,
            loc_rib_routes: self.rib.as_ref().map_or(0, Rib::len),
        }
    }

    fn rib_entries(&self) -> Vec<RibEntry> {
        let Some(rib) = self.rib.as_ref() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (prefix, best) in rib.loc_rib() {
            for c in rib.candidates(prefix) {
                let local = c.source.peer_type == PeerType::Local;
                out.push(RibEntry {
                    prefix: *prefix,
                    next_hop: if local { None } else { next_hop_ip(c) },
                    from: (!local).then_some(c.source.address),
                    best: Arc::ptr_eq(c, best) || c.same_path(best),
                });
            }
        }
        out.sort_by(|a, b| a.prefix.cmp(&b.prefix).then(b.best.cmp(&a.best)));
        out
    }

    fn set_policies(&mut self, import: SharedImport, export: SharedExport) {
        self.import = import.clone();
        self.export = export.clone();
        let Some(rib) = self.rib.as_mut() else {
            return;
        };
        rib.set_import_policy(Box::new(import));
        rib.set_export_policy(Box::new(export));
        let ids: Vec<PeerId> = self.peers.keys().map(|a| PeerId(*a)).collect();
        let mut changes = Vec::new();
        for id in &ids {
            if let Ok(c) = rib.reimport(*id) {
                changes.extend(c);
            }
        }
        self.changed(changes);
        let Some(rib) = self.rib.as_mut() else { return };
        let mut deltas = Vec::new();
        for id in ids {
            if let Ok(d) = rib.refresh_exports(id) {
                deltas.extend(d);
            }
        }
        self.queue_deltas(deltas);
    }

    async fn apply(&mut self, cfg: SpeakerConfig) -> Result<(), SpeakerError> {
        for p in &cfg.peers {
            validate_peer(p, &cfg)?;
        }
        // A new identity (router id, AS, cluster id) restarts everything, as BIRD does when
        // `router id` or `local as` of the template changes.
        let identity_changed = self.cfg.as_ref().is_none_or(|old| {
            old.router_id != cfg.router_id
                || old.local_as != cfg.local_as
                || old.cluster_id != cfg.cluster_id
        });
        if identity_changed {
            let old: Vec<PeerEntry> = self.peers.drain().map(|(_, p)| p).collect();
            for p in old {
                self.directory.remove(&p.spec.address);
                p.forwarder.abort();
                tokio::spawn(p.handle.stop());
            }
            self.pending_out.clear();
            let rib = Rib::with_policies(
                RibConfig {
                    local_as: cfg.local_as,
                    router_id: cfg.router_id,
                    cluster_id: cfg.cluster_id,
                },
                Box::new(self.import.clone()),
                Box::new(self.export.clone()),
            );
            // Withdraw what the kernel had from the old RIB.
            if let Some(old) = self.rib.take() {
                let gone: Vec<FibChange> = old
                    .loc_rib()
                    .filter(|(_, r)| r.source.peer_type != PeerType::Local)
                    .map(|(p, _)| FibChange {
                        prefix: *p,
                        target: None,
                    })
                    .collect();
                self.pending_fib.extend(gone);
            }
            self.rib = Some(rib);
        }

        // Listener first, so keys for new peers can be set on it.
        let want_listen = cfg.listen;
        let configured = self.cfg.as_ref().and_then(|c| c.listen);
        if configured != want_listen || (self.listener.is_none() && want_listen.is_some()) {
            if let Some((_, _, task)) = self.listener.take() {
                task.abort();
            }
            if let Some(addr) = want_listen {
                let (local, listener, task) =
                    listener::listen_with(addr, self.directory.clone(), &self.options.sockets)
                        .await
                        .map_err(|source| SpeakerError::Listen { addr, source })?;
                // Keys of peers that stay.
                for p in self.peers.values() {
                    if let Some(pw) = &p.spec.password
                        && let Err(e) = peer::set_md5_key(
                            listener.as_ref(),
                            p.spec.address,
                            Some(pw.as_bytes()),
                        )
                    {
                        tracing::warn!(peer = %p.spec.address, error = %e, "setting the TCP MD5 key");
                    }
                }
                self.listener = Some((local, listener, task));
            }
        }

        // Originated prefixes, before any new session sends its initial table.
        let old_originated = self
            .cfg
            .as_ref()
            .filter(|_| !identity_changed)
            .map(|c| c.originated.clone())
            .unwrap_or_default();
        let mut changes = Vec::new();
        {
            let rib = self.rib.as_mut().ok_or(SpeakerError::Gone)?;
            for gone in old_originated.difference(&cfg.originated) {
                changes.extend(rib.withdraw_local(*gone));
            }
            for new in cfg.originated.difference(&old_originated) {
                changes.extend(rib.originate(*new, originated_attributes(), None)?);
            }
        }
        self.changed(changes);

        // Peers: remove the gone and the changed, then add the new and the changed.
        let wanted: HashMap<IpAddr, &PeerSpec> = cfg.peers.iter().map(|p| (p.address, p)).collect();
        let stale: Vec<IpAddr> = self
            .peers
            .iter()
            .filter(|(a, p)| wanted.get(a).is_none_or(|w| **w != p.spec))
            .map(|(a, _)| *a)
            .collect();
        for address in stale {
            self.remove_peer(address);
        }
        for spec in &cfg.peers {
            if !self.peers.contains_key(&spec.address) {
                self.add_peer(spec.clone(), &cfg)?;
            }
        }
        self.cfg = Some(cfg);
        Ok(())
    }

    fn remove_peer(&mut self, address: IpAddr) {
        let Some(p) = self.peers.remove(&address) else {
            return;
        };
        tracing::info!(peer = %address, name = %p.spec.name, "removing BGP peer");
        self.directory.remove(&address);
        if p.spec.password.is_some()
            && let Some((_, l, _)) = &self.listener
            && let Err(e) = peer::set_md5_key(l.as_ref(), address, None)
        {
            tracing::warn!(peer = %address, error = %e, "removing the TCP MD5 key");
        }
        p.forwarder.abort();
        tokio::spawn(p.handle.stop());
        self.pending_out.remove(&address);
        if let Some(rib) = self.rib.as_mut() {
            match rib.remove_peer(PeerId(address)) {
                Ok(changes) => self.changed(changes),
                Err(e) => tracing::warn!(peer = %address, error = %e, "removing from the RIB"),
            }
        }
    }

    fn add_peer(&mut self, spec: PeerSpec, cfg: &SpeakerConfig) -> Result<(), SpeakerError> {
        let rib = self.rib.as_mut().ok_or(SpeakerError::Gone)?;
        let local_as = spec.local_as.unwrap_or(cfg.local_as);
        let peer_type = if spec.remote_as == local_as {
            PeerType::Internal
        } else {
            PeerType::External
        };
        let mut info = PeerInfo::new(
            spec.address,
            Ipv4Addr::UNSPECIFIED,
            spec.remote_as,
            peer_type,
        );
        info.rr_client = spec.rr_client;
        let mut rib_cfg =
            rib::PeerConfig::new(info, v4_of(spec.source_address), v6_of(spec.source_address));
        rib_cfg.next_hop_mode = spec.next_hop_mode;
        rib_cfg.local_as = spec.local_as;
        rib_cfg.allow_local_as = spec.allow_local_as;
        rib_cfg.families = spec.families.clone();
        rib.add_peer(rib_cfg).map_err(|e| SpeakerError::BadPeer {
            address: spec.address,
            reason: e.to_string(),
        })?;

        if let Some(pw) = &spec.password
            && let Some((_, l, _)) = &self.listener
        {
            peer::set_md5_key(l.as_ref(), spec.address, Some(pw.as_bytes())).map_err(|e| {
                SpeakerError::BadPeer {
                    address: spec.address,
                    reason: format!("setting the TCP MD5 key on the listener: {e}"),
                }
            })?;
        }

        let mut session = SessionConfig::new(local_as, spec.remote_as, cfg.router_id);
        session.hold_time = spec.hold_time;
        session.keepalive_time = spec.keepalive_time;
        session.passive = spec.passive;
        session.connect_retry_time = spec.connect_retry;
        session.connect_delay = spec.connect_delay;
        session.idle_hold_time = spec.idle_hold;
        session.families = spec.families.clone();
        session.required_capabilities = spec
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        session.graceful_restart = Some(GracefulRestartConfig {
            restart_time: spec.restart_time,
            restart_state: self.options.restarting && !self.initial_sync_complete,
            forwarding_state: self.options.restarting,
            ..GracefulRestartConfig::default()
        });
        let mut pc = PeerConfig::new(session, SocketAddr::new(spec.address, spec.port));
        pc.local_address = spec.source_address;
        pc.md5_key = spec.password.as_ref().map(|p| p.as_bytes().to_vec());
        pc.sockets = self.options.sockets.clone();

        let generation = self.next_generation;
        self.next_generation += 1;
        let (ev_tx, mut ev_rx) = mpsc::channel(1024);
        let handle = peer::spawn_peer(pc, ev_tx);
        self.directory.insert(spec.address, handle.commander());
        let inputs = self.inputs.clone();
        let address = spec.address;
        let forwarder = tokio::spawn(async move {
            while let Some(event) = ev_rx.recv().await {
                if inputs
                    .send(Input::Peer {
                        address,
                        generation,
                        event,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
        tracing::info!(peer = %spec.address, name = %spec.name, remote_as = spec.remote_as, passive = spec.passive, "adding BGP peer");
        self.peers.insert(
            spec.address,
            PeerEntry {
                spec,
                handle,
                generation,
                forwarder,
                tx_ctx: None,
                families: Vec::new(),
                eor: HashSet::new(),
                synced: false,
            },
        );
        Ok(())
    }

    fn peer_event(&mut self, address: IpAddr, event: PeerEvent) {
        let id = PeerId(address);
        if self.rib.is_none() {
            return;
        }
        if matches!(event, PeerEvent::Down(_) | PeerEvent::Restarting { .. }) {
            self.session_gone(address);
        }
        let Some(rib) = self.rib.as_mut() else { return };
        let result: Result<Vec<LocRibChange>, RibError> = match event {
            PeerEvent::Up { negotiated, local } => {
                let Some(entry) = self.peers.get_mut(&address) else {
                    return;
                };
                entry.tx_ctx = Some(negotiated.tx);
                entry.families = negotiated.families.clone();
                entry.eor.clear();
                // What the session taught us: the peer's identifier, the families, and our
                // own address on it (the next hop for next-hop-self).
                let mut pc = match rib.peers().into_iter().find(|p| p.info.address == address) {
                    Some(pc) => pc.clone(),
                    None => return,
                };
                pc.info.router_id = negotiated.remote_id;
                pc.families = negotiated.families.clone();
                if let Some(local) = local {
                    match local.ip() {
                        IpAddr::V4(v4) => pc.local_v4 = pc.local_v4.or(Some(v4)),
                        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                            Some(v4) => pc.local_v4 = pc.local_v4.or(Some(v4)),
                            None => pc.local_v6 = pc.local_v6.or(Some(v6)),
                        },
                    }
                }
                if let Err(e) = rib.update_peer(pc) {
                    tracing::warn!(peer = %address, error = %e, "updating the peer in the RIB");
                }
                match rib.session_established(id) {
                    Ok(dump) => {
                        let ctx = negotiated.tx;
                        self.send_dump(address, dump, &ctx);
                    }
                    Err(e) => tracing::warn!(peer = %address, error = %e, "initial table"),
                }
                Ok(Vec::new())
            }
            PeerEvent::Down(reason) => {
                tracing::debug!(peer = %address, %reason, "session down; withdrawing its routes");
                rib.peer_down(id)
            }
            PeerEvent::Restarting {
                families,
                restart_time,
                ..
            } => {
                tracing::debug!(peer = %address, ?restart_time, "peer restarting; routes kept as stale");
                rib.peer_restarting(id, &families)
            }
            PeerEvent::StaleFlush(family) => rib.flush_stale(id, family),
            PeerEvent::Update { update, errors } => {
                if let Some(family) = update.end_of_rib_family() {
                    if let Some(entry) = self.peers.get_mut(&address) {
                        entry.eor.insert(family);
                        if entry.families.iter().all(|f| entry.eor.contains(f)) {
                            entry.synced = true;
                        }
                    }
                    Ok(Vec::new())
                } else {
                    rib.apply_delivered(id, &update, &errors)
                }
            }
            PeerEvent::RouteRefreshRequested(family) => {
                match rib.route_refresh(id, family) {
                    Ok(dump) => {
                        if let Some(ctx) = self.peers.get(&address).and_then(|p| p.tx_ctx) {
                            self.send_dump(address, dump, &ctx);
                        }
                    }
                    Err(e) => tracing::warn!(peer = %address, error = %e, "route refresh"),
                }
                Ok(Vec::new())
            }
        };
        match result {
            Ok(changes) => self.changed(changes),
            Err(e) => tracing::warn!(peer = %address, error = %e, "RIB rejected a peer event"),
        }
    }

    fn session_gone(&mut self, address: IpAddr) {
        if let Some(entry) = self.peers.get_mut(&address) {
            entry.tx_ctx = None;
            entry.eor.clear();
        }
        self.pending_out.remove(&address);
    }

    /// Records best-path changes: Adj-RIB-Out deltas for peers and FIB changes.
    fn changed(&mut self, changes: Vec<LocRibChange>) {
        if changes.is_empty() {
            return;
        }
        for c in &changes {
            let learned = |r: &Option<Arc<Route>>| {
                r.as_ref()
                    .filter(|r| r.source.peer_type != PeerType::Local)
                    .cloned()
            };
            let (old, new) = (learned(&c.old_best), learned(&c.new_best));
            if old.is_some() || new.is_some() {
                self.pending_fib.push(FibChange {
                    prefix: c.prefix,
                    target: new.as_ref().and_then(|r| fib_target(&self.kernel, r)),
                });
            }
        }
        let Some(rib) = self.rib.as_mut() else { return };
        let deltas = rib.export_changes(&changes);
        self.queue_deltas(deltas);
    }

    fn queue_deltas(&mut self, deltas: Vec<OutDelta>) {
        for d in deltas {
            self.pending_out
                .entry(d.peer.0)
                .or_default()
                .insert(d.prefix, d.route);
        }
    }

    /// Packs and sends what accumulated, and hands the FIB its batch.
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.pending_out);
        for (address, changes) in pending {
            let Some(entry) = self.peers.get(&address) else {
                continue;
            };
            let Some(ctx) = entry.tx_ctx else { continue };
            let messages = pack(changes.into_iter(), &[], &ctx, address);
            if !messages.is_empty() && entry.handle.send(PeerCommand::SendBatch(messages)).is_err()
            {
                tracing::debug!(peer = %address, "peer task gone while sending");
            }
        }
        if !self.pending_fib.is_empty() {
            let batch = std::mem::take(&mut self.pending_fib);
            let _ = self.fib.send(FibMessage::Changes(batch));
        }
    }

    fn send_dump(&mut self, address: IpAddr, dump: FullDump, ctx: &CodecContext) {
        // Anything pending for this peer is already part of the dump.
        self.pending_out.remove(&address);
        let Some(entry) = self.peers.get(&address) else {
            return;
        };
        let messages = pack(
            dump.routes.into_iter().map(|(p, r)| (p, Some(r))),
            &dump.end_of_rib,
            ctx,
            address,
        );
        if entry.handle.send(PeerCommand::SendBatch(messages)).is_err() {
            tracing::debug!(peer = %address, "peer task gone while sending its table");
        }
    }

    fn check_initial_sync(&mut self) {
        if self.initial_sync_complete || self.cfg.is_none() {
            return;
        }
        if self.peers.values().all(|p| p.synced) {
            tracing::info!(
                peers = self.peers.len(),
                "every peer sent its table; initial sync complete"
            );
            self.complete_initial_sync();
        }
    }

    fn complete_initial_sync(&mut self) {
        if !self.initial_sync_complete {
            self.initial_sync_complete = true;
            self.flush();
            let _ = self.fib.send(FibMessage::InitialSyncComplete);
        }
    }
}

/// A policy shared between the speaker and each RIB it builds.
#[derive(Clone)]
struct SharedImport(Arc<dyn ImportPolicy + Send + Sync>);

impl ImportPolicy for SharedImport {
    fn import(&self, peer: &PeerInfo, route: &Route) -> rib::PolicyResult {
        self.0.import(peer, route)
    }
}

#[derive(Clone)]
struct SharedExport(Arc<dyn ExportPolicy + Send + Sync>);

impl ExportPolicy for SharedExport {
    fn export(&self, peer: &PeerInfo, route: &Route) -> rib::PolicyResult {
        self.0.export(peer, route)
    }
}

fn validate_peer(p: &PeerSpec, cfg: &SpeakerConfig) -> Result<(), SpeakerError> {
    let bad = |reason: &str| SpeakerError::BadPeer {
        address: p.address,
        reason: reason.to_string(),
    };
    if p.address.is_unspecified() || p.address.is_multicast() {
        return Err(bad("not a unicast address"));
    }
    if p.remote_as == 0 {
        return Err(bad("AS number 0 is reserved (RFC 7607)"));
    }
    if p.hold_time != 0 && p.hold_time < 3 {
        return Err(bad(
            "hold time must be 0 or at least 3 seconds (RFC 4271 §4.2)",
        ));
    }
    if p.families.is_empty() {
        return Err(bad("no address family to exchange"));
    }
    if p.password.as_ref().is_some_and(|pw| pw.len() > 80) {
        return Err(bad("TCP MD5 password longer than 80 octets"));
    }
    if cfg.peers.iter().filter(|q| q.address == p.address).count() > 1 {
        return Err(bad("configured twice (one session per peer address)"));
    }
    Ok(())
}

fn v4_of(a: Option<IpAddr>) -> Option<Ipv4Addr> {
    match a {
        Some(IpAddr::V4(v4)) => Some(v4),
        _ => None,
    }
}

fn v6_of(a: Option<IpAddr>) -> Option<Ipv6Addr> {
    match a {
        Some(IpAddr::V6(v6)) => Some(v6),
        _ => None,
    }
}

/// Attributes of our own routes: ORIGIN IGP (BIRD's for static routes), empty AS_PATH; the
/// RIB adds LOCAL_PREF / our AS per peer.
fn originated_attributes() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        ..PathAttributes::default()
    }
}

/// Packs per-prefix changes into UPDATEs: withdrawals per family, announcements grouped by
/// identical attributes and next hop (so a block dump leaves as few full UPDATEs), then an
/// End-of-RIB for each of `end_of_rib`.
fn pack(
    changes: impl Iterator<Item = (IpNet, Option<Arc<OutRoute>>)>,
    end_of_rib: &[Family],
    ctx: &CodecContext,
    peer: IpAddr,
) -> Vec<Message> {
    let mut withdrawn: HashMap<Family, Vec<Nlri>> = HashMap::new();
    let mut groups: Vec<(Arc<OutRoute>, Family, Vec<Nlri>)> = Vec::new();
    let mut index: HashMap<(OutRoute, Family), usize> = HashMap::new();
    for (prefix, route) in changes {
        let family = rib::family_of(&prefix);
        let nlri = Nlri {
            prefix,
            path_id: None,
        };
        match route {
            None => withdrawn.entry(family).or_default().push(nlri),
            Some(r) => {
                let key = ((*r).clone(), family);
                match index.get(&key) {
                    Some(i) => groups[*i].2.push(nlri),
                    None => {
                        index.insert(key, groups.len());
                        groups.push((r, family, vec![nlri]));
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut push = |r: Result<Vec<Update>, calico_bgp_packet::EncodeError>| match r {
        Ok(us) => out.extend(us.into_iter().map(Message::Update)),
        Err(e) => tracing::error!(%peer, error = %e, "cannot encode an UPDATE; routes not sent"),
    };
    for (family, nlri) in withdrawn {
        push(Update::pack_withdrawals(family, &nlri, ctx));
    }
    for (route, family, nlri) in groups {
        let mut attrs = route.attrs.clone();
        let next_hop = if family == Family::IPV4_UNICAST {
            if let MpNextHop::Ipv4(a) = route.next_hop {
                attrs.next_hop = Some(a);
            }
            None
        } else {
            attrs.next_hop = None;
            Some(route.next_hop)
        };
        push(Update::pack_announcements(
            &attrs, family, next_hop, &nlri, ctx,
        ));
    }
    for f in end_of_rib {
        out.push(Message::Update(Update::end_of_rib(*f)));
    }
    out
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d.into()).await;
    }
}
