//! OPEN validation (each bad OPEN → exact NOTIFICATION) and capability negotiation.

mod support;

use std::net::Ipv4Addr;
use std::time::Instant;

use calico_bgp::fsm::{Action, Event, OpenError, SessionConfig, State, validate_open};
use calico_bgp_packet::{
    AS_TRANS, AddPathFamily, Capability, CodecContext, Family, Message, Notification, Open,
    PeerKind, decode,
};
use support::*;

/// Expected NOTIFICATION: code, subcode, data.
type Expected = (u8, u8, Vec<u8>);

fn sent_notification(actions: &[Action]) -> Option<Notification> {
    actions.iter().find_map(|a| match a {
        Action::SendMessage {
            message: Message::Notification(n),
            ..
        } => Some(n.clone()),
        _ => None,
    })
}

/// Patches the encoded peer OPEN: (offset, bytes).
fn patched(patches: &[(usize, &[u8])]) -> Vec<u8> {
    let mut b = wire(&Message::Open(peer_open()));
    for (off, bytes) in patches {
        b[*off..*off + bytes.len()].copy_from_slice(bytes);
    }
    b
}

/// Bad OPENs caught by the codec, fed to the session as the decode result.
#[test]
fn wire_level_open_errors() {
    // Body offsets: 19 version, 20 my AS, 22 hold, 24 id, 28 opt len, 29 first param type.
    let cases: &[(&str, Vec<u8>, Expected)] = &[
        ("version 3", patched(&[(19, &[3])]), (2, 1, vec![0, 4])),
        ("AS 0", patched(&[(20, &[0, 0])]), (2, 2, vec![])),
        ("hold 1", patched(&[(22, &[0, 1])]), (2, 6, vec![])),
        ("hold 2", patched(&[(22, &[0, 2])]), (2, 6, vec![])),
        (
            "id 0.0.0.0",
            patched(&[(24, &[0, 0, 0, 0])]),
            (2, 3, vec![]),
        ),
        (
            "optional parameter type 1",
            patched(&[(29, &[1])]),
            (2, 4, vec![]),
        ),
        ("marker", patched(&[(0, &[0])]), (1, 1, vec![])),
    ];
    for (name, bytes, (code, sub, data)) in cases {
        let t0 = Instant::now();
        let (mut s, c) = drive(State::OpenSent, &peer_open(), t0);
        let ev = Event::from_decode(c, decode(bytes, &CodecContext::initial()));
        assert!(matches!(ev, Event::ReceiveError { .. }), "{name}: {ev:?}");
        let acts = s.handle(ev, t0);
        let n = sent_notification(&acts).unwrap_or_else(|| panic!("{name}: {acts:?}"));
        assert_eq!(
            (n.code, n.subcode, n.data),
            (*code, *sub, data.clone()),
            "{name}"
        );
        assert_eq!(s.state(), State::Idle, "{name}");
    }
}

fn with_caps(my_as: u16, id: Ipv4Addr, caps: Vec<Capability>) -> Open {
    Open {
        my_as,
        hold_time: 90,
        bgp_id: id,
        capabilities: caps,
    }
}

const V4: Capability = Capability::Multiprotocol(Family::IPV4_UNICAST);
const V6: Capability = Capability::Multiprotocol(Family::IPV6_UNICAST);

