//! The rules [`crate::compile`] renders, compiled to nf_tables expressions ([`RuleCode`]) the
//! way nft 1.0.6 compiles them, so a driver can add them over netlink without `nft`.
//!
//! Only the statements this crate renders are understood (see `rules.rs`, `compile.rs` and
//! `marks.rs`); anything else is an error naming the token, and the caller sends that change
//! through `nft` instead. What nft does on top of the literal statements, and is copied here
//! (each checked against `nft --debug=netlink` by the tests):
//! * dependencies: before the first `ip`/`ip6` header load of a rule in an `inet` table,
//!   `meta nfproto ipv4|ipv6` unless the rule already matched it; before `icmp`/`icmpv6`
//!   fields, also `meta l4proto icmp|icmpv6` unless already matched;
//! * prefixes: a byte-aligned prefix loads only its bytes (`10.0.0.0/8`: 1 byte); others load
//!   the address and mask it (`bitwise`);
//! * ranges: `80-90` is `cmp gte` + `cmp lte`; `!= 80-90` is one `range neq`;
//! * adjacent transport-header equality matches are merged into one load (`th sport 80
//!   th dport 90`: 4 bytes; `icmp type 8 icmp code 0`: 2 bytes);
//! * anonymous sets (`{ a, b }`): `lookup` of a constant set created with the rule; interval
//!   sets when an element is a range or prefix, sent as nft does (an end element at zero when
//!   the first range starts above it, each range as start + end one past it);
//! * concatenations (`ip saddr . meta l4proto . th dport`): one register per field, 4-byte
//!   aligned, numbered as nft puts them on the wire (`reg 1`, `reg 9`, `reg 10` for IPv4).

use std::net::IpAddr;

use ipnet::IpNet;

use crate::bytecode::{
    AnonElement, AnonSet, CmpOp, Expr, MetaKey, PayloadBase, REG_1, RuleCode, SetRef, VerdictCode,
};

/// A rule this module cannot compile, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compile nft rule `{rule}` to netlink expressions: {reason}")]
pub struct RuleCodeError {
    pub rule: String,
    pub reason: String,
}

// nft datatype ids (nft `enum datatypes`), for anonymous sets' key types.
const TYPE_IPADDR: u32 = 7;
const TYPE_IP6ADDR: u32 = 8;
const TYPE_INET_PROTOCOL: u32 = 12;
const TYPE_INET_SERVICE: u32 = 13;
const TYPE_ICMP_TYPE: u32 = 14;
const TYPE_ICMP6_TYPE: u32 = 29;
const TYPE_ICMP_CODE: u32 = 32;
const TYPE_ICMPV6_CODE: u32 = 33;
/// nft `TYPE_BITS`: concatenated types are `(a << 6) | b`.
const TYPE_BITS: u32 = 6;

const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
/// Conntrack state bits (`NF_CT_STATE_BIT`): invalid 1, established 2, related 4, new 8.
const CT_INVALID: u32 = 1;
const CT_ESTABLISHED: u32 = 2;
const CT_RELATED: u32 = 4;
const CT_NEW: u32 = 8;
const IFNAMSIZ: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    /// `{ a, b }`: the items.
    Group(Vec<String>),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let start = i + 1;
            let mut end = None;
            for (j, c) in chars.by_ref() {
                if c == '"' {
                    end = Some(j);
                    break;
                }
            }
            let end = end.ok_or("unterminated quoted string")?;
            out.push(Token::Quoted(text[start..end].to_string()));
            continue;
        }
        if c == '{' {
            chars.next();
            let start = i + 1;
            let mut end = None;
            for (j, c) in chars.by_ref() {
                if c == '}' {
                    end = Some(j);
                    break;
                }
                if c == '{' {
                    return Err("nested `{`".into());
                }
            }
            let end = end.ok_or("unterminated `{`")?;
            let items: Vec<String> = text[start..end]
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if items.is_empty() {
                return Err("empty `{ }`".into());
            }
            out.push(Token::Group(items));
            continue;
        }
        let start = i;
        let mut end = text.len();
        while let Some(&(j, c)) = chars.peek() {
            if c.is_whitespace() {
                end = j;
                break;
            }
            chars.next();
        }
        out.push(Token::Word(text[start..end].to_string()));
    }
    Ok(out)
}

