//! calicoctl with Kubernetes documents (networking.k8s.io/v1 NetworkPolicy, v1 Namespace and
//! ServiceAccount) on the embedded datastore: they are stored as calico-kube-controllers stores
//! them in etcd (`knp.default.<name>` policies, `kns.<ns>` / `ksa.<ns>.<sa>` profiles).

#![allow(clippy::unwrap_used)]

mod common;

use calico_datastore::Datastore;
use common::{Ctl, assert_subset};
use serde_json::{Value, json};

const NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata: {name: prod, labels: {team: a}}
";

const SERVICE_ACCOUNT: &str = "apiVersion: v1
kind: ServiceAccount
metadata: {name: web, namespace: prod, labels: {role: frontend}}
";

const K8S_POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: prod, uid: 30316465-6365-4463-ad63-3564383439ab}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {team: a}}}, {ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}]
    ports: [{port: 80}, {port: 81}, {protocol: UDP, port: dns}]
";

const CALICO_POLICY: &str = "apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: own, namespace: prod}
spec: {selector: all(), types: [Ingress]}
";

fn mixed() -> String {
    format!("{NAMESPACE}---\n{SERVICE_ACCOUNT}---\n{K8S_POLICY}---\n{CALICO_POLICY}")
}

/// Every key under `prefix` in the test's embedded datastore, with its value.
fn stored(ctl: &Ctl, prefix: &str) -> Vec<(String, Value)> {
    let db = ctl.dir.path().join("calico.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = calico_datastore::embedded::EmbeddedDatastore::open(&db).unwrap();
        store
            .list(prefix)
            .await
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| (kv.key, serde_json::from_slice(&kv.value).unwrap()))
            .collect()
    })
}

fn names(ctl: &Ctl, args: &[&str]) -> String {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "name"]);
    ctl.run(&a).ok().stdout
}

#[test]
fn mixed_file_is_stored_as_kube_controllers_store_it() {
    let ctl = Ctl::embedded();
    let f = ctl.file("mixed.yaml", &mixed());
    let out = ctl.run(&["apply", "-f", &f]).ok();
    assert_eq!(out.stdout, "Successfully applied 4 resource(s)\n");
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    // The etcd key layout of an etcd-mode cluster with calico-kube-controllers.
    let policies = stored(
        &ctl,
        "/calico/resources/v3/projectcalico.org/networkpolicies/",
    );
    let keys: Vec<&str> = policies.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/calico/resources/v3/projectcalico.org/networkpolicies/prod/knp.default.allow-web",
            "/calico/resources/v3/projectcalico.org/networkpolicies/prod/own",
        ]
    );
    let profiles = stored(&ctl, "/calico/resources/v3/projectcalico.org/profiles/");
    let keys: Vec<&str> = profiles.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/calico/resources/v3/projectcalico.org/profiles/kns.prod",
            "/calico/resources/v3/projectcalico.org/profiles/ksa.prod.web",
        ]
    );

    // The converted policy: calico-k8s's conversion of the Kubernetes one.
    let knp = &policies[0].1;
    assert_subset(
        &json!({
            "kind": "NetworkPolicy",
            "apiVersion": "projectcalico.org/v3",
            "metadata": {"name": "knp.default.allow-web", "namespace": "prod"},
            "spec": {
                "tier": "default",
                "order": 1000,
                "selector": "projectcalico.org/orchestrator == 'k8s' && app == 'web'",
                "types": ["Ingress"],
                "ingress": [
                    {"action": "Allow", "protocol": "TCP",
                     "source": {"namespaceSelector": "team == 'a'",
                                "selector": "projectcalico.org/orchestrator == 'k8s'"},
                     "destination": {"ports": ["80:81"]}},
                    {"action": "Allow", "protocol": "TCP",
                     "source": {"nets": ["10.0.0.0/8"], "notNets": ["10.1.0.0/16"]},
                     "destination": {"ports": ["80:81"]}},
                    {"action": "Allow", "protocol": "UDP",
                     "source": {"namespaceSelector": "team == 'a'",
                                "selector": "projectcalico.org/orchestrator == 'k8s'"},
                     "destination": {"ports": ["dns"]}},
                    {"action": "Allow", "protocol": "UDP",
                     "source": {"nets": ["10.0.0.0/8"], "notNets": ["10.1.0.0/16"]},
                     "destination": {"ports": ["dns"]}},
                ],
            },
        }),
        knp,
        "knp",
    );
    // The Kubernetes UID is not carried over (the controllers keep only name and namespace).
    let uid = knp["metadata"]["uid"].as_str().unwrap_or("");
    assert!(!uid.is_empty());
    assert_ne!(uid, "30316465-6365-4463-ad63-3564383439ab");
    assert_ne!(
        uid,
        calico_k8s::convert_uid("30316465-6365-4463-ad63-3564383439ab").unwrap()
    );

    assert_subset(
        &json!({
            "metadata": {"name": "kns.prod"},
            "spec": {
                "ingress": [{"action": "Allow"}],
                "egress": [{"action": "Allow"}],
                "labelsToApply": {
                    "pcns.team": "a",
                    "pcns.kubernetes.io/metadata.name": "prod",
                    "pcns.projectcalico.org/name": "prod",
                },
            },
        }),
        &profiles[0].1,
        "kns",
    );
    assert_subset(
        &json!({
            "metadata": {"name": "ksa.prod.web"},
            "spec": {"labelsToApply": {
                "pcsa.role": "frontend",
                "pcsa.projectcalico.org/name": "web",
            }},
        }),
        &profiles[1].1,
        "ksa",
    );
    assert!(profiles[1].1["spec"].get("ingress").is_none());

    // Plain calicoctl reads show the Calico objects.
    assert_eq!(
        names(&ctl, &["networkpolicy", "-n", "prod"]),
        "networkpolicy/knp.default.allow-web\nnetworkpolicy/own\n"
    );
    // Applying the same file again changes nothing and succeeds.
    let out = ctl.run(&["apply", "-f", &f]).ok();
    assert_eq!(out.stdout, "Successfully applied 4 resource(s)\n");
    let again = stored(
        &ctl,
        "/calico/resources/v3/projectcalico.org/networkpolicies/",
    );
    assert_eq!(again[0].1["spec"], policies[0].1["spec"]);
}

