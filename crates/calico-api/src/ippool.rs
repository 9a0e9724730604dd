//! IPPool (`api/pkg/apis/projectcalico/v3/ippool.go`): a CIDR Calico IPAM allocates from, with
//! its encapsulation and selection settings.
//!
//! Defaulting mirrors `libcalico-go/lib/clientv3/ippool.go` (`validateAndSetDefaults`, also
//! applied on read by `convertIpPoolFromStorage`): blockSize 26/122, ipipMode and vxlanMode
//! `Never`, nodeSelector `all()`, allowedUses `[Workload, Tunnel]`, assignmentMode `Automatic`,
//! and the CIDR rewritten to Go's canonical text. Validation mirrors `validateIPPoolSpec` in
//! `libcalico-go/lib/validator/v3/validator.go` plus the kubebuilder schema/CEL rules on
//! `IPPoolSpec` that Calico runs in etcd mode.

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil::{self, ParsedCidr, is_false, is_zero};
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};
use crate::validation;

pub const IPIP_MODES: &[&str] = &["Never", "Always", "CrossSubnet"];
pub const VXLAN_MODES: &[&str] = &["Never", "Always", "CrossSubnet"];
pub const ALLOWED_USES: &[&str] = &["Workload", "Tunnel", "LoadBalancer"];
pub const ASSIGNMENT_MODES: &[&str] = &["Automatic", "Manual"];

pub const ALLOWED_USE_WORKLOAD: &str = "Workload";
pub const ALLOWED_USE_TUNNEL: &str = "Tunnel";
pub const ALLOWED_USE_LOAD_BALANCER: &str = "LoadBalancer";

/// Default block sizes (`clientv3/ippool.go`).
pub const DEFAULT_BLOCK_SIZE_V4: i64 = 26;
pub const DEFAULT_BLOCK_SIZE_V6: i64 = 122;

/// Maximum lengths from the kubebuilder markers.
const CIDR_MAX_LEN: usize = 48;
const SELECTOR_MAX_LEN: usize = 1024;
const ALLOWED_USES_MAX_ITEMS: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPool {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: IPPoolSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<IPPoolStatus>,
}

/// Field order follows the Go struct, so encoded JSON matches what Calico stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPoolSpec {
    /// The pool CIDR (required, strictly masked, immutable).
    #[serde(default)]
    pub cidr: String,
    /// `Never` | `Always` | `CrossSubnet`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vxlan_mode: String,
    /// `Never` | `Always` | `CrossSubnet`; must be `Never` for IPv6 pools.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipip_mode: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub nat_outgoing: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    #[serde(rename = "disableBGPExport", default, skip_serializing_if = "is_false")]
    pub disable_bgp_export: bool,
    /// 20–32 for IPv4, 116–128 for IPv6; 0 means "default".
    #[serde(default, skip_serializing_if = "is_zero")]
    pub block_size: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_selector: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_selector: String,
    /// `Workload`, `Tunnel`, `LoadBalancer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_uses: Vec<String>,
    /// `Automatic` | `Manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IPPoolStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Kubernetes `metav1.Condition` (used for the pool's `Allocatable` condition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// RFC 3339 time; Go writes `null` for the zero time.
    #[serde(default)]
    pub last_transition_time: Option<String>,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

impl IPPoolSpec {
    /// The pool CIDR parsed as Calico's client does (`net.ParseCIDR`: a prefix is required).
    pub fn parsed_cidr(&self) -> Option<ParsedCidr> {
        netutil::parse_cidr(&self.cidr)
    }

    /// The block size in effect (the family default when unset).
    pub fn effective_block_size(&self) -> Option<i64> {
        if self.block_size != 0 {
            return Some(self.block_size);
        }
        self.parsed_cidr().map(|c| {
            if c.version() == 4 {
                DEFAULT_BLOCK_SIZE_V4
            } else {
                DEFAULT_BLOCK_SIZE_V6
            }
        })
    }

    pub fn allows(&self, use_: &str) -> bool {
        self.allowed_uses.iter().any(|u| u == use_)
    }
}

fn mode_enabled(mode: &str) -> bool {
    !mode.is_empty() && mode != "Never"
}

impl CalicoResource for IPPool {
    const KIND: &'static str = "IPPool";

