//! The BGP status socket of calico-node: what the native BGP speaker reports about itself and
//! its peers, and the conversation that carries it to `calicoctl node status`.
//!
//! Calico's `calicoctl node status` connects to BIRD's control socket
//! (`/var/run/calico/bird.ctl`, `bird6.ctl`) and parses the text table of `show protocols`
//! (`calicoctl/calicoctl/commands/node/status.go`). calico-rs has no BIRD: its speaker answers
//! on its own socket ([`DEFAULT_SOCKET`]) with typed data instead ([`SpeakerStatus`]), so no
//! consumer has to parse BIRD's text. This crate owns only that: the serde types ([`types`]),
//! the wire protocol ([`protocol`]: newline-delimited JSON over a Unix stream socket, one
//! request line then one response line, versioned, in the style of `calico-ipam-rpc`), a
//! synchronous client ([`query`], std only, for the CLI), the async server loop the agent runs
//! ([`serve`]) and BIRD-compatible renderings of the data ([`bird`]: `show protocols` time
//! format, info column, protocol names) so that tools keep printing what Calico printed.
//!
//! It must not depend on the speaker, the datastore or any dataplane crate: the agent supplies
//! a snapshot function, and the CLI stays small.

pub mod bird;
pub mod client;
pub mod protocol;
pub mod server;
pub mod types;

pub use client::{StatusError, query, socket_path_from_env, socket_path_from_value};
pub use protocol::{MAX_LINE_BYTES, PROTOCOL_VERSION, RemoteError, codes};
pub use server::{StatusProvider, serve};
pub use types::{Family, PeerStatus, PeerType, SpeakerStatus};

/// Where calico-node's BGP speaker answers status queries by default (next to Calico's
/// `bird.ctl` and `bird6.ctl` in `/var/run/calico`).
pub const DEFAULT_SOCKET: &str = "/var/run/calico/bgp.ctl";

/// Environment variable overriding [`DEFAULT_SOCKET`], read by both calico-node and
/// calicoctl (the lab runs several nodes on one host, each with its own socket).
pub const ENV_SOCKET: &str = "CALICO_BGP_STATUS_SOCKET";
