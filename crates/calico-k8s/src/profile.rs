//! Namespaces and ServiceAccounts as Calico Profiles (Calico `NamespaceToProfile`,
//! `ServiceAccountToProfile`, the profile-name parsers, the combined profile revision and
//! `ConvertUID`).
//!
//! A pod's WorkloadEndpoint lists the profiles `kns.<namespace>` and
//! `ksa.<namespace>.<serviceaccount>`; through them it inherits the namespace's labels as
//! `pcns.<key>` and the service account's as `pcsa.<key>` (plus `…projectcalico.org/name`),
//! which is what `namespaceSelector` and `serviceAccounts.selector` match against.

use std::collections::BTreeMap;

use calico_api::meta::ObjectMeta;
use calico_api::profile::{Profile, ProfileSpec};
use calico_api::rule::{Action, Rule};

use crate::types::{Namespace, ServiceAccount};

/// Prefix of labels inherited from a Namespace.
pub const NAMESPACE_LABEL_PREFIX: &str = "pcns.";
/// Prefix of a Namespace-backed profile's name.
pub const NAMESPACE_PROFILE_PREFIX: &str = "kns.";
/// Prefix of labels inherited from a ServiceAccount.
pub const SERVICE_ACCOUNT_LABEL_PREFIX: &str = "pcsa.";
/// Prefix of a ServiceAccount-backed profile's name.
pub const SERVICE_ACCOUNT_PROFILE_PREFIX: &str = "ksa.";
/// Label (after the prefix) carrying the namespace's / service account's own name, so
/// selectors can match a name exactly.
pub const NAME_LABEL: &str = "projectcalico.org/name";

/// Why a conversion or a profile-name lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    #[error("failed to parse UID for resource: {0:?} is not a UUID")]
    BadUid(String),
    #[error("Profile {0} not backed by a Namespace")]
    NotNamespaceProfile(String),
    #[error("Profile {0} not backed by a ServiceAccount")]
    NotServiceAccountProfile(String),
    #[error("Profile {0} is not formatted correctly")]
    BadProfileName(String),
    #[error("ResourceVersion is not valid: {0}")]
    BadRevision(String),
}

/// A converted profile and the revision Calico reports for it (`<nsRev>/<saRev>`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileConversion {
    pub profile: Profile,
    pub revision: String,
}

fn allow_all() -> Vec<Rule> {
    vec![Rule {
        action: Some(Action::Allow),
        ..Rule::default()
    }]
}

fn profile_uid(uid: &str) -> Result<String, ConversionError> {
    // Calico always has an API-server-assigned UID here and fails without one; a Namespace
    // applied through calicoctl has none, so an absent UID stays absent instead.
    if uid.is_empty() {
        Ok(String::new())
    } else {
        convert_uid(uid)
    }
}

fn prefixed_labels(
    labels: &BTreeMap<String, String>,
    prefix: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
        .collect();
    // Inserted last so it wins over a user label of the same key, as in Calico.
    out.insert(format!("{prefix}{NAME_LABEL}"), name.to_string());
    out
}

/// Calico `NamespaceToProfile`: profile `kns.<name>` allowing all traffic both ways, applying
/// the namespace's labels as `pcns.<key>` plus `pcns.projectcalico.org/name: <name>`.
/// Annotations (including the legacy `net.beta.kubernetes.io/network-policy`) are ignored.
pub fn namespace_to_profile(ns: &Namespace) -> Result<ProfileConversion, ConversionError> {
    let name = format!("{NAMESPACE_PROFILE_PREFIX}{}", ns.metadata.name);
    let profile = Profile {
        metadata: ObjectMeta {
            name,
            creation_timestamp: ns.metadata.creation_timestamp.clone(),
            uid: profile_uid(&ns.metadata.uid)?,
            ..ObjectMeta::default()
        },
        spec: ProfileSpec {
            ingress: allow_all(),
            egress: allow_all(),
            labels_to_apply: prefixed_labels(
                &ns.metadata.labels,
                NAMESPACE_LABEL_PREFIX,
                &ns.metadata.name,
            ),
        },
    };
    Ok(ProfileConversion {
        profile,
        revision: join_profile_revisions(&ns.metadata.resource_version, ""),
    })
}

