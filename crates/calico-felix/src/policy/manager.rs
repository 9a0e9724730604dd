//! [`PolicyManager`]: keeps the kernel's policy table equal to the latest compiled ruleset.

use std::time::Instant;

use std::collections::BTreeMap;

use calico_nft::bytecode::TableOp;
use calico_nft::{ElementOp, PolicyTables, TablePlan, TableShape};

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
/// is no moment without policy); every other apply sends only the difference between
/// `applied` and `target`, as one transaction: element changes alone through
/// [`PolicyDataplane::apply_elements`], changes of chains and rules as one netlink batch of
/// [`calico_nft::diff_plan`]'s operations through [`PolicyDataplane::apply_plan`] (neither
/// runs `nft`, whose start-up loads the whole table), and what has no plan (a new map or base
/// chain) or whose batch fails as `calico_nft::diff` through `nft`. A failed transaction
/// changes nothing in the kernel (batches are atomic), so `applied` stays what it was; the
/// next sync still re-asserts the whole table, in case the failure came from the kernel's
/// state rather than from the change.
pub struct PolicyManager<D: PolicyDataplane> {
    dataplane: D,
    applied: Option<PolicyTables>,
    target: Option<PolicyTables>,
    /// `false`: the kernel's table may differ from `applied`; the next sync is a full replace.
    in_sync: bool,
    resyncs: u64,
    /// The ruleset generation at which the kernel was last known to hold exactly `applied`
    /// (read around our own transaction, or around a clean listing). While the kernel still
    /// reports it, nobody has written anything since and a drift check need not list.
    clean_generation: Option<u32>,
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
            clean_generation: None,
            metrics,
        }
    }

    /// The tables the next [`PolicyManager::sync`] programs (a [`calico_nft::Ruleset`] is
    /// the layout of one table).
    pub fn set_target(&mut self, tables: impl Into<PolicyTables>) {
        self.target = Some(tables.into());
    }

    pub fn target(&self) -> Option<&PolicyTables> {
        self.target.as_ref()
    }

    /// The tables the kernel held after the last successful apply.
    pub fn applied(&self) -> Option<&PolicyTables> {
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
        let (action, work) = match (&self.applied, self.in_sync) {
            (Some(applied), true) => match applied.plan(&target) {
                Ok(plans) if plans.is_empty() => {
                    self.applied = Some(target);
                    return Ok(SyncAction::Nothing);
                }
                Ok(mut plans) => {
                    let elements: Option<Vec<ElementOp>> = match plans.as_slice() {
                        [one] => one
                            .ops
                            .iter()
                            .map(|op| match op {
                                TableOp::Element(e) => Some(e.clone()),
                                _ => None,
                            })
                            .collect(),
                        _ => None,
                    };
                    match (elements, plans.pop()) {
                        // Set membership / map entries of one table only: the dataplane's
                        // element path.
                        (Some(ops), Some(one)) => {
                            (SyncAction::Diff, Work::Elements(one.table, ops))
                        }
                        // Chains and rules too, or several tables: one netlink batch (no nft
                        // cache to load).
                        (_, last) => {
                            plans.extend(last);
                            (SyncAction::Diff, Work::Plan(plans))
                        }
                    }
                }
                Err(why) => {
                    // A change the plan cannot express (a new map, base chain or shard
                    // table): ONE nft transaction carrying the element changes too.
                    tracing::debug!(%why, "policy change goes through nft");
                    self.metrics.plan_fallbacks.inc();
                    (SyncAction::Diff, Work::Script(applied.script(&target)))
                }
            },
            _ => {
                // Which tables exist: a missing one is created without the delete that
                // makes replacing atomic, and only existing stale ones are deleted. Unknown
                // (a listing error): every table is treated as possibly there.
                let existing = self.dataplane.tables().unwrap_or_else(|e| {
                    tracing::debug!(error = %e, "could not list nftables tables before a full replace");
                    None
                });
                (
                    SyncAction::FullReplace,
                    Work::Scripts(target.full_replace_scripts_over(existing.as_ref())),
                )
            }
        };
        let before = self.generation();
        let started = Instant::now();
        let result = match &work {
            Work::Script(script) => self.dataplane.apply(script),
            // One transaction per table, in order; the first failure stops (the tables
            // swapped so far are whole and valid, and the next sync replaces all again).
            Work::Scripts(scripts) => scripts.iter().try_for_each(|s| self.dataplane.apply(s)),
            Work::Elements(table, ops) => {
                self.metrics.element_batches.inc();
                self.dataplane.apply_elements(table, ops)
            }
            Work::Plan(plans) => match self.dataplane.apply_plans(plans) {
                Ok(()) => {
                    self.metrics.plan_batches.inc();
                    Ok(())
                }
                Err(e) => {
                    // The batch was atomic: nothing of it applied. The same change as one nft
                    // transaction still lands (and if the kernel refuses that too, it is
                    // reported like any failed transaction).
                    self.metrics.plan_fallbacks.inc();
                    tracing::warn!(error = %e, "netlink batch of the policy change failed; applying it with nft");
                    match &self.applied {
                        Some(applied) => self.dataplane.apply(&applied.script(&target)),
                        None => Err(e),
                    }
                }
            },
        };
        self.metrics
            .apply_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                // Exactly one commit since `before`: ours (one nft process = one batch), so
                // the kernel holds exactly the target at that generation. Anything else (a
                // foreign commit in between, an unreadable generation) leaves it unknown.
                let after = self.generation();
                self.clean_generation = match (before, after) {
                    (Some(b), Some(a)) if a == b.wrapping_add(1) => Some(a),
                    _ => None,
                };
                self.set_gauges(target.counts());
                self.applied = Some(target);
                self.in_sync = true;
                Ok(action)
            }
            Err(e) => {
                self.metrics.errors.inc();
                self.in_sync = false;
                self.clean_generation = None;
                tracing::warn!(error = %e, ?action, "nft transaction failed; the previous policy table stays in force");
                self.target = Some(target);
                Err(e)
            }
        }
    }

    /// Lists the kernel's table and compares its shape with the applied ruleset's (Felix's
    /// periodic refresh). The listing is skipped when the namespace's ruleset generation
    /// shows no commit since the kernel was known to hold the applied ruleset: listing a
    /// 10k-policy table takes nft seconds, reading the generation microseconds. On a difference (the table flushed, deleted, or edited by someone
    /// else) it counts a resync and re-applies the whole target at once. Returns whether drift
    /// was found. Before the first successful apply there is nothing to compare, and a
    /// pending full replace is simply carried out.
    pub fn check_drift(&mut self) -> Result<bool, DataplaneError> {
        if self.applied.is_none() {
            self.sync()?;
            return Ok(false);
        }
        let before = self.generation();
        if self.in_sync && before.is_some() && before == self.clean_generation {
            // Nobody committed anything in this namespace since the kernel held `applied`.
            return Ok(false);
        }
        let expected = self
            .applied
            .as_ref()
            .map(PolicyTables::shapes)
            .unwrap_or_default();
        let mut listed = BTreeMap::new();
        for table in expected.keys() {
            let shape = self.dataplane.list_table(table).inspect_err(|_| {
                self.metrics.errors.inc();
            })?;
            listed.insert(table.clone(), shape);
        }
        let differs: Vec<&String> = expected
            .iter()
            .filter(|(name, shape)| listed.get(*name) != Some(&Some((*shape).clone())))
            .map(|(name, _)| name)
            .collect();
        let drift = !differs.is_empty();
        if !drift && self.in_sync {
            // The listing is of generation `before` only if nothing was committed meanwhile.
            let after = self.generation();
            self.clean_generation = before.filter(|_| after == before);
        }
        if drift {
            self.resyncs += 1;
            self.metrics.resyncs.inc();
            self.in_sync = false;
            for name in differs {
                tracing::warn!(
                    table = %name,
                    expected = %describe(expected.get(name)),
                    found = %describe(listed.get(name).and_then(Option::as_ref)),
                    "policy table drifted from what was programmed; re-applying it in full"
                );
            }
            if self.target.is_none() {
                self.target = self.applied.clone();
            }
        }
        if !self.in_sync {
            self.sync()?;
        }
        Ok(drift)
    }

    /// The ruleset generation, `None` when the dataplane cannot tell or reading it failed
    /// (then drift checks simply list the table).
    fn generation(&mut self) -> Option<u32> {
        self.dataplane.generation().unwrap_or_else(|e| {
            tracing::debug!(error = %e, "could not read the nftables generation");
            None
        })
    }

    /// Gauges from the ruleset's totals (not its shape: building that copies every chain's
    /// name, a cost that would grow with the table on every one-element change).
    fn set_gauges(&self, counts: calico_nft::RulesetCounts) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics.chains.set(gauge(counts.chains));
        self.metrics.rules.set(gauge(counts.rules));
        self.metrics.sets.set(gauge(counts.sets));
        self.metrics.maps.set(gauge(counts.maps));
    }
}

