//! The message header (RFC 4271 §4.1), framing for a TCP byte stream, and the top-level
//! [`Message`] decode/encode.

use crate::error::{Action, DecodeError, EncodeError, UpdateError};
use crate::notification::Notification;
use crate::open::Open;
use crate::types::{CodecContext, Family, HEADER_LEN, MAX_MESSAGE_LEN, be16};
use crate::update::Update;

/// Message type codes (RFC 4271 §4.1, RFC 2918 §3).
pub mod message_type {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH.
    pub const ROUTE_REFRESH: u8 = 5;
}

/// ROUTE-REFRESH message (RFC 2918 §3; the reserved octet is the message subtype of
/// RFC 7313 §3.2: 0 normal request, 1 BoRR, 2 EoRR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    /// AFI/SAFI whose routes are requested.
    pub family: Family,
    /// RFC 7313 subtype (0 = request, 1 = Beginning of Route Refresh, 2 = End of Route
    /// Refresh). Others must be ignored by the receiver (RFC 7313 §5).
    pub subtype: u8,
}

/// A BGP message.
// UPDATE is the big variant and also by far the most common one; boxing it would cost an
// allocation per UPDATE for no gain (messages are decoded and moved one at a time).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN.
    Open(Open),
    /// UPDATE.
    Update(Update),
    /// NOTIFICATION.
    Notification(Notification),
    /// KEEPALIVE.
    Keepalive,
    /// ROUTE-REFRESH.
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type code.
    pub fn message_type(&self) -> u8 {
        match self {
            Message::Open(_) => message_type::OPEN,
            Message::Update(_) => message_type::UPDATE,
            Message::Notification(_) => message_type::NOTIFICATION,
            Message::Keepalive => message_type::KEEPALIVE,
            Message::RouteRefresh(_) => message_type::ROUTE_REFRESH,
        }
    }

    /// Appends the complete message (header included) to `out`.
    /// On error `out` is left as it was.
    pub fn encode_into(&self, ctx: &CodecContext, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let res = self.encode_unchecked(ctx, out, start);
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    fn encode_unchecked(
        &self,
        ctx: &CodecContext,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), EncodeError> {
        out.extend_from_slice(&[0xff; 16]);
        out.extend_from_slice(&[0, 0, self.message_type()]);
        match self {
            Message::Open(o) => o.encode_body(out)?,
            Message::Update(u) => u.encode_body(ctx, out)?,
            Message::Notification(n) => n.encode_body(out),
            Message::Keepalive => {}
            Message::RouteRefresh(r) => {
                out.extend_from_slice(&r.family.afi.to_be_bytes());
                out.push(r.subtype);
                out.push(r.family.safi);
            }
        }
        let len = out.len() - start;
        // RFC 8654 §4: OPEN and KEEPALIVE never exceed 4096 octets.
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_message_len(),
        };
        if len > max {
            return Err(EncodeError::MessageTooLong { length: len, max });
        }
        out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(())
    }

    /// The complete message as a new buffer.
    pub fn encode(&self, ctx: &CodecContext) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(ctx, &mut out)?;
        Ok(out)
    }
}

/// A decoded message plus the UPDATE errors a speaker survives (RFC 7606).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The message.
    pub message: Message,
    /// Non-fatal UPDATE errors (empty for other types and for clean UPDATEs).
    pub errors: Vec<UpdateError>,
}

impl Decoded {
    /// The most severe RFC 7606 action over `errors`, `None` when there are none.
    pub fn action(&self) -> Option<Action> {
        self.errors.iter().map(|e| e.action).max()
    }
}

/// What [`frame`] found at the start of a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Not enough bytes yet; at least this many are needed in total before calling again.
    NeedMore(usize),
    /// A complete message of this many octets starts the buffer.
    Complete(usize),
}

