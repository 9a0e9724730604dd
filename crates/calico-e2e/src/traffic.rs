//! A steady request/response flow between two pods, to prove that something (an agent
//! restart) never interrupts established connectivity: one UDP datagram every few
//! milliseconds from a client in one pod to an echo server in another, each answer checked.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use calico_netlink::NetNs;

use crate::HarnessError;

/// Counts of a finished flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowReport {
    pub sent: u64,
    pub answered: u64,
}

impl FlowReport {
    pub fn lost(&self) -> u64 {
        self.sent - self.answered
    }
}

/// A running flow; [`Flow::stop`] ends it and reports.
pub struct Flow {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
    client: Option<JoinHandle<Result<(), HarnessError>>>,
    server: Option<JoinHandle<Result<(), HarnessError>>>,
}

const PORT: u16 = 7777;

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> HarnessError {
    move |e| HarnessError::Io(what.into(), e)
}

impl Flow {
    /// Starts an echo server on `server_ip` inside `server_ns` and a client in `client_ns`
    /// sending every `interval`.
    pub fn start(
        client_ns: &NetNs,
        server_ns: &NetNs,
        server_ip: IpAddr,
        interval: Duration,
    ) -> Result<Flow, HarnessError> {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(AtomicU64::new(0));
        let server_ns = server_ns
            .try_clone()
            .map_err(|e| HarnessError::Failed(e.to_string()))?;
        let client_ns = client_ns
            .try_clone()
            .map_err(|e| HarnessError::Failed(e.to_string()))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stop_s = Arc::clone(&stop);
        let server = std::thread::spawn(move || -> Result<(), HarnessError> {
            server_ns
                .run(move || -> Result<(), HarnessError> {
                    let sock = UdpSocket::bind(SocketAddr::new(server_ip, PORT))
                        .map_err(io("binding the echo server"))?;
                    sock.set_read_timeout(Some(Duration::from_millis(50)))
                        .map_err(io("setting a timeout"))?;
                    let _ = ready_tx.send(());
                    let mut buf = [0u8; 64];
                    while !stop_s.load(Ordering::Relaxed) {
                        if let Ok((n, from)) = sock.recv_from(&mut buf) {
                            let _ = sock.send_to(&buf[..n], from);
                        }
                    }
                    Ok(())
                })
                .map_err(|e| HarnessError::Failed(e.to_string()))?
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| HarnessError::Failed("echo server did not start".into()))?;
        let (stop_c, sent_c, answered_c) =
            (Arc::clone(&stop), Arc::clone(&sent), Arc::clone(&answered));
        let client = std::thread::spawn(move || -> Result<(), HarnessError> {
            client_ns
                .run(move || -> Result<(), HarnessError> {
                    let unspecified: IpAddr = if server_ip.is_ipv4() {
                        [0u8, 0, 0, 0].into()
                    } else {
                        [0u16; 8].into()
                    };
                    let sock =
                        UdpSocket::bind((unspecified, 0)).map_err(io("binding the client"))?;
                    sock.connect((server_ip, PORT))
                        .map_err(io("connecting the client"))?;
                    // Generous: a reply later than this counts as lost.
                    sock.set_read_timeout(Some(Duration::from_millis(500)))
                        .map_err(io("setting a timeout"))?;
                    let mut seq: u64 = 0;
                    let mut buf = [0u8; 64];
                    while !stop_c.load(Ordering::Relaxed) {
                        seq += 1;
                        sock.send(&seq.to_be_bytes()).map_err(io("sending"))?;
                        sent_c.fetch_add(1, Ordering::Relaxed);
                        // Drain until this sequence number comes back (or the wait times out).
                        loop {
                            match sock.recv(&mut buf) {
                                Ok(8) if buf[..8] == seq.to_be_bytes() => {
                                    answered_c.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Ok(_) => continue,
                                Err(_) => break,
                            }
                        }
                        std::thread::sleep(interval);
                    }
                    Ok(())
                })
                .map_err(|e| HarnessError::Failed(e.to_string()))?
        });
        Ok(Flow {
            stop,
            sent,
            answered,
            client: Some(client),
            server: Some(server),
        })
    }

    /// Counts so far.
    pub fn report(&self) -> FlowReport {
        FlowReport {
            sent: self.sent.load(Ordering::Relaxed),
            answered: self.answered.load(Ordering::Relaxed),
        }
    }

    /// Stops both ends and returns the final counts.
    pub fn stop(mut self) -> Result<FlowReport, HarnessError> {
        self.stop.store(true, Ordering::Relaxed);
        for h in [self.client.take(), self.server.take()]
            .into_iter()
            .flatten()
        {
            h.join()
                .map_err(|_| HarnessError::Failed("traffic thread panicked".into()))??;
        }
        Ok(self.report())
    }
}

impl Drop for Flow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
