//! FelixConfiguration validation, as Calico runs it in etcd mode: the CRD schema rules
//! (`api/config/crd/projectcalico.org_felixconfigurations.yaml`: enums, patterns, bounds, CEL),
//! the Go field tags of `FelixConfigurationSpec`, and `validateFelixConfigSpec` /
//! `validateRouteTableRange` / `validateRouteTableIDRange` / `validateHealthTimeoutOverride` /
//! `validatePort` in `libcalico-go/lib/validator/v3/validator.go`.
//!
//! The per-field rules are data ([`FIELD_RULES`]) applied to the JSON form of the spec, which is
//! what Calico's schema validation sees too. That matters for durations: they are checked in
//! Go's canonical text, so the schema pattern `^([0-9]+(\\.[0-9]+)?(ms|s|m|h))*$` that Calico
//! puts on most duration fields (its `\\.` is a literal backslash followed by any character)
//! rejects fractional or sub-millisecond values such as `1.5s` or `500us`, exactly as Calico does.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::errors::{FieldErrors, FieldPath};
use crate::felixconfig::FelixConfigurationSpec;
use crate::netutil;
use crate::numorstring::Port;
use crate::validation;

/// One schema or field-tag rule on a JSON field of the spec.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// OpenAPI `enum` (or a Go `oneof` tag): exact, case-sensitive values.
    Enum(&'static [&'static str]),
    /// OpenAPI `pattern` (Go RE2 syntax, which the `regex` crate shares).
    Pattern(&'static str),
    /// Inclusive integer bounds (schema `minimum`/`maximum` or Go `gte`/`lte`/`gt`/`lt`).
    Range(Option<i64>, Option<i64>),
    MaxLength(usize),
    MaxItems(usize),
    /// Go `regexp` tag: the value must compile as a regular expression.
    Regexp,
    /// Go `keyValueList`: comma-separated `key=value` items.
    KeyValueList,
    /// Go `prometheusHost`: `^[a-zA-Z0-9:._+-]{1,64}$`.
    PrometheusHost,
    /// Go `ifaceFilter`: `^[a-zA-Z0-9:._+-]{1,15}$`.
    IfaceFilter,
    /// Go `interface`: `*` or `^[a-zA-Z0-9_.-]{1,15}$`.
    Interface,
    /// Go `cidrs`: every item a CIDR or IP.
    Cidrs,
    /// Go `ifaceFilterSlice`: every item an interface filter.
    IfaceFilterSlice,
    /// Go `bpfLogFilters`: every key an interface name.
    BpfLogFilters,
}

use Rule::*;

