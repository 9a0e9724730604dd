//! Whole-set scenarios: tiers, Pass, default deny, profiles, host endpoints, special chains.

#![allow(clippy::unwrap_used)]

mod common;

use calico_api::profile::Profile;
use calico_policy_eval::{
    ChainType, DecidedBy, Direction, Endpoint, EvalError, PolicySet, Resources, Verdict, evaluate,
    evaluate_chain,
};
use common::*;
use serde_json::json;

fn set(res: Resources) -> PolicySet {
    PolicySet::from_resources(res).unwrap()
}

fn verdict(s: &PolicySet, p: &calico_policy_eval::Packet) -> Verdict {
    evaluate(s, p).overall
}

fn profile(name: &str, spec: serde_json::Value) -> Profile {
    let mut p: Profile = serde_json::from_value(json!({ "spec": spec })).unwrap();
    p.metadata.name = name.into();
    p
}

#[test]
fn unselected_pods_are_open_through_the_namespace_profile() {
    let s = set(fixture());
    let d = evaluate(&s, &tcp(CLIENT, SERVER, 80));
    assert_eq!(d.overall, Verdict::Allow, "{d}");
    let e = d.egress_of_src_endpoint.unwrap();
    assert_eq!(e.endpoint, "prod/client");
    assert_eq!(
        e.decided_by,
        DecidedBy::ProfileRule {
            profile: "kns.prod".into(),
            rule: 0
        }
    );
    assert_eq!(
        d.ingress_of_dst_endpoint.unwrap().decided_by,
        DecidedBy::ProfileRule {
            profile: "kns.prod".into(),
            rule: 0
        }
    );
}

#[test]
fn a_selecting_policy_without_rules_is_default_deny_for_its_types_only() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "deny-ingress",
        json!({"selector": "role == 'server'", "types": ["Ingress"]}),
    ));
    let s = set(res);
    let d = evaluate(&s, &tcp(CLIENT, SERVER, 80));
    assert_eq!(d.overall, Verdict::Deny);
    assert_eq!(
        d.ingress_of_dst_endpoint.unwrap().decided_by,
        DecidedBy::EndOfTier {
            tier: "default".into()
        }
    );
    // Egress of the server is not governed by the policy.
    assert_eq!(verdict(&s, &tcp(SERVER, CLIENT, 80)), Verdict::Allow);
}

#[test]
fn types_default_to_egress_when_only_egress_rules_exist() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "egress-only",
        json!({"selector": "role == 'client'",
               "egress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [443]}}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 443)), Verdict::Allow);
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 80)), Verdict::Deny);
    // Ingress to the client is untouched.
    assert_eq!(verdict(&s, &tcp(SERVER, CLIENT, 80)), Verdict::Allow);
}

/// A security tier passes client traffic to the default tier and denies everything else
/// addressed to the server; the default tier allows port 80 only.
fn pass_fixture() -> PolicySet {
    let mut res = fixture();
    res.tiers.push(tier("security", 100.0, "Deny"));
    res.global_policies.push(gnp(
        "security.gate",
        json!({"tier": "security", "selector": "role == 'server'", "types": ["Ingress"],
               "ingress": [{"action": "Pass", "source": {"selector": "role == 'client'"}},
                           {"action": "Deny"}]}),
    ));
    res.policies.push(np(
        "prod",
        "web",
        json!({"selector": "role == 'server'", "types": ["Ingress"],
               "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [80]}}]}),
    ));
    set(res)
}

#[test]
fn pass_hands_over_to_the_next_tier() {
    let s = pass_fixture();
    let d = evaluate(&s, &tcp(CLIENT, SERVER, 80));
    assert_eq!(d.overall, Verdict::Allow, "{d}");
    let ing = d.ingress_of_dst_endpoint.unwrap();
    assert!(matches!(ing.decided_by, DecidedBy::Rule { ref tier, .. } if tier == "default"));
    assert!(ing.trace.iter().any(|t| t.contains("pass")), "{ing}");
    // Passed, then not allowed by the default tier: its end-of-tier drop.
    let d = evaluate(&s, &tcp(CLIENT, SERVER, 81));
    assert_eq!(
        d.ingress_of_dst_endpoint.unwrap().decided_by,
        DecidedBy::EndOfTier {
            tier: "default".into()
        }
    );
    // Not a client: denied in the security tier.
    let d = evaluate(&s, &tcp(OTHER, SERVER, 80));
    assert!(
        matches!(d.ingress_of_dst_endpoint.unwrap().decided_by, DecidedBy::Rule { ref tier, rule: 1, .. } if tier == "security")
    );
}

#[test]
fn pass_skips_the_rest_of_the_tier() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "a-pass",
        json!({"order": 1, "selector": "role == 'server'", "types": ["Ingress"],
               "ingress": [{"action": "Pass"}]}),
    ));
    res.policies.push(np(
        "prod",
        "b-deny",
        json!({"order": 2, "selector": "role == 'server'", "types": ["Ingress"],
               "ingress": [{"action": "Deny"}]}),
    ));
    let s = set(res);
    let d = evaluate(&s, &tcp(CLIENT, SERVER, 80));
    // No later tier applies: the profiles decide.
    assert_eq!(
        d.ingress_of_dst_endpoint.unwrap().decided_by,
        DecidedBy::ProfileRule {
            profile: "kns.prod".into(),
            rule: 0
        }
    );
}

