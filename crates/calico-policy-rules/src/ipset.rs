//! IP-set IDs, byte-for-byte as Felix computes them (`felix/calc/rule_scanner.go`
//! `IPSetData.UniqueID`), because dataplanes derive set names from them.

use calico_dataplane_model::IpSetId;
use calico_selector::Selector;
use calico_selector::hash::make_unique_id;

/// `ipsetmember.ProtocolAny`: the named-port protocol of a rule without a protocol.
pub const NAMED_PORT_PROTOCOL_ANY: u8 = 255;
/// `ipsetmember.ProtocolNone`: not a named-port set (the ID is the selector's).
pub const NAMED_PORT_PROTOCOL_NONE: u8 = 0;

/// The named-port protocol of a rule (`rule_scanner.go`: `ProtocolAny` without a rule
/// protocol, else `ipsetmember.ProtocolFrom`: UDP, SCTP, and TCP for everything else).
pub fn named_port_protocol(rule_protocol: Option<u8>) -> u8 {
    match rule_protocol {
        None => NAMED_PORT_PROTOCOL_ANY,
        Some(17) => 17,
        Some(132) => 132,
        Some(_) => 6,
    }
}

/// `ipsetmember.Protocol.String()`.
fn protocol_string(p: u8) -> &'static str {
    match p {
        6 => "tcp",
        17 => "udp",
        132 => "sctp",
        NAMED_PORT_PROTOCOL_ANY => "any",
        NAMED_PORT_PROTOCOL_NONE => "none",
        _ => "unknown",
    }
}

/// The ID of a selector IP set: the selector's unique ID, `s:` + base64url(SHA-224) of
/// `s:<canonical selector>` (`selector.UniqueID()`).
pub fn selector_ip_set_id(selector: &Selector) -> IpSetId {
    selector.unique_id()
}

/// The ID of a named-port IP set (`IPSetData.UniqueID`):
/// `MakeUniqueID("n", <selector unique ID> + "," + <protocol string> + "," + <port name>)`.
/// `protocol` is an `ipsetmember.Protocol` as [`named_port_protocol`] gives it: 6 (`tcp`),
/// 17 (`udp`), 132 (`sctp`) or [`NAMED_PORT_PROTOCOL_ANY`] (`any`). Like Felix,
/// [`NAMED_PORT_PROTOCOL_NONE`] means "no named port" and gives the selector set's ID, and any
/// other value hashes as `unknown`. A named port without a positive selector uses `all()`
/// (`namedPortsToIPSets`).
pub fn named_port_ip_set_id(selector: &Selector, protocol: u8, port_name: &str) -> IpSetId {
    let sel_id = selector.unique_id();
    if protocol == NAMED_PORT_PROTOCOL_NONE {
        return sel_id;
    }
    make_unique_id(
        "n",
        &format!("{sel_id},{},{port_name}", protocol_string(protocol)),
    )
}