/// What one sync sends: an nft script, element changes only, or a netlink batch of table
/// operations.
enum Work {
    Script(String),
    Scripts(Vec<String>),
    Elements(String, Vec<ElementOp>),
    Plan(Vec<TablePlan>),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use calico_dataplane_model::{DataplaneModel, Rule, RuleAction};
    use calico_nft::{NftConfig, Ruleset, compile};

    use super::*;

    /// A kernel stand-in: records scripts, fails the next `fail` applies, and lists whatever
    /// shape the test says the kernel holds.
    #[derive(Default)]
    struct Fake {
        scripts: Vec<String>,
        fail: usize,
        listing: Option<TableShape>,
        list_error: bool,
        lists: usize,
        /// The ruleset generation, when the fake reports one; each apply adds `bump` (1, or
        /// more to simulate a foreign commit racing ours).
        generation: Option<u32>,
        bump: u32,
        generation_error: bool,
        /// Netlink batches of table operations applied, and how many of the next fail.
        plans: Vec<Vec<TableOp>>,
        fail_plans: usize,
        /// What `tables` reports (`None`: unknown, the trait's default), or an error.
        tables: Option<BTreeSet<String>>,
        tables_error: bool,
    }

    impl PolicyDataplane for Fake {
        fn apply_plan(&mut self, _table: &str, ops: &[TableOp]) -> Result<(), DataplaneError> {
            if self.fail_plans > 0 {
                self.fail_plans -= 1;
                return Err(DataplaneError::Netlink {
                    what: "add rule to chain pi-x: jump to a missing chain".into(),
                    set: None,
                    element: None,
                    source: std::io::Error::from_raw_os_error(2),
                });
            }
            self.plans.push(ops.to_vec());
            self.generation = self.generation.map(|g| g + self.bump.max(1));
            Ok(())
        }
        fn apply(&mut self, script: &str) -> Result<(), DataplaneError> {
            if self.fail > 0 {
                self.fail -= 1;
                return Err(DataplaneError::Failed {
                    command: "nft -f -".into(),
                    status: "exit status: 1".into(),
                    stderr: "Error: Could not process rule: No such file or directory".into(),
                });
            }
            self.scripts.push(script.to_string());
            self.generation = self.generation.map(|g| g + self.bump.max(1));
            Ok(())
        }
        fn list_table(&mut self, _table: &str) -> Result<Option<TableShape>, DataplaneError> {
            self.lists += 1;
            if self.list_error {
                return Err(DataplaneError::Listing {
                    command: "nft -j list table inet calico".into(),
                    detail: "not JSON".into(),
                });
            }
            Ok(self.listing.clone())
        }
        fn tables(&mut self) -> Result<Option<BTreeSet<String>>, DataplaneError> {
            if self.tables_error {
                return Err(DataplaneError::Listing {
                    command: "nft -j list tables".into(),
                    detail: "not JSON".into(),
                });
            }
            Ok(self.tables.clone())
        }
        fn generation(&mut self) -> Result<Option<u32>, DataplaneError> {
            if self.generation_error {
                return Err(DataplaneError::Listing {
                    command: "netlink NFT_MSG_GETGEN".into(),
                    detail: "no reply".into(),
                });
            }
            Ok(self.generation)
        }
    }

