//! Maps etcd-client / gRPC failures onto [`DatastoreError`].
//!
//! etcd reports its own conditions as gRPC statuses with fixed messages
//! (`etcd/api/v3rpc/rpctypes/error.go`): `etcdserver: mvcc: required revision has been
//! compacted` (OutOfRange), `... is a future revision` (OutOfRange), `etcdserver: requested lease
//! not found` (NotFound), `etcdserver: no leader` / `request timed out` (Unavailable). Transport
//! failures (refused connections, TLS handshakes, resets) surface as tonic transport errors or as
//! statuses with code Unavailable/Unknown; those become [`DatastoreError::Unavailable`] so callers
//! know a retry may help.

use tonic::Code;

use crate::{DatastoreError, Revision};

/// What the failing request was, so the mapped error can carry the right fields.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ctx<'a> {
    /// A request with no specific interpretation.
    Op(&'a str),
    /// A request that named a revision (compact, watch start).
    Revision(&'a str, Revision),
    /// A lease call.
    Lease(&'a str, i64),
}

impl Ctx<'_> {
    fn what(&self) -> &str {
        match self {
            Ctx::Op(w) | Ctx::Revision(w, _) | Ctx::Lease(w, _) => w,
        }
    }
}

const MSG_COMPACTED: &str = "required revision has been compacted";
const MSG_FUTURE: &str = "required revision is a future revision";
const MSG_LEASE_NOT_FOUND: &str = "requested lease not found";
/// etcd's authentication failures (`rpctypes.ErrGRPCUserEmpty`, `ErrGRPCAuthFailed`,
/// `ErrGRPCPermissionDenied`, `ErrGRPCInvalidAuthToken`): some come with code InvalidArgument,
/// but they are configuration problems, not bad requests.
const MSG_AUTH: [&str; 5] = [
    "user name is empty",
    "authentication failed",
    "permission denied",
    "invalid auth token",
    "authentication is not enabled",
];

/// Converts an etcd-client error; `ctx` names the operation for the message.
pub(crate) fn map_err(err: etcd_client::Error, ctx: Ctx<'_>) -> DatastoreError {
    use etcd_client::Error as E;
    let what = ctx.what();
    match err {
        E::GRpcStatus(status) => map_status(&status, ctx),
        E::TransportError(e) => {
            DatastoreError::Unavailable(format!("{what}: {}", transport_chain(&e)))
        }
        E::IoError(e) => DatastoreError::Unavailable(format!("{what}: {e}")),
        E::InvalidArgs(m) => DatastoreError::InvalidRequest(format!("{what}: {m}")),
        E::InvalidUri(e) => DatastoreError::Config(format!("{what}: invalid etcd endpoint: {e}")),
        E::EndpointError(m) => DatastoreError::Config(format!("{what}: {m}")),
        E::LeaseKeepAliveError(m) => match ctx {
            Ctx::Lease(_, id) if m.contains("not found") => DatastoreError::LeaseNotFound(id),
            _ => DatastoreError::Backend(format!("{what}: lease keep-alive: {m}")),
        },
        other => DatastoreError::Backend(format!("{what}: {other}")),
    }
}

fn map_status(status: &tonic::Status, ctx: Ctx<'_>) -> DatastoreError {
    let what = ctx.what();
    let msg = status.message();
    if msg.contains(MSG_COMPACTED) {
        // etcd does not say where the compaction point is; the request's own revision is
        // known to be below it.
        let requested = match ctx {
            Ctx::Revision(_, r) => r,
            _ => 0,
        };
        return DatastoreError::Compacted {
            requested,
            compact_revision: requested,
        };
    }
    if msg.contains(MSG_FUTURE) {
        let requested = match ctx {
            Ctx::Revision(_, r) => r,
            _ => 0,
        };
        return DatastoreError::FutureRevision {
            requested,
            // Filled in by the caller when it can ask for the current revision.
            current: 0,
        };
    }
    if let (true, Ctx::Lease(_, id)) = (msg.contains(MSG_LEASE_NOT_FOUND), ctx) {
        return DatastoreError::LeaseNotFound(id);
    }
    if MSG_AUTH.iter().any(|m| msg.contains(m)) {
        return DatastoreError::Config(format!(
            "{what}: etcd rejected the credentials (ETCD_USERNAME/ETCD_PASSWORD): {msg}"
        ));
    }
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
            DatastoreError::Unavailable(format!("{what}: {}", describe_status(status)))
        }
        Code::Unknown | Code::Internal if looks_like_transport(status) => {
            DatastoreError::Unavailable(format!("{what}: {}", describe_status(status)))
        }
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            DatastoreError::InvalidRequest(format!("{what}: {msg}"))
        }
        Code::ResourceExhausted => DatastoreError::InvalidRequest(format!("{what}: {msg}")),
        Code::Unauthenticated | Code::PermissionDenied => {
            DatastoreError::Config(format!("{what}: etcd rejected the credentials: {msg}"))
        }
        Code::NotFound => DatastoreError::Backend(format!("{what}: not found: {msg}")),
        _ => DatastoreError::Backend(format!("{what}: {}", describe_status(status))),
    }
}

