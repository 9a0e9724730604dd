//! BGPConfiguration (`api/pkg/apis/projectcalico/v3/bgpconfig.go`): cluster BGP settings. The
//! object named `default` holds the global values; `node.<nodename>` objects override a subset
//! for one node.
//!
//! Defaulting is the CRD schema's (`logSeverityScreen: Info`, `serviceLoadBalancerAggregation:
//! Enabled`), which Calico applies in etcd mode too. Validation combines
//! `validateBGPConfigurationSpec` (`libcalico-go/lib/validator/v3/validator.go`), the Go field
//! tags, the CRD schema/CEL rules, and `ValidateDefaultOnlyFields` from
//! `libcalico-go/lib/clientv3/bgpconfig.go`.

use serde::{Deserialize, Serialize};

use crate::asnumber::ASNumber;
use crate::duration::Duration;
use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};

pub const BIND_MODES: &[&str] = &["None", "NodeIP"];
pub const SERVICE_LB_AGGREGATION: &[&str] = &["Enabled", "Disabled"];
pub const PROGRAM_CLUSTER_ROUTES: &[&str] = &[
    "Enabled",
    "Disabled",
    "EnabledIPIPOnly",
    "EnabledNoEncapOnly",
];
/// Log levels accepted (case-insensitively) by the `^(?i)(Trace|Debug|Info|Warning|Error|Fatal)?$`
/// schema pattern.
pub const LOG_LEVELS: &[&str] = &["Trace", "Debug", "Info", "Warning", "Error", "Fatal"];

/// Calico's defaults when the global object leaves a field unset (used by consumers such as
/// confd; not written into the stored object).
pub const DEFAULT_AS_NUMBER: u32 = 64512;
pub const DEFAULT_LISTEN_PORT: u16 = 179;
pub const DEFAULT_ROUTE_PRIORITY: i64 = 1024;

const MAX_COMMUNITIES: usize = 500;
const MAX_PREFIX_ADVERTISEMENTS: usize = 500;
const MAX_PREFIX_COMMUNITIES: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPConfiguration {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: BGPConfigurationSpec,
}

/// Field order follows the Go struct.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPConfigurationSpec {
    /// v1 key `loglevel`. [Default: Info]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_severity_screen: String,
    /// v1 key `node_mesh`. [Default: true]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_to_node_mesh_enabled: Option<bool>,
    /// v1 key `as_num`. [Default: 64512]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_number: Option<ASNumber>,
    #[serde(
        rename = "serviceLoadBalancerIPs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_load_balancer_ips: Vec<ServiceIPBlock>,
    #[serde(
        rename = "serviceExternalIPs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_external_ips: Vec<ServiceIPBlock>,
    #[serde(
        rename = "serviceClusterIPs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_cluster_ips: Vec<ServiceIPBlock>,
    /// `Enabled` | `Disabled` (one /32 per LoadBalancer service). [Default: Enabled]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_load_balancer_aggregation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<Community>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_advertisements: Vec<PrefixAdvertisement>,
    /// [Default: 179]
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub listen_port: u16,
    /// Only on `default`, and only while the mesh is enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_password: Option<BGPPassword>,
    /// Graceful restart time for mesh peerings (BIRD's default is 120s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_mesh_max_restart_time: Option<Duration>,
    /// `None` | `NodeIP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_interfaces: Vec<String>,
    #[serde(
        rename = "localWorkloadPeeringIPV4",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub local_workload_peering_ipv4: String,
    #[serde(
        rename = "localWorkloadPeeringIPV6",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub local_workload_peering_ipv6: String,
    /// `Disabled` | `Enabled` | `EnabledIPIPOnly` | `EnabledNoEncapOnly` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program_cluster_routes: Option<String>,
    #[serde(
        rename = "ipv4NormalRoutePriority",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_normal_route_priority: Option<i64>,
    #[serde(
        rename = "ipv6NormalRoutePriority",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_normal_route_priority: Option<i64>,
}

fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

/// `ServiceLoadBalancerIPBlock` / `ServiceExternalIPBlock` / `ServiceClusterIPBlock`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceIPBlock {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
}

/// A named community value (`aa:nn` standard or `aa:nn:mm` large).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Community {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrefixAdvertisement {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    /// Community names from `spec.communities` or literal values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
}

/// `BGPPassword`: where to read a BGP session password from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPPassword {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeySelector>,
}

