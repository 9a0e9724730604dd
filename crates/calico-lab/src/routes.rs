//! BGP convergence as the kernel shows it: a node's own blocks are its `blackhole <block>`
//! routes (what calico-node originates), and the cluster has converged when every node holds a
//! `proto bgp` route `<block> via <owner's address>` for every block of every other node.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::error::LabError;
use crate::lab::progress;
use crate::state::LabRecord;
use crate::sys;

/// The prefixes of `type blackhole` routes in `netns` (the node's affine blocks).
pub fn own_blocks(netns: &str) -> Result<BTreeSet<String>, LabError> {
    let out = sys::ip_in(netns, &["-4", "route", "show", "type", "blackhole"])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next()) {
                (Some("blackhole"), Some(p)) => Some(p.to_string()),
                _ => None,
            }
        })
        .collect())
}

/// `(prefix, next hop)` of the `proto bgp` routes in `netns`.
pub fn bgp_routes(netns: &str) -> Result<BTreeSet<(String, String)>, LabError> {
    let out = sys::ip_in(netns, &["-4", "route", "show", "proto", "bgp"])?;
    Ok(parse_bgp_routes(&out))
}

fn parse_bgp_routes(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let prefix = l.split_whitespace().next()?;
            let via = l.split_whitespace().skip_while(|w| *w != "via").nth(1)?;
            Some((prefix.to_string(), via.to_string()))
        })
        .collect()
}

/// How many (node, remote block) routes are still missing.
pub fn missing_routes(lab: &LabRecord) -> Result<usize, LabError> {
    let mut blocks = Vec::with_capacity(lab.nodes.len());
    for n in &lab.nodes {
        blocks.push(own_blocks(&n.netns)?);
    }
    let mut missing = 0;
    for n in &lab.nodes {
        let have = bgp_routes(&n.netns)?;
        for (other, theirs) in lab.nodes.iter().zip(&blocks) {
            if other.name == n.name {
                continue;
            }
            missing += theirs
                .iter()
                .filter(|b| !have.contains(&((*b).clone(), other.ip.clone())))
                .count();
        }
    }
    Ok(missing)
}

/// Waits until nothing is missing; returns how long it took.
pub fn wait_converged(
    lab: &LabRecord,
    timeout: Duration,
    start: Instant,
) -> Result<Duration, LabError> {
    let began = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let missing = missing_routes(lab)?;
        if missing == 0 {
            return Ok(began.elapsed());
        }
        if began.elapsed() > timeout {
            return Err(LabError::Failed(format!(
                "BGP did not converge in {timeout:?}: {missing} routes to remote blocks still missing \
                 (`calico-lab status` shows the sessions)"
            )));
        }
        if last_report.elapsed() > Duration::from_secs(3) {
            progress(
                start,
                &format!("waiting for BGP: {missing} routes to remote blocks missing"),
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgp_routes_are_parsed_with_their_next_hop() {
        let text = "10.244.1.0/26 via 192.168.20.12 dev eth0 proto bird \n\
                    10.244.2.0/26 via 192.168.20.13 dev eth0 proto bird onlink \n";
        let r = parse_bgp_routes(text);
        assert!(r.contains(&("10.244.1.0/26".into(), "192.168.20.12".into())));
        assert!(r.contains(&("10.244.2.0/26".into(), "192.168.20.13".into())));
        assert_eq!(r.len(), 2);
    }
}
