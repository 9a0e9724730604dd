//! The synchronous core: etcd v3 operations as SQLite transactions.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction, so writers of all processes sharing the file
//! serialize on SQLite's write lock. Inside it the transaction reads the current revision,
//! evaluates the compares, applies the chosen branch and, only if something changed, stores
//! `revision + 1` (etcd: a txn without changes does not advance the revision). Commits therefore
//! happen in revision order, which is what lets watchers tail the log without gaps.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use super::{EmbeddedOptions, now_ms};
use crate::{
    DatastoreError, EventKind, KeyValue, LeaseId, RangeRequest, RangeResponse, Revision, Txn,
    TxnOp, TxnOpResult, TxnResponse, WatchEvent,
};

/// The half-open byte range `[start, end)` a key or prefix covers; `end == None` for a single
/// key, `Some(empty)` for "no upper bound" (etcd's range_end `\0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    pub fn new(key: &str, prefix: bool) -> Self {
        KeyRange {
            start: key.as_bytes().to_vec(),
            end: prefix.then(|| prefix_end(key.as_bytes())),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match &self.end {
            None => key == self.start.as_slice(),
            Some(end) => key >= self.start.as_slice() && (end.is_empty() || key < end.as_slice()),
        }
    }

    /// Whether this range and `other` share at least one key.
    fn overlaps(&self, other: &KeyRange) -> bool {
        match (&self.end, &other.end) {
            (None, _) => other.contains(&self.start),
            (_, None) => self.contains(&other.start),
            (Some(a_end), Some(b_end)) => {
                (b_end.is_empty() || self.start < *b_end)
                    && (a_end.is_empty() || other.start < *a_end)
            }
        }
    }
}

/// etcd's `GetPrefixRangeEnd`: the prefix with its last byte incremented, trailing 0xff bytes
/// dropped; empty (= unbounded) when no such key exists.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    Vec::new()
}

/// Rejects what etcd rejects before running a request: an empty key (etcd's "key is not
/// provided") unless it is the empty prefix that means "every key".
pub(crate) fn check_key(key: &str, prefix: bool, what: &str) -> Result<(), DatastoreError> {
    if key.is_empty() && !prefix {
        return Err(DatastoreError::InvalidRequest(format!(
            "{what}: key is not provided (empty key)"
        )));
    }
    Ok(())
}

/// etcd's `checkIntervals`: in one branch a key may be put at most once and may not be put
/// and deleted together ("duplicate key given in txn request").
pub(crate) fn validate_txn(txn: &Txn) -> Result<(), DatastoreError> {
    for c in &txn.compare {
        check_key(&c.key, false, "txn compare")?;
    }
    for (branch, ops) in [("success", &txn.success), ("failure", &txn.failure)] {
        let mut puts = HashSet::new();
        let mut deletes = Vec::new();
        for op in ops {
            match op {
                TxnOp::Put { key, .. } => {
                    check_key(key, false, "txn put")?;
                    if !puts.insert(key.as_str()) {
                        return Err(DatastoreError::InvalidRequest(format!(
                            "duplicate key given in txn request: {key} is put twice in the \
                             {branch} branch"
                        )));
                    }
                }
                TxnOp::Delete { key, prefix, .. } => {
                    check_key(key, *prefix, "txn delete")?;
                    deletes.push(KeyRange::new(key, *prefix));
                }
                TxnOp::Range(r) => check_range(r)?,
            }
        }
        for put in &puts {
            let put_range = KeyRange::new(put, false);
            if deletes.iter().any(|d| d.overlaps(&put_range)) {
                return Err(DatastoreError::InvalidRequest(format!(
                    "duplicate key given in txn request: {put} is both put and deleted in the \
                     {branch} branch"
                )));
            }
        }
    }
    Ok(())
}