/// One field of a header match: where it is and how its values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Addr { v6: bool, src: bool },
    Port { src: bool },
    IcmpType { v6: bool },
    IcmpCode { v6: bool },
    L4proto,
}

impl Field {
    fn len(self) -> u32 {
        match self {
            Field::Addr { v6: false, .. } => 4,
            Field::Addr { v6: true, .. } => 16,
            Field::Port { .. } => 2,
            Field::IcmpType { .. } | Field::IcmpCode { .. } | Field::L4proto => 1,
        }
    }

    fn type_id(self) -> u32 {
        match self {
            Field::Addr { v6: false, .. } => TYPE_IPADDR,
            Field::Addr { v6: true, .. } => TYPE_IP6ADDR,
            Field::Port { .. } => TYPE_INET_SERVICE,
            Field::IcmpType { v6: false } => TYPE_ICMP_TYPE,
            Field::IcmpType { v6: true } => TYPE_ICMP6_TYPE,
            Field::IcmpCode { v6: false } => TYPE_ICMP_CODE,
            Field::IcmpCode { v6: true } => TYPE_ICMPV6_CODE,
            Field::L4proto => TYPE_INET_PROTOCOL,
        }
    }

    /// The expression loading this field into `dreg`.
    fn load(self, dreg: u32) -> Expr {
        let payload = |base, offset, len| Expr::Payload {
            base,
            offset,
            len,
            dreg,
        };
        match self {
            Field::Addr { v6: false, src } => {
                payload(PayloadBase::Network, if src { 12 } else { 16 }, 4)
            }
            Field::Addr { v6: true, src } => {
                payload(PayloadBase::Network, if src { 8 } else { 24 }, 16)
            }
            Field::Port { src } => payload(PayloadBase::Transport, if src { 0 } else { 2 }, 2),
            Field::IcmpType { .. } => payload(PayloadBase::Transport, 0, 1),
            Field::IcmpCode { .. } => payload(PayloadBase::Transport, 1, 1),
            Field::L4proto => Expr::MetaLoad {
                key: MetaKey::L4proto,
                dreg,
            },
        }
    }

    /// The largest value + 1, as bytes of the field's length (none past the top).
    fn max(self) -> Vec<u8> {
        vec![0xff; self.len() as usize]
    }
}

/// A value of one field: a single value or an inclusive range, as bytes in network order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Single(Vec<u8>),
    /// An address prefix (`10.0.0.0/8`), kept as such: single matches load only its bytes.
    Prefix(IpNet),
    Range(Vec<u8>, Vec<u8>),
}

fn proto_number(s: &str) -> Option<u8> {
    Some(match s {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "icmpv6" => 58,
        "sctp" => 132,
        "udplite" => 136,
        _ => return s.parse().ok(),
    })
}

