//! The per-peer BGP session state machine (RFC 4271 §8), pure and deterministic.
//!
//! A [`Session`] is driven with [`Session::handle`]`(event, now)` and answers with the
//! [`Action`]s the speaker must perform (connect, send, close, hand routes to the RIB). It
//! never reads a clock: timers are deadlines compared against the `now` it is given, and
//! [`Session::next_deadline`] tells the speaker when to deliver the next [`Event::Tick`].
//!
//! Connections are named by [`ConnId`]: the session numbers the outbound attempts it asks
//! for ([`Action::Connect`]), the speaker numbers the inbound connections it accepted from
//! this peer. There is no "listen" action: the speaker keeps one listening socket for all
//! peers and hands each accepted connection to its peer's session as
//! [`Event::TcpConnectionConfirmed`]; a session that does not want it (Idle, or a third
//! connection) answers with [`Action::CloseConnection`]. A session has at most two connections at a time: the primary one and, during
//! a collision (RFC 4271 §6.8) or a peer restart (RFC 4724 §4.2), a second one that is
//! resolved as soon as its OPEN identifies the peer ([`collision_survivor`]).
//!
//! A speaker's loop, in outline (the socket work is the speaker's, not this module's):
//!
//! ```
//! use std::net::Ipv4Addr;
//! use std::time::{Duration, Instant};
//! use calico_bgp::fsm::{Action, Event, Session, SessionConfig, State};
//! use calico_bgp_packet::{Capability, Family, Message, Open};
//!
//! let mut cfg = SessionConfig::new(64512, 64512, Ipv4Addr::new(10, 0, 0, 1));
//! cfg.connect_delay = Duration::ZERO;
//! let mut session = Session::new(cfg);
//! let t0 = Instant::now(); // any Instant: the session only compares and adds durations
//!
//! let actions = session.handle(Event::ManualStart, t0);
//! let Action::Connect(conn) = actions[0] else { unreachable!() };
//! // ... the speaker connects; when the socket is up:
//! session.handle(Event::TcpCrAcked(conn), t0); // → SendMessage(OPEN)
//! let peer = Open::new(64512, 90, Ipv4Addr::new(10, 0, 0, 2),
//!     vec![Capability::Multiprotocol(Family::IPV4_UNICAST), Capability::FourOctetAs(64512)]);
//! session.handle(Event::message(conn, Message::Open(peer)), t0); // → KEEPALIVE
//! let up = session.handle(Event::message(conn, Message::Keepalive), t0);
//! assert!(matches!(&up[0], Action::SessionUp(n) if n.hold_time == 90 && n.keepalive_time == 30));
//! assert_eq!(session.state(), State::Established);
//! // Timers: sleep until next_deadline(), then Tick.
//! let when = session.next_deadline().unwrap();
//! assert_eq!(when, t0 + Duration::from_secs(30));
//! let ka = session.handle(Event::Tick, when);
//! assert!(matches!(&ka[0], Action::SendMessage { message: Message::Keepalive, .. }));
//! ```
//!
//! Defaults follow Calico's BIRD template (`bird.cfg.template`, see bgp.md §2.2): hold time
//! 240 s (BIRD's default), `connect delay time 2`, `connect retry time 5`,
//! `error wait time 5,30` (the idle hold back-off) and `graceful restart` with a 120 s
//! restart time.

mod collision;
mod config;
mod negotiate;
mod session;

pub use collision::collision_survivor;
pub use config::{GracefulRestartConfig, SessionConfig};
pub use negotiate::{Negotiated, OpenError, PeerGracefulRestart, validate_open};
pub use session::Session;

use std::fmt;
use std::time::Duration;

use calico_bgp_packet::{DecodeError, Decoded, Family, Message, Notification, Update, UpdateError};

/// Who opened a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// We connected to the peer (numbered by the session, see [`Action::Connect`]).
    Outbound,
    /// The peer connected to us (numbered by the speaker that accepted it).
    Inbound,
}

/// One TCP connection to or from the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// Who opened it.
    pub direction: Direction,
    /// Sequence number, unique per direction within one session.
    pub seq: u64,
}

impl ConnId {
    /// An outbound connection (normally only the session creates these).
    pub const fn outbound(seq: u64) -> ConnId {
        ConnId {
            direction: Direction::Outbound,
            seq,
        }
    }

    /// An inbound connection accepted by the speaker.
    pub const fn inbound(seq: u64) -> ConnId {
        ConnId {
            direction: Direction::Inbound,
            seq,
        }
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.direction {
            Direction::Outbound => write!(f, "outbound#{}", self.seq),
            Direction::Inbound => write!(f, "inbound#{}", self.seq),
        }
    }
}

/// The session states of RFC 4271 §8.2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Refuses connections; waits for a start event (or the idle hold back-off).
    Idle,
    /// Waiting for our outbound TCP connection to complete.
    Connect,
    /// Listening for the peer to connect (the passive side of Calico's mesh lives here).
    Active,
    /// Our OPEN is sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for the first KEEPALIVE.
    OpenConfirm,
    /// Session up: UPDATEs flow.
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        })
    }
}