#[test]
fn tier_default_action_pass_does_not_drop() {
    let mut res = fixture();
    res.tiers.push(tier("observe", 10.0, "Pass"));
    res.global_policies.push(gnp(
        "observe.nothing",
        json!({"tier": "observe", "selector": "all()", "types": ["Ingress", "Egress"],
               "ingress": [{"action": "Deny", "protocol": "UDP"}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 80)), Verdict::Allow);
    assert_eq!(verdict(&s, &udp(CLIENT, SERVER, 80)), Verdict::Deny);
}

#[test]
fn tiers_apply_in_order_and_the_first_verdict_wins() {
    let mut res = fixture();
    res.tiers.push(tier("late", 50.0, "Deny"));
    res.tiers.push(tier("early", 5.0, "Deny"));
    res.global_policies.push(gnp(
        "late.deny",
        json!({"tier": "late", "selector": "role == 'server'", "ingress": [{"action": "Deny"}]}),
    ));
    res.global_policies.push(gnp(
        "early.allow",
        json!({"tier": "early", "selector": "role == 'server'", "ingress": [{"action": "Allow"}]}),
    ));
    let s = set(res);
    let names: Vec<String> = s.ordering().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        names,
        ["early", "late", "kube-admin", "default", "kube-baseline"]
    );
    let d = evaluate(&s, &tcp(CLIENT, SERVER, 80));
    assert!(
        matches!(d.ingress_of_dst_endpoint.unwrap().decided_by, DecidedBy::Rule { ref tier, .. } if tier == "early")
    );
}

#[test]
fn policies_apply_by_order_then_name() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "deny-late",
        json!({"order": 10, "selector": "role == 'server'", "ingress": [{"action": "Deny"}]}),
    ));
    res.policies.push(np(
        "prod",
        "allow-early",
        json!({"order": 5, "selector": "role == 'server'", "ingress": [{"action": "Allow"}]}),
    ));
    res.policies.push(np(
        "prod",
        "zz-no-order",
        json!({"selector": "role == 'server'", "ingress": [{"action": "Deny"}]}),
    ));
    res.policies.push(np(
        "prod",
        "aa-no-order",
        json!({"selector": "role == 'server'", "ingress": [{"action": "Deny"}]}),
    ));
    let s = set(res);
    let default = s
        .ordering()
        .into_iter()
        .find(|(t, _)| t == "default")
        .unwrap()
        .1;
    let ids: Vec<String> = default.iter().map(ToString::to_string).collect();
    assert_eq!(
        ids,
        [
            "default/np/prod/allow-early",
            "default/np/prod/deny-late",
            "default/np/prod/aa-no-order",
            "default/np/prod/zz-no-order"
        ]
    );
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 80)), Verdict::Allow);
}

#[test]
fn log_continues_with_the_next_rule() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "log-then-allow",
        json!({"selector": "role == 'server'",
               "ingress": [{"action": "Log"}, {"action": "Allow"}]}),
    ));
    let s = set(res);
    let d = evaluate(&s, &tcp(CLIENT, SERVER, 80));
    let ing = d.ingress_of_dst_endpoint.unwrap();
    assert!(matches!(ing.decided_by, DecidedBy::Rule { rule: 1, .. }));
    assert!(
        ing.trace.iter().any(|t| t.ends_with("rule 0: log")),
        "{ing}"
    );
}

#[test]
fn a_higher_tier_deny_beats_a_lower_tier_allow_and_egress_matters_too() {
    let mut res = fixture();
    res.tiers.push(tier("platform", 10.0, "Pass"));
    res.global_policies.push(gnp(
        "platform.block-dev",
        json!({"tier": "platform", "selector": "all()", "types": ["Egress"],
               "egress": [{"action": "Deny", "destination": {"namespaceSelector": "env == 'dev'"}}]}),
    ));
    let s = set(res);
    let d = evaluate(&s, &tcp(CLIENT, DEV_CLIENT, 80));
    assert_eq!(d.overall, Verdict::Deny);
    assert_eq!(
        d.egress_of_src_endpoint.as_ref().unwrap().verdict,
        Some(Verdict::Deny)
    );
    // The ingress side on its own would allow.
    assert_eq!(
        d.ingress_of_dst_endpoint.unwrap().verdict,
        Some(Verdict::Allow)
    );
    assert_eq!(verdict(&s, &tcp(DEV_CLIENT, CLIENT, 80)), Verdict::Allow);
}

#[test]
fn egress_named_ports_resolve_against_the_destination() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "client-out",
        json!({"selector": "role == 'client'", "types": ["Egress"],
               "egress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": ["http"]}}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 8080)), Verdict::Allow);
    // prod/other has no port named http.
    assert_eq!(verdict(&s, &tcp(CLIENT, OTHER, 8080)), Verdict::Deny);
}

#[test]
fn egress_not_nets_allow_everything_but_a_range() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "no-private",
        json!({"selector": "role == 'client'", "types": ["Egress"],
               "egress": [{"action": "Allow", "destination": {"notNets": ["10.0.0.0/8"]}}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(CLIENT, UNKNOWN, 443)), Verdict::Allow);
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 443)), Verdict::Deny);
    // The IPv6 pod is also selected, but the rule is IPv4-only: dropped for IPv6.
    assert_eq!(
        verdict(&s, &tcp(CLIENT6, "2001:db8:ffff::1", 443)),
        Verdict::Deny
    );
}

