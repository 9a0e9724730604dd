//! One peer: a tokio task owning its [`Session`] and its TCP connections.
//!
//! The task turns socket happenings and timer expiries into [`Event`]s, performs the
//! [`Action`]s the session answers with, and reports session and route events to the speaker
//! on a channel. Messages are framed by a reader task per connection (with the extended
//! message limit, so framing never depends on negotiation) and decoded by the peer task with
//! the context negotiated at that moment, so an UPDATE right after the OPEN exchange is read
//! with the right AS-number width.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use calico_bgp::fsm::{
    Action, ConnId, DownReason, Event, Negotiated, Session, SessionConfig, State,
};
use calico_bgp_packet::{CodecContext, DecodeError, Family, Frame, Message, Update, UpdateError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Creates the unconnected TCP sockets of a peer (outbound connections) and of the listener.
/// calico-node passes one that opens them inside the node's network namespace; the default
/// opens them in the caller's.
pub type SocketFactory = Arc<dyn Fn(SocketFamily) -> io::Result<TcpSocket> + Send + Sync>;

/// Address family of a socket to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketFamily {
    V4,
    V6,
}

impl SocketFamily {
    pub fn of(addr: &SocketAddr) -> SocketFamily {
        if addr.is_ipv4() {
            SocketFamily::V4
        } else {
            SocketFamily::V6
        }
    }
}

/// Sockets in the caller's network namespace.
pub fn default_socket_factory() -> SocketFactory {
    Arc::new(|family| match family {
        SocketFamily::V4 => TcpSocket::new_v4(),
        SocketFamily::V6 => TcpSocket::new_v6(),
    })
}

/// Sets the RFC 2385 TCP MD5 key for one peer on a socket (listening, or not yet connected).
/// `None` removes it.
pub fn set_md5_key(
    socket: &impl std::os::fd::AsFd,
    peer: IpAddr,
    key: Option<&[u8]>,
) -> io::Result<()> {
    calico_tcp_md5::set_key(socket.as_fd(), peer, key).map_err(|e| match e {
        calico_tcp_md5::Md5Error::Unsupported(_) => io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel has no TCP MD5 signature support (TCP_MD5SIG); a BGP password cannot be used",
        ),
        other => io::Error::other(other.to_string()),
    })
}

/// What to run for one peer.
#[derive(Clone)]
pub struct PeerConfig {
    pub session: SessionConfig,
    /// The peer's address and port (179).
    pub remote: SocketAddr,
    /// Our source address for outbound connections (Calico's `source address <nodeIP>`).
    pub local_address: Option<IpAddr>,
    /// How long an outbound connect may take before it counts as failed.
    pub connect_timeout: Duration,
    /// How long a send may block before the connection counts as failed.
    pub send_timeout: Duration,
    /// TCP MD5 password (Calico BGPPeer `password`, BIRD `password`): set on every outbound
    /// socket; the listener must carry the same key for this peer's address.
    pub md5_key: Option<Vec<u8>>,
    /// Opens this peer's outbound sockets.
    pub sockets: SocketFactory,
}

impl std::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("session", &self.session)
            .field("remote", &self.remote)
            .field("local_address", &self.local_address)
            .field("md5", &self.md5_key.is_some())
            .finish_non_exhaustive()
    }
}

impl PeerConfig {
    pub fn new(session: SessionConfig, remote: SocketAddr) -> PeerConfig {
        PeerConfig {
            session,
            remote,
            local_address: None,
            connect_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(10),
            md5_key: None,
            sockets: default_socket_factory(),
        }
    }
}

/// What a peer reports to the speaker (and through it to the RIB and the status reporters).
#[derive(Debug)]
pub enum PeerEvent {
    /// The session is established; `local` is our end of its connection.
    Up {
        negotiated: Box<Negotiated>,
        local: Option<SocketAddr>,
    },
    /// Every route learned from the peer must go.
    Down(DownReason),
    /// The peer is restarting (RFC 4724): keep its routes of `families` as stale.
    Restarting {
        reason: DownReason,
        restart_time: Duration,
        families: Vec<Family>,
    },
    StaleFlush(Family),
    Update {
        update: Box<Update>,
        errors: Vec<UpdateError>,
    },
    RouteRefreshRequested(Family),
}

