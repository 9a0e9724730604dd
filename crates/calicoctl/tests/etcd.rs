//! The same calicoctl flow against a real etcd started on loopback by calico-datastore's test
//! harness (skipped with a note when etcd is not installed, unless `CI` is set).

#![allow(clippy::unwrap_used)]

mod common;

use calico_datastore::testing::EtcdServer;
use common::{Ctl, data};

#[test]
fn examples_flow_on_etcd() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ctl = Ctl::etcd(&etcd.endpoint());
    common::examples_flow(&ctl);
}

#[test]
fn keys_are_calicos_etcd_layout() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ctl = Ctl::etcd(&etcd.endpoint());
    ctl.run(&["apply", "-f", data("examples.yaml").to_str().unwrap()])
        .ok();
    // Read the raw keys with etcdctl, as another Calico component would see them.
    let out = std::process::Command::new("etcdctl")
        .args([
            "--endpoints",
            &etcd.endpoint(),
            "get",
            "/calico/resources/v3/",
            "--prefix",
            "--keys-only",
        ])
        .output()
        .unwrap();
    let keys = String::from_utf8(out.stdout).unwrap();
    for k in [
        "/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-frontend",
        "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/block-metadata",
        "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool",
        "/calico/resources/v3/projectcalico.org/bgppeers/rack1-tor",
        "/calico/resources/v3/projectcalico.org/bgpconfigurations/default",
        "/calico/resources/v3/projectcalico.org/tiers/default",
        "/calico/resources/v3/projectcalico.org/clusterinformations/default",
    ] {
        assert!(keys.lines().any(|l| l == k), "{k} missing from:\n{keys}");
    }
    assert!(
        !keys.contains("projectcalico-default-allow"),
        "the default-allow profile is virtual"
    );
    let out = std::process::Command::new("etcdctl")
        .args([
            "--endpoints",
            &etcd.endpoint(),
            "get",
            "/calico/resources/v3/projectcalico.org/networkpolicies/prod/allow-frontend",
            "--print-value-only",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "NetworkPolicy");
    assert!(v["metadata"].get("resourceVersion").is_none());
    assert_eq!(
        v["metadata"]["annotations"]["projectcalico.org/metadata"],
        r#"{"name":"allow-frontend"}"#
    );
}

#[test]
fn mutual_tls_from_a_config_file() {
    let Some(etcd) = EtcdServer::start_tls_or_skip() else {
        return;
    };
    let tls = etcd.tls_files().unwrap().clone();
    let ctl = Ctl::embedded();
    let cfg = ctl.file(
        "calicoctl.cfg",
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  \
             datastoreType: etcdv3\n  etcdEndpoints: {}\n  etcdCACertFile: {}\n  \
             etcdCertFile: {}\n  etcdKeyFile: {}\n",
            etcd.endpoint(),
            tls.ca_cert.display(),
            tls.client_cert.display(),
            tls.client_key.display()
        ),
    );
    let out = ctl
        .run(&[
            "apply",
            "-c",
            &cfg,
            "-f",
            data("pools.json").to_str().unwrap(),
        ])
        .ok();
    assert_eq!(out.stdout, "Successfully applied 2 'IPPool' resource(s)\n");
    let out = ctl.run(&["get", "ippools", "-c", &cfg, "-o", "name"]).ok();
    assert_eq!(out.stdout, "ippool/pool-a\nippool/pool-b\n");
    // The embedded store named by the environment saw nothing.
    assert_eq!(ctl.run(&["get", "ippool", "-o", "name"]).ok().stdout, "");
    // Without the client certificate the server refuses us.
    let no_cert = ctl.file(
        "nocert.cfg",
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  \
             etcdEndpoints: {}\n  etcdCACertFile: {}\n",
            etcd.endpoint(),
            tls.ca_cert.display()
        ),
    );
    ctl.run(&["get", "ippools", "-c", &no_cert]).fails();
}

#[test]
fn kubernetes_documents_land_where_kube_controllers_write_them() {
    let Some(etcd) = EtcdServer::start_or_skip() else {
        return;
    };
    let ctl = Ctl::etcd(&etcd.endpoint());
    let f = ctl.file(
        "k8s.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n---\n\
         apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web, namespace: prod}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: allow-web, namespace: prod}\nspec: {podSelector: {}}\n",
    );
    let out = ctl.run(&["apply", "-f", &f]).ok();
    assert_eq!(out.stdout, "Successfully applied 3 resource(s)\n");
    let etcdctl = |args: &[&str]| {
        let out = std::process::Command::new("etcdctl")
            .args(["--endpoints", &etcd.endpoint()])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let keys = etcdctl(&["get", "/calico/resources/v3/", "--prefix", "--keys-only"]);
    for k in [
        "/calico/resources/v3/projectcalico.org/networkpolicies/prod/knp.default.allow-web",
        "/calico/resources/v3/projectcalico.org/profiles/kns.prod",
        "/calico/resources/v3/projectcalico.org/profiles/ksa.prod.web",
    ] {
        assert!(keys.lines().any(|l| l == k), "{k} missing from:\n{keys}");
    }
    let v: serde_json::Value = serde_json::from_str(&etcdctl(&[
        "get",
        "/calico/resources/v3/projectcalico.org/networkpolicies/prod/knp.default.allow-web",
        "--print-value-only",
    ]))
    .unwrap();
    assert_eq!(v["kind"], "NetworkPolicy");
    assert_eq!(v["spec"]["order"], 1000.0);
    assert_eq!(v["spec"]["tier"], "default");

    // Deleting the namespace removes all three.
    ctl.run(&["delete", "namespace", "prod"]).ok();
    let keys = etcdctl(&["get", "/calico/resources/v3/", "--prefix", "--keys-only"]);
    assert!(
        !keys.contains("knp.default.allow-web") && !keys.contains("kns.prod"),
        "{keys}"
    );
    assert!(!keys.contains("ksa.prod.web"), "{keys}");
}