    crate::resource::metadata_accessors!();

    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        // Calico stops defaulting when the CIDR does not parse (the create fails anyway).
        let Some(cidr) = spec.parsed_cidr() else {
            return;
        };
        // Calico normalises the CIDR text before storing. A CIDR with host bits set stays as
        // written so validation can still reject it ("not strictly masked"), as Calico does
        // by comparing against the address it parsed before normalising.
        if cidr.is_masked() {
            spec.cidr = cidr.canonical();
        }
        if spec.node_selector.is_empty() {
            spec.node_selector = "all()".to_string();
        }
        if spec.block_size == 0 {
            spec.block_size = if cidr.version() == 4 {
                DEFAULT_BLOCK_SIZE_V4
            } else {
                DEFAULT_BLOCK_SIZE_V6
            };
        }
        if spec.allowed_uses.is_empty() {
            spec.allowed_uses = vec![ALLOWED_USE_WORKLOAD.into(), ALLOWED_USE_TUNNEL.into()];
        }
        if spec.assignment_mode.is_none() {
            spec.assignment_mode = Some("Automatic".to_string());
        }
        if spec.ipip_mode.is_empty() {
            spec.ipip_mode = "Never".to_string();
        }
        if spec.vxlan_mode.is_empty() {
            spec.vxlan_mode = "Never".to_string();
        }
    }

    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        validate_ippool_spec(&self.spec, &FieldPath::root().field("spec"), errs);
    }
}

