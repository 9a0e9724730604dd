//! Policy rules shared by every policy kind and Profile (`api/pkg/apis/projectcalico/v3/
//! policy_common.go`): [`Rule`], [`EntityRule`], [`IcmpFields`], [`HttpMatch`],
//! [`ServiceAccountMatch`], [`ServiceMatch`], [`Action`], and their validation — Calico's Go
//! validators (`validateRule`, `validateEntityRule`, `validatePort`, `validateProtocol`,
//! `validateHTTPRule`) plus the CRD schema limits and CEL rules on these types, each error
//! reported at its JSON path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::netutil;
use crate::numorstring::{Port, Protocol, all_ports_are_named};
use crate::validation;

/// CRD limits on rule fields (kubebuilder markers in `policy_common.go`).
pub const MAX_NETS: usize = 256;
pub const MAX_PORTS: usize = 50;
pub const MAX_SELECTOR_LEN: usize = 1024;
pub const MAX_HTTP_ITEMS: usize = 20;
pub const MAX_HTTP_PATH_LEN: usize = 1024;
pub const MAX_SERVICE_NAME_LEN: usize = 253;

const PORTS_NEED_PROTOCOL: &str =
    "rules that specify ports must set protocol to TCP or UDP or SCTP";
const NUMERIC_PORTS_NEED_PROTOCOL: &str =
    "rules with numeric port or port range must set protocol to TCP or UDP or SCTP";
const GLOBAL_ONLY_IN_NAMESPACE_SELECTOR: &str =
    "global() can only be used in an EntityRule namespaceSelector";

/// Which of Calico's checks apply. Kinds with a CRD (policies, tiers, host endpoints, ...) get
/// the CRD schema limits and CEL rules on top of the Go validators; Profile has no CRD, so in
/// etcd mode Calico checks its rules with the Go validators only (`validateRule`,
/// `validateEntityRule`, field tags) — and so do we, to accept exactly what Calico accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Go validators + CRD OpenAPI limits + CEL rules.
    Crd,
    /// Go validators only.
    GoOnly,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Allow,
    Deny,
    Log,
    Pass,
    /// Any other text. Kinds with a CRD reject it (the schema's enum); Calico's Go validators,
    /// which are all a Profile gets, do not look at the action, so it is kept as written.
    Other(String),
}

/// The actions the CRD schema allows.
pub const ACTIONS: [&str; 4] = ["Allow", "Deny", "Log", "Pass"];

impl Action {
    pub fn as_str(&self) -> &str {
        match self {
            Action::Allow => "Allow",
            Action::Deny => "Deny",
            Action::Log => "Log",
            Action::Pass => "Pass",
            Action::Other(s) => s,
        }
    }

    /// Exact (case-sensitive) names, as the CRD enum compares them.
    pub fn parse(s: &str) -> Action {
        match s {
            "Allow" => Action::Allow,
            "Deny" => Action::Deny,
            "Log" => Action::Log,
            "Pass" => Action::Pass,
            other => Action::Other(other.to_string()),
        }
    }
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        String::deserialize(d).map(|s| Action::parse(&s))
    }
}

/// Which direction(s) a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyType {
    Ingress,
    Egress,
}

/// One rule: match criteria and an action. Field order follows Calico's struct so encoded JSON
/// matches what Calico stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Required; `None` only when a document omitted it (reported by validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// 4 or 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<Protocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<IcmpFields>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_protocol: Option<Protocol>,
    #[serde(default, rename = "notICMP", skip_serializing_if = "Option::is_none")]
    pub not_icmp: Option<IcmpFields>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "EntityRule::is_empty"
    )]
    pub source: EntityRule,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "EntityRule::is_empty"
    )]
    pub destination: EntityRule,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<RuleMetadata>,
}

/// ICMP type/code match. Signed so out-of-range input decodes and is reported by validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IcmpFields {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
}

/// Match criteria for the source or destination of a packet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityRule {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nets: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub selector: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace_selector: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ServiceMatch>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<Port>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_nets: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub not_selector: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub not_ports: Vec<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_accounts: Option<ServiceAccountMatch>,
}

