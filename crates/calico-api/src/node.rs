//! Node (`libcalico-go/lib/apis/internalapi/node.go`): a Calico node as calico-node registers
//! it: BGP addresses (in CIDR form, the subnet deciding CrossSubnet encapsulation), tunnel
//! addresses, WireGuard settings, orchestrator references; status carries WireGuard public
//! keys. Addressed as a `projectcalico.org/v3` kind by calicoctl although it has no CRD.
//!
//! Validation: `validateNodeSpec` and the Go field tags (`cidrv4`, `cidrv6`, `ipv4`, `ipv6`,
//! `mac`, `net`, `ipType`, `name`, `wireguardPublicKey`) in
//! `libcalico-go/lib/validator/v3/validator.go`. No defaulting.

use serde::{Deserialize, Serialize};

use crate::asnumber::ASNumber;
use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};

pub const ADDRESS_TYPES: &[&str] = &["CalicoNodeIP", "InternalIP", "ExternalIP"];

/// `spec` and `status` are plain structs with `omitempty` in Go, which never omits a struct:
/// both are always written (`status: {}` for a node without WireGuard keys).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Node {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: NodeSpec,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub status: NodeStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<NodeBGPSpec>,
    #[serde(
        rename = "ipv4VXLANTunnelAddr",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_vxlan_tunnel_addr: String,
    #[serde(
        rename = "vxlanTunnelMACAddr",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr: String,
    #[serde(
        rename = "ipv6VXLANTunnelAddr",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_vxlan_tunnel_addr: String,
    #[serde(
        rename = "vxlanTunnelMACAddrV6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub vxlan_tunnel_mac_addr_v6: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orch_refs: Vec<OrchRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<NodeWireguardSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<NodeAddress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<NodeInterface>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeBGPSpec {
    /// The node's AS; unset means the global BGPConfiguration AS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<ASNumber>,
    /// e.g. `10.0.0.5/24`: the address and its subnet (need not be masked).
    #[serde(
        rename = "ipv4Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_address: String,
    #[serde(
        rename = "ipv6Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_address: String,
    #[serde(
        rename = "ipv4IPIPTunnelAddr",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_ipip_tunnel_addr: String,
    /// An IPv4-format string; set on route reflectors.
    #[serde(
        rename = "routeReflectorClusterID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub route_reflector_cluster_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeWireguardSpec {
    #[serde(
        rename = "interfaceIPv4Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_ipv4_address: String,
    #[serde(
        rename = "interfaceIPv6Address",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_ipv6_address: String,
}

/// Field order follows Go (`nodeName`, then the always-written `orchestrator`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrchRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    #[serde(default)]
    pub orchestrator: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeAddress {
    #[serde(default)]
    pub address: String,
    /// `CalicoNodeIP` | `InternalIP` | `ExternalIP`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeInterface {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeStatus {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub wireguard_public_key: String,
    #[serde(
        rename = "wireguardPublicKeyV6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub wireguard_public_key_v6: String,
    #[serde(rename = "podCIDRs", default, skip_serializing_if = "Vec::is_empty")]
    pub pod_cidrs: Vec<String>,
}

impl NodeBGPSpec {
    fn is_empty(&self) -> bool {
        *self == NodeBGPSpec::default()
    }
}

impl CalicoResource for Node {
    const KIND: &'static str = "Node";

    crate::resource::metadata_accessors!();

    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        validate_node_spec(&self.spec, &FieldPath::root().field("spec"), errs);
        validate_node_status(&self.status, &FieldPath::root().field("status"), errs);
    }
}

fn check_ip(value: &str, version: u8, path: &FieldPath, errs: &mut FieldErrors) {
    if !value.is_empty() && !netutil::is_ip_of_version(value, version) {
        errs.push(
            path,
            format!("{value:?} is not a valid IPv{version} address"),
        );
    }
}

/// Calico's `cidrv4` / `cidrv6`: a CIDR (host bits allowed) or bare IP of that version.
fn check_cidr(value: &str, version: u8, path: &FieldPath, errs: &mut FieldErrors) {
    if !value.is_empty() && netutil::parse_cidr_or_ip(value).is_none_or(|c| c.version() != version)
    {
        errs.push(path, format!("{value:?} is not a valid IPv{version} CIDR"));
    }
}

