//! The IPAM socket between the CNI plugin and calico-node (Contract 2 of issue 4).
//!
//! Calico's `calico-ipam` plugin allocates by itself, serialised behind a host-wide file lock
//! (`/var/run/calico/ipam.lock`) and paying several datastore round trips per pod. Here the
//! plugin instead asks the node's agent, which batches a burst of requests against the node's
//! affine blocks (`calico_ipam::NodeAllocator`). This crate owns only the conversation: the
//! wire types ([`protocol`]: newline-delimited JSON over a Unix stream socket, one request then
//! one response per line, several per connection, versioned), the synchronous client the
//! plugin links ([`IpamAgentClient`], std only, so the plugin needs no async runtime) and the
//! async server loop the agent runs ([`serve`] over an [`IpamBackend`]).
//!
//! It must not depend on the datastore, IPAM or any dataplane crate: the agent supplies the
//! backend, and the plugin stays small.

pub mod client;
pub mod protocol;
pub mod server;

pub use client::{IpamAgentClient, RpcError, socket_path_from_env, socket_path_from_value};
pub use protocol::{
    AssignIpsRequest, AssignRequest, Assigned, MAX_LINE_BYTES, PROTOCOL_VERSION, RemoteError,
    Reply, Request, RequestFrame, ResponseFrame, codes,
};
pub use server::{IpamBackend, serve};

/// Where calico-node listens by default (next to Calico's own `/var/run/calico` sockets).
pub const DEFAULT_SOCKET_PATH: &str = "/var/run/calico/ipam.sock";

/// Environment variable overriding [`DEFAULT_SOCKET_PATH`], read by both the agent and the
/// plugin (the lab runs one agent per node, each with its own socket).
pub const ENV_SOCKET_PATH: &str = "CALICO_IPAM_SOCKET";
