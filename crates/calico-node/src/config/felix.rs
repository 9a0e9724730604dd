//! `FELIX_*` environment overrides, parsed the way Felix parses its config parameters
//! (`felix/config/config_params.go`, `param_types.go`): the name after `FELIX_` is matched
//! case-insensitively against Felix's parameter names; booleans accept
//! `true/1/yes/y/t` and `false/0/no/n/f`; `seconds` parameters are floating-point seconds;
//! ports are `int(0:65535)`. Parameters the agent acts on are parsed into typed fields; the
//! others are checked against the `FelixConfiguration` field table of `calico-api` (type and
//! Calico's validation) and kept as a spec overlay; unknown names are ignored with a warning,
//! as Felix does.

use std::sync::OnceLock;
use std::time::Duration;

use calico_api::CalicoResource;
use calico_api::felixconfig::{FelixConfiguration, FelixConfigurationSpec};
use serde::de::{self, Deserializer, Visitor};

use super::ConfigError;

/// The Felix parameters the agent itself uses, with Felix's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FelixEnv {
    /// `FELIX_HEALTHENABLED`. Felix's own default is false, but calico-node's manifests always
    /// set it to true, so the agent serves health unless it is explicitly disabled.
    pub health_enabled: bool,
    /// `FELIX_HEALTHHOST` (`localhost`).
    pub health_host: String,
    /// `FELIX_HEALTHPORT` (9099; 0 = any free port).
    pub health_port: u16,
    /// `FELIX_PROMETHEUSMETRICSENABLED` (false).
    pub prometheus_metrics_enabled: bool,
    /// `FELIX_PROMETHEUSMETRICSHOST` (empty = all addresses).
    pub prometheus_metrics_host: String,
    /// `FELIX_PROMETHEUSMETRICSPORT` (9091).
    pub prometheus_metrics_port: u16,
    /// `FELIX_PROMETHEUSPROCESSMETRICSENABLED` (true).
    pub prometheus_process_metrics_enabled: bool,
    /// `FELIX_REPORTINGINTERVALSECS`; `None` = take it from the datastore's
    /// FelixConfiguration, else Felix's 30 s. Zero disables status reports.
    pub reporting_interval: Option<Duration>,
    /// `FELIX_REPORTINGTTLSECS`; `None` = datastore, else 90 s.
    pub reporting_ttl: Option<Duration>,
    /// `FELIX_ROUTEREFRESHINTERVAL` (seconds); `None` = Felix's 90 s.
    pub route_refresh_interval: Option<Duration>,
    /// `FELIX_INTERFACEPREFIX` (`cali`), a comma-separated list.
    pub interface_prefixes: Vec<String>,
    /// `FELIX_IPV6SUPPORT` (true).
    pub ipv6_support: bool,
    /// `FELIX_OPENSTACKREGION`: selects the status-report region (`region-<name>`).
    pub openstack_region: Option<String>,
    /// `FELIX_FELIXHOSTNAME`: Felix's node name when it differs from `NODENAME`.
    pub felix_hostname: Option<String>,
    /// Every other recognised override, as a FelixConfiguration spec overlay (fields that
    /// were not overridden are unset).
    pub spec: FelixConfigurationSpec,
    /// `FELIX_*` variables that name no Felix parameter (ignored, as Felix does).
    pub unknown: Vec<String>,
}

impl Default for FelixEnv {
    fn default() -> Self {
        FelixEnv {
            health_enabled: true,
            health_host: "localhost".into(),
            health_port: 9099,
            prometheus_metrics_enabled: false,
            prometheus_metrics_host: String::new(),
            prometheus_metrics_port: 9091,
            prometheus_process_metrics_enabled: true,
            reporting_interval: None,
            reporting_ttl: None,
            route_refresh_interval: None,
            interface_prefixes: vec!["cali".into()],
            ipv6_support: true,
            openstack_region: None,
            felix_hostname: None,
            spec: FelixConfigurationSpec::default(),
            unknown: Vec::new(),
        }
    }
}

impl FelixEnv {
    /// Felix's status-report region segment (`no-region` or `region-<name>`;
    /// `felix/daemon/daemon.go`).
    pub fn status_region(&self) -> String {
        match &self.openstack_region {
            Some(r) if !r.is_empty() => format!("region-{r}"),
            _ => "no-region".to_string(),
        }
    }