pub(crate) fn check_range(r: &RangeRequest) -> Result<(), DatastoreError> {
    check_key(&r.key, r.prefix, "range")?;
    if r.limit < 0 {
        return Err(DatastoreError::InvalidRequest(format!(
            "range limit must not be negative, got {}",
            r.limit
        )));
    }
    Ok(())
}

pub(crate) fn meta(conn: &Connection, name: &str) -> Result<i64, DatastoreError> {
    let v = conn
        .prepare_cached("SELECT value FROM meta WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    v.ok_or_else(|| {
        DatastoreError::Backend(format!(
            "embedded datastore is missing its '{name}' counter (damaged file?)"
        ))
    })
}

fn set_meta(conn: &Connection, name: &str, value: i64) -> Result<(), DatastoreError> {
    conn.prepare_cached("UPDATE meta SET value = ?2 WHERE name = ?1")?
        .execute(params![name, value])?;
    Ok(())
}

fn key_string(bytes: Vec<u8>) -> Result<String, DatastoreError> {
    String::from_utf8(bytes)
        .map_err(|e| DatastoreError::Backend(format!("stored key is not UTF-8: {e}")))
}

const KV_COLUMNS: &str = "key, value, create_rev, mod_rev, version, lease";

fn kv_from_row(row: &Row<'_>) -> rusqlite::Result<(Vec<u8>, KeyValueParts)> {
    Ok((
        row.get(0)?,
        KeyValueParts {
            value: row.get(1)?,
            create_revision: row.get(2)?,
            mod_revision: row.get(3)?,
            version: row.get(4)?,
            lease: row.get(5)?,
        },
    ))
}

/// A key's value and revisions before the key (bytes) is turned into a `String`.
struct KeyValueParts {
    value: Vec<u8>,
    create_revision: Revision,
    mod_revision: Revision,
    version: i64,
    lease: LeaseId,
}

impl KeyValueParts {
    fn into_kv(self, key: String) -> KeyValue {
        KeyValue {
            key,
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
        }
    }
}

pub(crate) fn get_kv(conn: &Connection, key: &str) -> Result<Option<KeyValue>, DatastoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {KV_COLUMNS} FROM kv WHERE key = ?1"))?
        .query_row([key.as_bytes()], kv_from_row)
        .optional()?;
    Ok(found.map(|(_, parts)| parts.into_kv(key.to_string())))
}

/// Every live key in `range`, in key order.
fn scan(conn: &Connection, range: &KeyRange, limit: i64) -> Result<Vec<KeyValue>, DatastoreError> {
    let limit = if limit > 0 { limit } else { -1 };
    let rows: Vec<(Vec<u8>, KeyValueParts)> = match &range.end {
        None => {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {KV_COLUMNS} FROM kv WHERE key = ?1"))?;
            stmt.query_map([&range.start], kv_from_row)?
                .collect::<Result<_, _>>()?
        }
        Some(end) if end.is_empty() => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {KV_COLUMNS} FROM kv WHERE key >= ?1 ORDER BY key LIMIT ?2"
            ))?;
            stmt.query_map(params![range.start, limit], kv_from_row)?
                .collect::<Result<_, _>>()?
        }
        Some(end) => {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {KV_COLUMNS} FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
            ))?;
            stmt.query_map(params![range.start, end, limit], kv_from_row)?
                .collect::<Result<_, _>>()?
        }
    };
    rows.into_iter()
        .map(|(k, parts)| Ok(parts.into_kv(key_string(k)?)))
        .collect()
}

fn count(conn: &Connection, range: &KeyRange) -> Result<i64, DatastoreError> {
    let n = match &range.end {
        None => conn
            .prepare_cached("SELECT COUNT(*) FROM kv WHERE key = ?1")?
            .query_row([&range.start], |r| r.get(0))?,
        Some(end) if end.is_empty() => conn
            .prepare_cached("SELECT COUNT(*) FROM kv WHERE key >= ?1")?
            .query_row([&range.start], |r| r.get(0))?,
        Some(end) => conn
            .prepare_cached("SELECT COUNT(*) FROM kv WHERE key >= ?1 AND key < ?2")?
            .query_row(params![range.start, end], |r| r.get(0))?,
    };
    Ok(n)
}

