//! Matching one parsed rule against one packet.
//!
//! A rule is the v1 form Felix receives, as `calico-policy-rules` produces it
//! (`felix/calc/rule_scanner.go` `ruleToParsedRule`, `felix/calc/rule_convert.go`), and matches the way `felix/rules/policy.go`
//! (`ProtoRuleToIptablesRules`, `CalculateRuleMatch`) renders it: every present criterion must
//! hold (AND); the entries of one list (nets, ports) are ORed; numeric ports and named ports of
//! one list are ORed together; negated lists hold when *no* entry matches.
//!
//! Selectors are matched the way the dataplane matches them: through IP sets. A selector set
//! holds the addresses of every endpoint and network set (cluster-wide) whose labels match the
//! selector; the packet's address matches if it lies in one of them. So a peer is identified by
//! its address only, exactly like the kernel sees it, and network-set labels make external
//! addresses selectable.

use std::net::IpAddr;

use calico_policy_rules::{IcmpMatch, ParsedRule, ParsedSide, PortRange};
use calico_selector::Selector;
use ipnet::IpNet;

use crate::build::Member;
use crate::model::Packet;

/// Whether the packet is an ICMP packet of its own family with this type (and code).
/// `CalculateRuleMatch` renders `icmp` type matches for IPv4 and `icmpv6` for IPv6; like the
/// kernel's icmp match, a packet of another protocol never satisfies it (negated or not).
fn icmp_type_matches(icmp: &IcmpMatch, pkt: &Packet) -> bool {
    pkt.icmp_type == Some(icmp.type_) && icmp.code.is_none_or(|c| pkt.icmp_code == Some(c))
}

/// The packet's address and port on one side, with that side's CIDR lists already filtered
/// to the packet's family.
struct Side {
    ip: IpAddr,
    port: Option<u16>,
    nets: Vec<IpNet>,
    not_nets: Vec<IpNet>,
}

/// Calico `FilterRuleToIPVersion` / `filterNets` (`felix/rules/policy.go`) for one net list:
/// `None` when the whole rule is dropped for this IP version (a non-empty list with no entry of
/// the packet's family, or a negated catch-all CIDR), else the entries of the packet's family.
fn filter_nets(nets: &[IpNet], ip_version: u8, negated: bool) -> Option<Vec<IpNet>> {
    if nets.is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    for n in nets {
        let v = if matches!(n, IpNet::V4(_)) { 4 } else { 6 };
        if v != ip_version {
            continue;
        }
        if negated && n.prefix_len() == 0 {
            // "Ignoring rule with negated catch-all CIDR to prevent iptables logical
            // contradiction": the rule is dropped.
            return None;
        }
        out.push(*n);
    }
    if out.is_empty() { None } else { Some(out) }
}

fn in_ranges(port: Option<u16>, ranges: &[PortRange]) -> bool {
    port.is_some_and(|p| ranges.iter().any(|r| r.first <= p && p <= r.last))
}

/// Membership of `ip` in the IP set of `selector` (`felix/labelindex`: every endpoint's and
/// network set's addresses whose labels match).
pub(crate) fn in_selector_set(members: &[Member], selector: &Selector, ip: IpAddr) -> bool {
    members
        .iter()
        .any(|m| m.contains(ip) && selector.evaluate(&m.labels))
}

/// Membership of `(ip, protocol, port)` in the named-port IP set of `(selector, name)`
/// (`rule_scanner.go` `namedPortsToIPSets`, `felix/labelindex/named_port_index.go`): endpoints
/// (not network sets) matching the selector contribute `(address, port protocol, port number)`
/// for each of their ports with that name whose protocol fits the rule's protocol (any
/// protocol when the rule has none: `ipsetmember.ProtocolAny`). The set is `hash:ip,port`, so
/// the packet's protocol must equal the port's.
pub(crate) fn in_named_port_set(
    members: &[Member],
    selector: Option<&Selector>,
    name: &str,
    rule_protocol: Option<u8>,
    pkt: &Packet,
    ip: IpAddr,
    port: Option<u16>,
) -> bool {
    let Some(port) = port else { return false };
    members.iter().any(|m| {
        m.is_endpoint
            && m.contains(ip)
            && selector.is_none_or(|s| s.evaluate(&m.labels))
            && m.named_ports.iter().any(|np| {
                np.name == name
                    && np.port == port
                    && np.protocol == pkt.protocol
                    && rule_protocol.is_none_or(|rp| rp == np.protocol)
            })
    })
}

