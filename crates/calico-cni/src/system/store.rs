//! The datastore side of both plugins over `calico_client` (the embedded store or etcd, as
//! the netconf's datastore fields say). The connection is opened on first use, on a
//! current-thread tokio runtime, so VERSION and STATUS never touch the datastore.

use std::cell::OnceCell;
use std::net::IpAddr;

use calico_api::clusterinfo::ClusterInformation;
use calico_api::ippool::IPPool;
use calico_api::profile::Profile;
use calico_api::workloadendpoint::WorkloadEndpoint;
use calico_api::{CalicoResource, Resource};
use calico_client::config::ApiConfig;
use calico_client::{Client, ClientError};
use ipnet::IpNet;

use crate::plugin::{Allocation, AllocationSource, EndpointStore, PoolSource, StoreError};
use crate::spec::CniError;

/// A lazily connected client.
pub struct ClientStore {
    api: ApiConfig,
    rt: tokio::runtime::Runtime,
    client: OnceCell<Client>,
}

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(e.to_string())
}

fn map_write(e: ClientError) -> StoreError {
    if e.is_conflict() {
        StoreError::Conflict(e.to_string())
    } else {
        StoreError::Other(e.to_string())
    }
}

impl ClientStore {
    pub fn new(api: ApiConfig) -> Result<ClientStore, CniError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CniError::internal(format!("cannot start the async runtime: {e}")))?;
        Ok(ClientStore {
            api,
            rt,
            client: OnceCell::new(),
        })
    }

    fn client(&self) -> Result<&Client, StoreError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let ds = self
            .rt
            .block_on(self.api.connect())
            .map_err(|e| other(format!("error connecting to the datastore: {e}")))?;
        Ok(self.client.get_or_init(|| Client::new(ds)))
    }

    fn get<T: CalicoResource>(&self, ns: &str, name: &str) -> Result<Option<T>, StoreError> {
        let c = self.client()?;
        match self.rt.block_on(c.get_as::<T>(ns, name)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_does_not_exist() => Ok(None),
            Err(e) => Err(other(e)),
        }
    }
}

impl EndpointStore for ClientStore {
    fn datastore_ready(&self) -> Result<bool, StoreError> {
        Ok(self
            .get::<ClusterInformation>("", "default")?
            .and_then(|ci| ci.spec.datastore_ready)
            .unwrap_or(false))
    }

    fn list_endpoints(
        &self,
        namespace: Option<&str>,
        prefix: &str,
    ) -> Result<Vec<WorkloadEndpoint>, StoreError> {
        let c = self.client()?;
        let (items, _) = self
            .rt
            .block_on(c.list_as::<WorkloadEndpoint>(namespace))
            .map_err(other)?;
        Ok(items
            .into_iter()
            .filter(|w| w.metadata.name.starts_with(prefix))
            .collect())
    }

