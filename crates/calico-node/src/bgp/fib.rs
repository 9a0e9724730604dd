//! The FIB writer: routes the speaker learned become kernel routes `<prefix> via <next hop>
//! proto bgp` (route protocol 186, `RTPROT_BGP`), what BIRD's `protocol kernel` does for
//! Calico (`bird.cfg`: `learn; persist; graceful restart; merge paths on`).
//!
//! The speaker has already applied Calico's kernel filter (`calico_kernel_programming`) and
//! sends compact changes (prefix → gateway and metric, or removal); the writer keeps one
//! compact map of what it wants in the kernel. Each batch of changes goes to the kernel as
//! one burst of netlink requests with many in flight (`RouteDataplane::apply_routes`), so
//! convergence does not wait for a round trip per route. A full reconciliation (dump + diff)
//! runs once the speaker reports its initial sync complete and then every `refresh`
//! interval, removing routes of our protocol nobody wants (left by an earlier run, or by a
//! lost write) and repairing drift. Until the initial sync is complete nothing unknown is
//! removed: that is how a restart keeps forwarding (RFC 4724 §4.1 "Forwarding State"; BIRD's
//! `persist` + `-R`). On exit the routes stay (`persist`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_bgp_speaker::speaker::{FibMessage, FibTarget};
use calico_felix::dataplane::RouteDataplane;
use calico_felix::routes::{RouteOp, Target, wanted_route};
use ipnet::IpNet;
use tokio::sync::mpsc;

/// Kernel operations written at a time: bounds the memory of a large burst.
const OPS_CHUNK: usize = 4096;

/// `RTPROT_BGP` (`/etc/iproute2/rt_protos`: `186 bgp`): what `ip route` shows as `proto bgp`.
pub const RTPROT_BGP: u8 = 186;

/// What the FIB writer is told.
pub enum FibInput {
    Speaker(FibMessage),
    /// `<peer>/32 via <gateway>` statics (BGPPeer `reachableBy`).
    Statics(Vec<(IpNet, IpAddr)>),
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
    /// The kernel (our protocol is [`RTPROT_BGP`]; every write names it).
    dataplane: D,
    /// What the speaker wants, by prefix.
    learned: HashMap<IpNet, FibTarget>,
    /// Statics win over learned routes (BIRD's static protocol has the higher preference).
    statics: Vec<(IpNet, IpAddr)>,
    stats: FibStats,
    last_reconcile: Option<Instant>,
}

fn target(t: FibTarget) -> Target {
    Target::Via {
        gateway: t.gateway,
        interface: None,
        metric: t.metric,
    }
}

impl<D: RouteDataplane> FibWriter<D> {
    pub fn new(dataplane: D) -> Self {
        FibWriter {
            dataplane,
            learned: HashMap::new(),
            statics: Vec::new(),
            stats: FibStats::default(),
            last_reconcile: None,
        }
    }

    pub fn stats(&self) -> FibStats {
        self.stats
    }

    pub fn dataplane_mut(&mut self) -> &mut D {
        &mut self.dataplane
    }

    /// What the kernel should have for `prefix` now.
    fn effective(&self, prefix: &IpNet) -> Option<FibTarget> {
        if let Some((_, via)) = self.statics.iter().find(|s| s.0 == *prefix) {
            return Some(FibTarget {
                gateway: *via,
                metric: 0,
            });
        }
        self.learned.get(prefix).copied()
    }

    /// Applies a batch of inputs: state first, then the kernel writes in one burst.
    pub fn handle_all(&mut self, inputs: impl IntoIterator<Item = FibInput>) {
        let mut ops = Vec::new();
        let mut sync_complete = false;
        for input in inputs {
            match input {
                FibInput::Speaker(FibMessage::Changes(changes)) => {
                    for c in changes {
                        let before = self.effective(&c.prefix);
                        match c.target {
                            Some(t) => {
                                self.learned.insert(c.prefix, t);
                            }
                            None => {
                                self.learned.remove(&c.prefix);
                            }
                        }
                        push_ops(&mut ops, c.prefix, before, self.effective(&c.prefix));
                        if ops.len() >= OPS_CHUNK {
                            self.write(&mut ops);
                        }
                    }
                }
                FibInput::Speaker(FibMessage::InitialSyncComplete) => sync_complete = true,
                FibInput::Statics(statics) => {
                    let mut touched: Vec<IpNet> = self.statics.iter().map(|s| s.0).collect();
                    touched.extend(statics.iter().map(|s| s.0));
                    let before: Vec<Option<FibTarget>> =
                        touched.iter().map(|p| self.effective(p)).collect();
                    self.statics = statics;
                    for (p, b) in touched.into_iter().zip(before) {
                        let after = self.effective(&p);
                        push_ops(&mut ops, p, b, after);
                    }
                }
            }
        }
        self.write(&mut ops);
        self.learned.shrink_to(self.learned.len() * 2);
        self.stats.routes = self.learned.len() + self.statics.len();
        if sync_complete {
            self.stats.initial_sync_complete = true;
            self.reconcile();
        }
    }

