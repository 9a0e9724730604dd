//! Connection collisions (RFC 4271 §6.8) and the graceful-restart helper (RFC 4724 §4.2,
//! RFC 8538).

mod support;

use std::net::Ipv4Addr;
use std::time::Instant;

use calico_bgp::fsm::{
    Action, ConnId, Direction, DownReason, Event, Session, State, collision_survivor,
};
use calico_bgp_packet::{Capability, Family, Message, Open};
use support::*;

const V4: Family = Family::IPV4_UNICAST;
const V6: Family = Family::IPV6_UNICAST;

#[test]
fn collision_survivor_table() {
    let ip = |d| Ipv4Addr::new(10, 0, 0, d);
    // (local id, local AS, remote id, remote AS) → surviving connection direction
    let cases = [
        (ip(1), 1, ip(2), 1, Direction::Inbound),
        (ip(2), 1, ip(1), 1, Direction::Outbound),
        // Compared as unsigned 32-bit integers, not per octet as signed.
        (
            Ipv4Addr::new(9, 255, 255, 255),
            1,
            Ipv4Addr::new(200, 0, 0, 0),
            1,
            Direction::Inbound,
        ),
        // Equal ids (eBGP only, RFC 6286 §2.3): the larger AS's connection survives.
        (ip(1), 65001, ip(1), 65000, Direction::Outbound),
        (ip(1), 65000, ip(1), 65001, Direction::Inbound),
    ];
    for (l, la, r, ra, want) in cases {
        assert_eq!(collision_survivor(l, la, r, ra), want, "{l} {la} {r} {ra}");
    }
}

fn peer_with_id(id: Ipv4Addr) -> Open {
    Open {
        bgp_id: id,
        ..peer_open()
    }
}

/// OpenSent on outbound#0, then the peer's own connection inbound#0 arrives.
fn open_sent_with_collision(t0: Instant) -> Session {
    let (mut s, _) = drive(State::OpenSent, &peer_open(), t0);
    assert_eq!(
        shapes(&s.handle(Event::TcpConnectionConfirmed(in0()), t0)),
        ["send OPEN inbound#0"]
    );
    s
}

#[test]
fn open_on_ours_first_peer_id_higher_keeps_the_inbound() {
    let t0 = Instant::now();
    let mut s = open_sent_with_collision(t0);
    let acts = s.handle(Event::message(out0(), Message::Open(peer_open())), t0);
    assert_eq!(
        shapes(&acts),
        ["send NOTIF 6/7 outbound#0", "close outbound#0"]
    );
    assert_eq!((s.state(), s.connection()), (State::OpenSent, Some(in0())));
    let acts = s.handle(Event::message(in0(), Message::Open(peer_open())), t0);
    assert_eq!(shapes(&acts), ["send KEEPALIVE inbound#0"]);
    assert_eq!(s.state(), State::OpenConfirm);
    // Late messages on the closed connection are ignored.
    assert!(
        s.handle(Event::message(out0(), Message::Keepalive), t0)
            .is_empty()
    );
    assert_eq!(
        shapes(&s.handle(Event::message(in0(), Message::Keepalive), t0)),
        ["up"]
    );
}

#[test]
fn open_on_ours_first_peer_id_lower_keeps_the_outbound() {
    let t0 = Instant::now();
    let mut s = open_sent_with_collision(t0);
    let low = peer_with_id(Ipv4Addr::new(9, 0, 0, 1));
    let acts = s.handle(Event::message(out0(), Message::Open(low)), t0);
    assert_eq!(
        shapes(&acts),
        [
            "send NOTIF 6/7 inbound#0",
            "close inbound#0",
            "send KEEPALIVE outbound#0"
        ]
    );
    assert_eq!(
        (s.state(), s.connection()),
        (State::OpenConfirm, Some(out0()))
    );
}

#[test]
fn open_on_theirs_first() {
    let t0 = Instant::now();
    let mut s = open_sent_with_collision(t0);
    let acts = s.handle(Event::message(in0(), Message::Open(peer_open())), t0);
    assert_eq!(
        shapes(&acts),
        [
            "send NOTIF 6/7 outbound#0",
            "close outbound#0",
            "send KEEPALIVE inbound#0"
        ]
    );
    assert_eq!(
        (s.state(), s.connection()),
        (State::OpenConfirm, Some(in0()))
    );

    let mut s = open_sent_with_collision(t0);
    let low = peer_with_id(Ipv4Addr::new(9, 0, 0, 1));
    let acts = s.handle(Event::message(in0(), Message::Open(low)), t0);
    assert_eq!(
        shapes(&acts),
        ["send NOTIF 6/7 inbound#0", "close inbound#0"]
    );
    assert_eq!((s.state(), s.connection()), (State::OpenSent, Some(out0())));
}

