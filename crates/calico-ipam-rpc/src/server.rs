//! The agent side: accepts connections on a Unix listener and answers each request line with
//! the [`IpamBackend`] (calico-node wraps its batching allocator in one).

use std::net::IpAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::protocol::{
    AssignIpsRequest, AssignRequest, Assigned, MAX_LINE_BYTES, RemoteError, Reply, Request,
    ResponseFrame, codes, decode_request,
};

/// What serves the requests. Requests for another node never reach it: [`serve`] refuses
/// them with [`codes::WRONG_NODE`].
#[async_trait::async_trait]
pub trait IpamBackend: Send + Sync {
    /// The node this agent serves.
    fn node_name(&self) -> &str;
    /// Assigns addresses (all or nothing).
    async fn assign(&self, req: &AssignRequest) -> Result<Assigned, RemoteError>;
    /// Assigns exactly `req.ips` under `req.handle_id`, all or nothing: when one address
    /// cannot be had, those already assigned for this request are released before the error
    /// is returned. Answers with the addresses as host prefixes (/32, /128). [`serve`] has
    /// already checked the node, that the handle and the list are not empty and that no
    /// address repeats. The default refuses with [`codes::UNSUPPORTED`], so a backend that
    /// only auto-assigns keeps working and says plainly what it cannot do.
    async fn assign_ips(&self, req: &AssignIpsRequest) -> Result<Assigned, RemoteError> {
        Err(RemoteError::new(
            codes::UNSUPPORTED,
            format!(
                "this IPAM service cannot assign specific addresses ({} requested)",
                display_ips(&req.ips)
            ),
        ))
    }
    /// Releases every address of a handle; returns how many.
    async fn release_handle(&self, handle_id: &str) -> Result<usize, RemoteError>;
    /// Releases addresses; returns those that were not allocated.
    async fn release_ips(
        &self,
        ips: &[IpAddr],
        handle_id: Option<&str>,
    ) -> Result<Vec<IpAddr>, RemoteError>;
}

/// Serves `listener` until `shutdown` is cancelled, then stops accepting, lets requests in
/// progress finish and answer, closes idle connections and returns once every connection
/// is done. Each connection gets its own task; requests on one connection are answered in
/// order.
pub async fn serve(
    listener: UnixListener,
    backend: Arc<dyn IpamBackend>,
    shutdown: CancellationToken,
) {
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let backend = backend.clone();
                let shutdown = shutdown.clone();
                tracker.spawn(connection(stream, backend, shutdown));
            }
            Err(e) => {
                // EMFILE and friends: back off briefly rather than spinning; the listener
                // itself stays valid.
                tracing::warn!(error = %e, "accepting an IPAM connection failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
                }
            }
        }
    }
    tracker.close();
    tracker.wait().await;
}

enum LineRead {
    Line,
    Eof,
    TooLong,
}

/// Reads one line (without its `\n`) into `buf`, refusing more than `max` bytes. A last line
/// without a newline before EOF still counts as a line.
async fn read_line_limited<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    loop {
        let avail = reader.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        match avail.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                if buf.len() + pos > max {
                    return Ok(LineRead::TooLong);
                }
                buf.extend_from_slice(&avail[..pos]);
                reader.consume(pos + 1);
                return Ok(LineRead::Line);
            }
            None => {
                let n = avail.len();
                if buf.len() + n > max {
                    return Ok(LineRead::TooLong);
                }
                buf.extend_from_slice(avail);
                reader.consume(n);
            }
        }
    }
}

async fn connection(
    stream: UnixStream,
    backend: Arc<dyn IpamBackend>,
    shutdown: CancellationToken,
) {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let mut buf = Vec::with_capacity(512);
    loop {
        buf.clear();
        // Waiting for a request is abandoned at shutdown; a request already read is
        // answered (below, outside the select), so no assignment is left unanswered.
        let read = tokio::select! {
            () = shutdown.cancelled() => return,
            r = read_line_limited(&mut reader, &mut buf, MAX_LINE_BYTES) => r,
        };
        let frame = match read {
            Ok(LineRead::Eof) => return,
            Err(e) => {
                tracing::debug!(error = %e, "IPAM connection read failed");
                return;
            }
            Ok(LineRead::TooLong) => {
                // The rest of the oversized line cannot be told apart from the next request,
                // so answer and close.
                let f = ResponseFrame::error(RemoteError::new(
                    codes::REQUEST_TOO_LARGE,
                    format!("request line longer than {MAX_LINE_BYTES} bytes refused"),
                ));
                let _ = w.write_all(&f.to_line()).await;
                let _ = w.shutdown().await;
                return;
            }
            Ok(LineRead::Line) => {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match answer(&buf, backend.as_ref()).await {
                    Ok(reply) => ResponseFrame::ok(reply),
                    Err(e) => ResponseFrame::error(e),
                }
            }
        };
        if let Err(e) = w.write_all(&frame.to_line()).await {
            tracing::debug!(error = %e, "IPAM connection write failed");
            return;
        }
    }
}

