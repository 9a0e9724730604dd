//! Health aggregation with Calico's semantics (`libcalico-go/lib/health/health.go`): each
//! component registers what it reports (liveness, readiness) and an optional timeout, then
//! reports periodically. `GET /liveness` and `GET /readiness` answer 200 with a detail table,
//! 204 when there is no detail (no reporters), 503 when any reporter is not live / not ready
//! or has not reported within its timeout.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// One reporter's latest report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthReport {
    pub live: bool,
    pub ready: bool,
    pub detail: String,
}

#[derive(Debug)]
struct ReporterState {
    reports_live: bool,
    reports_ready: bool,
    timeout: Option<Duration>,
    latest: HealthReport,
    timestamp: Instant,
}

impl ReporterState {
    fn timed_out(&self, now: Instant) -> bool {
        self.timeout
            .is_some_and(|t| now.duration_since(self.timestamp) > t)
    }

    fn readiness(&self, now: Instant) -> (bool, &'static str) {
        if !self.reports_ready {
            return (true, "-");
        }
        if self.timed_out(now) {
            return (false, "timed out");
        }
        if self.latest.ready {
            (true, "reporting ready")
        } else {
            (false, "reporting non-ready")
        }
    }

    fn liveness(&self, now: Instant) -> (bool, &'static str) {
        if !self.reports_live {
            return (true, "-");
        }
        if self.timed_out(now) {
            return (false, "timed out");
        }
        if self.latest.live {
            (true, "reporting live")
        } else {
            (false, "reporting non-live")
        }
    }
}

/// The aggregate state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub live: bool,
    pub ready: bool,
    /// The component table (empty when nothing is registered).
    pub detail: String,
}

/// Collects reports; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HealthAggregator {
    reporters: Arc<Mutex<BTreeMap<String, ReporterState>>>,
}

/// A registered reporter's handle.
#[derive(Debug, Clone)]
pub struct Reporter {
    name: String,
    agg: HealthAggregator,
}

impl Reporter {
    /// Records a report (and refreshes the reporter's timestamp).
    pub fn report(&self, live: bool, ready: bool, detail: impl Into<String>) {
        let report = HealthReport {
            live,
            ready,
            detail: detail.into(),
        };
        let mut map = self.agg.lock();
        if let Some(r) = map.get_mut(&self.name) {
            if r.latest != report {
                tracing::info!(name = %self.name, live, ready, detail = %report.detail, "health of component changed");
                r.latest = report;
            }
            r.timestamp = Instant::now();
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

fn fmt_duration(d: Duration) -> String {
    // Go's time.Duration String for whole seconds and milliseconds, which is what timeouts are.
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        let s = ms / 1000;
        if s >= 60 {
            let (m, s) = (s / 60, s % 60);
            if m >= 60 {
                return format!("{}h{}m{}s", m / 60, m % 60, s);
            }
            return format!("{m}m{s}s");
        }
        format!("{s}s")
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// Renders rows the way go-pretty's default table style does (`+---+`, `| a |`).
fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let sep = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s
    };
    let line = |cells: Vec<String>| {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            s.push(' ');
            s.push_str(c);
            s.push_str(&" ".repeat(pad + 1));
            s.push('|');
        }
        s
    };
    let mut out = vec![sep.clone()];
    out.push(line(header.iter().map(|h| h.to_string()).collect()));
    out.push(sep.clone());
    for r in rows {
        out.push(line(r.clone()));
    }
    out.push(sep);
    out.join("\n")
}

impl HealthAggregator {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ReporterState>> {
        // A poisoned lock only means a reporter panicked mid-update; the map is still usable.
        self.reporters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers `name` (`RegisterReporter`): what it reports and how long a report stays
    /// valid (`None` = forever). Until its first report it counts as live and not ready.
    pub fn register(
        &self,
        name: &str,
        reports_live: bool,
        reports_ready: bool,
        timeout: Option<Duration>,
    ) -> Reporter {
        self.lock().insert(
            name.to_string(),
            ReporterState {
                reports_live,
                reports_ready,
                timeout,
                latest: HealthReport {
                    live: true,
                    ready: false,
                    detail: String::new(),
                },
                timestamp: Instant::now(),
            },
        );
        Reporter {
            name: name.to_string(),
            agg: self.clone(),
        }
    }

