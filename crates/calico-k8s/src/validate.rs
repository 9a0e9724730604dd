//! What the Kubernetes API server does to these objects before storing them: defaulting
//! (`pkg/apis/networking/v1/defaults.go`) and validation (`pkg/apis/networking/validation`,
//! `apimachinery/pkg/api/validation`, `apimachinery/pkg/util/validation`).
//!
//! Errors carry the field path a user sees in their YAML and the Kubernetes wording:
//! `spec.ingress[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive`.
//! Every problem is reported, not just the first.

use std::collections::BTreeMap;

use calico_api::meta::ObjectMeta;
use calico_api::netutil::parse_cidr;
use calico_api::validation::{
    DNS1123_LABEL_MAX_LEN, DNS1123_SUBDOMAIN_MAX_LEN, NAME_LABEL_FMT, NAME_SUBDOMAIN_FMT,
    is_dns1123_label, is_dns1123_subdomain, label_value_errors, qualified_name_errors,
    validate_annotations,
};
use calico_api::{FieldErrors, FieldPath};

use crate::types::{
    IntOrString, IpBlock, LabelSelector, Namespace, NetworkPolicy, NetworkPolicyPeer,
    NetworkPolicyPort, ServiceAccount,
};

/// Protocols a NetworkPolicy port may name (exact case).
pub const PORT_PROTOCOLS: [&str; 3] = ["TCP", "UDP", "SCTP"];
/// Policy types a NetworkPolicy may list.
pub const POLICY_TYPES: [&str; 2] = ["Ingress", "Egress"];
/// Namespace kubectl puts a namespaced object in when none is given.
pub const DEFAULT_NAMESPACE: &str = "default";
/// `IANA_SVC_NAME` maximum length.
const PORT_NAME_MAX_LEN: usize = 15;

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn invalid(errs: &mut FieldErrors, path: &FieldPath, value: &str, detail: &str) {
    errs.push(path, format!("Invalid value: {value}: {detail}"));
}

fn unsupported(errs: &mut FieldErrors, path: &FieldPath, value: &str, allowed: &[&str]) {
    let allowed: Vec<String> = allowed.iter().map(|a| quoted(a)).collect();
    errs.push(
        path,
        format!(
            "Unsupported value: {}: supported values: {}",
            quoted(value),
            allowed.join(", ")
        ),
    );
}

/// `IsValidPortNum`.
fn port_num_errors(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// `IsValidPortName` (an `IANA_SVC_NAME`): ≤ 15 of `[-a-z0-9]`, at least one letter, no `--`,
/// no leading or trailing `-`.
pub fn port_name_errors(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.len() > PORT_NAME_MAX_LEN {
        out.push(format!(
            "must be no more than {PORT_NAME_MAX_LEN} characters"
        ));
    }
    let charset_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !charset_ok {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    } else if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)".into());
    }
    if name.contains("--") {
        out.push("must not contain consecutive hyphens".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        out.push("must not begin or end with a hyphen".into());
    }
    out
}

fn validate_label_map(labels: &BTreeMap<String, String>, path: &FieldPath, errs: &mut FieldErrors) {
    for (k, v) in labels {
        let p = path.key(k);
        for e in qualified_name_errors(k) {
            invalid(errs, &p, &quoted(k), &e);
        }
        for e in label_value_errors(v) {
            invalid(errs, &p, &quoted(v), &e);
        }
    }
}

