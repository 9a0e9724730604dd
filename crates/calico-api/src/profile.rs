//! Profile (`api/pkg/apis/projectcalico/v3/profile.go`): rules and labels endpoints inherit
//! (Kubernetes namespaces and service accounts become `kns.*` / `ksa.*` profiles). The built-in
//! `projectcalico-default-allow` profile is virtual: never stored, always readable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::policy::MAX_RULES;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};
use crate::rule::{self, Action, Rule, Schema};
use crate::validation;

/// Name of the virtual allow-all profile (`libcalico-go/lib/resources/static.go`).
pub const DEFAULT_ALLOW_PROFILE: &str = "projectcalico-default-allow";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: ProfileSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
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
    /// Labels every endpoint using the profile inherits (its own labels win).
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels_to_apply: BTreeMap<String, String>,
}

impl Profile {
    /// The virtual `projectcalico-default-allow` profile: allow everything both ways.
    pub fn default_allow() -> Profile {
        let allow = Rule {
            action: Some(Action::Allow),
            ..Rule::default()
        };
        Profile {
            metadata: ObjectMeta::named(DEFAULT_ALLOW_PROFILE),
            spec: ProfileSpec {
                ingress: vec![allow.clone()],
                egress: vec![allow],
                labels_to_apply: BTreeMap::new(),
            },
        }
    }
}

impl CalicoResource for Profile {
    const KIND: &'static str = "Profile";

    crate::resource::metadata_accessors!();
    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        let spec = FieldPath::root().field("spec");
        // Profiles have no CRD: Go validators only (see `rule::Schema`).
        let (ingress, egress) = (spec.field("ingress"), spec.field("egress"));
        rule::validate_rules(
            &self.spec.ingress,
            MAX_RULES,
            &ingress,
            Schema::GoOnly,
            errs,
        );
        rule::validate_rules(&self.spec.egress, MAX_RULES, &egress, Schema::GoOnly, errs);
        validation::validate_labels(
            &self.spec.labels_to_apply,
            &spec.field("labelsToApply"),
            errs,
        );
    }
}
