//! The session itself: state, timers, connections and the transition function.

use std::time::{Duration, Instant};

use calico_bgp_packet::{
    Action as ErrorAction, DecodeError, Decoded, Family, Message, Notification, Open, code,
    message_type, subcode,
};

use super::collision::collision_survivor;
use super::config::SessionConfig;
use super::negotiate::{Negotiated, validate_open};
use super::{Action, ConnId, DownReason, Event, State};

/// The timers of RFC 4271 §10 plus the idle hold back-off and the two graceful-restart
/// timers of RFC 4724 §4.2. Listed in the order they fire when several are due at once:
/// route flushes first, then the ones that change the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    Restart,
    Stale,
    IdleHold,
    ConnectRetry,
    Hold,
    Keepalive,
}

/// One BGP peer's session state machine. See the [module docs](super).
#[derive(Debug, Clone)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// Only listen in Active (ManualStart_with_PassiveTcpEstablishment or config.passive).
    passive: bool,
    /// ManualStop was the last manual event: no automatic restarts.
    admin_stopped: bool,
    /// The outbound attempt in flight (Connect state).
    connecting: Option<ConnId>,
    /// The connection the session runs on (OpenSent and later).
    primary: Option<ConnId>,
    /// A second connection during a collision or a peer restart; our OPEN is sent on it.
    pending: Option<ConnId>,
    next_outbound: u64,
    connect_retry_counter: u32,
    connect_retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    idle_hold_at: Option<Instant>,
    restart_at: Option<Instant>,
    stale_at: Option<Instant>,
    /// The next idle hold time (doubles per error up to the configured maximum).
    idle_hold_next: Duration,
    established_at: Option<Instant>,
    negotiated: Option<Negotiated>,
    /// Families whose routes the RIB keeps as stale for a restarting peer.
    stale: Vec<Family>,
    last_down: Option<DownReason>,
}

