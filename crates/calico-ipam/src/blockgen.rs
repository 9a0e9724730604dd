//! The order in which a node tries a pool's blocks, identical to Calico's
//! (`ipam_block_reader_writer.go` `randomBlockGenerator`): start at a pseudo-random block index
//! chosen by Go's `math/rand` seeded with the FNV-1 32-bit hash of the host name, then walk the
//! pool's blocks in address order, wrapping around, visiting each once. Seeding by host name
//! makes one node go back to the same region of the pool (fewer conflicts between nodes, and
//! the same blocks as a Calico node of the same name would pick).
//!
//! Reproducing the start index needs Go's exact generator: the additive lagged Fibonacci
//! source of `math/rand` (`rngSource`, seeded through the Park–Miller `seedrand` and the
//! `rngCooked` table) and `big.Int.Rand`'s rejection sampling over 64-bit words.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::gorand_table::RNG_COOKED;

const RNG_LEN: usize = 607;
const RNG_TAP: usize = 273;
const INT32_MAX: i64 = (1 << 31) - 1;
const RNG_MASK: u64 = (1 << 63) - 1;

/// Go's `rand.New(rand.NewSource(seed))`.
pub(crate) struct GoRand {
    tap: usize,
    feed: usize,
    vec: [u64; RNG_LEN],
}

/// Park–Miller step `x = 48271 * x mod (2^31 - 1)` in Schrage's form, as Go writes it.
fn seedrand(x: i32) -> i32 {
    const A: i32 = 48271;
    const Q: i32 = 44488;
    const R: i32 = 3399;
    let hi = x / Q;
    let lo = x % Q;
    let mut x = A.wrapping_mul(lo).wrapping_sub(R.wrapping_mul(hi));
    if x < 0 {
        x = x.wrapping_add(INT32_MAX as i32);
    }
    x
}

impl GoRand {
    pub(crate) fn new(seed: i64) -> Self {
        let mut seed = seed % INT32_MAX;
        if seed < 0 {
            seed += INT32_MAX;
        }
        if seed == 0 {
            seed = 89_482_311;
        }
        // seed < 2^31 - 1 here, so it fits.
        let mut x = seed as i32;
        let mut vec = [0u64; RNG_LEN];
        for i in -20i32..RNG_LEN as i32 {
            x = seedrand(x);
            if i >= 0 {
                let mut u = i64::from(x) << 40;
                x = seedrand(x);
                u ^= i64::from(x) << 20;
                x = seedrand(x);
                u ^= i64::from(x);
                u ^= RNG_COOKED[i as usize];
                vec[i as usize] = u as u64;
            }
        }
        GoRand {
            tap: 0,
            feed: RNG_LEN - RNG_TAP,
            vec,
        }
    }

    fn uint64(&mut self) -> u64 {
        self.tap = if self.tap == 0 {
            RNG_LEN - 1
        } else {
            self.tap - 1
        };
        self.feed = if self.feed == 0 {
            RNG_LEN - 1
        } else {
            self.feed - 1
        };
        let x = self.vec[self.feed].wrapping_add(self.vec[self.tap]);
        self.vec[self.feed] = x;
        x
    }

    /// `Rand.Int63`.
    pub(crate) fn int63(&mut self) -> i64 {
        (self.uint64() & RNG_MASK) as i64
    }

    /// `Rand.Uint32`: the top 32 of the 63 bits.
    fn uint32(&mut self) -> u32 {
        (self.int63() >> 31) as u32
    }

    /// `new(big.Int).Rand(r, n)` for `n < 2^128`: fill 64-bit words low to high from two
    /// `Uint32`s each, mask the top word to `n`'s bit length, reject until below `n`.
    pub(crate) fn big_rand_below(&mut self, n: u128) -> u128 {
        if n == 0 {
            return 0;
        }
        let words = if n >> 64 == 0 { 1 } else { 2 };
        let bit_len = 128 - n.leading_zeros();
        let msw_bits = match bit_len % 64 {
            0 => 64,
            b => b,
        };
        let mask: u64 = if msw_bits == 64 {
            u64::MAX
        } else {
            (1u64 << msw_bits) - 1
        };
        loop {
            let mut z = [0u64; 2];
            for w in z.iter_mut().take(words) {
                let lo = u64::from(self.uint32());
                let hi = u64::from(self.uint32());
                *w = lo | (hi << 32);
            }
            z[words - 1] &= mask;
            let v = u128::from(z[0]) | (u128::from(z[1]) << 64);
            if v < n {
                return v;
            }
        }
    }
}

