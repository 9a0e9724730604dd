//! A set of IPAM records read at known revisions, changed in memory by the pure core, and
//! written back in one transaction guarded by a compare on each written key's mod revision.

use std::collections::BTreeMap;

use calico_datastore::{Compare, CompareOp, Datastore, Revision, Txn, TxnOp};
use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::error::IpamError;
use crate::model::{self, AllocationBlock, BlockAffinity, IpamHandle};

#[derive(Debug, Clone)]
struct Entry<T> {
    /// Mod revision the value was read at; 0 = absent (etcd compares an absent key's mod
    /// revision as 0, so one compare covers "unchanged" and "still absent").
    rev: Revision,
    /// `None` = absent / to be deleted.
    value: Option<T>,
    dirty: bool,
    /// A block created by this plan: written with the sequence number it was built with.
    fresh: bool,
}

/// Records read for one operation and the changes to persist atomically. Cloning is how the
/// batching allocator undoes one request's changes without touching the others'.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    blocks: BTreeMap<String, Entry<AllocationBlock>>,
    handles: BTreeMap<String, Entry<IpamHandle>>,
    affinities: BTreeMap<String, Entry<BlockAffinity>>,
}

impl Plan {
    pub fn new() -> Self {
        Plan::default()
    }

    /// Reads the block `cidr` into the plan (once), garbage-collecting cooled-down addresses as
    /// Calico does on every block read. Returns whether it exists.
    pub async fn load_block(
        &mut self,
        store: &dyn Datastore,
        cidr: &IpNet,
        now: DateTime<Utc>,
        cooldown_secs: i64,
    ) -> Result<bool, IpamError> {
        let key = model::block_key(cidr);
        if let Some(e) = self.blocks.get(&key) {
            return Ok(e.value.is_some());
        }
        let entry = match store.get(&key).await? {
            Some(kv) => {
                let mut b: AllocationBlock = model::decode(&kv.key, &kv.value)?;
                b.garbage_collect(now, cooldown_secs);
                Entry {
                    rev: kv.mod_revision,
                    value: Some(b),
                    dirty: false,
                    fresh: false,
                }
            }
            None => Entry {
                rev: 0,
                value: None,
                dirty: false,
                fresh: false,
            },
        };
        let exists = entry.value.is_some();
        self.blocks.insert(key, entry);
        Ok(exists)
    }

    /// The loaded block `cidr`, if it exists, for reading.
    pub fn block(&self, cidr: &IpNet) -> Option<&AllocationBlock> {
        self.blocks
            .get(&model::block_key(cidr))
            .and_then(|e| e.value.as_ref())
    }

    /// The loaded block `cidr` for changing; marks it to be written.
    pub fn block_mut(&mut self, cidr: &IpNet) -> Option<&mut AllocationBlock> {
        let e = self.blocks.get_mut(&model::block_key(cidr))?;
        e.dirty = true;
        e.value.as_mut()
    }

    /// Creates block `block` (its key must have been loaded as absent, or not loaded: the
    /// commit then requires it to still be absent).
    pub fn create_block(&mut self, block: AllocationBlock) {
        let key = model::block_key(&block.cidr);
        let rev = self.blocks.get(&key).map_or(0, |e| e.rev);
        self.blocks.insert(
            key,
            Entry {
                rev,
                value: Some(block),
                dirty: true,
                fresh: true,
            },
        );
    }

    /// Forgets a cached, unchanged block so the next `load_block` reads it again.
    pub fn forget_block(&mut self, cidr: &IpNet) {
        let key = model::block_key(cidr);
        if self.blocks.get(&key).is_some_and(|e| !e.dirty) {
            self.blocks.remove(&key);
        }
    }

    /// Marks the loaded block `cidr` for deletion.
    pub fn delete_block(&mut self, cidr: &IpNet) {
        if let Some(e) = self.blocks.get_mut(&model::block_key(cidr)) {
            e.value = None;
            e.dirty = true;
        }
    }