impl Session {
    /// A session in Idle. Nothing happens until [`Event::ManualStart`] (or
    /// [`Event::AutomaticStart`]).
    pub fn new(config: SessionConfig) -> Session {
        let idle_hold_next = config.idle_hold_time;
        let passive = config.passive;
        Session {
            config,
            state: State::Idle,
            passive,
            admin_stopped: false,
            connecting: None,
            primary: None,
            pending: None,
            next_outbound: 0,
            connect_retry_counter: 0,
            connect_retry_at: None,
            hold_at: None,
            keepalive_at: None,
            idle_hold_at: None,
            restart_at: None,
            stale_at: None,
            idle_hold_next,
            established_at: None,
            negotiated: None,
            stale: Vec::new(),
            last_down: None,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether UPDATEs may flow (state Established).
    pub fn is_established(&self) -> bool {
        self.state == State::Established
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Sets or clears the Restart State bit of our graceful restart capability for the
    /// OPENs sent from now on (set while the speaker comes back from its own restart).
    pub fn set_restart_state(&mut self, restarting: bool) {
        if let Some(gr) = &mut self.config.graceful_restart {
            gr.restart_state = restarting;
        }
    }

    /// What the session negotiated (OpenConfirm and Established).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The connection the session runs on, once one is up.
    pub fn connection(&self) -> Option<ConnId> {
        self.primary
    }

    /// How often the session failed since the last manual start (RFC 4271 ConnectRetryCounter).
    pub fn connect_retry_counter(&self) -> u32 {
        self.connect_retry_counter
    }

    /// Why the session last went down (for `calicoctl node status`'s info column).
    pub fn last_down(&self) -> Option<&DownReason> {
        self.last_down.as_ref()
    }

    /// Families whose routes are currently kept as stale for a restarting peer.
    pub fn stale_families(&self) -> &[Family] {
        &self.stale
    }

    /// The idle hold time the next error will wait before restarting.
    pub fn next_idle_hold(&self) -> Duration {
        self.idle_hold_next
    }

    /// The earliest timer deadline; deliver [`Event::Tick`] at (or after) it.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.restart_at,
            self.stale_at,
            self.idle_hold_at,
            self.connect_retry_at,
            self.hold_at,
            self.keepalive_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Feeds one event at time `now` and returns what the speaker must do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::ManualStart => {
                if self.state == State::Idle {
                    self.admin_stopped = false;
                    self.connect_retry_counter = 0;
                    self.idle_hold_next = self.config.idle_hold_time;
                    self.passive = self.config.passive;
                    self.start(now, &mut out);
                }
            }
            Event::ManualStartPassive => {
                if self.state == State::Idle {
                    self.admin_stopped = false;
                    self.connect_retry_counter = 0;
                    self.idle_hold_next = self.config.idle_hold_time;
                    self.passive = true;
                    self.start(now, &mut out);
                }
            }
            Event::AutomaticStart => {
                if self.state == State::Idle && !self.admin_stopped {
                    self.start(now, &mut out);
                }
            }
            Event::ManualStop => self.manual_stop(now, &mut out),
            Event::Tick => self.tick(now, &mut out),
            Event::TcpCrAcked(conn) => {
                if self.connecting == Some(conn) {
                    self.connecting = None;
                    self.connected(conn, now, &mut out);
                } else if self.primary != Some(conn) && self.pending != Some(conn) {
                    // An attempt we gave up on (or never asked for): release the socket.
                    out.push(Action::CloseConnection(conn));
                }
            }
            Event::TcpConnectionConfirmed(conn) => self.incoming(conn, now, &mut out),
            Event::TcpConnectionFails(conn) => self.connection_failed(conn, now, &mut out),
            Event::Received { conn, decoded } => {
                if self.pending == Some(conn) {
                    self.pending_message(conn, decoded, now, &mut out);
                } else if self.primary == Some(conn) {
                    self.message(decoded, now, &mut out);
                }
                // Anything else arrived on a connection already closed: ignore it.
            }
            Event::ReceiveError { conn, error } => {
                if self.pending == Some(conn) {
                    // Only our OPEN went out on it: it is in OpenSent.
                    self.pending = None;
                    let n = receive_error_notification(State::OpenSent, &error);
                    send(&mut out, conn, Message::Notification(n));
                    out.push(Action::CloseConnection(conn));
                } else if self.primary == Some(conn) {
                    let n = receive_error_notification(self.state, &error);
                    self.drop_session(
                        now,
                        DownReason::NotificationSent(n.clone()),
                        Some(n),
                        &mut out,
                    );
                }
            }
            Event::UpdateSent => {
                if self.state == State::Established && self.keepalive_at.is_some() {
                    self.keepalive_at = Some(now + self.keepalive_interval());
                }
            }
        }
        out
    }

    // ----- starting, connecting -------------------------------------------------------

    /// Idle → Connect (active) or Active (passive), RFC 4271 §8.2.2 Idle events 1/3/4/5.
    fn start(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.idle_hold_at = None;
        if self.passive {
            // BIRD `passive on`: never connect; no ConnectRetryTimer is needed to listen.
            self.state = State::Active;
        } else if !self.config.connect_delay.is_zero() {
            // Listen first; the ConnectRetryTimer doubles as the connect delay (Active +
            // ConnectRetryTimer_Expires → Connect, RFC 4271 §8.2.2).
            self.state = State::Active;
            self.connect_retry_at = Some(now + self.config.connect_delay);
        } else {
            self.state = State::Connect;
            self.connect(now, out);
        }
    }

    fn connect(&mut self, now: Instant, out: &mut Vec<Action>) {
        let conn = ConnId::outbound(self.next_outbound);
        self.next_outbound += 1;
        self.connecting = Some(conn);
        self.connect_retry_at = Some(now + self.config.connect_retry_time);
        out.push(Action::Connect(conn));
    }

    /// A TCP connection is up in Connect/Active: send OPEN, go to OpenSent.
    fn connected(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Action>) {
        self.primary = Some(conn);
        self.connect_retry_at = None;
        self.hold_at = Some(now + self.config.open_hold_time);
        send(out, conn, Message::Open(self.config.open()));
        self.state = State::OpenSent;
    }

    fn incoming(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Action>) {
        if self.primary == Some(conn) || self.pending == Some(conn) {
            return;
        }
        match self.state {
            // RFC 4271 §8.2.2: Idle refuses all incoming connections.
            State::Idle => out.push(Action::CloseConnection(conn)),
            State::Connect | State::Active => {
                // The peer got through first: use its connection, abandon our attempt.
                if let Some(attempt) = self.connecting.take() {
                    out.push(Action::CloseConnection(attempt));
                }
                self.connected(conn, now, out);
            }
            State::OpenSent => {
                if self.pending.is_none() {
                    // RFC 4271 §6.8: both connections proceed until an OPEN tells us the
                    // peer's identifier.
                    self.pending = Some(conn);
                    send(out, conn, Message::Open(self.config.open()));
                } else {
                    reject(out, conn, subcode::CEASE_CONNECTION_REJECTED);
                }
            }
            State::OpenConfirm => {
                let Some(neg) = &self.negotiated else {
                    reject(out, conn, subcode::CEASE_CONNECTION_REJECTED);
                    return;
                };
                let Some(primary) = self.primary else {
                    reject(out, conn, subcode::CEASE_CONNECTION_REJECTED);
                    return;
                };
                // The peer's identifier is known: resolve at once.
                if self.survivor(primary, conn, neg.remote_id, neg.remote_as) == conn {
                    reject(out, primary, subcode::CEASE_COLLISION_RESOLUTION);
                    self.negotiated = None;
                    self.keepalive_at = None;
                    self.connected(conn, now, out);
                } else {
                    reject(out, conn, subcode::CEASE_COLLISION_RESOLUTION);
                }
            }
            State::Established => {
                let gr = self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.peer_graceful_restart.is_some());
                if gr && self.pending.is_none() {
                    // RFC 4724 §4.2: a restarting peer may reconnect before we noticed the old
                    // connection is dead; its OPEN on the new one ends the old session.
                    self.pending = Some(conn);
                    send(out, conn, Message::Open(self.config.open()));
                } else {
                    reject(out, conn, subcode::CEASE_CONNECTION_REJECTED);
                }
            }
        }
    }

