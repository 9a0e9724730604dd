//! The Calico policy kinds: NetworkPolicy (`networkpolicy.go`), GlobalNetworkPolicy
//! (`globalnetworkpolicy.go`), StagedNetworkPolicy and StagedGlobalNetworkPolicy
//! (`staged*.go`).
//!
//! Defaulting is Calico's `api/pkg/defaults/networkpolicy.go` (policy `types` from the rules,
//! label `projectcalico.org/tier`) plus the CRD defaults the etcd-mode validator applies
//! (`tier: default`, `stagedAction: Set`); staged `Delete` policies get their types cleared as
//! `clientv3/staged*.go` does. Validation is `validateNetworkPolicy`/`validateGlobalNetworkPolicy`
//! (and staged variants) of `libcalico-go/lib/validator/v3/validator.go` plus the CRD limits and
//! CEL rules on the spec types.

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta, validate_namespaced_meta};
use crate::rule::{
    self, Direction, MAX_SELECTOR_LEN, PolicyType, Rule, Schema, check_max_items, check_no_global,
    check_selector, go_float,
};
use crate::validation;

/// Label every policy carries with its tier's name (`v3.LabelTier`).
pub const LABEL_TIER: &str = "projectcalico.org/tier";
/// The tier a policy without `tier` belongs to.
pub const DEFAULT_TIER: &str = "default";
/// CRD `maxItems` of `ingress` / `egress`.
pub const MAX_RULES: usize = 1024;
/// The only performance hint Calico knows.
pub const PERF_HINT_ASSUME_NEEDED_ON_EVERY_NODE: &str = "AssumeNeededOnEveryNode";

/// What a staged policy would do to its enforced counterpart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StagedAction {
    Set,
    Delete,
    Learn,
    Ignore,
}

/// Calico `defaultPolicyTypesField`: with no `types`, `[Ingress]` unless there are egress rules;
/// `[Egress]` with only egress rules; both with both.
pub fn default_policy_types(ingress: &[Rule], egress: &[Rule], types: &mut Vec<PolicyType>) {
    if !types.is_empty() {
        return;
    }
    *types = if egress.is_empty() {
        vec![PolicyType::Ingress]
    } else if ingress.is_empty() {
        vec![PolicyType::Egress]
    } else {
        vec![PolicyType::Ingress, PolicyType::Egress]
    };
}

/// Fills `tier` (CRD default) and the tier label (Calico `setTierLabel`).
fn default_tier(meta: &mut ObjectMeta, tier: &mut String) {
    if tier.is_empty() {
        *tier = DEFAULT_TIER.to_string();
    }
    meta.labels.insert(LABEL_TIER.to_string(), tier.clone());
}

fn is_dns_label_format(s: &str) -> bool {
    validation::is_dns1123_label_format(s)
}

/// Calico `networkPolicyNameRegex`: a DNS label, two labels joined by one dot, or any
/// subdomain name prefixed `knp.default.` / `ossg.default.` (converted Kubernetes and OpenStack
/// policies).
pub fn is_network_policy_name(name: &str) -> bool {
    for prefix in ["knp.default.", "ossg.default."] {
        if let Some(rest) = name.strip_prefix(prefix)
            && validation::is_dns1123_subdomain(rest)
        {
            return true;
        }
    }
    is_global_network_policy_name(name)
}

/// Calico `globalNetworkPolicyNameRegex`: a DNS label, optionally `label.label`.
pub fn is_global_network_policy_name(name: &str) -> bool {
    match name.split_once('.') {
        None => is_dns_label_format(name),
        Some((a, b)) => is_dns_label_format(a) && is_dns_label_format(b),
    }
}

fn validate_policy_name(meta: &ObjectMeta, ok: bool, errs: &mut FieldErrors) {
    if !meta.name.is_empty() && !ok {
        errs.push(
            &FieldPath::root().field("metadata").field("name"),
            format!(
                "name {:?} must consist of lower case alphanumeric characters or '-' (regex: {}), \
                 at most one '.'",
                meta.name,
                validation::NAME_LABEL_FMT
            ),
        );
    }
}

