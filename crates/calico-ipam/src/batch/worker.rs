//! The single task behind a [`super::NodeAllocator`]: drains the queue, applies the pending
//! requests to one [`Plan`] over the cached affine blocks, commits, answers.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use calico_datastore::Revision;
use ipnet::IpNet;
use tokio::sync::mpsc;

use super::{BatchConfig, Counters, Done, Job, Op};
use crate::block::HostReservedAttr;
use crate::block::{ReleaseOptions, sanitize_handle};
use crate::client::{
    Assignment, AutoAssignArgs, ClaimOutcome, Ctx, DATASTORE_RETRIES, DEFAULT_MAX_BLOCKS_PER_HOST,
    FamilyRequest, HandleRelease, IpamClient, TXN_BLOCK_BUDGET, backoff, check_names,
};
use crate::error::IpamError;
use crate::model::{self, AffinityOwner, AllocationBlock, BlockAffinity};
use crate::plan::Plan;
use crate::pools::{self, IntendedUse, Pool};

/// Handles one request may touch in a batch before it is handed to [`IpamClient`] (which
/// splits it into transactions of its own).
const MAX_HANDLE_BLOCKS: usize = TXN_BLOCK_BUDGET / 2;

/// How one request fared against the plan.
enum Outcome {
    Done(Done),
    Failed(IpamError),
    /// Served by [`IpamClient`] after the commit (borrowing, LoadBalancer, oversized).
    Fallback,
}

/// What stopped a request from being applied.
enum Stop {
    Fail(IpamError),
    Fallback,
    /// A family needs a new block: claim one in `pools`, then apply the request again.
    NeedBlock {
        version: u8,
        requested: usize,
        pools: Vec<Pool>,
        reserved: Option<HostReservedAttr>,
        max_blocks: u32,
        strict: bool,
    },
    /// The transaction is full: leave the request for the next round.
    Full,
}

impl From<IpamError> for Stop {
    fn from(e: IpamError) -> Self {
        Stop::Fail(e)
    }
}

/// Pools a family of the batch allocated from last (what ahead-of-need claims use).
struct FamilyUse {
    pools: Vec<Pool>,
    reserved: Option<HostReservedAttr>,
    max_blocks: u32,
}

pub(crate) struct Worker {
    client: IpamClient,
    owner: AffinityOwner,
    cfg: BatchConfig,
    rx: mpsc::UnboundedReceiver<Job>,
    counters: std::sync::Arc<Counters>,
    /// The node's affine blocks at their mod revisions. Only a hint: every block of a commit
    /// is compared against its revision, so a stale entry costs a retry, never an address.
    cache: BTreeMap<IpNet, (Revision, AllocationBlock)>,
    cache_valid: bool,
    families: BTreeMap<u8, FamilyUse>,
    /// Requests handed to IpamClient, still running (awaited by `settle`).
    fallbacks: Vec<tokio::task::JoinHandle<()>>,
}

/// Per-round memo of pool selections (reading pools and node labels once per round rather
/// than once per request).
type PoolMemo = BTreeMap<String, Result<Vec<Pool>, IpamError>>;

impl Worker {
    pub(crate) fn new(
        client: IpamClient,
        node: &str,
        cfg: BatchConfig,
        rx: mpsc::UnboundedReceiver<Job>,
        counters: std::sync::Arc<Counters>,
    ) -> Self {
        Worker {
            client,
            owner: AffinityOwner::host(node),
            cfg,
            rx,
            counters,
            cache: BTreeMap::new(),
            cache_valid: false,
            families: BTreeMap::new(),
            fallbacks: Vec::new(),
        }
    }

    pub(crate) async fn run(mut self) {
        while let Some(first) = self.rx.recv().await {
            let mut queue = VecDeque::from([first]);
            while queue.len() < self.cfg.max_batch {
                match self.rx.try_recv() {
                    Ok(j) => queue.push_back(j),
                    Err(_) => break,
                }
            }
            let (settles, mut queue): (VecDeque<Job>, VecDeque<Job>) =
                queue.into_iter().partition(|j| matches!(j.op, Op::Settle));
            while !queue.is_empty() {
                self.round(&mut queue).await;
            }
            if let Err(e) = self.claim_ahead().await {
                tracing::warn!(error = %e, "claiming a block ahead of need failed");
            }
            if !settles.is_empty() {
                for t in self.fallbacks.drain(..) {
                    let _ = t.await;
                }
            }
            for j in settles {
                let _ = j.reply.send(Ok(Done::Settled));
            }
        }
    }

