//! HostEndpoint (`api/pkg/apis/projectcalico/v3/hostendpoint.go`): a host interface (or all of
//! the host, `interfaceName: "*"`) that policy applies to, plus [`EndpointPort`] (named ports)
//! and the Kubernetes port-name rule shared with WorkloadEndpoint.

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::numorstring::Protocol;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};
use crate::validation;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEndpoint {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: HostEndpointSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostEndpointSpec {
    /// The Calico node this endpoint belongs to (required).
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub node: String,
    /// `*` (all host traffic), an interface name, or empty (match by `expectedIPs`).
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub interface_name: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        rename = "expectedIPs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub expected_ips: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub profiles: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<EndpointPort>,
}

/// A named port of a host endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPort {
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub protocol: Protocol,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub port: u16,
}

/// Kubernetes `IsValidPortName` (IANA service name): ≤ 15 chars of `[-a-z0-9]`, at least one
/// letter, no `--`, no leading/trailing `-`. Returns every problem.
pub fn port_name_errors(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.len() > 15 {
        out.push("must be no more than 15 characters".to_string());
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".into());
    }
    if name.contains("--") {
        out.push("must not contain consecutive hyphens".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        out.push("must not begin or end with a hyphen".into());
    }
    out
}

/// Checks shared by host and workload endpoint ports: protocol valid and with ports, port > 0.
pub(crate) fn validate_port_common(
    protocol: &Protocol,
    port: u16,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if let Some(p) = protocol.problem() {
        errs.push(&path.field("protocol"), p);
    } else if !protocol.supports_ports() {
        errs.push(
            &path.field("protocol"),
            format!("protocol {protocol} does not support ports (must be TCP, UDP or SCTP)"),
        );
    }
    if port == 0 {
        errs.push(&path.field("port"), "port must be between 1 and 65535");
    }
}

/// Profile names and node names use the resource-name rule.
pub(crate) fn validate_names(list: &[String], path: &FieldPath, errs: &mut FieldErrors) {
    for (i, n) in list.iter().enumerate() {
        if !netutil::is_name(n) {
            errs.push(
                &path.index(i),
                format!(
                    "invalid name {n:?}: must consist of lower case alphanumeric characters, '-' \
                     or '.' (regex: {})",
                    validation::NAME_SUBDOMAIN_FMT
                ),
            );
        }
    }
}

impl CalicoResource for HostEndpoint {
    const KIND: &'static str = "HostEndpoint";

    crate::resource::metadata_accessors!();
    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        let spec = FieldPath::root().field("spec");
        let s = &self.spec;
        // CEL rules on HostEndpointSpec.
        if s.node.is_empty() {
            errs.push(&spec.field("node"), "node must be specified");
        } else {
            if s.node.len() > validation::DNS1123_SUBDOMAIN_MAX_LEN {
                errs.push(
                    &spec.field("node"),
                    "node name is longer than 253 characters",
                );
            }
            validate_names(std::slice::from_ref(&s.node), &spec.field("node"), errs);
        }
        if s.interface_name.is_empty() && s.expected_ips.is_empty() {
            errs.push(
                &spec.field("interfaceName"),
                "at least one of interfaceName or expectedIPs must be specified",
            );
        }
        if !s.interface_name.is_empty()
            && s.interface_name != "*"
            && !netutil::is_interface_name(&s.interface_name)
        {
            errs.push(
                &spec.field("interfaceName"),
                format!(
                    "invalid interface name {:?}: must be \"*\" or 1-15 characters of \
                     [a-zA-Z0-9_.-]",
                    s.interface_name
                ),
            );
        }
        for (i, ip) in s.expected_ips.iter().enumerate() {
            if netutil::parse_ip(ip).is_none() {
                errs.push(
                    &spec.field("expectedIPs").index(i),
                    format!("invalid IP address {ip:?}"),
                );
            }
        }
        validate_names(&s.profiles, &spec.field("profiles"), errs);
        let ports = spec.field("ports");
        for (i, p) in s.ports.iter().enumerate() {
            let pp = ports.index(i);
            for e in port_name_errors(&p.name) {
                errs.push(
                    &pp.field("name"),
                    format!("invalid port name {:?}: {e}", p.name),
                );
            }
            validate_port_common(&p.protocol, p.port, &pp, errs);
        }
    }
}
