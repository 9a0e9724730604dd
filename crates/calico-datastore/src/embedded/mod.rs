//! The embedded backend: etcd v3 semantics on one SQLite file, shared by several processes.
//!
//! Layout (in the spirit of k3s's kine): a revision `log` table with one row per change (the
//! previous value inline, so `prev_kv` survives compaction), a `kv` table with the current value
//! of each live key, a `meta` table with the store revision, the compact revision and the lease
//! id sequence, a `leases` table, and a `schema_version` table so later builds can migrate.
//!
//! Concurrency: the file is in WAL mode, so readers never block the writer. Every write is one
//! `BEGIN IMMEDIATE` transaction that evaluates the compares and allocates at most one revision;
//! writers in other processes wait up to [`EmbeddedOptions::busy_timeout`] for the lock and get
//! [`DatastoreError::Unavailable`] beyond it. SQLite's journal makes every commit atomic, so a
//! process killed mid-write leaves the store at its last committed revision.
//!
//! Watches tail the log for changes by any process (see `watch.rs`). On Linux a poller sleeps
//! until a writer signals a commit through the kernel: after each commit that changed the
//! store, writers write one byte to the sidecar file `<db>-notify` next to the database, which
//! pollers watch with inotify (see `notify.rs`; the sidecar is part of the on-disk protocol, so
//! every writer must keep doing this or other processes see its writes only at their safety
//! poll). Leases are expired by
//! whichever process touches the store first (writes, and the poller thread of every store that
//! watches or holds leases), as ordinary revisioned deletes that watchers see.
//!
//! The poller thread, its SQLite connection and its inotify instance are started on the first
//! watch or lease call, not at open: a short-lived client that only reads and writes (the CNI
//! plugin, calicoctl) pays for none of them, and inotify instances (128 per user by default)
//! are left for the processes that wait on the store.
//!
//! Compaction: [`Datastore::compact`] drops log rows below a revision; in addition, unless
//! [`EmbeddedOptions::auto_compact_retain`] is `None`, the store keeps about the last 10 000
//! revisions (compacting in steps of 10% once it holds more), much like kube-apiserver
//! compacting etcd every few minutes. Watchers further behind get `Compacted` and resync.

mod notify;
mod schema;
mod store;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::Connection;
use rusqlite::ffi::ErrorCode;

use crate::{
    Datastore, DatastoreError, LeaseId, RangeRequest, RangeResponse, Revision, Txn, TxnResponse,
    WatchRequest, WatchStream,
};
use notify::{CommitSignal, KernelWait, Kick};
use store::KeyRange;
use watch::{Hub, PollerConfig, Watcher};

pub use schema::SCHEMA_VERSION;

/// How hard a commit is made durable (SQLite's `synchronous` pragma, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync the WAL on every commit: an acknowledged write survives power loss (etcd's
    /// guarantee).
    Full,
    /// fsync only at checkpoints: still crash-safe and consistent when a process dies, but the
    /// last commits can be lost on power loss. Much faster on slow disks.
    Normal,
}

/// Tuning for [`EmbeddedDatastore::open_with`]; [`Default`] suits a lab machine.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// How long a writer waits for another process's write transaction before failing with
    /// `Unavailable`.
    pub busy_timeout: Duration,
    pub synchronous: Synchronous,
    /// Keep about this many revisions of history; `None` keeps everything until `compact`.
    pub auto_compact_retain: Option<i64>,
    /// Wake watchers through the kernel (Linux inotify) when any process commits, so an idle
    /// watcher costs no CPU. `false`, other systems, or inotify failing to set up (e.g. the
    /// `fs.inotify.max_user_instances` limit): watchers poll every `watch_poll_interval`.
    pub watch_kernel_wakeups: bool,
    /// With kernel wake-ups: how often watchers check for other processes' commits anyway, in
    /// case a wake-up was lost (a queue overflow, a writer that doesn't signal).
    pub watch_safety_poll_interval: Duration,
    /// Without kernel wake-ups: how often watchers check for commits by other processes (their
    /// write -> event latency).
    pub watch_poll_interval: Duration,
    /// How often an idle store checks for expired leases.
    pub lease_check_interval: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            busy_timeout: Duration::from_secs(10),
            synchronous: Synchronous::Full,
            auto_compact_retain: Some(10_000),
            watch_kernel_wakeups: true,
            watch_safety_poll_interval: Duration::from_millis(250),
            watch_poll_interval: Duration::from_millis(2),
            lease_check_interval: Duration::from_millis(250),
        }
    }
}

