//! One test per rule feature, asserting the exact nft text (felix/rules/policy.go semantics).
#![allow(clippy::unwrap_used)]

use calico_dataplane_model::{IcmpMatch, PortRange, Rule, RuleAction};

use super::*;

const ALLOW: &str = "meta mark set meta mark | 0x00010000 return";

fn types() -> crate::ruleset::SharedMap<IpSetId, SetType> {
    [
        ("s:a".to_string(), SetType::Addr),
        ("s:b".to_string(), SetType::Addr),
        ("s:net".to_string(), SetType::Net),
        ("s:v4only".to_string(), SetType::Addr),
        ("n:v4only".to_string(), SetType::AddrPort),
        ("n:p".to_string(), SetType::AddrPort),
        ("n:q".to_string(), SetType::AddrPort),
    ]
    .into_iter()
    .collect()
}

fn render(r: &Rule) -> Vec<String> {
    render_with_ipv6(r, true)
}

/// Every test set has members of both families, except `s:v4only` and `n:v4only`.
fn families() -> crate::ruleset::SharedMap<IpSetId, u8> {
    types()
        .keys()
        .map(|id| {
            let f = if id.ends_with(":v4only") {
                crate::compile::FAM4
            } else {
                crate::compile::FAM4 | crate::compile::FAM6
            };
            (id.clone(), f)
        })
        .collect()
}

fn render_with_ipv6(r: &Rule, ipv6: bool) -> Vec<String> {
    let t = types();
    let f = families();
    let env = RuleEnv {
        set_types: &t,
        log_prefix: "calico-packet",
        ipv6,
        set_families: &f,
    };
    let mut out = vec![];
    render_rule(r, &env, "test", &mut out).unwrap();
    out
}

fn render_err(r: &Rule) -> NftError {
    let t = types();
    let f = families();
    let env = RuleEnv {
        set_types: &t,
        log_prefix: "calico-packet",
        ipv6: true,
        set_families: &f,
    };
    render_rule(r, &env, "policy x rule 0", &mut vec![]).unwrap_err()
}

fn pr(first: u16, last: u16) -> PortRange {
    PortRange { first, last }
}

fn nets(v: &[&str]) -> Vec<IpNet> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn actions() {
    assert_eq!(render(&Rule::any(RuleAction::Allow)), vec![ALLOW]);
    assert_eq!(render(&Rule::any(RuleAction::Deny)), vec!["drop"]);
    assert_eq!(
        render(&Rule::any(RuleAction::Pass)),
        vec!["meta mark set meta mark | 0x00020000 return"]
    );
    assert_eq!(
        render(&Rule::any(RuleAction::Log)),
        vec!["log prefix \"calico-packet: \" level info"]
    );
}

#[test]
fn protocol_and_negated_protocol() {
    let mut r = Rule::any(RuleAction::Deny);
    r.protocol = Some(6);
    r.not_protocol = Some(4);
    assert_eq!(render(&r), vec!["meta l4proto tcp meta l4proto != 4 drop"]);
    r.protocol = Some(132);
    r.not_protocol = None;
    assert_eq!(render(&r), vec!["meta l4proto sctp drop"]);
}

#[test]
fn ports_are_ored_merged_and_negated() {
    let mut r = Rule::any(RuleAction::Allow);
    r.protocol = Some(17);
    r.dst.ports = vec![pr(53, 53)];
    assert_eq!(
        render(&r),
        vec![format!("meta l4proto udp th dport 53 {ALLOW}")]
    );
    r.dst.ports = vec![pr(90, 100), pr(80, 80), pr(81, 85), pr(95, 120), pr(86, 86)];
    r.src.not_ports = vec![pr(1, 1023), pr(22, 22)];
    assert_eq!(
        render(&r),
        vec![format!(
            "meta l4proto udp th sport != 1-1023 th dport {{ 80-86, 90-120 }} {ALLOW}"
        )]
    );
    // Ports without a protocol still only match port protocols.
    let mut r = Rule::any(RuleAction::Deny);
    r.dst.not_ports = vec![pr(22, 22)];
    assert_eq!(
        render(&r),
        vec!["meta l4proto { tcp, udp, sctp, udplite } th dport != 22 drop"]
    );
}

#[test]
fn nets_are_rendered_per_family_and_normalized() {
    let mut r = Rule::any(RuleAction::Allow);
    r.src.nets = nets(&[
        "10.0.0.0/8",
        "10.1.2.0/24",
        "10.2.3.4/8",
        "192.168.1.1/32",
        "fd00::/8",
    ]);
    assert_eq!(
        render(&r),
        vec![
            format!("ip saddr {{ 10.0.0.0/8, 192.168.1.1 }} {ALLOW}"),
            format!("ip6 saddr fd00::/8 {ALLOW}"),
        ]
    );
    // Only IPv4 nets: no IPv6 rule (FilterRuleToIPVersion).
    r.src.nets = nets(&["10.0.0.0/8"]);
    r.dst.not_nets = nets(&["10.1.0.0/16", "10.2.0.0/16"]);
    assert_eq!(
        render(&r),
        vec![format!(
            "ip saddr 10.0.0.0/8 ip daddr != {{ 10.1.0.0/16, 10.2.0.0/16 }} {ALLOW}"
        )]
    );
}

