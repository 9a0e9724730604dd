//! Rendering of one policy/profile rule (`proto.Rule`) as nft rules, following
//! `felix/rules/policy.go`:
//!
//! * `FilterRuleToIPVersion`: a rule is rendered per address family; a rule whose `ipVersion`
//!   is the other family, or whose nets (or negated nets) are all of the other family, or
//!   whose negated nets contain the family's catch-all CIDR, is dropped for that family. A
//!   rule that matches no address at all (no nets, IP sets, named ports or ICMP) is rendered
//!   once for both families.
//! * ORed lists (nets, ports) become anonymous sets `{ a, b }`; negated lists `!= { … }` (a
//!   packet matches when it is in none of them).
//! * Numeric ports and named-port sets of one side are ORed. nft cannot OR different
//!   expressions within one rule, so when a side has more than one alternative they are
//!   evaluated first into a scratch mark bit, like Felix's `matchBlockBuilder`.
//! * Several selector sets of one side are ANDed: one `ip saddr @set` match each.
//! * Actions as `CombineMatchAndActionsForProtoRule`: Allow sets the accept mark and returns,
//!   Pass sets the pass mark and returns, Deny drops, Log logs and continues.

use std::fmt::Write as _;

use calico_dataplane_model::{IpSetId, PortRange, Rule, RuleAction, RuleSide};
use ipnet::IpNet;

use crate::NftError;
use crate::marks::{ACCEPT, PASS, SCRATCH0, SCRATCH1, clear_mark, mark_is_set, set_mark};
use crate::names::{self, SetType};

/// What rule rendering needs to know about the rest of the model.
pub(crate) struct RuleEnv<'a> {
    /// Type of each IP set of the model (decides its nft set's name).
    pub set_types: &'a crate::ruleset::SharedMap<IpSetId, SetType>,
    /// Felix `LogPrefix`.
    pub log_prefix: &'a str,
    /// Felix `IPv6Support`: without it, rules that match addresses are rendered for IPv4
    /// only.
    pub ipv6: bool,
    /// Families each IP set has members of (`compile::FAM4` / `FAM6`).
    pub set_families: &'a crate::ruleset::SharedMap<IpSetId, u8>,
}

impl RuleEnv<'_> {
    /// Whether rule `r` can match a packet of family `fam` at all: not when an IP set it
    /// requires (ANDed selector sets; a side's named-port sets when they are its only port
    /// alternatives) has no member of that family. Then its rendering for `fam` is left out,
    /// as it could never match: on an IPv4-only cluster that halves selector rules. An IP
    /// set the model lacks counts as possible, so rendering reports it.
    fn can_match(&self, r: &Rule, fam: u8) -> bool {
        let bit = if fam == 4 {
            crate::compile::FAM4
        } else {
            crate::compile::FAM6
        };
        let has = |id: &IpSetId| self.set_families.get(id).is_none_or(|f| f & bit != 0);
        [&r.src, &r.dst].into_iter().all(|side| {
            side.ip_sets.iter().all(has)
                && (!side.ports.is_empty()
                    || side.named_port_ip_sets.is_empty()
                    || side.named_port_ip_sets.iter().any(has))
        })
    }
}

/// nft's name for an IP protocol number, or the number.
pub(crate) fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        136 => "udplite".into(),
        n => n.to_string(),
    }
}

/// Renders all rules of one policy or profile direction. `owner` names it in errors.
pub(crate) fn render_rules(
    rules: &[Rule],
    env: &RuleEnv<'_>,
    owner: &str,
) -> Result<Vec<String>, NftError> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        render_rule(r, env, &format!("{owner} rule {i}"), &mut out)?;
    }
    Ok(out)
}

/// Whether the rule matches on something that only exists in one address family.
fn family_implied(r: &Rule) -> bool {
    let side = |s: &RuleSide| {
        !s.nets.is_empty()
            || !s.not_nets.is_empty()
            || !s.ip_sets.is_empty()
            || !s.not_ip_sets.is_empty()
            || !s.named_port_ip_sets.is_empty()
            || !s.not_named_port_ip_sets.is_empty()
    };
    r.icmp.is_some() || r.not_icmp.is_some() || side(&r.src) || side(&r.dst)
}

pub(crate) fn render_rule(
    r: &Rule,
    env: &RuleEnv<'_>,
    owner: &str,
    out: &mut Vec<String>,
) -> Result<(), NftError> {
    if let Some(v) = r.ip_version
        && v != 4
        && v != 6
    {
        return Err(NftError::BadModel(format!("{owner}: ipVersion {v}")));
    }
    if !family_implied(r) {
        return render_for_family(r, None, env, owner, out);
    }
    for fam in [4u8, 6] {
        if r.ip_version.is_some_and(|v| v != fam)
            || (fam == 6 && !env.ipv6)
            || !env.can_match(r, fam)
        {
            continue;
        }
        render_for_family(r, Some(fam), env, owner, out)?;
    }
    Ok(())
}

