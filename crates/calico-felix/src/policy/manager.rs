//! [`PolicyManager`]: keeps the kernel's policy table equal to the latest compiled ruleset.

use std::time::Instant;

use calico_nft::{Ruleset, TableShape};

use super::{DataplaneError, NftMetrics, PolicyDataplane};

/// What one [`PolicyManager::sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncAction {
    /// The kernel already held the target (or there is no target yet).
    Nothing,
    /// The whole table was deleted and re-created in one transaction.
    FullReplace,
    /// Only the difference between the applied and the target ruleset was sent.
    Diff,
}

/// Holds the ruleset the kernel is known to hold (`applied`) and the one it should hold
/// (`target`), and moves the kernel from one to the other.
///
/// Like Felix's nftables `Table` (`felix/nftables/table.go`): the first apply, and the first
/// after any failure or detected drift, replaces the whole table in one transaction (`add
/// table; delete table; <full table>`: the old rules stay in force until the commit, so there
/// is no moment without policy); every other apply sends only `calico_nft::diff(applied,
/// target)`. A failed transaction changes nothing in the kernel (nft batches are atomic), so
/// `applied` stays what it was; the next sync still re-asserts the whole table, in case the
/// failure came from the kernel's state rather than from the script.
pub struct PolicyManager<D: PolicyDataplane> {
    dataplane: D,
    applied: Option<Ruleset>,
    target: Option<Ruleset>,
    /// `false`: the kernel's table may differ from `applied`; the next sync is a full replace.
    in_sync: bool,
    resyncs: u64,
    metrics: NftMetrics,
}

impl<D: PolicyDataplane> PolicyManager<D> {
    /// A manager that has programmed nothing yet; its first sync is a full replace. `metrics`
    /// are usually [`NftMetrics::register`]ed by the caller.
    pub fn new(dataplane: D, metrics: NftMetrics) -> PolicyManager<D> {
        PolicyManager {
            dataplane,
            applied: None,
            target: None,
            in_sync: false,
            resyncs: 0,
            metrics,
        }
    }

    /// The ruleset the next [`PolicyManager::sync`] programs.
    pub fn set_target(&mut self, ruleset: Ruleset) {
        self.target = Some(ruleset);
    }

    pub fn target(&self) -> Option<&Ruleset> {
        self.target.as_ref()
    }

    /// The ruleset the kernel held after the last successful apply.
    pub fn applied(&self) -> Option<&Ruleset> {
        self.applied.as_ref()
    }

    /// Whether the next sync will be a diff (the kernel is believed to hold `applied`).
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }

    /// Full re-applies forced by drift so far ([`PolicyManager::check_drift`]).
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    pub fn dataplane(&self) -> &D {
        &self.dataplane
    }

    pub fn dataplane_mut(&mut self) -> &mut D {
        &mut self.dataplane
    }

    /// Programs the target: a full replace when nothing was applied yet or after an error or
    /// drift, otherwise the minimal diff (nothing at all when it is empty).
    pub fn sync(&mut self) -> Result<SyncAction, DataplaneError> {
        let Some(target) = self.target.take() else {
            return Ok(SyncAction::Nothing);
        };
        let (action, script) = match (&self.applied, self.in_sync) {
            (Some(applied), true) => {
                let script = calico_nft::diff(applied, &target);
                if script.trim().is_empty() {
                    self.applied = Some(target);
                    return Ok(SyncAction::Nothing);
                }
                (SyncAction::Diff, script)
            }
            _ => (SyncAction::FullReplace, target.full_replace_script()),
        };
        let started = Instant::now();
        let result = self.dataplane.apply(&script);
        self.metrics
            .apply_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.set_gauges(&target.shape());
                self.applied = Some(target);
                self.in_sync = true;
                Ok(action)
            }
            Err(e) => {
                self.metrics.errors.inc();
                self.in_sync = false;
                tracing::warn!(error = %e, ?action, "nft transaction failed; the previous policy table stays in force");
                self.target = Some(target);
                Err(e)
            }
        }
    }

    /// Lists the kernel's table and compares its shape with the applied ruleset's (Felix's
    /// periodic refresh). On a difference (the table flushed, deleted, or edited by someone
    /// else) it counts a resync and re-applies the whole target at once. Returns whether drift
    /// was found. Before the first successful apply there is nothing to compare, and a
    /// pending full replace is simply carried out.
    pub fn check_drift(&mut self) -> Result<bool, DataplaneError> {
        let Some(applied) = &self.applied else {
            self.sync()?;
            return Ok(false);
        };
        let expected = applied.shape();
        let listed = self.dataplane.list_table().inspect_err(|_| {
            self.metrics.errors.inc();
        })?;
        let drift = listed.as_ref() != Some(&expected);
        if drift {
            self.resyncs += 1;
            self.metrics.resyncs.inc();
            self.in_sync = false;
            tracing::warn!(
                expected = %describe(Some(&expected)),
                found = %describe(listed.as_ref()),
                "policy table drifted from what was programmed; re-applying it in full"
            );
            if self.target.is_none() {
                self.target = self.applied.clone();
            }
        }
        if !self.in_sync {
            self.sync()?;
        }
        Ok(drift)
    }

    fn set_gauges(&self, shape: &TableShape) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.chains.set(gauge(shape.chains.len()));
        self.metrics.rules.set(gauge(shape.rule_count()));
        self.metrics.sets.set(gauge(shape.sets.len()));
        self.metrics.maps.set(gauge(shape.maps.len()));
    }
}

/// A one-line summary of a table shape for logs.
fn describe(shape: Option<&TableShape>) -> String {
    match shape {
        None => "no table".into(),
        Some(s) => format!(
            "{} chains / {} rules, {} sets / {} elements, {} maps / {} entries",
            s.chains.len(),
            s.rule_count(),
            s.sets.len(),
            s.sets.values().sum::<usize>(),
            s.maps.len(),
            s.maps.values().sum::<usize>()
        ),
    }
}
