//! Table changes (chains, rules with their anonymous sets, named sets, elements) sent to
//! nf_tables over netlink as one batch, without `nft`.
//!
//! `nft -f` loads its cache of the whole table before sending anything (~150 ms at 10k
//! policies), although a change needs none of it: the kernel resolves chains and sets by name.
//! [`encode_plan`] writes a [`TableOp`] list (`calico_nft::diff_plan`, rules already compiled
//! to nf_tables expressions) as the messages nft 1.0.6 sends for the same script, in one
//! nfnetlink batch (`NFNL_MSG_BATCH_BEGIN` … `BATCH_END`), which the kernel commits
//! atomically (`net/netfilter/nfnetlink.c`, `nfnetlink_rcv_batch`): any refused message aborts
//! all of it and is reported with its sequence number, which [`describe`] maps back to the op.
//!
//! What nft 1.0.6 sends was captured with `strace -e trace=sendmsg -e write=all nft -f …` in a
//! throw-away network namespace (bytes in the unit tests):
//! - `NFT_MSG_NEWSET`: table, name, flags, key type (nft's datatype id, concatenations 6 bits
//!   per field), key length, a batch-local `NFTA_SET_ID` (counting from 1 over every set of the
//!   batch), then libnftnl user data telling `nft list` how to print keys: the key byte order
//!   (`NFTNL_UDATA_SET_KEYBYTEORDER`; without it `nft list` prints host-order keys such as
//!   marks and interface names byte-swapped) and, for a declared concatenation, an empty
//!   "typeof concat" record. Anonymous sets (`__set%d`, flags `ANONYMOUS|CONSTANT`, plus
//!   `INTERVAL`) add `NFTA_SET_DESC { SIZE }` (the number of elements sent), an
//!   auto-merge record for intervals, and a "typeof" record naming the expressions whose
//!   values the set holds (`ip saddr`, `meta l4proto . th dport`); their elements follow in a
//!   `NFT_MSG_NEWSETELEM` naming the set by name and id, each list entry's attribute type
//!   counting from 1, an interval end's flags before its key. Non-interval concatenations get
//!   no `NFTA_SET_DESC_CONCAT` (nft sends one only with `NFT_SET_CONCAT` for interval ones,
//!   whose elements carry a key end: not in [`calico_nft::bytecode::AnonElement`], so refused
//!   here and left to nft).
//! - `NFT_MSG_NEWRULE` (`NLM_F_CREATE | NLM_F_APPEND`): table, chain, expression list; values
//!   as long as the data (a 1-byte protocol is a 1-byte `NFTA_DATA_VALUE`). A lookup of an
//!   anonymous set names `__set%d` and its id. nft also sends an id for a named set it found in
//!   its cache (its own cache counter, meaningless to the kernel, which looks the name up
//!   first); we send one only for a set created in the same batch.
//! - `NFT_MSG_NEWCHAIN` (table, name), `NFT_MSG_DELRULE` (table, chain: flush),
//!   `NFT_MSG_DELCHAIN`, `NFT_MSG_DELSET`.
//!
//! One deliberate difference: nft omits `NFTA_BITWISE_OP` for the bitwise of a flag match
//! (`ct state established,related`) and sends it for `meta mark & 0x10`; we always send
//! `NFT_BITWISE_BOOL`, the kernel's default when absent, so the kernel holds the same rule.

use std::collections::HashMap;
use std::io;
use std::ops::Range;

use calico_nft::bytecode::{
    AnonSet, CmpOp, Expr, MetaKey, NamedSetKind, PayloadBase, RuleCode, SetRef, TableOp,
    VerdictCode,
};
use netlink_sys::Socket;

use super::DataplaneError;
use super::netlink_elements::{
    Ack, ElementMessages, MAX_ENCODED_BATCH, MessageInfo, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END,
    NFT_MSG_NEWSETELEM, NFT_SET_ELEM_INTERVAL_END, NFTA_DATA_VALUE, NFTA_DATA_VERDICT,
    NFTA_LIST_ELEM, NFTA_SET_ELEM_FLAGS, NFTA_SET_ELEM_KEY, NFTA_SET_ELEM_LIST_ELEMENTS,
    NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_SET_ID, NFTA_SET_ELEM_LIST_TABLE,
    NFTA_VERDICT_CHAIN, NFTA_VERDICT_CODE, NLM_F_CREATE, NLM_F_REQUEST, Writer, describe_elements,
    kernel_says, send_batch, valid_name,
};

// Message types and attributes: include/uapi/linux/netfilter/nf_tables.h.
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_DELSET: u16 = 11;
const NLM_F_APPEND: u16 = 0x800;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;

const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_DESC: u16 = 9;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_USERDATA: u16 = 13;
const NFTA_SET_DESC_SIZE: u16 = 1;
const NFT_SET_ANONYMOUS: u32 = 0x1;
const NFT_SET_CONSTANT: u32 = 0x2;
const NFT_SET_INTERVAL: u32 = 0x4;

const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_META_SREG: u16 = 3;
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFT_CT_STATE: u32 = 0;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFTA_RANGE_SREG: u16 = 1;
const NFTA_RANGE_OP: u16 = 2;
const NFTA_RANGE_FROM_DATA: u16 = 3;
const NFTA_RANGE_TO_DATA: u16 = 4;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_BITWISE_OP: u16 = 6;
const NFT_BITWISE_BOOL: u32 = 0;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_LOOKUP_DREG: u16 = 3;
const NFTA_LOOKUP_SET_ID: u16 = 4;
const NFTA_LOOKUP_FLAGS: u16 = 5;
const NFT_LOOKUP_F_INV: u32 = 1;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_LOG_PREFIX: u16 = 2;
const NFTA_LOG_LEVEL: u16 = 5;
/// `NF_LOG_PREFIXLEN` (include/uapi/linux/netfilter/nf_log.h), with the NUL.
const LOG_PREFIX_MAX: usize = 127;
/// `NFT_LOGLEVEL_AUDIT`, the largest level the kernel accepts.
const LOG_LEVEL_MAX: u32 = 8;
const NFTA_FIB_DREG: u16 = 1;
const NFTA_FIB_RESULT: u16 = 2;
const NFTA_FIB_FLAGS: u16 = 3;
/// `NFTA_FIB_F_SADDR | NFTA_FIB_F_MARK | NFTA_FIB_F_IIF` (1 | 4 | 8), as nft sends for
/// `fib saddr . mark . iif oif`.
const FIB_SADDR_MARK_IIF: u32 = 0x1 | 0x4 | 0x8;
const NFT_FIB_RESULT_OIF: u32 = 1;
/// `struct nft_data` holds 16 bytes: the largest `cmp`/`range`/`bitwise` operand.
const NFT_DATA_MAX: usize = 16;
/// `NFT_DATA_VALUE_MAXLEN`: the largest set key.
const NFT_DATA_VALUE_MAXLEN: usize = 64;
/// `struct nft_regs`: 4 verdict words then 16 data words.
const REGS_BYTES: usize = 80;