/// What the speaker tells a peer.
#[derive(Debug)]
pub enum PeerCommand {
    /// An inbound connection from this peer's address, accepted by the speaker's listener.
    Accepted(TcpStream),
    /// Send a message (UPDATE, ROUTE-REFRESH) on the established session; dropped with a
    /// warning when the session is not established.
    Send(Box<Message>),
    /// Send messages in order (what the speaker does with packed UPDATEs).
    SendBatch(Vec<Message>),
    /// Stop the session (Cease) and end the task.
    Stop,
    /// End the task by closing the connections without a NOTIFICATION: what a restarting
    /// speaker does (RFC 4724 §4.1), so a peer that negotiated graceful restart keeps our
    /// routes as stale until we are back and send End-of-RIB.
    Abandon,
}

/// BGP message types (RFC 4271 §4.1, RFC 2918) by their type code, index 0 unused.
pub const MESSAGE_TYPES: [&str; 6] = [
    "",
    "open",
    "update",
    "notification",
    "keepalive",
    "route_refresh",
];

/// Messages sent and received on a peer's sessions, by type code (for metrics).
#[derive(Debug, Default)]
struct MessageCounters {
    sent: [std::sync::atomic::AtomicU64; 6],
    received: [std::sync::atomic::AtomicU64; 6],
}

