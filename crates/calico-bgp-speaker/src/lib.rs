//! The BGP speaker's I/O shell (issue 5): TCP connections, framing, timers and the task that
//! drives each peer's [`calico_bgp::fsm::Session`]. Everything that decides (the session
//! state machine, the message codec, the RIB, Calico's peering rules) lives in the pure crates
//! `calico-bgp`, `calico-bgp-packet` and `calico-bgp-config`; this crate only moves bytes and
//! time between them and the network.
//!
//! Layout: [`peer`] runs one peer (outbound connects, accepted inbound connections, reading,
//! framing, decoding with the negotiated context, sending, timer ticks) and reports what the
//! RIB needs as [`peer::PeerEvent`]s; [`listener`] accepts inbound connections and hands each
//! to the peer configured for its source address.
//!
//! Must not depend on the datastore, the kernel routing table or calico-node: the speaker is
//! composed with those by calico-node.

pub mod listener;
pub mod peer;
pub mod speaker;
