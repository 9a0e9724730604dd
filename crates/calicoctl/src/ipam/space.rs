//! Address-set arithmetic for pool utilisation (`libcalico-go/lib/ipam/reserved.go`
//! `countPoolSpace`): how much of a pool CIDR reservations cover, and how much lies outside
//! every block and reservation. Reservations may overlap and nest, so this is a set union, not
//! a sum over CIDRs.

use ipnet::IpNet;

/// Inclusive `[first, last]` of a network, in its family's address space.
fn bounds(n: &IpNet) -> (u128, u128) {
    match n {
        IpNet::V4(v) => (
            u128::from(u32::from(v.network())),
            u128::from(u32::from(v.broadcast())),
        ),
        IpNet::V6(v) => (u128::from(v.network()), u128::from(v.broadcast())),
    }
}

fn same_family(a: &IpNet, b: &IpNet) -> bool {
    matches!(
        (a, b),
        (IpNet::V4(_), IpNet::V4(_)) | (IpNet::V6(_), IpNet::V6(_))
    )
}

/// Size of `[first, last]`, saturating for the whole IPv6 space.
fn len(first: u128, last: u128) -> u128 {
    (last - first).saturating_add(1)
}

/// Addresses of `within` covered by the union of `nets` (other families ignored).
pub fn covered(within: &IpNet, nets: &[IpNet]) -> u128 {
    let (lo, hi) = bounds(within);
    let mut ranges: Vec<(u128, u128)> = nets
        .iter()
        .filter(|n| same_family(n, within))
        .map(bounds)
        .filter(|(a, b)| *b >= lo && *a <= hi)
        .map(|(a, b)| (a.max(lo), b.min(hi)))
        .collect();
    ranges.sort_unstable();
    let mut total: u128 = 0;
    let mut cur: Option<(u128, u128)> = None;
    for (a, b) in ranges {
        cur = match cur {
            Some((ca, cb)) if a <= cb.saturating_add(1) => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total = total.saturating_add(len(ca, cb));
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((ca, cb)) = cur {
        total = total.saturating_add(len(ca, cb));
    }
    total
}

/// Number of addresses in `n`.
pub fn size(n: &IpNet) -> u128 {
    let (a, b) = bounds(n);
    len(a, b)
}

/// `countPoolSpace`: (capacity, reserved, available outside the given blocks).
pub fn pool_space(pool: &IpNet, reservations: &[IpNet], blocks: &[IpNet]) -> (u128, u128, u128) {
    let capacity = size(pool);
    let reserved = covered(pool, reservations);
    let mut both: Vec<IpNet> = reservations.to_vec();
    both.extend_from_slice(blocks);
    let outside = capacity.saturating_sub(covered(pool, &both));
    (capacity, reserved, outside)
}

/// Calico's `clampToInt`: counts beyond a Go `int` saturate at `math.MaxInt`.
pub fn clamp(n: u128) -> f64 {
    n.min(i64::MAX as u128) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn nested_and_overlapping_reservations_count_once() {
        let pool = n("10.0.0.0/24");
        let res = [
            n("10.0.0.0/28"),
            n("10.0.0.5/32"),
            n("10.0.0.8/29"),
            n("10.1.0.0/16"),
        ];
        assert_eq!(covered(&pool, &res), 16);
        let (cap, reserved, outside) = pool_space(&pool, &res, &[n("10.0.0.0/26")]);
        assert_eq!((cap, reserved, outside), (256, 16, 192));
    }

    #[test]
    fn reservation_larger_than_pool_is_clipped() {
        let (cap, reserved, outside) = pool_space(&n("10.0.0.0/26"), &[n("10.0.0.0/8")], &[]);
        assert_eq!((cap, reserved, outside), (64, 64, 0));
    }

    #[test]
    fn families_do_not_mix_and_v6_saturates() {
        assert_eq!(covered(&n("fd00::/120"), &[n("0.0.0.0/0")]), 0);
        assert_eq!(size(&n("::/0")), u128::MAX);
        assert_eq!(clamp(size(&n("fd00::/64"))), i64::MAX as f64);
    }
}
