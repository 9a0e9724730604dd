//! Property: any sequence of events never panics, never sends on a connection that is not
//! open, and keeps the session's invariants.

mod support;

use std::collections::BTreeSet;
use std::time::Instant;

use calico_bgp::fsm::{Action, ConnId, Event, Session, SessionConfig, State};
use calico_bgp_packet::{
    CodecContext, DecodeError, Family, Message, Notification, Open, RouteRefresh, Update, decode,
};
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Step {
    Advance(u64),
    Ev(EvKind, Sel),
    /// What a well-behaved peer does next: ack our attempt, send its OPEN, a KEEPALIVE.
    Handshake(u8),
}

/// Expands composite steps into single events.
fn expand(st: Step) -> Vec<Step> {
    match st {
        Step::Handshake(v) => vec![
            Step::Ev(EvKind::Acked, Sel::LastAsked),
            Step::Ev(EvKind::Open(v), Sel::Primary),
            Step::Ev(EvKind::Keepalive, Sel::Primary),
        ],
        other => vec![other],
    }
}

/// Which connection an event concerns: a fixed id, or (to reach the deeper states often)
/// the attempt the session asked for last, or the session's current connection.
#[derive(Debug, Clone)]
enum Sel {
    Fixed(ConnId),
    LastAsked,
    Primary,
}

#[derive(Debug, Clone)]
enum EvKind {
    ManualStart,
    ManualStartPassive,
    ManualStop,
    AutomaticStart,
    Tick,
    Acked,
    Confirmed,
    Fails,
    Open(u8),
    Keepalive,
    Update,
    EndOfRib(bool),
    BadUpdate,
    Notification(u8),
    RouteRefresh,
    HeaderError,
    UpdateSent,
}

fn conn() -> impl Strategy<Value = Sel> {
    prop_oneof![
        1 => (any::<bool>(), 0u64..4).prop_map(|(out, seq)| {
            Sel::Fixed(if out {
                ConnId::outbound(seq)
            } else {
                ConnId::inbound(seq)
            })
        }),
        1 => Just(Sel::LastAsked),
        3 => Just(Sel::Primary),
    ]
}

fn kind() -> impl Strategy<Value = EvKind> {
    prop_oneof![
        1 => Just(EvKind::ManualStart),
        1 => Just(EvKind::ManualStartPassive),
        1 => Just(EvKind::ManualStop),
        1 => Just(EvKind::AutomaticStart),
        1 => Just(EvKind::Tick),
        3 => Just(EvKind::Acked),
        3 => Just(EvKind::Confirmed),
        2 => Just(EvKind::Fails),
        4 => (0u8..6).prop_map(EvKind::Open),
        4 => Just(EvKind::Keepalive),
        2 => Just(EvKind::Update),
        2 => any::<bool>().prop_map(EvKind::EndOfRib),
        1 => Just(EvKind::BadUpdate),
        1 => (0u8..10).prop_map(EvKind::Notification),
        1 => Just(EvKind::RouteRefresh),
        1 => Just(EvKind::HeaderError),
        1 => Just(EvKind::UpdateSent),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0u64..400).prop_map(Step::Advance),
        4 => (kind(), conn()).prop_map(|(k, c)| Step::Ev(k, c)),
        1 => (0u8..4).prop_map(Step::Handshake),
    ]
}

fn open_variant(v: u8) -> Open {
    match v {
        0 => peer_open(),
        1 => peer_open_no_gr(),
        // Lower identifier: our outbound connection wins collisions.
        2 => Open {
            bgp_id: std::net::Ipv4Addr::new(9, 0, 0, 1),
            ..peer_open()
        },
        3 => Open {
            hold_time: 0,
            ..peer_open()
        },
        // Wrong AS.
        4 => Open {
            my_as: 65000,
            capabilities: Vec::new(),
            ..peer_open()
        },
        _ => Open {
            hold_time: 3,
            ..peer_open()
        },
    }
}

