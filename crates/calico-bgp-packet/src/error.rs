//! Decode errors. Every error maps 1:1 to the NOTIFICATION code/subcode/data RFC 4271 §6.1–6.3
//! (and RFC 4760 §7, RFC 5492, RFC 7313 §5) prescribe, and every UPDATE error carries the
//! RFC 7606 action a speaker takes for it.

use std::fmt;
use std::net::Ipv4Addr;

use crate::notification::{Notification, code, subcode};
use crate::types::Family;

/// How a speaker handles an UPDATE error (RFC 7606 §2). Ordered from mildest to most severe;
/// when one UPDATE has several errors the most severe one wins (RFC 7606 §3: "the approach
/// used ... is the most severe").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// The malformed attribute was dropped; the routes are processed normally (RFC 7606 §2).
    AttributeDiscard,
    /// The routes in the UPDATE (NLRI field and MP_REACH_NLRI) must be handled as withdrawn
    /// (RFC 7606 §2). The decoded UPDATE keeps them so the RIB knows what to withdraw.
    TreatAsWithdraw,
    /// All routes of this family from the peer are removed and further ones ignored
    /// (RFC 4760 §7); a speaker that does not implement this falls back to a session reset.
    AfiSafiDisable(Family),
    /// Send the NOTIFICATION and close the session (RFC 4271 §6).
    SessionReset,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::AttributeDiscard => f.write_str("attribute-discard"),
            Action::TreatAsWithdraw => f.write_str("treat-as-withdraw"),
            Action::AfiSafiDisable(fam) => write!(f, "AFI/SAFI-disable ({fam})"),
            Action::SessionReset => f.write_str("session-reset"),
        }
    }
}

/// Name of a path attribute type code, for messages.
pub fn attribute_name(type_code: u8) -> String {
    let s = match type_code {
        1 => "ORIGIN",
        2 => "AS_PATH",
        3 => "NEXT_HOP",
        4 => "MULTI_EXIT_DISC",
        5 => "LOCAL_PREF",
        6 => "ATOMIC_AGGREGATE",
        7 => "AGGREGATOR",
        8 => "COMMUNITIES",
        9 => "ORIGINATOR_ID",
        10 => "CLUSTER_LIST",
        14 => "MP_REACH_NLRI",
        15 => "MP_UNREACH_NLRI",
        16 => "EXTENDED_COMMUNITIES",
        17 => "AS4_PATH",
        18 => "AS4_AGGREGATOR",
        32 => "LARGE_COMMUNITY",
        other => return format!("type {other}"),
    };
    s.to_string()
}

/// What is wrong with an UPDATE. Each variant is one RFC 4271 §6.3 subcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateErrorKind {
    /// Subcode 1: the withdrawn/attribute lengths do not fit the message, an attribute list
    /// overrun, or a duplicated attribute (RFC 7606 §3 g, §4).
    MalformedAttributeList {
        /// What exactly is inconsistent.
        reason: String,
    },
    /// Subcode 2: a well-known (non-optional) attribute type we do not know.
    UnrecognizedWellKnown {
        /// The type code.
        type_code: u8,
        /// The whole attribute as received (NOTIFICATION data).
        attr: Vec<u8>,
    },
    /// Subcode 3: a mandatory well-known attribute is missing.
    MissingWellKnown {
        /// The missing type code (NOTIFICATION data).
        type_code: u8,
    },
    /// Subcode 4: the flags conflict with the type code.
    AttributeFlags {
        /// The type code.
        type_code: u8,
        /// The flags received.
        flags: u8,
        /// The whole attribute as received.
        attr: Vec<u8>,
    },
    /// Subcode 5: the attribute length is wrong for its type.
    AttributeLength {
        /// The type code.
        type_code: u8,
        /// The length received.
        length: usize,
        /// What the length should have been, in words ("4", "a non-zero multiple of 4").
        expected: String,
        /// The whole attribute as received.
        attr: Vec<u8>,
    },
    /// Subcode 6: ORIGIN value not 0, 1 or 2.
    InvalidOrigin {
        /// The value received.
        value: u8,
        /// The whole attribute as received.
        attr: Vec<u8>,
    },
    /// Subcode 8: NEXT_HOP is not a valid host address (RFC 4271 §6.3).
    InvalidNextHop {
        /// The address, formatted.
        next_hop: String,
        /// The whole attribute as received.
        attr: Vec<u8>,
    },
    /// Subcode 9: a recognised optional attribute is malformed (also RFC 4760 §7 for
    /// MP_REACH_NLRI/MP_UNREACH_NLRI).
    OptionalAttribute {
        /// The type code.
        type_code: u8,
        /// What is wrong.
        reason: String,
        /// The whole attribute as received.
        attr: Vec<u8>,
    },
    /// Subcode 10: the NLRI or withdrawn routes field is not well formed.
    InvalidNetworkField {
        /// "NLRI" or "withdrawn routes".
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Subcode 11: AS_PATH is malformed.
    MalformedAsPath {
        /// What is wrong.
        reason: String,
        /// The whole attribute as received.
        attr: Vec<u8>,
    },
}