    /// Parses every `FELIX_*` variable of `vars`.
    pub fn parse(vars: &[(String, String)]) -> Result<FelixEnv, ConfigError> {
        let mut out = FelixEnv::default();
        let mut overlay = serde_json::Map::new();
        let mut overlay_vars: Vec<(String, String)> = Vec::new();
        let mut sorted: Vec<&(String, String)> = vars
            .iter()
            .filter(|(k, _)| k.len() > 6 && k[..6].eq_ignore_ascii_case("FELIX_"))
            .collect();
        sorted.sort();
        for (var, raw) in sorted {
            let param = var[6..].to_ascii_lowercase();
            let bad = |reason: String| ConfigError::invalid(var, raw, reason);
            match param.as_str() {
                "healthenabled" => out.health_enabled = parse_bool(raw).map_err(bad)?,
                "healthhost" => out.health_host = parse_host(raw, false).map_err(bad)?,
                "healthport" => out.health_port = parse_port(raw).map_err(bad)?,
                "prometheusmetricsenabled" => {
                    out.prometheus_metrics_enabled = parse_bool(raw).map_err(bad)?
                }
                "prometheusmetricshost" => {
                    out.prometheus_metrics_host = parse_host(raw, true).map_err(bad)?
                }
                "prometheusmetricsport" => {
                    out.prometheus_metrics_port = parse_port(raw).map_err(bad)?
                }
                "prometheusprocessmetricsenabled" => {
                    out.prometheus_process_metrics_enabled = parse_bool(raw).map_err(bad)?
                }
                "reportingintervalsecs" => {
                    out.reporting_interval = Some(parse_seconds(raw).map_err(bad)?)
                }
                "reportingttlsecs" => out.reporting_ttl = Some(parse_seconds(raw).map_err(bad)?),
                "routerefreshinterval" => {
                    out.route_refresh_interval = Some(parse_seconds(raw).map_err(bad)?)
                }
                "interfaceprefix" => out.interface_prefixes = parse_iface_list(raw).map_err(bad)?,
                "ipv6support" => {
                    out.ipv6_support = parse_bool(raw).map_err(bad)?;
                    // Also a FelixConfiguration field, which the policy dataplane follows
                    // (environment over the datastore's configuration, as Felix merges).
                    overlay.insert(
                        "ipv6Support".to_string(),
                        serde_json::Value::Bool(out.ipv6_support),
                    );
                    overlay_vars.push((var.clone(), raw.clone()));
                }
                "openstackregion" => {
                    out.openstack_region =
                        Some(parse_region(raw).map_err(bad)?).filter(|r| !r.is_empty())
                }
                "felixhostname" => {
                    if raw.trim().is_empty() {
                        return Err(bad("must not be empty".into()));
                    }
                    out.felix_hostname = Some(raw.trim().to_string())
                }
                // Felix's `port-list` syntax, not JSON (`felix/config/param_types.go`
                // `PortListParam`): `tcp:22,udp:68`, `tcp:10.0.0.0/8:22`, `udp:[fd00::/64]:53`, `22`.
                "failsafeinboundhostports" | "failsafeoutboundhostports" => {
                    let field = if param == "failsafeinboundhostports" {
                        "failsafeInboundHostPorts"
                    } else {
                        "failsafeOutboundHostPorts"
                    };
                    let ports = parse_port_list(raw).map_err(bad)?;
                    overlay.insert(field.to_string(), serde_json::Value::Array(ports));
                    overlay_vars.push((var.clone(), raw.clone()));
                }
                _ => match spec_field(&param) {
                    Some(field) => {
                        let value = typed_value(field, raw).ok_or_else(|| {
                            bad(format!(
                                "not a valid value for FelixConfiguration field {field}"
                            ))
                        })?;
                        overlay.insert(field.to_string(), value);
                        overlay_vars.push((var.clone(), raw.clone()));
                    }
                    None => out.unknown.push(var.clone()),
                },
            }
        }
        if !overlay.is_empty() {
            out.spec = serde_json::from_value(serde_json::Value::Object(overlay)).map_err(|e| {
                ConfigError::Other(format!("FELIX_* overrides do not form a valid spec: {e}"))
            })?;
            // Calico's own FelixConfiguration validation, with errors traced back to the
            // variable that set the field.
            let fc = FelixConfiguration {
                metadata: calico_api::ObjectMeta {
                    name: "default".into(),
                    ..Default::default()
                },
                spec: out.spec.clone(),
            };
            let mut errs = calico_api::FieldErrors::default();
            fc.validate(&mut errs);
            if let Some(e) = errs.iter().next() {
                let path = e.path.to_string();
                let field = path.strip_prefix("spec.").unwrap_or(&path);
                let field = field.split(['.', '[']).next().unwrap_or(field);
                let (var, raw) = overlay_vars
                    .iter()
                    .find(|(v, _)| v[6..].eq_ignore_ascii_case(field))
                    .cloned()
                    .unwrap_or_else(|| ("FELIX_*".into(), String::new()));
                return Err(ConfigError::invalid(&var, &raw, e.to_string()));
            }
        }
        Ok(out)
    }
}

