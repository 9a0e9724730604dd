//! Calico's network configuration (`cni-plugin/pkg/types/types.go` `NetConf`) as both plugins
//! read it from stdin, with the same JSON field names. Unknown fields are tolerated, as Go's
//! `json.Unmarshal` does, and kept in [`NetConf::raw`] so the document can be handed on to a
//! delegated plugin unchanged (SPEC.md section 4: delegates get the complete configuration).
//!
//! Our additions: `datastore_type: "embedded"` with `datastore_path` (the single-file SQLite
//! store of `calico-datastore`), and `ipam.agent_socket` (where calico-node's IPAM service
//! listens; default `$CALICO_IPAM_SOCKET`, else `/var/run/calico/ipam.sock`).
//!
//! Resolution rules follow Calico: the node name is `nodename`, else the content of
//! `nodename_file` (default `/var/lib/calico/nodename`), else the deprecated `hostname`, else
//! the OS host name (`utils.DetermineNodename`); the MTU is `mtu`, else the content of
//! `/var/lib/calico/mtu` when it exists (`utils.MTUFromFile`, an error when
//! `require_mtu_file` is set and it does not), else 1500, the kernel's veth default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use calico_client::config::ApiConfig;
use serde::Deserialize;
use serde_json::Value;

use crate::spec::{CniError, CniResult, ErrorCode};

/// Calico's default node-name file, written by calico-node at start-up.
pub const DEFAULT_NODENAME_FILE: &str = "/var/lib/calico/nodename";
/// Calico's MTU file, written by calico-node (`utils.MTUFilePath`).
pub const DEFAULT_MTU_FILE: &str = "/var/lib/calico/mtu";
/// The MTU a veth gets when none is configured.
pub const DEFAULT_MTU: u32 = 1500;
/// Where calico-node's IPAM service listens unless configured otherwise (Contract 2).
pub const DEFAULT_AGENT_SOCKET: &str = "/var/run/calico/ipam.sock";
/// Environment variable overriding [`DEFAULT_AGENT_SOCKET`] (Contract 2).
pub const ENV_AGENT_SOCKET: &str = "CALICO_IPAM_SOCKET";

/// The `ipam` section.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IpamConf {
    #[serde(rename = "type", default)]
    pub ipam_type: String,
    /// host-local's subnet (`usePodCidr` needs the Kubernetes API; we refuse it).
    #[serde(default)]
    pub subnet: String,
    /// "false" turns IPv4 off (default on), as Calico compares the string.
    #[serde(default)]
    pub assign_ipv4: Option<String>,
    /// "true" turns IPv6 on (default off).
    #[serde(default)]
    pub assign_ipv6: Option<String>,
    /// CIDRs (or pool names, resolved by the agent) to allocate IPv4 from.
    #[serde(default)]
    pub ipv4_pools: Vec<String>,
    #[serde(default)]
    pub ipv6_pools: Vec<String>,
    /// Ours: the agent's IPAM socket.
    #[serde(default)]
    pub agent_socket: String,
}

impl IpamConf {
    /// How many IPv4 and IPv6 addresses `calico-ipam` assigns (ipam_plugin.go: IPv4 unless
    /// `assign_ipv4 == "false"`, IPv6 only when `assign_ipv6 == "true"`).
    pub fn counts(&self) -> (u32, u32) {
        let v4 = u32::from(self.assign_ipv4.as_deref() != Some("false"));
        let v6 = u32::from(self.assign_ipv6.as_deref() == Some("true"));
        (v4, v6)
    }
}

/// `policy` (Calico's k8s policy settings).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PolicyConf {
    #[serde(rename = "type", default)]
    pub policy_type: String,
    #[serde(default)]
    pub k8s_api_root: String,
    #[serde(default)]
    pub k8s_auth_token: String,
    #[serde(default)]
    pub k8s_client_certificate: String,
    #[serde(default)]
    pub k8s_client_key: String,
    #[serde(default)]
    pub k8s_certificate_authority: String,
}

