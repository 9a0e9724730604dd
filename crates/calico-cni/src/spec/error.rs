//! The CNI error result (SPEC.md section 5 "Error"): `{cniVersion, code, msg, details}` on
//! stdout, with a non-zero exit code. Codes 0-99 are the spec's well-known errors; 100+ are
//! plugin specific. Calico's plugins use libcni's `ErrInternal` (999) for everything that is not
//! one of the well-known cases (`skel.checkVersionAndCall` wraps plain errors that way).

use serde::Serialize;
use serde_json::{Map, Value};

/// A CNI error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// 1: the configuration's cniVersion is not one the plugin supports.
    pub const INCOMPATIBLE_VERSION: ErrorCode = ErrorCode(1);
    /// 2: a network configuration field the plugin does not support (the message names the
    /// key and its value).
    pub const UNSUPPORTED_FIELD: ErrorCode = ErrorCode(2);
    /// 3: the container is unknown or does not exist; the runtime needs no cleanup.
    pub const UNKNOWN_CONTAINER: ErrorCode = ErrorCode(3);
    /// 4: missing or invalid `CNI_*` environment variables (the message names them).
    pub const INVALID_ENV: ErrorCode = ErrorCode(4);
    /// 5: I/O failure, e.g. reading stdin.
    pub const IO_FAILURE: ErrorCode = ErrorCode(5);
    /// 6: content could not be decoded (bad JSON on stdin, unparsable version).
    pub const DECODING_FAILURE: ErrorCode = ErrorCode(6);
    /// 7: the network configuration failed validation.
    pub const INVALID_NETCONF: ErrorCode = ErrorCode(7);
    /// 11: a transient condition; the runtime should retry later.
    pub const TRY_AGAIN_LATER: ErrorCode = ErrorCode(11);
    /// 50 (spec 1.1, STATUS): the plugin cannot service ADD requests.
    pub const PLUGIN_NOT_AVAILABLE: ErrorCode = ErrorCode(50);
    /// 51 (spec 1.1, STATUS): not available, and existing containers may have limited
    /// connectivity.
    pub const LIMITED_CONNECTIVITY: ErrorCode = ErrorCode(51);
    /// 999: libcni's `ErrInternal`, which Calico's plugins return for their own failures.
    pub const INTERNAL: ErrorCode = ErrorCode(999);
}

/// A CNI error as printed on stdout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.display())]
pub struct CniError {
    pub code: ErrorCode,
    pub msg: String,
    pub details: String,
}

impl CniError {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// A plugin-side failure (code 999).
    pub fn internal(msg: impl Into<String>) -> CniError {
        CniError::new(ErrorCode::INTERNAL, msg)
    }

    /// A configuration that parsed but is not acceptable (code 7).
    pub fn invalid_netconf(msg: impl Into<String>) -> CniError {
        CniError::new(ErrorCode::INVALID_NETCONF, msg)
    }

    /// Stdin that is not the JSON we need (code 6).
    pub fn decoding(msg: impl Into<String>) -> CniError {
        CniError::new(ErrorCode::DECODING_FAILURE, msg)
    }

    /// Bad `CNI_*` variables (code 4).
    pub fn invalid_env(msg: impl Into<String>) -> CniError {
        CniError::new(ErrorCode::INVALID_ENV, msg)
    }

    /// Prefixes the message with context, keeping the code (e.g. "error adding container
    /// to network: ...").
    pub fn context(mut self, ctx: impl std::fmt::Display) -> CniError {
        self.msg = format!("{ctx}: {}", self.msg);
        self
    }

    fn display(&self) -> String {
        if self.details.is_empty() {
            self.msg.clone()
        } else {
            format!("{}; {}", self.msg, self.details)
        }
    }

    /// The error JSON for `cni_version` (the version of the request, or the newest one when
    /// the request could not be read). `details` is left out when empty, as libcni does.
    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::from(cni_version));
        m.insert("code".into(), Value::from(self.code.0));
        m.insert("msg".into(), Value::from(self.msg.clone()));
        if !self.details.is_empty() {
            m.insert("details".into(), Value::from(self.details.clone()));
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_error_example_round_trips() {
        // SPEC.md section 5 "Error" example.
        let e = CniError::new(ErrorCode::INVALID_NETCONF, "Invalid Configuration")
            .with_details("Network 192.168.0.0/31 too small to allocate from.");
        let want: Value = serde_json::from_str(
            r#"{"cniVersion":"1.1.0","code":7,"msg":"Invalid Configuration",
                "details":"Network 192.168.0.0/31 too small to allocate from."}"#,
        )
        .unwrap();
        assert_eq!(e.to_json("1.1.0"), want);
    }

    #[test]
    fn empty_details_are_omitted_and_context_prefixes() {
        let e = CniError::internal("boom").context("error adding container");
        assert_eq!(
            e.to_json("0.3.1"),
            serde_json::json!({"cniVersion":"0.3.1","code":999,"msg":"error adding container: boom"})
        );
        assert_eq!(e.to_string(), "error adding container: boom");
        assert_eq!(
            CniError::invalid_env("x").with_details("y").to_string(),
            "x; y"
        );
    }
}
