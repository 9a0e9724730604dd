//! Shared set-up for the datastore-backed tests: stores, resources written as Calico stores
//! them, and a consistency checker over everything under `/calico/ipam/v2/`.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use calico_datastore::{Datastore, EmbeddedDatastore, KeyValue, Txn, TxnOp};
use calico_ipam::model::{self, AffinityOwner, AllocationBlock, BlockAffinity, IpamHandle};
use calico_ipam::{AssignArgs, AutoAssignArgs, DatastoreResources, IpamClient};
use ipnet::IpNet;

/// Declares the scenario tests of one file: each `async fn name(store: Arc<dyn Datastore>)`
/// runs as its own test on a fresh embedded store (module `embedded`), and all of them run
/// again in ONE test named `$etcd` on a real etcd (starting one takes a while), wiped between
/// scenarios; that test returns early with a note when etcd is not installed. `$label` names
/// each scenario in the etcd test's progress output.
#[allow(unused_macros)] // not every test binary that includes `common` declares scenarios
macro_rules! scenarios {
    ($etcd:ident, $label:literal; $($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = crate::common::embedded();
                    super::$name(store).await;
                }
            )*
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $etcd() {
            let Some(etcd) = ::calico_datastore::testing::EtcdServer::start_or_skip() else {
                return;
            };
            let store: ::std::sync::Arc<dyn ::calico_datastore::Datastore> =
                ::std::sync::Arc::new(
                    ::calico_datastore::etcd::EtcdDatastore::connect(etcd.config())
                        .await
                        .unwrap(),
                );
            $(
                crate::common::wipe(store.as_ref()).await;
                eprintln!(concat!("etcd ", $label, " {}"), stringify!($name));
                $name(store.clone()).await;
            )*
        }
    };
}

pub fn embedded() -> (Arc<dyn Datastore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedDatastore::open(dir.path().join("store.db")).unwrap();
    (Arc::new(store), dir)
}

/// Removes every Calico key (between scenarios sharing one etcd).
pub async fn wipe(store: &dyn Datastore) {
    store
        .txn(Txn {
            compare: vec![],
            success: vec![TxnOp::Delete {
                key: "/calico/".into(),
                prefix: true,
                prev_kv: false,
            }],
            failure: vec![],
        })
        .await
        .unwrap();
}

pub async fn put_pool(store: &dyn Datastore, name: &str, spec: serde_json::Value) {
    let v = serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPPool",
        "metadata": {"name": name},
        "spec": spec,
    });
    store
        .put(
            &format!("/calico/resources/v3/projectcalico.org/ippools/{name}"),
            serde_json::to_vec(&v).unwrap(),
            None,
        )
        .await
        .unwrap();
}

pub async fn put_node(store: &dyn Datastore, name: &str, labels: &[(&str, &str)]) {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let v = serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
    });
    store
        .put(
            &format!("/calico/resources/v3/projectcalico.org/nodes/{name}"),
            serde_json::to_vec(&v).unwrap(),
            None,
        )
        .await
        .unwrap();
}

pub async fn put_reservation(store: &dyn Datastore, name: &str, cidrs: &[&str]) {
    let v = serde_json::json!({
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPReservation",
        "metadata": {"name": name},
        "spec": {"reservedCIDRs": cidrs},
    });
    store
        .put(
            &format!("/calico/resources/v3/projectcalico.org/ipreservations/{name}"),
            serde_json::to_vec(&v).unwrap(),
            None,
        )
        .await
        .unwrap();
}

pub fn client(store: &Arc<dyn Datastore>) -> IpamClient {
    IpamClient::new(
        store.clone(),
        Arc::new(DatastoreResources::new(store.clone())),
    )
}

pub async fn block(store: &dyn Datastore, cidr: &str) -> Option<AllocationBlock> {
    let net: IpNet = cidr.parse().unwrap();
    let kv = store.get(&model::block_key(&net)).await.unwrap()?;
    Some(model::decode(&kv.key, &kv.value).unwrap())
}

pub async fn handle(store: &dyn Datastore, id: &str) -> Option<IpamHandle> {
    let kv = store.get(&model::handle_key(id)).await.unwrap()?;
    Some(model::decode(&kv.key, &kv.value).unwrap())
}

