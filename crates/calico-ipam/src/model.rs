//! Calico's v1 IPAM records, with the exact JSON Calico writes
//! (`libcalico-go/lib/backend/model/{block,block_affinity,ipam_handle,ipam_config}.go`) and the
//! etcd keys they live under (calico-features.md §11).
//!
//! Field order and `omitempty` rules follow the Go structs, so a block we write is byte-for-byte
//! what Calico would write for the same state, and Calico reads ours. Unknown fields are ignored
//! on read (Go's decoder does the same), so newer Calico fields don't break us.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::IpamError;

/// Affinity prefix of a block owned by a node (`model.IPAMAffinityTypeHost`).
pub const AFFINITY_TYPE_HOST: &str = "host";
/// Affinity prefix of a block owned by a virtual owner, e.g. `virtual:load-balancer`.
pub const AFFINITY_TYPE_VIRTUAL: &str = "virtual";
/// The handle Calico uses for the addresses a Windows node reserves in each of its blocks; such
/// allocations don't make a block "in use" (`ipam_block.go` `WindowsReservedHandle`).
pub const WINDOWS_RESERVED_HANDLE: &str = "windows-reserved-ipam-handle";

/// Attribute keys Calico stores with an allocation (`model.IPAMBlockAttribute*`).
pub mod attr {
    pub const POD: &str = "pod";
    pub const NAMESPACE: &str = "namespace";
    pub const NODE: &str = "node";
    pub const TYPE: &str = "type";
    pub const SERVICE: &str = "service";
    pub const TIMESTAMP: &str = "timestamp";
    pub const TYPE_IPIP: &str = "ipipTunnelAddress";
    pub const TYPE_VXLAN: &str = "vxlanTunnelAddress";
    pub const TYPE_VXLAN_V6: &str = "vxlanV6TunnelAddress";
    pub const TYPE_WIREGUARD: &str = "wireguardTunnelAddress";
    pub const TYPE_WIREGUARD_V6: &str = "wireguardV6TunnelAddress";
}

/// Root of every IPAM key.
pub const IPAM_PREFIX: &str = "/calico/ipam/v2/";
/// Key of the global IPAM configuration.
pub const CONFIG_KEY: &str = "/calico/ipam/v2/config";

/// `4` or `6` for a network.
pub fn ip_version(net: &IpNet) -> u8 {
    match net {
        IpNet::V4(_) => 4,
        IpNet::V6(_) => 6,
    }
}

/// `10.0.1.0/26` -> `10.0.1.0-26`: Calico replaces the first `/` of the masked CIDR.
fn cidr_in_key(cidr: &IpNet) -> String {
    let c = cidr.trunc();
    format!("{}-{}", c.addr(), c.prefix_len())
}

/// `/calico/ipam/v2/assignment/ipv4/block/10.0.1.0-26`.
pub fn block_key(cidr: &IpNet) -> String {
    format!(
        "/calico/ipam/v2/assignment/ipv{}/block/{}",
        ip_version(cidr),
        cidr_in_key(cidr)
    )
}

/// Prefix listing every block of one family (`BlockListOptions{IPVersion}`).
pub fn block_prefix(version: u8) -> String {
    format!("/calico/ipam/v2/assignment/ipv{version}/")
}

/// `/calico/ipam/v2/host/<node>/ipv4/block/10.0.1.0-26` (or `virtual/<name>/...`).
pub fn affinity_key(owner: &AffinityOwner, cidr: &IpNet) -> String {
    format!(
        "/calico/ipam/v2/{}/{}/ipv{}/block/{}",
        owner.kind.as_str(),
        owner.name,
        ip_version(cidr),
        cidr_in_key(cidr)
    )
}

/// Prefix listing one owner's affinities of one family.
pub fn affinity_prefix(owner: &AffinityOwner, version: u8) -> String {
    format!(
        "/calico/ipam/v2/{}/{}/ipv{version}/block/",
        owner.kind.as_str(),
        owner.name
    )
}

/// `/calico/ipam/v2/handle/<id>`.
pub fn handle_key(handle_id: &str) -> String {
    format!("/calico/ipam/v2/handle/{handle_id}")
}

/// Prefix listing every handle.
pub const HANDLE_PREFIX: &str = "/calico/ipam/v2/handle/";

/// Parses the CIDR at the end of a block or affinity key (`.../block/10.0.1.0-26`).
pub fn cidr_from_key(key: &str) -> Result<IpNet, IpamError> {
    let bad = || IpamError::BadKey {
        key: key.to_string(),
    };
    let last = key.rsplit('/').next().ok_or_else(bad)?;
    let (addr, len) = last.rsplit_once('-').ok_or_else(bad)?;
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    IpNet::new(addr, len).map(|n| n.trunc()).map_err(|_| bad())
}

/// Kind of a block owner: a node, or a virtual owner such as the LoadBalancer controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AffinityKind {
    Host,
    Virtual,
}

impl AffinityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AffinityKind::Host => AFFINITY_TYPE_HOST,
            AffinityKind::Virtual => AFFINITY_TYPE_VIRTUAL,
        }
    }
}

