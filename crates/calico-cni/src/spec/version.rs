//! CNI spec versions: which ones the plugins speak, how a configuration's version is read
//! (libcni `version.ConfigDecoder`: a missing `cniVersion` means 0.1.0), the compatibility
//! checks `skel` makes before calling a verb, and the VERSION response.

use serde_json::Value;

use super::env::Command;
use super::error::{CniError, ErrorCode};

/// The newest spec version, used for responses when the request carries no usable version.
pub const CURRENT_VERSION: &str = "1.1.0";

/// Every version the plugins accept and answer in. Calico's plugins list 0.1.0 to 1.0.0
/// (`cniSpecVersion.PluginSupports` in plugin.go / ipam_plugin.go); we add 1.1.0, whose result
/// type is unchanged from 1.0.0 and which brings STATUS and GC.
pub const SUPPORTED_VERSIONS: [&str; 7] = [
    "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0",
];

/// A parsed `major.minor.micro` (libcni `version.ParseVersion`: missing parts are 0, the
/// empty string is 0.1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpecVersion(pub u32, pub u32, pub u32);

impl SpecVersion {
    pub fn parse(s: &str) -> Result<SpecVersion, CniError> {
        if s.is_empty() {
            return Ok(SpecVersion(0, 1, 0));
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() > 3 {
            return Err(CniError::decoding(format!(
                "invalid version {s:?}: too many parts"
            )));
        }
        let mut out = [0u32; 3];
        for (i, p) in parts.iter().enumerate() {
            out[i] = p.parse().map_err(|_| {
                CniError::decoding(format!("invalid version {s:?}: {p:?} is not a number"))
            })?;
        }
        Ok(SpecVersion(out[0], out[1], out[2]))
    }
}

/// The `cniVersion` of a configuration (libcni `ConfigDecoder.Decode`): "0.1.0" when absent
/// or empty; a decoding error (code 6) when stdin is not a JSON object with a string there.
pub fn config_version(stdin: &[u8]) -> Result<String, CniError> {
    let v: Value = serde_json::from_slice(stdin)
        .map_err(|e| CniError::decoding(format!("decoding version from network config: {e}")))?;
    let Value::Object(m) = v else {
        return Err(CniError::decoding(
            "decoding version from network config: expected a JSON object",
        ));
    };
    match m.get("cniVersion") {
        None | Some(Value::Null) => Ok("0.1.0".into()),
        Some(Value::String(s)) if s.is_empty() => Ok("0.1.0".into()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(CniError::decoding(format!(
            "decoding version from network config: cniVersion must be a string, got {other}"
        ))),
    }
}

/// The checks `skel.pluginMain` makes before running a verb: the configuration's version must
/// be one we support (code 1, libcni's "incompatible CNI versions" with its details text);
/// CHECK needs a configuration of at least 0.4.0, GC and STATUS at least 1.1.0.
pub fn check_compatible(command: Command, version: &str) -> Result<(), CniError> {
    let parsed = SpecVersion::parse(version)?;
    let minimum = match command {
        Command::Check => Some(("0.4.0", SpecVersion(0, 4, 0))),
        Command::Gc => Some(("1.1.0", SpecVersion(1, 1, 0))),
        Command::Status => Some(("1.1.0", SpecVersion(1, 1, 0))),
        _ => None,
    };
    if let Some((_, min)) = minimum
        && parsed < min
    {
        return Err(CniError::new(
            ErrorCode::INCOMPATIBLE_VERSION,
            format!("config version does not allow {}", command.as_str()),
        ));
    }
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(
            CniError::new(ErrorCode::INCOMPATIBLE_VERSION, "incompatible CNI versions")
                .with_details(format!(
                    "config is {version:?}, plugin supports {:?}",
                    SUPPORTED_VERSIONS
                )),
        );
    }
    Ok(())
}

/// The VERSION response (SPEC.md section 5 "Version"): `cniVersion` echoes the request's
/// (the newest version when stdin holds none; VERSION must work with any stdin, podman's
/// probe sends `{"cniVersion":"1.0.0"}` with dummy netns and ifname) and the supported list.
pub fn version_response(stdin: &[u8]) -> Value {
    let requested = serde_json::from_slice::<Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| CURRENT_VERSION.to_string());
    serde_json::json!({
        "cniVersion": requested,
        "supportedVersions": SUPPORTED_VERSIONS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_versions() {
        assert_eq!(SpecVersion::parse("").unwrap(), SpecVersion(0, 1, 0));
        assert_eq!(SpecVersion::parse("1").unwrap(), SpecVersion(1, 0, 0));
        assert_eq!(SpecVersion::parse("0.3.1").unwrap(), SpecVersion(0, 3, 1));
        assert!(SpecVersion::parse("1.2.3.4").is_err());
        assert_eq!(
            SpecVersion::parse("1.x").unwrap_err().code,
            ErrorCode::DECODING_FAILURE
        );
    }

    #[test]
    fn config_version_defaults_and_errors() {
        assert_eq!(config_version(br#"{"name":"n"}"#).unwrap(), "0.1.0");
        assert_eq!(config_version(br#"{"cniVersion":""}"#).unwrap(), "0.1.0");
        assert_eq!(
            config_version(br#"{"cniVersion":"0.4.0"}"#).unwrap(),
            "0.4.0"
        );
        assert_eq!(
            config_version(b"not json").unwrap_err().code,
            ErrorCode::DECODING_FAILURE
        );
        let e = config_version(br#"{"cniVersion":1}"#).unwrap_err();
        assert!(e.msg.contains("cniVersion must be a string"), "{e}");
    }

    #[test]
    fn compatibility_table() {
        // (command, config version, expected error message or None)
        let cases: &[(Command, &str, Option<&str>)] = &[
            (Command::Add, "0.1.0", None),
            (Command::Add, "0.2.0", None),
            (Command::Add, "0.3.0", None),
            (Command::Add, "0.3.1", None),
            (Command::Add, "0.4.0", None),
            (Command::Add, "1.0.0", None),
            (Command::Add, "1.1.0", None),
            (Command::Add, "1.2.0", Some("incompatible CNI versions")),
            (Command::Del, "0.5.0", Some("incompatible CNI versions")),
            (
                Command::Check,
                "0.3.1",
                Some("config version does not allow CHECK"),
            ),
            (Command::Check, "0.4.0", None),
            (
                Command::Gc,
                "1.0.0",
                Some("config version does not allow GC"),
            ),
            (Command::Gc, "1.1.0", None),
            (
                Command::Status,
                "0.4.0",
                Some("config version does not allow STATUS"),
            ),
            (Command::Status, "1.1.0", None),
        ];
        for (cmd, ver, want) in cases {
            let got = check_compatible(*cmd, ver);
            match want {
                None => assert!(got.is_ok(), "{cmd:?} {ver}: {got:?}"),
                Some(msg) => {
                    let e = got.unwrap_err();
                    assert_eq!(e.code, ErrorCode::INCOMPATIBLE_VERSION, "{cmd:?} {ver}");
                    assert_eq!(e.msg, *msg, "{cmd:?} {ver}");
                }
            }
        }
        let e = check_compatible(Command::Add, "9.9.9").unwrap_err();
        assert!(e.details.contains("config is \"9.9.9\""), "{}", e.details);
    }

    #[test]
    fn version_response_echoes_request() {
        let v = version_response(br#"{"cniVersion":"1.0.0"}"#);
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(
            v["supportedVersions"],
            serde_json::json!([
                "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"
            ])
        );
        assert_eq!(version_response(b"")["cniVersion"], CURRENT_VERSION);
        assert_eq!(version_response(b"garbage")["cniVersion"], CURRENT_VERSION);
    }
}