/// The embedded SQLite datastore. Cheap to share behind an `Arc`; dropping the last handle stops
/// its poller thread and ends its watch streams.
pub struct EmbeddedDatastore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    opts: EmbeddedOptions,
    writer: Mutex<Connection>,
    /// Idle read connections (WAL readers run in parallel with the writer).
    readers: Mutex<Vec<Connection>>,
    hub: Arc<Hub>,
    /// Whether the watch/lease poller thread runs (started on first need).
    poller_started: Mutex<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.hub.shutdown();
    }
}

const MAX_IDLE_READERS: usize = 4;

/// etcd's `MaxLeaseTTL` (lease/lessor.go): 9 000 000 000 s; also keeps expiry arithmetic in
/// milliseconds far from overflow.
const MAX_LEASE_TTL: i64 = 9_000_000_000;

impl std::fmt::Debug for EmbeddedDatastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDatastore")
            .field("path", &self.inner.path)
            .field("options", &self.inner.opts)
            .finish()
    }
}

impl EmbeddedDatastore {
    /// Opens (creating if needed) the store at `path` with default options.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, DatastoreError> {
        Self::open_with(path, EmbeddedOptions::default())
    }

    pub fn open_with(
        path: impl AsRef<Path>,
        opts: EmbeddedOptions,
    ) -> Result<Self, DatastoreError> {
        let path = path.as_ref().to_path_buf();
        let writer = schema::open_and_migrate(&path, &opts)?;
        let hub = Arc::new(commit_signalling(&path, &opts));
        Ok(EmbeddedDatastore {
            inner: Arc::new(Inner {
                path,
                opts,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                hub,
                poller_started: Mutex::new(false),
            }),
        })
    }

    /// Starts the poller thread (watches, lease expiry) unless it runs already.
    fn ensure_poller(&self) -> Result<(), DatastoreError> {
        let inner = &self.inner;
        let mut started = lock(&inner.poller_started);
        if *started {
            return Ok(());
        }
        let conn = schema::connect(&inner.path, &inner.opts)?;
        let kernel = kernel_wait(&inner.path, &inner.opts, &inner.hub);
        watch::spawn_poller(
            conn,
            inner.hub.clone(),
            kernel,
            PollerConfig {
                poll_interval: inner.opts.watch_poll_interval,
                safety_poll_interval: inner.opts.watch_safety_poll_interval,
                lease_check_interval: inner.opts.lease_check_interval,
            },
        )?;
        *started = true;
        Ok(())
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The revision below which history has been discarded (0 = none).
    pub async fn compact_revision(&self) -> Result<Revision, DatastoreError> {
        self.read(|conn| store::meta(conn, "compact_revision"))
            .await
    }

    /// Runs `f` on the writer connection on a blocking thread, then wakes local watchers.
    async fn write<T, F>(&self, f: F) -> Result<T, DatastoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &EmbeddedOptions) -> Result<T, DatastoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = lock(&inner.writer);
            let changes_before = conn.total_changes();
            let out = f(&mut conn, &inner.opts);
            // Rows written (a failed compare or a rollback after writing may over-report, which
            // only costs other pollers one spurious check).
            let changed = conn.total_changes() != changes_before;
            drop(conn);
            inner.hub.wake();
            if changed {
                inner.hub.signal_commit();
            }
            out
        })
        .await
        .map_err(|e| DatastoreError::Backend(format!("embedded datastore task failed: {e}")))?
    }

    /// Runs `f` on a read connection on a blocking thread.
    async fn read<T, F>(&self, f: F) -> Result<T, DatastoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DatastoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let idle = lock(&inner.readers).pop();
            let mut conn = match idle {
                Some(c) => c,
                None => schema::connect(&inner.path, &inner.opts)?,
            };
            let out = f(&mut conn);
            let mut idle = lock(&inner.readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
        .map_err(|e| DatastoreError::Backend(format!("embedded datastore task failed: {e}")))?
    }
}

