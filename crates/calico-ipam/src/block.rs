//! Pure operations on one [`AllocationBlock`] value (no I/O), following
//! `libcalico-go/lib/ipam/ipam_block.go`: ordinal allocation from the head of the FIFO free
//! list skipping reserved addresses, specific-address assignment, release by address or by
//! handle with sequence-number and handle checks (ABA protection), the cool-down of released
//! addresses and the garbage collection that returns them to the tail of the free list.
//!
//! Every mutation only changes the value; the caller persists it with one compare-and-swap.
//! Several mutations may be applied to one value before it is written (batching): call
//! [`AllocationBlock::bump_sequence`] between them so each allocation records its own sequence
//! number.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;

use crate::error::IpamError;
use crate::model::{
    AffinityOwner, AllocationAttribute, AllocationBlock, Time, WINDOWS_RESERVED_HANDLE,
};
use crate::reserve::Reservations;

/// Addresses a Windows node reserves at both ends of each of its blocks (`HostReservedAttr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReservedAttr {
    pub start_of_block: usize,
    pub end_of_block: usize,
    pub handle: String,
    pub note: String,
}

/// One address to release (`ipam.ReleaseOptions`). `handle` and `sequence_number`, when given,
/// must match the allocation, or the whole release is refused as stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseOptions {
    pub address: IpAddr,
    pub handle: Option<String>,
    pub sequence_number: Option<u64>,
}

impl ReleaseOptions {
    pub fn address(address: IpAddr) -> Self {
        ReleaseOptions {
            address,
            handle: None,
            sequence_number: None,
        }
    }
}

/// What [`AllocationBlock::release`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseOutcome {
    /// Requested addresses that were not allocated (already free or cooling down).
    pub unallocated: Vec<IpAddr>,
    /// How many addresses each handle lost.
    pub count_by_handle: BTreeMap<String, u64>,
}

/// Calico strips everything after a carriage return from handles written by a broken
/// host-local migration (cni-plugin#821), `sanitizeHandle`.
pub fn sanitize_handle(h: &str) -> &str {
    h.split('\r').next().unwrap_or(h)
}

fn ip_to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

impl AllocationBlock {
    /// A new empty block (`newBlock`). `sequence` is Calico's initial sequence number, the
    /// creation time in nanoseconds, so a deleted and re-created block never repeats numbers.
    pub fn new(cidr: IpNet, reserved: Option<&HostReservedAttr>, sequence: u64) -> Self {
        let cidr = cidr.trunc();
        let n = num_addresses_of(&cidr);
        let mut b = AllocationBlock {
            cidr,
            affinity: None,
            affinity_claim_time: None,
            allocations: vec![None; n],
            unallocated: (0..n).collect(),
            attributes: Vec::new(),
            sequence_number: sequence,
            sequence_number_for_allocation: BTreeMap::new(),
            deleted: false,
            host_affinity: None,
        };
        if let Some(r) = reserved
            && r.start_of_block + r.end_of_block <= n
        {
            b.unallocated = (r.start_of_block..n - r.end_of_block).collect();
            let idx = 0;
            for o in (0..r.start_of_block).chain(n - r.end_of_block..n) {
                b.allocations[o] = Some(idx);
            }
            b.attributes.push(AllocationAttribute {
                handle_id: Some(r.handle.clone()),
                active_owner_attrs: BTreeMap::from([("note".to_string(), r.note.clone())]),
                ..Default::default()
            });
        }
        b
    }

    pub fn num_addresses(&self) -> usize {
        self.allocations.len()
    }

    /// Ordinal of `ip` in the block.
    pub fn ordinal_of(&self, ip: IpAddr) -> Result<usize, IpamError> {
        let outside = || IpamError::NotInBlock {
            ip,
            block: self.cidr,
        };
        if !self.cidr.contains(&ip) {
            return Err(outside());
        }
        let ord = ip_to_u128(ip) - ip_to_u128(self.cidr.network());
        usize::try_from(ord)
            .ok()
            .filter(|o| *o < self.num_addresses())
            .ok_or_else(outside)
    }

