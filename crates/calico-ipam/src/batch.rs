//! The batching allocator of one node ([`NodeAllocator`]): what the agent's IPAM socket
//! service uses so that a burst of pod starts on a node is served from the node's affine blocks
//! in memory and persisted together, instead of each request racing the others for the same
//! block (Calico's plugin serialises them behind a host-wide file lock and pays several etcd
//! round trips each: calico#5612, calico#4726).
//!
//! Callers submit requests concurrently; one worker task drains what is pending, applies it
//! to the cached blocks with the pure core ([`crate::block`]) in a [`Plan`], commits the plan
//! as ONE transaction guarded by a compare on every record it read (so the records are exactly
//! what [`IpamClient`] writes), and only then answers each caller: no address is returned
//! before it is persisted. A lost compare (another writer touched a block or handle) re-reads
//! the node's blocks and recomputes the whole batch. A request that fails on its own
//! (exhausted pool, stale release) is undone in the plan and answered with its error; the
//! others still commit. Past etcd's 128-operations-per-transaction limit the batch is split
//! into rounds. Blocks are claimed ahead of need (a separate claim transaction, as
//! [`IpamClient::claim_block`] does) when the free addresses of the node's affine blocks fall
//! below [`BatchConfig::low_water`]. What the batch cannot serve from the node's own blocks
//! (borrowing from other nodes' blocks, LoadBalancer addresses, requests larger than one
//! transaction) goes to [`IpamClient`] unchanged.
//!
//! The worker's state lives in [`worker`]; this file is the public face.

mod worker;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::block::ReleaseOptions;
use crate::client::{Assignment, AutoAssignArgs, HandleRelease, IpamClient, check_names};
use crate::error::IpamError;

/// Tuning of a [`NodeAllocator`].
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// Claim another block (within `maxBlocksPerHost`) once fewer than this many addresses of
    /// a family are free in the node's affine blocks. 0 = never claim ahead of need.
    pub low_water: usize,
    /// Most requests taken from the queue at once (each round of a batch is further limited
    /// by etcd's transaction size).
    pub max_batch: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        // A quarter of a default IPv4 block (/26): enough head-room that a burst rarely waits
        // for a claim, small enough not to take a block per node that never fills.
        BatchConfig {
            low_water: 16,
            max_batch: 512,
        }
    }
}

/// Counters of what a [`NodeAllocator`] did (for tests, metrics and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Requests answered.
    pub requests: u64,
    /// Transactions committed carrying at least one request.
    pub commits: u64,
    /// Lost compare-and-swaps (each followed by a re-read and a recomputed batch).
    pub conflicts: u64,
    /// Blocks claimed while a request waited for one.
    pub claims_on_demand: u64,
    /// Blocks claimed ahead of need.
    pub claims_ahead: u64,
    /// Requests handed to [`IpamClient`] unbatched.
    pub fallbacks: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) claims_on_demand: AtomicU64,
    pub(crate) claims_ahead: AtomicU64,
    pub(crate) fallbacks: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// One queued request.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Assign(Box<AutoAssignArgs>),
    ReleaseHandle(String),
    ReleaseIps(Vec<ReleaseOptions>),
    /// Answered once everything queued before it is done, claims ahead of need included.
    Settle,
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub(crate) enum Done {
    Assigned(Assignment),
    Handle(HandleRelease),
    /// Addresses that were not allocated, and the commit revision.
    Ips(Vec<IpAddr>),
    Settled,
}

pub(crate) struct Job {
    pub(crate) op: Op,
    pub(crate) reply: oneshot::Sender<Result<Done, IpamError>>,
}

/// The batching allocator of one node. Cheap to clone; every clone feeds the same worker task,
/// which ends when the last clone is dropped.
#[derive(Clone)]
pub struct NodeAllocator {
    node: String,
    tx: mpsc::UnboundedSender<Job>,
    counters: Arc<Counters>,
}

impl NodeAllocator {
    /// Starts the worker of node `node` on the current tokio runtime. Fails on a node name
    /// that cannot be a key segment.
    pub fn new(client: IpamClient, node: &str, cfg: BatchConfig) -> Result<Self, IpamError> {
        check_names(node, None)?;
        if cfg.max_batch == 0 {
            return Err(IpamError::InvalidArgument(
                "BatchConfig.max_batch must be at least 1".into(),
            ));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(Counters::default());
        let w = worker::Worker::new(client, node, cfg, rx, counters.clone());
        tokio::spawn(w.run());
        Ok(NodeAllocator {
            node: node.to_string(),
            tx,
            counters,
        })
    }

    /// The node this allocator serves.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What the allocator did so far.
    pub fn stats(&self) -> BatchStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BatchStats {
            requests: l(&c.requests),
            commits: l(&c.commits),
            conflicts: l(&c.conflicts),
            claims_on_demand: l(&c.claims_on_demand),
            claims_ahead: l(&c.claims_ahead),
            fallbacks: l(&c.fallbacks),
        }
    }

    async fn submit(&self, op: Op) -> Result<Done, IpamError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { op, reply })
            .map_err(|_| IpamError::InvalidArgument("the node allocator has stopped".into()))?;
        rx.await
            .map_err(|_| IpamError::InvalidArgument("the node allocator has stopped".into()))?
    }

    /// [`IpamClient::auto_assign`] through the batch: same arguments, same all-or-nothing
    /// result. `args.hostname` must be this allocator's node (or empty, meaning it).
    pub async fn auto_assign(&self, args: &AutoAssignArgs) -> Result<Assignment, IpamError> {
        let mut args = args.clone();
        if args.hostname.is_empty() {
            args.hostname = self.node.clone();
        } else if args.hostname != self.node {
            return Err(IpamError::InvalidArgument(format!(
                "request for node {:?} sent to the allocator of node {:?}",
                args.hostname, self.node
            )));
        }
        match self.submit(Op::Assign(Box::new(args))).await? {
            Done::Assigned(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }

    /// [`IpamClient::release_handle`] through the batch: releases every address of the
    /// handle (idempotent) and tells how many, with the commit revision.
    pub async fn release_by_handle(&self, handle_id: &str) -> Result<HandleRelease, IpamError> {
        match self
            .submit(Op::ReleaseHandle(handle_id.to_string()))
            .await?
        {
            Done::Handle(h) => Ok(h),
            other => Err(unexpected(other)),
        }
    }

    /// [`IpamClient::release_ips`] through the batch: returns the addresses that were not
    /// allocated. A stale handle or sequence number refuses this request (only).
    pub async fn release_ips(&self, opts: &[ReleaseOptions]) -> Result<Vec<IpAddr>, IpamError> {
        match self.submit(Op::ReleaseIps(opts.to_vec())).await? {
            Done::Ips(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    }
}

impl NodeAllocator {
    /// Waits until every request submitted before this call has been answered and the
    /// background work it caused (claims ahead of need) is finished: for orderly shutdown, and
    /// for tests that inspect the datastore.
    pub async fn settle(&self) -> Result<(), IpamError> {
        match self.submit(Op::Settle).await? {
            Done::Settled => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(d: Done) -> IpamError {
    IpamError::InvalidArgument(format!("internal: mismatched batch answer {d:?}"))
}