#[test]
fn service_account_selector_and_gnp_namespace_selector_pick_endpoints() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "frontend-only",
        json!({"selector": "all()", "serviceAccountSelector": "tier == 'frontend'",
               "types": ["Egress"]}),
    ));
    res.global_policies.push(gnp(
        "dev-isolation",
        json!({"namespaceSelector": "env == 'dev'", "types": ["Ingress"]}),
    ));
    let s = set(res);
    // prod/client has SA client-sa (tier=frontend): its egress is default-denied.
    assert_eq!(verdict(&s, &tcp(CLIENT, OTHER, 80)), Verdict::Deny);
    assert_eq!(verdict(&s, &tcp(OTHER, SERVER, 80)), Verdict::Allow);
    // dev/client ingress is default-denied, prod pods are untouched.
    assert_eq!(verdict(&s, &tcp(OTHER, DEV_CLIENT, 80)), Verdict::Deny);
    assert_eq!(verdict(&s, &tcp(DEV_CLIENT, OTHER, 80)), Verdict::Allow);
    let id = &s
        .ordering()
        .into_iter()
        .find(|(t, _)| t == "default")
        .unwrap()
        .1;
    let sel: Vec<String> = id.iter().map(|i| s.policy_selector(i).unwrap()).collect();
    assert!(sel.contains(&r#"pcns.env == "dev""#.to_string()), "{sel:?}");
}

#[test]
fn explicit_profiles_rules_labels_and_pass() {
    let mut res = fixture();
    res.profiles.push(profile(
        "web",
        json!({"labelsToApply": {"team": "web", "role": "overridden"},
               "ingress": [{"action": "Allow", "source": {"selector": "role == 'client'"}}],
               "egress": [{"action": "Pass"}]}),
    ));
    res.profiles.push(profile(
        "fallback",
        json!({"egress": [{"action": "Deny", "protocol": "UDP"}, {"action": "Allow"}]}),
    ));
    res.endpoints.push(
        Endpoint::workload("prod/vm", "prod", [("role", "vm")], ["10.0.1.50"])
            .unwrap()
            .with_profiles(["web", "fallback"]),
    );
    let s = set(res);
    let labels = s.endpoint_labels("prod/vm").unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("web"));
    // Own labels beat profile labels.
    assert_eq!(labels.get("role").map(String::as_str), Some("vm"));
    assert_eq!(
        labels
            .get("projectcalico.org/namespace")
            .map(String::as_str),
        Some("prod")
    );
    assert_eq!(verdict(&s, &tcp(CLIENT, "10.0.1.50", 80)), Verdict::Allow);
    let d = evaluate(&s, &tcp(OTHER, "10.0.1.50", 80));
    assert_eq!(
        d.ingress_of_dst_endpoint.unwrap().decided_by,
        DecidedBy::NoProfileMatched
    );
    // Egress: "web" passes, "fallback" decides.
    assert_eq!(verdict(&s, &tcp("10.0.1.50", UNKNOWN, 80)), Verdict::Allow);
    let d = evaluate(&s, &udp("10.0.1.50", UNKNOWN, 53));
    assert_eq!(
        d.egress_of_src_endpoint.unwrap().decided_by,
        DecidedBy::ProfileRule {
            profile: "fallback".into(),
            rule: 0
        }
    );
}