    /// One workload (`cali1`) with an allow-all profile and an IP set holding `members`.
    /// What a full replace of the one-table layout `r` sends.
    fn full(r: &Ruleset) -> String {
        let mut scripts = PolicyTables::from(r.clone()).full_replace_scripts();
        assert_eq!(scripts.len(), 1, "one table: one transaction");
        scripts.remove(0)
    }

    fn ruleset(members: &[&str]) -> Ruleset {
        compile(&model(members), &NftConfig::default()).unwrap()
    }

    fn model(members: &[&str]) -> DataplaneModel {
        calico_nft::synthetic::one_workload(members)
    }

    fn manager() -> PolicyManager<Fake> {
        PolicyManager::new(Fake::default(), NftMetrics::default())
    }

    /// A full replace knows which tables exist: a missing table is created by its definition
    /// alone (no `add table` / `delete table`), and only existing stale tables are deleted;
    /// when the listing fails, every table is replaced and every stale name deleted.
    #[test]
    fn a_full_replace_deletes_only_tables_that_exist() {
        let cfg = NftConfig {
            shards: 4,
            ..NftConfig::default()
        };
        let target = PolicyTables::compile(&model(&["10.0.0.1"]), &cfg).unwrap();
        let shard = target
            .tables()
            .map(|r| r.table().to_string())
            .find(|t| t != "calico")
            .unwrap();
        let stale = if shard == "calico-01" {
            "calico-02"
        } else {
            "calico-01"
        };
        let mut m = manager();
        m.dataplane_mut().tables = Some(["calico".to_string(), stale.to_string()].into());
        m.set_target(target.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::FullReplace);
        let scripts = &m.dataplane().scripts;
        assert_eq!(scripts.len(), 2, "{scripts:?}");
        assert!(
            scripts[0].starts_with(&format!("table inet {shard} {{")),
            "a missing table is just defined:\n{}",
            scripts[0]
        );
        let main = &scripts[1];
        assert!(main.starts_with("add table inet calico\ndelete table inet calico\n"));
        assert!(
            main.contains(&format!("delete table inet {stale}\n")),
            "{main}"
        );
        assert_eq!(main.matches("delete table").count(), 2, "{main}");

        // Unknown tables: the safe form, as without a listing.
        let mut m = manager();
        m.dataplane_mut().tables_error = true;
        m.set_target(target.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::FullReplace);
        assert_eq!(m.dataplane().scripts, target.full_replace_scripts());
        assert!(m.dataplane().scripts[1].contains(&format!("delete table inet {stale}\n")));
    }

