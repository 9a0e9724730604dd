//! What Felix needs from the datastore, decoded leniently: one bad record is logged and skipped
//! (as Felix's syncer does), never allowed to stop the dataplane of every other workload.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

/// Key prefix of every v3 WorkloadEndpoint (`/calico/resources/v3/projectcalico.org/workloadendpoints/<ns>/<name>`).
pub const WEP_PREFIX: &str = "/calico/resources/v3/projectcalico.org/workloadendpoints/";
/// Key prefix of every IPAM block (`/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26`).
pub const BLOCK_PREFIX: &str = "/calico/ipam/v2/assignment/";

/// A workload endpoint on this node, as far as routing is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoint {
    /// The datastore key (identity of the endpoint).
    pub key: String,
    /// Host-side interface (`cali…`).
    pub interface: String,
    /// The workload's addresses (Calico stores them as `/32` / `/128` networks).
    pub networks: Vec<IpNet>,
    /// The container-side MAC, for the permanent neighbour entry Felix programs.
    pub mac: Option<[u8; 6]>,
}

/// Why a record was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SkippedRecord {
    pub key: String,
    pub message: String,
}

/// What a WorkloadEndpoint record means to this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointRecord {
    /// Lives on this node.
    Local(LocalEndpoint),
    /// Lives on another node (counted cluster-wide, not routed here).
    Remote,
}

/// Decodes a stored WorkloadEndpoint (v3 JSON) for node `node`.
pub fn decode_endpoint(
    key: &str,
    value: &[u8],
    node: &str,
) -> Result<EndpointRecord, SkippedRecord> {
    let skip = |message: String| SkippedRecord {
        key: key.to_string(),
        message,
    };
    let v: Value = serde_json::from_slice(value).map_err(|e| skip(format!("invalid JSON: {e}")))?;
    let spec = v
        .get("spec")
        .and_then(Value::as_object)
        .ok_or_else(|| skip("no spec object".into()))?;
    let str_field = |name: &str| spec.get(name).and_then(Value::as_str).unwrap_or("");
    if str_field("node") != node {
        return Ok(EndpointRecord::Remote);
    }
    let interface = str_field("interfaceName").to_string();
    if interface.is_empty() {
        return Err(skip("spec.interfaceName is empty".into()));
    }
    let mut networks = Vec::new();
    if let Some(list) = spec.get("ipNetworks") {
        let list = list
            .as_array()
            .ok_or_else(|| skip("spec.ipNetworks is not a list".into()))?;
        for (i, n) in list.iter().enumerate() {
            let text = n
                .as_str()
                .ok_or_else(|| skip(format!("spec.ipNetworks[{i}] is not a string")))?;
            networks.push(parse_network(text).ok_or_else(|| {
                skip(format!(
                    "spec.ipNetworks[{i}]: {text:?} is not an IP network"
                ))
            })?);
        }
    }
    let mac = match str_field("mac") {
        "" => None,
        text => Some(
            parse_mac(text)
                .ok_or_else(|| skip(format!("spec.mac: {text:?} is not a MAC address")))?,
        ),
    };
    Ok(EndpointRecord::Local(LocalEndpoint {
        key: key.to_string(),
        interface,
        networks,
        mac,
    }))
}

/// `10.0.0.1/32`, or a bare address (Calico accepts both in `ipNetworks`).
pub fn parse_network(text: &str) -> Option<IpNet> {
    if let Ok(n) = text.parse::<IpNet>() {
        return Some(n);
    }
    text.parse::<IpAddr>().ok().map(IpNet::from)
}

/// `ee:ee:ee:ee:ee:ee` (also `-` separated, any case).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Decodes a stored IPAM block: `Some(cidr)` when its affinity is `host:<node>`.
pub fn decode_block(key: &str, value: &[u8], node: &str) -> Result<Option<IpNet>, SkippedRecord> {
    let skip = |message: String| SkippedRecord {
        key: key.to_string(),
        message,
    };
    let block: calico_ipam::AllocationBlock =
        serde_json::from_slice(value).map_err(|e| skip(format!("invalid block: {e}")))?;
    if block.deleted {
        return Ok(None);
    }
    let local = match block.affinity.as_deref() {
        Some(affinity) => affinity.strip_prefix("host:") == Some(node),
        // The deprecated `hostAffinity: <node>` form.
        None => block.host_affinity.as_deref() == Some(node),
    };
    Ok(local.then_some(block.cidr))
}

