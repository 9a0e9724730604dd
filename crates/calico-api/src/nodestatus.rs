//! CalicoNodeStatus (`api/pkg/apis/projectcalico/v3/nodestatus.go`): a request for calico-node
//! to report agent, BGP and route status for one node every `updatePeriodSeconds`; calico-node
//! fills in `status`.
//!
//! Go writes `status` and its nested structs without `omitempty`, so a fresh object is stored
//! with `lastUpdated: null`, empty daemon states and zero session counts, exactly as here.

use serde::{Deserialize, Serialize};

use crate::errors::{FieldErrors, FieldPath};
use crate::meta::ObjectMeta;
use crate::netutil;
use crate::resource::{CalicoResource, validate_cluster_scoped_meta};

pub const CLASSES: &[&str] = &["Agent", "BGP", "Routes"];
/// Maximum `updatePeriodSeconds` (one day).
pub const MAX_UPDATE_PERIOD_SECONDS: u32 = 86400;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalicoNodeStatus {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub spec: CalicoNodeStatusSpec,
    #[serde(default, deserialize_with = "crate::netutil::null_as_default")]
    pub status: CalicoNodeStatusStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalicoNodeStatusSpec {
    /// The node to report on (required).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Which of `Agent`, `BGP`, `Routes` to report (required, no duplicates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// 0–86400; 0 stops updates (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_period_seconds: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalicoNodeStatusStatus {
    /// RFC 3339; `null` until the first report.
    #[serde(default)]
    pub last_updated: Option<String>,
    #[serde(default)]
    pub agent: CalicoNodeAgentStatus,
    #[serde(default)]
    pub bgp: CalicoNodeBGPStatus,
    #[serde(default)]
    pub routes: CalicoNodeBGPRouteStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalicoNodeAgentStatus {
    #[serde(rename = "birdV4", default)]
    pub bird_v4: BGPDaemonStatus,
    #[serde(rename = "birdV6", default)]
    pub bird_v6: BGPDaemonStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalicoNodeBGPStatus {
    #[serde(rename = "numberEstablishedV4", default)]
    pub number_established_v4: i64,
    #[serde(rename = "numberNotEstablishedV4", default)]
    pub number_not_established_v4: i64,
    #[serde(rename = "numberEstablishedV6", default)]
    pub number_established_v6: i64,
    #[serde(rename = "numberNotEstablishedV6", default)]
    pub number_not_established_v6: i64,
    #[serde(rename = "peersV4", default, skip_serializing_if = "Vec::is_empty")]
    pub peers_v4: Vec<CalicoNodePeer>,
    #[serde(rename = "peersV6", default, skip_serializing_if = "Vec::is_empty")]
    pub peers_v6: Vec<CalicoNodePeer>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalicoNodeBGPRouteStatus {
    #[serde(rename = "routesV4", default, skip_serializing_if = "Vec::is_empty")]
    pub routes_v4: Vec<CalicoNodeRoute>,
    #[serde(rename = "routesV6", default, skip_serializing_if = "Vec::is_empty")]
    pub routes_v6: Vec<CalicoNodeRoute>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BGPDaemonStatus {
    /// `Ready` | `NotReady`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(rename = "routerID", default, skip_serializing_if = "String::is_empty")]
    pub router_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_boot_time: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_reconfiguration_time: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalicoNodePeer {
    #[serde(rename = "peerIP", default, skip_serializing_if = "String::is_empty")]
    pub peer_ip: String,
    /// `NodeMesh` | `NodePeer` | `GlobalPeer`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    /// BGP FSM state (`Idle` … `Established`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub since: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalicoNodeRoute {
    /// `FIB` | `RIB`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// Go writes this struct even when empty.
    #[serde(default)]
    pub learned_from: CalicoNodeRouteLearnedFrom,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalicoNodeRouteLearnedFrom {
    /// `Kernel` | `Static` | `Direct` | `NodeMesh` | `BGPPeer`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_type: String,
    #[serde(rename = "peerIP", default, skip_serializing_if = "String::is_empty")]
    pub peer_ip: String,
}

impl CalicoResource for CalicoNodeStatus {
    const KIND: &'static str = "CalicoNodeStatus";

    crate::resource::metadata_accessors!();

    fn validate(&self, errs: &mut FieldErrors) {
        validate_cluster_scoped_meta(&self.metadata, errs);
        let spec = FieldPath::root().field("spec");
        let s = &self.spec;
        if s.node.is_empty() {
            errs.push(&spec.field("node"), "Required value: node must be set");
        } else if !netutil::is_name(&s.node) {
            errs.push(
                &spec.field("node"),
                format!(
                    "invalid node name {:?}: must be a valid resource name",
                    s.node
                ),
            );
        }
        if s.classes.is_empty() {
            errs.push(&spec.field("classes"), "Required value: at least one class");
        }
        for (i, c) in s.classes.iter().enumerate() {
            let p = spec.field("classes").index(i);
            if !CLASSES.contains(&c.as_str()) {
                errs.push(&p, netutil::unsupported_value(c, CLASSES));
            } else if s.classes[..i].contains(c) {
                errs.push(&p, format!("Duplicate value: {c:?}"));
            }
        }
        match s.update_period_seconds {
            None => errs.push(
                &spec.field("updatePeriodSeconds"),
                "Required value: updatePeriodSeconds must be set",
            ),
            Some(v) if v > MAX_UPDATE_PERIOD_SECONDS => errs.push(
                &spec.field("updatePeriodSeconds"),
                format!("Invalid value: {v}: should be less than or equal to {MAX_UPDATE_PERIOD_SECONDS}"),
            ),
            Some(_) => {}
        }
        // Peer IPs reported in status must be IPs (`omitempty,ip`).
        let st = FieldPath::root().field("status");
        for (list, peers) in [
            ("peersV4", &self.status.bgp.peers_v4),
            ("peersV6", &self.status.bgp.peers_v6),
        ] {
            for (i, p) in peers.iter().enumerate() {
                if !p.peer_ip.is_empty() && netutil::parse_ip(&p.peer_ip).is_none() {
                    errs.push(
                        &st.field("bgp").field(list).index(i).field("peerIP"),
                        format!("{:?} is not a valid IP address", p.peer_ip),
                    );
                }
            }
        }
    }
}