    #[test]
    fn first_sync_is_a_full_replace_then_diffs() {
        let (a, b) = (ruleset(&["10.0.0.1"]), ruleset(&["10.0.0.1", "10.0.0.2"]));
        let mut m = manager();
        assert_eq!(m.sync().unwrap(), SyncAction::Nothing, "no target yet");
        assert!(m.dataplane().scripts.is_empty());

        m.set_target(a.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::FullReplace);
        assert_eq!(m.dataplane().scripts, [full(&a)]);
        assert_eq!(m.applied().map(calico_nft::PolicyTables::main), Some(&a));
        assert!(m.target().is_none() && m.in_sync());

        // The same target again: the diff is empty and nothing runs.
        m.set_target(a.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::Nothing);
        assert_eq!(m.dataplane().scripts.len(), 1);

        m.set_target(b.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::Diff);
        let sent = &m.dataplane().scripts[1];
        assert_eq!(sent, &calico_nft::diff(&a, &b));
        assert!(sent.contains("10.0.0.2"), "{sent}");
        assert!(
            sent.len() < full(&b).len() / 2,
            "a one-element change is not a full table:\n{sent}"
        );
        assert_eq!(m.applied().map(calico_nft::PolicyTables::main), Some(&b));
    }

    #[test]
    fn membership_changes_take_the_element_path_and_mixed_changes_one_script() {
        let (a, b) = (ruleset(&["10.0.0.1"]), ruleset(&["10.0.0.2"]));
        let metrics = NftMetrics::default();
        let mut m = PolicyManager::new(Fake::default(), metrics.clone());
        m.set_target(a.clone());
        m.sync().unwrap();
        assert_eq!(
            metrics.element_batches.get(),
            0,
            "a full replace is a script"
        );

        m.set_target(b.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::Diff);
        assert_eq!(metrics.element_batches.get(), 1);
        // The fake keeps the default `apply_elements`: the ops rendered as nft commands.
        assert_eq!(
            m.dataplane().scripts.last(),
            Some(&calico_nft::diff(&a, &b))
        );

        // Membership and a rule change together: one netlink batch holding both.
        let c = ruleset_with_deny(&["10.0.0.3"]);
        let change = calico_nft::diff_ops(&b, &c);
        assert!(!change.elements_only() && !change.elements.is_empty());
        m.set_target(c.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::Diff);
        assert_eq!(metrics.element_batches.get(), 1, "not an element batch");
        assert_eq!(metrics.plan_batches.get(), 1);
        assert_eq!(m.dataplane().scripts.len(), 2, "no nft script");
        let plan = m.dataplane().plans.last().unwrap();
        assert_eq!(plan, &calico_nft::diff_plan(&b, &c).unwrap());
        assert!(plan.iter().any(|op| matches!(op, TableOp::Element(_))));
        assert!(
            plan.iter()
                .any(|op| matches!(op, TableOp::FlushChain { .. }))
        );
        assert_eq!(m.applied().map(calico_nft::PolicyTables::main), Some(&c));
    }

