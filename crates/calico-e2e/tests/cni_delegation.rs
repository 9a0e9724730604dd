//! `calico` runs `calico-ipam` in-process (ours) or exec'ed from CNI_PATH (Calico's way, with
//! CALICO_CNI_EXEC_IPAM=1): both must give the same result shape and the same datastore state,
//! and DEL must release either way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use calico_e2e::cni::invoke;
use calico_e2e::node::Node;
use calico_e2e::store::{self, HANDLE_PREFIX, WEP_PREFIX};
use calico_netlink::testing::{TestNetns, require_root};

#[test]
fn in_process_and_exec_delegation_agree() {
    if !require_root() {
        return;
    }
    let mut node = Node::new("node1", "10.200.0.1/24", None).unwrap();
    node.start_agent().unwrap();
    let calico = calico_e2e::binary("calico").unwrap();
    let mut results = Vec::new();
    let mut pods = Vec::new();
    for (i, exec) in [false, true].into_iter().enumerate() {
        let ns = TestNetns::new("e2e-deleg").unwrap();
        let id = format!("{:064x}", 0xdead_0000_u64 + i as u64);
        let path = ns.path();
        let mut call = node.cni_call(
            "ADD",
            Some(path.as_path()),
            &id,
            "default",
            &format!("pod-{i}"),
        );
        if exec {
            call.extra_env
                .push(("CALICO_CNI_EXEC_IPAM".into(), "1".into()));
        }
        let out = invoke(&calico, &call, node.ns.ns()).unwrap();
        let r = out.result().unwrap();
        results.push(r);
        pods.push((ns, id, call));
    }
    let shape = |r: &serde_json::Value| {
        let addr = r["ips"][0]["address"].as_str().unwrap().to_string();
        (
            r["cniVersion"].clone(),
            addr.ends_with("/32"),
            r["interfaces"].as_array().map(Vec::len),
            r["routes"].as_array().map(Vec::len),
        )
    };
    assert_eq!(shape(&results[0]), shape(&results[1]), "{results:?}");
    assert_ne!(
        results[0]["ips"][0]["address"],
        results[1]["ips"][0]["address"]
    );
    assert_eq!(store::list(&node.store_path, WEP_PREFIX).unwrap().len(), 2);
    let handles = store::list(&node.store_path, HANDLE_PREFIX).unwrap();
    assert_eq!(handles.len(), 2, "{handles:?}");
    for (key, _) in &handles {
        assert!(
            key.contains("k8s-pod-network."),
            "handle not <network>.<containerID>: {key}"
        );
    }
    for (_, _, mut call) in pods {
        call.command = "DEL".into();
        invoke(&calico, &call, node.ns.ns())
            .unwrap()
            .result()
            .unwrap();
    }
    assert!(
        store::list(&node.store_path, WEP_PREFIX)
            .unwrap()
            .is_empty()
    );
    assert!(
        store::list(&node.store_path, HANDLE_PREFIX)
            .unwrap()
            .is_empty()
    );
}