/// A range read against `conn` as it is now (inside a transaction: including its own writes).
fn range_at(
    conn: &Connection,
    req: &RangeRequest,
    revision: Revision,
) -> Result<RangeResponse, DatastoreError> {
    let range = KeyRange::new(&req.key, req.prefix);
    if req.count_only {
        let n = count(conn, &range)?;
        return Ok(RangeResponse {
            kvs: vec![],
            count: n,
            more: false,
            revision,
        });
    }
    let kvs = scan(conn, &range, req.limit)?;
    let (count, more) = if req.limit > 0 && kvs.len() as i64 == req.limit {
        let n = count(conn, &range)?;
        (n, n > req.limit)
    } else {
        (kvs.len() as i64, false)
    };
    Ok(RangeResponse {
        kvs,
        count,
        more,
        revision,
    })
}

/// A consistent read: the rows and the revision come from one read snapshot.
pub(crate) fn range(
    conn: &mut Connection,
    req: &RangeRequest,
) -> Result<RangeResponse, DatastoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let rev = meta(&tx, "revision")?;
    let resp = range_at(&tx, req, rev)?;
    tx.commit()?;
    Ok(resp)
}

/// Writes of one transaction: they all share `rev`; `seq` orders them inside it.
struct RevWriter {
    rev: Revision,
    seq: i64,
}

impl RevWriter {
    fn log(
        &mut self,
        tx: &Transaction<'_>,
        key: &[u8],
        new: Option<&KeyValue>,
        prev: Option<&KeyValue>,
    ) -> Result<(), DatastoreError> {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO log (rev, seq, key, deleted, value, create_rev, version, lease,
                              prev_value, prev_create_rev, prev_mod_rev, prev_version, prev_lease)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        stmt.execute(params![
            self.rev,
            self.seq,
            key,
            new.is_none(),
            new.map_or(&[][..], |kv| kv.value.as_slice()),
            new.map_or(0, |kv| kv.create_revision),
            new.map_or(0, |kv| kv.version),
            new.map_or(0, |kv| kv.lease),
            prev.map(|kv| kv.value.as_slice()),
            prev.map(|kv| kv.create_revision),
            prev.map(|kv| kv.mod_revision),
            prev.map(|kv| kv.version),
            prev.map(|kv| kv.lease),
        ])?;
        self.seq += 1;
        Ok(())
    }

    fn put(
        &mut self,
        tx: &Transaction<'_>,
        key: &str,
        value: &[u8],
        lease: LeaseId,
    ) -> Result<Option<KeyValue>, DatastoreError> {
        if lease != 0 {
            let exists = tx
                .prepare_cached("SELECT 1 FROM leases WHERE id = ?1")?
                .query_row([lease], |_| Ok(()))
                .optional()?
                .is_some();
            if !exists {
                return Err(DatastoreError::LeaseNotFound(lease));
            }
        }
        let prev = get_kv(tx, key)?;
        let new = KeyValue {
            key: key.to_string(),
            value: value.to_vec(),
            create_revision: prev.as_ref().map_or(self.rev, |p| p.create_revision),
            mod_revision: self.rev,
            version: prev.as_ref().map_or(1, |p| p.version + 1),
            lease,
        };
        tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO kv ({KV_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))?
        .execute(params![
            key.as_bytes(),
            new.value,
            new.create_revision,
            new.mod_revision,
            new.version,
            new.lease
        ])?;
        self.log(tx, key.as_bytes(), Some(&new), prev.as_ref())?;
        Ok(prev)
    }