/// Calico `serviceAccountNameToProfileName`: `ksa.<namespace>.<name>`, namespace `default`
/// when empty.
pub fn service_account_profile_name(namespace: &str, name: &str) -> String {
    let namespace = if namespace.is_empty() {
        "default"
    } else {
        namespace
    };
    format!("{SERVICE_ACCOUNT_PROFILE_PREFIX}{namespace}.{name}")
}

/// Calico `ServiceAccountToProfile`: profile `ksa.<namespace>.<name>` with no rules, applying
/// the service account's labels as `pcsa.<key>` plus `pcsa.projectcalico.org/name: <name>`.
pub fn service_account_to_profile(
    sa: &ServiceAccount,
) -> Result<ProfileConversion, ConversionError> {
    let name = service_account_profile_name(&sa.metadata.namespace, &sa.metadata.name);
    let profile = Profile {
        metadata: ObjectMeta {
            name,
            creation_timestamp: sa.metadata.creation_timestamp.clone(),
            uid: profile_uid(&sa.metadata.uid)?,
            ..ObjectMeta::default()
        },
        spec: ProfileSpec {
            labels_to_apply: prefixed_labels(
                &sa.metadata.labels,
                SERVICE_ACCOUNT_LABEL_PREFIX,
                &sa.metadata.name,
            ),
            ..ProfileSpec::default()
        },
    };
    Ok(ProfileConversion {
        profile,
        revision: join_profile_revisions("", &sa.metadata.resource_version),
    })
}

/// Calico `ProfileNameToNamespace`: `kns.<ns>` → `<ns>`.
pub fn profile_name_to_namespace(profile: &str) -> Result<&str, ConversionError> {
    profile
        .strip_prefix(NAMESPACE_PROFILE_PREFIX)
        .ok_or_else(|| ConversionError::NotNamespaceProfile(profile.to_string()))
}

/// Calico `ProfileNameToServiceAccount`: `ksa.<ns>.<sa>` → `(<ns>, <sa>)`; the service
/// account name may itself contain dots (namespaces cannot).
pub fn profile_name_to_service_account(profile: &str) -> Result<(&str, &str), ConversionError> {
    if !profile.starts_with(SERVICE_ACCOUNT_PROFILE_PREFIX) {
        return Err(ConversionError::NotServiceAccountProfile(
            profile.to_string(),
        ));
    }
    let mut parts = profile.splitn(3, '.');
    let _prefix = parts.next();
    match (parts.next(), parts.next()) {
        (Some(ns), Some(sa)) => Ok((ns, sa)),
        _ => Err(ConversionError::BadProfileName(profile.to_string())),
    }
}

/// Calico `JoinProfileRevisions`: `<nsRev>/<saRev>`.
pub fn join_profile_revisions(ns_rev: &str, sa_rev: &str) -> String {
    format!("{ns_rev}/{sa_rev}")
}

/// Calico `SplitProfileRevision`: `""` and `"0"` are both empty; otherwise exactly one `/`.
pub fn split_profile_revision(rev: &str) -> Result<(&str, &str), ConversionError> {
    if rev.is_empty() || rev == "0" {
        return Ok(("", ""));
    }
    let parts: Vec<&str> = rev.split('/').collect();
    match parts.as_slice() {
        [ns, sa] => Ok((ns, sa)),
        _ => Err(ConversionError::BadRevision(rev.to_string())),
    }
}

