//! `CNI_ARGS` and the workload identity Calico derives from it
//! (`cni-plugin/internal/pkg/utils/utils.go` `GetIdentifiers`, `GetHandleID`).
//!
//! `CNI_ARGS` is `K=V;K2=V2` (libcni `LoadArgs`: every pair must split into exactly two parts
//! at `=`). Calico's plugin prepends `IgnoreUnknown=1` before parsing (`AddIgnoreUnknownArgs`),
//! so unknown keys are always ignored; the keys it reads are `K8S_POD_NAMESPACE`,
//! `K8S_POD_NAME`, `K8S_POD_INFRA_CONTAINER_ID`, `IP` (a specific address for calico-ipam) and
//! the test-only `CNI_TEST_NAMESPACE`.
//!
//! **Orchestrator.** The workload is a Kubernetes pod only when both `K8S_POD_NAMESPACE` and
//! `K8S_POD_NAME` are non-empty; otherwise it is a plain CNI workload (orchestrator `cni`,
//! namespace `default`), identified by its container ID. podman sends only `K8S_POD_NAME`
//! (the container name) and no namespace (podman issue 12083), so under podman every
//! container is a `cni` workload: WEP `<node>-cni-<containerID>-<ifname>`, host veth
//! `cali` + the first 11 characters of the container ID, exactly as Calico would do.

use std::collections::BTreeMap;
use std::net::IpAddr;

use calico_api::wepname::WorkloadEndpointIdentifiers;
use sha1::{Digest, Sha1};

use crate::spec::CniError;

/// The keys of `CNI_ARGS` Calico reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub ignore_unknown: bool,
    pub k8s_pod_namespace: String,
    pub k8s_pod_name: String,
    pub k8s_pod_infra_container_id: String,
    /// `IP=`: calico-ipam assigns exactly these addresses (Calico takes one; we also accept
    /// one IPv4 and one IPv6 address separated by a comma). Empty when absent or `IP=`.
    pub ips: Vec<IpAddr>,
    /// Test-only namespace for `cni` workloads (Calico's `CNITestArgs`).
    pub cni_test_namespace: String,
    /// Keys we do not know, in order (ignored, as Calico ignores them).
    pub unknown: Vec<(String, String)>,
}

impl CniArgs {
    pub fn parse(s: &str) -> Result<CniArgs, CniError> {
        let mut out = CniArgs::default();
        if s.is_empty() {
            return Ok(out);
        }
        for pair in s.split(';') {
            let mut it = pair.split('=');
            let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) else {
                return Err(CniError::invalid_env(format!(
                    "CNI_ARGS: invalid pair {pair:?} (expected KEY=VALUE pairs separated by ';')"
                )));
            };
            match k {
                "IgnoreUnknown" => {
                    out.ignore_unknown = match v.to_ascii_lowercase().as_str() {
                        "1" | "true" => true,
                        "0" | "false" => false,
                        _ => {
                            return Err(CniError::invalid_env(format!(
                                "CNI_ARGS: error parsing value of pair {pair:?}: boolean \
                                 unmarshal error: invalid input {v}"
                            )));
                        }
                    }
                }
                "K8S_POD_NAMESPACE" => out.k8s_pod_namespace = v.to_string(),
                "K8S_POD_NAME" => out.k8s_pod_name = v.to_string(),
                "K8S_POD_INFRA_CONTAINER_ID" => out.k8s_pod_infra_container_id = v.to_string(),
                "CNI_TEST_NAMESPACE" => out.cni_test_namespace = v.to_string(),
                "IP" => out.ips = parse_ips(pair, v)?,
                _ => out.unknown.push((k.to_string(), v.to_string())),
            }
        }
        Ok(out)
    }
}

