//! Every malformed case of RFC 4271 §6.1–6.3 and RFC 7606 §3–§7 (plus RFC 4760 §7, RFC 6793
//! §6, RFC 7313 §5, RFC 7607, RFC 8092 §6) as a table: the exact NOTIFICATION code/subcode
//! (and data where the RFC fixes it) and the RFC 7606 action.

#![allow(clippy::unwrap_used)] // table helpers outside #[test] fns unwrap too

use calico_bgp_packet::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn msg(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(msg_type);
    m.extend_from_slice(body);
    m
}

/// An UPDATE with correct Withdrawn Routes Length and Total Path Attribute Length.
fn upd(withdrawn: &str, attrs: &str, nlri: &str) -> Vec<u8> {
    let (w, a, n) = (hex(withdrawn), hex(attrs), hex(nlri));
    let mut b = (w.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(&w);
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(&n);
    msg(2, &b)
}

/// An OPEN body with the given version, AS, hold time, identifier and raw optional params.
fn open(version: u8, my_as: u16, hold: u16, id: [u8; 4], params: &str) -> Vec<u8> {
    let p = hex(params);
    let mut b = vec![version];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(p.len() as u8);
    b.extend_from_slice(&p);
    msg(1, &b)
}

const ORIGIN: &str = "40 01 01 00";
const AS_PATH: &str = "40 02 06 02 01 0000fde9";
const NH: &str = "40 03 04 0a000002";
const NLRI: &str = "18 0a0a0a";

fn base_plus(extra: &str) -> String {
    format!("{ORIGIN} {AS_PATH} {NH} {extra}")
}

#[derive(Debug)]
enum Expect {
    /// `decode` fails: session reset with this NOTIFICATION (data checked when `Some`).
    Fatal(u8, u8, Option<&'static str>),
    /// `decode` succeeds with this overall action; the most severe error has this subcode
    /// (NOTIFICATION code 3) and data (when `Some`).
    Survive(Action, u8, Option<&'static str>),
    /// Decodes cleanly (no errors at all).
    Clean,
}

use Expect::*;

const V4: Family = Family::IPV4_UNICAST;
const V6: Family = Family::IPV6_UNICAST;

fn ctx4() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    }
}

fn check(name: &str, ctx: &CodecContext, bytes: &[u8], expect: &Expect) -> Option<Decoded> {
    let res = decode(bytes, ctx);
    match (expect, res) {
        (Fatal(code, sub, data), Err(e)) => {
            let n = e.notification();
            assert_eq!((n.code, n.subcode), (*code, *sub), "{name}: {e}");
            assert_eq!(e.action(), Action::SessionReset, "{name}");
            if let Some(d) = data {
                assert_eq!(n.data, hex(d), "{name}: data");
            }
            assert!(!e.to_string().is_empty());
            None
        }
        (Survive(action, sub, data), Ok(d)) => {
            assert_eq!(d.action(), Some(*action), "{name}: {:?}", d.errors);
            let worst = d.errors.iter().find(|e| e.action == *action).unwrap();
            let n = worst.notification();
            assert_eq!((n.code, n.subcode), (3, *sub), "{name}: {worst}");
            if let Some(x) = data {
                assert_eq!(n.data, hex(x), "{name}: data");
            }
            Some(d)
        }
        (Clean, Ok(d)) => {
            assert!(d.errors.is_empty(), "{name}: {:?}", d.errors);
            Some(d)
        }
        (e, r) => panic!("{name}: expected {e:?}, got {r:?}"),
    }
}

#[test]
fn header_errors() {
    let ctx = ctx4();
    let mut bad_marker = msg(4, &[]);
    bad_marker[3] = 0;
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("marker", bad_marker, Fatal(1, 1, Some(""))),
        (
            "length below 19",
            hex("ffffffffffffffffffffffffffffffff 0012 04"),
            Fatal(1, 2, Some("0012")),
        ),
        (
            "length above 4096",
            {
                let mut m = msg(2, &vec![0; 4096 - 19 + 1]);
                m[16..18].copy_from_slice(&4097u16.to_be_bytes());
                m
            },
            Fatal(1, 2, Some("1001")),
        ),
        ("unknown type 6", msg(6, &[]), Fatal(1, 3, Some("06"))),
        ("unknown type 0", msg(0, &[]), Fatal(1, 3, Some("00"))),
        (
            "OPEN shorter than 29",
            msg(1, &[4, 0, 1, 0, 90, 1, 1, 1]),
            Fatal(1, 2, Some("001b")),
        ),
        (
            "KEEPALIVE with a body",
            msg(4, &[0]),
            Fatal(1, 2, Some("0014")),
        ),
        (
            "NOTIFICATION without subcode",
            msg(3, &[6]),
            Fatal(1, 2, Some("0014")),
        ),
        (
            "UPDATE shorter than 23",
            msg(2, &[0, 0, 0]),
            Fatal(1, 2, Some("0016")),
        ),
        // RFC 7313 §5: ROUTE-REFRESH Message Error / Invalid Message Length, data = message.
        (
            "ROUTE-REFRESH of 24 octets",
            msg(5, &[0, 1, 0, 1, 0]),
            Fatal(
                7,
                1,
                Some("ffffffffffffffffffffffffffffffff 0018 05 0001000100"),
            ),
        ),
        (
            "ROUTE-REFRESH of 22 octets",
            msg(5, &[0, 1, 0]),
            Fatal(7, 1, None),
        ),
    ];
    for (name, bytes, expect) in &cases {
        check(name, &ctx, bytes, expect);
    }
    // decode() is given exactly one message; trailing bytes are a length mismatch.
    let mut two = msg(4, &[]);
    two.push(0xff);
    assert_eq!(decode(&two, &ctx).unwrap_err().notification().subcode, 2);
    // With extended messages (RFC 8654) 4097 is fine for UPDATE but never for OPEN.
    let ext = CodecContext {
        extended_message: true,
        ..ctx
    };
    let mut big_open = msg(1, &vec![0; 4097 - 19]);
    big_open[16..18].copy_from_slice(&4097u16.to_be_bytes());
    check("extended OPEN", &ext, &big_open, &Fatal(1, 2, Some("1001")));
}

