//! Runs the built `calicoctl` against a throw-away datastore, and the end-to-end flow shared by
//! the embedded and etcd test suites.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    #[track_caller]
    pub fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "expected success; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    #[track_caller]
    pub fn fails(self) -> Out {
        assert_ne!(
            self.code, 0,
            "expected failure; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A calicoctl bound to one datastore through the environment.
pub struct Ctl {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// Every variable that could point calicoctl elsewhere.
const CLEARED: &[&str] = &[
    "DATASTORE_TYPE",
    "CALICO_DATASTORE_TYPE",
    "ETCD_ENDPOINTS",
    "CALICO_ETCD_ENDPOINTS",
    "ETCD_CA_CERT_FILE",
    "CALICO_ETCD_CA_CERT_FILE",
    "ETCD_CERT_FILE",
    "CALICO_ETCD_CERT_FILE",
    "ETCD_KEY_FILE",
    "CALICO_ETCD_KEY_FILE",
    "CALICO_DATASTORE_PATH",
    "DATASTORE_PATH",
];

impl Ctl {
    /// The embedded datastore in a fresh temporary directory.
    pub fn embedded() -> Ctl {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("calico.db");
        Ctl {
            env: vec![("CALICO_DATASTORE_PATH".into(), db.display().to_string())],
            dir,
        }
    }

    /// A real etcd at `endpoint`.
    pub fn etcd(endpoint: &str) -> Ctl {
        Ctl {
            dir: tempfile::tempdir().unwrap(),
            env: vec![
                ("DATASTORE_TYPE".into(), "etcdv3".into()),
                ("ETCD_ENDPOINTS".into(), endpoint.into()),
            ],
        }
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_calicoctl"));
        for v in CLEARED {
            cmd.env_remove(v);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, None)
    }

    /// Runs with a stdout whose reader is gone before anything is written (`| head -0`).
    pub fn run_into_closed_pipe(&self, args: &[&str]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_calicoctl"));
        for v in CLEARED {
            cmd.env_remove(v);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::new(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }

    /// Writes a file in the temporary directory and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }

    /// `get KIND NAME -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.run(&a).ok().stdout).unwrap()
    }

    /// `get ... -o yaml`, parsed back with calico-api's reader.
    pub fn get_yaml(&self, args: &[&str]) -> (String, Value) {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "yaml"]);
        let text = self.run(&a).ok().stdout;
        let mut docs = calico_api::decode::parse_documents("out", &text).unwrap();
        assert_eq!(docs.len(), 1, "{text}");
        (text, docs.remove(0))
    }
}

/// Every key/value of `want` is present, equal, in `got` (recursively for objects).
#[track_caller]
pub fn assert_subset(want: &Value, got: &Value, path: &str) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} missing in {got}"));
                assert_subset(v, gv, &format!("{path}.{k}"));
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            assert_eq!(a.as_f64(), b.as_f64(), "{path}");
        }
        _ => assert_eq!(want, got, "{path}"),
    }
}