fn parse_value(field: Field, s: &str) -> Result<Value, String> {
    let bad = || format!("`{s}` is not a value of {field:?}");
    match field {
        Field::Addr { v6, .. } => {
            if s.contains('/') {
                let n: IpNet = s.parse().map_err(|_| bad())?;
                if n.addr().is_ipv6() != v6 || n.trunc() != n {
                    return Err(bad());
                }
                if n.prefix_len() == n.max_prefix_len() {
                    return Ok(Value::Single(addr_bytes(n.addr())));
                }
                Ok(Value::Prefix(n))
            } else {
                let a: IpAddr = s.parse().map_err(|_| bad())?;
                if a.is_ipv6() != v6 {
                    return Err(bad());
                }
                Ok(Value::Single(addr_bytes(a)))
            }
        }
        Field::Port { .. } => {
            if let Some((a, b)) = s.split_once('-') {
                let a: u16 = a.parse().map_err(|_| bad())?;
                let b: u16 = b.parse().map_err(|_| bad())?;
                if a > b {
                    return Err(bad());
                }
                Ok(Value::Range(
                    a.to_be_bytes().to_vec(),
                    b.to_be_bytes().to_vec(),
                ))
            } else {
                let p: u16 = s.parse().map_err(|_| bad())?;
                Ok(Value::Single(p.to_be_bytes().to_vec()))
            }
        }
        Field::IcmpType { .. } | Field::IcmpCode { .. } => {
            let v: u8 = s.parse().map_err(|_| bad())?;
            Ok(Value::Single(vec![v]))
        }
        Field::L4proto => Ok(Value::Single(vec![proto_number(s).ok_or_else(bad)?])),
    }
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `bytes + 1` as a big-endian number of the same width; `None` on overflow.
fn plus_one(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    for b in out.iter_mut().rev() {
        if *b == 0xff {
            *b = 0;
        } else {
            *b += 1;
            return Some(out);
        }
    }
    None
}

/// The first and last value of a prefix.
fn prefix_bounds(n: &IpNet) -> (Vec<u8>, Vec<u8>) {
    (addr_bytes(n.network()), addr_bytes(n.broadcast()))
}

/// The register nft uses for a concatenation field starting `offset_words` 32-bit words after
/// `NFT_REG_1` (`netlink_put_register`: 16-byte aligned fields keep 128-bit numbers).
fn concat_register(offset_words: u32) -> u32 {
    if offset_words.is_multiple_of(4) {
        REG_1 + offset_words / 4
    } else {
        8 + offset_words // NFT_REG32_00 + index
    }
}

fn round4(n: u32) -> u32 {
    n.div_ceil(4) * 4
}

/// Rule compiler state: what the rule matched so far (nft's protocol context).
struct Ctx {
    exprs: Vec<Expr>,
    anon_sets: Vec<AnonSet>,
    nfproto: Option<u8>,
    l4proto: Option<u8>,
}

impl Ctx {
    fn need_nfproto(&mut self, proto: u8) {
        if self.nfproto.is_none() {
            self.exprs.push(Expr::MetaLoad {
                key: MetaKey::Nfproto,
                dreg: REG_1,
            });
            self.exprs.push(Expr::Cmp {
                op: CmpOp::Eq,
                sreg: REG_1,
                data: vec![proto],
            });
            self.nfproto = Some(proto);
        }
    }

    fn need_l4proto(&mut self, proto: u8) {
        if self.l4proto.is_none() {
            self.exprs.push(Expr::MetaLoad {
                key: MetaKey::L4proto,
                dreg: REG_1,
            });
            self.exprs.push(Expr::Cmp {
                op: CmpOp::Eq,
                sreg: REG_1,
                data: vec![proto],
            });
            self.l4proto = Some(proto);
        }
    }

    /// Dependencies of loading `field` (nft's payload dependencies in an inet table).
    fn deps(&mut self, field: Field) {
        match field {
            Field::Addr { v6, .. } => {
                self.need_nfproto(if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 })
            }
            Field::IcmpType { v6 } | Field::IcmpCode { v6 } => {
                if self.l4proto.is_none() {
                    self.need_nfproto(if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 });
                    self.need_l4proto(if v6 { IPPROTO_ICMPV6 } else { IPPROTO_ICMP });
                }
            }
            Field::Port { .. } | Field::L4proto => {}
        }
    }

    /// `field [!=] value`.
    fn match_value(&mut self, field: Field, negate: bool, value: Value) {
        self.deps(field);
        let op = if negate { CmpOp::Neq } else { CmpOp::Eq };
        match value {
            Value::Single(data) => {
                self.exprs.push(field.load(REG_1));
                self.exprs.push(Expr::Cmp {
                    op,
                    sreg: REG_1,
                    data,
                });
            }
            Value::Prefix(n) => {
                let plen = u32::from(n.prefix_len());
                let addr = addr_bytes(n.network());
                if plen > 0 && plen.is_multiple_of(8) {
                    // Only the prefix's bytes.
                    let mut load = field.load(REG_1);
                    if let Expr::Payload { len, .. } = &mut load {
                        *len = plen / 8;
                    }
                    self.exprs.push(load);
                    self.exprs.push(Expr::Cmp {
                        op,
                        sreg: REG_1,
                        data: addr[..(plen / 8) as usize].to_vec(),
                    });
                } else {
                    self.exprs.push(field.load(REG_1));
                    let mask = prefix_mask(addr.len(), plen);
                    self.exprs.push(Expr::Bitwise {
                        sreg: REG_1,
                        dreg: REG_1,
                        xor: vec![0; mask.len()],
                        mask,
                    });
                    self.exprs.push(Expr::Cmp {
                        op,
                        sreg: REG_1,
                        data: addr,
                    });
                }
            }
            Value::Range(a, b) => {
                self.exprs.push(field.load(REG_1));
                if negate {
                    self.exprs.push(Expr::Range {
                        op: CmpOp::Neq,
                        sreg: REG_1,
                        from: a,
                        to: b,
                    });
                } else {
                    self.exprs.push(Expr::Cmp {
                        op: CmpOp::Gte,
                        sreg: REG_1,
                        data: a,
                    });
                    self.exprs.push(Expr::Cmp {
                        op: CmpOp::Lte,
                        sreg: REG_1,
                        data: b,
                    });
                }
            }
        }
    }

    /// `fields [!=] { items }` or `fields [!=] @set`: loads each field into its register, then
    /// one lookup.
    fn match_set(&mut self, fields: &[Field], negate: bool, set: SetRef) {
        for f in fields {
            self.deps(*f);
        }
        let mut words = 0;
        for f in fields {
            self.exprs.push(f.load(concat_register(words)));
            words += f.len().div_ceil(4);
        }
        self.exprs.push(Expr::Lookup {
            sreg: REG_1,
            set,
            dreg: None,
            invert: negate,
        });
    }

    fn anon_set(&mut self, fields: &[Field], items: &[String]) -> Result<SetRef, String> {
        let mut values: Vec<Vec<Value>> = Vec::with_capacity(items.len());
        for item in items {
            let parts: Vec<&str> = item.split(" . ").map(str::trim).collect();
            if parts.len() != fields.len() {
                return Err(format!(
                    "set element `{item}` has {} fields, the match {}",
                    parts.len(),
                    fields.len()
                ));
            }
            let mut v = Vec::with_capacity(parts.len());
            for (f, p) in fields.iter().zip(parts) {
                v.push(parse_value(*f, p)?);
            }
            values.push(v);
        }
        let interval = values
            .iter()
            .flatten()
            .any(|v| !matches!(v, Value::Single(_)));
        let key_type = fields.iter().fold(0, |t, f| (t << TYPE_BITS) | f.type_id());
        let (key_len, concat) = if fields.len() == 1 {
            (fields[0].len(), Vec::new())
        } else {
            (
                fields.iter().map(|f| round4(f.len())).sum(),
                fields.iter().map(|f| f.len()).collect(),
            )
        };
        let mut elements = Vec::new();
        if interval {
            if fields.len() != 1 {
                return Err("ranges in a concatenated set".into());
            }
            let mut ranges: Vec<(Vec<u8>, Vec<u8>)> = values
                .into_iter()
                .flatten()
                .map(|v| match v {
                    Value::Single(b) => (b.clone(), b),
                    Value::Prefix(n) => prefix_bounds(&n),
                    Value::Range(a, b) => (a, b),
                })
                .collect();
            ranges.sort();
            for w in ranges.windows(2) {
                if w[1].0 <= w[0].1 {
                    return Err("overlapping intervals in a set".into());
                }
            }
            let zero = vec![0u8; fields[0].len() as usize];
            if ranges.first().is_some_and(|r| r.0 != zero) {
                elements.push(AnonElement {
                    key: zero,
                    interval_end: true,
                });
            }
            for (a, b) in ranges {
                elements.push(AnonElement {
                    key: a,
                    interval_end: false,
                });
                if b != fields[0].max()
                    && let Some(end) = plus_one(&b)
                {
                    elements.push(AnonElement {
                        key: end,
                        interval_end: true,
                    });
                }
            }
        } else {
            for v in values {
                let mut key = Vec::with_capacity(key_len as usize);
                for (f, x) in fields.iter().zip(v) {
                    let Value::Single(b) = x else {
                        return Err("a range in a plain set".into());
                    };
                    key.extend_from_slice(&b);
                    if fields.len() > 1 {
                        key.resize(key.len() + (round4(f.len()) - f.len()) as usize, 0);
                    }
                }
                elements.push(AnonElement {
                    key,
                    interval_end: false,
                });
            }
        }
        self.anon_sets.push(AnonSet {
            key_type,
            key_len,
            concat,
            interval,
            elements,
        });
        Ok(SetRef::Anonymous(self.anon_sets.len() - 1))
    }
}

