//! One v3 rule to its v1 form: `rules.go` `RuleAPIV3ToBackend` (libcalico-go's update
//! processors) followed by Felix's `rule_scanner.go` / `rule_convert.go` (selector combining,
//! named/numeric port split, ICMP and IP-version conversion).

use calico_api::netutil::parse_cidr_or_ip;
use calico_api::numorstring::Protocol;
use calico_api::rule::{Action, EntityRule, IcmpFields, Rule};
use calico_dataplane_model::{IcmpMatch, PortRange, RuleAction};
use ipnet::IpNet;

use crate::error::RulesError;
use crate::selectors::{combine_selectors, entity_selector_text, parse_selector};
use crate::{ParsedRule, ParsedSide};

/// Parses a CIDR or a bare address (taken as /32 or /128), like Calico's `cnet.ParseCIDROrIP`.
/// `owner` and `field` name what is being parsed in the error.
pub fn parse_net(owner: &str, field: &'static str, s: &str) -> Result<IpNet, RulesError> {
    parse_cidr_or_ip(s)
        .and_then(|c| IpNet::new(c.addr, c.prefix_len).ok())
        .ok_or_else(|| RulesError::BadValue {
            owner: owner.to_string(),
            field,
            value: s.to_string(),
        })
}

/// The number of a v3 or v1 protocol name (case-insensitive), as the dataplane matches it.
/// Names follow `numorstring.Protocol` and the kernel's `/etc/protocols` numbers.
pub fn proto_number(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "icmp" => Some(1),
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmpv6" => Some(58),
        "sctp" => Some(132),
        "udplite" => Some(136),
        other => other.parse().ok(),
    }
}

/// [`proto_number`] of a v3 protocol, as an error naming `owner` when unknown.
pub fn protocol_number(owner: &str, p: &Protocol) -> Result<u8, RulesError> {
    let n = match p {
        Protocol::Num(n) => Some(*n),
        Protocol::Name(s) => proto_number(s),
    };
    n.ok_or_else(|| RulesError::BadValue {
        owner: owner.to_string(),
        field: "protocol",
        value: p.to_string(),
    })
}

fn parse_side(owner: &str, er: &EntityRule, ns: &str) -> Result<ParsedSide, RulesError> {
    if er.services.is_some() {
        return Err(RulesError::Unsupported {
            owner: owner.to_string(),
            what: "a Kubernetes Services match (needs Service endpoints)".to_string(),
        });
    }
    // The notSelector is passed through unchanged (`rules.go`: `NotSrcSelector:
    // ar.Source.NotSelector`), it is not namespace-scoped.
    let (pos, neg) = combine_selectors(entity_selector_text(owner, er, ns)?, &er.not_selector);
    let nets = |list: &[String], field| -> Result<Vec<IpNet>, RulesError> {
        list.iter()
            .map(|n| parse_net(owner, field, n).map(|n| n.trunc()))
            .collect()
    };
    let mut side = ParsedSide {
        nets: nets(&er.nets, "nets")?,
        not_nets: nets(&er.not_nets, "notNets")?,
        selector: (!pos.is_empty())
            .then(|| parse_selector(owner, &pos))
            .transpose()?,
        not_selector: (!neg.is_empty())
            .then(|| parse_selector(owner, &neg))
            .transpose()?,
        ..ParsedSide::default()
    };
    // `rule_scanner.go` `splitNamedAndNumericPorts`.
    for p in &er.ports {
        if p.is_named() {
            side.named_ports.push(p.port_name.clone());
        } else {
            side.ports.push(PortRange {
                first: p.min_port,
                last: p.max_port,
            });
        }
    }
    for p in &er.not_ports {
        if p.is_named() {
            side.not_named_ports.push(p.port_name.clone());
        } else {
            side.not_ports.push(PortRange {
                first: p.min_port,
                last: p.max_port,
            });
        }
    }
    Ok(side)
}

fn icmp_match(owner: &str, f: &IcmpFields) -> Result<Option<IcmpMatch>, RulesError> {
    let byte = |v: i64, field| {
        u8::try_from(v).map_err(|_| RulesError::BadValue {
            owner: owner.to_string(),
            field,
            value: v.to_string(),
        })
    };
    // `rule_convert.go`: a code is only rendered together with a type.
    match f.type_ {
        None => Ok(None),
        Some(t) => Ok(Some(IcmpMatch {
            type_: byte(t, "icmp type")?,
            code: f.code.map(|c| byte(c, "icmp code")).transpose()?,
        })),
    }
}

/// `rules.go` `RuleAPIV3ToBackend` followed by `rule_scanner.go` / `rule_convert.go`, for a
/// rule of a policy in namespace `ns` (empty for global policies and profiles).
pub(crate) fn parse_rule(owner: &str, r: &Rule, ns: &str) -> Result<ParsedRule, RulesError> {
    let action = match &r.action {
        Some(Action::Allow) => RuleAction::Allow,
        Some(Action::Deny) => RuleAction::Deny,
        Some(Action::Log) => RuleAction::Log,
        Some(Action::Pass) => RuleAction::Pass,
        // `CombineMatchAndActionsForProtoRule`: "" renders as allow; Felix panics on any other.
        None => RuleAction::Allow,
        Some(Action::Other(a)) => {
            return Err(RulesError::BadValue {
                owner: owner.to_string(),
                field: "action",
                value: a.clone(),
            });
        }
    };
    let protocol = r
        .protocol
        .as_ref()
        .map(|p| protocol_number(owner, p))
        .transpose()?;
    let not_protocol = r
        .not_protocol
        .as_ref()
        .map(|p| protocol_number(owner, p))
        .transpose()?;
    // `rule_convert.go` `ipVersionToProtoIPVersion`: explicit version, else implied by the
    // protocol *name* icmp / icmpv6 (a numeric protocol implies nothing).
    let ip_version = match (r.ip_version, &r.protocol) {
        (Some(4), _) => Some(4),
        (Some(6), _) => Some(6),
        (Some(v), _) => {
            return Err(RulesError::BadValue {
                owner: owner.to_string(),
                field: "ipVersion",
                value: v.to_string(),
            });
        }
        (None, Some(Protocol::Name(n))) => match n.to_ascii_lowercase().as_str() {
            "icmp" => Some(4),
            "icmpv6" => Some(6),
            _ => None,
        },
        (None, _) => None,
    };
    Ok(ParsedRule {
        action,
        ip_version,
        protocol,
        not_protocol,
        icmp: r
            .icmp
            .as_ref()
            .map(|f| icmp_match(owner, f))
            .transpose()?
            .flatten(),
        not_icmp: r
            .not_icmp
            .as_ref()
            .map(|f| icmp_match(owner, f))
            .transpose()?
            .flatten(),
        // HTTP matches are L7 (enforced by Dikastes when ALP is on); Felix's L3/L4 rendering
        // in `felix/rules/policy.go` ignores them, and so do we.
        src: parse_side(&format!("{owner} source"), &r.source, ns)?,
        dst: parse_side(&format!("{owner} destination"), &r.destination, ns)?,
    })
}

/// The rules of one direction; owners read `<owner> ingress[i]`.
pub(crate) fn parse_rules(
    owner: &str,
    dir: &str,
    rules: &[Rule],
    ns: &str,
) -> Result<Vec<ParsedRule>, RulesError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| parse_rule(&format!("{owner} {dir}[{i}]"), r, ns))
        .collect()
}