/// The fields every policy spec shares, borrowed for validation.
struct PolicySpecView<'a> {
    tier: &'a str,
    ingress: &'a [Rule],
    egress: &'a [Rule],
    selector: &'a str,
    types: &'a [PolicyType],
    service_account_selector: &'a str,
    performance_hints: &'a [String],
    /// Global policies only.
    namespace_selector: Option<&'a str>,
    /// `(doNotTrack, preDNAT, applyOnForward)` for global policies.
    host_flags: Option<(bool, bool, bool)>,
}

impl PolicySpecView<'_> {
    fn validate(&self, errs: &mut FieldErrors) {
        let spec = FieldPath::root().field("spec");
        let global = self.namespace_selector.is_some();
        if !self.tier.is_empty() && !validation::is_dns1123_subdomain(self.tier) {
            errs.push(
                &spec.field("tier"),
                format!(
                    "invalid tier name {:?}: must consist of lower case alphanumeric characters, \
                     '-' or '.' (regex: {})",
                    self.tier,
                    validation::NAME_SUBDOMAIN_FMT
                ),
            );
        }
        let ingress = spec.field("ingress");
        let egress = spec.field("egress");
        rule::validate_rules(self.ingress, MAX_RULES, &ingress, Schema::Crd, errs);
        rule::validate_rules(self.egress, MAX_RULES, &egress, Schema::Crd, errs);
        rule::validate_policy_rule_directions(
            self.ingress,
            Direction::Ingress,
            global,
            &ingress,
            errs,
        );
        rule::validate_policy_rule_directions(
            self.egress,
            Direction::Egress,
            global,
            &egress,
            errs,
        );

        let mut selectors = vec![
            ("selector", self.selector),
            ("serviceAccountSelector", self.service_account_selector),
        ];
        if let Some(ns) = self.namespace_selector {
            selectors.push(("namespaceSelector", ns));
        }
        for (field, sel) in selectors {
            check_selector(sel, Some(MAX_SELECTOR_LEN), &spec.field(field), errs);
            check_no_global(sel, &spec.field(field), errs);
        }

        let types = spec.field("types");
        check_max_items(self.types.len(), 2, &types, errs);
        for (i, t) in self.types.iter().enumerate() {
            if self.types[..i].contains(t) {
                errs.push(
                    &types.index(i),
                    format!("'{t:?}' type specified more than once"),
                );
            }
        }

        let hints = spec.field("performanceHints");
        for (i, h) in self.performance_hints.iter().enumerate() {
            if h != PERF_HINT_ASSUME_NEEDED_ON_EVERY_NODE {
                errs.push(
                    &hints.index(i),
                    crate::netutil::unsupported_value(h, &[PERF_HINT_ASSUME_NEEDED_ON_EVERY_NODE]),
                );
            } else if self.performance_hints[..i].contains(h) {
                errs.push(&hints.index(i), format!("duplicate performance hint {h:?}"));
            }
        }

        // CEL rules of GlobalNetworkPolicySpec on the host-endpoint flags.
        if let Some((do_not_track, pre_dnat, apply_on_forward)) = self.host_flags {
            if do_not_track && pre_dnat {
                errs.push(
                    &spec.field("preDNAT"),
                    "preDNAT and doNotTrack cannot both be true",
                );
            }
            if pre_dnat && !self.egress.is_empty() {
                errs.push(&egress, "preDNAT policy cannot have any egress rules");
            }
            if pre_dnat && self.types.contains(&PolicyType::Egress) {
                errs.push(&types, "preDNAT policy cannot have 'Egress' type");
            }
            if (do_not_track || pre_dnat) && !apply_on_forward {
                errs.push(
                    &spec.field("applyOnForward"),
                    "applyOnForward must be true if either preDNAT or doNotTrack is true",
                );
            }
        }
    }

    /// Staged `Delete`: everything but the tier must be unset.
    fn is_zero_except_tier(&self) -> bool {
        self.ingress.is_empty()
            && self.egress.is_empty()
            && self.selector.is_empty()
            && self.types.is_empty()
            && self.service_account_selector.is_empty()
            && self.performance_hints.is_empty()
            && self.namespace_selector.is_none_or(str::is_empty)
            && self.host_flags.is_none_or(|f| f == (false, false, false))
    }
}