fn prefix_mask(len: usize, plen: u32) -> Vec<u8> {
    let mut mask = vec![0u8; len];
    for (i, b) in mask.iter_mut().enumerate() {
        let bits = plen.saturating_sub(8 * i as u32).min(8);
        *b = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
    }
    mask
}

fn mark_data(s: &str) -> Result<Vec<u8>, String> {
    let hex = s
        .strip_prefix("0x")
        .ok_or_else(|| format!("`{s}` is not a hex mark"))?;
    let v = u32::from_str_radix(hex, 16).map_err(|_| format!("`{s}` is not a hex mark"))?;
    // Marks are host-order registers.
    Ok(v.to_ne_bytes().to_vec())
}

fn ifname_data(name: &str) -> Result<Vec<u8>, String> {
    if let Some(prefix) = name.strip_suffix('*') {
        if prefix.is_empty() || prefix.len() >= IFNAMSIZ {
            return Err(format!("interface wildcard `{name}`"));
        }
        Ok(prefix.as_bytes().to_vec())
    } else {
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains('\0') {
            return Err(format!("interface name `{name}`"));
        }
        let mut v = name.as_bytes().to_vec();
        v.resize(IFNAMSIZ, 0);
        Ok(v)
    }
}

/// Compiles one rule as [`crate::compile`] renders it (the text after `add rule inet T C`).
pub fn rule_code(text: &str) -> Result<RuleCode, RuleCodeError> {
    compile_tokens(text).map_err(|reason| RuleCodeError {
        rule: text.to_string(),
        reason,
    })
}

