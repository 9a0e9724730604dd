//! Calico's `api/pkg/lib/numorstring/numorstring_test.go` Port and Protocol tables, re-encoded as
//! data: JSON unmarshalling, marshalling, stringification, port support and name parsing.

#![allow(clippy::unwrap_used)]

use calico_api::numorstring::{Port, Protocol};

fn port(min: u16, max: u16) -> Port {
    Port::range(min, max).unwrap()
}

/// (description, JSON text, expected value or None for an error).
fn port_unmarshal_cases() -> Vec<(&'static str, &'static str, Option<Port>)> {
    vec![
        ("should accept 0 port as int", "0", Some(Port::single(0))),
        (
            "should accept 65535 port as int",
            "65535",
            Some(Port::single(65535)),
        ),
        (
            "should accept 0:65535 port range as string",
            "\"0:65535\"",
            Some(port(0, 65535)),
        ),
        (
            "should accept 1:10 port range as string",
            "\"1:10\"",
            Some(port(1, 10)),
        ),
        (
            "should accept foo-bar as named port",
            "\"foo-bar\"",
            Some(Port::named("foo-bar").unwrap()),
        ),
        ("should reject -1 port as int", "-1", None),
        ("should reject 65536 port as int", "65536", None),
        (
            "should reject 0:65536 port range as string",
            "\"0:65536\"",
            None,
        ),
        (
            "should reject -1:65535 port range as string",
            "\"-1:65535\"",
            None,
        ),
        ("should reject 10:1 port range as string", "\"10:1\"", None),
        (
            "should reject 1:2:3 port range as string",
            "\"1:2:3\"",
            None,
        ),
        ("should reject bad named port string", "\"*\"", None),
        ("should reject bad port string", "\"1:2", None),
    ]
}

#[test]
fn port_unmarshalling() {
    for (desc, text, want) in port_unmarshal_cases() {
        let got: Result<Port, _> = serde_json::from_str(text);
        match want {
            Some(p) => assert_eq!(got.ok(), Some(p), "{desc}"),
            None => assert!(got.is_err(), "{desc}: expected an error, got {got:?}"),
        }
    }
}