#[test]
fn open_confirm_collision_where_we_win() {
    let t0 = Instant::now();
    let low = peer_with_id(Ipv4Addr::new(9, 0, 0, 1));
    let (mut s, _) = drive(State::OpenConfirm, &low, t0);
    assert_eq!(
        shapes(&s.handle(Event::TcpConnectionConfirmed(in0()), t0)),
        ["send NOTIF 6/7 inbound#0", "close inbound#0"]
    );
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn collision_loser_failing_or_erring_leaves_the_session_alone() {
    let t0 = Instant::now();
    let mut s = open_sent_with_collision(t0);
    assert!(s.handle(Event::TcpConnectionFails(in0()), t0).is_empty());
    assert_eq!((s.state(), s.connection()), (State::OpenSent, Some(out0())));

    let mut s = open_sent_with_collision(t0);
    let acts = s.handle(Event::message(in0(), Message::Keepalive), t0);
    assert_eq!(
        shapes(&acts),
        ["send NOTIF 5/1 inbound#0", "close inbound#0"]
    );
    assert_eq!(s.state(), State::OpenSent);

    // The primary failing hands the session to the other connection.
    let mut s = open_sent_with_collision(t0);
    assert!(s.handle(Event::TcpConnectionFails(out0()), t0).is_empty());
    assert_eq!((s.state(), s.connection()), (State::OpenSent, Some(in0())));

    // A third connection during a collision is refused.
    let mut s = open_sent_with_collision(t0);
    assert_eq!(
        shapes(&s.handle(Event::TcpConnectionConfirmed(ConnId::inbound(1)), t0)),
        ["send NOTIF 6/5 inbound#1", "close inbound#1"]
    );
}

// ----- graceful restart helper -----------------------------------------------------------

fn restarting(acts: &[Action]) -> (DownReason, u64, Vec<Family>) {
    acts.iter()
        .find_map(|a| match a {
            Action::PeerRestarting {
                reason,
                restart_time,
                families,
            } => Some((reason.clone(), restart_time.as_secs(), families.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no PeerRestarting in {acts:?}"))
}

/// Established with the GR peer, then the TCP connection dies at t0+10.
fn peer_restarted(t0: Instant) -> Session {
    let (mut s, c) = drive(State::Established, &peer_open(), t0);
    let acts = s.handle(Event::TcpConnectionFails(c), t0 + secs(10));
    assert_eq!(
        restarting(&acts),
        (DownReason::ConnectionFailed, 120, vec![V4, V6])
    );
    assert_eq!(s.stale_families(), [V4, V6]);
    s
}

/// The peer comes back on inbound#0 with `open` at `at`; returns the actions of OPEN and
/// KEEPALIVE.
/// Ticks first: an Idle session refuses connections until its idle hold time is over.
fn peer_returns(s: &mut Session, open: Open, at: Instant) -> Vec<String> {
    s.handle(Event::Tick, at);
    assert_ne!(s.state(), State::Idle);
    s.handle(Event::TcpConnectionConfirmed(in0()), at);
    let mut log = shapes(&s.handle(Event::message(in0(), Message::Open(open)), at));
    log.extend(shapes(
        &s.handle(Event::message(in0(), Message::Keepalive), at),
    ));
    log
}

#[test]
fn helper_keeps_routes_until_end_of_rib() {
    let t0 = Instant::now();
    let mut s = peer_restarted(t0);
    assert_eq!(s.state(), State::Idle);
    // The restart timer is the earliest deadline after the idle hold restart.
    let at = t0 + secs(20);
    let log = peer_returns(&mut s, peer_open(), at);
    assert_eq!(log, ["send KEEPALIVE inbound#0", "up"]);
    assert_eq!(s.stale_families(), [V4, V6]);
    assert_eq!(
        shapes(&s.handle(eor(in0(), V4), at)),
        ["deliver errors=0", "flush ipv4-unicast"]
    );
    assert_eq!(
        shapes(&s.handle(eor(in0(), V6), at)),
        ["deliver errors=0", "flush ipv6-unicast"]
    );
    assert!(s.stale_families().is_empty());
    // Nothing left to flush later: the restart timer (t0+130) was stopped by the OPEN.
    let later = shapes(&s.handle(Event::message(in0(), Message::Keepalive), t0 + secs(129)));
    assert!(later.is_empty());
    assert!(
        !shapes(&s.handle(Event::Tick, t0 + secs(131)))
            .iter()
            .any(|a| a.starts_with("flush"))
    );
}

#[test]
fn restart_timer_expiry_flushes() {
    let t0 = Instant::now();
    let mut cfg = config();
    cfg.automatic_restart = false;
    let (mut s, c) = drive_with(cfg, State::Established, &peer_open(), t0);
    s.handle(Event::TcpConnectionFails(c), t0);
    assert_eq!(s.next_deadline(), Some(t0 + secs(120)));
    assert!(s.handle(Event::Tick, t0 + secs(119)).is_empty());
    assert_eq!(
        shapes(&s.handle(Event::Tick, t0 + secs(120))),
        ["flush ipv4-unicast", "flush ipv6-unicast"]
    );
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn stale_timer_flushes_when_end_of_rib_never_comes() {
    let t0 = Instant::now();
    let mut s = peer_restarted(t0);
    let at = t0 + secs(20);
    peer_returns(&mut s, peer_open(), at);
    s.handle(eor(in0(), V4), at);
    // Keep the session alive with keepalives; IPv6 EoR never arrives.
    for k in 1..=11 {
        let now = at + secs(30 * k);
        s.handle(Event::message(in0(), Message::Keepalive), now);
        let acts = shapes(&s.handle(Event::Tick, now));
        assert!(
            !acts.iter().any(|a| a.starts_with("flush")),
            "{k}: {acts:?}"
        );
    }
    let acts = shapes(&s.handle(Event::Tick, at + secs(360)));
    assert!(acts.contains(&"flush ipv6-unicast".to_string()), "{acts:?}");
    assert!(s.stale_families().is_empty());
}

#[test]
fn families_without_forwarding_state_are_flushed_at_open() {
    let t0 = Instant::now();
    let mut s = peer_restarted(t0);
    let mut open = peer_open();
    open.capabilities
        .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
    open.capabilities
        .push(gr_cap(120, true, &[(V4, true), (V6, false)]));
    let log = peer_returns(&mut s, open, t0 + secs(20));
    assert_eq!(
        log,
        ["flush ipv6-unicast", "send KEEPALIVE inbound#0", "up"]
    );
    assert_eq!(s.stale_families(), [V4]);
}

#[test]
fn peer_back_without_gr_flushes_everything() {
    let t0 = Instant::now();
    let mut s = peer_restarted(t0);
    let log = peer_returns(&mut s, peer_open_no_gr(), t0 + secs(20));
    assert_eq!(
        log,
        [
            "flush ipv4-unicast",
            "flush ipv6-unicast",
            "send KEEPALIVE inbound#0",
            "up"
        ]
    );
}

#[test]
fn peer_reconnecting_while_established_is_a_restart() {
    let t0 = Instant::now();
    let (mut s, _) = drive(State::Established, &peer_open(), t0);
    assert_eq!(
        shapes(&s.handle(Event::TcpConnectionConfirmed(in0()), t0)),
        ["send OPEN inbound#0"]
    );
    assert_eq!(s.state(), State::Established);
    let acts = s.handle(Event::message(in0(), Message::Open(peer_open())), t0);
    assert_eq!(
        shapes(&acts),
        ["close outbound#0", "restarting", "send KEEPALIVE inbound#0"]
    );
    assert_eq!(restarting(&acts).0, DownReason::PeerReconnected);
    assert_eq!(
        (s.state(), s.connection()),
        (State::OpenConfirm, Some(in0()))
    );
}

#[test]
fn notifications_and_the_n_bit() {
    // Without the N bit (RFC 4724 only) a NOTIFICATION is a real session end.
    let mut peer = peer_open();
    peer.capabilities
        .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
    peer.capabilities.push(gr_cap(90, false, &[(V4, true)]));
    let t0 = Instant::now();
    let (mut s, c) = drive(State::Established, &peer, t0);
    assert_eq!(
        shapes(&s.handle(notif(c, 6, 2), t0)),
        ["close outbound#0", "down"]
    );
    // ...but a dead connection is still a restart.
    let (mut s, c) = drive(State::Established, &peer, t0);
    let acts = s.handle(Event::TcpConnectionFails(c), t0);
    assert_eq!(
        restarting(&acts),
        (DownReason::ConnectionFailed, 90, vec![V4])
    );

    // With the N bit: received and sent NOTIFICATIONs keep routes, Hard Reset does not.
    let (mut s, c) = drive(State::Established, &peer_open(), t0);
    restarting(&s.handle(notif(c, 6, 4), t0));
    let (mut s, c) = drive(State::Established, &peer_open(), t0);
    assert_eq!(
        shapes(&s.handle(notif(c, 6, 9), t0)),
        ["close outbound#0", "down"]
    );
}

#[test]
fn no_local_gr_means_no_helper() {
    let mut cfg = config();
    cfg.graceful_restart = None;
    let t0 = Instant::now();
    let (mut s, c) = drive_with(cfg, State::Established, &peer_open(), t0);
    assert_eq!(
        shapes(&s.handle(Event::TcpConnectionFails(c), t0)),
        ["down"]
    );
}

#[test]
fn manual_stop_during_a_restart_flushes_stale_routes() {
    let t0 = Instant::now();
    let mut s = peer_restarted(t0);
    assert_eq!(
        shapes(&s.handle(Event::ManualStop, t0 + secs(11))),
        ["flush ipv4-unicast", "flush ipv6-unicast"]
    );
    assert_eq!(s.next_deadline(), None);
}

#[test]
fn second_drop_before_end_of_rib_restarts_the_wait() {
    let t0 = Instant::now();
    let mut s = peer_restarted(t0);
    let at = t0 + secs(20);
    peer_returns(&mut s, peer_open(), at);
    s.handle(eor(in0(), V4), at);
    let acts = s.handle(Event::TcpConnectionFails(in0()), at + secs(5));
    assert_eq!(restarting(&acts).2, [V4, V6]);
    assert_eq!(s.stale_families(), [V4, V6]);
}

#[test]
fn gr_capability_without_families_keeps_nothing() {
    let mut peer = peer_open();
    peer.capabilities
        .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
    peer.capabilities.push(gr_cap(120, true, &[]));
    let t0 = Instant::now();
    let (mut s, c) = drive(State::Established, &peer, t0);
    assert_eq!(
        shapes(&s.handle(Event::TcpConnectionFails(c), t0)),
        ["down"]
    );
    assert!(s.stale_families().is_empty());
}

/// The restarted peer's new connection is waiting for its OPEN when the old one dies: the
/// session carries on on the new connection without going through Idle.
#[test]
fn old_connection_dying_while_the_new_one_waits() {
    let t0 = Instant::now();
    let (mut s, c) = drive(State::Established, &peer_open(), t0);
    s.handle(Event::TcpConnectionConfirmed(in0()), t0);
    let acts = s.handle(Event::TcpConnectionFails(c), t0 + secs(1));
    assert_eq!(shapes(&acts), ["restarting"]);
    assert_eq!((s.state(), s.connection()), (State::OpenSent, Some(in0())));
    assert_eq!(
        s.next_deadline(),
        Some(t0 + secs(121)),
        "restart timer runs"
    );
    let acts = s.handle(
        Event::message(in0(), Message::Open(peer_open())),
        t0 + secs(2),
    );
    assert_eq!(shapes(&acts), ["send KEEPALIVE inbound#0"]);
    assert_eq!(
        shapes(&s.handle(Event::message(in0(), Message::Keepalive), t0 + secs(2))),
        ["up"]
    );
    assert_eq!(s.stale_families(), [V4, V6]);
    // Hold timer expiry on the old connection works the same way.
    let (mut s, _) = drive(State::Established, &peer_open(), t0);
    s.handle(Event::TcpConnectionConfirmed(in0()), t0);
    let acts = s.handle(Event::Tick, t0 + secs(90));
    assert_eq!(
        shapes(&acts),
        [
            "send NOTIF 4/0 outbound#0",
            "close outbound#0",
            "restarting"
        ]
    );
    assert_eq!((s.state(), s.connection()), (State::OpenSent, Some(in0())));
}

/// A peer that stays connected but silent is dead, not restarting: hold-timer expiry drops
/// its routes at once even with graceful restart negotiated (BIRD's `bgp_hold_timeout`).
#[test]
fn hold_timer_expiry_without_a_new_connection_drops_routes() {
    let t0 = Instant::now();
    let (mut s, _) = drive(State::Established, &peer_open(), t0);
    let acts = s.handle(Event::Tick, t0 + secs(90));
    assert_eq!(
        shapes(&acts),
        ["send NOTIF 4/0 outbound#0", "close outbound#0", "down"]
    );
    assert!(s.stale_families().is_empty());
    assert_eq!(s.last_down(), Some(&DownReason::HoldTimerExpired));
}