impl EntityRule {
    /// Go's `omitzero`: an EntityRule with nothing set is left out of the JSON.
    pub fn is_empty(&self) -> bool {
        *self == EntityRule::default()
    }
}

/// A Kubernetes Service match (name, optional namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceMatch {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub name: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub namespace: String,
}

/// A service-account match; names and selector are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountMatch {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub names: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub selector: String,
}

/// HTTP (L7) match: methods ORed, paths ORed, the two ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpMatch {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub methods: Vec<String>,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub paths: Vec<HttpPath>,
}

/// One HTTP path match: exactly one of `exact` / `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPath {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub exact: String,
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub prefix: String,
}

/// Free-form annotations on a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleMetadata {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// Go encodes a float64 with an integral value without a fraction (`100`, not `100.0`); policy
/// and tier `order` must look the same in stored JSON.
pub mod go_float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Largest magnitude below which every integral f64 is exactly an i64 (2^53).
    const EXACT_INT: f64 = 9_007_199_254_740_992.0;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(f) if f.fract() == 0.0 && f.abs() < EXACT_INT => s.serialize_i64(*f as i64),
            Some(f) => s.serialize_f64(*f),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<f64>::deserialize(d)
    }
}

/// Reports `value` if it is longer than `max` bytes (CRD `maxLength`).
pub(crate) fn check_max_len(value: &str, max: usize, path: &FieldPath, errs: &mut FieldErrors) {
    let n = value.chars().count();
    if n > max {
        errs.push(
            path,
            format!("Too long: may not be more than {max} bytes (found {n})"),
        );
    }
}

/// Reports a list longer than `max` items (CRD `maxItems`).
pub(crate) fn check_max_items(len: usize, max: usize, path: &FieldPath, errs: &mut FieldErrors) {
    if len > max {
        errs.push(
            path,
            format!("Too many: {len}: must have at most {max} items"),
        );
    }
}

/// A selector field: parses with Calico's grammar (Go `selector` tag) and, where the CRD says
/// so, is at most `max_len` characters.
pub(crate) fn check_selector(
    sel: &str,
    max_len: Option<usize>,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if sel.is_empty() {
        return;
    }
    if let Some(max) = max_len {
        check_max_len(sel, max, path, errs);
    }
    validation::validate_selector(sel, path, errs);
}

/// The CEL rule on policy specs and entity selectors: `global()` may only appear in an
/// EntityRule `namespaceSelector` (a plain substring test, as Calico's CEL does).
pub(crate) fn check_no_global(sel: &str, path: &FieldPath, errs: &mut FieldErrors) {
    if sel.contains("global(") {
        errs.push(path, GLOBAL_ONLY_IN_NAMESPACE_SELECTOR);
    }
}

/// Calico `validateProtocol` on a protocol field.
fn check_protocol(p: &Protocol, path: &FieldPath, errs: &mut FieldErrors) {
    if let Some(problem) = p.problem() {
        errs.push(path, problem);
    }
}

impl IcmpFields {
    /// Bounds from the struct tags (type 0-254, code 0-255) and the CEL rule that a code needs
    /// a type.
    pub fn validate(&self, path: &FieldPath, schema: Schema, errs: &mut FieldErrors) {
        if let Some(t) = self.type_ {
            netutil::check_range(t, Some(0), Some(254), &path.field("type"), errs);
        }
        if let Some(c) = self.code {
            netutil::check_range(c, Some(0), Some(255), &path.field("code"), errs);
            if schema == Schema::Crd && self.type_.is_none() {
                errs.push(
                    &path.field("code"),
                    "ICMP code specified without an ICMP type",
                );
            }
        }
    }
}

