//! The synchronous client the CNI plugin uses (no async runtime in a short-lived plugin).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::{
    AssignIpsRequest, AssignRequest, Assigned, MAX_LINE_BYTES, RemoteError, Reply, Request,
    RequestFrame, codes, decode_response,
};

/// What a call to the agent can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The socket could not be connected: no agent, wrong path, or no permission.
    #[error(
        "calico-node's IPAM service at {} is unreachable ({source}): is calico-node running on this host? \
         (set {} if it listens elsewhere)",
        path.display(),
        crate::ENV_SOCKET_PATH
    )]
    Unreachable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The agent did not answer within the client's timeout.
    #[error("calico-node's IPAM service did not answer in time")]
    Timeout,
    /// The conversation broke: the agent closed the connection, sent something that is not
    /// this protocol, or speaks another version.
    #[error("IPAM protocol error: {0}")]
    Protocol(String),
    /// The agent refused the request (see [`crate::codes`]).
    #[error("calico-node refused the IPAM request: {message} ({code})")]
    Remote { code: String, message: String },
}

impl RpcError {
    /// The agent's error code, for a [`RpcError::Remote`].
    pub fn code(&self) -> Option<&str> {
        match self {
            RpcError::Remote { code, .. } => Some(code),
            _ => None,
        }
    }
}

impl From<RemoteError> for RpcError {
    fn from(e: RemoteError) -> Self {
        RpcError::Remote {
            code: e.code,
            message: e.message,
        }
    }
}

/// The socket path to use: `$CALICO_IPAM_SOCKET` when set and not empty, else
/// [`crate::DEFAULT_SOCKET_PATH`].
pub fn socket_path_from_env() -> PathBuf {
    socket_path_from_value(std::env::var_os(crate::ENV_SOCKET_PATH).as_deref())
}

/// [`socket_path_from_env`] for a given value of the variable (empty counts as unset).
pub fn socket_path_from_value(value: Option<&std::ffi::OsStr>) -> PathBuf {
    match value {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(crate::DEFAULT_SOCKET_PATH),
    }
}

/// A client of calico-node's IPAM service. Each call opens its own connection, sends one
/// request line and reads one response line, so a client survives an agent restart between
/// calls and never re-sends a request whose fate is unknown.
#[derive(Debug, Clone)]
pub struct IpamAgentClient {
    path: PathBuf,
    timeout: Duration,
}

impl IpamAgentClient {
    /// A client of the agent listening at `path`; `timeout` bounds each read and write (a
    /// zero timeout is raised to 1 ms, since std treats zero as an error).
    pub fn new(path: impl Into<PathBuf>, timeout: Duration) -> Self {
        IpamAgentClient {
            path: path.into(),
            timeout: timeout.max(Duration::from_millis(1)),
        }
    }

    /// The socket path this client talks to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the agent answers; returns the node it serves.
    pub fn ping(&self) -> Result<String, RpcError> {
        match self.call(&Request::Ping)? {
            Reply::Pong { node } => Ok(node),
            other => Err(mismatched("ping", &other)),
        }
    }

    /// Assigns addresses for a workload (all or nothing).
    pub fn assign(&self, req: &AssignRequest) -> Result<Assigned, RpcError> {
        match self.call(&Request::Assign(req.clone()))? {
            Reply::Assigned(a) => Ok(a),
            other => Err(mismatched("assign", &other)),
        }
    }