impl UpdateErrorKind {
    /// The RFC 4271 §4.5 UPDATE Message Error subcode.
    pub fn subcode(&self) -> u8 {
        match self {
            UpdateErrorKind::MalformedAttributeList { .. } => 1,
            UpdateErrorKind::UnrecognizedWellKnown { .. } => 2,
            UpdateErrorKind::MissingWellKnown { .. } => 3,
            UpdateErrorKind::AttributeFlags { .. } => 4,
            UpdateErrorKind::AttributeLength { .. } => 5,
            UpdateErrorKind::InvalidOrigin { .. } => 6,
            UpdateErrorKind::InvalidNextHop { .. } => 8,
            UpdateErrorKind::OptionalAttribute { .. } => 9,
            UpdateErrorKind::InvalidNetworkField { .. } => 10,
            UpdateErrorKind::MalformedAsPath { .. } => 11,
        }
    }

    /// The NOTIFICATION data RFC 4271 §6.3 prescribes for this subcode.
    pub fn data(&self) -> Vec<u8> {
        match self {
            UpdateErrorKind::MissingWellKnown { type_code } => vec![*type_code],
            UpdateErrorKind::UnrecognizedWellKnown { attr, .. }
            | UpdateErrorKind::AttributeFlags { attr, .. }
            | UpdateErrorKind::AttributeLength { attr, .. }
            | UpdateErrorKind::InvalidOrigin { attr, .. }
            | UpdateErrorKind::InvalidNextHop { attr, .. }
            | UpdateErrorKind::OptionalAttribute { attr, .. } => attr.clone(),
            UpdateErrorKind::MalformedAttributeList { .. }
            | UpdateErrorKind::InvalidNetworkField { .. }
            | UpdateErrorKind::MalformedAsPath { .. } => Vec::new(),
        }
    }
}

impl fmt::Display for UpdateErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateErrorKind::MalformedAttributeList { reason } => {
                write!(f, "UPDATE: malformed attribute list: {reason}")
            }
            UpdateErrorKind::UnrecognizedWellKnown { type_code, .. } => write!(
                f,
                "UPDATE: unrecognized well-known attribute type {type_code}"
            ),
            UpdateErrorKind::MissingWellKnown { type_code } => write!(
                f,
                "UPDATE: missing well-known attribute {}",
                attribute_name(*type_code)
            ),
            UpdateErrorKind::AttributeFlags {
                type_code, flags, ..
            } => write!(
                f,
                "UPDATE: attribute {} has flags {flags:#04x} that conflict with its type",
                attribute_name(*type_code)
            ),
            UpdateErrorKind::AttributeLength {
                type_code,
                length,
                expected,
                ..
            } => write!(
                f,
                "UPDATE: attribute {} length {length}, expected {expected}",
                attribute_name(*type_code)
            ),
            UpdateErrorKind::InvalidOrigin { value, .. } => {
                write!(
                    f,
                    "UPDATE: invalid ORIGIN value {value}, expected 0, 1 or 2"
                )
            }
            UpdateErrorKind::InvalidNextHop { next_hop, .. } => {
                write!(f, "UPDATE: invalid NEXT_HOP {next_hop}")
            }
            UpdateErrorKind::OptionalAttribute {
                type_code, reason, ..
            } => write!(
                f,
                "UPDATE: attribute {} is malformed: {reason}",
                attribute_name(*type_code)
            ),
            UpdateErrorKind::InvalidNetworkField { field, reason } => {
                write!(f, "UPDATE: invalid {field} field: {reason}")
            }
            UpdateErrorKind::MalformedAsPath { reason, .. } => {
                write!(f, "UPDATE: malformed AS_PATH: {reason}")
            }
        }
    }
}

