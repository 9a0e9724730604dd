use std::net::IpAddr;

use calico_datastore::DatastoreError;
use ipnet::IpNet;

/// Everything IPAM can fail with. Messages follow Calico's where callers (the CNI plugin,
/// calicoctl) show them to users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error(transparent)]
    Datastore(#[from] DatastoreError),
    #[error("cannot decode the value of {key}: {reason}")]
    Decode { key: String, reason: String },
    #[error("not an IPAM key with a block CIDR: {key}")]
    BadKey { key: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("the given pool ({0}) does not exist, or is not enabled")]
    PoolNotFound(String),
    #[error("no configured Calico pools for node {0}")]
    NoPoolsForNode(String),
    #[error("no configured Calico pools match the required use ({0})")]
    NoQualifiedPool(String),
    #[error("node {0} does not exist")]
    NodeNotFound(String),
    #[error("invalid selector on IP pool {pool}: {reason}")]
    BadPoolSelector { pool: String, reason: String },
    #[error(
        "need to allocate an IPAM block but could not - limit of {limit} blocks reached for this node"
    )]
    BlockLimit { limit: u32 },
    #[error("no free blocks: could only assign {assigned} of {requested} IPv{version} addresses")]
    Exhausted {
        version: u8,
        requested: usize,
        assigned: usize,
    },
    #[error("The provided IP address {0} is not in a configured pool")]
    NotInPool(IpAddr),
    #[error(
        "IP address {ip} is in IP pool {pool:?}, which is not allowed for use {use_:?} (allowedUses: {allowed:?})"
    )]
    UseNotAllowed {
        ip: IpAddr,
        pool: String,
        use_: String,
        allowed: Vec<String>,
    },
    #[error("Address already assigned in block: {0}")]
    AlreadyAssigned(IpAddr),
    #[error("IP {ip} not in block {block}")]
    NotInBlock { ip: IpAddr, block: IpNet },
    #[error("Block affinity ({block_affinity}) does not match provided ({requested})")]
    AffinityMismatch {
        block_affinity: String,
        requested: String,
    },
    #[error("Attempt to assign from block {0} with no affinity")]
    NoAffinity(IpNet),
    #[error("the sequence number of {ip} is {expected}, not {requested}: stale release refused")]
    BadSequenceNumber {
        ip: IpAddr,
        requested: u64,
        expected: u64,
    },
    #[error("{ip} is held by handle {expected:?}, not {requested:?}: stale release refused")]
    BadHandle {
        ip: IpAddr,
        requested: String,
        expected: String,
    },
    #[error("handle {0} does not exist")]
    HandleNotFound(String),
    #[error("block {0} does not exist")]
    BlockNotFound(IpNet),
    #[error("block {block} is not empty")]
    BlockNotEmpty { block: IpNet },
    #[error("block {block} is affine to {actual:?}, not {requested}")]
    NotOwner {
        block: IpNet,
        requested: String,
        actual: Option<String>,
    },
    #[error("IP {0} is not assigned")]
    NotAssigned(IpAddr),
    #[error("The requested CIDR ({0}) is not within any configured pools.")]
    CidrNotInPool(IpNet),
    #[error("The requested CIDR ({0}) is smaller than the minimum.")]
    CidrTooSmall(IpNet),
    #[error("Max retries hit - excessive concurrent IPAM requests ({0})")]
    MaxRetries(String),
}

impl IpamError {
    /// A compare-and-swap lost to another writer: retry on a fresh read.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            IpamError::Datastore(
                DatastoreError::Conflict { .. }
                    | DatastoreError::AlreadyExists { .. }
                    | DatastoreError::NotFound { .. }
            )
        )
    }
}