#[test]
fn reversed_range_message() {
    let err = serde_json::from_str::<Port>("\"9010:9000\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("range 9010:9000 is reversed"), "{err}");
}

/// (description, JSON text, expected value or None for an error). Invalid integer values are
/// stored as strings, as in Calico.
fn protocol_unmarshal_cases() -> Vec<(&'static str, &'static str, Option<Protocol>)> {
    vec![
        (
            "should accept 0 protocol as int",
            "0",
            Some(Protocol::Num(0)),
        ),
        (
            "should accept 255 protocol as int",
            "255",
            Some(Protocol::Num(255)),
        ),
        (
            "should accept tcp protocol as string",
            "\"TCP\"",
            Some(Protocol::from_name("TCP")),
        ),
        (
            "should accept 0 protocol as string",
            "\"0\"",
            Some(Protocol::Num(0)),
        ),
        (
            "should accept 255 protocol as string",
            "\"255\"",
            Some(Protocol::Num(255)),
        ),
        (
            "should accept 256 protocol as string",
            "\"256\"",
            Some(Protocol::Name("256".into())),
        ),
        ("should reject bad protocol string", "\"25", None),
        ("should reject 256 protocol as int", "256", None),
    ]
}

#[test]
fn protocol_unmarshalling() {
    for (desc, text, want) in protocol_unmarshal_cases() {
        let got: Result<Protocol, _> = serde_json::from_str(text);
        match want {
            Some(p) => assert_eq!(got.ok(), Some(p), "{desc}"),
            None => assert!(got.is_err(), "{desc}: expected an error, got {got:?}"),
        }
    }
}

#[test]
fn marshalling() {
    let ports: Vec<(&str, Port, &str)> = vec![
        ("should marshal port of 0", Port::single(0), "0"),
        ("should marshal port of 65535", port(65535, 65535), "65535"),
        (
            "should marshal port of 10",
            Port::parse("10").unwrap(),
            "10",
        ),
        (
            "should marshal port range of 10:20",
            port(10, 20),
            "\"10:20\"",
        ),
        (
            "should marshal port range of 20:30",
            port(20, 30),
            "\"20:30\"",
        ),
        (
            "should marshal named port",
            Port::named("foobar").unwrap(),
            "\"foobar\"",
        ),
    ];
    for (desc, p, want) in ports {
        assert_eq!(serde_json::to_string(&p).unwrap(), want, "{desc}");
    }
    let protos: Vec<(&str, Protocol, &str)> = vec![
        ("should marshal protocol of 0", Protocol::Num(0), "0"),
        (
            "should marshal protocol of udp",
            Protocol::from_name("UDP"),
            "\"UDP\"",
        ),
        (
            "a numeric string marshals as a number",
            Protocol::Name("17".into()),
            "17",
        ),
    ];
    for (desc, p, want) in protos {
        assert_eq!(serde_json::to_string(&p).unwrap(), want, "{desc}");
    }
}

#[test]
fn stringify() {
    assert_eq!(Port::single(20).to_string(), "20");
    assert_eq!(port(10, 20).to_string(), "10:20");
    assert_eq!(Protocol::Num(0).to_string(), "0");
    assert_eq!(Protocol::from_name("UDP").to_string(), "UDP");
}

#[test]
fn protocols_supporting_ports() {
    let cases: Vec<(&str, Protocol, bool)> = vec![
        ("protocol 6 supports ports", Protocol::Num(6), true),
        ("protocol 17 supports ports", Protocol::Num(17), true),
        ("protocol 132 supports ports", Protocol::Num(132), true),
        (
            "protocol udp supports ports",
            Protocol::from_name("UDP"),
            true,
        ),
        (
            "protocol tcp supports ports",
            Protocol::from_name("TCP"),
            true,
        ),
        (
            "protocol sctp supports ports",
            Protocol::from_name("SCTP"),
            true,
        ),
        (
            "protocol foo does not support ports",
            Protocol::from_name("foo"),
            false,
        ),
        ("protocol 2 does not support ports", Protocol::Num(2), false),
        (
            "protocol ICMP does not support ports",
            Protocol::from_name("ICMP"),
            false,
        ),
    ];
    for (desc, p, want) in cases {
        assert_eq!(p.supports_ports(), want, "{desc}");
    }
}

#[test]
fn protocol_from_name_is_not_case_sensitive() {
    let cases = [
        ("protocol udp -> UDP", "udp", "UDP"),
        ("protocol tcp -> TCP", "tcp", "TCP"),
        ("protocol udplite -> UDPLite", "udplite", "UDPLite"),
        ("protocol icmpv6 -> ICMPv6", "icmpv6", "ICMPv6"),
        ("unknown protocol xxxXXX", "xxxXXX", "xxxXXX"),
    ];
    for (desc, input, want) in cases {
        assert_eq!(
            Protocol::from_name(input),
            Protocol::Name(want.into()),
            "{desc}"
        );
    }
}

#[test]
fn protocol_validation_is_case_sensitive_on_decoded_values() {
    // JSON keeps the text as written (Calico UnmarshalJSON); validation wants exact names.
    let p: Protocol = serde_json::from_str("\"tcp\"").unwrap();
    assert_eq!(p, Protocol::Name("tcp".into()));
    assert!(p.problem().is_some());
    assert!(Protocol::from_name("tcp").problem().is_none());
    assert!(Protocol::Num(0).problem().is_some());
    assert!(Protocol::Num(1).problem().is_none());
    assert!(Protocol::Name("256".into()).problem().is_some());
}

#[test]
fn named_ports() {
    let cases: Vec<(&str, String, bool)> = vec![
        ("named port http-port", "http-port".into(), true),
        ("named port 8080", "8080".into(), true),
        ("named port with space", "http port".into(), false),
        ("named port with invalid chars", "http%port".into(), false),
        ("named port of 128 chars", "a".repeat(128), true),
        ("named port of 129 chars", "a".repeat(129), false),
    ];
    for (desc, input, valid) in cases {
        let got = Port::named(&input);
        assert_eq!(got.is_ok(), valid, "{desc}");
        if let Ok(p) = got {
            assert_eq!(p.port_name, input);
            assert_eq!((p.min_port, p.max_port), (0, 0));
        }
    }
}

#[test]
fn programmatic_ports_are_checked() {
    let bad = Port {
        min_port: 123,
        max_port: 456,
        port_name: "foo".into(),
    };
    assert!(!bad.problems().is_empty());
    let zero = Port {
        min_port: 0,
        max_port: 456,
        port_name: String::new(),
    };
    assert_eq!(
        zero.problems(),
        vec!["port range invalid, port number must be between 1 and 65535"]
    );
    assert!(Port::single(1).problems().is_empty());
}

mod properties {
    use calico_api::numorstring::{Port, Protocol};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn port_ranges_round_trip(a in any::<u16>(), b in any::<u16>()) {
            let (min, max) = (a.min(b), a.max(b));
            let p = Port::range(min, max).unwrap();
            let text = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<Port>(&text).unwrap(), p.clone());
            prop_assert_eq!(Port::parse(&p.to_string()).unwrap(), p);
            if min != max {
                let reversed = format!("\"{max}:{min}\"");
                prop_assert!(serde_json::from_str::<Port>(&reversed).is_err());
            }
        }

        #[test]
        fn named_ports_round_trip(name in "[a-zA-Z_.-][a-zA-Z0-9_.-]{0,127}") {
            let p = Port::named(&name).unwrap();
            let text = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<Port>(&text).unwrap(), p);
        }

        #[test]
        fn protocols_round_trip(n in any::<u8>(), name in "[A-Za-z]{1,10}") {
            let p = Protocol::Num(n);
            let text = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<Protocol>(&text).unwrap(), p);
            let p = Protocol::from_name(&name);
            let text = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<Protocol>(&text).unwrap(), p);
        }

        #[test]
        fn arbitrary_port_text_never_panics(s in "\\PC{0,20}") {
            let _ = Port::parse(&s);
        }
    }
}
