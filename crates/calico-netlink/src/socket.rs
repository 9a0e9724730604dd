//! The blocking `NETLINK_ROUTE` socket: request/response framing shared by the link, address, route and
//! neighbour modules.
//!
//! Every change request carries `NLM_F_ACK` and the reply stream is read until that request's ACK (an
//! `NLMSG_ERROR` with code 0) or its error; dumps are read until `NLMSG_DONE`, across as many datagrams as the
//! kernel needs. Replies are matched to the request by sequence number: anything with another sequence
//! number (the tail of an earlier request that failed half-way) is discarded.

use std::sync::Mutex;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
    NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use crate::error::{ErrorKind, NetlinkError};
use crate::netns::NetNs;

/// Large enough for any single datagram the kernel sends on a dump (it caps dump skbs at 32 KiB unless the
/// receive buffer asks for more); a datagram that still does not fit is detected with `MSG_TRUNC`.
const RECV_BUF: usize = 64 * 1024;

/// How often a dump that the kernel flags as interrupted (`NLM_F_DUMP_INTR`: the table changed while it was
/// being dumped) is retried before giving up.
const DUMP_RETRIES: usize = 5;

/// What a request failed with, before the caller names the operation.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The kernel's NACK: positive errno, and the extended-ACK text when the kernel gave one
    /// (e.g. "Nexthop has invalid gateway").
    Errno(i32, Option<String>),
    /// A transport or decoding problem.
    Other(String),
}

impl Fail {
    pub(crate) fn errno(&self) -> Option<i32> {
        match self {
            Fail::Errno(e, _) => Some(*e),
            Fail::Other(_) => None,
        }
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Fail::Errno(e, _) => ErrorKind::from_errno(*e),
            Fail::Other(_) => ErrorKind::Other,
        }
    }

    pub(crate) fn into_error(self, op: impl Into<String>) -> NetlinkError {
        match self {
            Fail::Errno(e, None) => NetlinkError::from_errno(op, e),
            Fail::Errno(e, Some(text)) => {
                NetlinkError::from_errno(op, e).with_kernel_message(&text)
            }
            Fail::Other(detail) => NetlinkError::new(op, ErrorKind::Other, detail),
        }
    }
}

struct Inner {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// A `NETLINK_ROUTE` socket. It is bound to the network namespace it was opened in, for its whole life,
/// whichever thread later uses it. Requests on one socket are serialised (it is `Sync`).
pub struct RouteSocket {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for RouteSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteSocket").finish_non_exhaustive()
    }
}

