//! Prometheus series of the nftables policy dataplane.
//!
//! Names follow Felix's nftables dataplane (`felix/nftables/table.go`, `ipsets.go`:
//! `felix_nft_chains`, `felix_nft_rules`, `felix_nft_sets`, `felix_nft_errors`), without
//! Felix's `ip_version` label: Felix keeps one table per family, we keep one `inet` table for
//! both. Counters are real counters here, so the OpenMetrics encoder exposes them as
//! `felix_nft_errors_total` and `felix_nft_resyncs_total`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The policy dataplane's metrics. `Default` gives unregistered metrics (tests, or an agent
/// that does not export them); [`NftMetrics::register`] registers them with the caller's
/// registry. Clones share the same series.
#[derive(Clone, Debug)]
pub struct NftMetrics {
    /// `felix_nft_apply_seconds`: time of each nft transaction (full or diff).
    pub apply_seconds: Histogram,
    /// `felix_nft_resyncs_total`: full re-applies forced by drift found in the kernel.
    pub resyncs: Counter,
    /// `felix_nft_errors_total`: failed nft transactions and listings.
    pub errors: Counter,
    /// `felix_nft_element_batches_total`: changes sent as set-element netlink batches (no
    /// `nft` process; see `PolicyDataplane::apply_elements`). Not a Felix series.
    pub element_batches: Counter,
    /// `felix_nft_plan_batches_total`: changes of chains and rules sent as one nf_tables
    /// netlink batch (`calico_nft::diff_plan`; no `nft` process). Not a Felix series.
    pub plan_batches: Counter,
    /// `felix_nft_plan_fallbacks_total`: changes that had to go through `nft` instead: no
    /// plan for them (a new map or base chain), the batch too large, or the batch refused.
    pub plan_fallbacks: Counter,
    /// `felix_nft_chains`: chains in the table last programmed.
    pub chains: Gauge,
    /// `felix_nft_rules`: rules over all chains of that table.
    pub rules: Gauge,
    /// `felix_nft_sets`: named sets (not maps) of that table.
    pub sets: Gauge,
    /// `felix_nft_maps`: named maps (interface dispatch verdict maps) of that table.
    pub maps: Gauge,
}

impl Default for NftMetrics {
    fn default() -> Self {
        NftMetrics {
            // 100 µs .. ~6.5 s: a one-element diff is a millisecond or two (process start
            // dominates), a full 10k-policy table takes seconds.
            apply_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 17)),
            resyncs: Counter::default(),
            errors: Counter::default(),
            element_batches: Counter::default(),
            plan_batches: Counter::default(),
            plan_fallbacks: Counter::default(),
            chains: Gauge::default(),
            rules: Gauge::default(),
            sets: Gauge::default(),
            maps: Gauge::default(),
        }
    }
}

impl NftMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> NftMetrics {
        let m = NftMetrics::default();
        registry.register(
            "felix_nft_apply_seconds",
            "Time in seconds of each nft transaction that programs the policy table.",
            m.apply_seconds.clone(),
        );
        for (name, help, counter) in [
            (
                "felix_nft_resyncs",
                "Number of full re-applies of the policy table after drift was detected.",
                &m.resyncs,
            ),
            (
                "felix_nft_errors",
                "Number of nft errors when writing or listing rules.",
                &m.errors,
            ),
            (
                "felix_nft_element_batches",
                "Number of policy table changes applied as set-element batches over netlink.",
                &m.element_batches,
            ),
            (
                "felix_nft_plan_batches",
                "Number of policy table changes of chains and rules applied as netlink batches.",
                &m.plan_batches,
            ),
            (
                "felix_nft_plan_fallbacks",
                "Number of policy table changes applied through nft because no netlink batch could carry them.",
                &m.plan_fallbacks,
            ),
        ] {
            registry.register(name, help, counter.clone());
        }
        for (name, help, gauge) in [
            (
                "felix_nft_chains",
                "Number of active nft chains in the Calico table.",
                &m.chains,
            ),
            (
                "felix_nft_rules",
                "Number of active nftables rules in the Calico table.",
                &m.rules,
            ),
            (
                "felix_nft_sets",
                "Number of active Calico nftables sets.",
                &m.sets,
            ),
            (
                "felix_nft_maps",
                "Number of active Calico nftables maps.",
                &m.maps,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn exported_names() {
        let mut r = Registry::default();
        let m = NftMetrics::register(&mut r);
        m.errors.inc();
        m.element_batches.inc();
        m.plan_batches.inc();
        m.plan_fallbacks.inc();
        m.resyncs.inc();
        m.resyncs.inc();
        m.chains.set(7);
        m.rules.set(42);
        m.sets.set(3);
        m.maps.set(2);
        m.apply_seconds.observe(0.003);
        let mut text = String::new();
        encode(&mut text, &r).unwrap();
        for line in [
            "felix_nft_errors_total 1",
            "felix_nft_element_batches_total 1",
            "felix_nft_plan_batches_total 1",
            "felix_nft_plan_fallbacks_total 1",
            "felix_nft_resyncs_total 2",
            "felix_nft_chains 7",
            "felix_nft_rules 42",
            "felix_nft_sets 3",
            "felix_nft_maps 2",
            "felix_nft_apply_seconds_count 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