// libnftnl user data (`include/libnftnl/udata.h`, nft's `src/rule.c`, `src/expression.c`,
// `src/payload.c`, `src/meta.c`), numbers as captured from nft 1.0.6.
const UDATA_SET_KEYBYTEORDER: u8 = 0;
const UDATA_SET_MERGE_ELEMENTS: u8 = 2;
const UDATA_SET_KEY_TYPEOF: u8 = 3;
const UDATA_TYPEOF_EXPR: u8 = 0;
const UDATA_TYPEOF_DATA: u8 = 1;
/// nft's `enum byteorder`.
const BYTEORDER_INVALID: u32 = 0;
const BYTEORDER_HOST: u32 = 1;
const BYTEORDER_BIG: u32 = 2;
/// nft's `enum expr_types`.
const EXPR_PAYLOAD: u32 = 7;
const EXPR_META: u32 = 9;
const EXPR_CONCAT: u32 = 13;
/// nft's `enum proto_desc_id` and the header template indexes of the fields we load.
const PROTO_ICMP: u32 = 4;
const PROTO_TH: u32 = 11;
const PROTO_IP: u32 = 12;
const PROTO_IP6: u32 = 13;
const PROTO_ICMP6: u32 = 14;

/// nft's datatype ids (`enum datatypes`) of the named sets' key fields.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
/// `TYPE_BITS`: a concatenation's type is its fields' ids, 6 bits apart.
const TYPE_BITS: u32 = 6;

pub(super) const OP: &str = "netlink nf_tables table batch";

/// One encoded plan and what each message carries, to name a refused op.
#[derive(Debug)]
pub(super) struct PlanBatch {
    pub bytes: Vec<u8>,
    pub begin_seq: u32,
    /// The last message's sequence number (the one acknowledged); `None` for an empty plan.
    pub last_seq: Option<u32>,
    elements: Vec<MessageInfo>,
    messages: Vec<OpMessage>,
}

/// A message that is not an element change of a named set.
#[derive(Debug)]
struct OpMessage {
    seq: u32,
    /// Index of the op in the plan.
    op: usize,
    /// What the message does, for errors ("add rule 2 of chain X").
    what: String,
    set: Option<String>,
    /// A rule's expressions: byte range of each within the message (offsets as the kernel's
    /// extended ack counts them, from the message header).
    exprs: Vec<Range<usize>>,
}

impl PlanBatch {
    /// Rewrites the sequence numbers to run from `begin` (the socket's next free one).
    pub(super) fn renumber(&mut self, begin: u32) {
        let shift = begin.wrapping_sub(self.begin_seq);
        let mut off = 0;
        while off + 16 <= self.bytes.len() {
            let len = u32::from_ne_bytes([
                self.bytes[off],
                self.bytes[off + 1],
                self.bytes[off + 2],
                self.bytes[off + 3],
            ]) as usize;
            let seq = u32::from_ne_bytes([
                self.bytes[off + 8],
                self.bytes[off + 9],
                self.bytes[off + 10],
                self.bytes[off + 11],
            ]);
            self.bytes[off + 8..off + 12].copy_from_slice(&seq.wrapping_add(shift).to_ne_bytes());
            if len < 16 {
                break;
            }
            off += len;
        }
        self.begin_seq = begin;
        self.last_seq = self.last_seq.map(|s| s.wrapping_add(shift));
        for m in &mut self.elements {
            m.seq = m.seq.wrapping_add(shift);
        }
        for m in &mut self.messages {
            m.seq = m.seq.wrapping_add(shift);
        }
    }

    /// Bytes of the batch.
    pub(super) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Sequence numbers the batch uses (begin, messages, end).
    pub(super) fn seqs_used(&self) -> u32 {
        let inner = self.last_seq.map_or(0, |l| l.wrapping_sub(self.begin_seq));
        inner.wrapping_add(2)
    }
}

fn invalid(what: String, set: Option<String>) -> DataplaneError {
    DataplaneError::Netlink {
        what,
        set,
        element: None,
        source: io::Error::from(io::ErrorKind::InvalidInput),
    }
}

/// The 32-bit register slot of a kernel register number (`nft_parse_register`): the 16-byte
/// `NFT_REG_1..4` start at slots 4, 8, 12, 16; `NFT_REG32_00..15` are slots 4..19.
fn slot(reg: u32) -> Option<usize> {
    match reg {
        0..=4 => Some(reg as usize * 4),
        8..=23 => Some(reg as usize - 4),
        _ => None,
    }
}

/// The 32-bit register number (`NFT_REG32_*`) a data register starts at.
fn reg32(reg: u32) -> Option<u32> {
    match reg {
        1..=4 => Some(8 + (reg - 1) * 4),
        8..=23 => Some(reg),
        _ => None,
    }
}

/// Checks that `len` bytes fit data register `reg` (`nft_validate_register_load/store`).
fn data_reg(reg: u32, len: usize) -> Result<(), String> {
    match slot(reg) {
        Some(s) if s >= 4 && len > 0 && s * 4 + len <= REGS_BYTES => Ok(()),
        Some(s) if s >= 4 => Err(format!("{len} bytes do not fit register {reg}")),
        _ => Err(format!("{reg} is not a data register (1-4, 8-23)")),
    }
}