fn validate_staged_delete(view: &PolicySpecView<'_>, has_order: bool, errs: &mut FieldErrors) {
    if has_order || !view.is_zero_except_tier() {
        errs.push(
            &FieldPath::root().field("spec"),
            "Spec fields, except Tier, should all be zero-value if stagedAction is Delete",
        );
    }
}

/// Defines one policy kind: the resource, its spec and its `CalicoResource` impl.
///
/// The four kinds share Calico's Go field list and differ on two axes only: scope (`namespaced`
/// kinds have no `namespaceSelector` nor host-endpoint flags, `global` ones have both) and
/// staging (`staged` kinds lead with `stagedAction`, default it to `Set` and, for `Delete`,
/// accept only an otherwise-empty spec as `clientv3/staged*.go` does). Fields keep Go's
/// declaration order, which is the order `-o yaml/json` writes them in.
macro_rules! policy_kind {
    // Public form: `policy_kind!(#[doc] Kind(Spec, "Kind"): namespaced|global, enforced|staged);`
    ($(#[$attr:meta])* $kind:ident($spec:ident, $kind_str:literal): $scope:ident, enforced) => {
        policy_kind!(@scope $(#[$attr])* $kind, $spec, $kind_str, $scope, enforced, []);
    };
    ($(#[$attr:meta])* $kind:ident($spec:ident, $kind_str:literal): $scope:ident, staged) => {
        policy_kind!(@scope $(#[$attr])* $kind, $spec, $kind_str, $scope, staged, [
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub staged_action: Option<StagedAction>,
        ]);
    };
    (@scope $(#[$attr:meta])* $kind:ident, $spec:ident, $kind_str:literal, namespaced, $stage:ident,
        [$($lead:tt)*]) => {
        policy_kind!(@emit $(#[$attr])* $kind, $spec, $kind_str, namespaced, $stage,
            [$($lead)*], [], []);
    };
    (@scope $(#[$attr:meta])* $kind:ident, $spec:ident, $kind_str:literal, global, $stage:ident,
        [$($lead:tt)*]) => {
        policy_kind!(@emit $(#[$attr])* $kind, $spec, $kind_str, global, $stage, [$($lead)*], [
            /// Rendered in the raw table, untracked (§3.4); needs `applyOnForward`.
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "std::ops::Not::not"
            )]
            pub do_not_track: bool,
            /// Applied before DNAT, ingress only; needs `applyOnForward`.
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                rename = "preDNAT",
                skip_serializing_if = "std::ops::Not::not"
            )]
            pub pre_dnat: bool,
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "std::ops::Not::not"
            )]
            pub apply_on_forward: bool,
        ], [
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "String::is_empty"
            )]
            pub namespace_selector: String,
        ]);
    };
    (@emit $(#[$attr:meta])* $kind:ident, $spec:ident, $kind_str:literal, $scope:ident,
        $stage:ident, [$($lead:tt)*], [$($host:tt)*], [$($ns:tt)*]) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $kind {
            #[serde(default)]
            pub metadata: ObjectMeta,
            #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
            pub spec: $spec,
        }

        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct $spec {
            $($lead)*
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "String::is_empty"
            )]
            pub tier: String,
            /// Lower applies first; `None` is +∞ (last).
            #[serde(default, with = "go_float", skip_serializing_if = "Option::is_none")]
            pub order: Option<f64>,
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "Vec::is_empty"
            )]
            pub ingress: Vec<Rule>,
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "Vec::is_empty"
            )]
            pub egress: Vec<Rule>,
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "String::is_empty"
            )]
            pub selector: String,
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "Vec::is_empty"
            )]
            pub types: Vec<PolicyType>,
            $($host)*
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "String::is_empty"
            )]
            pub service_account_selector: String,
            $($ns)*
            #[serde(
                default,
                deserialize_with = "crate::netutil::null_as_default",
                skip_serializing_if = "Vec::is_empty"
            )]
            pub performance_hints: Vec<String>,
        }

        impl $spec {
            fn view(&self) -> PolicySpecView<'_> {
                PolicySpecView {
                    tier: &self.tier,
                    ingress: &self.ingress,
                    egress: &self.egress,
                    selector: &self.selector,
                    types: &self.types,
                    service_account_selector: &self.service_account_selector,
                    performance_hints: &self.performance_hints,
                    namespace_selector: policy_kind!(@namespace_selector $scope, self),
                    host_flags: policy_kind!(@host_flags $scope, self),
                }
            }
        }

        impl CalicoResource for $kind {
            const KIND: &'static str = $kind_str;

            crate::resource::metadata_accessors!();
            fn apply_defaults(&mut self) {
                let s = &mut self.spec;
                default_policy_types(&s.ingress, &s.egress, &mut s.types);
                default_tier(&mut self.metadata, &mut s.tier);
                policy_kind!(@stage_defaults $stage, s);
            }
            fn validate(&self, errs: &mut FieldErrors) {
                policy_kind!(@validate_meta $scope, &self.metadata, errs);
                let view = self.spec.view();
                if policy_kind!(@staged_delete $stage, self.spec) {
                    validate_staged_delete(&view, self.spec.order.is_some(), errs);
                } else {
                    view.validate(errs);
                }
            }
        }
    };
    (@namespace_selector namespaced, $s:tt) => { None };
    (@namespace_selector global, $s:tt) => { Some(&$s.namespace_selector) };
    (@host_flags namespaced, $s:tt) => { None };
    (@host_flags global, $s:tt) => { Some(($s.do_not_track, $s.pre_dnat, $s.apply_on_forward)) };
    (@stage_defaults enforced, $s:ident) => {};
    (@stage_defaults staged, $s:ident) => {
        if *$s.staged_action.get_or_insert(StagedAction::Set) == StagedAction::Delete {
            $s.types.clear();
        }
    };
    (@staged_delete enforced, $($s:tt)+) => { false };
    (@staged_delete staged, $($s:tt)+) => { $($s)+.staged_action == Some(StagedAction::Delete) };
    (@validate_meta namespaced, $meta:expr, $errs:ident) => {{
        validate_namespaced_meta($meta, $errs);
        validate_policy_name($meta, is_network_policy_name(&$meta.name), $errs);
    }};
    (@validate_meta global, $meta:expr, $errs:ident) => {{
        validate_cluster_scoped_meta($meta, $errs);
        validate_policy_name($meta, is_global_network_policy_name(&$meta.name), $errs);
    }};
}

