//! Watches on etcd that survive broken connections.
//!
//! One background task per watch owns a gRPC watch stream. It remembers the next revision it
//! owes the caller (`start_revision`, or the creation header's revision + 1 for "from now"),
//! and after every delivered revision moves it on. When the stream breaks (etcd restarted, a
//! member went away, the connection was reset) it reconnects with exponential backoff and
//! re-creates the watch at exactly that revision, so the caller sees neither gaps nor
//! duplicates. If etcd answers that the revision has been compacted, the caller gets
//! [`DatastoreError::Compacted`] and the stream ends: only a fresh list can fill the hole.
//! This is what Calico's etcdv3 watcher does by hand (`libcalico-go/lib/backend/etcdv3/
//! watcher.go`: on error it resyncs, on `ErrCompacted` it emits `ErrorTypeWatchTerminated`).
//!
//! Progress notifications are deliberately not used to move the resume revision forward:
//! etcd 3.4 can send a progress notification ahead of events it has not yet delivered to an
//! unsynced watcher (etcd-io/etcd#15220), and resuming after such a revision would lose events.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use etcd_client as ec;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::convert_kv;
use super::errors::{Ctx, map_err};
use super::pool::Pool;
use crate::{DatastoreError, EventKind, Revision, WatchEvent, WatchRequest, WatchStream};

const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Batches buffered between the gRPC stream and the caller.
const CHANNEL_DEPTH: usize = 64;

type Item = Result<Vec<WatchEvent>, DatastoreError>;

/// Aborts the watch task when the [`WatchStream`] holding it is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Creates the watch and returns once etcd has confirmed it (so a write made after this returns
/// is seen by a "from now" watch). Fails with `Unavailable` if no member answers within
/// `dial_timeout`; a compacted `start_revision` is reported through the stream.
pub(crate) async fn start(
    pool: Arc<Pool>,
    dial_timeout: Duration,
    req: WatchRequest,
) -> Result<WatchStream, DatastoreError> {
    if req.key.is_empty() && !req.prefix {
        return Err(DatastoreError::InvalidRequest("watch: empty key".into()));
    }
    if req.start_revision < 0 {
        return Err(DatastoreError::InvalidRequest(format!(
            "watch: negative start revision {}",
            req.start_revision
        )));
    }
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let (ready_tx, ready_rx) = oneshot::channel();
    let watcher = Watcher {
        members: pool.len(),
        shutdown: pool.shutdown_signal(),
        pool: Arc::downgrade(&pool),
        next: req.start_revision,
        req,
        tx,
        dial_timeout,
        resuming: false,
    };
    let handle = tokio::spawn(watcher.run(ready_tx));
    let guard = AbortOnDrop(handle.abort_handle());
    match ready_rx.await {
        Ok(Ok(())) => Ok(WatchStream::new(rx, Some(Box::new(guard)))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DatastoreError::Backend(
            "watch: the watch task ended before etcd confirmed the watch".into(),
        )),
    }
}

struct Watcher {
    /// Weak, so that dropping the last handle of the store drops the pool, which ends the
    /// watch (`shutdown`), as with the embedded backend.
    pool: Weak<Pool>,
    members: usize,
    /// Closed when the pool is dropped.
    shutdown: watch::Receiver<()>,
    req: WatchRequest,
    /// The next revision the caller has not seen; 0 until a "from now" watch is created.
    next: Revision,
    tx: mpsc::Sender<Item>,
    dial_timeout: Duration,
    /// Set after a broken session, so the recovery gets logged.
    resuming: bool,
}

/// Why one gRPC watch session ended.
enum End {
    /// The connection broke; reconnect.
    Broken(String),
    /// The caller dropped the stream, or a terminal error was delivered.
    Done,
}

type Ready = Option<oneshot::Sender<Result<(), DatastoreError>>>;