fn check_mac(value: &str, path: &FieldPath, errs: &mut FieldErrors) {
    if !value.is_empty() && !is_mac(value) {
        errs.push(path, format!("{value:?} is not a valid MAC address"));
    }
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `xx:xx:..`, `xx-xx-..` or `xxxx.xxxx.xxxx..`.
pub fn is_mac(s: &str) -> bool {
    let hex = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_hexdigit());
    let ok_len = |n: usize| n == 6 || n == 8 || n == 20;
    if s.len() < 14 {
        return false;
    }
    let b = s.as_bytes();
    if b[2] == b':' || b[2] == b'-' {
        let sep = b[2] as char;
        let parts: Vec<&str> = s.split(sep).collect();
        return ok_len(parts.len()) && parts.iter().all(|p| hex(p));
    }
    if b[4] == b'.' {
        let parts: Vec<&str> = s.split('.').collect();
        return ok_len(parts.len() * 2)
            && parts
                .iter()
                .all(|p| p.len() == 4 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    false
}

/// WireGuard's `wgtypes.ParseKey`: standard base64 of exactly 32 bytes.
pub fn is_wireguard_key(s: &str) -> bool {
    // 32 bytes encode to 44 characters with one '=' of padding.
    if s.len() != 44 || !s.ends_with('=') || s[..43].contains('=') {
        return false;
    }
    let val = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    // Go's (non-strict) StdEncoding ignores the 2 unused bits of the last character, so only
    // the alphabet matters.
    s.as_bytes()[..43].iter().all(|c| val(*c).is_some())
}

fn validate_node_spec(spec: &NodeSpec, path: &FieldPath, errs: &mut FieldErrors) {
    if let Some(bgp) = &spec.bgp {
        let p = path.field("bgp");
        if bgp.is_empty() {
            errs.push(&p, "Spec.BGP should not be empty");
        }
        check_cidr(&bgp.ipv4_address, 4, &p.field("ipv4Address"), errs);
        check_cidr(&bgp.ipv6_address, 6, &p.field("ipv6Address"), errs);
        check_ip(
            &bgp.ipv4_ipip_tunnel_addr,
            4,
            &p.field("ipv4IPIPTunnelAddr"),
            errs,
        );
        check_ip(
            &bgp.route_reflector_cluster_id,
            4,
            &p.field("routeReflectorClusterID"),
            errs,
        );
    }
    check_ip(
        &spec.ipv4_vxlan_tunnel_addr,
        4,
        &path.field("ipv4VXLANTunnelAddr"),
        errs,
    );
    check_mac(
        &spec.vxlan_tunnel_mac_addr,
        &path.field("vxlanTunnelMACAddr"),
        errs,
    );
    check_ip(
        &spec.ipv6_vxlan_tunnel_addr,
        6,
        &path.field("ipv6VXLANTunnelAddr"),
        errs,
    );
    check_mac(
        &spec.vxlan_tunnel_mac_addr_v6,
        &path.field("vxlanTunnelMACAddrV6"),
        errs,
    );
    if let Some(wg) = &spec.wireguard {
        let p = path.field("wireguard");
        check_ip(
            &wg.interface_ipv4_address,
            4,
            &p.field("interfaceIPv4Address"),
            errs,
        );
        check_ip(
            &wg.interface_ipv6_address,
            6,
            &p.field("interfaceIPv6Address"),
            errs,
        );
    }
    for (i, a) in spec.addresses.iter().enumerate() {
        let p = path.field("addresses").index(i);
        if !netutil::is_masked_network(&a.address) {
            errs.push(
                &p.field("address"),
                format!("{:?} is not a valid IP or strictly masked CIDR", a.address),
            );
        }
        if !a.type_.is_empty() {
            netutil::check_enum(&a.type_, ADDRESS_TYPES, &p.field("type"), errs);
        }
    }
    for (i, iface) in spec.interfaces.iter().enumerate() {
        if !iface.name.is_empty() && !netutil::is_name(&iface.name) {
            errs.push(
                &path.field("interfaces").index(i).field("name"),
                format!("invalid interface name {:?}", iface.name),
            );
        }
    }
}

fn validate_node_status(status: &NodeStatus, path: &FieldPath, errs: &mut FieldErrors) {
    for (name, key) in [
        ("wireguardPublicKey", &status.wireguard_public_key),
        ("wireguardPublicKeyV6", &status.wireguard_public_key_v6),
    ] {
        if !key.is_empty() && !is_wireguard_key(key) {
            errs.push(
                &path.field(name),
                format!("{key:?} is not a valid WireGuard public key (base64 of 32 bytes)"),
            );
        }
    }
}

impl Node {
    /// The node's BGP IPv4 address without the prefix, if set and valid.
    pub fn ipv4_address(&self) -> Option<std::net::IpAddr> {
        let bgp = self.spec.bgp.as_ref()?;
        netutil::parse_cidr_or_ip(&bgp.ipv4_address).map(|c| c.addr)
    }
    /// The node's BGP IPv4 subnet (used for CrossSubnet decisions), if set and valid.
    pub fn ipv4_subnet(&self) -> Option<ipnet::IpNet> {
        let bgp = self.spec.bgp.as_ref()?;
        netutil::parse_cidr_or_ip(&bgp.ipv4_address).map(|c| c.network())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_forms() {
        for ok in [
            "66:cd:7a:39:c5:0b",
            "66-CD-7A-39-C5-0B",
            "66cd.7a39.c50b",
            "02:00:5e:10:00:00:00:01",
        ] {
            assert!(is_mac(ok), "{ok}");
        }
        for bad in ["66:cd:7a:39:c5", "66:cd:7a:39:c5:0g", "66cd7a39c50b", ""] {
            assert!(!is_mac(bad), "{bad}");
        }
    }

    #[test]
    fn wireguard_keys() {
        assert!(is_wireguard_key(
            "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXgY="
        ));
        assert!(!is_wireguard_key("foobar"));
        assert!(!is_wireguard_key(
            "jlkVyQYooZYzI2wFfNhSZez5eWh44yfq1wKVjLvSXg=="
        ));
    }

    #[test]
    fn status_always_written() {
        let n = Node {
            metadata: ObjectMeta::named("n"),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&n).ok(),
            Some(serde_json::json!({"metadata": {"name": "n"}, "spec": {}, "status": {}}))
        );
    }
}