policy_kind!(
    /// A namespaced policy.
    NetworkPolicy(NetworkPolicySpec, "NetworkPolicy"): namespaced, enforced
);
policy_kind!(
    /// A cluster-wide policy (also applies to host endpoints).
    GlobalNetworkPolicy(GlobalNetworkPolicySpec, "GlobalNetworkPolicy"): global, enforced
);
policy_kind!(
    /// A namespaced policy that is only evaluated for audit ("what if"), never enforced.
    StagedNetworkPolicy(StagedNetworkPolicySpec, "StagedNetworkPolicy"): namespaced, staged
);
policy_kind!(
    /// A cluster-wide staged policy.
    StagedGlobalNetworkPolicy(StagedGlobalNetworkPolicySpec, "StagedGlobalNetworkPolicy"):
        global, staged
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn policy_names() {
        assert!(is_network_policy_name("allow-frontend"));
        assert!(is_network_policy_name("tier1.allow"));
        assert!(!is_network_policy_name("a.b.c"));
        assert!(is_network_policy_name("knp.default.a.b.c"));
        assert!(is_network_policy_name("ossg.default.x"));
        assert!(!is_network_policy_name("Upper"));
        assert!(is_global_network_policy_name("a.b"));
        assert!(!is_global_network_policy_name("knp.default.a"));
    }

    #[test]
    fn types_defaulting() {
        let r = Rule::default();
        let mut t = Vec::new();
        default_policy_types(&[], &[], &mut t);
        assert_eq!(t, [PolicyType::Ingress]);
        let mut t = Vec::new();
        default_policy_types(&[], std::slice::from_ref(&r), &mut t);
        assert_eq!(t, [PolicyType::Egress]);
        let mut t = Vec::new();
        default_policy_types(std::slice::from_ref(&r), std::slice::from_ref(&r), &mut t);
        assert_eq!(t, [PolicyType::Ingress, PolicyType::Egress]);
        let mut t = vec![PolicyType::Egress];
        default_policy_types(std::slice::from_ref(&r), &[], &mut t);
        assert_eq!(t, [PolicyType::Egress]);
    }
}