    /// Which of `primary` and `other` survives. Different directions: RFC 4271 §6.8. The
    /// same direction (the peer connected twice) keeps the newer connection: the peer has
    /// given up on the older one.
    fn survivor(
        &self,
        primary: ConnId,
        other: ConnId,
        remote_id: std::net::Ipv4Addr,
        remote_as: u32,
    ) -> ConnId {
        if primary.direction == other.direction {
            return other;
        }
        let dir = collision_survivor(
            self.config.router_id,
            self.config.local_as,
            remote_id,
            remote_as,
        );
        if primary.direction == dir {
            primary
        } else {
            other
        }
    }

    fn connection_failed(&mut self, conn: ConnId, now: Instant, out: &mut Vec<Action>) {
        if self.connecting == Some(conn) {
            // Connect + TcpConnectionFails: keep listening and retry when the timer fires,
            // as BIRD does (RFC 4271 without DelayOpen would go to Idle instead).
            self.connecting = None;
            self.connect_retry_at = Some(now + self.config.connect_retry_time);
            self.state = State::Active;
        } else if self.pending == Some(conn) {
            self.pending = None;
        } else if self.primary == Some(conn) {
            self.primary = None;
            if self.state == State::OpenSent {
                if let Some(next) = self.pending.take() {
                    // The other connection of a collision carries on (our OPEN is out).
                    self.primary = Some(next);
                    self.hold_at = Some(now + self.config.open_hold_time);
                    return;
                }
                // RFC 4271 §8.2.2 OpenSent event 18: back to Active.
                self.hold_at = None;
                self.state = State::Active;
                if !self.passive {
                    self.connect_retry_at = Some(now + self.config.connect_retry_time);
                }
            } else {
                self.drop_session(now, DownReason::ConnectionFailed, None, out);
            }
        }
    }

    // ----- messages ---------------------------------------------------------------------

