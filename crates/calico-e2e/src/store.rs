//! Read-only views of a node's datastore for assertions (the embedded store is safe to open
//! from the test process while the agent and plugins use it).

use std::path::Path;

use calico_datastore::{Datastore, EmbeddedDatastore};

use crate::HarnessError;

/// Key prefix of every v3 WorkloadEndpoint.
pub const WEP_PREFIX: &str = "/calico/resources/v3/projectcalico.org/workloadendpoints/";
/// Key prefix of every IPAM handle.
pub const HANDLE_PREFIX: &str = "/calico/ipam/v2/handle/";

/// Every key and JSON value under `prefix`.
pub fn list(
    store_path: &Path,
    prefix: &str,
) -> Result<Vec<(String, serde_json::Value)>, HarnessError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HarnessError::Io("starting a runtime".into(), e))?;
    rt.block_on(async {
        let store = EmbeddedDatastore::open(store_path)
            .map_err(|e| HarnessError::Failed(format!("opening {}: {e}", store_path.display())))?;
        let resp = store
            .list(prefix)
            .await
            .map_err(|e| HarnessError::Failed(format!("listing {prefix}: {e}")))?;
        resp.kvs
            .into_iter()
            .map(|kv| {
                let v = serde_json::from_slice(&kv.value)
                    .map_err(|e| HarnessError::Failed(format!("{} is not JSON: {e}", kv.key)))?;
                Ok((kv.key, v))
            })
            .collect()
    })
}