fn word(t: Option<&Token>) -> Option<&str> {
    match t {
        Some(Token::Word(w)) => Some(w),
        _ => None,
    }
}

fn compile_tokens(text: &str) -> Result<RuleCode, String> {
    let tokens = tokenize(text)?;
    let mut ctx = Ctx {
        exprs: Vec::new(),
        anon_sets: Vec::new(),
        nfproto: None,
        l4proto: None,
    };
    let mut i = 0;
    let mut verdict_seen = false;
    while i < tokens.len() {
        if verdict_seen {
            return Err(format!("`{:?}` after the verdict", tokens[i]));
        }
        let Some(w) = word(tokens.get(i)) else {
            return Err(format!("unexpected `{:?}`", tokens[i]));
        };
        match w {
            "accept" | "drop" | "return" => {
                ctx.exprs.push(Expr::Verdict(match w {
                    "accept" => VerdictCode::Accept,
                    "drop" => VerdictCode::Drop,
                    _ => VerdictCode::Return,
                }));
                verdict_seen = true;
                i += 1;
            }
            "jump" | "goto" => {
                let chain = word(tokens.get(i + 1)).ok_or("a chain name after jump/goto")?;
                ctx.exprs.push(Expr::Verdict(if w == "jump" {
                    VerdictCode::Jump(chain.to_string())
                } else {
                    VerdictCode::Goto(chain.to_string())
                }));
                verdict_seen = true;
                i += 2;
            }
            "notrack" => {
                ctx.exprs.push(Expr::Notrack);
                i += 1;
            }
            "log" => {
                // log prefix "<p>" level info
                let (
                    Some(Token::Word(p)),
                    Some(Token::Quoted(prefix)),
                    Some("level"),
                    Some("info"),
                ) = (
                    tokens.get(i + 1),
                    tokens.get(i + 2),
                    word(tokens.get(i + 3)),
                    word(tokens.get(i + 4)),
                )
                else {
                    return Err("log other than `log prefix \"…\" level info`".into());
                };
                if p != "prefix" {
                    return Err("log without prefix".into());
                }
                ctx.exprs.push(Expr::Log {
                    prefix: prefix.clone(),
                    level: 6,
                });
                i += 5;
            }
            "ct" => {
                if word(tokens.get(i + 1)) != Some("state") {
                    return Err("ct other than `ct state`".into());
                }
                let states = word(tokens.get(i + 2)).ok_or("ct state values")?;
                let mut mask = 0u32;
                for s in states.split(',') {
                    mask |= match s {
                        "invalid" => CT_INVALID,
                        "established" => CT_ESTABLISHED,
                        "related" => CT_RELATED,
                        "new" => CT_NEW,
                        _ => return Err(format!("ct state `{s}`")),
                    };
                }
                ctx.exprs.push(Expr::CtState { dreg: REG_1 });
                ctx.exprs.push(Expr::Bitwise {
                    sreg: REG_1,
                    dreg: REG_1,
                    mask: mask.to_ne_bytes().to_vec(),
                    xor: vec![0; 4],
                });
                ctx.exprs.push(Expr::Cmp {
                    op: CmpOp::Neq,
                    sreg: REG_1,
                    data: vec![0; 4],
                });
                i += 3;
            }
            "iifname" | "oifname" => {
                let key = if w == "iifname" {
                    MetaKey::Iifname
                } else {
                    MetaKey::Oifname
                };
                match tokens.get(i + 1) {
                    Some(Token::Quoted(name)) => {
                        ctx.exprs.push(Expr::MetaLoad { key, dreg: REG_1 });
                        ctx.exprs.push(Expr::Cmp {
                            op: CmpOp::Eq,
                            sreg: REG_1,
                            data: ifname_data(name)?,
                        });
                        i += 2;
                    }
                    Some(Token::Word(v)) if v == "vmap" => {
                        let map = word(tokens.get(i + 2))
                            .and_then(|m| m.strip_prefix('@'))
                            .ok_or("vmap without @map")?;
                        ctx.exprs.push(Expr::MetaLoad { key, dreg: REG_1 });
                        ctx.exprs.push(Expr::Lookup {
                            sreg: REG_1,
                            set: SetRef::Named(map.to_string()),
                            dreg: Some(0),
                            invert: false,
                        });
                        verdict_seen = true;
                        i += 3;
                    }
                    _ => return Err(format!("{w} without a quoted name")),
                }
            }
            "fib" => {
                let expect = ["saddr", ".", "mark", ".", "iif", "oif"];
                for (k, e) in expect.iter().enumerate() {
                    if word(tokens.get(i + 1 + k)) != Some(e) {
                        return Err("fib other than `fib saddr . mark . iif oif`".into());
                    }
                }
                let v = word(tokens.get(i + 7)).ok_or("fib without a value")?;
                let v: u32 = v.parse().map_err(|_| format!("fib value `{v}`"))?;
                ctx.exprs.push(Expr::FibSaddrMarkIifOif { dreg: REG_1 });
                ctx.exprs.push(Expr::Cmp {
                    op: CmpOp::Eq,
                    sreg: REG_1,
                    data: v.to_ne_bytes().to_vec(),
                });
                i += 8;
            }
            "meta" => {
                let key = word(tokens.get(i + 1)).ok_or("meta without a key")?;
                match key {
                    "mark" => i = meta_mark(&tokens, i, &mut ctx)?,
                    "nfproto" => {
                        let v = word(tokens.get(i + 2)).ok_or("meta nfproto value")?;
                        let p = match v {
                            "ipv4" => NFPROTO_IPV4,
                            "ipv6" => NFPROTO_IPV6,
                            _ => return Err(format!("meta nfproto `{v}`")),
                        };
                        ctx.exprs.push(Expr::MetaLoad {
                            key: MetaKey::Nfproto,
                            dreg: REG_1,
                        });
                        ctx.exprs.push(Expr::Cmp {
                            op: CmpOp::Eq,
                            sreg: REG_1,
                            data: vec![p],
                        });
                        ctx.nfproto = Some(p);
                        i += 3;
                    }
                    "l4proto" => i = header_match(&tokens, i, &mut ctx)?,
                    _ => return Err(format!("meta `{key}`")),
                }
            }
            "ip" | "ip6" | "th" | "icmp" | "icmpv6" => i = header_match(&tokens, i, &mut ctx)?,
            _ => return Err(format!("unknown statement `{w}`")),
        }
    }
    merge_transport_payloads(&mut ctx.exprs);
    Ok(RuleCode {
        exprs: ctx.exprs,
        anon_sets: ctx.anon_sets,
    })
}