/// `kubernetes`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct KubernetesConf {
    #[serde(default)]
    pub k8s_api_root: String,
    #[serde(default)]
    pub kubeconfig: String,
    #[serde(default)]
    pub node_name: String,
}

/// `feature_control`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FeatureControl {
    #[serde(default)]
    pub ip_addrs_no_ipam: bool,
    #[serde(default)]
    pub floating_ips: bool,
}

/// `container_settings`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ContainerSettings {
    #[serde(default)]
    pub allow_ip_forwarding: bool,
}

/// One entry of `cni.dev/valid-attachments` (GC, spec 1.1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct GcAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(default)]
    pub ifname: String,
}

/// Calico's NetConf. Integer fields are signed as in Go so a negative value is a readable
/// validation error rather than a decoding one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub ipam: IpamConf,
    #[serde(default)]
    pub mtu: i64,
    #[serde(default)]
    pub num_queues: i64,
    #[serde(default)]
    pub nodename: String,
    #[serde(default)]
    pub nodename_file: String,
    #[serde(default)]
    pub nodename_file_optional: bool,
    #[serde(default)]
    pub ipam_lock_file: String,
    #[serde(default)]
    pub datastore_type: String,
    /// Ours: the embedded store's file.
    #[serde(default)]
    pub datastore_path: String,
    #[serde(default)]
    pub etcd_endpoints: String,
    #[serde(default)]
    pub etcd_discovery_srv: String,
    #[serde(default)]
    pub etcd_scheme: String,
    #[serde(default)]
    pub etcd_key_file: String,
    #[serde(default)]
    pub etcd_cert_file: String,
    #[serde(default)]
    pub etcd_ca_cert_file: String,
    /// Deprecated in Calico.
    #[serde(default)]
    pub etcd_authority: String,
    #[serde(default)]
    pub log_level: String,
    #[serde(default)]
    pub log_file_path: String,
    #[serde(default)]
    pub log_file_max_size: i64,
    #[serde(default)]
    pub log_file_max_age: i64,
    #[serde(default)]
    pub log_file_max_count: i64,
    #[serde(default)]
    pub policy: PolicyConf,
    #[serde(default)]
    pub kubernetes: KubernetesConf,
    #[serde(default)]
    pub feature_control: FeatureControl,
    #[serde(default)]
    pub container_settings: ContainerSettings,
    #[serde(default)]
    pub include_default_routes: bool,
    #[serde(default)]
    pub device_type: String,
    #[serde(default)]
    pub readiness_gates: Vec<String>,
    #[serde(default)]
    pub policy_setup_timeout_seconds: i64,
    #[serde(default)]
    pub endpoint_status_dir: String,
    #[serde(default)]
    pub require_mtu_file: bool,
    /// Deprecated in Calico (`nodename` replaces it).
    #[serde(default)]
    pub hostname: String,
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<Value>,
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<GcAttachment>>,

    /// The whole document as received (for delegation).
    #[serde(skip)]
    pub raw: Value,
}

/// Where Calico's resolution reads from; tests point these at temporary files.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub mtu_file: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            mtu_file: PathBuf::from(DEFAULT_MTU_FILE),
        }
    }
}