/// Nets of one family, masked, deduplicated and without nets covered by another one (an OR
/// of CIDRs means the same without them, and nft rejects overlapping intervals in sets).
pub(crate) fn normalize_nets(nets: impl Iterator<Item = IpNet>) -> Vec<IpNet> {
    let mut v: Vec<IpNet> = nets.map(|n| n.trunc()).collect();
    // Widest first within equal network addresses so covered ones follow their cover.
    v.sort_by(|a, b| {
        a.network()
            .cmp(&b.network())
            .then(a.prefix_len().cmp(&b.prefix_len()))
    });
    v.dedup();
    let mut out: Vec<IpNet> = Vec::with_capacity(v.len());
    for n in v {
        if out.last().is_some_and(|last| last.contains(&n)) {
            continue;
        }
        out.push(n);
    }
    out
}

/// `10.0.0.1` for a host route, `10.0.0.0/8` otherwise.
pub(crate) fn net_text(n: &IpNet) -> String {
    if n.prefix_len() == n.max_prefix_len() {
        n.addr().to_string()
    } else {
        n.to_string()
    }
}

fn is_catch_all(n: &IpNet) -> bool {
    n.prefix_len() == 0
}

fn of_family(n: &IpNet, fam: u8) -> bool {
    matches!((n, fam), (IpNet::V4(_), 4) | (IpNet::V6(_), 6))
}

/// `x` or `{ x, y }`; `items` must not be empty.
fn one_or_set(items: &[String]) -> String {
    if items.len() == 1 {
        items[0].clone()
    } else {
        format!("{{ {} }}", items.join(", "))
    }
}

/// Port ranges sorted and merged where they overlap or touch (nft rejects overlapping
/// intervals in an anonymous set; an ORed list means the same merged).
fn port_items(ports: &[PortRange]) -> Vec<String> {
    let mut v: Vec<(u32, u32)> = ports
        .iter()
        .map(|p| {
            (
                u32::from(p.first.min(p.last)),
                u32::from(p.first.max(p.last)),
            )
        })
        .collect();
    v.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match merged.last_mut() {
            Some(last) if a <= last.1 + 1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
        .into_iter()
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Dir {
    Src,
    Dst,
}

impl Dir {
    fn addr(self) -> &'static str {
        match self {
            Dir::Src => "saddr",
            Dir::Dst => "daddr",
        }
    }
    fn port(self) -> &'static str {
        match self {
            Dir::Src => "sport",
            Dir::Dst => "dport",
        }
    }
}

fn set_name(
    env: &RuleEnv<'_>,
    id: &IpSetId,
    named_port: bool,
    fam: u8,
    owner: &str,
) -> Result<String, NftError> {
    let ty = env
        .set_types
        .get(id)
        .ok_or_else(|| NftError::MissingIpSet {
            owner: owner.to_string(),
            id: id.clone(),
        })?;
    if named_port != (*ty == SetType::AddrPort) {
        return Err(NftError::BadModel(format!(
            "{owner}: IP set {id} is used as a {} set but holds {}",
            if named_port { "named-port" } else { "selector" },
            if *ty == SetType::AddrPort {
                "address/port members"
            } else {
                "addresses"
            }
        )));
    }
    Ok(names::ip_set(id, *ty, fam))
}

/// Renders one side's matches into `m`; alternatives that need a mark block go into `pre`.
#[allow(clippy::too_many_arguments)]
fn render_side(
    side: &RuleSide,
    dir: Dir,
    fam: Option<u8>,
    env: &RuleEnv<'_>,
    owner: &str,
    block_bit: u32,
    m: &mut Vec<String>,
    pre: &mut Vec<String>,
) -> Result<(), NftError> {
    let a = dir.addr();
    let p = dir.port();
    if let Some(fam) = fam {
        let ip = if fam == 4 { "ip" } else { "ip6" };
        let nets: Vec<String> =
            normalize_nets(side.nets.iter().copied().filter(|n| of_family(n, fam)))
                .iter()
                .map(net_text)
                .collect();
        if !nets.is_empty() {
            m.push(format!("{ip} {a} {}", one_or_set(&nets)));
        }
        let not_nets: Vec<String> =
            normalize_nets(side.not_nets.iter().copied().filter(|n| of_family(n, fam)))
                .iter()
                .map(net_text)
                .collect();
        if !not_nets.is_empty() {
            m.push(format!("{ip} {a} != {}", one_or_set(&not_nets)));
        }
        for id in &side.ip_sets {
            m.push(format!(
                "{ip} {a} @{}",
                set_name(env, id, false, fam, owner)?
            ));
        }
        for id in &side.not_ip_sets {
            m.push(format!(
                "{ip} {a} != @{}",
                set_name(env, id, false, fam, owner)?
            ));
        }
        // Numeric ports OR named-port sets.
        let mut alts: Vec<String> = Vec::new();
        if !side.ports.is_empty() {
            alts.push(format!("th {p} {}", one_or_set(&port_items(&side.ports))));
        }
        for id in &side.named_port_ip_sets {
            alts.push(format!(
                "{ip} {a} . meta l4proto . th {p} @{}",
                set_name(env, id, true, fam, owner)?
            ));
        }
        push_alternatives(alts, block_bit, m, pre);
        if !side.not_ports.is_empty() {
            m.push(format!(
                "th {p} != {}",
                one_or_set(&port_items(&side.not_ports))
            ));
        }
        for id in &side.not_named_port_ip_sets {
            m.push(format!(
                "{ip} {a} . meta l4proto . th {p} != @{}",
                set_name(env, id, true, fam, owner)?
            ));
        }
    } else {
        // Family-neutral rule: only ports can be present on this side.
        if !side.ports.is_empty() {
            m.push(format!("th {p} {}", one_or_set(&port_items(&side.ports))));
        }
        if !side.not_ports.is_empty() {
            m.push(format!(
                "th {p} != {}",
                one_or_set(&port_items(&side.not_ports))
            ));
        }
    }
    Ok(())
}