    /// Profile `kns.default` with a deny rule first.
    fn ruleset_with_deny(members: &[&str]) -> Ruleset {
        let mut model_c = model(members);
        if let Some(p) = model_c.profiles.get_mut("kns.default") {
            p.inbound.insert(0, Rule::any(RuleAction::Deny));
        }
        compile(&model_c, &NftConfig::default()).unwrap()
    }

    #[test]
    fn a_failed_plan_batch_falls_back_to_one_nft_script() {
        let (a, b) = (ruleset(&["10.0.0.1"]), ruleset_with_deny(&["10.0.0.2"]));
        let metrics = NftMetrics::default();
        let mut m = PolicyManager::new(Fake::default(), metrics.clone());
        m.set_target(a.clone());
        m.sync().unwrap();
        m.dataplane_mut().fail_plans = 1;
        m.set_target(b.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::Diff);
        assert_eq!(metrics.plan_fallbacks.get(), 1);
        assert_eq!(metrics.plan_batches.get(), 0);
        assert!(m.dataplane().plans.is_empty());
        assert_eq!(
            m.dataplane().scripts.last(),
            Some(&PolicyTables::from(a.clone()).script(&PolicyTables::from(b.clone())))
        );
        assert_eq!(m.applied().map(calico_nft::PolicyTables::main), Some(&b));
        assert!(
            m.in_sync(),
            "the fallback landed: the next change is a diff again"
        );
    }

    #[test]
    fn gauges_follow_the_applied_table() {
        let a = ruleset(&["10.0.0.1"]);
        let metrics = NftMetrics::default();
        let mut m = PolicyManager::new(Fake::default(), metrics.clone());
        m.set_target(a.clone());
        m.sync().unwrap();
        let shape = a.shape();
        assert_eq!(metrics.chains.get(), shape.chains.len() as i64);
        assert_eq!(metrics.rules.get(), shape.rule_count() as i64);
        assert_eq!(metrics.sets.get(), shape.sets.len() as i64);
        assert_eq!(metrics.maps.get(), shape.maps.len() as i64);
        assert!(metrics.rules.get() > 0 && metrics.maps.get() > 0);
        assert_eq!(metrics.errors.get(), 0);
    }