/// Everything the route manager needs, keyed for cheap updates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalState {
    /// Local endpoints by datastore key.
    pub endpoints: BTreeMap<String, LocalEndpoint>,
    /// Number of endpoints cluster-wide (for `felix_cluster_num_workload_endpoints`).
    pub cluster_endpoints: usize,
    /// Affine blocks of this node by block key.
    pub blocks: BTreeMap<String, IpNet>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wep(node: &str, iface: &str, nets: &str, mac: &str) -> Vec<u8> {
        format!(
            r#"{{"apiVersion":"projectcalico.org/v3","kind":"WorkloadEndpoint","metadata":{{"name":"n1-k8s-p-eth0","namespace":"default"}},
            "spec":{{"node":"{node}","interfaceName":"{iface}","ipNetworks":{nets},"mac":"{mac}"}}}}"#
        )
        .into_bytes()
    }

    #[test]
    fn local_and_remote_endpoints() {
        let v = wep(
            "n1",
            "cali9ee09c33a93",
            r#"["10.244.220.81/32","fd00::1"]"#,
            "aa:bb:cc:dd:ee:ff",
        );
        let got = decode_endpoint("k", &v, "n1").unwrap();
        let EndpointRecord::Local(ep) = got else {
            panic!("expected local")
        };
        assert_eq!(ep.interface, "cali9ee09c33a93");
        assert_eq!(ep.networks[0].to_string(), "10.244.220.81/32");
        assert_eq!(ep.networks[1].to_string(), "fd00::1/128");
        assert_eq!(ep.mac, Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]));
        assert_eq!(
            decode_endpoint("k", &v, "n2").unwrap(),
            EndpointRecord::Remote
        );
    }

    #[test]
    fn bad_endpoints_name_the_field() {
        let cases = [
            (b"not json".to_vec(), "invalid JSON"),
            (br#"{"spec":5}"#.to_vec(), "no spec"),
            (wep("n1", "", "[]", ""), "interfaceName"),
            (wep("n1", "cali1", r#"["x"]"#, ""), "ipNetworks[0]"),
            (wep("n1", "cali1", r#""10.0.0.1""#, ""), "not a list"),
            (wep("n1", "cali1", "[]", "zz"), "spec.mac"),
        ];
        for (value, want) in cases {
            let err = decode_endpoint("key1", &value, "n1").unwrap_err();
            assert!(err.to_string().contains(want), "{err} lacks {want}");
            assert!(err.to_string().starts_with("key1: "));
        }
    }

    #[test]
    fn mac_parsing() {
        assert_eq!(parse_mac("EE-ee-EE-ee-EE-ee"), Some([0xee; 6]));
        for bad in [
            "",
            "ee:ee:ee:ee:ee",
            "ee:ee:ee:ee:ee:ee:ee",
            "e:ee:ee:ee:ee:eee",
            "gg:ee:ee:ee:ee:ee",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn blocks_by_affinity() {
        let block = |aff: &str| {
            format!(
                r#"{{"cidr":"10.0.0.0/26","affinity":{aff},"allocations":[],"unallocated":[],"attributes":null,"deleted":false}}"#
            )
            .into_bytes()
        };
        let k = "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26";
        assert_eq!(
            decode_block(k, &block(r#""host:n1""#), "n1").unwrap(),
            Some("10.0.0.0/26".parse().unwrap())
        );
        assert_eq!(decode_block(k, &block(r#""host:n2""#), "n1").unwrap(), None);
        assert_eq!(
            decode_block(k, &block(r#""virtual:n1""#), "n1").unwrap(),
            None
        );
        assert_eq!(decode_block(k, &block("null"), "n1").unwrap(), None);
        assert!(decode_block(k, b"{}", "n1").is_err());
    }
}
