//! RFC 4271 §8.2.2 transitions as data: (state, event, expected actions, next state).

mod support;

use std::time::Instant;

use calico_bgp::fsm::{ConnId, Event, State};
use calico_bgp_packet::{
    CodecContext, DecodeError, Family, Message, Notification, RouteRefresh, Update, decode,
};
use support::*;

/// A symbolic event, made concrete against the driven session.
#[derive(Debug, Clone, Copy)]
enum Ev {
    ManualStart,
    ManualStartPassive,
    AutomaticStart,
    ManualStop,
    /// Tick this many seconds after the session was driven.
    TickAt(u64),
    /// TcpCrAcked for outbound#0 (the attempt of `drive`).
    AckAttempt,
    /// TcpCrAcked for an attempt the session never made.
    AckUnknown,
    /// TcpConnectionFails on outbound#0.
    FailOut0,
    /// TcpConnectionConfirmed for inbound#0.
    Inbound,
    Open,
    OpenBadAs,
    Keepalive,
    Update,
    UpdateTreatAsWithdraw,
    UpdateSessionReset,
    RouteRefreshV4,
    RouteRefreshUnknownFamily,
    NotifCease,
    NotifHardReset,
    HeaderErr,
    OpenVersionErr,
    /// A KEEPALIVE on a connection the session does not know.
    StrayKeepalive,
}

fn concrete(ev: Ev, t0: Instant) -> (Event, Instant) {
    let c = out0();
    let e = match ev {
        Ev::ManualStart => Event::ManualStart,
        Ev::ManualStartPassive => Event::ManualStartPassive,
        Ev::AutomaticStart => Event::AutomaticStart,
        Ev::ManualStop => Event::ManualStop,
        Ev::TickAt(s) => return (Event::Tick, t0 + secs(s)),
        Ev::AckAttempt => Event::TcpCrAcked(c),
        Ev::AckUnknown => Event::TcpCrAcked(ConnId::outbound(9)),
        Ev::FailOut0 => Event::TcpConnectionFails(c),
        Ev::Inbound => Event::TcpConnectionConfirmed(in0()),
        Ev::Open => Event::message(c, Message::Open(peer_open())),
        Ev::OpenBadAs => {
            let mut o = peer_open();
            o.my_as = 65000;
            o.capabilities
                .retain(|c| !matches!(c, calico_bgp_packet::Capability::FourOctetAs(_)));
            Event::message(c, Message::Open(o))
        }
        Ev::Keepalive => Event::message(c, Message::Keepalive),
        Ev::Update => Event::message(c, Message::Update(Update::default())),
        Ev::UpdateTreatAsWithdraw => treat_as_withdraw_update(),
        Ev::UpdateSessionReset => session_reset_update(),
        Ev::RouteRefreshV4 => Event::message(
            c,
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV4_UNICAST,
                subtype: 0,
            }),
        ),
        Ev::RouteRefreshUnknownFamily => Event::message(
            c,
            Message::RouteRefresh(RouteRefresh {
                family: Family::new(25, 70),
                subtype: 0,
            }),
        ),
        Ev::NotifCease => notif(c, 6, 2),
        Ev::NotifHardReset => {
            Event::message(c, Message::Notification(Notification::new(6, 9, vec![2])))
        }
        Ev::HeaderErr => Event::from_decode(c, decode(&[0u8; 19], &CodecContext::initial())),
        Ev::OpenVersionErr => Event::ReceiveError {
            conn: c,
            error: DecodeError::UnsupportedVersion(3),
        },
        Ev::StrayKeepalive => Event::message(ConnId::inbound(7), Message::Keepalive),
    };
    (e, t0)
}

use State::*;

