//! How to reach an etcd v3 cluster: endpoints, TLS files, credentials and timeouts.
//!
//! Mirrors Calico's `EtcdConfig` (`libcalico-go/lib/apiconfig/apiconfig.go`): the environment
//! variables `ETCD_ENDPOINTS` (comma-separated URLs), `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`,
//! `ETCD_KEY_FILE`, `ETCD_USERNAME` and `ETCD_PASSWORD`, and the client timeouts of Calico's etcdv3
//! backend (`libcalico-go/lib/backend/etcdv3/etcdv3.go`: 10 s dial timeout, 30 s keep-alive
//! time, 10 s keep-alive timeout).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::DatastoreError;

/// Calico's etcdv3 `clientTimeout`.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on one unary request (a read, a transaction, a lease call). etcd itself gives up
/// on a proposal after about 7 s (`etcdserver: request timed out`), so this only fires when no
/// endpoint answers at all.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Calico's etcdv3 `keepaliveTime`.
pub const DEFAULT_KEEP_ALIVE_TIME: Duration = Duration::from_secs(30);
/// Calico's etcdv3 `keepaliveTimeout`.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection settings for [`super::EtcdDatastore::connect`]. Its `Debug` output hides the
/// password.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs of the cluster members, e.g. `https://10.0.0.1:2379`. A URL without a scheme
    /// gets `https://` when TLS files are configured and `http://` otherwise. Requests are
    /// balanced over the members that are reachable; unreachable ones are retried in the
    /// background.
    pub endpoints: Vec<String>,
    /// CA bundle that signed the members' server certificates (`ETCD_CA_CERT_FILE`).
    pub ca_cert_file: Option<PathBuf>,
    /// Client certificate for mutual TLS (`ETCD_CERT_FILE`); needs `key_file` too.
    pub cert_file: Option<PathBuf>,
    /// Private key of `cert_file` (`ETCD_KEY_FILE`).
    pub key_file: Option<PathBuf>,
    /// The CA bundle inline, as PEM text (Calico's `etcdCACert` config-file option). Inline
    /// PEMs and files can't be mixed.
    pub ca_cert_pem: Option<String>,
    /// The client certificate inline, as PEM text (`etcdCert`).
    pub cert_pem: Option<String>,
    /// The client key inline, as PEM text (`etcdKey`).
    pub key_pem: Option<String>,
    /// etcd user (`ETCD_USERNAME`); used only together with `password`, as Calico does.
    pub username: Option<String>,
    /// etcd password (`ETCD_PASSWORD`).
    pub password: Option<String>,
    /// How long `connect` (and each reconnect of a watch) waits for a member to answer.
    pub dial_timeout: Duration,
    /// Upper bound for one unary request.
    pub request_timeout: Duration,
    /// Interval of HTTP/2 keep-alive pings on open streams (detects dead connections under
    /// watches).
    pub keep_alive_time: Duration,
    /// How long a keep-alive ping may go unanswered before the connection is dropped.
    pub keep_alive_timeout: Duration,
}

impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("ca_cert_file", &self.ca_cert_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field(
                "ca_cert_pem",
                &self.ca_cert_pem.as_ref().map(|_| "<inline>"),
            )
            .field("cert_pem", &self.cert_pem.as_ref().map(|_| "<inline>"))
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dial_timeout", &self.dial_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("keep_alive_time", &self.keep_alive_time)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .finish()
    }
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            endpoints: Vec::new(),
            ca_cert_file: None,
            cert_file: None,
            key_file: None,
            ca_cert_pem: None,
            cert_pem: None,
            key_pem: None,
            username: None,
            password: None,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            keep_alive_time: DEFAULT_KEEP_ALIVE_TIME,
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
        }
    }
}

/// The environment variables Calico components read their etcd settings from.
pub const ENV_ENDPOINTS: &str = "ETCD_ENDPOINTS";
pub const ENV_CA_CERT_FILE: &str = "ETCD_CA_CERT_FILE";
pub const ENV_CERT_FILE: &str = "ETCD_CERT_FILE";
pub const ENV_KEY_FILE: &str = "ETCD_KEY_FILE";
pub const ENV_USERNAME: &str = "ETCD_USERNAME";
pub const ENV_PASSWORD: &str = "ETCD_PASSWORD";