/// Semantic checks against the configuration.
#[test]
fn configuration_level_open_errors() {
    let big_as = 4_200_000_001u32;
    let mut ebgp_big = SessionConfig::new(AS, big_as, LOCAL_ID);
    ebgp_big.required_capabilities.clear();
    ebgp_big.connect_delay = std::time::Duration::ZERO;
    let mut need_gr = config();
    need_gr.required_capabilities.push(gr_cap(0, false, &[]));
    let cases: Vec<(&str, SessionConfig, Open, Expected)> = vec![
        (
            "peer AS differs",
            config(),
            with_caps(65000, PEER_ID, vec![V4, Capability::FourOctetAs(65000)]),
            (2, 2, vec![]),
        ),
        (
            "4-octet capability differs from configured AS",
            config(),
            with_caps(AS_TRANS, PEER_ID, vec![V4, Capability::FourOctetAs(big_as)]),
            (2, 2, vec![]),
        ),
        (
            "AS_TRANS without the 4-octet capability",
            ebgp_big.clone(),
            with_caps(AS_TRANS, PEER_ID, vec![V4]),
            (2, 2, vec![]),
        ),
        (
            "2-octet field contradicts the 4-octet capability",
            ebgp_big,
            with_caps(100, PEER_ID, vec![V4, Capability::FourOctetAs(big_as)]),
            (2, 2, vec![]),
        ),
        (
            "iBGP peer with our router id",
            config(),
            with_caps(AS as u16, LOCAL_ID, vec![V4]),
            (2, 3, vec![]),
        ),
        (
            "hold time 2 built in code",
            config(),
            Open {
                hold_time: 2,
                ..with_caps(AS as u16, PEER_ID, vec![V4])
            },
            (2, 6, vec![]),
        ),
        (
            "IPv4 unicast required, peer only IPv6",
            config(),
            with_caps(AS as u16, PEER_ID, vec![V6]),
            (2, 7, vec![1, 4, 0, 1, 0, 1]),
        ),
        (
            "graceful restart required, absent",
            need_gr,
            with_caps(AS as u16, PEER_ID, vec![V4]),
            (2, 7, vec![64, 2, 0, 0]),
        ),
    ];
    for (name, cfg, open, (code, sub, data)) in cases {
        let t0 = Instant::now();
        let (mut s, c) = drive_with(cfg, State::OpenSent, &peer_open(), t0);
        let acts = s.handle(Event::message(c, Message::Open(open)), t0);
        let n = sent_notification(&acts).unwrap_or_else(|| panic!("{name}: {acts:?}"));
        assert_eq!((n.code, n.subcode, n.data), (code, sub, data), "{name}");
        assert_eq!(s.state(), State::Idle, "{name}");
        assert!(
            matches!(acts.last(), Some(Action::CloseConnection(_))),
            "{name}"
        );
    }
}

