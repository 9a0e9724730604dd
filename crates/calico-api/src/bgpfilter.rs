//! BGPFilter (`api/pkg/apis/projectcalico/v3/bgpfilter.go`): ordered import/export rules per
//! address family, referenced by name from BGPPeer `filters`.
//!
//! Validation: the Go field validators (`netv4`/`netv6`, `bgpFilterInterface`,
//! `bgpFilterPrefixLengthV4/V6`) in `libcalico-go/lib/validator/v3/validator.go` and the CRD
//! schema + CEL rules on the rule types (cidr and matchOperator both-or-neither, prefixLength
//! needs cidr, operations only with Accept, one field per operation, community value patterns).

use serde::{Deserialize, Serialize};

use crate::asnumber::ASNumber;
use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};

pub const MATCH_OPERATORS: &[&str] = &["Equal", "NotEqual", "In", "NotIn"];
pub const ACTIONS: &[&str] = &["Accept", "Reject"];
pub const SOURCES: &[&str] = &["RemotePeers"];
pub const PEER_TYPES: &[&str] = &["eBGP", "iBGP"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilter {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: BGPFilterSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterSpec {
    #[serde(rename = "exportV4", default, skip_serializing_if = "Vec::is_empty")]
    pub export_v4: Vec<BGPFilterRule>,
    #[serde(rename = "importV4", default, skip_serializing_if = "Vec::is_empty")]
    pub import_v4: Vec<BGPFilterRule>,
    #[serde(rename = "exportV6", default, skip_serializing_if = "Vec::is_empty")]
    pub export_v6: Vec<BGPFilterRule>,
    #[serde(rename = "importV6", default, skip_serializing_if = "Vec::is_empty")]
    pub import_v6: Vec<BGPFilterRule>,
}

/// `BGPFilterRuleV4` / `BGPFilterRuleV6` (same fields; the family is checked by the list the
/// rule is in). Field order follows the Go struct.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterRule {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cidr: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_length: Option<BGPFilterPrefixLength>,
    /// `RemotePeers`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Interface name glob (`*` wildcards).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// `Equal` | `NotEqual` | `In` | `NotIn`; required exactly when `cidr` is set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub match_operator: String,
    /// `eBGP` | `iBGP`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub peer_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub communities: Option<BGPFilterCommunityMatch>,
    #[serde(
        rename = "asPathPrefix",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub as_path_prefix: Vec<ASNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// `Accept` | `Reject` (required; Go always writes it).
    #[serde(default)]
    pub action: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<BGPFilterOperation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterPrefixLength {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterCommunityMatch {
    /// Exactly one value.
    #[serde(default)]
    pub values: Vec<String>,
}

/// A route modification; exactly one field must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterOperation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_community: Option<BGPFilterAddCommunity>,
    #[serde(
        rename = "prependASPath",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prepend_as_path: Option<BGPFilterPrependASPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_priority: Option<BGPFilterSetPriority>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterAddCommunity {
    /// Required; Go writes `null` when unset.
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterPrependASPath {
    /// 1–10 AS numbers.
    #[serde(default)]
    pub prefix: Vec<ASNumber>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPFilterSetPriority {
    /// 1–2147483646 (required; Go writes `null` when unset).
    #[serde(default)]
    pub value: Option<i64>,
}

impl CalicoResource for BGPFilter {
    const KIND: &'static str = "BGPFilter";

    crate::resource::metadata_accessors!();

    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        let spec = FieldPath::root().field("spec");
        for (name, rules, v6) in [
            ("exportV4", &self.spec.export_v4, false),
            ("importV4", &self.spec.import_v4, false),
            ("exportV6", &self.spec.export_v6, true),
            ("importV6", &self.spec.import_v6, true),
        ] {
            for (i, r) in rules.iter().enumerate() {
                validate_rule(r, v6, &spec.field(name).index(i), errs);
            }
        }
    }
}

/// `BGPCommunityValue`'s schema pattern: `aa:nn` with 16-bit parts or `aa:nn:mm` with 32-bit
/// parts, decimal without leading zeros, at most 32 characters.
pub fn is_bgp_community_value(v: &str) -> bool {
    if v.len() > 32 {
        return false;
    }
    let parts: Vec<&str> = v.split(':').collect();
    let max = match parts.len() {
        2 => u64::from(u16::MAX),
        3 => u64::from(u32::MAX),
        _ => return false,
    };
    parts.iter().all(|p| {
        !p.is_empty()
            && p.len() <= 10
            && p.bytes().all(|b| b.is_ascii_digit())
            && (p.len() == 1 || !p.starts_with('0'))
            && p.parse::<u64>().is_ok_and(|n| n <= max)
    })
}

fn community_error(v: &str) -> String {
    format!(
        "Invalid value: {v:?}: must be a BGP community aa:nn (16-bit parts) or aa:nn:mm (32-bit \
         parts) without leading zeros"
    )
}

fn validate_rule(r: &BGPFilterRule, v6: bool, path: &FieldPath, errs: &mut FieldErrors) {
    let (max_cidr_len, max_prefix) = if v6 { (43, 128) } else { (18, 32) };
    if !r.cidr.is_empty() {
        let fam_ok = netutil::parse_cidr_or_ip(&r.cidr)
            .is_some_and(|c| c.is_masked() && c.version() == if v6 { 6 } else { 4 });
        if r.cidr.len() > max_cidr_len {
            errs.push(
                &path.field("cidr"),
                format!("Too long: may not be longer than {max_cidr_len}"),
            );
        } else if !fam_ok {
            errs.push(
                &path.field("cidr"),
                format!(
                    "Invalid value: {:?}: must be a strictly masked IPv{} network",
                    r.cidr,
                    if v6 { 6 } else { 4 }
                ),
            );
        }
    }
    if let Some(pl) = &r.prefix_length {
        for (name, v) in [("min", pl.min), ("max", pl.max)] {
            if let Some(v) = v {
                netutil::check_range(
                    i64::from(v),
                    Some(0),
                    Some(max_prefix),
                    &path.field("prefixLength").field(name),
                    errs,
                );
            }
        }
    }
    if !r.source.is_empty() {
        netutil::check_enum(&r.source, SOURCES, &path.field("source"), errs);
    }
    if !r.interface.is_empty() && r.interface != "*" && !netutil::is_interface_glob(&r.interface) {
        errs.push(
            &path.field("interface"),
            format!(
                "invalid interface {:?}: must match ^[a-zA-Z0-9_.*-]{{1,15}}$",
                r.interface
            ),
        );
    }
    if !r.match_operator.is_empty() {
        netutil::check_enum(
            &r.match_operator,
            MATCH_OPERATORS,
            &path.field("matchOperator"),
            errs,
        );
    }
    if !r.peer_type.is_empty() {
        netutil::check_enum(&r.peer_type, PEER_TYPES, &path.field("peerType"), errs);
    }
    if let Some(c) = &r.communities {
        let p = path.field("communities").field("values");
        if c.values.len() != 1 {
            errs.push(
                &p,
                format!("must have exactly 1 item, found {}", c.values.len()),
            );
        }
        for (i, v) in c.values.iter().enumerate() {
            if !is_bgp_community_value(v) {
                errs.push(&p.index(i), community_error(v));
            }
        }
    }
    if let Some(prio) = r.priority {
        netutil::check_range(
            prio,
            Some(1),
            Some(2147483646),
            &path.field("priority"),
            errs,
        );
    }
    if r.action.is_empty() {
        errs.push(&path.field("action"), "Required value: action must be set");
    } else {
        netutil::check_enum(&r.action, ACTIONS, &path.field("action"), errs);
    }

    // CEL rules.
    if r.cidr.is_empty() != r.match_operator.is_empty() {
        let field = if r.cidr.is_empty() {
            "cidr"
        } else {
            "matchOperator"
        };
        errs.push(
            &path.field(field),
            "cidr and matchOperator must both be set or both be empty",
        );
    }
    if r.prefix_length.is_some() && r.cidr.is_empty() {
        errs.push(
            &path.field("prefixLength"),
            "cidr is required when prefixLength is set",
        );
    }
    if !r.operations.is_empty() && r.action != "Accept" {
        errs.push(
            &path.field("operations"),
            "operations may only be used with action Accept",
        );
    }

    let opath = path.field("operations");
    if r.operations.len() > 10 {
        errs.push(
            &opath,
            format!(
                "Too many: {}: must have at most 10 items",
                r.operations.len()
            ),
        );
    }
    for (i, op) in r.operations.iter().enumerate() {
        validate_operation(op, &opath.index(i), errs);
    }
}

fn validate_operation(op: &BGPFilterOperation, path: &FieldPath, errs: &mut FieldErrors) {
    let set = usize::from(op.add_community.is_some())
        + usize::from(op.prepend_as_path.is_some())
        + usize::from(op.set_priority.is_some());
    if set == 0 {
        errs.push(path, "Invalid value: should have at least 1 properties");
    } else if set > 1 {
        errs.push(path, format!("Too many: {set}: must have at most 1 items"));
    }
    if let Some(ac) = &op.add_community {
        let p = path.field("addCommunity").field("value");
        match &ac.value {
            None => errs.push(&p, "Required value"),
            Some(v) if !is_bgp_community_value(v) => errs.push(&p, community_error(v)),
            Some(_) => {}
        }
    }
    if let Some(pp) = &op.prepend_as_path {
        let p = path.field("prependASPath").field("prefix");
        if pp.prefix.is_empty() {
            errs.push(&p, "Required value: at least one AS number");
        } else if pp.prefix.len() > 10 {
            errs.push(
                &p,
                format!("Too many: {}: must have at most 10 items", pp.prefix.len()),
            );
        }
    }
    if let Some(sp) = &op.set_priority {
        let p = path.field("setPriority").field("value");
        match sp.value {
            None => errs.push(&p, "Required value"),
            Some(v) => netutil::check_range(v, Some(1), Some(2147483646), &p, errs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_pattern() {
        for ok in [
            "0:0",
            "65535:65535",
            "1:1:1",
            "4294967295:4294967295:4294967295",
        ] {
            assert!(is_bgp_community_value(ok), "{ok}");
        }
        for bad in [
            "",
            "12345",
            "1:2:3:4",
            "01:02",
            "65536:0",
            "4294967296:0:0",
            "100 : 200",
        ] {
            assert!(!is_bgp_community_value(bad), "{bad}");
        }
    }
}
