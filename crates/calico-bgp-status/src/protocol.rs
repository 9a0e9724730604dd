//! The wire protocol: one JSON object per line, in both directions.
//!
//! A request line is `{"version":1,"request":{"op":"status"}}`; its answer is
//! `{"version":1,"ok":{"result":"status","router_id":...,"peers":[...]}}` or
//! `{"version":1,"error":{"code":"...","message":"..."}}`. As in `calico-ipam-rpc`, the
//! version sits outside the typed body, so a peer of another release is told so plainly
//! ([`codes::VERSION_MISMATCH`]) rather than with a decode error about some changed field.

use serde::{Deserialize, Serialize};

use crate::types::SpeakerStatus;

/// The protocol version this crate speaks; bump it on any incompatible change of the types.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest line accepted, without its newline. A request is a few dozen bytes; a status with
/// a thousand peers is about 300 KiB. The limit only protects each side from a runaway peer.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Longest request line the server reads (requests carry no data).
pub const MAX_REQUEST_BYTES: usize = 4096;

/// Error codes a [`RemoteError`] carries. Stable strings: callers match on them.
pub mod codes {
    /// The line was not JSON, or not a request of this protocol.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The peer speaks another protocol version.
    pub const VERSION_MISMATCH: &str = "version_mismatch";
    /// The request line exceeded [`super::MAX_REQUEST_BYTES`]; the server closes after it.
    pub const REQUEST_TOO_LARGE: &str = "request_too_large";
    /// The speaker could not produce its status.
    pub const INTERNAL: &str = "internal";
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// The speaker's status and all its sessions.
    Status,
}

/// A successful answer body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    Status(SpeakerStatus),
}

/// A refused request: a stable code (see [`codes`]) and a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({code})")]
pub struct RemoteError {
    pub code: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        RemoteError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub version: u32,
    pub request: Request,
}

impl RequestFrame {
    pub fn new(request: Request) -> Self {
        RequestFrame {
            version: PROTOCOL_VERSION,
            request,
        }
    }

    /// The line to send (JSON plus `\n`).
    pub fn to_line(&self) -> Vec<u8> {
        encode_line(self)
    }
}

/// A response line: exactly one of `ok` and `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<Reply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RemoteError>,
}

impl ResponseFrame {
    pub fn ok(reply: Reply) -> Self {
        ResponseFrame {
            version: PROTOCOL_VERSION,
            ok: Some(reply),
            error: None,
        }
    }

    pub fn error(err: RemoteError) -> Self {
        ResponseFrame {
            version: PROTOCOL_VERSION,
            ok: None,
            error: Some(err),
        }
    }

    /// The line to send (JSON plus `\n`).
    pub fn to_line(&self) -> Vec<u8> {
        encode_line(self)
    }
}

fn encode_line<T: Serialize>(v: &T) -> Vec<u8> {
    // These types serialise infallibly (string-keyed structs, infallible time strings); an
    // internal-error frame stands in should that ever change.
    let mut line = serde_json::to_vec(v).unwrap_or_else(|e| {
        let f = ResponseFrame::error(RemoteError::new(
            codes::INTERNAL,
            format!("cannot encode message: {e}"),
        ));
        serde_json::to_vec(&f).unwrap_or_default()
    });
    line.push(b'\n');
    line
}

/// Reads the `version` member of a line before anything else. `Err` is a reason for humans.
fn split_version(line: &[u8]) -> Result<(u32, serde_json::Map<String, serde_json::Value>), String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let serde_json::Value::Object(obj) = value else {
        return Err("not a JSON object".to_string());
    };
    let version = match obj.get("version") {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("\"version\" is not a protocol version: {n}"))?,
        Some(other) => return Err(format!("\"version\" is not a number: {other}")),
        None => return Err("no \"version\" member".to_string()),
    };
    Ok((version, obj))
}

/// Decodes a request line as the server does. `Err` is the error to answer with.
pub fn decode_request(line: &[u8]) -> Result<Request, RemoteError> {
    let (version, mut obj) = split_version(line).map_err(|reason| {
        RemoteError::new(
            codes::BAD_REQUEST,
            format!("not a BGP status request: {reason}"),
        )
    })?;
    if version != PROTOCOL_VERSION {
        return Err(RemoteError::new(
            codes::VERSION_MISMATCH,
            format!(
                "the client speaks BGP status protocol version {version}, this calico-node speaks \
                 version {PROTOCOL_VERSION}: use calicoctl and calico-node from the same release"
            ),
        ));
    }
    let body = obj.remove("request").ok_or_else(|| {
        RemoteError::new(
            codes::BAD_REQUEST,
            "no \"request\" member in the request line",
        )
    })?;
    serde_json::from_value(body)
        .map_err(|e| RemoteError::new(codes::BAD_REQUEST, format!("invalid request: {e}")))
}

