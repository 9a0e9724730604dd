//! Go `time.Duration` as Kubernetes' `metav1.Duration` carries it in JSON: a string such as
//! `"90s"`, `"1m30s"`, `"1.5h"` or `"300ms"` parsed with Go's `time.ParseDuration` grammar, and
//! printed with Go's `Duration.String()` (so `"90s"` is stored as `"1m30s"`, exactly as Calico's
//! Go client would store it after its own decode/encode round trip).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A signed duration in nanoseconds (Go's `time.Duration`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

pub const NANOSECOND: i64 = 1;
pub const MICROSECOND: i64 = 1_000;
pub const MILLISECOND: i64 = 1_000_000;
pub const SECOND: i64 = 1_000_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;

/// Why a duration string was rejected (wording follows Go's `time: invalid duration "x"`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    #[error("time: unknown unit {unit:?} in duration {input:?}")]
    UnknownUnit { unit: String, input: String },
}

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub fn from_secs(s: i64) -> Duration {
        Duration(s.saturating_mul(SECOND))
    }
    pub fn nanos(self) -> i64 {
        self.0
    }
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
    /// Seconds as a float (Go's `Duration.Seconds()`), the unit Calico's v1 config keys use for
    /// most Felix durations (`configv1timescale:"seconds"`).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / SECOND as f64
    }

    /// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0` alone.
    pub fn parse(input: &str) -> Result<Duration, DurationError> {
        let invalid = || DurationError::Invalid(input.to_string());
        let mut s = input.as_bytes();
        let mut neg = false;
        if let Some((&c, rest)) = s.split_first()
            && (c == b'-' || c == b'+')
        {
            neg = c == b'-';
            s = rest;
        }
        if s == b"0" {
            return Ok(Duration(0));
        }
        if s.is_empty() {
            return Err(invalid());
        }
        let mut total: u64 = 0;
        while !s.is_empty() {
            // The next character must be [0-9.].
            if !(s[0] == b'.' || s[0].is_ascii_digit()) {
                return Err(invalid());
            }
            // Integer part.
            let start = s.len();
            let (v, rest) = leading_int(s).ok_or_else(invalid)?;
            s = rest;
            let pre = start != s.len();
            // Fraction.
            let mut frac: u64 = 0;
            let mut scale: f64 = 1.0;
            let mut post = false;
            if let Some((&b'.', rest)) = s.split_first() {
                s = rest;
                let start = s.len();
                let (f, sc, rest) = leading_fraction(s);
                frac = f;
                scale = sc;
                s = rest;
                post = start != s.len();
            }
            if !pre && !post {
                // No digits (e.g. ".s").
                return Err(invalid());
            }
            // Unit.
            let unit_len = s
                .iter()
                .position(|c| *c == b'.' || c.is_ascii_digit())
                .unwrap_or(s.len());
            if unit_len == 0 {
                return Err(DurationError::MissingUnit(input.to_string()));
            }
            let unit_str = String::from_utf8_lossy(&s[..unit_len]).into_owned();
            s = &s[unit_len..];
            let unit: u64 = match unit_str.as_str() {
                "ns" => NANOSECOND as u64,
                "us" | "\u{00b5}s" | "\u{03bc}s" => MICROSECOND as u64,
                "ms" => MILLISECOND as u64,
                "s" => SECOND as u64,
                "m" => MINUTE as u64,
                "h" => HOUR as u64,
                _ => {
                    return Err(DurationError::UnknownUnit {
                        unit: unit_str,
                        input: input.to_string(),
                    });
                }
            };
            const LIMIT: u64 = 1 << 63;
            if v > LIMIT / unit {
                return Err(invalid());
            }
            let mut v = v * unit;
            if frac > 0 {
                // float64 is needed to be nanosecond accurate for fractions of hours, as Go does.
                v += (frac as f64 * (unit as f64 / scale)) as u64;
                if v > LIMIT {
                    return Err(invalid());
                }
            }
            total = total.checked_add(v).ok_or_else(invalid)?;
            if total > LIMIT {
                return Err(invalid());
            }
        }
        if neg {
            return Ok(Duration((total as i128).wrapping_neg() as i64));
        }
        if total > (1u64 << 63) - 1 {
            return Err(invalid());
        }
        Ok(Duration(total as i64))
    }
}

/// Leading decimal integer; `None` on overflow past 2^63 (Go's `leadingInt`).
fn leading_int(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut x: u64 = 0;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if x > (1u64 << 63) / 10 {
            return None;
        }
        x = x * 10 + u64::from(s[i] - b'0');
        if x > 1u64 << 63 {
            return None;
        }
        i += 1;
    }
    Some((x, &s[i..]))
}

/// Leading fraction digits; digits past what fits are dropped (Go's `leadingFraction`).
fn leading_fraction(s: &[u8]) -> (u64, f64, &[u8]) {
    let mut x: u64 = 0;
    let mut scale = 1.0;
    let mut overflow = false;
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        if !overflow {
            if x > ((1u64 << 63) - 1) / 10 {
                overflow = true;
            } else {
                let y = x * 10 + u64::from(s[i] - b'0');
                if y > 1u64 << 63 {
                    overflow = true;
                } else {
                    x = y;
                    scale *= 10.0;
                }
            }
        }
        i += 1;
    }
    (x, scale, &s[i..])
}