/// One error found in an UPDATE, with the RFC 7606 action it calls for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct UpdateError {
    /// What is wrong (gives the NOTIFICATION subcode and data).
    pub kind: UpdateErrorKind,
    /// What the speaker does about it.
    pub action: Action,
}

impl UpdateError {
    pub(crate) fn new(kind: UpdateErrorKind, action: Action) -> UpdateError {
        UpdateError { kind, action }
    }

    /// The NOTIFICATION to send if the action is (or is escalated to) a session reset.
    pub fn notification(&self) -> Notification {
        Notification::new(code::UPDATE_MESSAGE, self.kind.subcode(), self.kind.data())
    }
}

/// Why a message could not be decoded at all (or, for UPDATEs, why the session must be reset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Header: the marker is not 16 octets of ones (RFC 4271 §6.1, subcode 1).
    #[error("header: marker is not all ones (connection not synchronized)")]
    ConnectionNotSynchronized,
    /// Header: the length field is out of range or wrong for the type (subcode 2; data is
    /// the length field).
    #[error("header: message length {length} is invalid{}", type_hint(*.msg_type))]
    BadMessageLength {
        /// The length field.
        length: u16,
        /// The message type, when it was known.
        msg_type: Option<u8>,
    },
    /// Header: unknown message type (subcode 3; data is the type).
    #[error("header: unknown message type {0}")]
    BadMessageType(u8),
    /// OPEN: version other than 4 (subcode 1; data is the largest supported version, 4).
    #[error("OPEN: unsupported BGP version {0}, only 4 is supported")]
    UnsupportedVersion(u8),
    /// OPEN: the peer AS is not acceptable, e.g. AS 0 (RFC 7607) or not the configured one
    /// (subcode 2).
    #[error("OPEN: bad peer AS {0}")]
    BadPeerAs(u32),
    /// OPEN: the BGP identifier is 0.0.0.0 (RFC 6286 §2.2; subcode 3).
    #[error("OPEN: bad BGP identifier {0}")]
    BadBgpIdentifier(Ipv4Addr),
    /// OPEN: an optional parameter other than capabilities (subcode 4).
    #[error("OPEN: unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    /// OPEN: hold time 1 or 2 seconds (subcode 6).
    #[error("OPEN: unacceptable hold time {0}s (must be 0 or at least 3)")]
    UnacceptableHoldTime(u16),
    /// OPEN: a capability the speaker requires is missing or unsupported (RFC 5492 §5,
    /// subcode 7; data lists the capabilities). Raised by the speaker, not the decoder.
    #[error("OPEN: unsupported capability code {code}")]
    UnsupportedCapability {
        /// Capability code.
        code: u8,
        /// Capability value.
        value: Vec<u8>,
    },
    /// OPEN: optional parameter or capability lengths are inconsistent (subcode 0,
    /// "unspecific", because RFC 4271/5492 name no better one).
    #[error("OPEN: {0}")]
    MalformedOpen(String),
    /// UPDATE error that requires a session reset.
    #[error("{0}")]
    Update(UpdateError),
    /// ROUTE-REFRESH with a body other than 4 octets (RFC 7313 §5: code 7, subcode 1; data is
    /// the complete message).
    #[error("ROUTE-REFRESH: message length {length}, expected 23")]
    RouteRefreshLength {
        /// The length field.
        length: u16,
        /// The complete message (NOTIFICATION data).
        message: Vec<u8>,
    },
}

