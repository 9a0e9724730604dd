//! Names of chains, sets and maps in the table.
//!
//! The kernel limits object names to 255 bytes (`NFT_NAME_MAXLEN` is 256 including the NUL;
//! checked with nft 1.0.6: a 256-byte chain name fails with "Numerical result out of range"),
//! and nft's parser only accepts identifiers made of letters, digits and `/ _ . -` (starting
//! with a letter). Names are built like Felix's `GetLengthLimitedID`
//! (`libcalico-go/lib/hash/unique_id.go`): a fixed prefix plus the readable suffix when it
//! fits, else `_` plus the base64url SHA-256 of the suffix truncated to fit. Unlike Felix we
//! also hash suffixes that contain characters nft cannot parse or that start with `_` (so a
//! readable suffix can never collide with a hashed one).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use calico_dataplane_model::PolicyId;
use sha2::{Digest, Sha256};

/// Longest object name the kernel accepts.
pub const MAX_NAME_LEN: usize = 255;

/// Characters nft's scanner accepts after the first letter of an identifier.
fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '.' | '-')
}

/// `prefix` + `suffix`, or `prefix` + `_` + hash when the suffix is too long, empty, not an
/// identifier tail, or starts with `_` (Felix `GetLengthLimitedID`, plus the identifier rule).
pub fn length_limited(prefix: &str, suffix: &str) -> String {
    let readable = !suffix.is_empty()
        && !suffix.starts_with('_')
        && suffix.chars().all(is_ident_char)
        && prefix.len() + suffix.len() <= MAX_NAME_LEN;
    if readable {
        return format!("{prefix}{suffix}");
    }
    let hash = URL_SAFE_NO_PAD.encode(Sha256::digest(suffix.as_bytes()));
    // 43 characters of hash are plenty; Felix truncates to what is left of the maximum.
    let room = MAX_NAME_LEN
        .saturating_sub(prefix.len() + 1)
        .min(hash.len());
    format!("{prefix}_{}", &hash[..room])
}

/// Policy chains: `pi-<tier>/<kind>/[<ns>/]<name>` (inbound), `po-…` (outbound). Felix uses
/// `cali-pi-<kind>/<ns>/<name>`; the tier is part of our key, so it is part of the name.
pub fn policy_chain(inbound: bool, id: &PolicyId) -> String {
    length_limited(if inbound { "pi-" } else { "po-" }, &id.to_string())
}

/// Profile chains: `pri-<name>` (inbound), `pro-<name>` (outbound) as Felix's `cali-pri-`.
pub fn profile_chain(inbound: bool, name: &str) -> String {
    length_limited(if inbound { "pri-" } else { "pro-" }, name)
}

/// Endpoint chains: `<prefix><interface>` (Felix `EndpointChainName`), e.g. `tw-cali12ab`.
pub fn endpoint_chain(prefix: &str, iface: &str) -> String {
    length_limited(prefix, iface)
}

/// Group chains of the global table: `gfw-` (from workload) / `gtw-` (to workload) and 22
/// characters (132 bits) of the SHA-256 of the group's key, so that every endpoint with the
/// same global prefix, in every process, names the same chain; and the group's id for the
/// `GLOBAL_GROUP` mark field, 1..=2047 from the same hash.
pub fn group_chain(ingress: bool, key: &str) -> (String, u16) {
    let digest = Sha256::digest(key.as_bytes());
    let id = u16::from_be_bytes([digest[0], digest[1]]) % 2047 + 1;
    let hash = URL_SAFE_NO_PAD.encode(digest);
    let name = format!("{}{}", if ingress { "gtw-" } else { "gfw-" }, &hash[..22]);
    (name, id)
}

/// What a named set holds, which fixes its nft type; part of the set's name so that a set
/// whose kind changes gets a new name (a set's type cannot be changed in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetType {
    /// Single addresses: a hash set (`ipv4_addr`, no interval flag).
    Addr,
    /// CIDRs: `flags interval`.
    Net,
    /// Address, protocol and port: `ipv4_addr . inet_proto . inet_service`.
    AddrPort,
}

impl SetType {
    fn letter(self) -> char {
        match self {
            SetType::Addr => 'a',
            SetType::Net => 'n',
            SetType::AddrPort => 'p',
        }
    }

