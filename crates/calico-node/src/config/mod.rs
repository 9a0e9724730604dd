//! calico-node's configuration, read from the environment exactly as Calico's calico-node
//! reads it (`node/pkg/lifecycle/startup/startup.go`, `node/pkg/lifecycle/utils/utils.go`,
//! `node/pkg/calicoclient`, Felix's `FELIX_*` parameters), plus our own `CALICO_IPAM_SOCKET`
//! and `CALICO_NODE_NETNS`. Parsing is pure over an [`Environment`]; a bad value is an error
//! naming the variable.

mod env;
pub mod felix;
pub mod pools;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use calico_api::asnumber::ASNumber;
use calico_client::{ApiConfig, DatastoreType};

use crate::autodetect::AutodetectMethod;
pub use env::{Environment, MapEnv, ProcessEnv};
pub use felix::FelixEnv;
pub use pools::{DefaultPools, PoolSettings};

/// Calico's node-name file (`/var/lib/calico/nodename`, overridable with
/// `CALICO_NODENAME_FILE`), written at start-up and read back when `NODENAME` is unset.
pub const DEFAULT_NODENAME_FILE: &str = "/var/lib/calico/nodename";

/// A configuration error; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{var}={value:?}: {reason}")]
    Invalid {
        var: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Other(String),
}

impl ConfigError {
    pub fn invalid(var: &str, value: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            var: var.to_string(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// `IP` / `IP6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpSetting {
    /// Unset or empty. IPv4: autodetect only if the Node has no address yet; IPv6: nothing.
    Unset,
    /// `autodetect`.
    Autodetect,
    /// `none`: keep what the Node has, detect nothing.
    None,
    /// An address, with its prefix length when given (`10.0.0.5/24`). Without one, the prefix
    /// of the matching interface address is used, else a host prefix (`GetLocalCIDR`).
    Address { ip: IpAddr, prefix: Option<u8> },
}

impl fmt::Display for IpSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpSetting::Unset => Ok(()),
            IpSetting::Autodetect => f.write_str("autodetect"),
            IpSetting::None => f.write_str("none"),
            IpSetting::Address { ip, prefix: None } => write!(f, "{ip}"),
            IpSetting::Address {
                ip,
                prefix: Some(p),
            } => write!(f, "{ip}/{p}"),
        }
    }
}

impl IpSetting {
    fn parse(var: &str, raw: Option<String>, version: u8) -> Result<IpSetting, ConfigError> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(IpSetting::Unset);
        };
        match raw.as_str() {
            "autodetect" => return Ok(IpSetting::Autodetect),
            "none" => return Ok(IpSetting::None),
            _ => {}
        }
        let (ip_s, prefix_s) = match raw.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (raw.as_str(), None),
        };
        let bad = || {
            ConfigError::invalid(
                var,
                &raw,
                format!(
                    "not a valid IPv{version} address (expected autodetect, none, an address or address/prefix)"
                ),
            )
        };
        let ip: IpAddr = ip_s.parse().map_err(|_| bad())?;
        let is_v4 = ip.is_ipv4();
        if (version == 4) != is_v4 {
            return Err(bad());
        }
        let prefix = match prefix_s {
            None => None,
            Some(p) => {
                let n: u8 = p.parse().map_err(|_| bad())?;
                if n > if is_v4 { 32 } else { 128 } {
                    return Err(bad());
                }
                Some(n)
            }
        };
        Ok(IpSetting::Address { ip, prefix })
    }
}

/// `CALICO_NETWORKING_BACKEND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkingBackend {
    /// `bird` (the default): BGP.
    Bird,
    /// `vxlan`: VXLAN only, no BGP.
    Vxlan,
    /// `none`: policy only; no node addresses or AS are written.
    None,
}