impl HttpMatch {
    /// Calico `validateHTTPRule`: no duplicate methods; each path sets exactly one of
    /// exact/prefix, starts with `/` and has no `?`, `#` or space (RFC 3986 §3.3).
    pub fn validate(&self, path: &FieldPath, schema: Schema, errs: &mut FieldErrors) {
        let crd = schema == Schema::Crd;
        let methods = path.field("methods");
        if crd {
            check_max_items(self.methods.len(), MAX_HTTP_ITEMS, &methods, errs);
        }
        for (i, m) in self.methods.iter().enumerate() {
            if self.methods[..i].contains(m) {
                errs.push(
                    &methods.index(i),
                    format!("Invalid methods (duplicates): method {m:?} is listed more than once"),
                );
            }
        }
        let paths = path.field("paths");
        if crd {
            check_max_items(self.paths.len(), MAX_HTTP_ITEMS, &paths, errs);
        }
        for (i, p) in self.paths.iter().enumerate() {
            let pp = paths.index(i);
            if crd {
                check_max_len(&p.exact, MAX_HTTP_PATH_LEN, &pp.field("exact"), errs);
                check_max_len(&p.prefix, MAX_HTTP_PATH_LEN, &pp.field("prefix"), errs);
            }
            if !p.exact.is_empty() && !p.prefix.is_empty() {
                errs.push(&pp, "Invalid path match. Both 'exact' and 'prefix' are set");
                continue;
            }
            let v = if p.exact.is_empty() {
                &p.prefix
            } else {
                &p.exact
            };
            if v.is_empty() {
                errs.push(
                    &pp,
                    "Invalid path match. Either 'exact' or 'prefix' must be set",
                );
            } else if !v.starts_with('/') || v.contains(['?', ' ', '#']) {
                errs.push(
                    &pp,
                    format!("Invalid path {v}. (must start with `/` and not contain `?` or `#`"),
                );
            }
        }
    }
}

impl EntityRule {
    /// Field checks of one side of a rule (the checks that do not depend on the rest of the
    /// rule): CIDR syntax and masking, selector syntax, port values, CRD limits, and the CEL
    /// rules of `EntityRule`.
    pub fn validate(&self, path: &FieldPath, schema: Schema, errs: &mut FieldErrors) {
        let crd = schema == Schema::Crd;
        let sel_max = crd.then_some(MAX_SELECTOR_LEN);
        for (field, nets) in [("nets", &self.nets), ("notNets", &self.not_nets)] {
            let p = path.field(field);
            if crd {
                check_max_items(nets.len(), MAX_NETS, &p, errs);
            }
            for (i, n) in nets.iter().enumerate() {
                // Calico's `net` tag: an IP or CIDR with no host bits set.
                if !netutil::is_masked_network(n) {
                    errs.push(
                        &p.index(i),
                        format!("invalid network {n:?}: must be a CIDR with no host bits set"),
                    );
                }
            }
        }
        for (field, ports) in [("ports", &self.ports), ("notPorts", &self.not_ports)] {
            let p = path.field(field);
            if crd {
                check_max_items(ports.len(), MAX_PORTS, &p, errs);
            }
            for (i, port) in ports.iter().enumerate() {
                for problem in port.problems() {
                    errs.push(&p.index(i), problem);
                }
            }
        }
        check_selector(&self.selector, sel_max, &path.field("selector"), errs);
        if crd {
            check_no_global(&self.selector, &path.field("selector"), errs);
        }
        check_selector(
            &self.not_selector,
            sel_max,
            &path.field("notSelector"),
            errs,
        );
        let ns_path = path.field("namespaceSelector");
        check_selector(&self.namespace_selector, sel_max, &ns_path, errs);
        // Calico `validateEntityRule`: a namespaceSelector using global() must be only that.
        if self.namespace_selector.contains("global(") && !is_only_global(&self.namespace_selector)
        {
            errs.push(&ns_path, "global() cannot be combined with other selectors");
        }
        if let Some(sa) = &self.service_accounts {
            // No MaxLength marker on this one.
            check_selector(
                &sa.selector,
                None,
                &path.field("serviceAccounts").field("selector"),
                errs,
            );
        }
        if let Some(svc) = &self.services {
            let sp = path.field("services");
            for (field, v) in [("name", &svc.name), ("namespace", &svc.namespace)] {
                if v.is_empty() {
                    continue;
                }
                if crd {
                    check_max_len(v, MAX_SERVICE_NAME_LEN, &sp.field(field), errs);
                }
                if !netutil::is_name(v) {
                    errs.push(
                        &sp.field(field),
                        format!(
                            "invalid {field} {v:?}: must consist of lower case alphanumeric \
                             characters, '-' or '.' (regex: {})",
                            validation::NAME_SUBDOMAIN_FMT
                        ),
                    );
                }
            }
            // CEL rules on EntityRule: a Services match stands alone.
            if !crd {
                return;
            }
            if svc.name.is_empty() {
                errs.push(&sp.field("name"), "services must specify a service name");
            }
            if !self.namespace_selector.is_empty() {
                errs.push(
                    &sp,
                    "cannot specify NamespaceSelector and Services on the same rule",
                );
            }
            if self.service_accounts.is_some() {
                errs.push(
                    &sp,
                    "cannot specify ServiceAccounts and Services on the same rule",
                );
            }
            if !self.selector.is_empty() || !self.not_selector.is_empty() {
                errs.push(
                    &sp,
                    "cannot specify Selector/NotSelector and Services on the same rule",
                );
            }
            if !self.nets.is_empty() || !self.not_nets.is_empty() {
                errs.push(
                    &sp,
                    "cannot specify Nets/NotNets and Services on the same rule",
                );
            }
        }
    }
}

