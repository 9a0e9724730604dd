//! Calico's CNI plugins, `calico` and `calico-ipam`, rebuilt.
//!
//! This crate owns the CNI protocol as the plugins speak it ([`spec`]: environment, versions
//! 0.1.0 to 1.1.0, results and their down-conversion, error JSON), Calico's network
//! configuration ([`netconf`], `cni-plugin/pkg/types/types.go`), the workload identity taken
//! from `CNI_ARGS` ([`args`]), and the ADD/DEL/CHECK/STATUS/GC orchestration ([`plugin`]),
//! which is written against small traits so it is tested with in-memory fakes. [`system`]
//! wires those traits to the real dataplane (`calico-netlink`), the node agent's IPAM socket
//! (`calico-ipam-rpc`) and the datastore (`calico-client`), and holds the binaries' `main`.
//!
//! It must not depend on calico-node, Felix or any long-running agent code: the plugins are
//! short-lived processes that start, do one verb, print one JSON document on stdout and exit.
//!
//! # Where we differ from Calico's plugin, on purpose
//!
//! * Spec 1.1.0 is supported (STATUS, GC), besides 0.1.0 to 1.0.0.
//! * CHECK really checks (prevResult vs WorkloadEndpoint vs the kernel, then IPAM) where Calico
//!   answers "OK"; `calico-ipam` CHECK verifies the addresses are still held by the handle.
//! * A failed ADD removes the veth it made when the endpoint write fails (Calico only releases
//!   the addresses), and a failed IPAM ADD is followed by an IPAM DEL (SPEC.md section 4).
//! * DEL leaves the host veth alone when the endpoint belongs to another sandbox of the pod.
//! * Addresses come from calico-node's IPAM service over a Unix socket (`ipam.agent_socket`),
//!   not from an in-process IPAM client.
//! * `IP=` in `CNI_ARGS` may name one IPv4 and one IPv6 address separated by a comma (Calico
//!   takes a single address); both are assigned or neither.
//! * No Kubernetes API: `policy.type: k8s`, `usePodCidr`, `readiness_gates` and `netkit` are
//!   refused with code 2 (unsupported field); pod annotations are not read.
//! * `datastore_type: embedded` with `datastore_path` selects the single-file store.

pub mod args;
pub mod netconf;
pub mod plugin;
pub mod spec;
pub mod system;