/// Shard tables of the policy dataplane unless `CALICO_NFT_SHARDS` says otherwise: enough
/// that a node's namespaces rarely share one (a change validates only its own table), few
/// enough that the base chains every packet passes stay cheap.
pub const DEFAULT_NFT_SHARDS: u16 = 16;

/// Everything calico-node reads at start.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// `NODENAME`, else the node-name file, else `HOSTNAME` (lower-cased), else the host name
    /// (lower-cased).
    pub node_name: String,
    /// `DATASTORE_TYPE` (`etcdv3`, or `embedded` for our single-file store at
    /// `CALICO_DATASTORE_PATH`), `ETCD_ENDPOINTS`, `ETCD_{KEY,CERT,CA_CERT}_FILE`, ... as
    /// calicoctl reads them (each also as `CALICO_<NAME>`).
    pub datastore: ApiConfig,
    /// `IP`.
    pub ipv4: IpSetting,
    /// `IP6`.
    pub ipv6: IpSetting,
    /// `IP_AUTODETECTION_METHOD`.
    pub ipv4_autodetection: AutodetectMethod,
    /// `IP6_AUTODETECTION_METHOD`.
    pub ipv6_autodetection: AutodetectMethod,
    /// `AS`.
    pub as_number: Option<ASNumber>,
    /// `CALICO_NETWORKING_BACKEND`.
    pub networking_backend: NetworkingBackend,
    /// `CALICO_IPV4POOL_*`, `CALICO_IPV6POOL_*`, `NO_DEFAULT_POOLS`.
    pub pools: DefaultPools,
    /// `FELIX_*`.
    pub felix: FelixEnv,
    /// `CALICO_IPAM_SOCKET` (ours): where the IPAM service listens.
    pub ipam_socket: PathBuf,
    /// `CALICO_NODE_NETNS` (ours): the network namespace the dataplane, the address
    /// autodetection and the health/metrics listeners run in. Unset = the agent's own.
    pub netns: Option<PathBuf>,
    /// `CALICO_NODENAME_FILE`.
    pub nodename_file: PathBuf,
    /// `DISABLE_NODE_IP_CHECK=true`: skip the check for other nodes using our address.
    pub disable_node_ip_check: bool,
    /// `CLUSTER_TYPE`, recorded in ClusterInformation.
    pub cluster_type: String,
    /// `CALICO_K8S_NODE_REF`: the orchestrator's name for this node.
    pub k8s_node_ref: Option<String>,
    /// `AUTODETECT_POLL_INTERVAL` (a Go duration, default 60 s): how often the running agent
    /// re-detects its addresses when `IP` or `IP6` is `autodetect`.
    pub autodetect_poll_interval: std::time::Duration,
    /// `CALICO_ROUTER_ID`: the BGP router id (`hash`, or an IPv4 address); unset = the
    /// node's IPv4 address.
    pub router_id: Option<String>,
    /// `CALICO_NFT_SHARDS` (ours, default [`DEFAULT_NFT_SHARDS`], 0 to
    /// `calico_nft::MAX_SHARDS`): how many shard tables workload policy is spread over, by
    /// namespace (`calico_nft::PolicyTables`); 0 puts everything in table `calico`.
    pub nft_shards: u16,
    /// `CALICO_BGP_STATUS_SOCKET` (ours, default `/var/run/calico/bgp.ctl`, where Calico has
    /// `bird.ctl`): the speaker's status for `calicoctl node status` and `-bird-ready`.
    pub bgp_status_socket: PathBuf,
    /// `CALICO_BGP_SECRETS_DIR` (ours, default `/etc/calico/bgp-secrets`): BGP passwords from
    /// `secretKeyRef`s are read from `<dir>/<secret>/<key>`, as a mounted Secret.
    pub bgp_secrets_dir: PathBuf,
    /// Things worth a warning at start (e.g. unknown `FELIX_*` variables).
    pub warnings: Vec<String>,
}

impl NodeConfig {
    /// Reads the configuration from the process environment.
    pub fn from_process_env() -> Result<NodeConfig, ConfigError> {
        Self::from_env(&ProcessEnv)
    }

