//! Typed access to Calico's `projectcalico.org/v3` resources in a datastore.
//!
//! This crate owns what sits between the resource model (`calico-api`) and the raw key/value
//! store (`calico-datastore`): Calico's etcd key layout ([`keys`]), the stored JSON form
//! ([`codec`]), `resourceVersion` = etcd ModRevision compare-and-swap, libcalico-go's
//! `clientv3` semantics and per-kind rules ([`Client`]), calicoctl's create/apply/replace/patch
//! rules, and choosing the datastore from calicoctl's config file or environment ([`config`]).
//!
//! It contains no command-line code (that is `calicoctl`) and must not depend on any dataplane
//! (netlink, nftables) or on IPAM.

pub mod client;
pub mod codec;
pub mod config;
pub mod error;
pub mod keys;
pub mod patch;
pub mod rules;

pub use client::{
    Client, EventType, ResourceEvent, ResourceList, ResourceWatch, into_kind, kind_of, now_rfc3339,
    parse_resource_version,
};
pub use config::{ApiConfig, DatastoreType};
pub use error::ClientError;
pub use patch::Patch;