/// Sets up commit signalling (and the eventfd that interrupts a local poller's kernel wait);
/// what can't be set up degrades with a warning (other processes then see our writes only at
/// their safety poll).
fn commit_signalling(path: &Path, opts: &EmbeddedOptions) -> Hub {
    let unsupported = |e: &std::io::Error| e.kind() == std::io::ErrorKind::Unsupported;
    // Signal even if this process polls: other processes may be listening.
    let signal = match CommitSignal::new(path) {
        Ok(s) => Some(s),
        Err(e) => {
            if !unsupported(&e) {
                tracing::warn!(
                    store = %path.display(),
                    error = %e,
                    "embedded datastore: cannot create the commit signal file; other processes \
                     see this process's writes only at their safety poll"
                );
            }
            None
        }
    };
    let kick = if opts.watch_kernel_wakeups && signal.is_some() {
        match Kick::new() {
            Ok(k) => Some(k),
            Err(e) => {
                if !unsupported(&e) {
                    tracing::warn!(error = %e, "embedded datastore: no eventfd; watchers poll");
                }
                None
            }
        }
    } else {
        None
    };
    Hub::new(kick, signal)
}

/// The poller's kernel wait (inotify on the commit signal file), if wanted and possible.
fn kernel_wait(path: &Path, opts: &EmbeddedOptions, hub: &Hub) -> Option<KernelWait> {
    if !opts.watch_kernel_wakeups || !hub.has_kick() {
        return None;
    }
    let signal = hub.commit_signal()?;
    match KernelWait::new(signal) {
        Ok(k) => Some(k),
        Err(e) => {
            if e.kind() != std::io::ErrorKind::Unsupported {
                tracing::warn!(
                    store = %path.display(),
                    error = %e,
                    "embedded datastore: no kernel wake-ups for watchers; polling every {:?}",
                    opts.watch_poll_interval
                );
            }
            None
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on a blocking thread mid-transaction drops (rolls back) the transaction; the
    // connection itself is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl Datastore for EmbeddedDatastore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, DatastoreError> {
        store::check_range(&req)?;
        self.read(move |conn| store::range(conn, &req)).await
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse, DatastoreError> {
        store::validate_txn(&txn)?;
        self.write(move |conn, opts| store::txn(conn, &txn, opts))
            .await
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream, DatastoreError> {
        store::check_key(&req.key, req.prefix, "watch")?;
        if req.start_revision < 0 {
            return Err(DatastoreError::InvalidRequest(format!(
                "watch start revision must not be negative, got {}",
                req.start_revision
            )));
        }
        // etcd: start 0 means "changes after now"; a future start revision simply waits.
        let next_rev = if req.start_revision == 0 {
            self.current_revision().await? + 1
        } else {
            req.start_revision
        };
        self.ensure_poller()?;
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        self.inner.hub.register(Watcher {
            range: KeyRange::new(&req.key, req.prefix),
            prev_kv: req.prev_kv,
            next_rev,
            tx,
        });
        Ok(WatchStream::new(rx, None))
    }

    async fn lease_grant(&self, ttl_seconds: i64) -> Result<LeaseId, DatastoreError> {
        if ttl_seconds < 1 {
            return Err(DatastoreError::InvalidRequest(format!(
                "lease TTL must be at least 1 second, got {ttl_seconds}"
            )));
        }
        if ttl_seconds > MAX_LEASE_TTL {
            return Err(DatastoreError::InvalidRequest(format!(
                "lease TTL {ttl_seconds}s is too large (at most {MAX_LEASE_TTL}s, as etcd)"
            )));
        }
        // Someone must expire the lease if this process dies or stops writing.
        self.ensure_poller()?;
        self.write(move |conn, _| store::lease_grant(conn, ttl_seconds))
            .await
    }

    async fn lease_keep_alive(&self, lease: LeaseId) -> Result<i64, DatastoreError> {
        self.write(move |conn, _| store::lease_keep_alive(conn, lease))
            .await
    }

    async fn lease_revoke(&self, lease: LeaseId) -> Result<(), DatastoreError> {
        self.write(move |conn, _| store::lease_revoke(conn, lease))
            .await
    }

    async fn compact(&self, revision: Revision) -> Result<(), DatastoreError> {
        self.write(move |conn, _| store::compact(conn, revision))
            .await
    }

    async fn current_revision(&self) -> Result<Revision, DatastoreError> {
        self.read(|conn| store::meta(conn, "revision")).await
    }
}

/// SQLite's "another connection holds the lock" results.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

impl From<rusqlite::Error> for DatastoreError {
    fn from(e: rusqlite::Error) -> Self {
        if is_busy(&e) {
            DatastoreError::Unavailable(format!(
                "embedded datastore is locked by another process beyond the busy timeout: {e}"
            ))
        } else {
            DatastoreError::Backend(format!("embedded datastore: {e}"))
        }
    }
}

/// Wall-clock milliseconds: lease expiry is shared by processes, so it can't use `Instant`.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