/// The §2.4 examples: apply, read back with defaults filled, re-apply the output unchanged,
/// tables, names, conflicts, delete. Run against any datastore.
pub fn examples_flow(ctl: &Ctl) {
    let out = ctl
        .run(&["apply", "-f", data("examples.yaml").to_str().unwrap()])
        .ok();
    assert_eq!(out.stdout, "Successfully applied 5 resource(s)\n");

    // Each example reads back containing what was written, plus Calico's defaults.
    let text = std::fs::read_to_string(data("examples.yaml")).unwrap();
    let inputs = calico_api::decode::parse_documents("examples.yaml", &text).unwrap();
    for input in &inputs {
        let kind = input["kind"].as_str().unwrap();
        let name = input["metadata"]["name"].as_str().unwrap();
        let mut args = vec![kind, name];
        if let Some(ns) = input["metadata"]["namespace"].as_str() {
            args.extend_from_slice(&["-n", ns]);
        }
        let (yaml, got) = ctl.get_yaml(&args);
        assert_subset(&input["spec"], &got["spec"], kind);
        assert_eq!(got["apiVersion"], "projectcalico.org/v3");
        let meta = &got["metadata"];
        assert!(
            meta["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
        assert!(
            meta["creationTimestamp"].is_string() && meta["uid"].is_string(),
            "{yaml}"
        );
        // Keys are sorted as calicoctl's YAML output sorts them.
        assert!(yaml.find("apiVersion:").unwrap() < yaml.find("kind:").unwrap());
        assert!(yaml.find("kind:").unwrap() < yaml.find("metadata:").unwrap());

        // The output applies back unchanged (its resourceVersion is current, so the
        // compare-and-swap holds) and nothing but the resourceVersion moves.
        let again = ctl.run_with_stdin(&["apply", "-f", "-"], Some(&yaml)).ok();
        assert_eq!(
            again.stdout,
            format!("Successfully applied 1 '{kind}' resource(s)\n")
        );
        let (_, after) = ctl.get_yaml(&args);
        assert_eq!(
            after["spec"], got["spec"],
            "{kind} spec changed on re-apply"
        );
        assert_eq!(after["metadata"]["uid"], got["metadata"]["uid"]);
        assert_ne!(
            after["metadata"]["resourceVersion"],
            got["metadata"]["resourceVersion"]
        );
    }

    // Defaults Calico fills in.
    let pool = ctl.get_json(&["ippool", "default-ipv4-ippool"]);
    assert_eq!(pool["kind"], "IPPool");
    assert_eq!(
        pool["spec"]["allowedUses"],
        serde_json::json!(["Workload", "Tunnel"])
    );
    assert_eq!(pool["spec"]["assignmentMode"], "Automatic");
    let np = ctl.get_json(&["networkpolicy", "allow-frontend", "-n", "prod"]);
    assert_eq!(np["spec"]["tier"], "default");
    assert_eq!(
        np["metadata"]["labels"]["projectcalico.org/tier"],
        "default"
    );
    assert!(
        np["metadata"]["annotations"]
            .get("projectcalico.org/metadata")
            .is_none()
    );

    // Tables with calicoctl's columns and tabwriter spacing.
    let t = ctl.run(&["get", "ippools"]).ok().stdout;
    assert_eq!(
        t,
        "NAME                  CIDR             SELECTOR   \n\
         default-ipv4-ippool   192.168.0.0/16   all()      \n\n"
    );
    let t = ctl.run(&["get", "ipp", "-o", "wide"]).ok().stdout;
    assert_eq!(
        t,
        "NAME                  CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   \
         DISABLEBGPEXPORT   SELECTOR   ASSIGNMENTMODE   \n\
         default-ipv4-ippool   192.168.0.0/16   true   Always     Never       false      \
         false              all()      Automatic        \n\n"
    );
    let t = ctl.run(&["get", "policy", "-A"]).ok().stdout;
    assert_eq!(
        t,
        "NAMESPACE   NAME             TIER      \nprod        allow-frontend   default   \n\n"
    );
    // Without -n the default namespace is listed, which is empty here.
    assert_eq!(ctl.run(&["get", "np"]).ok().stdout, "NAME   TIER   \n\n");
    let t = ctl.run(&["get", "gnp", "-o", "wide"]).ok().stdout;
    assert_eq!(
        t,
        "NAME             TIER      ORDER   SELECTOR                                  \n\
         block-metadata   default   10      projectcalico.org/orchestrator == 'k8s'   \n\n"
    );
    let t = ctl.run(&["get", "bgppeers"]).ok().stdout;
    assert_eq!(
        t,
        "NAME        PEERIP     NODE              ASN     \nrack1-tor   10.0.0.1   rack == 'rack1'   64513   \n\n"
    );
    let t = ctl.run(&["get", "bgpconfig"]).ok().stdout;
    assert_eq!(
        t,
        "NAME      LOGSEVERITY   MESHENABLED   ASNUMBER   \ndefault   Info          true          64512      \n\n"
    );
    // Built-in tiers exist (created as calicoctl's EnsureInitialized does), orders as Go prints them.
    let t = ctl.run(&["get", "tiers"]).ok().stdout;
    assert!(t.contains("default         1e+06"), "{t}");
    assert!(t.contains("kube-admin      1000 "), "{t}");
    // The virtual default-allow profile.
    assert!(
        ctl.run(&["get", "profiles", "-o", "name"])
            .ok()
            .stdout
            .contains("profile/projectcalico-default-allow\n")
    );

    // -o name and several names.
    let out = ctl
        .run(&["get", "pool", "default-ipv4-ippool", "-o", "name"])
        .ok();
    assert_eq!(out.stdout, "ippool/default-ipv4-ippool\n");

    // A list as YAML is a <Kind>List with the list's resourceVersion.
    let (_, list) = ctl.get_yaml(&["gnp"]);
    assert_eq!(list["kind"], "GlobalNetworkPolicyList");
    assert!(list["metadata"]["resourceVersion"].is_string());
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Stale replace is a conflict.
    let (stale, _) = ctl.get_yaml(&["ippool", "default-ipv4-ippool"]);
    ctl.run(&["label", "ippool", "default-ipv4-ippool", "team=net"])
        .ok();
    let path = ctl.file("stale.yaml", &stale);
    let out = ctl.run(&["replace", "-f", &path]).fails();
    assert!(
        out.stderr.starts_with("failed to replace 'IPPool' resource: update conflict: IPPool(default-ipv4-ippool): resource version '"),
        "{}",
        out.stderr
    );
    // apply honours the resourceVersion too.
    let out = ctl.run(&["apply", "-f", &path]).fails();
    assert!(
        out.stderr
            .contains("update conflict: IPPool(default-ipv4-ippool)"),
        "{}",
        out.stderr
    );
    // The label survived both attempts.
    let pool = ctl.get_json(&["ippool", "default-ipv4-ippool"]);
    assert_eq!(pool["metadata"]["labels"]["team"], "net");

    // Delete by name, of a missing object, and with --skip-not-exists.
    let out = ctl.run(&["delete", "bgppeer", "rack1-tor"]).ok();
    assert_eq!(out.stdout, "Successfully deleted 1 'BGPPeer' resource(s)\n");
    let out = ctl.run(&["delete", "bgppeer", "rack1-tor"]).fails();
    assert_eq!(
        out.stderr,
        "Failed to delete 'BGPPeer' resource: resource does not exist: BGPPeer(rack1-tor)\n"
    );
    ctl.run(&["delete", "bgppeer", "rack1-tor", "--skip-not-exists"])
        .ok();
    let out = ctl.run(&["get", "bgppeer", "rack1-tor"]).fails();
    assert_eq!(out.stderr, "resource does not exist: BGPPeer(rack1-tor)\n");

    // Delete by file.
    let out = ctl
        .run(&[
            "delete",
            "-f",
            data("examples.yaml").to_str().unwrap(),
            "-s",
        ])
        .ok();
    assert_eq!(out.stdout, "Successfully deleted 5 resource(s)\n");
    assert_eq!(
        ctl.run(&["get", "ippool"]).ok().stdout,
        "NAME   CIDR   SELECTOR   \n\n"
    );
}
