//! Inputs of the evaluator: endpoints, packets, Felix settings that change verdicts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use calico_api::hostendpoint::HostEndpoint;
use calico_api::numorstring::Protocol;
use calico_api::workloadendpoint::{LABEL_NAMESPACE, LABEL_ORCHESTRATOR, WorkloadEndpoint};
use calico_policy_rules::{
    LABEL_SERVICE_ACCOUNT, NAMESPACE_LABEL_PREFIX, SERVICE_ACCOUNT_LABEL_PREFIX, parse_net,
};
use ipnet::IpNet;

use crate::error::EvalError;

/// Name label added to namespace / service-account profiles (`conversion.go`
/// `NamespaceToProfile`: `pcns.projectcalico.org/name`).
pub(crate) const NAME_LABEL: &str = "projectcalico.org/name";
/// Profile name prefixes of the Kubernetes conversion (`conversion.go`).
pub(crate) const NAMESPACE_PROFILE_PREFIX: &str = "kns.";
pub(crate) const SERVICE_ACCOUNT_PROFILE_PREFIX: &str = "ksa.";

/// Traffic direction relative to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Traffic arriving at the endpoint (`cali-tw-*` for workloads, `cali-fh-*` for hosts).
    Ingress,
    /// Traffic leaving the endpoint (`cali-fw-*` for workloads, `cali-th-*` for hosts).
    Egress,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// Workload (pod, VM) or host endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    Workload,
    Host,
}

/// A named port of an endpoint (`WorkloadEndpoint.spec.ports` / `HostEndpoint.spec.ports`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedPort {
    pub name: String,
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP).
    pub protocol: u8,
    pub port: u16,
}

/// One endpoint, the way Felix sees it.
///
/// Labels Felix matches selectors against are computed when the [`crate::PolicySet`] is built
/// (`felix/labelindex/label_inheritance_index.go`): the endpoint's own `labels` (plus the
/// labels Calico's client and update processors add, see [`crate::PolicySet`]) override the
/// labels its profiles apply, profiles earlier in `profiles` win over later ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Unique key; `<namespace>/<name>` for workloads built from resources, the name for hosts.
    pub key: String,
    pub kind: EndpointKind,
    /// The namespace of a workload endpoint.
    pub namespace: Option<String>,
    /// The endpoint's own labels.
    pub labels: BTreeMap<String, String>,
    /// The raw labels of the endpoint's Kubernetes namespace. They are what the derived
    /// `kns.<namespace>` profile applies (as `pcns.<k>`, plus `pcns.projectcalico.org/name`),
    /// unless a Profile of that name is given explicitly. As in Calico they reach an endpoint
    /// only through that profile, i.e. when `profiles` lists it (pods do). Empty means "not
    /// given here"; all non-empty sources for one namespace must agree.
    pub namespace_labels: BTreeMap<String, String>,
    /// The endpoint's Kubernetes service account.
    pub service_account: Option<String>,
    /// The raw labels of that service account (applied as `pcsa.<k>` by the derived
    /// `ksa.<namespace>.<sa>` profile).
    pub service_account_labels: BTreeMap<String, String>,
    /// Profile names, in order (label inheritance precedence and evaluation order).
    pub profiles: Vec<String>,
    /// Workload `ipNetworks` / host `expectedIPs`. Only the address of each entry counts:
    /// Felix ignores the prefix length (`felix/labelindex/named_port_index.go`
    /// `extractCIDRsFromWorkloadEndpoint`).
    pub addresses: Vec<IpNet>,
    pub named_ports: Vec<NamedPort>,
    /// The node the endpoint is on (`spec.node`). Only used to recognise traffic between a
    /// workload and its own host (see [`crate::Resources::host_addresses`]).
    pub node: Option<String>,
}

