//! NetworkSet and GlobalNetworkSet (`networkset.go`, `globalnetworkset.go`): labelled lists of
//! CIDRs that rule selectors can match like endpoints. Validation: each entry is an IP or CIDR
//! (host bits allowed, Calico's `cidr` tag), and the label `projectcalico.org/namespace` is
//! reserved (Calico adds it when mapping NetworkSets to the v1 model).

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta, validate_namespaced_meta};

/// The label Calico derives from the namespace; users may not set it.
pub const LABEL_NAMESPACE: &str = "projectcalico.org/namespace";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSet {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: NetworkSetSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkSetSpec {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nets: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalNetworkSet {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: GlobalNetworkSetSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalNetworkSetSpec {
    #[serde(
        default,
        deserialize_with = "crate::netutil::null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nets: Vec<String>,
}

fn validate_set(meta: &ObjectMeta, nets: &[String], errs: &mut FieldErrors) {
    if meta.labels.contains_key(LABEL_NAMESPACE) {
        errs.push(
            &FieldPath::root()
                .field("metadata")
                .field("labels")
                .key(LABEL_NAMESPACE),
            "projectcalico.org/namespace is not a valid label name",
        );
    }
    let path = FieldPath::root().field("spec").field("nets");
    for (i, n) in nets.iter().enumerate() {
        if netutil::parse_cidr_or_ip(n).is_none() {
            errs.push(
                &path.index(i),
                format!("invalid CIDR {n:?}: must be an IP address or CIDR"),
            );
        }
    }
}

impl CalicoResource for NetworkSet {
    const KIND: &'static str = "NetworkSet";

    crate::resource::metadata_accessors!();
    fn validate(&self, errs: &mut FieldErrors) {
        validate_namespaced_meta(&self.metadata, errs);
        validate_set(&self.metadata, &self.spec.nets, errs);
    }
}

impl CalicoResource for GlobalNetworkSet {
    const KIND: &'static str = "GlobalNetworkSet";

    crate::resource::metadata_accessors!();
    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        validate_set(&self.metadata, &self.spec.nets, errs);
    }
}
