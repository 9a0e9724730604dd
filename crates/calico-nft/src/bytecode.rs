//! nf_tables rules as the kernel stores them: lists of expressions ([`Expr`]) operating on
//! registers, plus the anonymous sets (`{ a, b }` in a rule) they look up ([`AnonSet`]). A
//! driver that writes chains over netlink (without `nft`, whose start-up loads the whole
//! table: ~150 ms at 10k policies) sends exactly these.
//!
//! The expressions are the ones nft 1.0.6 generates for the rules [`crate::compile`] renders
//! (checked against `nft --debug=netlink`): the same registers, the same dependency matches
//! (`meta nfproto` before an `ip saddr` load in an `inet` table), the same merged payload
//! loads, the same anonymous-set layout. [`Expr`]'s `Display` prints libnftnl's debug format
//! (`[ meta load mark => reg 1 ]`), so tests compare with nft's own output line by line.
//!
//! Register numbers are the kernel's (`NFT_REG_VERDICT` = 0, the 16-byte `NFT_REG_1..4` =
//! 1..4, the 4-byte `NFT_REG32_00..15` = 8..23), as nft puts them on the wire
//! (`netlink_put_register`: a 16-byte-aligned register keeps its 128-bit number).

use std::fmt;

/// `NFT_REG_VERDICT`.
pub const REG_VERDICT: u32 = 0;
/// `NFT_REG_1`, where every expression nft generates starts.
pub const REG_1: u32 = 1;

/// `enum nft_meta_keys` (include/uapi/linux/netfilter/nf_tables.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    Mark,
    Iifname,
    Oifname,
    L4proto,
    Nfproto,
}

impl MetaKey {
    /// The kernel's key number.
    pub fn code(self) -> u32 {
        match self {
            MetaKey::Mark => 3,     // NFT_META_MARK
            MetaKey::Iifname => 6,  // NFT_META_IIFNAME
            MetaKey::Oifname => 7,  // NFT_META_OIFNAME
            MetaKey::Nfproto => 15, // NFT_META_NFPROTO
            MetaKey::L4proto => 16, // NFT_META_L4PROTO
        }
    }

    fn name(self) -> &'static str {
        match self {
            MetaKey::Mark => "mark",
            MetaKey::Iifname => "iifname",
            MetaKey::Oifname => "oifname",
            MetaKey::L4proto => "l4proto",
            MetaKey::Nfproto => "nfproto",
        }
    }
}

/// `enum nft_payload_bases`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadBase {
    /// `NFT_PAYLOAD_NETWORK_HEADER` = 1.
    Network,
    /// `NFT_PAYLOAD_TRANSPORT_HEADER` = 2.
    Transport,
}

impl PayloadBase {
    pub fn code(self) -> u32 {
        match self {
            PayloadBase::Network => 1,
            PayloadBase::Transport => 2,
        }
    }
    fn name(self) -> &'static str {
        match self {
            PayloadBase::Network => "network",
            PayloadBase::Transport => "transport",
        }
    }
}

/// `enum nft_cmp_ops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    pub fn code(self) -> u32 {
        match self {
            CmpOp::Eq => 0,
            CmpOp::Neq => 1,
            CmpOp::Lt => 2,
            CmpOp::Lte => 3,
            CmpOp::Gt => 4,
            CmpOp::Gte => 5,
        }
    }
    fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Neq => "neq",
            CmpOp::Lt => "lt",
            CmpOp::Lte => "lte",
            CmpOp::Gt => "gt",
            CmpOp::Gte => "gte",
        }
    }
}

/// A verdict in an `immediate` expression (or a verdict map element).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerdictCode {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
}

impl VerdictCode {
    /// `NF_DROP` 0, `NF_ACCEPT` 1, `NFT_JUMP` -3, `NFT_GOTO` -4, `NFT_RETURN` -5.
    pub fn code(&self) -> i32 {
        match self {
            VerdictCode::Drop => 0,
            VerdictCode::Accept => 1,
            VerdictCode::Jump(_) => -3,
            VerdictCode::Goto(_) => -4,
            VerdictCode::Return => -5,
        }
    }

    /// The chain of a jump or goto.
    pub fn chain(&self) -> Option<&str> {
        match self {
            VerdictCode::Jump(c) | VerdictCode::Goto(c) => Some(c),
            _ => None,
        }
    }
}

/// Which set a `lookup` reads: a named set of the table, or an anonymous set created in the
/// same batch (`__set%d`, the kernel picks the number; the rule refers to it by the batch-local
/// id given to its `NFT_MSG_NEWSET`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetRef {
    Named(String),
    /// Index into [`RuleCode::anon_sets`].
    Anonymous(usize),
}

