//! calicoctl end to end on the embedded datastore.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Ctl, data};
use serde_json::json;

#[test]
fn examples_apply_get_round_trip_and_delete() {
    common::examples_flow(&Ctl::embedded());
}

#[test]
fn an_invalid_document_applies_nothing() {
    let ctl = Ctl::embedded();
    let bad = data("bad-policy.yaml");
    let out = ctl.run(&["apply", "-f", bad.to_str().unwrap()]).fails();
    assert!(
        out.stderr.starts_with(&format!(
            "failed to execute command: {} doc 2: spec.ingress[0].destination.ports[0]",
            bad.display()
        )),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    // The valid first document was not applied either.
    let out = ctl.run(&["get", "ippool", "never-created"]).fails();
    assert!(
        out.stderr.contains("resource does not exist"),
        "{}",
        out.stderr
    );
    // validate reports the same without a datastore.
    let out = ctl.run(&["validate", "-f", bad.to_str().unwrap()]).fails();
    assert!(
        out.stderr.contains("doc 2: spec.ingress[0]"),
        "{}",
        out.stderr
    );
    let out = ctl
        .run(&["validate", "-f", data("examples.yaml").to_str().unwrap()])
        .ok();
    assert_eq!(out.stdout, "Successfully validated 5 resource(s)\n");

    // Unknown fields are named as calicoctl names them.
    let f = ctl.file(
        "typo.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidrs: 10.0.0.0/8}\n",
    );
    let out = ctl.run(&["create", "-f", &f]).fails();
    assert!(
        out.stderr
            .contains("field in document is not recognized or is in the wrong location: cidrs"),
        "{}",
        out.stderr
    );
}

#[test]
fn create_reports_existing_resources_like_calicoctl() {
    let ctl = Ctl::embedded();
    let pools = data("pools.json");
    let p = pools.to_str().unwrap();
    let out = ctl.run(&["create", "-f", p]).ok();
    assert_eq!(out.stdout, "Successfully created 2 'IPPool' resource(s)\n");
    let out = ctl.run(&["create", "-f", p]).fails();
    assert_eq!(
        out.stderr,
        "failed to create any 'IPPool' resources: [resource already exists: IPPool(pool-a) \
         resource already exists: IPPool(pool-b)]\n"
    );
    let out = ctl.run(&["create", "-f", p, "--skip-exists"]).ok();
    assert_eq!(out.stdout, "Successfully created 2 'IPPool' resource(s)\n");

    // Partial success: one new pool, one existing.
    let f = ctl.file(
        "mixed.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-c}\nspec: {cidr: 10.3.0.0/16}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-a}\nspec: {cidr: 10.1.0.0/16}\n",
    );
    let out = ctl.run(&["create", "-f", &f]).fails();
    assert_eq!(
        out.stdout,
        "Partial success: created the first 1 out of 2 'IPPool' resources:\n"
    );
    assert_eq!(
        out.stderr,
        "hit error: [resource already exists: IPPool(pool-a)]\n"
    );

    // Overlapping pools are refused by the client, as Calico's ippool.Create does.
    let f = ctl.file(
        "overlap.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-x}\nspec: {cidr: 10.1.128.0/17}\n",
    );
    let out = ctl.run(&["create", "-f", &f]).fails();
    assert!(
        out.stderr
            .contains("IPPool(pool-x) CIDR overlaps with IPPool(pool-a) CIDR 10.1.0.0/16"),
        "{}",
        out.stderr
    );

    // A resourceVersion in a create manifest is refused.
    let f = ctl.file(
        "rv.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-d, resourceVersion: \"3\"}\nspec: {cidr: 10.4.0.0/16}\n",
    );
    let out = ctl.run(&["create", "-f", &f]).fails();
    assert_eq!(
        out.stderr,
        "failed to create 'IPPool' resource: [error with field Metadata.ResourceVersion = '3' \
         (field must not be set for a Create request)]\n"
    );
}

#[test]
fn lists_directories_and_stdin() {
    let ctl = Ctl::embedded();
    // A <Kind>List whose second item takes the default namespace.
    let out = ctl
        .run(&["apply", "-f", data("netsets.yaml").to_str().unwrap()])
        .ok();
    assert_eq!(
        out.stdout,
        "Successfully applied 2 'NetworkSet' resource(s)\n"
    );
    let t = ctl.run(&["get", "netsets", "-A", "-o", "wide"]).ok().stdout;
    assert_eq!(
        t,
        "NAMESPACE   NAME   NETS          \ndefault     ns-b   10.9.1.0/24   \ndev         ns-a   10.9.0.0/24   \n\n"
    );
    // A directory: every .yaml/.yml/.json file in it.
    let dir = ctl.dir.path().join("manifests");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(data("pools.json"), dir.join("pools.json")).unwrap();
    std::fs::write(dir.join("README.md"), "not a manifest").unwrap();
    let out = ctl.run(&["apply", "-f", dir.to_str().unwrap()]).ok();
    assert_eq!(out.stdout, "Successfully applied 2 'IPPool' resource(s)\n");
    // stdin.
    let out = ctl
        .run_with_stdin(
            &["apply", "-f", "-"],
            Some(r#"{"apiVersion":"projectcalico.org/v3","kind":"GlobalNetworkSet","metadata":{"name":"g"},"spec":{"nets":["1.2.3.0/24"]}}"#),
        )
        .ok();
    assert_eq!(
        out.stdout,
        "Successfully applied 1 'GlobalNetworkSet' resource(s)\n"
    );
    // Several objects by name as YAML are a plain sequence.
    let out = ctl
        .run(&["get", "ippool", "pool-a", "pool-b", "-o", "yaml"])
        .ok();
    assert!(
        out.stdout
            .starts_with("- apiVersion: projectcalico.org/v3\n"),
        "{}",
        out.stdout
    );
    // Namespace mismatches are refused.
    let out = ctl.run(&["get", "ippool", "-n", "x"]).fails();
    assert_eq!(out.stderr, "IPPool is not namespaced\n");
    let out = ctl.run(&["get", "nosuchkind"]).fails();
    assert_eq!(out.stderr, "resource type 'nosuchkind' is not supported\n");
}

#[test]
fn label_and_patch() {
    let ctl = Ctl::embedded();
    ctl.run(&["apply", "-f", data("pools.json").to_str().unwrap()])
        .ok();
    let out = ctl.run(&["label", "ippools", "pool-a", "env=prod"]).ok();
    assert_eq!(out.stdout, "Successfully set label env on ippools pool-a\n");
    let out = ctl.run(&["label", "ippools", "pool-a", "env=dev"]).fails();
    assert_eq!(
        out.stderr,
        "failed to update label of ippools pool-a, key env is already present. please use \
         '--overwrite' to set a new value\n"
    );
    let out = ctl
        .run(&["label", "ippools", "pool-a", "env=dev", "--overwrite"])
        .ok();
    assert_eq!(
        out.stdout,
        "Successfully updated label env on ippools pool-a\n"
    );
    assert_eq!(
        ctl.get_json(&["ippool", "pool-a"])["metadata"]["labels"],
        json!({"env": "dev"})
    );
    let out = ctl
        .run(&["label", "ippools", "pool-a", "env", "--remove"])
        .ok();
    assert_eq!(
        out.stdout,
        "Successfully removed label env from ippools pool-a\n"
    );
    let out = ctl
        .run(&["label", "ippools", "pool-a", "env", "--remove"])
        .fails();
    assert_eq!(
        out.stderr,
        "cannot remove label of ippools pool-a, key env does not exist\n"
    );
    assert!(
        ctl.get_json(&["ippool", "pool-a"])["metadata"]
            .get("labels")
            .is_none()
    );

    let before = ctl.get_json(&["ippool", "pool-a"]);
    let out = ctl
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"spec":{"natOutgoing":true,"disabled":true}}"#,
        ])
        .ok();
    assert_eq!(out.stdout, "Successfully patched 1 'IPPool' resource\n");
    let after = ctl.get_json(&["ippool", "pool-a"]);
    assert_eq!(after["spec"]["natOutgoing"], true);
    assert_eq!(after["spec"]["disabled"], true);
    assert_eq!(after["spec"]["cidr"], before["spec"]["cidr"]);
    assert_eq!(after["metadata"]["uid"], before["metadata"]["uid"]);

    let out = ctl
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/ipipMode","value":"CrossSubnet"}]"#,
        ])
        .ok();
    assert_eq!(out.stdout, "Successfully patched 1 'IPPool' resource\n");
    assert_eq!(
        ctl.get_json(&["ippool", "pool-a"])["spec"]["ipipMode"],
        "CrossSubnet"
    );

    // A patch that breaks validation is refused and changes nothing.
    let out = ctl
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"spec":{"blockSize":3}}"#,
        ])
        .fails();
    assert!(out.stderr.starts_with("hit error: "), "{}", out.stderr);
    assert_eq!(ctl.get_json(&["ippool", "pool-a"])["spec"]["blockSize"], 26);
    // The CIDR of a pool cannot change.
    let out = ctl
        .run(&[
            "patch",
            "ippool",
            "pool-a",
            "-p",
            r#"{"spec":{"cidr":"10.7.0.0/16"}}"#,
        ])
        .fails();
    assert!(
        out.stderr.contains("IPPool CIDR cannot be modified"),
        "{}",
        out.stderr
    );
    let out = ctl.run(&["patch", "ippool", "nope", "-p", "{}"]).fails();
    assert_eq!(
        out.stderr,
        "hit error: resource does not exist: IPPool(nope)\n"
    );
}