#[test]
fn kubernetes_kinds_by_name_on_the_command_line() {
    let ctl = Ctl::embedded();
    let f = ctl.file("mixed.yaml", &mixed());
    ctl.run(&["apply", "-f", &f]).ok();
    let sa2 = ctl.file(
        "sa2.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: db, namespace: other}\n",
    );
    ctl.run(&["apply", "-f", &sa2]).ok();

    // get: only what the controllers wrote for the kind.
    assert_eq!(
        names(&ctl, &["networkpolicy.networking.k8s.io", "-n", "prod"]),
        "networkpolicy/knp.default.allow-web\n"
    );
    assert_eq!(
        names(&ctl, &["netpol"]),
        "",
        "the default namespace has none"
    );
    assert_eq!(names(&ctl, &["ns"]), "profile/kns.prod\n");
    assert_eq!(names(&ctl, &["sa", "-n", "prod"]), "profile/ksa.prod.web\n");
    assert_eq!(
        names(&ctl, &["serviceaccounts", "-A"]),
        "profile/ksa.other.db\nprofile/ksa.prod.web\n"
    );
    let one = ctl.get_json(&["netpol", "allow-web", "-n", "prod"]);
    assert_eq!(one["metadata"]["name"], "knp.default.allow-web");
    let one = ctl.get_json(&["namespace", "prod"]);
    assert_eq!(one["metadata"]["name"], "kns.prod");
    let out = ctl.run(&["get", "sa", "web"]).fails();
    assert_eq!(
        out.stderr,
        "resource does not exist: Profile(ksa.default.web)\n"
    );
    let out = ctl.run(&["get", "netpol", "allow-web", "-A"]).fails();
    assert!(
        out.stderr
            .contains("cannot use --all-namespace flag for getting a single resource"),
        "{}",
        out.stderr
    );
    let out = ctl.run(&["get", "ns", "-n", "prod"]).fails();
    assert_eq!(out.stderr, "Namespace is not namespaced\n");

    // get -f with a Kubernetes manifest reads what it became.
    let out = ctl.run(&["get", "-f", &f, "-o", "name"]).ok().stdout;
    assert_eq!(
        out,
        "profile/kns.prod\nprofile/ksa.prod.web\nnetworkpolicy/knp.default.allow-web\n\
         networkpolicy/own\n"
    );

    // patch and label are for Calico kinds.
    let out = ctl.run(&["label", "ns", "prod", "x=y"]).fails();
    assert!(
        out.stderr
            .contains("(Namespace) can only be created, applied"),
        "{}",
        out.stderr
    );

    // delete by name.
    let out = ctl
        .run(&["delete", "netpol", "allow-web", "-n", "prod"])
        .ok();
    assert_eq!(
        out.stdout,
        "Successfully deleted 1 'NetworkPolicy.networking.k8s.io' resource(s)\n"
    );
    assert_eq!(
        names(&ctl, &["networkpolicy", "-n", "prod"]),
        "networkpolicy/own\n"
    );
    let out = ctl.run(&["delete", "sa", "db", "-n", "other"]).ok();
    assert_eq!(
        out.stdout,
        "Successfully deleted 1 'ServiceAccount' resource(s)\n"
    );
    let out = ctl.run(&["delete", "sa", "db", "-n", "other"]).fails();
    assert_eq!(
        out.stderr,
        "Failed to delete 'ServiceAccount' resource: resource does not exist: \
         Profile(ksa.other.db)\n"
    );
    ctl.run(&["delete", "sa", "db", "-n", "other", "--skip-not-exists"])
        .ok();
}

