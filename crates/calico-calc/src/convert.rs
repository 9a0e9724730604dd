//! v3 endpoints and network sets → what the graph indexes, following libcalico-go's v3 → v1
//! update processors (`libcalico-go/lib/backend/syncersv1/updateprocessors/`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use calico_api::hostendpoint::HostEndpoint as V3HostEndpoint;
use calico_api::networkset::{GlobalNetworkSet, NetworkSet};
use calico_api::numorstring::Protocol;
use calico_api::workloadendpoint::{LABEL_NAMESPACE, WorkloadEndpoint as V3WorkloadEndpoint};
use calico_dataplane_model::{HostEndpoint, IpSetMember, WorkloadEndpoint, WorkloadEndpointId};
use calico_policy_rules::{
    LABEL_SERVICE_ACCOUNT, NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX, defaulted,
};
use ipnet::IpNet;

use crate::{CalcError, ResourceKey};

/// Profile name prefix of Kubernetes namespaces (`conversion.NamespaceProfileNamePrefix`).
pub(crate) const NAMESPACE_PROFILE_PREFIX: &str = "kns.";

/// A named port of an endpoint (`model.EndpointPort`), protocol as a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedPort {
    pub name: String,
    pub protocol: u8,
    pub port: u16,
}

/// The dataplane view of a local endpoint, without its tiers (the graph adds those).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LocalEndpoint {
    Workload(WorkloadEndpointId, WorkloadEndpoint),
    Host(String, HostEndpoint),
}

/// An endpoint or network set as the label and IP-set indexes see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ItemInput {
    /// The item's own labels (they win over inherited ones).
    pub own_labels: BTreeMap<String, String>,
    /// Profiles to inherit labels from, first wins (`label_inheritance_index.go`).
    pub parents: Vec<String>,
    /// What the item contributes to a selector IP set: addresses, or CIDRs for network sets.
    pub members: Vec<IpSetMember>,
    /// The addresses named-port sets pair with `ports` (endpoints only).
    pub ips: Vec<IpAddr>,
    pub ports: Vec<NamedPort>,
    /// Set for endpoints on this node.
    pub local: Option<LocalEndpoint>,
}