#[test]
fn profile_labels_are_selectable() {
    let mut res = fixture();
    res.profiles
        .push(profile("tagged", json!({"labelsToApply": {"zone": "dmz"}})));
    res.endpoints.push(
        Endpoint::workload("prod/dmz", "prod", [("role", "x")], ["10.0.1.60"])
            .unwrap()
            .with_profiles(["tagged"]),
    );
    res.global_policies.push(gnp(
        "dmz-in",
        json!({"selector": "zone == 'dmz'", "ingress": [{"action": "Allow", "protocol": "TCP"}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(CLIENT, "10.0.1.60", 80)), Verdict::Allow);
    assert_eq!(verdict(&s, &udp(CLIENT, "10.0.1.60", 80)), Verdict::Deny);
    // Its egress: no policy, profile "tagged" has no rules: dropped.
    assert_eq!(verdict(&s, &tcp("10.0.1.60", CLIENT, 80)), Verdict::Deny);
}

#[test]
fn a_policy_in_a_missing_tier_runs_last_and_drops() {
    let mut res = fixture();
    res.global_policies.push(gnp(
        "ghost.p",
        json!({"tier": "ghost", "selector": "role == 'server'", "ingress": [{"action": "Allow", "protocol": "UDP"}]}),
    ));
    let s = set(res);
    let names: Vec<String> = s.ordering().into_iter().map(|(t, _)| t).collect();
    assert_eq!(names.last().map(String::as_str), Some("ghost"));
    assert_eq!(verdict(&s, &udp(CLIENT, SERVER, 53)), Verdict::Allow);
    let d = evaluate(&s, &tcp(CLIENT, SERVER, 80));
    assert_eq!(
        d.ingress_of_dst_endpoint.unwrap().decided_by,
        DecidedBy::EndOfTier {
            tier: "ghost".into()
        }
    );
}

#[test]
fn kube_admin_tier_passes_by_default() {
    let mut res = fixture();
    res.global_policies.push(gnp(
        "kube-admin.guard",
        json!({"tier": "kube-admin", "selector": "all()", "ingress": [{"action": "Deny", "protocol": "UDP"}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 80)), Verdict::Allow);
    assert_eq!(verdict(&s, &udp(CLIENT, SERVER, 80)), Verdict::Deny);
}

#[test]
fn kubernetes_policies_behave_like_namespaced_policies() {
    let mut res = fixture();
    res.kubernetes_policies.push(np(
        "prod",
        "knp.default.allow-clients",
        json!({"order": 1000, "selector": "projectcalico.org/orchestrator == 'k8s' && role == 'server'",
               "types": ["Ingress"],
               "ingress": [{"action": "Allow", "protocol": "TCP",
                            "source": {"selector": "projectcalico.org/orchestrator == 'k8s' && role == 'client'"},
                            "destination": {"ports": [80]}}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 80)), Verdict::Allow);
    assert_eq!(verdict(&s, &tcp(DEV_CLIENT, SERVER, 80)), Verdict::Deny);
    let default = s
        .ordering()
        .into_iter()
        .find(|(t, _)| t == "default")
        .unwrap()
        .1;
    assert_eq!(
        default[0].to_string(),
        "default/knp/prod/knp.default.allow-clients"
    );
}

#[test]
fn traffic_to_and_from_non_endpoints_has_one_side() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "client-out",
        json!({"selector": "role == 'client'", "types": ["Egress"],
               "egress": [{"action": "Allow", "destination": {"nets": ["8.8.8.8/32"]}}]}),
    ));
    let s = set(res);
    let d = evaluate(&s, &udp(CLIENT, "8.8.8.8", 53));
    assert_eq!(d.overall, Verdict::Allow);
    assert!(d.ingress_of_dst_endpoint.is_none());
    assert_eq!(verdict(&s, &udp(CLIENT, "8.8.4.4", 53)), Verdict::Deny);
    let d = evaluate(&s, &tcp(UNKNOWN, SERVER, 80));
    assert!(d.egress_of_src_endpoint.is_none());
    assert_eq!(d.overall, Verdict::Allow);
    // Neither side is an endpoint: not Calico's traffic.
    let d = evaluate(&s, &tcp(UNKNOWN, "8.8.8.8", 80));
    assert_eq!(d.overall, Verdict::Allow);
    assert!(d.egress_of_src_endpoint.is_none() && d.ingress_of_dst_endpoint.is_none());
}

#[test]
fn workloads_may_not_send_vxlan_or_ipip_unless_configured() {
    let s = set(fixture());
    let d = evaluate(&s, &udp(CLIENT, SERVER, 4789));
    assert_eq!(
        d.egress_of_src_endpoint.unwrap().decided_by,
        DecidedBy::EncapFromWorkload
    );
    let ipip = calico_policy_eval::Packet::new(CLIENT.parse().unwrap(), SERVER.parse().unwrap(), 4);
    assert_eq!(verdict(&s, &ipip), Verdict::Deny);
    // Towards a workload it is ordinary traffic.
    assert_eq!(verdict(&s, &udp(UNKNOWN, SERVER, 4789)), Verdict::Allow);
    let mut res = fixture();
    res.config.allow_vxlan_packets_from_workloads = true;
    res.config.allow_ipip_packets_from_workloads = true;
    let s = set(res);
    assert_eq!(verdict(&s, &udp(CLIENT, SERVER, 4789)), Verdict::Allow);
    assert_eq!(verdict(&s, &ipip), Verdict::Allow);
}

const HOST: &str = "10.10.0.1";

fn host_fixture(profiles: &[&str]) -> Resources {
    let mut res = fixture();
    res.endpoints.push(
        Endpoint::host("node1-eth0", [("host", "node1")], [HOST])
            .unwrap()
            .with_profiles(profiles.iter().copied()),
    );
    res
}

#[test]
fn host_endpoints_default_deny_with_failsafes() {
    let s = set(host_fixture(&[]));
    assert_eq!(verdict(&s, &tcp(UNKNOWN, HOST, 80)), Verdict::Deny);
    for port in [22, 179, 2379, 2380, 5473, 6443, 6666, 6667] {
        let d = evaluate(&s, &tcp(UNKNOWN, HOST, port));
        assert_eq!(
            d.ingress_of_dst_endpoint.unwrap().decided_by,
            DecidedBy::Failsafe { protocol: 6, port },
            "tcp/{port}"
        );
    }
    assert_eq!(verdict(&s, &udp(UNKNOWN, HOST, 68)), Verdict::Allow);
    assert_eq!(verdict(&s, &udp(UNKNOWN, HOST, 53)), Verdict::Deny);
    // Outbound failsafes.
    assert_eq!(verdict(&s, &udp(HOST, UNKNOWN, 53)), Verdict::Allow);
    assert_eq!(verdict(&s, &udp(HOST, UNKNOWN, 67)), Verdict::Allow);
    assert_eq!(verdict(&s, &tcp(HOST, UNKNOWN, 22)), Verdict::Deny);
    assert_eq!(verdict(&s, &tcp(HOST, UNKNOWN, 6443)), Verdict::Allow);
}

#[test]
fn failsafes_win_over_policy_and_default_allow_profile_opens_hosts() {
    let mut res = host_fixture(&["projectcalico-default-allow"]);
    res.global_policies.push(gnp(
        "lockdown",
        json!({"selector": "has(host)", "types": ["Ingress"], "ingress": [{"action": "Deny"}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(UNKNOWN, HOST, 22)), Verdict::Allow);
    assert_eq!(verdict(&s, &tcp(UNKNOWN, HOST, 80)), Verdict::Deny);
    // Egress is not governed by the policy: the default-allow profile accepts.
    let d = evaluate(&s, &tcp(HOST, UNKNOWN, 80));
    assert_eq!(
        d.egress_of_src_endpoint.unwrap().decided_by,
        DecidedBy::ProfileRule {
            profile: "projectcalico-default-allow".into(),
            rule: 0
        }
    );
}

#[test]
fn failsafes_never_apply_to_workloads() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "deny",
        json!({"selector": "role == 'server'", "types": ["Ingress"]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 22)), Verdict::Deny);
}

#[test]
fn apply_on_forward_policies_and_the_forward_default() {
    let mut res = host_fixture(&[]);
    res.global_policies.push(gnp(
        "host-normal",
        json!({"selector": "has(host)", "ingress": [{"action": "Deny"}]}),
    ));
    let s = set(res.clone());
    let pkt = tcp(UNKNOWN, SERVER, 80);
    let r = evaluate_chain(
        &s,
        "node1-eth0",
        Direction::Ingress,
        ChainType::Forward,
        &pkt,
    )
    .unwrap();
    assert_eq!(r.verdict, Some(Verdict::Allow));
    assert_eq!(r.decided_by, DecidedBy::ForwardDefault);
    res.global_policies.push(gnp(
        "host-forward",
        json!({"selector": "has(host)", "applyOnForward": true,
               "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [443]}}]}),
    ));
    let s = set(res);
    let r = evaluate_chain(
        &s,
        "node1-eth0",
        Direction::Ingress,
        ChainType::Forward,
        &pkt,
    )
    .unwrap();
    assert_eq!(
        r.decided_by,
        DecidedBy::EndOfTier {
            tier: "default".into()
        }
    );
    let r = evaluate_chain(
        &s,
        "node1-eth0",
        Direction::Ingress,
        ChainType::Forward,
        &tcp(UNKNOWN, SERVER, 443),
    )
    .unwrap();
    assert_eq!(r.verdict, Some(Verdict::Allow));
    // Failsafes are not part of forward chains.
    let r = evaluate_chain(
        &s,
        "node1-eth0",
        Direction::Ingress,
        ChainType::Forward,
        &tcp(UNKNOWN, SERVER, 22),
    )
    .unwrap();
    assert_eq!(r.verdict, Some(Verdict::Deny));
}

#[test]
fn pre_dnat_and_do_not_track_chains_have_no_end_of_tier_drop() {
    let mut res = host_fixture(&[]);
    res.global_policies.push(gnp(
        "pre",
        json!({"selector": "has(host)", "preDNAT": true, "applyOnForward": true, "types": ["Ingress"],
               "ingress": [{"action": "Deny", "source": {"nets": ["203.0.113.0/24"]}}]}),
    ));
    res.global_policies.push(gnp(
        "untracked",
        json!({"selector": "has(host)", "doNotTrack": true, "applyOnForward": true,
               "types": ["Ingress", "Egress"],
               "ingress": [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [4789]}}],
               "egress": [{"action": "Allow", "protocol": "UDP", "source": {"ports": [4789]}}]}),
    ));
    let s = set(res);
    let chain = |dir, ty, p: &calico_policy_eval::Packet| {
        evaluate_chain(&s, "node1-eth0", dir, ty, p).unwrap()
    };
    use ChainType::*;
    use Direction::*;
    assert_eq!(
        chain(Ingress, PreDnat, &tcp(UNKNOWN, HOST, 80)).verdict,
        Some(Verdict::Deny)
    );
    let r = chain(Ingress, PreDnat, &tcp(EXTERNAL, HOST, 80));
    assert_eq!((r.verdict, r.decided_by), (None, DecidedBy::Nothing));
    // Pre-DNAT policy never applies to egress.
    assert_eq!(
        chain(Egress, PreDnat, &tcp(HOST, UNKNOWN, 80)).verdict,
        None
    );
    assert_eq!(
        chain(Ingress, Untracked, &udp(UNKNOWN, HOST, 4789)).verdict,
        Some(Verdict::Allow)
    );
    assert_eq!(
        chain(Ingress, Untracked, &udp(UNKNOWN, HOST, 4790)).verdict,
        None
    );
    // Raw-table failsafes also accept responses (source port = an outbound failsafe port).
    let resp = udp(UNKNOWN, HOST, 33000).with_src_port(53);
    assert!(matches!(
        chain(Ingress, Untracked, &resp).decided_by,
        DecidedBy::Failsafe {
            protocol: 17,
            port: 53
        }
    ));
    assert_eq!(chain(Ingress, Normal, &resp).verdict, Some(Verdict::Deny));
    // Neither kind of policy is part of the normal chain: no policy applies, no profile.
    assert_eq!(
        chain(Ingress, Normal, &udp(UNKNOWN, HOST, 4789)).decided_by,
        DecidedBy::NoProfileMatched
    );
    // Workloads only have normal chains.
    assert!(matches!(
        evaluate_chain(&s, "prod/server", Ingress, Untracked, &resp),
        Err(EvalError::Unsupported { .. })
    ));
    assert!(matches!(
        evaluate_chain(&s, "nope", Ingress, Normal, &resp),
        Err(EvalError::UnknownEndpoint(_))
    ));
}

#[test]
fn staged_policies_never_change_a_verdict_and_yaml_input_works() {
    let yaml = r#"
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node1-k8s-web-eth0
  namespace: shop
  labels: {app: web}
spec:
  orchestrator: k8s
  node: node1
  pod: web
  endpoint: eth0
  interfaceName: cali0123456789a
  ipNetworks: ["10.1.0.1/32"]
  profiles: ["kns.shop"]
  ports:
  - {name: http, protocol: TCP, port: 8080}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  name: node1-k8s-cli-eth0
  namespace: shop
  labels: {app: cli}
spec:
  orchestrator: k8s
  node: node1
  pod: cli
  endpoint: eth0
  interfaceName: cali0123456789b
  ipNetworks: ["10.1.0.2/32"]
  profiles: ["kns.shop"]
---
apiVersion: projectcalico.org/v3
kind: StagedGlobalNetworkPolicy
metadata:
  name: would-deny-all
spec:
  selector: all()
  types: [Ingress, Egress]
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: web
  namespace: shop
spec:
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'cli'}
    destination: {ports: [http]}
"#;
    let s = set(Resources::from_yaml(yaml).unwrap());
    assert_eq!(
        verdict(&s, &tcp("10.1.0.2", "10.1.0.1", 8080)),
        Verdict::Allow
    );
    assert_eq!(verdict(&s, &tcp("10.1.0.2", "10.1.0.1", 80)), Verdict::Deny);
    assert_eq!(
        verdict(&s, &tcp("10.1.0.1", "10.1.0.2", 80)),
        Verdict::Allow
    );
    let labels = s.endpoint_labels("shop/node1-k8s-web-eth0").unwrap();
    assert_eq!(
        labels
            .get("projectcalico.org/orchestrator")
            .map(String::as_str),
        Some("k8s")
    );
    assert_eq!(
        labels
            .get("pcns.projectcalico.org/name")
            .map(String::as_str),
        Some("shop")
    );
}

#[test]
fn bad_inputs_are_reported_with_what_is_wrong() {
    let err = |res: Resources| PolicySet::from_resources(res).unwrap_err();

    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "svc",
        json!({"selector": "all()", "types": ["Egress"],
               "egress": [{"action": "Allow", "destination": {"services": {"name": "kube-dns", "namespace": "kube-system"}}}]}),
    ));
    let e = err(res);
    assert!(matches!(e, EvalError::Unsupported { .. }), "{e}");
    assert!(
        e.to_string().contains("np/prod/svc egress[0] destination"),
        "{e}"
    );

    let mut res = fixture();
    res.endpoints
        .push(Endpoint::pod("prod/dup", "prod", [("a", "b")], [SERVER]).unwrap());
    assert!(matches!(err(res), EvalError::DuplicateAddress { .. }));

    let mut res = fixture();
    res.endpoints
        .push(Endpoint::pod("prod/server", "prod", [("a", "b")], ["10.9.9.9"]).unwrap());
    assert_eq!(err(res), EvalError::DuplicateEndpoint("prod/server".into()));

    let mut res = fixture();
    res.endpoints.push(
        Endpoint::workload("prod/vm", "prod", [("a", "b")], ["10.9.9.9"])
            .unwrap()
            .with_profiles(["missing"]),
    );
    assert_eq!(
        err(res),
        EvalError::UnknownProfile {
            endpoint: "prod/vm".into(),
            profile: "missing".into()
        }
    );

    let mut res = fixture();
    res.endpoints.push(
        Endpoint::pod("prod/x", "prod", [("a", "b")], ["10.9.9.9"])
            .unwrap()
            .with_namespace_labels([("env", "staging")]),
    );
    assert!(matches!(err(res), EvalError::ConflictingLabels { .. }));

    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "bad",
        json!({"selector": "role == ", "ingress": [{"action": "Allow"}]}),
    ));
    let e = err(res);
    assert!(
        matches!(
            e,
            EvalError::InvalidResource {
                kind: "NetworkPolicy",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("spec.selector"), "{e}");

    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "unmasked",
        json!({"ingress": [{"action": "Allow", "source": {"nets": ["10.0.1.77/24"]}}]}),
    ));
    assert!(err(res).to_string().contains("10.0.1.77/24"));

    let yaml = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/16}\n";
    assert!(matches!(
        Resources::from_yaml(yaml).unwrap_err(),
        EvalError::UnsupportedKind { kind: "IPPool", .. }
    ));
    let yaml = "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\nmetadata: {name: w, namespace: ns9}\n\
                spec: {node: n1, orchestrator: k8s, pod: p, endpoint: eth0, interfaceName: cali1, \
                ipNetworks: [not-an-ip]}\n";
    let e = Resources::from_yaml(yaml).unwrap_err();
    assert!(
        matches!(
            e,
            EvalError::InvalidResource {
                kind: "WorkloadEndpoint",
                ..
            }
        ),
        "{e}"
    );
    assert!(calico_policy_eval::Packet::tcp("nonsense", SERVER, 1).is_err());
    assert!(Endpoint::pod("a/b", "a", [("x", "y")], ["10.0.0.0/33"]).is_err());
}