    fn delete(
        &mut self,
        tx: &Transaction<'_>,
        range: &KeyRange,
    ) -> Result<Vec<KeyValue>, DatastoreError> {
        let gone = scan(tx, range, 0)?;
        for kv in &gone {
            tx.prepare_cached("DELETE FROM kv WHERE key = ?1")?
                .execute([kv.key.as_bytes()])?;
            self.log(tx, kv.key.as_bytes(), None, Some(kv))?;
        }
        Ok(gone)
    }
}

/// Runs a transaction (already validated) and returns its response.
pub(crate) fn txn(
    conn: &mut Connection,
    txn: &Txn,
    opts: &EmbeddedOptions,
) -> Result<TxnResponse, DatastoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    sweep_expired_leases_in(&tx, now_ms())?;
    let rev = meta(&tx, "revision")?;
    let mut succeeded = true;
    for c in &txn.compare {
        if !c.holds(get_kv(&tx, &c.key)?.as_ref()) {
            succeeded = false;
            break;
        }
    }
    let ops = if succeeded {
        &txn.success
    } else {
        &txn.failure
    };
    let mut w = RevWriter {
        rev: rev + 1,
        seq: 0,
    };
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        results.push(match op {
            TxnOp::Put {
                key,
                value,
                lease,
                prev_kv,
            } => {
                let prev = w.put(&tx, key, value, lease.unwrap_or(0))?;
                TxnOpResult::Put {
                    prev_kv: if *prev_kv { prev } else { None },
                }
            }
            TxnOp::Delete {
                key,
                prefix,
                prev_kv,
            } => {
                let gone = w.delete(&tx, &KeyRange::new(key, *prefix))?;
                TxnOpResult::Delete {
                    deleted: gone.len() as i64,
                    prev_kvs: if *prev_kv { gone } else { vec![] },
                }
            }
            TxnOp::Range(r) => {
                let seen = if w.seq > 0 { w.rev } else { rev };
                TxnOpResult::Range(range_at(&tx, r, seen)?)
            }
        });
    }
    let revision = if w.seq > 0 {
        set_meta(&tx, "revision", w.rev)?;
        auto_compact(&tx, w.rev, opts)?;
        w.rev
    } else {
        rev
    };
    tx.commit()?;
    Ok(TxnResponse {
        succeeded,
        revision,
        results,
    })
}

/// Keeps the log at about `retain` revisions: once it holds 10% more, the oldest are dropped.
fn auto_compact(
    tx: &Transaction<'_>,
    rev: Revision,
    opts: &EmbeddedOptions,
) -> Result<(), DatastoreError> {
    let Some(retain) = opts.auto_compact_retain else {
        return Ok(());
    };
    let retain = retain.max(1);
    let compacted = meta(tx, "compact_revision")?;
    if rev - compacted > retain + (retain / 10).max(1) {
        compact_in(tx, rev - retain)?;
    }
    Ok(())
}

fn compact_in(tx: &Transaction<'_>, revision: Revision) -> Result<(), DatastoreError> {
    tx.prepare_cached("DELETE FROM log WHERE rev < ?1")?
        .execute([revision])?;
    set_meta(tx, "compact_revision", revision)
}

/// etcd `Compact`: history below `revision` goes; a revision in the future is an error, and so
/// is one at or below the current compaction point (etcd's `ErrCompacted`).
pub(crate) fn compact(conn: &mut Connection, revision: Revision) -> Result<(), DatastoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = meta(&tx, "revision")?;
    let compacted = meta(&tx, "compact_revision")?;
    if revision > current {
        return Err(DatastoreError::FutureRevision {
            requested: revision,
            current,
        });
    }
    if revision <= compacted {
        return Err(DatastoreError::Compacted {
            requested: revision,
            compact_revision: compacted,
        });
    }
    compact_in(&tx, revision)?;
    tx.commit()?;
    Ok(())
}