/// Parses a UUID the way Go's `github.com/google/uuid.Parse` does: 36 characters with dashes,
/// optionally wrapped in `{}` or prefixed `urn:uuid:`, or 32 bare hex digits.
fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let body = match s.len() {
        36 | 32 => s,
        38 if s.starts_with('{') && s.ends_with('}') => &s[1..37],
        45 if s
            .get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case("urn:uuid:")) =>
        {
            &s[9..]
        }
        _ => return None,
    };
    let hex: Vec<u8> = if body.len() == 36 {
        let b = body.as_bytes();
        if [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        b.iter().copied().filter(|&c| c != b'-').collect()
    } else {
        body.as_bytes().to_vec()
    };
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

/// Calico `ConvertUID`: a new UID derived deterministically (and reversibly) from another, so a
/// converted object never shares its source's UID (two objects with one UID confuse the
/// Kubernetes garbage collector). The bits of every byte are reversed except bytes 6 and 8,
/// which carry the UUID version and variant.
pub fn convert_uid(uid: &str) -> Result<String, ConversionError> {
    let bytes = parse_uuid(uid).ok_or_else(|| ConversionError::BadUid(uid.to_string()))?;
    let mut out = bytes.map(u8::reverse_bits);
    out[6] = bytes[6];
    out[8] = bytes[8];
    let h: String = out.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_conversion() {
        // Calico conversion_test.go "should parse a UID to a Calico ID".
        let original = "30316465-6365-4463-ad63-3564622d3638";
        let converted = convert_uid(original).unwrap();
        assert_eq!(converted, "0c8c26a6-c6a6-44c6-adc6-ac2646b46c1c");
        assert_eq!(convert_uid(&converted).unwrap(), original);
        assert!(convert_uid("not-a-uid").is_err());
        assert!(convert_uid("").is_err());
        assert!(convert_uid("30316465-6365-4463-ad63-3564622d363g").is_err());
        assert!(convert_uid("30316465x6365-4463-ad63-3564622d3638").is_err());
        // Other spellings Go's parser accepts give the same result, in lower case.
        for alt in [
            "3031646563654463ad633564622d3638",
            "{30316465-6365-4463-ad63-3564622d3638}",
            "urn:uuid:30316465-6365-4463-AD63-3564622d3638",
            "URN:UUID:30316465-6365-4463-ad63-3564622d3638",
        ] {
            assert_eq!(convert_uid(alt).unwrap(), converted, "{alt}");
        }
        for bad in [
            "3031646563654463ad633564622d363",
            "3031646563654463ad633564622d36 8",
            "(30316465-6365-4463-ad63-3564622d3638)",
            "30316465-6365-4463-ad63-3564622d3638-",
        ] {
            assert_eq!(
                convert_uid(bad),
                Err(ConversionError::BadUid(bad.to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn uid_keeps_version_and_round_trips() {
        // Calico checks this for 100000 random v4 UUIDs; walk a deterministic spread instead.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let y = x.rotate_left(29) ^ 0xdead_beef_cafe_f00d;
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&x.to_be_bytes());
            b[8..].copy_from_slice(&y.to_be_bytes());
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let h: String = b.iter().map(|v| format!("{v:02x}")).collect();
            let uid = format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            );
            let c = convert_uid(&uid).unwrap();
            assert_eq!(&c[14..15], "4", "version nibble of {c}");
            assert_eq!(convert_uid(&c).unwrap(), uid);
        }
    }

    #[test]
    fn profile_names() {
        assert_eq!(profile_name_to_namespace("kns.default"), Ok("default"));
        assert!(profile_name_to_namespace("ns.projectcalico.org/default").is_err());
        assert_eq!(
            profile_name_to_service_account("ksa.default.test"),
            Ok(("default", "test"))
        );
        assert_eq!(
            profile_name_to_service_account("ksa.default.test.foo"),
            Ok(("default", "test.foo"))
        );
        assert!(matches!(
            profile_name_to_service_account("ns.projectcalico.org/default"),
            Err(ConversionError::NotServiceAccountProfile(_))
        ));
        assert!(matches!(
            profile_name_to_service_account("ksa.default"),
            Err(ConversionError::BadProfileName(_))
        ));
        assert_eq!(service_account_profile_name("", "sa"), "ksa.default.sa");
        assert_eq!(service_account_profile_name("ns1", "sa"), "ksa.ns1.sa");
    }

    #[test]
    fn revisions() {
        // Calico conversion_test.go "should handle ServiceAccount resource versions".
        assert_eq!(join_profile_revisions("1234", "5678"), "1234/5678");
        assert_eq!(join_profile_revisions("", "5678"), "/5678");
        assert_eq!(join_profile_revisions("1234", ""), "1234/");
        for (rev, ns, sa) in [
            ("", "", ""),
            ("0", "", ""),
            ("/", "", ""),
            ("1234/5678", "1234", "5678"),
            ("/5678", "", "5678"),
            ("1234/", "1234", ""),
        ] {
            assert_eq!(split_profile_revision(rev), Ok((ns, sa)), "{rev:?}");
        }
        assert!(split_profile_revision("1234").is_err());
        assert!(split_profile_revision("1234/5678/1313").is_err());
    }
}
