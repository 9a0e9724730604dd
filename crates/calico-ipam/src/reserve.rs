//! Addresses IPAM must never hand out: the CIDRs of every `IPReservation`
//! (`libcalico-go/lib/ipam/addr_filter.go` `cidrSliceFilter`).

use std::net::IpAddr;

use calico_api::ipreservation::IPReservation;
use ipnet::IpNet;

/// A set of reserved CIDRs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservations {
    cidrs: Vec<IpNet>,
}

fn size_log2(n: &IpNet) -> u32 {
    u32::from(n.max_prefix_len() - n.prefix_len())
}

impl Reservations {
    pub fn none() -> Self {
        Reservations::default()
    }

    pub fn from_cidrs(cidrs: impl IntoIterator<Item = IpNet>) -> Self {
        Reservations {
            cidrs: cidrs.into_iter().map(|c| c.trunc()).collect(),
        }
    }

    /// Every CIDR (or bare IP) of the given reservations. Malformed entries are skipped, as
    /// Calico logs and skips them (validation keeps them out in the first place).
    pub fn from_reservations<'a>(rs: impl IntoIterator<Item = &'a IPReservation>) -> Self {
        let mut cidrs = Vec::new();
        for r in rs {
            for c in &r.spec.reserved_cidrs {
                let c = c.trim();
                if c.is_empty() {
                    continue;
                }
                let parsed = if c.contains('/') {
                    c.parse::<IpNet>().ok()
                } else {
                    c.parse::<IpAddr>().ok().map(IpNet::from)
                };
                match parsed {
                    Some(n) => cidrs.push(n.trunc()),
                    None => tracing::warn!(
                        reservation = %r.metadata.name,
                        cidr = c,
                        "ignoring malformed CIDR in IPReservation"
                    ),
                }
            }
        }
        Reservations { cidrs }
    }

    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty()
    }

    /// The reserved CIDRs (normalised to their network address).
    pub fn cidrs(&self) -> &[IpNet] {
        &self.cidrs
    }

    /// Whether `ip` is reserved.
    pub fn matches_ip(&self, ip: IpAddr) -> bool {
        self.cidrs.iter().any(|c| c.contains(&ip))
    }

    /// Whether any address of `cidr` is reserved.
    pub fn matches_some(&self, cidr: &IpNet) -> bool {
        self.cidrs
            .iter()
            .any(|c| c.contains(&cidr.network()) || cidr.contains(&c.network()))
    }

    /// Whether every address of `cidr` is reserved, by one CIDR or several together.
    pub fn matches_whole_cidr(&self, cidr: &IpNet) -> bool {
        let mut inside: Vec<IpNet> = Vec::new();
        for c in &self.cidrs {
            if c.prefix_len() <= cidr.prefix_len() && c.contains(&cidr.network()) {
                return true;
            }
            if cidr.contains(&c.network()) {
                inside.push(*c);
            }
        }
        if inside.is_empty() {
            return false;
        }
        // Drop CIDRs nested in (or equal to) others, then compare address counts: what remains
        // is disjoint and inside `cidr`, so equal counts mean full cover.
        inside.sort_by_key(|c| std::cmp::Reverse(c.prefix_len()));
        inside.dedup();
        let mut kept: Vec<IpNet> = Vec::new();
        for (i, c) in inside.iter().enumerate() {
            if !inside[i + 1..].iter().any(|l| l.contains(&c.network())) {
                kept.push(*c);
            }
        }
        let covered: u128 = kept
            .iter()
            .map(|c| 1u128.checked_shl(size_log2(c)).unwrap_or(u128::MAX))
            .fold(0u128, |a, b| a.saturating_add(b));
        covered == 1u128.checked_shl(size_log2(cidr)).unwrap_or(u128::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// `addr_filter_test.go` `cidrFilterTests`, re-encoded.
    #[test]
    fn calico_cidr_filter_table() {
        struct Case {
            filter: &'static [&'static str],
            ips_match: &'static [&'static str],
            cidrs_match: &'static [&'static str],
            ips_no_match: &'static [&'static str],
            cidrs_no_match: &'static [&'static str],
        }
        let cases = [
            Case {
                filter: &["0.0.0.0/0"],
                ips_match: &["0.0.0.0", "255.255.255.255", "10.0.0.1"],
                cidrs_match: &["0.0.0.0/0", "255.255.255.255/32", "10.0.0.0/8"],
                ips_no_match: &[],
                cidrs_no_match: &[],
            },
            Case {
                filter: &["::/0"],
                ips_match: &["::", "ffff::", "cafe:f00d::"],
                cidrs_match: &["::/0", "ffff::/32", "cafe:f00d::/96"],
                ips_no_match: &[],
                cidrs_no_match: &[],
            },
            Case {
                filter: &["192.168.1.64/26", "192.168.1.0/26"],
                ips_match: &[
                    "192.168.1.0",
                    "192.168.1.63",
                    "192.168.1.64",
                    "192.168.1.127",
                ],
                cidrs_match: &[
                    "192.168.1.64/26",
                    "192.168.1.0/26",
                    "192.168.1.0/25",
                    "192.168.1.64/27",
                    "192.168.1.96/27",
                ],
                ips_no_match: &["10.0.0.1", "0.0.0.0"],
                cidrs_no_match: &[
                    "10.0.0.0/8",
                    "0.0.0.0/32",
                    "192.168.2.64/26",
                    "192.168.1.0/24",
                ],
            },
        ];
        for c in cases {
            let f = Reservations::from_cidrs(c.filter.iter().map(|s| net(s)));
            for ip in c.ips_match {
                assert!(f.matches_ip(ip.parse().unwrap()), "{:?} {ip}", c.filter);
            }
            for ip in c.ips_no_match {
                assert!(!f.matches_ip(ip.parse().unwrap()), "{:?} {ip}", c.filter);
            }
            for n in c.cidrs_match {
                assert!(f.matches_whole_cidr(&net(n)), "{:?} {n}", c.filter);
            }
            for n in c.cidrs_no_match {
                assert!(!f.matches_whole_cidr(&net(n)), "{:?} {n}", c.filter);
            }
        }
    }

    #[test]
    fn overlapping_reservations_cover_only_what_they_cover() {
        let f = Reservations::from_cidrs([
            net("10.0.0.0/25"),
            net("10.0.0.0/26"),
            net("10.0.0.128/26"),
        ]);
        assert!(!f.matches_whole_cidr(&net("10.0.0.0/24")));
        let f = Reservations::from_cidrs([
            net("10.0.0.0/25"),
            net("10.0.0.0/26"),
            net("10.0.0.128/25"),
        ]);
        assert!(f.matches_whole_cidr(&net("10.0.0.0/24")));
        assert!(f.matches_some(&net("10.0.0.0/16")));
        assert!(!f.matches_some(&net("10.0.1.0/24")));
    }
}