    /// Re-reads the node's affinities and their blocks, healing half-finished claims as
    /// [`IpamClient`] does (a missing block is created, a pending affinity confirmed, an
    /// affinity to someone else's block dropped: all by [`IpamClient::claim_block`]).
    async fn refresh(&mut self) -> Result<(), IpamError> {
        let store = self.client.store().clone();
        let me = self.owner.affinity_string();
        self.cache.clear();
        for v in [4u8, 6] {
            for (cidr, kv) in self.client.list_affinities(&self.owner, v).await? {
                let confirmed = BlockAffinity::decode(&kv.key, &kv.value)?
                    .state
                    .is_confirmed();
                let mut got = store.get(&model::block_key(&cidr)).await?;
                let ours = |kv: &Option<calico_datastore::KeyValue>| -> Result<bool, IpamError> {
                    Ok(match kv {
                        Some(kv) => {
                            let b: AllocationBlock = model::decode(&kv.key, &kv.value)?;
                            b.affinity.as_deref() == Some(me.as_str())
                        }
                        None => false,
                    })
                };
                if !confirmed || !ours(&got)? {
                    if self.client.claim_block(&self.owner, &cidr, None).await?
                        == ClaimOutcome::TakenByOther
                    {
                        continue;
                    }
                    got = store.get(&model::block_key(&cidr)).await?;
                    if !ours(&got)? {
                        continue;
                    }
                }
                if let Some(kv) = got {
                    let b: AllocationBlock = model::decode(&kv.key, &kv.value)?;
                    self.cache.insert(cidr, (kv.mod_revision, b));
                }
            }
        }
        self.cache_valid = true;
        Ok(())
    }

    /// Serves a prefix of `queue` in one transaction and removes it from the queue.
    async fn round(&mut self, queue: &mut VecDeque<Job>) {
        let mut last_err = IpamError::MaxRetries("batched IPAM requests".into());
        for attempt in 0..DATASTORE_RETRIES {
            match self.try_round(queue).await {
                Ok(()) => return,
                Err(e) if e.is_conflict() => {
                    Counters::add(&self.counters.conflicts, 1);
                    tracing::debug!(attempt, "IPAM batch lost a compare-and-swap; retrying");
                    self.cache_valid = false;
                    backoff(attempt).await;
                    last_err = IpamError::MaxRetries("batched IPAM requests".into());
                }
                Err(e) => {
                    // The datastore itself failed: every request of the batch gets the error.
                    self.cache_valid = false;
                    last_err = e;
                    break;
                }
            }
        }
        for job in queue.drain(..) {
            Counters::add(&self.counters.requests, 1);
            let _ = job.reply.send(Err(last_err.clone()));
        }
    }