impl RouteSocket {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let op = "opening a NETLINK_ROUTE socket";
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| NetlinkError::from_io(op, e))?;
        // Strict checking makes the kernel honour the filters in dump requests (table, protocol, oif,
        // ifindex) and reject malformed headers instead of silently ignoring them.
        socket
            .set_netlink_get_strict_chk(true)
            .map_err(|e| NetlinkError::from_io(op, e))?;
        // Extended ACKs carry the kernel's own explanation of a NACK; capped ACKs keep the echo of our
        // request down to its header. Both are optional niceties (kernels since 4.12), so failures to
        // enable them are ignored.
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        let kernel = SocketAddr::new(0, 0);
        socket
            .bind(&kernel)
            .map_err(|e| NetlinkError::from_io(op, e))?;
        socket
            .connect(&kernel)
            .map_err(|e| NetlinkError::from_io(op, e))?;
        Ok(RouteSocket {
            inner: Mutex::new(Inner {
                socket,
                // Start from a non-zero, per-process-varying number so two sockets' traces are distinguishable.
                seq: std::process::id().wrapping_mul(7919),
                buf: Vec::with_capacity(RECV_BUF),
            }),
        })
    }

    /// Opens a socket bound to `ns` (via [`NetNs::run`]; the caller's thread does not move).
    pub fn open_in(ns: &NetNs) -> Result<Self, NetlinkError> {
        ns.run(RouteSocket::open)?
            .map_err(|e| e.context(format!("in network namespace {}", ns.path().display())))
    }

    /// Sends a change request (`NLM_F_REQUEST | NLM_F_ACK | flags`) and waits for its ACK. Any reply
    /// messages before the ACK are returned (e.g. the answer to a non-dump GET).
    pub(crate) fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, Fail> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| Fail::Other("netlink socket lock poisoned".into()))?;
        let seq = inner.send(msg, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        inner.recv(seq).map(|(msgs, _)| msgs)
    }

    /// Sends change requests back to back, up to [`BATCH_WINDOW`] in flight, and collects each
    /// one's ACK or NACK by sequence number: one system call per request instead of a round
    /// trip, which is what makes bulk route installation fast (bgp.md §5). The results are in
    /// request order; a transport failure fails the requests it left unanswered.
    pub(crate) fn request_batch(
        &self,
        msgs: Vec<(RouteNetlinkMessage, u16)>,
    ) -> Vec<Result<(), Fail>> {
        let mut results: Vec<Option<Result<(), Fail>>> = (0..msgs.len()).map(|_| None).collect();
        let mut inner = match self.inner.lock() {
            Ok(i) => i,
            Err(_) => {
                return msgs
                    .iter()
                    .map(|_| Err(Fail::Other("netlink socket lock poisoned".into())))
                    .collect();
            }
        };
        let mut msgs = msgs.into_iter().enumerate().peekable();
        while msgs.peek().is_some() {
            let mut pending: std::collections::HashMap<u32, usize> =
                std::collections::HashMap::new();
            for (i, (msg, flags)) in msgs.by_ref().take(BATCH_WINDOW) {
                match inner.send(msg, NLM_F_REQUEST | NLM_F_ACK | flags) {
                    Ok(seq) => {
                        pending.insert(seq, i);
                    }
                    Err(f) => results[i] = Some(Err(f)),
                }
            }
            if let Err(e) = inner.recv_acks(&mut pending, &mut results) {
                for (_, i) in pending.drain() {
                    results[i] = Some(Err(Fail::Other(e.clone())));
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Fail::Other("no answer from the kernel".into()))))
            .collect()
    }

    /// Dumps (`NLM_F_DUMP`), handing each reply message to `each` as it arrives. When the kernel
    /// flags the dump as interrupted, `restart` is called and the dump runs again (up to
    /// [`DUMP_RETRIES`] times), so the caller can drop what it collected.
    pub(crate) fn dump_each(
        &self,
        msg: RouteNetlinkMessage,
        each: &mut dyn FnMut(RouteNetlinkMessage),
        restart: &mut dyn FnMut(),
    ) -> Result<(), Fail> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| Fail::Other("netlink socket lock poisoned".into()))?;
        for attempt in 0..DUMP_RETRIES {
            if attempt > 0 {
                restart();
            }
            let seq = inner.send(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP)?;
            if !inner.recv_each(seq, each)? {
                return Ok(());
            }
        }
        Err(Fail::Other(format!(
            "dump was interrupted by concurrent changes {DUMP_RETRIES} times in a row"
        )))
    }

    /// Dumps (`NLM_F_DUMP`) and returns every reply message, retrying interrupted dumps.
    pub(crate) fn dump(&self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, Fail> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| Fail::Other("netlink socket lock poisoned".into()))?;
        for _ in 0..DUMP_RETRIES {
            let seq = inner.send(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP)?;
            let (msgs, interrupted) = inner.recv(seq)?;
            if !interrupted {
                return Ok(msgs);
            }
        }
        Err(Fail::Other(format!(
            "dump was interrupted by concurrent changes {DUMP_RETRIES} times in a row"
        )))
    }
}

/// Change requests in flight at once in [`RouteSocket::request_batch`]: their ACKs (capped to
/// the request header, ~36 bytes each) fit the socket's receive queue with room to spare.
pub(crate) const BATCH_WINDOW: usize = 256;