fn to_labels<K: Into<String>, V: Into<String>>(
    labels: impl IntoIterator<Item = (K, V)>,
) -> BTreeMap<String, String> {
    labels
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

fn parse_addresses<S: AsRef<str>>(
    owner: &str,
    addresses: impl IntoIterator<Item = S>,
) -> Result<Vec<IpNet>, EvalError> {
    addresses
        .into_iter()
        .map(|a| Ok(parse_net(owner, "address", a.as_ref())?))
        .collect()
}

/// [`protocol_number`] with the evaluator's error type.
fn protocol_number(owner: &str, p: &Protocol) -> Result<u8, EvalError> {
    Ok(calico_policy_rules::protocol_number(owner, p)?)
}

impl Endpoint {
    /// A Kubernetes pod as Calico's pod → WorkloadEndpoint conversion produces it
    /// (`libcalico-go/lib/backend/k8s/conversion/workload_endpoint_default.go`): profile
    /// `kns.<namespace>`, label `projectcalico.org/orchestrator=k8s`. The namespace label
    /// `projectcalico.org/namespace` is added when the set is built.
    pub fn pod<K, V, S>(
        key: &str,
        namespace: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<Endpoint, EvalError>
    where
        K: Into<String>,
        V: Into<String>,
        S: AsRef<str>,
    {
        let mut labels = to_labels(labels);
        labels.insert(LABEL_ORCHESTRATOR.to_string(), "k8s".to_string());
        Ok(Endpoint {
            key: key.to_string(),
            kind: EndpointKind::Workload,
            namespace: Some(namespace.to_string()),
            labels,
            namespace_labels: BTreeMap::new(),
            service_account: None,
            service_account_labels: BTreeMap::new(),
            profiles: vec![format!("{NAMESPACE_PROFILE_PREFIX}{namespace}")],
            addresses: parse_addresses(key, addresses)?,
            named_ports: Vec::new(),
            node: None,
        })
    }

    /// A workload endpoint without any profile (a non-Kubernetes workload): with no policy
    /// applying to it, all its traffic is denied ("Drop if no profiles matched").
    pub fn workload<K, V, S>(
        key: &str,
        namespace: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<Endpoint, EvalError>
    where
        K: Into<String>,
        V: Into<String>,
        S: AsRef<str>,
    {
        let mut ep = Endpoint::pod(key, namespace, labels, addresses)?;
        ep.labels.remove(LABEL_ORCHESTRATOR);
        ep.profiles.clear();
        Ok(ep)
    }

    /// A host endpoint identified by its expected IPs, without profiles.
    pub fn host<K, V, S>(
        key: &str,
        labels: impl IntoIterator<Item = (K, V)>,
        addresses: impl IntoIterator<Item = S>,
    ) -> Result<Endpoint, EvalError>
    where
        K: Into<String>,
        V: Into<String>,
        S: AsRef<str>,
    {
        Ok(Endpoint {
            key: key.to_string(),
            kind: EndpointKind::Host,
            namespace: None,
            labels: to_labels(labels),
            namespace_labels: BTreeMap::new(),
            service_account: None,
            service_account_labels: BTreeMap::new(),
            profiles: Vec::new(),
            addresses: parse_addresses(key, addresses)?,
            named_ports: Vec::new(),
            node: None,
        })
    }

    /// Sets the namespace labels (see [`Endpoint::namespace_labels`]).
    pub fn with_namespace_labels<K: Into<String>, V: Into<String>>(
        mut self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Endpoint {
        self.namespace_labels = to_labels(labels);
        self
    }

    /// Sets the service account and its labels and, like the pod conversion, appends the
    /// profile `ksa.<namespace>.<sa>`.
    pub fn with_service_account<K: Into<String>, V: Into<String>>(
        mut self,
        name: &str,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Endpoint {
        self.service_account = Some(name.to_string());
        self.service_account_labels = to_labels(labels);
        if let Some(ns) = &self.namespace {
            let profile = format!("{SERVICE_ACCOUNT_PROFILE_PREFIX}{ns}.{name}");
            if !self.profiles.contains(&profile) {
                self.profiles.push(profile);
            }
        }
        self
    }

    /// Adds a named port.
    pub fn with_named_port(mut self, name: &str, protocol: u8, port: u16) -> Endpoint {
        self.named_ports.push(NamedPort {
            name: name.to_string(),
            protocol,
            port,
        });
        self
    }

    /// Sets the node the endpoint is on.
    pub fn with_node(mut self, node: &str) -> Endpoint {
        self.node = Some(node.to_string());
        self
    }

    /// Replaces the profile list.
    pub fn with_profiles<S: Into<String>>(
        mut self,
        profiles: impl IntoIterator<Item = S>,
    ) -> Endpoint {
        self.profiles = profiles.into_iter().map(Into::into).collect();
        self
    }

    /// From a v3 WorkloadEndpoint (key `<namespace>/<name>`), as
    /// `updateprocessors/workloadendpointprocessor.go` converts it: only named ports are
    /// kept, `ipNetworks` are the addresses, the profiles are `spec.profiles`.
    pub fn from_workload_endpoint(wep: &WorkloadEndpoint) -> Result<Endpoint, EvalError> {
        let key = format!("{}/{}", wep.metadata.namespace, wep.metadata.name);
        let mut named_ports = Vec::new();
        for p in &wep.spec.ports {
            // "The v1 API doesn't yet support ports which have no name."
            if p.name.is_empty() {
                continue;
            }
            named_ports.push(NamedPort {
                name: p.name.clone(),
                protocol: protocol_number(&key, &p.protocol)?,
                port: p.port,
            });
        }
        let mut labels = wep.metadata.labels.clone();
        if !wep.spec.orchestrator.is_empty() {
            // clientv3/workloadendpoint.go updateLabelsForStorage.
            labels.insert(
                LABEL_ORCHESTRATOR.to_string(),
                wep.spec.orchestrator.clone(),
            );
        }
        Ok(Endpoint {
            key: key.clone(),
            kind: EndpointKind::Workload,
            namespace: Some(wep.metadata.namespace.clone()),
            labels,
            namespace_labels: BTreeMap::new(),
            service_account: (!wep.spec.service_account_name.is_empty())
                .then(|| wep.spec.service_account_name.clone()),
            service_account_labels: BTreeMap::new(),
            profiles: wep.spec.profiles.clone(),
            addresses: parse_addresses(&key, &wep.spec.ip_networks)?,
            named_ports,
            node: (!wep.spec.node.is_empty()).then(|| wep.spec.node.clone()),
        })
    }

    /// From a v3 HostEndpoint (key = its name): `expectedIPs` are the addresses.
    pub fn from_host_endpoint(hep: &HostEndpoint) -> Result<Endpoint, EvalError> {
        let key = hep.metadata.name.clone();
        let mut named_ports = Vec::new();
        for p in &hep.spec.ports {
            named_ports.push(NamedPort {
                name: p.name.clone(),
                protocol: protocol_number(&key, &p.protocol)?,
                port: p.port,
            });
        }
        Ok(Endpoint {
            key: key.clone(),
            kind: EndpointKind::Host,
            namespace: None,
            labels: hep.metadata.labels.clone(),
            namespace_labels: BTreeMap::new(),
            service_account: None,
            service_account_labels: BTreeMap::new(),
            profiles: hep.spec.profiles.clone(),
            addresses: parse_addresses(&key, &hep.spec.expected_ips)?,
            named_ports,
            node: (!hep.spec.node.is_empty()).then(|| hep.spec.node.clone()),
        })
    }

    /// The endpoint's own labels as Felix stores them: Calico's client sets
    /// `projectcalico.org/namespace` on workload endpoints (`clientv3/workloadendpoint.go`
    /// `updateLabelsForStorage`); the WEP update processor drops user labels starting `pcns.` /
    /// `pcsa.` and sets `projectcalico.org/serviceaccount`
    /// (`updateprocessors/workloadendpointprocessor.go`).
    pub(crate) fn stored_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.clone();
        if self.kind == EndpointKind::Workload {
            labels.retain(|k, _| {
                !k.starts_with(NAMESPACE_LABEL_PREFIX)
                    && !k.starts_with(SERVICE_ACCOUNT_LABEL_PREFIX)
            });
            if let Some(ns) = &self.namespace {
                labels.insert(LABEL_NAMESPACE.to_string(), ns.clone());
            }
            if let Some(sa) = &self.service_account {
                labels.insert(LABEL_SERVICE_ACCOUNT.to_string(), sa.clone());
            }
        }
        labels
    }
}

/// A packet (the first of a flow: connection tracking is not modelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol number.
    pub protocol: u8,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
}

/// Source port used by the convenience constructors.
pub const DEFAULT_SRC_PORT: u16 = 40_000;

fn parse_ip(s: &str) -> Result<IpAddr, EvalError> {
    s.parse().map_err(|_| EvalError::BadValue {
        owner: "packet".to_string(),
        field: "address",
        value: s.to_string(),
    })
}

impl Packet {
    /// A packet of any protocol without ports or ICMP fields.
    pub fn new(src: IpAddr, dst: IpAddr, protocol: u8) -> Packet {
        Packet {
            src,
            dst,
            protocol,
            src_port: None,
            dst_port: None,
            icmp_type: None,
            icmp_code: None,
        }
    }

    fn with_ports(src: &str, dst: &str, protocol: u8, dst_port: u16) -> Result<Packet, EvalError> {
        let mut p = Packet::new(parse_ip(src)?, parse_ip(dst)?, protocol);
        p.src_port = Some(DEFAULT_SRC_PORT);
        p.dst_port = Some(dst_port);
        Ok(p)
    }

    /// TCP from [`DEFAULT_SRC_PORT`] to `dst_port`.
    pub fn tcp(src: &str, dst: &str, dst_port: u16) -> Result<Packet, EvalError> {
        Packet::with_ports(src, dst, 6, dst_port)
    }

    /// UDP from [`DEFAULT_SRC_PORT`] to `dst_port`.
    pub fn udp(src: &str, dst: &str, dst_port: u16) -> Result<Packet, EvalError> {
        Packet::with_ports(src, dst, 17, dst_port)
    }

    /// SCTP from [`DEFAULT_SRC_PORT`] to `dst_port`.
    pub fn sctp(src: &str, dst: &str, dst_port: u16) -> Result<Packet, EvalError> {
        Packet::with_ports(src, dst, 132, dst_port)
    }

    /// ICMP (IPv4) or ICMPv6 (IPv6), by the address family.
    pub fn icmp(src: &str, dst: &str, icmp_type: u8, icmp_code: u8) -> Result<Packet, EvalError> {
        let (s, d) = (parse_ip(src)?, parse_ip(dst)?);
        let proto = if s.is_ipv4() { 1 } else { 58 };
        let mut p = Packet::new(s, d, proto);
        p.icmp_type = Some(icmp_type);
        p.icmp_code = Some(icmp_code);
        Ok(p)
    }

    /// Replaces the source port.
    pub fn with_src_port(mut self, port: u16) -> Packet {
        self.src_port = Some(port);
        self
    }

    /// 4 or 6.
    pub fn ip_version(&self) -> u8 {
        if self.src.is_ipv4() { 4 } else { 6 }
    }

    /// The ICMP protocol number of the packet's family (1 or 58).
    pub(crate) fn family_icmp(&self) -> u8 {
        if self.src.is_ipv4() { 1 } else { 58 }
    }
}

impl fmt::Display for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proto {} {}", self.protocol, self.src)?;
        if let Some(p) = self.src_port {
            write!(f, ":{p}")?;
        }
        write!(f, " -> {}", self.dst)?;
        if let Some(p) = self.dst_port {
            write!(f, ":{p}")?;
        }
        if let Some(t) = self.icmp_type {
            write!(f, " icmp {t}/{}", self.icmp_code.unwrap_or(0))?;
        }
        Ok(())
    }
}

/// A failsafe entry (`felix/config` `ProtoPort`): protocol, port, optional source/destination
/// net.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoPort {
    pub protocol: u8,
    pub port: u16,
    pub net: Option<IpNet>,
}

