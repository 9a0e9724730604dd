//! Choosing and opening the datastore the way calicoctl does (`calicoctl/commands/clientmgr`,
//! `libcalico-go/lib/apiconfig/{apiconfig,load}.go`):
//!
//! 1. `--config FILE` (default `/etc/calico/calicoctl.cfg`): a YAML/JSON document
//!    `apiVersion: projectcalico.org/v3`, `kind: CalicoAPIConfig`, `spec: {...}` with Calico's
//!    field names (`datastoreType`, `etcdEndpoints`, `etcdCACertFile`, `etcdCertFile`,
//!    `etcdKeyFile`, `etcdUsername`, `etcdPassword`, ...). Unknown fields are refused. A config
//!    path other than the default that does not exist is an error; a missing default file means
//!    "read the environment".
//! 2. The environment, envconfig-style: each setting is read from `CALICO_<NAME>` and then
//!    `<NAME>` (`DATASTORE_TYPE`, `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`,
//!    `ETCD_KEY_FILE`, `ETCD_USERNAME`, `ETCD_PASSWORD`).
//!
//! Our extension: datastore type `embedded`, the single-file SQLite store of
//! `calico-datastore`. Its path is `spec.embeddedPath` in the config file or `CALICO_DATASTORE_PATH`
//! in the environment, default [`DEFAULT_EMBEDDED_PATH`]. When no type is given, Calico picks
//! `etcdv3` if etcd endpoints are set and `kubernetes` otherwise; we pick `etcdv3` or `embedded`
//! (the Kubernetes API datastore is not implemented).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use calico_datastore::Datastore;
use serde::Deserialize;

use crate::error::ClientError;

/// calicoctl's default config file (`constants.DefaultConfigPath`).
pub const DEFAULT_CONFIG_PATH: &str = "/etc/calico/calicoctl.cfg";
/// Where the embedded store lives unless configured otherwise.
pub const DEFAULT_EMBEDDED_PATH: &str = "/var/lib/calico/calico.db";
/// Environment variable naming the embedded store's file.
pub const ENV_DATASTORE_PATH: &str = "CALICO_DATASTORE_PATH";

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatastoreType {
    EtcdV3,
    Embedded,
    /// Recognised so the error can say it is unsupported.
    Kubernetes,
}

impl DatastoreType {
    pub fn parse(s: &str) -> Result<DatastoreType, ClientError> {
        match s {
            "etcdv3" => Ok(DatastoreType::EtcdV3),
            "embedded" => Ok(DatastoreType::Embedded),
            "kubernetes" => Ok(DatastoreType::Kubernetes),
            other => Err(ClientError::Config(format!(
                "unknown datastoreType {other:?}; expected etcdv3 or embedded"
            ))),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            DatastoreType::EtcdV3 => "etcdv3",
            DatastoreType::Embedded => "embedded",
            DatastoreType::Kubernetes => "kubernetes",
        }
    }
}