    fn get_endpoint(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<WorkloadEndpoint>, StoreError> {
        self.get::<WorkloadEndpoint>(namespace, name)
    }

    fn write_endpoint(&self, wep: &WorkloadEndpoint) -> Result<WorkloadEndpoint, StoreError> {
        let c = self.client()?;
        let res = Resource::from(wep.clone());
        let stored = if wep.metadata.resource_version.is_empty() {
            self.rt.block_on(c.create(res))
        } else {
            self.rt.block_on(c.update(res))
        }
        .map_err(map_write)?;
        calico_client::client::into_kind::<WorkloadEndpoint>(stored).map_err(other)
    }

    fn delete_endpoint(
        &self,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<bool, StoreError> {
        let c = self.client()?;
        match self.rt.block_on(c.delete(
            WorkloadEndpoint::KIND,
            namespace,
            name,
            Some(resource_version),
        )) {
            Ok(_) => Ok(true),
            Err(e) if e.is_does_not_exist() => Ok(false),
            Err(e) => Err(map_write(e)),
        }
    }

    fn ensure_profile(&self, profile: &Profile) -> Result<(), StoreError> {
        if self.get::<Profile>("", &profile.metadata.name)?.is_some() {
            return Ok(());
        }
        let c = self.client()?;
        match self.rt.block_on(c.create(Resource::from(profile.clone()))) {
            Ok(_) => Ok(()),
            // Another plugin instance created it first.
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(other(e)),
        }
    }
}

impl PoolSource for ClientStore {
    fn pool_cidr(&self, name: &str) -> Result<Option<IpNet>, CniError> {
        let pool = self
            .get::<IPPool>("", name)
            .map_err(|e| CniError::internal(format!("error reading IP pool {name:?}: {e}")))?;
        match pool {
            None => Ok(None),
            Some(p) => p
                .spec
                .cidr
                .parse::<IpNet>()
                .map(|n| Some(n.trunc()))
                .map_err(|_| {
                    CniError::internal(format!(
                        "failed to parse IP pool cidr {:?} of pool {name:?}",
                        p.spec.cidr
                    ))
                }),
        }
    }
}

impl AllocationSource for ClientStore {
    /// Every live allocation in every IPAM block (both families).
    fn allocations(&self) -> Result<Vec<Allocation>, CniError> {
        let c = self
            .client()
            .map_err(|e| CniError::internal(e.to_string()))?;
        let mut out = Vec::new();
        for version in [4u8, 6] {
            let resp = self
                .rt
                .block_on(
                    c.datastore()
                        .list(&calico_ipam::model::block_prefix(version)),
                )
                .map_err(|e| CniError::internal(format!("error listing IPAM blocks: {e}")))?;
            for kv in resp.kvs {
                let block: calico_ipam::AllocationBlock =
                    calico_ipam::model::decode(&kv.key, &kv.value).map_err(|e| {
                        CniError::internal(format!("error decoding IPAM block {}: {e}", kv.key))
                    })?;
                out.extend(block_allocations(&block));
            }
        }
        Ok(out)
    }
}

/// The live allocations of one block (released addresses cooling down are not live).
pub fn block_allocations(block: &calico_ipam::AllocationBlock) -> Vec<Allocation> {
    block
        .allocations
        .iter()
        .enumerate()
        .filter_map(|(ord, idx)| {
            let attr = block.attributes.get((*idx)?)?;
            if attr.released_at.is_some() {
                return None;
            }
            let ip: IpAddr = block.ip_at(ord);
            Some(Allocation {
                ip,
                handle_id: attr
                    .handle_id
                    .as_deref()
                    .map(|h| calico_ipam::block::sanitize_handle(h).to_string()),
                attrs: attr.active_owner_attrs.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_of_a_stored_block() {
        // A block as Calico stores it: ordinal 1 held by a handle, ordinal 2 cooling down.
        let json = serde_json::json!({
            "cidr": "10.244.220.64/26",
            "affinity": "host:node1",
            "allocations": [null, 0, 1],
            "unallocated": [],
            "attributes": [
                {"handle_id": "net1.c1\r\nx", "secondary": {"node": "node1", "namespace": "prod", "pod": "db-0"}},
                {"handle_id": "net1.c2", "secondary": {"node": "node1"}, "releasedAt": "2026-11-22T17:00:00Z"}
            ],
            "sequenceNumber": 3,
            "sequenceNumberForAllocation": {"1": 2, "2": 3},
            "deleted": false
        });
        let bytes = serde_json::to_vec(&json).unwrap();
        let block: calico_ipam::AllocationBlock = calico_ipam::model::decode(
            "/calico/ipam/v2/assignment/ipv4/block/10.244.220.64-26",
            &bytes,
        )
        .unwrap();
        let a = block_allocations(&block);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].ip, "10.244.220.65".parse::<IpAddr>().unwrap());
        assert_eq!(a[0].handle_id.as_deref(), Some("net1.c1"));
        assert_eq!(a[0].attrs["pod"], "db-0");
    }
}
