//! Set and map element changes sent to nf_tables over netlink, without `nft`.
//!
//! `nft` loads its cache of the whole table (every chain and set) before it sends anything,
//! which costs ~100 ms at 10k policies even for one set element. The element changes
//! themselves need no cache: the kernel looks sets up by name. So element-only changes
//! (IP-set membership, dispatch map entries) are encoded here as one nfnetlink batch —
//! `NFNL_MSG_BATCH_BEGIN`, `NFT_MSG_DELSETELEM` / `NFT_MSG_NEWSETELEM` messages, `BATCH_END`
//! — which the kernel commits atomically like an `nft -f` script
//! (`net/netfilter/nfnetlink.c`, `nfnetlink_rcv_batch`): an error in any message aborts the
//! whole batch and is reported with the failing message's sequence number, and with
//! `NETLINK_EXT_ACK` the offset of the failing element attribute.
//!
//! Elements are encoded as nft 1.0.6 sends them (checked with `nft --debug=netlink`):
//! addresses in network order; interval sets as a start element plus an end element one past
//! the range flagged `NFT_SET_ELEM_INTERVAL_END` (none when the range ends at the top of the
//! address space); concatenations with every field padded to 4 bytes (the protocol byte, then
//! the port in network order); interface names zero-padded to `IFNAMSIZ`; verdicts as
//! `NFTA_DATA_VERDICT { NFTA_VERDICT_CODE, NFTA_VERDICT_CHAIN }`.

use std::io;
use std::net::IpAddr;
use std::ops::Range;

use calico_nft::{Element, ElementOp, Verdict};
use ipnet::IpNet;
use netlink_sys::Socket;

use super::DataplaneError;

pub(super) const NFNL_SUBSYS_NFTABLES: u16 = 10;
pub(super) const NFNL_MSG_BATCH_BEGIN: u16 = 16;
pub(super) const NFNL_MSG_BATCH_END: u16 = 17;
pub(super) const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
pub(super) const NFPROTO_INET: u8 = 1;

pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_ACK: u16 = 0x4;
pub(super) const NLM_F_CREATE: u16 = 0x400;
pub(super) const NLM_F_CAPPED: u16 = 0x100;
pub(super) const NLM_F_ACK_TLVS: u16 = 0x200;
pub(super) const NLMSGERR_ATTR_MSG: u16 = 1;
pub(super) const NLMSGERR_ATTR_OFFS: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
pub(super) const NLA_TYPE_MASK: u16 = 0x3fff;

pub(super) const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
pub(super) const NFTA_SET_ELEM_LIST_SET: u16 = 2;
pub(super) const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
pub(super) const NFTA_SET_ELEM_LIST_SET_ID: u16 = 4;
pub(super) const NFTA_LIST_ELEM: u16 = 1;
pub(super) const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
pub(super) const NFTA_SET_ELEM_FLAGS: u16 = 3;
pub(super) const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
pub(super) const NFTA_DATA_VALUE: u16 = 1;
pub(super) const NFTA_DATA_VERDICT: u16 = 2;
pub(super) const NFTA_VERDICT_CODE: u16 = 1;
pub(super) const NFTA_VERDICT_CHAIN: u16 = 2;
const NF_DROP: i32 = 0;
const NF_ACCEPT: i32 = 1;
const NFT_JUMP: i32 = -3;
const NFT_GOTO: i32 = -4;
const NFT_RETURN: i32 = -5;
const IFNAMSIZ: usize = 16;

/// Bytes of element attributes per message: the elements list is one netlink attribute,
/// whose length field is 16 bits.
const MAX_ELEMENTS_ATTR: usize = 60 * 1024;
/// Largest batch sent over netlink when the socket cannot tell its send buffer. One `send`
/// must hold the whole batch (the kernel commits what one skb carries) and fit the socket's
/// send buffer (`net.core.wmem_default`, 208 KiB by default; the driver raises it and asks
/// the socket, `generation::send_limit`); larger changes go through `nft`, whose cost is then
/// dominated by the data.
pub(super) const MAX_BATCH: usize = 128 * 1024;
/// Largest batch encoded at all (the send buffer the driver asks for).
pub(super) const MAX_ENCODED_BATCH: usize = 4 << 20;

/// One encoded batch and what each of its messages carries, to name a refused element.
#[derive(Debug)]
pub(super) struct Batch {
    pub bytes: Vec<u8>,
    pub begin_seq: u32,
    pub messages: Vec<MessageInfo>,
}

