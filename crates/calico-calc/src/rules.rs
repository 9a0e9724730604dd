//! Parsed (v1) rules → the dataplane model's rules, with the IP sets they need
//! (`felix/calc/rule_scanner.go` `ruleToParsedRule`).

use calico_dataplane_model::{IpSetId, Rule, RuleSide};
use calico_policy_rules::{
    ParsedRule, ParsedSide, named_port_ip_set_id, named_port_protocol, selector_ip_set_id,
};
use calico_selector::Selector;

/// What an IP set holds (`rule_scanner.go` `IPSetData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SetDef {
    /// Addresses / CIDRs of the endpoints and network sets the selector matches.
    Selector(Selector),
    /// `addr,proto:port` of the matching endpoints' ports called `name` (protocol as
    /// `named_port_protocol` gives it; 255 = any).
    NamedPort {
        selector: Selector,
        protocol: u8,
        name: String,
    },
}

impl SetDef {
    pub(crate) fn selector(&self) -> &Selector {
        match self {
            SetDef::Selector(s) | SetDef::NamedPort { selector: s, .. } => s,
        }
    }
}

/// The sets one rule owner (a policy or profile) needs, each once.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SetDefs(pub Vec<(IpSetId, SetDef)>);

impl SetDefs {
    fn add(&mut self, id: &IpSetId, def: SetDef) {
        if !self.0.iter().any(|(i, _)| i == id) {
            self.0.push((id.clone(), def));
        }
    }
}

fn side(s: &ParsedSide, protocol: u8, sets: &mut SetDefs) -> RuleSide {
    let all = Selector::all();
    // `namedPortsToIPSets`: named ports (also negated ones) pair with the positive
    // selector, or `all()` without one.
    let np_sel = s.selector.as_ref().unwrap_or(&all);
    let mut named = |names: &[String]| -> Vec<IpSetId> {
        names
            .iter()
            .map(|n| {
                let id = named_port_ip_set_id(np_sel, protocol, n);
                sets.add(
                    &id,
                    SetDef::NamedPort {
                        selector: np_sel.clone(),
                        protocol,
                        name: n.clone(),
                    },
                );
                id
            })
            .collect()
    };
    let named_port_ip_sets = named(&s.named_ports);
    let not_named_port_ip_sets = named(&s.not_named_ports);
    let mut selector_set = |sel: &Selector| -> IpSetId {
        let id = selector_ip_set_id(sel);
        sets.add(&id, SetDef::Selector(sel.clone()));
        id
    };
    // "Only need the selector IP set if there are numeric ports or no named ports": with
    // only named ports, the named-port sets already carry the selector.
    let ip_sets = match &s.selector {
        Some(sel) if !s.ports.is_empty() || s.named_ports.is_empty() => vec![selector_set(sel)],
        _ => Vec::new(),
    };
    let not_ip_sets = s.not_selector.iter().map(&mut selector_set).collect();
    RuleSide {
        nets: s.nets.clone(),
        not_nets: s.not_nets.clone(),
        ports: s.ports.clone(),
        not_ports: s.not_ports.clone(),
        named_port_ip_sets,
        not_named_port_ip_sets,
        ip_sets,
        not_ip_sets,
    }
}

/// One rule in model form; its sets are added to `sets`.
pub(crate) fn model_rule(r: &ParsedRule, sets: &mut SetDefs) -> Rule {
    let protocol = named_port_protocol(r.protocol);
    Rule {
        action: r.action,
        ip_version: r.ip_version,
        protocol: r.protocol,
        not_protocol: r.not_protocol,
        icmp: r.icmp,
        not_icmp: r.not_icmp,
        src: side(&r.src, protocol, sets),
        dst: side(&r.dst, protocol, sets),
    }
}

/// A list of rules in model form.
pub(crate) fn model_rules(rules: &[ParsedRule], sets: &mut SetDefs) -> Vec<Rule> {
    rules.iter().map(|r| model_rule(r, sets)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use calico_dataplane_model::RuleAction;

    use super::*;

    #[test]
    fn named_ports_fold_the_selector() {
        let sel = calico_selector::parse("app == 'db'").unwrap();
        let mut r = ParsedRule::any(RuleAction::Allow);
        r.protocol = Some(6);
        r.dst.selector = Some(sel.clone());
        r.dst.named_ports = vec!["http".into()];
        let mut sets = SetDefs::default();
        let m = model_rule(&r, &mut sets);
        // Only named ports: no separate selector set.
        assert!(m.dst.ip_sets.is_empty());
        assert_eq!(
            m.dst.named_port_ip_sets,
            vec![named_port_ip_set_id(&sel, 6, "http")]
        );
        assert_eq!(sets.0.len(), 1);
        // With a numeric port too, the selector set is needed for the numeric part.
        r.dst.ports = vec![calico_dataplane_model::PortRange {
            first: 80,
            last: 80,
        }];
        let mut sets = SetDefs::default();
        let m = model_rule(&r, &mut sets);
        assert_eq!(m.dst.ip_sets, vec![sel.unique_id()]);
        assert_eq!(sets.0.len(), 2);
    }

    #[test]
    fn negated_named_ports_use_the_positive_selector_or_all() {
        let mut r = ParsedRule::any(RuleAction::Deny);
        r.protocol = Some(17);
        r.src.not_named_ports = vec!["dns".into()];
        let not_sel = calico_selector::parse("role == 'x'").unwrap();
        r.src.not_selector = Some(not_sel.clone());
        let mut sets = SetDefs::default();
        let m = model_rule(&r, &mut sets);
        assert_eq!(
            m.src.not_named_port_ip_sets,
            vec![named_port_ip_set_id(&Selector::all(), 17, "dns")]
        );
        assert_eq!(m.src.not_ip_sets, vec![not_sel.unique_id()]);
        assert!(m.src.ip_sets.is_empty());
        // The same set referenced twice is listed once among the owner's sets.
        let mut sets2 = sets.clone();
        model_rule(&r, &mut sets2);
        assert_eq!(sets2, sets);
    }
}
