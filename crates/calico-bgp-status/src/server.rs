//! The speaker side: a Unix listener answering each request line with a fresh snapshot from
//! the provider the agent passes in.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::protocol::{
    MAX_REQUEST_BYTES, RemoteError, Reply, Request, ResponseFrame, codes, decode_request,
};
use crate::types::SpeakerStatus;

/// Produces the current status; called once per request, on the server's task, so it should
/// only copy a snapshot (take a lock, clone), never wait on I/O.
pub type StatusProvider = Arc<dyn Fn() -> SpeakerStatus + Send + Sync>;

/// How long a connection may sit without sending a request before the server closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Mode of the socket file. Calico's BIRD control sockets are root-only, which is why
/// `calicoctl node status` insists on root; owner and group keep the same spirit.
const SOCKET_MODE: u32 = 0o660;

/// Listens at `path` and answers status requests until the returned task is aborted (or the
/// runtime stops). A stale socket file left by a previous run is removed first; a socket some
/// live process still accepts on, or a path that is not a socket, is an error and left alone.
/// The parent directory is created when missing. When the task ends the socket file is removed,
/// unless another server has replaced it meanwhile.
pub async fn serve(path: &Path, provider: StatusProvider) -> io::Result<JoinHandle<()>> {
    prepare_path(path).await?;
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
    let meta = std::fs::symlink_metadata(path)?;
    let guard = SocketFileGuard {
        path: path.to_path_buf(),
        dev: meta.dev(),
        ino: meta.ino(),
    };
    Ok(tokio::spawn(accept_loop(listener, provider, guard)))
}

/// Removes a stale socket file at `path` and creates its directory.
async fn prepare_path(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; not replacing it with the BGP status socket",
                path.display()
            ),
        ));
    }
    let probe = tokio::time::timeout(Duration::from_secs(1), UnixStream::connect(path)).await;
    match probe {
        // Someone accepts (or their backlog is full, which a dead socket never is).
        Ok(Ok(_)) | Err(_) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "another process already serves BGP status at {}",
                path.display()
            ),
        )),
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::debug!(path = %path.display(), "removing a stale BGP status socket");
            std::fs::remove_file(path)
        }
        Ok(Err(e)) => Err(e),
    }
}

/// Removes the socket file when the server task ends (normally by being aborted), if it is
/// still the one this server bound.
struct SocketFileGuard {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFileGuard {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && m.dev() == self.dev
            && m.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn accept_loop(listener: UnixListener, provider: StatusProvider, _guard: SocketFileGuard) {
    // Dropping the set (when this task is aborted) aborts every connection with it.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                conns.spawn(connection(stream, provider.clone()));
            }
            Err(e) => {
                // EMFILE and friends: back off rather than spin; the listener stays valid.
                tracing::warn!(error = %e, "accepting a BGP status connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

enum LineRead {
    Line,
    Eof,
    TooLong,
}

/// Reads one line (without its `\n`) into `buf`, refusing more than `max` bytes. A last line
/// without a newline before EOF still counts.
async fn read_line_limited<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    loop {
        let avail = reader.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                LineRead::Eof
            } else {
                LineRead::Line
            });
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(pos) => (pos, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > max {
            return Ok(LineRead::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            return Ok(LineRead::Line);
        }
    }
}

async fn connection(stream: UnixStream, provider: StatusProvider) {
    let (r, mut w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let mut buf = Vec::with_capacity(128);
    loop {
        buf.clear();
        let read = tokio::time::timeout(
            IDLE_TIMEOUT,
            read_line_limited(&mut reader, &mut buf, MAX_REQUEST_BYTES),
        )
        .await;
        let frame = match read {
            Err(_) | Ok(Ok(LineRead::Eof)) => return,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "BGP status connection read failed");
                return;
            }
            Ok(Ok(LineRead::TooLong)) => {
                // The rest of the line cannot be told from the next request: answer, close.
                let f = ResponseFrame::error(RemoteError::new(
                    codes::REQUEST_TOO_LARGE,
                    format!("request line longer than {MAX_REQUEST_BYTES} bytes refused"),
                ));
                let _ = w.write_all(&f.to_line()).await;
                let _ = w.shutdown().await;
                return;
            }
            Ok(Ok(LineRead::Line)) => {
                if buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match decode_request(&buf) {
                    Ok(Request::Status) => ResponseFrame::ok(Reply::Status(provider())),
                    Err(e) => ResponseFrame::error(e),
                }
            }
        };
        if let Err(e) = w.write_all(&frame.to_line()).await {
            tracing::debug!(error = %e, "BGP status connection write failed");
            return;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn line_reader_limits() {
        let data: &[u8] = b"abc\n\nxyz";
        let mut r = BufReader::with_capacity(2, data);
        let mut buf = Vec::new();
        for want in [&b"abc"[..], b"", b"xyz"] {
            buf.clear();
            assert!(matches!(
                read_line_limited(&mut r, &mut buf, 10).await.unwrap(),
                LineRead::Line
            ));
            assert_eq!(buf, want);
        }
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
        let exact: &[u8] = b"0123456789\n";
        let mut r = BufReader::with_capacity(3, exact);
        buf.clear();
        assert!(matches!(
            read_line_limited(&mut r, &mut buf, 10).await.unwrap(),
            LineRead::Line
        ));
        assert_eq!(buf.len(), 10);
    }
}
