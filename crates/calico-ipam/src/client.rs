//! The datastore-backed allocator (`libcalico-go/lib/ipam/ipam.go` `ipamClient`), built on the
//! pure core and [`Plan`] transactions. See the crate docs for the design.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use calico_datastore::{Datastore, KeyValue, Revision};
use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::block::{HostReservedAttr, ReleaseOptions};
use crate::blockgen::block_order;
use crate::error::IpamError;
use crate::model::{
    self, AffinityOwner, AllocationBlock, BlockAffinity, IpamConfig, IpamConfigRecord, Time,
};
use crate::plan::Plan;
use crate::pools::{self, IntendedUse, Pool, PoolQuery};
use crate::reserve::Reservations;
use crate::source::ResourceSource;

/// Calico's `datastoreRetries`.
pub const DATASTORE_RETRIES: usize = 100;
/// Calico's safeguard when neither the request nor the config limits blocks per host.
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;
/// Most records one transaction changes before the rest of a request goes into another:
/// etcd refuses transactions of more than 128 operations (`--max-txn-ops`), and a plan adds a
/// handle and possibly affinities to its blocks.
pub const TXN_BLOCK_BUDGET: usize = 120;
/// Minimum age of another node's empty block before it may be reclaimed
/// (`EmptyBlockMinReclaimAge`): stops two nodes ping-ponging a block.
pub const EMPTY_BLOCK_MIN_RECLAIM_AGE_SECS: i64 = 60;
/// The virtual node LoadBalancer addresses are affine to (`v3.VirtualLoadBalancer`).
pub const VIRTUAL_LOAD_BALANCER: &str = "load-balancer";

/// Arguments of [`IpamClient::auto_assign`] (`ipam.AutoAssignArgs`).
#[derive(Debug, Clone)]
pub struct AutoAssignArgs {
    pub num4: usize,
    pub num6: usize,
    pub handle_id: Option<String>,
    pub attrs: BTreeMap<String, String>,
    /// The node allocating (Calico defaults it to the OS host name; we require it).
    pub hostname: String,
    pub ipv4_pools: Vec<IpNet>,
    pub ipv6_pools: Vec<IpNet>,
    /// Per-request block limit; 0 = the configured one.
    pub max_blocks_per_host: u32,
    pub host_reserved_v4: Option<HostReservedAttr>,
    pub host_reserved_v6: Option<HostReservedAttr>,
    pub intended_use: IntendedUse,
    /// Labels of the pod's namespace, for pools' `namespaceSelector`.
    pub namespace_labels: Option<BTreeMap<String, String>>,
}

impl AutoAssignArgs {
    /// `num4` IPv4 workload addresses for `handle` on `hostname`.
    pub fn v4(hostname: &str, handle: &str, num4: usize) -> Self {
        AutoAssignArgs {
            num4,
            num6: 0,
            handle_id: Some(handle.to_string()),
            attrs: BTreeMap::new(),
            hostname: hostname.to_string(),
            ipv4_pools: Vec::new(),
            ipv6_pools: Vec::new(),
            max_blocks_per_host: 0,
            host_reserved_v4: None,
            host_reserved_v6: None,
            intended_use: IntendedUse::Workload,
            namespace_labels: None,
        }
    }
}

/// Arguments of [`IpamClient::assign_ip`] (`ipam.AssignIPArgs`).
#[derive(Debug, Clone)]
pub struct AssignArgs {
    pub ip: IpAddr,
    pub handle_id: Option<String>,
    pub attrs: BTreeMap<String, String>,
    pub hostname: String,
    pub host_reserved: Option<HostReservedAttr>,
    /// When set, the containing pool must allow this use.
    pub intended_use: Option<IntendedUse>,
}

/// What [`IpamClient::auto_assign`] assigned: addresses with their block's prefix length
/// (`10.0.1.5/26`), as Calico returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub ipv4: Vec<IpNet>,
    pub ipv6: Vec<IpNet>,
    /// Datastore revision at which the allocation was persisted.
    pub revision: Revision,
}

/// What [`IpamClient::release_handle`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandleRelease {
    /// Addresses released.
    pub released: usize,
    /// Revision of the commit (the current revision when there was nothing to release).
    pub revision: Revision,
}

/// Clock used for claim times, cool-down and new blocks' sequence numbers.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Calico IPAM over a datastore.
#[derive(Clone)]
pub struct IpamClient {
    store: Arc<dyn Datastore>,
    pub(crate) resources: Arc<dyn ResourceSource>,
    clock: Clock,
}

/// One family's request inside an [`IpamClient::auto_assign`].
pub(crate) struct FamilyRequest<'a> {
    pub(crate) version: u8,
    pub(crate) num: usize,
    pub(crate) requested: &'a [IpNet],
    pub(crate) reserved: Option<&'a HostReservedAttr>,
}

/// The pools of one family of a request.
pub(crate) struct FamilyPools {
    /// Selecting the node and namespace, and allowing the intended use.
    pub(crate) allowed: Vec<Pool>,
    /// Selecting the node and namespace.
    selecting: Vec<Pool>,
    /// Every enabled pool of the family.
    enabled: Vec<Pool>,
    node_labels: BTreeMap<String, String>,
}

/// Longest block prefix that still leaves room for host-reserved addresses
/// (`getMaxPrefixLen`: the family's bits minus the bit length of the reserved count).
fn max_prefix_len(version: u8, r: &HostReservedAttr) -> Result<u8, IpamError> {
    let reserved = (r.start_of_block + r.end_of_block) as u64;
    let bits: u32 = if version == 4 { 32 } else { 128 };
    let len = bits.saturating_sub(64 - reserved.leading_zeros());
    if reserved == 0 || len == 0 {
        return Err(IpamError::InvalidArgument(
            "HostReservedAttr has wrong parameters".into(),
        ));
    }
    Ok(len as u8)
}

/// Per-operation context read once.
pub(crate) struct Ctx {
    pub(crate) config: IpamConfig,
    pub(crate) reservations: Reservations,
    pub(crate) now: DateTime<Utc>,
}

pub(crate) fn owner_for(hostname: &str, use_: IntendedUse) -> AffinityOwner {
    match use_ {
        IntendedUse::LoadBalancer => AffinityOwner::virtual_owner(VIRTUAL_LOAD_BALANCER),
        _ => AffinityOwner::host(hostname),
    }
}

