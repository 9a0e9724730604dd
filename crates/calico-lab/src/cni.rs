//! Pods the way a container runtime makes them: a network namespace, then the real `calico`
//! CNI plugin called from inside the node's namespace with the CNI environment variables
//! (CNI spec 1.0 "Parameters") and the network configuration on stdin, as kubelet's runtime
//! does on that node. DEL is the same call with `CNI_COMMAND=DEL`.

use std::io::Write;
use std::process::{Command, Stdio};

use calico_netlink::NetNs;

use crate::error::{LabError, io};
use crate::state::{Datastore, LabRecord, Layout, PodRecord};
use crate::sys;

/// The CNI network name (Calico's manifests call it `k8s-pod-network`).
pub const NETWORK: &str = "k8s-pod-network";

/// The `calico` network configuration of `node`: Calico's fields, with the lab's datastore
/// and the node's IPAM socket.
pub fn netconf(layout: &Layout, lab: &LabRecord, node: &str) -> serde_json::Value {
    let (ds_type, ds_path, endpoints) = match &lab.datastore {
        Datastore::Embedded { path } => ("embedded", path.display().to_string(), String::new()),
        Datastore::Etcd { endpoints, .. } => ("etcdv3", String::new(), endpoints.clone()),
    };
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "calico",
        "log_level": "info",
        "log_file_path": layout.node_dir(node).join("cni.log"),
        "nodename": node,
        // calico-node writes it at start-up; the plugin refuses to run before it exists.
        "nodename_file": layout.nodename_file(node),
        "datastore_type": ds_type,
        "datastore_path": ds_path,
        "etcd_endpoints": endpoints,
        "mtu": 1440,
        "ipam": {"type": "calico-ipam", "agent_socket": layout.ipam_socket(node)},
    })
}

/// A 64-hex container ID, as runtimes make them, unique per call.
fn container_id(namespace: &str, pod: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // FNV-1a over the name and time, spread over four words.
    let mut out = String::new();
    for round in 0u64..4 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ round;
        for b in format!("{namespace}/{pod}/{nanos}/{}", std::process::id()).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// Runs the plugin for one call; returns its stdout (the result JSON on success).
fn invoke(
    layout: &Layout,
    lab: &LabRecord,
    node: &str,
    command: &str,
    pod: &PodRecord,
) -> Result<String, LabError> {
    let node_rec = lab.node(node)?;
    let conf = netconf(layout, lab, node).to_string();
    let mut cmd = Command::new(lab.bin_dir.join("calico"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &pod.container_id)
        .env("CNI_NETNS", sys::netns_path(&pod.netns))
        .env("CNI_IFNAME", "eth0")
        .env(
            "CNI_ARGS",
            format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={}",
                pod.namespace, pod.name, pod.container_id
            ),
        )
        .env("CNI_PATH", layout.cni_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let ns = NetNs::open(sys::netns_path(&node_rec.netns))
        .map_err(|e| LabError::Failed(format!("opening namespace {}: {e}", node_rec.netns)))?;
    let out = ns
        .run(move || -> Result<std::process::Output, std::io::Error> {
            let mut child = cmd.spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(conf.as_bytes())?;
            }
            child.wait_with_output()
        })
        .map_err(|e| LabError::Failed(format!("entering {}: {e}", node_rec.netns)))?
        .map_err(io("running the calico CNI plugin"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(LabError::Failed(format!(
            "CNI {command} of pod {}/{} on {node} failed ({}): {} {}",
            pod.namespace,
            pod.name,
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(stdout)
}

/// Creates the pod's namespace and networks it on `node`; returns its record.
pub fn add_pod(
    layout: &Layout,
    lab: &LabRecord,
    node: &str,
    namespace: &str,
    name: &str,
) -> Result<PodRecord, LabError> {
    let netns = layout.pod_netns(namespace, name);
    let mut pod = PodRecord {
        name: name.to_string(),
        namespace: namespace.to_string(),
        node: node.to_string(),
        netns: netns.clone(),
        container_id: container_id(namespace, name),
        ip: String::new(),
        host_iface: String::new(),
        labels: Default::default(),
        service_account: "default".into(),
    };
    sys::netns_add(&netns)?;
    let result = match invoke(layout, lab, node, "ADD", &pod) {
        Ok(r) => r,
        Err(e) => {
            let _ = sys::netns_del(&netns);
            return Err(e);
        }
    };
    let json: serde_json::Value = serde_json::from_str(&result)
        .map_err(|e| LabError::Failed(format!("CNI ADD result is not JSON ({e}): {result}")))?;
    pod.ip = json["ips"][0]["address"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
        .ok_or_else(|| LabError::Failed(format!("CNI ADD result without an address: {json}")))?;
    // The host side is the interface without a sandbox (CNI spec, "Result").
    pod.host_iface = json["interfaces"]
        .as_array()
        .and_then(|ifs| {
            ifs.iter()
                .find(|i| i["sandbox"].as_str().is_none_or(str::is_empty))
        })
        .and_then(|i| i["name"].as_str())
        .unwrap_or_default()
        .to_string();
    Ok(pod)
}

/// CNI DEL for the pod, then its namespace goes.
pub fn del_pod(layout: &Layout, lab: &LabRecord, pod: &PodRecord) -> Result<(), LabError> {
    invoke(layout, lab, &pod.node, "DEL", pod)?;
    if sys::netns_path(&pod.netns).exists() {
        sys::netns_del(&pod.netns)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_64_hex_and_differ() {
        let a = container_id("default", "a");
        let b = container_id("default", "b");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
