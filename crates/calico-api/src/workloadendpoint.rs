//! WorkloadEndpoint (`libcalico-go/lib/apis/internalapi/workloadendpoint.go`): a pod's (or VM's)
//! interface as the CNI plugin and orchestrator integrations record it. Validation is Calico's
//! field tags plus `validateWorkloadEndpointSpec`, `validateWorkloadEndpointPort` and
//! `validateIPNAT` (this kind has no CRD, so there are no CEL rules).

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::hostendpoint::{port_name_errors, validate_names, validate_port_common};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::numorstring::{Dscp, Protocol};
use crate::resource::{CalicoResource, validate_namespaced_meta};
use crate::wepname::WorkloadEndpointIdentifiers;

/// Labels Calico's client adds to every stored WorkloadEndpoint.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";
pub const LABEL_ORCHESTRATOR: &str = "projectcalico.org/orchestrator";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpoint {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: WorkloadEndpointSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpointSpec {
    /// `k8s`, `cni`, `libnetwork`, `openstack`.
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub orchestrator: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub workload: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub node: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "containerID",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub pod: String,
    /// e.g. `eth0`.
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub endpoint: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub service_account_name: String,
    /// The endpoint's addresses, each a /32 or /128.
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "ipNetworks",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_networks: Vec<String>,
    /// Floating IPs (1:1 NAT).
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "ipNATs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_nats: Vec<IpNat>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "ipv4Gateway",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv4_gateway: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "ipv6Gateway",
        skip_serializing_if = "String::is_empty"
    )]
    pub ipv6_gateway: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub profiles: Vec<String>,
    /// The host side of the veth (e.g. `cali1234567890a`); required.
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_name: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub mac: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<WorkloadEndpointPort>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub allow_spoofed_source_prefixes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos_controls: Option<QosControls>,
}

/// A named and/or host-mapped port of a workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadEndpointPort {
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub protocol: Protocol,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub port: u16,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub host_port: u16,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "hostIP"
    )]
    pub host_ip: String,
}

/// A floating IP mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IpNat {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "internalIP"
    )]
    pub internal_ip: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "externalIP"
    )]
    pub external_ip: String,
}

/// Bandwidth, packet-rate, connection limits and DSCP marking for a workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QosControls {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub ingress_bandwidth: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub ingress_burst: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub ingress_peakrate: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub ingress_minburst: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub egress_bandwidth: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub egress_burst: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub egress_peakrate: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub egress_minburst: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub ingress_packet_rate: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub ingress_packet_burst: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub egress_packet_rate: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub egress_packet_burst: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub ingress_max_connections: i64,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "is_zero"
    )]
    pub egress_max_connections: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dscp: Option<Dscp>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Calico's `containerIDRegex` `^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$`.
pub fn is_container_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `xx:xx:..`, `xx-xx-..` or `xxxx.xxxx.xxxx`.
pub fn is_mac(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let octets = |count: usize| matches!(count, 6 | 8 | 20);
    for sep in [':', '-'] {
        if s.contains(sep) {
            let parts: Vec<&str> = s.split(sep).collect();
            return octets(parts.len()) && parts.iter().all(|p| hex(p, 2));
        }
    }
    if s.contains('.') {
        let parts: Vec<&str> = s.split('.').collect();
        return octets(parts.len() * 2) && parts.iter().all(|p| hex(p, 4));
    }
    false
}

impl WorkloadEndpoint {
    /// The identifiers the name is built from (Calico `IdentifiersForV3WorkloadEndpoint`).
    pub fn identifiers(&self) -> WorkloadEndpointIdentifiers {
        let s = &self.spec;
        WorkloadEndpointIdentifiers {
            node: s.node.clone(),
            orchestrator: s.orchestrator.clone(),
            endpoint: s.endpoint.clone(),
            workload: s.workload.clone(),
            pod: s.pod.clone(),
            container_id: s.container_id.clone(),
        }
    }

    /// Calico's client `assignOrValidateName` check: the name must be the one the identifiers
    /// produce (an empty name is filled in by `apply_defaults`).
    fn validate_name(&self, errs: &mut FieldErrors) {
        match self.identifiers().calculate_name(false) {
            Err(e) => errs.push(&FieldPath::root().field("spec").field(e.field), e.message),
            Ok(expected) if expected != self.metadata.name => errs.push(
                &FieldPath::root().field("metadata").field("name"),
                format!(
                    "the WorkloadEndpoint name does not match the primary identifiers assigned \
                     in the Spec: expected name {expected}"
                ),
            ),
            Ok(_) => {}
        }
    }
}

impl CalicoResource for WorkloadEndpoint {
    const KIND: &'static str = "WorkloadEndpoint";