/// `meta mark set meta mark & M`, `meta mark set meta mark | B`, `meta mark & B == 0`,
/// `meta mark & B != 0`. Returns the index after the statement.
fn meta_mark(tokens: &[Token], i: usize, ctx: &mut Ctx) -> Result<usize, String> {
    let w = |k: usize| word(tokens.get(i + k));
    let load = Expr::MetaLoad {
        key: MetaKey::Mark,
        dreg: REG_1,
    };
    if w(2) == Some("set") {
        if w(3) != Some("meta") || w(4) != Some("mark") {
            return Err("meta mark set other than from meta mark".into());
        }
        let value = mark_data(w(6).ok_or("meta mark set value")?)?;
        let (mask, xor) = match w(5) {
            Some("&") => (value, vec![0; 4]),
            Some("|") => {
                let bits = u32::from_ne_bytes([value[0], value[1], value[2], value[3]]);
                ((!bits).to_ne_bytes().to_vec(), value)
            }
            _ => return Err("meta mark set with an operator other than & or |".into()),
        };
        ctx.exprs.push(load);
        ctx.exprs.push(Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            mask,
            xor,
        });
        ctx.exprs.push(Expr::MetaSet {
            key: MetaKey::Mark,
            sreg: REG_1,
        });
        return Ok(i + 7);
    }
    if w(2) == Some("&") {
        let mask = mark_data(w(3).ok_or("meta mark & value")?)?;
        let op = match w(4) {
            Some("==") => CmpOp::Eq,
            Some("!=") => CmpOp::Neq,
            _ => return Err("meta mark & M other than == V / != V".into()),
        };
        let data = match w(5) {
            Some("0") => vec![0; 4],
            Some(v) => mark_data(v)?,
            None => return Err("meta mark & M compared with nothing".into()),
        };
        ctx.exprs.push(load);
        ctx.exprs.push(Expr::Bitwise {
            sreg: REG_1,
            dreg: REG_1,
            mask,
            xor: vec![0; 4],
        });
        ctx.exprs.push(Expr::Cmp {
            op,
            sreg: REG_1,
            data,
        });
        return Ok(i + 6);
    }
    Err("meta mark statement".into())
}