    /// The set's declaration for family 4 or 6.
    pub fn spec(self, family: u8) -> String {
        let addr = if family == 4 {
            "ipv4_addr"
        } else {
            "ipv6_addr"
        };
        match self {
            SetType::Addr => format!("type {addr};"),
            SetType::Net => format!("type {addr}; flags interval;"),
            SetType::AddrPort => format!("type {addr} . inet_proto . inet_service;"),
        }
    }
}

/// Name of the nft set holding the family-`family` members of IP set `id`:
/// `<a|n|p><4|6>-<id>`. Calico's IDs look like `s:<base64url>` / `n:<base64url>`; the `:` is
/// not valid in an nft name, so such IDs are written `s/<base64url>` (`/` never occurs in an
/// ID written verbatim, so the mapping stays one-to-one). Other IDs are used verbatim when
/// they are identifier tails, else hashed.
pub fn ip_set(id: &str, ty: SetType, family: u8) -> String {
    let prefix = format!("{}{family}-", ty.letter());
    let mut chars = id.chars();
    let calico_shaped = matches!(
        (chars.next(), chars.next()),
        (Some(c), Some(':')) if c.is_ascii_alphabetic()
    ) && id.len() > 2
        && id[2..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if calico_shaped {
        length_limited(&prefix, &format!("{}/{}", &id[..1], &id[2..]))
    } else if id.contains('/') {
        length_limited(&prefix, &format!("_{id}"))
    } else {
        length_limited(&prefix, id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use calico_dataplane_model::PolicyKind;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(length_limited("tw-", "cali1234"), "tw-cali1234");
        assert_eq!(profile_chain(true, "kns.default"), "pri-kns.default");
        let id = PolicyId {
            tier: "default".into(),
            kind: PolicyKind::NetworkPolicy,
            namespace: "ns1".into(),
            name: "allow-web".into(),
        };
        assert_eq!(policy_chain(false, &id), "po-default/np/ns1/allow-web");
    }

    #[test]
    fn long_and_odd_names_are_hashed_within_the_limit() {
        let long = "x".repeat(300);
        let n = length_limited("pi-", &long);
        assert!(n.starts_with("pi-_"), "{n}");
        assert!(n.len() <= MAX_NAME_LEN);
        assert_eq!(n, length_limited("pi-", &long), "deterministic");
        assert_ne!(n, length_limited("pi-", &"x".repeat(301)));
        // Characters nft cannot parse, an empty suffix, a leading underscore.
        for odd in ["a b", "a:b", "", "_abc", "é"] {
            let n = length_limited("pro-", odd);
            assert!(n.starts_with("pro-_"), "{odd:?} -> {n}");
            assert!(
                n.chars()
                    .skip(5)
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
        }
        // Exactly at the limit is fine.
        let fits = "y".repeat(MAX_NAME_LEN - 3);
        assert_eq!(length_limited("pi-", &fits), format!("pi-{fits}"));
        assert!(length_limited("pi-", &format!("{fits}y")).starts_with("pi-_"));
    }

    #[test]
    fn hash_is_felix_get_length_limited_id() {
        // sha256("x"*300) base64url, as Felix's GetLengthLimitedID computes before truncating.
        let long = "x".repeat(300);
        let full = URL_SAFE_NO_PAD.encode(Sha256::digest(long.as_bytes()));
        assert_eq!(length_limited("pi-", &long), format!("pi-_{full}"));
    }

    #[test]
    fn ip_set_names_are_injective_and_typed() {
        assert_eq!(ip_set("s:abc-_9", SetType::Addr, 4), "a4-s/abc-_9");
        assert_eq!(ip_set("s:abc-_9", SetType::Net, 6), "n6-s/abc-_9");
        assert_eq!(ip_set("n:xyz", SetType::AddrPort, 4), "p4-n/xyz");
        assert_eq!(ip_set("s-abc", SetType::Addr, 4), "a4-s-abc");
        assert_ne!(
            ip_set("s:abc", SetType::Addr, 4),
            ip_set("s-abc", SetType::Addr, 4)
        );
        // A verbatim ID containing '/' is hashed so it cannot collide with a Calico-shaped one.
        assert!(ip_set("s/abc", SetType::Addr, 4).starts_with("a4-_"));
        assert!(ip_set("weird id", SetType::Addr, 4).starts_with("a4-_"));
    }
}