    /// One attempt at a round. `Err` = nothing was committed or answered.
    async fn try_round(&mut self, queue: &mut VecDeque<Job>) -> Result<(), IpamError> {
        let mut refreshed = !self.cache_valid;
        if refreshed {
            self.refresh().await?;
        }
        let ctx = self.client.ctx().await?;
        let cooldown = ctx.config.ip_cooldown_seconds;
        let mut plan = Plan::new();
        for (rev, b) in self.cache.values() {
            let mut b = b.clone();
            b.garbage_collect(ctx.now, cooldown);
            plan.insert_block(*rev, b);
        }
        self.prefetch_handles(&mut plan, queue).await?;
        let mut memo = PoolMemo::new();
        let mut all_pools: Option<Vec<Pool>> = None;
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut claims = 0u32;
        while let Some(job) = queue.get(outcomes.len()) {
            let op = job.op.clone();
            let saved = plan.clone();
            let r = match &op {
                Op::Assign(a) => self.apply_assign(&ctx, &mut plan, &mut memo, a).await,
                Op::ReleaseHandle(h) => self.apply_release_handle(&ctx, &mut plan, h).await,
                Op::Settle => Ok(Done::Settled),
                Op::ReleaseIps(o) => {
                    self.apply_release_ips(&ctx, &mut plan, &mut all_pools, o)
                        .await
                }
            };
            // A request that pushes the transaction past etcd's limit waits for the next round.
            let r = match r {
                Ok(_) if plan.op_count() > TXN_BLOCK_BUDGET => Err(Stop::Full),
                other => other,
            };
            match r {
                Ok(d) => {
                    plan.bump_dirty_blocks();
                    outcomes.push(Outcome::Done(d));
                }
                Err(Stop::Fail(e)) if e.is_conflict() => return Err(e),
                Err(Stop::Fail(e)) => {
                    plan = saved;
                    outcomes.push(Outcome::Failed(e));
                }
                Err(Stop::Fallback) => {
                    plan = saved;
                    outcomes.push(Outcome::Fallback);
                }
                Err(Stop::Full) => {
                    plan = saved;
                    if outcomes.is_empty() {
                        // Alone it is too big for one transaction: IpamClient splits it.
                        outcomes.push(Outcome::Fallback);
                    } else {
                        break;
                    }
                }
                Err(Stop::NeedBlock {
                    version,
                    requested,
                    pools,
                    reserved,
                    max_blocks,
                    strict,
                }) => {
                    plan = saved;
                    if !refreshed {
                        // Before claiming, re-read the node's affinities: another writer
                        // (IpamClient on this node) may have claimed blocks the cache lacks,
                        // and they count against maxBlocksPerHost.
                        refreshed = true;
                        self.refresh().await?;
                        let mut found = false;
                        for (rev, b) in self.cache.values() {
                            if plan.block_entry(&b.cidr).is_none() {
                                let mut b = b.clone();
                                b.garbage_collect(ctx.now, cooldown);
                                plan.insert_block(*rev, b);
                                found = true;
                            }
                        }
                        if found {
                            continue;
                        }
                    }
                    // Bounded: each claim either adds a block (limited by max_blocks) or
                    // finds the chosen block taken, which find_usable_block then skips.
                    claims += 1;
                    if claims > 4 * max_blocks.max(1) {
                        outcomes.push(Outcome::Failed(IpamError::MaxRetries(
                            "claiming blocks for a batch".into(),
                        )));
                        continue;
                    }
                    match self
                        .claim(&ctx, version, &pools, reserved.as_ref(), max_blocks)
                        .await?
                    {
                        Some(cidr) => {
                            Counters::add(&self.counters.claims_on_demand, 1);
                            if let Some((rev, b)) = self.cache.get(&cidr) {
                                let mut b = b.clone();
                                b.garbage_collect(ctx.now, cooldown);
                                plan.insert_block(*rev, b);
                            }
                            // Apply the same request again (outcomes unchanged).
                        }
                        None if strict => outcomes.push(Outcome::Failed(IpamError::Exhausted {
                            version,
                            requested,
                            assigned: 0,
                        })),
                        None => outcomes.push(Outcome::Fallback),
                    }
                }
            }
        }
        let revision = plan.commit_in_place(self.client.store().as_ref()).await?;
        // Keep what was written as the cache (a block emptied and deleted leaves it).
        let cidrs: Vec<IpNet> = self.cache.keys().copied().collect();
        for cidr in cidrs {
            match plan.block_entry(&cidr) {
                Some((rev, Some(b))) => {
                    self.cache.insert(cidr, (rev, b.clone()));
                }
                Some((_, None)) => {
                    self.cache.remove(&cidr);
                }
                None => {}
            }
        }
        if outcomes.iter().any(|o| matches!(o, Outcome::Done(_))) {
            Counters::add(&self.counters.commits, 1);
        }
        for o in outcomes {
            let Some(job) = queue.pop_front() else { break };
            Counters::add(&self.counters.requests, 1);
            match o {
                Outcome::Done(d) => {
                    let d = match d {
                        Done::Assigned(a) => Done::Assigned(Assignment { revision, ..a }),
                        Done::Handle(h) => Done::Handle(HandleRelease { revision, ..h }),
                        other => other,
                    };
                    let _ = job.reply.send(Ok(d));
                }
                Outcome::Failed(e) => {
                    let _ = job.reply.send(Err(e));
                }
                Outcome::Fallback => {
                    Counters::add(&self.counters.fallbacks, 1);
                    // Its writes may touch our blocks: re-read them next round.
                    self.cache_valid = false;
                    let client = self.client.clone();
                    self.fallbacks.retain(|t| !t.is_finished());
                    self.fallbacks.push(tokio::spawn(async move {
                        let r = match job.op {
                            Op::Assign(a) => client.auto_assign(&a).await.map(Done::Assigned),
                            Op::ReleaseHandle(h) => {
                                client.release_handle(&h).await.map(Done::Handle)
                            }
                            Op::ReleaseIps(o) => client.release_ips(&o).await.map(Done::Ips),
                            Op::Settle => Ok(Done::Settled),
                        };
                        let _ = job.reply.send(r);
                    }));
                }
            }
        }
        Ok(())
    }

