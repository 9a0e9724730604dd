//! Parsing whole resources: defaulting, kinds and tiers, flags, rule conversion, and errors
//! that name the resource and field.

#![allow(clippy::unwrap_used)]

use calico_api::Resource;
use calico_api::decode::decode_documents;
use calico_api::policy::{GlobalNetworkPolicy, NetworkPolicy};
use calico_api::profile::Profile;
use calico_api::tier::Tier;
use calico_policy_rules::*;

fn one(yaml: &str) -> Resource {
    let mut docs = decode_documents("test", yaml).unwrap();
    assert_eq!(docs.len(), 1);
    docs.remove(0).resource
}

fn np(yaml: &str) -> NetworkPolicy {
    match one(&format!(
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n{yaml}"
    )) {
        Resource::NetworkPolicy(p) => p,
        other => panic!("{other:?}"),
    }
}

fn gnp(yaml: &str) -> GlobalNetworkPolicy {
    match one(&format!(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\n{yaml}"
    )) {
        Resource::GlobalNetworkPolicy(p) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn network_policy_is_defaulted_and_namespace_scoped() {
    let p = np("metadata: {name: web, namespace: prod}
spec:
  order: 100
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: role == 'client', notSelector: has(banned), nets: [10.1.0.0/16, 10.9.9.9/32]}
    destination: {ports: [80, '8000:8080', http], notPorts: [metrics]}
");
    let parsed = parse_network_policy(&p).unwrap();
    assert_eq!(
        parsed.id,
        PolicyId {
            tier: "default".into(),
            kind: PolicyKind::NetworkPolicy,
            namespace: "prod".into(),
            name: "web".into(),
        }
    );
    assert_eq!(parsed.order, Some(100.0));
    // Types defaulted from the rules present: ingress only.
    assert!(parsed.ingress);
    assert!(!parsed.egress);
    assert!(parsed.outbound.is_empty());
    assert!(!parsed.do_not_track && !parsed.pre_dnat && !parsed.apply_on_forward);
    assert_eq!(
        parsed.selector.to_string(),
        calico_selector::parse("app == 'web' && projectcalico.org/namespace == 'prod'")
            .unwrap()
            .to_string()
    );
    let [rule] = parsed.inbound.as_slice() else {
        panic!("{:?}", parsed.inbound)
    };
    assert_eq!(rule.action, RuleAction::Allow);
    assert_eq!(rule.protocol, Some(6));
    assert_eq!(rule.ip_version, None);
    // Source: namespace-scoped selector with the notSelector folded in.
    assert_eq!(
        rule.src.nets,
        vec![
            "10.1.0.0/16".parse().unwrap(),
            "10.9.9.9/32".parse().unwrap()
        ]
    );
    assert_eq!(
        rule.src.selector.as_ref().unwrap(),
        &calico_selector::parse(
            "((projectcalico.org/namespace == 'prod') && (role == 'client')) && (!(has(banned)))"
        )
        .unwrap()
    );
    assert_eq!(rule.src.not_selector, None);
    // Destination: numeric and named ports split.
    assert_eq!(
        rule.dst.ports,
        vec![
            PortRange {
                first: 80,
                last: 80
            },
            PortRange {
                first: 8000,
                last: 8080
            }
        ]
    );
    assert_eq!(rule.dst.named_ports, vec!["http".to_string()]);
    assert_eq!(rule.dst.not_named_ports, vec!["metrics".to_string()]);
    assert_eq!(rule.dst.selector, None);
}

#[test]
fn knp_default_names_are_kubernetes_policies() {
    let p = np("metadata: {name: knp.default.allow, namespace: prod}
spec: {tier: default, selector: all()}
");
    let parsed = parse_network_policy(&p).unwrap();
    assert_eq!(parsed.id.kind, PolicyKind::KubernetesNetworkPolicy);
    assert_eq!(parsed.id.to_string(), "default/knp/prod/knp.default.allow");
    // No rules: types default to ingress only (Calico's client defaulting).
    assert!(parsed.ingress && !parsed.egress);
}

#[test]
fn negated_selector_without_positive_one_stays_separate() {
    let p = gnp("metadata: {name: g}
spec:
  selector: all()
  egress:
  - action: Deny
    destination: {notSelector: has(x)}
");
    let parsed = parse_global_network_policy(&p).unwrap();
    let rule = &parsed.outbound[0];
    assert_eq!(rule.dst.selector, None);
    assert_eq!(
        rule.dst.not_selector.as_ref().unwrap().to_string(),
        "has(x)"
    );
    assert!(parsed.egress && !parsed.ingress);
}

#[test]
fn global_policy_flags_tier_and_icmp() {
    let p = gnp("metadata: {name: sec.host}
spec:
  tier: sec
  order: 5
  selector: has(host)
  namespaceSelector: all()
  doNotTrack: true
  applyOnForward: true
  types: [Ingress, Egress]
  ingress:
  - action: Pass
    protocol: ICMP
    icmp: {type: 8, code: 0}
  egress:
  - action: Log
    protocol: 58
    notICMP: {type: 128}
  - action: Deny
    ipVersion: 6
    notProtocol: UDP
");
    let parsed = parse_global_network_policy(&p).unwrap();
    assert_eq!(parsed.id.to_string(), "sec/gnp/sec.host");
    assert!(parsed.do_not_track && parsed.apply_on_forward && !parsed.pre_dnat);
    assert_eq!(
        parsed.selector.to_string(),
        calico_selector::parse("(has(host)) && has(projectcalico.org/namespace)")
            .unwrap()
            .to_string()
    );
    let r = &parsed.inbound[0];
    assert_eq!(r.action, RuleAction::Pass);
    // Protocol name icmp implies IPv4.
    assert_eq!((r.protocol, r.ip_version), (Some(1), Some(4)));
    assert_eq!(
        r.icmp,
        Some(IcmpMatch {
            type_: 8,
            code: Some(0)
        })
    );
    let r = &parsed.outbound[0];
    assert_eq!(r.action, RuleAction::Log);
    // A numeric protocol implies nothing.
    assert_eq!((r.protocol, r.ip_version), (Some(58), None));
    assert_eq!(
        r.not_icmp,
        Some(IcmpMatch {
            type_: 128,
            code: None
        })
    );
    let r = &parsed.outbound[1];
    assert_eq!((r.not_protocol, r.ip_version), (Some(17), Some(6)));
}

#[test]
fn profiles_and_tiers() {
    let Resource::Profile(p) = one("apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.prod}
spec:
  labelsToApply: {pcns.env: prod}
  ingress: [{action: Allow, source: {selector: has(a)}}]
  egress: [{action: Allow}]
")
    else {
        panic!()
    };
    let parsed = parse_profile(&p).unwrap();
    assert_eq!(parsed.name, "kns.prod");
    assert_eq!(parsed.labels_to_apply.get("pcns.env").unwrap(), "prod");
    // Profile rules are not namespace-scoped.
    assert_eq!(
        parsed.inbound[0].src.selector.as_ref().unwrap().to_string(),
        "has(a)"
    );
    assert_eq!(parsed.outbound, vec![ParsedRule::any(RuleAction::Allow)]);

    let Resource::Tier(t) = one("apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: sec}
spec: {order: 50, defaultAction: Pass}
")
    else {
        panic!()
    };
    assert_eq!(
        parse_tier(&t).unwrap(),
        ParsedTier {
            name: "sec".into(),
            order: Some(50.0),
            default_action: TierDefaultAction::Pass,
        }
    );
    let mut t = Tier::default();
    t.metadata.name = "plain".into();
    t.spec.order = Some(1.0);
    assert_eq!(
        parse_tier(&t).unwrap().default_action,
        TierDefaultAction::Deny
    );

    let mut prot = protected_tiers();
    prot.sort_by(tier_order);
    let names: Vec<&str> = prot.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["kube-admin", "default", "kube-baseline"]);
    assert_eq!(prot[0].default_action, TierDefaultAction::Pass);
    assert_eq!(prot[1].default_action, TierDefaultAction::Deny);
}

#[test]
fn errors_name_the_resource_and_field() {
    let p = np("metadata: {name: bad, namespace: prod}
spec: {selector: 'role == '}
");
    let e = parse_network_policy(&p).unwrap_err();
    assert!(
        matches!(&e, RulesError::InvalidResource { kind: "NetworkPolicy", name, .. } if name == "prod/bad"),
        "{e}"
    );
    assert!(e.to_string().contains("spec.selector"), "{e}");

    let p = np("metadata: {name: svc, namespace: prod}
spec:
  egress:
  - action: Allow
    destination: {services: {name: kube-dns, namespace: kube-system}}
");
    let e = parse_network_policy(&p).unwrap_err();
    assert!(matches!(e, RulesError::Unsupported { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("default/np/prod/svc egress[0] destination"),
        "{e}"
    );

    let mut p = Profile::default();
    p.metadata.name = "pr".into();
    p.spec.ingress = vec![calico_api::rule::Rule {
        action: Some(calico_api::rule::Action::Allow),
        ip_version: Some(5),
        ..Default::default()
    }];
    let e = parse_profile(&p).unwrap_err();
    assert!(e.to_string().contains("pr"), "{e}");
    assert_eq!(
        e,
        RulesError::BadValue {
            owner: "profile pr ingress[0]".into(),
            field: "ipVersion",
            value: "5".into(),
        }
    );

    assert!(matches!(
        parse_net("x", "nets", "10.0.0.0/33"),
        Err(RulesError::BadValue { field: "nets", .. })
    ));
    assert_eq!(proto_number("SCTP"), Some(132));
    assert_eq!(proto_number("bogus"), None);
}
