//! Watches that work across processes: one poller thread per open store tails the revision log.
//!
//! A write by another process is noticed through `PRAGMA data_version`, which changes whenever
//! another connection commits to the file. On Linux the poller sleeps in the kernel until a
//! writer of any process signals a commit (see `notify.rs`), with a slow safety poll
//! ([`EmbeddedOptions::watch_safety_poll_interval`]) in case a signal is lost; elsewhere it
//! checks every [`EmbeddedOptions::watch_poll_interval`]. Writes from this process wake it at
//! once. When something changed, the poller reads the new log rows once (in one read snapshot
//! with the compact revision) and hands each watcher the events it wants. A watcher that is
//! behind (new with an old start revision, or whose channel was full) is served from the log on
//! the next rounds, so a slow consumer never blocks the others and never loses events.
//!
//! The same thread expires leases, so keys of a lease whose owner died still go away.
//!
//! [`EmbeddedOptions::watch_safety_poll_interval`]: super::EmbeddedOptions::watch_safety_poll_interval
//! [`EmbeddedOptions::watch_poll_interval`]: super::EmbeddedOptions::watch_poll_interval

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::notify::{CommitSignal, KernelWait, Kick};
use super::store::{self, KeyRange};
use crate::{DatastoreError, Revision, WatchEvent};

/// How many revisions one poll round reads at most, so a watcher replaying a long history gets
/// it in bounded batches.
const CHUNK_REVISIONS: i64 = 1000;

pub(crate) type EventSender = mpsc::Sender<Result<Vec<WatchEvent>, DatastoreError>>;

pub(crate) struct Watcher {
    pub range: KeyRange,
    pub prev_kv: bool,
    /// The next revision this watcher has not been sent yet.
    pub next_rev: Revision,
    pub tx: EventSender,
}

#[derive(Default)]
struct HubState {
    pending: Vec<Watcher>,
    woken: bool,
    shutdown: bool,
}

/// What the store's handles share with the poller thread.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    cv: Condvar,
    /// Wakes a poller blocked in the kernel (`None`: it waits on `cv`).
    kick: Option<Kick>,
    /// Tells other processes' pollers about our commits (`None`: unsupported here).
    signal: Option<CommitSignal>,
}

impl Hub {
    pub fn new(kick: Option<Kick>, signal: Option<CommitSignal>) -> Self {
        Hub {
            state: Mutex::default(),
            cv: Condvar::new(),
            kick,
            signal,
        }
    }

    pub fn has_kick(&self) -> bool {
        self.kick.is_some()
    }

    pub fn commit_signal(&self) -> Option<&CommitSignal> {
        self.signal.as_ref()
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding this lock leaves plain data behind; keep going with it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn notify(&self, mut st: MutexGuard<'_, HubState>, f: impl FnOnce(&mut HubState)) {
        f(&mut st);
        drop(st);
        self.cv.notify_one();
        if let Some(k) = &self.kick {
            k.kick();
        }
    }

    pub fn register(&self, w: Watcher) {
        self.notify(self.lock(), |st| {
            st.pending.push(w);
            st.woken = true;
        });
    }

    /// Tells the poller a local write committed.
    pub fn wake(&self) {
        self.notify(self.lock(), |st| st.woken = true);
    }

    /// Tells the pollers of other processes (and, through the kernel, ours) that a commit
    /// changed the store. Call after the commit returned.
    pub fn signal_commit(&self) {
        if let Some(s) = &self.signal {
            s.signal();
        }
    }

    pub fn shutdown(&self) {
        self.notify(self.lock(), |st| st.shutdown = true);
    }
}

pub(crate) struct PollerConfig {
    pub poll_interval: Duration,
    pub safety_poll_interval: Duration,
    pub lease_check_interval: Duration,
}

pub(crate) fn spawn_poller(
    conn: Connection,
    hub: Arc<Hub>,
    kernel: Option<KernelWait>,
    cfg: PollerConfig,
) -> Result<JoinHandle<()>, DatastoreError> {
    std::thread::Builder::new()
        .name("datastore-watch".into())
        .spawn(move || Poller::new(conn, hub, kernel, cfg).run())
        .map_err(|e| DatastoreError::Backend(format!("cannot start the watch poller thread: {e}")))
}

struct Poller {
    conn: Connection,
    hub: Arc<Hub>,
    /// Sleeps in the kernel until a commit signal or a kick (`None`: poll on the hub's condvar).
    kernel: Option<KernelWait>,
    cfg: PollerConfig,
    watchers: Vec<Watcher>,
    last_data_version: Option<i64>,
    /// The newest revision seen in the log.
    known_head: Revision,
    next_lease_check: Instant,
}

impl Poller {
    fn new(conn: Connection, hub: Arc<Hub>, kernel: Option<KernelWait>, cfg: PollerConfig) -> Self {
        // A kernel wait is only useful with a kick to interrupt it for local writes.
        let kernel = kernel.filter(|_| hub.kick.is_some());
        Poller {
            conn,
            hub,
            kernel,
            cfg,
            watchers: Vec::new(),
            last_data_version: None,
            known_head: 0,
            next_lease_check: Instant::now(),
        }
    }

