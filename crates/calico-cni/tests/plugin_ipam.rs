//! The `calico-ipam` plugin's verbs against an in-memory IPAM agent.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;

use calico_cni::plugin::ipam::{IpamPlugin, resolve_pools};
use calico_cni::plugin::{AgentError, Allocation, Response, dispatch};
use calico_cni::spec::{CniError, Command, ErrorCode};
use ipnet::IpNet;
use serde_json::{Value, json};
use support::*;

const CID: &str = "c0ffee0123456789";
const NETNS: &str = "/run/netns/x";
const POD: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=db-0";

struct T {
    host: TestHost,
    p: IpamPlugin<FakeAgent, FakePools, FixedOrAgent>,
}

/// Allocations read from the fake agent itself unless a fixed list is set.
struct FixedOrAgent(std::rc::Rc<std::cell::RefCell<Option<Vec<Allocation>>>>);

impl calico_cni::plugin::AllocationSource for FixedOrAgent {
    fn allocations(&self) -> Result<Vec<Allocation>, CniError> {
        Ok(self.0.borrow().clone().unwrap_or_default())
    }
}

impl T {
    fn new() -> T {
        let host = TestHost::new();
        let mut pools = BTreeMap::new();
        pools.insert(
            "default-ipv4-ippool".to_string(),
            "10.244.0.0/16".parse().unwrap(),
        );
        let p = IpamPlugin {
            agent: FakeAgent::new("node1"),
            pools: FakePools(pools),
            allocations: FixedOrAgent(Default::default()),
            host: host.env(),
        };
        T { host, p }
    }

    /// Makes the allocation source mirror what the agent holds now.
    fn sync_allocations(&self) {
        use calico_cni::plugin::AllocationSource;
        *self.p.allocations.0.borrow_mut() = Some(self.p.agent.allocations().unwrap());
    }

