//! Calico's CNI plugins, `calico` and `calico-ipam`, rebuilt.
//!
//! This crate owns the CNI protocol as the plugins speak it ([`spec`]: environment, versions
//! 0.1.0 to 1.1.0, results and their down-conversion, error JSON), Calico's network
//! configuration ([`netconf`], `cni-plugin/pkg/types/types.go`), the workload identity taken
//! from `CNI_ARGS` ([`args`]), and the ADD/DEL/CHECK/STATUS/GC orchestration ([`plugin`]),
//! which is written against small traits so it is tested with in-memory fakes. The binaries in
//! `src/bin/` wire those traits to the real dataplane (`calico-netlink`), the node agent's
//! IPAM socket (`calico-ipam-rpc`) and the datastore (`calico-client`).
//!
//! It must not depend on calico-node, Felix or any long-running agent code: the plugins are
//! short-lived processes that start, do one verb, print one JSON document on stdout and exit.

pub mod args;
pub mod netconf;
pub mod plugin;
pub mod spec;
pub mod system;