    /// Sends `ops` to the kernel and empties it.
    fn write(&mut self, ops: &mut Vec<RouteOp>) {
        if ops.is_empty() {
            return;
        }
        for r in self.dataplane.apply_routes(ops) {
            if let Err(e) = r {
                self.stats.failures += 1;
                tracing::warn!(error = %e, "writing a BGP route to the kernel; retried at the next reconciliation");
            }
        }
        ops.clear();
    }

    /// Dump, diff and repair; only after the initial sync (before it, unknown routes of ours
    /// are a previous run's forwarding state and stay). Only our protocol's routes are dumped
    /// (the kernel filters) and compared with the compact map directly, so a reconciliation
    /// of a large table costs one pass and little memory.
    pub fn reconcile(&mut self) {
        if !self.stats.initial_sync_complete {
            return;
        }
        self.last_reconcile = Some(Instant::now());
        let actual = match self.dataplane.routes_of_protocol(RTPROT_BGP) {
            Ok(a) => a,
            Err(e) => {
                self.stats.failures += 1;
                tracing::warn!(error = %e, "reading the kernel's routes for reconciliation");
                return;
            }
        };
        let mut ok: std::collections::HashSet<IpNet> = std::collections::HashSet::new();
        let mut ops = Vec::new();
        let mut repaired = 0usize;
        for r in actual {
            if r.table != calico_felix::routes::MAIN_TABLE {
                continue;
            }
            let wanted = self.effective(&r.dst);
            let matches = wanted.is_some_and(|t| {
                r.kind == calico_felix::routes::KernelRouteKind::Unicast
                    && r.gateway == Some(t.gateway)
                    && r.metric == t.metric
            });
            if matches && ok.insert(r.dst) {
                continue;
            }
            // Not wanted, different, or a duplicate under another metric.
            repaired += 1;
            ops.push(RouteOp::Delete(r));
            if ops.len() >= OPS_CHUNK {
                self.write(&mut ops);
            }
        }
        let missing: Vec<IpNet> = self
            .learned
            .keys()
            .chain(self.statics.iter().map(|s| &s.0))
            .filter(|p| !ok.contains(p))
            .copied()
            .collect();
        drop(ok);
        for p in missing {
            if let Some(t) = self.effective(&p) {
                repaired += 1;
                push_ops(&mut ops, p, None, Some(t));
                if ops.len() >= OPS_CHUNK {
                    self.write(&mut ops);
                }
            }
        }
        self.write(&mut ops);
        if repaired > 0 {
            tracing::info!(repaired, "BGP routes reconciled with the kernel");
        }
    }

    fn reconcile_due(&self, every: Duration) -> bool {
        self.stats.initial_sync_complete && self.last_reconcile.is_none_or(|t| t.elapsed() >= every)
    }
}

