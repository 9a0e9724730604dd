//! IPAMConfiguration (`api/pkg/apis/projectcalico/v3/ipamconfig.go`): the cluster-wide IPAM
//! settings singleton `default`.
//!
//! `strictAffinity` and `autoAllocateBlocks` have no `omitempty` in Go, so both are always
//! written, and a document that omits `autoAllocateBlocks` stores `false` (the Go struct's zero
//! value is marshalled before the CRD default of `true` could apply).

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};

/// The only name an IPAMConfiguration may have (`clientv3/ipamconfig.go` `validateMetadata`).
pub const GLOBAL_IPAM_CONFIG_NAME: &str = "default";
pub const VM_ADDRESS_PERSISTENCE_VALUES: &[&str] = &["Enabled", "Disabled"];
/// Used by the IPAM library when `maxBlocksPerHost` is 0 (`libcalico-go/lib/ipam/ipam.go`).
pub const DEFAULT_MAX_BLOCKS_PER_HOST: i32 = 20;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPAMConfiguration {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: IPAMConfigurationSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPAMConfigurationSpec {
    /// When true, borrowing IPs from other hosts' blocks is not allowed.
    #[serde(default)]
    pub strict_affinity: bool,
    /// 0–1 000 000; 0 means the library default.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub max_blocks_per_host: i32,
    #[serde(default)]
    pub auto_allocate_blocks: bool,
    /// `Enabled` (the default when unset) | `Disabled`.
    #[serde(
        rename = "kubeVirtVMAddressPersistence",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubevirt_vm_address_persistence: Option<String>,
    /// 0–1200.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub ip_cooldown_seconds: i32,
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

impl IPAMConfigurationSpec {
    /// The extra rules `ipam.SetIPAMConfig` enforces (used by `calicoctl ipam configure`; the
    /// resource API itself does not apply them).
    pub fn validate_for_ipam_library(&self) -> Result<(), String> {
        if !self.strict_affinity && !self.auto_allocate_blocks {
            return Err(
                "Cannot disable 'StrictAffinity' and 'AutoAllocateBlocks' at the same time".into(),
            );
        }
        if self.max_blocks_per_host > 0 && !self.strict_affinity {
            return Err("MaxBlocksPerHost requires StrictAffinity to be enabled".into());
        }
        Ok(())
    }

    /// Whether KubeVirt VM address persistence is on (unset means Enabled).
    pub fn vm_address_persistence_enabled(&self) -> bool {
        self.kubevirt_vm_address_persistence.as_deref() != Some("Disabled")
    }
}

impl CalicoResource for IPAMConfiguration {
    const KIND: &'static str = "IPAMConfiguration";

    crate::resource::metadata_accessors!();
    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        if !self.metadata.name.is_empty() && self.metadata.name != GLOBAL_IPAM_CONFIG_NAME {
            errs.push(
                &FieldPath::root().field("metadata").field("name"),
                "Cannot create an IPAMConfiguration resource with a name other than \"default\"",
            );
        }
        let spec = FieldPath::root().field("spec");
        netutil::check_range(
            i64::from(self.spec.max_blocks_per_host),
            Some(0),
            Some(1_000_000),
            &spec.field("maxBlocksPerHost"),
            errs,
        );
        netutil::check_range(
            i64::from(self.spec.ip_cooldown_seconds),
            Some(0),
            Some(1200),
            &spec.field("ipCooldownSeconds"),
            errs,
        );
        if let Some(v) = &self.spec.kubevirt_vm_address_persistence {
            netutil::check_enum(
                v,
                VM_ADDRESS_PERSISTENCE_VALUES,
                &spec.field("kubeVirtVMAddressPersistence"),
                errs,
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn library_cross_field_rules() {
        let mut s = IPAMConfigurationSpec::default();
        assert!(s.validate_for_ipam_library().is_err());
        s.auto_allocate_blocks = true;
        assert!(s.validate_for_ipam_library().is_ok());
        s.max_blocks_per_host = 4;
        assert_eq!(
            s.validate_for_ipam_library(),
            Err("MaxBlocksPerHost requires StrictAffinity to be enabled".into())
        );
        s.strict_affinity = true;
        assert!(s.validate_for_ipam_library().is_ok());
    }

    #[test]
    fn booleans_always_written() {
        let c = IPAMConfiguration {
            metadata: ObjectMeta::named("default"),
            spec: IPAMConfigurationSpec::default(),
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["spec"],
            serde_json::json!({"strictAffinity": false, "autoAllocateBlocks": false})
        );
    }
}
