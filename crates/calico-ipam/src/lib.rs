//! Calico IPAM: the block/affinity IP address allocator, over the [`calico_datastore`] store,
//! with Calico's v1 IPAM keys and JSON so the data is exactly what Calico's would be.
//!
//! It owns `/calico/ipam/v2/...` (blocks, affinities, handles, config) and reads IPPools,
//! IPReservations and Nodes through a [`ResourceSource`]. It must not depend on
//! `calico-client`, the CNI plugin, or any dataplane crate.
//!
//! # DESIGN
//!
//! **Pure core (no I/O).** [`model`] holds the records and their exact JSON; [`block`] the
//! per-block mutations (ordinal allocation from the FIFO free list skipping reservations,
//! specific assignment, release by address or handle with sequence-number ABA checks,
//! cool-down garbage collection); [`blockgen`] Calico's per-host block order (Go's
//! `math/rand` reproduced bit for bit); [`pools`] pool selection; [`reserve`] reservations; [`utilization`] address accounting per pool and block.
//! All take `now` as an argument, so they are deterministic and table-testable.
//!
//! **I/O** lives only in [`client`] ([`IpamClient`]). Every operation reads what it needs,
//! computes the new values with the pure core into a [`client::Plan`] (blocks and handles
//! keyed by the mod revision they were read at), then persists the whole plan in **one etcd
//! transaction** guarded by a compare on every key it read. Where Calico writes the handle,
//! then the block (and undoes the handle when the block write fails), we write both at once,
//! so a crash can never leave a handle count without its allocation. A lost compare re-reads
//! and recomputes (up to Calico's 100 retries). Block claims are one transaction too (block
//! created with `host:<node>` affinity + affinity written `confirmed`), so our own claims never
//! leave a half-finished state; half-finished claims left by Calico processes (an affinity
//! without its block, a block affine to us without an affinity, a pending affinity) are healed
//! on the next allocation. Dual-stack requests put the IPv4 and IPv6 allocations in the same
//! transaction: both or neither. No address is returned before its transaction committed.
//!
//! **Batching** ([`batch::NodeAllocator`]). Because a plan is "N pure mutations, then one
//! CAS", the agent's per-node service serves concurrent requests from the node's affine blocks
//! in memory: one worker drains the pending requests, applies them to the cached block values
//! with [`block`] (calling `bump_sequence` between requests so each request's allocations have
//! their own sequence number), adds each request's handle delta, commits one transaction and
//! answers every request only after that commit. A request that fails alone is undone in the
//! plan (a clone taken before it) and answered with its error. The cache is only a hint: each
//! block is compared against the revision it was cached at, so a stale cache costs a retry,
//! never a double allocation. Blocks are claimed ahead of need (`IpamClient::claim_block`, its
//! own transaction) when free space falls below a threshold. etcd limits a transaction to 128
//! operations by default, so a round holds at most [`client::TXN_BLOCK_BUDGET`] records; the
//! rest of the queue goes in the next round.

pub mod batch;
pub mod block;
pub mod blockgen;
pub mod client;
mod error;
mod gorand_table;
pub mod model;
pub mod plan;
pub mod pools;
pub mod reserve;
pub mod source;
pub mod utilization;

pub use batch::{BatchConfig, BatchStats, NodeAllocator};
pub use block::{HostReservedAttr, ReleaseOptions, ReleaseOutcome};
pub use client::{AssignArgs, Assignment, AutoAssignArgs, IpamClient};
pub use error::IpamError;
pub use model::{AffinityOwner, AllocationBlock, IpamConfig, IpamHandle};
pub use pools::{IntendedUse, Pool};
pub use reserve::Reservations;
pub use source::{DatastoreResources, ResourceSource, StaticResources};
pub use utilization::{BlockUtilization, PoolUtilization};