    fn run(mut self) {
        let hub = self.hub.clone();
        loop {
            let timeout = self.timeout();
            {
                let mut st = hub.lock();
                if !st.woken && !st.shutdown && st.pending.is_empty() {
                    match (&mut self.kernel, &hub.kick) {
                        (Some(kernel), Some(kick)) => {
                            // A kick between this unlock and the wait stays readable on the
                            // eventfd, so the wait returns at once: no lost wake-up.
                            drop(st);
                            if let Err(e) = kernel.wait(kick, timeout) {
                                tracing::warn!(
                                    error = %e,
                                    "embedded datastore watch poller: kernel wake-ups failed; \
                                     polling instead"
                                );
                                self.kernel = None;
                            }
                            st = hub.lock();
                        }
                        _ => {
                            st = hub
                                .cv
                                .wait_timeout(st, timeout)
                                .map(|(g, _)| g)
                                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                        }
                    }
                }
                if st.shutdown {
                    return;
                }
                st.woken = false;
                self.watchers.append(&mut st.pending);
            }
            if let Err(e) = self.round() {
                tracing::warn!(error = %e, "embedded datastore watch poller: round failed");
            }
        }
    }

    /// How long to sleep: until the next lease check, and while anyone watches, at most the
    /// safety poll (kernel wake-ups) or the poll interval (no kernel wake-ups).
    fn timeout(&self) -> Duration {
        let lease = self
            .next_lease_check
            .saturating_duration_since(Instant::now());
        if self.watchers.is_empty() {
            return lease;
        }
        let poll = if self.kernel.is_some() {
            self.cfg.safety_poll_interval
        } else {
            self.cfg.poll_interval
        };
        lease.min(poll)
    }

    fn round(&mut self) -> Result<(), DatastoreError> {
        let mut force = false;
        if Instant::now() >= self.next_lease_check {
            self.next_lease_check = Instant::now() + self.cfg.lease_check_interval;
            // Our own commits don't move our data_version, so serve explicitly after a sweep.
            force = store::sweep_expired_leases(&mut self.conn)?;
            if force {
                self.hub.signal_commit();
            }
        }
        self.watchers.retain(|w| !w.tx.is_closed());
        if self.watchers.is_empty() {
            return Ok(());
        }
        let dv: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        let changed = self.last_data_version != Some(dv);
        self.last_data_version = Some(dv);
        let behind = self.watchers.iter().any(|w| w.next_rev <= self.known_head);
        if changed || force || behind {
            self.serve()?;
        }
        Ok(())
    }

    /// Reads the log past the slowest watcher (one snapshot) and delivers it.
    fn serve(&mut self) -> Result<(), DatastoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        let head = store::meta(&tx, "revision")?;
        let compacted = store::meta(&tx, "compact_revision")?;
        self.known_head = head;

        // etcd: a watch whose start revision is below the compaction point can't be served.
        self.watchers.retain(|w| {
            if w.next_rev >= compacted {
                return true;
            }
            let err = DatastoreError::Compacted {
                requested: w.next_rev,
                compact_revision: compacted,
            };
            // Channel full: keep the watcher and tell it on a later round.
            matches!(w.tx.try_send(Err(err)), Err(TrySendError::Full(_)))
        });
        // Watchers within the last CHUNK_REVISIONS revisions share one read of the log; one far
        // behind (replaying history, or not draining its channel) reads its own bounded chunk so
        // it never holds the others back.
        let window_start = head - CHUNK_REVISIONS + 1;
        let recent_from = self
            .watchers
            .iter()
            .map(|w| w.next_rev)
            .filter(|&r| r >= window_start && r <= head)
            .min();
        let recent = match recent_from {
            Some(from) => store::read_log(&tx, from, head)?,
            None => Vec::new(),
        };
        let mut lagging = Vec::new();
        for (i, w) in self.watchers.iter().enumerate() {
            if w.next_rev < window_start && w.next_rev >= compacted {
                let to = w.next_rev + CHUNK_REVISIONS - 1;
                lagging.push((i, to, store::read_log(&tx, w.next_rev, to)?));
            }
        }
        tx.commit()?;

        let mut closed = Vec::new();
        for (i, w) in self.watchers.iter_mut().enumerate() {
            // Past the head: nothing yet. Below the compaction point: still waiting for room in
            // its channel to be told `Compacted`; it must not get the incomplete history.
            if w.next_rev > head || w.next_rev < compacted {
                continue;
            }
            let (to, rows) = match lagging.iter().find(|(j, _, _)| *j == i) {
                Some((_, to, rows)) => (*to, rows),
                None => (head, &recent),
            };
            if !deliver(w, rows, to) {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            self.watchers.swap_remove(i);
        }
        Ok(())
    }
}

/// Sends `w` its events among `rows` (which cover its next revision up to `to`). Returns false
/// when the watch was dropped.
fn deliver(w: &mut Watcher, rows: &[store::LoggedEvent], to: Revision) -> bool {
    let events: Vec<WatchEvent> = rows
        .iter()
        .filter(|r| r.rev >= w.next_rev && r.rev <= to && w.range.contains(&r.key))
        .map(|r| {
            let mut ev = r.event.clone();
            if !w.prev_kv {
                ev.prev_kv = None;
            }
            ev
        })
        .collect();
    if events.is_empty() {
        w.next_rev = to + 1;
        return true;
    }
    match w.tx.try_send(Ok(events)) {
        Ok(()) => {
            w.next_rev = to + 1;
            true
        }
        // Slow consumer: retry from the log next round (nothing is lost or repeated).
        Err(TrySendError::Full(_)) => true,
        Err(TrySendError::Closed(_)) => false,
    }
}