#[test]
fn negated_nets_follow_felix_filter_nets() {
    // A negated catch-all drops the rule for that family...
    let mut r = Rule::any(RuleAction::Deny);
    r.src.not_nets = nets(&["0.0.0.0/0", "fd00::/8"]);
    assert_eq!(render(&r), vec!["ip6 saddr != fd00::/8 drop"]);
    // ...and negated nets all of the other family drop it too (filterNets' filteredAll).
    r.src.not_nets = nets(&["fd00::/8"]);
    assert_eq!(render(&r), vec!["ip6 saddr != fd00::/8 drop"]);
    r.src.not_nets = nets(&["::/0"]);
    assert!(render(&r).is_empty());
}

#[test]
fn ip_version_restricts_the_family() {
    let mut r = Rule::any(RuleAction::Allow);
    r.ip_version = Some(6);
    assert_eq!(render(&r), vec![format!("meta nfproto ipv6 {ALLOW}")]);
    r.src.nets = nets(&["10.0.0.0/8"]);
    assert!(render(&r).is_empty(), "IPv4 nets in an IPv6 rule");
    r.src.nets = nets(&["10.0.0.0/8", "fd00::/8"]);
    assert_eq!(render(&r), vec![format!("ip6 saddr fd00::/8 {ALLOW}")]);
    r.ip_version = Some(5);
    assert!(matches!(render_err(&r), NftError::BadModel(m) if m.contains("ipVersion 5")));
}

#[test]
fn selector_sets_are_anded_and_negated_per_family() {
    let mut r = Rule::any(RuleAction::Deny);
    r.src.ip_sets = vec!["s:a".into(), "s:net".into()];
    r.dst.not_ip_sets = vec!["s:b".into()];
    assert_eq!(
        render(&r),
        vec![
            "ip saddr @a4-s/a ip saddr @n4-s/net ip daddr != @a4-s/b drop",
            "ip6 saddr @a6-s/a ip6 saddr @n6-s/net ip6 daddr != @a6-s/b drop",
        ]
    );
}

/// `IPv6Support` false (Felix programs no IPv6): address matches for IPv4 only; a rule that
/// matches no address still matches both families; a rule only for IPv6 renders nothing.
#[test]
fn without_ipv6_support_address_rules_are_ipv4_only() {
    let mut r = Rule::any(RuleAction::Deny);
    r.src.ip_sets = vec!["s:a".into()];
    assert_eq!(render_with_ipv6(&r, false), vec!["ip saddr @a4-s/a drop"]);
    let mut icmp = Rule::any(RuleAction::Allow);
    icmp.icmp = Some(calico_dataplane_model::IcmpMatch {
        type_: 8,
        code: None,
    });
    assert_eq!(render_with_ipv6(&icmp, false).len(), 1);
    assert_eq!(render_with_ipv6(&icmp, true).len(), 2);
    let mut ports = Rule::any(RuleAction::Allow);
    ports.protocol = Some(6);
    ports.dst.ports = vec![pr(80, 80)];
    assert_eq!(render_with_ipv6(&ports, false), render(&ports));
    let mut v6_only = Rule::any(RuleAction::Allow);
    v6_only.src.nets = nets(&["fd00::/64"]);
    assert!(render_with_ipv6(&v6_only, false).is_empty());
    assert_eq!(render(&v6_only).len(), 1);
}

/// A rule that needs a member of an IP set for a family the set has none of cannot match a
/// packet of that family, so it is not rendered for it; negated sets and named-port sets
/// that are only one port alternative among others do not restrict the family.
#[test]
fn rules_are_rendered_only_for_families_their_sets_have_members_of() {
    let ipv6 = |r: &Rule| render(r).iter().any(|l| l.contains("ip6 "));
    let mut r = Rule::any(RuleAction::Allow);
    r.src.ip_sets = vec!["s:v4only".into()];
    assert_eq!(
        render(&r),
        vec!["ip saddr @a4-s/v4only meta mark set meta mark | 0x00010000 return"]
    );
    // ANDed with a dual-stack set: still IPv4 only.
    r.dst.ip_sets = vec!["s:a".into()];
    assert!(!ipv6(&r));
    assert_eq!(render(&r).len(), 1);
    // Negated: matches IPv6 packets (none of them is in the set).
    let mut n = Rule::any(RuleAction::Deny);
    n.src.not_ip_sets = vec!["s:v4only".into()];
    assert!(ipv6(&n));
    // Named ports: the only alternative restricts, one among numeric ports does not.
    let mut p = Rule::any(RuleAction::Allow);
    p.protocol = Some(6);
    p.dst.named_port_ip_sets = vec!["n:v4only".into()];
    assert!(!ipv6(&p));
    assert_eq!(render(&p).len(), 1);
    p.dst.ports = vec![pr(80, 80)];
    assert!(ipv6(&p));
    p.dst.ports.clear();
    p.dst.named_port_ip_sets.push("n:p".into());
    assert!(ipv6(&p));
    // A dual-stack set alone: both families, as before.
    let mut d = Rule::any(RuleAction::Allow);
    d.src.ip_sets = vec!["s:a".into()];
    assert!(ipv6(&d));
    assert_eq!(render(&d).len(), 2);
}

