//! The policy dataplane's I/O shell (issue 6): it programs the nftables ruleset that
//! `calico-nft` compiles from the calculation graph's `DataplaneModel`, and keeps the kernel's
//! table equal to it.
//!
//! Layout: [`PolicyDataplane`] is what the manager needs from the kernel (apply one nft
//! script, list the table's shape, read the ruleset generation); [`NftDriver`] is that trait
//! on the real `nft` binary, one process per script, so one script is one kernel transaction
//! and applies atomically (as Felix's `felix/nftables/table.go` does through knftables);
//! [`PolicyManager`] decides between a full replace and a minimal diff and repairs drift like
//! Felix's periodic nftables refresh (`IptablesRefreshInterval`, 180 s by default);
//! [`NftMetrics`] are its Prometheus series.
//!
//! Element-only changes (IP-set membership, interface dispatch map entries: the most
//! frequent changes by far) skip `nft`: [`PolicyDataplane::apply_elements`] on [`NftDriver`]
//! sends them as one nfnetlink batch of set-element messages, which the kernel commits
//! atomically like a script, without `nft` first loading its cache of the whole table
//! (~100 ms at 10k policies). Chain, rule and set changes go the same way when the manager
//! has them as a plan (`calico_nft::diff_plan`): [`PolicyDataplane::apply_plan`] on
//! [`NftDriver`] encodes the plan as the messages nft itself would send (`netlink_table`), in
//! one batch. Whatever has no netlink path stays one `nft` transaction that carries its
//! element changes too (`calico_nft::diff_ops`).
//!
//! This module never builds rules itself (that is `calico-nft`'s job). `nft` runs in another
//! network namespace through `nsenter --net=<path> nft ...` (the workspace forbids `unsafe`,
//! so no `setns` between fork and exec); what it sends itself over netlink (the ruleset
//! generation, element and plan batches) goes through one kept socket opened on
//! `calico_netlink::NetNs::run`'s helper thread, so the caller's thread never changes
//! namespace.

mod driver;
mod generation;
mod manager;
mod metrics;
mod netlink_elements;
mod netlink_table;

pub use driver::NftDriver;
pub use manager::{PolicyManager, SyncAction};
pub use metrics::NftMetrics;

use std::collections::BTreeSet;

use calico_nft::bytecode::TableOp;
use calico_nft::{ElementOp, TablePlan, TableShape};

/// A failed nftables operation, with what the kernel or `nft` said.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The program could not be started at all (missing binary, no permission).
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// Writing the script to `nft` or reading its output failed.
    #[error("I/O with `{command}`: {source}")]
    Io {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// `nft` (or `nsenter`) exited with an error; `stderr` is its message, trimmed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    /// `nft -j list ...` printed something that is not the listing we expect.
    #[error("unreadable listing from `{command}`: {detail}")]
    Listing { command: String, detail: String },
    /// The kernel refused an nf_tables netlink batch (elements, or a table plan) so none of
    /// it was applied, or the batch was malformed and not sent (`source` of kind
    /// `InvalidInput`). `what` names the operation (set and element, or chain and rule, and
    /// the expression the kernel pointed at); `source` carries the kernel's errno.
    #[error("netlink nf_tables: {what}: {source}")]
    Netlink {
        what: String,
        set: Option<String>,
        element: Option<String>,
        #[source]
        source: std::io::Error,
    },
    /// This change cannot be sent over netlink (the dataplane has no netlink path, the batch
    /// is larger than one netlink send, or the plan holds something the encoder does not
    /// write); nothing was sent, and the same change as an nft script is the way to apply it.
    #[error("no netlink path: {what}")]
    NoNetlinkPath { what: String },
}

impl DataplaneError {
    /// `nft`'s own error message when the command ran and failed.
    pub fn nft_stderr(&self) -> Option<&str> {
        match self {
            DataplaneError::Failed { stderr, .. } => Some(stderr),
            _ => None,
        }
    }
}