    /// Assigns exactly the addresses of `req` under its handle (all or nothing); the answer
    /// lists them as host prefixes (/32, /128). An address already held is refused with
    /// [`codes::ADDRESS_IN_USE`], one outside every enabled pool with [`codes::NO_POOL`]. An
    /// agent older than this operation is reported as [`codes::UNSUPPORTED`].
    pub fn assign_ips(&self, req: &AssignIpsRequest) -> Result<Assigned, RpcError> {
        match self.call(&Request::AssignIps(req.clone())) {
            Ok(Reply::Assigned(a)) => Ok(a),
            Ok(other) => Err(mismatched("assign_ips", &other)),
            Err(RpcError::Remote { code, message })
                if code == codes::BAD_REQUEST
                    && message.contains("unknown variant `assign_ips`") =>
            {
                Err(RpcError::Remote {
                    code: codes::UNSUPPORTED.to_string(),
                    message: format!(
                        "this calico-node cannot assign specific addresses (it predates the \
                         assign_ips request; upgrade calico-node to match the CNI plugin): {message}"
                    ),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Releases every address held by `handle_id`; returns how many (0 = nothing was held,
    /// which is not an error: CNI DEL is idempotent).
    pub fn release_handle(&self, node: &str, handle_id: &str) -> Result<usize, RpcError> {
        let req = Request::ReleaseHandle {
            node: node.to_string(),
            handle_id: handle_id.to_string(),
        };
        match self.call(&req)? {
            Reply::HandleReleased { released } => Ok(released),
            other => Err(mismatched("release_handle", &other)),
        }
    }

    /// Releases addresses (only those held by `handle_id` when given); returns the ones that
    /// were not allocated.
    pub fn release_ips(
        &self,
        node: &str,
        ips: &[IpAddr],
        handle_id: Option<&str>,
    ) -> Result<Vec<IpAddr>, RpcError> {
        let req = Request::ReleaseIps {
            node: node.to_string(),
            ips: ips.to_vec(),
            handle_id: handle_id.map(str::to_string),
        };
        match self.call(&req)? {
            Reply::IpsReleased { unallocated } => Ok(unallocated),
            other => Err(mismatched("release_ips", &other)),
        }
    }

    fn connect(&self) -> Result<UnixStream, RpcError> {
        let stream = match connect_with_timeout(&self.path, self.timeout) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(RpcError::Timeout),
            Err(source) => {
                return Err(RpcError::Unreachable {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(|e| RpcError::Protocol(format!("setting socket timeouts: {e}")))?;
        Ok(stream)
    }

    fn call(&self, req: &Request) -> Result<Reply, RpcError> {
        let mut stream = self.connect()?;
        let line = RequestFrame::new(req.clone()).to_line();
        stream
            .write_all(&line)
            .map_err(|e| self.io_error("sending", e))?;
        stream.flush().map_err(|e| self.io_error("sending", e))?;

        // Read one line, never more than the protocol limit (+1 to detect overflow).
        let mut reader = BufReader::new(stream.take(MAX_LINE_BYTES as u64 + 1));
        let mut buf = Vec::with_capacity(256);
        reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| self.io_error("reading the reply from", e))?;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > MAX_LINE_BYTES {
            return Err(RpcError::Protocol(format!(
                "the reply from {} is longer than {MAX_LINE_BYTES} bytes",
                self.path.display()
            )));
        } else if buf.is_empty() {
            return Err(RpcError::Protocol(format!(
                "calico-node at {} closed the connection without answering",
                self.path.display()
            )));
        } else {
            return Err(RpcError::Protocol(format!(
                "calico-node at {} closed the connection in the middle of its reply",
                self.path.display()
            )));
        }
        match decode_response(&buf) {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(remote)) => Err(remote.into()),
            Err(msg) => Err(RpcError::Protocol(msg)),
        }
    }

    fn io_error(&self, what: &str, e: std::io::Error) -> RpcError {
        match e.kind() {
            // std reports an expired SO_RCVTIMEO/SO_SNDTIMEO as WouldBlock on Linux.
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => RpcError::Timeout,
            _ => RpcError::Protocol(format!("{what} {}: {e}", self.path.display())),
        }
    }
}

/// Connects a Unix stream socket within `timeout`. A Unix-socket connect either completes at
/// once or fails (ENOENT, ECONNREFUSED), except when the listener's accept backlog is full:
/// then a non-blocking connect says EAGAIN (it cannot be polled for completion the way a TCP
/// connect can), so it is retried until the deadline. The stream is returned blocking.
fn connect_with_timeout(path: &Path, timeout: Duration) -> std::io::Result<UnixStream> {
    use rustix::io::Errno;
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let addr = SocketAddrUnix::new(path)?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => break,
            Err(e) if e == Errno::AGAIN || e == Errno::INTR => {
                if std::time::Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the agent's accept queue stayed full",
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

fn mismatched(op: &str, reply: &Reply) -> RpcError {
    RpcError::Protocol(format!("calico-node answered {op} with {reply:?}"))
}
