//! Shared test fixtures: a standard configuration, the peer's OPEN, a driver that walks a
//! session into a given state, and a compact "shape" of actions for table comparisons.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // fixtures outside #[test] fns unwrap too

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use calico_bgp::fsm::{Action, ConnId, Event, Session, SessionConfig, State};
use calico_bgp_packet::{
    Capability, CodecContext, Family, GracefulRestart, GracefulRestartFamily, Message,
    Notification, Open, Update, decode,
};

pub const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const PEER_ID: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const AS: u32 = 64512;

/// Calico defaults, iBGP mesh peer, except that it connects at once (no connect delay) so
/// that ManualStart goes straight to Connect as in RFC 4271.
pub fn config() -> SessionConfig {
    let mut c = SessionConfig::new(AS, AS, LOCAL_ID);
    c.connect_delay = Duration::ZERO;
    c
}

pub fn gr_cap(restart_time: u16, n_bit: bool, families: &[(Family, bool)]) -> Capability {
    Capability::GracefulRestart(GracefulRestart {
        restart_state: false,
        notification: n_bit,
        restart_time,
        families: families
            .iter()
            .map(|(family, f)| GracefulRestartFamily {
                family: *family,
                forwarding_state: *f,
            })
            .collect(),
    })
}

/// A BIRD-like peer: hold 90, IPv4+IPv6, route refresh, 4-octet AS, GR 120 s with N and F.
pub fn peer_open() -> Open {
    Open::new(
        AS,
        90,
        PEER_ID,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            gr_cap(
                120,
                true,
                &[(Family::IPV4_UNICAST, true), (Family::IPV6_UNICAST, true)],
            ),
            Capability::FourOctetAs(AS),
        ],
    )
}

/// The same peer without graceful restart.
pub fn peer_open_no_gr() -> Open {
    let mut o = peer_open();
    o.capabilities
        .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
    o
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn out0() -> ConnId {
    ConnId::outbound(0)
}

pub fn in0() -> ConnId {
    ConnId::inbound(0)
}

/// Walks a fresh session (default config) into `target` at `t0`, using an outbound
/// connection (Active: passive start, no connection). Returns the primary connection.
pub fn drive(target: State, peer: &Open, t0: Instant) -> (Session, ConnId) {
    drive_with(config(), target, peer, t0)
}

pub fn drive_with(
    cfg: SessionConfig,
    target: State,
    peer: &Open,
    t0: Instant,
) -> (Session, ConnId) {
    let mut s = Session::new(cfg);
    let conn = out0();
    if target == State::Idle {
        return (s, conn);
    }
    if target == State::Active {
        s.handle(Event::ManualStartPassive, t0);
        assert_eq!(s.state(), State::Active);
        return (s, conn);
    }
    s.handle(Event::ManualStart, t0);
    assert_eq!(s.state(), State::Connect);
    if target == State::Connect {
        return (s, conn);
    }
    s.handle(Event::TcpCrAcked(conn), t0);
    assert_eq!(s.state(), State::OpenSent);
    if target == State::OpenSent {
        return (s, conn);
    }
    s.handle(Event::message(conn, Message::Open(peer.clone())), t0);
    assert_eq!(s.state(), State::OpenConfirm);
    if target == State::OpenConfirm {
        return (s, conn);
    }
    s.handle(Event::message(conn, Message::Keepalive), t0);
    assert_eq!(s.state(), State::Established);
    (s, conn)
}

fn msg_shape(m: &Message) -> String {
    match m {
        Message::Open(_) => "OPEN".into(),
        Message::Update(_) => "UPDATE".into(),
        Message::Keepalive => "KEEPALIVE".into(),
        Message::RouteRefresh(_) => "ROUTE-REFRESH".into(),
        Message::Notification(n) => format!("NOTIF {}/{}", n.code, n.subcode),
    }
}

/// A compact, comparable description of an action.
pub fn shape(a: &Action) -> String {
    match a {
        Action::Connect(c) => format!("connect {c}"),
        Action::SendMessage { conn, message } => format!("send {} {conn}", msg_shape(message)),
        Action::CloseConnection(c) => format!("close {c}"),
        Action::SessionUp(_) => "up".into(),
        Action::SessionDown { .. } => "down".into(),
        Action::PeerRestarting { .. } => "restarting".into(),
        Action::StaleRoutesFlush(f) => format!("flush {f}"),
        Action::DeliverUpdate { errors, .. } => format!("deliver errors={}", errors.len()),
        Action::RouteRefreshRequested(f) => format!("refresh {f}"),
    }
}

pub fn shapes(actions: &[Action]) -> Vec<String> {
    actions.iter().map(shape).collect()
}

/// Encodes a message with the initial context.
pub fn wire(m: &Message) -> Vec<u8> {
    m.encode(&CodecContext::initial()).unwrap()
}

/// An 19-octet-header message of `msg_type` around `body`.
pub fn raw_message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(msg_type);
    v.extend_from_slice(body);
    v
}

/// An UPDATE whose ORIGIN is invalid: RFC 7606 treat-as-withdraw, decodes with one error.
pub fn treat_as_withdraw_update() -> Event {
    let body = [
        0, 0, // withdrawn length
        0, 14, // path attribute length
        0x40, 1, 1, 5, // ORIGIN = 5 (invalid)
        0x40, 2, 0, // AS_PATH empty
        0x40, 3, 4, 10, 0, 0, 2, // NEXT_HOP
        24, 10, 1, 2, // 10.1.2.0/24
    ];
    let ev = Event::from_decode(
        out0(),
        decode(&raw_message(2, &body), &CodecContext::initial()),
    );
    match &ev {
        Event::Received { decoded, .. } => assert_eq!(decoded.errors.len(), 1, "{decoded:?}"),
        other => panic!("expected a decoded UPDATE, got {other:?}"),
    }
    ev
}

/// An UPDATE whose withdrawn length runs past the body: session reset, 3/1.
pub fn session_reset_update() -> Event {
    let ev = Event::from_decode(
        out0(),
        decode(
            &raw_message(2, &[0xff, 0xff, 0, 0]),
            &CodecContext::initial(),
        ),
    );
    assert!(matches!(ev, Event::ReceiveError { .. }), "{ev:?}");
    ev
}

pub fn eor(conn: ConnId, family: Family) -> Event {
    Event::message(conn, Message::Update(Update::end_of_rib(family)))
}

pub fn notif(conn: ConnId, code: u8, subcode: u8) -> Event {
    Event::message(
        conn,
        Message::Notification(Notification::new(code, subcode, Vec::new())),
    )
}