impl Inner {
    /// Reads ACKs/NACKs until every request in `pending` (sequence number → result index) is
    /// answered. `Err` is a transport failure.
    fn recv_acks(
        &mut self,
        pending: &mut std::collections::HashMap<u32, usize>,
        results: &mut [Option<Result<(), Fail>>],
    ) -> Result<(), String> {
        while !pending.is_empty() {
            self.buf.clear();
            let size = loop {
                match self.socket.recv(&mut self.buf, nix::libc::MSG_TRUNC) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("receiving netlink replies: {e}")),
                }
            };
            if size > self.buf.len() {
                return Err(format!(
                    "netlink reply of {size} bytes exceeds the {RECV_BUF}-byte receive buffer"
                ));
            }
            let mut offset = 0;
            while offset < size {
                let chunk = &self.buf[offset..size];
                let packet = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk)
                    .map_err(|e| format!("decoding netlink reply: {e}"))?;
                let len = packet.header.length as usize;
                if len == 0 {
                    return Err("netlink reply with zero length".into());
                }
                offset += (len + 3) & !3;
                let Some(i) = pending.remove(&packet.header.sequence_number) else {
                    continue;
                };
                results[i] = Some(match packet.payload {
                    NetlinkPayload::Error(err) => match err.code {
                        Some(code) => Err(Fail::Errno(
                            code.get().saturating_abs(),
                            extack_message(&err.header, packet.header.flags),
                        )),
                        None => Ok(()),
                    },
                    // Anything else before the ACK (no change request answers with data):
                    // keep waiting for this one's ACK.
                    _ => {
                        pending.insert(packet.header.sequence_number, i);
                        continue;
                    }
                });
            }
        }
        Ok(())
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, Fail> {
        self.seq = self.seq.wrapping_add(1);
        let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
        packet.header.flags = flags;
        packet.header.sequence_number = self.seq;
        packet.finalize();
        let mut bytes = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut bytes);
        let sent = self
            .socket
            .send(&bytes, 0)
            .map_err(|e| Fail::Other(format!("sending netlink request: {e}")))?;
        if sent != bytes.len() {
            return Err(Fail::Other(format!(
                "short netlink send ({sent} of {} bytes)",
                bytes.len()
            )));
        }
        Ok(self.seq)
    }

    /// Reads replies to request `seq`: a dump ends with NLMSG_DONE, a change request with its ACK/NACK.
    /// Returns the messages and whether the dump was flagged as interrupted.
    fn recv(&mut self, seq: u32) -> Result<(Vec<RouteNetlinkMessage>, bool), Fail> {
        let mut out = Vec::new();
        let interrupted = self.recv_each(seq, &mut |m| out.push(m))?;
        Ok((out, interrupted))
    }

    /// [`Inner::recv`] handing each reply message to `each` as it is decoded, so a large dump
    /// never exists as a whole. Returns whether the dump was flagged as interrupted.
    fn recv_each(
        &mut self,
        seq: u32,
        each: &mut dyn FnMut(RouteNetlinkMessage),
    ) -> Result<bool, Fail> {
        let mut interrupted = false;
        loop {
            self.buf.clear();
            let size = loop {
                match self.socket.recv(&mut self.buf, nix::libc::MSG_TRUNC) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(match e.raw_os_error() {
                            // ENOBUFS: the kernel dropped replies (receive queue overrun).
                            Some(errno) => Fail::Other(format!(
                                "receiving netlink reply: {}",
                                nix::errno::Errno::from_raw(errno).desc()
                            )),
                            None => Fail::Other(format!("receiving netlink reply: {e}")),
                        });
                    }
                }
            };
            if size > self.buf.len() {
                return Err(Fail::Other(format!(
                    "netlink reply of {size} bytes exceeds the {RECV_BUF}-byte receive buffer"
                )));
            }
            let mut offset = 0;
            while offset < size {
                let chunk = &self.buf[offset..size];
                let packet = NetlinkMessage::<RouteNetlinkMessage>::deserialize(chunk)
                    .map_err(|e| Fail::Other(format!("decoding netlink reply: {e}")))?;
                let len = packet.header.length as usize;
                // Messages are 4-byte aligned within a datagram.
                let advance = (len + 3) & !3;
                if len == 0 {
                    return Err(Fail::Other("netlink reply with zero length".into()));
                }
                offset += advance;
                if packet.header.sequence_number != seq {
                    // A leftover of an earlier request (e.g. one that failed mid-dump): not ours.
                    continue;
                }
                if packet.header.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match packet.payload {
                    NetlinkPayload::Done(done) => {
                        if done.code != 0 {
                            return Err(Fail::Errno(done.code.saturating_abs(), None));
                        }
                        return Ok(interrupted);
                    }
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            Some(code) => Err(Fail::Errno(
                                code.get().saturating_abs(),
                                extack_message(&err.header, packet.header.flags),
                            )),
                            // An ACK. For a dump it should not come, but it also ends the exchange.
                            None => Ok(interrupted),
                        };
                    }
                    NetlinkPayload::Overrun(_) => {
                        return Err(Fail::Other("netlink overrun".into()));
                    }
                    NetlinkPayload::Noop => {}
                    NetlinkPayload::InnerMessage(m) => each(m),
                    _ => {}
                }
            }
        }
    }
}