    /// A message on the primary connection.
    fn message(&mut self, decoded: Decoded, now: Instant, out: &mut Vec<Action>) {
        let Some(conn) = self.primary else { return };
        let Decoded { message, errors } = decoded;
        if let Message::Notification(n) = message {
            // Events 24/25 in every state: close without answering.
            self.drop_session(now, DownReason::NotificationReceived(n), None, out);
            return;
        }
        match (self.state, message) {
            (State::OpenSent, Message::Open(open)) => self.open_received(conn, &open, now, out),
            (State::OpenConfirm, Message::Keepalive) => {
                self.restart_hold(now);
                self.state = State::Established;
                self.established_at = Some(now);
                if let Some(neg) = &self.negotiated {
                    out.push(Action::SessionUp(Box::new(neg.clone())));
                }
            }
            (State::Established, Message::Keepalive) => self.restart_hold(now),
            (State::Established, Message::Update(update)) => {
                self.restart_hold(now);
                let disable = self.config.afi_safi_disable;
                if let Some(fatal) = errors.iter().find(|e| match e.action {
                    ErrorAction::SessionReset => true,
                    ErrorAction::AfiSafiDisable(_) => !disable,
                    _ => false,
                }) {
                    let n = fatal.notification();
                    self.drop_session(now, DownReason::NotificationSent(n.clone()), Some(n), out);
                    return;
                }
                let eor = update.end_of_rib_family();
                out.push(Action::DeliverUpdate {
                    update: Box::new(update),
                    errors,
                });
                if let Some(family) = eor {
                    self.end_of_rib(family, out);
                }
            }
            (State::Established, Message::RouteRefresh(rr)) => {
                self.restart_hold(now);
                let local_rr = self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.local_route_refresh);
                if !local_rr {
                    // We never advertised ROUTE-REFRESH, so type 5 is unknown to this session.
                    let n = Notification::new(
                        code::MESSAGE_HEADER,
                        subcode::BAD_MESSAGE_TYPE,
                        vec![message_type::ROUTE_REFRESH],
                    );
                    self.drop_session(now, DownReason::NotificationSent(n.clone()), Some(n), out);
                    return;
                }
                let known = self
                    .negotiated
                    .as_ref()
                    .is_some_and(|n| n.families.contains(&rr.family));
                // RFC 2918 §4: ignore families not negotiated; RFC 7313 §5: ignore subtypes
                // other than a plain request (we do not advertise enhanced route refresh).
                if known && rr.subtype == 0 {
                    out.push(Action::RouteRefreshRequested(rr.family));
                }
            }
            (state, _) => {
                // Anything else is out of order: Finite State Machine Error with the
                // state-specific subcode of RFC 6608.
                let n = Notification::new(code::FSM, fsm_subcode(state), Vec::new());
                self.drop_session(now, DownReason::NotificationSent(n.clone()), Some(n), out);
            }
        }
    }

    /// The peer's OPEN on the primary connection in OpenSent.
    fn open_received(&mut self, conn: ConnId, open: &Open, now: Instant, out: &mut Vec<Action>) {
        let neg = match validate_open(&self.config, open, conn) {
            Ok(neg) => neg,
            Err(e) => {
                let n = e.notification();
                self.drop_session(now, DownReason::NotificationSent(n.clone()), Some(n), out);
                return;
            }
        };
        if let Some(other) = self.pending {
            if self.survivor(conn, other, neg.remote_id, neg.remote_as) == other {
                // The other connection wins; its own OPEN will arrive on it.
                reject(out, conn, subcode::CEASE_COLLISION_RESOLUTION);
                self.primary = Some(other);
                self.pending = None;
                self.hold_at = Some(now + self.config.open_hold_time);
                return;
            }
            self.pending = None;
            reject(out, other, subcode::CEASE_COLLISION_RESOLUTION);
        }
        self.accept_open(neg, now, out);
    }

    /// A message on the second connection (collision or peer restart).
    fn pending_message(
        &mut self,
        conn: ConnId,
        decoded: Decoded,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let open = match decoded.message {
            Message::Open(open) => open,
            Message::Notification(_) => {
                self.pending = None;
                out.push(Action::CloseConnection(conn));
                return;
            }
            _ => {
                // Our OPEN is the only thing sent on it: this is OpenSent for that connection.
                self.pending = None;
                let n = Notification::new(code::FSM, fsm_subcode(State::OpenSent), Vec::new());
                send(out, conn, Message::Notification(n));
                out.push(Action::CloseConnection(conn));
                return;
            }
        };
        let neg = match validate_open(&self.config, &open, conn) {
            Ok(neg) => neg,
            Err(e) => {
                self.pending = None;
                send(out, conn, Message::Notification(e.notification()));
                out.push(Action::CloseConnection(conn));
                return;
            }
        };
        let Some(primary) = self.primary else {
            self.pending = None;
            self.primary = Some(conn);
            self.accept_open(neg, now, out);
            return;
        };
        if self.state == State::Established {
            // RFC 4724 §4.2: the peer restarted; the old session is gone.
            self.pending = None;
            out.push(Action::CloseConnection(primary));
            self.end_established(DownReason::PeerReconnected, true, now, out);
            self.primary = Some(conn);
            self.established_at = None;
            self.accept_open(neg, now, out);
            return;
        }
        self.pending = None;
        if self.survivor(primary, conn, neg.remote_id, neg.remote_as) == conn {
            reject(out, primary, subcode::CEASE_COLLISION_RESOLUTION);
            self.primary = Some(conn);
            self.accept_open(neg, now, out);
        } else {
            reject(out, conn, subcode::CEASE_COLLISION_RESOLUTION);
        }
    }

    /// A valid OPEN on the (now) primary connection: KEEPALIVE, timers, OpenConfirm.
    fn accept_open(&mut self, neg: Negotiated, now: Instant, out: &mut Vec<Action>) {
        self.connect_retry_at = None;
        if !self.stale.is_empty() {
            // RFC 4724 §4.2: the peer is back; stop the restart timer and drop what it no
            // longer preserves (family absent or Forwarding State bit clear).
            self.restart_at = None;
            let keep: Vec<Family> = match &neg.peer_graceful_restart {
                None => Vec::new(),
                Some(gr) => gr
                    .families
                    .iter()
                    .filter(|f| f.forwarding_state)
                    .map(|f| f.family)
                    .collect(),
            };
            let stale = std::mem::take(&mut self.stale);
            for family in stale {
                if keep.contains(&family) {
                    self.stale.push(family);
                } else {
                    out.push(Action::StaleRoutesFlush(family));
                }
            }
            self.stale_at = if self.stale.is_empty() {
                None
            } else {
                Some(now + self.config.stale_routes_time)
            };
        }
        if let Some(conn) = self.primary {
            send(out, conn, Message::Keepalive);
        }
        self.hold_at = (neg.hold_time > 0).then(|| now + secs(neg.hold_time));
        self.keepalive_at = (neg.keepalive_time > 0).then(|| now + secs(neg.keepalive_time));
        self.negotiated = Some(neg);
        self.state = State::OpenConfirm;
    }

    fn end_of_rib(&mut self, family: Family, out: &mut Vec<Action>) {
        if let Some(i) = self.stale.iter().position(|f| *f == family) {
            self.stale.remove(i);
            out.push(Action::StaleRoutesFlush(family));
            if self.stale.is_empty() {
                self.stale_at = None;
            }
        }
    }

    // ----- timers -----------------------------------------------------------------------

    fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        // Each firing clears or moves its own deadline past `now`, so this ends.
        while let Some(timer) = self.due(now) {
            match timer {
                Timer::Restart => {
                    // RFC 4724 §4.2: the peer did not come back within its restart time.
                    self.restart_at = None;
                    self.flush_stale(out);
                }
                Timer::Stale => {
                    self.stale_at = None;
                    self.flush_stale(out);
                }
                Timer::IdleHold => {
                    self.idle_hold_at = None;
                    if self.state == State::Idle && !self.admin_stopped {
                        self.start(now, out);
                    }
                }
                Timer::ConnectRetry => {
                    self.connect_retry_at = None;
                    match self.state {
                        State::Connect => {
                            if let Some(attempt) = self.connecting.take() {
                                out.push(Action::CloseConnection(attempt));
                            }
                            self.connect(now, out);
                        }
                        State::Active if !self.passive => {
                            self.state = State::Connect;
                            self.connect(now, out);
                        }
                        _ => {}
                    }
                }
                Timer::Hold => {
                    self.hold_at = None;
                    let n = Notification::new(
                        code::HOLD_TIMER_EXPIRED,
                        subcode::UNSPECIFIC,
                        Vec::new(),
                    );
                    self.drop_session(now, DownReason::HoldTimerExpired, Some(n), out);
                }
                Timer::Keepalive => {
                    self.keepalive_at = None;
                    if let Some(conn) = self.primary
                        && matches!(self.state, State::OpenConfirm | State::Established)
                    {
                        send(out, conn, Message::Keepalive);
                        self.keepalive_at = Some(now + self.keepalive_interval());
                    }
                }
            }
        }
    }

    fn due(&self, now: Instant) -> Option<Timer> {
        [
            (self.restart_at, Timer::Restart),
            (self.stale_at, Timer::Stale),
            (self.idle_hold_at, Timer::IdleHold),
            (self.connect_retry_at, Timer::ConnectRetry),
            (self.hold_at, Timer::Hold),
            (self.keepalive_at, Timer::Keepalive),
        ]
        .into_iter()
        .find_map(|(at, t)| at.filter(|at| *at <= now).map(|_| t))
    }

    fn keepalive_interval(&self) -> Duration {
        secs(self.negotiated.as_ref().map_or(0, |n| n.keepalive_time))
    }

    fn restart_hold(&mut self, now: Instant) {
        if let Some(neg) = &self.negotiated
            && neg.hold_time > 0
        {
            self.hold_at = Some(now + secs(neg.hold_time));
        }
    }

    // ----- going down -------------------------------------------------------------------

    fn manual_stop(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.admin_stopped = true;
        self.idle_hold_at = None;
        if self.state == State::Idle {
            self.flush_stale(out);
            self.restart_at = None;
            return;
        }
        let notify = match self.state {
            State::OpenSent | State::OpenConfirm | State::Established => {
                let n_bit = self
                    .negotiated
                    .as_ref()
                    .and_then(|n| n.peer_graceful_restart.as_ref())
                    .is_some_and(|gr| gr.notification);
                Some(if n_bit {
                    // RFC 8538 §3: with the N bit a plain Cease would keep our routes at
                    // the peer; an operator stop must flush them, so wrap it in Hard Reset.
                    Notification::new(
                        code::CEASE,
                        subcode::CEASE_HARD_RESET,
                        vec![subcode::CEASE_ADMIN_SHUTDOWN],
                    )
                } else {
                    Notification::new(code::CEASE, subcode::CEASE_ADMIN_SHUTDOWN, Vec::new())
                })
            }
            _ => None,
        };
        self.drop_session(now, DownReason::ManualStop, notify, out);
        self.flush_stale(out);
        self.restart_at = None;
        self.connect_retry_counter = 0;
    }

    /// Any state → Idle: optional NOTIFICATION on the primary connection, close every
    /// connection, tell the RIB if the session was Established, schedule the automatic
    /// restart with back-off unless this was a manual stop.
    fn drop_session(
        &mut self,
        now: Instant,
        reason: DownReason,
        notify: Option<Notification>,
        out: &mut Vec<Action>,
    ) {
        if self.state == State::Established
            && reason != DownReason::ManualStop
            && let Some(next) = self.pending.take()
        {
            // The peer already opened a new connection (it restarted, RFC 4724 §4.2) and our
            // OPEN is out on it: end the old session and carry on there, no back-off.
            if let Some(conn) = self.primary.take() {
                if let Some(n) = notify {
                    send(out, conn, Message::Notification(n));
                }
                out.push(Action::CloseConnection(conn));
            }
            self.end_established(reason.clone(), true, now, out);
            self.primary = Some(next);
            self.negotiated = None;
            self.keepalive_at = None;
            self.hold_at = Some(now + self.config.open_hold_time);
            self.established_at = None;
            self.state = State::OpenSent;
            self.last_down = Some(reason);
            return;
        }
        if let Some(conn) = self.primary.take() {
            if let Some(n) = notify {
                send(out, conn, Message::Notification(n));
            }
            out.push(Action::CloseConnection(conn));
        }
        if let Some(conn) = self.connecting.take() {
            out.push(Action::CloseConnection(conn));
        }
        if let Some(conn) = self.pending.take() {
            out.push(Action::CloseConnection(conn));
        }
        if self.state == State::Established {
            self.end_established(reason.clone(), false, now, out);
        }
        self.connect_retry_at = None;
        self.hold_at = None;
        self.keepalive_at = None;
        self.negotiated = None;
        self.state = State::Idle;
        if reason != DownReason::ManualStop {
            self.connect_retry_counter = self.connect_retry_counter.saturating_add(1);
            if self.config.automatic_restart && !self.admin_stopped {
                // DampPeerOscillations (RFC 4271 §8.1.1) the BIRD way (`error wait time`):
                // wait, doubling per error, and forgive after a long enough good run.
                let forgiven = self.established_at.is_some_and(|t| {
                    now.saturating_duration_since(t) >= self.config.error_forget_time
                });
                if forgiven {
                    self.idle_hold_next = self.config.idle_hold_time;
                }
                self.idle_hold_at = Some(now + self.idle_hold_next);
                self.idle_hold_next = (self.idle_hold_next * 2).min(self.config.idle_hold_max);
            }
        }
        self.established_at = None;
        self.last_down = Some(reason);
    }

    /// The Established session is over: either the peer restarts gracefully (keep its
    /// routes as stale, RFC 4724 §4.2 / RFC 8538 §4) or its routes go.
    /// `reconnected`: the peer has already opened a new connection (it did restart).
    fn end_established(
        &mut self,
        reason: DownReason,
        reconnected: bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let gr = self
            .negotiated
            .as_ref()
            .and_then(|n| n.peer_graceful_restart.clone());
        // A peer that preserves no family has nothing for us to keep (RFC 4724 §4.2 keeps
        // only the families in its capability).
        let eligible = gr.as_ref().is_some_and(|gr| !gr.families.is_empty())
            && gr.as_ref().is_some_and(|gr| match &reason {
                DownReason::ConnectionFailed | DownReason::PeerReconnected => true,
                // A peer that stays connected but silent is taken for dead, not restarting
                // (a restarting speaker's TCP connection closes): its routes go at once, as
                // BIRD does (`bgp_hold_timeout` → `bgp_error`, no graceful restart without
                // long-lived GR). RFC 8538 §4 would allow keeping them with the N bit; a
                // Calico user expects BIRD's behaviour and a fast failover. Unless the peer
                // has already reconnected: then it did restart.
                DownReason::HoldTimerExpired => reconnected,
                DownReason::NotificationReceived(n) | DownReason::NotificationSent(n) => {
                    gr.notification
                        && !(n.code == code::CEASE && n.subcode == subcode::CEASE_HARD_RESET)
                }
                DownReason::ManualStop => false,
            });
        match gr {
            Some(gr) if eligible => {
                let families: Vec<Family> = gr.families.iter().map(|f| f.family).collect();
                for old in std::mem::take(&mut self.stale) {
                    if !families.contains(&old) {
                        out.push(Action::StaleRoutesFlush(old));
                    }
                }
                self.stale = families.clone();
                self.restart_at = Some(now + gr.restart_time);
                self.stale_at = None;
                out.push(Action::PeerRestarting {
                    reason,
                    restart_time: gr.restart_time,
                    families,
                });
            }
            _ => {
                // SessionDown flushes everything from the peer, stale routes included.
                self.stale.clear();
                self.restart_at = None;
                self.stale_at = None;
                out.push(Action::SessionDown { reason });
            }
        }
    }

    fn flush_stale(&mut self, out: &mut Vec<Action>) {
        for family in std::mem::take(&mut self.stale) {
            out.push(Action::StaleRoutesFlush(family));
        }
        self.stale_at = None;
    }
}