    /// Address at `ordinal`.
    pub fn ip_at(&self, ordinal: usize) -> IpAddr {
        let v = ip_to_u128(self.cidr.network()) + ordinal as u128;
        match self.cidr {
            IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(v as u32)),
            IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(v)),
        }
    }

    /// The owner named by `affinity`, if any.
    pub fn owner(&self) -> Option<AffinityOwner> {
        self.affinity.as_deref().and_then(AffinityOwner::parse)
    }

    /// Sequence number recorded for `ordinal` (0 when none, as Go's map lookup).
    pub fn sequence_of(&self, ordinal: usize) -> u64 {
        self.sequence_number_for_allocation
            .get(&ordinal.to_string())
            .copied()
            .unwrap_or(0)
    }

    fn set_sequence(&mut self, ordinal: usize) {
        self.sequence_number_for_allocation
            .insert(ordinal.to_string(), self.sequence_number);
    }

    /// Advances the sequence number, as every write of the block does (`updateBlock`).
    pub fn bump_sequence(&mut self) {
        self.sequence_number = self.sequence_number.wrapping_add(1);
    }

    fn check_affinity(&self, owner: &AffinityOwner, strict: bool) -> Result<(), IpamError> {
        match &self.affinity {
            Some(a) if strict && *a != owner.affinity_string() => {
                Err(IpamError::AffinityMismatch {
                    block_affinity: a.clone(),
                    requested: owner.affinity_string(),
                })
            }
            None if strict => Err(IpamError::NoAffinity(self.cidr)),
            _ => Ok(()),
        }
    }

    /// Index of the attribute `{handle, attrs}`, added if no identical one exists
    /// (`findOrAddAttribute`).
    fn find_or_add_attribute(
        &mut self,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
    ) -> usize {
        let wanted = AllocationAttribute {
            handle_id: handle.map(str::to_string),
            active_owner_attrs: attrs.clone(),
            ..Default::default()
        };
        if let Some(i) = self.attributes.iter().position(|a| *a == wanted) {
            return i;
        }
        self.attributes.push(wanted);
        self.attributes.len() - 1
    }

    /// Allocates up to `num` addresses from the head of the free list, skipping reserved ones
    /// (which keep their place), and returns them (`allocationBlock.autoAssign`). With
    /// `strict_affinity` the block must be affine to `owner`.
    pub fn auto_assign(
        &mut self,
        num: usize,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
        owner: &AffinityOwner,
        strict_affinity: bool,
        reservations: &Reservations,
    ) -> Result<Vec<IpAddr>, IpamError> {
        self.check_affinity(owner, strict_affinity)?;
        let mut ips = Vec::new();
        let mut kept = Vec::with_capacity(self.unallocated.len());
        let mut attr_idx = None;
        let free = std::mem::take(&mut self.unallocated);
        for (i, &ord) in free.iter().enumerate() {
            if ips.len() >= num {
                kept.extend_from_slice(&free[i..]);
                break;
            }
            let addr = self.ip_at(ord);
            if reservations.matches_ip(addr) {
                kept.push(ord);
                continue;
            }
            let idx = *attr_idx.get_or_insert_with(|| self.find_or_add_attribute(handle, attrs));
            self.allocations[ord] = Some(idx);
            self.set_sequence(ord);
            ips.push(addr);
        }
        self.unallocated = kept;
        Ok(ips)
    }

    /// Assigns the specific address `ip` (`allocationBlock.assign`).
    pub fn assign(
        &mut self,
        ip: IpAddr,
        handle: Option<&str>,
        attrs: &BTreeMap<String, String>,
        owner: &AffinityOwner,
        strict_affinity: bool,
    ) -> Result<(), IpamError> {
        self.check_affinity(owner, strict_affinity)?;
        let ord = self.ordinal_of(ip)?;
        if self.allocations[ord].is_some() {
            return Err(IpamError::AlreadyAssigned(ip));
        }
        self.set_sequence(ord);
        let idx = self.find_or_add_attribute(handle, attrs);
        self.allocations[ord] = Some(idx);
        self.unallocated.retain(|o| *o != ord);
        Ok(())
    }

    /// Handle of the live (not cooling down) allocation at `ordinal`, sanitised.
    fn live_handle(&self, ordinal: usize) -> Option<Option<String>> {
        let idx = self.allocations.get(ordinal).copied().flatten()?;
        let a = self.attributes.get(idx)?;
        if a.released_at.is_some() {
            return None;
        }
        Some(
            a.handle_id
                .as_deref()
                .map(|h| sanitize_handle(h).to_string()),
        )
    }

    fn add_cooldown_attribute(&mut self, now: DateTime<Utc>) -> usize {
        self.attributes.push(AllocationAttribute {
            released_at: Some(Time::new(now)),
            ..Default::default()
        });
        self.attributes.len() - 1
    }

    /// Releases addresses (`allocationBlock.release`). A handle or sequence-number mismatch
    /// on any address refuses the whole request (nothing changes). Released addresses cool
    /// down for `cooldown_secs` and then return to the tail of the free list.
    pub fn release(
        &mut self,
        opts: &[ReleaseOptions],
        now: DateTime<Utc>,
        cooldown_secs: i64,
    ) -> Result<ReleaseOutcome, IpamError> {
        // De-duplicate by address (the last options for an address win, as in Go's map).
        let mut unique: BTreeMap<IpAddr, &ReleaseOptions> = BTreeMap::new();
        for o in opts {
            unique.insert(o.address, o);
        }
        let mut out = ReleaseOutcome::default();
        let mut ordinals = Vec::new();
        for (ip, o) in unique {
            let ord = self.ordinal_of(ip)?;
            if let Some(seq) = o.sequence_number
                && seq != self.sequence_of(ord)
            {
                return Err(IpamError::BadSequenceNumber {
                    ip,
                    requested: seq,
                    expected: self.sequence_of(ord),
                });
            }
            let Some(handle) = self.live_handle(ord) else {
                out.unallocated.push(ip);
                continue;
            };
            let handle = handle.unwrap_or_default();
            if let Some(want) = o.handle.as_deref().map(sanitize_handle)
                && !want.is_empty()
                && want != handle
            {
                return Err(IpamError::BadHandle {
                    ip,
                    requested: want.to_string(),
                    expected: handle,
                });
            }
            ordinals.push(ord);
            if !handle.is_empty() {
                *out.count_by_handle.entry(handle).or_insert(0) += 1;
            }
        }
        if ordinals.is_empty() {
            return Ok(out);
        }
        let idx = self.add_cooldown_attribute(now);
        for ord in ordinals {
            self.allocations[ord] = Some(idx);
            self.set_sequence(ord);
        }
        self.garbage_collect(now, cooldown_secs);
        Ok(out)
    }

    /// Releases every live address of `handle` whose sequence number matches `sequence` (all
    /// of them when `None`) and returns how many (`allocationBlock.releaseByHandle`).
    pub fn release_by_handle(
        &mut self,
        handle: &str,
        sequence: Option<u64>,
        now: DateTime<Utc>,
        cooldown_secs: i64,
    ) -> usize {
        let handle = sanitize_handle(handle);
        let mut idx = None;
        let mut count = 0;
        for ord in 0..self.num_addresses() {
            let Some(Some(h)) = self.live_handle(ord) else {
                continue;
            };
            if h != handle {
                continue;
            }
            if sequence.is_some_and(|s| s != self.sequence_of(ord)) {
                continue;
            }
            let i = match idx {
                Some(i) => i,
                None => {
                    let i = self.add_cooldown_attribute(now);
                    idx = Some(i);
                    i
                }
            };
            self.allocations[ord] = Some(i);
            count += 1;
        }
        if count > 0 {
            self.garbage_collect(now, cooldown_secs);
        }
        count
    }

    /// Returns cooled-down addresses to the tail of the free list and drops attributes nothing
    /// refers to any more; `true` if anything changed (`garbageCollect`). Calico runs this on
    /// every block it reads. A negative cool-down frees every released address.
    pub fn garbage_collect(&mut self, now: DateTime<Utc>, cooldown_secs: i64) -> bool {
        let mut changed = false;
        let deadline = now - Duration::seconds(cooldown_secs.max(0));
        let mut used = vec![false; self.attributes.len()];
        for ord in 0..self.num_addresses() {
            let Some(idx) = self.allocations[ord] else {
                continue;
            };
            let released = self.attributes.get(idx).and_then(|a| a.released_at);
            let free = match released {
                Some(t) => cooldown_secs < 0 || t.0 <= deadline,
                None => false,
            };
            if free {
                self.allocations[ord] = None;
                self.unallocated.push(ord);
                self.sequence_number_for_allocation.remove(&ord.to_string());
                changed = true;
            } else if let Some(u) = used.get_mut(idx) {
                *u = true;
            }
        }
        if used.iter().any(|u| !u) {
            let mut remap = vec![None; self.attributes.len()];
            let mut kept = Vec::new();
            for (i, a) in std::mem::take(&mut self.attributes).into_iter().enumerate() {
                if used[i] {
                    remap[i] = Some(kept.len());
                    kept.push(a);
                }
            }
            self.attributes = kept;
            for slot in self.allocations.iter_mut() {
                if let Some(i) = *slot {
                    *slot = remap.get(i).copied().flatten();
                }
            }
            changed = true;
        }
        changed
    }

    /// Free addresses that may be handed out (`NumFreeAddresses`).
    pub fn num_free(&self, reservations: &Reservations) -> usize {
        if reservations.is_empty() || !reservations.matches_some(&self.cidr) {
            return self.unallocated.len();
        }
        if reservations.matches_whole_cidr(&self.cidr) {
            return 0;
        }
        self.unallocated
            .iter()
            .filter(|o| !reservations.matches_ip(self.ip_at(**o)))
            .count()
    }

    /// Addresses of the block a reservation covers, allocated or not (`NumReservedAddresses`).
    pub fn num_reserved(&self, reservations: &Reservations) -> usize {
        if !reservations.matches_some(&self.cidr) {
            return 0;
        }
        if reservations.matches_whole_cidr(&self.cidr) {
            return self.num_addresses();
        }
        (0..self.num_addresses())
            .filter(|o| reservations.matches_ip(self.ip_at(*o)))
            .count()
    }

    /// No address in use apart from Windows-reserved ones (`empty`). Addresses cooling down
    /// count as in use.
    pub fn is_empty(&self) -> bool {
        self.allocations.iter().flatten().all(|idx| {
            self.attributes
                .get(*idx)
                .and_then(|a| a.handle_id.as_deref())
                .is_some_and(|h| h.eq_ignore_ascii_case(WINDOWS_RESERVED_HANDLE))
        })
    }

    /// Every allocated address, cooling down ones included (`inUseIPs`).
    pub fn in_use_ips(&self) -> Vec<IpAddr> {
        (0..self.num_addresses())
            .filter(|o| self.allocations[*o].is_some())
            .map(|o| self.ip_at(o))
            .collect()
    }

    /// Live addresses held by `handle` (`ipsByHandle`).
    pub fn ips_by_handle(&self, handle: &str) -> Vec<IpAddr> {
        let handle = sanitize_handle(handle);
        (0..self.num_addresses())
            .filter(|o| matches!(self.live_handle(*o), Some(Some(h)) if h == handle))
            .map(|o| self.ip_at(o))
            .collect()
    }

    /// Live allocations per handle, for consistency checks and handle healing.
    pub fn count_by_handle(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for o in 0..self.num_addresses() {
            if let Some(Some(h)) = self.live_handle(o) {
                *m.entry(h).or_insert(0) += 1;
            }
        }
        m
    }

    /// The attributes of the live allocation at `ip` (`allocationAttributesForIP`).
    pub fn attributes_of(&self, ip: IpAddr) -> Result<Option<&AllocationAttribute>, IpamError> {
        let ord = self.ordinal_of(ip)?;
        Ok(self.allocations[ord]
            .and_then(|i| self.attributes.get(i))
            .filter(|a| a.released_at.is_none()))
    }
}

fn num_addresses_of(cidr: &IpNet) -> usize {
    let host_bits = u32::from(cidr.max_prefix_len() - cidr.prefix_len());
    // Blocks are /20../32 or /116../128 (pool validation), so this is small.
    1usize.checked_shl(host_bits).unwrap_or(0)
}