/// Decodes a response line as the client does: the reply, or the server's refusal. The outer
/// `Err` is a protocol violation, described for humans.
pub fn decode_response(line: &[u8]) -> Result<Result<Reply, RemoteError>, String> {
    let (version, mut obj) = split_version(line)
        .map_err(|reason| format!("calico-node sent an invalid BGP status line: {reason}"))?;
    // A server of another version still answers in this envelope (version + error), and its
    // refusal names both versions: the clearest thing to show.
    if let Some(err) = obj.remove("error") {
        let err: RemoteError = serde_json::from_value(err)
            .map_err(|e| format!("calico-node sent an invalid error response: {e}"))?;
        return Ok(Err(err));
    }
    if version != PROTOCOL_VERSION {
        return Err(format!(
            "calico-node speaks BGP status protocol version {version}, this client speaks version \
             {PROTOCOL_VERSION}: use calicoctl and calico-node from the same release"
        ));
    }
    let ok = obj.remove("ok").ok_or_else(|| {
        "calico-node sent a response with neither \"ok\" nor \"error\"".to_string()
    })?;
    serde_json::from_value(ok)
        .map(Ok)
        .map_err(|e| format!("calico-node sent an invalid BGP status: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn status() -> SpeakerStatus {
        SpeakerStatus {
            router_id: "10.0.0.1".parse().unwrap(),
            as_number: 4_200_000_000,
            up_since: SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
            graceful_restart_in_progress: true,
            peers: vec![],
        }
    }

    #[test]
    fn wire_shapes() {
        let line = RequestFrame::new(Request::Status).to_line();
        assert_eq!(line, b"{\"version\":1,\"request\":{\"op\":\"status\"}}\n");
        let line = ResponseFrame::ok(Reply::Status(status())).to_line();
        let text = String::from_utf8(line).unwrap();
        assert_eq!(
            text,
            "{\"version\":1,\"ok\":{\"result\":\"status\",\"router_id\":\"10.0.0.1\",\
             \"as_number\":4200000000,\"up_since\":\"2001-09-09T01:46:40Z\",\
             \"graceful_restart_in_progress\":true,\"peers\":[]}}\n"
        );
        let back = decode_response(text.trim_end().as_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(back, Reply::Status(status()));
    }

    #[test]
    fn requests_are_checked() {
        assert_eq!(
            decode_request(br#"{"version":1,"request":{"op":"status"}}"#).unwrap(),
            Request::Status
        );
        let cases: &[(&[u8], &str, &str)] = &[
            (b"show protocols", codes::BAD_REQUEST, "not valid JSON"),
            (b"[1]", codes::BAD_REQUEST, "not a JSON object"),
            (
                br#"{"request":{"op":"status"}}"#,
                codes::BAD_REQUEST,
                "no \"version\"",
            ),
            (br#"{"version":"1"}"#, codes::BAD_REQUEST, "not a number"),
            (
                br#"{"version":-1}"#,
                codes::BAD_REQUEST,
                "not a protocol version",
            ),
            (
                br#"{"version":2,"request":{"op":"status"}}"#,
                codes::VERSION_MISMATCH,
                "version 2, this calico-node speaks version 1",
            ),
            (br#"{"version":1}"#, codes::BAD_REQUEST, "no \"request\""),
            (
                br#"{"version":1,"request":{"op":"reset"}}"#,
                codes::BAD_REQUEST,
                "unknown variant `reset`",
            ),
        ];
        for (line, code, needle) in cases {
            let e = decode_request(line).unwrap_err();
            assert_eq!(e.code, *code, "{e}");
            assert!(e.message.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn responses_are_checked() {
        let refused = br#"{"version":2,"error":{"code":"version_mismatch","message":"v2 here"}}"#;
        assert_eq!(
            decode_response(refused).unwrap().unwrap_err(),
            RemoteError::new(codes::VERSION_MISMATCH, "v2 here")
        );
        let cases: &[(&[u8], &str)] = &[
            (b"0001 BIRD 1.6.8 ready.", "not valid JSON"),
            (
                br#"{"version":2,"ok":{}}"#,
                "protocol version 2, this client",
            ),
            (br#"{"version":1}"#, "neither \"ok\" nor \"error\""),
            (
                br#"{"version":1,"ok":{"result":"status"}}"#,
                "invalid BGP status",
            ),
            (
                br#"{"version":1,"error":{"code":1}}"#,
                "invalid error response",
            ),
        ];
        for (line, needle) in cases {
            let e = decode_response(line).unwrap_err();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
