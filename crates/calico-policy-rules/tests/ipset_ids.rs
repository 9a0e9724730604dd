//! IP-set IDs, checked against values computed with Calico's algorithm
//! (`libcalico-go/lib/hash/unique_id.go` `MakeUniqueID`: prefix + ":" + base64url-nopad of
//! SHA-224(prefix + ":" + content); `felix/calc/rule_scanner.go` `IPSetData.UniqueID`: a
//! named-port set hashes `<selector unique ID>,<protocol string>,<port name>` with prefix
//! "n"). The `s:` values of `all()` and `!(has(b) || !has(a))` are the literals from Calico's
//! `libcalico-go/lib/selector/parser/parser_test.go`; the others were computed independently
//! (Python `hashlib.sha224` + `base64.urlsafe_b64encode`).

#![allow(clippy::unwrap_used)]

use calico_policy_rules::{
    NAMED_PORT_PROTOCOL_ANY, NAMED_PORT_PROTOCOL_NONE, named_port_ip_set_id, named_port_protocol,
    selector_ip_set_id,
};
use calico_selector::{Selector, parse};

const ALL_ID: &str = "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug";

#[test]
fn selector_set_ids_are_calico_unique_ids() {
    assert_eq!(selector_ip_set_id(&Selector::all()), ALL_ID);
    // parser_test.go: whitespace and quoting do not matter, the canonical form is hashed.
    assert_eq!(selector_ip_set_id(&parse(" (all() )").unwrap()), ALL_ID);
    assert_eq!(
        selector_ip_set_id(&parse("! (has( b)||! has(a ))").unwrap()),
        "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q"
    );
    let server = parse("role == 'server'").unwrap();
    assert_eq!(server.to_string(), "role == \"server\"");
    assert_eq!(
        selector_ip_set_id(&server),
        "s:Otb-VCq6fwI7ztX6MBY8ob8iDr5H5INbqsfdnQ"
    );
}

#[test]
fn named_port_set_ids_hash_selector_protocol_and_name() {
    let all = Selector::all();
    let cases = [
        (6, "n:cl9_Kgeu4H0OGLbhovVR3NBLUOZscKeMK1Mu4A"),
        (17, "n:74yEIvclD7QMT7xNM1hj8GbYy42TzM-A7Ksxnw"),
        (132, "n:Vly3eGCl5dMANJYk7N4OT6ywRTDXzuypUIs1DQ"),
        (
            NAMED_PORT_PROTOCOL_ANY,
            "n:FvKMFOOSYvkZZJ0ch1bwT7bt3AAgySwlMLqMDA",
        ),
    ];
    for (proto, want) in cases {
        assert_eq!(named_port_ip_set_id(&all, proto, "http"), want, "{proto}");
    }
    let server = parse("role == 'server'").unwrap();
    assert_eq!(
        named_port_ip_set_id(&server, 6, "metrics"),
        "n:7xhGnlvldTegW-6zaMizuBgUvAIf47_mB-RrAQ"
    );
    // ipsetmember.Protocol.String() of anything else is "unknown".
    assert_eq!(
        named_port_ip_set_id(&server, 1, "metrics"),
        "n:n-8TfRObCWygMHDC378xzovch-b5gJnyG_4RAQ"
    );
    // ProtocolNone: not a named-port set, the selector's own ID.
    assert_eq!(
        named_port_ip_set_id(&server, NAMED_PORT_PROTOCOL_NONE, "metrics"),
        selector_ip_set_id(&server)
    );
}

#[test]
fn named_port_protocol_follows_protocol_from() {
    // rule_scanner.go: ProtocolAny without a rule protocol; ipsetmember.ProtocolFrom: UDP,
    // SCTP, everything else TCP.
    assert_eq!(named_port_protocol(None), NAMED_PORT_PROTOCOL_ANY);
    assert_eq!(named_port_protocol(Some(6)), 6);
    assert_eq!(named_port_protocol(Some(17)), 17);
    assert_eq!(named_port_protocol(Some(132)), 132);
    assert_eq!(named_port_protocol(Some(1)), 6);
}