impl Watcher {
    async fn run(mut self, ready: oneshot::Sender<Result<(), DatastoreError>>) {
        let mut ready: Ready = Some(ready);
        let mut backoff = BACKOFF_INITIAL;
        // Members that failed since the watch last worked: each is tried once before backing
        // off, so a dead member does not delay the switch to a live one.
        let mut failures: Vec<String> = Vec::new();
        loop {
            let (end, was_created) = self.session(&mut ready).await;
            match end {
                End::Done => return,
                End::Broken(reason) => {
                    if was_created {
                        backoff = BACKOFF_INITIAL;
                        failures.clear();
                    }
                    self.resuming = true;
                    failures.push(reason);
                    if failures.len() < self.members {
                        continue;
                    }
                    let reason = failures.join("; ");
                    failures.clear();
                    if let Some(r) = ready.take() {
                        // Creating the watch failed on every member: report it to `watch()`'s
                        // caller.
                        let _ = r.send(Err(DatastoreError::Unavailable(format!(
                            "watch {}: {reason}",
                            self.req.key
                        ))));
                        return;
                    }
                    warn!(
                        key = %self.req.key,
                        next_revision = self.next,
                        "etcd watch broken ({reason}); reconnecting in {backoff:?}"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = self.gone() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Completes when nobody needs this watch any more: the caller dropped the stream, or
    /// every handle of the store was dropped.
    fn gone(&self) -> impl Future<Output = ()> + use<> {
        let tx = self.tx.clone();
        let mut shutdown = self.shutdown.clone();
        async move {
            tokio::select! {
                _ = tx.closed() => {}
                _ = async { while shutdown.changed().await.is_ok() {} } => {}
            }
        }
    }

    /// Hands a terminal error to the caller: through `watch()`'s result if it is still
    /// waiting (except `Compacted`, which the contract delivers through the stream).
    async fn finish(&mut self, ready: &mut Ready, err: DatastoreError) -> End {
        let through_stream = matches!(err, DatastoreError::Compacted { .. });
        if let Some(r) = ready.take() {
            if !through_stream {
                let _ = r.send(Err(err));
                return End::Done;
            }
            let _ = r.send(Ok(()));
        }
        let _ = self.tx.send(Err(err)).await;
        End::Done
    }

    /// One gRPC watch: create it at `self.next`, then forward events until it ends. Returns
    /// how it ended and whether etcd had confirmed the watch (to reset the backoff).
    async fn session(&mut self, ready: &mut Ready) -> (End, bool) {
        let mut opts = ec::WatchOptions::new();
        if self.req.prefix {
            opts = opts.with_prefix();
        }
        if self.req.prev_kv {
            opts = opts.with_prev_key();
        }
        if self.next > 0 {
            opts = opts.with_start_revision(self.next);
        }
        let ctx = Ctx::Revision("watch", self.next);
        // Each attempt goes to the member the pool prefers; a member that breaks the watch is
        // demoted so that the next attempt tries another one.
        let Some(pool) = self.pool.upgrade() else {
            return (End::Done, false);
        };
        let idx = pool.preferred();
        let endpoint = pool.endpoint(idx).to_string();
        let weak = self.pool.clone();
        let at = endpoint.clone();
        let broken = move |m: String| {
            if let Some(pool) = weak.upgrade() {
                pool.demote(idx);
            }
            End::Broken(format!("{at}: {m}"))
        };
        let clients = tokio::select! {
            c = pool.clients(idx, self.dial_timeout) => c,
            _ = self.gone() => return (End::Done, false),
        };
        // Only the session's own channel is kept from here on, not the pool.
        drop(pool);
        let mut client = match clients {
            Ok(c) => c.watch,
            Err(DatastoreError::Unavailable(m)) => return (broken(m), false),
            Err(other) => return (self.finish(ready, other).await, false),
        };
        let open = tokio::select! {
            r = tokio::time::timeout(
                self.dial_timeout,
                client.watch(self.req.key.as_bytes().to_vec(), Some(opts)),
            ) => r,
            _ = self.gone() => return (End::Done, false),
        };
        let stream = match open {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return match map_err(e, ctx) {
                    DatastoreError::Unavailable(m) => (broken(m), false),
                    other => (self.finish(ready, other).await, false),
                };
            }
            Err(_) => {
                let m = format!("no answer from etcd within {:?}", self.dial_timeout);
                return (broken(m), false);
            }
        };
        // Keep the request half alive for the whole session: dropping it half-closes the gRPC
        // stream, which etcd answers by ending the watch.
        let (_requests, mut responses) = stream.split();
        let mut created = false;
        loop {
            let msg = tokio::select! {
                m = responses.message() => m,
                _ = self.gone() => return (End::Done, created),
            };
            let resp = match msg {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    let m = "etcd closed the watch stream".to_string();
                    return (broken(m), created);
                }
                Err(e) => {
                    return match map_err(e, Ctx::Revision("watch", self.next)) {
                        DatastoreError::Unavailable(m) => (broken(m), created),
                        other => (self.finish(ready, other).await, created),
                    };
                }
            };
            if resp.created() {
                created = true;
                if self.next == 0 {
                    // "From now": the creation header is the revision the watch starts after.
                    let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
                    self.next = rev + 1;
                }
                if self.resuming {
                    self.resuming = false;
                    info!(key = %self.req.key, next_revision = self.next, endpoint = %endpoint, "etcd watch resumed");
                } else {
                    debug!(key = %self.req.key, next_revision = self.next, "etcd watch created");
                }
                if let (false, Some(r)) = (resp.canceled(), ready.take()) {
                    let _ = r.send(Ok(()));
                }
            }
            if resp.canceled() {
                let err = if resp.compact_revision() > 0 {
                    DatastoreError::Compacted {
                        requested: self.next,
                        compact_revision: resp.compact_revision(),
                    }
                } else {
                    let reason = resp.cancel_reason().to_string();
                    let lower = reason.to_ascii_lowercase();
                    if lower.contains("permission") || lower.contains("auth") {
                        DatastoreError::Config(format!(
                            "watch {}: etcd refused the watch: {reason}",
                            self.req.key
                        ))
                    } else {
                        // etcd cancels watches it can no longer serve (e.g. a member lost its
                        // leader); a fresh watch on another connection may work.
                        let why = if reason.is_empty() {
                            "etcd cancelled the watch".to_string()
                        } else {
                            format!("etcd cancelled the watch: {reason}")
                        };
                        return (broken(why), created);
                    }
                };
                return (self.finish(ready, err).await, created);
            }
            if self.deliver(resp.events()).await.is_err() {
                return (End::Done, created);
            }
        }
    }

    /// Sends the events of one response, one batch per revision, skipping revisions already
    /// delivered. Errs if the caller is gone.
    async fn deliver(&mut self, events: &[ec::Event]) -> Result<(), ()> {
        let mut batch: Vec<WatchEvent> = Vec::new();
        let mut batch_rev: Revision = 0;
        for ev in events {
            let Some(kv) = ev.kv() else { continue };
            let rev = kv.mod_revision();
            if rev < self.next {
                continue;
            }
            if rev != batch_rev && !batch.is_empty() {
                self.send_batch(std::mem::take(&mut batch), batch_rev)
                    .await?;
            }
            batch_rev = rev;
            let converted = convert_kv(kv).and_then(|kv| {
                let prev_kv = if self.req.prev_kv {
                    ev.prev_kv().map(convert_kv).transpose()?
                } else {
                    None
                };
                let kind = match ev.event_type() {
                    ec::EventType::Put => EventKind::Put,
                    ec::EventType::Delete => EventKind::Delete,
                };
                Ok(WatchEvent { kind, kv, prev_kv })
            });
            match converted {
                Ok(e) => batch.push(e),
                Err(err) => {
                    // Not something a reconnect can fix: report it and end the watch.
                    let _ = self.tx.send(Err(err)).await;
                    return Err(());
                }
            }
        }
        if !batch.is_empty() {
            self.send_batch(batch, batch_rev).await?;
        }
        Ok(())
    }

    async fn send_batch(&mut self, batch: Vec<WatchEvent>, rev: Revision) -> Result<(), ()> {
        self.tx.send(Ok(batch)).await.map_err(|_| ())?;
        self.next = rev + 1;
        Ok(())
    }
}