    #[test]
    fn a_failed_apply_keeps_the_previous_state_and_forces_a_full_replace() {
        let (a, b, c) = (
            ruleset(&["10.0.0.1"]),
            ruleset(&["10.0.0.2"]),
            ruleset(&["10.0.0.3"]),
        );
        let metrics = NftMetrics::default();
        let mut m = PolicyManager::new(Fake::default(), metrics.clone());
        m.set_target(a.clone());
        m.sync().unwrap();

        m.set_target(b.clone());
        m.dataplane_mut().fail = 1;
        let err = m.sync().unwrap_err();
        assert_eq!(
            err.nft_stderr(),
            Some("Error: Could not process rule: No such file or directory")
        );
        assert_eq!(metrics.errors.get(), 1);
        assert_eq!(
            m.applied().map(calico_nft::PolicyTables::main),
            Some(&a),
            "the kernel still holds a"
        );
        assert_eq!(
            m.target().map(calico_nft::PolicyTables::main),
            Some(&b),
            "b is still wanted"
        );
        assert!(!m.in_sync());

        // The retry (with a newer target meanwhile) re-asserts the whole table.
        m.set_target(c.clone());
        assert_eq!(m.sync().unwrap(), SyncAction::FullReplace);
        assert_eq!(m.dataplane().scripts.last(), Some(&full(&c)));
        assert_eq!(m.applied().map(calico_nft::PolicyTables::main), Some(&c));
        assert!(m.in_sync());
    }

    #[test]
    fn the_first_full_replace_failing_is_retried_in_full() {
        let a = ruleset(&[]);
        let mut m = manager();
        m.dataplane_mut().fail = 1;
        m.set_target(a.clone());
        assert!(m.sync().is_err());
        assert_eq!(m.applied(), None);
        assert_eq!(m.sync().unwrap(), SyncAction::FullReplace);
        assert_eq!(m.dataplane().scripts, [full(&a)]);
    }

    #[test]
    fn drift_is_detected_counted_and_repaired_in_full() {
        let a = ruleset(&["10.0.0.1", "10.0.0.2"]);
        let metrics = NftMetrics::default();
        let mut m = PolicyManager::new(Fake::default(), metrics.clone());
        m.set_target(a.clone());
        m.sync().unwrap();

        // The kernel holds what we applied: no drift, no write.
        m.dataplane_mut().listing = Some(a.shape());
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().scripts.len(), 1);
        assert_eq!(m.resyncs(), 0);

