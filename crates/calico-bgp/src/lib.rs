//! The protocol logic of calico-node's native BGP speaker (issue 5), above the wire codec.
//!
//! This crate owns the per-peer session state machine ([`fsm`]: RFC 4271 §8 with collision
//! detection §6.8, capability negotiation, and the graceful-restart helper signals of
//! RFC 4724 §4.2 / RFC 8538). Later it will also own the RIBs, import/export policy and the
//! speaker that ties sessions to the RIB.
//! The [`rib`] module holds Adj-RIB-In, Loc-RIB (RFC 4271 §9.1 best path, RFC 4456 route
//! reflection, RFC 4724 stale routes) and Adj-RIB-Out, returning changes as values.
//!
//! Everything here is pure and deterministic: it must not do I/O, open sockets, spawn tasks,
//! read a clock or depend on tokio, the datastore or any calico crate other than
//! `calico-bgp-packet`. Time is an argument (`now`), effects are returned as values
//! ([`fsm::Action`]); the speaker in calico-node performs them. That keeps every transition
//! testable with a fake clock and fuzzable with random event sequences.

pub mod fsm;
pub mod rib;