/// Felix's `PortListParam`: comma-separated `<port>`, `<protocol>:<port>` or
/// `<protocol>:<cidr>:<port>` (IPv6 CIDRs in brackets), protocol `tcp` (default) or `udp`.
/// Returns the entries as FelixConfiguration `ProtoPort` JSON objects.
pub fn parse_port_list(raw: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut out = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mut rest = item.to_string();
        let mut net = String::new();
        if let (Some(start), Some(end)) = (item.find('['), item.find("]:"))
            && start < end
        {
            net = item[start + 1..end].to_string();
            rest = format!("{}{}", &item[..start], &item[end + 2..]);
        }
        let parts: Vec<&str> = rest.split(':').collect();
        let (proto, port) = match parts.as_slice() {
            [port] => ("tcp".to_string(), *port),
            [proto, port] => (proto.to_ascii_lowercase(), *port),
            [proto, cidr, port] => {
                net = (*cidr).to_string();
                (proto.to_ascii_lowercase(), *port)
            }
            _ => {
                return Err(format!(
                    "{item:?}: ports should be <protocol>:<net>:<number> or <protocol>:<number> or <number>"
                ));
            }
        };
        if proto != "tcp" && proto != "udp" {
            return Err(format!("{item:?}: unknown protocol {proto:?}"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{item:?}: ports should be integers in 0-65535"))?;
        if !net.is_empty() {
            let parsed = calico_api::netutil::parse_cidr_or_ip(&net)
                .ok_or_else(|| format!("{item:?}: invalid CIDR or IP {net:?}"))?;
            // `cnet.ParseCIDROrIP` then `.String()`: the network, host bits cleared.
            net = ipnet::IpNet::new(parsed.addr, parsed.prefix_len)
                .map_err(|_| format!("{item:?}: invalid CIDR or IP {net:?}"))?
                .trunc()
                .to_string();
        }
        let mut entry = serde_json::json!({"protocol": proto.to_ascii_uppercase(), "port": port});
        if !net.is_empty() {
            entry["net"] = serde_json::Value::String(net);
        }
        out.push(entry);
    }
    Ok(out)
}

/// Felix's `BoolParam`.
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "t" => Ok(true),
        "false" | "0" | "no" | "n" | "f" => Ok(false),
        _ => Err("invalid boolean (expected true/false, 1/0, yes/no, y/n, t/f)".into()),
    }
}

