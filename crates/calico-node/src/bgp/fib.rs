//! The FIB writer: routes the speaker learned become kernel routes `<prefix> via <next hop>
//! proto bgp` (route protocol 186, `RTPROT_BGP`), what BIRD's `protocol kernel` does for
//! Calico (`bird.cfg`: `learn; persist; graceful restart; merge paths on`).
//!
//! Changes are written one by one as they come (netlink replace/delete), so convergence
//! does not wait for a full table dump; a full reconciliation (dump + diff) runs once the
//! speaker reports its initial sync complete and then every `refresh` interval, removing
//! routes of our protocol nobody wants (left by an earlier run, or by a lost write) and
//! repairing drift. Until the initial sync is complete nothing unknown is removed: that is
//! how a restart keeps forwarding (RFC 4724 §4.1 "Forwarding State"; BIRD's `persist` + `-R`).
//! On exit the routes stay (`persist`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_bgp::rib::Route;
use calico_bgp_speaker::speaker::{FibMessage, next_hop_ip};
use calico_felix::dataplane::RouteDataplane;
use calico_felix::manager::RouteManager;
use calico_felix::routes::{DesiredRoutes, Target, wanted_route};
use ipnet::IpNet;
use tokio::sync::mpsc;

/// `RTPROT_BGP` (`/etc/iproute2/rt_protos`: `186 bgp`): what `ip route` shows as `proto bgp`.
pub const RTPROT_BGP: u8 = 186;

/// Decides whether a learned best path goes into the kernel, and with which metric (Calico's
/// `filter calico_kernel_programming`): `None` keeps it out.
pub type KernelFilter = Arc<dyn Fn(&Route) -> Option<u32> + Send + Sync>;

/// What the FIB writer is told.
pub enum FibInput {
    Speaker(FibMessage),
    /// `<peer>/32 via <gateway>` statics (BGPPeer `reachableBy`).
    Statics(Vec<(IpNet, IpAddr)>),
    /// A new kernel filter (pools changed): every learned route is judged again.
    Filter(KernelFilter),
}

/// Counters for metrics and status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FibStats {
    /// Routes we want in the kernel.
    pub routes: usize,
    /// Kernel writes that failed (retried at the next reconciliation).
    pub failures: u64,
    pub initial_sync_complete: bool,
}

/// The writer's state, independent of threads so it can be driven in tests.
pub struct FibWriter<D: RouteDataplane> {
    manager: RouteManager<D>,
    learned: BTreeMap<IpNet, Arc<Route>>,
    statics: Vec<(IpNet, IpAddr)>,
    filter: KernelFilter,
    desired: DesiredRoutes,
    links: BTreeMap<String, u32>,
    stats: FibStats,
    last_reconcile: Option<Instant>,
}

impl<D: RouteDataplane> FibWriter<D> {
    pub fn new(dataplane: D) -> Self {
        FibWriter {
            manager: RouteManager::new(dataplane, RTPROT_BGP),
            learned: BTreeMap::new(),
            statics: Vec::new(),
            filter: Arc::new(|_| Some(0)),
            desired: DesiredRoutes::default(),
            links: BTreeMap::new(),
            stats: FibStats::default(),
            last_reconcile: None,
        }
    }

    pub fn stats(&self) -> FibStats {
        self.stats
    }

    pub fn dataplane_mut(&mut self) -> &mut D {
        self.manager.dataplane_mut()
    }

    /// Applies one input.
    pub fn handle(&mut self, input: FibInput) {
        match input {
            FibInput::Speaker(FibMessage::Changes(changes)) => {
                for c in changes {
                    match c.route {
                        Some(r) => {
                            self.learned.insert(c.prefix, r);
                        }
                        None => {
                            self.learned.remove(&c.prefix);
                        }
                    }
                    self.update(c.prefix);
                }
            }
            FibInput::Speaker(FibMessage::InitialSyncComplete) => {
                self.stats.initial_sync_complete = true;
                self.reconcile();
            }
            FibInput::Statics(statics) => {
                let mut touched: Vec<IpNet> = self.statics.iter().map(|s| s.0).collect();
                touched.extend(statics.iter().map(|s| s.0));
                self.statics = statics;
                for p in touched {
                    self.update(p);
                }
            }
            FibInput::Filter(f) => {
                self.filter = f;
                let prefixes: Vec<IpNet> = self.learned.keys().copied().collect();
                for p in prefixes {
                    self.update(p);
                }
            }
        }
        self.stats.routes = self.desired.routes.len();
    }