/// One nf_tables expression, as nft 1.0.6 generates it for the rules this crate renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `meta load <key> => reg <dreg>` (`NFTA_META_KEY`, `NFTA_META_DREG`).
    MetaLoad { key: MetaKey, dreg: u32 },
    /// `meta set <key> with reg <sreg>` (`NFTA_META_KEY`, `NFTA_META_SREG`).
    MetaSet { key: MetaKey, sreg: u32 },
    /// `ct load state => reg <dreg>` (`NFTA_CT_KEY` = `NFT_CT_STATE` 0, `NFTA_CT_DREG`).
    CtState { dreg: u32 },
    /// `payload load <len>b @ <base> header + <offset> => reg <dreg>`.
    Payload {
        base: PayloadBase,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    /// `cmp <op> reg <sreg> <data>`; `data` in the register's byte order (network order for
    /// addresses and ports, host order for marks, zero-padded names for interfaces).
    Cmp { op: CmpOp, sreg: u32, data: Vec<u8> },
    /// `range <eq|neq> reg <sreg> <from> <to>` (`NFTA_RANGE_*`); only `Eq`/`Neq`.
    Range {
        op: CmpOp,
        sreg: u32,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    /// `bitwise reg <dreg> = ( reg <sreg> & <mask> ) ^ <xor>` (`NFT_BITWISE_BOOL`).
    Bitwise {
        sreg: u32,
        dreg: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// `lookup reg <sreg> set <set> [dreg <dreg>] [0x1]` (0x1 = `NFT_LOOKUP_F_INV`).
    Lookup {
        sreg: u32,
        set: SetRef,
        dreg: Option<u32>,
        invert: bool,
    },
    /// `immediate reg 0 <verdict>`.
    Verdict(VerdictCode),
    /// `log prefix <prefix> level <level>` (syslog level; `info` = 6).
    Log { prefix: String, level: u32 },
    /// `notrack`.
    Notrack,
    /// `fib saddr . mark . iif oif => reg <dreg>` (the RPF check): `NFTA_FIB_FLAGS` =
    /// `NFTA_FIB_F_SADDR | NFTA_FIB_F_MARK | NFTA_FIB_F_IIF` (0x1 | 0x4 | 0x8 = 0x0d),
    /// `NFTA_FIB_RESULT` = `NFT_FIB_RESULT_OIF` (1).
    FibSaddrMarkIifOif { dreg: u32 },
}

/// An anonymous set (`{ a, b }` in a rule): `NFT_SET_ANONYMOUS | NFT_SET_CONSTANT`, plus
/// `NFT_SET_INTERVAL` for ranges and prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonSet {
    /// nft's datatype id of the key (`NFTA_SET_KEY_TYPE`): what `nft list` prints the elements
    /// as. Concatenations combine their fields' ids 6 bits apart (`concat_subtype_add`).
    pub key_type: u32,
    /// `NFTA_SET_KEY_LEN`: bytes of a key (concatenation fields rounded up to 4 bytes each).
    pub key_len: u32,
    /// Lengths of the concatenation's fields in bytes (empty for a single field).
    pub concat: Vec<u32>,
    pub interval: bool,
    /// Elements in the order nft sends them; for interval sets, ranges as a start element and
    /// an end element (`NFT_SET_ELEM_INTERVAL_END`) one past the range.
    pub elements: Vec<AnonElement>,
}

/// One element of an [`AnonSet`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonElement {
    pub key: Vec<u8>,
    pub interval_end: bool,
}

/// One rule: its expressions and the anonymous sets they refer to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleCode {
    pub exprs: Vec<Expr>,
    pub anon_sets: Vec<AnonSet>,
}

/// libnftnl's data print: the value as 32-bit words read in host (little-endian) order, each
/// `0x%08x `, the last word zero-padded.
fn write_words(f: &mut fmt::Formatter<'_>, data: &[u8]) -> fmt::Result {
    for chunk in data.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        write!(f, "0x{:08x} ", u32::from_le_bytes(w))?;
    }
    Ok(())
}

impl fmt::Display for VerdictCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerdictCode::Accept => write!(f, "accept"),
            VerdictCode::Drop => write!(f, "drop"),
            VerdictCode::Return => write!(f, "return"),
            VerdictCode::Jump(c) => write!(f, "jump -> {c}"),
            VerdictCode::Goto(c) => write!(f, "goto -> {c}"),
        }
    }
}