#[test]
fn only_the_address_of_an_endpoint_network_counts() {
    let mut res = fixture();
    res.endpoints
        .push(Endpoint::pod("prod/wide", "prod", [("role", "wide")], ["10.0.5.7/24"]).unwrap());
    res.global_policies.push(gnp(
        "from-wide",
        json!({"selector": "role == 'server'", "types": ["Ingress"],
               "ingress": [{"action": "Allow", "source": {"selector": "role == 'wide'"}}]}),
    ));
    let s = set(res);
    assert_eq!(verdict(&s, &tcp("10.0.5.7", SERVER, 80)), Verdict::Allow);
    let d = evaluate(&s, &tcp("10.0.5.8", SERVER, 80));
    assert!(d.egress_of_src_endpoint.is_none());
    assert_eq!(d.overall, Verdict::Deny);
    // Another endpoint may use a neighbouring address of that /24.
    let mut res = fixture();
    res.endpoints
        .push(Endpoint::pod("prod/wide", "prod", [("role", "wide")], ["10.0.5.7/24"]).unwrap());
    res.endpoints
        .push(Endpoint::pod("prod/next", "prod", [("role", "next")], ["10.0.5.8"]).unwrap());
    assert!(PolicySet::from_resources(res).is_ok());
}

#[test]
fn a_forward_policy_for_one_direction_removes_the_forward_default_for_both() {
    let mut res = host_fixture(&[]);
    res.global_policies.push(gnp(
        "fwd-egress",
        json!({"selector": "has(host)", "applyOnForward": true, "types": ["Egress"],
               "egress": [{"action": "Allow"}]}),
    ));
    let s = set(res);
    let pkt = tcp(UNKNOWN, SERVER, 80);
    let r = evaluate_chain(
        &s,
        "node1-eth0",
        Direction::Ingress,
        ChainType::Forward,
        &pkt,
    )
    .unwrap();
    assert_eq!((r.verdict, r.decided_by), (None, DecidedBy::Nothing));
    let r = evaluate_chain(
        &s,
        "node1-eth0",
        Direction::Egress,
        ChainType::Forward,
        &pkt,
    )
    .unwrap();
    assert_eq!(r.verdict, Some(Verdict::Allow));
}