impl EtcdConfig {
    /// A plain configuration for the given endpoints, with default timeouts.
    pub fn new<I, S>(endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// Parses Calico's comma-separated endpoint list (`ETCD_ENDPOINTS` /
    /// `etcdEndpoints`), e.g. `https://10.0.0.1:2379,https://10.0.0.2:2379`. Blank entries and
    /// surrounding spaces are ignored; an empty list is an error.
    pub fn from_endpoints_str(endpoints: &str) -> Result<Self, DatastoreError> {
        let eps = parse_endpoint_list(endpoints)?;
        Ok(EtcdConfig::new(eps))
    }

    /// Builds the configuration from the process environment (`ETCD_ENDPOINTS`,
    /// `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`, `ETCD_KEY_FILE`, `ETCD_USERNAME`,
    /// `ETCD_PASSWORD`).
    pub fn from_env() -> Result<Self, DatastoreError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// Like [`EtcdConfig::from_env`], reading variables through `get` (lets callers merge
    /// config files with the environment, and tests avoid touching the real environment).
    /// Empty values count as unset, as with Calico's envconfig.
    pub fn from_env_with<F>(get: F) -> Result<Self, DatastoreError>
    where
        F: Fn(&str) -> Option<String>,
    {
        let var = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let endpoints = var(ENV_ENDPOINTS).ok_or_else(|| {
            DatastoreError::Config(format!("{ENV_ENDPOINTS} is not set: no etcd endpoints"))
        })?;
        let mut cfg = EtcdConfig::new(parse_endpoint_list(&endpoints).map_err(|e| match e {
            DatastoreError::Config(msg) => {
                DatastoreError::Config(format!("{ENV_ENDPOINTS}: {msg}"))
            }
            other => other,
        })?);
        cfg.ca_cert_file = var(ENV_CA_CERT_FILE).map(PathBuf::from);
        cfg.cert_file = var(ENV_CERT_FILE).map(PathBuf::from);
        cfg.key_file = var(ENV_KEY_FILE).map(PathBuf::from);
        cfg.username = var(ENV_USERNAME);
        cfg.password = var(ENV_PASSWORD);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Sets the CA, client certificate and key files (mutual TLS).
    pub fn with_tls(
        mut self,
        ca_cert_file: impl Into<PathBuf>,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Self {
        self.ca_cert_file = Some(ca_cert_file.into());
        self.cert_file = Some(cert_file.into());
        self.key_file = Some(key_file.into());
        self
    }

    /// Sets user name and password (etcd authentication).
    pub fn with_credentials(mut self, username: &str, password: &str) -> Self {
        self.username = Some(username.to_string());
        self.password = Some(password.to_string());
        self
    }

    /// Sets the CA, client certificate and key as inline PEM text (mutual TLS).
    pub fn with_inline_tls(mut self, ca_cert_pem: &str, cert_pem: &str, key_pem: &str) -> Self {
        self.ca_cert_pem = Some(ca_cert_pem.to_string());
        self.cert_pem = Some(cert_pem.to_string());
        self.key_pem = Some(key_pem.to_string());
        self
    }

    fn uses_tls_files(&self) -> bool {
        self.ca_cert_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }

    fn uses_inline_tls(&self) -> bool {
        self.ca_cert_pem.is_some() || self.cert_pem.is_some() || self.key_pem.is_some()
    }

    /// Whether TLS is configured, by files or inline (then every endpoint must be `https://`).
    pub fn uses_tls(&self) -> bool {
        self.uses_tls_files() || self.uses_inline_tls()
    }

    /// Whether a client certificate is configured.
    pub fn has_client_cert(&self) -> bool {
        self.cert_file.is_some() || self.cert_pem.is_some()
    }

    /// The PEM bytes of the CA and of the client certificate and key, read from the files or
    /// taken inline. Call after [`EtcdConfig::validate`].
    pub(crate) fn tls_material(&self) -> Result<TlsMaterial, DatastoreError> {
        let ca = match (&self.ca_cert_file, &self.ca_cert_pem) {
            (Some(path), _) => Some(read_pem(ENV_CA_CERT_FILE, path)?),
            (None, Some(pem)) => Some(inline_pem("etcdCACert", pem)?),
            (None, None) => None,
        };
        let identity = match (
            &self.cert_file,
            &self.key_file,
            &self.cert_pem,
            &self.key_pem,
        ) {
            (Some(cert), Some(key), _, _) => {
                Some((read_pem(ENV_CERT_FILE, cert)?, read_pem(ENV_KEY_FILE, key)?))
            }
            (None, None, Some(cert), Some(key)) => {
                Some((inline_pem("etcdCert", cert)?, inline_pem("etcdKey", key)?))
            }
            _ => None,
        };
        Ok(TlsMaterial { ca, identity })
    }

    /// The credentials to authenticate with: only when both user and password are set
    /// (Calico: "Plumb through the username and password if both are configured").
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match (self.username.as_deref(), self.password.as_deref()) {
            (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => Some((u, p)),
            _ => None,
        }
    }

    /// The endpoints with their scheme made explicit (see [`EtcdConfig::endpoints`]).
    pub fn normalized_endpoints(&self) -> Result<Vec<String>, DatastoreError> {
        let tls = self.uses_tls();
        self.endpoints
            .iter()
            .map(|ep| normalize_endpoint(ep, tls))
            .collect()
    }

    /// Checks the configuration for mistakes that can be named before dialling: no endpoints,
    /// a certificate without its key (or the reverse), `http://` endpoints mixed with TLS
    /// files, `https://` endpoints without a CA, zero timeouts.
    pub fn validate(&self) -> Result<(), DatastoreError> {
        if self.endpoints.is_empty() {
            return Err(DatastoreError::Config(
                "no etcd endpoints configured".into(),
            ));
        }
        let endpoints = self.normalized_endpoints()?;
        if self.uses_tls_files() && self.uses_inline_tls() {
            // Calico: "Cannot mix inline certificate-key and certificate / key files".
            return Err(DatastoreError::Config(
                "cannot mix inline etcd certificates/keys with certificate/key files".into(),
            ));
        }
        if self.cert_pem.is_some() != self.key_pem.is_some() {
            return Err(DatastoreError::Config(
                "inline etcd client certificate and key must be given together (etcdCert and etcdKey)"
                    .into(),
            ));
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err(DatastoreError::Config(format!(
                    "{ENV_CERT_FILE} is set but {ENV_KEY_FILE} is not: a client certificate needs its key"
                )));
            }
            (None, Some(_)) => {
                return Err(DatastoreError::Config(format!(
                    "{ENV_KEY_FILE} is set but {ENV_CERT_FILE} is not: a client key needs its certificate"
                )));
            }
            _ => {}
        }
        if endpoints.iter().any(|e| e.starts_with("https://"))
            && self.ca_cert_file.is_none()
            && self.ca_cert_pem.is_none()
        {
            return Err(DatastoreError::Config(format!(
                "https etcd endpoints need {ENV_CA_CERT_FILE} (the CA that signed the etcd server certificates)"
            )));
        }
        for (what, d) in [
            ("dial timeout", self.dial_timeout),
            ("request timeout", self.request_timeout),
            ("keep-alive time", self.keep_alive_time),
            ("keep-alive timeout", self.keep_alive_timeout),
        ] {
            if d.is_zero() {
                return Err(DatastoreError::Config(format!(
                    "etcd {what} must not be zero"
                )));
            }
        }
        Ok(())
    }
}

fn parse_endpoint_list(list: &str) -> Result<Vec<String>, DatastoreError> {
    let eps: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if eps.is_empty() {
        return Err(DatastoreError::Config(format!(
            "no etcd endpoints in {list:?} (expected comma-separated URLs such as http://127.0.0.1:2379)"
        )));
    }
    Ok(eps)
}

/// Adds the scheme to a bare `host:port`, and rejects what etcd cannot serve: unknown schemes,
/// missing host, a path, and `http://` when TLS files are configured (the files would be
/// silently ignored otherwise).
fn normalize_endpoint(ep: &str, tls: bool) -> Result<String, DatastoreError> {
    let ep = ep.trim();
    let (scheme, rest) = match ep.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest),
        None => (if tls { "https" } else { "http" }.to_string(), ep),
    };
    if scheme != "http" && scheme != "https" {
        return Err(DatastoreError::Config(format!(
            "etcd endpoint {ep:?}: unsupported scheme {scheme:?} (use http:// or https://)"
        )));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() {
        return Err(DatastoreError::Config(format!(
            "etcd endpoint {ep:?} has no host"
        )));
    }
    if authority.contains('/') {
        return Err(DatastoreError::Config(format!(
            "etcd endpoint {ep:?} must be scheme://host:port without a path"
        )));
    }
    if tls && scheme == "http" {
        return Err(DatastoreError::Config(format!(
            "etcd endpoint {ep:?} uses http:// but TLS files are configured; use https://"
        )));
    }
    Ok(format!("{scheme}://{authority}"))
}

/// PEM bytes for TLS, whether they came from files or inline.
pub(crate) struct TlsMaterial {
    pub ca: Option<Vec<u8>>,
    /// Client certificate and key.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

fn inline_pem(what: &str, pem: &str) -> Result<Vec<u8>, DatastoreError> {
    if !pem.contains("-----BEGIN ") {
        return Err(DatastoreError::Config(format!(
            "inline {what} is not PEM text (no -----BEGIN line)"
        )));
    }
    Ok(pem.as_bytes().to_vec())
}

/// Reads a PEM file named by the setting `what`, with an error that says which setting and
/// which file is wrong.
pub(crate) fn read_pem(what: &str, path: &Path) -> Result<Vec<u8>, DatastoreError> {
    let data = std::fs::read(path).map_err(|e| {
        DatastoreError::Config(format!("cannot read {what} {}: {e}", path.display()))
    })?;
    if !data.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(DatastoreError::Config(format!(
            "{what} {} is not a PEM file (no -----BEGIN line)",
            path.display()
        )));
    }
    Ok(data)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn endpoints_list_is_split_and_trimmed() {
        let cfg =
            EtcdConfig::from_endpoints_str(" http://127.0.0.1:2379 ,, http://127.0.0.2:2379,")
                .unwrap();
        assert_eq!(
            cfg.endpoints,
            vec!["http://127.0.0.1:2379", "http://127.0.0.2:2379"]
        );
        assert!(matches!(
            EtcdConfig::from_endpoints_str(" , "),
            Err(DatastoreError::Config(_))
        ));
    }