/// Prints one expression as `nft --debug=netlink` does, e.g. `[ cmp eq reg 1 0x00000002 ]`.
/// Anonymous sets print as `__set%d` (what nft shows for a set it is about to create).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[ ")?;
        match self {
            Expr::MetaLoad { key, dreg } => write!(f, "meta load {} => reg {dreg} ", key.name())?,
            Expr::MetaSet { key, sreg } => write!(f, "meta set {} with reg {sreg} ", key.name())?,
            Expr::CtState { dreg } => write!(f, "ct load state => reg {dreg} ")?,
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            } => write!(
                f,
                "payload load {len}b @ {} header + {offset} => reg {dreg} ",
                base.name()
            )?,
            Expr::Cmp { op, sreg, data } => {
                write!(f, "cmp {} reg {sreg} ", op.name())?;
                write_words(f, data)?;
            }
            Expr::Range { op, sreg, from, to } => {
                write!(f, "range {} reg {sreg} ", op.name())?;
                write_words(f, from)?;
                write_words(f, to)?;
            }
            Expr::Bitwise {
                sreg,
                dreg,
                mask,
                xor,
            } => {
                write!(f, "bitwise reg {dreg} = ( reg {sreg} & ")?;
                write_words(f, mask)?;
                write!(f, ") ^ ")?;
                write_words(f, xor)?;
            }
            Expr::Lookup {
                sreg,
                set,
                dreg,
                invert,
            } => {
                match set {
                    SetRef::Named(n) => write!(f, "lookup reg {sreg} set {n} ")?,
                    SetRef::Anonymous(_) => write!(f, "lookup reg {sreg} set __set%d ")?,
                }
                if let Some(d) = dreg {
                    write!(f, "dreg {d} ")?;
                }
                if *invert {
                    write!(f, "0x1 ")?;
                }
            }
            Expr::Verdict(v) => write!(f, "immediate reg {REG_VERDICT} {v} ")?,
            Expr::Log { prefix, level } => write!(f, "log prefix {prefix} level {level} ")?,
            Expr::Notrack => write!(f, "notrack ")?,
            Expr::FibSaddrMarkIifOif { dreg } => {
                write!(f, "fib saddr . mark . iif oif => reg {dreg} ")?
            }
        }
        write!(f, "]")
    }
}

/// One step of a change to the table, in the order a batch must carry it (the order
/// [`crate::diff`] writes its script in). [`crate::diff_plan`] produces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOp {
    /// `NFT_MSG_NEWSET` for a named set of one of the kinds [`crate::compile`] declares.
    AddSet { name: String, kind: NamedSetKind },
    /// Element changes of one named set or map (`NFT_MSG_NEWSETELEM` / `NFT_MSG_DELSETELEM`).
    Element(crate::ElementOp),
    /// `NFT_MSG_NEWCHAIN` for a regular (non-base) chain, created empty.
    AddChain { name: String },
    /// `NFT_MSG_DELRULE` with only the chain: deletes all its rules (`flush chain`).
    FlushChain { name: String },
    /// `NFT_MSG_NEWRULE` appending a rule (with `NLM_F_APPEND`), after its anonymous sets.
    AddRule { chain: String, rule: RuleCode },
    /// `NFT_MSG_DELCHAIN` (the chain is empty and unreferenced by then).
    DeleteChain { name: String },
    /// `NFT_MSG_DELSET` (no rule refers to it any more).
    DeleteSet { name: String },
}

/// The named sets [`crate::compile`] declares, by declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedSetKind {
    /// `type ipv4_addr;` (4) / `type ipv6_addr;` (6).
    Addr(u8),
    /// `type ipvX_addr; flags interval;`.
    Net(u8),
    /// `type ipvX_addr . inet_proto . inet_service;`.
    AddrProtoPort(u8),
    /// `type inet_proto . inet_service;`.
    ProtoPort,
}

impl NamedSetKind {
    /// The declaration as [`crate::compile`] writes it (`type ipv4_addr; flags interval;`).
    pub fn spec(self) -> String {
        let addr = |f: u8| if f == 6 { "ipv6_addr" } else { "ipv4_addr" };
        match self {
            NamedSetKind::Addr(f) => format!("type {};", addr(f)),
            NamedSetKind::Net(f) => format!("type {}; flags interval;", addr(f)),
            NamedSetKind::AddrProtoPort(f) => {
                format!("type {} . inet_proto . inet_service;", addr(f))
            }
            NamedSetKind::ProtoPort => "type inet_proto . inet_service;".to_string(),
        }
    }
}
