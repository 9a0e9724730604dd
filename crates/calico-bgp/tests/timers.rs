//! Timers with a fake clock (`t0 + n seconds`), and the idle hold back-off.

mod support;

use std::time::Instant;

use calico_bgp::fsm::{Action, DownReason, Event, Session, State};
use calico_bgp_packet::{Message, Open};
use support::*;

/// Ticks every second from `from` to `to` (inclusive) and collects the shapes per second.
fn run(s: &mut Session, t0: Instant, from: u64, to: u64) -> Vec<(u64, Vec<String>)> {
    let mut log = Vec::new();
    for sec in from..=to {
        let acts = s.handle(Event::Tick, t0 + secs(sec));
        if !acts.is_empty() {
            log.push((sec, shapes(&acts)));
        }
    }
    log
}

#[test]
fn keepalive_every_third_of_hold_and_hold_expiry() {
    let t0 = Instant::now();
    let (mut s, c) = drive(State::Established, &peer_open_no_gr(), t0);
    assert_eq!(s.next_deadline(), Some(t0 + secs(30)));
    let ka = vec!["send KEEPALIVE outbound#0".to_string()];
    assert_eq!(
        run(&mut s, t0, 1, 89),
        vec![(30, ka.clone()), (60, ka.clone())]
    );
    // A KEEPALIVE from the peer at 50 would have pushed the hold timer; none came, so at 90:
    assert_eq!(
        run(&mut s, t0, 90, 90),
        vec![(
            90,
            vec![
                "send NOTIF 4/0 outbound#0".to_string(),
                "close outbound#0".into(),
                "down".into()
            ]
        )]
    );
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.last_down(), Some(&DownReason::HoldTimerExpired));
    let _ = c;
}

#[test]
fn received_messages_restart_the_hold_timer() {
    let t0 = Instant::now();
    let (mut s, c) = drive(State::Established, &peer_open_no_gr(), t0);
    run(&mut s, t0, 1, 50);
    s.handle(Event::message(c, Message::Keepalive), t0 + secs(50));
    run(&mut s, t0, 51, 130);
    s.handle(
        eor(c, calico_bgp_packet::Family::IPV4_UNICAST),
        t0 + secs(130),
    );
    run(&mut s, t0, 131, 219);
    assert_eq!(s.state(), State::Established);
    let log = run(&mut s, t0, 220, 220);
    assert_eq!(log[0].1[0], "send NOTIF 4/0 outbound#0");
}

#[test]
fn hold_time_zero_means_no_keepalives_and_no_hold_timer() {
    let t0 = Instant::now();
    let peer = Open {
        hold_time: 0,
        ..peer_open_no_gr()
    };
    let (mut s, _) = drive(State::Established, &peer, t0);
    assert_eq!(s.next_deadline(), None);
    assert!(run(&mut s, t0, 1, 3600).is_empty());
    assert_eq!(s.state(), State::Established);
}

#[test]
fn update_sent_pushes_the_keepalive_back() {
    let t0 = Instant::now();
    let (mut s, _) = drive(State::Established, &peer_open_no_gr(), t0);
    s.handle(Event::UpdateSent, t0 + secs(20));
    assert_eq!(s.next_deadline(), Some(t0 + secs(50)));
    assert!(run(&mut s, t0, 1, 49).is_empty());
    assert_eq!(run(&mut s, t0, 50, 50).len(), 1);
}

#[test]
fn configured_keepalive_interval() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.keepalive_time = Some(10);
    let (mut s, _) = drive_with(cfg, State::Established, &peer_open_no_gr(), t0);
    let log = run(&mut s, t0, 1, 35);
    assert_eq!(
        log.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [10, 20, 30]
    );
}

#[test]
fn connect_retry_every_five_seconds() {
    let t0 = Instant::now();
    let (mut s, _) = drive(State::Connect, &peer_open(), t0);
    let log = run(&mut s, t0, 1, 16);
    assert_eq!(
        log,
        vec![
            (
                5,
                vec!["close outbound#0".into(), "connect outbound#1".into()]
            ),
            (
                10,
                vec!["close outbound#1".into(), "connect outbound#2".into()]
            ),
            (
                15,
                vec!["close outbound#2".into(), "connect outbound#3".into()]
            ),
        ]
    );
}

#[test]
fn open_sent_hold_timer_uses_the_large_value() {
    let t0 = Instant::now();
    let (s, _) = drive(State::OpenSent, &peer_open(), t0);
    assert_eq!(s.next_deadline(), Some(t0 + secs(240)));
}

/// A failing session: start, connect, the peer answers with a NOTIFICATION. Returns the
/// idle hold wait that followed.
fn fail_once(s: &mut Session, now: Instant) -> Option<u64> {
    let acts = s.handle(Event::Tick, now);
    let conn = acts.iter().find_map(|a| match a {
        Action::Connect(c) => Some(*c),
        _ => None,
    })?;
    s.handle(Event::TcpCrAcked(conn), now);
    s.handle(notif(conn, 6, 5), now);
    assert_eq!(s.state(), State::Idle);
    s.next_deadline().map(|d| (d - now).as_secs())
}

