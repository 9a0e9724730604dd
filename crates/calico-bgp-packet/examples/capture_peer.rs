//! Dev tool, not part of the library: a minimal passive BGP peer that records what a real
//! speaker (BIRD, GoBGP) sends, to regenerate the golden captures in `tests/data/`.
//!
//! It listens on ADDR:179, answers the peer's OPEN with its own (AS, multiprotocol IPv4 and
//! IPv6 unicast, 4-octet AS, route refresh, graceful restart, ADD-PATH receive, ...), sends
//! KEEPALIVEs, and writes every message it receives, raw, to `OUTDIR/NNN-<type>.bin` for
//! SECONDS seconds, then sends a Cease and exits. Each message is decoded with this crate
//! on the way, so a decode error shows up immediately. Run it inside a network namespace.
//!
//! Usage: capture_peer ADDR AS SECONDS OUTDIR

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use calico_bgp_packet::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        return Err("usage: capture_peer ADDR AS SECONDS OUTDIR".into());
    }
    let addr: Ipv4Addr = args[1].parse()?;
    let asn: u32 = args[2].parse()?;
    let secs: u64 = args[3].parse()?;
    let outdir = std::path::PathBuf::from(&args[4]);
    std::fs::create_dir_all(&outdir)?;
    let listener = TcpListener::bind((addr, 179))?;
    // Give up after SECONDS if nobody connects, so a broken setup cannot hang the script.
    listener.set_nonblocking(true)?;
    let waiting = Instant::now();
    let (mut sock, peer) = loop {
        match listener.accept() {
            Ok(c) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if waiting.elapsed() > Duration::from_secs(secs) {
                    return Err(format!("nobody connected to {addr}:179 within {secs}s").into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    };
    sock.set_nonblocking(false)?;
    eprintln!("connection from {peer}");
    sock.set_read_timeout(Some(Duration::from_millis(200)))?;

    // CAPTURE_OLD_SPEAKER=1: act as a 2-octet-AS ("OLD", RFC 6793) speaker, so the peer
    // has to send AS4_PATH/AS4_AGGREGATOR.
    let old = std::env::var_os("CAPTURE_OLD_SPEAKER").is_some();
    let mut local = Open::new(
        asn,
        90,
        addr,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification: false,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        forwarding_state: true,
                    },
                    GracefulRestartFamily {
                        family: Family::IPV6_UNICAST,
                        forwarding_state: true,
                    },
                ],
            }),
            Capability::FourOctetAs(asn),
            Capability::AddPath(vec![
                AddPathFamily {
                    family: Family::IPV4_UNICAST,
                    receive: true,
                    send: false,
                },
                AddPathFamily {
                    family: Family::IPV6_UNICAST,
                    receive: true,
                    send: false,
                },
            ]),
        ],
    );
    if old {
        local
            .capabilities
            .retain(|c| !matches!(c, Capability::FourOctetAs(_)));
    }
    let mut rx = CodecContext::initial();
    let mut tx = CodecContext::initial();
    let open_bytes = Message::Open(local.clone()).encode(&tx)?;
    // Saved so tests can negotiate the same context the capture used.
    std::fs::write(outdir.join("local-open.bin"), &open_bytes)?;
    sock.write_all(&open_bytes)?;

    let start = Instant::now();
    let mut last_ka = Instant::now();
    let mut buf: Vec<u8> = Vec::new();
    let mut n = 0usize;
    let mut chunk = [0u8; 65536];
    while start.elapsed() < Duration::from_secs(secs) {
        match sock.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e.into()),
        }
        loop {
            let len = match frame(&buf, &rx)? {
                Frame::NeedMore(_) => break,
                Frame::Complete(len) => len,
            };
            let raw: Vec<u8> = buf.drain(..len).collect();
            let d = decode(&raw, &rx)?;
            let kind = match &d.message {
                Message::Open(_) => "open",
                Message::Update(_) => "update",
                Message::Notification(_) => "notification",
                Message::Keepalive => "keepalive",
                Message::RouteRefresh(_) => "route-refresh",
            };
            if !d.errors.is_empty() {
                eprintln!("message {n}: {:?}", d.errors);
            }
            std::fs::write(outdir.join(format!("{n:03}-{kind}.bin")), &raw)?;
            n += 1;
            if let Message::Open(remote) = &d.message {
                (rx, tx) = Open::negotiate(&local, remote);
                eprintln!("negotiated receive {rx:?}");
                sock.write_all(&Message::Keepalive.encode(&tx)?)?;
            }
            if let Message::Notification(note) = &d.message {
                eprintln!("peer sent {note}");
                return Ok(());
            }
        }
        if last_ka.elapsed() > Duration::from_secs(10) {
            sock.write_all(&Message::Keepalive.encode(&tx)?)?;
            last_ka = Instant::now();
        }
    }
    let bye = Notification::cease_with_message(subcode::CEASE_ADMIN_SHUTDOWN, "capture done");
    sock.write_all(&Message::Notification(bye).encode(&tx)?)?;
    eprintln!("captured {n} messages into {}", outdir.display());
    Ok(())
}
