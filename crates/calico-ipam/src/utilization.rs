//! Address accounting per pool and block (Calico's `GetUtilization`, `ipam.go`, and
//! `countPoolSpace` in `reserved.go`). Pure: the caller supplies pools, blocks and
//! reservations. IPReservations make addresses unassignable without allocating them, so they
//! are discounted from `available` and reported as `reserved`; reservations may nest and
//! overlap, so pool-wide counts use interval union, never a sum over CIDRs.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::AllocationBlock;
use crate::pools::Pool;
use crate::reserve::Reservations;

/// Counts for one allocation block (`BlockUtilization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockUtilization {
    pub cidr: IpNet,
    pub capacity: usize,
    /// Addresses not on the free list (allocated, cooling down, or host-reserved).
    pub in_use: usize,
    /// Addresses a reservation covers, whether or not also in use.
    pub reserved: usize,
    /// Free and not reserved.
    pub available: usize,
}

/// Counts for one pool (`PoolUtilization`). `capacity` and `reserved` cover the whole pool
/// CIDR, including space no block has been carved from; `available` adds the unreserved
/// space outside blocks to the blocks' available addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUtilization {
    pub name: String,
    pub cidr: IpNet,
    pub capacity: usize,
    pub in_use: usize,
    pub reserved: usize,
    pub available: usize,
    pub blocks: Vec<BlockUtilization>,
}

/// Name of the pseudo-pool listing blocks no pool covers any more (Calico's wording).
pub const ORPHANED_BLOCKS: &str = "orphaned allocation blocks";

/// Builds the report. `wanted` selects pools by name or CIDR; empty means every pool plus
/// the orphaned-blocks entry (`0.0.0.0/0`, blocks only, totals left at zero as in Calico).
/// Each block is counted under the first reported pool its CIDR overlaps.
pub fn utilization(
    pools: &[Pool],
    blocks: &[AllocationBlock],
    reservations: &Reservations,
    wanted: &[String],
) -> Vec<PoolUtilization> {
    let new = |name: &str, cidr: IpNet| PoolUtilization {
        name: name.to_string(),
        cidr,
        capacity: 0,
        in_use: 0,
        reserved: 0,
        available: 0,
        blocks: Vec::new(),
    };
    let mut out: Vec<PoolUtilization> = pools
        .iter()
        .filter(|p| {
            wanted.is_empty()
                || wanted
                    .iter()
                    .any(|w| *w == p.name || w.parse::<IpNet>().is_ok_and(|n| n == p.cidr))
        })
        .map(|p| new(&p.name, p.cidr))
        .collect();
    let orphans = wanted.is_empty();
    if orphans {
        out.push(new(ORPHANED_BLOCKS, IpNet::V4(ipnet::Ipv4Net::default())));
    }
    for b in blocks {
        let Some(pu) = out.iter_mut().find(|p| overlaps(&p.cidr, &b.cidr)) else {
            continue;
        };
        let capacity = b.num_addresses();
        pu.blocks.push(BlockUtilization {
            cidr: b.cidr,
            capacity,
            in_use: capacity - b.unallocated.len(),
            reserved: b.num_reserved(reservations),
            available: b.num_free(reservations),
        });
    }
    let n = out.len();
    for (i, pu) in out.iter_mut().enumerate() {
        if orphans && i == n - 1 {
            continue;
        }
        pu.in_use = pu.blocks.iter().map(|b| b.in_use).sum();
        pu.available = pu.blocks.iter().map(|b| b.available).sum();
        let pool = range(&pu.cidr);
        let reserved: Vec<(u128, u128)> = reservations
            .cidrs()
            .iter()
            .filter(|r| same_family(r, &pu.cidr))
            .filter_map(|r| clip(range(r), pool))
            .collect();
        let mut covered = reserved.clone();
        covered.extend(
            pu.blocks
                .iter()
                .filter(|b| same_family(&b.cidr, &pu.cidr))
                .filter_map(|b| clip(range(&b.cidr), pool)),
        );
        let capacity = len(pool);
        pu.capacity = clamp(capacity);
        pu.reserved = clamp(union_len(reserved));
        pu.available = pu
            .available
            .saturating_add(clamp(capacity.saturating_sub(union_len(covered))));
    }
    out
}

fn same_family(a: &IpNet, b: &IpNet) -> bool {
    matches!(
        (a, b),
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
    )
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    same_family(a, b) && (a.contains(&b.network()) || b.contains(&a.network()))
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// First and last address, inclusive.
fn range(n: &IpNet) -> (u128, u128) {
    (to_u128(n.network()), to_u128(n.broadcast()))
}

fn clip((lo, hi): (u128, u128), (plo, phi): (u128, u128)) -> Option<(u128, u128)> {
    let (lo, hi) = (lo.max(plo), hi.min(phi));
    (lo <= hi).then_some((lo, hi))
}

/// Addresses in an inclusive range; saturates for the whole IPv6 space.
fn len((lo, hi): (u128, u128)) -> u128 {
    (hi - lo).saturating_add(1)
}

fn union_len(mut v: Vec<(u128, u128)>) -> u128 {
    v.sort_unstable();
    let mut total: u128 = 0;
    let mut cur: Option<(u128, u128)> = None;
    for (lo, hi) in v {
        match cur {
            Some((clo, chi)) if lo <= chi.saturating_add(1) => cur = Some((clo, chi.max(hi))),
            Some(c) => {
                total = total.saturating_add(len(c));
                cur = Some((lo, hi));
            }
            None => cur = Some((lo, hi)),
        }
    }
    if let Some(c) = cur {
        total = total.saturating_add(len(c));
    }
    total
}

/// Calico clamps to its `int` fields rather than wrapping.
fn clamp(n: u128) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