#[test]
fn idle_hold_back_off_doubles_up_to_thirty_seconds() {
    let t0 = Instant::now();
    let mut s = Session::new(config());
    s.handle(Event::ManualStart, t0);
    s.handle(Event::TcpCrAcked(out0()), t0);
    s.handle(notif(out0(), 6, 5), t0);
    let mut waits = vec![(s.next_deadline().unwrap() - t0).as_secs()];
    let mut now = s.next_deadline().unwrap();
    for _ in 0..5 {
        let w = fail_once(&mut s, now).unwrap();
        waits.push(w);
        now += secs(w);
    }
    assert_eq!(waits, [5, 10, 20, 30, 30, 30]);
    assert_eq!(s.connect_retry_counter(), 6);
    // Idle does nothing before the deadline.
    assert!(s.handle(Event::Tick, now - secs(1)).is_empty());
}

#[test]
fn back_off_is_forgiven_after_a_long_established_run() {
    let t0 = Instant::now();
    let mut s = Session::new(config());
    s.handle(Event::ManualStart, t0);
    s.handle(Event::TcpCrAcked(out0()), t0);
    s.handle(notif(out0(), 6, 5), t0);
    let mut now = s.next_deadline().unwrap();
    now += secs(fail_once(&mut s, now).unwrap());
    assert_eq!(s.next_idle_hold(), secs(20));
    // Now come up and stay up for 300 s (keepalives flowing), then fail.
    let acts = s.handle(Event::Tick, now);
    let Some(Action::Connect(c)) = acts.first().cloned() else {
        panic!("{acts:?}")
    };
    s.handle(Event::TcpCrAcked(c), now);
    s.handle(Event::message(c, Message::Open(peer_open_no_gr())), now);
    s.handle(Event::message(c, Message::Keepalive), now);
    assert_eq!(s.state(), State::Established);
    for k in 1..=10 {
        s.handle(Event::message(c, Message::Keepalive), now + secs(30 * k));
    }
    s.handle(Event::TcpConnectionFails(c), now + secs(300));
    assert_eq!(s.next_deadline(), Some(now + secs(305)));
}

#[test]
fn manual_stop_disables_automatic_restart_and_manual_start_resets() {
    let t0 = Instant::now();
    let (mut s, c) = drive(State::OpenSent, &peer_open(), t0);
    s.handle(notif(c, 6, 5), t0);
    assert!(s.next_deadline().is_some());
    s.handle(Event::ManualStop, t0);
    assert_eq!(s.next_deadline(), None);
    assert!(s.handle(Event::AutomaticStart, t0).is_empty());
    assert_eq!(s.state(), State::Idle);
    assert_eq!(
        shapes(&s.handle(Event::ManualStart, t0)),
        ["connect outbound#1"]
    );
    assert_eq!(s.connect_retry_counter(), 0);
    assert_eq!(s.next_idle_hold(), secs(5));
}

#[test]
fn automatic_restart_off_stays_idle() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.automatic_restart = false;
    let (mut s, c) = drive_with(cfg, State::OpenSent, &peer_open(), t0);
    s.handle(notif(c, 6, 5), t0);
    assert_eq!(s.next_deadline(), None);
    // An explicit AutomaticStart (event 3) still works.
    assert_eq!(
        shapes(&s.handle(Event::AutomaticStart, t0)),
        ["connect outbound#1"]
    );
}

/// Calico's template: `connect delay time 2`: listen first, connect 2 s after every start.
#[test]
fn connect_delay_listens_before_connecting() {
    let t0 = Instant::now();
    let mut s = Session::new(calico_bgp::fsm::SessionConfig::new(AS, AS, LOCAL_ID));
    assert!(s.handle(Event::ManualStart, t0).is_empty());
    assert_eq!(s.state(), State::Active);
    assert_eq!(s.next_deadline(), Some(t0 + secs(2)));
    assert_eq!(
        run(&mut s, t0, 1, 2),
        vec![(2, vec!["connect outbound#0".to_string()])]
    );
    assert_eq!(s.state(), State::Connect);
    // The peer connecting during the delay is taken at once.
    let mut s = Session::new(calico_bgp::fsm::SessionConfig::new(AS, AS, LOCAL_ID));
    s.handle(Event::ManualStart, t0);
    assert_eq!(
        shapes(&s.handle(Event::TcpConnectionConfirmed(in0()), t0 + secs(1))),
        ["send OPEN inbound#0"]
    );
    assert_eq!(s.next_deadline(), Some(t0 + secs(241)));
    // After an error the restart waits the idle hold time, then the connect delay again.
    s.handle(notif(in0(), 6, 5), t0 + secs(1));
    assert_eq!(run(&mut s, t0, 2, 6), vec![]);
    assert_eq!(s.state(), State::Active);
    assert_eq!(
        run(&mut s, t0, 7, 8),
        vec![(8, vec!["connect outbound#0".to_string()])]
    );
}