pub(crate) fn lease_grant(conn: &mut Connection, ttl: i64) -> Result<LeaseId, DatastoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let id = meta(&tx, "lease_seq")? + 1;
    set_meta(&tx, "lease_seq", id)?;
    tx.prepare_cached("INSERT INTO leases (id, ttl, expiry_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![id, ttl, now_ms() + ttl * 1000])?;
    tx.commit()?;
    Ok(id)
}

pub(crate) fn lease_keep_alive(conn: &mut Connection, id: LeaseId) -> Result<i64, DatastoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // An expired lease is gone even if nobody swept it yet (its keys go now).
    sweep_expired_leases_in(&tx, now_ms())?;
    let ttl: Option<i64> = tx
        .prepare_cached("SELECT ttl FROM leases WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(ttl) = ttl else {
        tx.commit()?;
        return Err(DatastoreError::LeaseNotFound(id));
    };
    tx.prepare_cached("UPDATE leases SET expiry_ms = ?2 WHERE id = ?1")?
        .execute(params![id, now_ms() + ttl * 1000])?;
    tx.commit()?;
    Ok(ttl)
}

pub(crate) fn lease_revoke(conn: &mut Connection, id: LeaseId) -> Result<(), DatastoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    sweep_expired_leases_in(&tx, now_ms())?;
    let found = revoke_in(&tx, id)?;
    tx.commit()?;
    if found {
        Ok(())
    } else {
        Err(DatastoreError::LeaseNotFound(id))
    }
}

/// Deletes a lease and its keys; the key deletions share one new revision (etcd revokes a lease
/// in one transaction). Returns whether the lease existed.
fn revoke_in(tx: &Transaction<'_>, id: LeaseId) -> Result<bool, DatastoreError> {
    let removed = tx
        .prepare_cached("DELETE FROM leases WHERE id = ?1")?
        .execute([id])?;
    if removed == 0 {
        return Ok(false);
    }
    let keys: Vec<Vec<u8>> = tx
        .prepare_cached("SELECT key FROM kv WHERE lease = ?1 ORDER BY key")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if keys.is_empty() {
        return Ok(true);
    }
    let rev = meta(tx, "revision")? + 1;
    let mut w = RevWriter { rev, seq: 0 };
    for key in keys {
        let key = key_string(key)?;
        w.delete(tx, &KeyRange::new(&key, false))?;
    }
    set_meta(tx, "revision", rev)?;
    Ok(true)
}

/// The earliest lease expiry (unix ms), if any lease exists.
pub(crate) fn next_lease_expiry(conn: &Connection) -> Result<Option<i64>, DatastoreError> {
    Ok(conn
        .prepare_cached("SELECT MIN(expiry_ms) FROM leases")?
        .query_row([], |r| r.get(0))?)
}