    /// Reads handle `id` (absent handles load as empty).
    pub async fn load_handle(&mut self, store: &dyn Datastore, id: &str) -> Result<(), IpamError> {
        if self.handles.contains_key(id) {
            return Ok(());
        }
        let key = model::handle_key(id);
        let entry = match store.get(&key).await? {
            Some(kv) => Entry {
                rev: kv.mod_revision,
                value: Some(model::decode(&kv.key, &kv.value)?),
                dirty: false,
                fresh: false,
            },
            None => Entry {
                rev: 0,
                value: None,
                dirty: false,
                fresh: false,
            },
        };
        self.handles.insert(id.to_string(), entry);
        Ok(())
    }

    /// The loaded handle `id` (empty if absent).
    pub fn handle(&self, id: &str) -> Option<&IpamHandle> {
        self.handles.get(id).and_then(|e| e.value.as_ref())
    }

    /// The loaded handle `id` for changing (created empty if absent); marks it to be written.
    /// An empty handle is deleted at commit.
    pub fn handle_mut(&mut self, id: &str) -> &mut IpamHandle {
        let e = self.handles.entry(id.to_string()).or_insert(Entry {
            rev: 0,
            value: None,
            dirty: false,
            fresh: false,
        });
        e.dirty = true;
        e.value.get_or_insert_with(IpamHandle::default)
    }

    /// Reads an affinity key into the plan.
    pub async fn load_affinity(
        &mut self,
        store: &dyn Datastore,
        key: &str,
    ) -> Result<Option<BlockAffinity>, IpamError> {
        if let Some(e) = self.affinities.get(key) {
            return Ok(e.value);
        }
        let entry = match store.get(key).await? {
            Some(kv) => Entry {
                rev: kv.mod_revision,
                value: Some(BlockAffinity::decode(&kv.key, &kv.value)?),
                dirty: false,
                fresh: false,
            },
            None => Entry {
                rev: 0,
                value: None,
                dirty: false,
                fresh: false,
            },
        };
        let v = entry.value;
        self.affinities.insert(key.to_string(), entry);
        Ok(v)
    }

    /// Sets (or, with `None`, deletes) a loaded affinity key.
    pub fn set_affinity(&mut self, key: &str, value: Option<BlockAffinity>) {
        let e = self.affinities.entry(key.to_string()).or_insert(Entry {
            rev: 0,
            value: None,
            dirty: false,
            fresh: false,
        });
        e.value = value;
        e.dirty = true;
    }

    /// Whether anything is to be written.
    pub fn is_dirty(&self) -> bool {
        self.blocks.values().any(|e| e.dirty)
            || self.handles.values().any(|e| e.dirty)
            || self.affinities.values().any(|e| e.dirty)
    }

    /// Every key the plan holds, read or written: each becomes a compare in the commit, and
    /// etcd limits compares per transaction like operations.
    pub fn key_count(&self) -> usize {
        self.blocks.len() + self.handles.len() + self.affinities.len()
    }

    /// Number of operations the commit will carry (etcd caps a transaction at 128 by default).
    pub fn op_count(&self) -> usize {
        self.blocks.values().filter(|e| e.dirty).count()
            + self.handles.values().filter(|e| e.dirty).count()
            + self.affinities.values().filter(|e| e.dirty).count()
    }

    /// Adds a block the caller already holds (read at mod revision `rev`, e.g. from a cache),
    /// as if [`Plan::load_block`] had read it: the commit then requires the stored block to
    /// still be at `rev`, so a stale cached copy can only cause a conflict, never a lost write.
    pub fn insert_block(&mut self, rev: Revision, block: AllocationBlock) {
        self.blocks.insert(
            model::block_key(&block.cidr),
            Entry {
                rev,
                value: Some(block),
                dirty: false,
                fresh: false,
            },
        );
    }

    /// Adds a handle the caller already read at mod revision `rev` (0 and `None` = absent).
    pub fn insert_handle(&mut self, id: &str, rev: Revision, value: Option<IpamHandle>) {
        self.handles.insert(
            id.to_string(),
            Entry {
                rev,
                value,
                dirty: false,
                fresh: false,
            },
        );
    }