#[derive(Debug)]
pub(super) struct MessageInfo {
    pub seq: u32,
    pub set: String,
    pub add: bool,
    /// Byte range of each element attribute within the message, with the op it encodes.
    pub elements: Vec<(Range<usize>, usize)>,
}

/// Appends netlink messages and attributes to one buffer, patching message and nested
/// attribute lengths when they close. Shared by the element and the table batches.
#[derive(Debug, Default)]
pub(super) struct Writer {
    pub(super) buf: Vec<u8>,
    /// Set when a nested attribute outgrew the 16-bit length field: the bytes are wrong then
    /// and must not be sent (the encoders check it before returning a batch).
    pub(super) overflow: bool,
}

impl Writer {
    pub(super) fn attr(&mut self, kind: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.put_len(len);
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    /// A 32-bit attribute in network byte order (every nf_tables number is).
    pub(super) fn attr_u32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    /// A string attribute, NUL-terminated as nf_tables expects.
    pub(super) fn attr_str(&mut self, kind: u16, value: &str) {
        self.attr(kind, &nul_terminated(value));
    }

    fn put_len(&mut self, len: usize) {
        let len = u16::try_from(len).unwrap_or_else(|_| {
            self.overflow = true;
            u16::MAX
        });
        self.buf.extend_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    pub(super) fn begin_nested(&mut self, kind: u16) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    pub(super) fn end_nested(&mut self, at: usize) {
        let len = u16::try_from(self.buf.len() - at).unwrap_or_else(|_| {
            self.overflow = true;
            u16::MAX
        });
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// nlmsghdr (length patched by `end_message`) + nfgenmsg.
    pub(super) fn begin_message(
        &mut self,
        kind: u16,
        flags: u16,
        seq: u32,
        family: u8,
        res_id: u16,
    ) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        at
    }

    /// An nf_tables message (`NFNL_SUBSYS_NFTABLES`) of family `inet`.
    pub(super) fn begin_nft_message(&mut self, kind: u16, flags: u16, seq: u32) -> usize {
        self.begin_message(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            flags,
            seq,
            NFPROTO_INET,
            0,
        )
    }

    pub(super) fn end_message(&mut self, at: usize) {
        let len = u32::try_from(self.buf.len() - at).unwrap_or(u32::MAX);
        self.buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// `NFNL_MSG_BATCH_BEGIN` / `NFNL_MSG_BATCH_END` (family unspec, res_id the subsystem).
    pub(super) fn batch_marker(&mut self, kind: u16, seq: u32) {
        let at = self.begin_message(kind, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.end_message(at);
    }

    /// Asks for an acknowledgement of the message starting at `at`: the batch's last message,
    /// whose reply ends the batch's replies (errors are reported for every failing message
    /// anyway, before it).
    pub(super) fn request_ack(&mut self, at: usize) {
        let flags = u16::from_ne_bytes([self.buf[at + 6], self.buf[at + 7]]) | NLM_F_ACK;
        self.buf[at + 6..at + 8].copy_from_slice(&flags.to_ne_bytes());
    }
}

/// One kernel element of `op`: its key, whether it ends an interval, and the map data.
struct KernelElement {
    key: Vec<u8>,
    interval_end: bool,
    verdict: Option<(i32, Option<String>)>,
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The first address after `n`, `None` when `n` ends at the top of its address space.
fn after(n: &IpNet) -> Option<IpAddr> {
    match n {
        IpNet::V4(n) => u32::from(n.broadcast())
            .checked_add(1)
            .map(|a| IpAddr::V4(a.into())),
        IpNet::V6(n) => u128::from(n.broadcast())
            .checked_add(1)
            .map(|a| IpAddr::V6(a.into())),
    }
}

/// The kernel elements one op adds or deletes (two for an interval with an end).
fn kernel_elements(op: &ElementOp) -> Result<Vec<KernelElement>, DataplaneError> {
    let plain = |key: Vec<u8>| KernelElement {
        key,
        interval_end: false,
        verdict: None,
    };
    Ok(match &op.value {
        Element::Addr(a) => vec![plain(addr_bytes(*a))],
        Element::Net(n) => {
            let mut v = vec![plain(addr_bytes(n.network()))];
            if let Some(end) = after(n) {
                v.push(KernelElement {
                    key: addr_bytes(end),
                    interval_end: true,
                    verdict: None,
                });
            }
            v
        }
        Element::AddrProtoPort {
            addr,
            protocol,
            port,
        } => {
            let mut key = addr_bytes(*addr);
            key.extend_from_slice(&[*protocol, 0, 0, 0]);
            key.extend_from_slice(&port.to_be_bytes());
            key.extend_from_slice(&[0, 0]);
            vec![plain(key)]
        }
        Element::ProtoPort { protocol, port } => {
            let mut key = vec![*protocol, 0, 0, 0];
            key.extend_from_slice(&port.to_be_bytes());
            key.extend_from_slice(&[0, 0]);
            vec![plain(key)]
        }
        Element::IfaceVerdict { iface, verdict } => {
            if iface.is_empty() || iface.len() >= IFNAMSIZ || iface.as_bytes().contains(&0) {
                return Err(bad_op(op, "an interface name is 1 to 15 bytes without NUL"));
            }
            let mut key = iface.as_bytes().to_vec();
            key.resize(IFNAMSIZ, 0);
            let verdict = match verdict {
                Verdict::Accept => (NF_ACCEPT, None),
                Verdict::Drop => (NF_DROP, None),
                Verdict::Return => (NFT_RETURN, None),
                Verdict::Jump(c) => (NFT_JUMP, Some(c.clone())),
                Verdict::Goto(c) => (NFT_GOTO, Some(c.clone())),
            };
            if let (_, Some(c)) = &verdict
                && (c.is_empty() || c.len() > calico_nft::MAX_NAME_LEN || c.contains('\0'))
            {
                return Err(bad_op(
                    op,
                    "the verdict's chain name is not a valid nft name",
                ));
            }
            vec![KernelElement {
                key,
                interval_end: false,
                // Deletes name the key only (nft does the same).
                verdict: op.add.then_some(verdict),
            }]
        }
    })
}

fn bad_op(op: &ElementOp, why: &str) -> DataplaneError {
    DataplaneError::Netlink {
        what: format!(
            "{} element {} of set {}: {why}",
            if op.add { "add" } else { "delete" },
            op.nft_text(),
            op.set
        ),
        set: Some(op.set.clone()),
        element: Some(op.element.clone()),
        source: io::Error::from(io::ErrorKind::InvalidInput),
    }
}

/// One kernel element as nft writes it: the list entry's attribute type counts up from 1
/// within a message (`nft` numbers them; the kernel ignores the type), the interval-end flag
/// before the key.
fn write_element(w: &mut Writer, nest: u16, e: &KernelElement) {
    let elem = w.begin_nested(nest);
    if e.interval_end {
        w.attr_u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
    }
    let key = w.begin_nested(NFTA_SET_ELEM_KEY);
    w.attr(NFTA_DATA_VALUE, &e.key);
    w.end_nested(key);
    if let Some((code, chain)) = &e.verdict {
        let data = w.begin_nested(NFTA_SET_ELEM_DATA);
        let verdict = w.begin_nested(NFTA_DATA_VERDICT);
        w.attr(NFTA_VERDICT_CODE, &code.to_be_bytes());
        if let Some(c) = chain {
            w.attr_str(NFTA_VERDICT_CHAIN, c);
        }
        w.end_nested(verdict);
        w.end_nested(data);
    }
    w.end_nested(elem);
}

pub(super) fn nul_terminated(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// Whether `name` can name an nf_tables table, chain or set: 1 to `NFT_NAME_MAXLEN` - 1 bytes,
/// no NUL (the kernel compares NUL-terminated strings).
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= calico_nft::MAX_NAME_LEN && !name.contains('\0')
}

/// Element messages being appended to a batch: consecutive ops on one set with one verb share
/// a message, split when its element list would outgrow a netlink attribute.
#[derive(Debug, Default)]
pub(super) struct ElementMessages {
    /// The open message: its start, its elements attribute's start, elements written.
    open: Option<(usize, usize, u16)>,
}

impl ElementMessages {
    /// Appends `op` (numbered `index` in the caller's list, for error reports). A new message
    /// takes the next sequence number from `seq` and is recorded in `messages`; `set_id` is the
    /// set's `NFTA_SET_ID` when the same batch creates it (nft sends it then).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn push(
        &mut self,
        w: &mut Writer,
        table: &str,
        op: &ElementOp,
        index: usize,
        set_id: Option<u32>,
        seq: &mut u32,
        messages: &mut Vec<MessageInfo>,
    ) -> Result<(), DataplaneError> {
        let elements = kernel_elements(op)?;
        let same = messages
            .last()
            .is_some_and(|m| m.set == op.set && m.add == op.add);
        let full = self
            .open
            .is_some_and(|(_, list, _)| w.buf.len() - list > MAX_ELEMENTS_ATTR);
        if !same || full || self.open.is_none() {
            self.close(w);
            *seq = seq.wrapping_add(1);
            let (kind, flags) = if op.add {
                (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE)
            } else {
                (NFT_MSG_DELSETELEM, NLM_F_REQUEST)
            };
            let msg = w.begin_nft_message(kind, flags, *seq);
            w.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
            w.attr_str(NFTA_SET_ELEM_LIST_SET, &op.set);
            if let Some(id) = set_id {
                w.attr_u32(NFTA_SET_ELEM_LIST_SET_ID, id);
            }
            let list = w.begin_nested(NFTA_SET_ELEM_LIST_ELEMENTS);
            self.open = Some((msg, list, 0));
            messages.push(MessageInfo {
                seq: *seq,
                set: op.set.clone(),
                add: op.add,
                elements: Vec::new(),
            });
        }
        let Some((msg, _, count)) = self.open.as_mut() else {
            return Ok(());
        };
        for e in &elements {
            let start = w.buf.len() - *msg;
            *count = count.wrapping_add(1);
            write_element(w, (*count).max(NFTA_LIST_ELEM) & NLA_TYPE_MASK, e);
            let end = w.buf.len() - *msg;
            if let Some(m) = messages.last_mut() {
                m.elements.push((start..end, index));
            }
        }
        Ok(())
    }

    /// Closes the open message, if any; returns where it starts.
    pub(super) fn close(&mut self, w: &mut Writer) -> Option<usize> {
        let (msg, list, _) = self.open.take()?;
        w.end_nested(list);
        w.end_message(msg);
        Some(msg)
    }
}

/// Encodes `ops` as one batch starting at sequence number `seq`: one message per run of
/// consecutive ops on one set with one verb (split when its element list would outgrow a
/// netlink attribute), in order. Only the last message asks for an acknowledgement: errors
/// are reported for every failing message anyway, before the last message's reply.
pub(super) fn encode(table: &str, ops: &[ElementOp], seq: u32) -> Result<Batch, DataplaneError> {
    for name in std::iter::once(table).chain(ops.iter().map(|o| o.set.as_str())) {
        if !valid_name(name) {
            return Err(DataplaneError::Netlink {
                what: format!("{name:?} is not a valid nft table or set name"),
                set: None,
                element: None,
                source: io::Error::from(io::ErrorKind::InvalidInput),
            });
        }
    }
    let mut w = Writer::default();
    let mut next_seq = seq;
    w.batch_marker(NFNL_MSG_BATCH_BEGIN, next_seq);
    let mut messages: Vec<MessageInfo> = Vec::new();
    let mut run = ElementMessages::default();
    for (i, op) in ops.iter().enumerate() {
        run.push(&mut w, table, op, i, None, &mut next_seq, &mut messages)?;
    }
    if let Some(last) = run.close(&mut w) {
        w.request_ack(last);
    }
    next_seq = next_seq.wrapping_add(1);
    w.batch_marker(NFNL_MSG_BATCH_END, next_seq);
    Ok(Batch {
        bytes: w.buf,
        begin_seq: seq,
        messages,
    })
}

/// Sends an encoded batch over `socket` (a netfilter socket in the target namespace) and
/// reads the replies to it (replies to other sequence numbers are skipped).
pub(super) fn send(
    socket: &Socket,
    batch: &Batch,
    table: &str,
    ops: &[ElementOp],
) -> Result<(), DataplaneError> {
    send_batch(
        socket,
        &batch.bytes,
        batch.begin_seq,
        batch.messages.last().map(|m| m.seq),
        OP,
        |ack| describe(batch, ack, table, ops),
    )
}

/// Sends the batch `bytes` (sequence numbers `begin_seq` up to `last`, the one message asking
/// for an ack; `None`: nothing between begin and end) over `socket`, and reads the replies to
/// it (replies to other sequence numbers are skipped). The first refusal, as `describe` names
/// it, is the result; `command` names the exchange in I/O errors.
pub(super) fn send_batch(
    socket: &Socket,
    bytes: &[u8],
    begin_seq: u32,
    last: Option<u32>,
    command: &str,
    mut describe: impl FnMut(&Ack) -> DataplaneError,
) -> Result<(), DataplaneError> {
    let io_err = |source: io::Error| DataplaneError::Io {
        command: command.into(),
        source,
    };
    // Capped acks (no echo of our message) with the failing attribute's offset; a larger
    // receive buffer so the errors of a large failing batch are not dropped. Best effort:
    // without them errors still arrive, only less precise.
    let _ = socket.set_ext_ack(true);
    let _ = socket.set_cap_ack(true);
    let _ = socket.set_rx_buf_sz(1 << 20);
    socket.send(bytes, 0).map_err(io_err)?;
    let Some(last) = last else {
        return Ok(());
    };
    let mut first_error: Option<DataplaneError> = None;
    loop {
        let (reply, _) = socket.recv_from_full().map_err(io_err)?;
        for r in parse_acks(&reply)? {
            // Ours: between the batch begin and the last message (sequence numbers wrap).
            if r.seq.wrapping_sub(begin_seq) > last.wrapping_sub(begin_seq) {
                continue;
            }
            if r.errno != 0 && first_error.is_none() {
                first_error = Some(describe(&r));
            }
            if r.seq == last || (r.seq == begin_seq && r.errno != 0) {
                return match first_error {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            }
        }
    }
}

pub(super) const OP: &str = "netlink nf_tables element batch";

/// One `NLMSG_ERROR` reply: the sequence number it answers, the errno (0: ack), and the
/// extended ack's offset and message when present.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Ack {
    pub seq: u32,
    pub errno: i32,
    pub offset: Option<u32>,
    pub message: Option<String>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The `NLMSG_ERROR` messages of one datagram.
pub(super) fn parse_acks(buf: &[u8]) -> Result<Vec<Ack>, DataplaneError> {
    let bad = |detail: String| DataplaneError::Listing {
        command: OP.into(),
        detail,
    };
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let truncated = || bad(format!("truncated message at byte {off}"));
        let len = u32_at(buf, off).ok_or_else(truncated)? as usize;
        let kind = u16_at(buf, off + 4).ok_or_else(truncated)?;
        let flags = u16_at(buf, off + 6).ok_or_else(truncated)?;
        if len < 16 || off + len > buf.len() {
            return Err(bad(format!(
                "message length {len} at byte {off} of {}",
                buf.len()
            )));
        }
        let msg = &buf[off..off + len];
        if kind == NLMSG_ERROR {
            let errno = u32_at(msg, 16).ok_or_else(truncated)? as i32;
            // The original header follows the errno; its sequence number says what failed.
            let orig_len = u32_at(msg, 20).ok_or_else(truncated)? as usize;
            let seq = u32_at(msg, 28).ok_or_else(truncated)?;
            let mut ack = Ack {
                seq,
                errno: -errno,
                offset: None,
                message: None,
            };
            if flags & NLM_F_ACK_TLVS != 0 {
                let echoed = if flags & NLM_F_CAPPED != 0 {
                    16
                } else {
                    orig_len
                };
                let mut at = 20 + ((echoed + 3) & !3);
                while at + 4 <= msg.len() {
                    let (Some(alen), Some(akind)) = (u16_at(msg, at), u16_at(msg, at + 2)) else {
                        break;
                    };
                    let alen = usize::from(alen);
                    if alen < 4 || at + alen > msg.len() {
                        break;
                    }
                    let payload = &msg[at + 4..at + alen];
                    match akind & NLA_TYPE_MASK {
                        NLMSGERR_ATTR_OFFS => ack.offset = u32_at(payload, 0),
                        NLMSGERR_ATTR_MSG => {
                            let text = payload.split(|b| *b == 0).next().unwrap_or_default();
                            ack.message = Some(String::from_utf8_lossy(text).into_owned());
                        }
                        _ => {}
                    }
                    at += (alen + 3) & !3;
                }
            }
            out.push(ack);
        }
        off += (len + 3) & !3;
    }
    Ok(out)
}

/// The kernel's extended-ack message, as a suffix for an error text.
pub(super) fn kernel_says(ack: &Ack) -> String {
    ack.message
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

/// The error for a refused message, naming the set and (when the kernel pointed at it, or
/// the message held only one) the element.
fn describe(batch: &Batch, ack: &Ack, table: &str, ops: &[ElementOp]) -> DataplaneError {
    match batch.messages.iter().find(|m| m.seq == ack.seq) {
        Some(msg) => describe_elements(msg, ack, table, |i| ops.get(i)),
        None => DataplaneError::Netlink {
            what: format!(
                "commit of the element batch for table inet {table}{}",
                kernel_says(ack)
            ),
            set: None,
            element: None,
            source: io::Error::from_raw_os_error(ack.errno),
        },
    }
}

/// The error for the refused element message `msg`; `op_of` finds an op by the index its
/// elements were pushed with.
pub(super) fn describe_elements<'a>(
    msg: &MessageInfo,
    ack: &Ack,
    table: &str,
    op_of: impl Fn(usize) -> Option<&'a ElementOp>,
) -> DataplaneError {
    let source = io::Error::from_raw_os_error(ack.errno);
    let kernel = kernel_says(ack);
    let pointed = ack.offset.and_then(|o| {
        msg.elements
            .iter()
            .find(|(r, _)| r.contains(&(o as usize)))
            .map(|(_, i)| *i)
    });
    let only = {
        let mut ids = msg.elements.iter().map(|(_, i)| *i);
        match (
            ids.next(),
            ids.all(|i| Some(i) == msg.elements.first().map(|e| e.1)),
        ) {
            (Some(i), true) => Some(i),
            _ => None,
        }
    };
    let (verb, prep) = if msg.add {
        ("add", "to")
    } else {
        ("delete", "from")
    };
    match pointed.or(only).and_then(op_of) {
        Some(op) => DataplaneError::Netlink {
            what: format!(
                "{verb} element {{ {} }} {prep} set {} of table inet {table}{kernel}",
                op.nft_text(),
                msg.set
            ),
            set: Some(msg.set.clone()),
            element: Some(op.element.clone()),
            source,
        },
        None => DataplaneError::Netlink {
            what: format!(
                "{verb} {} elements {prep} set {} of table inet {table}{kernel}",
                msg.elements.len(),
                msg.set
            ),
            set: Some(msg.set.clone()),
            element: None,
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(set: &str, add: bool, value: Element) -> ElementOp {
        ElementOp {
            set: set.into(),
            add,
            element: format!("{value:?}"),
            value,
        }
    }

    fn v4(s: &str) -> Element {
        Element::Addr(s.parse().unwrap())
    }

    /// (type, flags, seq, payload) of every message of a batch.
    fn messages(b: &[u8]) -> Vec<(u16, u16, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < b.len() {
            let len = u32_at(b, off).unwrap() as usize;
            out.push((
                u16_at(b, off + 4).unwrap(),
                u16_at(b, off + 6).unwrap(),
                u32_at(b, off + 8).unwrap(),
                b[off + 16..off + len].to_vec(),
            ));
            off += len;
        }
        out
    }

    /// The kernel keys (with the interval-end flag) inside one NEWSETELEM/DELSETELEM payload.
    fn keys(payload: &[u8]) -> Vec<(Vec<u8>, bool)> {
        fn attrs(b: &[u8]) -> Vec<(u16, &[u8])> {
            let mut v = Vec::new();
            let mut at = 0;
            while at + 4 <= b.len() {
                let len = usize::from(u16_at(b, at).unwrap());
                v.push((
                    u16_at(b, at + 2).unwrap() & NLA_TYPE_MASK,
                    &b[at + 4..at + len],
                ));
                at += (len + 3) & !3;
            }
            v
        }
        let list = attrs(&payload[4..])
            .into_iter()
            .find(|(k, _)| *k == NFTA_SET_ELEM_LIST_ELEMENTS)
            .unwrap()
            .1;
        attrs(list)
            .into_iter()
            .map(|(_, elem)| {
                let a = attrs(elem);
                let key = a.iter().find(|(k, _)| *k == NFTA_SET_ELEM_KEY).unwrap().1;
                let end = a.iter().any(|(k, v)| {
                    *k == NFTA_SET_ELEM_FLAGS && *v == NFT_SET_ELEM_INTERVAL_END.to_be_bytes()
                });
                (attrs(key)[0].1.to_vec(), end)
            })
            .collect()
    }

    #[test]
    fn batch_layout_one_message_per_set_and_verb_only_the_last_acked() {
        let ops = [
            op("a4-x", false, v4("10.0.0.1")),
            op("a4-x", true, v4("10.0.0.2")),
            op("a4-x", true, v4("10.0.0.3")),
            op("a4-y", true, v4("10.0.0.4")),
        ];
        let b = encode("calico", &ops, 7).unwrap();
        let m = messages(&b.bytes);
        let kinds: Vec<u16> = m.iter().map(|x| x.0).collect();
        assert_eq!(
            kinds,
            [16, 0x0a0e, 0x0a0c, 0x0a0c, 17],
            "begin, del, new, new, end"
        );
        let seqs: Vec<u32> = m.iter().map(|x| x.2).collect();
        assert_eq!(seqs, [7, 8, 9, 10, 11]);
        assert_eq!(
            m[0].3,
            [0, 0, 0, 10],
            "batch begin: res_id NFNL_SUBSYS_NFTABLES"
        );
        assert_eq!(m[1].1, NLM_F_REQUEST);
        assert_eq!(m[2].1, NLM_F_REQUEST | NLM_F_CREATE);
        assert_eq!(m[3].1, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK);
        assert_eq!(m[1].3[..4], [NFPROTO_INET, 0, 0, 0]);
        assert_eq!(
            keys(&m[2].3),
            [(vec![10, 0, 0, 2], false), (vec![10, 0, 0, 3], false)]
        );
        let info: Vec<(u32, &str, bool, usize)> = b
            .messages
            .iter()
            .map(|i| (i.seq, i.set.as_str(), i.add, i.elements.len()))
            .collect();
        assert_eq!(
            info,
            [
                (8, "a4-x", false, 1),
                (9, "a4-x", true, 2),
                (10, "a4-y", true, 1)
            ]
        );
    }

    #[test]
    fn keys_are_encoded_like_nft() {
        let net = |s: &str| Element::Net(s.parse().unwrap());
        let ops = [
            op("n4", true, net("10.0.0.0/24")),
            op("n4", true, net("255.255.255.0/24")),
            op("n6", true, net("fd00::/64")),
            op(
                "p4",
                true,
                Element::AddrProtoPort {
                    addr: "10.0.0.1".parse().unwrap(),
                    protocol: 6,
                    port: 80,
                },
            ),
            op(
                "pp",
                true,
                Element::ProtoPort {
                    protocol: 17,
                    port: 0x1234,
                },
            ),
        ];
        let b = encode("calico", &ops, 1).unwrap();
        let m = messages(&b.bytes);
        // As `nft --debug=netlink` shows them: start, then end one past the range (none
        // for a range ending at 255.255.255.255).
        assert_eq!(
            keys(&m[1].3),
            [
                (vec![10, 0, 0, 0], false),
                (vec![10, 0, 1, 0], true),
                (vec![255, 255, 255, 0], false)
            ]
        );
        let mut end6 = vec![0xfd, 0, 0, 0, 0, 0, 0, 1];
        end6.extend([0; 8]);
        let mut start6 = vec![0xfd, 0];
        start6.extend([0; 14]);
        assert_eq!(keys(&m[2].3), [(start6, false), (end6, true)]);
        assert_eq!(
            keys(&m[3].3),
            [(vec![10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0], false)]
        );
        assert_eq!(
            keys(&m[4].3),
            [(vec![17, 0, 0, 0, 0x12, 0x34, 0, 0], false)]
        );
        // Both kernel elements of one interval belong to the same op.
        assert_eq!(
            b.messages[0]
                .elements
                .iter()
                .map(|e| e.1)
                .collect::<Vec<_>>(),
            [0, 0, 1]
        );
    }

    #[test]
    fn map_entries_carry_the_verdict_on_add_only() {
        let entry = |add| {
            op(
                "to-wl",
                add,
                Element::IfaceVerdict {
                    iface: "cali1".into(),
                    verdict: Verdict::Goto("tw-cali1".into()),
                },
            )
        };
        let b = encode("calico", &[entry(false), entry(true)], 1).unwrap();
        let m = messages(&b.bytes);
        let mut key = b"cali1".to_vec();
        key.resize(16, 0);
        assert_eq!(keys(&m[1].3), [(key.clone(), false)]);
        assert_eq!(keys(&m[2].3), [(key, false)]);
        let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(!has(&m[1].3, b"tw-cali1\0"));
        assert!(has(&m[2].3, b"tw-cali1\0"));
        assert!(has(&m[2].3, &NFT_GOTO.to_be_bytes()));
    }

    #[test]
    fn bad_names_and_interfaces_are_refused_before_sending() {
        let err = encode("", &[op("a4-x", true, v4("10.0.0.1"))], 1).unwrap_err();
        assert!(
            err.to_string()
                .contains("not a valid nft table or set name"),
            "{err}"
        );
        let long = op(
            "to-wl",
            true,
            Element::IfaceVerdict {
                iface: "x".repeat(16),
                verdict: Verdict::Accept,
            },
        );
        let err = encode("calico", &[long], 1).unwrap_err();
        assert!(err.to_string().contains("interface name"), "{err}");
    }

    #[test]
    fn large_changes_are_split_into_several_messages() {
        let ops: Vec<ElementOp> = (0..5000u32)
            .map(|i| op("a4-x", true, Element::Addr(IpAddr::V4(i.into()))))
            .collect();
        let b = encode("calico", &ops, 1).unwrap();
        // 16 bytes of attributes per IPv4 element: two messages, one send.
        assert_eq!(b.messages.len(), 2);
        assert!(b.bytes.len() < MAX_BATCH);
        let twice: Vec<ElementOp> = ops.iter().chain(&ops).cloned().collect();
        assert!(encode("calico", &twice, 1).unwrap().bytes.len() > MAX_BATCH);
        let total: usize = b.messages.iter().map(|m| m.elements.len()).sum();
        assert_eq!(total, 5000);
        for (_, _, _, payload) in &messages(&b.bytes)[1..=b.messages.len()] {
            assert!(payload.len() < 65535);
        }
    }

    fn error_reply(seq: u32, errno: i32, offset: Option<u32>, text: Option<&str>) -> Vec<u8> {
        let mut p = (-errno).to_ne_bytes().to_vec();
        // The capped original header.
        p.extend_from_slice(&100u32.to_ne_bytes());
        p.extend_from_slice(&0x0a0cu16.to_ne_bytes());
        p.extend_from_slice(&0u16.to_ne_bytes());
        p.extend_from_slice(&seq.to_ne_bytes());
        p.extend_from_slice(&0u32.to_ne_bytes());
        if let Some(t) = text {
            let mut s = t.as_bytes().to_vec();
            s.push(0);
            p.extend_from_slice(&u16::try_from(4 + s.len()).unwrap().to_ne_bytes());
            p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
            p.extend_from_slice(&s);
            while !p.len().is_multiple_of(4) {
                p.push(0);
            }
        }
        if let Some(o) = offset {
            p.extend_from_slice(&8u16.to_ne_bytes());
            p.extend_from_slice(&NLMSGERR_ATTR_OFFS.to_ne_bytes());
            p.extend_from_slice(&o.to_ne_bytes());
        }
        let mut m = Vec::new();
        m.extend_from_slice(&u32::try_from(16 + p.len()).unwrap().to_ne_bytes());
        m.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        m.extend_from_slice(&(NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&p);
        m
    }

    #[test]
    fn acks_and_extended_errors_are_parsed() {
        let mut two = error_reply(3, 22, Some(44), Some("bad key"));
        two.extend(error_reply(4, 0, None, None));
        let acks = parse_acks(&two).unwrap();
        assert_eq!(
            acks,
            [
                Ack {
                    seq: 3,
                    errno: 22,
                    offset: Some(44),
                    message: Some("bad key".into())
                },
                Ack {
                    seq: 4,
                    errno: 0,
                    offset: None,
                    message: None
                }
            ]
        );
        let mut cut = error_reply(3, 22, None, None);
        cut.truncate(20);
        cut[0..4].copy_from_slice(&40u32.to_ne_bytes());
        assert!(parse_acks(&cut).is_err());
    }

    #[test]
    fn errors_name_the_element_the_kernel_pointed_at() {
        let ops = [
            op("a4-x", true, v4("10.0.0.1")),
            op("a4-x", true, v4("10.0.0.2")),
        ];
        let b = encode("calico", &ops, 1).unwrap();
        let second = b.messages[0].elements[1].0.start as u32;
        let ack = |offset| Ack {
            seq: 2,
            errno: 22,
            offset,
            message: None,
        };
        let err = describe(&b, &ack(Some(second + 4)), "calico", &ops);
        assert!(
            matches!(&err, DataplaneError::Netlink { set: Some(s), element: Some(e), .. }
                if s == "a4-x" && *e == ops[1].element),
            "{err:?}"
        );
        // No offset, two elements: the set is named, not an element.
        let err = describe(&b, &ack(None), "calico", &ops);
        assert!(
            matches!(&err, DataplaneError::Netlink { element: None, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("add 2 elements to set a4-x"),
            "{err}"
        );
        // The batch begin: the commit as a whole.
        let err = describe(
            &b,
            &Ack {
                seq: 1,
                errno: 12,
                offset: None,
                message: None,
            },
            "calico",
            &ops,
        );
        assert!(err.to_string().contains("commit"), "{err}");
    }
}
