//! The calico-node agent: what Calico's `calico/node` container does at start and while it
//! runs, for the workload-networking half. It owns the agent's environment configuration
//! ([`config`], as Calico's calico-node reads it), node IP autodetection ([`autodetect`]),
//! start-up ([`startup`]: ClusterInformation, the Node resource with its BGP address, default
//! IP pools), the node's IPAM service on a Unix socket ([`ipam_service`], for the CNI plugin),
//! health endpoints ([`health`]), Prometheus metrics ([`metrics`]) and Felix's status reports
//! ([`status`]); the binary composes them with `calico-felix` (the dataplane part).
//!
//! It must not implement CNI (that is `calico-cni`), IPAM allocation itself (`calico-ipam`) or
//! dataplane programming (`calico-felix`, `calico-netlink`); nothing here may change the
//! network of the root namespace.

pub mod agent;
pub mod autodetect;
pub mod bgp;
pub mod config;
pub mod health;
pub mod host;
pub mod ipam_service;
pub mod metrics;
pub mod policy;
pub mod startup;
pub mod status;
