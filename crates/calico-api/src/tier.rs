//! Tier (`api/pkg/apis/projectcalico/v3/tier.go`): an ordered group of policies with a default
//! action for traffic a selecting policy did not decide. Defaults are Calico's
//! `resources.DefaultTierFields` (order 1 000 000 when unset, defaultAction Deny); validation is
//! `validateTier` (names are DNS labels: they appear inside other names and in a label value)
//! plus the CEL rules pinning the reserved tiers' order and action.

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};
use crate::rule::{Action, go_float};
use crate::validation;

pub const DEFAULT_TIER_NAME: &str = "default";
pub const KUBE_ADMIN_TIER_NAME: &str = "kube-admin";
pub const KUBE_BASELINE_TIER_NAME: &str = "kube-baseline";
pub const KUBE_ADMIN_TIER_ORDER: f64 = 1_000.0;
pub const DEFAULT_TIER_ORDER: f64 = 1_000_000.0;
pub const KUBE_BASELINE_TIER_ORDER: f64 = 10_000_000.0;
/// Finalizer Calico's tier controller puts on tiers.
pub const TIER_FINALIZER: &str = "projectcalico.org/tier-controller";

/// The tiers that always exist and cannot be deleted, with their fixed order and action.
pub const PROTECTED_TIERS: [(&str, f64, Action); 3] = [
    (KUBE_ADMIN_TIER_NAME, KUBE_ADMIN_TIER_ORDER, Action::Pass),
    (DEFAULT_TIER_NAME, DEFAULT_TIER_ORDER, Action::Deny),
    (
        KUBE_BASELINE_TIER_NAME,
        KUBE_BASELINE_TIER_ORDER,
        Action::Pass,
    ),
];

/// Whether `name` is one of the built-in tiers (Calico `names.TierIsProtected`).
pub fn tier_is_protected(name: &str) -> bool {
    PROTECTED_TIERS.iter().any(|(n, _, _)| *n == name)
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tier {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: TierSpec,
    /// Go encodes the (non-pointer) status struct even when empty: `"status": {}`.
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub status: TierStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierSpec {
    /// Lower applies first.
    #[serde(default, with = "go_float", skip_serializing_if = "Option::is_none")]
    pub order: Option<f64>,
    /// Deny or Pass: what happens at the end of the tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<Action>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TierStatus {
    /// Kubernetes `metav1.Condition`s, carried as written.
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<serde_json::Value>,
}

impl Tier {
    /// A tier as Calico creates the built-in ones.
    pub fn new(name: &str, order: f64, default_action: Action) -> Tier {
        Tier {
            metadata: ObjectMeta::named(name),
            spec: TierSpec {
                order: Some(order),
                default_action: Some(default_action),
            },
            status: TierStatus::default(),
        }
    }
}

impl CalicoResource for Tier {
    const KIND: &'static str = "Tier";

    crate::resource::metadata_accessors!();
    fn apply_defaults(&mut self) {
        // A nil order used to mean "last"; Calico now stores 1 000 000 (the default tier's
        // order) so user tiers without an order sort with the default tier.
        self.spec.order.get_or_insert(DEFAULT_TIER_ORDER);
        self.spec.default_action.get_or_insert(Action::Deny);
    }
    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        let name = &self.metadata.name;
        let name_path = FieldPath::root().field("metadata").field("name");
        if name.len() > validation::DNS1123_LABEL_MAX_LEN {
            errs.push(
                &name_path,
                format!(
                    "name is too long by {} bytes",
                    name.len() - validation::DNS1123_LABEL_MAX_LEN
                ),
            );
        }
        if !name.is_empty() && !validation::is_dns1123_label_format(name) {
            errs.push(
                &name_path,
                format!(
                    "name must consist of lower case alphanumeric characters or '-' (regex: {})",
                    validation::NAME_LABEL_FMT
                ),
            );
        }
        let spec = FieldPath::root().field("spec");
        if let Some(a) = &self.spec.default_action
            && *a != Action::Deny
            && *a != Action::Pass
        {
            errs.push(
                &spec.field("defaultAction"),
                crate::netutil::unsupported_value(a.as_str(), &["Pass", "Deny"]),
            );
        }
        // CEL rules on Tier: the reserved tiers keep their order and action.
        for (reserved, order, action) in PROTECTED_TIERS {
            if name != reserved {
                continue;
            }
            if self.spec.default_action.as_ref() != Some(&action) {
                errs.push(
                    &spec.field("defaultAction"),
                    format!(
                        "The '{reserved}' tier must have default action '{}'",
                        action.as_str()
                    ),
                );
            }
            if self.spec.order != Some(order) {
                errs.push(
                    &spec.field("order"),
                    format!("{reserved} tier order must be {order}"),
                );
            }
        }
    }
}