/// Whether a selector that mentions `global(` is exactly `global()`, with the spaces/tabs
/// Calico's tokenizer skips around the tokens and inside the parentheses (`global( )`).
fn is_only_global(sel: &str) -> bool {
    let ws: &[char] = &[' ', '\t'];
    sel.trim_matches(ws)
        .strip_prefix("global(")
        .is_some_and(|rest| rest.trim_start_matches(ws) == ")")
}

impl Rule {
    /// Every check Calico makes on one rule, with paths under `path` (e.g. `spec.ingress[0]`).
    pub fn validate(&self, path: &FieldPath, schema: Schema, errs: &mut FieldErrors) {
        let crd = schema == Schema::Crd;
        // `action` is required and `ipVersion` an enum only through the CRD schema.
        match &self.action {
            None if crd => errs.push(
                &path.field("action"),
                "Required value: action is required (one of Allow, Deny, Log, Pass)",
            ),
            Some(Action::Other(a)) if crd => errs.push(
                &path.field("action"),
                crate::netutil::unsupported_value(a, &ACTIONS),
            ),
            _ => {}
        }
        if let Some(v) = self.ip_version
            && crd
            && v != 4
            && v != 6
        {
            errs.push(
                &path.field("ipVersion"),
                format!("Unsupported value: {v}: supported values: 4, 6"),
            );
        }
        if let Some(p) = &self.protocol {
            check_protocol(p, &path.field("protocol"), errs);
        }
        if let Some(p) = &self.not_protocol {
            check_protocol(p, &path.field("notProtocol"), errs);
        }
        if let Some(icmp) = &self.icmp {
            icmp.validate(&path.field("icmp"), schema, errs);
        }
        if let Some(icmp) = &self.not_icmp {
            icmp.validate(&path.field("notICMP"), schema, errs);
        }
        self.source.validate(&path.field("source"), schema, errs);
        self.destination
            .validate(&path.field("destination"), schema, errs);
        if let Some(http) = &self.http {
            http.validate(&path.field("http"), schema, errs);
        }
        if let Some(md) = &self.metadata {
            validation::validate_annotations(
                &md.annotations,
                &path.field("metadata").field("annotations"),
                errs,
            );
        }
        self.validate_ports_need_protocol(path, errs);
        self.validate_nets_ip_version(path, errs);
        if crd {
            self.validate_cel(path, errs);
        }
    }

    /// Calico `validateRule`: numeric ports need a protocol, and any port needs a protocol that
    /// has ports (TCP, UDP, SCTP). Named ports alone are allowed without a protocol.
    fn validate_ports_need_protocol(&self, path: &FieldPath, errs: &mut FieldErrors) {
        let sides = [
            ("source", "ports", &self.source.ports),
            ("source", "notPorts", &self.source.not_ports),
            ("destination", "ports", &self.destination.ports),
            ("destination", "notPorts", &self.destination.not_ports),
        ];
        for (side, field, ports) in sides {
            let p = path.field(side).field(field);
            match &self.protocol {
                None if !all_ports_are_named(ports) => errs.push(&p, NUMERIC_PORTS_NEED_PROTOCOL),
                Some(proto) if !proto.supports_ports() && !ports.is_empty() => {
                    errs.push(&p, PORTS_NEED_PROTOCOL)
                }
                _ => {}
            }
        }
    }