/// An input to the state machine (RFC 4271 §8.1 events; the timer events are derived from
/// [`Event::Tick`] by comparing deadlines with `now`).
// `Received` carries a whole decoded UPDATE; boxing it would cost an allocation per message
// for no gain (events are moved one at a time), as in calico-bgp-packet's `Message`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Event 1 (or event 5 when [`SessionConfig::passive`] is set): start the session and
    /// enable automatic restarts after errors.
    ManualStart,
    /// Event 5, ManualStart_with_PassiveTcpEstablishment: start, but only listen.
    ManualStartPassive,
    /// Event 2: stop; sends Cease/Administrative Shutdown when connected and disables
    /// automatic restarts until the next manual start.
    ManualStop,
    /// Event 3: restart now (normally produced internally when the idle hold back-off ends).
    AutomaticStart,
    /// Time passed: fire every timer whose deadline is at or before `now`.
    Tick,
    /// Events 16/17: our outbound connection `conn` completed.
    TcpCrAcked(ConnId),
    /// Event 17: the speaker accepted an inbound connection `conn` from this peer.
    TcpConnectionConfirmed(ConnId),
    /// Event 18: the connection failed or was closed by the peer.
    TcpConnectionFails(ConnId),
    /// A complete message decoded on `conn` (events 19, 24–27 by message type), with any
    /// RFC 7606 non-session-reset errors the decoder found.
    Received {
        /// The connection it arrived on.
        conn: ConnId,
        /// The decoded message and its survivable UPDATE errors.
        decoded: Decoded,
    },
    /// Events 21, 22, 28: the bytes on `conn` could not be decoded (header, OPEN or
    /// session-reset UPDATE error).
    ReceiveError {
        /// The connection it arrived on.
        conn: ConnId,
        /// What was wrong; gives the NOTIFICATION.
        error: DecodeError,
    },
    /// The speaker sent an UPDATE on the established connection: restarts the keepalive
    /// timer (RFC 4271 §10: KEEPALIVEs are only needed when nothing else is sent).
    UpdateSent,
}

impl Event {
    /// The event for the result of [`calico_bgp_packet::decode`] on `conn`.
    pub fn from_decode(conn: ConnId, result: Result<Decoded, DecodeError>) -> Event {
        match result {
            Ok(decoded) => Event::Received { conn, decoded },
            Err(error) => Event::ReceiveError { conn, error },
        }
    }

    /// A clean received message (no UPDATE errors).
    pub fn message(conn: ConnId, message: Message) -> Event {
        Event::Received {
            conn,
            decoded: Decoded {
                message,
                errors: Vec::new(),
            },
        }
    }
}

/// Why an Established session went down (the speaker flushes the peer's routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// Operator stop ([`Event::ManualStop`]).
    ManualStop,
    /// Nothing heard for the hold time; we sent Hold Timer Expired (4/0).
    HoldTimerExpired,
    /// The TCP connection failed or the peer closed it without a NOTIFICATION.
    ConnectionFailed,
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// We sent this NOTIFICATION because of an error the peer made.
    NotificationSent(Notification),
    /// The peer opened a new session while this one was still up (RFC 4724 §4.2).
    PeerReconnected,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::ManualStop => f.write_str("administratively stopped"),
            DownReason::HoldTimerExpired => f.write_str("hold timer expired"),
            DownReason::ConnectionFailed => f.write_str("connection failed"),
            DownReason::NotificationReceived(n) => write!(f, "received NOTIFICATION: {n}"),
            DownReason::NotificationSent(n) => write!(f, "sent NOTIFICATION: {n}"),
            DownReason::PeerReconnected => f.write_str("peer opened a new session"),
        }
    }
}

/// An effect the speaker must carry out, in order.
// `SendMessage` holds a `Message` (large because of UPDATE), see `Event`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer; report the outcome as [`Event::TcpCrAcked`] or
    /// [`Event::TcpConnectionFails`] with this id.
    Connect(ConnId),
    /// Encode (with the session's tx [`calico_bgp_packet::CodecContext`]) and send.
    SendMessage {
        /// Where to send it.
        conn: ConnId,
        /// What to send.
        message: Message,
    },
    /// Close the connection (after flushing anything sent before on it). Also answers
    /// connections the session refuses.
    CloseConnection(ConnId),
    /// The session reached Established with these negotiated parameters.
    SessionUp(Box<Negotiated>),
    /// The Established session ended; drop every route learned from the peer (stale ones
    /// included).
    SessionDown {
        /// Why.
        reason: DownReason,
    },
    /// The Established session ended but the peer does graceful restart (RFC 4724 §4.2):
    /// keep its routes of `families` as stale, drop the rest, and wait for
    /// [`Action::StaleRoutesFlush`].
    PeerRestarting {
        /// Why the session ended.
        reason: DownReason,
        /// The peer's restart time: the session must be back within it.
        restart_time: Duration,
        /// Families whose routes are kept (in the peer's GR capability and negotiated).
        families: Vec<Family>,
    },
    /// Drop the stale routes of this family (End-of-RIB arrived, the family is no longer
    /// preserved by the peer, or a restart/stale timer expired).
    StaleRoutesFlush(Family),
    /// An UPDATE for the RIB. `errors` are RFC 7606 errors whose actions the RIB applies
    /// (attribute-discard, treat-as-withdraw, and AFI/SAFI-disable when
    /// [`SessionConfig::afi_safi_disable`] is on); the UPDATE keeps its NLRI.
    DeliverUpdate {
        /// The UPDATE.
        update: Box<Update>,
        /// Its survivable errors (empty when clean).
        errors: Vec<UpdateError>,
    },
    /// The peer asked for our Adj-RIB-Out of this family again (RFC 2918).
    RouteRefreshRequested(Family),
}