/// Rows: from, event, expected action shapes, next state. The peer is `peer_open()` (GR with
/// the N bit, hold 90 → keepalive 30); our hold is 240, connect retry 5 s.
const TABLE: &[(State, Ev, &[&str], State)] = &[
    // Idle
    (Idle, Ev::ManualStart, &["connect outbound#0"], Connect),
    (Idle, Ev::ManualStartPassive, &[], Active),
    (Idle, Ev::AutomaticStart, &["connect outbound#0"], Connect),
    (Idle, Ev::ManualStop, &[], Idle),
    (Idle, Ev::Inbound, &["close inbound#0"], Idle),
    (Idle, Ev::TickAt(1000), &[], Idle),
    (Idle, Ev::StrayKeepalive, &[], Idle),
    (Idle, Ev::AckUnknown, &["close outbound#9"], Idle),
    // Connect
    (Connect, Ev::ManualStart, &[], Connect),
    (Connect, Ev::ManualStop, &["close outbound#0"], Idle),
    (Connect, Ev::TickAt(4), &[], Connect),
    (
        Connect,
        Ev::TickAt(5),
        &["close outbound#0", "connect outbound#1"],
        Connect,
    ),
    (Connect, Ev::AckAttempt, &["send OPEN outbound#0"], OpenSent),
    (Connect, Ev::AckUnknown, &["close outbound#9"], Connect),
    (
        Connect,
        Ev::Inbound,
        &["close outbound#0", "send OPEN inbound#0"],
        OpenSent,
    ),
    (Connect, Ev::FailOut0, &[], Active),
    (Connect, Ev::StrayKeepalive, &[], Connect),
    // Active (passive start: never connects)
    (Active, Ev::Inbound, &["send OPEN inbound#0"], OpenSent),
    (Active, Ev::ManualStop, &[], Idle),
    (Active, Ev::TickAt(1000), &[], Active),
    (Active, Ev::AckUnknown, &["close outbound#9"], Active),
    (Active, Ev::StrayKeepalive, &[], Active),
    // OpenSent (primary outbound#0)
    (
        OpenSent,
        Ev::Open,
        &["send KEEPALIVE outbound#0"],
        OpenConfirm,
    ),
    (
        OpenSent,
        Ev::OpenBadAs,
        &["send NOTIF 2/2 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenSent,
        Ev::Keepalive,
        &["send NOTIF 5/1 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenSent,
        Ev::Update,
        &["send NOTIF 5/1 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenSent,
        Ev::RouteRefreshV4,
        &["send NOTIF 5/1 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenSent,
        Ev::UpdateSessionReset,
        &["send NOTIF 5/1 outbound#0", "close outbound#0"],
        Idle,
    ),
    (OpenSent, Ev::NotifCease, &["close outbound#0"], Idle),
    (
        OpenSent,
        Ev::HeaderErr,
        &["send NOTIF 1/1 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenSent,
        Ev::OpenVersionErr,
        &["send NOTIF 2/1 outbound#0", "close outbound#0"],
        Idle,
    ),
    (OpenSent, Ev::FailOut0, &[], Active),
    (OpenSent, Ev::TickAt(239), &[], OpenSent),
    (
        OpenSent,
        Ev::TickAt(240),
        &["send NOTIF 4/0 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenSent,
        Ev::ManualStop,
        &["send NOTIF 6/2 outbound#0", "close outbound#0"],
        Idle,
    ),
    (OpenSent, Ev::Inbound, &["send OPEN inbound#0"], OpenSent),
    (OpenSent, Ev::StrayKeepalive, &[], OpenSent),
    // OpenConfirm (negotiated hold 90, keepalive 30)
    (OpenConfirm, Ev::Keepalive, &["up"], Established),
    (
        OpenConfirm,
        Ev::TickAt(30),
        &["send KEEPALIVE outbound#0"],
        OpenConfirm,
    ),
    (
        OpenConfirm,
        Ev::TickAt(90),
        &["send NOTIF 4/0 outbound#0", "close outbound#0"],
        Idle,
    ),
    (OpenConfirm, Ev::NotifCease, &["close outbound#0"], Idle),
    (
        OpenConfirm,
        Ev::Open,
        &["send NOTIF 5/2 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenConfirm,
        Ev::Update,
        &["send NOTIF 5/2 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenConfirm,
        Ev::UpdateSessionReset,
        &["send NOTIF 5/2 outbound#0", "close outbound#0"],
        Idle,
    ),
    (
        OpenConfirm,
        Ev::HeaderErr,
        &["send NOTIF 1/1 outbound#0", "close outbound#0"],
        Idle,
    ),
    (OpenConfirm, Ev::FailOut0, &[], Idle),
    // The N bit is negotiated, so an operator stop is a Hard Reset (RFC 8538 §3).
    (
        OpenConfirm,
        Ev::ManualStop,
        &["send NOTIF 6/9 outbound#0", "close outbound#0"],
        Idle,
    ),
    // Collision: local id 10.0.0.1 < peer 10.0.0.2, so the peer's (inbound) connection wins.
    (
        OpenConfirm,
        Ev::Inbound,
        &[
            "send NOTIF 6/7 outbound#0",
            "close outbound#0",
            "send OPEN inbound#0",
        ],
        OpenSent,
    ),
    // Established (GR peer with N bit)
    (Established, Ev::Keepalive, &[], Established),
    (Established, Ev::Update, &["deliver errors=0"], Established),
    (
        Established,
        Ev::UpdateTreatAsWithdraw,
        &["deliver errors=1"],
        Established,
    ),
    (
        Established,
        Ev::RouteRefreshV4,
        &["refresh ipv4-unicast"],
        Established,
    ),
    (Established, Ev::RouteRefreshUnknownFamily, &[], Established),
    (
        Established,
        Ev::TickAt(30),
        &["send KEEPALIVE outbound#0"],
        Established,
    ),
    // Hold-timer expiry drops the routes even with graceful restart: a silent peer is taken
    // for dead (BIRD's `bgp_hold_timeout`), see collision_gr.rs for the reconnected case.
    (
        Established,
        Ev::TickAt(90),
        &["send NOTIF 4/0 outbound#0", "close outbound#0", "down"],
        Idle,
    ),
    (Established, Ev::FailOut0, &["restarting"], Idle),
    (
        Established,
        Ev::NotifCease,
        &["close outbound#0", "restarting"],
        Idle,
    ),
    (
        Established,
        Ev::NotifHardReset,
        &["close outbound#0", "down"],
        Idle,
    ),
    (
        Established,
        Ev::Open,
        &[
            "send NOTIF 5/3 outbound#0",
            "close outbound#0",
            "restarting",
        ],
        Idle,
    ),
    (
        Established,
        Ev::UpdateSessionReset,
        &[
            "send NOTIF 3/1 outbound#0",
            "close outbound#0",
            "restarting",
        ],
        Idle,
    ),
    (
        Established,
        Ev::HeaderErr,
        &[
            "send NOTIF 1/1 outbound#0",
            "close outbound#0",
            "restarting",
        ],
        Idle,
    ),
    (
        Established,
        Ev::ManualStop,
        &["send NOTIF 6/9 outbound#0", "close outbound#0", "down"],
        Idle,
    ),
    (
        Established,
        Ev::Inbound,
        &["send OPEN inbound#0"],
        Established,
    ),
    (Established, Ev::StrayKeepalive, &[], Established),
];

#[test]
fn rfc4271_transition_table() {
    let mut failures = Vec::new();
    for (i, (from, ev, expected, next)) in TABLE.iter().enumerate() {
        let t0 = Instant::now();
        let (mut s, _) = drive(*from, &peer_open(), t0);
        let (event, now) = concrete(*ev, t0);
        let got = shapes(&s.handle(event, now));
        if got != *expected || s.state() != *next {
            failures.push(format!(
                "row {i}: {from} + {ev:?}: expected {expected:?} → {next}, got {got:?} → {}",
                s.state()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every state is covered by the table, and every state has at least its stop event.
#[test]
fn table_covers_every_state() {
    for st in [Idle, Connect, Active, OpenSent, OpenConfirm, Established] {
        assert!(
            TABLE
                .iter()
                .any(|(f, e, _, _)| *f == st && matches!(e, Ev::ManualStop)),
            "{st} has no ManualStop row"
        );
    }
}

/// Without graceful restart the same failures are plain SessionDowns.
#[test]
fn established_without_gr_goes_down() {
    let peer = peer_open_no_gr();
    for (ev, expected) in [
        (Ev::FailOut0, vec!["down"]),
        (Ev::NotifCease, vec!["close outbound#0", "down"]),
        (
            Ev::TickAt(90),
            vec!["send NOTIF 4/0 outbound#0", "close outbound#0", "down"],
        ),
        (
            Ev::ManualStop,
            vec!["send NOTIF 6/2 outbound#0", "close outbound#0", "down"],
        ),
        // No GR: a second connection while Established is refused (RFC 4486 6/5).
        (
            Ev::Inbound,
            vec!["send NOTIF 6/5 inbound#0", "close inbound#0"],
        ),
    ] {
        let t0 = Instant::now();
        let (mut s, _) = drive(Established, &peer, t0);
        let (event, now) = concrete(ev, t0);
        assert_eq!(shapes(&s.handle(event, now)), expected, "{ev:?}");
    }
}

/// Connect → TcpConnectionFails → Active; the ConnectRetryTimer then tries again.
#[test]
fn active_after_failed_connect_retries() {
    let t0 = Instant::now();
    let (mut s, c) = drive(Connect, &peer_open(), t0);
    assert!(shapes(&s.handle(Event::TcpConnectionFails(c), t0 + secs(1))).is_empty());
    assert_eq!(s.state(), Active);
    assert_eq!(s.next_deadline(), Some(t0 + secs(6)));
    assert_eq!(
        shapes(&s.handle(Event::Tick, t0 + secs(6))),
        ["connect outbound#1"]
    );
    assert_eq!(s.state(), Connect);
    // The old attempt's late ACK is refused, the new one proceeds.
    assert_eq!(
        shapes(&s.handle(Event::TcpCrAcked(c), t0 + secs(7))),
        ["close outbound#0"]
    );
    assert_eq!(
        shapes(&s.handle(Event::TcpCrAcked(ConnId::outbound(1)), t0 + secs(7))),
        ["send OPEN outbound#1"]
    );
}

/// A passive session (Calico mesh: the side with the higher peer address) never connects,
/// also not after errors.
#[test]
fn passive_config_never_connects() {
    let mut cfg = config();
    cfg.passive = true;
    let t0 = Instant::now();
    let mut s = calico_bgp::fsm::Session::new(cfg);
    assert!(s.handle(Event::ManualStart, t0).is_empty());
    assert_eq!(s.state(), Active);
    assert_eq!(s.next_deadline(), None);
    s.handle(Event::TcpConnectionConfirmed(in0()), t0);
    s.handle(notif(in0(), 6, 2), t0);
    assert_eq!(s.state(), Idle);
    // Back-off restart goes back to listening, not connecting.
    let at = s.next_deadline().unwrap();
    assert!(s.handle(Event::Tick, at).is_empty());
    assert_eq!(s.state(), Active);
}

/// The UPDATE handed to the RIB keeps its NLRI and errors (RFC 7606 treat-as-withdraw).
#[test]
fn treat_as_withdraw_update_is_delivered_with_its_errors() {
    let t0 = Instant::now();
    let (mut s, _) = drive(Established, &peer_open(), t0);
    let acts = s.handle(treat_as_withdraw_update(), t0);
    match &acts[..] {
        [calico_bgp::fsm::Action::DeliverUpdate { update, errors }] => {
            assert_eq!(update.nlri.len(), 1);
            assert_eq!(errors[0].action, calico_bgp_packet::Action::TreatAsWithdraw);
        }
        other => panic!("{other:?}"),
    }
}

/// ROUTE-REFRESH when we did not advertise it is an unknown message type (1/3, data 5).
#[test]
fn route_refresh_without_capability_is_bad_message_type() {
    let mut cfg = config();
    cfg.route_refresh = false;
    let t0 = Instant::now();
    let (mut s, c) = drive_with(cfg, Established, &peer_open_no_gr(), t0);
    let acts = s.handle(
        Event::message(
            c,
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV4_UNICAST,
                subtype: 0,
            }),
        ),
        t0,
    );
    match &acts[0] {
        calico_bgp::fsm::Action::SendMessage {
            message: Message::Notification(n),
            ..
        } => assert_eq!((n.code, n.subcode, n.data.clone()), (1, 3, vec![5])),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.state(), Idle);
}

/// A malformed MP_REACH_NLRI (IPv6, next hop cut short): AFI/SAFI-disable. By default that
/// falls back to a session reset with the UPDATE error's NOTIFICATION (3/9); with
/// `afi_safi_disable` the UPDATE goes to the RIB with the error.
#[test]
fn afi_safi_disable_resets_unless_enabled() {
    let body = [0, 0, 0, 11, 0x80, 14, 8, 0, 2, 1, 16, 0, 0, 0, 0];
    let ev = Event::from_decode(
        out0(),
        decode(&raw_message(2, &body), &CodecContext::initial()),
    );
    let Event::Received { decoded, .. } = &ev else {
        panic!("{ev:?}")
    };
    assert_eq!(
        decoded.errors[0].action,
        calico_bgp_packet::Action::AfiSafiDisable(Family::IPV6_UNICAST)
    );
    let t0 = Instant::now();
    let (mut s, _) = drive(Established, &peer_open_no_gr(), t0);
    assert_eq!(
        shapes(&s.handle(ev.clone(), t0)),
        ["send NOTIF 3/9 outbound#0", "close outbound#0", "down"]
    );
    let mut cfg = config();
    cfg.afi_safi_disable = true;
    let (mut s, _) = drive_with(cfg, Established, &peer_open_no_gr(), t0);
    assert_eq!(shapes(&s.handle(ev, t0)), ["deliver errors=1"]);
    assert_eq!(s.state(), Established);
}