fn send(out: &mut Vec<Action>, conn: ConnId, message: Message) {
    out.push(Action::SendMessage { conn, message });
}

/// Refuses or ends a connection with a Cease NOTIFICATION (RFC 4486 subcodes).
fn reject(out: &mut Vec<Action>, conn: ConnId, cease_subcode: u8) {
    send(
        out,
        conn,
        Message::Notification(Notification::new(code::CEASE, cease_subcode, Vec::new())),
    );
    out.push(Action::CloseConnection(conn));
}

/// The NOTIFICATION for a receive error on a connection in `state`.
fn receive_error_notification(state: State, error: &DecodeError) -> Notification {
    match (state, error) {
        // RFC 4271 §8.2.2: before Established an UPDATE (or ROUTE-REFRESH) of any shape is an
        // FSM error, not an UPDATE error.
        (State::OpenSent | State::OpenConfirm, DecodeError::Update(_))
        | (State::OpenSent | State::OpenConfirm, DecodeError::RouteRefreshLength { .. }) => {
            Notification::new(code::FSM, fsm_subcode(state), Vec::new())
        }
        _ => error.notification(),
    }
}

/// RFC 6608 subcodes of the Finite State Machine Error.
fn fsm_subcode(state: State) -> u8 {
    match state {
        State::OpenSent => 1,
        State::OpenConfirm => 2,
        State::Established => 3,
        _ => subcode::UNSPECIFIC,
    }
}

fn secs(s: u16) -> Duration {
    Duration::from_secs(u64::from(s))
}