#[test]
fn one_named_port_set_is_inline() {
    let mut r = Rule::any(RuleAction::Allow);
    r.protocol = Some(6);
    r.dst.named_port_ip_sets = vec!["n:p".into()];
    r.src.not_named_port_ip_sets = vec!["n:q".into()];
    assert_eq!(
        render(&r),
        vec![
            format!(
                "meta l4proto tcp ip saddr . meta l4proto . th sport != @p4-n/q \
                 ip daddr . meta l4proto . th dport @p4-n/p {ALLOW}"
            ),
            format!(
                "meta l4proto tcp ip6 saddr . meta l4proto . th sport != @p6-n/q \
                 ip6 daddr . meta l4proto . th dport @p6-n/p {ALLOW}"
            ),
        ]
    );
}

#[test]
fn ports_ored_with_named_ports_use_scratch_marks() {
    let mut r = Rule::any(RuleAction::Deny);
    r.ip_version = Some(4);
    r.protocol = Some(6);
    r.src.ports = vec![pr(1000, 2000)];
    r.src.named_port_ip_sets = vec!["n:q".into()];
    r.dst.named_port_ip_sets = vec!["n:p".into(), "n:q".into()];
    assert_eq!(
        render(&r),
        vec![
            "meta mark set meta mark & 0xfff3ffff",
            "th sport 1000-2000 meta mark set meta mark | 0x00040000",
            "ip saddr . meta l4proto . th sport @p4-n/q meta mark set meta mark | 0x00040000",
            "ip daddr . meta l4proto . th dport @p4-n/p meta mark set meta mark | 0x00080000",
            "ip daddr . meta l4proto . th dport @p4-n/q meta mark set meta mark | 0x00080000",
            "meta l4proto tcp meta mark & 0x00040000 != 0 meta mark & 0x00080000 != 0 drop",
        ]
    );
}

#[test]
fn icmp_type_code_and_negations() {
    let mut r = Rule::any(RuleAction::Allow);
    r.protocol = Some(1);
    r.ip_version = Some(4);
    r.icmp = Some(IcmpMatch {
        type_: 8,
        code: Some(0),
    });
    assert_eq!(
        render(&r),
        vec![format!("meta l4proto icmp icmp type 8 icmp code 0 {ALLOW}")]
    );
    let mut r = Rule::any(RuleAction::Deny);
    r.protocol = Some(58);
    r.ip_version = Some(6);
    r.not_icmp = Some(IcmpMatch {
        type_: 1,
        code: Some(3),
    });
    assert_eq!(
        render(&r),
        vec!["meta l4proto icmpv6 icmpv6 type . icmpv6 code != { 1 . 3 } drop"]
    );
    r.not_icmp = Some(IcmpMatch {
        type_: 135,
        code: None,
    });
    assert_eq!(
        render(&r),
        vec!["meta l4proto icmpv6 icmpv6 type != 135 drop"]
    );
    // Without ipVersion, ICMP is rendered per family with the family's ICMP.
    let mut r = Rule::any(RuleAction::Allow);
    r.icmp = Some(IcmpMatch {
        type_: 3,
        code: None,
    });
    assert_eq!(
        render(&r),
        vec![
            format!("icmp type 3 {ALLOW}"),
            format!("icmpv6 type 3 {ALLOW}")
        ]
    );
}

#[test]
fn set_references_are_checked() {
    let mut r = Rule::any(RuleAction::Allow);
    r.src.ip_sets = vec!["s:nope".into()];
    assert_eq!(
        render_err(&r),
        NftError::MissingIpSet {
            owner: "policy x rule 0".into(),
            id: "s:nope".into()
        }
    );
    let mut r = Rule::any(RuleAction::Allow);
    r.src.ip_sets = vec!["n:p".into()];
    assert!(matches!(render_err(&r), NftError::BadModel(m) if m.contains("n:p")));
    let mut r = Rule::any(RuleAction::Allow);
    r.dst.named_port_ip_sets = vec!["s:a".into()];
    assert!(matches!(render_err(&r), NftError::BadModel(m) if m.contains("named-port")));
}

#[test]
fn normalize_nets_removes_covered_and_duplicate_nets() {
    let n = normalize_nets(
        nets(&["10.1.0.0/16", "10.0.0.0/8", "10.0.0.0/8", "11.0.0.5/8"]).into_iter(),
    );
    assert_eq!(
        n.iter().map(net_text).collect::<Vec<_>>(),
        vec!["10.0.0.0/8", "11.0.0.0/8"]
    );
}
