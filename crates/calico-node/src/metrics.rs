//! Prometheus metrics: one `prometheus_client` [`Registry`] that every component registers
//! into at construction (no global state), served as text on `/metrics`
//! (`FELIX_PROMETHEUSMETRICSENABLED`, port `FELIX_PROMETHEUSMETRICSPORT` = 9091), plus the
//! process metrics Go's client exports (`process_*`, read from `/proc/self`) and Felix's
//! `felix_host` gauge.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// Registers Felix's `felix_host{host="<node>"} 1`.
pub fn register_felix_host(registry: &mut Registry, node: &str) {
    let fam = Family::<Vec<(String, String)>, Gauge>::default();
    fam.get_or_create(&vec![("host".to_string(), node.to_string())])
        .set(1);
    registry.register(
        "felix_host",
        "Configured Felix hostname (as a label), typically used in grouping/aggregating stats; the label defaults to the hostname of the host but can be overridden by configuration. The value of the gauge is always set to 1.",
        fam,
    );
}

/// The process metrics of Prometheus's Go client, from `/proc/self`.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// One reading of the process metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub start_time_seconds: f64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
}

/// Parses `/proc/<pid>/stat` (fields after the parenthesised command name) with the clock
/// tick rate, page size and boot time (`btime` of `/proc/stat`).
pub fn parse_proc_stat(
    stat: &str,
    ticks_per_sec: u64,
    page_size: u64,
    boot_time: u64,
) -> Option<(f64, u64, u64, f64)> {
    // The command name may contain spaces and parentheses: fields start after the LAST ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state); utime = field 14, stime = 15, starttime = 22, vsize = 23,
    // rss = 24 (proc(5)).
    let field = |n: usize| f.get(n - 3).and_then(|s| s.parse::<u64>().ok());
    let ticks = ticks_per_sec.max(1) as f64;
    let cpu = (field(14)? + field(15)?) as f64 / ticks;
    let start = boot_time as f64 + field(22)? as f64 / ticks;
    let vsize = field(23)?;
    let rss = field(24)? * page_size;
    Some((cpu, rss, vsize, start))
}

/// `btime` from `/proc/stat`.
pub fn parse_boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The soft "Max open files" limit from `/proc/self/limits`.
pub fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl ProcessCollector {
    /// Reads the current values.
    pub fn read() -> Option<ProcessStats> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
        let ticks = rustix::param::clock_ticks_per_second();
        let page = rustix::param::page_size() as u64;
        let (cpu, rss, vsize, start) = parse_proc_stat(&stat, ticks, page, boot)?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        let max_fds = std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|l| parse_max_fds(&l));
        Some(ProcessStats {
            cpu_seconds: cpu,
            resident_memory_bytes: rss,
            virtual_memory_bytes: vsize,
            start_time_seconds: start,
            open_fds,
            max_fds,
        })
    }
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = ProcessCollector::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 4] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                s.resident_memory_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                s.virtual_memory_bytes as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                s.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                s.open_fds as f64,
            ),
        ];
        for (name, help, v) in gauges {
            let g = ConstGauge::new(v);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        if let Some(m) = s.max_fds {
            let g = ConstGauge::new(m as f64);
            g.encode(encoder.encode_descriptor(
                "process_max_fds",
                "Maximum number of open file descriptors.",
                None,
                g.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Registers the process collector.
pub fn register_process_metrics(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessCollector));
}

/// Renders the registry as text.
pub fn render(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

async fn metrics(State(registry): State<Arc<Registry>>) -> Response {
    match render(&registry) {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The `/metrics` router.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(registry)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn proc_stat_fields() {
        // A command name with spaces and a ')' inside.
        let stat = "4242 (calico node) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 8 0 \
                    12000 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let (cpu, rss, vsize, start) = parse_proc_stat(stat, 100, 4096, 1_700_000_000).unwrap();
        assert!((cpu - 4.0).abs() < 1e-9);
        assert_eq!(rss, 2048 * 4096);
        assert_eq!(vsize, 123456789);
        assert!((start - 1_700_000_120.0).abs() < 1e-9);
        assert_eq!(parse_proc_stat("garbage", 100, 4096, 0), None);
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_max_fds(
                "Limit                     Soft Limit           Hard Limit           Units\n\
                 Max open files            1024                 524288               files\n"
            ),
            Some(1024)
        );
    }

    #[test]
    fn registry_renders_process_and_host() {
        let mut r = Registry::default();
        register_process_metrics(&mut r);
        register_felix_host(&mut r, "node1");
        let text = render(&r).unwrap();
        assert!(text.contains("felix_host{host=\"node1\"} 1\n"), "{text}");
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
        let rss: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(rss > 1e6, "{rss}");
        assert!(text.ends_with("# EOF\n"));
    }
}