#[test]
fn reachability_matrix_of_a_namespace_isolation_policy() {
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "same-namespace-only",
        json!({"selector": "all()", "types": ["Ingress"],
               "ingress": [{"action": "Allow", "source": {"selector": "all()"}}]}),
    ));
    let s = set(res);
    let m = calico_policy_eval::reachability(&s, |a, b| {
        calico_policy_eval::Packet::tcp(&a.to_string(), &b.to_string(), 80).unwrap()
    });
    let get = |from: &str, to: &str| {
        m.iter()
            .find(|r| r.from == from && r.to == to)
            .map(|r| r.verdict)
    };
    assert_eq!(get("prod/client", "prod/server"), Some(Verdict::Allow));
    assert_eq!(get("dev/client", "prod/server"), Some(Verdict::Deny));
    assert_eq!(get("prod/server", "dev/client"), Some(Verdict::Allow));
    // prod/client6 only has an IPv6 address: it pairs with the server's IPv6 address only.
    assert_eq!(get("prod/client6", "prod/server"), Some(Verdict::Allow));
    assert_eq!(get("prod/client6", "prod/client"), None);
    // 5 endpoints: 20 ordered pairs, minus the 6 pairs of client6 with IPv4-only pods.
    assert_eq!(m.len(), 14);
}

