//! Golden tests: the CNI spec's own example documents and libcni's expected encodings
//! (tests/data/spec/README.md) parsed and re-encoded by `calico_cni::spec`.

#![allow(clippy::unwrap_used)]

use calico_cni::spec::{CniError, CniResult, ErrorCode, version};
use serde_json::Value;

fn data(name: &str) -> Value {
    let path = format!("{}/tests/data/spec/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn with_version(mut v: Value, ver: &str) -> Value {
    v.as_object_mut()
        .unwrap()
        .insert("cniVersion".into(), Value::from(ver));
    v
}

#[test]
fn ipam_result_round_trips_in_1_1_0() {
    // The host-local result carries no cniVersion: it is read in the config's version.
    let src = data("hostlocal-ipam-result.json");
    let r = CniResult::parse(&src, "1.1.0", "IPAM plugin result").unwrap();
    assert_eq!(r.ips[0].address.to_string(), "10.1.0.5/16");
    assert_eq!(r.ips[0].interface, None);
    assert_eq!(r.to_json("1.1.0").unwrap(), with_version(src, "1.1.0"));
}

#[test]
fn bridge_result_round_trips_and_keeps_interface_index() {
    let src = data("bridge-result.json");
    let r = CniResult::parse(&src, "1.1.0", "result").unwrap();
    assert_eq!(r.interfaces.len(), 3);
    assert_eq!(r.ips[0].interface, Some(2));
    assert_eq!(r.interfaces[2].sandbox, "/var/run/netns/blue");
    assert_eq!(r.to_json("1.0.0").unwrap(), with_version(src, "1.0.0"));
}

#[test]
fn prev_result_of_the_tuning_request_parses() {
    let req = data("tuning-add-request.json");
    let prev = CniResult::parse(&req["prevResult"], "1.1.0", "prevResult").unwrap();
    let bridge = CniResult::parse(&data("bridge-result.json"), "1.1.0", "result").unwrap();
    assert_eq!(prev, bridge);
}

#[test]
fn libcni_encodings_of_the_full_result() {
    let full = data("full-result-1.1.0.json");
    let r = CniResult::parse(&full, "1.1.0", "result").unwrap();
    assert_eq!(r.to_json("1.1.0").unwrap(), full);
    assert_eq!(r.to_json("0.4.0").unwrap(), data("full-result-0.4.0.json"));
    assert_eq!(r.to_json("0.1.0").unwrap(), data("full-result-0.1.0.json"));
    // 0.3.x and 0.2.0 share the shapes of 0.4.0 and 0.1.0.
    assert_eq!(
        r.to_json("0.3.1").unwrap(),
        with_version(data("full-result-0.4.0.json"), "0.3.1")
    );
    assert_eq!(
        r.to_json("0.2.0").unwrap(),
        with_version(data("full-result-0.1.0.json"), "0.2.0")
    );
}

#[test]
fn older_encodings_parse_back() {
    let full = CniResult::parse(&data("full-result-1.1.0.json"), "1.1.0", "r").unwrap();
    // 0.4.0 drops mtu/pciID/socketPath; everything else survives.
    let from04 = CniResult::parse(&data("full-result-0.4.0.json"), "0.4.0", "r").unwrap();
    assert_eq!(from04.ips, full.ips);
    assert_eq!(from04.routes, full.routes);
    assert_eq!(from04.interfaces[0].mac, full.interfaces[0].mac);
    assert_eq!(from04.interfaces[0].mtu, 0);
    // 0.1.0: addresses without interface index, routes flattened in family order.
    let from01 = CniResult::parse(&data("full-result-0.1.0.json"), "0.1.0", "r").unwrap();
    assert_eq!(from01.ips.len(), 2);
    assert!(from01.ips.iter().all(|i| i.interface.is_none()));
    assert_eq!(from01.routes, full.routes);
    assert_eq!(from01.dns, full.dns);
}

#[test]
fn error_and_version_examples() {
    let e = CniError::new(ErrorCode::INVALID_NETCONF, "Invalid Configuration")
        .with_details("Network 192.168.0.0/31 too small to allocate from.");
    assert_eq!(e.to_json("1.1.0"), data("error.json"));
    assert_eq!(
        version::version_response(br#"{"cniVersion":"1.1.0"}"#),
        data("version.json")
    );
}

#[test]
fn bridge_request_version_is_read() {
    let bytes = serde_json::to_vec(&data("bridge-add-request.json")).unwrap();
    assert_eq!(version::config_version(&bytes).unwrap(), "1.1.0");
}
