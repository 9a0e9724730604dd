//! End-to-end tests of the `calico-lab` binary: a 3-node lab comes up with full pod-to-pod
//! connectivity, `status` shows the mesh Established, a killed agent comes back without its
//! pods losing connectivity, namespaces/pods/apply reach the datastore as Calico's controllers
//! would write them, and `down` leaves no namespace, process or file behind (also after a
//! killed `up`). Each test has its own state directory and namespace prefix, so it never meets
//! a user's lab. Needs root and the sibling binaries (`cargo build --bins`); with
//! `CALICO_REQUIRE_ROOT=1` a missing root fails instead of skipping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use calico_netlink::testing::require_root;

struct Lab {
    dir: tempfile::TempDir,
    prefix: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        Lab {
            dir: tempfile::Builder::new()
                .prefix("calico-lab-test-")
                .tempdir()
                .unwrap(),
            prefix: format!("cltest-{tag}-{}-", std::process::id()),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_calico-lab"));
        c.args(args)
            .env("CALICO_LAB_DIR", self.state())
            .env("CALICO_LAB_PREFIX", &self.prefix);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and asserts success; stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "calico-lab {args:?} failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(entries) = std::fs::read_dir(self.state().join("nodes")) {
            for e in entries.flatten() {
                let log =
                    std::fs::read_to_string(e.path().join("calico-node.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                s.push_str(&format!(
                    "--- {}:\n{}\n",
                    e.path().display(),
                    lines[lines.len().saturating_sub(15)..].join("\n")
                ));
            }
        }
        s
    }

    fn namespaces(&self) -> Vec<String> {
        std::fs::read_dir("/run/netns")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&self.prefix))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// PIDs of live calico-node processes carrying this lab's marker in their environment
    /// (the `calico-lab` commands themselves carry it too: they are not counted).
    fn processes(&self) -> Vec<u32> {
        let marker = format!("CALICO_LAB_DIR={}", self.state().display());
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let zombie = stat
                    .rsplit_once(')')
                    .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
                !zombie
                    && argv0.ends_with(b"/calico-node")
                    && std::fs::read(format!("/proc/{pid}/environ"))
                        .map(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
                        .unwrap_or(false)
            })
            .collect()
    }

    fn assert_gone(&self) {
        assert_eq!(self.namespaces(), Vec::<String>::new(), "namespaces left");
        assert_eq!(self.processes(), Vec::<u32>::new(), "processes left");
        assert!(!self.state().exists(), "state directory left");
    }

    fn calicoctl(&self, args: &[&str]) -> String {
        let bin = Path::new(env!("CARGO_BIN_EXE_calico-lab"))
            .parent()
            .unwrap()
            .join("calicoctl");
        let out = Command::new(bin)
            .env_clear()
            .env("DATASTORE_TYPE", "embedded")
            .env("CALICO_DATASTORE_PATH", self.state().join("calico.db"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Whatever the test did, leave nothing behind.
        if self.state().exists() || !self.namespaces().is_empty() {
            let _ = self.run(&["down"]);
        }
    }
}

/// The `ip route` block printed for `node` by `up`/`check`.
fn route_block<'a>(out: &'a str, node: &str) -> &'a str {
    let start = out
        .find(&format!("{node} (192.168.20."))
        .unwrap_or_else(|| panic!("no routes of {node} in:\n{out}"));
    let rest = &out[start..];
    let end = rest.find("\n\n").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn three_node_lab_connects_survives_an_agent_restart_and_goes_away() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("full");
    let out = lab.ok(&["up", "--nodes", "3", "--pods-per-node", "2"]);
    // The seeds' picture on every node: the own block blackholed, local pods on cali
    // interfaces, the two remote blocks via their nodes, learned by BGP.
    for (node, others) in [
        ("node1", ["192.168.20.12", "192.168.20.13"]),
        ("node2", ["192.168.20.11", "192.168.20.13"]),
        ("node3", ["192.168.20.11", "192.168.20.12"]),
    ] {
        let block = route_block(&out, node);
        assert_eq!(
            block
                .lines()
                .filter(|l| l.starts_with("blackhole 10.244.") && l.contains("/26"))
                .count(),
            1,
            "{block}"
        );
        assert_eq!(
            block
                .lines()
                .filter(|l| l.contains(" dev cali") && l.contains("scope link"))
                .count(),
            2,
            "{block}"
        );
        for via in others {
            assert!(
                block
                    .lines()
                    .any(|l| l.contains("/26 via ") && l.contains(via) && l.contains("proto bgp")),
                "{node} lacks the block via {via}:\n{block}"
            );
        }
    }
    assert!(out.contains("30/30 pod pairs answered"), "{out}");
    assert!(!out.contains("XX"), "{out}");

    // status: every node has two Established mesh sessions, and lists the six pods.
    let status = lab.ok(&["status"]);
    let established = status
        .lines()
        .filter(|l| l.contains("node-to-node mesh") && l.contains("Established"))
        .count();
    assert_eq!(established, 6, "{status}");
    assert_eq!(
        status
            .lines()
            .filter(|l| l.starts_with("default ") && l.contains(" 10.244."))
            .count(),
        6,
        "{status}"
    );
    assert_eq!(lab.processes().len(), 3, "{status}");

    // exec reaches the namespaces: a node's own routes, a pod's address.
    let out = lab.ok(&[
        "exec", "node1", "--", "ip", "-4", "route", "show", "proto", "bgp",
    ]);
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = lab.ok(&[
        "exec",
        "node2-pod1",
        "--",
        "ip",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(out.contains("10.244."), "{out}");

    // A killed agent comes back; routes stay (graceful restart), pods stay connected.
    // A ping from node1's pod to node2's runs through the restart and loses nothing.
    let routes_before = lab.ok(&["exec", "node1", "--", "ip", "-4", "route"]);
    let target = lab.ok(&[
        "exec",
        "node2-pod1",
        "--",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]);
    let target_ip = target
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap()
        .to_string();
    let ping = lab
        .cmd(&[
            "exec",
            "node1-pod1",
            "--",
            "busybox",
            "ping",
            "-c",
            "60",
            "-i",
            "0.05",
            "-W",
            "1",
            &target_ip,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    lab.ok(&["restart", "node2", "--kill"]);
    let ping = ping.wait_with_output().unwrap();
    let ping_out = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success() && ping_out.contains("60 packets received"),
        "ping across the restart lost packets:\n{ping_out}{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    std::thread::sleep(Duration::from_secs(1));
    let routes_after = lab.ok(&["exec", "node1", "--", "ip", "-4", "route"]);
    assert_eq!(routes_before, routes_after, "node1's routes changed");
    let out = lab.ok(&["check", "--timeout", "30"]);
    assert!(out.contains("30/30 pod pairs answered"), "{out}");

    // A namespace and a labelled pod: the profile and the endpoint Calico would write.
    lab.ok(&["namespace", "add", "dev", "--labels", "team=a"]);
    let out = lab.ok(&[
        "pod",
        "add",
        "node3",
        "web",
        "--namespace",
        "dev",
        "--labels",
        "app=web",
        "--service-account",
        "websa",
    ]);
    assert!(out.contains("pod dev/web on node3: 10.244."), "{out}");
    let profile = lab.calicoctl(&["get", "profile", "kns.dev", "-o", "yaml"]);
    assert!(profile.contains("pcns.team: a"), "{profile}");
    assert!(
        profile.contains("pcns.projectcalico.org/name: dev"),
        "{profile}"
    );
    let wep = lab.calicoctl(&["get", "workloadendpoints", "-n", "dev", "-o", "yaml"]);
    for want in [
        "app: web",
        "projectcalico.org/namespace: dev",
        "projectcalico.org/serviceaccount: websa",
        "- kns.dev",
        "- ksa.dev.websa",
    ] {
        assert!(wep.contains(want), "{want} missing:\n{wep}");
    }
    let out = lab.ok(&["check", "--timeout", "30"]);
    assert!(out.contains("42/42 pod pairs answered"), "{out}");

    // apply hands resources to the lab's datastore.
    let policy = lab.dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  name: web\n  namespace: dev\nspec:\n  selector: app == 'web'\n  ingress:\n  - action: Allow\n    source:\n      namespaceSelector: team == 'a'\n",
    )
    .unwrap();
    let out = lab.ok(&["apply", "-f", policy.to_str().unwrap()]);
    assert!(out.contains("Successfully applied 1"), "{out}");
    let got = lab.calicoctl(&["get", "networkpolicy", "-n", "dev"]);
    assert!(got.contains("web"), "{got}");
    // ... and it takes effect: the six pods of namespace `default` (no `team` label) no
    // longer reach dev/web, everything else still answers.
    let blocked = |out: &str| {
        out.contains("36/42 pod pairs answered")
            && out
                .lines()
                .filter(|l| l.contains("no answer:") && l.contains("-> web ("))
                .count()
                == 6
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = lab.run(&["check", "--timeout", "30"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if blocked(&text) {
            assert!(
                !out.status.success(),
                "check must fail while pairs are blocked"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the policy never took effect:\n{text}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // A Kubernetes NetworkPolicy through the same command: dev/web denies all ingress.
    let knp = lab.dir.path().join("knp.yaml");
    std::fs::write(
        &knp,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web-deny, namespace: dev}\nspec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}\n",
    )
    .unwrap();
    let out = lab.ok(&["apply", "-f", knp.to_str().unwrap()]);
    assert!(out.contains("Successfully applied 1"), "{out}");
    assert!(
        lab.calicoctl(&["get", "networkpolicy", "-n", "dev"])
            .contains("knp.default.web-deny")
    );
    // Deleting the Calico policy leaves the Kubernetes one denying (no Allow for web now).
    lab.calicoctl(&["delete", "networkpolicy", "web", "-n", "dev"]);
    let out = lab.run(&["check", "--timeout", "30"]);
    assert!(
        blocked(&String::from_utf8_lossy(&out.stdout)),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Without policies everything answers again.
    lab.calicoctl(&["delete", "-f", knp.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = lab.run(&["check", "--timeout", "30"]);
        if out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deleting the policies never restored connectivity:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // Deleting a namespace with pods is refused; after `pod del` it goes.
    let out = lab.run(&["namespace", "del", "dev"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("still has pods"),
        "{out:?}"
    );
    lab.ok(&["pod", "del", "dev/web"]);
    lab.ok(&["namespace", "del", "dev"]);
    assert!(!lab.calicoctl(&["get", "profiles"]).contains("kns.dev"));

    // A second `up` is refused while this lab exists.
    let out = lab.run(&["up", "--nodes", "1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already running"),
        "{out:?}"
    );

    let out = lab.ok(&["down"]);
    assert!(out.contains("stopped calico-node"), "{out}");
    lab.assert_gone();
    // Idempotent.
    lab.ok(&["down"]);
    lab.assert_gone();
}

/// Route reflectors: mesh off, clients peer only with the reflector, full connectivity; and
/// a pool of the user's choosing.
#[test]
fn route_reflector_lab_connects_through_the_reflector() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("rr");
    let out = lab.ok(&[
        "up",
        "--nodes",
        "3",
        "--pods-per-node",
        "1",
        "--route-reflectors",
        "1",
        "--pool",
        "10.99.0.0/16",
    ]);
    assert!(out.contains("6/6 pod pairs answered"), "{out}");
    // The pool given is the one used: blocks and pods come from it.
    assert!(out.contains("blackhole 10.99."), "{out}");
    assert!(!out.contains("10.244."), "{out}");
    assert!(
        out.contains("node1 (192.168.20.11, route reflector)"),
        "{out}"
    );
    let status = lab.ok(&["status"]);
    // node1 reflects for node2 and node3; they have one session each, to node1.
    let global = status
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("Established"))
        .count();
    assert_eq!(global, 4, "{status}");
    assert!(!status.contains("node-to-node mesh"), "{status}");
    let node1 = status.lines().find(|l| l.starts_with("node1 ")).unwrap();
    assert!(
        node1.contains("route-reflector") && node1.ends_with("2/2 Established"),
        "{status}"
    );
    lab.ok(&["down"]);
    lab.assert_gone();
}

/// `--datastore etcd`: the lab runs etcd in the fabric namespace; nodes, CNI plugins and
/// calicoctl (through `apply`) use it; `down` stops it with the rest.
#[test]
fn etcd_lab_connects_and_goes_away() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("etcd");
    let out = lab.ok(&[
        "up",
        "--nodes",
        "2",
        "--pods-per-node",
        "1",
        "--datastore",
        "etcd",
    ]);
    assert!(out.contains("2/2 pod pairs answered"), "{out}");
    let status = lab.ok(&["status"]);
    assert!(
        status.contains("datastore etcd http://192.168.20.2:2379"),
        "{status}"
    );
    assert!(
        !lab.state().join("calico.db").exists(),
        "the embedded store was used"
    );
    let policy = lab.dir.path().join("gnp.yaml");
    std::fs::write(
        &policy,
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: allow-all\nspec:\n  selector: all()\n  ingress:\n  - action: Allow\n",
    )
    .unwrap();
    let out = lab.ok(&["apply", "-f", policy.to_str().unwrap()]);
    assert!(out.contains("Successfully applied 1"), "{out}");
    let out = lab.ok(&["down"]);
    assert!(out.contains("stopped etcd"), "{out}");
    lab.assert_gone();
    let etcd_left = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .any(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|v| v == format!("CALICO_LAB_DIR={}", lab.state().display()).as_bytes())
            }) && std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z"))
        });
    assert!(!etcd_left, "a process of the lab survived down");
}

/// `down` after an `up` killed half-way removes what it had made.
#[test]
fn down_cleans_up_after_a_killed_up() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("crash");
    let mut up = lab
        .cmd(&["up", "--nodes", "3", "--pods-per-node", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Long enough for namespaces and some agents to exist.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while lab.processes().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = up.kill();
    let _ = up.wait();
    assert!(
        !lab.namespaces().is_empty(),
        "up made nothing before the kill"
    );
    let out = lab.ok(&["down"]);
    assert!(out.contains("deleted namespace"), "{out}");
    lab.assert_gone();
}

/// Bad options and a missing sibling binary are refused with the words that fix them.
#[test]
fn bad_input_and_missing_binaries_give_clear_errors() {
    if !require_root() {
        return;
    }
    let lab = Lab::new("err");
    for (args, want) in [
        (vec!["up", "--nodes", "0"], "--nodes"),
        (vec!["up", "--pool", "10.244.0.0/28"], "/26"),
        (vec!["up", "--pool", "nonsense"], "not an IPv4 CIDR"),
        (
            vec!["up", "--etcd-endpoints", "http://192.168.20.2:2379"],
            "only with --datastore etcd",
        ),
        (vec!["up", "--datastore", "sql"], "embedded or etcd"),
        (
            vec!["up", "--nodes", "2", "--route-reflectors", "2"],
            "--route-reflectors",
        ),
        (vec!["status"], "no lab is running"),
        (vec!["exec", "node1", "--", "true"], "no lab is running"),
    ] {
        let out = lab.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Not root: refused up front (setpriv drops to nobody).
    for cmd in ["up", "down", "status"] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_calico-lab"))
            .arg(cmd)
            .env("CALICO_LAB_DIR", lab.state())
            .env("CALICO_LAB_PREFIX", &lab.prefix)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("needs root"), "{cmd}: {err}");
    }
    // calico-lab alone in a directory: it names the build command.
    let lonely = lab.dir.path().join("bin");
    std::fs::create_dir_all(&lonely).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_calico-lab"), lonely.join("calico-lab")).unwrap();
    let out = Command::new(lonely.join("calico-lab"))
        .args(["up", "--nodes", "1"])
        .env("CALICO_LAB_DIR", lab.state())
        .env("CALICO_LAB_PREFIX", &lab.prefix)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo build --release --bins"), "{err}");
    lab.assert_gone();
}