/// Host names and handle IDs become etcd key segments (`/calico/ipam/v2/host/<node>/...`,
/// `/calico/ipam/v2/handle/<id>`): they must be non-empty and hold no `/`.
pub(crate) fn check_names(hostname: &str, handle: Option<&str>) -> Result<(), IpamError> {
    if hostname.is_empty() {
        return Err(IpamError::InvalidArgument("a hostname is required".into()));
    }
    if hostname.contains('/') {
        return Err(IpamError::InvalidArgument(format!(
            "hostname {hostname:?} contains '/'"
        )));
    }
    if let Some(h) = handle
        && (h.is_empty() || h.contains('/'))
    {
        return Err(IpamError::InvalidArgument(format!(
            "handle ID {h:?} must be non-empty and contain no '/'"
        )));
    }
    Ok(())
}

/// A short pause before retrying a lost compare-and-swap, jittered so that contending writers
/// spread out.
pub(crate) async fn backoff(attempt: usize) {
    let nanos = u64::from(Utc::now().timestamp_subsec_nanos());
    let base = 1 + (attempt.min(6) as u64);
    let jitter = nanos % (base * 1000);
    tokio::time::sleep(StdDuration::from_micros(base * 500 + jitter)).await;
}

impl IpamClient {
    pub fn new(store: Arc<dyn Datastore>, resources: Arc<dyn ResourceSource>) -> Self {
        IpamClient {
            store,
            resources,
            clock: Arc::new(Utc::now),
        }
    }

    /// Replaces the clock (tests of cool-down and claim ages).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn store(&self) -> &Arc<dyn Datastore> {
        &self.store
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    // ---------------------------------------------------------------- config

    /// The IPAM configuration (`GetIPAMConfig`): the stored one, else Calico's defaults.
    pub async fn get_config(&self) -> Result<IpamConfig, IpamError> {
        match self.store.get(model::CONFIG_KEY).await? {
            Some(kv) => {
                let r: IpamConfigRecord = model::decode(&kv.key, &kv.value)?;
                Ok(IpamConfig::from_record(&r))
            }
            None => Ok(IpamConfig::default()),
        }
    }

    /// Stores the IPAM configuration (`SetIPAMConfig`), with Calico's consistency rules.
    pub async fn set_config(&self, cfg: &IpamConfig) -> Result<(), IpamError> {
        if !cfg.strict_affinity && !cfg.auto_allocate_blocks {
            return Err(IpamError::InvalidArgument(
                "Cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time".into(),
            ));
        }
        if cfg.max_blocks_per_host > 0 && !cfg.strict_affinity {
            return Err(IpamError::InvalidArgument(
                "MaxBlocksPerHost requires StrictAffinity to be enabled".into(),
            ));
        }
        self.store
            .put(model::CONFIG_KEY, model::encode(&cfg.to_record()), None)
            .await?;
        Ok(())
    }

    pub(crate) async fn ctx(&self) -> Result<Ctx, IpamError> {
        Ok(Ctx {
            config: self.get_config().await?,
            reservations: self.resources.reservations().await?,
            now: self.now(),
        })
    }

    // ---------------------------------------------------------------- auto-assign

    /// Assigns `num4` IPv4 and `num6` IPv6 addresses (`AutoAssign`). All addresses, of both
    /// families, are written in one transaction: the call either assigns everything requested
    /// or nothing (blocks it claimed on the way stay claimed, as they would in Calico). Where
    /// Calico returns a partial assignment (pool exhausted, block limit), we fail with
    /// [`IpamError::Exhausted`] / [`IpamError::BlockLimit`] and assign nothing; its CNI plugin
    /// treats a partial result as failure anyway. Returned networks carry the block's prefix
    /// length (`10.0.1.5/26`), as Calico's do.
    pub async fn auto_assign(&self, args: &AutoAssignArgs) -> Result<Assignment, IpamError> {
        check_names(&args.hostname, args.handle_id.as_deref())?;
        if args.ipv4_pools.iter().any(|p| matches!(p, IpNet::V6(_))) {
            return Err(IpamError::InvalidArgument(
                "provided IPv4 IPPools list contains one or more IPv6 IPPools".into(),
            ));
        }
        if args.ipv6_pools.iter().any(|p| matches!(p, IpNet::V4(_))) {
            return Err(IpamError::InvalidArgument(
                "provided IPv6 IPPools list contains one or more IPv4 IPPools".into(),
            ));
        }
        let owner = owner_for(&args.hostname, args.intended_use);
        // Usually one round. A request spanning more blocks than one etcd transaction may
        // carry is committed in several rounds; if a later round fails, the earlier rounds'
        // addresses are released again so the call still assigns all or nothing.
        let mut total = Assignment::default();
        loop {
            let need4 = args.num4 - total.ipv4.len();
            let need6 = args.num6 - total.ipv6.len();
            if need4 == 0 && need6 == 0 {
                return Ok(total);
            }
            match self.assign_round(args, &owner, need4, need6).await {
                Ok(round) => {
                    total.ipv4.extend(round.ipv4);
                    total.ipv6.extend(round.ipv6);
                    total.revision = round.revision;
                }
                Err(e) => {
                    let done: Vec<ReleaseOptions> = total
                        .ipv4
                        .iter()
                        .chain(total.ipv6.iter())
                        .map(|n| ReleaseOptions {
                            address: n.addr(),
                            handle: args.handle_id.clone(),
                            sequence_number: None,
                        })
                        .collect();
                    if !done.is_empty()
                        && let Err(re) = self.release_ips(&done).await
                    {
                        tracing::error!(error = %re, "could not undo a partial multi-round assignment");
                    }
                    return Err(e);
                }
            }
        }
    }