/// Every spec rule: Go validator + CRD schema + CEL rules on `IPPoolSpec`.
pub fn validate_ippool_spec(spec: &IPPoolSpec, path: &FieldPath, errs: &mut FieldErrors) {
    let cidr_path = path.field("cidr");
    let mut cidr = None;
    if spec.cidr.is_empty() {
        errs.push(&cidr_path, "IPPool CIDR must be specified");
    } else if spec.cidr.len() > CIDR_MAX_LEN {
        errs.push(
            &cidr_path,
            format!("Too long: may not be longer than {CIDR_MAX_LEN}"),
        );
    } else {
        match spec.parsed_cidr() {
            None => errs.push(&cidr_path, "IPPool CIDR must be a valid subnet"),
            Some(c) => cidr = Some(c),
        }
    }

    if let Some(c) = cidr {
        if !c.is_masked() {
            errs.push(&cidr_path, "IPPool CIDR is not strictly masked");
        }
        // CEL: no overlap with the link-local ranges, in either direction.
        let (ll_net, ll_name): (ipnet::IpNet, &str) = if c.version() == 4 {
            (ipv4_link_local(), "IPv4 link local range 169.254.0.0/16")
        } else {
            (ipv6_link_local(), "IPv6 link local range fe80::/10")
        };
        if ll_net.contains(&c.addr) || c.network().contains(&ll_net.addr()) {
            errs.push(&cidr_path, format!("IPPool CIDR overlaps with {ll_name}"));
        }
    }

    // blockSize: schema 0..128, then the per-family range, then "pool at least one block".
    let bs_path = path.field("blockSize");
    if !(0..=128).contains(&spec.block_size) {
        netutil::check_range(spec.block_size, Some(0), Some(128), &bs_path, errs);
    } else if let Some(c) = cidr {
        if spec.block_size != 0 {
            let ok = if c.version() == 4 {
                (20..=32).contains(&spec.block_size)
            } else {
                (116..=128).contains(&spec.block_size)
            };
            if !ok {
                errs.push(
                    &bs_path,
                    "blockSize must be between 20 and 32 for IPv4 pools, and between 116 and \
                     128 for IPv6 pools",
                );
            }
        }
        let effective = spec.effective_block_size().unwrap_or(DEFAULT_BLOCK_SIZE_V4);
        if !spec.disabled && i64::from(c.prefix_len) > effective {
            errs.push(
                &cidr_path,
                "IP pool size is too small for use with Calico IPAM. It must be equal to or \
                 greater than the block size.",
            );
        }
    }

    if !spec.ipip_mode.is_empty() {
        netutil::check_enum(&spec.ipip_mode, IPIP_MODES, &path.field("ipipMode"), errs);
    }
    if !spec.vxlan_mode.is_empty() {
        netutil::check_enum(
            &spec.vxlan_mode,
            VXLAN_MODES,
            &path.field("vxlanMode"),
            errs,
        );
    }
    if mode_enabled(&spec.ipip_mode) && mode_enabled(&spec.vxlan_mode) {
        errs.push(
            &path.field("vxlanMode"),
            "ipipMode and vxlanMode cannot both be enabled",
        );
    }
    if let Some(c) = cidr
        && c.version() == 6
        && mode_enabled(&spec.ipip_mode)
    {
        errs.push(
            &path.field("ipipMode"),
            "IPIP is not supported on IPv6 pools",
        );
    }

    // Selectors.
    for (name, sel) in [
        ("nodeSelector", &spec.node_selector),
        ("namespaceSelector", &spec.namespace_selector),
    ] {
        if sel.is_empty() {
            continue;
        }
        let p = path.field(name);
        if sel.len() > SELECTOR_MAX_LEN {
            errs.push(
                &p,
                format!("Too long: may not be longer than {SELECTOR_MAX_LEN}"),
            );
            continue;
        }
        if sel.contains("global(") {
            errs.push(
                &p,
                format!("global() selector is not valid for IPPool {name}"),
            );
            continue;
        }
        validation::validate_selector(sel, &p, errs);
    }

    // allowedUses: enum, a set, at most 10, and the LoadBalancer restrictions.
    let uses_path = path.field("allowedUses");
    if spec.allowed_uses.len() > ALLOWED_USES_MAX_ITEMS {
        errs.push(
            &uses_path,
            format!(
                "Too many: {}: must have at most {ALLOWED_USES_MAX_ITEMS} items",
                spec.allowed_uses.len()
            ),
        );
    }
    for (i, u) in spec.allowed_uses.iter().enumerate() {
        if !ALLOWED_USES.contains(&u.as_str()) {
            errs.push(&uses_path.index(i), format!("unknown use: {u}"));
        } else if spec.allowed_uses[..i].contains(u) {
            errs.push(&uses_path.index(i), format!("Duplicate value: {u:?}"));
        }
    }
    if spec.allows(ALLOWED_USE_LOAD_BALANCER) {
        if mode_enabled(&spec.ipip_mode) || mode_enabled(&spec.vxlan_mode) {
            errs.push(
                &uses_path,
                "LoadBalancer IP pool cannot have IPIP or VXLAN enabled",
            );
        }
        if spec.allows(ALLOWED_USE_WORKLOAD) || spec.allows(ALLOWED_USE_TUNNEL) {
            errs.push(
                &uses_path,
                "LoadBalancer cannot be combined with Workload or Tunnel allowed uses",
            );
        }
        if spec.disable_bgp_export {
            errs.push(
                &path.field("disableBGPExport"),
                "LoadBalancer IP pools cannot disable BGP export",
            );
        }
        // An empty selector is defaulted to all() (by the client and the CRD) before this runs.
        if !spec.node_selector.is_empty() && spec.node_selector != "all()" {
            errs.push(
                &path.field("nodeSelector"),
                "IP Pool with AllowedUse LoadBalancer must have nodeSelector set to all()",
            );
        }
    }
    if spec.allows(ALLOWED_USE_TUNNEL) && !spec.namespace_selector.is_empty() {
        errs.push(
            &path.field("namespaceSelector"),
            "IP Pool with AllowedUse Tunnel cannot have namespaceSelector",
        );
    }

    if let Some(mode) = &spec.assignment_mode {
        netutil::check_enum(mode, ASSIGNMENT_MODES, &path.field("assignmentMode"), errs);
    }
}

fn ipv4_link_local() -> ipnet::IpNet {
    ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
        std::net::Ipv4Addr::new(169, 254, 0, 0),
        16,
    ))
}

fn ipv6_link_local() -> ipnet::IpNet {
    ipnet::IpNet::V6(ipnet::Ipv6Net::new_assert(
        std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
    ))
}

impl IPPool {
    /// The update-only rules of `clientv3/ippool.go`: the CIDR (up to canonical rewriting) and
    /// the block size are immutable, and a LoadBalancer pool cannot become a Workload/Tunnel
    /// pool. Call after defaulting both objects.
    pub fn validate_update(&self, old: &IPPool, errs: &mut FieldErrors) {
        let spec = FieldPath::root().field("spec");
        if !cidr_change_ok(&old.spec.cidr, &self.spec.cidr) {
            errs.push(&spec.field("cidr"), "IPPool CIDR cannot be modified");
        }
        if old.spec.block_size != self.spec.block_size {
            errs.push(
                &spec.field("blockSize"),
                "IPPool BlockSize cannot be modified",
            );
        }
        if old.spec.allows(ALLOWED_USE_LOAD_BALANCER)
            && self
                .spec
                .allowed_uses
                .iter()
                .any(|u| u != ALLOWED_USE_LOAD_BALANCER)
        {
            errs.push(
                &spec.field("allowedUses"),
                "IPPool allowed use cannot be changed from LoadBalacer to Workload or Tunnel",
            );
        }
    }
}

