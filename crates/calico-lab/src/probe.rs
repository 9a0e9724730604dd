//! The pod-to-pod connectivity matrix: one UDP socket per pod, bound to the pod's address
//! inside the pod's namespace (a socket stays in the namespace it was created in, so the lab
//! drives them all from ordinary threads). Each socket answers `PING` datagrams with `PONG`
//! and records the `PONG`s it gets; every ordered pair is probed, unanswered pairs again, a
//! few rounds. Same idea as the e2e's UDP echo flow, without a process per probe.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calico_netlink::NetNs;

use crate::error::{LabError, io};
use crate::state::PodRecord;
use crate::sys;

/// The probe port (unprivileged, unlikely to be used inside a lab pod).
pub const PORT: u16 = 47777;

/// Datagrams sent back to back before a short pause (each PING also brings a PONG).
const BURST: usize = 100;

/// `reached[i][j]`: pod i got an answer from pod j.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub reached: Vec<Vec<bool>>,
}

impl Matrix {
    /// (answered, probed) over all ordered pairs of distinct pods.
    pub fn counts(&self) -> (usize, usize) {
        let n = self.reached.len();
        let ok = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|&(i, j)| i != j && self.reached[i][j])
            .count();
        (ok, n * n.saturating_sub(1))
    }

    pub fn complete(&self) -> bool {
        let (ok, all) = self.counts();
        ok == all
    }
}

/// Probes every ordered pair of `pods`, `rounds` times at most, waiting `wait` per round.
///
/// Each pod has a server socket on [`PORT`] that answers `PING` with `PONG`, and a client
/// socket on an ephemeral port that sends the `PING`s and collects the `PONG`s. So the probe
/// from A to B is the flow `A:<ephemeral> → B:PORT`, a different connection-tracking entry
/// from B's probe to A: a policy that lets B reach A but not A reach B shows as exactly that
/// (one socket for both directions would make B's probe open the way for A's, as the reply
/// direction of an established flow).
pub fn probe(pods: &[PodRecord], rounds: usize, wait: Duration) -> Result<Matrix, LabError> {
    let n = pods.len();
    let mut servers = Vec::with_capacity(n);
    let mut clients = Vec::with_capacity(n);
    let mut addrs = Vec::with_capacity(n);
    for pod in pods {
        let ip: IpAddr = pod.ip.parse().map_err(|_| {
            LabError::invalid("pod address", format!("{:?} of {}", pod.ip, pod.name))
        })?;
        let addr = SocketAddr::new(ip, PORT);
        let ns = NetNs::open(sys::netns_path(&pod.netns))
            .map_err(|e| LabError::Failed(format!("opening namespace {}: {e}", pod.netns)))?;
        let (server, client) = ns
            .run(move || -> std::io::Result<(UdpSocket, UdpSocket)> {
                Ok((
                    UdpSocket::bind(addr)?,
                    UdpSocket::bind(SocketAddr::new(ip, 0))?,
                ))
            })
            .map_err(|e| LabError::Failed(format!("entering {}: {e}", pod.netns)))?
            .map_err(io(format!("binding {addr} in pod {}", pod.name)))?;
        for s in [&server, &client] {
            s.set_read_timeout(Some(Duration::from_millis(50)))
                .map_err(io("setting a timeout"))?;
        }
        servers.push(server);
        clients.push(Arc::new(client));
        addrs.push(addr);
    }
    let index: std::collections::HashMap<SocketAddr, usize> =
        addrs.iter().enumerate().map(|(i, a)| (*a, i)).collect();
    let reached = Arc::new(Mutex::new(vec![vec![false; n]; n]));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for server in servers {
        let stop = Arc::clone(&stop);
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((len, from)) = server.recv_from(&mut buf)
                    && &buf[..len] == b"PING"
                {
                    let _ = server.send_to(b"PONG", from);
                }
            }
        }));
    }
    for (i, client) in clients.iter().enumerate() {
        let (client, reached, stop, index) = (
            Arc::clone(client),
            Arc::clone(&reached),
            Arc::clone(&stop),
            index.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, from)) = client.recv_from(&mut buf) else {
                    continue;
                };
                if &buf[..len] == b"PONG"
                    && let Some(&j) = index.get(&from)
                    && let Ok(mut r) = reached.lock()
                {
                    r[i][j] = true;
                }
            }
        }));
    }
    for _ in 0..rounds.max(1) {
        let missing: Vec<(usize, usize)> = {
            let r = reached
                .lock()
                .map_err(|_| LabError::Failed("probe thread panicked".into()))?;
            (0..n)
                .flat_map(|i| (0..n).map(move |j| (i, j)))
                .filter(|&(i, j)| i != j && !r[i][j])
                .collect()
        };
        if missing.is_empty() {
            break;
        }
        for (k, (i, j)) in missing.into_iter().enumerate() {
            let _ = clients[i].send_to(b"PING", addrs[j]);
            // Paced: every datagram crosses veths, whose receive side is the CPU's backlog
            // queue (net.core.netdev_max_backlog, 1000 by default, a host-wide setting the lab
            // leaves alone); an unpaced burst of thousands would overflow it and look like loss.
            if k % BURST == BURST - 1 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        std::thread::sleep(wait);
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let reached = reached
        .lock()
        .map_err(|_| LabError::Failed("probe thread panicked".into()))?
        .clone();
    Ok(Matrix { reached })
}

/// The matrix as text: a grid for small labs, a summary and the failing pairs otherwise.
pub fn render(pods: &[PodRecord], m: &Matrix) -> String {
    let mut out = String::new();
    let (ok, all) = m.counts();
    let n = pods.len();
    if n <= 16 {
        let width = pods
            .iter()
            .map(|p| p.name.len() + p.ip.len() + 3)
            .max()
            .unwrap_or(0);
        out.push_str(&format!("{:width$}", "from \\ to", width = width + 4));
        for j in 0..n {
            out.push_str(&format!("{:>3}", j + 1));
        }
        out.push('\n');
        for (i, p) in pods.iter().enumerate() {
            let label = format!("{} ({})", p.name, p.ip);
            out.push_str(&format!("{:>2}  {label:width$}", i + 1, width = width));
            for j in 0..n {
                let cell = if i == j {
                    "-"
                } else if m.reached[i][j] {
                    "ok"
                } else {
                    "XX"
                };
                out.push_str(&format!("{cell:>3}"));
            }
            out.push('\n');
        }
    }
    out.push_str(&format!(
        "{ok}/{all} pod pairs answered (UDP echo on port {PORT})\n"
    ));
    let failures: Vec<String> = (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .filter(|&(i, j)| i != j && !m.reached[i][j])
        .take(20)
        .map(|(i, j)| {
            format!(
                "  no answer: {} ({}) -> {} ({})",
                pods[i].name, pods[i].ip, pods[j].name, pods[j].ip
            )
        })
        .collect();
    for f in failures {
        out.push_str(&f);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ignore_the_diagonal() {
        let m = Matrix {
            reached: vec![vec![false, true], vec![false, false]],
        };
        assert_eq!(m.counts(), (1, 2));
        assert!(!m.complete());
        let full = Matrix {
            reached: vec![vec![false, true], vec![true, false]],
        };
        assert!(full.complete());
    }
}