fn meta_len(key: MetaKey) -> usize {
    match key {
        MetaKey::Mark => 4,
        MetaKey::Iifname | MetaKey::Oifname => 16,
        MetaKey::L4proto | MetaKey::Nfproto => 1,
    }
}

fn datatype_name(k: NamedSetKind) -> Result<(u32, u32), String> {
    let addr = |fam: u8| match fam {
        4 => Ok((TYPE_IPADDR, 4)),
        6 => Ok((TYPE_IP6ADDR, 16)),
        f => Err(format!("address family {f} is neither 4 nor 6")),
    };
    let proto_port = (TYPE_INET_PROTOCOL << TYPE_BITS) | TYPE_INET_SERVICE;
    Ok(match k {
        NamedSetKind::Addr(f) | NamedSetKind::Net(f) => addr(f)?,
        NamedSetKind::AddrProtoPort(f) => {
            let (t, len) = addr(f)?;
            ((t << (2 * TYPE_BITS)) | proto_port, len + 8)
        }
        NamedSetKind::ProtoPort => (proto_port, 8),
    })
}

/// libnftnl's user-data TLVs: a type byte, a length byte, the value (numbers in host order).
#[derive(Default)]
struct Udata(Vec<u8>);

impl Udata {
    fn u32(&mut self, kind: u8, v: u32) {
        self.0.extend_from_slice(&[kind, 4]);
        self.0.extend_from_slice(&v.to_ne_bytes());
    }

    /// A nested record; `None` when it outgrows its length byte.
    fn nest(&mut self, kind: u8, inner: &Udata) -> Option<()> {
        let len = u8::try_from(inner.0.len()).ok()?;
        self.0.extend_from_slice(&[kind, len]);
        self.0.extend_from_slice(&inner.0);
        Some(())
    }
}

/// What nft records about the expression whose values a set key field holds: its expression
/// type and that expression's own user data.
struct KeyExpr {
    etype: u32,
    data: Udata,
    byteorder: u32,
}

/// The expression that last wrote 32-bit register `r32` before `exprs[..at]`.
fn writer_of(exprs: &[Expr], at: usize, r32: u32) -> Option<&Expr> {
    exprs[..at].iter().rev().find(|e| {
        let dreg = match e {
            Expr::MetaLoad { dreg, .. }
            | Expr::CtState { dreg }
            | Expr::Payload { dreg, .. }
            | Expr::Bitwise { dreg, .. }
            | Expr::FibSaddrMarkIifOif { dreg } => Some(*dreg),
            Expr::Lookup { dreg, .. } => *dreg,
            _ => None,
        };
        dreg.and_then(reg32) == Some(r32)
    })
}

/// The transport protocol a rule matched before `at` (`meta l4proto` compared equal).
fn l4proto_before(exprs: &[Expr], at: usize) -> Option<u8> {
    exprs[..at].windows(2).rev().find_map(|w| match w {
        [
            Expr::MetaLoad {
                key: MetaKey::L4proto,
                dreg,
            },
            Expr::Cmp {
                op: CmpOp::Eq,
                sreg,
                data,
            },
        ] if dreg == sreg && data.len() == 1 => Some(data[0]),
        _ => None,
    })
}

