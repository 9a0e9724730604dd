//! BGP-4 wire codec for calico-node's native BGP speaker (issue 5).
//!
//! This crate owns the byte format of BGP messages and nothing else: framing a TCP byte stream
//! into messages ([`frame`]), decoding them into typed values ([`decode`]) and encoding them
//! back ([`Message::encode`]). It covers OPEN with capabilities (RFC 5492: multiprotocol
//! RFC 4760, 4-octet AS RFC 6793, route refresh RFC 2918/7313, graceful restart RFC 4724,
//! ADD-PATH RFC 7911, extended message RFC 8654, extended next hop RFC 8950, unknown ones
//! preserved), UPDATE with the path attributes Calico's BGP needs (RFC 4271, 1997, 4360,
//! 4456, 4760, 6793, 8092; unknown optional transitive attributes kept with the Partial bit
//! set), NOTIFICATION, KEEPALIVE and ROUTE-REFRESH.
//!
//! Validation is complete: every [`DecodeError`] maps 1:1 to the NOTIFICATION code/subcode/
//! data of RFC 4271 §6.1–6.3 ([`DecodeError::notification`]), and UPDATE errors follow the
//! RFC 7606 revised error handling: each [`UpdateError`] carries its [`Action`]
//! (attribute-discard, treat-as-withdraw, AFI/SAFI-disable, session-reset). Only
//! session-reset errors make [`decode`] fail; milder ones come back next to the decoded
//! UPDATE, which keeps its NLRI so the RIB can withdraw them.
//!
//! What a session negotiated (4-octet AS, ADD-PATH per family, extended messages, peer type)
//! is passed to every call as a [`CodecContext`]; the codec itself holds no state.
//!
//! It must not depend on I/O, sockets, timers, tokio, the datastore or any other calico
//! crate: the FSM, RIB and speaker build on it, never the other way round. Pure functions
//! over byte slices keep it fuzzable (`fuzz/fuzz_targets/bgp_decode.rs`).

mod attributes;
mod error;
mod message;
mod notification;
mod open;
mod types;
mod update;

pub use attributes::{
    Aggregator, AsPath, AsSegment, Community, LargeCommunity, MpNextHop, MpReach, MpUnreach,
    Origin, PathAttributes, RawAttribute, SegmentType, attr_type, flags,
};
pub use error::{Action, DecodeError, EncodeError, UpdateError, UpdateErrorKind, attribute_name};
pub use message::{Decoded, Frame, Message, RouteRefresh, decode, frame, message_type};
pub use notification::{Notification, code, subcode};
pub use open::{
    AddPathFamily, Capability, ExtendedNextHopFamily, GracefulRestart, GracefulRestartFamily, Open,
    capability_code,
};
pub use types::{
    AS_TRANS, CodecContext, Family, HEADER_LEN, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Nlri,
    PeerKind,
};
pub use update::{Update, UpdateDecoded};
