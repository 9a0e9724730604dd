//! NOTIFICATION message (RFC 4271 §4.5) and the IANA error code/subcode numbers.

use std::fmt;

/// NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313 §5).
pub mod code {
    /// Message Header Error.
    pub const MESSAGE_HEADER: u8 = 1;
    /// OPEN Message Error.
    pub const OPEN_MESSAGE: u8 = 2;
    /// UPDATE Message Error.
    pub const UPDATE_MESSAGE: u8 = 3;
    /// Hold Timer Expired.
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// ROUTE-REFRESH Message Error (RFC 7313).
    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;
}

/// NOTIFICATION error subcodes, grouped by code.
pub mod subcode {
    /// Any code: no specific subcode.
    pub const UNSPECIFIC: u8 = 0;
    // Message Header Error (code 1).
    /// Connection Not Synchronized.
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    /// Bad Message Length.
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    /// Bad Message Type.
    pub const BAD_MESSAGE_TYPE: u8 = 3;
    // OPEN Message Error (code 2).
    /// Unsupported Version Number.
    pub const UNSUPPORTED_VERSION_NUMBER: u8 = 1;
    /// Bad Peer AS.
    pub const BAD_PEER_AS: u8 = 2;
    /// Bad BGP Identifier.
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    /// Unsupported Optional Parameter.
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    /// Unacceptable Hold Time.
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    /// Unsupported Capability (RFC 5492).
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    // ROUTE-REFRESH Message Error (code 7).
    /// Invalid Message Length (RFC 7313).
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
    // Cease (code 6, RFC 4486).
    /// Maximum Number of Prefixes Reached.
    pub const CEASE_MAX_PREFIXES: u8 = 1;
    /// Administrative Shutdown.
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    /// Peer De-configured.
    pub const CEASE_PEER_DECONFIGURED: u8 = 3;
    /// Administrative Reset.
    pub const CEASE_ADMIN_RESET: u8 = 4;
    /// Connection Rejected.
    pub const CEASE_CONNECTION_REJECTED: u8 = 5;
    /// Other Configuration Change.
    pub const CEASE_OTHER_CONFIG_CHANGE: u8 = 6;
    /// Connection Collision Resolution.
    pub const CEASE_COLLISION_RESOLUTION: u8 = 7;
    /// Out of Resources.
    pub const CEASE_OUT_OF_RESOURCES: u8 = 8;
    /// Hard Reset (RFC 8538).
    pub const CEASE_HARD_RESET: u8 = 9;
}

/// A NOTIFICATION message: error code, subcode and diagnostic data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// Error code (see [`code`]).
    pub code: u8,
    /// Error subcode (see [`subcode`]).
    pub subcode: u8,
    /// Diagnostic data; its meaning depends on code/subcode.
    pub data: Vec<u8>,
}

impl Notification {
    /// Builds a NOTIFICATION.
    pub fn new(code: u8, subcode: u8, data: Vec<u8>) -> Notification {
        Notification {
            code,
            subcode,
            data,
        }
    }

    /// A Cease NOTIFICATION carrying an RFC 8203/9003 shutdown communication (for the
    /// Administrative Shutdown and Administrative Reset subcodes). The text is cut at 255
    /// octets on a character boundary.
    pub fn cease_with_message(subcode: u8, message: &str) -> Notification {
        let mut end = message.len().min(255);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = Vec::with_capacity(end + 1);
        data.push(end as u8);
        data.extend_from_slice(&message.as_bytes()[..end]);
        Notification::new(code::CEASE, subcode, data)
    }

    /// The RFC 8203 shutdown communication, when this is an Administrative Shutdown/Reset
    /// carrying a well-formed one.
    pub fn shutdown_message(&self) -> Option<&str> {
        if self.code != code::CEASE
            || !(self.subcode == subcode::CEASE_ADMIN_SHUTDOWN
                || self.subcode == subcode::CEASE_ADMIN_RESET)
        {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..usize::from(len))?;
        std::str::from_utf8(text).ok()
    }

    /// Name of the error code.
    pub fn code_name(&self) -> &'static str {
        match self.code {
            code::MESSAGE_HEADER => "Message Header Error",
            code::OPEN_MESSAGE => "OPEN Message Error",
            code::UPDATE_MESSAGE => "UPDATE Message Error",
            code::HOLD_TIMER_EXPIRED => "Hold Timer Expired",
            code::FSM => "Finite State Machine Error",
            code::CEASE => "Cease",
            code::ROUTE_REFRESH_MESSAGE => "ROUTE-REFRESH Message Error",
            _ => "Unknown error code",
        }
    }

    /// Name of the subcode, where one is defined.
    pub fn subcode_name(&self) -> Option<&'static str> {
        let name = match (self.code, self.subcode) {
            (_, 0) => "Unspecific",
            (1, 1) => "Connection Not Synchronized",
            (1, 2) => "Bad Message Length",
            (1, 3) => "Bad Message Type",
            (2, 1) => "Unsupported Version Number",
            (2, 2) => "Bad Peer AS",
            (2, 3) => "Bad BGP Identifier",
            (2, 4) => "Unsupported Optional Parameter",
            (2, 6) => "Unacceptable Hold Time",
            (2, 7) => "Unsupported Capability",
            (2, 11) => "Role Mismatch",
            (3, 1) => "Malformed Attribute List",
            (3, 2) => "Unrecognized Well-known Attribute",
            (3, 3) => "Missing Well-known Attribute",
            (3, 4) => "Attribute Flags Error",
            (3, 5) => "Attribute Length Error",
            (3, 6) => "Invalid ORIGIN Attribute",
            (3, 8) => "Invalid NEXT_HOP Attribute",
            (3, 9) => "Optional Attribute Error",
            (3, 10) => "Invalid Network Field",
            (3, 11) => "Malformed AS_PATH",
            (5, 1) => "Receive Unexpected Message in OpenSent State",
            (5, 2) => "Receive Unexpected Message in OpenConfirm State",
            (5, 3) => "Receive Unexpected Message in Established State",
            (6, 1) => "Maximum Number of Prefixes Reached",
            (6, 2) => "Administrative Shutdown",
            (6, 3) => "Peer De-configured",
            (6, 4) => "Administrative Reset",
            (6, 5) => "Connection Rejected",
            (6, 6) => "Other Configuration Change",
            (6, 7) => "Connection Collision Resolution",
            (6, 8) => "Out of Resources",
            (6, 9) => "Hard Reset",
            (6, 10) => "BFD Down",
            (7, 1) => "Invalid Message Length",
            _ => return None,
        };
        Some(name)
    }

    pub(crate) fn decode_body(body: &[u8]) -> Option<Notification> {
        let (&c, rest) = body.split_first()?;
        let (&s, data) = rest.split_first()?;
        Some(Notification::new(c, s, data.to_vec()))
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
        out.push(self.subcode);
        out.extend_from_slice(&self.data);
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code_name(), self.code)?;
        match self.subcode_name() {
            Some(n) => write!(f, " / {n} ({})", self.subcode)?,
            None => write!(f, " / subcode {}", self.subcode)?,
        }
        if let Some(msg) = self.shutdown_message() {
            write!(f, ": \"{msg}\"")?;
        } else if !self.data.is_empty() {
            write!(f, ", data")?;
            for b in &self.data {
                write!(f, " {b:02x}")?;
            }
        }
        Ok(())
    }
}