/// Go's `hash/fnv` `New32` (FNV-1, not FNV-1a).
pub fn fnv1_32(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h = h.wrapping_mul(0x0100_0193);
        h ^= u32::from(*b);
    }
    h
}

fn addr_to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

fn u128_to_addr(v: u128, v4: bool) -> IpAddr {
    if v4 {
        // Callers stay inside an IPv4 pool, so the value fits in 32 bits.
        IpAddr::V4(std::net::Ipv4Addr::from(v as u32))
    } else {
        IpAddr::V6(std::net::Ipv6Addr::from(v))
    }
}

/// Iterator over a pool's block CIDRs in Calico's per-host order. Yields nothing if the block
/// size is shorter than the pool's prefix or longer than the family allows.
pub struct BlockOrder {
    base: u128,
    v4: bool,
    block_len: u8,
    block_addrs: u128,
    num_blocks: u128,
    index: u128,
    returned: u128,
}

impl Iterator for BlockOrder {
    type Item = IpNet;
    fn next(&mut self) -> Option<IpNet> {
        if self.returned >= self.num_blocks {
            return None;
        }
        let addr = u128_to_addr(
            self.base
                .wrapping_add(self.index.wrapping_mul(self.block_addrs)),
            self.v4,
        );
        self.index = if self.index + 1 >= self.num_blocks {
            0
        } else {
            self.index + 1
        };
        self.returned += 1;
        IpNet::new(addr, self.block_len).ok()
    }
}

/// Calico's `randomBlockGenerator(pool, host)`. For single-address blocks Calico seeds from
/// the clock instead (the same host needn't revisit the same /32), so `time_seed` is used then.
pub fn block_order(pool: &IpNet, block_len: u8, host: &str, time_seed: i64) -> BlockOrder {
    let pool = pool.trunc();
    let v4 = matches!(pool, IpNet::V4(_));
    let bits: u32 = if v4 { 32 } else { 128 };
    let empty = BlockOrder {
        base: 0,
        v4,
        block_len,
        block_addrs: 1,
        num_blocks: 0,
        index: 0,
        returned: 0,
    };
    if u32::from(block_len) > bits || block_len < pool.prefix_len() {
        return empty;
    }
    let host_bits = bits - u32::from(block_len);
    let block_addrs: u128 = 1u128.checked_shl(host_bits).unwrap_or(0);
    let num_blocks: u128 = 1u128
        .checked_shl(u32::from(block_len - pool.prefix_len()))
        .unwrap_or(u128::MAX);
    let seed = if u32::from(block_len) == bits {
        time_seed
    } else {
        i64::from(fnv1_32(host.as_bytes()))
    };
    let mut rng = GoRand::new(seed);
    let index = rng.big_rand_below(num_blocks);
    BlockOrder {
        base: addr_to_u128(pool.addr()),
        v4,
        block_len,
        block_addrs,
        num_blocks,
        index,
        returned: 0,
    }
}

/// The block of `block_len` that contains `ip` (`getBlockCIDRForAddress`).
pub fn block_containing(ip: IpAddr, block_len: u8) -> Option<IpNet> {
    IpNet::new(ip, block_len).ok().map(|n| n.trunc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_rand_matches_go_for_seed_one() {
        // `rand.New(rand.NewSource(1)).Int63()` twice, as printed by Go.
        let mut r = GoRand::new(1);
        assert_eq!(r.int63(), 5_577_006_791_947_779_410);
        assert_eq!(r.int63(), 8_674_665_223_082_153_551);
    }

    #[test]
    fn fnv1_matches_go() {
        assert_eq!(fnv1_32(b"node1"), 3_957_252_814);
        assert_eq!(fnv1_32(b""), 0x811c_9dc5);
    }
}