fn node_fixture(action: calico_policy_eval::EndpointToHostAction) -> PolicySet {
    let mut res = fixture();
    res.endpoints = res
        .endpoints
        .into_iter()
        .map(|e| {
            if e.key == "prod/server" {
                e.with_node("node1")
            } else {
                e.with_node("node2")
            }
        })
        .collect();
    res.endpoints.push(
        Endpoint::host("node1-eth0", [("host", "node1")], [HOST])
            .unwrap()
            .with_node("node1"),
    );
    res.host_addresses
        .insert("node2".into(), vec!["10.10.0.2".parse().unwrap()]);
    // Everything is default-deny: pods and the host endpoint.
    res.global_policies.push(gnp(
        "deny-all",
        json!({"selector": "all()", "types": ["Ingress", "Egress"]}),
    ));
    res.config.default_endpoint_to_host_action = action;
    set(res)
}

#[test]
fn host_to_its_own_workloads_is_not_policed() {
    use calico_policy_eval::EndpointToHostAction::Drop;
    let s = node_fixture(Drop);
    let d = evaluate(&s, &tcp(HOST, SERVER, 80));
    assert_eq!(d.overall, Verdict::Allow, "{d}");
    assert!(d.egress_of_src_endpoint.is_none());
    assert_eq!(
        d.ingress_of_dst_endpoint.unwrap().decided_by,
        DecidedBy::HostToLocalWorkload
    );
    // To a workload on another node: the host endpoint's egress and the pod's ingress apply.
    let d = evaluate(&s, &tcp(HOST, CLIENT, 80));
    assert_eq!(d.overall, Verdict::Deny);
    assert!(d.egress_of_src_endpoint.is_some());
    // node2's address is not an endpoint, but it is node2's host: not policed either.
    assert_eq!(verdict(&s, &tcp("10.10.0.2", CLIENT, 80)), Verdict::Allow);
}

