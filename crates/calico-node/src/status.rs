//! Felix's process status reports (`felix/daemon/daemon.go` `handleProcessStatusUpdate`,
//! `felix/dataplane/linux/int_dataplane.go` `loopReportingStatus`,
//! `libcalico-go/lib/backend/model/statusreports.go`): after a 10 s start delay, every
//! `ReportingIntervalSecs` (30 s) the agent writes
//! `/calico/felix/v2/<region>/host/<node>/status` with a lease of `ReportingTTLSecs` (90 s)
//! and `/calico/felix/v2/<region>/host/<node>/last_reported_status` without one, both
//! `{"time": "<RFC 3339 UTC>", "uptime": <seconds>, "first_update": <bool>}`. `first_update`
//! stays true until a write of the leased key succeeded. An interval of 0 disables reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calico_api::felixconfig::FelixConfiguration;
use calico_client::Client;
use calico_datastore::{Datastore, DatastoreError};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::FelixEnv;

/// Felix's defaults.
pub const DEFAULT_REPORTING_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_REPORTING_TTL: Duration = Duration::from_secs(90);
/// Felix waits this long before its first report ("so that we don't check in if we're in a
/// tight cyclic restart").
pub const FIRST_REPORT_DELAY: Duration = Duration::from_secs(10);

/// The value of both keys (`model.StatusReport`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub time: String,
    pub uptime: f64,
    pub first_update: bool,
}

/// `/calico/felix/v2/<region>/host/<host>/status`.
pub fn active_key(region: &str, host: &str) -> String {
    format!("/calico/felix/v2/{region}/host/{host}/status")
}

/// `/calico/felix/v2/<region>/host/<host>/last_reported_status`.
pub fn last_key(region: &str, host: &str) -> String {
    format!("/calico/felix/v2/{region}/host/{host}/last_reported_status")
}

fn to_std(d: &calico_api::duration::Duration) -> Option<Duration> {
    let n = d.nanos();
    (n >= 0).then(|| Duration::from_nanos(n as u64))
}

/// The reporting interval and TTL in effect, by Felix's precedence: environment, then the
/// `node.<name>` FelixConfiguration, then `default`, then Felix's defaults. (calico-node's
/// start-up writes `reportingInterval: 0s` into `default`, which disables reports unless the
/// environment or a per-node object says otherwise, exactly as in Calico.)
pub async fn effective_intervals(
    client: &Client,
    node: &str,
    env: &FelixEnv,
) -> (Duration, Duration) {
    let mut objs = Vec::new();
    for name in [format!("node.{node}"), "default".to_string()] {
        if let Ok(fc) = client.get_as::<FelixConfiguration>("", &name).await {
            objs.push(fc);
        }
    }
    let from_ds = |f: fn(&FelixConfiguration) -> Option<&calico_api::duration::Duration>| {
        objs.iter().find_map(|o| f(o).and_then(to_std))
    };
    let interval = env
        .reporting_interval
        .or_else(|| from_ds(|o| o.spec.reporting_interval.as_ref()))
        .unwrap_or(DEFAULT_REPORTING_INTERVAL);
    let ttl = env
        .reporting_ttl
        .or_else(|| from_ds(|o| o.spec.reporting_ttl.as_ref()))
        .unwrap_or(DEFAULT_REPORTING_TTL);
    (interval, ttl)
}

/// Writes the reports of one agent.
pub struct StatusReporter {
    store: Arc<dyn Datastore>,
    region: String,
    host: String,
    ttl: Duration,
    started: Instant,
    first_sent: bool,
}

impl StatusReporter {
    /// `started` is the process start (uptime is measured from it).
    pub fn new(
        store: Arc<dyn Datastore>,
        region: &str,
        host: &str,
        ttl: Duration,
        started: Instant,
    ) -> Self {
        StatusReporter {
            store,
            region: region.to_string(),
            host: host.to_string(),
            ttl,
            started,
            first_sent: false,
        }
    }

    /// Writes one report (both keys). The second key is written even if the first failed,
    /// as Felix does; the first error is returned.
    pub async fn report_once(&mut self) -> Result<StatusReport, DatastoreError> {
        let report = StatusReport {
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            uptime: self.started.elapsed().as_secs_f64(),
            first_update: !self.first_sent,
        };
        let value = serde_json::to_vec(&report)
            .map_err(|e| DatastoreError::Backend(format!("encoding status report: {e}")))?;
        // A TTL is a fresh lease per write (Calico's etcdv3 Apply with TTL); the previous
        // lease then expires holding nothing.
        let active = async {
            let lease = if self.ttl.is_zero() {
                None
            } else {
                Some(
                    self.store
                        .lease_grant(self.ttl.as_secs().max(1) as i64)
                        .await?,
                )
            };
            self.store
                .put(&active_key(&self.region, &self.host), value.clone(), lease)
                .await
        }
        .await;
        let mut first_err = None;
        match active {
            Ok(_) => self.first_sent = true,
            Err(e) => {
                tracing::warn!(error = %e, "failed to write status to datastore");
                first_err = Some(e);
            }
        }
        if let Err(e) = self
            .store
            .put(&last_key(&self.region, &self.host), value, None)
            .await
        {
            tracing::warn!(error = %e, "failed to write status to datastore");
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Reports every `interval` after `first_delay` until `shutdown` (never when `interval`
    /// is zero). Write failures are logged and retried at the next tick.
    pub async fn run(
        mut self,
        interval: Duration,
        first_delay: Duration,
        shutdown: CancellationToken,
    ) {
        if interval.is_zero() {
            tracing::info!("process status reports disabled (reporting interval 0)");
            return;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(first_delay) => {}
        }
        loop {
            let _ = self.report_once().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