fn bad(key: &ResourceKey, field: &'static str, value: &str, reason: &str) -> CalcError {
    CalcError::BadValue {
        key: Box::new(key.clone()),
        field,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn rules_err(key: &ResourceKey) -> impl Fn(calico_policy_rules::RulesError) -> CalcError + '_ {
    move |source| CalcError::Rules {
        key: Box::new(key.clone()),
        source: Box::new(source),
    }
}

/// `cnet.ParseCIDROrIP` then `.Network()`: host bits cleared.
fn parse_network(key: &ResourceKey, field: &'static str, s: &str) -> Result<IpNet, CalcError> {
    calico_api::netutil::parse_cidr_or_ip(s)
        .and_then(|c| IpNet::new(c.addr, c.prefix_len).ok())
        .map(|n| n.trunc())
        .ok_or_else(|| bad(key, field, s, "not an IP address or CIDR"))
}

/// A port's protocol as Felix's named-port index keys it (`ipsetmember.ProtocolFrom`):
/// UDP, SCTP, and TCP for anything else. Validation only lets TCP/UDP/SCTP through.
fn port_protocol(p: &Protocol) -> u8 {
    match p.num_value() {
        Some(17) => 17,
        Some(132) => 132,
        Some(_) => 6,
        None => match p {
            Protocol::Name(n) if n.eq_ignore_ascii_case("udp") => 17,
            Protocol::Name(n) if n.eq_ignore_ascii_case("sctp") => 132,
            _ => 6,
        },
    }
}

/// A CIDR as a set member: host routes are plain addresses (so a selector set stays of kind
/// `Addresses` unless a wider CIDR is in it); `/0` becomes two `/1`s, as Felix's
/// `extractCIDRsFromNetworkSet` does because the kernel cannot hold a zero-length prefix.
pub(crate) fn net_members(net: IpNet) -> Vec<IpSetMember> {
    if net.prefix_len() == net.max_prefix_len() {
        return vec![IpSetMember::Address(net.addr())];
    }
    if net.prefix_len() == 0 {
        let halves = match net {
            IpNet::V4(_) => ["0.0.0.0/1", "128.0.0.0/1"],
            IpNet::V6(_) => ["::/1", "8000::/1"],
        };
        return halves
            .iter()
            .filter_map(|h| h.parse().ok())
            .map(IpSetMember::Net)
            .collect();
    }
    vec![IpSetMember::Net(net)]
}

/// `workloadendpointprocessor.go`. `None` when the endpoint has no `ipNetworks` (Calico
/// filters those out, so they behave as deleted).
pub(crate) fn workload_endpoint(
    key: &ResourceKey,
    wep: &V3WorkloadEndpoint,
    node: &str,
) -> Result<Option<ItemInput>, CalcError> {
    let wep = defaulted(wep).map_err(rules_err(key))?;
    let s = &wep.spec;
    if s.ip_networks.is_empty() {
        return Ok(None);
    }
    // `names.ConvertWorkloadEndpointV3KeyToV1Key`: the v1 key comes from the name's four
    // dash-separated parts; the workload ID is `<namespace>/<workload part>`.
    let name = &wep.metadata.name;
    let parts = calico_api::wepname::extract_dash_separated_params(name, 4)
        .filter(|_| !wep.metadata.namespace.is_empty())
        .ok_or_else(|| {
            bad(
                key,
                "metadata.name",
                name,
                "not <node>-<orchestrator>-<workload>-<endpoint> in a namespace",
            )
        })?;
    let id = WorkloadEndpointId {
        orchestrator_id: parts[1].clone(),
        workload_id: format!("{}/{}", wep.metadata.namespace, parts[2]),
        endpoint_id: parts[3].clone(),
    };
    let mut ipv4_nets = Vec::new();
    let mut ipv6_nets = Vec::new();
    for n in &s.ip_networks {
        let net = parse_network(key, "spec.ipNetworks", n)?;
        match net {
            IpNet::V4(_) => ipv4_nets.push(net),
            IpNet::V6(_) => ipv6_nets.push(net),
        }
    }
    let allow_spoofed_source_prefixes = s
        .allow_spoofed_source_prefixes
        .iter()
        .map(|p| parse_network(key, "spec.allowSpoofedSourcePrefixes", p))
        .collect::<Result<Vec<_>, _>>()?;
    // Labels: the `pcns.` / `pcsa.` labels are inherited from profiles, never stored on the
    // endpoint; the service account becomes a label.
    let mut labels: BTreeMap<String, String> = wep
        .metadata
        .labels
        .iter()
        .filter(|(k, _)| {
            !k.starts_with(NAMESPACE_LABEL_PREFIX) && !k.starts_with(SERVICE_ACCOUNT_LABEL_PREFIX)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !s.service_account_name.is_empty() {
        labels.insert(
            LABEL_SERVICE_ACCOUNT.to_string(),
            s.service_account_name.clone(),
        );
    }
    let ports = s
        .ports
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| NamedPort {
            name: p.name.clone(),
            protocol: port_protocol(&p.protocol),
            port: p.port,
        })
        .collect();
    // `extractCIDRsFromWorkloadEndpoint`: only the address of each network counts.
    let ips: Vec<IpAddr> = ipv4_nets
        .iter()
        .chain(&ipv6_nets)
        .map(IpNet::addr)
        .collect();
    let local = (s.node == node).then(|| {
        LocalEndpoint::Workload(
            id,
            WorkloadEndpoint {
                interface_name: s.interface_name.clone(),
                profile_ids: s.profiles.clone(),
                ipv4_nets: ipv4_nets.clone(),
                ipv6_nets: ipv6_nets.clone(),
                tiers: Vec::new(),
                allow_spoofed_source_prefixes,
            },
        )
    });
    Ok(Some(ItemInput {
        own_labels: labels,
        parents: s.profiles.clone(),
        members: ips.iter().copied().map(IpSetMember::Address).collect(),
        ips,
        ports,
        local,
    }))
}

/// `hostendpointprocessor.go`: key by name, `expectedIPs` are the addresses.
pub(crate) fn host_endpoint(
    key: &ResourceKey,
    hep: &V3HostEndpoint,
    node: &str,
) -> Result<ItemInput, CalcError> {
    let hep = defaulted(hep).map_err(rules_err(key))?;
    let s = &hep.spec;
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for ip in &s.expected_ips {
        let addr: IpAddr = ip
            .parse()
            .map_err(|_| bad(key, "spec.expectedIPs", ip, "not an IP address"))?;
        if addr.is_ipv4() {
            v4.push(addr);
        } else {
            v6.push(addr);
        }
    }
    let ips: Vec<IpAddr> = v4.iter().chain(&v6).copied().collect();
    let ports = s
        .ports
        .iter()
        .filter(|p| !p.name.is_empty())
        .map(|p| NamedPort {
            name: p.name.clone(),
            protocol: port_protocol(&p.protocol),
            port: p.port,
        })
        .collect();
    let local = (s.node == node).then(|| {
        LocalEndpoint::Host(
            hep.metadata.name.clone(),
            HostEndpoint {
                interface_name: s.interface_name.clone(),
                profile_ids: s.profiles.clone(),
                expected_ipv4_addrs: v4.clone(),
                expected_ipv6_addrs: v6.clone(),
                ..HostEndpoint::default()
            },
        )
    });
    Ok(ItemInput {
        own_labels: hep.metadata.labels.clone(),
        parents: s.profiles.clone(),
        members: ips.iter().copied().map(IpSetMember::Address).collect(),
        ips,
        ports,
        local,
    })
}

fn net_set_members(key: &ResourceKey, nets: &[String]) -> Result<Vec<IpSetMember>, CalcError> {
    let mut out = Vec::new();
    for n in nets {
        out.extend(net_members(parse_network(key, "spec.nets", n)?));
    }
    Ok(out)
}

/// `networksetprocessor.go`: the namespace label is added and the namespace's profile is
/// the parent, so namespace labels are inherited.
pub(crate) fn network_set(key: &ResourceKey, set: &NetworkSet) -> Result<ItemInput, CalcError> {
    let set = defaulted(set).map_err(rules_err(key))?;
    let ns = &set.metadata.namespace;
    let mut labels = set.metadata.labels.clone();
    labels.insert(LABEL_NAMESPACE.to_string(), ns.clone());
    Ok(ItemInput {
        own_labels: labels,
        parents: vec![format!("{NAMESPACE_PROFILE_PREFIX}{ns}")],
        members: net_set_members(key, &set.spec.nets)?,
        ips: Vec::new(),
        ports: Vec::new(),
        local: None,
    })
}

/// `networksetprocessor.go` for GlobalNetworkSet: labels as they are, no parent.
pub(crate) fn global_network_set(
    key: &ResourceKey,
    set: &GlobalNetworkSet,
) -> Result<ItemInput, CalcError> {
    let set = defaulted(set).map_err(rules_err(key))?;
    Ok(ItemInput {
        own_labels: set.metadata.labels.clone(),
        parents: Vec::new(),
        members: net_set_members(key, &set.spec.nets)?,
        ips: Vec::new(),
        ports: Vec::new(),
        local: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn net_members_split_zero_and_flatten_host_routes() {
        let m = net_members("10.0.0.1/32".parse().unwrap());
        assert_eq!(m, vec![IpSetMember::Address("10.0.0.1".parse().unwrap())]);
        let m = net_members("0.0.0.0/0".parse().unwrap());
        assert_eq!(
            m,
            vec![
                IpSetMember::Net("0.0.0.0/1".parse().unwrap()),
                IpSetMember::Net("128.0.0.0/1".parse().unwrap())
            ]
        );
        let m = net_members("::/0".parse().unwrap());
        assert_eq!(m.len(), 2);
        let m = net_members("10.1.0.0/16".parse().unwrap());
        assert_eq!(m, vec![IpSetMember::Net("10.1.0.0/16".parse().unwrap())]);
    }

    #[test]
    fn port_protocols() {
        assert_eq!(port_protocol(&Protocol::Name("UDP".into())), 17);
        assert_eq!(port_protocol(&Protocol::Name("SCTP".into())), 132);
        assert_eq!(port_protocol(&Protocol::Name("TCP".into())), 6);
        assert_eq!(port_protocol(&Protocol::Num(17)), 17);
    }
}