    #[test]
    fn env_reads_calico_variables() {
        let cfg = EtcdConfig::from_env_with(env(&[
            ("ETCD_ENDPOINTS", "https://a:2379,https://b:2379"),
            ("ETCD_CA_CERT_FILE", "/etc/calico/ca.pem"),
            ("ETCD_CERT_FILE", "/etc/calico/cert.pem"),
            ("ETCD_KEY_FILE", "/etc/calico/key.pem"),
            ("ETCD_USERNAME", "calico"),
            ("ETCD_PASSWORD", "secret"),
        ]))
        .unwrap();
        assert_eq!(cfg.endpoints.len(), 2);
        assert_eq!(
            cfg.ca_cert_file.as_deref(),
            Some(Path::new("/etc/calico/ca.pem"))
        );
        assert_eq!(cfg.credentials(), Some(("calico", "secret")));
        assert_eq!(cfg.dial_timeout, DEFAULT_DIAL_TIMEOUT);
    }

    #[test]
    fn env_without_endpoints_names_the_variable() {
        let err = EtcdConfig::from_env_with(env(&[("ETCD_ENDPOINTS", "  ")])).unwrap_err();
        assert!(err.to_string().contains("ETCD_ENDPOINTS"), "{err}");
    }

    #[test]
    fn inline_pems_and_files_do_not_mix() {
        let pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
        let inline = EtcdConfig::new(["https://h:2379"]).with_inline_tls(pem, pem, pem);
        assert!(inline.validate().is_ok());
        assert!(inline.uses_tls() && inline.has_client_cert());
        let m = inline.tls_material().unwrap();
        assert!(m.ca.is_some() && m.identity.is_some());
        let mut mixed = inline.clone();
        mixed.key_file = Some("/k".into());
        assert!(
            mixed
                .validate()
                .unwrap_err()
                .to_string()
                .contains("cannot mix")
        );
        let mut half = inline.clone();
        half.key_pem = None;
        assert!(
            half.validate()
                .unwrap_err()
                .to_string()
                .contains("together")
        );
        let bad = EtcdConfig::new(["https://h:2379"]).with_inline_tls("junk", pem, pem);
        assert!(bad.tls_material().is_err());
        assert!(!format!("{inline:?}").contains("BEGIN"));
    }