/// The value of `IP=`: empty means none (Go's `net.IP` decodes an empty text as nil), else
/// addresses separated by commas, at most one per family.
fn parse_ips(pair: &str, v: &str) -> Result<Vec<IpAddr>, CniError> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<IpAddr> = Vec::with_capacity(2);
    for part in v.split(',') {
        let ip: IpAddr = part.parse().map_err(|_| {
            CniError::invalid_env(format!(
                "CNI_ARGS: error parsing value of pair {pair:?}: {part:?} is not an IP address"
            ))
        })?;
        if out.iter().any(|o| o.is_ipv4() == ip.is_ipv4()) {
            return Err(CniError::invalid_env(format!(
                "CNI_ARGS: pair {pair:?} names more than one IPv{} address (at most one IPv4 \
                 and one IPv6 address, separated by a comma)",
                if ip.is_ipv4() { 4 } else { 6 }
            )));
        }
        out.push(ip);
    }
    Ok(out)
}

/// Which orchestrator owns the workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Orchestrator {
    K8s { namespace: String, pod: String },
    Cni,
}

/// Everything that names one attachment (Calico `WEPIdentifiers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub orchestrator: Orchestrator,
    pub node: String,
    pub container_id: String,
    /// The container-side interface name (`CNI_IFNAME`), the WEP's `endpoint`.
    pub endpoint: String,
    /// The WEP's namespace: the pod's, or `default` for `cni` workloads.
    pub namespace: String,
}

impl Workload {
    /// Calico `GetIdentifiers`.
    pub fn identify(args: &CniArgs, node: &str, container_id: &str, ifname: &str) -> Workload {
        let (orchestrator, namespace) =
            if !args.k8s_pod_namespace.is_empty() && !args.k8s_pod_name.is_empty() {
                (
                    Orchestrator::K8s {
                        namespace: args.k8s_pod_namespace.clone(),
                        pod: args.k8s_pod_name.clone(),
                    },
                    args.k8s_pod_namespace.clone(),
                )
            } else {
                let ns = if args.cni_test_namespace.is_empty() {
                    "default".to_string()
                } else {
                    args.cni_test_namespace.clone()
                };
                (Orchestrator::Cni, ns)
            };
        Workload {
            orchestrator,
            node: node.to_string(),
            container_id: container_id.to_string(),
            endpoint: ifname.to_string(),
            namespace,
        }
    }

    pub fn orchestrator_name(&self) -> &'static str {
        match self.orchestrator {
            Orchestrator::K8s { .. } => "k8s",
            Orchestrator::Cni => "cni",
        }
    }

    /// The pod name (empty for `cni` workloads).
    pub fn pod(&self) -> &str {
        match &self.orchestrator {
            Orchestrator::K8s { pod, .. } => pod,
            Orchestrator::Cni => "",
        }
    }

    pub fn identifiers(&self) -> WorkloadEndpointIdentifiers {
        WorkloadEndpointIdentifiers {
            node: self.node.clone(),
            orchestrator: self.orchestrator_name().to_string(),
            endpoint: self.endpoint.clone(),
            workload: String::new(),
            pod: self.pod().to_string(),
            container_id: self.container_id.clone(),
        }
    }

    /// The WorkloadEndpoint name (`<node>-k8s-<pod>-<endpoint>` or
    /// `<node>-cni-<containerID>-<endpoint>`, dashes doubled).
    pub fn wep_name(&self) -> Result<String, CniError> {
        self.identifiers().calculate_name(false).map_err(|e| {
            CniError::internal(format!("error constructing WorkloadEndpoint name: {e}"))
        })
    }

    /// The name prefix of any WEP of this workload whatever its interface (plugin.go lists
    /// by this prefix to find an existing endpoint).
    pub fn wep_prefix(&self) -> Result<String, CniError> {
        let mut ids = self.identifiers();
        ids.endpoint.clear();
        ids.calculate_name(true).map_err(|e| {
            CniError::internal(format!("error constructing WorkloadEndpoint prefix: {e}"))
        })
    }

    /// The host-side veth name with `prefix` (Felix's first interface prefix, `cali`).
    pub fn host_veth_name(&self, prefix: &str) -> String {
        match &self.orchestrator {
            Orchestrator::K8s { namespace, pod } => k8s_veth_name(prefix, namespace, pod),
            Orchestrator::Cni => {
                // plugin.go: "cali" + args.ContainerID[:min(11, len)]. Container IDs are ASCII
                // (validated), so bytes and characters agree.
                let n = self.container_id.len().min(11);
                format!("{prefix}{}", &self.container_id[..n])
            }
        }
    }

    /// Calico `GetHandleID`: `<network>.<containerID>`.
    pub fn handle_id(&self, network: &str) -> String {
        format!("{network}.{}", self.container_id)
    }

    /// The pre-v3 handle calico-ipam's DEL also releases: the container ID, or
    /// `<namespace>.<pod>` for pods (ipam_plugin.go cmdDel).
    pub fn legacy_handle_id(&self) -> String {
        match &self.orchestrator {
            Orchestrator::K8s { namespace, pod } => format!("{namespace}.{pod}"),
            Orchestrator::Cni => self.container_id.clone(),
        }
    }

    /// The attributes calico-ipam attaches to an allocation: `node` and `timestamp` always,
    /// `pod` and `namespace` for pods. The timestamp is Go's `time.Now().UTC().String()`.
    pub fn ipam_attributes(&self, now: chrono::DateTime<chrono::Utc>) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("node".to_string(), self.node.clone());
        m.insert("timestamp".to_string(), go_time_string(now));
        if let Orchestrator::K8s { namespace, pod } = &self.orchestrator {
            m.insert("pod".to_string(), pod.clone());
            m.insert("namespace".to_string(), namespace.clone());
        }
        m
    }
}