impl ProtoPort {
    fn list(entries: &[(u8, u16)]) -> Vec<ProtoPort> {
        entries
            .iter()
            .map(|&(protocol, port)| ProtoPort {
                protocol,
                port,
                net: None,
            })
            .collect()
    }
}

/// Felix settings that change verdicts. Defaults are Felix's (`felix/config/config_params.go`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalConfig {
    /// `FailsafeInboundHostPorts`: default
    /// `tcp:22,udp:68,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667`.
    pub failsafe_inbound: Vec<ProtoPort>,
    /// `FailsafeOutboundHostPorts`: default
    /// `udp:53,udp:67,tcp:179,tcp:2379,tcp:2380,tcp:5473,tcp:6443,tcp:6666,tcp:6667`.
    pub failsafe_outbound: Vec<ProtoPort>,
    /// `AllowVXLANPacketsFromWorkloads` (default false).
    pub allow_vxlan_packets_from_workloads: bool,
    /// `AllowIPIPPacketsFromWorkloads` (default false).
    pub allow_ipip_packets_from_workloads: bool,
    /// `VXLANPort` (default 4789).
    pub vxlan_port: u16,
    /// `DefaultEndpointToHostAction` (default `DROP`): what happens to a packet from a
    /// workload to its own host after the workload's egress policy allowed it.
    pub default_endpoint_to_host_action: EndpointToHostAction,
}

