//! List-then-watch of the two prefixes Felix's routing needs (Felix's syncer does the same over
//! the v1 model): WorkloadEndpoints and IPAM blocks. Each prefix is listed at one revision and
//! watched from the next, so no change falls between the list and the watch.

use calico_datastore::{
    Datastore, DatastoreError, EventKind, KeyValue, WatchEvent, WatchRequest, WatchStream,
};
use futures::FutureExt;

use crate::FelixError;
use crate::model::{
    BLOCK_PREFIX, EndpointRecord, LocalState, WEP_PREFIX, decode_block, decode_endpoint,
};

/// The two watches of one session.
pub(crate) struct Watches {
    endpoints: WatchStream,
    blocks: WatchStream,
}

/// Lists both prefixes into a fresh state and starts watching after what was listed.
pub(crate) async fn snapshot(
    store: &dyn Datastore,
    node: &str,
) -> Result<(LocalState, Watches), DatastoreError> {
    let mut state = LocalState::default();
    let eps = store.list(WEP_PREFIX).await?;
    for kv in &eps.kvs {
        put_endpoint(&mut state, kv, node, true);
    }
    let blocks = store.list(BLOCK_PREFIX).await?;
    for kv in &blocks.kvs {
        put_block(&mut state, kv, node);
    }
    let endpoints = store
        .watch(WatchRequest::prefix(WEP_PREFIX, eps.revision + 1))
        .await?;
    let blocks = store
        .watch(WatchRequest::prefix(BLOCK_PREFIX, blocks.revision + 1))
        .await?;
    Ok((state, Watches { endpoints, blocks }))
}

impl Watches {
    /// Waits for the next batch and applies it. `Ok(Some(reason))` = the session must resync.
    pub(crate) async fn next(
        &mut self,
        node: &str,
        state: &mut LocalState,
    ) -> Result<Option<String>, FelixError> {
        tokio::select! {
            batch = self.endpoints.next() => Ok(apply(batch, node, state, true)),
            batch = self.blocks.next() => Ok(apply(batch, node, state, false)),
        }
    }

    /// Like [`Watches::next`] but only for batches already queued: `None` when there are none.
    pub(crate) fn try_next(
        &mut self,
        node: &str,
        state: &mut LocalState,
    ) -> Result<Option<Option<String>>, FelixError> {
        if let Some(batch) = self.endpoints.next().now_or_never() {
            return Ok(Some(apply(batch, node, state, true)));
        }
        if let Some(batch) = self.blocks.next().now_or_never() {
            return Ok(Some(apply(batch, node, state, false)));
        }
        Ok(None)
    }
}

fn apply(
    batch: Option<Result<Vec<WatchEvent>, DatastoreError>>,
    node: &str,
    state: &mut LocalState,
    endpoints: bool,
) -> Option<String> {
    let what = if endpoints {
        "workload endpoint"
    } else {
        "IPAM block"
    };
    match batch {
        None => Some(format!("{what} watch ended")),
        Some(Err(e)) => Some(format!("{what} watch failed: {e}")),
        Some(Ok(events)) => {
            for ev in events {
                match (ev.kind, endpoints) {
                    (EventKind::Put, true) => put_endpoint(state, &ev.kv, node, ev.kv.version == 1),
                    (EventKind::Put, false) => put_block(state, &ev.kv, node),
                    (EventKind::Delete, true) => {
                        state.cluster_endpoints = state.cluster_endpoints.saturating_sub(1);
                        state.endpoints.remove(&ev.kv.key);
                    }
                    (EventKind::Delete, false) => {
                        state.blocks.remove(&ev.kv.key);
                    }
                }
            }
            None
        }
    }
}

/// `created`: the key did not exist before (counts towards the cluster total).
fn put_endpoint(state: &mut LocalState, kv: &KeyValue, node: &str, created: bool) {
    if created {
        state.cluster_endpoints += 1;
    }
    match decode_endpoint(&kv.key, &kv.value, node) {
        Ok(EndpointRecord::Local(ep)) => {
            state.endpoints.insert(kv.key.clone(), ep);
        }
        Ok(EndpointRecord::Remote) => {
            // It may have moved off this node.
            state.endpoints.remove(&kv.key);
        }
        Err(e) => {
            tracing::warn!(error = %e, "skipping workload endpoint");
            state.endpoints.remove(&kv.key);
        }
    }
}

fn put_block(state: &mut LocalState, kv: &KeyValue, node: &str) {
    match decode_block(&kv.key, &kv.value, node) {
        Ok(Some(cidr)) => {
            state.blocks.insert(kv.key.clone(), cidr);
        }
        Ok(None) => {
            state.blocks.remove(&kv.key);
        }
        Err(e) => {
            tracing::warn!(error = %e, "skipping IPAM block");
            state.blocks.remove(&kv.key);
        }
    }
}