/// Whether one side of the rule matches address `ip` / port `port` of the packet.
/// `nets` / `not_nets` of `side` are already filtered to the packet's family.
fn side_matches(
    entity: &ParsedSide,
    members: &[Member],
    rule: &ParsedRule,
    pkt: &Packet,
    side: &Side,
) -> bool {
    let Side {
        ip,
        port,
        nets,
        not_nets,
    } = side;
    let (ip, port) = (*ip, *port);
    // Positive CIDRs: one of them (`AppendCIDRMatchBlock` ORs them).
    if !nets.is_empty() && !nets.iter().any(|n| n.contains(&ip)) {
        return false;
    }
    // Positive selector: the selector IP set (`SrcIpSetIds` / `DstIpSetIds`).
    if let Some(sel) = &entity.selector
        && !in_selector_set(members, sel, ip)
    {
        return false;
    }
    // Ports: numeric ranges ORed with named-port sets (`AppendPortMatchBlock`).
    if !entity.ports.is_empty() || !entity.named_ports.is_empty() {
        let numeric = in_ranges(port, &entity.ports);
        let named = entity.named_ports.iter().any(|name| {
            in_named_port_set(
                members,
                entity.selector.as_ref(),
                name,
                rule.protocol,
                pkt,
                ip,
                port,
            )
        });
        if !numeric && !named {
            return false;
        }
    }
    // Negated CIDRs: none of them.
    if not_nets.iter().any(|n| n.contains(&ip)) {
        return false;
    }
    // Negated selector (only present when there is no positive selector).
    if let Some(sel) = &entity.not_selector
        && in_selector_set(members, sel, ip)
    {
        return false;
    }
    // Negated numeric ports: `! --dports` / `th dport != {..}` only match packets that
    // have ports (the rule carries a TCP/UDP/SCTP protocol match; validation requires it).
    if !entity.not_ports.is_empty() && (port.is_none() || in_ranges(port, &entity.not_ports)) {
        return false;
    }
    // Negated named ports: not in the set, which `rule_scanner.go` filters by the
    // *positive* selector ("we always use the positive (i.e. non-negated) selector").
    if entity.not_named_ports.iter().any(|name| {
        in_named_port_set(
            members,
            entity.selector.as_ref(),
            name,
            rule.protocol,
            pkt,
            ip,
            port,
        )
    }) {
        return false;
    }
    true
}

/// Whether the rule matches the packet.
pub(crate) fn rule_matches(rule: &ParsedRule, members: &[Member], pkt: &Packet) -> bool {
    let v = pkt.ip_version();
    // `FilterRuleToIPVersion`: a rule for the other IP version is not rendered.
    if rule.ip_version.is_some_and(|rv| rv != v) {
        return false;
    }
    let (Some(src_nets), Some(not_src_nets), Some(dst_nets), Some(not_dst_nets)) = (
        filter_nets(&rule.src.nets, v, false),
        filter_nets(&rule.src.not_nets, v, true),
        filter_nets(&rule.dst.nets, v, false),
        filter_nets(&rule.dst.not_nets, v, true),
    ) else {
        return false;
    };
    if rule.protocol.is_some_and(|p| p != pkt.protocol) {
        return false;
    }
    if rule.not_protocol.is_some_and(|p| p == pkt.protocol) {
        return false;
    }
    if let Some(icmp) = &rule.icmp
        && !(pkt.protocol == pkt.family_icmp() && icmp_type_matches(icmp, pkt))
    {
        return false;
    }
    if let Some(icmp) = &rule.not_icmp {
        let is_icmp = pkt.protocol == pkt.family_icmp();
        if !is_icmp || icmp_type_matches(icmp, pkt) {
            return false;
        }
    }
    let src = Side {
        ip: pkt.src,
        port: pkt.src_port,
        nets: src_nets,
        not_nets: not_src_nets,
    };
    let dst = Side {
        ip: pkt.dst,
        port: pkt.dst_port,
        nets: dst_nets,
        not_nets: not_dst_nets,
    };
    side_matches(&rule.src, members, rule, pkt, &src)
        && side_matches(&rule.dst, members, rule, pkt, &dst)
}