    /// What `prefix` should be: a static wins over a learned route (BIRD's static
    /// protocol has the higher preference).
    fn target(&self, prefix: &IpNet) -> Option<Target> {
        if let Some((_, via)) = self.statics.iter().find(|s| s.0 == *prefix) {
            return Some(Target::Via {
                gateway: *via,
                interface: None,
                metric: 0,
            });
        }
        let route = self.learned.get(prefix)?;
        let metric = (self.filter)(route)?;
        next_hop_ip(route).map(|gateway| Target::Via {
            gateway,
            interface: None,
            metric,
        })
    }

    /// Writes the change of one prefix to the kernel.
    fn update(&mut self, prefix: IpNet) {
        let want = self.target(&prefix);
        let had = self.desired.routes.get(&prefix).cloned();
        if want == had {
            return;
        }
        let metric = |t: &Option<Target>| match t {
            Some(Target::Via { metric, .. }) => Some(*metric),
            _ => None,
        };
        // The kernel keys IPv4 routes by (destination, metric): a new metric is a new
        // route, so the old one goes first.
        let mut result = Ok(());
        if want.is_some()
            && metric(&had) != metric(&want)
            && let Some(old) = had
                .as_ref()
                .and_then(|t| wanted_route(prefix, t, &self.links, RTPROT_BGP))
        {
            result = self.manager.dataplane_mut().delete_route(&old).map(|_| ());
        }
        let result = result.and_then(|()| match (&want, &had) {
            (Some(t), _) => match wanted_route(prefix, t, &self.links, RTPROT_BGP) {
                Some(r) => self.manager.dataplane_mut().replace_route(&r),
                None => Ok(()),
            },
            (None, Some(old)) => match wanted_route(prefix, old, &self.links, RTPROT_BGP) {
                Some(r) => self.manager.dataplane_mut().delete_route(&r).map(|_| ()),
                None => Ok(()),
            },
            (None, None) => Ok(()),
        });
        if let Err(e) = result {
            self.stats.failures += 1;
            tracing::warn!(%prefix, error = %e, "writing a BGP route to the kernel; retried at the next reconciliation");
        }
        match want {
            Some(t) => {
                self.desired.routes.insert(prefix, t);
            }
            None => {
                self.desired.routes.remove(&prefix);
            }
        }
    }

    /// Dump, diff and repair; only after the initial sync (before it, unknown routes of ours
    /// are a previous run's forwarding state and stay).
    pub fn reconcile(&mut self) {
        if !self.stats.initial_sync_complete {
            return;
        }
        self.last_reconcile = Some(Instant::now());
        match self.manager.sync_desired(&self.desired, &self.links) {
            Ok(report) => {
                for f in &report.failures {
                    self.stats.failures += 1;
                    tracing::warn!(error = %f, "BGP route reconciliation");
                }
                if report.applied > 0 {
                    tracing::info!(
                        applied = report.applied,
                        "BGP routes reconciled with the kernel"
                    );
                }
            }
            Err(e) => {
                self.stats.failures += 1;
                tracing::warn!(error = %e, "reading the kernel's routes for reconciliation");
            }
        }
    }

    fn reconcile_due(&self, every: Duration) -> bool {
        self.stats.initial_sync_complete && self.last_reconcile.is_none_or(|t| t.elapsed() >= every)
    }
}

/// Runs the writer on its own thread (netlink calls block) until `inputs` closes.
pub fn spawn<D: RouteDataplane>(
    dataplane: D,
    mut inputs: mpsc::UnboundedReceiver<FibInput>,
    refresh: Duration,
    stats: Arc<std::sync::Mutex<FibStats>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("bgp-fib".into())
        .spawn(move || {
            let mut w = FibWriter::new(dataplane);
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "BGP FIB writer cannot start");
                    return;
                }
            };
            rt.block_on(async move {
                loop {
                    let input = tokio::time::timeout(refresh, inputs.recv()).await;
                    match input {
                        Ok(Some(i)) => {
                            w.handle(i);
                            while let Ok(more) = inputs.try_recv() {
                                w.handle(more);
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {}
                    }
                    if w.reconcile_due(refresh) {
                        w.reconcile();
                    }
                    if let Ok(mut s) = stats.lock() {
                        *s = w.stats();
                    }
                }
            });
        })
}