/// Who a block is affine to (`ipam.AffinityConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AffinityOwner {
    pub kind: AffinityKind,
    pub name: String,
}

impl AffinityOwner {
    pub fn host(name: impl Into<String>) -> Self {
        AffinityOwner {
            kind: AffinityKind::Host,
            name: name.into(),
        }
    }
    pub fn virtual_owner(name: impl Into<String>) -> Self {
        AffinityOwner {
            kind: AffinityKind::Virtual,
            name: name.into(),
        }
    }
    /// The block's `affinity` string, `host:<node>`.
    pub fn affinity_string(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.name)
    }
    /// Parses a block's `affinity` string; `None` for anything but `host:` / `virtual:`.
    pub fn parse(affinity: &str) -> Option<Self> {
        if let Some(n) = affinity.strip_prefix("host:") {
            return Some(AffinityOwner::host(n));
        }
        affinity
            .strip_prefix("virtual:")
            .map(AffinityOwner::virtual_owner)
    }
}

/// Kubernetes `metav1.Time` on the wire: RFC 3339 in UTC with whole seconds
/// (`2024-05-01T10:00:00Z`). Values are kept truncated to seconds so a read-back equals what
/// was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub DateTime<Utc>);

impl Time {
    pub fn new(t: DateTime<Utc>) -> Self {
        Time(t.trunc_subsecs(0))
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| Time::new(t.with_timezone(&Utc)))
            .map_err(|e| serde::de::Error::custom(format!("bad time {s:?}: {e}")))
    }
}

/// Metadata of one allocation (Go `AllocationAttribute`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationAttribute {
    #[serde(rename = "handle_id", default, skip_serializing_if = "Option::is_none")]
    pub handle_id: Option<String>,
    /// Attributes of the owner using the address (`pod`, `namespace`, `node`, ...).
    #[serde(
        rename = "secondary",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub active_owner_attrs: BTreeMap<String, String>,
    /// Attributes of a previous or upcoming owner (KubeVirt live migration).
    #[serde(
        rename = "alternateOwnerAttrs",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub alternate_owner_attrs: BTreeMap<String, String>,
    /// Set while the address cools down after release (`ipCooldownSeconds`).
    #[serde(
        rename = "releasedAt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub released_at: Option<Time>,
}

/// One block of a pool (Go `AllocationBlock`): the unit of allocation, of compare-and-swap and
/// of route aggregation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationBlock {
    #[serde(with = "cidr_text")]
    pub cidr: IpNet,
    /// `host:<node>` / `virtual:<name>`, or `None` for a block nobody owns.
    pub affinity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity_claim_time: Option<Time>,
    /// Per ordinal: index into `attributes`, or `None` when free.
    #[serde(deserialize_with = "null_as_default")]
    pub allocations: Vec<Option<usize>>,
    /// Free ordinals, allocated from the head and released to the tail (FIFO reuse delay).
    #[serde(deserialize_with = "null_as_default")]
    pub unallocated: Vec<usize>,
    /// Go writes `null` for a block that never held an attribute; we do the same.
    #[serde(
        serialize_with = "empty_vec_as_null",
        deserialize_with = "null_as_default"
    )]
    pub attributes: Vec<AllocationAttribute>,
    /// Bumped on every write of the block.
    #[serde(rename = "sequenceNumber", default)]
    pub sequence_number: u64,
    /// Block sequence number at the time each ordinal was allocated (keys are decimal ordinals;
    /// Go sorts map keys as strings, as a `BTreeMap<String, _>` does).
    #[serde(
        rename = "sequenceNumberForAllocation",
        default,
        deserialize_with = "null_as_default"
    )]
    pub sequence_number_for_allocation: BTreeMap<String, u64>,
    /// Soft-delete marker (used by the Kubernetes backend; always false in etcd).
    #[serde(default)]
    pub deleted: bool,
    /// Deprecated form of `affinity` (`hostAffinity: <node>`), kept as read.
    #[serde(
        rename = "hostAffinity",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub host_affinity: Option<String>,
}

/// State of a block affinity: ∅ → pending → confirmed → pendingDeletion → ∅.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AffinityState {
    /// Empty string: what very old Calico wrote; treated as confirmed.
    #[default]
    Legacy,
    Pending,
    Confirmed,
    PendingDeletion,
}

impl AffinityState {
    pub fn as_str(self) -> &'static str {
        match self {
            AffinityState::Legacy => "",
            AffinityState::Pending => "pending",
            AffinityState::Confirmed => "confirmed",
            AffinityState::PendingDeletion => "pendingDeletion",
        }
    }
    /// Whether the owner may allocate from the block (confirmed, or legacy empty state).
    pub fn is_confirmed(self) -> bool {
        matches!(self, AffinityState::Confirmed | AffinityState::Legacy)
    }
}