impl IPPool {
    /// The create-only rule of `clientv3/ippool.go`: the CIDR must not overlap any other pool
    /// (pools with the same name are skipped, as a re-create of the same pool is reported by
    /// the datastore instead; pools whose CIDR does not parse are ignored, as Calico logs and
    /// skips them).
    pub fn validate_create(&self, existing: &[IPPool], errs: &mut FieldErrors) {
        let Some(mine) = self.spec.parsed_cidr().map(|c| c.network()) else {
            return;
        };
        for other in existing {
            if other.metadata.name == self.metadata.name {
                continue;
            }
            let Some(theirs) = other.spec.parsed_cidr().map(|c| c.network()) else {
                continue;
            };
            if mine.contains(&theirs.network()) || theirs.contains(&mine.network()) {
                errs.push(
                    &FieldPath::root().field("spec").field("cidr"),
                    format!(
                        "IPPool({}) CIDR overlaps with IPPool({}) CIDR {}",
                        self.metadata.name, other.metadata.name, other.spec.cidr
                    ),
                );
            }
        }
    }
}

/// `cidrChangeOK`: identical text, or the same network rewritten to its canonical form.
fn cidr_change_ok(old: &str, new: &str) -> bool {
    if old == new {
        return true;
    }
    match (netutil::parse_cidr(old), netutil::parse_cidr(new)) {
        (Some(o), Some(n)) => o.network() == n.network() && new == n.canonical(),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> IPPool {
        IPPool {
            metadata: ObjectMeta::named("p"),
            spec: IPPoolSpec {
                cidr: cidr.into(),
                ..Default::default()
            },
            status: None,
        }
    }

    #[test]
    fn defaults_match_clientv3() {
        let mut p = pool("fd00:0:0::/64");
        p.apply_defaults();
        assert_eq!(p.spec.cidr, "fd00::/64");
        assert_eq!(p.spec.block_size, 122);
        assert_eq!(p.spec.ipip_mode, "Never");
        assert_eq!(p.spec.vxlan_mode, "Never");
        assert_eq!(p.spec.node_selector, "all()");
        assert_eq!(p.spec.allowed_uses, vec!["Workload", "Tunnel"]);
        assert_eq!(p.spec.assignment_mode.as_deref(), Some("Automatic"));
        let before = p.clone();
        p.apply_defaults();
        assert_eq!(p, before, "defaulting is idempotent");
    }

    #[test]
    fn unmasked_cidr_is_kept_and_rejected() {
        let mut p = pool("10.0.0.1/16");
        p.apply_defaults();
        assert_eq!(p.spec.cidr, "10.0.0.1/16");
        let mut errs = FieldErrors::new();
        p.validate(&mut errs);
        assert_eq!(
            errs.to_string(),
            "spec.cidr: IPPool CIDR is not strictly masked"
        );
    }

    #[test]
    fn create_rejects_overlapping_pools() {
        let mut a = pool("10.0.0.0/16");
        a.metadata.name = "a".into();
        let mut b = pool("10.0.128.0/17");
        b.metadata.name = "b".into();
        let c = pool("fd00::/48");
        let mut errs = FieldErrors::new();
        b.validate_create(&[a.clone(), c.clone()], &mut errs);
        assert_eq!(
            errs.to_string(),
            "spec.cidr: IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.0.0.0/16"
        );
        let mut errs = FieldErrors::new();
        a.validate_create(&[a.clone(), c], &mut errs);
        assert!(errs.is_empty());
    }

    #[test]
    fn update_rules() {
        let mut old = pool("10.0.0.0/16");
        old.apply_defaults();
        let mut new = old.clone();
        new.spec.block_size = 24;
        let mut errs = FieldErrors::new();
        new.validate_update(&old, &mut errs);
        assert_eq!(
            errs.iter().next().map(|e| e.path.as_str()),
            Some("spec.blockSize")
        );
        assert!(cidr_change_ok("fd00:0::/64", "fd00::/64"));
        assert!(!cidr_change_ok("fd00::/64", "fd00:0::/64"));
        assert!(!cidr_change_ok("10.0.0.0/16", "10.1.0.0/16"));
    }
}
