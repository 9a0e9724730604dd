//! Where IPAM gets the v3 resources it depends on: IPPools, IPReservations and Node labels.
//! [`DatastoreResources`] reads them straight from their etcd keys
//! (`/calico/resources/v3/projectcalico.org/<plural>/<name>`, calico-features.md §11);
//! [`StaticResources`] serves fixed values (tests, callers with a cache of their own).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use calico_api::CalicoResource;
use calico_api::ippool::IPPool;
use calico_api::ipreservation::IPReservation;
use calico_api::node::Node;
use calico_datastore::Datastore;

use crate::error::IpamError;
use crate::pools::Pool;
use crate::reserve::Reservations;

const V3: &str = "/calico/resources/v3/projectcalico.org/";

/// Decodes a stored v3 resource (its JSON carries `apiVersion` and `kind`, which the typed
/// structs don't hold).
fn decode_v3<T: CalicoResource>(key: &str, value: &[u8]) -> Result<T, IpamError> {
    let bad = |reason: String| IpamError::Decode {
        key: key.to_string(),
        reason,
    };
    let mut v: serde_json::Value = serde_json::from_slice(value).map_err(|e| bad(e.to_string()))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
    }
    calico_api::resource::decode_kind(v).map_err(|e| bad(e.to_string()))
}

/// Read access to the resources IPAM needs.
#[async_trait]
pub trait ResourceSource: Send + Sync {
    /// Every pool (enabled or not), with read-time defaults applied.
    async fn pools(&self) -> Result<Vec<Pool>, IpamError>;
    /// The union of every IPReservation.
    async fn reservations(&self) -> Result<Reservations, IpamError>;
    /// The labels of node `name`, or `None` if there is no such node.
    async fn node_labels(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, IpamError>;
}

/// Reads resources from the datastore on every call.
pub struct DatastoreResources {
    store: Arc<dyn Datastore>,
}

impl DatastoreResources {
    pub fn new(store: Arc<dyn Datastore>) -> Self {
        DatastoreResources { store }
    }
}

#[async_trait]
impl ResourceSource for DatastoreResources {
    async fn pools(&self) -> Result<Vec<Pool>, IpamError> {
        let resp = self.store.list(&format!("{V3}ippools/")).await?;
        let mut out = Vec::new();
        for kv in resp.kvs {
            let mut p: IPPool = decode_v3(&kv.key, &kv.value)?;
            p.apply_defaults();
            match Pool::from_resource(&p) {
                Some(pool) => out.push(pool),
                None => {
                    tracing::warn!(key = %kv.key, "skipping IP pool with unusable CIDR or block size")
                }
            }
        }
        Ok(out)
    }

    async fn reservations(&self) -> Result<Reservations, IpamError> {
        let resp = self.store.list(&format!("{V3}ipreservations/")).await?;
        let mut rs = Vec::new();
        for kv in resp.kvs {
            rs.push(decode_v3::<IPReservation>(&kv.key, &kv.value)?);
        }
        Ok(Reservations::from_reservations(rs.iter()))
    }

    async fn node_labels(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, IpamError> {
        let key = format!("{V3}nodes/{name}");
        match self.store.get(&key).await? {
            Some(kv) => {
                let n: Node = decode_v3(&kv.key, &kv.value)?;
                Ok(Some(n.metadata.labels))
            }
            None => Ok(None),
        }
    }
}

/// Fixed resources, changeable at run time.
#[derive(Default)]
pub struct StaticResources {
    inner: RwLock<StaticInner>,
}

#[derive(Default, Clone)]
struct StaticInner {
    pools: Vec<Pool>,
    reservations: Reservations,
    nodes: BTreeMap<String, BTreeMap<String, String>>,
}

impl StaticResources {
    pub fn new() -> Self {
        StaticResources::default()
    }
    pub fn with_pool(self, p: Pool) -> Self {
        self.set(|i| i.pools.push(p));
        self
    }
    pub fn with_node(self, name: &str, labels: BTreeMap<String, String>) -> Self {
        self.set(|i| {
            i.nodes.insert(name.to_string(), labels);
        });
        self
    }
    pub fn set_pools(&self, pools: Vec<Pool>) {
        self.set(|i| i.pools = pools);
    }
    pub fn set_reservations(&self, r: Reservations) {
        self.set(|i| i.reservations = r);
    }
    pub fn add_node(&self, name: &str, labels: BTreeMap<String, String>) {
        self.set(|i| {
            i.nodes.insert(name.to_string(), labels);
        });
    }
    fn set(&self, f: impl FnOnce(&mut StaticInner)) {
        let mut g = self.inner.write().unwrap_or_else(|e| e.into_inner());
        f(&mut g);
    }
    fn get(&self) -> StaticInner {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl ResourceSource for StaticResources {
    async fn pools(&self) -> Result<Vec<Pool>, IpamError> {
        Ok(self.get().pools)
    }
    async fn reservations(&self) -> Result<Reservations, IpamError> {
        Ok(self.get().reservations)
    }
    async fn node_labels(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, IpamError> {
        Ok(self.get().nodes.get(name).cloned())
    }
}