/// Calico `VethNameForWorkload`: prefix + the first 11 hex digits of SHA-1("<ns>.<pod>").
pub fn k8s_veth_name(prefix: &str, namespace: &str, pod: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{pod}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}", &hex[..11])
}

/// Felix's interface prefix as Calico reads it for veth names: the first entry of
/// `FELIX_INTERFACEPREFIX`, `cali` when unset.
pub fn interface_prefix(env_value: Option<&str>) -> String {
    match env_value.filter(|v| !v.is_empty()) {
        Some(v) => v.split(',').next().unwrap_or("cali").to_string(),
        None => "cali".to_string(),
    }
}

/// Go's `Time.String()` for a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC` (fraction
/// without trailing zeros, omitted when zero).
pub fn go_time_string(t: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    let base = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.nanosecond() % 1_000_000_000;
    let frac = if nanos == 0 {
        String::new()
    } else {
        let s = format!(".{nanos:09}");
        s.trim_end_matches('0').to_string()
    };
    format!("{base}{frac} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn parse_args_table() {
        let a = CniArgs::parse(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a;\
             K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1",
        )
        .unwrap();
        assert!(a.ignore_unknown);
        assert_eq!(a.k8s_pod_namespace, "default");
        assert_eq!(a.k8s_pod_name, "pod-a");
        assert_eq!(a.k8s_pod_infra_container_id, "abc");
        assert_eq!(a.unknown, vec![("K8S_POD_UID".into(), "u-1".into())]);

        let ips = |s: &str| CniArgs::parse(s).unwrap().ips;
        let want = |v: &[&str]| {
            v.iter()
                .map(|s| s.parse::<IpAddr>().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ips("IP=10.0.0.7"), want(&["10.0.0.7"]));
        assert_eq!(ips("IP=fd00::7,10.0.0.7"), want(&["fd00::7", "10.0.0.7"]));
        assert_eq!(ips("IgnoreUnknown=1;IP="), want(&[]));
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());

        for bad in [
            "A",
            "A=b=c",
            "A=1;",
            "IgnoreUnknown=maybe",
            "IP=10.0.0.300",
            "IP=10.0.0.1,",
            "IP=10.0.0.1,10.0.0.2",
            "IP=fd00::1,10.0.0.1,fd00::2",
            "IP=10.0.0.1/32",
        ] {
            let e = CniArgs::parse(bad).unwrap_err();
            assert!(e.msg.starts_with("CNI_ARGS:"), "{bad}: {e}");
        }
        // Unknown keys are ignored even without IgnoreUnknown (Calico injects it).
        assert!(CniArgs::parse("FOO=bar").is_ok());
    }

    #[test]
    fn identity_table() {
        // (CNI_ARGS, orchestrator, WEP name, namespace, veth)
        let cid = "0123456789abcdef0123";
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            (
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=frontend-0",
                "k8s",
                "node1-k8s-frontend--0-eth0",
                "prod",
                "calie934d4878c7",
            ),
            (
                "K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx-1",
                "k8s",
                "node1-k8s-nginx--1-eth0",
                "default",
                "cali7fcc33642a0",
            ),
            // podman: only the container name, no namespace -> plain CNI workload.
            (
                "IgnoreUnknown=1;K8S_POD_NAME=web",
                "cni",
                "node1-cni-0123456789abcdef0123-eth0",
                "default",
                "cali0123456789a",
            ),
            (
                "",
                "cni",
                "node1-cni-0123456789abcdef0123-eth0",
                "default",
                "cali0123456789a",
            ),
            (
                "K8S_POD_NAMESPACE=ns1",
                "cni",
                "node1-cni-0123456789abcdef0123-eth0",
                "default",
                "cali0123456789a",
            ),
            (
                "CNI_TEST_NAMESPACE=test",
                "cni",
                "node1-cni-0123456789abcdef0123-eth0",
                "test",
                "cali0123456789a",
            ),
        ];
        for (args, orch, wep, ns, veth) in cases {
            let w = Workload::identify(&CniArgs::parse(args).unwrap(), "node1", cid, "eth0");
            assert_eq!(w.orchestrator_name(), *orch, "{args}");
            assert_eq!(w.wep_name().unwrap(), *wep, "{args}");
            assert_eq!(w.namespace, *ns, "{args}");
            assert_eq!(w.host_veth_name("cali"), *veth, "{args}");
            assert_eq!(w.host_veth_name("cali").len(), 15);
        }
    }

    #[test]
    fn short_container_id_and_prefixes() {
        let w = Workload::identify(&CniArgs::default(), "n-1", "abc123", "eth0");
        assert_eq!(w.host_veth_name("cali"), "caliabc123");
        assert_eq!(w.wep_name().unwrap(), "n--1-cni-abc123-eth0");
        assert_eq!(w.wep_prefix().unwrap(), "n--1-cni-abc123-");
        assert_eq!(w.handle_id("k8s-pod-network"), "k8s-pod-network.abc123");
        assert_eq!(w.legacy_handle_id(), "abc123");
        let p = Workload::identify(
            &CniArgs::parse("K8S_POD_NAMESPACE=a;K8S_POD_NAME=b").unwrap(),
            "n",
            "c",
            "eth0",
        );
        assert_eq!(p.legacy_handle_id(), "a.b");
        assert_eq!(interface_prefix(None), "cali");
        assert_eq!(interface_prefix(Some("tap,cali")), "tap");
        assert_eq!(p.host_veth_name("tap").len(), 14);
    }

    #[test]
    fn attributes_and_go_timestamp() {
        let t = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 16, 30, 5)
            .unwrap();
        assert_eq!(go_time_string(t), "2026-11-22 16:30:05 +0000 UTC");
        let t2 = t + chrono::Duration::nanoseconds(123_400_000);
        assert_eq!(go_time_string(t2), "2026-11-22 16:30:05.1234 +0000 UTC");

        let cni = Workload::identify(&CniArgs::default(), "node1", "c1", "eth0");
        let a = cni.ipam_attributes(t);
        assert_eq!(a.keys().collect::<Vec<_>>(), ["node", "timestamp"]);
        let pod = Workload::identify(
            &CniArgs::parse("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p").unwrap(),
            "node1",
            "c1",
            "eth0",
        );
        let a = pod.ipam_attributes(t);
        assert_eq!(a["pod"], "p");
        assert_eq!(a["namespace"], "ns");
        assert_eq!(a["node"], "node1");
    }
}
