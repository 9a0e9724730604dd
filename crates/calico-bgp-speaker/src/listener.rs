//! The speaker's one listening socket (port 179): each accepted connection goes to the peer
//! configured for its source address; a connection from anyone else is refused with a
//! NOTIFICATION Cease / Connection Rejected (RFC 4486 subcode 5), as BIRD and GoBGP do for
//! unconfigured neighbours.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use calico_bgp_packet::{CodecContext, Message, Notification};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::peer::{
    PeerCommand, PeerCommander, SocketFactory, SocketFamily, default_socket_factory,
};

/// Which peer owns which source address.
#[derive(Clone, Default)]
pub struct PeerDirectory(Arc<Mutex<HashMap<IpAddr, PeerCommander>>>);

impl PeerDirectory {
    pub fn insert(&self, addr: IpAddr, peer: PeerCommander) {
        self.lock().insert(addr, peer);
    }

    pub fn remove(&self, addr: &IpAddr) {
        self.lock().remove(addr);
    }

    fn get(&self, addr: &IpAddr) -> Option<PeerCommander> {
        self.lock().get(addr).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, PeerCommander>> {
        // The map holds plain data; a panic elsewhere while holding it leaves it usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Binds `addr` and accepts until the returned task is aborted.
pub async fn listen(
    addr: SocketAddr,
    peers: PeerDirectory,
) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let (local, _, task) = listen_with(addr, peers, &default_socket_factory()).await?;
    Ok((local, task))
}

/// Binds `addr` with a socket from `sockets` (so it lives in the node's network namespace)
/// and accepts until the returned task is aborted. The listener is shared so the speaker
/// can set per-peer TCP MD5 keys on it (RFC 2385: the key must be on the listening socket
/// before the peer's SYN arrives).
pub async fn listen_with(
    addr: SocketAddr,
    peers: PeerDirectory,
    sockets: &SocketFactory,
) -> io::Result<(SocketAddr, Arc<TcpListener>, JoinHandle<()>)> {
    let socket = sockets(SocketFamily::of(&addr))?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = Arc::new(socket.listen(1024)?);
    let local = listener.local_addr()?;
    let shared = listener.clone();
    let task = tokio::spawn(async move {
        let listener = shared;
        loop {
            match listener.accept().await {
                Ok((stream, from)) => dispatch(stream, from, &peers).await,
                Err(e) => {
                    tracing::warn!(error = %e, "BGP listener accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((local, listener, task))
}

async fn dispatch(stream: TcpStream, from: SocketAddr, peers: &PeerDirectory) {
    let ip = canonical(from.ip());
    match peers.get(&ip) {
        Some(peer) => {
            if peer.command(PeerCommand::Accepted(stream)).await.is_err() {
                tracing::debug!(%from, "peer task gone; dropping its connection");
            }
        }
        None => {
            tracing::info!(%from, "BGP connection from an unconfigured address; rejecting");
            tokio::spawn(reject(stream));
        }
    }
}

/// IPv4 peers reaching an IPv6 socket appear as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

async fn reject(mut stream: TcpStream) {
    let cease = Message::Notification(Notification {
        code: 6,
        subcode: 5,
        data: Vec::new(),
    });
    if let Ok(bytes) = cease.encode(&CodecContext::initial()) {
        let _ = stream.write_all(&bytes).await;
    }
    let _ = stream.shutdown().await;
}