    /// Reads the configuration from `env`.
    pub fn from_env(env: &dyn Environment) -> Result<NodeConfig, ConfigError> {
        let var = |name: &str| env.var(name).filter(|v| !v.is_empty());
        let mut warnings = Vec::new();

        let nodename_file = var("CALICO_NODENAME_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_NODENAME_FILE));
        let node_name = determine_node_name(env, &nodename_file)?;

        let datastore = ApiConfig::from_env(|k| env.var(k)).map_err(|e| {
            ConfigError::Other(format!(
                "datastore configuration (DATASTORE_TYPE, ETCD_*): {e}"
            ))
        })?;
        match datastore.datastore_type {
            DatastoreType::Kubernetes => {
                return Err(ConfigError::invalid(
                    "DATASTORE_TYPE",
                    "kubernetes",
                    "the Kubernetes API datastore is not supported; use etcdv3 or embedded",
                ));
            }
            DatastoreType::EtcdV3 => {
                datastore
                    .etcd_config()
                    .map_err(|e| ConfigError::Other(format!("etcd configuration (ETCD_*): {e}")))?;
            }
            DatastoreType::Embedded => {}
        }

        let ipv4 = IpSetting::parse("IP", env.var("IP"), 4)?;
        let ipv6 = IpSetting::parse("IP6", env.var("IP6"), 6)?;
        let method = |name: &str| -> Result<AutodetectMethod, ConfigError> {
            let raw = env.var(name).unwrap_or_default();
            AutodetectMethod::parse(&raw).map_err(|reason| ConfigError::invalid(name, &raw, reason))
        };
        let ipv4_autodetection = method("IP_AUTODETECTION_METHOD")?;
        let ipv6_autodetection = method("IP6_AUTODETECTION_METHOD")?;

        let as_number = match var("AS") {
            None => None,
            Some(raw) => Some(ASNumber::parse(&raw).map_err(|e| {
                ConfigError::invalid("AS", &raw, format!("the AS number is not valid: {e}"))
            })?),
        };

        let networking_backend = match var("CALICO_NETWORKING_BACKEND").as_deref() {
            None | Some("bird") => NetworkingBackend::Bird,
            Some("vxlan") => NetworkingBackend::Vxlan,
            Some("none") => NetworkingBackend::None,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "CALICO_NETWORKING_BACKEND",
                    other,
                    "expected bird, vxlan or none",
                ));
            }
        };

        let pools = DefaultPools::from_env(env)?;
        let felix = FelixEnv::parse(&env.vars())?;
        for u in &felix.unknown {
            warnings.push(format!("ignoring unknown Felix parameter {u}"));
        }

        let ipam_socket = calico_ipam_rpc::socket_path_from_value(
            env.var(calico_ipam_rpc::ENV_SOCKET_PATH)
                .as_deref()
                .map(std::ffi::OsStr::new),
        );
        if !ipam_socket.is_absolute() {
            return Err(ConfigError::invalid(
                calico_ipam_rpc::ENV_SOCKET_PATH,
                &ipam_socket.display().to_string(),
                "must be an absolute path",
            ));
        }
        let netns = var("CALICO_NODE_NETNS").map(PathBuf::from);
        if let Some(ns) = &netns
            && !ns.is_absolute()
        {
            return Err(ConfigError::invalid(
                "CALICO_NODE_NETNS",
                &ns.display().to_string(),
                "must be the absolute path of a network namespace (e.g. /run/netns/node1)",
            ));
        }

        let autodetect_poll_interval = match var("AUTODETECT_POLL_INTERVAL") {
            None => std::time::Duration::from_secs(60),
            Some(raw) => {
                let d = calico_api::duration::Duration::parse(&raw).map_err(|e| {
                    ConfigError::invalid("AUTODETECT_POLL_INTERVAL", &raw, e.to_string())
                })?;
                if d.nanos() <= 0 {
                    return Err(ConfigError::invalid(
                        "AUTODETECT_POLL_INTERVAL",
                        &raw,
                        "must be a positive duration (e.g. 60s)",
                    ));
                }
                std::time::Duration::from_nanos(d.nanos() as u64)
            }
        };

        let router_id = var("CALICO_ROUTER_ID");
        if let Some(r) = &router_id
            && r != "hash"
            && r.parse::<std::net::Ipv4Addr>().is_err()
        {
            return Err(ConfigError::invalid(
                "CALICO_ROUTER_ID",
                r,
                "must be an IPv4 address or `hash`",
            ));
        }
        let nft_shards = match var("CALICO_NFT_SHARDS") {
            None => DEFAULT_NFT_SHARDS,
            Some(raw) => match raw.trim().parse::<u16>() {
                Ok(n) if n <= calico_nft::MAX_SHARDS => n,
                _ => {
                    return Err(ConfigError::invalid(
                        "CALICO_NFT_SHARDS",
                        &raw,
                        format!("must be a number from 0 to {}", calico_nft::MAX_SHARDS),
                    ));
                }
            },
        };
        let bgp_secrets_dir = var("CALICO_BGP_SECRETS_DIR")
            .map_or_else(|| PathBuf::from("/etc/calico/bgp-secrets"), PathBuf::from);

        let bgp_status_socket = calico_bgp_status::socket_path_from_value(
            env.var(calico_bgp_status::ENV_SOCKET)
                .as_deref()
                .map(std::ffi::OsStr::new),
        );
        if !bgp_status_socket.is_absolute() {
            return Err(ConfigError::invalid(
                calico_bgp_status::ENV_SOCKET,
                &bgp_status_socket.display().to_string(),
                "must be an absolute path",
            ));
        }

        Ok(NodeConfig {
            bgp_status_socket,
            router_id,
            nft_shards,
            bgp_secrets_dir,
            autodetect_poll_interval,
            node_name,
            datastore,
            ipv4,
            ipv6,
            ipv4_autodetection,
            ipv6_autodetection,
            as_number,
            networking_backend,
            pools,
            felix,
            ipam_socket,
            netns,
            nodename_file,
            disable_node_ip_check: var("DISABLE_NODE_IP_CHECK").as_deref() == Some("true"),
            cluster_type: env.var("CLUSTER_TYPE").unwrap_or_default(),
            k8s_node_ref: var("CALICO_K8S_NODE_REF"),
            warnings,
        })
    }
}