    /// Whether handle `id` has been loaded (or inserted) into the plan.
    pub fn has_handle(&self, id: &str) -> bool {
        self.handles.contains_key(id)
    }

    /// Advances the sequence number of every block changed so far: the batching allocator
    /// calls it between requests so that allocations of different requests never share a
    /// sequence number (what makes a stale release by sequence number safe, as in Calico where
    /// each request is its own block write).
    pub fn bump_dirty_blocks(&mut self) {
        for e in self.blocks.values_mut().filter(|e| e.dirty) {
            if let Some(b) = e.value.as_mut() {
                b.bump_sequence();
            }
        }
    }

    /// The mod revision and value of a block in the plan (`None` value: absent or deleted).
    pub fn block_entry(&self, cidr: &IpNet) -> Option<(Revision, Option<&AllocationBlock>)> {
        self.blocks
            .get(&model::block_key(cidr))
            .map(|e| (e.rev, e.value.as_ref()))
    }

    /// Writes every changed record in one transaction. Each written block gets its sequence
    /// number bumped (Calico's `updateBlock`). Fails with a conflict (see
    /// [`IpamError::is_conflict`]) when any written key changed since it was read; nothing is
    /// written then.
    pub async fn commit(mut self, store: &dyn Datastore) -> Result<Revision, IpamError> {
        self.commit_in_place(store).await
    }

    /// [`Plan::commit`], keeping the plan: after success every written record carries the
    /// commit's revision (etcd gives all writes of a transaction that revision) and its written
    /// value, so the caller can keep them as a cache. After a failure the plan must be dropped.
    pub async fn commit_in_place(&mut self, store: &dyn Datastore) -> Result<Revision, IpamError> {
        let mut txn = Txn::default();
        for (key, e) in self.blocks.iter_mut().filter(|(_, e)| e.dirty) {
            txn.compare
                .push(Compare::mod_revision(key, CompareOp::Equal, e.rev));
            match e.value.as_mut() {
                Some(b) => {
                    if !e.fresh {
                        b.bump_sequence();
                    }
                    txn.success.push(TxnOp::put(key, model::encode(b), None));
                }
                None => txn.success.push(TxnOp::delete(key)),
            }
        }
        for (id, e) in self.handles.iter().filter(|(_, e)| e.dirty) {
            let key = model::handle_key(id);
            txn.compare
                .push(Compare::mod_revision(&key, CompareOp::Equal, e.rev));
            match &e.value {
                Some(h) if h.total() > 0 => {
                    txn.success.push(TxnOp::put(&key, model::encode(h), None))
                }
                _ => txn.success.push(TxnOp::delete(&key)),
            }
        }
        for (key, e) in self.affinities.iter().filter(|(_, e)| e.dirty) {
            txn.compare
                .push(Compare::mod_revision(key, CompareOp::Equal, e.rev));
            match &e.value {
                Some(a) => txn.success.push(TxnOp::put(key, model::encode(a), None)),
                None => txn.success.push(TxnOp::delete(key)),
            }
        }
        if txn.success.is_empty() {
            return store.current_revision().await.map_err(Into::into);
        }
        let resp = store.txn(txn).await?;
        if resp.succeeded {
            let rev = resp.revision;
            for e in self.blocks.values_mut().filter(|e| e.dirty) {
                e.rev = if e.value.is_some() { rev } else { 0 };
                e.dirty = false;
                e.fresh = false;
            }
            for e in self.handles.values_mut().filter(|e| e.dirty) {
                if e.value.as_ref().is_some_and(|h| h.total() > 0) {
                    e.rev = rev;
                } else {
                    e.rev = 0;
                    e.value = None;
                }
                e.dirty = false;
            }
            for e in self.affinities.values_mut().filter(|e| e.dirty) {
                e.rev = if e.value.is_some() { rev } else { 0 };
                e.dirty = false;
            }
            Ok(rev)
        } else {
            Err(IpamError::Datastore(
                calico_datastore::DatastoreError::Conflict {
                    key: "IPAM transaction".into(),
                    expected: 0,
                    actual: resp.revision,
                },
            ))
        }
    }
}