/// `CalicoAPIConfigSpec`: Calico's fields, plus `embeddedPath`. The Kubernetes fields are
/// accepted (so existing files parse) but unused.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiConfigSpec {
    #[serde(default)]
    pub datastore_type: String,
    #[serde(default)]
    pub etcd_endpoints: String,
    #[serde(default)]
    pub etcd_discovery_srv: String,
    #[serde(default)]
    pub etcd_username: String,
    #[serde(default)]
    pub etcd_password: String,
    #[serde(default)]
    pub etcd_key_file: String,
    #[serde(default)]
    pub etcd_cert_file: String,
    #[serde(default, rename = "etcdCACertFile")]
    pub etcd_ca_cert_file: String,
    #[serde(default)]
    pub etcd_key: String,
    #[serde(default)]
    pub etcd_cert: String,
    #[serde(default, rename = "etcdCACert")]
    pub etcd_ca_cert: String,
    /// Our extension: the embedded store's file.
    #[serde(default)]
    pub embedded_path: String,

    #[serde(default)]
    pub kubeconfig: Option<serde_json::Value>,
    #[serde(default, rename = "k8sAPIEndpoint")]
    pub k8s_api_endpoint: Option<serde_json::Value>,
    #[serde(default)]
    pub k8s_key_file: Option<serde_json::Value>,
    #[serde(default)]
    pub k8s_cert_file: Option<serde_json::Value>,
    #[serde(default, rename = "k8sCAFile")]
    pub k8s_ca_file: Option<serde_json::Value>,
    #[serde(default, rename = "k8sAPIToken")]
    pub k8s_api_token: Option<serde_json::Value>,
    #[serde(default, rename = "k8sInsecureSkipTLSVerify")]
    pub k8s_insecure_skip_tls_verify: Option<serde_json::Value>,
    #[serde(default)]
    pub k8s_disable_node_poll: Option<serde_json::Value>,
    #[serde(default, rename = "usePodCIDR")]
    pub use_pod_cidr: Option<serde_json::Value>,
    #[serde(default)]
    pub kubeconfig_inline: Option<serde_json::Value>,
    #[serde(default, rename = "k8sClientQPS")]
    pub k8s_client_qps: Option<serde_json::Value>,
    #[serde(default)]
    pub k8s_client_burst: Option<serde_json::Value>,
    #[serde(default)]
    pub k8s_current_context: Option<serde_json::Value>,
    #[serde(default, rename = "calicoAPIGroup")]
    pub calico_api_group: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ApiConfigFile {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    spec: ApiConfigSpec,
}

/// A loaded client configuration with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    pub datastore_type: DatastoreType,
    pub spec: ApiConfigSpec,
}

impl ApiConfig {
    /// calicoctl's `LoadClientConfig`: the config file at `path` (or the default path), falling
    /// back to the environment only when the default file does not exist.
    pub fn load(path: Option<&Path>) -> Result<ApiConfig, ClientError> {
        Self::load_with(path, |k| std::env::var(k).ok())
    }

