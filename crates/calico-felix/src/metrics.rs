//! Felix's Prometheus metrics, under Felix's names (`felix/dataplane/linux/int_dataplane.go`,
//! `felix/routetable/route_table.go`, `felix/calc/*`), so existing dashboards and alerts keep
//! working.
//!
//! Two deliberate deviations, both forced by the OpenMetrics encoder of `prometheus-client`:
//! - Felix's counters without a `_total` suffix (`felix_resyncs_started`,
//!   `felix_int_dataplane_failures`) are exposed as gauges that only go up, because the encoder
//!   appends `_total` to every counter and that would rename the series dashboards query.
//!   `rate()` works on them unchanged.
//! - Felix's summaries (`felix_int_dataplane_apply_time_seconds`,
//!   `felix_route_table_resync_seconds`) are histograms: the `_sum` and `_count` series are the
//!   same, the quantile series become buckets.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A monotonic count exposed under a Felix name without `_total` (see the module doc).
pub type FelixCounter = Gauge<u64, AtomicU64>;

/// The metrics the Felix part of calico-node exports.
#[derive(Clone)]
pub struct FelixMetrics {
    pub active_local_endpoints: Gauge,
    pub cluster_num_workload_endpoints: Gauge,
    pub route_table_num_routes: Gauge,
    pub route_table_num_ifaces: Gauge,
    pub route_table_resync_seconds: Histogram,
    pub int_dataplane_apply_time_seconds: Histogram,
    pub int_dataplane_failures: FelixCounter,
    pub resyncs_started: FelixCounter,
    pub resync_state: Gauge,
}

fn seconds_buckets() -> Histogram {
    // 100 µs .. ~6.5 s: a single route change is sub-millisecond, a full resync of tens of
    // thousands of routes takes seconds.
    Histogram::new(exponential_buckets(0.0001, 2.0, 17))
}

impl FelixMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> FelixMetrics {
        let m = FelixMetrics {
            active_local_endpoints: Gauge::default(),
            cluster_num_workload_endpoints: Gauge::default(),
            route_table_num_routes: Gauge::default(),
            route_table_num_ifaces: Gauge::default(),
            route_table_resync_seconds: seconds_buckets(),
            int_dataplane_apply_time_seconds: seconds_buckets(),
            int_dataplane_failures: FelixCounter::default(),
            resyncs_started: FelixCounter::default(),
            resync_state: Gauge::default(),
        };
        for (name, help, metric) in [
            (
                "felix_active_local_endpoints",
                "Number of active endpoints on this host.",
                &m.active_local_endpoints,
            ),
            (
                "felix_cluster_num_workload_endpoints",
                "Total number of workload endpoints cluster-wide.",
                &m.cluster_num_workload_endpoints,
            ),
            (
                "felix_route_table_num_routes",
                "Number of routes that Felix is managing.",
                &m.route_table_num_routes,
            ),
            (
                "felix_route_table_num_ifaces",
                "Number of interfaces that Felix is monitoring.",
                &m.route_table_num_ifaces,
            ),
            (
                "felix_resync_state",
                "Current datastore state (1 = wait-for-ready, 2 = resync, 3 = in-sync).",
                &m.resync_state,
            ),
        ] {
            registry.register(name, help, metric.clone());
        }
        for (name, help, metric) in [
            (
                "felix_route_table_resync_seconds",
                "Time taken to resync the route table with the kernel.",
                &m.route_table_resync_seconds,
            ),
            (
                "felix_int_dataplane_apply_time_seconds",
                "Time in seconds for each incremental update to the dataplane.",
                &m.int_dataplane_apply_time_seconds,
            ),
        ] {
            registry.register(name, help, metric.clone());
        }
        for (name, help, metric) in [
            (
                "felix_int_dataplane_failures",
                "Number of times dataplane updates failed and will be retried.",
                &m.int_dataplane_failures,
            ),
            (
                "felix_resyncs_started",
                "Number of times Felix has started resyncing with the datastore.",
                &m.resyncs_started,
            ),
        ] {
            registry.register(name, help, metric.clone());
        }
        m
    }
}

/// `felix_resync_state` values (Felix's `api.SyncStatus`).
pub mod resync_state {
    pub const WAIT_FOR_READY: i64 = 1;
    pub const RESYNC: i64 = 2;
    pub const IN_SYNC: i64 = 3;
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn names_are_felix_names() {
        let mut r = Registry::default();
        let m = FelixMetrics::register(&mut r);
        m.resyncs_started.inc();
        m.int_dataplane_apply_time_seconds.observe(0.002);
        m.active_local_endpoints.set(3);
        let mut text = String::new();
        encode(&mut text, &r).unwrap();
        for line in [
            "felix_resyncs_started 1",
            "felix_active_local_endpoints 3",
            "felix_int_dataplane_apply_time_seconds_count 1",
            "felix_int_dataplane_failures 0",
            "felix_route_table_num_routes 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