/// What the policy manager needs from the kernel. Calls are synchronous (one `nft` process
/// each); the agent runs them on a blocking thread.
pub trait PolicyDataplane: Send + 'static {
    /// Runs one nft script as one transaction: either all of it takes effect or none.
    fn apply(&mut self, script: &str) -> Result<(), DataplaneError>;
    /// The shape (chains with rule counts, sets and maps with element counts) of table
    /// `inet <table>`; `None` when the table does not exist.
    fn list_table(&mut self, table: &str) -> Result<Option<TableShape>, DataplaneError>;
    /// The names of the namespace's `inet` tables, so that a full replace creates a missing
    /// table without first deleting it and deletes only stale tables that exist
    /// ([`calico_nft::PolicyTables::full_replace_scripts_over`]). `None` (the default):
    /// unknown, and a full replace assumes every table may exist.
    fn tables(&mut self) -> Result<Option<BTreeSet<String>>, DataplaneError> {
        Ok(None)
    }
    /// The namespace's nftables ruleset generation, which the kernel bumps on every committed
    /// transaction of anyone (`NFT_MSG_GETGEN`). `None` (the default): this dataplane cannot
    /// tell, and every drift check lists the table.
    fn generation(&mut self) -> Result<Option<u32>, DataplaneError> {
        Ok(None)
    }
    /// Applies element changes of existing sets and maps of `table` (deletions and
    /// additions, in order) as one transaction. The default renders them as an nft script
    /// through [`PolicyDataplane::apply`]; [`NftDriver`] sends them over netlink instead.
    fn apply_elements(&mut self, table: &str, ops: &[ElementOp]) -> Result<(), DataplaneError> {
        if ops.is_empty() {
            return Ok(());
        }
        self.apply(&calico_nft::render_elements(table, ops))
    }
    /// Applies a change of `table` (chains, rules, sets, elements; `calico_nft::diff_plan`) as
    /// one transaction over nf_tables netlink, without `nft` loading its cache of the whole
    /// table first. The default has no netlink path and refuses with
    /// [`DataplaneError::NoNetlinkPath`] (sending nothing): the caller applies the same change
    /// as a script then. [`NftDriver`] sends it as one nfnetlink batch.
    fn apply_plan(&mut self, table: &str, ops: &[TableOp]) -> Result<(), DataplaneError> {
        let _ = ops;
        Err(DataplaneError::NoNetlinkPath {
            what: format!("this dataplane writes no netlink batches (table inet {table})"),
        })
    }
    /// [`PolicyDataplane::apply_plan`] for changes of several tables, as one transaction.
    /// The default sends a one-table change through `apply_plan` and refuses more with
    /// [`DataplaneError::NoNetlinkPath`] (sending nothing); [`NftDriver`] sends one batch.
    fn apply_plans(&mut self, plans: &[TablePlan]) -> Result<(), DataplaneError> {
        match plans {
            [] => Ok(()),
            [one] => self.apply_plan(&one.table, &one.ops),
            _ => Err(DataplaneError::NoNetlinkPath {
                what: format!(
                    "this dataplane writes no batches over several tables ({})",
                    plans.len()
                ),
            }),
        }
    }
}

impl PolicyDataplane for Box<dyn PolicyDataplane> {
    fn apply(&mut self, script: &str) -> Result<(), DataplaneError> {
        (**self).apply(script)
    }
    fn list_table(&mut self, table: &str) -> Result<Option<TableShape>, DataplaneError> {
        (**self).list_table(table)
    }
    fn tables(&mut self) -> Result<Option<BTreeSet<String>>, DataplaneError> {
        (**self).tables()
    }
    fn generation(&mut self) -> Result<Option<u32>, DataplaneError> {
        (**self).generation()
    }
    fn apply_elements(&mut self, table: &str, ops: &[ElementOp]) -> Result<(), DataplaneError> {
        (**self).apply_elements(table, ops)
    }
    fn apply_plan(&mut self, table: &str, ops: &[TableOp]) -> Result<(), DataplaneError> {
        (**self).apply_plan(table, ops)
    }
    fn apply_plans(&mut self, plans: &[TablePlan]) -> Result<(), DataplaneError> {
        (**self).apply_plans(plans)
    }
}