/// nft's record of one key field loaded by `e` (the lookup at `at`), when it is one nft
/// generates for the rules we write.
fn key_expr(exprs: &[Expr], at: usize, e: &Expr) -> Option<KeyExpr> {
    let payload = |desc: u32, tmpl: u32| {
        let mut data = Udata::default();
        data.u32(0, desc); // NFTNL_UDATA_SET_KEY_PAYLOAD_DESC
        data.u32(1, tmpl); // NFTNL_UDATA_SET_KEY_PAYLOAD_TYPE
        KeyExpr {
            etype: EXPR_PAYLOAD,
            data,
            byteorder: BYTEORDER_BIG,
        }
    };
    match e {
        Expr::MetaLoad { key, .. } => {
            let mut data = Udata::default();
            data.u32(0, key.code()); // NFTNL_UDATA_SET_KEY_META_KEY
            Some(KeyExpr {
                etype: EXPR_META,
                data,
                byteorder: BYTEORDER_HOST,
            })
        }
        Expr::Payload {
            base, offset, len, ..
        } => match (base, offset, len) {
            // struct iphdr saddr/daddr (template 11/12), ipv6hdr (8/9).
            (PayloadBase::Network, 12, 4) => Some(payload(PROTO_IP, 11)),
            (PayloadBase::Network, 16, 4) => Some(payload(PROTO_IP, 12)),
            (PayloadBase::Network, 8, 16) => Some(payload(PROTO_IP6, 8)),
            (PayloadBase::Network, 24, 16) => Some(payload(PROTO_IP6, 9)),
            // `th sport`/`th dport`: what the rules we compile say (nft records `tcp dport`
            // for a `tcp dport` rule, the same bytecode).
            (PayloadBase::Transport, 0, 2) => Some(payload(PROTO_TH, 1)),
            (PayloadBase::Transport, 2, 2) => Some(payload(PROTO_TH, 2)),
            // icmp / icmpv6 type and code.
            (PayloadBase::Transport, 0 | 1, 1) => {
                let proto = match l4proto_before(exprs, at)? {
                    1 => PROTO_ICMP,
                    58 => PROTO_ICMP6,
                    _ => return None,
                };
                Some(payload(proto, offset + 1))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The user data nft stores with an anonymous set looked up at `exprs[at]` from register
/// `sreg`: key byte order, auto-merge for intervals, and the typeof record when every key
/// field comes from an expression nft records (else left out: it only names the source).
fn anon_udata(exprs: &[Expr], at: usize, sreg: u32, set: &AnonSet) -> Vec<u8> {
    let mut fields: Vec<Option<KeyExpr>> = Vec::new();
    if let Some(start) = reg32(sreg) {
        let lens: Vec<u32> = if set.concat.is_empty() {
            vec![set.key_len]
        } else {
            set.concat.clone()
        };
        let mut r = start;
        for len in lens {
            fields.push(writer_of(exprs, at, r).and_then(|e| key_expr(exprs, at, e)));
            r += len.div_ceil(4);
        }
    }
    let mut u = Udata::default();
    let byteorder = if !set.concat.is_empty() {
        BYTEORDER_INVALID
    } else {
        match fields.first() {
            Some(Some(k)) => k.byteorder,
            _ => match set.key_type {
                TYPE_IPADDR | TYPE_IP6ADDR | TYPE_INET_SERVICE => BYTEORDER_BIG,
                _ => BYTEORDER_HOST,
            },
        }
    };
    u.u32(UDATA_SET_KEYBYTEORDER, byteorder);
    if set.interval {
        u.u32(UDATA_SET_MERGE_ELEMENTS, 1);
    }
    let typeof_record = || -> Option<Udata> {
        let mut t = Udata::default();
        if set.concat.is_empty() {
            let k = fields.first()?.as_ref()?;
            t.u32(UDATA_TYPEOF_EXPR, k.etype);
            t.nest(UDATA_TYPEOF_DATA, &k.data)?;
        } else {
            let mut list = Udata::default();
            for (i, f) in fields.iter().enumerate() {
                let f = f.as_ref()?;
                let mut item = Udata::default();
                item.u32(0, f.etype); // NFTNL_UDATA_SET_KEY_CONCAT_SUB_TYPE
                item.nest(1, &f.data)?; // NFTNL_UDATA_SET_KEY_CONCAT_SUB_DATA
                list.nest(u8::try_from(i).ok()?, &item)?;
            }
            t.u32(UDATA_TYPEOF_EXPR, EXPR_CONCAT);
            t.nest(UDATA_TYPEOF_DATA, &list)?;
        }
        Some(t)
    };
    if let Some(t) = typeof_record() {
        let mut with = Udata(u.0.clone());
        if with.nest(UDATA_SET_KEY_TYPEOF, &t).is_some() {
            u = with;
        }
    }
    u.0
}

/// The user data nft stores with a declared named set.
fn named_udata(kind: NamedSetKind) -> Vec<u8> {
    let mut u = Udata::default();
    match kind {
        NamedSetKind::Addr(_) | NamedSetKind::Net(_) => {
            u.u32(UDATA_SET_KEYBYTEORDER, BYTEORDER_BIG)
        }
        NamedSetKind::AddrProtoPort(_) | NamedSetKind::ProtoPort => {
            // A concatenation declared by type: byte order "invalid" and a typeof record of
            // an empty concatenation (what nft 1.0.6 writes; `nft list` prints the type).
            u.u32(UDATA_SET_KEYBYTEORDER, BYTEORDER_INVALID);
            let mut t = Udata::default();
            t.u32(UDATA_TYPEOF_EXPR, EXPR_CONCAT);
            let _ = t.nest(UDATA_TYPEOF_DATA, &Udata::default());
            let _ = u.nest(UDATA_SET_KEY_TYPEOF, &t);
        }
    }
    u.0
}

/// Encodes a plan: state shared by the messages of one batch.
struct Encoder<'a> {
    table: &'a str,
    w: Writer,
    seq: u32,
    next_set_id: u32,
    /// Named sets created in this batch, with their id and key length.
    named: HashMap<&'a str, (u32, u32)>,
    run: ElementMessages,
    elements: Vec<MessageInfo>,
    messages: Vec<OpMessage>,
    /// Where the last message written starts (the one to acknowledge).
    last: Option<usize>,
    /// Rules added per chain so far, to name a rule in errors.
    rules_per_chain: HashMap<&'a str, usize>,
}

impl<'a> Encoder<'a> {
    fn name(&self, name: &str, what: &str) -> Result<(), DataplaneError> {
        if valid_name(name) {
            Ok(())
        } else {
            Err(invalid(
                format!("{name:?} is not a valid nft {what} name (1 to 255 bytes, no NUL)"),
                None,
            ))
        }
    }

    /// Starts a non-element message: closes an open element message first.
    fn begin(&mut self, kind: u16, flags: u16) -> usize {
        if let Some(at) = self.run.close(&mut self.w) {
            self.last = Some(at);
        }
        self.seq = self.seq.wrapping_add(1);
        let at = self.w.begin_nft_message(kind, flags, self.seq);
        self.last = Some(at);
        at
    }

    fn end(&mut self, at: usize, op: usize, what: String, set: Option<String>) {
        self.w.end_message(at);
        self.messages.push(OpMessage {
            seq: self.seq,
            op,
            what,
            set,
            exprs: Vec::new(),
        });
    }

    /// A message holding only the table and one name: `attrs` are their attribute types.
    fn simple(&mut self, kind: u16, flags: u16, attrs: (u16, u16), name: &str) -> usize {
        let at = self.begin(kind, flags);
        self.w.attr_str(attrs.0, self.table);
        self.w.attr_str(attrs.1, name);
        at
    }

    fn op(&mut self, i: usize, op: &'a TableOp) -> Result<(), DataplaneError> {
        match op {
            TableOp::AddSet { name, kind } => {
                self.name(name, "set")?;
                let (key_type, key_len) = datatype_name(*kind)
                    .map_err(|e| invalid(format!("add set {name}: {e}"), Some(name.clone())))?;
                let id = self.next_set_id();
                self.named.insert(name, (id, key_len));
                let at = self.begin(NFT_MSG_NEWSET, NLM_F_REQUEST | NLM_F_CREATE);
                self.w.attr_str(NFTA_SET_TABLE, self.table);
                self.w.attr_str(NFTA_SET_NAME, name);
                let flags = if matches!(kind, NamedSetKind::Net(_)) {
                    NFT_SET_INTERVAL
                } else {
                    0
                };
                self.w.attr_u32(NFTA_SET_FLAGS, flags);
                self.w.attr_u32(NFTA_SET_KEY_TYPE, key_type);
                self.w.attr_u32(NFTA_SET_KEY_LEN, key_len);
                self.w.attr_u32(NFTA_SET_ID, id);
                self.w.attr(NFTA_SET_USERDATA, &named_udata(*kind));
                self.end(at, i, format!("add set {name}"), Some(name.clone()));
            }
            TableOp::Element(e) => {
                let set_id = self.named.get(e.set.as_str()).map(|(id, _)| *id);
                self.run.push(
                    &mut self.w,
                    self.table,
                    e,
                    i,
                    set_id,
                    &mut self.seq,
                    &mut self.elements,
                )?;
            }
            TableOp::AddChain { name } => {
                self.name(name, "chain")?;
                let at = self.simple(
                    NFT_MSG_NEWCHAIN,
                    NLM_F_REQUEST | NLM_F_CREATE,
                    (NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME),
                    name,
                );
                self.end(at, i, format!("add chain {name}"), None);
            }
            TableOp::FlushChain { name } => {
                self.name(name, "chain")?;
                let at = self.simple(
                    NFT_MSG_DELRULE,
                    NLM_F_REQUEST,
                    (NFTA_RULE_TABLE, NFTA_RULE_CHAIN),
                    name,
                );
                self.end(at, i, format!("flush chain {name}"), None);
                self.rules_per_chain.insert(name, 0);
            }
            TableOp::DeleteChain { name } => {
                self.name(name, "chain")?;
                let at = self.simple(
                    NFT_MSG_DELCHAIN,
                    NLM_F_REQUEST,
                    (NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME),
                    name,
                );
                self.end(at, i, format!("delete chain {name}"), None);
            }
            TableOp::DeleteSet { name } => {
                self.name(name, "set")?;
                let at = self.simple(
                    NFT_MSG_DELSET,
                    NLM_F_REQUEST,
                    (NFTA_SET_TABLE, NFTA_SET_NAME),
                    name,
                );
                self.end(at, i, format!("delete set {name}"), Some(name.clone()));
            }
            TableOp::AddRule { chain, rule } => self.rule(i, chain, rule)?,
        }
        Ok(())
    }

    fn next_set_id(&mut self) -> u32 {
        let id = self.next_set_id;
        self.next_set_id = self.next_set_id.wrapping_add(1);
        id
    }

    fn rule(&mut self, i: usize, chain: &'a str, rule: &RuleCode) -> Result<(), DataplaneError> {
        self.name(chain, "chain")?;
        let n = {
            let n = self.rules_per_chain.entry(chain).or_insert(0);
            *n += 1;
            *n
        };
        let label = format!("rule #{n} appended to chain {chain}");
        let bad = |why: String| invalid(format!("append rule #{n} to chain {chain}: {why}"), None);
        if rule.exprs.is_empty() {
            return Err(bad("a rule has at least one expression".into()));
        }
        validate_exprs(rule, &self.named).map_err(bad)?;
        // Anonymous sets first, as nft sends them: each set, then its elements.
        let mut anon_ids = Vec::with_capacity(rule.anon_sets.len());
        for (k, set) in rule.anon_sets.iter().enumerate() {
            validate_anon(set).map_err(|e| match e {
                AnonProblem::Invalid(why) => bad(format!("anonymous set {k}: {why}")),
                AnonProblem::Unsupported(why) => DataplaneError::NoNetlinkPath {
                    what: format!("{label}, anonymous set {k}: {why}"),
                },
            })?;
            let id = self.next_set_id();
            anon_ids.push(id);
            let (at_expr, sreg) = rule
                .exprs
                .iter()
                .enumerate()
                .find_map(|(j, e)| match e {
                    Expr::Lookup {
                        sreg,
                        set: SetRef::Anonymous(x),
                        ..
                    } if *x == k => Some((j, *sreg)),
                    _ => None,
                })
                .unwrap_or((0, 0));
            let udata = anon_udata(&rule.exprs, at_expr, sreg, set);
            let at = self.begin(NFT_MSG_NEWSET, NLM_F_REQUEST | NLM_F_CREATE);
            self.w.attr_str(NFTA_SET_TABLE, self.table);
            self.w.attr_str(NFTA_SET_NAME, "__set%d");
            let mut flags = NFT_SET_ANONYMOUS | NFT_SET_CONSTANT;
            if set.interval {
                flags |= NFT_SET_INTERVAL;
            }
            self.w.attr_u32(NFTA_SET_FLAGS, flags);
            self.w.attr_u32(NFTA_SET_KEY_TYPE, set.key_type);
            self.w.attr_u32(NFTA_SET_KEY_LEN, set.key_len);
            self.w.attr_u32(NFTA_SET_ID, id);
            let desc = self.w.begin_nested(NFTA_SET_DESC);
            self.w.attr_u32(
                NFTA_SET_DESC_SIZE,
                u32::try_from(set.elements.len()).unwrap_or(u32::MAX),
            );
            self.w.end_nested(desc);
            self.w.attr(NFTA_SET_USERDATA, &udata);
            self.end(at, i, format!("create anonymous set {k} of {label}"), None);

            let at = self.begin(NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE);
            self.w.attr_str(NFTA_SET_ELEM_LIST_TABLE, self.table);
            self.w.attr_str(NFTA_SET_ELEM_LIST_SET, "__set%d");
            self.w.attr_u32(NFTA_SET_ELEM_LIST_SET_ID, id);
            let list = self.w.begin_nested(NFTA_SET_ELEM_LIST_ELEMENTS);
            for (j, e) in set.elements.iter().enumerate() {
                let nest = u16::try_from(j + 1).unwrap_or(NFTA_LIST_ELEM) & 0x3fff;
                let elem = self.w.begin_nested(nest.max(NFTA_LIST_ELEM));
                if e.interval_end {
                    self.w
                        .attr_u32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
                }
                let key = self.w.begin_nested(NFTA_SET_ELEM_KEY);
                self.w.attr(NFTA_DATA_VALUE, &e.key);
                self.w.end_nested(key);
                self.w.end_nested(elem);
            }
            self.w.end_nested(list);
            self.end(
                at,
                i,
                format!("add the elements of anonymous set {k} of {label}"),
                None,
            );
        }
        let at = self.begin(NFT_MSG_NEWRULE, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND);
        self.w.attr_str(NFTA_RULE_TABLE, self.table);
        self.w.attr_str(NFTA_RULE_CHAIN, chain);
        let list = self.w.begin_nested(NFTA_RULE_EXPRESSIONS);
        let mut ranges = Vec::with_capacity(rule.exprs.len());
        for e in &rule.exprs {
            let start = self.w.buf.len() - at;
            self.expr(e, &anon_ids);
            ranges.push(start..self.w.buf.len() - at);
        }
        self.w.end_nested(list);
        self.end(at, i, format!("append rule #{n} to chain {chain}"), None);
        if let Some(m) = self.messages.last_mut() {
            m.exprs = ranges;
        }
        Ok(())
    }

    /// One `NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { … } }`, attributes in nft's order.
    fn expr(&mut self, e: &Expr, anon_ids: &[u32]) {
        let w = &mut self.w;
        let elem = w.begin_nested(NFTA_LIST_ELEM);
        let name = match e {
            Expr::MetaLoad { .. } | Expr::MetaSet { .. } => "meta",
            Expr::CtState { .. } => "ct",
            Expr::Payload { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Range { .. } => "range",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Lookup { .. } => "lookup",
            Expr::Verdict(_) => "immediate",
            Expr::Log { .. } => "log",
            Expr::Notrack => "notrack",
            Expr::FibSaddrMarkIifOif { .. } => "fib",
        };
        w.attr_str(NFTA_EXPR_NAME, name);
        let value = |w: &mut Writer, kind: u16, data: &[u8]| {
            let d = w.begin_nested(kind);
            w.attr(NFTA_DATA_VALUE, data);
            w.end_nested(d);
        };
        // `notrack` has no attributes at all: no data nest either.
        if !matches!(e, Expr::Notrack) {
            let data = w.begin_nested(NFTA_EXPR_DATA);
            match e {
                Expr::MetaLoad { key, dreg } => {
                    w.attr_u32(NFTA_META_KEY, key.code());
                    w.attr_u32(NFTA_META_DREG, *dreg);
                }
                Expr::MetaSet { key, sreg } => {
                    w.attr_u32(NFTA_META_KEY, key.code());
                    w.attr_u32(NFTA_META_SREG, *sreg);
                }
                Expr::CtState { dreg } => {
                    w.attr_u32(NFTA_CT_KEY, NFT_CT_STATE);
                    w.attr_u32(NFTA_CT_DREG, *dreg);
                }
                Expr::Payload {
                    base,
                    offset,
                    len,
                    dreg,
                } => {
                    w.attr_u32(NFTA_PAYLOAD_DREG, *dreg);
                    w.attr_u32(NFTA_PAYLOAD_BASE, base.code());
                    w.attr_u32(NFTA_PAYLOAD_OFFSET, *offset);
                    w.attr_u32(NFTA_PAYLOAD_LEN, *len);
                }
                Expr::Cmp { op, sreg, data } => {
                    w.attr_u32(NFTA_CMP_SREG, *sreg);
                    w.attr_u32(NFTA_CMP_OP, op.code());
                    value(w, NFTA_CMP_DATA, data);
                }
                Expr::Range { op, sreg, from, to } => {
                    w.attr_u32(NFTA_RANGE_SREG, *sreg);
                    // NFT_RANGE_EQ 0 / NFT_RANGE_NEQ 1, the same numbers as the cmp ops.
                    w.attr_u32(NFTA_RANGE_OP, op.code());
                    value(w, NFTA_RANGE_FROM_DATA, from);
                    value(w, NFTA_RANGE_TO_DATA, to);
                }
                Expr::Bitwise {
                    sreg,
                    dreg,
                    mask,
                    xor,
                } => {
                    w.attr_u32(NFTA_BITWISE_SREG, *sreg);
                    w.attr_u32(NFTA_BITWISE_DREG, *dreg);
                    w.attr_u32(NFTA_BITWISE_OP, NFT_BITWISE_BOOL);
                    w.attr_u32(
                        NFTA_BITWISE_LEN,
                        u32::try_from(mask.len()).unwrap_or(u32::MAX),
                    );
                    value(w, NFTA_BITWISE_MASK, mask);
                    value(w, NFTA_BITWISE_XOR, xor);
                }
                Expr::Lookup {
                    sreg,
                    set,
                    dreg,
                    invert,
                } => {
                    w.attr_u32(NFTA_LOOKUP_SREG, *sreg);
                    if let Some(d) = dreg {
                        w.attr_u32(NFTA_LOOKUP_DREG, *d);
                    }
                    match set {
                        SetRef::Named(n) => {
                            w.attr_str(NFTA_LOOKUP_SET, n);
                            if let Some((id, _)) = self.named.get(n.as_str()) {
                                w.attr_u32(NFTA_LOOKUP_SET_ID, *id);
                            }
                        }
                        SetRef::Anonymous(k) => {
                            w.attr_str(NFTA_LOOKUP_SET, "__set%d");
                            if let Some(id) = anon_ids.get(*k) {
                                w.attr_u32(NFTA_LOOKUP_SET_ID, *id);
                            }
                        }
                    }
                    if *invert {
                        w.attr_u32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
                    }
                }
                Expr::Verdict(v) => {
                    w.attr_u32(NFTA_IMMEDIATE_DREG, calico_nft::bytecode::REG_VERDICT);
                    let d = w.begin_nested(NFTA_IMMEDIATE_DATA);
                    let verdict = w.begin_nested(NFTA_DATA_VERDICT);
                    w.attr(NFTA_VERDICT_CODE, &v.code().to_be_bytes());
                    if let Some(c) = v.chain() {
                        w.attr_str(NFTA_VERDICT_CHAIN, c);
                    }
                    w.end_nested(verdict);
                    w.end_nested(d);
                }
                Expr::Log { prefix, level } => {
                    if !prefix.is_empty() {
                        w.attr_str(NFTA_LOG_PREFIX, prefix);
                    }
                    w.attr_u32(NFTA_LOG_LEVEL, *level);
                }
                Expr::FibSaddrMarkIifOif { dreg } => {
                    w.attr_u32(NFTA_FIB_FLAGS, FIB_SADDR_MARK_IIF);
                    w.attr_u32(NFTA_FIB_RESULT, NFT_FIB_RESULT_OIF);
                    w.attr_u32(NFTA_FIB_DREG, *dreg);
                }
                Expr::Notrack => {}
            }
            w.end_nested(data);
        }
        w.end_nested(elem);
    }
}

enum AnonProblem {
    Invalid(String),
    Unsupported(String),
}

fn validate_anon(set: &AnonSet) -> Result<(), AnonProblem> {
    let len = set.key_len as usize;
    if len == 0 || len > NFT_DATA_VALUE_MAXLEN {
        return Err(AnonProblem::Invalid(format!(
            "key length {len} is not 1 to {NFT_DATA_VALUE_MAXLEN}"
        )));
    }
    if !set.concat.is_empty() {
        let total: u32 = set.concat.iter().map(|l| l.div_ceil(4) * 4).sum();
        if set.concat.contains(&0) || total != set.key_len {
            return Err(AnonProblem::Invalid(format!(
                "concatenation fields {:?} (each padded to 4 bytes) do not make a {}-byte key",
                set.concat, set.key_len
            )));
        }
        if set.interval {
            return Err(AnonProblem::Unsupported(
                "ranges of concatenations need key-end elements, which the plan does not carry"
                    .into(),
            ));
        }
    }
    if set.elements.is_empty() {
        return Err(AnonProblem::Invalid("an anonymous set has elements".into()));
    }
    for e in &set.elements {
        if e.key.len() != len {
            return Err(AnonProblem::Invalid(format!(
                "element key of {} bytes in a set of {len}-byte keys",
                e.key.len()
            )));
        }
        if e.interval_end && !set.interval {
            return Err(AnonProblem::Invalid(
                "an interval end in a set without intervals".into(),
            ));
        }
    }
    Ok(())
}

/// Checks every expression of `rule` the way the kernel would refuse it, so a malformed plan
/// is named here rather than as a bare `EINVAL` from the kernel.
fn validate_exprs(rule: &RuleCode, named: &HashMap<&str, (u32, u32)>) -> Result<(), String> {
    for (j, e) in rule.exprs.iter().enumerate() {
        let at = |why: String| format!("expression {j} `{e}`: {why}");
        let operand = |data: &[u8], what: &str| {
            if data.is_empty() || data.len() > NFT_DATA_MAX {
                Err(at(format!(
                    "{what} of {} bytes (1 to {NFT_DATA_MAX})",
                    data.len()
                )))
            } else {
                Ok(())
            }
        };
        match e {
            Expr::MetaLoad { key, dreg } => data_reg(*dreg, meta_len(*key)).map_err(at)?,
            Expr::MetaSet { key, sreg } => {
                if *key != MetaKey::Mark {
                    return Err(at("only the mark can be set".into()));
                }
                data_reg(*sreg, 4).map_err(at)?;
            }
            Expr::CtState { dreg } | Expr::FibSaddrMarkIifOif { dreg } => {
                data_reg(*dreg, 4).map_err(at)?
            }
            Expr::Payload { len, dreg, .. } => {
                data_reg(*dreg, *len as usize).map_err(at)?;
            }
            Expr::Cmp { sreg, data, .. } => {
                operand(data, "data")?;
                data_reg(*sreg, data.len()).map_err(at)?;
            }
            Expr::Range { op, sreg, from, to } => {
                if !matches!(op, CmpOp::Eq | CmpOp::Neq) {
                    return Err(at("a range compares eq or neq only".into()));
                }
                operand(from, "range start")?;
                if from.len() != to.len() {
                    return Err(at("range ends of different lengths".into()));
                }
                data_reg(*sreg, from.len()).map_err(at)?;
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                operand(mask, "mask")?;
                if mask.len() != xor.len() {
                    return Err(at("mask and xor of different lengths".into()));
                }
                data_reg(*sreg, mask.len()).map_err(at)?;
                data_reg(*dreg, mask.len()).map_err(at)?;
            }
            Expr::Lookup {
                sreg,
                set,
                dreg,
                invert,
            } => {
                let key_len = match set {
                    SetRef::Named(n) => {
                        if !valid_name(n) {
                            return Err(at(format!("{n:?} is not a valid set name")));
                        }
                        named.get(n.as_str()).map_or(1, |(_, l)| *l as usize)
                    }
                    SetRef::Anonymous(k) => match rule.anon_sets.get(*k) {
                        Some(s) => s.key_len as usize,
                        None => {
                            return Err(at(format!(
                                "anonymous set {k} of a rule with {}",
                                rule.anon_sets.len()
                            )));
                        }
                    },
                };
                data_reg(*sreg, key_len).map_err(at)?;
                match dreg {
                    Some(_) if *invert => {
                        return Err(at("an inverted lookup has no destination".into()));
                    }
                    Some(0) | None => {}
                    Some(d) => data_reg(*d, 1).map_err(at)?,
                }
            }
            Expr::Verdict(v) => {
                if let VerdictCode::Jump(c) | VerdictCode::Goto(c) = v
                    && !valid_name(c)
                {
                    return Err(at(format!("{c:?} is not a valid chain name")));
                }
            }
            Expr::Log { prefix, level } => {
                if prefix.len() > LOG_PREFIX_MAX || prefix.contains('\0') {
                    return Err(at(format!(
                        "a log prefix is at most {LOG_PREFIX_MAX} bytes without NUL"
                    )));
                }
                if *level > LOG_LEVEL_MAX {
                    return Err(at(format!("log level {level} is above {LOG_LEVEL_MAX}")));
                }
            }
            Expr::Notrack => {}
        }
    }
    for (k, _) in rule.anon_sets.iter().enumerate() {
        let used = rule
            .exprs
            .iter()
            .any(|e| matches!(e, Expr::Lookup { set: SetRef::Anonymous(x), .. } if *x == k));
        if !used {
            return Err(format!(
                "anonymous set {k} is not looked up by any expression"
            ));
        }
    }
    Ok(())
}

/// Encodes `ops` for `table inet <table>` as one batch whose messages are numbered from
/// `seq` (begin) on; only the last message asks for an ack. Refuses, sending nothing, a plan
/// with invalid names or expressions ([`DataplaneError::Netlink`] with `InvalidInput`, naming
/// the op) and one that cannot go as one netlink send or holds what this encoder does not
/// write ([`DataplaneError::NoNetlinkPath`]).
#[cfg(test)]
pub(super) fn encode_plan(
    table: &str,
    ops: &[TableOp],
    seq: u32,
) -> Result<PlanBatch, DataplaneError> {
    encode_plans(&[(table, ops)], seq)
}

/// [`encode_plan`] for several tables in one batch (one transaction): each table's ops in
/// turn. Ops are numbered across the tables, in this order, in errors.
pub(super) fn encode_plans<'a>(
    plans: &[(&'a str, &'a [TableOp])],
    seq: u32,
) -> Result<PlanBatch, DataplaneError> {
    let mut e = Encoder {
        table: "",
        w: Writer::default(),
        seq,
        next_set_id: 1,
        named: HashMap::new(),
        run: ElementMessages::default(),
        elements: Vec::new(),
        messages: Vec::new(),
        last: None,
        rules_per_chain: HashMap::new(),
    };
    e.w.batch_marker(NFNL_MSG_BATCH_BEGIN, seq);
    let mut first = 0;
    for (table, ops) in plans {
        if !valid_name(table) {
            return Err(invalid(
                format!("{table:?} is not a valid nft table name"),
                None,
            ));
        }
        // Names (sets created in this batch, rules per chain) are per table, and an element
        // message belongs to one table.
        if let Some(at) = e.run.close(&mut e.w) {
            e.last = Some(at);
        }
        e.named.clear();
        e.rules_per_chain.clear();
        e.table = table;
        for (i, op) in ops.iter().enumerate() {
            e.op(first + i, op)?;
        }
        first += ops.len();
    }
    if let Some(at) = e.run.close(&mut e.w) {
        e.last = Some(at);
    }
    let last_seq = e.last.map(|at| {
        e.w.request_ack(at);
        e.seq
    });
    e.w.batch_marker(NFNL_MSG_BATCH_END, e.seq.wrapping_add(1));
    if e.w.overflow {
        return Err(DataplaneError::NoNetlinkPath {
            what: "an attribute of the batch (a rule's expressions or a set's elements) is \
                   larger than a netlink attribute holds (64 KiB)"
                .into(),
        });
    }
    if e.w.buf.len() > MAX_ENCODED_BATCH {
        return Err(DataplaneError::NoNetlinkPath {
            what: format!(
                "a batch of {} bytes is larger than one netlink send ({MAX_ENCODED_BATCH})",
                e.w.buf.len()
            ),
        });
    }
    Ok(PlanBatch {
        bytes: e.w.buf,
        begin_seq: seq,
        last_seq,
        elements: e.elements,
        messages: e.messages,
    })
}

/// The op numbered `i` across `plans` ([`encode_plans`]), with its table.
fn op_at<'a>(plans: &[(&'a str, &'a [TableOp])], mut i: usize) -> Option<(&'a str, &'a TableOp)> {
    for (table, ops) in plans {
        match ops.get(i) {
            Some(op) => return Some((table, op)),
            None => i -= ops.len(),
        }
    }
    None
}

/// The error for a refused message of `batch`: the op, and for a rule the expression the
/// kernel pointed at; element messages name the set and element as `apply_elements` does.
#[cfg(test)]
fn describe(batch: &PlanBatch, ack: &Ack, table: &str, ops: &[TableOp]) -> DataplaneError {
    describe_in(batch, ack, &[(table, ops)])
}

fn describe_in(batch: &PlanBatch, ack: &Ack, plans: &[(&str, &[TableOp])]) -> DataplaneError {
    let source = io::Error::from_raw_os_error(ack.errno);
    if let Some(m) = batch.elements.iter().find(|m| m.seq == ack.seq) {
        let table = m
            .elements
            .first()
            .and_then(|(_, i)| op_at(plans, *i))
            .map_or("", |(t, _)| t);
        return describe_elements(m, ack, table, |i| match op_at(plans, i) {
            Some((_, TableOp::Element(e))) => Some(e),
            _ => None,
        });
    }
    let kernel = kernel_says(ack);
    let tables = plans
        .iter()
        .map(|(t, _)| *t)
        .collect::<Vec<_>>()
        .join(", inet ");
    let Some(m) = batch.messages.iter().find(|m| m.seq == ack.seq) else {
        return DataplaneError::Netlink {
            what: format!("commit of the batch for table inet {tables}{kernel}"),
            set: None,
            element: None,
            source,
        };
    };
    let (table, op) = op_at(plans, m.op).map_or(("", None), |(t, op)| (t, Some(op)));
    let pointed = match (op, ack.offset) {
        (Some(TableOp::AddRule { rule, .. }), Some(off)) => m
            .exprs
            .iter()
            .position(|r| r.contains(&(off as usize)))
            .and_then(|j| rule.exprs.get(j).map(|e| format!(", expression {j} `{e}`")))
            .unwrap_or_default(),
        _ => String::new(),
    };
    DataplaneError::Netlink {
        what: format!(
            "{} (op {} of the plan) in table inet {table}{pointed}{kernel}",
            m.what, m.op
        ),
        set: m.set.clone(),
        element: None,
        source,
    }
}

/// Sends `batch` (encoded from `plans` by [`encode_plans`]) over `socket` and reads the
/// kernel's replies; the first refusal names its op.
pub(super) fn send_plans(
    socket: &Socket,
    batch: &PlanBatch,
    plans: &[(&str, &[TableOp])],
) -> Result<(), DataplaneError> {
    send_batch(
        socket,
        &batch.bytes,
        batch.begin_seq,
        batch.last_seq,
        OP,
        |ack| describe_in(batch, ack, plans),
    )
}

#[cfg(test)]
#[path = "netlink_table_tests.rs"]
mod tests;
