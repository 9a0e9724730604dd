//! The wire protocol: one JSON object per line, in both directions.
//!
//! A request line is `{"version":1,"request":{"op":"assign",...}}`; its answer is
//! `{"version":1,"ok":{"result":"assigned",...}}` or `{"version":1,"error":{"code":"...","message":"..."}}`.
//! The version sits outside the typed body so that a peer speaking another version is told
//! so plainly (code [`codes::VERSION_MISMATCH`]) instead of getting a confusing decode error
//! about some field that changed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. Bump it on any incompatible change of the types
/// below; both ends refuse a different version with a message naming both.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request or response line accepted (without its newline). A real request is a few
/// hundred bytes; the limit only protects the agent from a runaway or hostile peer.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Error codes a [`RemoteError`] carries. Stable strings: callers match on them.
pub mod codes {
    /// The line was not JSON, or not a request of this protocol.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The peer speaks another protocol version.
    pub const VERSION_MISMATCH: &str = "version_mismatch";
    /// The line exceeded [`super::MAX_LINE_BYTES`]; the agent closes the connection after it.
    pub const REQUEST_TOO_LARGE: &str = "request_too_large";
    /// The request names a node other than the one this agent serves.
    pub const WRONG_NODE: &str = "wrong_node";
    /// The pools have no free address left for this node.
    pub const POOL_EXHAUSTED: &str = "pool_exhausted";
    /// No pool is usable (none configured, none enabled, none selecting this node, or the
    /// requested pool does not exist).
    pub const NO_POOL: &str = "no_pool";
    /// The node has reached its block limit (`maxBlocksPerHost`).
    pub const BLOCK_LIMIT: &str = "block_limit";
    /// The request is well-formed but its arguments are not acceptable.
    pub const INVALID_ARGUMENT: &str = "invalid_argument";
    /// A release was refused because the address is held under another handle or sequence.
    pub const STALE_RELEASE: &str = "stale_release";
    /// The datastore could not be reached or refused the operation.
    pub const DATASTORE: &str = "datastore";
    /// The agent is shutting down or its allocator stopped.
    pub const UNAVAILABLE: &str = "unavailable";
    /// A requested specific address is already allocated (Calico's AssignIP: "Address
    /// already assigned in block").
    pub const ADDRESS_IN_USE: &str = "address_in_use";
    /// The agent does not implement the operation (an older calico-node, or a backend without
    /// it); the message says which operation.
    pub const UNSUPPORTED: &str = "unsupported";
    /// Anything else.
    pub const INTERNAL: &str = "internal";
}

/// An address request for one workload (Calico's `AutoAssignArgs` as the CNI plugin fills it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignRequest {
    /// The node the workload runs on; must be the agent's own node.
    pub node: String,
    /// IPAM handle (Calico: `<network name>.<container id>`).
    pub handle_id: String,
    /// Number of IPv4 addresses wanted (0 or 1 from the CNI plugin).
    pub num4: u32,
    /// Number of IPv6 addresses wanted.
    pub num6: u32,
    /// Pools to take IPv4 addresses from (empty = every enabled pool selecting the node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv4_pools: Vec<IpNet>,
    /// Pools to take IPv6 addresses from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_pools: Vec<IpNet>,
    /// Allocation attributes stored with the address (`namespace`, `pod`, `node`, `timestamp`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    /// Labels of the pod's namespace, for pools with a `namespaceSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_labels: Option<BTreeMap<String, String>>,
}

/// A request for specific addresses for one workload (Calico's `AssignIPArgs`, which the
/// `calico-ipam` plugin fills from `IP=` in `CNI_ARGS`): every address is assigned under the
/// handle, or none is.
///
/// Added to protocol version 1 without a version bump: old clients never send it, and an
/// older agent refuses the unknown `op` with [`codes::BAD_REQUEST`], which
/// [`crate::IpamAgentClient::assign_ips`] turns into [`codes::UNSUPPORTED`] with a message
/// saying so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignIpsRequest {
    /// The node the workload runs on; must be the agent's own node.
    pub node: String,
    /// IPAM handle (Calico: `<network name>.<container id>`).
    pub handle_id: String,
    /// The addresses wanted, in order (the CNI plugin sends at most one per family).
    pub ips: Vec<IpAddr>,
    /// Allocation attributes stored with each address (`namespace`, `pod`, `node`, `timestamp`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

