//! A throw-away etcd for tests: one member or a small cluster on free loopback ports, a
//! temporary data directory, health wait, stop/start of the whole cluster or one member on the
//! same data (to test watch resumption and failover), optional mutual TLS with a CA and
//! certificates made by the `openssl` command line tool.
//!
//! Every member is killed by its PID when the [`EtcdServer`] is dropped, which also happens while
//! a failing test unwinds. Tests call [`EtcdServer::start_or_skip`]: when etcd is not installed
//! it prints a skip note, except when the `CI` environment variable is set, where a missing etcd
//! must fail the run rather than silently skip the coverage.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::etcd::EtcdConfig;

/// How long a start may take before the harness gives up.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything that can go wrong while running the test etcd.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("etcd is not installed: {0}")]
    NotInstalled(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Command(String),
    #[error("etcd did not become healthy: {0}")]
    Start(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// Certificates of the TLS variant, all PEM files in the server's temporary directory.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Checks that the `etcd` and `etcdctl` binaries run.
pub fn etcd_installed() -> Result<(), String> {
    for (bin, arg) in [("etcd", "--version"), ("etcdctl", "version")] {
        match Command::new(bin)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("`{bin} {arg}` exited with {s}")),
            Err(e) => return Err(format!("cannot run `{bin}`: {e}")),
        }
    }
    Ok(())
}

/// A loopback TCP port nobody listens on right now (handy as a dead endpoint); 0 if none
/// could be found.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// One member of the test cluster.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    starts: u32,
}

/// A test etcd on 127.0.0.1: one member ([`EtcdServer::start`]) or a small cluster
/// ([`EtcdServer::start_cluster`]).
#[derive(Debug)]
pub struct EtcdServer {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    tls: Option<TlsFiles>,
}