impl MessageCounters {
    fn count(table: &[std::sync::atomic::AtomicU64; 6], code: u8) {
        if let Some(c) = table.get(usize::from(code)) {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A snapshot of [`MessageCounters`]: `sent[code]`, `received[code]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub sent: [u64; 6],
    pub received: [u64; 6],
}

fn message_code(m: &Message) -> u8 {
    match m {
        Message::Open(_) => 1,
        Message::Update(_) => 2,
        Message::Notification(_) => 3,
        Message::Keepalive => 4,
        Message::RouteRefresh(_) => 5,
    }
}

/// The session state of a peer, for status reports (`calicoctl node status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSnapshot {
    pub state: State,
    /// When the session entered `state`.
    pub since: SystemTime,
    /// Why the session last went down (BIRD's "info" column), if it did.
    pub last_error: Option<DownReason>,
    /// The OS error of the last failed outbound connect (errno), cleared when one succeeds:
    /// BIRD's `Socket: Connection refused`.
    pub connect_error: Option<i32>,
    /// The peer's identifier and AS once it has been established.
    pub remote_id: Option<std::net::Ipv4Addr>,
    pub remote_as: Option<u32>,
}

/// The speaker's end of a peer task.
pub struct PeerHandle {
    commands: mpsc::UnboundedSender<PeerCommand>,
    task: JoinHandle<()>,
    snapshot: watch::Receiver<PeerSnapshot>,
    counters: Arc<MessageCounters>,
}

/// Why a command could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("the peer task has ended")]
pub struct PeerGone;

/// A cloneable way to send commands to a peer task (what the listener keeps per peer).
///
/// Commands are queued without bound so the speaker never waits on a peer that is itself
/// waiting to report to the speaker; the queue holds at most what the RIB has to send.
#[derive(Clone, Debug)]
pub struct PeerCommander(mpsc::UnboundedSender<PeerCommand>);

impl PeerCommander {
    pub async fn command(&self, c: PeerCommand) -> Result<(), PeerGone> {
        self.send(c)
    }

    /// Queues a command without waiting.
    pub fn send(&self, c: PeerCommand) -> Result<(), PeerGone> {
        self.0.send(c).map_err(|_| PeerGone)
    }
}

impl PeerHandle {
    pub fn commander(&self) -> PeerCommander {
        PeerCommander(self.commands.clone())
    }

    pub async fn command(&self, c: PeerCommand) -> Result<(), PeerGone> {
        self.send(c)
    }

    /// Queues a command without waiting.
    pub fn send(&self, c: PeerCommand) -> Result<(), PeerGone> {
        self.commands.send(c).map_err(|_| PeerGone)
    }

    /// The session's current state.
    pub fn snapshot(&self) -> PeerSnapshot {
        self.snapshot.borrow().clone()
    }

    /// Messages sent and received so far.
    pub fn message_counts(&self) -> MessageCounts {
        let load = |t: &[std::sync::atomic::AtomicU64; 6]| {
            std::array::from_fn(|i| t[i].load(std::sync::atomic::Ordering::Relaxed))
        };
        MessageCounts {
            sent: load(&self.counters.sent),
            received: load(&self.counters.received),
        }
    }

    /// Stops the session (sending Cease when connected) and waits for the task to end.
    pub async fn stop(self) {
        let _ = self.commands.send(PeerCommand::Stop);
        let _ = self.task.await;
    }

    /// Closes the connections without a NOTIFICATION (a graceful-restart exit) and waits.
    pub async fn abandon(self) {
        let _ = self.commands.send(PeerCommand::Abandon);
        let _ = self.task.await;
    }
}

/// Starts the task of one peer; its events arrive on `events`.
pub fn spawn_peer(cfg: PeerConfig, events: mpsc::Sender<PeerEvent>) -> PeerHandle {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (internal_tx, internal_rx) = mpsc::channel(256);
    let (snapshot_tx, snapshot) = watch::channel(PeerSnapshot {
        state: State::Idle,
        since: SystemTime::now(),
        last_error: None,
        connect_error: None,
        remote_id: None,
        remote_as: None,
    });
    let counters = Arc::new(MessageCounters::default());
    let driver = Driver {
        counters: counters.clone(),
        snapshot: snapshot_tx,
        session: Session::new(cfg.session.clone()),
        cfg,
        conns: HashMap::new(),
        next_inbound: 0,
        rx_ctx: CodecContext::initial(),
        tx_ctx: CodecContext::initial(),
        internal_tx,
        events,
    };
    let task = tokio::spawn(driver.run(command_rx, internal_rx));
    PeerHandle {
        commands,
        task,
        snapshot,
        counters,
    }
}

/// What connection tasks tell the peer task.
enum Internal {
    Connected(ConnId, TcpStream),
    ConnectFailed(ConnId, io::Error),
    Frame(ConnId, Vec<u8>),
    /// The connection ended: `None` for EOF or an I/O error, `Some` for bytes that cannot be
    /// framed (bad marker, length or type).
    ReadEnded(ConnId, Option<DecodeError>),
}

struct Conn {
    writer: OwnedWriteHalf,
    reader: JoinHandle<()>,
}

struct Driver {
    counters: Arc<MessageCounters>,
    snapshot: watch::Sender<PeerSnapshot>,
    session: Session,
    cfg: PeerConfig,
    conns: HashMap<ConnId, Conn>,
    next_inbound: u64,
    rx_ctx: CodecContext,
    tx_ctx: CodecContext,
    internal_tx: mpsc::Sender<Internal>,
    events: mpsc::Sender<PeerEvent>,
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<PeerCommand>,
        mut internal: mpsc::Receiver<Internal>,
    ) {
        let start = if self.cfg.session.passive {
            Event::ManualStartPassive
        } else {
            Event::ManualStart
        };
        self.handle(start).await;
        loop {
            let deadline = self.session.next_deadline();
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(PeerCommand::Stop) => {
                        self.handle(Event::ManualStop).await;
                        for (_, c) in self.conns.drain() {
                            c.reader.abort();
                        }
                        return;
                    }
                    Some(PeerCommand::Abandon) => {
                        for (_, mut c) in self.conns.drain() {
                            c.reader.abort();
                            let _ = c.writer.shutdown().await;
                        }
                        return;
                    }
                    Some(PeerCommand::Accepted(stream)) => {
                        let id = ConnId::inbound(self.next_inbound);
                        self.next_inbound += 1;
                        self.register(id, stream);
                        self.handle(Event::TcpConnectionConfirmed(id)).await;
                    }
                    Some(PeerCommand::Send(message)) => self.send_established(*message).await,
                    Some(PeerCommand::SendBatch(messages)) => {
                        for m in messages {
                            self.send_established(m).await;
                        }
                    }
                },
                Some(ev) = internal.recv() => match ev {
                    Internal::Connected(id, stream) => {
                        self.snapshot.send_if_modified(|s| s.connect_error.take().is_some());
                        self.register(id, stream);
                        self.handle(Event::TcpCrAcked(id)).await;
                    }
                    Internal::ConnectFailed(id, e) => {
                        tracing::debug!(peer = %self.cfg.remote, conn = %id, error = %e, "connect failed");
                        let errno = e.raw_os_error().or(match e.kind() {
                            io::ErrorKind::TimedOut => Some(110), // ETIMEDOUT
                            _ => None,
                        });
                        self.snapshot.send_if_modified(|s| {
                            let changed = s.connect_error != errno;
                            s.connect_error = errno;
                            changed
                        });
                        self.handle(Event::TcpConnectionFails(id)).await;
                    }
                    Internal::Frame(id, bytes) => {
                        if self.conns.contains_key(&id) {
                            // Byte 18 is the type (16-octet marker, 2-octet length).
                            if let Some(code) = bytes.get(18) {
                                MessageCounters::count(&self.counters.received, *code);
                            }
                            let ev = Event::from_decode(id, calico_bgp_packet::decode(&bytes, &self.rx_ctx));
                            self.handle(ev).await;
                        }
                    }
                    Internal::ReadEnded(id, error) => {
                        if self.conns.contains_key(&id) {
                            let ev = match error {
                                Some(error) => Event::ReceiveError { conn: id, error },
                                None => Event::TcpConnectionFails(id),
                            };
                            self.handle(ev).await;
                        }
                    }
                },
                _ = sleep_until(deadline), if deadline.is_some() => self.handle(Event::Tick).await,
            }
        }
    }