/// `ValidateLabelSelector` (values must be valid label values).
pub fn validate_label_selector(sel: &LabelSelector, path: &FieldPath, errs: &mut FieldErrors) {
    validate_label_map(&sel.match_labels, &path.field("matchLabels"), errs);
    for (i, r) in sel.match_expressions.iter().enumerate() {
        let p = path.field("matchExpressions").index(i);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.is_empty() {
                    errs.push(
                        &p.field("values"),
                        "Required value: must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !r.values.is_empty() {
                    errs.push(
                        &p.field("values"),
                        "Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            other => invalid(
                errs,
                &p.field("operator"),
                &quoted(other),
                "not a valid selector operator",
            ),
        }
        for e in qualified_name_errors(&r.key) {
            invalid(errs, &p.field("key"), &quoted(&r.key), &e);
        }
        for (j, v) in r.values.iter().enumerate() {
            for e in label_value_errors(v) {
                invalid(errs, &p.field("values").index(j), &quoted(v), &e);
            }
        }
    }
}

/// `ValidateNetworkPolicyPort`.
pub fn validate_port(port: &NetworkPolicyPort, path: &FieldPath, errs: &mut FieldErrors) {
    if let Some(proto) = &port.protocol
        && !PORT_PROTOCOLS.contains(&proto.as_str())
    {
        unsupported(errs, &path.field("protocol"), proto, &PORT_PROTOCOLS);
    }
    let end_path = path.field("endPort");
    match &port.port {
        Some(IntOrString::Int(n)) => {
            for e in port_num_errors(i64::from(*n)) {
                invalid(errs, &path.field("port"), &n.to_string(), &e);
            }
            if let Some(end) = port.end_port {
                if end < *n {
                    // Kubernetes reports the start port as the value here.
                    invalid(
                        errs,
                        &end_path,
                        &n.to_string(),
                        "must be greater than or equal to `port`",
                    );
                }
                for e in port_num_errors(i64::from(end)) {
                    invalid(errs, &end_path, &end.to_string(), &e);
                }
            }
        }
        Some(IntOrString::Str(name)) => {
            if let Some(end) = port.end_port {
                invalid(
                    errs,
                    &end_path,
                    &end.to_string(),
                    "may not be specified when `port` is non-numeric",
                );
            }
            for e in port_name_errors(name) {
                invalid(errs, &path.field("port"), &quoted(name), &e);
            }
        }
        None => {
            if let Some(end) = port.end_port {
                invalid(
                    errs,
                    &end_path,
                    &end.to_string(),
                    "may not be specified when `port` is not specified",
                );
            }
        }
    }
}

const CIDR_DETAIL: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// `ValidateIPBlock`: `cidr` required and valid; each `except` valid and a strict subset of it.
pub fn validate_ip_block(block: &IpBlock, path: &FieldPath, errs: &mut FieldErrors) {
    let cidr_path = path.field("cidr");
    if block.cidr.is_empty() {
        errs.push(&cidr_path, "Required value");
        return;
    }
    let Some(cidr) = parse_cidr(&block.cidr) else {
        invalid(errs, &cidr_path, &quoted(&block.cidr), CIDR_DETAIL);
        return;
    };
    let net = cidr.network();
    for (i, e) in block.except.iter().enumerate() {
        let p = path.field("except").index(i);
        let Some(ex) = parse_cidr(e) else {
            invalid(errs, &p, &quoted(e), CIDR_DETAIL);
            continue;
        };
        // Kubernetes: the except network's address must lie in cidr and its prefix be longer.
        let ex_net = ex.network();
        if !net.contains(&ex_net.addr()) || net.prefix_len() >= ex_net.prefix_len() {
            invalid(errs, &p, &quoted(e), "must be a strict subset of `cidr`");
        }
    }
}

/// `ValidateNetworkPolicyPeer`: at least one of the three; `ipBlock` alone.
pub fn validate_peer(peer: &NetworkPolicyPeer, path: &FieldPath, errs: &mut FieldErrors) {
    let mut n = 0;
    if let Some(s) = &peer.pod_selector {
        n += 1;
        validate_label_selector(s, &path.field("podSelector"), errs);
    }
    if let Some(s) = &peer.namespace_selector {
        n += 1;
        validate_label_selector(s, &path.field("namespaceSelector"), errs);
    }
    if let Some(b) = &peer.ip_block {
        n += 1;
        validate_ip_block(b, &path.field("ipBlock"), errs);
    }
    if n == 0 {
        errs.push(path, "Required value: must specify a peer");
    } else if n > 1 && peer.ip_block.is_some() {
        errs.push(
            path,
            "Forbidden: may not specify both ipBlock and another peer",
        );
    }
}

fn validate_name(name: &str, path: &FieldPath, label_only: bool, errs: &mut FieldErrors) {
    let p = path.field("name");
    if name.is_empty() {
        errs.push(&p, "Required value: name or generateName is required");
        return;
    }
    let (ok, max, what, fmt) = if label_only {
        (
            is_dns1123_label(name),
            DNS1123_LABEL_MAX_LEN,
            "label",
            NAME_LABEL_FMT,
        )
    } else {
        (
            is_dns1123_subdomain(name) && name.len() <= DNS1123_SUBDOMAIN_MAX_LEN,
            DNS1123_SUBDOMAIN_MAX_LEN,
            "subdomain",
            NAME_SUBDOMAIN_FMT,
        )
    };
    if name.len() > max {
        invalid(
            errs,
            &p,
            &quoted(name),
            &format!("must be no more than {max} characters"),
        );
    } else if !ok {
        invalid(
            errs,
            &p,
            &quoted(name),
            &format!(
                "a lowercase RFC 1123 {what} must consist of lower case alphanumeric \
                 characters{}, and must start and end with an alphanumeric character (regex \
                 used for validation is '{fmt}')",
                if label_only {
                    " or '-'"
                } else {
                    ", '-' or '.'"
                }
            ),
        );
    }
}

/// `ValidateObjectMeta`: name, namespace (namespaced kinds only; cluster-scoped ones must not
/// have one), labels and annotations.
fn validate_meta(meta: &ObjectMeta, namespaced: bool, name_is_label: bool, errs: &mut FieldErrors) {
    let path = FieldPath::root().field("metadata");
    validate_name(&meta.name, &path, name_is_label, errs);
    let ns = path.field("namespace");
    if namespaced {
        if meta.namespace.is_empty() {
            errs.push(&ns, "Required value");
        } else if !is_dns1123_label(&meta.namespace) {
            invalid(
                errs,
                &ns,
                &quoted(&meta.namespace),
                &format!(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric \
                     characters or '-', and must start and end with an alphanumeric character \
                     (regex used for validation is '{NAME_LABEL_FMT}')"
                ),
            );
        }
    } else if !meta.namespace.is_empty() {
        errs.push(&ns, "Forbidden: not allowed on this type");
    }
    validate_label_map(&meta.labels, &path.field("labels"), errs);
    validate_annotations(&meta.annotations, &path.field("annotations"), errs);
}

impl NetworkPolicy {
    /// The defaults the API server (and kubectl) fill in: namespace `default` when none is
    /// given; a port's protocol TCP; `policyTypes` when empty: `Ingress`, plus `Egress` when
    /// there are egress rules (`SetDefaults_NetworkPolicy`). Idempotent.
    pub fn apply_defaults(&mut self) {
        if self.metadata.namespace.is_empty() {
            self.metadata.namespace = DEFAULT_NAMESPACE.to_string();
        }
        let ports = self
            .spec
            .ingress
            .iter_mut()
            .flat_map(|r| r.ports.iter_mut())
            .chain(self.spec.egress.iter_mut().flat_map(|r| r.ports.iter_mut()));
        for p in ports {
            p.protocol.get_or_insert_with(|| "TCP".to_string());
        }
        if self.spec.policy_types.is_empty() {
            self.spec.policy_types.push("Ingress".into());
            if !self.spec.egress.is_empty() {
                self.spec.policy_types.push("Egress".into());
            }
        }
    }

    /// `ValidateNetworkPolicy`: every problem, with its path.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::new();
        validate_meta(&self.metadata, true, false, &mut errs);
        let spec = FieldPath::root().field("spec");
        validate_label_selector(
            &self.spec.pod_selector,
            &spec.field("podSelector"),
            &mut errs,
        );
        for (i, r) in self.spec.ingress.iter().enumerate() {
            let p = spec.field("ingress").index(i);
            for (j, port) in r.ports.iter().enumerate() {
                validate_port(port, &p.field("ports").index(j), &mut errs);
            }
            for (j, peer) in r.from.iter().enumerate() {
                validate_peer(peer, &p.field("from").index(j), &mut errs);
            }
        }
        for (i, r) in self.spec.egress.iter().enumerate() {
            let p = spec.field("egress").index(i);
            for (j, port) in r.ports.iter().enumerate() {
                validate_port(port, &p.field("ports").index(j), &mut errs);
            }
            for (j, peer) in r.to.iter().enumerate() {
                validate_peer(peer, &p.field("to").index(j), &mut errs);
            }
        }
        let types = spec.field("policyTypes");
        if self.spec.policy_types.len() > POLICY_TYPES.len() {
            invalid(
                &mut errs,
                &types,
                &format!("{:?}", self.spec.policy_types),
                "may not specify more than two policyTypes",
            );
        } else {
            for (i, t) in self.spec.policy_types.iter().enumerate() {
                if !POLICY_TYPES.contains(&t.as_str()) {
                    unsupported(&mut errs, &types.index(i), t, &POLICY_TYPES);
                }
            }
        }
        errs.into_result()
    }
}