    /// Calico `validateRule` net scan: every nets/notNets entry is a CIDR (`addr/len`), a
    /// catch-all CIDR is not negated, the CIDR family matches `ipVersion`, and one rule never
    /// mixes IPv4 and IPv6.
    fn validate_nets_ip_version(&self, path: &FieldPath, errs: &mut FieldErrors) {
        let (mut seen_v4, mut seen_v6) = (false, false);
        let lists = [
            ("source", "nets", &self.source.nets),
            ("source", "notNets", &self.source.not_nets),
            ("destination", "nets", &self.destination.nets),
            ("destination", "notNets", &self.destination.not_nets),
        ];
        for (side, field, nets) in lists {
            let p = path.field(side).field(field);
            let negated = field == "notNets";
            let (mut v4, mut v6) = (false, false);
            for (i, n) in nets.iter().enumerate() {
                let Some(cidr) = netutil::parse_cidr(n) else {
                    errs.push(&p.index(i), format!("invalid CIDR {n:?}"));
                    continue;
                };
                let version = cidr.version();
                v4 |= version == 4;
                v6 |= version == 6;
                // Go compares the IPv4 text with "0.0.0.0/0" and the IPv6 network with ::/0.
                let catch_all = cidr.prefix_len == 0
                    && if version == 4 {
                        cidr.addr.is_unspecified()
                    } else {
                        cidr.network().addr().is_unspecified()
                    };
                if negated && catch_all {
                    errs.push(
                        &p.index(i),
                        format!(
                            "catch-all CIDR {n} in negation creates logical contradiction \
                             (matches no traffic)"
                        ),
                    );
                }
            }
            if let Some(want) = self.ip_version
                && ((v4 && want != 4) || (v6 && want != 6))
            {
                errs.push(&p, "rule IP version doesn't match CIDR version");
            }
            if (v4 && seen_v6) || (v6 && seen_v4) || (v4 && v6) {
                errs.push(&p, "rule contains both IPv4 and IPv6 CIDRs");
            }
            seen_v4 |= v4;
            seen_v6 |= v6;
        }
    }

    /// The CEL rules on `Rule` (`policy_common.go` XValidation markers).
    fn validate_cel(&self, path: &FieldPath, errs: &mut FieldErrors) {
        if self.http.is_some() {
            if let Some(p) = &self.protocol
                && !p.is_tcp()
            {
                errs.push(
                    &path.field("http"),
                    "rules with HTTP match must have protocol TCP or unset",
                );
            }
            if self.action != Some(Action::Allow) {
                errs.push(
                    &path.field("http"),
                    "HTTP match is only valid on Allow rules",
                );
            }
        }
        if self.destination.services.is_some()
            && (!self.destination.ports.is_empty() || !self.destination.not_ports.is_empty())
        {
            errs.push(
                &path.field("destination").field("services"),
                "ports and notPorts cannot be specified with services",
            );
        }
        if self.icmp.is_some()
            && !self
                .protocol
                .as_ref()
                .is_some_and(|p| p.is_icmp() || p.is_icmpv6())
        {
            errs.push(
                &path.field("icmp"),
                "ICMP fields require protocol to be ICMP or ICMPv6",
            );
        }
        for (field, proto) in [
            ("protocol", &self.protocol),
            ("notProtocol", &self.not_protocol),
        ] {
            let Some(proto) = proto else { continue };
            match self.ip_version {
                Some(v) if proto.is_icmp() && v != 4 => {
                    errs.push(&path.field(field), "protocol ICMP requires ipVersion 4")
                }
                Some(v) if proto.is_icmpv6() && v != 6 => {
                    errs.push(&path.field(field), "protocol ICMPv6 requires ipVersion 6")
                }
                _ => {}
            }
        }
    }
}

/// Which list a rule sits in; the policy-level checks differ by direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