#[test]
fn acceptable_opens() {
    let big_as = 4_200_000_001u32;
    let ebgp_big = SessionConfig::new(AS, big_as, LOCAL_ID);
    let ebgp = SessionConfig::new(AS, 65000, LOCAL_ID);
    let cases: Vec<(&str, SessionConfig, Open)> = vec![
        ("BIRD-like peer", config(), peer_open()),
        (
            "4-octet AS via capability and AS_TRANS",
            ebgp_big,
            with_caps(AS_TRANS, PEER_ID, vec![V4, Capability::FourOctetAs(big_as)]),
        ),
        (
            "small AS announced as AS_TRANS is tolerated",
            ebgp.clone(),
            with_caps(AS_TRANS, PEER_ID, vec![V4, Capability::FourOctetAs(65000)]),
        ),
        (
            "eBGP peer may share our router id (RFC 6286)",
            ebgp,
            with_caps(65000, LOCAL_ID, vec![V4]),
        ),
        (
            "no multiprotocol capability implies IPv4 unicast",
            config(),
            with_caps(AS as u16, PEER_ID, vec![]),
        ),
        (
            "hold time 0",
            config(),
            Open {
                hold_time: 0,
                ..peer_open()
            },
        ),
    ];
    for (name, cfg, open) in cases {
        validate_open(&cfg, &open, out0()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn open_error_messages_name_the_problem() {
    let e = validate_open(&config(), &with_caps(65000, PEER_ID, vec![V4]), out0()).unwrap_err();
    assert_eq!(
        e,
        OpenError::BadPeerAs {
            got: 65000,
            expected: AS
        }
    );
    assert!(e.to_string().contains("65000") && e.to_string().contains("64512"));
}

#[test]
fn negotiated_parameters() {
    let mut cfg = config();
    cfg.extended_message = true;
    cfg.add_path = vec![AddPathFamily {
        family: Family::IPV4_UNICAST,
        receive: true,
        send: true,
    }];
    let mut peer = peer_open();
    peer.capabilities.push(Capability::ExtendedMessage);
    peer.capabilities
        .push(Capability::AddPath(vec![AddPathFamily {
            family: Family::IPV4_UNICAST,
            receive: false,
            send: true,
        }]));
    // The peer only has IPv4 in its GR capability, IPv4 without forwarding state.
    peer.capabilities
        .retain(|c| !matches!(c, Capability::GracefulRestart(_)));
    peer.capabilities
        .push(gr_cap(77, false, &[(Family::IPV4_UNICAST, false)]));
    let t0 = Instant::now();
    let (mut s, c) = drive_with(cfg, State::OpenConfirm, &peer, t0);
    let acts = s.handle(Event::message(c, Message::Keepalive), t0);
    let Some(Action::SessionUp(n)) = acts.first() else {
        panic!("{acts:?}")
    };
    assert_eq!(n.conn, c);
    assert_eq!(n.remote_as, AS);
    assert_eq!(n.remote_id, PEER_ID);
    assert_eq!((n.hold_time, n.keepalive_time), (90, 30));
    assert_eq!(n.families, [Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert!(n.peer_route_refresh && n.local_route_refresh && n.four_octet_as);
    assert!(n.rx.extended_message && n.tx.extended_message);
    // We receive path ids (we said receive, the peer send), we send none (peer: no receive).
    assert!(n.rx.add_path_ipv4 && !n.tx.add_path_ipv4);
    assert_eq!(n.rx.peer, PeerKind::Internal);
    let gr = n.graceful_restart().unwrap();
    assert_eq!(gr.restart_time, secs(77));
    assert!(!gr.notification, "N bit needs both sides");
    assert_eq!(gr.families.len(), 1);
    assert!(!gr.families[0].forwarding_state);
    assert_eq!(n.local_open, s.config().open());
}

#[test]
fn hold_time_and_keepalive_negotiation() {
    // (our hold, our keepalive override, peer hold) → (hold, keepalive)
    let cases = [
        (240, None, 90, (90, 30)),
        (240, None, 0, (0, 0)),
        (0, None, 90, (0, 0)),
        (9, None, 180, (9, 3)),
        (3, None, 3, (3, 1)),
        (240, Some(10), 90, (90, 10)),
        (240, Some(60), 90, (90, 30)),
    ];
    for (ours, ka, theirs, expected) in cases {
        let mut cfg = config();
        cfg.hold_time = ours;
        cfg.keepalive_time = ka;
        let open = Open {
            hold_time: theirs,
            ..peer_open()
        };
        let n = validate_open(&cfg, &open, out0()).unwrap();
        assert_eq!(
            (n.hold_time, n.keepalive_time),
            expected,
            "{ours} {ka:?} {theirs}"
        );
    }
}

#[test]
fn families_in_common() {
    let mut cfg = config();
    cfg.families = vec![Family::IPV4_UNICAST];
    let n = validate_open(&cfg, &peer_open(), out0()).unwrap();
    assert_eq!(n.families, [Family::IPV4_UNICAST]);
    // GR families are limited to the negotiated ones.
    let gr = n.graceful_restart().unwrap();
    assert_eq!(gr.families.len(), 1);
    let mut cfg = config();
    cfg.required_capabilities.clear();
    let v6_only = with_caps(AS as u16, PEER_ID, vec![V6]);
    let n = validate_open(&cfg, &v6_only, out0()).unwrap();
    assert_eq!(n.families, [Family::IPV6_UNICAST]);
}

#[test]
fn our_open_carries_the_configured_capabilities() {
    let mut cfg = config();
    cfg.local_as = 4_200_000_001;
    cfg.set_restart_state_for_test();
    let o = cfg.open();
    assert_eq!(o.my_as, AS_TRANS);
    assert_eq!(o.asn(), 4_200_000_001);
    assert_eq!(o.hold_time, 240);
    assert_eq!(
        o.multiprotocol(),
        [Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    let gr = o.graceful_restart().unwrap();
    assert!(gr.restart_state && gr.notification);
    assert_eq!(gr.restart_time, 120);
    assert!(gr.families.iter().all(|f| f.forwarding_state));
    // It encodes and decodes unchanged.
    let bytes = wire(&Message::Open(o.clone()));
    let back = decode(&bytes, &CodecContext::initial()).unwrap();
    assert_eq!(back.message, Message::Open(o));
}

trait RestartForTest {
    fn set_restart_state_for_test(&mut self);
}

impl RestartForTest for SessionConfig {
    fn set_restart_state_for_test(&mut self) {
        if let Some(gr) = &mut self.graceful_restart {
            gr.restart_state = true;
        }
    }
}

/// The restart-state flag set on the session shows up in the OPENs it sends from then on.
#[test]
fn session_restart_state_goes_into_sent_open() {
    let t0 = Instant::now();
    let mut s = calico_bgp::fsm::Session::new(config());
    s.set_restart_state(true);
    s.handle(Event::ManualStart, t0);
    let acts = s.handle(Event::TcpCrAcked(out0()), t0);
    let Some(Action::SendMessage {
        message: Message::Open(o),
        ..
    }) = acts.first()
    else {
        panic!("{acts:?}")
    };
    assert!(o.graceful_restart().unwrap().restart_state);
    s.set_restart_state(false);
    assert!(!s.config().open().graceful_restart().unwrap().restart_state);
}
