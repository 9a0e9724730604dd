//! ClusterInformation (`api/pkg/apis/projectcalico/v3/clusterinfo.go`): the cluster-wide
//! singleton `default` that calico-node writes (GUID, type, version, datastore readiness).
//! This file is the pattern every kind follows.

use serde::{Deserialize, Serialize};

use crate::errors::FieldErrors;
use crate::meta::ObjectMeta;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterInformation {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ClusterInformationSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterInformationSpec {
    /// Unique identifier of the cluster, generated at install time.
    #[serde(
        rename = "clusterGUID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cluster_guid: String,
    /// e.g. `k8s,bgp,kubeadm`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub calico_version: String,
    /// While false, agents and the CNI plugin wait (set during datastore migrations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datastore_ready: Option<bool>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

impl CalicoResource for ClusterInformation {
    const KIND: &'static str = "ClusterInformation";

    crate::resource::metadata_accessors!();
    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
    }
}