#[test]
fn deleting_a_namespace_deletes_what_was_written_for_its_contents() {
    let ctl = Ctl::embedded();
    let f = ctl.file("mixed.yaml", &mixed());
    ctl.run(&["apply", "-f", &f]).ok();
    let other = ctl.file(
        "other.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: web, namespace: prod2}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
         metadata: {name: allow-web, namespace: prod2}\nspec: {podSelector: {}}\n",
    );
    ctl.run(&["apply", "-f", &other]).ok();

    let out = ctl.run(&["delete", "namespace", "prod"]).ok();
    assert_eq!(
        out.stdout,
        "Successfully deleted 1 'Namespace' resource(s)\n"
    );
    // Its service-account profiles and converted policies went with it; a Calico policy of
    // the namespace and another namespace's objects did not.
    assert_eq!(
        names(&ctl, &["profile"]),
        "profile/ksa.prod2.web\nprofile/projectcalico-default-allow\n"
    );
    assert_eq!(
        names(&ctl, &["networkpolicy", "-A"]),
        "networkpolicy/own\nnetworkpolicy/knp.default.allow-web\n"
    );
    assert_eq!(
        names(&ctl, &["networkpolicy", "-n", "prod"]),
        "networkpolicy/own\n"
    );

    // delete -f of a file listing a Namespace and its contents deletes each as listed.
    ctl.run(&["apply", "-f", &f]).ok();
    let out = ctl.run(&["delete", "-f", &f]).ok();
    assert_eq!(out.stdout, "Successfully deleted 4 resource(s)\n");
    assert_eq!(names(&ctl, &["networkpolicy", "-n", "prod"]), "");
}

#[test]
fn namespaces_resolve_as_for_calico_kinds() {
    let ctl = Ctl::embedded();
    let f = ctl.file(
        "np.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\n\
         spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n",
    );
    let out = ctl.run(&["apply", "-f", &f, "-n", "dev"]).ok();
    assert_eq!(
        out.stdout,
        "Successfully applied 1 'NetworkPolicy.networking.k8s.io' resource(s)\n"
    );
    let p = ctl.get_json(&["networkpolicy", "knp.default.deny", "-n", "dev"]);
    assert_eq!(p["spec"]["types"], json!(["Ingress", "Egress"]));
    assert_eq!(
        p["spec"]["selector"],
        "projectcalico.org/orchestrator == 'k8s'"
    );
    // Without -n: the default namespace, as kubectl.
    ctl.run(&["apply", "-f", &f]).ok();
    ctl.get_json(&["networkpolicy", "knp.default.deny", "-n", "default"]);

    let sa = ctl.file(
        "sa.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x, namespace: a}\n",
    );
    let out = ctl.run(&["apply", "-f", &sa, "-n", "b"]).fails();
    assert_eq!(
        out.stderr,
        format!(
            "failed to execute command: {sa} doc 1: resource namespace does not match client \
             namespace. a != b\n"
        )
    );
    let ns = ctl.file("ns.yaml", NAMESPACE);
    let out = ctl.run(&["apply", "-f", &ns, "-n", "b"]).fails();
    assert_eq!(
        out.stderr,
        format!("failed to execute command: {ns} doc 1: Namespace is not namespaced\n")
    );
}