#[test]
fn protected_objects_and_version() {
    let ctl = Ctl::embedded();
    ctl.run(&["apply", "-f", data("examples.yaml").to_str().unwrap()])
        .ok();
    let out = ctl.run(&["delete", "tier", "default"]).fails();
    assert_eq!(
        out.stderr,
        "Failed to delete 'Tier' resource: operation Delete is not supported on default: Cannot delete default tier\n"
    );
    let out = ctl
        .run(&["delete", "profile", "projectcalico-default-allow"])
        .fails();
    assert!(out.stderr.contains("cannot be deleted"), "{}", out.stderr);
    // A tier with policies in it cannot be deleted.
    let f = ctl.file(
        "tiered.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: security.deny-all}\n\
         spec: {tier: security, selector: all(), types: [Ingress]}\n",
    );
    ctl.run(&["apply", "-f", &f]).ok();
    let out = ctl.run(&["delete", "tier", "security"]).fails();
    assert!(
        out.stderr.contains("Cannot delete a non-empty tier"),
        "{}",
        out.stderr
    );
    // A policy in a missing tier cannot be created.
    let f = ctl.file(
        "notier.yaml",
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: ghost.p}\n\
         spec: {tier: ghost, selector: all()}\n",
    );
    let out = ctl.run(&["create", "-f", &f]).fails();
    assert!(
        out.stderr.contains("resource does not exist: Tier(ghost)"),
        "{}",
        out.stderr
    );

    let out = ctl.run(&["version"]).ok();
    assert!(
        out.stdout.starts_with("Client Version:    v"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Cluster Version:   unknown\n"),
        "{}",
        out.stdout
    );
    let out = ctl.run(&["version", "--client"]).ok();
    assert_eq!(out.stdout.lines().count(), 2);
    // ClusterInformation is read-only to apply.
    let ci = ctl
        .run(&["get", "clusterinfo", "default", "-o", "yaml"])
        .ok()
        .stdout;
    let out = ctl.run_with_stdin(&["apply", "-f", "-"], Some(&ci)).fails();
    assert!(
        out.stderr.contains(
            "operation apply is not supported on ClusterInformation: resource is readonly"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn config_file_selects_the_datastore() {
    let ctl = Ctl::embedded();
    let db = ctl.dir.path().join("other.db");
    let cfg = ctl.file(
        "calicoctl.cfg",
        &format!(
            "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {{}}\nspec:\n  datastoreType: embedded\n  embeddedPath: {}\n",
            db.display()
        ),
    );
    ctl.run(&[
        "apply",
        "-c",
        &cfg,
        "-f",
        data("pools.json").to_str().unwrap(),
    ])
    .ok();
    assert!(db.exists());
    // The environment's store did not see it.
    assert_eq!(
        ctl.run(&["get", "ippool"]).ok().stdout,
        "NAME   CIDR   SELECTOR   \n\n"
    );
    assert!(
        ctl.run(&["get", "ippool", "-c", &cfg, "-o", "name"])
            .ok()
            .stdout
            .contains("ippool/pool-a")
    );
    let out = ctl
        .run(&["get", "ippool", "-c", "/nonexistent/calicoctl.cfg"])
        .fails();
    assert_eq!(
        out.stdout,
        "Failed to create Calico API client: Error reading config file: /nonexistent/calicoctl.cfg\n"
    );
}

#[test]
fn custom_columns_and_stdin_locations() {
    let ctl = Ctl::embedded();
    ctl.run(&["apply", "-f", data("pools.json").to_str().unwrap()])
        .ok();
    let out = ctl
        .run(&["get", "ippool", "-o", "custom-columns=NAME,VXLANMODE"])
        .ok();
    assert_eq!(
        out.stdout,
        "NAME     VXLANMODE   \npool-a   Never       \npool-b   Always      \n\n"
    );
    let out = ctl
        .run(&["get", "ippool", "-o", "custom-columns=NAME,BOGUS"])
        .fails();
    assert!(
        out.stderr
            .starts_with("unknown heading BOGUS, valid values are: "),
        "{}",
        out.stderr
    );
    let out = ctl
        .run(&["get", "ippool", "-o", "go-template={{.}}"])
        .fails();
    assert!(out.stderr.contains("not supported"), "{}", out.stderr);
    let out = ctl.run(&["get", "ippool", "-o", "xml"]).fails();
    assert_eq!(out.stderr, "unrecognized output format 'xml'\n");

    let text = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: ok}\nspec: {cidr: 10.8.0.0/16}\n---\n\
                apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: bad}\nspec: {cidr: 10.9.0.0/16, blockSize: 99}\n";
    let out = ctl
        .run_with_stdin(&["apply", "-f", "-"], Some(text))
        .fails();
    assert!(
        out.stderr
            .starts_with("failed to execute command: stdin doc 2: spec.blockSize"),
        "{}",
        out.stderr
    );
    ctl.run(&["get", "ippool", "ok"]).fails();

    // JSON output of one object: kind first, as Go marshals Calico types.
    let out = ctl.run(&["get", "ippool", "pool-a", "-o", "json"]).ok();
    assert!(out.stdout.starts_with("{\n  \"kind\": \"IPPool\",\n  \"apiVersion\": \"projectcalico.org/v3\",\n  \"metadata\": {\n    \"name\": \"pool-a\","), "{}", out.stdout);
}

fn pool_doc(name: &str, cidr: &str) -> String {
    format!(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\nspec: {{cidr: {cidr}}}\n"
    )
}

#[test]
fn a_refused_middle_document_is_named_not_reported_as_a_prefix() {
    let ctl = Ctl::embedded();
    ctl.run(&["create", "-f", data("pools.json").to_str().unwrap()])
        .ok();
    // Document 3 of 5 is refused by the datastore (pool-a exists); 4 and 5 still go in, as
    // calicoctl goes on after a failed create. "created the first 4" would be false.
    let docs = [
        pool_doc("pool-1", "10.11.0.0/16"),
        pool_doc("pool-2", "10.12.0.0/16"),
        pool_doc("pool-a", "10.1.0.0/16"),
        pool_doc("pool-4", "10.14.0.0/16"),
        pool_doc("pool-5", "10.15.0.0/16"),
    ];
    let f = ctl.file("five.yaml", &docs.join("---\n"));
    let out = ctl.run(&["create", "-f", &f]).fails();
    assert_eq!(
        out.stdout,
        format!(
            "Partial success: created 4 out of 5 'IPPool' resources, not created: {f} doc 3:\n"
        )
    );
    assert_eq!(
        out.stderr,
        "hit error: [resource already exists: IPPool(pool-a)]\n"
    );
    let names = ctl.run(&["get", "ippool", "-o", "name"]).ok().stdout;
    for p in ["pool-1", "pool-2", "pool-4", "pool-5"] {
        assert!(names.contains(&format!("ippool/{p}\n")), "{names}");
    }
}

#[test]
fn a_namespace_conflict_in_any_document_applies_nothing() {
    let ctl = Ctl::embedded();
    let doc = |ns: &str, name: &str| {
        format!(
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{selector: all()}}\n"
        )
    };
    let f = ctl.file(
        "ns.yaml",
        &[doc("a", "first"), doc("b", "second"), doc("a", "third")].join("---\n"),
    );
    let out = ctl.run(&["apply", "-n", "a", "-f", &f]).fails();
    assert_eq!(
        out.stderr,
        format!(
            "failed to execute command: {f} doc 2: resource namespace does not match client \
             namespace. b != a\n"
        )
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    // Refused before the datastore was opened (not even initialised).
    assert!(!ctl.dir.path().join("calico.db").exists());
    let out = ctl.run(&["get", "networkpolicy", "-A", "-o", "name"]).ok();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn get_into_a_closed_pipe_does_not_panic() {
    let ctl = Ctl::embedded();
    ctl.run(&["apply", "-f", data("pools.json").to_str().unwrap()])
        .ok();
    for format in ["yaml", "json", "wide", "name"] {
        let out = ctl.run_into_closed_pipe(&["get", "ippool", "-o", format]);
        assert!(!out.stderr.contains("panicked"), "{format}: {}", out.stderr);
        assert_eq!(out.code, 0, "{format}: {}", out.stderr);
    }
}

#[test]
fn delete_by_file_with_a_namespace_conflict_deletes_nothing() {
    let ctl = Ctl::embedded();
    ctl.run(&["apply", "-f", data("pools.json").to_str().unwrap()])
        .ok();
    let f = ctl.file(
        "del.yaml",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-a}\n---\n\
         apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool-b, namespace: x}\n",
    );
    let out = ctl.run(&["delete", "-f", &f]).fails();
    assert_eq!(
        out.stderr,
        format!(
            "failed to execute command: {f} doc 2: namespace should not be specified for a \
             non-namespaced resource. IPPool is not a namespaced resource\n"
        )
    );
    let names = ctl.run(&["get", "ippool", "-o", "name"]).ok().stdout;
    assert_eq!(names, "ippool/pool-a\nippool/pool-b\n");
}