/// Felix `DefaultEndpointToHostAction` (`felix/rules/static.go`
/// `filterWorkloadToHostChain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointToHostAction {
    /// Drop (Felix's default).
    Drop,
    /// Return to the host's own INPUT chain: Calico does not block the packet (host endpoint
    /// policy in `cali-INPUT` is skipped, the chain is left with a goto).
    Return,
    /// Accept.
    Accept,
}

impl Default for EvalConfig {
    fn default() -> Self {
        const TCP: u8 = 6;
        const UDP: u8 = 17;
        EvalConfig {
            failsafe_inbound: ProtoPort::list(&[
                (TCP, 22),
                (UDP, 68),
                (TCP, 179),
                (TCP, 2379),
                (TCP, 2380),
                (TCP, 5473),
                (TCP, 6443),
                (TCP, 6666),
                (TCP, 6667),
            ]),
            failsafe_outbound: ProtoPort::list(&[
                (UDP, 53),
                (UDP, 67),
                (TCP, 179),
                (TCP, 2379),
                (TCP, 2380),
                (TCP, 5473),
                (TCP, 6443),
                (TCP, 6666),
                (TCP, 6667),
            ]),
            allow_vxlan_packets_from_workloads: false,
            allow_ipip_packets_from_workloads: false,
            vxlan_port: 4789,
            default_endpoint_to_host_action: EndpointToHostAction::Drop,
        }
    }
}