/// Validates a list of rules (`spec.ingress` / `spec.egress`), with the CRD item limit when the
/// kind has a CRD.
pub fn validate_rules(
    rules: &[Rule],
    max: usize,
    path: &FieldPath,
    schema: Schema,
    errs: &mut FieldErrors,
) {
    if schema == Schema::Crd {
        check_max_items(rules.len(), max, path, errs);
    }
    for (i, r) in rules.iter().enumerate() {
        r.validate(&path.index(i), schema, errs);
    }
}

/// Calico `validateNetworkPolicySpec` / `validateGlobalNetworkPolicySpec` rule checks:
/// Services only as an egress destination or an ingress source; no HTTP match on egress;
/// for global policies a Services match must name its namespace.
pub fn validate_policy_rule_directions(
    rules: &[Rule],
    dir: Direction,
    global: bool,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    for (i, r) in rules.iter().enumerate() {
        let rp = path.index(i);
        match dir {
            Direction::Egress => {
                if r.source.services.is_some() {
                    errs.push(
                        &rp.field("source").field("services"),
                        "not allowed in egress rule source",
                    );
                }
                if r.http.is_some() {
                    // Calico's wording differs by kind (validateNetworkPolicySpec says "rule").
                    let msg = if global {
                        "not allowed in egress rules"
                    } else {
                        "not allowed in egress rule"
                    };
                    errs.push(&rp.field("http"), msg);
                }
                if global
                    && let Some(s) = &r.destination.services
                    && s.namespace.is_empty()
                {
                    errs.push(
                        &rp.field("destination").field("services").field("namespace"),
                        "must specify a namespace",
                    );
                }
            }
            Direction::Ingress => {
                if r.destination.services.is_some() {
                    errs.push(
                        &rp.field("destination").field("services"),
                        "not allowed in ingress rule destination",
                    );
                }
                if global
                    && let Some(s) = &r.source.services
                    && s.namespace.is_empty()
                {
                    errs.push(
                        &rp.field("source").field("services").field("namespace"),
                        "must specify a namespace",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn errors_of(rule: serde_json::Value) -> Vec<String> {
        let r: Rule = serde_json::from_value(rule).unwrap();
        let mut errs = FieldErrors::new();
        r.validate(
            &FieldPath::root().field("spec").field("ingress").index(0),
            Schema::Crd,
            &mut errs,
        );
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn rule_json_shape_round_trips() {
        let v = serde_json::json!({
            "action": "Allow", "protocol": "TCP",
            "source": {"selector": "a == 'b'"},
            "destination": {"ports": [80, "90:99", "http"]}
        });
        let r: Rule = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(r.destination.ports[1], Port::range(90, 99).unwrap());
        assert_eq!(serde_json::to_value(&r).unwrap(), v);
    }

    #[test]
    fn errors_name_the_field() {
        let e = errors_of(serde_json::json!({
            "action": "Allow", "destination": {"ports": [80]}
        }));
        assert_eq!(
            e,
            vec![format!(
                "spec.ingress[0].destination.ports: {NUMERIC_PORTS_NEED_PROTOCOL}"
            )]
        );
        let e = errors_of(serde_json::json!({"action": "Deny", "icmp": {"type": 8}}));
        assert_eq!(
            e,
            vec!["spec.ingress[0].icmp: ICMP fields require protocol to be ICMP or ICMPv6"]
        );
        let e = errors_of(serde_json::json!({
            "action": "Deny", "ipVersion": 6, "source": {"nets": ["10.0.0.0/8"]}
        }));
        assert_eq!(
            e,
            vec!["spec.ingress[0].source.nets: rule IP version doesn't match CIDR version"]
        );
    }

    #[test]
    fn global_namespace_selector_forms() {
        assert!(is_only_global("global()"));
        assert!(is_only_global("  global( \t)  "));
        assert!(!is_only_global("global() && a == 'b'"));
        assert!(!is_only_global("global ()"));
    }

    #[test]
    fn order_is_encoded_like_go() {
        #[derive(Serialize)]
        struct O {
            #[serde(with = "go_float")]
            o: Option<f64>,
        }
        let s = |o| serde_json::to_string(&O { o }).unwrap();
        assert_eq!(s(Some(100.0)), r#"{"o":100}"#);
        assert_eq!(s(Some(100.5)), r#"{"o":100.5}"#);
    }
}