fn event(k: &EvKind, c: ConnId) -> Event {
    match k {
        EvKind::ManualStart => Event::ManualStart,
        EvKind::ManualStartPassive => Event::ManualStartPassive,
        EvKind::ManualStop => Event::ManualStop,
        EvKind::AutomaticStart => Event::AutomaticStart,
        EvKind::Tick => Event::Tick,
        EvKind::Acked => Event::TcpCrAcked(c),
        EvKind::Confirmed => Event::TcpConnectionConfirmed(c),
        EvKind::Fails => Event::TcpConnectionFails(c),
        EvKind::Open(v) => Event::message(c, Message::Open(open_variant(*v))),
        EvKind::Keepalive => Event::message(c, Message::Keepalive),
        EvKind::Update => Event::message(c, Message::Update(Update::default())),
        EvKind::EndOfRib(v6) => eor(
            c,
            if *v6 {
                Family::IPV6_UNICAST
            } else {
                Family::IPV4_UNICAST
            },
        ),
        EvKind::BadUpdate => Event::from_decode(
            c,
            decode(
                &raw_message(2, &[0xff, 0xff, 0, 0]),
                &CodecContext::initial(),
            ),
        ),
        EvKind::Notification(sub) => Event::message(
            c,
            Message::Notification(Notification::new(6, *sub, Vec::new())),
        ),
        EvKind::RouteRefresh => Event::message(
            c,
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV4_UNICAST,
                subtype: 0,
            }),
        ),
        EvKind::HeaderError => Event::ReceiveError {
            conn: c,
            error: DecodeError::BadMessageType(9),
        },
        EvKind::UpdateSent => Event::UpdateSent,
    }
}

fn configs() -> impl Strategy<Value = SessionConfig> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(passive, gr, auto, delay)| {
            let mut c = config();
            if delay {
                c.connect_delay = secs(2);
            }
            c.passive = passive;
            c.automatic_restart = auto;
            if !gr {
                c.graceful_restart = None;
            }
            c
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_event_sequences(cfg in configs(), steps in proptest::collection::vec(step(), 1..120)) {
        let mut s = Session::new(cfg);
        let mut now = Instant::now();
        // Connections the speaker holds open: an outbound one once the session asked for it
        // and it was acked, an inbound one once confirmed; gone when closed or failed.
        let mut asked: BTreeSet<ConnId> = BTreeSet::new();
        let mut open: BTreeSet<ConnId> = BTreeSet::new();
        let mut up = false;
        let mut last_asked: Option<ConnId> = None;
        for st in steps.into_iter().flat_map(expand) {
            let (k, sel) = match st {
                Step::Advance(d) => { now += secs(d); continue; }
                Step::Ev(k, sel) => (k, sel),
                Step::Handshake(_) => unreachable!("expanded above"),
            };
            let c = match sel {
                Sel::Fixed(c) => c,
                Sel::LastAsked => match last_asked { Some(c) => c, None => continue },
                Sel::Primary => match s.connection() { Some(c) => c, None => continue },
            };
            let ev = event(&k, c);
            // The speaker only reports what can happen: acks for attempts the session made,
            // failures and messages on connections it holds.
            match &ev {
                Event::TcpCrAcked(c) if !asked.contains(c) => continue,
                Event::TcpCrAcked(c) => { asked.remove(c); open.insert(*c); }
                Event::TcpConnectionConfirmed(c) => {
                    if open.contains(c) || c.direction == calico_bgp::fsm::Direction::Outbound {
                        continue;
                    }
                    open.insert(*c);
                }
                Event::TcpConnectionFails(c) if !open.remove(c) && !asked.remove(c) => continue,
                Event::Received { conn, .. } | Event::ReceiveError { conn, .. }
                    if !open.contains(conn) => continue,
                _ => {}
            }
            let deadline_before = s.next_deadline();
            let acts = s.handle(ev, now);
            for a in &acts {
                match a {
                    Action::Connect(c) => {
                        prop_assert_eq!(c.direction, calico_bgp::fsm::Direction::Outbound);
                        prop_assert!(asked.insert(*c), "connect id reused: {}", c);
                        last_asked = Some(*c);
                    }
                    Action::SendMessage { conn, .. } => {
                        prop_assert!(open.contains(conn), "send on {} which is not open; {:?}", conn, acts);
                    }
                    Action::CloseConnection(c) => {
                        open.remove(c);
                        asked.remove(c);
                    }
                    Action::SessionUp(n) => {
                        prop_assert!(!up, "SessionUp twice");
                        prop_assert!(open.contains(&n.conn));
                        up = true;
                    }
                    Action::SessionDown { .. } | Action::PeerRestarting { .. } => {
                        prop_assert!(up, "down without up");
                        up = false;
                    }
                    Action::DeliverUpdate { .. } | Action::RouteRefreshRequested(_) => {
                        prop_assert!(up, "routes while not established");
                    }
                    Action::StaleRoutesFlush(_) => {}
                }
            }
            prop_assert_eq!(up, s.state() == State::Established);
            // The session's own connection is always one the speaker holds.
            if let Some(p) = s.connection() {
                prop_assert!(open.contains(&p), "primary {} not open", p);
            }
            if s.state() == State::Idle {
                prop_assert!(s.connection().is_none());
            }
            // A Tick never leaves an overdue deadline behind.
            if matches!(k, EvKind::Tick) && let Some(d) = s.next_deadline() {
                prop_assert!(d > now, "overdue deadline after tick (before: {:?})", deadline_before);
            }
        }
    }
}