/// The per-field rules, in spec field order.
pub static FIELD_RULES: &[(&str, Rule)] = &[
    ("nodeSelector", MaxLength(1024)),
    (
        "routeRefreshInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "interfaceRefreshInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "iptablesRefreshInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "iptablesPostWriteCheckInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "iptablesLockProbeInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "featureDetectOverride",
        Pattern("^([a-zA-Z0-9-_]+=(true|false|),)*([a-zA-Z0-9-_]+=(true|false|))?$"),
    ),
    ("featureDetectOverride", KeyValueList),
    (
        "featureGates",
        Pattern("^([a-zA-Z0-9-_]+=([^=]+),)*([a-zA-Z0-9-_]+=([^=]+))?$"),
    ),
    ("featureGates", KeyValueList),
    (
        "ipsetsRefreshInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("iptablesBackend", Enum(&["Legacy", "NFT", "Auto"])),
    ("iptablesBackend", Pattern("^(?i)(Auto|Legacy|NFT)?$")),
    (
        "xdpRefreshInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "netlinkTimeout",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("chainInsertMode", Pattern("^(?i)(Insert|Append)?$")),
    (
        "defaultEndpointToHostAction",
        Pattern("^(?i)(Drop|Accept|Return)?$"),
    ),
    (
        "iptablesFilterAllowAction",
        Pattern("^(?i)(Accept|Return)?$"),
    ),
    (
        "iptablesMangleAllowAction",
        Pattern("^(?i)(Accept|Return)?$"),
    ),
    ("iptablesFilterDenyAction", Pattern("^(?i)(Drop|Reject)?$")),
    ("logPrefix", Pattern("^([a-zA-Z0-9%: /_-])*$")),
    (
        "logActionRateLimit",
        Pattern("^[1-9]\\d{0,3}/(?:second|minute|hour|day)$"),
    ),
    ("logActionRateLimitBurst", Range(Some(0), Some(9999))),
    (
        "logSeverityFile",
        Pattern("^(?i)(Trace|Debug|Info|Warning|Error|Fatal)?$"),
    ),
    (
        "logSeverityScreen",
        Pattern("^(?i)(Trace|Debug|Info|Warning|Error|Fatal)?$"),
    ),
    (
        "logSeveritySys",
        Pattern("^(?i)(Trace|Debug|Info|Warning|Error|Fatal)?$"),
    ),
    ("logDebugFilenameRegex", Regexp),
    (
        "reportingInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "reportingTTL",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "endpointReportingDelay",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("iptablesMarkMask", Range(Some(0), Some(4294967295))),
    ("prometheusMetricsHost", PrometheusHost),
    (
        "prometheusMetricsClientAuth",
        Enum(&[
            "RequireAndVerifyClientCert",
            "RequireAnyClientCert",
            "VerifyClientCertIfGiven",
            "NoClientCert",
        ]),
    ),
    ("kubeNodePortRanges", MaxItems(7)),
    (
        "usageReportingInitialDelay",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "usageReportingInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("natOutgoingAddress", MaxLength(45)),
    (
        "natOutgoingExclusions",
        Enum(&["IPPoolsOnly", "IPPoolsAndHostIPs"]),
    ),
    ("deviceRouteSourceAddress", MaxLength(45)),
    ("deviceRouteSourceAddressIPv6", MaxLength(45)),
    (
        "programClusterRoutes",
        Enum(&[
            "Enabled",
            "Disabled",
            "EnabledIPIPOnly",
            "EnabledNoEncapOnly",
        ]),
    ),
    ("ipForwarding", Enum(&["Enabled", "Disabled"])),
    (
        "debugSimulateCalcGraphHangAfter",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "debugSimulateDataplaneHangAfter",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    (
        "debugSimulateDataplaneApplyDelay",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("debugPort", Range(Some(0), Some(65535))),
    ("iptablesNATOutgoingInterfaceFilter", IfaceFilter),
    ("nftablesMode", Enum(&["Disabled", "Enabled", "Auto"])),
    ("nftablesFlowTableOffload", Enum(&["All", "Disabled"])),
    ("nftablesFlowTableDataIfacePattern", Regexp),
    (
        "nftablesFilterAllowAction",
        Pattern("^(?i)(Accept|Return)?$"),
    ),
    (
        "nftablesMangleAllowAction",
        Pattern("^(?i)(Accept|Return)?$"),
    ),
    ("nftablesFilterDenyAction", Pattern("^(?i)(Drop|Reject)?$")),
    ("nftablesMarkMask", Range(Some(0), Some(4294967295))),
    (
        "bpfOverlayHostSourceIP",
        Enum(&["TunnelAddress", "HostAddress"]),
    ),
    ("bpfJITHardening", Enum(&["Auto", "Strict"])),
    ("bpfLogLevel", Pattern("^(?i)(Off|Info|Debug)?$")),
    ("bpfConntrackLogLevel", Enum(&["Off", "Debug"])),
    (
        "bpfConntrackMode",
        Enum(&["Auto", "Userspace", "BPFProgram"]),
    ),
    (
        "bpfIPFragTimeout",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("bpfLogFilters", BpfLogFilters),
    ("bpfDataIfacePattern", Regexp),
    ("bpfL3IfacePattern", Regexp),
    (
        "bpfConnectTimeLoadBalancing",
        Enum(&["TCP", "Enabled", "Disabled"]),
    ),
    (
        "bpfHostNetworkedNATWithoutCTLB",
        Enum(&["Enabled", "Disabled"]),
    ),
    ("bpfExternalServiceMode", Pattern("^(?i)(Tunnel|DSR)?$")),
    ("bpfDSROptoutCIDRs", Cidrs),
    ("bpfExtToServiceConnmark", Range(Some(0), Some(4294967295))),
    (
        "bpfKubeProxyMinSyncPeriod",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("bpfKubeProxyHealthzPort", Range(Some(0), Some(65535))),
    (
        "bpfMapSizeConntrackScaling",
        Pattern("^(?i)(Disabled|DoubleIfFull)?$"),
    ),
    ("bpfMapSizeConntrackCleanupQueue", Range(Some(1), None)),
    ("bpfEnforceRPF", Pattern("^(?i)(Disabled|Strict|Loose)?$")),
    ("bpfForceTrackPacketsFromIfaces", IfaceFilterSlice),
    ("bpfDisableGROForIfaces", Regexp),
    ("bpfExcludeCIDRsFromNAT", Cidrs),
    ("istioAmbientMode", Enum(&["Enabled", "Disabled"])),
    (
        "flowLogsPolicyEvaluationMode",
        Enum(&["None", "Continuous"]),
    ),
    ("bpfRedirectToPeer", Enum(&["Enabled", "Disabled"])),
    ("bpfAttachType", Enum(&["TC", "TCX", "Netkit"])),
    (
        "flowLogsFlushInterval",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("flowLogsLocalReporter", Enum(&["Disabled", "Enabled"])),
    ("bpfProfiling", Enum(&["Enabled", "Disabled"])),
    ("routeSource", Pattern("^(?i)(WorkloadIPs|CalicoIPAM)?$")),
    ("ipv4NormalRoutePriority", Range(Some(1), Some(2147483646))),
    (
        "ipv4ElevatedRoutePriority",
        Range(Some(1), Some(2147483646)),
    ),
    ("ipv6NormalRoutePriority", Range(Some(1), Some(2147483646))),
    (
        "ipv6ElevatedRoutePriority",
        Range(Some(1), Some(2147483646)),
    ),
    (
        "liveMigrationRouteConvergenceTime",
        Pattern("^([0-9]+(\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("wireguardListeningPort", Range(Some(1), Some(65535))),
    ("wireguardListeningPortV6", Range(Some(1), Some(65535))),
    ("wireguardRoutingRulePriority", Range(Some(1), Some(32765))),
    ("wireguardInterfaceName", Interface),
    ("wireguardInterfaceNameV6", Interface),
    (
        "wireguardKeepAlive",
        Pattern("^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$"),
    ),
    ("awsSrcDstCheck", Enum(&["DoNothing", "Enable", "Disable"])),
    (
        "serviceLoopPrevention",
        Pattern("^(?i)(Drop|Reject|Disabled)?$"),
    ),
    (
        "serviceLoopPrevention",
        Enum(&["Drop", "Reject", "Disabled"]),
    ),
    ("workloadSourceSpoofing", Pattern("^(?i)(Disabled|Any)?$")),
    ("workloadSourceSpoofing", Enum(&["Disabled", "Any"])),
    ("mtuIfacePattern", Regexp),
    ("floatingIPs", Enum(&["Enabled", "Disabled"])),
    (
        "localSubnetL2Reachability",
        Enum(&["Disabled", "PodsAndLoadBalancers"]),
    ),
    ("windowsManageFirewallRules", Enum(&["Enabled", "Disabled"])),
    ("goGCThreshold", Range(Some(-1), None)),
    ("goMemoryLimitMB", Range(Some(-1), None)),
    ("goMaxProcs", Range(Some(-1), None)),
    (
        "bpfMaglevMaxEndpointsPerService",
        Range(Some(1), Some(3000)),
    ),
    ("bpfMaglevMaxServices", Range(Some(1), Some(3000))),
];

/// The schema pattern on each `bpfConntrackTimeouts` entry.
const CONNTRACK_TIMEOUT_PATTERN: &str = "^(([0-9]*(\\.[0-9]*)?(ms|s|h|m|us)+)+|Auto)$";

/// `maxRegionLength`: a DNS label (63) minus the `openstack-region-` namespace prefix.
const MAX_OPENSTACK_REGION_LEN: usize = 63 - "openstack-region-".len();
/// Linux route table indices go up to 0xffffffff; Calico caps the total designated at 0xffff.
const ROUTE_TABLE_MAX_LINUX: i64 = 0xffff_ffff;
const ROUTE_TABLE_RANGE_MAX_TABLES: i64 = 0xffff;

/// Compiled patterns, keyed by pattern text. Go's `\d` is ASCII-only, so it is spelled
/// `[0-9]` for the Unicode-aware `regex` crate.
static PATTERNS: LazyLock<HashMap<&'static str, Regex>> = LazyLock::new(|| {
    FIELD_RULES
        .iter()
        .filter_map(|(_, r)| match r {
            Pattern(p) => Some(*p),
            _ => None,
        })
        .chain(std::iter::once(CONNTRACK_TIMEOUT_PATTERN))
        .filter_map(|p| {
            Regex::new(&p.replace("\\d", "[0-9]"))
                .ok()
                .map(|re| (p, re))
        })
        .collect()
});

fn pattern_matches(pattern: &'static str, s: &str) -> bool {
    // Every pattern here is a compile-time constant covered by tests; an uncompilable one
    // would reject rather than silently accept.
    PATTERNS.get(pattern).is_some_and(|re| re.is_match(s))
}

/// Go's `kvRegex` `^\s*(\w+)=(.*)$` per comma-separated item (empty items allowed).
fn is_key_value_list(s: &str) -> bool {
    if s.trim().is_empty() {
        return true;
    }
    s.split(',').all(|item| {
        if item.is_empty() {
            return true;
        }
        let item = item.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
        match item.split_once('=') {
            Some((k, _)) => {
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }
            None => false,
        }
    })
}

fn is_prometheus_host(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'+' | b'-'))
}

/// The problem a string-valued rule finds with `s`, if any.
fn string_problem(rule: Rule, s: &str) -> Option<String> {
    let bad = match rule {
        Enum(allowed) => !allowed.contains(&s),
        Pattern(p) => !pattern_matches(p, s),
        MaxLength(max) => s.chars().count() > max,
        Regexp => Regex::new(s).is_err(),
        KeyValueList => !is_key_value_list(s),
        PrometheusHost => !is_prometheus_host(s),
        IfaceFilter => !netutil::is_iface_filter(s),
        Interface => s != "*" && !netutil::is_interface_name(s),
        _ => false,
    };
    if !bad {
        return None;
    }
    Some(match rule {
        Enum(allowed) => netutil::unsupported_value(s, allowed),
        Pattern(p) => format!("Invalid value: {s:?}: should match '{p}'"),
        MaxLength(max) => format!("Too long: may not be longer than {max}"),
        Regexp => format!("Invalid value: {s:?}: not a valid regular expression"),
        KeyValueList => {
            format!("Invalid value: {s:?}: expected a comma-separated list of key=value")
        }
        PrometheusHost => format!("Invalid value: {s:?}: must match ^[a-zA-Z0-9:._+-]{{1,64}}$"),
        IfaceFilter => format!("Invalid value: {s:?}: must match ^[a-zA-Z0-9:._+-]{{1,15}}$"),
        _ => format!("Invalid value: {s:?}: must be \"*\" or match ^[a-zA-Z0-9_.-]{{1,15}}$"),
    })
}

fn apply_rule(rule: Rule, value: &serde_json::Value, path: &FieldPath, errs: &mut FieldErrors) {
    use serde_json::Value;
    match (rule, value) {
        (_, Value::String(s)) => {
            if let Some(problem) = string_problem(rule, s) {
                errs.push(path, problem);
            }
        }
        (Range(min, max), Value::Number(n)) => match n.as_i64() {
            Some(v) => netutil::check_range(v, min, max, path, errs),
            None => errs.push(
                path,
                format!("Invalid value: {n}: must be an integer in range"),
            ),
        },
        (MaxItems(max), Value::Array(items)) if items.len() > max => errs.push(
            path,
            format!("Too many: {}: must have at most {max} items", items.len()),
        ),
        (Cidrs, Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                if v.as_str().and_then(netutil::parse_cidr_or_ip).is_none() {
                    errs.push(
                        &path.index(i),
                        format!("Invalid value: {v}: not a valid CIDR or IP"),
                    );
                }
            }
        }
        (IfaceFilterSlice, Value::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                if !v.as_str().is_some_and(netutil::is_iface_filter) {
                    errs.push(
                        &path.index(i),
                        format!("Invalid value: {v}: must match ^[a-zA-Z0-9:._+-]{{1,15}}$"),
                    );
                }
            }
        }
        (BpfLogFilters, Value::Object(m)) => {
            for k in m.keys() {
                if !netutil::is_interface_name(k) {
                    errs.push(
                        &path.key(k),
                        format!("Invalid key {k:?}: must be an interface name"),
                    );
                }
            }
        }
        // A value of another JSON type cannot come from the typed spec.
        _ => {}
    }
}

/// Every FelixConfiguration spec rule.
pub fn validate_felix_configuration_spec(
    spec: &FelixConfigurationSpec,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    // Serializing a plain data struct to a Value cannot fail; an empty map would only skip the
    // table-driven checks, never accept something the typed checks below reject.
    let json = match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for (field, rule) in FIELD_RULES {
        if let Some(v) = json.get(*field) {
            apply_rule(*rule, v, &path.field(field), errs);
        }
    }

    validate_struct_rules(spec, path, errs);
}

/// `validateFelixConfigSpec` and the nested struct validators, plus the CEL rules on the spec.
fn validate_struct_rules(spec: &FelixConfigurationSpec, path: &FieldPath, errs: &mut FieldErrors) {
    if let Some(ranges) = &spec.kube_node_port_ranges {
        let p = path.field("kubeNodePortRanges");
        // The iptables multiport match takes at most 15 ports, two per range.
        if ranges.len() > 7 {
            errs.push(&p, "node port ranges list is too long (max 7)");
        }
        for (i, port) in ranges.iter().enumerate() {
            if port.is_named() {
                errs.push(
                    &p.index(i),
                    "node port ranges should not contain named ports",
                );
            }
            check_port(port, &p.index(i), errs);
        }
    }
    if let Some(port) = &spec.nat_port_range {
        check_port(port, &path.field("natPortRange"), errs);
    }
    if let Some(port) = &spec.bpf_psnat_ports {
        check_port(port, &path.field("bpfPSNATPorts"), errs);
    }

    if let Some(list) = &spec.external_nodes_list {
        let p = path.field("externalNodesList");
        for (i, cidr) in list.iter().enumerate() {
            match netutil::parse_cidr_or_ip(cidr) {
                None => errs.push(&p.index(i), format!("{cidr:?} has invalid CIDR(s)")),
                Some(c) if c.version() != 4 => {
                    errs.push(&p.index(i), format!("{cidr:?} has invalid IPv6 CIDR"))
                }
                Some(_) => {}
            }
        }
    }

    let region = &spec.openstack_region;
    if region.len() > MAX_OPENSTACK_REGION_LEN {
        errs.push(&path.field("openstackRegion"), "is too long");
    } else if !region.is_empty() && !validation::is_dns1123_label(region) {
        errs.push(&path.field("openstackRegion"), "must be a valid DNS label");
    }

    for (name, value, version) in [
        ("natOutgoingAddress", &spec.nat_outgoing_address, 4),
        (
            "deviceRouteSourceAddress",
            &spec.device_route_source_address,
            4,
        ),
        (
            "deviceRouteSourceAddressIPv6",
            &spec.device_route_source_address_ipv6,
            6,
        ),
    ] {
        if value.is_empty() {
            continue;
        }
        let p = path.field(name);
        match netutil::parse_ip(value) {
            None => errs.push(&p, format!("{value:?} is not a valid IP address")),
            // CEL's isIP()/ip().family(): IPv4-mapped IPv6 text is not an IPv4 address.
            Some(ip) if ip_family_cel(&ip) != version => {
                errs.push(&p, format!("{name} must be a valid IPv{version} address"))
            }
            Some(_) => {}
        }
    }

    if spec.route_table_range.is_some() && spec.route_table_ranges.is_some() {
        errs.push(
            &path.field("routeTableRanges"),
            "routeTableRange and routeTableRanges cannot both be set",
        );
    }
    if let Some(r) = &spec.route_table_range
        && !(r.min >= 1 && r.max >= r.min && r.max <= 250)
    {
        errs.push(
            &path.field("routeTableRange"),
            "must be a range of route table indices within 1..250",
        );
    }
    if let Some(ranges) = &spec.route_table_ranges {
        let p = path.field("routeTableRanges");
        let mut total: i64 = 0;
        for (i, r) in ranges.iter().enumerate() {
            if r.min > r.max {
                errs.push(&p.index(i), "min must not be greater than max");
            }
            if r.min < 1 {
                errs.push(&p.index(i), "min must be >= 1");
            }
            if r.max > ROUTE_TABLE_MAX_LINUX {
                errs.push(&p.index(i), "max index too high");
            }
            total = total.saturating_add(r.max.saturating_sub(r.min).saturating_add(1));
        }
        if total > ROUTE_TABLE_RANGE_MAX_TABLES {
            errs.push(&p, "targets too many tables");
        }
    }

    for (i, o) in spec.health_timeout_overrides.iter().enumerate() {
        let p = path.field("healthTimeoutOverrides").index(i);
        let name_ok = !o.name.is_empty()
            && o.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b' ' | b'-'));
        if !name_ok {
            errs.push(
                &p.field("name"),
                "name should match regex ^[a-zA-Z0-9_ -]+$",
            );
        }
        if o.timeout.is_negative() {
            errs.push(&p.field("timeout"), "Timeout should not be negative");
        }
    }

    if let Some(t) = &spec.bpf_conntrack_timeouts {
        let p = path.field("bpfConntrackTimeouts");
        for (name, v) in t.entries() {
            if !pattern_matches(CONNTRACK_TIMEOUT_PATTERN, v) {
                errs.push(
                    &p.field(name),
                    format!("Invalid value: {v:?}: should match '{CONNTRACK_TIMEOUT_PATTERN}'"),
                );
            }
        }
    }
}

fn check_port(port: &Port, path: &FieldPath, errs: &mut FieldErrors) {
    for problem in port.problems() {
        errs.push(path, problem);
    }
}

/// The address family CEL's `ip()` reports (no IPv4-mapped IPv6 normalisation).
fn ip_family_cel(ip: &std::net::IpAddr) -> u8 {
    if ip.is_ipv4() { 4 } else { 6 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for (field, rule) in FIELD_RULES {
            if let Pattern(p) = rule {
                assert!(PATTERNS.contains_key(p), "{field}: {p}");
            }
        }
        assert!(PATTERNS.contains_key(CONNTRACK_TIMEOUT_PATTERN));
    }

    #[test]
    fn every_rule_names_a_spec_field() {
        for (field, _) in FIELD_RULES {
            let v = serde_json::json!({ *field: null });
            if let Err(e) = serde_json::from_value::<FelixConfigurationSpec>(v) {
                assert!(!e.to_string().contains("unknown field"), "{field}: {e}");
            }
        }
    }

    #[test]
    fn calico_duration_pattern_quirk() {
        let p = "^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))*$";
        for ok in ["1m30s", "0s", "1h0m0s", "300ms", ""] {
            assert!(pattern_matches(p, ok), "{ok}");
        }
        for bad in ["1.5s", "-1s", "500µs", "1d"] {
            assert!(!pattern_matches(p, bad), "{bad}");
        }
    }

    #[test]
    fn key_value_lists() {
        assert!(is_key_value_list("a=1,b=2,"));
        assert!(is_key_value_list(" a=true"));
        assert!(!is_key_value_list("a"));
        assert!(!is_key_value_list("a-b=1"));
    }
}