/// The minimum and maximum length of each message type, for header validation
/// (RFC 4271 §6.1: "the Length field ... is less than 19 or greater than 4096, or ... an
/// OPEN message is less than the minimum length of the OPEN message ...").
fn length_ok(msg_type: u8, len: usize, max: usize) -> bool {
    match msg_type {
        message_type::OPEN => (29..=MAX_MESSAGE_LEN).contains(&len),
        message_type::UPDATE => (23..=max).contains(&len),
        message_type::NOTIFICATION => (21..=max).contains(&len),
        message_type::KEEPALIVE => len == HEADER_LEN,
        // ROUTE-REFRESH length errors are RFC 7313 code 7 errors, found when decoding.
        message_type::ROUTE_REFRESH => (HEADER_LEN..=max).contains(&len),
        _ => true,
    }
}

/// Looks at the start of a TCP receive buffer and says whether a complete message is there.
/// Header errors (RFC 4271 §6.1) are reported as soon as the bytes that show them arrived,
/// so a session never waits for the body of a message it will reject.
pub fn frame(buf: &[u8], ctx: &CodecContext) -> Result<Frame, DecodeError> {
    let marker = buf.len().min(16);
    if buf[..marker].iter().any(|&b| b != 0xff) {
        return Err(DecodeError::ConnectionNotSynchronized);
    }
    if buf.len() < HEADER_LEN {
        return Ok(Frame::NeedMore(HEADER_LEN));
    }
    let len = usize::from(be16(buf, 16));
    let msg_type = buf[18];
    if !(1..=5).contains(&msg_type) {
        // Check the length first: RFC 4271 §6.1 lists it before the type.
        if len < HEADER_LEN || len > ctx.max_message_len() {
            return Err(DecodeError::BadMessageLength {
                length: len as u16,
                msg_type: None,
            });
        }
        return Err(DecodeError::BadMessageType(msg_type));
    }
    if !length_ok(msg_type, len, ctx.max_message_len()) {
        return Err(DecodeError::BadMessageLength {
            length: len as u16,
            msg_type: Some(msg_type),
        });
    }
    if buf.len() < len {
        return Ok(Frame::NeedMore(len));
    }
    Ok(Frame::Complete(len))
}

/// Decodes one complete message (`buf` must be exactly one message, as [`frame`] delimits).
/// Errors are session-ending; UPDATE errors with a milder RFC 7606 action come back in
/// [`Decoded::errors`].
pub fn decode(buf: &[u8], ctx: &CodecContext) -> Result<Decoded, DecodeError> {
    match frame(buf, ctx)? {
        Frame::NeedMore(_) => {
            return Err(DecodeError::BadMessageLength {
                length: if buf.len() >= HEADER_LEN {
                    be16(buf, 16)
                } else {
                    buf.len() as u16
                },
                msg_type: buf.get(18).copied(),
            });
        }
        Frame::Complete(n) if n != buf.len() => {
            return Err(DecodeError::BadMessageLength {
                length: n as u16,
                msg_type: Some(buf[18]),
            });
        }
        Frame::Complete(_) => {}
    }
    let body = &buf[HEADER_LEN..];
    let clean = |message| Decoded {
        message,
        errors: Vec::new(),
    };
    Ok(match buf[18] {
        message_type::OPEN => clean(Message::Open(Open::decode_body(body)?)),
        message_type::UPDATE => {
            let d = Update::decode_body(body, ctx)?;
            Decoded {
                message: Message::Update(d.update),
                errors: d.errors,
            }
        }
        message_type::NOTIFICATION => {
            let n = Notification::decode_body(body).ok_or(DecodeError::BadMessageLength {
                length: buf.len() as u16,
                msg_type: Some(message_type::NOTIFICATION),
            })?;
            clean(Message::Notification(n))
        }
        message_type::KEEPALIVE => clean(Message::Keepalive),
        _ => {
            // RFC 7313 §5: a body other than 4 octets is a ROUTE-REFRESH Message Error.
            if body.len() != 4 {
                return Err(DecodeError::RouteRefreshLength {
                    length: buf.len() as u16,
                    message: buf.to_vec(),
                });
            }
            clean(Message::RouteRefresh(RouteRefresh {
                family: Family::new(be16(body, 0), body[3]),
                subtype: body[2],
            }))
        }
    })
}
