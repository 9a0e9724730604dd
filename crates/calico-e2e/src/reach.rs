//! Reachability matrices on real traffic, in the style of Kubernetes' network-policy e2e suite
//! (`test/e2e/network/netpol`: pods probe each other on TCP / UDP ports and the observed truth
//! table is compared with the expected one).
//!
//! Each pod runs [`Servers`]: a TCP listener and a UDP echo socket per port, inside its own
//! network namespace. [`probe`] opens a fresh connection (so each probe is a new flow, judged
//! by policy, not by an established conntrack entry), and [`Matrix`] collects the outcomes and
//! prints differences as a table.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use calico_netlink::NetNs;

use crate::HarnessError;

/// The protocol of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// An ICMP echo request (port ignored).
    Icmp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
            Proto::Icmp => "ICMP",
        })
    }
}

fn failed(what: &str) -> impl FnOnce(calico_netlink::NetlinkError) -> HarnessError + '_ {
    move |e| HarnessError::Failed(format!("{what}: {e}"))
}

/// TCP and UDP servers on some ports of one pod. Stopped when dropped.
pub struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Servers {
    /// Listens on `ip:port` for each of `ports`, TCP and UDP, inside `ns`. A TCP server
    /// answers each connection with one byte; a UDP server echoes each datagram.
    pub fn start(ns: &NetNs, ip: IpAddr, ports: &[u16]) -> Result<Servers, HarnessError> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let (tcp, udp) = ns
            .run(|| -> std::io::Result<(Vec<TcpListener>, Vec<UdpSocket>)> {
                let mut tcp = Vec::new();
                let mut udp = Vec::new();
                for &port in ports {
                    let l = TcpListener::bind(SocketAddr::new(ip, port))?;
                    l.set_nonblocking(true)?;
                    tcp.push(l);
                    let u = UdpSocket::bind(SocketAddr::new(ip, port))?;
                    u.set_read_timeout(Some(Duration::from_millis(50)))?;
                    udp.push(u);
                }
                Ok((tcp, udp))
            })
            .map_err(failed("entering the pod namespace"))?
            .map_err(|e| HarnessError::Io(format!("binding servers on {ip}"), e))?;
        // Sockets keep the namespace they were created in, so serving threads need not enter it.
        for l in tcp {
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            let _ = s.write_all(b"x");
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }));
        }
        for u in udp {
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = u.recv_from(&mut buf) {
                        let _ = u.send_to(&buf[..n], from);
                    }
                }
            }));
        }
        Ok(Servers { stop, threads })
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Whether `proto` traffic from inside `ns` reaches `dst:port` within `timeout`: a TCP
/// connection that delivers the server's byte, a UDP datagram echoed back, or an ICMP echo
/// answered.
pub fn probe(
    ns: &NetNs,
    proto: Proto,
    dst: IpAddr,
    port: u16,
    timeout: Duration,
) -> Result<bool, HarnessError> {
    match proto {
        Proto::Icmp => {
            let secs = timeout.as_secs().max(1).to_string();
            let out = std::process::Command::new(crate::which("nsenter")?)
                .arg(format!("--net={}", ns.path().display()))
                .arg(crate::which("ping")?)
                .args(["-c", "1", "-W", &secs, "-q", &dst.to_string()])
                .output()
                .map_err(|e| HarnessError::Io("running ping".into(), e))?;
            Ok(out.status.success())
        }
        Proto::Tcp => ns
            .run(|| {
                let Ok(mut s) = TcpStream::connect_timeout(&SocketAddr::new(dst, port), timeout)
                else {
                    return false;
                };
                let _ = s.set_read_timeout(Some(timeout));
                let mut b = [0u8; 1];
                matches!(s.read(&mut b), Ok(1))
            })
            .map_err(failed("entering the client namespace")),
        Proto::Udp => ns
            .run(|| {
                let any: SocketAddr = if dst.is_ipv4() {
                    "0.0.0.0:0".parse().unwrap_or_else(|_| unreachable!())
                } else {
                    "[::]:0".parse().unwrap_or_else(|_| unreachable!())
                };
                let Ok(s) = UdpSocket::bind(any) else {
                    return false;
                };
                let _ = s.set_read_timeout(Some(timeout));
                if s.send_to(b"probe", SocketAddr::new(dst, port)).is_err() {
                    return false;
                }
                let mut b = [0u8; 16];
                matches!(s.recv_from(&mut b), Ok((5, _)))
            })
            .map_err(failed("entering the client namespace")),
    }
}

/// One probe of a matrix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub from: String,
    pub to: String,
    pub proto: Proto,
    pub port: u16,
}

/// Outcomes per probe (`true` = reached).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matrix {
    pub cells: BTreeMap<Cell, bool>,
}

/// A pod a matrix probes from or to.
pub struct Target<'a> {
    pub name: String,
    pub ns: &'a NetNs,
    pub ip: IpAddr,
}

