//! The `calico` plugin's verbs against in-memory fakes: every verb and failure path.
#![allow(clippy::unwrap_used)]

mod support;

use calico_api::workloadendpoint::WorkloadEndpoint;
use calico_cni::plugin::calico::CalicoPlugin;
use calico_cni::plugin::{Response, StoreError, dispatch};
use calico_cni::spec::{CniError, Command, ErrorCode};
use serde_json::{Value, json};
use support::*;

const CID: &str = "4f3a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a";
const NETNS: &str = "/run/netns/netns-1234";
const PODMAN_ARGS: &str = "IgnoreUnknown=1;K8S_POD_NAME=web";
const K8S_ARGS: &str =
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;K8S_POD_NAME=frontend-0;K8S_POD_INFRA_CONTAINER_ID=x";

type Plugin = CalicoPlugin<FakeDataplane, FakeIpamExec, FakeStore>;

struct T {
    host: TestHost,
    p: Plugin,
}

impl T {
    fn new() -> T {
        let host = TestHost::new();
        let p = CalicoPlugin {
            dataplane: FakeDataplane::default(),
            ipam: FakeIpamExec::default(),
            store: FakeStore::default(),
            host: host.env(),
        };
        T { host, p }
    }

    fn conf_with(&self, version: &str, extra: Value) -> Value {
        let mut c = json!({
            "cniVersion": version,
            "name": "net1",
            "type": "calico",
            "datastore_type": "embedded",
            "nodename_file": self.host.nodename_file(),
            "ipam": {"type": "calico-ipam"},
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn conf(&self) -> Value {
        self.conf_with("1.0.0", json!({}))
    }

    fn run(
        &self,
        cmd: Command,
        cid: &str,
        netns: Option<&str>,
        args: &str,
        conf: &Value,
    ) -> Response {
        let stdin = serde_json::to_vec(conf).unwrap();
        dispatch(&self.p, Ok(cni_env(cmd, cid, netns, args)), &stdin)
    }

    fn add(&self, args: &str) -> Response {
        self.run(Command::Add, CID, Some(NETNS), args, &self.conf())
    }

    fn del(&self, args: &str, netns: Option<&str>) -> Response {
        self.run(Command::Del, CID, netns, args, &self.conf())
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

const WEP_CNI: &str =
    "node1-cni-4f3a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a-eth0";
const VETH_CNI: &str = "cali4f3a0b9c8d7";

// ---- ADD ---------------------------------------------------------------------------------

#[test]
fn add_podman_workload_end_to_end() {
    let t = T::new();
    let r = t.add(PODMAN_ARGS);
    let out = ok(&r).unwrap();
    assert_eq!(
        out,
        &json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": VETH_CNI},
                {"name": "eth0", "mac": CONTAINER_MAC, "mtu": 1500, "sandbox": NETNS}
            ],
            "ips": [{"interface": 1, "address": "10.244.220.81/32"}],
            "routes": [{"dst": "10.244.220.81/26"}]
        })
    );
    // The endpoint, as Calico's calico_cni_test.go expects it for a CNI workload.
    let wep = t.p.store.get("default", WEP_CNI).unwrap();
    assert_eq!(wep.spec.orchestrator, "cni");
    assert_eq!(wep.spec.node, "node1");
    assert_eq!(wep.spec.endpoint, "eth0");
    assert_eq!(wep.spec.container_id, CID);
    assert_eq!(wep.spec.pod, "");
    assert_eq!(wep.spec.interface_name, VETH_CNI);
    assert_eq!(wep.spec.mac, CONTAINER_MAC);
    assert_eq!(wep.spec.ip_networks, vec!["10.244.220.81/32"]);
    assert_eq!(wep.spec.profiles, vec!["net1"]);
    // The network's profile: ingress only from members.
    let prof = t.p.store.profiles.borrow()["net1"].clone();
    assert_eq!(prof.spec.ingress[0].source.selector, "has(net1)");
    assert_eq!(prof.spec.labels_to_apply["net1"], "");
    // The plumbing.
    let links = t.p.dataplane.links.borrow();
    let l = &links[VETH_CNI];
    assert_eq!(l.container_if, "eth0");
    assert_eq!(l.netns.to_str().unwrap(), NETNS);
    assert_eq!(l.addresses, vec!["10.244.220.81/32".parse().unwrap()]);
    assert_eq!(l.mtu, 1500);
    // IPAM got the exact stdin.
    let calls = t.p.ipam.calls.borrow();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "calico-ipam");
    assert_eq!(calls[0].1, Command::Add);
    assert_eq!(calls[0].2, serde_json::to_vec(&t.conf()).unwrap());
}

#[test]
fn add_k8s_pod_uses_hashed_veth_and_pod_wep() {
    let t = T::new();
    let out = ok(&t.add(K8S_ARGS)).unwrap().clone();
    assert_eq!(out["interfaces"][0]["name"], "calie934d4878c7");
    let wep = t.p.store.get("prod", "node1-k8s-frontend--0-eth0").unwrap();
    assert_eq!(wep.spec.orchestrator, "k8s");
    assert_eq!(wep.spec.pod, "frontend-0");
    assert_eq!(wep.spec.container_id, CID);
    // Pods get an allow-all ingress profile.
    let prof = t.p.store.profiles.borrow()["net1"].clone();
    assert!(prof.spec.ingress[0].source.selector.is_empty());
}

#[test]
fn add_result_in_older_versions() {
    for (ver, check) in [
        ("0.3.1", "version"),
        ("0.4.0", "version"),
        ("0.2.0", "ip4"),
        ("", "ip4"),
    ] {
        let t = T::new();
        let conf = if ver.is_empty() {
            let mut c = t.conf();
            c.as_object_mut().unwrap().remove("cniVersion");
            c
        } else {
            t.conf_with(ver, json!({}))
        };
        let r = t.run(Command::Add, CID, Some(NETNS), PODMAN_ARGS, &conf);
        let out = ok(&r).unwrap();
        match check {
            "version" => {
                assert_eq!(out["cniVersion"], ver);
                assert_eq!(out["ips"][0]["version"], "4");
                assert!(out["interfaces"][1].get("mtu").is_none());
            }
            _ => {
                // An empty cniVersion prints as 0.2.0, as Calico does.
                assert_eq!(out["cniVersion"], "0.2.0");
                assert_eq!(out["ip4"]["ip"], "10.244.220.81/32");
                assert_eq!(out["ip4"]["routes"][0]["dst"], "10.244.220.81/26");
            }
        }
    }
}

#[test]
fn add_uses_mtu_file() {
    let t = T::new();
    std::fs::write(t.host.dir.path().join("mtu"), "1410").unwrap();
    let out = ok(&t.add(PODMAN_ARGS)).unwrap().clone();
    assert_eq!(out["interfaces"][1]["mtu"], 1410);
    assert_eq!(t.p.dataplane.links.borrow()[VETH_CNI].mtu, 1410);
}

#[test]
fn add_failure_paths_leave_nothing_behind() {
    // (name, setup, expected code, message fragment, IPAM commands expected)
    type Setup = fn(&T);
    let cases: &[(&str, Setup, ErrorCode, &str, &[Command])] = &[
        (
            "IPAM ADD fails",
            |t| {
                t.p.ipam.fail_on(
                    "ADD",
                    CniError::new(ErrorCode::TRY_AGAIN_LATER, "agent down"),
                )
            },
            ErrorCode::TRY_AGAIN_LATER,
            "agent down",
            &[Command::Add, Command::Del],
        ),
        (
            "IPAM returns no addresses",
            |t| *t.p.ipam.add_output.borrow_mut() = Ok(r#"{"cniVersion":"1.0.0"}"#.into()),
            ErrorCode::INTERNAL,
            "IPAM plugin returned no IP addresses",
            &[Command::Add, Command::Del],
        ),
        (
            "IPAM prints garbage",
            |t| *t.p.ipam.add_output.borrow_mut() = Ok(r#"{"ips":[{"address":"x"}]}"#.into()),
            ErrorCode::DECODING_FAILURE,
            "ips[0].address",
            &[Command::Add, Command::Del],
        ),
        (
            "plumbing fails",
            |t| *t.p.dataplane.fail_setup.borrow_mut() = Some("veth: File exists".into()),
            ErrorCode::INTERNAL,
            "veth: File exists",
            &[Command::Add, Command::Del],
        ),
        (
            "endpoint write fails",
            |t| *t.p.store.fail_write.borrow_mut() = Some(StoreError::Other("etcd down".into())),
            ErrorCode::INTERNAL,
            "error writing WorkloadEndpoint",
            &[Command::Add, Command::Del],
        ),
        (
            "datastore not ready",
            |t| t.p.store.ready.set(false),
            ErrorCode::TRY_AGAIN_LATER,
            "Calico is currently not ready",
            &[],
        ),
        (
            "profile creation fails",
            |t| *t.p.store.fail_profile.borrow_mut() = Some(StoreError::Other("denied".into())),
            ErrorCode::INTERNAL,
            "error creating profile net1",
            &[],
        ),
        (
            "node-name file missing",
            |t| std::fs::remove_file(t.host.nodename_file()).unwrap(),
            ErrorCode::INTERNAL,
            "check that the calico/node container is running",
            &[],
        ),
    ];
    for (name, setup, code, frag, ipam_cmds) in cases {
        for args in [PODMAN_ARGS, K8S_ARGS] {
            let t = T::new();
            setup(&t);
            let e = err(&t.add(args));
            assert_eq!(e.code, *code, "{name}: {e}");
            assert!(e.to_string().contains(frag), "{name}: {e}");
            assert_eq!(t.p.ipam.commands(), ipam_cmds.to_vec(), "{name}");
            assert_eq!(t.p.store.count(), 0, "{name}: endpoint left behind");
            assert!(
                t.p.dataplane.links.borrow().is_empty(),
                "{name}: interface left behind"
            );
        }
    }
}

#[test]
fn endpoint_write_failure_removes_the_interface_it_made() {
    let t = T::new();
    *t.p.store.fail_write.borrow_mut() = Some(StoreError::Other("etcd down".into()));
    err(&t.add(PODMAN_ARGS));
    let td = t.p.dataplane.teardowns.borrow();
    assert_eq!(td.len(), 1);
    assert_eq!(td[0].0.as_deref().unwrap().to_str().unwrap(), NETNS);
    assert_eq!(td[0].1, VETH_CNI);
    assert!(td[0].3, "the host side must go too");
}

#[test]
fn add_for_an_existing_cni_endpoint_reuses_it() {
    let t = T::new();
    let mut wep = WorkloadEndpoint::default();
    wep.metadata.name = WEP_CNI.into();
    wep.metadata.namespace = "default".into();
    wep.spec.container_id = CID.into();
    wep.spec.node = "node1".into();
    wep.spec.orchestrator = "cni".into();
    wep.spec.endpoint = "eth0".into();
    wep.spec.interface_name = VETH_CNI.into();
    wep.spec.mac = "0a:00:00:00:00:01".into();
    wep.spec.ip_networks = vec!["10.0.0.9/32".into()];
    wep.spec.profiles = vec!["other".into()];
    t.p.store.insert(wep);
    let out = ok(&t.add(PODMAN_ARGS)).unwrap().clone();
    assert_eq!(out["ips"][0]["address"], "10.0.0.9/32");
    assert_eq!(out["interfaces"][1]["mac"], "0a:00:00:00:00:01");
    assert!(t.p.ipam.calls.borrow().is_empty(), "no new addresses");
    assert_eq!(t.p.dataplane.setups.get(), 0, "no new plumbing");
    let wep = t.p.store.get("default", WEP_CNI).unwrap();
    assert_eq!(wep.spec.profiles, vec!["other", "net1"]);
}

#[test]
fn add_for_a_pod_with_an_old_sandbox_endpoint_takes_it_over() {
    let t = T::new();
    let mut wep = WorkloadEndpoint::default();
    wep.metadata.name = "node1-k8s-frontend--0-eth0".into();
    wep.metadata.namespace = "prod".into();
    wep.spec.container_id = "oldsandbox".into();
    wep.spec.orchestrator = "k8s".into();
    wep.spec.pod = "frontend-0".into();
    wep.spec.node = "node1".into();
    wep.spec.endpoint = "eth0".into();
    wep.spec.ip_networks = vec!["10.0.0.9/32".into()];
    t.p.store.insert(wep);
    ok(&t.add(K8S_ARGS));
    assert_eq!(t.p.ipam.commands(), vec![Command::Add]);
    let wep = t.p.store.get("prod", "node1-k8s-frontend--0-eth0").unwrap();
    assert_eq!(wep.spec.container_id, CID);
    assert_eq!(wep.spec.ip_networks, vec!["10.244.220.81/32"]);
    assert_eq!(t.p.store.count(), 1);
}

#[test]
fn ip_addrs_no_ipam_is_refused_for_cni_workloads() {
    let t = T::new();
    let conf = t.conf_with(
        "1.0.0",
        json!({"feature_control": {"ip_addrs_no_ipam": true}}),
    );
    let e = err(&t.run(Command::Add, CID, Some(NETNS), PODMAN_ARGS, &conf));
    assert_eq!(e.code, ErrorCode::UNSUPPORTED_FIELD);
    assert!(e.msg.contains("ip_addrs_no_ipam"));
}

// ---- DEL ---------------------------------------------------------------------------------

#[test]
fn del_after_add_removes_everything_and_is_repeatable() {
    for args in [PODMAN_ARGS, K8S_ARGS] {
        let t = T::new();
        ok(&t.add(args));
        assert_eq!(t.p.store.count(), 1);
        ok(&t.del(args, Some(NETNS)));
        assert_eq!(t.p.store.count(), 0);
        assert!(t.p.dataplane.links.borrow().is_empty());
        // Twice, and without a netns (containerd's second DEL).
        ok(&t.del(args, Some(NETNS)));
        ok(&t.del(args, None));
        assert_eq!(
            t.p.ipam.commands(),
            vec![Command::Add, Command::Del, Command::Del, Command::Del]
        );
        let last = t.p.dataplane.teardowns.borrow().last().cloned().unwrap();
        assert_eq!(last.0, None);
    }
}

#[test]
fn del_without_add_or_after_failed_add_succeeds() {
    let t = T::new();
    ok(&t.del(PODMAN_ARGS, Some(NETNS)));
    let t = T::new();
    *t.p.dataplane.fail_setup.borrow_mut() = Some("boom".into());
    err(&t.add(PODMAN_ARGS));
    ok(&t.del(PODMAN_ARGS, Some(NETNS)));
    assert_eq!(
        t.p.ipam.commands(),
        vec![Command::Add, Command::Del, Command::Del]
    );
}

#[test]
fn del_of_a_pod_endpoint_owned_by_another_container_keeps_it() {
    let t = T::new();
    ok(&t.add(K8S_ARGS));
    // DEL of an older sandbox of the same pod.
    let r = t.run(
        Command::Del,
        "oldsandbox",
        Some("/run/netns/old"),
        K8S_ARGS,
        &t.conf(),
    );
    ok(&r);
    assert!(
        t.p.store
            .get("prod", "node1-k8s-frontend--0-eth0")
            .is_some()
    );
    let td = t.p.dataplane.teardowns.borrow().last().cloned().unwrap();
    assert!(!td.3, "the host veth belongs to the running sandbox");
    assert!(t.p.dataplane.links.borrow().contains_key("calie934d4878c7"));
    // Its addresses are still released (they are keyed by container ID).
    assert_eq!(t.p.ipam.commands(), vec![Command::Add, Command::Del]);
}

#[test]
fn del_endpoint_with_empty_container_id_is_deleted() {
    let t = T::new();
    let mut wep = WorkloadEndpoint::default();
    wep.metadata.name = "node1-k8s-frontend--0-eth0".into();
    wep.metadata.namespace = "prod".into();
    t.p.store.insert(wep);
    ok(&t.del(K8S_ARGS, None));
    assert_eq!(t.p.store.count(), 0);
}

#[test]
fn del_retries_conflicts_then_gives_up() {
    let t = T::new();
    ok(&t.add(K8S_ARGS));
    t.p.store.delete_conflicts.set(3);
    ok(&t.del(K8S_ARGS, Some(NETNS)));
    assert_eq!(t.p.store.count(), 0);
    assert_eq!(t.p.store.deletes.borrow().len(), 4);

    let t = T::new();
    ok(&t.add(K8S_ARGS));
    t.p.store.delete_conflicts.set(100);
    let e = err(&t.del(K8S_ARGS, Some(NETNS)));
    assert!(e.msg.contains("modified before it could be deleted"), "{e}");
    assert_eq!(t.p.store.deletes.borrow().len(), 6);
}

#[test]
fn del_with_unreadable_datastore_touches_nothing() {
    let t = T::new();
    ok(&t.add(K8S_ARGS));
    *t.p.store.fail_get.borrow_mut() = Some(StoreError::Other("connection refused".into()));
    let e = err(&t.del(K8S_ARGS, Some(NETNS)));
    assert!(e.msg.contains("connection refused"), "{e}");
    assert_eq!(t.p.ipam.commands(), vec![Command::Add]);
    assert!(t.p.dataplane.teardowns.borrow().is_empty());
}

#[test]
fn del_reports_ipam_and_teardown_failures_after_doing_both() {
    let t = T::new();
    ok(&t.add(PODMAN_ARGS));
    t.p.ipam.fail_on(
        "DEL",
        CniError::new(ErrorCode::TRY_AGAIN_LATER, "agent down"),
    );
    let e = err(&t.del(PODMAN_ARGS, Some(NETNS)));
    assert_eq!(e.code, ErrorCode::TRY_AGAIN_LATER);
    assert_eq!(t.p.store.count(), 0);
    assert!(t.p.dataplane.links.borrow().is_empty());

    let t = T::new();
    ok(&t.add(PODMAN_ARGS));
    *t.p.dataplane.fail_teardown.borrow_mut() = Some("netns busy".into());
    let e = err(&t.del(PODMAN_ARGS, Some(NETNS)));
    assert!(e.msg.contains("netns busy"));
    assert_eq!(t.p.ipam.commands(), vec![Command::Add, Command::Del]);
}

// ---- CHECK -------------------------------------------------------------------------------

fn check_conf(t: &T, prev: &Value) -> Value {
    t.conf_with("1.0.0", json!({"prevResult": prev}))
}

#[test]
fn check_passes_after_add_and_delegates_to_ipam() {
    for args in [PODMAN_ARGS, K8S_ARGS] {
        let t = T::new();
        let prev = ok(&t.add(args)).unwrap().clone();
        let r = t.run(
            Command::Check,
            CID,
            Some(NETNS),
            args,
            &check_conf(&t, &prev),
        );
        assert_eq!(ok(&r), None);
        assert_eq!(t.p.ipam.commands(), vec![Command::Add, Command::Check]);
    }
}

#[test]
fn check_mismatch_table() {
    type Break = fn(&T, &mut Value);
    let cases: &[(&str, Break, &str)] = &[
        (
            "endpoint deleted",
            |t, _| {
                t.p.store.weps.borrow_mut().clear();
            },
            "does not exist",
        ),
        (
            "endpoint MAC changed",
            |t, _| {
                for w in t.p.store.weps.borrow_mut().values_mut() {
                    w.spec.mac = "0a:00:00:00:00:99".into();
                }
            },
            "has mac \"0a:00:00:00:00:99\"",
        ),
        (
            "endpoint owned by another container",
            |t, _| {
                for w in t.p.store.weps.borrow_mut().values_mut() {
                    w.spec.container_id = "someone-else".into();
                }
            },
            "belongs to container \"someone-else\"",
        ),
        (
            "endpoint addresses changed",
            |t, _| {
                for w in t.p.store.weps.borrow_mut().values_mut() {
                    w.spec.ip_networks = vec!["10.9.9.9/32".into()];
                }
            },
            "has ipNetworks",
        ),
        (
            "veth gone",
            |t, _| t.p.dataplane.links.borrow_mut().clear(),
            "host interface cali4f3a0b9c8d7 does not exist",
        ),
        (
            "container address changed",
            |t, _| {
                for l in t.p.dataplane.links.borrow_mut().values_mut() {
                    l.addresses = vec!["10.1.1.1/32".parse().unwrap()];
                }
            },
            "container has addresses",
        ),
        (
            "prevResult names another sandbox",
            |_, prev| prev["interfaces"][1]["sandbox"] = json!("/run/netns/other"),
            "prevResult has no interface eth0 in sandbox /run/netns/netns-1234",
        ),
        (
            "prevResult lacks the host interface",
            |_, prev| prev["interfaces"][0]["name"] = json!("caliother"),
            "prevResult has no host interface cali4f3a0b9c8d7",
        ),
        (
            "prevResult MAC differs",
            |_, prev| prev["interfaces"][1]["mac"] = json!("0a:00:00:00:00:77"),
            "expected 0a:00:00:00:00:77",
        ),
    ];
    for (name, brk, frag) in cases {
        let t = T::new();
        let mut prev = ok(&t.add(PODMAN_ARGS)).unwrap().clone();
        brk(&t, &mut prev);
        let r = t.run(
            Command::Check,
            CID,
            Some(NETNS),
            PODMAN_ARGS,
            &check_conf(&t, &prev),
        );
        let e = err(&r);
        assert!(e.msg.contains(frag), "{name}: {e}");
        assert_eq!(
            t.p.ipam.commands(),
            vec![Command::Add],
            "{name}: IPAM CHECK only after ours passes"
        );
    }
}

#[test]
fn check_needs_prev_result_and_version_0_4_0() {
    let t = T::new();
    ok(&t.add(PODMAN_ARGS));
    let e = err(&t.run(Command::Check, CID, Some(NETNS), PODMAN_ARGS, &t.conf()));
    assert_eq!(e.code, ErrorCode::INVALID_NETCONF);
    assert!(e.msg.contains("prevResult"));
    let e = err(&t.run(
        Command::Check,
        CID,
        Some(NETNS),
        PODMAN_ARGS,
        &t.conf_with("0.3.1", json!({})),
    ));
    assert_eq!(e.code, ErrorCode::INCOMPATIBLE_VERSION);
}

#[test]
fn check_reports_ipam_check_failure() {
    let t = T::new();
    let prev = ok(&t.add(PODMAN_ARGS)).unwrap().clone();
    t.p.ipam.fail_on(
        "CHECK",
        CniError::internal("10.244.220.81/32 is not allocated"),
    );
    let e = err(&t.run(
        Command::Check,
        CID,
        Some(NETNS),
        PODMAN_ARGS,
        &check_conf(&t, &prev),
    ));
    assert!(e.msg.contains("not allocated"));
}

// ---- protocol-level errors ---------------------------------------------------------------

#[test]
fn unsupported_version_and_bad_stdin() {
    let t = T::new();
    let e = err(&t.run(
        Command::Add,
        CID,
        Some(NETNS),
        PODMAN_ARGS,
        &t.conf_with("2.0.0", json!({})),
    ));
    assert_eq!(e.code, ErrorCode::INCOMPATIBLE_VERSION);

    let bad = t.conf_with(
        "1.0.0",
        json!({"ipam": {"type": "calico-ipam", "assign_ipv6": true}}),
    );
    let r = t.run(Command::Add, CID, Some(NETNS), PODMAN_ARGS, &bad);
    let e = err(&r);
    assert_eq!(e.code, ErrorCode::DECODING_FAILURE);
    assert!(e.msg.contains("ipam.assign_ipv6"), "{e}");
    // The error JSON carries the request's version.
    assert_eq!(r.stdout.as_ref().unwrap()["cniVersion"], "1.0.0");
    assert_eq!(r.stdout.as_ref().unwrap()["code"], 6);

    let r = dispatch(
        &t.p,
        Ok(cni_env(Command::Add, CID, Some(NETNS), "")),
        b"{not json",
    );
    assert_eq!(err(&r).code, ErrorCode::DECODING_FAILURE);
    assert_eq!(r.stdout.unwrap()["cniVersion"], "1.1.0");

    let r = t.run(Command::Add, CID, Some(NETNS), "K8S_POD_NAME", &t.conf());
    assert!(err(&r).msg.contains("CNI_ARGS: invalid pair"));

    let conf = t.conf_with("1.0.0", json!({"ipam": {}}));
    let e = err(&t.run(Command::Add, CID, Some(NETNS), PODMAN_ARGS, &conf));
    assert!(e.msg.contains("ipam.type is missing"), "{e}");

    // Environment errors are reported the same way.
    let r = dispatch(
        &t.p,
        Err(CniError::invalid_env(
            "required env variables [CNI_NETNS] missing",
        )),
        b"{}",
    );
    assert_eq!(r.stdout.unwrap()["code"], 4);
}

#[test]
fn version_needs_nothing() {
    let t = T::new();
    let mut env = cni_env(Command::Version, "dummy", Some("dummy"), "");
    env.ifname = "dummy".into();
    let r = dispatch(&t.p, Ok(env), br#"{"cniVersion":"1.0.0"}"#);
    let out = ok(&r).unwrap();
    assert_eq!(out["cniVersion"], "1.0.0");
    assert_eq!(out["supportedVersions"].as_array().unwrap().len(), 7);
    assert!(t.p.ipam.calls.borrow().is_empty());
}

// ---- STATUS and GC -----------------------------------------------------------------------

#[test]
fn status_table() {
    let t = T::new();
    let conf = t.conf_with("1.1.0", json!({}));
    assert_eq!(ok(&t.run(Command::Status, "", None, "", &conf)), None);
    assert_eq!(t.p.ipam.commands(), vec![Command::Status]);

    t.p.ipam.fail_on(
        "STATUS",
        CniError::new(
            ErrorCode::PLUGIN_NOT_AVAILABLE,
            "calico-node's IPAM service is not available",
        ),
    );
    assert_eq!(
        err(&t.run(Command::Status, "", None, "", &conf)).code,
        ErrorCode::PLUGIN_NOT_AVAILABLE
    );

    let t = T::new();
    std::fs::remove_file(t.host.nodename_file()).unwrap();
    let e = err(&t.run(
        Command::Status,
        "",
        None,
        "",
        &t.conf_with("1.1.0", json!({})),
    ));
    assert_eq!(e.code, ErrorCode::PLUGIN_NOT_AVAILABLE);
    assert!(t.p.ipam.calls.borrow().is_empty());
    // A datastore that is not ready or does not answer.
    let t = T::new();
    let conf = t.conf_with("1.1.0", json!({}));
    t.p.store.ready.set(false);
    let e = err(&t.run(Command::Status, "", None, "", &conf));
    assert_eq!(e.code, ErrorCode::PLUGIN_NOT_AVAILABLE);
    assert!(e.details.contains("datastoreReady"), "{e}");
    t.p.store.ready.set(true);
    *t.p.store.fail_get.borrow_mut() = Some(StoreError::Other("connection refused".into()));
    let e = err(&t.run(Command::Status, "", None, "", &conf));
    assert_eq!(e.code, ErrorCode::PLUGIN_NOT_AVAILABLE);
    assert!(e.details.contains("connection refused"), "{e}");
    assert!(t.p.ipam.calls.borrow().is_empty());
    // STATUS needs a 1.1.0 configuration.
    let e = err(&t.run(Command::Status, "", None, "", &t.conf()));
    assert_eq!(e.code, ErrorCode::INCOMPATIBLE_VERSION);
}

fn wep(name: &str, ns: &str, node: &str, cid: &str, profile: &str) -> WorkloadEndpoint {
    let mut w = WorkloadEndpoint::default();
    w.metadata.name = name.into();
    w.metadata.namespace = ns.into();
    w.spec.node = node.into();
    w.spec.container_id = cid.into();
    w.spec.profiles = vec![profile.into()];
    w
}

#[test]
fn gc_deletes_stale_endpoints_of_this_network_and_node_only() {
    let t = T::new();
    t.p.store
        .insert(wep("a", "default", "node1", "keep", "net1"));
    t.p.store
        .insert(wep("b", "default", "node1", "stale", "net1"));
    t.p.store
        .insert(wep("c", "prod", "node1", "stale2", "net1"));
    t.p.store
        .insert(wep("d", "default", "node2", "stale", "net1"));
    t.p.store
        .insert(wep("e", "default", "node1", "stale", "othernet"));
    t.p.store.insert(wep("f", "default", "node1", "", "net1"));
    let conf = t.conf_with(
        "1.1.0",
        json!({"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}]}),
    );
    ok(&t.run(Command::Gc, "", None, "", &conf));
    let left: Vec<String> =
        t.p.store
            .weps
            .borrow()
            .keys()
            .map(|k| k.1.clone())
            .collect();
    assert_eq!(left, vec!["a", "d", "e", "f"]);
    assert_eq!(t.p.ipam.commands(), vec![Command::Gc]);
}

#[test]
fn gc_continues_past_failures_and_needs_the_valid_list() {
    let t = T::new();
    t.p.store
        .insert(wep("b", "default", "node1", "stale", "net1"));
    t.p.ipam.fail_on("GC", CniError::internal("agent down"));
    let conf = t.conf_with("1.1.0", json!({"cni.dev/valid-attachments": []}));
    let e = err(&t.run(Command::Gc, "", None, "", &conf));
    assert!(
        e.msg.contains("IPAM plugin calico-ipam GC: agent down"),
        "{e}"
    );
    assert_eq!(t.p.store.count(), 0, "the endpoint was still collected");

    let e = err(&t.run(Command::Gc, "", None, "", &t.conf_with("1.1.0", json!({}))));
    assert!(e.msg.contains("cni.dev/valid-attachments"));
    let e = err(&t.run(
        Command::Gc,
        "",
        None,
        "",
        &t.conf_with("1.0.0", json!({"cni.dev/valid-attachments": []})),
    ));
    assert_eq!(e.code, ErrorCode::INCOMPATIBLE_VERSION);
}

#[test]
fn cni_host_veth_name_collision_is_refused_and_del_spares_the_owner() {
    // `ctr run` names containers `<namespace>-<name>`: both IDs start with "default-ctr".
    let t = T::new();
    let run = |cmd, cid: &str, netns: &str| t.run(cmd, cid, Some(netns), "", &t.conf());
    ok(&run(Command::Add, "default-ctrA", "/run/netns/a"));
    assert!(t.p.dataplane.links.borrow().contains_key("calidefault-ctr"));
    let e = err(&run(Command::Add, "default-ctrB", "/run/netns/b"));
    assert!(
        e.msg
            .contains("calidefault-ctr is already used by container default-ctrA"),
        "{e}"
    );
    assert_eq!(
        t.p.ipam.commands(),
        vec![Command::Add],
        "no addresses for the refused one"
    );
    // The runtime's DEL after the failed ADD must not take A's veth.
    ok(&run(Command::Del, "default-ctrB", "/run/netns/b"));
    let links = t.p.dataplane.links.borrow();
    assert_eq!(
        links["calidefault-ctr"].netns.to_str().unwrap(),
        "/run/netns/a"
    );
    let td = t.p.dataplane.teardowns.borrow().last().cloned().unwrap();
    assert!(!td.3, "host side must be left alone");
}

#[test]
fn del_removes_the_host_veth_the_endpoint_names() {
    let t = T::new();
    ok(&t.add(PODMAN_ARGS));
    for w in t.p.store.weps.borrow_mut().values_mut() {
        w.spec.interface_name = "calirenamed0001".into();
    }
    ok(&t.del(PODMAN_ARGS, None));
    let td = t.p.dataplane.teardowns.borrow().last().cloned().unwrap();
    assert_eq!((td.1.as_str(), td.3), ("calirenamed0001", true));
}