#[test]
fn open_errors() {
    let ctx = CodecContext::initial();
    let id = [10, 0, 0, 1];
    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        // RFC 4271 §6.2: data = largest supported version (2 octets).
        (
            "version 3",
            open(3, 64512, 90, id, ""),
            Fatal(2, 1, Some("0004")),
        ),
        ("AS 0 (RFC 7607)", open(4, 0, 90, id, ""), Fatal(2, 2, None)),
        (
            "4-octet AS capability 0",
            open(4, 23456, 90, id, "02 06 41 04 00000000"),
            Fatal(2, 2, None),
        ),
        (
            "identifier 0.0.0.0",
            open(4, 64512, 90, [0; 4], ""),
            Fatal(2, 3, None),
        ),
        (
            "authentication parameter (type 1)",
            open(4, 64512, 90, id, "01 02 0000"),
            Fatal(2, 4, None),
        ),
        ("hold time 1", open(4, 64512, 1, id, ""), Fatal(2, 6, None)),
        ("hold time 2", open(4, 64512, 2, id, ""), Fatal(2, 6, None)),
        (
            "parameter length past the end",
            open(4, 64512, 90, id, "02 09 01 04 00010001"),
            Fatal(2, 0, None),
        ),
        (
            "capability length past its parameter",
            open(4, 64512, 90, id, "02 04 01 04 0001"),
            Fatal(2, 0, None),
        ),
        (
            "multiprotocol capability of 3 octets",
            open(4, 64512, 90, id, "02 05 01 03 000101"),
            Fatal(2, 0, None),
        ),
        (
            "ADD-PATH send/receive 4",
            open(4, 64512, 90, id, "02 06 45 04 00010104"),
            Fatal(2, 0, None),
        ),
        (
            "graceful restart of 3 octets",
            open(4, 64512, 90, id, "02 05 40 03 007800"),
            Fatal(2, 0, None),
        ),
    ];
    for (name, bytes, expect) in &cases {
        check(name, &ctx, bytes, expect);
    }
    for hold in [0u16, 3, 65535] {
        check(
            "acceptable hold",
            &ctx,
            &open(4, 64512, hold, id, ""),
            &Clean,
        );
    }
    // The speaker raises Unsupported Capability (RFC 5492 §5) with the capability as data.
    let e = DecodeError::UnsupportedCapability {
        code: 65,
        value: vec![0, 0, 0xfd, 0xe8],
    };
    assert_eq!(
        e.notification(),
        Notification::new(2, 7, hex("41 04 0000fde8"))
    );
    assert_eq!(e.to_string(), "OPEN: unsupported capability code 65");
}