/// The addresses given, each with its block's prefix length (e.g. `10.244.220.81/26`), as
/// Calico's IPAM returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    #[serde(default)]
    pub ipv4: Vec<IpNet>,
    #[serde(default)]
    pub ipv6: Vec<IpNet>,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Liveness probe; answered with the agent's node name.
    Ping,
    Assign(AssignRequest),
    /// Assign exactly the given addresses (answered with [`Reply::Assigned`], each address as
    /// a host prefix, /32 or /128, since Calico's AssignIP reports no block).
    AssignIps(AssignIpsRequest),
    /// Release every address held by a handle (idempotent).
    ReleaseHandle {
        node: String,
        handle_id: String,
    },
    /// Release the given addresses; with `handle_id`, only if they are held by it.
    ReleaseIps {
        node: String,
        ips: Vec<IpAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        handle_id: Option<String>,
    },
}

impl Request {
    /// The node the request is for (`None` for [`Request::Ping`]).
    pub fn node(&self) -> Option<&str> {
        match self {
            Request::Ping => None,
            Request::Assign(a) => Some(&a.node),
            Request::AssignIps(a) => Some(&a.node),
            Request::ReleaseHandle { node, .. } | Request::ReleaseIps { node, .. } => Some(node),
        }
    }
}

/// A successful answer body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    Pong {
        node: String,
    },
    Assigned(Assigned),
    HandleReleased {
        released: usize,
    },
    /// The addresses of the request that were not allocated.
    IpsReleased {
        unallocated: Vec<IpAddr>,
    },
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