impl EtcdServer {
    /// Starts a plain-HTTP single-member etcd and waits until it is healthy.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_inner(1, false)
    }

    /// Starts an etcd that requires client certificates (`--client-cert-auth`), with a fresh CA,
    /// server and client certificate.
    pub fn start_tls() -> Result<Self, HarnessError> {
        Self::start_inner(1, true)
    }

    /// Starts a cluster of `members` etcd members (plain HTTP) and waits until every member is
    /// healthy.
    pub fn start_cluster(members: usize) -> Result<Self, HarnessError> {
        Self::start_inner(members.max(1), false)
    }

    /// [`EtcdServer::start`], or `None` with a note on stderr when etcd is not installed.
    /// Panics (failing the test) if etcd is missing while `CI` is set, or if it is installed
    /// but does not start.
    pub fn start_or_skip() -> Option<Self> {
        Self::or_skip(1, false)
    }

    /// [`EtcdServer::start_tls`] with the same skip rules as [`EtcdServer::start_or_skip`].
    pub fn start_tls_or_skip() -> Option<Self> {
        Self::or_skip(1, true)
    }

    /// [`EtcdServer::start_cluster`] with the same skip rules as
    /// [`EtcdServer::start_or_skip`].
    pub fn start_cluster_or_skip(members: usize) -> Option<Self> {
        Self::or_skip(members.max(1), false)
    }

    fn or_skip(members: usize, tls: bool) -> Option<Self> {
        if let Err(why) = etcd_installed() {
            let ci = std::env::var("CI").map(|v| !v.is_empty()).unwrap_or(false);
            if ci {
                panic!(
                    "etcd is required when CI is set, but {why} (install etcd-server and etcd-client)"
                );
            }
            eprintln!("SKIPPED: etcd tests need the etcd and etcdctl binaries ({why})");
            return None;
        }
        match Self::start_inner(members, tls) {
            Ok(s) => Some(s),
            Err(e) => panic!("starting the test etcd failed: {e}"),
        }
    }

    fn start_inner(members: usize, tls: bool) -> Result<Self, HarnessError> {
        etcd_installed().map_err(HarnessError::NotInstalled)?;
        let dir = tempfile::Builder::new()
            .prefix("calico-etcd-")
            .tempdir()
            .map_err(io("creating the etcd temp dir"))?;
        // Hold every listener until all ports are picked, so they all differ.
        let listeners: Vec<TcpListener> = (0..members * 2)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<Result<_, _>>()
            .map_err(io("finding free loopback ports"))?;
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()
            .map_err(io("finding free loopback ports"))?;
        drop(listeners);
        let tls = if tls {
            Some(make_certs(dir.path())?)
        } else {
            None
        };
        let mut server = EtcdServer {
            dir,
            members: (0..members)
                .map(|i| Member {
                    name: format!("m{i}"),
                    client_port: ports[2 * i],
                    peer_port: ports[2 * i + 1],
                    child: None,
                    starts: 0,
                })
                .collect(),
            tls,
        };
        // Members of a new cluster wait for each other: spawn them all, then wait.
        for i in 0..members {
            server.spawn_member(i)?;
        }
        for i in 0..members {
            if let Err(e) = server.wait_healthy(i) {
                server.stop();
                return Err(e);
            }
        }
        Ok(server)
    }

    /// The client URL of the first member, `http://127.0.0.1:<port>` (or `https://`).
    pub fn endpoint(&self) -> String {
        self.member_endpoint(0)
    }

    /// The client URL of member `i`.
    pub fn member_endpoint(&self, i: usize) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|i| self.member_endpoint(i))
            .collect()
    }

    /// A client configuration listing every member (with the client certificate for the TLS
    /// variant).
    pub fn config(&self) -> EtcdConfig {
        let cfg = EtcdConfig::new(self.endpoints());
        match &self.tls {
            Some(t) => cfg.with_tls(&t.ca_cert, &t.client_cert, &t.client_key),
            None => cfg,
        }
    }

    /// The certificates of the TLS variant.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Member `i`'s data directory (kept across stops and starts).
    pub fn member_data_dir(&self, i: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("data-{}", self.members[i].name))
    }

    /// PID of the first member, if running.
    pub fn pid(&self) -> Option<u32> {
        self.member_pid(0)
    }

    /// PID of member `i`, if running.
    pub fn member_pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// Kills every member (by PID, SIGKILL: like a crash, which etcd's WAL survives) and reaps
    /// it.
    pub fn stop(&mut self) {
        for i in 0..self.members.len() {
            self.stop_member(i);
        }
    }

    /// Kills member `i` by PID and reaps it.
    pub fn stop_member(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts every stopped member again on the same ports and data, and waits until healthy.
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        let stopped: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].child.is_none())
            .collect();
        for &i in &stopped {
            self.spawn_member(i)?;
        }
        for &i in &stopped {
            if let Err(e) = self.wait_healthy(i) {
                self.stop_member(i);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Starts member `i` again (same ports and data) and waits until it is healthy.
    pub fn start_member(&mut self, i: usize) -> Result<(), HarnessError> {
        if self.members[i].child.is_some() {
            return Ok(());
        }
        self.spawn_member(i)?;
        if let Err(e) = self.wait_healthy(i) {
            self.stop_member(i);
            return Err(e);
        }
        Ok(())
    }

    fn log_path(&self, i: usize) -> PathBuf {
        let m = &self.members[i];
        self.dir
            .path()
            .join(format!("etcd-{}-{}.log", m.name, m.starts))
    }

    fn spawn_member(&mut self, i: usize) -> Result<(), HarnessError> {
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let client = self.member_endpoint(i);
        let data_dir = self.member_data_dir(i);
        self.members[i].starts += 1;
        let log_path = self.log_path(i);
        let m = &self.members[i];
        let log = File::create(&log_path).map_err(io("creating the etcd log"))?;
        let log_err = log.try_clone().map_err(io("cloning the etcd log handle"))?;
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let mut cmd = Command::new("etcd");
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(initial_cluster)
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(self.dir.path().display().to_string())
            .arg("--logger")
            .arg("zap")
            .arg("--log-level")
            .arg("warn");
        if let Some(t) = &self.tls {
            cmd.arg("--cert-file")
                .arg(&t.server_cert)
                .arg("--key-file")
                .arg(&t.server_key)
                .arg("--client-cert-auth")
                .arg("--trusted-ca-file")
                .arg(&t.ca_cert);
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(log_err);
        let child = cmd.spawn().map_err(io("spawning etcd"))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    /// Turns on etcd authentication with a `root` user (who gets the root role) and the given
    /// password; clients then need [`EtcdConfig::with_credentials`].
    pub fn enable_auth(&self, password: &str) -> Result<(), HarnessError> {
        let user = format!("root:{password}");
        self.etcdctl(&["user", "add", &user])?;
        self.etcdctl(&["user", "grant-role", "root", "root"])?;
        self.etcdctl(&["auth", "enable"])?;
        Ok(())
    }

    /// Runs `etcdctl` against the first member (with the client certificate for the TLS
    /// variant) and returns its stdout.
    pub fn etcdctl(&self, args: &[&str]) -> Result<String, HarnessError> {
        let out = self
            .etcdctl_command(0)
            .args(args)
            .output()
            .map_err(io("running etcdctl"))?;
        if !out.status.success() {
            return Err(HarnessError::Command(format!(
                "etcdctl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn etcdctl_command(&self, member: usize) -> Command {
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.member_endpoint(member))
            .arg("--dial-timeout=1s")
            .arg("--command-timeout=2s");
        if let Some(t) = &self.tls {
            cmd.arg("--cacert")
                .arg(&t.ca_cert)
                .arg("--cert")
                .arg(&t.client_cert)
                .arg("--key")
                .arg(&t.client_key);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Stops and starts every member again (same data, same ports).
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.start_again()
    }

    fn wait_healthy(&mut self, i: usize) -> Result<(), HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let log_path = self.log_path(i);
        loop {
            if let Some(Ok(Some(status))) = self.members[i].child.as_mut().map(Child::try_wait) {
                return Err(HarnessError::Start(format!(
                    "etcd member {i} exited with {status}; log:\n{}",
                    tail(&log_path)
                )));
            }
            let out = self
                .etcdctl_command(i)
                .arg("endpoint")
                .arg("health")
                .output()
                .map_err(io("running etcdctl endpoint health"))?;
            if out.status.success() {
                return Ok(());
            }
            let last = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if Instant::now() > deadline {
                return Err(HarnessError::Start(format!(
                    "member {i} not healthy after {START_TIMEOUT:?} ({last}); log:\n{}",
                    tail(&log_path)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), HarnessError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(io("running openssl (is it installed?)"))?;
    if !out.status.success() {
        return Err(HarnessError::Command(format!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, ECDSA P-256,
/// valid for a day.
fn make_certs(dir: &Path) -> Result<TlsFiles, HarnessError> {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=calico-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca)?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
    )
    .map_err(io("writing server.ext"))?;
    std::fs::write(
        dir.join("client.ext"),
        "basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=clientAuth\n",
    )
    .map_err(io("writing client.ext"))?;
    for (name, cn) in [("server", "etcd-server"), ("client", "calico-client")] {
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let crt = format!("{name}.crt");
        let ext = format!("{name}.ext");
        let subj = format!("/CN={cn}");
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req)?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "1",
                "-extfile",
                &ext,
            ],
        )?;
    }
    Ok(TlsFiles {
        ca_cert: dir.join("ca.crt"),
        server_cert: dir.join("server.crt"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.crt"),
        client_key: dir.join("client.key"),
    })
}