impl Serialize for AffinityState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AffinityState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        match s.as_str() {
            "" => Ok(AffinityState::Legacy),
            "pending" => Ok(AffinityState::Pending),
            "confirmed" => Ok(AffinityState::Confirmed),
            "pendingDeletion" => Ok(AffinityState::PendingDeletion),
            other => Err(serde::de::Error::custom(format!(
                "unknown block affinity state {other:?}"
            ))),
        }
    }
}

/// Value of an affinity key (Go `BlockAffinity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BlockAffinity {
    #[serde(default)]
    pub state: AffinityState,
    #[serde(default)]
    pub deleted: bool,
}

impl BlockAffinity {
    pub fn confirmed() -> Self {
        BlockAffinity {
            state: AffinityState::Confirmed,
            deleted: false,
        }
    }
    /// Decodes an affinity value; an empty value is a legacy confirmed affinity (Calico's
    /// `BlockAffinityKey.parseValue` upgrades it to `{}`).
    pub fn decode(key: &str, value: &[u8]) -> Result<Self, IpamError> {
        if value.is_empty() {
            return Ok(BlockAffinity::default());
        }
        decode(key, value)
    }
}

/// Value of a handle key (Go `IPAMHandle`): how many addresses the handle holds in each block,
/// keyed by block CIDR text (`10.0.1.0/26`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamHandle {
    #[serde(default, deserialize_with = "null_as_default")]
    pub block: BTreeMap<String, u64>,
    #[serde(default)]
    pub deleted: bool,
}

impl IpamHandle {
    /// Total addresses held.
    pub fn total(&self) -> u64 {
        self.block.values().sum()
    }
    /// Adds `n` addresses in `block`.
    pub fn increment(&mut self, block: &IpNet, n: u64) {
        if n > 0 {
            *self.block.entry(block.to_string()).or_insert(0) += n;
        }
    }
    /// Removes `n` addresses in `block`, dropping the entry at zero. Saturates instead of
    /// failing: a handle that over- or under-counts is healed towards the block's truth.
    pub fn decrement(&mut self, block: &IpNet, n: u64) {
        let k = block.to_string();
        if let Some(v) = self.block.get_mut(&k) {
            *v = v.saturating_sub(n);
            if *v == 0 {
                self.block.remove(&k);
            }
        }
    }
}

/// Value of `/calico/ipam/v2/config` (Go `model.IPAMConfig`); every field is `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamConfigRecord {
    #[serde(default, skip_serializing_if = "is_false")]
    pub strict_affinity: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub auto_allocate_blocks: bool,
    #[serde(rename = "maxBlocksPerHost", default, skip_serializing_if = "is_zero")]
    pub max_blocks_per_host: i64,
    #[serde(
        rename = "kubeVirtVMAddressPersistence",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kube_virt_vm_address_persistence: Option<String>,
    #[serde(rename = "ipCooldownSeconds", default, skip_serializing_if = "is_zero")]
    pub ip_cooldown_seconds: i64,
}

/// The IPAM configuration in effect (Go `ipam.IPAMConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpamConfig {
    pub strict_affinity: bool,
    pub auto_allocate_blocks: bool,
    /// 0 = no global limit (the allocator then applies Calico's safeguard of 20).
    pub max_blocks_per_host: u32,
    pub ip_cooldown_seconds: i64,
}

impl Default for IpamConfig {
    /// What Calico uses while no config is stored (`GetIPAMConfig`).
    fn default() -> Self {
        IpamConfig {
            strict_affinity: false,
            auto_allocate_blocks: true,
            max_blocks_per_host: 0,
            ip_cooldown_seconds: 0,
        }
    }
}

impl IpamConfig {
    pub fn from_record(r: &IpamConfigRecord) -> Self {
        IpamConfig {
            strict_affinity: r.strict_affinity,
            auto_allocate_blocks: r.auto_allocate_blocks,
            max_blocks_per_host: u32::try_from(r.max_blocks_per_host.max(0)).unwrap_or(u32::MAX),
            ip_cooldown_seconds: r.ip_cooldown_seconds,
        }
    }
    pub fn to_record(&self) -> IpamConfigRecord {
        IpamConfigRecord {
            strict_affinity: self.strict_affinity,
            auto_allocate_blocks: self.auto_allocate_blocks,
            max_blocks_per_host: i64::from(self.max_blocks_per_host),
            kube_virt_vm_address_persistence: None,
            ip_cooldown_seconds: self.ip_cooldown_seconds,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn empty_vec_as_null<S: Serializer, T: Serialize>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
}

mod cidr_text {
    use ipnet::IpNet;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(c: &IpNet, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&c.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<IpNet>()
            .map(|n| n.trunc())
            .map_err(|e| serde::de::Error::custom(format!("bad block cidr {s:?}: {e}")))
    }
}

/// Decodes a JSON value stored at `key`, naming the key in the error.
pub fn decode<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Result<T, IpamError> {
    serde_json::from_slice(value).map_err(|e| IpamError::Decode {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Encodes a record as Calico does (compact JSON).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (string keys, no non-finite floats).
    serde_json::to_vec(value).unwrap_or_default()
}