#[test]
fn update_errors() {
    let c4 = ctx4();
    let c2 = CodecContext::initial();
    let ibgp = CodecContext {
        peer: PeerKind::Internal,
        ..c4
    };
    let ebgp = CodecContext {
        peer: PeerKind::External,
        ..c4
    };
    let mp6 = "80 0e 1e 0002 01 10 20010db8000000000000000000000002 00 40 20010db800010000";
    let cases: Vec<(&str, CodecContext, Vec<u8>, Expect)> = vec![
        // --- lengths of the fixed fields: nothing can be trusted (RFC 7606 §3 a/b) ---
        (
            "withdrawn length past the message",
            c4,
            msg(2, &hex("00ff 0000")),
            Fatal(3, 1, None),
        ),
        (
            "attribute length past the message",
            c4,
            msg(2, &hex("0000 00ff")),
            Fatal(3, 1, None),
        ),
        // --- NLRI fields (RFC 4271 §6.3, RFC 7606 §5.3) ---
        (
            "withdrawn prefix /33",
            c4,
            upd("21 0a000000 00", "", ""),
            Fatal(3, 10, None),
        ),
        (
            "withdrawn prefix truncated",
            c4,
            upd("18 0a00", "", ""),
            Fatal(3, 10, None),
        ),
        (
            "NLRI prefix /33",
            c4,
            upd("", &base_plus(""), "21 0a0a0a0a 00"),
            Fatal(3, 10, None),
        ),
        (
            "NLRI truncated",
            c4,
            upd("", &base_plus(""), "18 0a0a"),
            Fatal(3, 10, None),
        ),
        // --- attribute list structure (RFC 7606 §4, §5.2, §3 g) ---
        (
            "attribute overruns the list, no MP attribute seen",
            c4,
            upd("", &format!("{ORIGIN} 40 02 09 02 01 0000fde9"), NLRI),
            Fatal(3, 1, None),
        ),
        (
            "attribute overruns the list after MP_UNREACH",
            c4,
            upd("", "80 0f 08 0002 01 20 20010db8 40 01 05 00", ""),
            Survive(Action::TreatAsWithdraw, 1, Some("")),
        ),
        (
            "two trailing octets after MP_UNREACH",
            c4,
            upd("", "80 0f 08 0002 01 20 20010db8 40 01", ""),
            Survive(Action::TreatAsWithdraw, 1, None),
        ),
        (
            "ORIGIN twice: repeat discarded",
            c4,
            upd("", &base_plus("40 01 01 02"), NLRI),
            Survive(Action::AttributeDiscard, 1, None),
        ),
        (
            "MP_REACH_NLRI twice",
            c4,
            upd("", &format!("{mp6} {mp6} {ORIGIN} {AS_PATH}"), ""),
            Fatal(3, 1, None),
        ),
        (
            "MP_UNREACH_NLRI twice",
            c4,
            upd("", "80 0f 03 0002 01 80 0f 03 0002 01", ""),
            Fatal(3, 1, None),
        ),
        // --- unrecognized well-known, missing well-known (RFC 4271 §6.3, RFC 7606 §3 d) ---
        (
            "unrecognized well-known type 100",
            c4,
            upd("", &base_plus("40 64 01 07"), NLRI),
            Fatal(3, 2, Some("40 64 01 07")),
        ),
        (
            "missing ORIGIN",
            c4,
            upd("", &format!("{AS_PATH} {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 3, Some("01")),
        ),
        (
            "missing AS_PATH",
            c4,
            upd("", &format!("{ORIGIN} {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 3, Some("02")),
        ),
        (
            "missing NEXT_HOP with NLRI",
            c4,
            upd("", &format!("{ORIGIN} {AS_PATH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 3, Some("03")),
        ),
        (
            "missing LOCAL_PREF on iBGP",
            ibgp,
            upd("", &base_plus(""), NLRI),
            Survive(Action::TreatAsWithdraw, 3, Some("05")),
        ),
        (
            "MP_REACH without NEXT_HOP is fine",
            c4,
            upd("", &format!("{mp6} {ORIGIN} {AS_PATH}"), ""),
            Clean,
        ),
        (
            "withdraw only needs no attributes",
            c4,
            upd("18 0a0a0a", "", ""),
            Clean,
        ),
        // --- flags (RFC 4271 §6.3, RFC 7606 §3 c) ---
        (
            "ORIGIN flagged optional",
            c4,
            upd("", &format!("c0 01 01 00 {AS_PATH} {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 4, Some("c0 01 01 00")),
        ),
        (
            "ORIGIN with Partial",
            c4,
            upd("", &format!("60 01 01 00 {AS_PATH} {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 4, None),
        ),
        (
            "MULTI_EXIT_DISC flagged well-known",
            c4,
            upd("", &base_plus("40 04 04 00000001"), NLRI),
            Survive(Action::TreatAsWithdraw, 4, None),
        ),
        (
            "AGGREGATOR flagged non-transitive",
            c4,
            upd("", &base_plus("80 07 08 0000fde9 0a000001"), NLRI),
            Survive(Action::AttributeDiscard, 4, None),
        ),
        (
            "MP_REACH_NLRI flagged transitive",
            c4,
            upd(
                "",
                &format!(
                    "c0 0e 1e 0002 01 10 20010db8000000000000000000000002 00 40 20010db800010000 {ORIGIN} {AS_PATH}"
                ),
                "",
            ),
            Survive(Action::AfiSafiDisable(V6), 4, None),
        ),
        // --- per attribute, RFC 7606 §7 ---
        (
            "7.1 ORIGIN length 2",
            c4,
            upd("", &format!("40 01 02 0000 {AS_PATH} {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, Some("40 01 02 0000")),
        ),
        (
            "7.1 ORIGIN value 3",
            c4,
            upd("", &format!("40 01 01 03 {AS_PATH} {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 6, Some("40 01 01 03")),
        ),
        (
            "7.2 AS_PATH segment type 5",
            c4,
            upd("", &format!("{ORIGIN} 40 02 06 05 01 0000fde9 {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 11, None),
        ),
        (
            "7.2 AS_PATH segment length 0",
            c4,
            upd("", &format!("{ORIGIN} 40 02 02 02 00 {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 11, None),
        ),
        (
            "7.2 AS_PATH segment overrun",
            c4,
            upd("", &format!("{ORIGIN} 40 02 06 02 02 0000fde9 {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 11, None),
        ),
        (
            "7.2 AS_PATH 4-octet encoding on a 2-octet session",
            c2,
            upd("", &format!("{ORIGIN} 40 02 06 02 01 0000fde9 {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 11, None),
        ),
        (
            "7.2 AS_CONFED_SEQUENCE from an external peer",
            ebgp,
            upd("", &format!("{ORIGIN} 40 02 06 03 01 0000fde9 {NH}"), NLRI),
            Survive(Action::TreatAsWithdraw, 11, None),
        ),
        (
            "7.2 AS_CONFED_SEQUENCE from an internal peer is fine",
            ibgp,
            upd(
                "",
                &format!("{ORIGIN} 40 02 06 03 01 0000fde9 {NH} 40 05 04 00000064"),
                NLRI,
            ),
            Clean,
        ),
        (
            "7.3 NEXT_HOP length 5",
            c4,
            upd("", &format!("{ORIGIN} {AS_PATH} 40 03 05 0a00000200"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "7.3 NEXT_HOP 0.0.0.0",
            c4,
            upd("", &format!("{ORIGIN} {AS_PATH} 40 03 04 00000000"), NLRI),
            Survive(Action::TreatAsWithdraw, 8, Some("40 03 04 00000000")),
        ),
        (
            "7.3 NEXT_HOP multicast",
            c4,
            upd("", &format!("{ORIGIN} {AS_PATH} 40 03 04 e0000001"), NLRI),
            Survive(Action::TreatAsWithdraw, 8, None),
        ),
        (
            "7.3 NEXT_HOP broadcast",
            c4,
            upd("", &format!("{ORIGIN} {AS_PATH} 40 03 04 ffffffff"), NLRI),
            Survive(Action::TreatAsWithdraw, 8, None),
        ),
        (
            "7.4 MULTI_EXIT_DISC length 3",
            c4,
            upd("", &base_plus("80 04 03 000001"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "7.5 LOCAL_PREF length 3",
            ibgp,
            upd("", &base_plus("40 05 03 000064"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, Some("40 05 03 000064")),
        ),
        (
            "7.5 LOCAL_PREF from eBGP is discarded",
            ebgp,
            upd("", &base_plus("40 05 03 000064"), NLRI),
            Clean,
        ),
        (
            "7.6 ATOMIC_AGGREGATE length 1",
            c4,
            upd("", &base_plus("40 06 01 00"), NLRI),
            Survive(Action::AttributeDiscard, 5, None),
        ),
        (
            "7.7 AGGREGATOR length 7 (4-octet session)",
            c4,
            upd("", &base_plus("c0 07 07 00fde9 0a000001"), NLRI),
            Survive(Action::AttributeDiscard, 5, None),
        ),
        (
            "7.7 AGGREGATOR length 8 (2-octet session)",
            c2,
            upd(
                "",
                &format!("{ORIGIN} 40 02 04 02 01 fde9 {NH} c0 07 08 0000fde9 0a000001"),
                NLRI,
            ),
            Survive(Action::AttributeDiscard, 5, None),
        ),
        (
            "7.8 COMMUNITIES length 5",
            c4,
            upd("", &base_plus("c0 08 05 0000000000"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "7.8 COMMUNITIES length 0",
            c4,
            upd("", &base_plus("c0 08 00"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "7.9 ORIGINATOR_ID length 5",
            c4,
            upd("", &base_plus("80 09 05 0a00000100"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "7.10 CLUSTER_LIST length 6",
            c4,
            upd("", &base_plus("80 0a 06 0a0000010000"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "7.10 CLUSTER_LIST length 0",
            c4,
            upd("", &base_plus("80 0a 00"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "7.11 MP_REACH next hop length 8 for IPv6",
            c4,
            upd(
                "",
                &format!(
                    "80 0e 16 0002 01 08 20010db800000000 00 40 20010db800010000 {ORIGIN} {AS_PATH}"
                ),
                "",
            ),
            Survive(Action::AfiSafiDisable(V6), 9, None),
        ),
        (
            "7.11 MP_REACH IPv6 prefix /129",
            c4,
            upd(
                "",
                &format!(
                    "80 0e 17 0002 01 10 20010db8000000000000000000000002 00 81 00 {ORIGIN} {AS_PATH}"
                ),
                "",
            ),
            Survive(Action::AfiSafiDisable(V6), 9, None),
        ),
        (
            "7.11 MP_REACH too short to name its family",
            c4,
            upd("", &format!("80 0e 02 0002 {ORIGIN} {AS_PATH}"), ""),
            Fatal(3, 9, None),
        ),
        (
            "7.11 MP_UNREACH IPv4 prefix /33",
            c4,
            upd("", "80 0f 09 0001 01 21 0a000000 00", ""),
            Survive(Action::AfiSafiDisable(V4), 9, None),
        ),
        (
            "7.11 MP_REACH IPv6 next hop ::",
            c4,
            upd(
                "",
                &format!(
                    "80 0e 1e 0002 01 10 00000000000000000000000000000000 00 40 20010db800010000 {ORIGIN} {AS_PATH}"
                ),
                "",
            ),
            Survive(Action::TreatAsWithdraw, 8, None),
        ),
        (
            "7.14 EXTENDED_COMMUNITIES length 9",
            c4,
            upd("", &base_plus("c0 10 09 000000000000000000"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "RFC 8092 LARGE_COMMUNITY length 13",
            c4,
            upd("", &base_plus("c0 20 0d 00000000000000000000000000"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "RFC 8092 LARGE_COMMUNITY length 0",
            c4,
            upd("", &base_plus("c0 20 00"), NLRI),
            Survive(Action::TreatAsWithdraw, 5, None),
        ),
        (
            "RFC 6793 §6 AS4_PATH malformed",
            c2,
            upd(
                "",
                &format!("{ORIGIN} 40 02 04 02 01 fde9 {NH} c0 11 03 02 01 00"),
                NLRI,
            ),
            Survive(Action::AttributeDiscard, 9, None),
        ),
        (
            "RFC 6793 §6 AS4_PATH with a confederation segment",
            c2,
            upd(
                "",
                &format!("{ORIGIN} 40 02 04 02 01 fde9 {NH} c0 11 06 03 01 0000fde9"),
                NLRI,
            ),
            Survive(Action::AttributeDiscard, 9, None),
        ),
        (
            "RFC 6793 §6 AS4_AGGREGATOR length 6",
            c2,
            upd(
                "",
                &format!(
                    "{ORIGIN} 40 02 04 02 01 5ba0 {NH} c0 07 06 5ba0 0a000001 c0 12 06 fdea 0a000001"
                ),
                NLRI,
            ),
            Survive(Action::AttributeDiscard, 5, None),
        ),
        (
            "AS4_PATH between 4-octet speakers is dropped",
            c4,
            upd("", &base_plus("c0 11 06 02 01 fa56ea00"), NLRI),
            Clean,
        ),
        (
            "treat-as-withdraw beats attribute-discard",
            c4,
            upd("", &format!("40 01 01 07 {AS_PATH} {NH} 40 06 01 00"), NLRI),
            Survive(Action::TreatAsWithdraw, 6, None),
        ),
    ];
    for (name, ctx, bytes, expect) in &cases {
        let d = check(name, ctx, bytes, expect);
        // Whatever the error, treat-as-withdraw keeps the NLRI so the RIB can withdraw them.
        if let (Some(d), Survive(Action::TreatAsWithdraw, ..)) = (d, expect) {
            let Message::Update(u) = d.message else {
                panic!("{name}")
            };
            assert!(
                u.announced().count() > 0 || u.withdrawn_routes().count() > 0,
                "{name}: NLRI lost"
            );
        }
    }
}

#[test]
fn error_messages_name_the_problem() {
    let d = decode(
        &upd("", &base_plus("40 05 03 000064"), NLRI),
        &CodecContext {
            peer: PeerKind::Internal,
            ..ctx4()
        },
    )
    .unwrap();
    assert_eq!(
        d.errors[0].to_string(),
        "UPDATE: attribute LOCAL_PREF length 3, expected 4"
    );
    let e = decode(&upd("", &base_plus(""), "21 0a0a0a0a 00"), &ctx4()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "UPDATE: invalid NLRI field: prefix length 33 exceeds 32"
    );
    let e = decode(&open(4, 64512, 2, [1, 1, 1, 1], ""), &ctx4()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "OPEN: unacceptable hold time 2s (must be 0 or at least 3)"
    );
    assert_eq!(
        e.notification().to_string(),
        "OPEN Message Error (2) / Unacceptable Hold Time (6)"
    );
}

#[test]
fn discarded_and_dropped_attributes_are_absent() {
    // The repeat of ORIGIN is discarded, the first value stays.
    let d = decode(&upd("", &base_plus("40 01 01 02"), NLRI), &ctx4()).unwrap();
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(u.attributes.origin, Some(Origin::Igp));
    // A malformed ATOMIC_AGGREGATE is gone, the route stays usable.
    let d = decode(&upd("", &base_plus("40 06 01 00"), NLRI), &ctx4()).unwrap();
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert!(!u.attributes.atomic_aggregate);
    assert_eq!(u.nlri.len(), 1);
    // LOCAL_PREF from an eBGP peer is dropped.
    let d = decode(
        &upd("", &base_plus("40 05 04 00000064"), NLRI),
        &CodecContext {
            peer: PeerKind::External,
            ..ctx4()
        },
    )
    .unwrap();
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(u.attributes.local_pref, None);
    // The MP_REACH with an invalid next hop is kept for the withdraw.
    let d = decode(
        &upd(
            "",
            &format!(
                "80 0e 1e 0002 01 10 ff020000000000000000000000000001 00 40 20010db800010000 {ORIGIN} {AS_PATH}"
            ),
            "",
        ),
        &ctx4(),
    )
    .unwrap();
    assert_eq!(d.action(), Some(Action::TreatAsWithdraw));
    let Message::Update(u) = d.message else {
        panic!()
    };
    assert_eq!(
        u.announced()
            .map(|(f, n)| (f, n.prefix.to_string()))
            .collect::<Vec<_>>(),
        vec![(V6, "2001:db8:1::/64".to_string())]
    );
}
