//! What a plugin invocation costs before and around the kernel and datastore work:
//!
//! - `netconf_parse`: Calico's default conflist entry (install_linux.go shape) from stdin bytes;
//! - `result_encode/<version>`: a dual-stack ADD result printed in 1.1.0, 0.4.0 and 0.2.0 shapes;
//! - `prev_result_parse`: the spec's bridge example as a prevResult;
//! - `dispatch_add_fakes`: a whole `calico` ADD through `dispatch` with in-memory fakes
//!   (env checks, version checks, netconf, identity, IPAM result parsing, endpoint, result);
//! - `process_version`: spawning the optimised `calico` binary for VERSION (process start-up,
//!   which dominates a runtime's probe).
//!
//! Run: `cargo bench -p calico-cni --bench protocol`.

#![allow(clippy::unwrap_used)] // a benchmark: a panic is the failure report

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command as Process, Stdio};

use calico_cni::netconf::NetConf;
use calico_cni::plugin::calico::CalicoPlugin;
use calico_cni::plugin::dispatch;
use calico_cni::spec::{CniResult, Command, Dns, Interface, IpConfig, Route};
use criterion::{Criterion, criterion_group, criterion_main};
use support::{FakeDataplane, FakeIpamExec, FakeStore, TestHost, cni_env};

const CONF: &str = r#"{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico",
 "log_level":"info","datastore_type":"embedded","nodename":"node1","mtu":0,
 "nodename_file_optional":true,
 "ipam":{"type":"calico-ipam","assign_ipv6":"true"},"policy":{"type":""},
 "kubernetes":{"kubeconfig":"/etc/cni/net.d/calico-kubeconfig"}}"#;

fn result() -> CniResult {
    CniResult {
        interfaces: vec![
            Interface {
                name: "calie934d4878c7".into(),
                ..Default::default()
            },
            Interface {
                name: "eth0".into(),
                mac: "0a:58:0a:f4:00:05".into(),
                mtu: 1440,
                sandbox: "/run/netns/cni-1234".into(),
                ..Default::default()
            },
        ],
        ips: vec![
            IpConfig {
                interface: Some(1),
                address: "10.244.220.81/32".parse().unwrap(),
                gateway: None,
            },
            IpConfig {
                interface: Some(1),
                address: "fd00:10:244::5/128".parse().unwrap(),
                gateway: None,
            },
        ],
        routes: vec![
            Route::to("10.244.220.81/26".parse().unwrap()),
            Route::to("fd00:10:244::5/122".parse().unwrap()),
        ],
        dns: Dns::default(),
    }
}

fn benches(c: &mut Criterion) {
    c.bench_function("netconf_parse", |b| {
        b.iter(|| NetConf::parse(std::hint::black_box(CONF.as_bytes())).unwrap())
    });

    let r = result();
    for v in ["1.1.0", "0.4.0", "0.2.0"] {
        c.bench_function(&format!("result_encode/{v}"), |b| {
            b.iter(|| serde_json::to_vec(&r.to_json(v).unwrap()).unwrap())
        });
    }

    let prev: serde_json::Value = serde_json::from_str(
        r#"{"ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1","interface":2}],
            "routes":[{"dst":"0.0.0.0/0"}],
            "interfaces":[{"name":"cni0","mac":"00:11:22:33:44:55"},
                          {"name":"veth3243","mac":"55:44:33:22:11:11"},
                          {"name":"eth0","mac":"99:88:77:66:55:44","sandbox":"/var/run/netns/blue"}],
            "dns":{"nameservers":["10.1.0.1"]}}"#,
    )
    .unwrap();
    c.bench_function("prev_result_parse", |b| {
        b.iter(|| CniResult::parse(std::hint::black_box(&prev), "1.1.0", "prevResult").unwrap())
    });

    let host = TestHost::new();
    let stdin = CONF.as_bytes();
    c.bench_function("dispatch_add_fakes", |b| {
        b.iter(|| {
            let p = CalicoPlugin {
                dataplane: FakeDataplane::default(),
                ipam: FakeIpamExec::default(),
                store: FakeStore::default(),
                host: host.env(),
            };
            let env = cni_env(
                Command::Add,
                "abc123",
                Some("/run/netns/x"),
                "K8S_POD_NAME=web",
            );
            let r = dispatch(&p, Ok(env), stdin);
            assert_eq!(r.exit_code, 0);
        })
    });

    let bin = env!("CARGO_BIN_EXE_calico");
    let mut g = c.benchmark_group("process");
    g.sample_size(30);
    g.bench_function("process_version", |b| {
        b.iter(|| {
            let mut child = Process::new(bin)
                .env("CNI_COMMAND", "VERSION")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(br#"{"cniVersion":"1.0.0"}"#)
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
        })
    });
    g.finish();
}

criterion_group!(protocol, benches);
criterion_main!(protocol);