fn network_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl NetConf {
    /// Parses stdin. Errors name the offending field (`ipam.assign_ipv4: invalid type ...`).
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        let raw: Value = serde_json::from_slice(stdin)
            .map_err(|e| CniError::decoding(format!("failed to load netconf: {e}")))?;
        if !raw.is_object() {
            return Err(CniError::decoding(
                "failed to load netconf: expected a JSON object",
            ));
        }
        let mut conf: NetConf = serde_path_to_error::deserialize(&raw).map_err(|e| {
            CniError::decoding(format!(
                "failed to load netconf: field {}: {}",
                e.path(),
                e.inner()
            ))
        })?;
        conf.raw = raw;
        Ok(conf)
    }

    /// The version results are printed in: Calico treats an empty `cniVersion` as 0.2.0
    /// (plugin.go cmdAdd).
    pub fn result_version(&self) -> &str {
        if self.cni_version.is_empty() {
            "0.2.0"
        } else {
            &self.cni_version
        }
    }

    /// Checks made before any work: the network name (skel's `validateConfig` and Calico's
    /// `ValidateNetworkName`, as Felix relies on it), numbers and features we cannot honour.
    pub fn validate(&self) -> Result<(), CniError> {
        if self.name.is_empty() {
            return Err(CniError::invalid_netconf("missing network name"));
        }
        if !network_name_ok(&self.name) {
            return Err(CniError::invalid_netconf(format!(
                "invalid characters detected in the given network name {:?}. Only letters \
                 a-z, numbers 0-9, and symbols _.- are supported",
                self.name
            )));
        }
        if self.mtu < 0 || self.mtu > i64::from(u16::MAX) {
            return Err(CniError::invalid_netconf(format!(
                "mtu {} is out of range (0-65535; 0 means the node's MTU file or 1500)",
                self.mtu
            )));
        }
        match self.device_type.as_str() {
            "" | "veth" => {}
            "netkit" => {
                return Err(unsupported(
                    "device_type",
                    "\"netkit\"",
                    "only veth pairs are implemented",
                ));
            }
            other => {
                return Err(CniError::invalid_netconf(format!(
                    "unknown device_type {other:?} in CNI config (supported: \"veth\", \"netkit\")"
                )));
            }
        }
        if self.policy.policy_type == "k8s" {
            return Err(unsupported(
                "policy.type",
                "\"k8s\"",
                "reading pod labels needs the Kubernetes API, which this plugin does not use",
            ));
        }
        if !self.policy.policy_type.is_empty() {
            return Err(unsupported(
                "policy.type",
                &format!("{:?}", self.policy.policy_type),
                "only the default (empty) policy type is known",
            ));
        }
        if self.ipam.subnet.eq_ignore_ascii_case("usePodCidr")
            || self.ipam.subnet.eq_ignore_ascii_case("usePodCidrIPv6")
        {
            return Err(unsupported(
                "ipam.subnet",
                &format!("{:?}", self.ipam.subnet),
                "the pod CIDR is only known to the Kubernetes API",
            ));
        }
        if !self.readiness_gates.is_empty() {
            return Err(unsupported(
                "readiness_gates",
                &format!("{:?}", self.readiness_gates),
                "polling readiness URLs before ADD is not implemented",
            ));
        }
        if self.policy_setup_timeout_seconds < 0 {
            return Err(CniError::invalid_netconf(format!(
                "invalid pod startup delay of {}",
                self.policy_setup_timeout_seconds
            )));
        }
        Ok(())
    }

    /// Calico `DetermineNodename`. `hostname` is the OS host name source.
    pub fn nodename<H>(&self, hostname: H) -> Result<String, CniError>
    where
        H: FnOnce() -> std::io::Result<String>,
    {
        if !self.nodename.is_empty() {
            return Ok(self.nodename.clone());
        }
        // Calico uses the file's content verbatim; we trim surrounding whitespace so a
        // trailing newline written by hand does not become part of the name.
        if let Ok(text) = std::fs::read_to_string(self.nodename_file_path()) {
            let t = text.trim();
            if !t.is_empty() {
                return Ok(t.to_string());
            }
        }
        if !self.hostname.is_empty() {
            tracing::warn!("configuration option 'hostname' is deprecated, use 'nodename' instead");
            return Ok(self.hostname.clone());
        }
        let h = hostname()
            .map_err(|e| CniError::internal(format!("cannot read the host name: {e}")))?;
        // Calico's names.Hostname lower-cases the OS host name.
        Ok(h.trim().to_lowercase())
    }

    /// The node-name file Calico checks and reads.
    pub fn nodename_file_path(&self) -> PathBuf {
        if self.nodename_file.is_empty() {
            PathBuf::from(DEFAULT_NODENAME_FILE)
        } else {
            PathBuf::from(&self.nodename_file)
        }
    }

    /// plugin.go's wait for the node-name file: unless `nodename_file_optional`, the file
    /// must exist (it proves calico-node has started on this host).
    pub fn require_nodename_file(&self) -> Result<(), CniError> {
        if self.nodename_file_optional {
            return Ok(());
        }
        let p = self.nodename_file_path();
        std::fs::metadata(&p).map(|_| ()).map_err(|e| {
            CniError::internal(format!(
                "stat {}: {e}: check that the calico/node container is running and has mounted \
                 /var/lib/calico/",
                p.display()
            ))
        })
    }

    /// The MTU to give the workload's interfaces (see the module docs).
    pub fn effective_mtu(&self, paths: &HostPaths) -> Result<u32, CniError> {
        let from_file = match std::fs::read_to_string(&paths.mtu_file) {
            Ok(text) => Some(text.trim().parse::<u32>().map_err(|e| {
                CniError::internal(format!(
                    "failed to read MTU file: {}: {e}",
                    paths.mtu_file.display()
                ))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.require_mtu_file {
                    return Err(CniError::internal(format!(
                        "failed to read MTU file: {}: {e}",
                        paths.mtu_file.display()
                    )));
                }
                None
            }
            Err(e) => {
                return Err(CniError::internal(format!(
                    "failed to read MTU file: {}: {e}",
                    paths.mtu_file.display()
                )));
            }
        };
        // validate() bounds mtu to 0..=65535.
        let configured = u32::try_from(self.mtu).unwrap_or(0);
        Ok(match (configured, from_file) {
            (0, Some(m)) if m != 0 => m,
            (0, _) => DEFAULT_MTU,
            (m, _) => m,
        })
    }

    /// The agent's IPAM socket: `ipam.agent_socket`, else `$CALICO_IPAM_SOCKET`, else the
    /// default path.
    pub fn agent_socket<F>(&self, env: F) -> PathBuf
    where
        F: Fn(&str) -> Option<String>,
    {
        if !self.ipam.agent_socket.is_empty() {
            return PathBuf::from(&self.ipam.agent_socket);
        }
        env(ENV_AGENT_SOCKET)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_AGENT_SOCKET))
    }

    /// The datastore settings (Calico's `CreateClient`: the config's datastore fields override
    /// the environment, which is then read as calicoctl reads it).
    pub fn api_config<F>(&self, env: F) -> Result<ApiConfig, CniError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let overrides: BTreeMap<&str, &str> = [
            ("CALICO_DATASTORE_TYPE", self.datastore_type.as_str()),
            ("CALICO_DATASTORE_PATH", self.datastore_path.as_str()),
            ("CALICO_ETCD_ENDPOINTS", self.etcd_endpoints.as_str()),
            (
                "CALICO_ETCD_DISCOVERY_SRV",
                self.etcd_discovery_srv.as_str(),
            ),
            ("CALICO_ETCD_KEY_FILE", self.etcd_key_file.as_str()),
            ("CALICO_ETCD_CERT_FILE", self.etcd_cert_file.as_str()),
            ("CALICO_ETCD_CA_CERT_FILE", self.etcd_ca_cert_file.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        ApiConfig::from_env(|k| overrides.get(k).map(|v| v.to_string()).or_else(|| env(k)))
            .map_err(|e| CniError::invalid_netconf(format!("datastore configuration: {e}")))
    }

    /// The `prevResult`, parsed in this configuration's version.
    pub fn prev_result(&self) -> Result<Option<CniResult>, CniError> {
        match &self.prev_result {
            None | Some(Value::Null) => Ok(None),
            Some(v) => CniResult::parse(v, &self.cni_version, "prevResult").map(Some),
        }
    }
}

/// Code 2: the message names the key and value, as the spec requires.
pub fn unsupported(key: &str, value: &str, why: &str) -> CniError {
    CniError::new(
        ErrorCode::UNSUPPORTED_FIELD,
        format!("unsupported field in network configuration: {key}: {value}"),
    )
    .with_details(why)
}

#[cfg(test)]
mod tests;
