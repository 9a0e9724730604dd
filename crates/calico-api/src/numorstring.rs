//! Number-or-string field types of `api/pkg/lib/numorstring`: [`Port`] (a port, a `min:max`
//! range or a named port), [`Protocol`] (a protocol name or number) and [`Dscp`] (a DSCP value
//! or class name). Each keeps Calico's JSON shape exactly: a value that is a number is written as
//! a JSON number, everything else as a string.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The protocol names Calico accepts in v3 resources (`protocolRegex` in the v3 validator is
/// case-sensitive: `tcp` is rejected).
pub const PROTOCOL_NAMES: [&str; 6] = ["UDP", "TCP", "ICMP", "ICMPv6", "SCTP", "UDPLite"];

/// A port match: a single port (`min_port == max_port`), an inclusive range, or a named port
/// (then both numbers are 0). Mirrors Calico's `numorstring.Port` struct so programmatic misuse
/// (a name and numbers, a reversed range) can be represented and is caught by [`Port::problems`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Port {
    pub min_port: u16,
    pub max_port: u16,
    pub port_name: String,
}

/// Why a port string or number was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("invalid port format ({0})")]
    BadNumber(String),
    #[error("invalid minimum port number in range ({0})")]
    BadRangeMin(String),
    #[error("invalid maximum port number in range ({0})")]
    BadRangeMax(String),
    #[error(
        "range {min}:{max} is reversed (minimum port number {min} is greater than maximum port number {max})"
    )]
    Reversed { min: u16, max: u16 },
    #[error(
        "invalid name for named port ({0}): must be 1-128 characters of [a-zA-Z0-9_.-], or a port number or min:max range"
    )]
    BadName(String),
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Calico's named-port syntax in rules: `^[a-zA-Z0-9_.-]{1,128}$`.
fn is_rule_port_name(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl Port {
    pub fn single(port: u16) -> Port {
        Port {
            min_port: port,
            max_port: port,
            port_name: String::new(),
        }
    }

    /// An inclusive range; a reversed range is an error (Calico `PortFromRange`).
    pub fn range(min: u16, max: u16) -> Result<Port, PortError> {
        if min > max {
            return Err(PortError::Reversed { min, max });
        }
        Ok(Port {
            min_port: min,
            max_port: max,
            port_name: String::new(),
        })
    }

    pub fn named(name: &str) -> Result<Port, PortError> {
        if !is_rule_port_name(name) {
            return Err(PortError::BadName(name.to_string()));
        }
        Ok(Port {
            min_port: 0,
            max_port: 0,
            port_name: name.to_string(),
        })
    }

    /// Calico `PortFromString`: all digits is a port number, `<digits>:<digits>` a range,
    /// anything else a named port.
    pub fn parse(s: &str) -> Result<Port, PortError> {
        if all_digits(s) {
            return s
                .parse::<u16>()
                .map(Port::single)
                .map_err(|_| PortError::BadNumber(s.to_string()));
        }
        if let Some((a, b)) = s.split_once(':')
            && all_digits(a)
            && all_digits(b)
        {
            let min = a
                .parse::<u16>()
                .map_err(|_| PortError::BadRangeMin(s.to_string()))?;
            let max = b
                .parse::<u16>()
                .map_err(|_| PortError::BadRangeMax(s.to_string()))?;
            return Port::range(min, max);
        }
        Port::named(s)
    }

    pub fn is_named(&self) -> bool {
        !self.port_name.is_empty()
    }

    /// Calico's `validatePort` struct check (catches values built in code rather than parsed).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.min_port > self.max_port {
            out.push(format!(
                "port range invalid: range {}:{} is reversed",
                self.min_port, self.max_port
            ));
        }
        if !self.port_name.is_empty() {
            if self.min_port != 0 || self.max_port != 0 {
                out.push(
                    "named port invalid, if name is specified, min and max should be 0".into(),
                );
            }
        } else if self.min_port < 1 || self.max_port < 1 {
            out.push("port range invalid, port number must be between 1 and 65535".into());
        }
        out
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.port_name.is_empty() {
            f.write_str(&self.port_name)
        } else if self.min_port == self.max_port {
            write!(f, "{}", self.min_port)
        } else {
            write!(f, "{}:{}", self.min_port, self.max_port)
        }
    }
}