/// One alternative is matched inline; several set `block_bit` in rules of their own first
/// (after clearing both scratch bits once per rule), and the rule checks the bit.
fn push_alternatives(
    alts: Vec<String>,
    block_bit: u32,
    m: &mut Vec<String>,
    pre: &mut Vec<String>,
) {
    match alts.len() {
        0 => {}
        1 => m.extend(alts),
        _ => {
            if pre.is_empty() {
                pre.push(clear_mark(SCRATCH0 | SCRATCH1));
            }
            for alt in alts {
                pre.push(format!("{alt} {}", set_mark(block_bit)));
            }
            m.push(mark_is_set(block_bit));
        }
    }
}

fn render_for_family(
    r: &Rule,
    fam: Option<u8>,
    env: &RuleEnv<'_>,
    owner: &str,
    out: &mut Vec<String>,
) -> Result<(), NftError> {
    if let Some(f) = fam {
        // FilterRuleToIPVersion (felix/rules/policy.go).
        for side in [&r.src, &r.dst] {
            if !side.nets.is_empty() && !side.nets.iter().any(|n| of_family(n, f)) {
                return Ok(());
            }
            if !side.not_nets.is_empty() {
                let mine: Vec<&IpNet> = side.not_nets.iter().filter(|n| of_family(n, f)).collect();
                if mine.is_empty() || mine.iter().any(|n| is_catch_all(n)) {
                    return Ok(());
                }
            }
        }
    }
    let mut m: Vec<String> = Vec::new();
    let mut pre: Vec<String> = Vec::new();
    if fam.is_none()
        && let Some(v) = r.ip_version
    {
        m.push(format!("meta nfproto ipv{v}"));
    }
    let has_ports = !r.src.ports.is_empty()
        || !r.src.not_ports.is_empty()
        || !r.dst.ports.is_empty()
        || !r.dst.not_ports.is_empty();
    match r.protocol {
        Some(p) => m.push(format!("meta l4proto {}", proto_name(p))),
        // Calico only accepts ports with a port protocol; keep `th` meaningful anyway.
        None if has_ports => m.push("meta l4proto { tcp, udp, sctp, udplite }".into()),
        None => {}
    }
    if let Some(p) = r.not_protocol {
        m.push(format!("meta l4proto != {}", proto_name(p)));
    }
    let icmp_kw = if fam == Some(6) { "icmpv6" } else { "icmp" };
    if let Some(icmp) = r.icmp {
        match icmp.code {
            Some(c) => m.push(format!("{icmp_kw} type {} {icmp_kw} code {c}", icmp.type_)),
            None => m.push(format!("{icmp_kw} type {}", icmp.type_)),
        }
    }
    if let Some(icmp) = r.not_icmp {
        // Calico's notICMP {type, code} excludes packets with that type AND code; a
        // concatenation keeps that meaning (two separate != matches would exclude either).
        match icmp.code {
            Some(c) => m.push(format!(
                "{icmp_kw} type . {icmp_kw} code != {{ {} . {c} }}",
                icmp.type_
            )),
            None => m.push(format!("{icmp_kw} type != {}", icmp.type_)),
        }
    }
    render_side(
        &r.src,
        Dir::Src,
        fam,
        env,
        owner,
        SCRATCH0,
        &mut m,
        &mut pre,
    )?;
    render_side(
        &r.dst,
        Dir::Dst,
        fam,
        env,
        owner,
        SCRATCH1,
        &mut m,
        &mut pre,
    )?;
    let action = match r.action {
        RuleAction::Allow => format!("{} return", set_mark(ACCEPT)),
        RuleAction::Pass => format!("{} return", set_mark(PASS)),
        RuleAction::Deny => "drop".to_string(),
        RuleAction::Log => format!("log prefix \"{}: \" level info", env.log_prefix),
    };
    out.extend(pre);
    let mut rule = String::new();
    for part in &m {
        let _ = write!(rule, "{part} ");
    }
    rule.push_str(&action);
    out.push(rule);
    Ok(())
}

#[cfg(test)]
mod tests;