/// Reads one selector (`ip saddr`, `th dport`, `icmp type`, `meta l4proto`) at `i`.
fn selector(tokens: &[Token], i: usize) -> Result<(Field, usize), String> {
    let w = |k: usize| word(tokens.get(i + k));
    let proto = w(0).ok_or("selector")?;
    let what = w(1).ok_or_else(|| format!("`{proto}` without a field"))?;
    let field = match (proto, what) {
        ("ip", "saddr") => Field::Addr {
            v6: false,
            src: true,
        },
        ("ip", "daddr") => Field::Addr {
            v6: false,
            src: false,
        },
        ("ip6", "saddr") => Field::Addr {
            v6: true,
            src: true,
        },
        ("ip6", "daddr") => Field::Addr {
            v6: true,
            src: false,
        },
        ("th", "sport") => Field::Port { src: true },
        ("th", "dport") => Field::Port { src: false },
        ("icmp", "type") => Field::IcmpType { v6: false },
        ("icmp", "code") => Field::IcmpCode { v6: false },
        ("icmpv6", "type") => Field::IcmpType { v6: true },
        ("icmpv6", "code") => Field::IcmpCode { v6: true },
        ("meta", "l4proto") => Field::L4proto,
        _ => return Err(format!("`{proto} {what}`")),
    };
    Ok((field, i + 2))
}