fn encode_line<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (no maps with non-string keys, no custom
    // serialisers that error); fall back to an explicit internal-error frame just in case.
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

/// Reads the `version` member of a line before anything else, so a peer of another version
/// gets a version error rather than a field error. `Err` is a human-readable reason.
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

/// Decodes a request line as the agent does. `Err` is the error frame to answer with.
pub fn decode_request(line: &[u8]) -> Result<Request, RemoteError> {
    let (version, mut obj) = split_version(line).map_err(|reason| {
        RemoteError::new(
            codes::BAD_REQUEST,
            format!("not an IPAM protocol request: {reason}"),
        )
    })?;
    if version != PROTOCOL_VERSION {
        return Err(RemoteError::new(
            codes::VERSION_MISMATCH,
            format!(
                "the client speaks IPAM protocol version {version}, this calico-node speaks version \
                 {PROTOCOL_VERSION}: install the CNI plugin and calico-node from the same release"
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

/// Decodes a response line as the client does: the reply, or the agent's refusal. The outer
/// `Err` is a protocol violation, described for humans.
pub fn decode_response(line: &[u8]) -> Result<Result<Reply, RemoteError>, String> {
    let (version, mut obj) = split_version(line)
        .map_err(|reason| format!("calico-node sent an invalid response line: {reason}"))?;
    // An agent of another version still answers in this envelope (version + error), so its
    // refusal, which names both versions, is the clearest thing to show.
    if let Some(err) = obj.remove("error") {
        let err: RemoteError = serde_json::from_value(err)
            .map_err(|e| format!("calico-node sent an invalid error response: {e}"))?;
        return Ok(Err(err));
    }
    if version != PROTOCOL_VERSION {
        return Err(format!(
            "calico-node speaks IPAM protocol version {version}, this client speaks version \
             {PROTOCOL_VERSION}: install the CNI plugin and calico-node from the same release"
        ));
    }
    let ok = obj.remove("ok").ok_or_else(|| {
        "calico-node sent a response with neither \"ok\" nor \"error\"".to_string()
    })?;
    serde_json::from_value(ok)
        .map(Ok)
        .map_err(|e| format!("calico-node sent an invalid reply: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_shape() {
        let req = Request::Assign(AssignRequest {
            node: "node1".into(),
            handle_id: "k8s-pod-network.abc".into(),
            num4: 1,
            num6: 0,
            ipv4_pools: vec!["10.244.0.0/16".parse().unwrap()],
            ..Default::default()
        });
        let line = RequestFrame::new(req.clone()).to_line();
        assert_eq!(
            std::str::from_utf8(&line).unwrap(),
            "{\"version\":1,\"request\":{\"op\":\"assign\",\"node\":\"node1\",\"handle_id\":\"k8s-pod-network.abc\",\"num4\":1,\"num6\":0,\"ipv4_pools\":[\"10.244.0.0/16\"]}}\n"
        );
        assert_eq!(decode_request(&line[..line.len() - 1]).unwrap(), req);
    }

    #[test]
    fn response_wire_shape() {
        let f = ResponseFrame::ok(Reply::Assigned(Assigned {
            ipv4: vec!["10.244.220.81/26".parse().unwrap()],
            ipv6: vec![],
        }));
        let line = f.to_line();
        assert_eq!(
            std::str::from_utf8(&line).unwrap(),
            "{\"version\":1,\"ok\":{\"result\":\"assigned\",\"ipv4\":[\"10.244.220.81/26\"],\"ipv6\":[]}}\n"
        );
        let e = ResponseFrame::error(RemoteError::new(codes::WRONG_NODE, "x")).to_line();
        assert_eq!(
            std::str::from_utf8(&e).unwrap(),
            "{\"version\":1,\"error\":{\"code\":\"wrong_node\",\"message\":\"x\"}}\n"
        );
        assert_eq!(
            decode_response(&e).unwrap().unwrap_err().code,
            codes::WRONG_NODE
        );
    }

    #[test]
    fn bad_requests_are_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("garbage", codes::BAD_REQUEST, "not valid JSON"),
            ("[1,2]", codes::BAD_REQUEST, "not a JSON object"),
            ("{}", codes::BAD_REQUEST, "no \"version\""),
            ("{\"version\":\"1\"}", codes::BAD_REQUEST, "not a number"),
            (
                "{\"version\":-1}",
                codes::BAD_REQUEST,
                "not a protocol version",
            ),
            (
                "{\"version\":2,\"request\":{}}",
                codes::VERSION_MISMATCH,
                "version 2",
            ),
            ("{\"version\":1}", codes::BAD_REQUEST, "no \"request\""),
            (
                "{\"version\":1,\"request\":{\"op\":\"explode\"}}",
                codes::BAD_REQUEST,
                "unknown variant `explode`",
            ),
            (
                "{\"version\":1,\"request\":{\"op\":\"assign\",\"node\":\"n\"}}",
                codes::BAD_REQUEST,
                "missing field `handle_id`",
            ),
            (
                "{\"version\":1,\"request\":{\"op\":\"release_ips\",\"node\":\"n\",\"ips\":[\"10.0.0.300\"]}}",
                codes::BAD_REQUEST,
                "invalid IP address",
            ),
        ];
        for (line, code, needle) in cases {
            let err = decode_request(line.as_bytes()).unwrap_err();
            assert_eq!(err.code, *code, "{line}: {err}");
            assert!(err.message.contains(needle), "{line}: {err}");
        }
    }

    #[test]
    fn response_of_other_version() {
        let err = decode_response(b"{\"version\":7,\"ok\":{\"result\":\"pong\",\"node\":\"n\"}}")
            .unwrap_err();
        assert!(err.contains("version 7"), "{err}");
        assert!(err.contains("version 1"), "{err}");
        assert!(decode_response(b"{\"version\":1}").is_err());
        assert!(decode_response(b"nope").is_err());
    }

    #[test]
    fn assign_ips_wire_shape() {
        let mut attrs = BTreeMap::new();
        attrs.insert("node".to_string(), "node1".to_string());
        let req = Request::AssignIps(AssignIpsRequest {
            node: "node1".into(),
            handle_id: "k8s-pod-network.abc".into(),
            ips: vec!["10.244.0.9".parse().unwrap(), "fd00::9".parse().unwrap()],
            attrs,
        });
        let line = RequestFrame::new(req.clone()).to_line();
        assert_eq!(
            std::str::from_utf8(&line).unwrap(),
            "{\"version\":1,\"request\":{\"op\":\"assign_ips\",\"node\":\"node1\",\"handle_id\":\"k8s-pod-network.abc\",\"ips\":[\"10.244.0.9\",\"fd00::9\"],\"attrs\":{\"node\":\"node1\"}}}\n"
        );
        assert_eq!(decode_request(&line[..line.len() - 1]).unwrap(), req);
        assert_eq!(req.node(), Some("node1"));
        // A missing address list is a bad request, not an empty one.
        let err = decode_request(
            b"{\"version\":1,\"request\":{\"op\":\"assign_ips\",\"node\":\"n\",\"handle_id\":\"h\"}}",
        )
        .unwrap_err();
        assert_eq!(err.code, codes::BAD_REQUEST, "{err}");
        assert!(err.message.contains("ips"), "{err}");
    }

    #[test]
    fn request_node() {
        assert_eq!(Request::Ping.node(), None);
        let r = Request::ReleaseHandle {
            node: "a".into(),
            handle_id: "h".into(),
        };
        assert_eq!(r.node(), Some("a"));
    }
}
