//! IPReservation (`api/pkg/apis/projectcalico/v3/ipreservation.go`): CIDRs Calico IPAM must not
//! hand out. Reservations only block new allocations.

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPReservation {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: IPReservationSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPReservationSpec {
    /// CIDRs (or single IPs, taken as /32 or /128) excluded from new allocations. Unlike pool
    /// CIDRs these need not be strictly masked (Calico's `cidrs` tag).
    #[serde(
        rename = "reservedCIDRs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reserved_cidrs: Vec<String>,
}

impl IPReservationSpec {
    /// The reserved networks (host bits cleared), skipping entries that do not parse.
    pub fn networks(&self) -> Vec<ipnet::IpNet> {
        self.reserved_cidrs
            .iter()
            .filter_map(|c| netutil::parse_cidr_or_ip(c))
            .map(|c| c.network())
            .collect()
    }
}

impl CalicoResource for IPReservation {
    const KIND: &'static str = "IPReservation";

    crate::resource::metadata_accessors!();
    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        let path = FieldPath::root().field("spec").field("reservedCIDRs");
        for (i, c) in self.spec.reserved_cidrs.iter().enumerate() {
            if netutil::parse_cidr_or_ip(c).is_none() {
                errs.push(&path.index(i), format!("invalid CIDR {c:?}"));
            } else if self.spec.reserved_cidrs[..i].contains(c) {
                // listType=set
                errs.push(&path.index(i), format!("Duplicate value: {c:?}"));
            }
        }
    }
}
