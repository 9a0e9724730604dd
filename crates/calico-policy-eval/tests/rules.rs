//! One table row per rule feature: a single ingress rule on `prod/server` (Allow unless the
//! row says otherwise), in a NetworkPolicy in namespace prod ("np") or a GlobalNetworkPolicy
//! ("gnp"). The policy selects the server, so a packet the rule does not match hits the
//! default tier's end-of-tier drop: "allowed" means "the rule matched".

#![allow(clippy::unwrap_used)]

mod common;

use calico_policy_eval::{DecidedBy, Packet, PolicySet, Verdict, evaluate};
use common::*;
use serde_json::json;

struct Row {
    name: &'static str,
    kind: &'static str,
    rule: serde_json::Value,
    packet: Packet,
    allowed: bool,
}

fn row(
    name: &'static str,
    kind: &'static str,
    rule: serde_json::Value,
    packet: Packet,
    allowed: bool,
) -> Row {
    Row {
        name,
        kind,
        rule,
        packet,
        allowed,
    }
}

fn table() -> Vec<Row> {
    let a = |extra: serde_json::Value| {
        let mut r = json!({"action": "Allow"});
        if let (Some(m), Some(e)) = (r.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        r
    };
    vec![
        // Protocol.
        row(
            "empty rule matches all",
            "np",
            a(json!({})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "protocol TCP",
            "np",
            a(json!({"protocol": "TCP"})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "protocol TCP vs UDP",
            "np",
            a(json!({"protocol": "TCP"})),
            udp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "protocol number",
            "np",
            a(json!({"protocol": 6})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "protocol UDPLite",
            "np",
            a(json!({"protocol": "UDPLite"})),
            Packet::new(CLIENT.parse().unwrap(), SERVER.parse().unwrap(), 136),
            true,
        ),
        row(
            "notProtocol other",
            "np",
            a(json!({"notProtocol": "TCP"})),
            udp(CLIENT, SERVER, 53),
            true,
        ),
        row(
            "notProtocol same",
            "np",
            a(json!({"notProtocol": "TCP"})),
            tcp(CLIENT, SERVER, 53),
            false,
        ),
        row(
            "notProtocol by number",
            "np",
            a(json!({"notProtocol": 17})),
            udp(CLIENT, SERVER, 53),
            false,
        ),
        row(
            "SCTP port",
            "np",
            a(json!({"protocol": "SCTP", "destination": {"ports": [3868]}})),
            Packet::sctp(CLIENT, SERVER, 3868).unwrap(),
            true,
        ),
        row(
            "SCTP port vs TCP packet",
            "np",
            a(json!({"protocol": "SCTP", "destination": {"ports": [3868]}})),
            tcp(CLIENT, SERVER, 3868),
            false,
        ),
        // Numeric ports.
        row(
            "dst port",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": [80]}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "dst port other",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": [80]}})),
            tcp(CLIENT, SERVER, 81),
            false,
        ),
        row(
            "dst range",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": ["80:90"]}})),
            tcp(CLIENT, SERVER, 90),
            true,
        ),
        row(
            "dst range above",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": ["80:90"]}})),
            tcp(CLIENT, SERVER, 91),
            false,
        ),
        row(
            "dst ports ORed",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": [22, "8000:8100"]}})),
            tcp(CLIENT, SERVER, 8050),
            true,
        ),
        row(
            "dst notPorts other",
            "np",
            a(json!({"protocol": "TCP", "destination": {"notPorts": [22]}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "dst notPorts same",
            "np",
            a(json!({"protocol": "TCP", "destination": {"notPorts": ["20:22"]}})),
            tcp(CLIENT, SERVER, 22),
            false,
        ),
        row(
            "src port",
            "np",
            a(json!({"protocol": "TCP", "source": {"ports": [40000]}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "src port other",
            "np",
            a(json!({"protocol": "TCP", "source": {"ports": [1234]}})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "ports and notPorts",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": ["1:1000"], "notPorts": [443]}})),
            tcp(CLIENT, SERVER, 443),
            false,
        ),
        // Named ports: resolved against the endpoint owning the packet's address.
        row(
            "named port",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": ["http"]}})),
            tcp(CLIENT, SERVER, 8080),
            true,
        ),
        row(
            "named port other number",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": ["http"]}})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "named port wrong protocol",
            "np",
            a(json!({"protocol": "UDP", "destination": {"ports": ["http"]}})),
            udp(CLIENT, SERVER, 8080),
            false,
        ),
        row(
            "named port without protocol",
            "np",
            a(json!({"destination": {"ports": ["dns"]}})),
            udp(CLIENT, SERVER, 5353),
            true,
        ),
        row(
            "named port protocol must equal the port's",
            "np",
            a(json!({"destination": {"ports": ["dns"]}})),
            tcp(CLIENT, SERVER, 5353),
            false,
        ),
        row(
            "named port ORed with number",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": ["http", 9000]}})),
            tcp(CLIENT, SERVER, 9000),
            true,
        ),
        row(
            "named port on the IPv6 address",
            "np",
            a(json!({"protocol": "TCP", "destination": {"ports": ["http"]}})),
            tcp(CLIENT6, SERVER6, 8080),
            true,
        ),
        row(
            "named port filtered by selector",
            "np",
            a(
                json!({"protocol": "TCP", "destination": {"selector": "role == 'server'", "ports": ["http"]}}),
            ),
            tcp(CLIENT, SERVER, 8080),
            true,
        ),
        row(
            "named port, selector not matching",
            "np",
            a(
                json!({"protocol": "TCP", "destination": {"selector": "role == 'db'", "ports": ["http"]}}),
            ),
            tcp(CLIENT, SERVER, 8080),
            false,
        ),
        row(
            "named notPort same",
            "np",
            a(json!({"protocol": "TCP", "destination": {"notPorts": ["http"]}})),
            tcp(CLIENT, SERVER, 8080),
            false,
        ),
        row(
            "named notPort other",
            "np",
            a(json!({"protocol": "TCP", "destination": {"notPorts": ["http"]}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        // Nets.
        row(
            "src nets",
            "np",
            a(json!({"source": {"nets": ["10.0.1.0/24"]}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "src nets outside",
            "np",
            a(json!({"source": {"nets": ["10.0.1.0/24"]}})),
            tcp(DEV_CLIENT, SERVER, 80),
            false,
        ),
        row(
            "src nets ORed",
            "np",
            a(json!({"source": {"nets": ["10.9.0.0/16", "10.0.2.0/24"]}})),
            tcp(DEV_CLIENT, SERVER, 80),
            true,
        ),
        row(
            "src notNets inside",
            "np",
            a(json!({"source": {"notNets": ["10.0.2.0/24"]}})),
            tcp(DEV_CLIENT, SERVER, 80),
            false,
        ),
        row(
            "src notNets outside",
            "np",
            a(json!({"source": {"notNets": ["10.0.2.0/24"]}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "nets and notNets",
            "np",
            a(json!({"source": {"nets": ["10.0.0.0/8"], "notNets": ["10.0.2.0/24"]}})),
            tcp(DEV_CLIENT, SERVER, 80),
            false,
        ),
        row(
            "dst nets",
            "np",
            a(json!({"destination": {"nets": ["10.0.1.1/32"]}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "v6 nets vs v4 packet: rule dropped",
            "np",
            a(json!({"source": {"nets": ["2001:db8::/64"]}})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "v6 nets vs v6 packet",
            "np",
            a(json!({"source": {"nets": ["2001:db8::/64"]}})),
            tcp(CLIENT6, SERVER6, 80),
            true,
        ),
        row(
            "v6 notNets vs v4 packet: rule dropped",
            "np",
            a(json!({"source": {"notNets": ["2001:db8::/64"]}})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        // Selectors (IP-set semantics: endpoints and network sets, by address).
        row(
            "np selector, same namespace",
            "np",
            a(json!({"source": {"selector": "role == 'client'"}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "np selector is namespace-scoped",
            "np",
            a(json!({"source": {"selector": "role == 'client'"}})),
            tcp(DEV_CLIENT, SERVER, 80),
            false,
        ),
        row(
            "gnp selector is cluster-wide",
            "gnp",
            a(json!({"source": {"selector": "role == 'client'"}})),
            tcp(DEV_CLIENT, SERVER, 80),
            true,
        ),
        row(
            "selector never matches unknown addresses",
            "gnp",
            a(json!({"source": {"selector": "all()"}})),
            tcp(UNKNOWN, SERVER, 80),
            false,
        ),
        row(
            "np notSelector excludes",
            "np",
            a(json!({"source": {"notSelector": "role == 'client'"}})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "np notSelector keeps others of the namespace",
            "np",
            a(json!({"source": {"notSelector": "role == 'client'"}})),
            tcp(OTHER, SERVER, 80),
            true,
        ),
        row(
            "np notSelector alone is still namespace-scoped",
            "np",
            a(json!({"source": {"notSelector": "role == 'client'"}})),
            tcp(EXTERNAL, SERVER, 80),
            false,
        ),
        row(
            "gnp notSelector matches non-Calico sources",
            "gnp",
            a(json!({"source": {"notSelector": "role == 'client'"}})),
            tcp(UNKNOWN, SERVER, 80),
            true,
        ),
        row(
            "selector and notSelector combined",
            "gnp",
            a(json!({"source": {"selector": "has(role)", "notSelector": "role == 'client'"}})),
            tcp(OTHER, SERVER, 80),
            true,
        ),
        row(
            "selector and notSelector combined, excluded",
            "gnp",
            a(json!({"source": {"selector": "has(role)", "notSelector": "role == 'client'"}})),
            tcp(DEV_CLIENT, SERVER, 80),
            false,
        ),
        row(
            "global network set by label",
            "gnp",
            a(json!({"source": {"selector": "kind == 'external'"}})),
            tcp(EXTERNAL, SERVER, 80),
            true,
        ),
        row(
            "global network set label, other address",
            "gnp",
            a(json!({"source": {"selector": "kind == 'external'"}})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "namespaced network set from its namespace",
            "np",
            a(json!({"source": {"selector": "kind == 'partner'"}})),
            tcp(PARTNER, SERVER, 80),
            true,
        ),
        row(
            "global network set not in the namespace",
            "np",
            a(json!({"source": {"selector": "kind == 'external'"}})),
            tcp(EXTERNAL, SERVER, 80),
            false,
        ),
        row(
            "selector on inherited namespace label",
            "gnp",
            a(json!({"source": {"selector": "pcns.env == 'dev'"}})),
            tcp(DEV_CLIENT, SERVER, 80),
            true,
        ),
        // namespaceSelector.
        row(
            "namespaceSelector other namespace",
            "np",
            a(json!({"source": {"namespaceSelector": "env == 'dev'"}})),
            tcp(DEV_CLIENT, SERVER, 80),
            true,
        ),
        row(
            "namespaceSelector excludes own namespace",
            "np",
            a(json!({"source": {"namespaceSelector": "env == 'dev'"}})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "namespaceSelector all() + selector",
            "np",
            a(json!({"source": {"namespaceSelector": "all()", "selector": "role == 'client'"}})),
            tcp(DEV_CLIENT, SERVER, 80),
            true,
        ),
        row(
            "namespaceSelector all() excludes global sets",
            "gnp",
            a(json!({"source": {"namespaceSelector": "all()"}})),
            tcp(EXTERNAL, SERVER, 80),
            false,
        ),
        row(
            "namespaceSelector global() selects global sets",
            "gnp",
            a(json!({"source": {"namespaceSelector": "global()"}})),
            tcp(EXTERNAL, SERVER, 80),
            true,
        ),
        row(
            "namespaceSelector global() excludes pods",
            "gnp",
            a(json!({"source": {"namespaceSelector": "global()"}})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "namespaceSelector on a network set's namespace",
            "gnp",
            a(json!({"source": {"namespaceSelector": "env == 'prod'"}})),
            tcp(PARTNER, SERVER, 80),
            true,
        ),
        row(
            "namespaceSelector by name label",
            "gnp",
            a(json!({"source": {"namespaceSelector": "projectcalico.org/name == 'dev'"}})),
            tcp(DEV_CLIENT, SERVER, 80),
            true,
        ),
        // serviceAccounts.
        row(
            "serviceAccounts names",
            "np",
            a(json!({"source": {"serviceAccounts": {"names": ["client-sa"]}}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "serviceAccounts names, other pod",
            "np",
            a(json!({"source": {"serviceAccounts": {"names": ["client-sa"]}}})),
            tcp(OTHER, SERVER, 80),
            false,
        ),
        row(
            "serviceAccounts selector",
            "np",
            a(json!({"source": {"serviceAccounts": {"selector": "tier == 'frontend'"}}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        row(
            "serviceAccounts names AND selector",
            "np",
            a(
                json!({"source": {"serviceAccounts": {"names": ["client-sa"], "selector": "tier == 'backend'"}}}),
            ),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "serviceAccounts name label",
            "gnp",
            a(
                json!({"destination": {"serviceAccounts": {"selector": "projectcalico.org/name == 'server-sa'"}}}),
            ),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        // ICMP.
        row(
            "icmp type",
            "np",
            a(json!({"protocol": "ICMP", "icmp": {"type": 8}})),
            icmp(CLIENT, SERVER, 8, 0),
            true,
        ),
        row(
            "icmp type other",
            "np",
            a(json!({"protocol": "ICMP", "icmp": {"type": 8}})),
            icmp(CLIENT, SERVER, 0, 0),
            false,
        ),
        row(
            "icmp type and code",
            "np",
            a(json!({"protocol": "ICMP", "icmp": {"type": 3, "code": 1}})),
            icmp(CLIENT, SERVER, 3, 1),
            true,
        ),
        row(
            "icmp type and other code",
            "np",
            a(json!({"protocol": "ICMP", "icmp": {"type": 3, "code": 1}})),
            icmp(CLIENT, SERVER, 3, 2),
            false,
        ),
        row(
            "notICMP other type",
            "np",
            a(json!({"protocol": "ICMP", "notICMP": {"type": 8}})),
            icmp(CLIENT, SERVER, 0, 0),
            true,
        ),
        row(
            "notICMP same type",
            "np",
            a(json!({"protocol": "ICMP", "notICMP": {"type": 8}})),
            icmp(CLIENT, SERVER, 8, 0),
            false,
        ),
        row(
            "protocol ICMP implies IPv4",
            "np",
            a(json!({"protocol": "ICMP"})),
            icmp(CLIENT6, SERVER6, 128, 0),
            false,
        ),
        row(
            "ICMPv6 type",
            "np",
            a(json!({"protocol": "ICMPv6", "icmp": {"type": 128}})),
            icmp(CLIENT6, SERVER6, 128, 0),
            true,
        ),
        row(
            "protocol number 1 implies no IP version",
            "np",
            a(json!({"protocol": 1})),
            icmp(CLIENT, SERVER, 8, 0),
            true,
        ),
        // IP version.
        row(
            "ipVersion 6 vs v4 packet",
            "np",
            a(json!({"ipVersion": 6})),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "ipVersion 6 vs v6 packet",
            "np",
            a(json!({"ipVersion": 6})),
            tcp(CLIENT6, SERVER6, 80),
            true,
        ),
        row(
            "ipVersion 4 vs v4 packet",
            "np",
            a(json!({"ipVersion": 4})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        // HTTP matches are L7 and ignored at L3/L4.
        row(
            "http match ignored",
            "np",
            a(json!({"protocol": "TCP", "http": {"methods": ["GET"]}})),
            tcp(CLIENT, SERVER, 80),
            true,
        ),
        // Actions other than Allow.
        row(
            "Deny",
            "np",
            json!({"action": "Deny"}),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
        row(
            "Log continues to end of tier",
            "np",
            json!({"action": "Log"}),
            tcp(CLIENT, SERVER, 80),
            false,
        ),
    ]
}

#[test]
fn rule_table() {
    let mut failures = Vec::new();
    let rows = table();
    for r in &rows {
        let mut res = fixture();
        let spec = json!({
            "selector": "role == 'server'",
            "types": ["Ingress"],
            "ingress": [r.rule.clone()],
        });
        match r.kind {
            "np" => res.policies.push(np("prod", "under-test", spec)),
            "gnp" => res.global_policies.push(gnp("under-test", spec)),
            other => panic!("bad kind {other}"),
        }
        let set = match PolicySet::from_resources(res) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: {e}", r.name));
                continue;
            }
        };
        let d = evaluate(&set, &r.packet);
        let ingress = d.ingress_of_dst_endpoint.as_ref().unwrap();
        let ok = ingress.allowed() == r.allowed
            && d.overall
                == if r.allowed {
                    Verdict::Allow
                } else {
                    Verdict::Deny
                };
        let by_ok = match (&r.rule["action"], r.allowed) {
            (a, true) if a == "Allow" => {
                matches!(ingress.decided_by, DecidedBy::Rule { rule: 0, .. })
            }
            (a, false) if a == "Deny" => {
                matches!(ingress.decided_by, DecidedBy::Rule { rule: 0, .. })
            }
            (_, false) => {
                matches!(ingress.decided_by, DecidedBy::EndOfTier { ref tier } if tier == "default")
            }
            _ => false,
        };
        if !ok || !by_ok {
            failures.push(format!(
                "{} ({}): expected allowed={} got {d}",
                r.name, r.packet, r.allowed
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    assert!(rows.len() >= 80, "table has {} rows", rows.len());
}