#[test]
fn create_replace_and_validate() {
    let ctl = Ctl::embedded();
    let np = ctl.file("np.yaml", K8S_POLICY);
    let out = ctl.run(&["replace", "-f", &np]).fails();
    assert_eq!(
        out.stderr,
        "failed to replace 'NetworkPolicy.networking.k8s.io' resource: resource does not exist: \
         NetworkPolicy(prod/knp.default.allow-web)\n"
    );
    let out = ctl.run(&["create", "-f", &np]).ok();
    assert_eq!(
        out.stdout,
        "Successfully created 1 'NetworkPolicy.networking.k8s.io' resource(s)\n"
    );
    let out = ctl.run(&["create", "-f", &np]).fails();
    assert_eq!(
        out.stderr,
        "failed to create 'NetworkPolicy.networking.k8s.io' resource: [resource already exists: \
         NetworkPolicy(prod/knp.default.allow-web)]\n"
    );
    ctl.run(&["create", "-f", &np, "--skip-exists"]).ok();
    let before = ctl.get_json(&["networkpolicy", "knp.default.allow-web", "-n", "prod"]);

    let changed = ctl.file("np2.yaml", &K8S_POLICY.replace("app: web", "app: web2"));
    let out = ctl.run(&["replace", "-f", &changed]).ok();
    assert_eq!(
        out.stdout,
        "Successfully replaced 1 'NetworkPolicy.networking.k8s.io' resource(s)\n"
    );
    let after = ctl.get_json(&["networkpolicy", "knp.default.allow-web", "-n", "prod"]);
    assert_eq!(
        after["spec"]["selector"],
        "projectcalico.org/orchestrator == 'k8s' && app == 'web2'"
    );
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );

    // validate needs no datastore and converts too.
    let mixed = ctl.file("mixed.yaml", &mixed());
    let out = ctl
        .run(&["validate", "-f", &mixed, "-c", "/nonexistent/calicoctl.cfg"])
        .ok();
    assert_eq!(out.stdout, "Successfully validated 4 resource(s)\n");
}

#[test]
fn an_invalid_kubernetes_document_applies_nothing() {
    let ctl = Ctl::embedded();
    let bad = format!(
        "{CALICO_POLICY}---\n{}",
        K8S_POLICY.replace("{port: 81}", "{port: 81, endPort: 70}")
    );
    let f = ctl.file("bad.yaml", &bad);
    let out = ctl.run(&["apply", "-f", &f]).fails();
    assert!(
        out.stderr.ends_with(&format!(
            "failed to execute command: {f} doc 2: spec.ingress[0].ports[1].endPort: Invalid value: 81: \
             must be greater than or equal to `port`\n"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert_eq!(names(&ctl, &["networkpolicy", "-A"]), "");

    let typo = ctl.file(
        "typo.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a}\n\
         spec: {podSelector: {}, ingres: []}\n",
    );
    let out = ctl.run(&["apply", "-f", &typo]).fails();
    assert!(
        out.stderr.contains(
            "doc 1: spec.ingres: field in document is not recognized or is in the wrong \
             location: ingres"
        ),
        "{}",
        out.stderr
    );

    let pod = ctl.file(
        "pod.yaml",
        &format!("{NAMESPACE}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n"),
    );
    let out = ctl.run(&["apply", "-f", &pod]).fails();
    assert_eq!(
        out.stderr,
        format!(
            "failed to execute command: {pod} doc 2: kind: \"Pod\" of apiVersion \"v1\" is not \
             supported: calicoctl accepts projectcalico.org/v3 kinds, networking.k8s.io/v1 \
             NetworkPolicy and v1 Namespace and ServiceAccount\n"
        )
    );
    assert_eq!(names(&ctl, &["ns"]), "");
}

#[test]
fn stdin_lists() {
    let ctl = Ctl::embedded();
    let list = "apiVersion: v1\nkind: List\nitems:\n\
        - {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n\
        - {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n";
    let out = ctl.run_with_stdin(&["apply", "-f", "-"], Some(list)).ok();
    assert_eq!(
        out.stdout,
        "Successfully applied 2 'Namespace' resource(s)\n"
    );
    assert_eq!(names(&ctl, &["ns"]), "profile/kns.a\nprofile/kns.b\n");
    let out = ctl.run_with_stdin(&["delete", "-f", "-"], Some(list)).ok();
    assert_eq!(
        out.stdout,
        "Successfully deleted 2 'Namespace' resource(s)\n"
    );
    assert_eq!(names(&ctl, &["ns"]), "");
}