/// Checks the IPAM records agree with each other: every handle count equals the live
/// allocations of that handle in that block (so no handle leaks and no allocation without its
/// handle), no empty handle is stored, every confirmed affinity has its block affine to the
/// same owner, and every block's structure is valid. Returns the live allocations per handle.
pub async fn check_consistency(store: &dyn Datastore) -> BTreeMap<String, u64> {
    check_consistency_ignoring(store, "").await
}

/// [`check_consistency`], not expecting a handle record for allocations of `ignored_handle`
/// (Calico's Windows-reserved addresses are pre-allocated in the block without one).
pub async fn check_consistency_ignoring(
    store: &dyn Datastore,
    ignored_handle: &str,
) -> BTreeMap<String, u64> {
    // One read of everything IPAM stores, so the check sees a single revision: three separate
    // lists could interleave with a concurrent claim (block listed before it, affinity after)
    // and report a torn view that never existed.
    let snapshot = store.list("/calico/ipam/v2/").await.unwrap();
    let under = |prefix: &str| -> Vec<KeyValue> {
        snapshot
            .kvs
            .iter()
            .filter(|kv| kv.key.starts_with(prefix))
            .cloned()
            .collect()
    };
    let blocks = under("/calico/ipam/v2/assignment/");
    let mut from_blocks: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut block_owner: BTreeMap<IpNet, Option<String>> = BTreeMap::new();
    for kv in &blocks {
        let b: AllocationBlock = model::decode(&kv.key, &kv.value).unwrap();
        assert_eq!(kv.key, model::block_key(&b.cidr));
        let mut seen = 0;
        for a in b.allocations.iter().flatten() {
            assert!(
                *a < b.attributes.len(),
                "{}: dangling attribute index",
                b.cidr
            );
            seen += 1;
        }
        assert_eq!(
            seen + b.unallocated.len(),
            b.num_addresses(),
            "{}: ordinals lost",
            b.cidr
        );
        for (h, n) in b.count_by_handle() {
            if h == ignored_handle {
                continue;
            }
            from_blocks
                .entry(h)
                .or_default()
                .insert(b.cidr.to_string(), n);
        }
        block_owner.insert(b.cidr, b.affinity.clone());
    }
    let handles = under(model::HANDLE_PREFIX);
    let mut stored: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for kv in &handles {
        let h: IpamHandle = model::decode(&kv.key, &kv.value).unwrap();
        assert!(h.total() > 0, "{} stored with no address", kv.key);
        stored.insert(
            kv.key.trim_start_matches(model::HANDLE_PREFIX).to_string(),
            h.block,
        );
    }
    assert_eq!(
        stored, from_blocks,
        "handles disagree with block allocations"
    );
    let affs = under("/calico/ipam/v2/host/");
    for kv in &affs {
        let a = BlockAffinity::decode(&kv.key, &kv.value).unwrap();
        let cidr = model::cidr_from_key(&kv.key).unwrap();
        let node = kv.key.split('/').nth(5).unwrap();
        if a.state.is_confirmed() {
            assert_eq!(
                block_owner.get(&cidr).cloned().flatten(),
                Some(format!("host:{node}")),
                "confirmed affinity {} without its block",
                kv.key
            );
        }
    }
    from_blocks
        .into_iter()
        .map(|(h, m)| (h, m.values().sum()))
        .collect()
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub async fn delete_pool(store: &dyn Datastore, name: &str) {
    store
        .delete(
            &format!("/calico/resources/v3/projectcalico.org/ippools/{name}"),
            None,
        )
        .await
        .unwrap();
}

pub async fn blocks(store: &dyn Datastore) -> Vec<calico_ipam::AllocationBlock> {
    let kvs = store.list("/calico/ipam/v2/assignment/").await.unwrap().kvs;
    kvs.iter()
        .map(|kv| model::decode(&kv.key, &kv.value).unwrap())
        .collect()
}

pub async fn affine_blocks(c: &IpamClient, host: &str, version: u8) -> Vec<IpNet> {
    c.list_affinities(&AffinityOwner::host(host), version)
        .await
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

pub fn assign_args(addr: &str, host: &str, handle: Option<&str>) -> AssignArgs {
    AssignArgs {
        ip: ip(addr),
        handle_id: handle.map(str::to_string),
        attrs: BTreeMap::new(),
        hostname: host.into(),
        host_reserved: None,
        intended_use: None,
    }
}

pub fn auto(host: &str, handle: &str, n4: usize) -> AutoAssignArgs {
    AutoAssignArgs::v4(host, handle, n4)
}
