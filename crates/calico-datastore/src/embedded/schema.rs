//! Opening the SQLite file: connection pragmas, the schema and its migrations.
//!
//! The file is shared by every process of a machine (each calico-node of a lab, calicoctl, CNI
//! plugins), so everything here must be safe when several processes open a fresh file at once:
//! the schema is created inside one `BEGIN IMMEDIATE` transaction with `IF NOT EXISTS`, and the
//! journal mode switch to WAL is retried while another process holds the lock.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{EmbeddedOptions, Synchronous, now_ms};
use crate::DatastoreError;

/// The schema version this build writes. Bump it and add a step to [`MIGRATIONS`] when the
/// layout changes; files written by a newer build (a higher version) are refused.
pub const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[i]` takes a file from version `i` to `i + 1`. Version 0 is an empty file.
const MIGRATIONS: &[&str] = &[
    // v1: the revision log, the current state, leases and the store-wide counters.
    "
    CREATE TABLE IF NOT EXISTS meta (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO meta (name, value) VALUES
        ('revision', 1), ('compact_revision', 0), ('lease_seq', 0);

    -- Current value of every live key (what range reads).
    CREATE TABLE IF NOT EXISTS kv (
        key        BLOB PRIMARY KEY,
        value      BLOB NOT NULL,
        create_rev INTEGER NOT NULL,
        mod_rev    INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        lease      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease) WHERE lease != 0;

    -- One row per change (what watches replay). The previous value is kept inline, as kine
    -- does, so prev_kv survives compaction of the row that wrote it.
    CREATE TABLE IF NOT EXISTS log (
        rev             INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        key             BLOB NOT NULL,
        deleted         INTEGER NOT NULL,
        value           BLOB NOT NULL,
        create_rev      INTEGER NOT NULL,
        version         INTEGER NOT NULL,
        lease           INTEGER NOT NULL,
        prev_value      BLOB,
        prev_create_rev INTEGER,
        prev_mod_rev    INTEGER,
        prev_version    INTEGER,
        prev_lease      INTEGER,
        PRIMARY KEY (rev, seq)
    ) WITHOUT ROWID;

    CREATE TABLE IF NOT EXISTS leases (
        id        INTEGER PRIMARY KEY,
        ttl       INTEGER NOT NULL,
        expiry_ms INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expiry_ms);
    ",
];

/// Opens one connection and applies the per-connection settings.
pub(crate) fn connect(path: &Path, opts: &EmbeddedOptions) -> Result<Connection, DatastoreError> {
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        DatastoreError::Config(format!(
            "cannot open embedded datastore file {}: {e}",
            path.display()
        ))
    })?;
    let sync = match opts.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    // A writer waits up to `busy_timeout` for another process's write transaction instead of
    // failing; beyond it the caller gets `Unavailable`.
    set_busy_limit(opts.busy_timeout);
    conn.busy_handler(Some(busy_wait))
        .and_then(|()| conn.pragma_update(None, "synchronous", sync))
        .map_err(|e| {
            DatastoreError::Config(format!(
                "cannot use embedded datastore file {}: {e}",
                path.display()
            ))
        })?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Opens the first connection of a process: switches the file to WAL, creates or migrates the
/// schema, and refuses files written by a newer build.
pub(crate) fn open_and_migrate(
    path: &Path,
    opts: &EmbeddedOptions,
) -> Result<Connection, DatastoreError> {
    let mut conn = connect(path, opts)?;
    set_wal(&conn, path, opts.busy_timeout)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version       INTEGER PRIMARY KEY,
             applied_at_ms INTEGER NOT NULL
         )",
    )?;
    let current: i64 = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .optional()?
        .flatten()
        .unwrap_or(0);
    if current > SCHEMA_VERSION {
        return Err(DatastoreError::Config(format!(
            "embedded datastore {} has schema version {current}, but this build only understands \
             versions up to {SCHEMA_VERSION}; upgrade calico-rs to open it",
            path.display()
        )));
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at_ms) VALUES (?1, ?2)",
            (from as i64 + 1, now_ms()),
        )?;
    }
    tx.commit()?;
    Ok(conn)
}

/// Switches the file to WAL mode (persistent, so later opens see it already set). Changing the
/// journal mode needs an exclusive lock; another process opening the same fresh file at the same
/// moment makes it fail with SQLITE_BUSY without consulting the busy handler, so retry.
fn set_wal(conn: &Connection, path: &Path, patience: Duration) -> Result<(), DatastoreError> {
    let deadline = Instant::now() + patience;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                return Err(DatastoreError::Config(format!(
                    "embedded datastore {}: cannot switch to WAL journal mode (got {mode}); \
                     is the file on a filesystem without shared memory support?",
                    path.display()
                )));
            }
            Err(e) if super::is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                return Err(DatastoreError::Config(format!(
                    "embedded datastore {}: cannot enable WAL mode: {e}",
                    path.display()
                )));
            }
        }
    }
}

/// The longest `busy_timeout` any store of this process asked for, in microseconds: the busy
/// handler is a plain function, so the limit lives here.
static BUSY_LIMIT_US: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn set_busy_limit(limit: Duration) {
    let us = u64::try_from(limit.as_micros()).unwrap_or(u64::MAX);
    BUSY_LIMIT_US.fetch_max(us, std::sync::atomic::Ordering::Relaxed);
}

/// Time already waited before busy attempt `n`, and how long attempt `n` sleeps (µs).
///
/// SQLite's default handler (`sqlite3_busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25, 25, ...
/// ms, which suits long transactions. Ours are sub-millisecond, so under a burst (30 CNI
/// plugins writing their WorkloadEndpoints at once) those sleeps are nearly all waste: a
/// writer sleeping 10 ms for a lock freed 0.2 ms later. We poll finely at first (100 µs for 2
/// ms, then 250 µs up to 22 ms) and back off to 1 ms only for a lock held long.
pub(crate) fn busy_schedule(n: u64) -> (u64, u64) {
    if n < 20 {
        (n * 100, 100)
    } else if n < 100 {
        (2_000 + (n - 20) * 250, 250)
    } else {
        (22_000 + (n - 100) * 1_000, 1_000)
    }
}

fn busy_wait(attempt: i32) -> bool {
    let n = u64::try_from(attempt).unwrap_or(0);
    let (waited, sleep) = busy_schedule(n);
    if waited >= BUSY_LIMIT_US.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    // A little jitter so waiters woken together do not collide again.
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            % 50,
    );
    std::thread::sleep(Duration::from_micros(sleep + jitter));
    true
}

#[cfg(test)]
mod busy_tests {
    use super::busy_schedule;

    #[test]
    fn schedule_is_continuous_and_reaches_ten_seconds() {
        let mut expected = 0;
        for n in 0..20_000 {
            let (waited, sleep) = busy_schedule(n);
            assert_eq!(waited, expected, "attempt {n}");
            expected += sleep;
        }
        assert!(busy_schedule(10_100).0 >= 10_000_000);
    }
}