/// The kernel operations that take `prefix` from `before` to `after`. The kernel keys IPv4
/// routes by (destination, metric): a new metric is a new route, so the old one goes first.
fn push_ops(
    ops: &mut Vec<RouteOp>,
    prefix: IpNet,
    before: Option<FibTarget>,
    after: Option<FibTarget>,
) {
    if before == after {
        return;
    }
    let no_links = std::collections::BTreeMap::new();
    let route = |t: FibTarget| wanted_route(prefix, &target(t), &no_links, RTPROT_BGP);
    if let Some(old) = before
        && (after.is_none() || after.map(|a| a.metric) != Some(old.metric))
        && let Some(r) = route(old)
    {
        ops.push(RouteOp::Delete(r));
    }
    if let Some(new) = after
        && let Some(r) = route(new)
    {
        ops.push(RouteOp::Replace(r));
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
                        Ok(Some(first)) => {
                            // Everything queued so far goes to the kernel in one burst.
                            let mut batch = vec![first];
                            while batch.len() < 1024
                                && let Ok(more) = inputs.try_recv()
                            {
                                batch.push(more);
                            }
                            w.handle_all(batch);
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

#[cfg(test)]
mod tests {
    use super::*;
    use calico_bgp_speaker::speaker::FibChange;
    use calico_felix::dataplane::DataplaneError;
    use calico_felix::routes::KernelRoute;
    use std::collections::BTreeMap;

    /// A kernel table in memory that records every operation.
    #[derive(Default)]
    struct Kernel {
        routes: Vec<KernelRoute>,
        ops: Vec<String>,
    }

    impl RouteDataplane for Kernel {
        fn links(&mut self) -> Result<BTreeMap<String, u32>, DataplaneError> {
            Ok(BTreeMap::new())
        }
        fn routes(&mut self) -> Result<Vec<KernelRoute>, DataplaneError> {
            Ok(self.routes.clone())
        }
        fn replace_route(&mut self, r: &KernelRoute) -> Result<(), DataplaneError> {
            self.ops
                .push(format!("replace {} metric {}", r.dst, r.metric));
            self.routes
                .retain(|x| !(x.dst == r.dst && x.metric == r.metric));
            self.routes.push(r.clone());
            Ok(())
        }
        fn delete_route(&mut self, r: &KernelRoute) -> Result<bool, DataplaneError> {
            self.ops
                .push(format!("delete {} metric {}", r.dst, r.metric));
            let n = self.routes.len();
            self.routes
                .retain(|x| !(x.dst == r.dst && x.metric == r.metric && x.protocol == r.protocol));
            Ok(self.routes.len() != n)
        }
        fn configure_interface(&mut self, _: &str, _: bool, _: bool) -> Result<(), DataplaneError> {
            Ok(())
        }
        fn enable_forwarding(&mut self, _: bool, _: bool) -> Result<(), DataplaneError> {
            Ok(())
        }
        fn set_neighbour(&mut self, _: u32, _: IpAddr, _: [u8; 6]) -> Result<(), DataplaneError> {
            Ok(())
        }
    }

    fn change(prefix: &str, gw: Option<&str>, metric: u32) -> FibInput {
        FibInput::Speaker(FibMessage::Changes(vec![FibChange {
            prefix: prefix.parse().unwrap(),
            target: gw.map(|g| FibTarget {
                gateway: g.parse().unwrap(),
                metric,
            }),
        }]))
    }

    #[test]
    fn changes_metrics_statics_and_reconciliation() {
        let mut w = FibWriter::new(Kernel::default());
        // A route left by an earlier run stays until the initial sync is complete.
        let stale = wanted_route(
            "10.65.9.0/26".parse().unwrap(),
            &Target::Via {
                gateway: "10.0.0.9".parse().unwrap(),
                interface: None,
                metric: 5,
            },
            &BTreeMap::new(),
            RTPROT_BGP,
        )
        .unwrap();
        w.dataplane_mut().routes.push(stale);
        w.handle_all([change("10.65.1.0/26", Some("10.0.0.2"), 2147483547)]);
        assert_eq!(w.dataplane_mut().routes.len(), 2);
        // A new metric replaces the route (the old one goes first).
        w.handle_all([change("10.65.1.0/26", Some("10.0.0.2"), 100)]);
        assert_eq!(
            w.dataplane_mut().ops[1..],
            [
                "delete 10.65.1.0/26 metric 2147483547".to_string(),
                "replace 10.65.1.0/26 metric 100".to_string()
            ]
        );
        // A static for the same prefix wins; when it goes, the learned route is back.
        w.handle_all([FibInput::Statics(vec![(
            "10.65.1.0/26".parse().unwrap(),
            "10.0.0.254".parse().unwrap(),
        )])]);
        let gw = |w: &mut FibWriter<Kernel>| {
            w.dataplane_mut()
                .routes
                .iter()
                .find(|r| r.dst == "10.65.1.0/26".parse::<IpNet>().unwrap())
                .and_then(|r| r.gateway)
        };
        assert_eq!(gw(&mut w), Some("10.0.0.254".parse().unwrap()));
        w.handle_all([FibInput::Statics(Vec::new())]);
        assert_eq!(gw(&mut w), Some("10.0.0.2".parse().unwrap()));
        // Initial sync complete: the earlier run's route goes, ours stays.
        w.handle_all([FibInput::Speaker(FibMessage::InitialSyncComplete)]);
        let dsts: Vec<String> = w
            .dataplane_mut()
            .routes
            .iter()
            .map(|r| r.dst.to_string())
            .collect();
        assert_eq!(dsts, ["10.65.1.0/26"]);
        // Drift repair: our route deleted by someone, a stray one of our protocol added, a
        // route of another protocol left alone.
        let mut stray = w.dataplane_mut().routes[0].clone();
        stray.dst = "10.65.7.0/26".parse().unwrap();
        let mut foreign = stray.clone();
        foreign.dst = "10.65.8.0/26".parse().unwrap();
        foreign.protocol = 80;
        w.dataplane_mut().routes = vec![stray, foreign];
        w.reconcile();
        let mut dsts: Vec<String> = w
            .dataplane_mut()
            .routes
            .iter()
            .map(|r| r.dst.to_string())
            .collect();
        dsts.sort();
        assert_eq!(dsts, ["10.65.1.0/26", "10.65.8.0/26"]);
        // Withdrawn.
        w.handle_all([change("10.65.1.0/26", None, 0)]);
        assert!(w.dataplane_mut().routes.iter().all(|r| r.protocol == 80));
        assert_eq!(w.stats().routes, 0);
        assert_eq!(w.stats().failures, 0);
    }
}
