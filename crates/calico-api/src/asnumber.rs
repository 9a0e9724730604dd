//! BGP AS numbers (`api/pkg/lib/numorstring/asnumber.go`): a 32-bit number written either as a
//! plain number (`64512`, `"64512"`) or in RFC 5396 "asdot" notation (`"1.10"` = 1·65536 + 10 =
//! 65546). Calico always writes it back as a plain JSON number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ASNumber(pub u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid AS Number format ({0})")]
pub struct ASNumberError(pub String);

impl ASNumber {
    /// `ASNumberFromString`: a base-10 u32, or `hi.lo` with both halves base-10 u16.
    pub fn parse(s: &str) -> Result<ASNumber, ASNumberError> {
        if let Some(n) = parse_go_uint(s, u64::from(u32::MAX)) {
            return Ok(ASNumber(n as u32));
        }
        let err = || ASNumberError(s.to_string());
        let mut parts = s.split('.');
        let (Some(hi), Some(lo), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(err());
        };
        let hi = parse_go_uint(hi, u64::from(u16::MAX)).ok_or_else(err)?;
        let lo = parse_go_uint(lo, u64::from(u16::MAX)).ok_or_else(err)?;
        Ok(ASNumber(((hi << 16) + lo) as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Go's `strconv.ParseUint(s, 10, bits)`: ASCII digits only (no sign, no spaces), at most `max`.
fn parse_go_uint(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: u64 = s.parse().ok()?;
    (v <= max).then_some(v)
}

impl fmt::Display for ASNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ASNumber {
    type Err = ASNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ASNumber::parse(s)
    }
}

impl From<u32> for ASNumber {
    fn from(v: u32) -> Self {
        ASNumber(v)
    }
}

impl Serialize for ASNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for ASNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ASNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS number (0-4294967295, or \"<hi>.<lo>\" asdot notation)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ASNumber, E> {
                u32::try_from(v)
                    .map(ASNumber)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range 0-4294967295")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ASNumber, E> {
                u32::try_from(v)
                    .map(ASNumber)
                    .map_err(|_| E::custom(format!("AS number {v} is out of range 0-4294967295")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ASNumber, E> {
                ASNumber::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `api/pkg/lib/numorstring/numorstring_test.go` ASNumber cases: (JSON, expected or None).
    const UNMARSHAL: &[(&str, Option<u32>)] = &[
        ("0", Some(0)),
        ("4294967295", Some(4294967295)),
        ("\"0\"", Some(0)),
        ("\"4294967295\"", Some(4294967295)),
        ("\"1.10\"", Some(65546)),
        ("\"00.00\"", Some(0)),
        ("\"00.01\"", Some(1)),
        ("\"65535.65535\"", Some(4294967295)),
        ("\"1.1.1\"", None),
        ("\"65536.65535\"", None),
        ("\"65535.65536\"", None),
        ("\"0.-1\"", None),
        ("-1", None),
        ("4294967296", None),
    ];

    #[test]
    fn numorstring_unmarshal_cases() {
        for (json, want) in UNMARSHAL {
            let got = serde_json::from_str::<ASNumber>(json).ok().map(|a| a.0);
            assert_eq!(got, *want, "{json}");
        }
    }

    #[test]
    fn numorstring_marshal_and_string_cases() {
        for (v, s) in [(0u32, "0"), (4294967295, "4294967295")] {
            assert_eq!(serde_json::to_string(&ASNumber(v)).unwrap(), s);
            assert_eq!(ASNumber(v).to_string(), s);
        }
    }

    #[test]
    fn yaml_forms() {
        let v: serde_json::Value =
            serde_saphyr::from_str("a: 1.10\nb: \"1.10\"\nc: 64512\n").unwrap();
        assert_eq!(
            serde_json::from_value::<ASNumber>(v["c"].clone()).unwrap(),
            ASNumber(64512)
        );
        assert_eq!(
            serde_json::from_value::<ASNumber>(v["b"].clone()).unwrap(),
            ASNumber(65546)
        );
        assert!(ASNumber::parse("+1").is_err());
        assert!(ASNumber::parse(" 1").is_err());
        assert!(ASNumber::parse("").is_err());
    }

    proptest::proptest! {
        /// asdot `hi.lo` is hi·65536 + lo for every pair of 16-bit halves.
        #[test]
        fn asdot_matches_plain(hi in 0u32..=65535, lo in 0u32..=65535) {
            let v = ASNumber::parse(&format!("{hi}.{lo}")).unwrap();
            proptest::prop_assert_eq!(v, ASNumber(hi * 65536 + lo));
            proptest::prop_assert_eq!(ASNumber::parse(&v.to_string()).unwrap(), v);
        }
    }
}