/// Kubernetes `SecretKeySelector`: a key of a secret in calico-node's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretKeySelector {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Required by the schema; Go always writes it.
    #[serde(default)]
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

impl CalicoResource for BGPConfiguration {
    const KIND: &'static str = "BGPConfiguration";

    crate::resource::metadata_accessors!();

    /// The CRD schema defaults (applied by Calico's validator in etcd mode as the API server
    /// would in Kubernetes mode).
    fn apply_defaults(&mut self) {
        if self.spec.log_severity_screen.is_empty() {
            self.spec.log_severity_screen = "Info".into();
        }
        if self.spec.service_load_balancer_aggregation.is_none() {
            self.spec.service_load_balancer_aggregation = Some("Enabled".into());
        }
    }

    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        let path = FieldPath::root().field("spec");
        validate_bgp_configuration_spec(&self.spec, &path, errs);
        if self.metadata.name != "default" {
            validate_default_only_fields(&self.spec, &path, errs);
        }
    }
}

/// Whether `s` matches a case-insensitive alternative of `allowed`, or is empty (the shape of
/// Calico's `^(?i)(A|B|C)?$` schema patterns).
pub fn matches_ci_pattern(s: &str, allowed: &[&str]) -> bool {
    s.is_empty() || allowed.iter().any(|a| a.eq_ignore_ascii_case(s))
}

/// Reports a value that fails a `^(?i)(A|B|C)?$` pattern, in the Kubernetes wording.
pub fn check_ci_pattern(value: &str, allowed: &[&str], path: &FieldPath, errs: &mut FieldErrors) {
    if !matches_ci_pattern(value, allowed) {
        errs.push(
            path,
            format!(
                "Invalid value: {value:?}: should match '^(?i)({})?$'",
                allowed.join("|")
            ),
        );
    }
}