    fn conf(&self, version: &str, ipam: Value, extra: Value) -> Value {
        let mut i = json!({"type": "calico-ipam"});
        for (k, v) in ipam.as_object().unwrap() {
            i[k] = v.clone();
        }
        let mut c = json!({
            "cniVersion": version, "name": "net1", "type": "calico",
            "nodename_file": self.host.nodename_file(), "ipam": i,
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn run(&self, cmd: Command, args: &str, conf: &Value) -> Response {
        let stdin = serde_json::to_vec(conf).unwrap();
        dispatch(&self.p, Ok(cni_env(cmd, CID, Some(NETNS), args)), &stdin)
    }
}

fn ok(r: &Response) -> Option<&Value> {
    assert_eq!(r.exit_code, 0, "expected success, got {:?}", r.stdout);
    r.stdout.as_ref()
}

fn err(r: &Response) -> CniError {
    assert_eq!(r.exit_code, 1, "expected an error, got {:?}", r.stdout);
    r.error.clone().unwrap()
}

#[test]
fn add_counts_table() {
    // ipam section, expected families (calico_cni_ipam_test.go "Request different numbers of
    // IP addresses").
    let cases: &[(Value, bool, bool)] = &[
        (json!({}), true, false),
        (json!({"assign_ipv4": "true"}), true, false),
        (
            json!({"assign_ipv4": "false", "assign_ipv6": "true"}),
            false,
            true,
        ),
        (
            json!({"assign_ipv4": "true", "assign_ipv6": "true"}),
            true,
            true,
        ),
    ];
    for (ipam, v4, v6) in cases {
        let t = T::new();
        let out = ok(&t.run(Command::Add, "", &t.conf("1.0.0", ipam.clone(), json!({}))))
            .unwrap()
            .clone();
        let mut want_ips = Vec::new();
        let mut want_routes = Vec::new();
        if *v4 {
            want_ips.push(json!({"address": "10.244.220.81/26"}));
            want_routes.push(json!({"dst": "10.244.220.81/26"}));
        }
        if *v6 {
            want_ips.push(json!({"address": "fd00:10:244::5/122"}));
            want_routes.push(json!({"dst": "fd00:10:244::5/122"}));
        }
        assert_eq!(
            out,
            json!({"cniVersion": "1.0.0", "ips": want_ips, "routes": want_routes}),
            "{ipam}"
        );
        let req = t.p.agent.requests.borrow()[0].clone();
        assert_eq!(
            (req.num4, req.num6),
            (u32::from(*v4), u32::from(*v6)),
            "{ipam}"
        );
        assert_eq!(req.handle_id, format!("net1.{CID}"));
        assert_eq!(req.node, "node1");
    }
}

#[test]
fn add_attributes_and_pools() {
    let t = T::new();
    let conf = t.conf(
        "1.0.0",
        json!({"ipv4_pools": ["default-ipv4-ippool", "10.250.3.7/24"], "ipv6_pools": ["fd00::/48"]}),
        json!({}),
    );
    ok(&t.run(Command::Add, POD, &conf));
    let req = t.p.agent.requests.borrow()[0].clone();
    assert_eq!(
        req.ipv4_pools,
        vec![
            "10.244.0.0/16".parse::<IpNet>().unwrap(),
            "10.250.3.0/24".parse().unwrap()
        ]
    );
    assert_eq!(req.ipv6_pools, vec!["fd00::/48".parse::<IpNet>().unwrap()]);
    assert_eq!(req.attrs["node"], "node1");
    assert_eq!(req.attrs["pod"], "db-0");
    assert_eq!(req.attrs["namespace"], "prod");
    assert_eq!(req.attrs["timestamp"], "2026-11-22 17:00:00 +0000 UTC");

    // Plain CNI workloads carry only node and timestamp.
    let t = T::new();
    ok(&t.run(
        Command::Add,
        "K8S_POD_NAME=web",
        &t.conf("1.0.0", json!({}), json!({})),
    ));
    let req = t.p.agent.requests.borrow()[0].clone();
    assert_eq!(req.attrs.keys().collect::<Vec<_>>(), ["node", "timestamp"]);
}

#[test]
fn pool_resolution_errors() {
    let pools = FakePools::default();
    let e = resolve_pools(&["nosuchpool".into()], true, &&pools).unwrap_err();
    assert!(
        e.msg.contains("neither a CIDR nor the name of an IP pool"),
        "{e}"
    );
    let e = resolve_pools(&["fd00::/48".into()], true, &&pools).unwrap_err();
    assert!(e.msg.contains("isn't a IPv4 address"), "{e}");
    let e = resolve_pools(&["10.0.0.0/8".into()], false, &&pools).unwrap_err();
    assert!(e.msg.contains("isn't a IPv6 address"), "{e}");
    assert!(resolve_pools(&[], true, &&pools).unwrap().is_empty());
}

#[test]
fn add_failure_table() {
    type Setup = fn(&T);
    let cases: &[(&str, Setup, Value, ErrorCode, &str)] = &[
        (
            "agent down",
            |t| t.p.agent.up.set(false),
            json!({}),
            ErrorCode::TRY_AGAIN_LATER,
            "is unreachable",
        ),
        (
            "pool exhausted",
            |t| {
                *t.p.agent.refuse.borrow_mut() =
                    Some(("pool_exhausted".into(), "no free address".into()))
            },
            json!({}),
            ErrorCode::INTERNAL,
            "no free address (pool_exhausted)",
        ),
        (
            "nothing to assign",
            |_| {},
            json!({"assign_ipv4": "false"}),
            ErrorCode::INVALID_NETCONF,
            "no address to assign",
        ),
        (
            "no IPv6 left in dual stack",
            |t| t.p.agent.next6.borrow_mut().clear(),
            json!({"assign_ipv6": "true"}),
            ErrorCode::INTERNAL,
            "IPv6: got 0 of 1",
        ),
        (
            "no IPv4 left in dual stack",
            |t| t.p.agent.next4.borrow_mut().clear(),
            json!({"assign_ipv6": "true"}),
            ErrorCode::INTERNAL,
            "IPv4: got 0 of 1",
        ),
    ];
    for (name, setup, ipam, code, frag) in cases {
        let t = T::new();
        setup(&t);
        let e = err(&t.run(Command::Add, "", &t.conf("1.0.0", ipam.clone(), json!({}))));
        assert_eq!(e.code, *code, "{name}: {e}");
        assert!(e.msg.contains(frag), "{name}: {e}");
        // No partial assignment survives.
        assert!(
            t.p.agent.held.borrow().is_empty(),
            "{name}: {:?}",
            t.p.agent.held.borrow()
        );
    }
}

#[test]
fn add_specific_addresses_table() {
    // (CNI_ARGS, ipam section, result addresses (= their routes), attributes' keys)
    let cases: &[(&str, Value, &[&str], &[&str])] = &[
        (
            "IP=10.244.0.9",
            json!({}),
            &["10.244.0.9/32"],
            &["node", "timestamp"],
        ),
        // The assign_ipv4/6 flags and the pools are not consulted (ipam_plugin.go).
        (
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=db-0;IP=fd00:10:244::9",
            json!({"ipv4_pools": ["nosuchpool"]}),
            &["fd00:10:244::9/128"],
            &["namespace", "node", "pod", "timestamp"],
        ),
        (
            "IP=10.244.0.9",
            json!({"assign_ipv4": "false", "assign_ipv6": "true"}),
            &["10.244.0.9/32"],
            &["node", "timestamp"],
        ),
        // Both families: IPv4 first in the result, whatever the order asked.
        (
            "IP=fd00:10:244::9,10.244.0.9",
            json!({}),
            &["10.244.0.9/32", "fd00:10:244::9/128"],
            &["node", "timestamp"],
        ),
        // An empty IP= asks for nothing specific (Go decodes it as no address).
        (
            "IP=",
            json!({}),
            &["10.244.220.81/26"],
            &["node", "timestamp"],
        ),
    ];
    for (args, ipam, want, attr_keys) in cases {
        let t = T::new();
        let conf = t.conf("1.0.0", ipam.clone(), json!({}));
        let out = ok(&t.run(Command::Add, args, &conf)).unwrap().clone();
        let ips: Vec<Value> = want.iter().map(|a| json!({"address": a})).collect();
        let routes: Vec<Value> = want.iter().map(|a| json!({"dst": a})).collect();
        assert_eq!(
            out,
            json!({"cniVersion": "1.0.0", "ips": ips, "routes": routes}),
            "{args}"
        );
        let handle = format!("net1.{CID}");
        let held: Vec<String> =
            t.p.agent
                .held_by(&handle)
                .iter()
                .map(|n| n.addr().to_string())
                .collect();
        assert_eq!(held.len(), want.len(), "{args}: {held:?}");
        if *args == "IP=" {
            assert!(t.p.agent.ips_requests.borrow().is_empty());
            continue;
        }
        // Only the specific request was made, with the handle, node and attributes.
        assert!(t.p.agent.requests.borrow().is_empty(), "{args}");
        let r = t.p.agent.ips_requests.borrow()[0].clone();
        assert_eq!(r.handle_id, handle);
        assert_eq!(r.node, "node1");
        assert_eq!(r.attrs.keys().collect::<Vec<_>>(), *attr_keys, "{args}");
        let asked: Vec<String> = args
            .rsplit("IP=")
            .next()
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect();
        assert_eq!(
            r.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            asked,
            "{args}"
        );

        // DEL releases them by handle.
        ok(&t.run(Command::Del, args, &conf));
        assert!(t.p.agent.held.borrow().is_empty(), "{args}");
    }
}

#[test]
fn add_specific_address_failure_table() {
    type Setup = fn(&T);
    let other: Setup = |t| {
        t.p.agent
            .held
            .borrow_mut()
            .insert("net1.other".into(), vec!["10.244.0.9/26".parse().unwrap()]);
    };
    let cases: &[(&str, &str, Setup, ErrorCode, &str)] = &[
        (
            "in use",
            "IP=10.244.0.9",
            other,
            ErrorCode::INTERNAL,
            "failed to assign the requested address 10.244.0.9 (IP= in CNI_ARGS): calico-node \
             refused the IPAM request: Address already assigned in block: 10.244.0.9 \
             (address_in_use)",
        ),
        (
            "second family in use",
            "IP=fd00:10:244::9,10.244.0.9",
            other,
            ErrorCode::INTERNAL,
            "(address_in_use)",
        ),
        (
            "outside every pool",
            "IP=192.168.0.1",
            |_| {},
            ErrorCode::INTERNAL,
            "192.168.0.1 is not in a configured pool (no_pool)",
        ),
        (
            "agent down",
            "IP=10.244.0.9",
            |t| t.p.agent.up.set(false),
            ErrorCode::TRY_AGAIN_LATER,
            "is unreachable",
        ),
        (
            "agent too old",
            "IP=10.244.0.9",
            |t| {
                *t.p.agent.refuse.borrow_mut() = Some((
                    "unsupported".into(),
                    "cannot assign specific addresses".into(),
                ))
            },
            ErrorCode::INTERNAL,
            "(unsupported)",
        ),
        (
            "agent assigns something else",
            "IP=10.244.0.9",
            |t| {
                *t.p.agent.ips_answer.borrow_mut() = Some(calico_cni::plugin::Assigned {
                    ipv4: vec!["10.244.0.10/32".parse().unwrap()],
                    ipv6: vec![],
                })
            },
            ErrorCode::INTERNAL,
            "calico-node assigned [10.244.0.10] when asked for 10.244.0.9",
        ),
        (
            "two IPv4 addresses",
            "IP=10.244.0.9,10.244.0.10",
            |_| {},
            ErrorCode::INVALID_ENV,
            "more than one IPv4 address",
        ),
        (
            "not an address",
            "IP=10.244.0.0/24",
            |_| {},
            ErrorCode::INVALID_ENV,
            "\"10.244.0.0/24\" is not an IP address",
        ),
    ];
    for (name, args, setup, code, frag) in cases {
        let t = T::new();
        setup(&t);
        let e = err(&t.run(Command::Add, args, &t.conf("1.0.0", json!({}), json!({}))));
        assert_eq!(e.code, *code, "{name}: {e}");
        assert!(e.msg.contains(frag), "{name}: {e}");
        // Nothing is held for this container, and another's address is left alone.
        assert!(
            t.p.agent.held_by(&format!("net1.{CID}")).is_empty(),
            "{name}"
        );
        assert!(
            t.p.agent.requests.borrow().is_empty(),
            "{name}: no auto-assign"
        );
        if *code == ErrorCode::INVALID_ENV {
            assert!(t.p.agent.ips_requests.borrow().is_empty(), "{name}");
        }
        if t.p.agent.held_by("net1.other").is_empty() {
            assert!(t.p.agent.held.borrow().is_empty(), "{name}");
        } else {
            assert_eq!(t.p.agent.held.borrow().len(), 1, "{name}");
        }
    }
}

#[test]
fn specific_address_in_old_result_versions() {
    let t = T::new();
    let out = ok(&t.run(
        Command::Add,
        "IP=10.244.0.9,fd00:10:244::9",
        &t.conf("0.2.0", json!({}), json!({})),
    ))
    .unwrap()
    .clone();
    assert_eq!(
        out,
        json!({"cniVersion": "0.2.0",
               "ip4": {"ip": "10.244.0.9/32", "routes": [{"dst": "10.244.0.9/32"}]},
               "ip6": {"ip": "fd00:10:244::9/128", "routes": [{"dst": "fd00:10:244::9/128"}]},
               "dns": {}})
    );
}

#[test]
fn del_releases_by_handle_and_legacy_id_and_is_idempotent() {
    let t = T::new();
    let conf = t.conf("1.0.0", json!({}), json!({}));
    ok(&t.run(Command::Add, POD, &conf));
    assert_eq!(t.p.agent.held_by(&format!("net1.{CID}")).len(), 1);
    ok(&t.run(Command::Del, POD, &conf));
    assert!(t.p.agent.held.borrow().is_empty());
    ok(&t.run(Command::Del, POD, &conf));
    assert_eq!(
        *t.p.agent.released_handles.borrow(),
        vec![
            format!("net1.{CID}"),
            "prod.db-0".into(),
            format!("net1.{CID}"),
            "prod.db-0".into()
        ]
    );
    // A plain CNI workload's legacy handle is its container ID.
    let t = T::new();
    ok(&t.run(Command::Del, "", &conf));
    assert_eq!(t.p.agent.released_handles.borrow()[1], CID);
}

#[test]
fn del_with_agent_down_is_retryable_error() {
    let t = T::new();
    t.p.agent.up.set(false);
    let e = err(&t.run(Command::Del, "", &t.conf("1.0.0", json!({}), json!({}))));
    assert_eq!(e.code, ErrorCode::TRY_AGAIN_LATER);
    let t = T::new();
    t.p.agent.fail_release.borrow_mut().insert(
        format!("net1.{CID}"),
        AgentError::Remote {
            code: "datastore".into(),
            message: "etcd down".into(),
        },
    );
    let e = err(&t.run(Command::Del, "", &t.conf("1.0.0", json!({}), json!({}))));
    assert!(e.msg.contains("etcd down"), "{e}");
}

#[test]
fn check_verifies_allocations() {
    let t = T::new();
    let prev = ok(&t.run(Command::Add, "", &t.conf("1.0.0", json!({}), json!({}))))
        .unwrap()
        .clone();
    t.sync_allocations();
    let conf = t.conf("1.0.0", json!({}), json!({"prevResult": prev}));
    assert_eq!(ok(&t.run(Command::Check, "", &conf)), None);

    // Released behind our back.
    *t.p.allocations.0.borrow_mut() = Some(Vec::new());
    let e = err(&t.run(Command::Check, "", &conf));
    assert!(e.msg.contains("10.244.220.81/32 is not allocated"), "{e}");

    // Held by another handle.
    *t.p.allocations.0.borrow_mut() = Some(vec![Allocation {
        ip: "10.244.220.81".parse().unwrap(),
        handle_id: Some("net1.other".into()),
        attrs: BTreeMap::new(),
    }]);
    let e = err(&t.run(Command::Check, "", &conf));
    assert!(e.msg.contains("allocated to handle \"net1.other\""), "{e}");

    // Agent down, no prevResult.
    t.p.agent.up.set(false);
    assert_eq!(
        err(&t.run(Command::Check, "", &conf)).code,
        ErrorCode::TRY_AGAIN_LATER
    );
    let e = err(&t.run(Command::Check, "", &t.conf("1.0.0", json!({}), json!({}))));
    assert!(e.msg.contains("prevResult"));
}

#[test]
fn status_reports_50_when_the_agent_is_unreachable() {
    let t = T::new();
    let conf = t.conf("1.1.0", json!({}), json!({}));
    assert_eq!(ok(&t.run(Command::Status, "", &conf)), None);
    t.p.agent.up.set(false);
    let r = t.run(Command::Status, "", &conf);
    let e = err(&r);
    assert_eq!(e.code, ErrorCode::PLUGIN_NOT_AVAILABLE);
    assert!(e.details.contains("unreachable"), "{e}");
    assert_eq!(r.stdout.unwrap()["code"], 50);

    // An agent serving another node is no use either.
    let t = T::new();
    let conf = t.conf("1.1.0", json!({}), json!({"nodename": "node7"}));
    let e = err(&t.run(Command::Status, "", &conf));
    assert_eq!(e.code, ErrorCode::PLUGIN_NOT_AVAILABLE);
    assert!(e.details.contains("\"node7\""), "{e}");
}

fn alloc(ip: &str, handle: &str, node: &str) -> Allocation {
    Allocation {
        ip: ip.parse().unwrap(),
        handle_id: Some(handle.into()),
        attrs: [("node".to_string(), node.to_string())]
            .into_iter()
            .collect(),
    }
}

#[test]
fn gc_releases_stale_handles_of_this_network_on_this_node() {
    let t = T::new();
    *t.p.allocations.0.borrow_mut() = Some(vec![
        alloc("10.0.0.1", "net1.keep", "node1"),
        alloc("10.0.0.2", "net1.stale", "node1"),
        alloc("10.0.0.3", "net1.stale", "node1"), // same handle twice: released once
        alloc("10.0.0.4", "net1.other-node", "node2"),
        alloc("10.0.0.5", "net10.x", "node1"), // another network with a common prefix
        alloc("10.0.0.6", "othernet.stale", "node1"),
        Allocation {
            ip: "10.0.0.7".parse().unwrap(),
            handle_id: None,
            attrs: BTreeMap::new(),
        },
    ]);
    let conf = t.conf(
        "1.1.0",
        json!({}),
        json!({"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]}),
    );
    ok(&t.run(Command::Gc, "", &conf));
    assert_eq!(
        *t.p.agent.released_handles.borrow(),
        vec!["net1.stale".to_string()]
    );
}

#[test]
fn gc_reports_every_failure_after_trying_all() {
    let t = T::new();
    *t.p.allocations.0.borrow_mut() = Some(vec![
        alloc("10.0.0.2", "net1.a", "node1"),
        alloc("10.0.0.3", "net1.b", "node1"),
        alloc("10.0.0.4", "net1.c", "node1"),
    ]);
    t.p.agent
        .fail_release
        .borrow_mut()
        .insert("net1.a".into(), AgentError::Other("broken pipe".into()));
    let conf = t.conf("1.1.0", json!({}), json!({"cni.dev/valid-attachments": []}));
    let e = err(&t.run(Command::Gc, "", &conf));
    assert!(
        e.msg.contains("releasing handle net1.a: broken pipe"),
        "{e}"
    );
    assert_eq!(
        *t.p.agent.released_handles.borrow(),
        vec!["net1.b".to_string(), "net1.c".into()]
    );
    let e = err(&t.run(Command::Gc, "", &t.conf("1.1.0", json!({}), json!({}))));
    assert!(e.msg.contains("cni.dev/valid-attachments"));
}

#[test]
fn results_in_old_versions() {
    let t = T::new();
    let out = ok(&t.run(
        Command::Add,
        "",
        &t.conf("0.2.0", json!({"assign_ipv6": "true"}), json!({})),
    ))
    .unwrap()
    .clone();
    assert_eq!(
        out,
        json!({"cniVersion": "0.2.0",
               "ip4": {"ip": "10.244.220.81/26", "routes": [{"dst": "10.244.220.81/26"}]},
               "ip6": {"ip": "fd00:10:244::5/122", "routes": [{"dst": "fd00:10:244::5/122"}]},
               "dns": {}})
    );
}