    /// Reads the handles the queued requests name, all at once (one round trip's latency
    /// instead of one per request).
    async fn prefetch_handles(
        &self,
        plan: &mut Plan,
        queue: &VecDeque<Job>,
    ) -> Result<(), IpamError> {
        let mut ids: Vec<String> = Vec::new();
        for job in queue.iter().take(2 * TXN_BLOCK_BUDGET) {
            let id = match &job.op {
                Op::Assign(a) => a.handle_id.clone(),
                Op::ReleaseHandle(h) => Some(sanitize_handle(h).to_string()),
                Op::ReleaseIps(_) | Op::Settle => None,
            };
            if let Some(id) = id
                && !id.is_empty()
                && !id.contains('/')
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        let store = self.client.store().clone();
        let reads = ids.iter().map(|id| {
            let store = store.clone();
            let key = model::handle_key(id);
            async move { store.get(&key).await }
        });
        let got = futures::future::join_all(reads).await;
        for (id, r) in ids.iter().zip(got) {
            match r? {
                Some(kv) => plan.insert_handle(
                    id,
                    kv.mod_revision,
                    Some(model::decode(&kv.key, &kv.value)?),
                ),
                None => plan.insert_handle(id, 0, None),
            }
        }
        Ok(())
    }

    /// Pools one family of a request may use, memoised per round.
    async fn family_pools(
        &self,
        memo: &mut PoolMemo,
        args: &AutoAssignArgs,
        fam: &FamilyRequest<'_>,
    ) -> Result<Vec<Pool>, IpamError> {
        let key = format!(
            "{}|{:?}|{:?}|{:?}|{:?}",
            fam.version, fam.requested, args.namespace_labels, fam.reserved, args.intended_use
        );
        if let Some(r) = memo.get(&key) {
            return r.clone();
        }
        let r = self.client.pools_for(args, fam).await.map(|p| p.allowed);
        memo.insert(key, r.clone());
        r
    }

    async fn apply_assign(
        &mut self,
        ctx: &Ctx,
        plan: &mut Plan,
        memo: &mut PoolMemo,
        args: &AutoAssignArgs,
    ) -> Result<Done, Stop> {
        check_names(&args.hostname, args.handle_id.as_deref())?;
        if args.intended_use == IntendedUse::LoadBalancer {
            // Affine to the virtual load-balancer node, not to ours.
            return Err(Stop::Fallback);
        }
        if args.ipv4_pools.iter().any(|p| matches!(p, IpNet::V6(_)))
            || args.ipv6_pools.iter().any(|p| matches!(p, IpNet::V4(_)))
        {
            // Let IpamClient phrase the error exactly as it does.
            return Err(Stop::Fallback);
        }
        let strict = ctx.config.strict_affinity;
        let mut out = Assignment::default();
        let families = [
            FamilyRequest {
                version: 4,
                num: args.num4,
                requested: &args.ipv4_pools,
                reserved: args.host_reserved_v4.as_ref(),
            },
            FamilyRequest {
                version: 6,
                num: args.num6,
                requested: &args.ipv6_pools,
                reserved: args.host_reserved_v6.as_ref(),
            },
        ];
        for fam in families.iter().filter(|f| f.num > 0) {
            let pools = self.family_pools(memo, args, fam).await?;
            let mut max_blocks = ctx.config.max_blocks_per_host;
            if args.max_blocks_per_host > 0
                && (max_blocks == 0 || args.max_blocks_per_host < max_blocks)
            {
                max_blocks = args.max_blocks_per_host;
            }
            if max_blocks == 0 {
                max_blocks = DEFAULT_MAX_BLOCKS_PER_HOST;
            }
            self.families.insert(
                fam.version,
                FamilyUse {
                    pools: pools.clone(),
                    reserved: fam.reserved.cloned(),
                    max_blocks,
                },
            );
            let mut got: Vec<IpNet> = Vec::new();
            // The node's affine blocks in key order, as IpamClient's step 1 (a block reserved
            // as a whole still counts against the block limit).
            let owned: Vec<IpNet> = self
                .cache
                .keys()
                .filter(|c| model::ip_version(c) == fam.version)
                .filter(|c| pools::pool_for_ip(&pools, c.network()).is_some())
                .copied()
                .collect();
            let affine: Vec<IpNet> = owned
                .iter()
                .filter(|c| !ctx.reservations.matches_whole_cidr(c))
                .copied()
                .collect();
            for cidr in &affine {
                if got.len() >= fam.num {
                    break;
                }
                if plan
                    .block(cidr)
                    .is_none_or(|b| b.num_free(&ctx.reservations) == 0)
                {
                    continue;
                }
                let Some(b) = plan.block_mut(cidr) else {
                    continue;
                };
                let ips = b.auto_assign(
                    fam.num - got.len(),
                    args.handle_id.as_deref(),
                    &args.attrs,
                    &self.owner,
                    strict,
                    &ctx.reservations,
                )?;
                got.extend(
                    ips.into_iter()
                        .filter_map(|ip| IpNet::new(ip, cidr.prefix_len()).ok()),
                );
            }
            if got.len() < fam.num {
                if owned.len() as u32 >= max_blocks {
                    // As IpamClient (and Calico): the limit is an error even where borrowing
                    // would be allowed.
                    return Err(Stop::Fail(IpamError::BlockLimit { limit: max_blocks }));
                }
                if !ctx.config.auto_allocate_blocks {
                    return Err(if strict {
                        Stop::Fail(IpamError::Exhausted {
                            version: fam.version,
                            requested: fam.num,
                            assigned: 0,
                        })
                    } else {
                        Stop::Fallback
                    });
                }
                return Err(Stop::NeedBlock {
                    version: fam.version,
                    requested: fam.num,
                    pools,
                    reserved: fam.reserved.cloned(),
                    max_blocks,
                    strict,
                });
            }
            if fam.version == 4 {
                out.ipv4 = got;
            } else {
                out.ipv6 = got;
            }
        }
        if let Some(h) = &args.handle_id {
            if !plan.has_handle(h) {
                plan.load_handle(self.client.store().as_ref(), h).await?;
            }
            let handle = plan.handle_mut(h);
            for ip in out.ipv4.iter().chain(out.ipv6.iter()) {
                handle.increment(&ip.trunc(), 1);
            }
        }
        Ok(Done::Assigned(out))
    }

    async fn apply_release_handle(
        &mut self,
        ctx: &Ctx,
        plan: &mut Plan,
        handle_id: &str,
    ) -> Result<Done, Stop> {
        let id = sanitize_handle(handle_id).to_string();
        let store = self.client.store().clone();
        if !plan.has_handle(&id) {
            plan.load_handle(store.as_ref(), &id).await?;
        }
        let Some(h) = plan.handle(&id).cloned() else {
            return Ok(Done::Handle(HandleRelease::default()));
        };
        if h.block.len() > MAX_HANDLE_BLOCKS {
            return Err(Stop::Fallback);
        }
        let cooldown = ctx.config.ip_cooldown_seconds;
        let mut released = 0;
        for block in h.block.keys() {
            let Ok(cidr) = block.parse::<IpNet>() else {
                tracing::warn!(handle = %id, block, "bad block CIDR in handle");
                continue;
            };
            if plan.block_entry(&cidr).is_none() {
                plan.load_block(store.as_ref(), &cidr, ctx.now, cooldown)
                    .await?;
            }
            if plan
                .block(&cidr)
                .is_some_and(|b| !b.ips_by_handle(&id).is_empty())
                && let Some(b) = plan.block_mut(&cidr)
            {
                released += b.release_by_handle(&id, None, ctx.now, cooldown);
                if b.is_empty() && b.affinity.is_none() {
                    plan.delete_block(&cidr);
                }
            }
        }
        plan.handle_mut(&id).block.clear();
        Ok(Done::Handle(HandleRelease {
            released,
            revision: 0,
        }))
    }

    async fn apply_release_ips(
        &mut self,
        ctx: &Ctx,
        plan: &mut Plan,
        all_pools: &mut Option<Vec<Pool>>,
        opts: &[ReleaseOptions],
    ) -> Result<Done, Stop> {
        let store = self.client.store().clone();
        let cooldown = ctx.config.ip_cooldown_seconds;
        let mut by_block: BTreeMap<IpNet, Vec<ReleaseOptions>> = BTreeMap::new();
        let mut unallocated: Vec<IpAddr> = Vec::new();
        for o in opts {
            let cached = self.cache.keys().find(|c| c.contains(&o.address)).copied();
            let cidr = match cached {
                Some(c) => Some(c),
                None => {
                    if all_pools.is_none() {
                        *all_pools = Some(self.client.resources.pools().await?);
                    }
                    let pools = all_pools.as_deref().unwrap_or_default();
                    self.client.block_of(o.address, pools).await?
                }
            };
            match cidr {
                Some(c) => by_block.entry(c).or_default().push(o.clone()),
                None => unallocated.push(o.address),
            }
        }
        if by_block.len() > MAX_HANDLE_BLOCKS {
            return Err(Stop::Fallback);
        }
        for (cidr, ops) in by_block {
            if plan.block_entry(&cidr).is_none() {
                plan.load_block(store.as_ref(), &cidr, ctx.now, cooldown)
                    .await?;
            }
            if plan.block(&cidr).is_none() {
                unallocated.extend(ops.iter().map(|o| o.address));
                continue;
            }
            let Some(b) = plan.block_mut(&cidr) else {
                continue;
            };
            let outcome = b.release(&ops, ctx.now, cooldown)?;
            if b.is_empty() && b.affinity.is_none() {
                plan.delete_block(&cidr);
            }
            unallocated.extend(outcome.unallocated);
            for (h, n) in outcome.count_by_handle {
                if !plan.has_handle(&h) {
                    plan.load_handle(store.as_ref(), &h).await?;
                }
                plan.handle_mut(&h).decrement(&cidr, n);
            }
        }
        Ok(Done::Ips(unallocated))
    }

    /// Claims one more block for `version` in `pools` (its own transaction), within the block
    /// limit; adds it to the cache. `None` when no block can be had.
    async fn claim(
        &mut self,
        ctx: &Ctx,
        version: u8,
        pools: &[Pool],
        reserved: Option<&HostReservedAttr>,
        max_blocks: u32,
    ) -> Result<Option<IpNet>, IpamError> {
        let owned = self
            .cache
            .keys()
            .filter(|c| model::ip_version(c) == version)
            .filter(|c| pools::pool_for_ip(pools, c.network()).is_some())
            .count() as u32;
        if owned >= max_blocks {
            return Ok(None);
        }
        // A block chosen here may be taken by another node before our claim lands: choose
        // again (find_usable_block then skips it), a few times.
        let mut claimed = None;
        for _ in 0..8 {
            let Some(cidr) = self
                .client
                .find_usable_block(ctx, &self.owner, version, pools)
                .await?
            else {
                return Ok(None);
            };
            if self
                .client
                .claim_block(&self.owner, &cidr, reserved)
                .await?
                != ClaimOutcome::TakenByOther
            {
                claimed = Some(cidr);
                break;
            }
        }
        let Some(cidr) = claimed else {
            return Ok(None);
        };
        let Some(kv) = self.client.store().get(&model::block_key(&cidr)).await? else {
            return Ok(None);
        };
        let b: AllocationBlock = model::decode(&kv.key, &kv.value)?;
        if b.affinity.as_deref() != Some(self.owner.affinity_string().as_str()) {
            return Ok(None);
        }
        tracing::info!(block = %cidr, node = %self.owner.name, "claimed block for batched requests");
        self.cache.insert(cidr, (kv.mod_revision, b));
        Ok(Some(cidr))
    }

    /// After a batch: if a family's free addresses in the node's affine blocks fell below the
    /// low-water mark, claim the next block now, so the next burst needn't wait for it.
    async fn claim_ahead(&mut self) -> Result<(), IpamError> {
        if self.cfg.low_water == 0 || self.families.is_empty() {
            return Ok(());
        }
        let ctx = self.client.ctx().await?;
        if !ctx.config.auto_allocate_blocks {
            return Ok(());
        }
        if !self.cache_valid {
            self.refresh().await?;
        }
        let versions: Vec<u8> = self.families.keys().copied().collect();
        for v in versions {
            let Some(f) = self.families.get(&v) else {
                continue;
            };
            let (pools, reserved, max_blocks) = (f.pools.clone(), f.reserved.clone(), f.max_blocks);
            let free: usize = self
                .cache
                .iter()
                .filter(|(c, _)| model::ip_version(c) == v)
                .filter(|(c, _)| pools::pool_for_ip(&pools, c.network()).is_some())
                .map(|(_, (_, b))| {
                    let mut b = b.clone();
                    b.garbage_collect(ctx.now, ctx.config.ip_cooldown_seconds);
                    b.num_free(&ctx.reservations)
                })
                .sum();
            if free >= self.cfg.low_water {
                continue;
            }
            if self
                .claim(&ctx, v, &pools, reserved.as_ref(), max_blocks)
                .await?
                .is_some()
            {
                Counters::add(&self.counters.claims_ahead, 1);
            }
        }
        Ok(())
    }
}