/// Whether an Unknown/Internal status is really a broken connection (hyper/h2 errors that tonic
/// could not classify).
fn looks_like_transport(status: &tonic::Status) -> bool {
    let text = describe_status(status).to_ascii_lowercase();
    [
        "transport",
        "connection",
        "h2 protocol",
        "broken pipe",
        "reset",
        "tls",
        "certificate",
        "handshake",
        "eof",
    ]
    .iter()
    .any(|k| text.contains(k))
}

/// A status' message plus its source chain (tonic hides the interesting part, such as the TLS
/// alert, in the source).
fn describe_status(status: &tonic::Status) -> String {
    let mut out = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    };
    let mut src = std::error::Error::source(status);
    while let Some(e) = src {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        src = e.source();
    }
    out
}

fn transport_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn etcd_messages_map_to_variants() {
        let compacted =
            tonic::Status::out_of_range("etcdserver: mvcc: required revision has been compacted");
        assert_eq!(
            map_status(&compacted, Ctx::Revision("compact", 5)),
            DatastoreError::Compacted {
                requested: 5,
                compact_revision: 5
            }
        );
        let future =
            tonic::Status::out_of_range("etcdserver: mvcc: required revision is a future revision");
        assert!(matches!(
            map_status(&future, Ctx::Revision("compact", 99)),
            DatastoreError::FutureRevision { requested: 99, .. }
        ));
        let lease = tonic::Status::not_found("etcdserver: requested lease not found");
        assert_eq!(
            map_status(&lease, Ctx::Lease("lease revoke", 7)),
            DatastoreError::LeaseNotFound(7)
        );
        let down = tonic::Status::unavailable("etcdserver: no leader");
        assert!(matches!(
            map_status(&down, Ctx::Op("txn")),
            DatastoreError::Unavailable(_)
        ));
        let reset =
            tonic::Status::unknown("h2 protocol error: error reading a body from connection");
        assert!(matches!(
            map_status(&reset, Ctx::Op("watch")),
            DatastoreError::Unavailable(_)
        ));
        let bad = tonic::Status::invalid_argument("etcdserver: duplicate key given in txn request");
        assert!(matches!(
            map_status(&bad, Ctx::Op("txn")),
            DatastoreError::InvalidRequest(m) if m.contains("duplicate key")
        ));
        let empty = tonic::Status::invalid_argument("etcdserver: user name is empty");
        assert!(matches!(
            map_status(&empty, Ctx::Op("range")),
            DatastoreError::Config(_)
        ));
        let auth = tonic::Status::unauthenticated("etcdserver: invalid auth token");
        assert!(matches!(
            map_status(&auth, Ctx::Op("range")),
            DatastoreError::Config(_)
        ));
    }
}