fn validate_bgp_configuration_spec(
    spec: &BGPConfigurationSpec,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    check_ci_pattern(
        &spec.log_severity_screen,
        LOG_LEVELS,
        &path.field("logSeverityScreen"),
        errs,
    );

    for (name, blocks) in [
        ("serviceLoadBalancerIPs", &spec.service_load_balancer_ips),
        ("serviceExternalIPs", &spec.service_external_ips),
        ("serviceClusterIPs", &spec.service_cluster_ips),
    ] {
        for (i, b) in blocks.iter().enumerate() {
            // `omitempty,net`: a strictly masked CIDR or a bare IP.
            if !b.cidr.is_empty() && !netutil::is_masked_network(&b.cidr) {
                errs.push(
                    &path.field(name).index(i).field("cidr"),
                    format!(
                        "invalid CIDR {:?}: must be a valid, strictly masked network",
                        b.cidr
                    ),
                );
            }
        }
    }

    if let Some(v) = &spec.service_load_balancer_aggregation {
        netutil::check_enum(
            v,
            SERVICE_LB_AGGREGATION,
            &path.field("serviceLoadBalancerAggregation"),
            errs,
        );
    }

    // Communities: name required and a valid name; value required, `aa:nn` or `aa:nn:mm` with
    // 16-bit / 32-bit parts.
    let cpath = path.field("communities");
    if spec.communities.len() > MAX_COMMUNITIES {
        errs.push(
            &cpath,
            format!(
                "Too many: {}: must have at most {MAX_COMMUNITIES} items",
                spec.communities.len()
            ),
        );
    }
    for (i, c) in spec.communities.iter().enumerate() {
        let p = cpath.index(i);
        if c.name.is_empty() {
            errs.push(
                &p.field("name"),
                "Required value: community name must be set",
            );
        } else if c.name.len() > 253 || !netutil::is_name(&c.name) {
            errs.push(
                &p.field("name"),
                format!(
                    "invalid community name {:?}: must be a valid resource name",
                    c.name
                ),
            );
        }
        if c.value.is_empty() {
            errs.push(
                &p.field("value"),
                "Required value: community value must be set",
            );
        } else if c.value.len() > 40 {
            errs.push(&p.field("value"), "Too long: may not be longer than 40");
        } else if let Err(e) = check_community_value(&c.value) {
            errs.push(&p.field("value"), e);
        }
    }
    // CEL: communities are only useful when referenced by prefix advertisements.
    if !spec.communities.is_empty() && spec.prefix_advertisements.is_empty() {
        errs.push(
            &cpath,
            "communities are defined but not used in prefixAdvertisements",
        );
    }

    let papath = path.field("prefixAdvertisements");
    if spec.prefix_advertisements.len() > MAX_PREFIX_ADVERTISEMENTS {
        errs.push(
            &papath,
            format!(
                "Too many: {}: must have at most {MAX_PREFIX_ADVERTISEMENTS} items",
                spec.prefix_advertisements.len()
            ),
        );
    }
    for (i, pa) in spec.prefix_advertisements.iter().enumerate() {
        let p = papath.index(i);
        if pa.cidr.is_empty() {
            errs.push(&p.field("cidr"), "Required value: cidr must be set");
        } else if !netutil::is_masked_network(&pa.cidr) {
            errs.push(
                &p.field("cidr"),
                format!(
                    "invalid CIDR value {:?}: must be a valid, strictly masked network",
                    pa.cidr
                ),
            );
        }
        if pa.communities.is_empty() {
            errs.push(
                &p.field("communities"),
                "Required value: communities must be set",
            );
        } else if pa.communities.len() > MAX_PREFIX_COMMUNITIES {
            errs.push(
                &p.field("communities"),
                format!(
                    "Too many: {}: must have at most {MAX_PREFIX_COMMUNITIES} items",
                    pa.communities.len()
                ),
            );
        }
        for (j, v) in pa.communities.iter().enumerate() {
            let cp = p.field("communities").index(j);
            if is_community_shaped(v) {
                if let Err(e) = check_community_value(v) {
                    errs.push(&cp, e);
                }
            } else if !spec.communities.iter().any(|c| &c.name == v) {
                errs.push(
                    &cp,
                    format!("community {v:?} used is invalid or not defined"),
                );
            }
        }
    }

    if spec.node_mesh_password.is_some() && spec.node_to_node_mesh_enabled == Some(false) {
        errs.push(
            &path.field("nodeMeshPassword"),
            "nodeMeshPassword cannot be set when nodeToNodeMeshEnabled is false",
        );
    }
    if spec.node_mesh_max_restart_time.is_some() && spec.node_to_node_mesh_enabled == Some(false) {
        errs.push(
            &path.field("nodeMeshMaxRestartTime"),
            "nodeMeshMaxRestartTime cannot be set when nodeToNodeMeshEnabled is false",
        );
    }
    if let Some(pw) = &spec.node_mesh_password {
        validate_bgp_password(pw, &path.field("nodeMeshPassword"), errs);
    }

    if let Some(v) = &spec.bind_mode {
        netutil::check_enum(v, BIND_MODES, &path.field("bindMode"), errs);
    }

    let ipath = path.field("ignoredInterfaces");
    for (i, iface) in spec.ignored_interfaces.iter().enumerate() {
        if iface == "*" || !netutil::is_interface_glob(iface) {
            errs.push(
                &ipath.index(i),
                format!(
                    "invalid interface name {iface:?}: must match ^[a-zA-Z0-9_.*-]{{1,15}}$ and not be \"*\""
                ),
            );
        } else if spec.ignored_interfaces[..i].contains(iface) {
            errs.push(&ipath.index(i), format!("Duplicate value: {iface:?}"));
        }
    }

    if !spec.local_workload_peering_ipv4.is_empty()
        && !netutil::is_ip_of_version(&spec.local_workload_peering_ipv4, 4)
    {
        errs.push(
            &path.field("localWorkloadPeeringIPV4"),
            format!(
                "{:?} is not a valid IPv4 address",
                spec.local_workload_peering_ipv4
            ),
        );
    }
    if !spec.local_workload_peering_ipv6.is_empty()
        && !netutil::is_ip_of_version(&spec.local_workload_peering_ipv6, 6)
    {
        errs.push(
            &path.field("localWorkloadPeeringIPV6"),
            format!(
                "{:?} is not a valid IPv6 address",
                spec.local_workload_peering_ipv6
            ),
        );
    }

    if let Some(v) = &spec.program_cluster_routes {
        netutil::check_enum(
            v,
            PROGRAM_CLUSTER_ROUTES,
            &path.field("programClusterRoutes"),
            errs,
        );
    }
    for (name, v) in [
        ("ipv4NormalRoutePriority", spec.ipv4_normal_route_priority),
        ("ipv6NormalRoutePriority", spec.ipv6_normal_route_priority),
    ] {
        if let Some(v) = v {
            netutil::check_range(v, Some(1), Some(2147483646), &path.field(name), errs);
        }
    }
}