#[test]
fn workload_to_its_own_host_uses_default_endpoint_to_host_action() {
    use calico_policy_eval::EndpointToHostAction::*;
    let mut res = fixture();
    res.endpoints = res
        .endpoints
        .into_iter()
        .map(|e| e.with_node("node1"))
        .collect();
    res.endpoints.push(
        Endpoint::host("node1-eth0", [("host", "node1")], [HOST])
            .unwrap()
            .with_node("node1"),
    );
    for (action, want) in [
        (Drop, Verdict::Deny),
        (Return, Verdict::Allow),
        (Accept, Verdict::Allow),
    ] {
        let mut r = res.clone();
        r.config.default_endpoint_to_host_action = action;
        let s = set(r);
        let d = evaluate(&s, &tcp(CLIENT, HOST, 80));
        assert_eq!(d.overall, want, "{action:?}: {d}");
        let ing = d.ingress_of_dst_endpoint.unwrap();
        assert_eq!(ing.endpoint, "node/node1");
        assert_eq!(ing.decided_by, DecidedBy::EndpointToHost(action));
    }
    // Egress policy still comes first.
    let mut r = res.clone();
    r.config.default_endpoint_to_host_action = Accept;
    r.policies.push(np(
        "prod",
        "client-out",
        json!({"selector": "role == 'client'", "types": ["Egress"]}),
    ));
    let s = set(r);
    assert_eq!(verdict(&s, &tcp(CLIENT, HOST, 80)), Verdict::Deny);
    // ICMPv6 neighbour discovery bypasses egress policy.
    let mut r = res;
    r.host_addresses
        .insert("node1".into(), vec!["2001:db8::ff".parse().unwrap()]);
    r.policies.push(np(
        "prod",
        "client6-out",
        json!({"selector": "role == 'client'", "types": ["Egress"]}),
    ));
    let s = set(r);
    let d = evaluate(&s, &icmp(CLIENT6, "2001:db8::ff", 135, 0));
    assert_eq!(d.overall, Verdict::Allow, "{d}");
    assert_eq!(
        verdict(&s, &icmp(CLIENT6, "2001:db8::ff", 128, 0)),
        Verdict::Deny
    );
}

#[test]
fn failsafe_entries_with_nets_and_custom_lists() {
    let mut res = host_fixture(&[]);
    res.config.failsafe_inbound = vec![calico_policy_eval::ProtoPort {
        protocol: 6,
        port: 22,
        net: Some("192.0.2.0/24".parse().unwrap()),
    }];
    res.config.failsafe_outbound = Vec::new();
    let s = set(res);
    assert_eq!(verdict(&s, &tcp(EXTERNAL, HOST, 22)), Verdict::Allow);
    assert_eq!(verdict(&s, &tcp(UNKNOWN, HOST, 22)), Verdict::Deny);
    assert_eq!(verdict(&s, &tcp(UNKNOWN, HOST, 6443)), Verdict::Deny);
    assert_eq!(verdict(&s, &udp(HOST, UNKNOWN, 53)), Verdict::Deny);
}

#[test]
fn namespace_labels_from_the_namespaces_map_and_host_endpoints_from_yaml() {
    let yaml = r#"
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata:
  name: node1-eth0
  labels: {role: edge}
spec:
  node: node1
  interfaceName: eth0
  expectedIPs: ["10.10.0.1"]
  profiles: [projectcalico-default-allow]
  ports:
  - {name: metrics, protocol: TCP, port: 9091}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: edge
spec:
  selector: role == 'edge'
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: TCP
    source: {namespaceSelector: "zone == 'trusted'"}
    destination: {ports: [metrics]}
"#;
    let mut res = Resources::from_yaml(yaml).unwrap();
    res.endpoints
        .push(Endpoint::pod("mon/prom", "mon", [("app", "prom")], ["10.0.9.1"]).unwrap());
    res.endpoints
        .push(Endpoint::pod("web/app", "web", [("app", "web")], ["10.0.9.2"]).unwrap());
    res.namespaces.insert(
        "mon".into(),
        [("zone".to_string(), "trusted".to_string())].into(),
    );
    let s = set(res);
    assert_eq!(verdict(&s, &tcp("10.0.9.1", HOST, 9091)), Verdict::Allow);
    assert_eq!(verdict(&s, &tcp("10.0.9.2", HOST, 9091)), Verdict::Deny);
    assert_eq!(verdict(&s, &tcp("10.0.9.1", HOST, 9090)), Verdict::Deny);
    // Failsafe still open.
    assert_eq!(verdict(&s, &tcp("10.0.9.2", HOST, 22)), Verdict::Allow);
    let labels = s.endpoint_labels("mon/prom").unwrap();
    assert_eq!(labels.get("pcns.zone").map(String::as_str), Some("trusted"));
}

#[test]
fn calico_policies_named_knp_default_are_kubernetes_policies() {
    // kube-controllers stores converted Kubernetes policies in etcd as Calico NetworkPolicies
    // named `knp.default.<name>`; given as plain Calico policies they still get that kind,
    // which changes the ordering tie-break ("<name>/<namespace>/<kind>").
    let mut res = fixture();
    res.policies.push(np(
        "prod",
        "knp.default.allow-clients",
        json!({"order": 1000, "selector": "role == 'server'", "ingress": [{"action": "Allow"}]}),
    ));
    let s = set(res);
    let default = s
        .ordering()
        .into_iter()
        .find(|(t, _)| t == "default")
        .unwrap()
        .1;
    assert_eq!(
        default[0].to_string(),
        "default/knp/prod/knp.default.allow-clients"
    );
    assert_eq!(verdict(&s, &tcp(CLIENT, SERVER, 80)), Verdict::Allow);
}