/// The `NLMSGERR_ATTR_MSG` text of an extended ACK. `payload` is what follows the error code: the echoed
/// request (only its 16-byte header when `NLM_F_CAPPED` is in `flags`), then, when `NLM_F_ACK_TLVS` is in
/// `flags`, TLV attributes.
fn extack_message(payload: &[u8], flags: u16) -> Option<String> {
    const NLMSG_HDRLEN: usize = 16;
    const NLMSGERR_ATTR_MSG: u16 = 1;
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let mut rest = if flags & NLM_F_CAPPED != 0 {
        payload.get(NLMSG_HDRLEN..)?
    } else {
        let echoed = payload.get(..4)?;
        let echoed_len = u32::from_ne_bytes([echoed[0], echoed[1], echoed[2], echoed[3]]) as usize;
        payload.get((echoed_len + 3) & !3..)?
    };
    while rest.len() >= 4 {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &rest[4..len];
            let text = text.split(|b| *b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(text).trim().to_string();
            return (!text.is_empty()).then_some(text);
        }
        rest = rest.get((len + 3) & !3..).unwrap_or_default();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::extack_message;

    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn header(len: u32) -> Vec<u8> {
        let mut h = len.to_ne_bytes().to_vec();
        h.extend_from_slice(&[0u8; 12]);
        h
    }

    #[test]
    fn extended_ack_text() {
        use super::{NLM_F_ACK_TLVS, NLM_F_CAPPED};
        let both = NLM_F_ACK_TLVS | NLM_F_CAPPED;
        // Capped: only the 16-byte header of a 40-byte request was echoed.
        let mut p = header(40);
        p.extend(tlv(4, &7u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS first
        p.extend(tlv(1, b"Nexthop device is not up\0"));
        assert_eq!(
            extack_message(&p, both).as_deref(),
            Some("Nexthop device is not up")
        );
        // Without the TLV flag, nothing is read.
        assert_eq!(extack_message(&p, NLM_F_CAPPED), None);
        // Uncapped: the full 24-byte request echoed, then the TLVs.
        let mut p = header(24);
        p.extend_from_slice(&[0u8; 8]);
        p.extend(tlv(1, b"bad\0"));
        assert_eq!(extack_message(&p, NLM_F_ACK_TLVS).as_deref(), Some("bad"));
        // No TLVs, or garbage.
        assert_eq!(extack_message(&header(16), both), None);
        assert_eq!(extack_message(&[1, 2], both), None);
        let mut p = header(16);
        p.extend_from_slice(&[200, 0, 1, 0]);
        assert_eq!(extack_message(&p, both), None);
    }
}