    /// The aggregate (`Summary`).
    pub fn summary(&self) -> Summary {
        let now = Instant::now();
        let map = self.lock();
        let mut live = true;
        let mut ready = true;
        let mut rows = Vec::new();
        for (name, r) in map.iter() {
            let (l, ls) = r.liveness(now);
            let (rd, rs) = r.readiness(now);
            live &= l;
            ready &= rd;
            rows.push(vec![
                name.clone(),
                r.timeout.map_or_else(|| "-".to_string(), fmt_duration),
                ls.to_string(),
                rs.to_string(),
                r.latest.detail.clone(),
            ]);
        }
        let detail = if rows.is_empty() {
            String::new()
        } else {
            render_table(
                &["COMPONENT", "TIMEOUT", "LIVENESS", "READINESS", "DETAIL"],
                &rows,
            )
        };
        Summary {
            live,
            ready,
            detail,
        }
    }

    /// The `/liveness` + `/readiness` router.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/liveness", get(liveness))
            .route("/readiness", get(readiness))
            .with_state(self.clone())
    }
}

fn respond(good: bool, detail: String) -> Response {
    let status = if !good {
        StatusCode::SERVICE_UNAVAILABLE
    } else if detail.is_empty() {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::OK
    };
    if status == StatusCode::NO_CONTENT {
        return status.into_response();
    }
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        detail,
    )
        .into_response()
}

async fn liveness(State(agg): State<HealthAggregator>) -> Response {
    let s = agg.summary();
    respond(s.live, s.detail)
}

async fn readiness(State(agg): State<HealthAggregator>) -> Response {
    let s = agg.summary();
    respond(s.ready, s.detail)
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn aggregate_follows_calico() {
        let agg = HealthAggregator::new();
        let s = agg.summary();
        assert!(s.live && s.ready && s.detail.is_empty());

        let a = agg.register("ipam", true, true, None);
        // Registered, not yet reported: live, not ready.
        let s = agg.summary();
        assert!(s.live);
        assert!(!s.ready);
        a.report(true, true, "");
        assert!(agg.summary().ready);

        let b = agg.register("felix", true, true, Some(Duration::from_millis(50)));
        b.report(true, true, "in sync");
        let s = agg.summary();
        assert!(s.live && s.ready);
        assert_eq!(
            s.detail,
            "+-----------+---------+----------------+-----------------+---------+\n\
             | COMPONENT | TIMEOUT | LIVENESS       | READINESS       | DETAIL  |\n\
             +-----------+---------+----------------+-----------------+---------+\n\
             | felix     | 50ms    | reporting live | reporting ready | in sync |\n\
             | ipam      | -       | reporting live | reporting ready |         |\n\
             +-----------+---------+----------------+-----------------+---------+"
        );
        // A reporter that stops reporting times out (both qualities).
        std::thread::sleep(Duration::from_millis(80));
        let s = agg.summary();
        assert!(!s.live && !s.ready);
        assert!(s.detail.contains("timed out"));
        b.report(true, false, "resyncing");
        let s = agg.summary();
        assert!(s.live && !s.ready);
        assert!(s.detail.contains("reporting non-ready"));
        // Readiness-only reporters never affect liveness.
        let c = agg.register("ds", false, true, None);
        c.report(false, true, "");
        b.report(true, true, "");
        let s = agg.summary();
        assert!(s.live && s.ready);
        a.report(false, true, "");
        assert!(!agg.summary().live);
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(fmt_duration(Duration::from_secs(20)), "20s");
        assert_eq!(fmt_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_secs(3700)), "1h1m40s");
    }
}