/// Go's `strconv.ParseInt(raw, 0, 64)`: optional sign, decimal or `0x`/`0o`/`0b`/`0` prefixes,
/// underscores allowed only with a prefix.
pub fn parse_go_int(raw: &str) -> Option<i64> {
    let (neg, digits) = match raw.as_bytes().first() {
        Some(b'-') => (true, &raw[1..]),
        Some(b'+') => (false, &raw[1..]),
        _ => (false, raw),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body, prefixed) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b.to_string(), true)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b.to_string(), true)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_string(), true)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string(), true)
    } else {
        (10, lower.clone(), false)
    };
    let body = if prefixed {
        body.replace('_', "")
    } else {
        body
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(&body, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// `int(0:65535)`.
pub fn parse_port(raw: &str) -> Result<u16, String> {
    let v = parse_go_int(raw).ok_or_else(|| "invalid int".to_string())?;
    u16::try_from(v).map_err(|_| "value must be between 0 and 65535".to_string())
}

/// Felix's `SecondsParam`: floating-point seconds. Negative values are refused (Felix takes
/// them but no interval or TTL can be negative).
pub fn parse_seconds(raw: &str) -> Result<Duration, String> {
    let s: f64 = raw
        .trim()
        .parse()
        .map_err(|_| "invalid float (seconds)".to_string())?;
    if !s.is_finite() || s < 0.0 {
        return Err("must be a non-negative number of seconds".into());
    }
    Duration::try_from_secs_f64(s).map_err(|e| e.to_string())
}

/// `host-address`: an IP address or a DNS name (`allow_empty` for "all addresses").
pub fn parse_host(raw: &str, allow_empty: bool) -> Result<String, String> {
    let h = raw.trim();
    if h.is_empty() {
        return if allow_empty {
            Ok(String::new())
        } else {
            Err("must not be empty".into())
        };
    }
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Ok(h.to_string());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.len() <= 253 && h.split('.').all(label_ok) {
        Ok(h.to_string())
    } else {
        Err("not an IP address or host name".into())
    }
}

/// `iface-list`: comma-separated interface name prefixes, each a valid interface name.
pub fn parse_iface_list(raw: &str) -> Result<Vec<String>, String> {
    let items: Vec<String> = raw.split(',').map(|s| s.trim().to_string()).collect();
    if items.is_empty() || items.iter().any(|s| s.is_empty()) {
        return Err("must be a comma-separated list of interface name prefixes".into());
    }
    for i in &items {
        if i.len() > 15
            || !i
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(format!("{i:?} is not a valid interface name prefix"));
        }
    }
    Ok(items)
}

/// Felix's `RegionParam`: a DNS-1123 label of at most 46 characters (63 minus the
/// `openstack-region-` namespace prefix).
pub fn parse_region(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Ok(String::new());
    }
    if raw.len() > 46 {
        return Err("the value of OpenstackRegion must be 46 chars or fewer".into());
    }
    let b = raw.as_bytes();
    let ok = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if ok {
        Ok(raw.to_string())
    } else {
        Err("The value of OpenstackRegion must be a valid DNS label".into())
    }
}

/// The `FelixConfigurationSpec` JSON field whose name matches `param` case-insensitively.
fn spec_field(param: &str) -> Option<&'static str> {
    spec_fields()
        .iter()
        .copied()
        .find(|f| f.eq_ignore_ascii_case(param))
}

/// The JSON field names of `FelixConfigurationSpec`, read from its `Deserialize` impl (the
/// derive hands the field list to `deserialize_struct`), so the table is calico-api's own.
pub fn spec_fields() -> &'static [&'static str] {
    static FIELDS: OnceLock<&'static [&'static str]> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let mut fields: &'static [&'static str] = &[];
        let _ = FelixConfigurationSpec::deserialize_fields(&mut fields);
        fields
    })
}

trait FieldNames {
    fn deserialize_fields(out: &mut &'static [&'static str]) -> Result<(), de::value::Error>;
}

impl<T: for<'de> serde::Deserialize<'de>> FieldNames for T {
    fn deserialize_fields(out: &mut &'static [&'static str]) -> Result<(), de::value::Error> {
        T::deserialize(FieldCatcher(out)).map(|_| ())
    }
}

struct FieldCatcher<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldCatcher<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("field names captured"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The JSON value a raw environment string stands for in `field`: the first of string,
/// boolean, integer, number, Go duration (seconds, as Felix's `seconds` parameters take them)
/// and comma list that the field's type accepts.
fn typed_value(field: &str, raw: &str) -> Option<serde_json::Value> {
    use serde_json::Value;
    let mut candidates = vec![Value::String(raw.to_string())];
    if let Ok(b) = parse_bool(raw) {
        candidates.push(Value::Bool(b));
    }
    if let Some(i) = parse_go_int(raw) {
        candidates.push(Value::from(i));
    }
    if let Ok(f) = raw.trim().parse::<f64>()
        && f.is_finite()
    {
        candidates.push(Value::from(f));
        if f >= 0.0 {
            candidates.push(Value::String(format!("{f}s")));
        }
    }
    candidates.push(Value::Array(
        raw.split(',')
            .map(|s| Value::String(s.trim().to_string()))
            .collect(),
    ));
    candidates.into_iter().find(|v| {
        let mut m = serde_json::Map::new();
        m.insert(field.to_string(), v.clone());
        serde_json::from_value::<FelixConfigurationSpec>(Value::Object(m)).is_ok()
    })
}