    /// [`ApiConfig::load`] reading variables through `env` (for tests).
    pub fn load_with<F>(path: Option<&Path>, env: F) -> Result<ApiConfig, ClientError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let default = Path::new(DEFAULT_CONFIG_PATH);
        let path = path.unwrap_or(default);
        if !path.exists() {
            if path != default {
                return Err(ClientError::Config(format!(
                    "Error reading config file: {}",
                    path.display()
                )));
            }
            return Self::from_env(env);
        }
        Self::from_file(path)
    }

    /// Reads a `CalicoAPIConfig` file.
    pub fn from_file(path: &Path) -> Result<ApiConfig, ClientError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ClientError::Config(format!(
                "Error reading config file: {}: {e}",
                path.display()
            ))
        })?;
        Self::from_text(&text)
            .map_err(|e| ClientError::Config(format!("syntax error in {}: {e}", path.display())))
    }

    /// Parses a `CalicoAPIConfig` document (YAML or JSON).
    pub fn from_text(text: &str) -> Result<ApiConfig, ClientError> {
        let file: ApiConfigFile = serde_saphyr::from_str(text).map_err(|e| {
            ClientError::Config(format!("failed to parse config as YAML/JSON: {e}"))
        })?;
        if file.api_version != calico_api::API_VERSION {
            return Err(ClientError::Config(format!(
                "invalid config file: unknown APIVersion '{}'",
                file.api_version
            )));
        }
        if file.kind != "CalicoAPIConfig" {
            return Err(ClientError::Config(format!(
                "invalid config file: expected kind 'CalicoAPIConfig', got '{}'",
                file.kind
            )));
        }
        Self::with_defaults(file.spec)
    }

    /// Builds the configuration from environment variables (see the module docs).
    pub fn from_env<F>(env: F) -> Result<ApiConfig, ClientError>
    where
        F: Fn(&str) -> Option<String>,
    {
        // envconfig: the prefixed name wins, the bare name is the fallback; empty means unset.
        let var = |name: &str| -> String {
            env(&format!("CALICO_{name}"))
                .filter(|v| !v.is_empty())
                .or_else(|| env(name).filter(|v| !v.is_empty()))
                .unwrap_or_default()
        };
        let spec = ApiConfigSpec {
            datastore_type: var("DATASTORE_TYPE"),
            etcd_endpoints: var("ETCD_ENDPOINTS"),
            etcd_discovery_srv: var("ETCD_DISCOVERY_SRV"),
            etcd_username: var("ETCD_USERNAME"),
            etcd_password: var("ETCD_PASSWORD"),
            etcd_key_file: var("ETCD_KEY_FILE"),
            etcd_cert_file: var("ETCD_CERT_FILE"),
            etcd_ca_cert_file: var("ETCD_CA_CERT_FILE"),
            embedded_path: var("DATASTORE_PATH"),
            ..Default::default()
        };
        Self::with_defaults(spec)
    }

    /// `applyConfigDefaults`, with `embedded` instead of `kubernetes` as the fallback.
    fn with_defaults(spec: ApiConfigSpec) -> Result<ApiConfig, ClientError> {
        let datastore_type = if spec.datastore_type.is_empty() {
            if spec.etcd_endpoints.is_empty() {
                DatastoreType::Embedded
            } else {
                DatastoreType::EtcdV3
            }
        } else {
            DatastoreType::parse(&spec.datastore_type)?
        };
        Ok(ApiConfig {
            datastore_type,
            spec,
        })
    }

    /// The embedded store's file.
    pub fn embedded_path(&self) -> PathBuf {
        if self.spec.embedded_path.is_empty() {
            PathBuf::from(DEFAULT_EMBEDDED_PATH)
        } else {
            PathBuf::from(&self.spec.embedded_path)
        }
    }

    /// The etcd settings (`NewEtcdV3Client`'s checks first).
    pub fn etcd_config(&self) -> Result<calico_datastore::etcd::EtcdConfig, ClientError> {
        let s = &self.spec;
        if !s.etcd_endpoints.is_empty() && !s.etcd_discovery_srv.is_empty() {
            return Err(ClientError::Config(
                "multiple discovery or bootstrap options specified, use either \"etcdEndpoints\" \
                 or \"etcdDiscoverySrv\""
                    .into(),
            ));
        }
        if !s.etcd_discovery_srv.is_empty() {
            return Err(ClientError::Config(
                "etcdDiscoverySrv (DNS SRV discovery) is not supported; set etcdEndpoints".into(),
            ));
        }
        if s.etcd_endpoints.is_empty() {
            return Err(ClientError::Config("no etcd endpoints specified".into()));
        }
        let inline =
            !s.etcd_cert.is_empty() || !s.etcd_key.is_empty() || !s.etcd_ca_cert.is_empty();
        let files = !s.etcd_cert_file.is_empty()
            || !s.etcd_key_file.is_empty()
            || !s.etcd_ca_cert_file.is_empty();
        if inline && files {
            return Err(ClientError::Config(
                "Cannot mix inline certificate-key and certificate / key files".into(),
            ));
        }
        if inline {
            return Err(ClientError::Config(
                "inline etcd certificates (etcdCert, etcdKey, etcdCACert) are not supported; \
                 use etcdCertFile, etcdKeyFile and etcdCACertFile"
                    .into(),
            ));
        }
        let mut cfg = calico_datastore::etcd::EtcdConfig::from_endpoints_str(&s.etcd_endpoints)
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let path = |p: &str| (!p.is_empty()).then(|| PathBuf::from(p));
        cfg.ca_cert_file = path(&s.etcd_ca_cert_file);
        cfg.cert_file = path(&s.etcd_cert_file);
        cfg.key_file = path(&s.etcd_key_file);
        if !s.etcd_username.is_empty() && !s.etcd_password.is_empty() {
            cfg = cfg.with_credentials(&s.etcd_username, &s.etcd_password);
        }
        cfg.validate()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(cfg)
    }

    /// Opens the configured datastore.
    pub async fn connect(&self) -> Result<Arc<dyn Datastore>, ClientError> {
        match self.datastore_type {
            DatastoreType::Embedded => {
                let path = self.embedded_path();
                if let Some(dir) = path.parent()
                    && !dir.as_os_str().is_empty()
                    && !dir.exists()
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        ClientError::Config(format!(
                            "cannot create the directory of the embedded datastore {}: {e}",
                            path.display()
                        ))
                    })?;
                }
                let ds = calico_datastore::EmbeddedDatastore::open(&path).map_err(|e| {
                    ClientError::Config(format!(
                        "cannot open the embedded datastore {}: {e}",
                        path.display()
                    ))
                })?;
                Ok(Arc::new(ds))
            }
            DatastoreType::EtcdV3 => {
                let cfg = self.etcd_config()?;
                let ds = calico_datastore::etcd::EtcdDatastore::connect(cfg)
                    .await
                    .map_err(ClientError::Datastore)?;
                Ok(Arc::new(ds))
            }
            DatastoreType::Kubernetes => Err(ClientError::Config(
                "datastoreType kubernetes is not supported; use etcdv3 or embedded".into(),
            )),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_to_embedded() {
        let c = ApiConfig::from_env(env(&[])).unwrap();
        assert_eq!(c.datastore_type, DatastoreType::Embedded);
        assert_eq!(c.embedded_path(), PathBuf::from(DEFAULT_EMBEDDED_PATH));
        let c = ApiConfig::from_env(env(&[("CALICO_DATASTORE_PATH", "/tmp/x.db")])).unwrap();
        assert_eq!(c.embedded_path(), PathBuf::from("/tmp/x.db"));
    }

    #[test]
    fn etcd_from_env_prefixed_wins() {
        let c = ApiConfig::from_env(env(&[
            ("ETCD_ENDPOINTS", "http://127.0.0.1:1"),
            ("CALICO_ETCD_ENDPOINTS", "http://127.0.0.1:2379"),
            ("ETCD_CA_CERT_FILE", "/ca.pem"),
        ]))
        .unwrap();
        assert_eq!(c.datastore_type, DatastoreType::EtcdV3);
        assert_eq!(c.spec.etcd_endpoints, "http://127.0.0.1:2379");
        assert_eq!(c.spec.etcd_ca_cert_file, "/ca.pem");
        let e = ApiConfig::from_env(env(&[("DATASTORE_TYPE", "etcdv3")])).unwrap();
        assert!(e.etcd_config().is_err());
    }

    #[test]
    fn config_file_fields() {
        let c = ApiConfig::from_text(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  \
             datastoreType: etcdv3\n  etcdEndpoints: https://127.0.0.1:2379,https://127.0.0.2:2379\n  \
             etcdCACertFile: /etc/ca.pem\n",
        )
        .unwrap();
        assert_eq!(c.datastore_type, DatastoreType::EtcdV3);
        let cfg = c.etcd_config().unwrap();
        assert_eq!(cfg.endpoints.len(), 2);
        assert_eq!(cfg.ca_cert_file, Some(PathBuf::from("/etc/ca.pem")));

        let c = ApiConfig::from_text(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: embedded\n  embeddedPath: /data/c.db\n",
        )
        .unwrap();
        assert_eq!(c.embedded_path(), PathBuf::from("/data/c.db"));
    }

    #[test]
    fn config_file_errors() {
        let e = ApiConfig::from_text("apiVersion: v1\nkind: CalicoAPIConfig\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid config file: unknown APIVersion 'v1'"
        );
        let e = ApiConfig::from_text("apiVersion: projectcalico.org/v3\nkind: Foo\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("expected kind 'CalicoAPIConfig', got 'Foo'")
        );
        let e = ApiConfig::from_text(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec: {etcdEndpointz: x}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("etcdEndpointz"), "{e}");
        let e = ApiConfig::from_text(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec: {datastoreType: mongo}\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("mongo"));
        let e = ApiConfig::load_with(Some(Path::new("/nonexistent/calicoctl.cfg")), env(&[]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Error reading config file: /nonexistent/calicoctl.cfg"
        );
    }
}