/// Revokes every lease whose expiry has passed, whoever granted it: a lease outlives the
/// process that took it, so any process touching the store does the expiry.
fn sweep_expired_leases_in(tx: &Transaction<'_>, now: i64) -> Result<bool, DatastoreError> {
    if next_lease_expiry(tx)?.is_none_or(|t| t > now) {
        return Ok(false);
    }
    let expired: Vec<LeaseId> = tx
        .prepare_cached("SELECT id FROM leases WHERE expiry_ms <= ?1 ORDER BY expiry_ms, id")?
        .query_map([now], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in expired {
        tracing::debug!(lease = id, "embedded datastore: lease expired, revoking");
        revoke_in(tx, id)?;
    }
    Ok(true)
}

/// Expires leases in their own write transaction; returns whether anything was revoked.
pub(crate) fn sweep_expired_leases(conn: &mut Connection) -> Result<bool, DatastoreError> {
    let now = now_ms();
    if next_lease_expiry(conn)?.is_none_or(|t| t > now) {
        return Ok(false);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let swept = sweep_expired_leases_in(&tx, now)?;
    tx.commit()?;
    Ok(swept)
}

/// One logged change, as the watch poller reads it back.
pub(crate) struct LoggedEvent {
    pub rev: Revision,
    pub key: Vec<u8>,
    pub event: WatchEvent,
}

/// The log rows with `from <= rev <= to`, in revision then op order. Callers read the compact
/// revision in the same snapshot: rows below it may be missing.
pub(crate) fn read_log(
    conn: &Connection,
    from: Revision,
    to: Revision,
) -> Result<Vec<LoggedEvent>, DatastoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT rev, key, deleted, value, create_rev, version, lease,
                prev_value, prev_create_rev, prev_mod_rev, prev_version, prev_lease
         FROM log WHERE rev >= ?1 AND rev <= ?2 ORDER BY rev, seq",
    )?;
    let rows = stmt.query_map([from, to], |r| {
        let rev: Revision = r.get(0)?;
        let key: Vec<u8> = r.get(1)?;
        let deleted: bool = r.get(2)?;
        let prev_value: Option<Vec<u8>> = r.get(7)?;
        let prev = match prev_value {
            Some(value) => Some(KeyValueParts {
                value,
                create_revision: r.get(8)?,
                mod_revision: r.get(9)?,
                version: r.get(10)?,
                lease: r.get(11)?,
            }),
            None => None,
        };
        Ok((
            rev,
            key,
            deleted,
            KeyValueParts {
                value: r.get(3)?,
                create_revision: r.get(4)?,
                mod_revision: rev,
                version: r.get(5)?,
                lease: r.get(6)?,
            },
            prev,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (rev, key, deleted, parts, prev) = row?;
        let key_str = key_string(key.clone())?;
        out.push(LoggedEvent {
            rev,
            event: WatchEvent {
                kind: if deleted {
                    EventKind::Delete
                } else {
                    EventKind::Put
                },
                kv: parts.into_kv(key_str.clone()),
                prev_kv: prev.map(|p| p.into_kv(key_str)),
            },
            key,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_follows_etcd() {
        assert_eq!(prefix_end(b"/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), Vec::<u8>::new());
        assert_eq!(prefix_end(b""), Vec::<u8>::new());
    }

    #[test]
    fn key_ranges() {
        let dir = KeyRange::new("/a/", true);
        assert!(dir.contains(b"/a/"));
        assert!(dir.contains(b"/a/b"));
        assert!(!dir.contains(b"/a"));
        assert!(!dir.contains(b"/a0"));
        let all = KeyRange::new("", true);
        assert!(all.contains(b"") && all.contains(b"\xff\xff"));
        let one = KeyRange::new("/a/b", false);
        assert!(one.contains(b"/a/b") && !one.contains(b"/a/bc"));
        assert!(dir.overlaps(&one) && one.overlaps(&dir));
        assert!(!KeyRange::new("/b/", true).overlaps(&one));
        assert!(all.overlaps(&KeyRange::new("/zz/", true)));
        assert!(!KeyRange::new("/a/c", false).overlaps(&one));
    }

    #[test]
    fn txn_validation_matches_etcd() {
        let put = |k: &str| TxnOp::put(k, vec![], None);
        let ok = Txn {
            compare: vec![],
            success: vec![
                put("/a"),
                put("/b"),
                TxnOp::delete("/c"),
                TxnOp::delete("/c"),
            ],
            failure: vec![put("/a")],
        };
        assert!(
            validate_txn(&ok).is_ok(),
            "deletes may overlap; branches are separate"
        );
        let twice = Txn {
            failure: vec![put("/a"), put("/a")],
            ..Default::default()
        };
        assert!(matches!(
            validate_txn(&twice),
            Err(DatastoreError::InvalidRequest(m)) if m.contains("failure branch")
        ));
        let empty_compare = Txn {
            compare: vec![crate::Compare::version("", crate::CompareOp::Equal, 0)],
            ..Default::default()
        };
        assert!(validate_txn(&empty_compare).is_err());
    }
}