/// `utils.DetermineNodeName`: `NODENAME` (trimmed), else the node-name file, else `HOSTNAME`
/// (trimmed, lower-cased), else the host name (trimmed, lower-cased).
fn determine_node_name(
    env: &dyn Environment,
    nodename_file: &std::path::Path,
) -> Result<String, ConfigError> {
    let name = if let Some(n) = env.var("NODENAME").map(|n| n.trim().to_string())
        && !n.is_empty()
    {
        n
    } else if let Some(n) = env.read_file(nodename_file).map(|n| n.trim().to_string())
        && !n.is_empty()
    {
        n
    } else if let Some(n) = env.var("HOSTNAME").map(|n| n.trim().to_lowercase())
        && !n.is_empty()
    {
        n
    } else if let Some(n) = env.hostname().map(|n| n.trim().to_lowercase())
        && !n.is_empty()
    {
        n
    } else {
        return Err(ConfigError::Other(
            "cannot determine the node name: set NODENAME".into(),
        ));
    };
    // Node names become etcd key segments and resource names (DNS-1123 subdomains).
    let ok = name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !ok {
        return Err(ConfigError::invalid(
            "NODENAME",
            &name,
            "a node name must be a lower-case DNS subdomain (a-z, 0-9, '-', '.')",
        ));
    }
    Ok(name)
}
