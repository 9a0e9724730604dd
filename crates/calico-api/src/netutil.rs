//! Address and CIDR parsing with the semantics of Go's `net.ParseIP` / `net.ParseCIDR` and
//! Calico's `cnet.ParseCIDROrIP`, plus small shared checks (enums, interface-name regexes) used
//! by the infrastructure kinds. Matching Go matters: Calico decides "valid", "IPv4 or IPv6" and
//! "strictly masked" with these functions, and users get the same answers from us.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::errors::{FieldErrors, FieldPath};

/// Go's `net.ParseIP`: dotted-quad IPv4 (no leading zeros) or RFC 4291 IPv6 text; no zones.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

/// Go's `IP.To4() != nil` test: IPv4, or IPv4-mapped IPv6 (`::ffff:a.b.c.d`), counts as 4.
pub fn ip_version(ip: &IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => 4,
        IpAddr::V6(_) => 6,
    }
}

/// Calico's `ipv4` / `ipv6` tags: `s` parses as an IP of that version (by Go's rules).
pub fn is_ip_of_version(s: &str, version: u8) -> bool {
    parse_ip(s).is_some_and(|ip| ip_version(&ip) == version)
}

/// A parsed `addr/len`: the address as written and the network it lies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedCidr {
    pub addr: IpAddr,
    pub prefix_len: u8,
}

impl ParsedCidr {
    /// The network with host bits cleared (Go's `IPNet` from `ParseCIDR`).
    pub fn network(&self) -> IpNet {
        // prefix_len was checked against the family when parsing.
        IpNet::new(self.addr, self.prefix_len)
            .map(|n| n.trunc())
            .unwrap_or_else(|_| IpNet::from(self.addr))
    }
    /// Whether the address has no host bits set (Calico's "strictly masked" test).
    pub fn is_masked(&self) -> bool {
        self.network().addr() == self.addr
    }
    /// 4 or 6, by Go's rules (see [`ip_version`]).
    pub fn version(&self) -> u8 {
        ip_version(&self.addr)
    }
    /// Go's `IPNet.String()` of the masked network, e.g. `fd00::/64` (the form Calico's IP pool
    /// client normalises `spec.cidr` to).
    pub fn canonical(&self) -> String {
        let n = self.network();
        format!("{}/{}", n.addr(), n.prefix_len())
    }
}

/// Go's `net.ParseCIDR`: `<ip>/<decimal prefix>` with the prefix in range for the family.
pub fn parse_cidr(s: &str) -> Option<ParsedCidr> {
    let (ip, len) = s.split_once('/')?;
    let addr = parse_ip(ip)?;
    if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix_len: u8 = len.parse().ok()?;
    let max = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    (prefix_len <= max).then_some(ParsedCidr { addr, prefix_len })
}

/// Calico's `cnet.ParseCIDROrIP`: a CIDR, or a bare IP taken as /32 or /128.
pub fn parse_cidr_or_ip(s: &str) -> Option<ParsedCidr> {
    if s.contains('/') {
        return parse_cidr(s);
    }
    let addr = parse_ip(s)?;
    let prefix_len = if addr.is_ipv4() { 32 } else { 128 };
    Some(ParsedCidr { addr, prefix_len })
}

/// Calico's `net` tag: a CIDR or IP that is strictly masked.
pub fn is_masked_network(s: &str) -> bool {
    parse_cidr_or_ip(s).is_some_and(|c| c.is_masked())
}

/// Reports `value` unless it is one of `allowed` (an OpenAPI `enum` check, as the CRD schema
/// enforces it), with the Kubernetes wording.
pub fn check_enum(value: &str, allowed: &[&str], path: &FieldPath, errs: &mut FieldErrors) {
    if !allowed.contains(&value) {
        errs.push(path, unsupported_value(value, allowed));
    }
}

/// `Unsupported value: "x": supported values: "a", "b"` (Kubernetes `field.NotSupported`).
pub fn unsupported_value(value: &str, allowed: &[&str]) -> String {
    let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "Unsupported value: {value:?}: supported values: {}",
        list.join(", ")
    )
}

/// Integer bounds check with the Kubernetes schema wording.
pub fn check_range(
    value: i64,
    min: Option<i64>,
    max: Option<i64>,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if let Some(min) = min
        && value < min
    {
        errs.push(
            path,
            format!("Invalid value: {value}: should be greater than or equal to {min}"),
        );
    }
    if let Some(max) = max
        && value > max
    {
        errs.push(
            path,
            format!("Invalid value: {value}: should be less than or equal to {max}"),
        );
    }
}

/// Calico's `interfaceRegex` `^[a-zA-Z0-9_.-]{1,15}$`.
pub fn is_interface_name(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Calico's `ifaceFilterRegex` `^[a-zA-Z0-9:._+-]{1,15}$` (allows `+` wildcards).
pub fn is_iface_filter(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.' | b'+' | b'-'))
}

/// Calico's `bgpFilterInterfaceRegex` / `ignoredInterfaceRegex` `^[a-zA-Z0-9_.*-]{1,15}$`.
pub fn is_interface_glob(s: &str) -> bool {
    (1..=15).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'*' | b'-'))
}

/// Deserializes `null` as the type's default, as Go's `encoding/json` leaves a struct untouched
/// for `null` (a YAML document with an empty `spec:` is accepted by calicoctl).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de> + Default,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `skip_serializing_if` helpers mirroring Go's `omitempty` on plain (non-pointer) fields.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}
pub(crate) fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// Calico's `name` tag: the resource-name (DNS-1123 subdomain) regex, no length check.
pub fn is_name(s: &str) -> bool {
    crate::validation::is_dns1123_subdomain(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing_like_go() {
        let c = parse_cidr("10.0.0.5/24").unwrap();
        assert!(!c.is_masked());
        assert_eq!(c.canonical(), "10.0.0.0/24");
        assert!(parse_cidr("1.2.3.0/33").is_none());
        assert!(parse_cidr("1.2.3.0").is_none());
        assert!(parse_cidr("1.2.3.0/").is_none());
        assert!(parse_cidr("1.2.3.0/+8").is_none());
        assert_eq!(
            parse_cidr("fd00:0:0::/64").unwrap().canonical(),
            "fd00::/64"
        );
        assert_eq!(parse_cidr_or_ip("aabb::1").unwrap().prefix_len, 128);
        assert!(is_masked_network("1.2.3.4"));
        assert!(!is_masked_network("1.2.3.4/24"));
        assert_eq!(ip_version(&parse_ip("::ffff:1.2.3.4").unwrap()), 4);
        assert!(parse_ip("999.999.999.999").is_none());
        assert!(parse_ip("xyz:::").is_none());
    }

    #[test]
    fn interface_regexes() {
        assert!(is_interface_name("eth0"));
        assert!(!is_interface_name("*"));
        assert!(!is_interface_name("abcdefghijklmnop"));
        assert!(is_iface_filter("docker+"));
        assert!(!is_iface_filter("cali@456"));
        assert!(is_interface_glob("*.calico"));
        assert!(!is_interface_glob("eth&"));
    }
}