    /// Feeds `event` to the session and performs what it answers, including the events
    /// those actions cause (a failed send is a connection failure).
    async fn handle(&mut self, event: Event) {
        let mut queue = vec![event];
        while let Some(ev) = queue.pop() {
            let actions = self.session.handle(ev, Instant::now());
            for action in actions {
                if let Some(follow_up) = self.perform(action).await {
                    queue.push(follow_up);
                }
            }
        }
        self.publish();
    }

    /// Updates the status snapshot when the state changed.
    fn publish(&self) {
        let state = self.session.state();
        let negotiated = self.session.negotiated();
        let last_error = self.session.last_down().cloned();
        self.snapshot.send_if_modified(|s| {
            let mut changed = false;
            if s.state != state {
                s.state = state;
                s.since = SystemTime::now();
                changed = true;
            }
            if let Some(n) = negotiated
                && s.remote_id != Some(n.remote_id)
            {
                s.remote_id = Some(n.remote_id);
                s.remote_as = Some(n.remote_as);
                changed = true;
            }
            if s.last_error != last_error {
                s.last_error = last_error.clone();
                changed = true;
            }
            changed
        });
    }

    async fn perform(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::Connect(id) => {
                self.connect(id);
                None
            }
            Action::SendMessage { conn, message } => {
                let ctx = if self.session.is_established() {
                    self.tx_ctx
                } else {
                    CodecContext::initial()
                };
                self.write(conn, &message, &ctx)
                    .await
                    .err()
                    .map(|_| Event::TcpConnectionFails(conn))
            }
            Action::CloseConnection(id) => {
                if let Some(mut c) = self.conns.remove(&id) {
                    c.reader.abort();
                    let _ = c.writer.shutdown().await;
                }
                None
            }
            Action::SessionUp(n) => {
                self.rx_ctx = n.rx;
                self.tx_ctx = n.tx;
                tracing::info!(peer = %self.cfg.remote, hold = n.hold_time, "BGP session established");
                let local = self
                    .conns
                    .get(&n.conn)
                    .and_then(|c| c.writer.local_addr().ok());
                self.report(PeerEvent::Up {
                    negotiated: n,
                    local,
                })
                .await;
                None
            }
            Action::SessionDown { reason } => {
                self.reset_contexts();
                tracing::info!(peer = %self.cfg.remote, %reason, "BGP session down");
                self.report(PeerEvent::Down(reason)).await;
                None
            }
            Action::PeerRestarting {
                reason,
                restart_time,
                families,
            } => {
                self.reset_contexts();
                tracing::info!(peer = %self.cfg.remote, %reason, ?restart_time, "BGP peer restarting; keeping its routes");
                self.report(PeerEvent::Restarting {
                    reason,
                    restart_time,
                    families,
                })
                .await;
                None
            }
            Action::StaleRoutesFlush(f) => {
                self.report(PeerEvent::StaleFlush(f)).await;
                None
            }
            Action::DeliverUpdate { update, errors } => {
                self.report(PeerEvent::Update { update, errors }).await;
                None
            }
            Action::RouteRefreshRequested(f) => {
                self.report(PeerEvent::RouteRefreshRequested(f)).await;
                None
            }
        }
    }

    fn reset_contexts(&mut self) {
        self.rx_ctx = CodecContext::initial();
        self.tx_ctx = CodecContext::initial();
    }

    async fn report(&self, ev: PeerEvent) {
        if self.events.send(ev).await.is_err() {
            tracing::debug!(peer = %self.cfg.remote, "speaker gone; dropping peer event");
        }
    }

    async fn send_established(&mut self, message: Message) {
        let (true, Some(conn)) = (self.session.is_established(), self.session.connection()) else {
            tracing::warn!(peer = %self.cfg.remote, "session not established; not sending");
            return;
        };
        let ctx = self.tx_ctx;
        match self.write(conn, &message, &ctx).await {
            Ok(()) => {
                if matches!(message, Message::Update(_)) {
                    self.handle(Event::UpdateSent).await;
                }
            }
            Err(()) => self.handle(Event::TcpConnectionFails(conn)).await,
        }
    }

    /// Encodes and writes; `Err` when the connection is gone or the write failed.
    async fn write(
        &mut self,
        conn: ConnId,
        message: &Message,
        ctx: &CodecContext,
    ) -> Result<(), ()> {
        let bytes = match message.encode(ctx) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(peer = %self.cfg.remote, error = %e, "cannot encode a message; not sent");
                return Ok(());
            }
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return Err(());
        };
        match tokio::time::timeout(self.cfg.send_timeout, c.writer.write_all(&bytes)).await {
            Ok(Ok(())) => {
                MessageCounters::count(&self.counters.sent, message_code(message));
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.cfg.remote, conn = %conn, error = %e, "send failed");
                Err(())
            }
            Err(_) => {
                tracing::warn!(peer = %self.cfg.remote, conn = %conn, "send timed out");
                Err(())
            }
        }
    }

    fn connect(&self, id: ConnId) {
        let (remote, local, timeout, tx) = (
            self.cfg.remote,
            self.cfg.local_address,
            self.cfg.connect_timeout,
            self.internal_tx.clone(),
        );
        let (sockets, key) = (self.cfg.sockets.clone(), self.cfg.md5_key.clone());
        tokio::spawn(async move {
            let result =
                tokio::time::timeout(timeout, connect(remote, local, &sockets, key.as_deref()))
                    .await
                    .unwrap_or_else(|_| {
                        Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
                    });
            let msg = match result {
                Ok(s) => Internal::Connected(id, s),
                Err(e) => Internal::ConnectFailed(id, e),
            };
            let _ = tx.send(msg).await;
        });
    }

    fn register(&mut self, id: ConnId, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        let reader = tokio::spawn(read_frames(id, reader, self.internal_tx.clone()));
        if let Some(old) = self.conns.insert(id, Conn { writer, reader }) {
            old.reader.abort();
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    if let Some(d) = deadline {
        tokio::time::sleep_until(d.into()).await;
    }
}

async fn connect(
    remote: SocketAddr,
    local: Option<IpAddr>,
    sockets: &SocketFactory,
    md5_key: Option<&[u8]>,
) -> io::Result<TcpStream> {
    let socket = sockets(SocketFamily::of(&remote))?;
    if let Some(key) = md5_key {
        set_md5_key(&socket, remote.ip(), Some(key))?;
    }
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(remote).await
}

/// Reads one connection and hands each complete message to the peer task.
async fn read_frames(id: ConnId, mut reader: OwnedReadHalf, tx: mpsc::Sender<Internal>) {
    // Frame with the largest limit any session may negotiate; the peer task decodes with the
    // negotiated one, which rejects what is too long for it.
    let framing = CodecContext {
        extended_message: true,
        ..CodecContext::initial()
    };
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        loop {
            match calico_bgp_packet::frame(&buf, &framing) {
                Ok(Frame::Complete(n)) => {
                    let msg: Vec<u8> = buf.drain(..n).collect();
                    if tx.send(Internal::Frame(id, msg)).await.is_err() {
                        return;
                    }
                }
                Ok(Frame::NeedMore(_)) => break,
                Err(e) => {
                    let _ = tx.send(Internal::ReadEnded(id, Some(e))).await;
                    return;
                }
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                let _ = tx.send(Internal::ReadEnded(id, None)).await;
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