fn type_hint(t: Option<u8>) -> String {
    match t {
        Some(1) => " for OPEN".to_string(),
        Some(2) => " for UPDATE".to_string(),
        Some(3) => " for NOTIFICATION".to_string(),
        Some(4) => " for KEEPALIVE".to_string(),
        Some(5) => " for ROUTE-REFRESH".to_string(),
        Some(t) => format!(" for type {t}"),
        None => String::new(),
    }
}

impl DecodeError {
    /// The NOTIFICATION a speaker sends for this error.
    pub fn notification(&self) -> Notification {
        match self {
            DecodeError::ConnectionNotSynchronized => Notification::new(
                code::MESSAGE_HEADER,
                subcode::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ),
            DecodeError::BadMessageLength { length, .. } => Notification::new(
                code::MESSAGE_HEADER,
                subcode::BAD_MESSAGE_LENGTH,
                length.to_be_bytes().to_vec(),
            ),
            DecodeError::BadMessageType(t) => {
                Notification::new(code::MESSAGE_HEADER, subcode::BAD_MESSAGE_TYPE, vec![*t])
            }
            DecodeError::UnsupportedVersion(_) => Notification::new(
                code::OPEN_MESSAGE,
                subcode::UNSUPPORTED_VERSION_NUMBER,
                4u16.to_be_bytes().to_vec(),
            ),
            DecodeError::BadPeerAs(_) => {
                Notification::new(code::OPEN_MESSAGE, subcode::BAD_PEER_AS, Vec::new())
            }
            DecodeError::BadBgpIdentifier(_) => {
                Notification::new(code::OPEN_MESSAGE, subcode::BAD_BGP_IDENTIFIER, Vec::new())
            }
            DecodeError::UnsupportedOptionalParameter(_) => Notification::new(
                code::OPEN_MESSAGE,
                subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
                Vec::new(),
            ),
            DecodeError::UnacceptableHoldTime(_) => Notification::new(
                code::OPEN_MESSAGE,
                subcode::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
            ),
            DecodeError::UnsupportedCapability { code: c, value } => {
                let mut data = Vec::with_capacity(2 + value.len());
                data.push(*c);
                data.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
                data.extend_from_slice(&value[..value.len().min(255)]);
                Notification::new(code::OPEN_MESSAGE, subcode::UNSUPPORTED_CAPABILITY, data)
            }
            DecodeError::MalformedOpen(_) => {
                Notification::new(code::OPEN_MESSAGE, subcode::UNSPECIFIC, Vec::new())
            }
            DecodeError::Update(e) => e.notification(),
            DecodeError::RouteRefreshLength { message, .. } => Notification::new(
                code::ROUTE_REFRESH_MESSAGE,
                subcode::INVALID_MESSAGE_LENGTH,
                message.clone(),
            ),
        }
    }

    /// Every decode error ends the session except UPDATE errors with a milder action (those
    /// are returned inside [`crate::Decoded`], never as `Err`).
    pub fn action(&self) -> Action {
        match self {
            DecodeError::Update(e) => e.action,
            _ => Action::SessionReset,
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded message is larger than the negotiated maximum.
    #[error("message of {length} octets exceeds the maximum of {max}")]
    MessageTooLong {
        /// Encoded length.
        length: usize,
        /// Allowed maximum (4096, or 65535 with extended messages).
        max: usize,
    },
    /// An attribute value does not fit the 2-octet extended length.
    #[error("attribute {} value of {length} octets exceeds 65535", attribute_name(*.type_code))]
    AttributeTooLong {
        /// Type code.
        type_code: u8,
        /// Value length.
        length: usize,
    },
    /// Capabilities/optional parameters do not fit the OPEN's length fields.
    #[error("OPEN: {0}")]
    Open(String),
    /// A value that cannot be represented on the wire (e.g. an IPv6 prefix in the IPv4 NLRI
    /// field).
    #[error("{0}")]
    Invalid(String),
}