    #[test]
    fn debug_hides_the_password() {
        let cfg = EtcdConfig::new(["http://h:2379"]).with_credentials("calico", "hunter2");
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("calico"), "{shown}");
    }

    #[test]
    fn credentials_need_both_parts() {
        let mut cfg = EtcdConfig::new(["http://127.0.0.1:2379"]);
        cfg.username = Some("calico".into());
        assert_eq!(cfg.credentials(), None);
        cfg.password = Some(String::new());
        assert_eq!(cfg.credentials(), None);
        cfg.password = Some("pw".into());
        assert_eq!(cfg.credentials(), Some(("calico", "pw")));
    }

    #[test]
    fn cert_without_key_is_rejected() {
        let err = EtcdConfig::from_env_with(env(&[
            ("ETCD_ENDPOINTS", "https://a:2379"),
            ("ETCD_CA_CERT_FILE", "/ca.pem"),
            ("ETCD_CERT_FILE", "/cert.pem"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("ETCD_KEY_FILE"), "{err}");
    }

    #[test]
    fn scheme_rules() {
        let plain = EtcdConfig::new(["127.0.0.1:2379", "HTTP://h:1/"]);
        assert_eq!(
            plain.normalized_endpoints().unwrap(),
            vec!["http://127.0.0.1:2379", "http://h:1"]
        );
        let tls = EtcdConfig::new(["127.0.0.1:2379"]).with_tls("/ca", "/c", "/k");
        assert_eq!(
            tls.normalized_endpoints().unwrap(),
            vec!["https://127.0.0.1:2379"]
        );
        let mixed = EtcdConfig::new(["http://127.0.0.1:2379"]).with_tls("/ca", "/c", "/k");
        assert!(
            mixed
                .validate()
                .unwrap_err()
                .to_string()
                .contains("https://")
        );
        let no_ca = EtcdConfig::new(["https://127.0.0.1:2379"]);
        assert!(
            no_ca
                .validate()
                .unwrap_err()
                .to_string()
                .contains("ETCD_CA_CERT_FILE")
        );
        let bad = EtcdConfig::new(["unix:///run/etcd.sock"]);
        assert!(bad.validate().unwrap_err().to_string().contains("scheme"));
        let path = EtcdConfig::new(["http://h:2379/v3"]);
        assert!(path.validate().unwrap_err().to_string().contains("path"));
        assert!(EtcdConfig::default().validate().is_err());
    }

    #[test]
    fn pem_reading_names_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let err = read_pem("ETCD_CA_CERT_FILE", &missing).unwrap_err();
        assert!(err.to_string().contains("ETCD_CA_CERT_FILE"), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "hello").unwrap();
        let err = read_pem("ETCD_CERT_FILE", &junk).unwrap_err();
        assert!(err.to_string().contains("not a PEM"), "{err}");
    }
}