/// Label the API server puts on every Namespace, holding its name (Kubernetes ≥ 1.21,
/// `NamespaceDefaultLabelName`); `namespaceSelector`s commonly match on it.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

impl Namespace {
    /// The API server's defaulting: label `kubernetes.io/metadata.name: <name>` (always set to
    /// the name, overriding a different value). Idempotent.
    pub fn apply_defaults(&mut self) {
        if !self.metadata.name.is_empty() {
            self.metadata
                .labels
                .insert(NAMESPACE_NAME_LABEL.to_string(), self.metadata.name.clone());
        }
    }

    /// `ValidateNamespace`: the name is a DNS-1123 label; no namespace of its own.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::new();
        validate_meta(&self.metadata, false, true, &mut errs);
        errs.into_result()
    }
}

impl ServiceAccount {
    /// kubectl's default namespace when none is given. Idempotent.
    pub fn apply_defaults(&mut self) {
        if self.metadata.namespace.is_empty() {
            self.metadata.namespace = DEFAULT_NAMESPACE.to_string();
        }
    }

    /// `ValidateServiceAccount`: a DNS-1123 subdomain name in a namespace.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errs = FieldErrors::new();
        validate_meta(&self.metadata, true, false, &mut errs);
        errs.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names() {
        assert!(port_name_errors("http").is_empty());
        assert!(port_name_errors("web-8080").is_empty());
        assert_eq!(
            port_name_errors("80"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            port_name_errors("Http"),
            vec!["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]
        );
        assert_eq!(
            port_name_errors("a--b"),
            vec!["must not contain consecutive hyphens"]
        );
        assert_eq!(
            port_name_errors("-ab"),
            vec!["must not begin or end with a hyphen"]
        );
        assert_eq!(
            port_name_errors("abcdefghijklmnop"),
            vec!["must be no more than 15 characters"]
        );
        assert_eq!(port_name_errors("").len(), 1);
    }
}