/// `sel [. sel]* [!=] (value | { items } | @set)`.
fn header_match(tokens: &[Token], start: usize, ctx: &mut Ctx) -> Result<usize, String> {
    let (first, mut i) = selector(tokens, start)?;
    let mut fields = vec![first];
    while word(tokens.get(i)) == Some(".") {
        let (f, next) = selector(tokens, i + 1)?;
        fields.push(f);
        i = next;
    }
    let negate = word(tokens.get(i)) == Some("!=");
    if negate {
        i += 1;
    }
    match tokens.get(i) {
        Some(Token::Word(w)) if w.starts_with('@') => {
            ctx.match_set(&fields, negate, SetRef::Named(w[1..].to_string()));
        }
        Some(Token::Group(items)) => {
            let set = ctx.anon_set(&fields, items)?;
            ctx.match_set(&fields, negate, set);
        }
        Some(Token::Word(w)) if fields.len() == 1 => {
            let field = fields[0];
            let value = parse_value(field, w)?;
            ctx.match_value(field, negate, value.clone());
            if field == Field::L4proto
                && !negate
                && let Value::Single(v) = value
            {
                ctx.l4proto = v.first().copied();
            }
        }
        other => return Err(format!("match value `{other:?}`")),
    }
    Ok(i + 1)
}

/// nft merges adjacent equality matches on contiguous transport-header bytes into one load
/// and one comparison (its payload merge; network-header fields are not merged).
fn merge_transport_payloads(exprs: &mut Vec<Expr>) {
    let mut i = 0;
    while i + 3 < exprs.len() {
        let merged = match (&exprs[i], &exprs[i + 1], &exprs[i + 2], &exprs[i + 3]) {
            (
                Expr::Payload {
                    base: PayloadBase::Transport,
                    offset: o1,
                    len: l1,
                    dreg: REG_1,
                },
                Expr::Cmp {
                    op: CmpOp::Eq,
                    sreg: REG_1,
                    data: d1,
                },
                Expr::Payload {
                    base: PayloadBase::Transport,
                    offset: o2,
                    len: l2,
                    dreg: REG_1,
                },
                Expr::Cmp {
                    op: CmpOp::Eq,
                    sreg: REG_1,
                    data: d2,
                },
            ) if o1 + l1 == *o2 && l1 + l2 <= 16 => {
                let mut data = d1.clone();
                data.extend_from_slice(d2);
                Some((
                    Expr::Payload {
                        base: PayloadBase::Transport,
                        offset: *o1,
                        len: l1 + l2,
                        dreg: REG_1,
                    },
                    Expr::Cmp {
                        op: CmpOp::Eq,
                        sreg: REG_1,
                        data,
                    },
                ))
            }
            _ => None,
        };
        match merged {
            Some((load, cmp)) => {
                exprs.splice(i..i + 4, [load, cmp]);
            }
            None => i += 1,
        }
    }
}

/// An anonymous set and its elements as `nft --debug=netlink` prints them before the rule
/// that uses it (`__set%d <table> <flags> size <n>`, then the elements), for tests.
pub fn anon_set_debug(set: &AnonSet, table: &str) -> String {
    let flags = if set.interval { 7 } else { 3 };
    let mut out = format!(
        "__set%d {table} {flags} size {}\n__set%d {table} 0\n",
        set.elements.len()
    );
    for e in &set.elements {
        out.push('\t');
        out.push_str("element ");
        if set.concat.is_empty() {
            push_words(&mut out, &e.key);
        } else {
            let mut at = 0;
            for f in &set.concat {
                let n = round4(*f) as usize;
                push_words(&mut out, &e.key[at..(at + n).min(e.key.len())]);
                at += n;
            }
        }
        out.push_str(&format!(" : {} [end]", u32::from(e.interval_end)));
    }
    out
}

fn push_words(out: &mut String, data: &[u8]) {
    for chunk in data.chunks(4) {
        let mut w = [0u8; 4];
        w[..chunk.len()].copy_from_slice(chunk);
        out.push_str(&format!("{:08x} ", u32::from_le_bytes(w)));
    }
}