#[test]
fn a_corrupt_stored_value_is_an_error_naming_the_key_and_can_be_deleted() {
    use calico_datastore::Datastore;
    let ctl = Ctl::embedded();
    ctl.run(&["apply", "-f", data("pools.json").to_str().unwrap()])
        .ok();
    let key = "/calico/resources/v3/projectcalico.org/ippools/pool-a";
    // Another writer leaves a value that is not a Calico object under a Calico key.
    let db = ctl.dir.path().join("calico.db");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = calico_datastore::embedded::EmbeddedDatastore::open(&db).unwrap();
        store
            .put(key, br#"{"spec":{"cidr":17}}"#.to_vec(), None)
            .await
            .unwrap();
    });
    for args in [
        &["get", "ippool"][..],
        &["get", "ippool", "-o", "yaml"],
        &["get", "ippool", "pool-a"],
    ] {
        let out = ctl.run(args).fails();
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(key), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
    // The entry can be cleared, and the delete says it succeeded.
    let out = ctl.run(&["delete", "ippool", "pool-a"]).ok();
    assert_eq!(out.stdout, "Successfully deleted 1 'IPPool' resource(s)\n");
    let out = ctl.run(&["get", "ippool", "-o", "name"]).ok();
    assert_eq!(out.stdout, "ippool/pool-b\n");
}