/// `ValidateDefaultOnlyFields`: fields only the global `default` object may set.
fn validate_default_only_fields(
    spec: &BGPConfigurationSpec,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    let mut forbid = |field: &str, set: bool| {
        if set {
            errs.push(
                &path.field(field),
                format!("Cannot set {field} on a non default BGP Configuration."),
            );
        }
    };
    forbid(
        "nodeToNodeMeshEnabled",
        spec.node_to_node_mesh_enabled.is_some(),
    );
    forbid("asNumber", spec.as_number.is_some());
    forbid(
        "serviceLoadBalancerIPs",
        !spec.service_load_balancer_ips.is_empty(),
    );
    forbid("serviceExternalIPs", !spec.service_external_ips.is_empty());
    forbid("serviceClusterIPs", !spec.service_cluster_ips.is_empty());
    forbid("nodeMeshPassword", spec.node_mesh_password.is_some());
    forbid(
        "nodeMeshMaxRestartTime",
        spec.node_mesh_max_restart_time.is_some(),
    );
}

/// A password reference must name a key (the schema marks `key` required).
pub fn validate_bgp_password(pw: &BGPPassword, path: &FieldPath, errs: &mut FieldErrors) {
    if let Some(r) = &pw.secret_key_ref
        && r.key.is_empty()
    {
        errs.push(
            &path.field("secretKeyRef").field("key"),
            "Required value: the secret key must be set",
        );
    }
}

/// Calico's `standardCommunity` / `largeCommunity` regexes: `^(\d+):(\d+)$` / `^(\d+):(\d+):(\d+)$`.
pub fn is_community_shaped(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    (parts.len() == 2 || parts.len() == 3)
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `isValidCommunity` + `validateCommunityValue`: the shape, then 16-bit parts for a standard
/// community and 32-bit parts for a large one (leading zeros allowed, as Go's ParseUint does).
pub fn check_community_value(v: &str) -> Result<(), String> {
    if !is_community_shaped(v) {
        return Err(format!(
            "invalid community value or format used: {v:?} (expected aa:nn or aa:nn:mm)"
        ));
    }
    let parts: Vec<&str> = v.split(':').collect();
    let (max, bits) = if parts.len() == 2 {
        (u64::from(u16::MAX), 16)
    } else {
        (u64::from(u32::MAX), 32)
    };
    for p in parts {
        if p.parse::<u64>().map_or(true, |n| n > max) {
            return Err(format!(
                "invalid community value {v:?}, expected {bits} bit value"
            ));
        }
    }
    Ok(())
}

impl BGPConfigurationSpec {
    /// The mesh setting in effect (unset means enabled).
    pub fn mesh_enabled(&self) -> bool {
        self.node_to_node_mesh_enabled.unwrap_or(true)
    }
    /// The AS number in effect (unset means 64512).
    pub fn effective_as_number(&self) -> ASNumber {
        self.as_number.unwrap_or(ASNumber(DEFAULT_AS_NUMBER))
    }
    /// The BGP listen port in effect (unset means 179).
    pub fn effective_listen_port(&self) -> u16 {
        if self.listen_port == 0 {
            DEFAULT_LISTEN_PORT
        } else {
            self.listen_port
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn community_values() {
        assert!(check_community_value("65535:65535").is_ok());
        assert!(check_community_value("065535:01").is_ok());
        assert!(check_community_value("65536:1").is_err());
        assert!(check_community_value("4294967295:1:2").is_ok());
        assert!(check_community_value("4294967296:1:2").is_err());
        assert!(check_community_value("100").is_err());
        assert!(check_community_value("ab-n").is_err());
    }

    #[test]
    fn defaults_and_non_default_name_rules() {
        let mut c = BGPConfiguration {
            metadata: ObjectMeta::named("node.node1"),
            spec: BGPConfigurationSpec {
                as_number: Some(ASNumber(64513)),
                ..Default::default()
            },
        };
        c.apply_defaults();
        assert_eq!(c.spec.log_severity_screen, "Info");
        assert_eq!(
            c.spec.service_load_balancer_aggregation.as_deref(),
            Some("Enabled")
        );
        let mut errs = FieldErrors::new();
        c.validate(&mut errs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs.iter().next().unwrap().path, "spec.asNumber");
    }
}