impl fmt::Display for Duration {
    /// Go's `Duration.String()`: `1h0m0s`, `1m30s`, `1.5s`, `300ms`, `1.2µs`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let mut u = self.0.unsigned_abs();
        let mut out = String::new();
        if u < SECOND as u64 {
            if u == 0 {
                return f.write_str("0s");
            }
            let (prec, unit) = if u < MICROSECOND as u64 {
                (0, "ns")
            } else if u < MILLISECOND as u64 {
                (3, "\u{00b5}s")
            } else {
                (6, "ms")
            };
            let (frac, int) = fmt_frac(u, prec);
            out.push_str(&int.to_string());
            out.push_str(&frac);
            out.push_str(unit);
        } else {
            let (frac, secs) = fmt_frac(u, 9);
            u = secs;
            let s = u % 60;
            u /= 60;
            if u > 0 {
                let m = u % 60;
                u /= 60;
                if u > 0 {
                    out.push_str(&format!("{u}h"));
                }
                out.push_str(&format!("{m}m"));
            }
            out.push_str(&format!("{s}{frac}s"));
        }
        if neg {
            f.write_str("-")?;
        }
        f.write_str(&out)
    }
}

/// Splits `v` into `v / 10^prec` and the fraction text (".5", trailing zeros dropped, empty for
/// a whole number), as Go's `fmtFrac`.
fn fmt_frac(v: u64, prec: u32) -> (String, u64) {
    let p = 10u64.pow(prec);
    let int = v / p;
    let frac = v % p;
    if frac == 0 {
        return (String::new(), int);
    }
    let digits = format!("{frac:0width$}", width = prec as usize);
    (format!(".{}", digits.trim_end_matches('0')), int)
}

impl FromStr for Duration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse(s)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_matches_go() {
        // Cases from Go's time/time_test.go parseDurationTests.
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("5s", 5 * SECOND),
            ("30s", 30 * SECOND),
            ("1478s", 1478 * SECOND),
            ("-5s", -5 * SECOND),
            ("+5s", 5 * SECOND),
            ("-0", 0),
            ("+0", 0),
            ("5.0s", 5 * SECOND),
            ("5.6s", 5 * SECOND + 600 * MILLISECOND),
            ("5.s", 5 * SECOND),
            (".5s", 500 * MILLISECOND),
            ("1.0s", SECOND),
            ("1.00s", SECOND),
            ("1.004s", SECOND + 4 * MILLISECOND),
            ("1.0040s", SECOND + 4 * MILLISECOND),
            ("100.00100s", 100 * SECOND + MILLISECOND),
            ("10ns", 10),
            ("11us", 11 * MICROSECOND),
            ("12µs", 12 * MICROSECOND),
            ("12μs", 12 * MICROSECOND),
            ("13ms", 13 * MILLISECOND),
            ("14s", 14 * SECOND),
            ("15m", 15 * MINUTE),
            ("16h", 16 * HOUR),
            ("3h30m", 3 * HOUR + 30 * MINUTE),
            ("10.5s4m", 4 * MINUTE + 10 * SECOND + 500 * MILLISECOND),
            ("-2m3.4s", -(2 * MINUTE + 3 * SECOND + 400 * MILLISECOND)),
            (
                "1h2m3s4ms5us6ns",
                HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6,
            ),
            (
                "39h9m14.425s",
                39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND,
            ),
            ("52763797000ns", 52763797000),
            ("0.3333333333333333333h", 20 * MINUTE),
            ("9007199254740993ns", (1 << 53) + 1),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("0.100000000000000000000h", 6 * MINUTE),
        ];
        for (s, want) in ok {
            assert_eq!(Duration::parse(s), Ok(Duration(*want)), "{s}");
        }
        for bad in [
            "",
            "3",
            "-",
            "s",
            ".",
            "-.",
            ".s",
            "+.s",
            "1d",
            "9223372036854775808ns",
            "9223372036854775.808us",
            "1.5",
            "abc",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn string_matches_go() {
        let cases: &[(i64, &str)] = &[
            (0, "0s"),
            (1, "1ns"),
            (1100, "1.1µs"),
            (2200 * MICROSECOND, "2.2ms"),
            (3300 * MILLISECOND, "3.3s"),
            (4 * MINUTE + 5 * SECOND, "4m5s"),
            (4 * MINUTE + 5001 * MILLISECOND, "4m5.001s"),
            (5 * HOUR + 6 * MINUTE + 7001 * MILLISECOND, "5h6m7.001s"),
            (8 * MINUTE + 1, "8m0.000000001s"),
            (HOUR, "1h0m0s"),
            (90 * SECOND, "1m30s"),
            (-SECOND, "-1s"),
            (i64::MAX, "2562047h47m16.854775807s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (d, want) in cases {
            assert_eq!(Duration(*d).to_string(), *want);
        }
    }

    #[test]
    fn json_form() {
        let d: Duration = serde_json::from_str("\"90s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1m30s\"");
        assert!(serde_json::from_str::<Duration>("90").is_err());
        assert!(serde_json::from_str::<Duration>("\"\"").is_err());
    }

    proptest::proptest! {
        /// Go's String() output always parses back to the same duration.
        #[test]
        fn string_parses_back(n in proptest::num::i64::ANY) {
            let d = Duration(n);
            proptest::prop_assert_eq!(Duration::parse(&d.to_string()), Ok(d));
        }
    }
}