impl std::str::FromStr for Port {
    type Err = PortError;
    fn from_str(s: &str) -> Result<Port, PortError> {
        Port::parse(s)
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A single port is a JSON number; a range or a name is a string (Calico MarshalJSON).
        if self.port_name.is_empty() && self.min_port == self.max_port {
            s.serialize_u16(self.min_port)
        } else {
            s.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Port, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number 0-65535, a \"min:max\" range or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port::single)
                    .map_err(|_| E::custom(format!("port {v} is out of range 0-65535")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("port {v} is out of range 0-65535")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Port, E> {
                Err(E::custom(format!("port {v} is not an integer")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Port::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether every port in the list is a named port (Calico `AllPortsAreNamed`; true for an
/// empty list).
pub fn all_ports_are_named(ports: &[Port]) -> bool {
    ports.iter().all(Port::is_named)
}

/// An IP protocol: a number or a name. JSON strings that are numbers 0-255 decode to numbers
/// (Calico `Uint8OrString`); other strings are kept exactly as written, so validation can
/// reject wrong case (`tcp`) as Calico does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Protocol {
    Num(u8),
    Name(String),
}

impl Default for Protocol {
    /// The zero value of Calico's struct: number 0 (invalid, reported by validation).
    fn default() -> Self {
        Protocol::Num(0)
    }
}

impl Protocol {
    /// Calico `ProtocolFromString`: known names are matched case-insensitively and stored in
    /// canonical case (`udp` → `UDP`); unknown names are kept unchanged.
    pub fn from_name(name: &str) -> Protocol {
        match PROTOCOL_NAMES.iter().find(|n| n.eq_ignore_ascii_case(name)) {
            Some(n) => Protocol::Name((*n).to_string()),
            None => Protocol::Name(name.to_string()),
        }
    }

    pub fn tcp() -> Protocol {
        Protocol::Name("TCP".into())
    }

    /// The numeric value: the number, or a string that is a decimal 0-255.
    pub fn num_value(&self) -> Option<u8> {
        match self {
            Protocol::Num(n) => Some(*n),
            Protocol::Name(s) => s.parse::<u8>().ok(),
        }
    }

    /// Calico `SupportsPorts`: TCP (6), UDP (17) or SCTP (132), by number or name (v3 or v1
    /// lower-case spelling).
    pub fn supports_ports(&self) -> bool {
        match self.num_value() {
            Some(n) => matches!(n, 6 | 17 | 132),
            None => matches!(
                self.name(),
                Some("TCP" | "UDP" | "SCTP" | "tcp" | "udp" | "sctp")
            ),
        }
    }

    fn name(&self) -> Option<&str> {
        match self {
            Protocol::Name(s) => Some(s),
            Protocol::Num(_) => None,
        }
    }

    /// True for `ICMP` or 1 (how the CEL rules on `Rule` test for ICMP).
    pub fn is_icmp(&self) -> bool {
        self.num_value() == Some(1) || self.name() == Some("ICMP")
    }

    /// True for `ICMPv6` or 58.
    pub fn is_icmpv6(&self) -> bool {
        self.num_value() == Some(58) || self.name() == Some("ICMPv6")
    }

    /// True for `TCP` or 6.
    pub fn is_tcp(&self) -> bool {
        self.num_value() == Some(6) || self.name() == Some("TCP")
    }

    /// Calico `validateProtocol`: a number 1-255 or one of [`PROTOCOL_NAMES`] in exact case.
    pub fn problem(&self) -> Option<String> {
        match self.num_value() {
            Some(0) => Some("protocol number invalid: must be 1-255".into()),
            Some(_) => None,
            None if PROTOCOL_NAMES.contains(&self.to_string().as_str()) => None,
            None => Some(format!(
                "protocol name invalid: {:?} (must be one of {} or a number 1-255)",
                self.to_string(),
                PROTOCOL_NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Num(n) => write!(f, "{n}"),
            Protocol::Name(s) => f.write_str(s),
        }
    }
}

/// Shared JSON shape of `Uint8OrString`-based types: a number when the value is numeric.
fn serialize_u8_or_string<S: Serializer>(
    num: Option<u8>,
    text: &str,
    s: S,
) -> Result<S::Ok, S::Error> {
    match num {
        Some(n) => s.serialize_u8(n),
        None => s.serialize_str(text),
    }
}

/// Decodes a `Uint8OrString`: a number 0-255, or a string (which becomes a number if it is a
/// decimal 0-255).
fn deserialize_u8_or_string<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
) -> Result<Result<u8, String>, D::Error> {
    struct V(&'static str);
    impl Visitor<'_> for V {
        type Value = Result<u8, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a {} name or a number 0-255", self.0)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            u8::try_from(v)
                .map(Ok)
                .map_err(|_| E::custom(format!("{} number {v} is out of range 0-255", self.0)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map_err(|_| E::custom(format!("{} number {v} is out of range 0-255", self.0)))
                .and_then(|v| self.visit_u64(v))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Err(E::custom(format!(
                "{} number {v} is not an integer",
                self.0
            )))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(match v.parse::<u8>() {
                Ok(n) if all_digits(v) => Ok(n),
                _ => Err(v.to_string()),
            })
        }
    }
    d.deserialize_any(V(what))
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_u8_or_string(self.num_value(), &self.to_string(), s)
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
        Ok(match deserialize_u8_or_string(d, "protocol")? {
            Ok(n) => Protocol::Num(n),
            Err(s) => Protocol::Name(s),
        })
    }
}

/// DSCP class names and their values (`api/pkg/lib/numorstring/dscp.go`).
pub const DSCP_NAMES: &[(&str, u8)] = &[
    ("DF", 0),
    ("EF", 46),
    ("AF11", 10),
    ("AF12", 12),
    ("AF13", 14),
    ("AF21", 18),
    ("AF22", 20),
    ("AF23", 22),
    ("AF31", 26),
    ("AF32", 28),
    ("AF33", 30),
    ("AF41", 34),
    ("AF42", 36),
    ("AF43", 38),
    ("CS0", 0),
    ("CS1", 8),
    ("CS2", 16),
    ("CS3", 24),
    ("CS4", 32),
    ("CS5", 40),
    ("CS6", 48),
];

/// A DSCP value (0-63) or class name (`AF11`, `EF`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dscp {
    Num(u8),
    Name(String),
}

impl Dscp {
    /// The numeric value, `None` for an unknown name.
    pub fn value(&self) -> Option<u8> {
        match self {
            Dscp::Num(n) => Some(*n),
            Dscp::Name(s) => {
                let upper = s.trim().to_ascii_uppercase();
                DSCP_NAMES
                    .iter()
                    .find(|(n, _)| *n == upper)
                    .map(|(_, v)| *v)
            }
        }
    }

    /// Calico `DSCP.Validate`.
    pub fn problem(&self) -> Option<String> {
        match self {
            Dscp::Num(n) if *n > 63 => Some("DSCP must be between 0 and 63".into()),
            Dscp::Num(_) => None,
            Dscp::Name(s) if self.value().is_none() => {
                Some(format!("{s} is not a valid DSCP value"))
            }
            Dscp::Name(_) => None,
        }
    }
}

impl fmt::Display for Dscp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dscp::Num(n) => write!(f, "{n}"),
            Dscp::Name(s) => f.write_str(s),
        }
    }
}

impl Serialize for Dscp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Dscp::Num(n) => s.serialize_u8(*n),
            Dscp::Name(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for Dscp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dscp, D::Error> {
        Ok(match deserialize_u8_or_string(d, "DSCP")? {
            Ok(n) => Dscp::Num(n),
            Err(s) => Dscp::Name(s),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dscp_values() {
        assert_eq!(Dscp::Name("af33".into()).value(), Some(30));
        assert!(Dscp::Num(64).problem().is_some());
        assert!(Dscp::Name("CS9".into()).problem().is_some());
        assert!(Dscp::Name("EF".into()).problem().is_none());
    }
}
