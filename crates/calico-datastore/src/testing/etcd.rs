//! A throw-away etcd member for tests: free loopback ports, a temporary data directory, health
//! wait, stop/start on the same data (to test watch resumption), optional mutual TLS with a CA
//! and certificates made by the `openssl` command line tool.
//!
//! The server is killed by its PID when the [`EtcdServer`] is dropped, which also happens while
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

/// A loopback TCP port nobody listens on right now (also handy as a dead endpoint).
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

fn free_ports<const N: usize>() -> [u16; N] {
    // Hold every listener until all ports are chosen so they differ.
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    let mut out = [0u16; N];
    for (slot, l) in out.iter_mut().zip(&listeners) {
        *slot = l.local_addr().map(|a| a.port()).unwrap_or(0);
    }
    out
}

/// One etcd member on 127.0.0.1.
#[derive(Debug)]
pub struct EtcdServer {
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    tls: Option<TlsFiles>,
    child: Option<Child>,
    starts: u32,
}

impl EtcdServer {
    /// Starts a plain-HTTP etcd and waits until it is healthy.
    pub fn start() -> Result<Self, HarnessError> {
        Self::start_inner(false)
    }

    /// Starts an etcd that requires client certificates (`--client-cert-auth`), with a fresh CA,
    /// server and client certificate.
    pub fn start_tls() -> Result<Self, HarnessError> {
        Self::start_inner(true)
    }

    /// [`EtcdServer::start`], or `None` with a note on stderr when etcd is not installed.
    /// Panics (failing the test) if etcd is missing while `CI` is set, or if it is installed
    /// but does not start.
    pub fn start_or_skip() -> Option<Self> {
        Self::or_skip(false)
    }

    /// [`EtcdServer::start_tls`] with the same skip rules as [`EtcdServer::start_or_skip`].
    pub fn start_tls_or_skip() -> Option<Self> {
        Self::or_skip(true)
    }

    fn or_skip(tls: bool) -> Option<Self> {
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
        match Self::start_inner(tls) {
            Ok(s) => Some(s),
            Err(e) => panic!("starting the test etcd failed: {e}"),
        }
    }

    fn start_inner(tls: bool) -> Result<Self, HarnessError> {
        etcd_installed().map_err(HarnessError::NotInstalled)?;
        let dir = tempfile::Builder::new()
            .prefix("calico-etcd-")
            .tempdir()
            .map_err(io("creating the etcd temp dir"))?;
        let [client_port, peer_port] = free_ports::<2>();
        if client_port == 0 || peer_port == 0 {
            return Err(HarnessError::Start("no free loopback port".into()));
        }
        let tls = if tls {
            Some(make_certs(dir.path())?)
        } else {
            None
        };
        let mut server = EtcdServer {
            dir,
            client_port,
            peer_port,
            tls,
            child: None,
            starts: 0,
        };
        server.start_again()?;
        Ok(server)
    }

    /// The client URL, `http://127.0.0.1:<port>` (or `https://`).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// A client configuration for this server (with the client certificate for the TLS variant).
    pub fn config(&self) -> EtcdConfig {
        let cfg = EtcdConfig::new([self.endpoint()]);
        match &self.tls {
            Some(t) => cfg.with_tls(&t.ca_cert, &t.client_cert, &t.client_key),
            None => cfg,
        }
    }

    /// The certificates of the TLS variant.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The member's data directory (kept across [`EtcdServer::stop`] / `start_again`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// PID of the running etcd, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills etcd (by PID, SIGKILL: like a crash, which etcd's WAL survives) and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data directory, and waits until healthy.
    pub fn start_again(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Ok(());
        }
        self.starts += 1;
        let log_path = self.dir.path().join(format!("etcd-{}.log", self.starts));
        let log = File::create(&log_path).map_err(io("creating the etcd log"))?;
        let log_err = log.try_clone().map_err(io("cloning the etcd log handle"))?;
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let client = self.endpoint();
        let mut cmd = Command::new("etcd");
        cmd.arg("--name")
            .arg("test")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--listen-client-urls")
            .arg(&client)
            .arg("--advertise-client-urls")
            .arg(&client)
            .arg("--listen-peer-urls")
            .arg(&peer)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer)
            .arg("--initial-cluster")
            .arg(format!("test={peer}"))
            .arg("--initial-cluster-state")
            .arg("new")
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
        self.child = Some(child);
        if let Err(e) = self.wait_healthy(&log_path) {
            self.stop();
            return Err(e);
        }
        Ok(())
    }

    /// Stops and starts etcd again (same data, same ports).
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop();
        self.start_again()
    }

    fn wait_healthy(&mut self, log_path: &Path) -> Result<(), HarnessError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(HarnessError::Start(format!(
                    "etcd exited with {status}; log:\n{}",
                    tail(log_path)
                )));
            }
            let mut cmd = Command::new("etcdctl");
            cmd.env("ETCDCTL_API", "3")
                .arg("--endpoints")
                .arg(self.endpoint())
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
            let out = cmd
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
                    "not healthy after {START_TIMEOUT:?} ({last}); log:\n{}",
                    tail(log_path)
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