        // A flushed table: same chains, no rules.
        let mut flushed = a.shape();
        flushed.chains.values_mut().for_each(|n| *n = 0);
        for (drift, label) in [
            (Some(flushed), "flushed"),
            (None, "deleted"),
            (
                {
                    let mut s = a.shape();
                    if let Some(n) = s.sets.values_mut().find(|n| **n == 2) {
                        *n = 1;
                    }
                    Some(s)
                },
                "lost a set element",
            ),
        ] {
            let before = m.resyncs();
            m.dataplane_mut().listing = drift;
            assert!(m.check_drift().unwrap(), "{label}");
            assert_eq!(m.resyncs(), before + 1, "{label}");
            assert_eq!(
                m.dataplane().scripts.last(),
                Some(&full(&a)),
                "{label}: repaired with the whole table"
            );
            assert!(m.in_sync());
        }
        assert_eq!(metrics.resyncs.get(), 3);
        assert_eq!(m.dataplane().scripts.len(), 4);
        assert_eq!(m.applied().map(calico_nft::PolicyTables::main), Some(&a));
    }

    #[test]
    fn a_repair_carries_the_pending_target() {
        let (a, b) = (ruleset(&["10.0.0.1"]), ruleset(&["10.0.0.9"]));
        let mut m = manager();
        m.set_target(a.clone());
        m.sync().unwrap();
        m.set_target(b.clone());
        m.dataplane_mut().listing = None;
        assert!(m.check_drift().unwrap());
        assert_eq!(m.dataplane().scripts.last(), Some(&full(&b)));
        assert_eq!(m.applied().map(calico_nft::PolicyTables::main), Some(&b));
        assert!(m.target().is_none());
    }

    #[test]
    fn without_drift_a_pending_target_waits_for_sync() {
        let (a, b) = (ruleset(&["10.0.0.1"]), ruleset(&["10.0.0.9"]));
        let mut m = manager();
        m.set_target(a.clone());
        m.sync().unwrap();
        m.set_target(b.clone());
        m.dataplane_mut().listing = Some(a.shape());
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().scripts.len(), 1);
        assert_eq!(m.sync().unwrap(), SyncAction::Diff);
    }

    #[test]
    fn listing_errors_are_counted_and_change_nothing() {
        let a = ruleset(&["10.0.0.1"]);
        let metrics = NftMetrics::default();
        let mut m = PolicyManager::new(Fake::default(), metrics.clone());
        m.set_target(a.clone());
        m.sync().unwrap();
        m.dataplane_mut().list_error = true;
        let err = m.check_drift().unwrap_err();
        assert!(matches!(err, DataplaneError::Listing { .. }), "{err}");
        assert_eq!(metrics.errors.get(), 1);
        assert_eq!(m.resyncs(), 0);
        assert!(m.in_sync(), "a failed listing is not drift");
        assert_eq!(m.dataplane().scripts.len(), 1);
    }

    #[test]
    fn check_drift_before_anything_was_applied() {
        let mut m = manager();
        assert!(!m.check_drift().unwrap(), "nothing to compare");
        assert_eq!(m.dataplane().lists, 0);
        // A target that could not be applied yet is applied by the next check.
        let a = ruleset(&[]);
        m.dataplane_mut().fail = 1;
        m.set_target(a.clone());
        assert!(m.sync().is_err());
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().scripts, [full(&a)]);
        assert_eq!(m.resyncs(), 0);
    }

    fn with_generation(g: u32) -> PolicyManager<Fake> {
        PolicyManager::new(
            Fake {
                generation: Some(g),
                ..Fake::default()
            },
            NftMetrics::default(),
        )
    }

    #[test]
    fn an_unchanged_generation_skips_the_listing() {
        let a = ruleset(&["10.0.0.1"]);
        let mut m = with_generation(10);
        m.set_target(a.clone());
        m.sync().unwrap();
        assert_eq!(m.dataplane().generation, Some(11));
        // The fake would list "no table" (drift), but nobody committed since our apply.
        assert!(!m.check_drift().unwrap());
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().lists, 0);

        // A foreign commit elsewhere (another table): listed once, clean, then skipped again.
        m.dataplane_mut().generation = Some(12);
        m.dataplane_mut().listing = Some(a.shape());
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().lists, 1);
        m.dataplane_mut().listing = None;
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().lists, 1);

        // A foreign commit that hit our table: listed, repaired, and clean at the new generation.
        m.dataplane_mut().generation = Some(13);
        assert!(m.check_drift().unwrap());
        assert_eq!((m.dataplane().lists, m.resyncs()), (2, 1));
        assert_eq!(m.dataplane().generation, Some(14));
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().lists, 2);

        // A diff keeps the knowledge: one commit, ours.
        m.set_target(ruleset(&["10.0.0.2"]));
        assert_eq!(m.sync().unwrap(), SyncAction::Diff);
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().lists, 2);
    }

    #[test]
    fn a_commit_racing_ours_forces_a_listing() {
        let a = ruleset(&["10.0.0.1"]);
        let mut m = with_generation(1);
        m.dataplane_mut().bump = 2;
        m.set_target(a.clone());
        m.sync().unwrap();
        m.dataplane_mut().listing = None;
        assert!(m.check_drift().unwrap(), "listed, and the table is missing");
        assert_eq!(m.dataplane().lists, 1);
    }

    #[test]
    fn failures_forget_the_clean_generation() {
        let (a, b) = (ruleset(&["10.0.0.1"]), ruleset(&["10.0.0.2"]));
        let mut m = with_generation(1);
        m.set_target(a.clone());
        m.sync().unwrap();
        m.dataplane_mut().fail = 1;
        m.set_target(b.clone());
        assert!(m.sync().is_err());
        // Not in sync: the check re-applies in full without trusting the generation.
        m.dataplane_mut().listing = Some(a.shape());
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().scripts.last(), Some(&full(&b)));
        assert_eq!(m.dataplane().lists, 1);
    }

    #[test]
    fn an_unreadable_generation_means_listing() {
        let a = ruleset(&["10.0.0.1"]);
        let mut m = with_generation(1);
        m.dataplane_mut().generation_error = true;
        m.set_target(a.clone());
        m.sync().unwrap();
        m.dataplane_mut().listing = Some(a.shape());
        assert!(!m.check_drift().unwrap());
        assert!(!m.check_drift().unwrap());
        assert_eq!(m.dataplane().lists, 2);
    }
}