impl Matrix {
    /// Probes every ordered pair of distinct `targets` for every `(proto, port)`, `parallel`
    /// probes at a time.
    pub fn probe_all(
        targets: &[Target<'_>],
        probes: &[(Proto, u16)],
        timeout: Duration,
        parallel: usize,
    ) -> Result<Matrix, HarnessError> {
        let mut jobs = Vec::new();
        for a in targets {
            for b in targets {
                if a.name == b.name {
                    continue;
                }
                for &(proto, port) in probes {
                    jobs.push((a, b, proto, port));
                }
            }
        }
        Matrix::probe_jobs(&jobs, timeout, parallel)
    }

    /// Probes exactly the given `(from, to, proto, port)` jobs, `parallel` at a time (for
    /// matrices whose probes differ per pair, e.g. a host's failsafe port probed only between
    /// hosts).
    pub fn probe_jobs(
        jobs: &[(&Target<'_>, &Target<'_>, Proto, u16)],
        timeout: Duration,
        parallel: usize,
    ) -> Result<Matrix, HarnessError> {
        let mut out = Matrix::default();
        for chunk in jobs.chunks(parallel.max(1)) {
            let results: Vec<Result<(Cell, bool), HarnessError>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|&(a, b, proto, port)| {
                        s.spawn(move || {
                            let ok = probe(a.ns, proto, b.ip, port, timeout)?;
                            Ok((
                                Cell {
                                    from: a.name.clone(),
                                    to: b.name.clone(),
                                    proto,
                                    port,
                                },
                                ok,
                            ))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(HarnessError::Failed("a probe thread panicked".into()))
                        })
                    })
                    .collect()
            });
            for r in results {
                let (cell, ok) = r?;
                out.cells.insert(cell, ok);
            }
        }
        Ok(out)
    }

    /// The probes whose outcome differs between `self` (observed) and `expected`, as a
    /// readable report; empty when they agree. Probes missing from either side count as
    /// differences.
    pub fn differences(&self, expected: &Matrix) -> String {
        let mut out = String::new();
        for (cell, want) in &expected.cells {
            match self.cells.get(cell) {
                Some(got) if got == want => {}
                got => out.push_str(&format!(
                    "{} -> {} {}/{}: expected {}, observed {}\n",
                    cell.from,
                    cell.to,
                    cell.proto,
                    cell.port,
                    if *want { "reachable" } else { "blocked" },
                    match got {
                        Some(true) => "reachable",
                        Some(false) => "blocked",
                        None => "not probed",
                    }
                )),
            }
        }
        for cell in self.cells.keys() {
            if !expected.cells.contains_key(cell) {
                out.push_str(&format!(
                    "{} -> {} {}/{}: probed but not expected\n",
                    cell.from, cell.to, cell.proto, cell.port
                ));
            }
        }
        out
    }

    /// The upstream suite's truth table for one `(proto, port)`: rows are sources, columns
    /// destinations, `.` reachable, `X` blocked, `-` same pod.
    pub fn table(&self, proto: Proto, port: u16) -> String {
        let mut names: Vec<&str> = self
            .cells
            .keys()
            .flat_map(|c| [c.from.as_str(), c.to.as_str()])
            .collect();
        names.sort_unstable();
        names.dedup();
        let width = names.iter().map(|n| n.len()).max().unwrap_or(1);
        let mut out = format!("{proto}/{port}\n{:width$}", "");
        for n in &names {
            out.push_str(&format!(" {n:>width$}"));
        }
        out.push('\n');
        for a in &names {
            out.push_str(&format!("{a:width$}"));
            for b in &names {
                let cell = Cell {
                    from: (*a).to_string(),
                    to: (*b).to_string(),
                    proto,
                    port,
                };
                let mark = match self.cells.get(&cell) {
                    _ if a == b => "-",
                    Some(true) => ".",
                    Some(false) => "X",
                    None => "?",
                };
                out.push_str(&format!(" {mark:>width$}"));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(from: &str, to: &str, port: u16) -> Cell {
        Cell {
            from: from.into(),
            to: to.into(),
            proto: Proto::Tcp,
            port,
        }
    }

    #[test]
    fn differences_name_each_disagreeing_probe() {
        let mut got = Matrix::default();
        let mut want = Matrix::default();
        got.cells.insert(cell("x/a", "y/b", 80), true);
        want.cells.insert(cell("x/a", "y/b", 80), false);
        got.cells.insert(cell("x/a", "y/b", 81), true);
        want.cells.insert(cell("x/a", "y/b", 81), true);
        want.cells.insert(cell("y/b", "x/a", 80), true);
        let d = got.differences(&want);
        assert!(d.contains("x/a -> y/b TCP/80: expected blocked, observed reachable"));
        assert!(d.contains("y/b -> x/a TCP/80: expected reachable, observed not probed"));
        assert!(!d.contains("81"));
        assert_eq!(want.differences(&want), "");
    }

    #[test]
    fn table_marks_cells() {
        let mut m = Matrix::default();
        m.cells.insert(cell("a", "b", 80), true);
        m.cells.insert(cell("b", "a", 80), false);
        let t = m.table(Proto::Tcp, 80);
        assert_eq!(t, "TCP/80\n  a b\na - .\nb X -\n");
    }
}