    /// One transaction's worth of [`IpamClient::auto_assign`]: assigns up to `need4`/`need6`
    /// addresses, fewer only when the transaction is full.
    async fn assign_round(
        &self,
        args: &AutoAssignArgs,
        owner: &AffinityOwner,
        need4: usize,
        need6: usize,
    ) -> Result<Assignment, IpamError> {
        for attempt in 0..DATASTORE_RETRIES {
            let ctx = self.ctx().await?;
            let mut plan = Plan::new();
            let mut out = Assignment::default();
            let mut full = false;
            let families = [
                FamilyRequest {
                    version: 4,
                    num: need4,
                    requested: &args.ipv4_pools,
                    reserved: args.host_reserved_v4.as_ref(),
                },
                FamilyRequest {
                    version: 6,
                    num: need6,
                    requested: &args.ipv6_pools,
                    reserved: args.host_reserved_v6.as_ref(),
                },
            ];
            for fam in families.iter().filter(|f| f.num > 0) {
                let ips = self
                    .assign_family(&ctx, &mut plan, args, owner, fam, &mut full)
                    .await?;
                if fam.version == 4 {
                    out.ipv4 = ips;
                } else {
                    out.ipv6 = ips;
                }
            }
            if let Some(h) = &args.handle_id {
                plan.load_handle(self.store.as_ref(), h).await?;
                let handle = plan.handle_mut(h);
                for ip in out.ipv4.iter().chain(out.ipv6.iter()) {
                    handle.increment(&ip.trunc(), 1);
                }
            }
            match plan.commit(self.store.as_ref()).await {
                Ok(rev) => {
                    out.revision = rev;
                    return Ok(out);
                }
                Err(e) if e.is_conflict() => {
                    tracing::debug!(
                        attempt,
                        "IPAM auto-assign lost a compare-and-swap; retrying"
                    );
                    backoff(attempt).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::MaxRetries("auto-assign".into()))
    }

    /// Pools one family of a request may use (`prepareAffinityBlocksForHost` +
    /// `determinePools`).
    pub(crate) async fn pools_for(
        &self,
        args: &AutoAssignArgs,
        fam: &FamilyRequest<'_>,
    ) -> Result<FamilyPools, IpamError> {
        let all = self.resources.pools().await?;
        let node_labels = if args.intended_use == IntendedUse::LoadBalancer {
            BTreeMap::new()
        } else {
            self.resources
                .node_labels(&args.hostname)
                .await?
                .ok_or_else(|| IpamError::NodeNotFound(args.hostname.clone()))?
        };
        let max_prefix_len = match fam.reserved {
            None => None,
            Some(r) => Some(max_prefix_len(fam.version, r)?),
        };
        let q = PoolQuery {
            requested: fam.requested,
            node_labels: &node_labels,
            namespace_labels: args.namespace_labels.as_ref(),
            max_prefix_len,
        };
        let (selecting, enabled) = pools::determine_pools(&all, fam.version, &q)?;
        if selecting.is_empty() {
            return Err(IpamError::NoPoolsForNode(args.hostname.clone()));
        }
        let allowed = pools::filter_by_use(&selecting, args.intended_use);
        if allowed.is_empty() {
            return Err(IpamError::NoQualifiedPool(
                args.intended_use.as_str().to_string(),
            ));
        }
        Ok(FamilyPools {
            allowed,
            selecting,
            enabled,
            node_labels,
        })
    }

    /// Whether an affine block outside the usable pools should be given up: Calico releases
    /// it (if empty) when its pool no longer selects the node.
    fn should_release_affinity(&self, cidr: &IpNet, p: &FamilyPools) -> bool {
        if pools::pool_for_ip(&p.selecting, cidr.network()).is_some() {
            return false;
        }
        match pools::pool_for_ip(&p.enabled, cidr.network()) {
            None => false,
            Some(pool) => !pool.selects_node(&p.node_labels).unwrap_or(true),
        }
    }

    async fn assign_family(
        &self,
        ctx: &Ctx,
        plan: &mut Plan,
        args: &AutoAssignArgs,
        owner: &AffinityOwner,
        fam: &FamilyRequest<'_>,
        full: &mut bool,
    ) -> Result<Vec<IpNet>, IpamError> {
        let fp = self.pools_for(args, fam).await?;
        let allowed = &fp.allowed;
        let store = self.store.as_ref();
        let handle = args.handle_id.as_deref();
        let strict = ctx.config.strict_affinity;
        let mut out: Vec<IpNet> = Vec::new();

        // 1. The owner's affine blocks, in key order (Calico lists them from the datastore).
        let affinities = self.list_affinities(owner, fam.version).await?;
        let mut owned = 0u32;
        for (cidr, aff_kv) in &affinities {
            if pools::pool_for_ip(allowed, cidr.network()).is_none() {
                // Not usable for this request. Calico releases it if it is empty and its pool
                // no longer selects this node.
                if owner.kind == model::AffinityKind::Host
                    && self.should_release_affinity(cidr, &fp)
                {
                    match self.release_block_affinity(owner, cidr, true).await {
                        Ok(()) => {
                            tracing::info!(block = %cidr, "released affine block that no longer selects this host")
                        }
                        Err(e) => tracing::debug!(block = %cidr, error = %e, "kept affine block"),
                    }
                }
                continue;
            }
            owned += 1;
            if out.len() >= fam.num || ctx.reservations.matches_whole_cidr(cidr) {
                continue;
            }
            if plan.op_count() >= TXN_BLOCK_BUDGET {
                *full = true;
                continue;
            }
            let Some(cidr) = self
                .ensure_affine_block(ctx, plan, owner, cidr, aff_kv, fam.reserved)
                .await?
            else {
                owned -= 1;
                continue;
            };
            let remaining = fam.num - out.len();
            if let Some(b) = plan.block(&cidr)
                && b.num_free(&ctx.reservations) == 0
            {
                continue;
            }
            let Some(b) = plan.block_mut(&cidr) else {
                continue;
            };
            let ips = b.auto_assign(
                remaining,
                handle,
                &args.attrs,
                owner,
                strict,
                &ctx.reservations,
            )?;
            out.extend(
                ips.into_iter()
                    .filter_map(|ip| IpNet::new(ip, cidr.prefix_len()).ok()),
            );
        }

        // 2. Claim new blocks while allowed.
        let mut max_blocks = ctx.config.max_blocks_per_host;
        if args.max_blocks_per_host > 0
            && (max_blocks == 0 || args.max_blocks_per_host < max_blocks)
        {
            max_blocks = args.max_blocks_per_host;
        }
        if max_blocks == 0 {
            max_blocks = DEFAULT_MAX_BLOCKS_PER_HOST;
        }
        while out.len() < fam.num && !*full {
            if plan.op_count() >= TXN_BLOCK_BUDGET {
                *full = true;
                break;
            }
            if owned >= max_blocks {
                return Err(IpamError::BlockLimit { limit: max_blocks });
            }
            if !ctx.config.auto_allocate_blocks {
                break;
            }
            let Some(cidr) = self
                .find_usable_block(ctx, owner, fam.version, allowed)
                .await?
            else {
                break;
            };
            match self.claim_block(owner, &cidr, fam.reserved).await? {
                ClaimOutcome::Claimed | ClaimOutcome::AlreadyOurs => {}
                ClaimOutcome::TakenByOther => continue,
            }
            owned += 1;
            plan.load_block(store, &cidr, ctx.now, ctx.config.ip_cooldown_seconds)
                .await?;
            let remaining = fam.num - out.len();
            let Some(b) = plan.block_mut(&cidr) else {
                continue;
            };
            let ips = b.auto_assign(
                remaining,
                handle,
                &args.attrs,
                owner,
                strict,
                &ctx.reservations,
            )?;
            if ips.is_empty() {
                // A claimed block with no usable address (all reserved): stop rather than
                // claim the whole pool.
                break;
            }
            out.extend(
                ips.into_iter()
                    .filter_map(|ip| IpNet::new(ip, cidr.prefix_len()).ok()),
            );
        }

        // 3. Borrow from other existing blocks unless strict affinity forbids it.
        if out.len() < fam.num && !strict && !*full {
            let existing = self.list_blocks(fam.version).await?;
            'pools: for pool in allowed {
                let seed = ctx.now.timestamp_nanos_opt().unwrap_or_default();
                for cidr in block_order(&pool.cidr, pool.block_size, &owner.name, seed) {
                    if out.len() >= fam.num {
                        break 'pools;
                    }
                    if plan.op_count() >= TXN_BLOCK_BUDGET {
                        *full = true;
                        break 'pools;
                    }
                    if ctx.reservations.matches_whole_cidr(&cidr) {
                        continue;
                    }
                    let Some(b) = existing.get(&cidr) else {
                        continue;
                    };
                    if b.num_free(&ctx.reservations) == 0 && plan.block(&cidr).is_none() {
                        continue;
                    }
                    if !plan
                        .load_block(store, &cidr, ctx.now, ctx.config.ip_cooldown_seconds)
                        .await?
                    {
                        continue;
                    }
                    let remaining = fam.num - out.len();
                    let Some(b) = plan.block_mut(&cidr) else {
                        continue;
                    };
                    let ips = b.auto_assign(
                        remaining,
                        handle,
                        &args.attrs,
                        owner,
                        false,
                        &ctx.reservations,
                    )?;
                    out.extend(
                        ips.into_iter()
                            .filter_map(|ip| IpNet::new(ip, cidr.prefix_len()).ok()),
                    );
                }
            }
        }

        if out.len() < fam.num && !*full {
            return Err(IpamError::Exhausted {
                version: fam.version,
                requested: fam.num,
                assigned: out.len(),
            });
        }
        Ok(out)
    }

    /// Loads the block an affinity points at into `plan`, healing half-finished state: a
    /// missing block is created (Calico `getBlockFromAffinity`), a stale affinity (block owned
    /// by someone else) is deleted, a pending one is confirmed. Returns the CIDR to use, or
    /// `None` to skip this affinity.
    async fn ensure_affine_block(
        &self,
        ctx: &Ctx,
        plan: &mut Plan,
        owner: &AffinityOwner,
        cidr: &IpNet,
        aff_kv: &KeyValue,
        reserved: Option<&HostReservedAttr>,
    ) -> Result<Option<IpNet>, IpamError> {
        let store = self.store.as_ref();
        let cooldown = ctx.config.ip_cooldown_seconds;
        if !plan.load_block(store, cidr, ctx.now, cooldown).await? {
            tracing::info!(block = %cidr, "affinity without a block: creating the block");
            return match self.claim_block(owner, cidr, reserved).await? {
                ClaimOutcome::TakenByOther => Ok(None),
                _ => {
                    // Re-read it: the plan cached the block as absent.
                    plan.forget_block(cidr);
                    plan.load_block(store, cidr, ctx.now, cooldown).await?;
                    Ok(Some(*cidr))
                }
            };
        }
        let mine = plan
            .block(cidr)
            .is_some_and(|b| b.affinity.as_deref() == Some(owner.affinity_string().as_str()));
        let aff_key = model::affinity_key(owner, cidr);
        if !mine {
            tracing::warn!(block = %cidr, "stale affinity: the block belongs to someone else");
            let _ = store.delete(&aff_key, Some(aff_kv.mod_revision)).await;
            return Ok(None);
        }
        let state = BlockAffinity::decode(&aff_kv.key, &aff_kv.value)?.state;
        if !state.is_confirmed() {
            // Confirm in the same transaction as the allocation: the block is written anyway.
            plan.load_affinity(store, &aff_key).await?;
            plan.set_affinity(&aff_key, Some(BlockAffinity::confirmed()));
            plan.block_mut(cidr);
        }
        Ok(Some(*cidr))
    }

    /// The owner's affinities of one family, by block CIDR.
    pub async fn list_affinities(
        &self,
        owner: &AffinityOwner,
        version: u8,
    ) -> Result<Vec<(IpNet, KeyValue)>, IpamError> {
        let resp = self
            .store
            .list(&model::affinity_prefix(owner, version))
            .await?;
        let mut out = Vec::new();
        for kv in resp.kvs {
            match model::cidr_from_key(&kv.key) {
                Ok(c) => out.push((c, kv)),
                Err(e) => tracing::warn!(error = %e, "skipping malformed affinity key"),
            }
        }
        Ok(out)
    }

    /// Every block of one family, as stored (used for choosing blocks; writes always re-read
    /// the blocks they change).
    pub async fn list_blocks(
        &self,
        version: u8,
    ) -> Result<BTreeMap<IpNet, AllocationBlock>, IpamError> {
        let resp = self.store.list(&model::block_prefix(version)).await?;
        let mut out = BTreeMap::new();
        for kv in resp.kvs {
            let b: AllocationBlock = model::decode(&kv.key, &kv.value)?;
            out.insert(b.cidr, b);
        }
        Ok(out)
    }

    /// A block CIDR to claim (`findUsableBlock`): in each pool, in Calico's per-host order, the
    /// first block that doesn't exist yet, or that is already ours with free space (a block
    /// affine to us whose affinity key is missing; claiming it heals the affinity). When every
    /// block exists, an empty block another owner claimed at least
    /// [`EMPTY_BLOCK_MIN_RECLAIM_AGE_SECS`] ago is reclaimed (its affinity released, guarded by
    /// its sequence number so two reclaimers can't both win): small special-purpose pools
    /// would otherwise strand their blocks on nodes that no longer use them.
    pub(crate) async fn find_usable_block(
        &self,
        ctx: &Ctx,
        owner: &AffinityOwner,
        version: u8,
        pools: &[Pool],
    ) -> Result<Option<IpNet>, IpamError> {
        let mut existing = self.list_blocks(version).await?;
        for b in existing.values_mut() {
            b.garbage_collect(ctx.now, ctx.config.ip_cooldown_seconds);
        }
        let me = owner.affinity_string();
        let mut empty: Vec<IpNet> = Vec::new();
        for pool in pools {
            let seed = ctx.now.timestamp_nanos_opt().unwrap_or_default();
            for cidr in block_order(&pool.cidr, pool.block_size, &owner.name, seed) {
                if ctx.reservations.matches_whole_cidr(&cidr) {
                    continue;
                }
                let Some(b) = existing.get(&cidr) else {
                    return Ok(Some(cidr));
                };
                let free = b.num_free(&ctx.reservations);
                if b.affinity.as_deref() == Some(me.as_str()) && free > 0 {
                    // Only if we hold no affinity for it (else step 1 used it already).
                    let key = model::affinity_key(owner, &cidr);
                    if self.store.get(&key).await?.is_none() {
                        return Ok(Some(cidr));
                    }
                } else if b.is_empty() && free > 0 {
                    empty.push(cidr);
                }
            }
        }
        for cidr in empty {
            let Some(b) = existing.get(&cidr) else {
                continue;
            };
            let Some(other) = b.owner() else {
                continue;
            };
            let claimed = b.affinity_claim_time.map(|t| t.0);
            if claimed
                .is_some_and(|t| (ctx.now - t).num_seconds() < EMPTY_BLOCK_MIN_RECLAIM_AGE_SECS)
            {
                tracing::info!(block = %cidr, "empty block claimed too recently by another node to reclaim");
                continue;
            }
            match self
                .release_affinity_inner(&other, &cidr, true, Some(b.sequence_number))
                .await
            {
                Ok(()) => {
                    tracing::info!(block = %cidr, from = %other.affinity_string(), "reclaimed empty block");
                    return Ok(Some(cidr));
                }
                Err(e) => {
                    tracing::warn!(block = %cidr, error = %e, "failed to reclaim empty block")
                }
            }
        }
        Ok(None)
    }

    /// Claims block `cidr` for `owner` in one transaction: the block is created with the
    /// owner's affinity and the affinity key written `confirmed` together. If the block exists
    /// and is already the owner's, the affinity is (re)confirmed (healing a block whose
    /// affinity was lost); if it belongs to someone else, a pending affinity of ours is removed.
    pub async fn claim_block(
        &self,
        owner: &AffinityOwner,
        cidr: &IpNet,
        reserved: Option<&HostReservedAttr>,
    ) -> Result<ClaimOutcome, IpamError> {
        let store = self.store.as_ref();
        let aff_key = model::affinity_key(owner, cidr);
        for attempt in 0..DATASTORE_RETRIES {
            let now = self.now();
            let mut plan = Plan::new();
            let aff = plan.load_affinity(store, &aff_key).await?;
            if plan.load_block(store, cidr, now, -1).await? {
                let ours = plan.block(cidr).is_some_and(|b| {
                    b.affinity.as_deref() == Some(owner.affinity_string().as_str())
                });
                if ours {
                    if aff.is_some_and(|a| a.state == model::AffinityState::Confirmed) {
                        return Ok(ClaimOutcome::AlreadyOurs);
                    }
                    plan.set_affinity(&aff_key, Some(BlockAffinity::confirmed()));
                    // Write the block too (as ensure_affine_block does): its compare is what
                    // stops a concurrent release that deleted it (or dropped its affinity)
                    // from leaving this confirmed affinity without its block.
                    plan.block_mut(cidr);
                } else {
                    if aff.is_none() {
                        return Ok(ClaimOutcome::TakenByOther);
                    }
                    plan.set_affinity(&aff_key, None);
                }
                match plan.commit(store).await {
                    Ok(_) if ours => return Ok(ClaimOutcome::AlreadyOurs),
                    Ok(_) => return Ok(ClaimOutcome::TakenByOther),
                    Err(e) if e.is_conflict() => {
                        backoff(attempt).await;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let seq = u64::try_from(now.timestamp_nanos_opt().unwrap_or_default()).unwrap_or(0);
            let mut b = AllocationBlock::new(*cidr, reserved, seq);
            b.affinity = Some(owner.affinity_string());
            b.affinity_claim_time = Some(Time::new(now));
            plan.create_block(b);
            plan.set_affinity(&aff_key, Some(BlockAffinity::confirmed()));
            match plan.commit(store).await {
                Ok(_) => {
                    tracing::info!(block = %cidr, owner = %owner.affinity_string(), "claimed block");
                    return Ok(ClaimOutcome::Claimed);
                }
                Err(e) if e.is_conflict() => backoff(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::MaxRetries(format!("claiming block {cidr}")))
    }

    // ---------------------------------------------------------------- assign a specific IP

    /// Assigns the specific address `args.ip` (`AssignIP`), claiming its block for the host
    /// if nobody has.
    pub async fn assign_ip(&self, args: &AssignArgs) -> Result<(), IpamError> {
        check_names(&args.hostname, args.handle_id.as_deref())?;
        let all = self.resources.pools().await?;
        let version = if args.ip.is_ipv4() { 4 } else { 6 };
        let enabled: Vec<Pool> = all
            .into_iter()
            .filter(|p| !p.disabled && p.version() == version)
            .collect();
        let pool = pools::pool_for_ip(&enabled, args.ip).ok_or(IpamError::NotInPool(args.ip))?;
        if let Some(u) = args.intended_use
            && !pool.allows(u)
        {
            return Err(IpamError::UseNotAllowed {
                ip: args.ip,
                pool: pool.name.clone(),
                use_: u.as_str().to_string(),
                allowed: pool.allowed_uses.clone(),
            });
        }
        let owner = owner_for(
            &args.hostname,
            args.intended_use.unwrap_or(IntendedUse::Workload),
        );
        let cidr = pool
            .block_for(args.ip)
            .ok_or(IpamError::NotInPool(args.ip))?;
        let store = self.store.as_ref();
        for attempt in 0..DATASTORE_RETRIES {
            let ctx = self.ctx().await?;
            let mut plan = Plan::new();
            if !plan
                .load_block(store, &cidr, ctx.now, ctx.config.ip_cooldown_seconds)
                .await?
            {
                self.claim_block(&owner, &cidr, args.host_reserved.as_ref())
                    .await?;
                continue;
            }
            let Some(b) = plan.block_mut(&cidr) else {
                continue;
            };
            b.assign(
                args.ip,
                args.handle_id.as_deref(),
                &args.attrs,
                &owner,
                ctx.config.strict_affinity,
            )?;
            if let Some(h) = &args.handle_id {
                plan.load_handle(store, h).await?;
                plan.handle_mut(h).increment(&cidr, 1);
            }
            match plan.commit(store).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => backoff(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::MaxRetries(format!("assigning {}", args.ip)))
    }

    // ---------------------------------------------------------------- release

    /// The block holding `ip`: from its pool's block size (disabled pools included), else by
    /// scanning the blocks (an address whose pool was deleted).
    pub(crate) async fn block_of(
        &self,
        ip: IpAddr,
        pools: &[Pool],
    ) -> Result<Option<IpNet>, IpamError> {
        if let Some(p) = pools::pool_for_ip(pools, ip) {
            return Ok(p.block_for(ip));
        }
        let version = if ip.is_ipv4() { 4 } else { 6 };
        let blocks = self.list_blocks(version).await?;
        Ok(blocks.keys().find(|c| c.contains(&ip)).copied())
    }

    /// Releases addresses (`ReleaseIPs`) and returns those that were not allocated. Everything
    /// is released in one transaction (split by block only past etcd's per-transaction limit);
    /// a stale handle or sequence number on any address refuses the whole transaction, where
    /// Calico still releases the other blocks' addresses. Emptied blocks without affinity are
    /// deleted, as Calico does.
    pub async fn release_ips(&self, opts: &[ReleaseOptions]) -> Result<Vec<IpAddr>, IpamError> {
        let all = self.resources.pools().await?;
        let mut by_block: BTreeMap<IpNet, Vec<ReleaseOptions>> = BTreeMap::new();
        let mut unallocated = Vec::new();
        for o in opts {
            match self.block_of(o.address, &all).await? {
                Some(c) => by_block.entry(c).or_default().push(o.clone()),
                None => unallocated.push(o.address),
            }
        }
        let store = self.store.as_ref();
        let blocks: Vec<(IpNet, Vec<ReleaseOptions>)> = by_block.into_iter().collect();
        let mut next = 0;
        // Normally one transaction; a release spanning more blocks than one transaction may
        // carry is split by block (each part consistent on its own).
        while next < blocks.len() {
            let mut committed = false;
            for attempt in 0..DATASTORE_RETRIES {
                let ctx = self.ctx().await?;
                let mut plan = Plan::new();
                let mut unalloc = Vec::new();
                let mut end = next;
                while let Some((cidr, ops)) = blocks.get(end) {
                    // +2: the block, and the affinity an emptied block may lose.
                    if end > next && plan.op_count() + 2 + ops.len() > TXN_BLOCK_BUDGET {
                        break;
                    }
                    end += 1;
                    if !plan
                        .load_block(store, cidr, ctx.now, ctx.config.ip_cooldown_seconds)
                        .await?
                    {
                        unalloc.extend(ops.iter().map(|o| o.address));
                        continue;
                    }
                    let Some(b) = plan.block_mut(cidr) else {
                        continue;
                    };
                    let outcome = b.release(ops, ctx.now, ctx.config.ip_cooldown_seconds)?;
                    let delete = b.is_empty() && b.affinity.is_none();
                    unalloc.extend(outcome.unallocated);
                    if delete {
                        plan.delete_block(cidr);
                    } else {
                        self.drop_deselected_affinity(&mut plan, cidr, &all).await?;
                    }
                    for (h, n) in outcome.count_by_handle {
                        plan.load_handle(store, &h).await?;
                        plan.handle_mut(&h).decrement(cidr, n);
                    }
                }
                match plan.commit(store).await {
                    Ok(_) => {
                        unallocated.extend(unalloc);
                        next = end;
                        committed = true;
                        break;
                    }
                    Err(e) if e.is_conflict() => backoff(attempt).await,
                    Err(e) => return Err(e),
                }
            }
            if !committed {
                return Err(IpamError::MaxRetries("releasing addresses".into()));
            }
        }
        Ok(unallocated)
    }

    /// Releases every address of `handle_id` and deletes the handle (`ReleaseByHandle`), in
    /// one transaction (batches of blocks past etcd's per-transaction limit). Idempotent: an
    /// unknown handle releases nothing (Calico returns "does not exist"). Returns how many
    /// addresses were released.
    pub async fn release_by_handle(&self, handle_id: &str) -> Result<usize, IpamError> {
        Ok(self.release_handle(handle_id).await?.released)
    }

    /// [`IpamClient::release_by_handle`], also telling the revision of the commit.
    pub async fn release_handle(&self, handle_id: &str) -> Result<HandleRelease, IpamError> {
        let handle_id = crate::block::sanitize_handle(handle_id).to_string();
        let store = self.store.as_ref();
        let all = self.resources.pools().await?;
        let mut total = 0;
        // Normally one transaction; a handle spread over more blocks than one transaction may
        // carry is released a batch of blocks at a time, each batch leaving the handle counting
        // exactly the blocks still to do.
        'rounds: loop {
            for attempt in 0..DATASTORE_RETRIES {
                let ctx = self.ctx().await?;
                let mut plan = Plan::new();
                plan.load_handle(store, &handle_id).await?;
                let Some(h) = plan.handle(&handle_id).cloned() else {
                    return Ok(HandleRelease {
                        released: total,
                        revision: store.current_revision().await?,
                    });
                };
                let batch: Vec<String> =
                    h.block.keys().take(TXN_BLOCK_BUDGET - 1).cloned().collect();
                let mut released = 0;
                for block in &batch {
                    let Ok(cidr) = block.parse::<IpNet>() else {
                        tracing::warn!(handle = %handle_id, block, "bad block CIDR in handle");
                        continue;
                    };
                    if plan
                        .load_block(store, &cidr, ctx.now, ctx.config.ip_cooldown_seconds)
                        .await?
                        && let Some(b) = plan.block(&cidr)
                        && !b.ips_by_handle(&handle_id).is_empty()
                        && let Some(b) = plan.block_mut(&cidr)
                    {
                        released += b.release_by_handle(
                            &handle_id,
                            None,
                            ctx.now,
                            ctx.config.ip_cooldown_seconds,
                        );
                        if b.is_empty() && b.affinity.is_none() {
                            plan.delete_block(&cidr);
                        } else {
                            self.drop_deselected_affinity(&mut plan, &cidr, &all)
                                .await?;
                        }
                    }
                }
                // Every address of the handle in these blocks is gone: so are their entries
                // (and the handle, once it has none).
                let hm = plan.handle_mut(&handle_id);
                for block in &batch {
                    hm.block.remove(block);
                }
                let last = hm.block.is_empty();
                match plan.commit(store).await {
                    Ok(revision) => {
                        total += released;
                        if last {
                            return Ok(HandleRelease {
                                released: total,
                                revision,
                            });
                        }
                        continue 'rounds;
                    }
                    Err(e) if e.is_conflict() => backoff(attempt).await,
                    Err(e) => return Err(e),
                }
            }
            return Err(IpamError::MaxRetries(format!(
                "releasing handle {handle_id}"
            )));
        }
    }

    /// Addresses held by `handle_id` (`IPsByHandle`).
    pub async fn ips_by_handle(&self, handle_id: &str) -> Result<Vec<IpAddr>, IpamError> {
        let store = self.store.as_ref();
        let mut plan = Plan::new();
        plan.load_handle(store, handle_id).await?;
        let Some(h) = plan.handle(handle_id).cloned() else {
            return Err(IpamError::HandleNotFound(handle_id.to_string()));
        };
        let cfg = self.get_config().await?;
        let now = self.now();
        let mut out = Vec::new();
        for block in h.block.keys() {
            let Ok(cidr) = block.parse::<IpNet>() else {
                continue;
            };
            if plan
                .load_block(store, &cidr, now, cfg.ip_cooldown_seconds)
                .await?
                && let Some(b) = plan.block(&cidr)
            {
                out.extend(b.ips_by_handle(handle_id));
            }
        }
        Ok(out)
    }

    /// Address accounting per pool and block (`GetUtilization`): `pools` selects by name or
    /// CIDR, empty for all pools plus the orphaned-blocks entry. Reads pools, reservations and
    /// every block; see [`crate::utilization`].
    pub async fn utilization(
        &self,
        pools: &[String],
    ) -> Result<Vec<crate::utilization::PoolUtilization>, IpamError> {
        let all = self.resources.pools().await?;
        let reservations = self.resources.reservations().await?;
        let mut blocks = Vec::new();
        for v in [4, 6] {
            blocks.extend(self.list_blocks(v).await?.into_values());
        }
        Ok(crate::utilization::utilization(
            &all,
            &blocks,
            &reservations,
            pools,
        ))
    }

    /// The attributes (handle, owner attributes) of an assigned address
    /// (`GetAssignmentAttributes`). Calico answers "does not exist" in each failure case; we
    /// say which: no pool or block covers it ([`IpamError::NotInPool`]), its block does not
    /// exist ([`IpamError::BlockNotFound`]), or it is not assigned ([`IpamError::NotAssigned`]).
    pub async fn assignment_attributes(
        &self,
        ip: IpAddr,
    ) -> Result<crate::model::AllocationAttribute, IpamError> {
        let all = self.resources.pools().await?;
        let Some(cidr) = self.block_of(ip, &all).await? else {
            return Err(IpamError::NotInPool(ip));
        };
        let key = model::block_key(&cidr);
        let Some(kv) = self.store.get(&key).await? else {
            return Err(IpamError::BlockNotFound(cidr));
        };
        let b: AllocationBlock = model::decode(&kv.key, &kv.value)?;
        b.ordinal_of(ip)
            .ok()
            .and_then(|o| b.allocations.get(o).copied().flatten())
            .and_then(|a| b.attributes.get(a).cloned())
            .ok_or(IpamError::NotAssigned(ip))
    }

    /// Claims every block of `cidr` for `owner` (`ClaimAffinity`), one claim transaction per
    /// block as Calico does (each block claim is independent: a block taken by another owner
    /// is reported in the second list and does not stop the others). Returns (claimed, failed);
    /// a block already the owner's counts as claimed. `cidr` must lie in a pool and be at
    /// least one block of it.
    pub async fn claim_affinity(
        &self,
        owner: &AffinityOwner,
        cidr: &IpNet,
    ) -> Result<(Vec<IpNet>, Vec<IpNet>), IpamError> {
        check_names(&owner.name, None)?;
        let cidr = cidr.trunc();
        let all = self.resources.pools().await?;
        let Some(pool) = pools::pool_for_ip(&all, cidr.network()) else {
            return Err(IpamError::CidrNotInPool(cidr));
        };
        if !pool.cidr.contains(&cidr) {
            return Err(IpamError::CidrNotInPool(cidr));
        }
        if cidr.prefix_len() > pool.block_size {
            return Err(IpamError::CidrTooSmall(cidr));
        }
        let subnets = cidr
            .subnets(pool.block_size)
            .map_err(|e| IpamError::InvalidArgument(format!("{cidr}: {e}")))?;
        let (mut claimed, mut failed) = (Vec::new(), Vec::new());
        for block in subnets {
            match self.claim_block(owner, &block, None).await? {
                ClaimOutcome::Claimed | ClaimOutcome::AlreadyOurs => claimed.push(block),
                ClaimOutcome::TakenByOther => failed.push(block),
            }
        }
        Ok((claimed, failed))
    }

    /// Calico's `ensureConsistentAffinity`, run after a release: a host-affine block left
    /// empty whose pool still exists but no longer selects the node loses its affinity, and
    /// (being empty) the block is deleted. Calico does this as a separate write after the
    /// release; we add it to the release's own transaction (the affinity key is compared like
    /// every other key read), so a crash cannot leave the release without it. A node that no
    /// longer exists, or a block outside every pool, keeps its affinity, as in Calico.
    async fn drop_deselected_affinity(
        &self,
        plan: &mut Plan,
        cidr: &IpNet,
        pools: &[Pool],
    ) -> Result<(), IpamError> {
        let Some(b) = plan.block(cidr) else {
            return Ok(());
        };
        if !b.is_empty() {
            return Ok(());
        }
        let Some(owner) = b.affinity.as_deref().and_then(AffinityOwner::parse) else {
            return Ok(());
        };
        if owner.kind != crate::model::AffinityKind::Host {
            return Ok(());
        }
        let Some(pool) = pools::pool_for_ip(pools, cidr.network()) else {
            return Ok(());
        };
        let Some(labels) = self.resources.node_labels(&owner.name).await? else {
            return Ok(());
        };
        if pool.selects_node(&labels)? {
            return Ok(());
        }
        // Best effort, like Calico's (which only logs a failure): a release already at
        // etcd's per-transaction limit leaves the affinity for a later release or the GC.
        if plan.key_count() >= TXN_BLOCK_BUDGET + 6 {
            tracing::debug!(%cidr, "transaction full: deselected affinity kept for now");
            return Ok(());
        }
        let key = model::affinity_key(&owner, cidr);
        if plan
            .load_affinity(self.store.as_ref(), &key)
            .await?
            .is_some()
        {
            plan.set_affinity(&key, None);
        }
        plan.delete_block(cidr);
        Ok(())
    }

    /// Releases `owner`'s affinity to block `cidr` (`releaseBlockAffinity`) in one
    /// transaction: an empty block is deleted, a non-empty one loses its affinity (unless
    /// `must_be_empty`, which refuses), and the affinity key is removed.
    pub async fn release_block_affinity(
        &self,
        owner: &AffinityOwner,
        cidr: &IpNet,
        must_be_empty: bool,
    ) -> Result<(), IpamError> {
        self.release_affinity_inner(owner, cidr, must_be_empty, None)
            .await
    }

    /// [`IpamClient::release_block_affinity`], refusing (with a conflict) if the block's
    /// sequence number is no longer `required_seq`.
    async fn release_affinity_inner(
        &self,
        owner: &AffinityOwner,
        cidr: &IpNet,
        must_be_empty: bool,
        required_seq: Option<u64>,
    ) -> Result<(), IpamError> {
        let store = self.store.as_ref();
        let aff_key = model::affinity_key(owner, cidr);
        for attempt in 0..DATASTORE_RETRIES {
            let ctx = self.ctx().await?;
            let mut plan = Plan::new();
            let aff = plan.load_affinity(store, &aff_key).await?;
            let exists = plan
                .load_block(store, cidr, ctx.now, ctx.config.ip_cooldown_seconds)
                .await?;
            if !exists {
                if aff.is_none() {
                    return Err(IpamError::BlockNotFound(*cidr));
                }
                plan.set_affinity(&aff_key, None);
            } else {
                let b = plan.block(cidr).cloned();
                let Some(b) = b else { continue };
                if required_seq.is_some_and(|s| s != b.sequence_number) {
                    return Err(IpamError::Datastore(
                        calico_datastore::DatastoreError::Conflict {
                            key: model::block_key(cidr),
                            expected: 0,
                            actual: 0,
                        },
                    ));
                }
                if b.affinity.is_some()
                    && b.affinity.as_deref() != Some(owner.affinity_string().as_str())
                {
                    if aff.is_some() {
                        plan.set_affinity(&aff_key, None);
                        let _ = plan.commit(store).await;
                    }
                    return Err(IpamError::NotOwner {
                        block: *cidr,
                        requested: owner.affinity_string(),
                        actual: b.affinity,
                    });
                }
                if must_be_empty && !b.is_empty() {
                    return Err(IpamError::BlockNotEmpty { block: *cidr });
                }
                if b.is_empty() {
                    plan.delete_block(cidr);
                } else if let Some(bm) = plan.block_mut(cidr) {
                    bm.affinity = None;
                    bm.affinity_claim_time = None;
                }
                if aff.is_some() {
                    plan.set_affinity(&aff_key, None);
                }
            }
            match plan.commit(store).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => backoff(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(IpamError::MaxRetries(format!(
            "releasing affinity of {cidr}"
        )))
    }

    /// Releases every affinity (of any host or virtual owner) to a block inside `pool`
    /// (`ReleasePoolAffinities`, used when a pool is deleted): empty blocks are deleted,
    /// non-empty ones lose their affinity and go with their last address. A block affine to a
    /// different owner than its affinity key says only loses that stale key. Returns the
    /// blocks whose affinity was released.
    pub async fn release_pool_affinities(&self, pool: &IpNet) -> Result<Vec<IpNet>, IpamError> {
        let mut out = Vec::new();
        for kind in [
            crate::model::AffinityKind::Host,
            crate::model::AffinityKind::Virtual,
        ] {
            let prefix = format!("{}{}/", model::IPAM_PREFIX, kind.as_str());
            for kv in self.store.list(&prefix).await?.kvs {
                let Some(name) = kv.key[prefix.len()..].split('/').next() else {
                    continue;
                };
                let Ok(cidr) = model::cidr_from_key(&kv.key) else {
                    tracing::warn!(key = %kv.key, "skipping malformed affinity key");
                    continue;
                };
                if !pool.contains(&cidr.network()) {
                    continue;
                }
                let owner = AffinityOwner {
                    kind,
                    name: name.to_string(),
                };
                match self.release_block_affinity(&owner, &cidr, false).await {
                    Ok(()) => out.push(cidr),
                    Err(IpamError::NotOwner { .. }) | Err(IpamError::BlockNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    /// Releases every affinity of `owner` (both families), skipping non-empty blocks when
    /// `must_be_empty` (`ReleaseHostAffinities`). Returns the blocks released.
    pub async fn release_host_affinities(
        &self,
        owner: &AffinityOwner,
        must_be_empty: bool,
    ) -> Result<Vec<IpNet>, IpamError> {
        let mut out = Vec::new();
        for v in [4, 6] {
            for (cidr, _) in self.list_affinities(owner, v).await? {
                match self
                    .release_block_affinity(owner, &cidr, must_be_empty)
                    .await
                {
                    Ok(()) => out.push(cidr),
                    Err(IpamError::BlockNotEmpty { .. }) | Err(IpamError::NotOwner { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }
}

/// Result of [`IpamClient::claim_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// We created the block.
    Claimed,
    /// The block already was ours (its affinity is now confirmed).
    AlreadyOurs,
    /// Another owner has it.
    TakenByOther,
}
