//! The synchronous client (`calicoctl node status` has no use for an async runtime here).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::protocol::{MAX_LINE_BYTES, RemoteError, Reply, Request, RequestFrame, decode_response};
use crate::types::SpeakerStatus;

/// What a status query can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Nothing listens at the path (no such file, or a socket file nobody accepts on): the BGP
    /// speaker is not running, as when Calico's BIRD is not.
    #[error(
        "no BGP speaker answers at {} ({source}): is calico-node running with BGP networking? \
         (set {} if it listens elsewhere)",
        path.display(),
        crate::ENV_SOCKET
    )]
    NotRunning {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The socket exists but could not be connected (permission denied, not a socket, ...).
    #[error("cannot connect to the BGP status socket {}: {source}", path.display())]
    Unreachable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The speaker did not answer within the timeout.
    #[error("the BGP speaker at {} did not answer within {timeout:?}", path.display())]
    Timeout { path: PathBuf, timeout: Duration },
    /// The conversation broke or was not this protocol.
    #[error("BGP status protocol error: {0}")]
    Protocol(String),
    /// The speaker refused the request (see [`crate::codes`]).
    #[error("calico-node refused the BGP status request: {0}")]
    Remote(RemoteError),
}

/// The socket path to use: `$CALICO_BGP_STATUS_SOCKET` when set and not empty, else
/// [`crate::DEFAULT_SOCKET`].
pub fn socket_path_from_env() -> PathBuf {
    socket_path_from_value(std::env::var_os(crate::ENV_SOCKET).as_deref())
}

/// [`socket_path_from_env`] for a given value of the variable (empty counts as unset).
pub fn socket_path_from_value(value: Option<&std::ffi::OsStr>) -> PathBuf {
    match value {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(crate::DEFAULT_SOCKET),
    }
}

/// Asks the speaker listening at `path` for its status. `timeout` bounds the whole exchange
/// (connect, send, receive); zero is raised to 1 ms.
pub fn query(path: &Path, timeout: Duration) -> Result<SpeakerStatus, StatusError> {
    let timeout = timeout.max(Duration::from_millis(1));
    let deadline = Instant::now() + timeout;
    let timed_out = || StatusError::Timeout {
        path: path.to_path_buf(),
        timeout,
    };
    let stream = match connect_with_deadline(path, deadline) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(timed_out()),
        Err(source) => {
            return Err(match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    StatusError::NotRunning {
                        path: path.to_path_buf(),
                        source,
                    }
                }
                _ => StatusError::Unreachable {
                    path: path.to_path_buf(),
                    source,
                },
            });
        }
    };
    let io_err = |what: &str, e: std::io::Error| match e.kind() {
        // std reports an expired SO_RCVTIMEO/SO_SNDTIMEO as WouldBlock on Linux.
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => timed_out(),
        _ => StatusError::Protocol(format!("{what} {}: {e}", path.display())),
    };
    let remaining = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };

    let mut writer = &stream;
    writer
        .set_write_timeout(Some(remaining()))
        .map_err(|e| io_err("setting a timeout on", e))?;
    writer
        .write_all(&RequestFrame::new(Request::Status).to_line())
        .and_then(|()| writer.flush())
        .map_err(|e| io_err("sending to", e))?;

    // Read one line, never more than the limit (+1 to detect overflow). The read timeout is
    // re-armed before each read so that the deadline holds for a slowly trickling reply.
    let mut reader = BufReader::new((&stream).take(MAX_LINE_BYTES as u64 + 1));
    let mut buf = Vec::with_capacity(4096);
    loop {
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        stream
            .set_read_timeout(Some(remaining()))
            .map_err(|e| io_err("setting a timeout on", e))?;
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("reading the reply from", e)),
        };
        if chunk.is_empty() {
            break;
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(pos) => {
                buf.extend_from_slice(&chunk[..=pos]);
                reader.consume(pos + 1);
                break;
            }
            None => {
                let n = chunk.len();
                buf.extend_from_slice(chunk);
                reader.consume(n);
            }
        }
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE_BYTES {
        return Err(StatusError::Protocol(format!(
            "the reply from {} is longer than {MAX_LINE_BYTES} bytes",
            path.display()
        )));
    } else if buf.is_empty() {
        return Err(StatusError::Protocol(format!(
            "calico-node at {} closed the connection without answering",
            path.display()
        )));
    } else {
        return Err(StatusError::Protocol(format!(
            "calico-node at {} closed the connection in the middle of its reply",
            path.display()
        )));
    }
    match decode_response(&buf) {
        Ok(Ok(Reply::Status(s))) => Ok(s),
        Ok(Err(remote)) => Err(StatusError::Remote(remote)),
        Err(msg) => Err(StatusError::Protocol(msg)),
    }
}

/// Connects a Unix stream socket before `deadline`. A Unix-socket connect completes at once or
/// fails (ENOENT, ECONNREFUSED), except when the listener's accept backlog is full: then a
/// non-blocking connect says EAGAIN and is retried until the deadline. Returned blocking.
fn connect_with_deadline(path: &Path, deadline: Instant) -> std::io::Result<UnixStream> {
    use rustix::io::Errno;
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let addr = SocketAddrUnix::new(path)?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => break,
            Err(e) if e == Errno::AGAIN || e == Errno::INTR => {
                if Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the speaker's accept queue stayed full",
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stream = UnixStream::from(fd);
    stream.set_nonblocking(false)?;
    Ok(stream)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_override() {
        assert_eq!(
            socket_path_from_value(None),
            PathBuf::from(crate::DEFAULT_SOCKET)
        );
        assert_eq!(
            socket_path_from_value(Some(std::ffi::OsStr::new(""))),
            PathBuf::from(crate::DEFAULT_SOCKET)
        );
        assert_eq!(
            socket_path_from_value(Some(std::ffi::OsStr::new("/tmp/x.ctl"))),
            PathBuf::from("/tmp/x.ctl")
        );
    }

    #[test]
    fn missing_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let e = query(&dir.path().join("bgp.ctl"), Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, StatusError::NotRunning { .. }), "{e:?}");
        assert!(e.to_string().contains(crate::ENV_SOCKET), "{e}");
    }

    #[test]
    fn stale_socket_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgp.ctl");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let e = query(&path, Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, StatusError::NotRunning { .. }), "{e:?}");
    }

    #[test]
    fn a_regular_file_is_not_a_speaker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgp.ctl");
        std::fs::write(&path, b"").unwrap();
        let e = query(&path, Duration::from_secs(1)).unwrap_err();
        // connect(2) on a non-socket says ECONNREFUSED on Linux: no speaker there.
        assert!(matches!(e, StatusError::NotRunning { .. }), "{e:?}");
    }
}