    crate::resource::metadata_accessors!();
    /// Calico's client names an unnamed endpoint from its identifiers and adds the namespace
    /// and orchestrator labels before storing (`clientv3/workloadendpoint.go`).
    fn apply_defaults(&mut self) {
        if self.metadata.name.is_empty()
            && let Ok(name) = self.identifiers().calculate_name(false)
        {
            self.metadata.name = name;
        }
        let ns = self.metadata.namespace.clone();
        let orch = self.spec.orchestrator.clone();
        self.metadata.labels.insert(LABEL_NAMESPACE.into(), ns);
        self.metadata.labels.insert(LABEL_ORCHESTRATOR.into(), orch);
    }
    fn validate(&self, errs: &mut FieldErrors) {
        validate_namespaced_meta(&self.metadata, errs);
        self.validate_name(errs);
        let spec = FieldPath::root().field("spec");
        let s = &self.spec;
        for (field, v) in [
            ("orchestrator", &s.orchestrator),
            ("workload", &s.workload),
            ("node", &s.node),
            ("pod", &s.pod),
            ("endpoint", &s.endpoint),
            ("serviceAccountName", &s.service_account_name),
        ] {
            if !v.is_empty() {
                validate_names(std::slice::from_ref(v), &spec.field(field), errs);
            }
        }
        if !s.container_id.is_empty() && !is_container_id(&s.container_id) {
            errs.push(
                &spec.field("containerID"),
                format!(
                    "invalid container ID {:?}: must match [a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?",
                    s.container_id
                ),
            );
        }
        let nets_path = spec.field("ipNetworks");
        let mut networks = Vec::new();
        for (i, n) in s.ip_networks.iter().enumerate() {
            match netutil::parse_cidr_or_ip(n) {
                None => errs.push(&nets_path.index(i), format!("invalid CIDR {n:?}")),
                Some(c) => {
                    if !c.is_masked() {
                        errs.push(
                            &nets_path.index(i),
                            format!("invalid network {n:?}: host bits are set"),
                        );
                    }
                    // Only single addresses are supported (Calico validateWorkloadEndpointSpec).
                    if c.prefix_len != c.network().max_prefix_len() {
                        errs.push(
                            &nets_path.index(i),
                            format!("IP network {n} contains multiple addresses"),
                        );
                    }
                    networks.push(c.network());
                }
            }
        }
        let nats_path = spec.field("ipNATs");
        for (i, nat) in s.ip_nats.iter().enumerate() {
            let np = nats_path.index(i);
            let int = netutil::parse_ip(&nat.internal_ip);
            let ext = netutil::parse_ip(&nat.external_ip);
            if int.is_none() {
                errs.push(
                    &np.field("internalIP"),
                    format!("invalid IP address {:?}", nat.internal_ip),
                );
            }
            if ext.is_none() {
                errs.push(
                    &np.field("externalIP"),
                    format!("invalid IP address {:?}", nat.external_ip),
                );
            }
            if let (Some(a), Some(b)) = (int, ext) {
                if netutil::ip_version(&a) != netutil::ip_version(&b) {
                    errs.push(&np.field("externalIP"), "mismatched IP versions");
                }
                if !networks.iter().any(|n| n.contains(&a)) {
                    errs.push(
                        &np.field("internalIP"),
                        "NAT is not in the endpoint networks",
                    );
                }
            }
        }
        for (field, v, want) in [
            ("ipv4Gateway", &s.ipv4_gateway, 4),
            ("ipv6Gateway", &s.ipv6_gateway, 6),
        ] {
            if v.is_empty() {
                continue;
            }
            if netutil::parse_ip(v).is_none_or(|ip| netutil::ip_version(&ip) != want) {
                errs.push(
                    &spec.field(field),
                    format!("invalid IPv{want} gateway address {v:?}"),
                );
            }
        }
        validate_names(&s.profiles, &spec.field("profiles"), errs);
        // Calico's `interface` tag has no omitempty: the interface name is required.
        if !netutil::is_interface_name(&s.interface_name) {
            errs.push(
                &spec.field("interfaceName"),
                format!(
                    "invalid interface name {:?}: must be 1-15 characters of [a-zA-Z0-9_.-]",
                    s.interface_name
                ),
            );
        }
        if !s.mac.is_empty() && !is_mac(&s.mac) {
            errs.push(
                &spec.field("mac"),
                format!("invalid MAC address {:?}", s.mac),
            );
        }
        let ports = spec.field("ports");
        for (i, p) in s.ports.iter().enumerate() {
            let pp = ports.index(i);
            if p.name.is_empty() {
                if p.host_port == 0 {
                    errs.push(
                        &pp.field("name"),
                        "WorkloadEndpointPort name must not be empty if no HostPort is specified",
                    );
                }
            } else {
                for e in port_name_errors(&p.name) {
                    errs.push(
                        &pp.field("name"),
                        format!("invalid port name {:?}: {e}", p.name),
                    );
                }
            }
            validate_port_common(&p.protocol, p.port, &pp, errs);
            if !p.host_ip.is_empty() && !netutil::is_masked_network(&p.host_ip) {
                errs.push(
                    &pp.field("hostIP"),
                    format!("invalid host IP {:?}", p.host_ip),
                );
            }
        }
        let spoof = spec.field("allowSpoofedSourcePrefixes");
        for (i, n) in s.allow_spoofed_source_prefixes.iter().enumerate() {
            if netutil::parse_cidr_or_ip(n).is_none() {
                errs.push(&spoof.index(i), format!("invalid CIDR {n:?}"));
            }
        }
        // `qosControls.dscp` is not checked here: Calico's validator leaves it to the CNI plugin
        // (`Dscp::problem` is what that check uses).
    }
}
