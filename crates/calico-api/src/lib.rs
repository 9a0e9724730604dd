//! The `projectcalico.org/v3` resource model: every kind a Calico user writes, with Calico's field
//! names and JSON/YAML shapes, Calico's defaulting, and Calico's validation (errors carry the
//! field path, e.g. `spec.ingress[0].destination.ports[1]: range 9010:9000 is reversed`).
//!
//! It also decodes documents the way calicoctl reads them (multi-document YAML, JSON objects,
//! `List` kinds) with strict field checking, naming the document and field that is wrong.
//!
//! Pure: no I/O, no datastore, no dataplane. Depends only on `calico-selector` (selectors in
//! resources are validated with Calico's own grammar). Storage keys and resourceVersion handling
//! belong to `calico-client`.

pub mod decode;
pub mod errors;
pub mod kinds;
pub mod meta;
pub mod resource;
pub mod validation;

pub mod clusterinfo;

// Infrastructure kinds (IPAM, BGP, nodes, component configuration) and their shared types.
pub mod asnumber;
pub mod bgpconfig;
pub mod bgpfilter;
pub mod bgppeer;
pub mod duration;
pub mod felixconfig;
pub mod felixconfig_validate;
pub mod ipamconfig;
pub mod ippool;
pub mod ipreservation;
pub mod kubecontrollers;
pub mod netutil;
pub mod node;
pub mod nodestatus;

// Policy kinds (policies, tiers, network sets, endpoints, profiles) and their shared types.
pub mod hostendpoint;
pub mod k8s;
pub mod networkset;
pub mod numorstring;
pub mod policy;
pub mod profile;
pub mod rule;
pub mod stagedk8spolicy;
pub mod tier;
pub mod wepname;
pub mod workloadendpoint;

pub use errors::{FieldError, FieldErrors, FieldPath};
pub use kinds::{KindInfo, all_kinds, kind_info, lookup_kind};
pub use meta::ObjectMeta;
pub use resource::{CalicoResource, Resource};

/// The API group/version every resource here belongs to.
pub const API_VERSION: &str = "projectcalico.org/v3";