async fn answer(line: &[u8], backend: &dyn IpamBackend) -> Result<Reply, RemoteError> {
    let req = decode_request(line)?;
    let own = backend.node_name();
    if let Some(node) = req.node()
        && node != own
    {
        return Err(RemoteError::new(
            codes::WRONG_NODE,
            format!(
                "this calico-node serves IPAM for node {own:?}, not {node:?}: the CNI plugin's \
                 nodename must match calico-node's NODENAME"
            ),
        ));
    }
    match req {
        Request::Ping => Ok(Reply::Pong {
            node: own.to_string(),
        }),
        Request::Assign(a) => {
            if a.handle_id.is_empty() {
                return Err(RemoteError::new(
                    codes::INVALID_ARGUMENT,
                    "assign needs a handle_id",
                ));
            }
            backend.assign(&a).await.map(Reply::Assigned)
        }
        Request::AssignIps(a) => {
            check_assign_ips(&a)?;
            backend.assign_ips(&a).await.map(Reply::Assigned)
        }
        Request::ReleaseHandle { handle_id, .. } => backend
            .release_handle(&handle_id)
            .await
            .map(|released| Reply::HandleReleased { released }),
        Request::ReleaseIps { ips, handle_id, .. } => backend
            .release_ips(&ips, handle_id.as_deref())
            .await
            .map(|unallocated| Reply::IpsReleased { unallocated }),
    }
}

/// The addresses, comma-separated, for messages.
fn display_ips(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What every backend may rely on for [`IpamBackend::assign_ips`].
fn check_assign_ips(a: &AssignIpsRequest) -> Result<(), RemoteError> {
    let invalid = |m: String| Err(RemoteError::new(codes::INVALID_ARGUMENT, m));
    if a.handle_id.is_empty() {
        return invalid("assign_ips needs a handle_id".into());
    }
    if a.ips.is_empty() {
        return invalid("assign_ips needs at least one address".into());
    }
    for (i, ip) in a.ips.iter().enumerate() {
        if a.ips[..i].contains(ip) {
            return invalid(format!(
                "assign_ips lists {ip} twice ({})",
                display_ips(&a.ips)
            ));
        }
        // An unspecified or multicast address can never be a workload's (Calico's pools
        // cannot contain them either, but say what is wrong rather than "not in a pool").
        if ip.is_unspecified() || ip.is_multicast() {
            return invalid(format!("{ip} cannot be assigned to a workload"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn line_reader_limits() {
        let data: &[u8] = b"abc\n\nxyz";
        let mut r = BufReader::with_capacity(2, data);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line_limited(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"abc");
        buf.clear();
        assert!(matches!(
            read_line_limited(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"");
        buf.clear();
        assert!(matches!(
            read_line_limited(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf, b"xyz");
        buf.clear();
        assert!(matches!(
            read_line_limited(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Eof
        ));

        let long: &[u8] = b"0123456789A\n";
        let mut r = BufReader::with_capacity(4, long);
        buf.clear();
        assert!(matches!(
            read_line_limited(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::TooLong
        ));
        // Exactly the limit is fine.
        let exact: &[u8] = b"0123456789\n";
        let mut r = BufReader::with_capacity(3, exact);
        buf.clear();
        assert!(matches!(
            read_line_limited(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf.len(), 10);
    }

    #[test]
    fn assign_ips_checks() {
        let ok = AssignIpsRequest {
            node: "n".into(),
            handle_id: "h".into(),
            ips: vec!["10.0.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            ..Default::default()
        };
        assert!(check_assign_ips(&ok).is_ok());
        type Edit = fn(&mut AssignIpsRequest);
        let cases: &[(Edit, &str)] = &[
            (|r| r.handle_id.clear(), "needs a handle_id"),
            (|r| r.ips.clear(), "at least one address"),
            (
                |r| r.ips.push("10.0.0.1".parse().unwrap()),
                "lists 10.0.0.1 twice (10.0.0.1,fd00::1,10.0.0.1)",
            ),
            (
                |r| r.ips[0] = "0.0.0.0".parse().unwrap(),
                "0.0.0.0 cannot be assigned",
            ),
            (
                |r| r.ips[1] = "ff02::1".parse().unwrap(),
                "ff02::1 cannot be assigned",
            ),
        ];
        for (edit, needle) in cases {
            let mut r = ok.clone();
            edit(&mut r);
            let e = check_assign_ips(&r).unwrap_err();
            assert_eq!(e.code, codes::INVALID_ARGUMENT, "{needle}: {e}");
            assert!(e.message.contains(needle), "{needle}: {e}");
        }
    }
}
