//! The nftables ruleset generation of a network namespace (`NFT_MSG_GETGEN`).
//!
//! The kernel bumps one generation counter per network namespace on every committed nf_tables
//! transaction, whoever sends it (`net/netfilter/nf_tables_api.c`, `nft_net->base_seq`); nft
//! itself uses it to tell whether its cache is stale. The policy manager reads it around its
//! own transactions so a drift check can skip listing the table (seconds for a large one)
//! when nobody else wrote anything since.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

use super::DataplaneError;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;
/// nlmsghdr (16 bytes) + nfgenmsg (4 bytes).
const HEADERS: usize = 20;

const OP: &str = "netlink NFT_MSG_GETGEN";

/// The generation, asked over `socket` (a netfilter socket in the namespace of interest)
/// with sequence number `seq`; replies to other sequence numbers are skipped.
pub(super) fn read_generation(socket: &Socket, seq: u32) -> Result<u32, DataplaneError> {
    socket.send(&request(seq), 0).map_err(io_err)?;
    loop {
        let (reply, _) = socket.recv_from_full().map_err(io_err)?;
        if let Some(generation) = parse_reply(&reply, seq)? {
            return Ok(generation);
        }
    }
}

/// A netfilter netlink socket in one namespace, opened on first use and kept: creating a
/// NETLINK_NETFILTER socket costs milliseconds (measured ~4 ms on the dev VM), more than a
/// one-element batch itself. Clones share the socket (and its sequence numbers); a failed
/// exchange drops it, so the next use starts from a fresh socket with no stale replies.
#[derive(Debug, Clone, Default)]
pub(super) struct SharedSocket(Arc<Mutex<Option<(Socket, u32)>>>);

impl SharedSocket {
    /// Runs `f` with the socket (opened in `netns` if needed) and the next free sequence
    /// number; `f` returns how many sequence numbers it used.
    pub(super) fn with<T>(
        &self,
        netns: Option<&Path>,
        command: &str,
        f: impl FnOnce(&Socket, u32) -> Result<(T, u32), DataplaneError>,
    ) -> Result<T, DataplaneError> {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            *guard = Some((socket_in(netns, command)?, 1));
        }
        let Some((socket, seq)) = guard.as_mut() else {
            return Err(DataplaneError::Io {
                command: command.into(),
                source: io::Error::other("netlink socket vanished"),
            });
        };
        match f(socket, *seq) {
            Ok((value, used)) => {
                // Never 0: replies to the kernel's own notifications carry sequence 0.
                *seq = seq.wrapping_add(used).max(1);
                Ok(value)
            }
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }
}

/// The send buffer asked for: batches up to about this size go in one send.
const SEND_BUFFER: usize = 4 << 20;

/// The largest batch `socket` takes in one send: `netlink_sendmsg` refuses a message longer
/// than the send buffer less 32 bytes (`EMSGSIZE`).
pub(super) fn send_limit(socket: &Socket) -> usize {
    nix::sys::socket::getsockopt(socket, nix::sys::socket::sockopt::SndBuf)
        .map_or(super::netlink_elements::MAX_BATCH, |b| b.saturating_sub(32))
}

/// A netfilter netlink socket connected to the kernel, in the namespace at `netns` (the
/// caller's own when `None`); errors name `command`.
pub(super) fn socket_in(netns: Option<&Path>, command: &str) -> Result<Socket, DataplaneError> {
    let err = |source: io::Error| DataplaneError::Io {
        command: command.into(),
        source,
    };
    let open = || -> Result<Socket, DataplaneError> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(err)?;
        socket.bind_auto().map_err(err)?;
        socket.connect(&SocketAddr::new(0, 0)).map_err(err)?;
        // A batch is committed only if it arrives in one send, which the socket's send
        // buffer bounds (`net.core.wmem_default`, 208 KiB). A new pod's chains at 10k
        // policies take ~170 KiB, so ask for more; with CAP_NET_ADMIN the buffer may exceed
        // `wmem_max` (SO_SNDBUFFORCE). Without it the default stays and larger changes go
        // through `nft` ([`send_limit`]).
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::SndBufForce,
            &SEND_BUFFER,
        );
        Ok(socket)
    };
    match netns {
        None => open(),
        Some(path) => {
            let ns = calico_netlink::NetNs::open(path).map_err(|e| err(io::Error::other(e)))?;
            // The socket stays bound to the namespace it was created in; only the helper
            // thread of `run` enters the namespace.
            ns.run(open)
                .map_err(|e| err(io::Error::other(e)))
                .and_then(|r| r)
        }
    }
}

fn io_err(source: io::Error) -> DataplaneError {
    DataplaneError::Io {
        command: OP.into(),
        source,
    }
}

fn bad_reply(detail: impl Into<String>) -> DataplaneError {
    DataplaneError::Listing {
        command: OP.into(),
        detail: detail.into(),
    }
}

/// `NFT_MSG_GETGEN` request: nlmsghdr + nfgenmsg (family unspec, version 0, res_id 0).
fn request(seq: u32) -> Vec<u8> {
    let mut msg = Vec::with_capacity(HEADERS);
    msg.extend_from_slice(&(HEADERS as u32).to_ne_bytes());
    msg.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN).to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[0, 0, 0, 0]);
    msg
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The generation from one datagram of replies; `Ok(None)` when it holds nothing for `seq`.
fn parse_reply(buf: &[u8], seq: u32) -> Result<Option<u32>, DataplaneError> {
    let mut off = 0;
    while off + 16 <= buf.len() {
        let truncated = || bad_reply(format!("truncated message at byte {off}"));
        let len = u32_at(buf, off).ok_or_else(truncated)? as usize;
        let kind = u16_at(buf, off + 4).ok_or_else(truncated)?;
        let msg_seq = u32_at(buf, off + 8).ok_or_else(truncated)?;
        if len < 16 || off + len > buf.len() {
            return Err(bad_reply(format!(
                "message length {len} at byte {off} of {}",
                buf.len()
            )));
        }
        let msg = &buf[off..off + len];
        if msg_seq == seq {
            if kind == NLMSG_ERROR {
                let errno = u32_at(msg, 16).ok_or_else(truncated)? as i32;
                return Err(io_err(io::Error::from_raw_os_error(-errno)));
            }
            if kind == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN {
                return gen_id(msg).map(Some);
            }
        }
        off += (len + 3) & !3;
    }
    Ok(None)
}

/// `NFTA_GEN_ID` (a big-endian u32) among the attributes after the headers.
fn gen_id(msg: &[u8]) -> Result<u32, DataplaneError> {
    let mut at = HEADERS;
    while at + 4 <= msg.len() {
        let (Some(len), Some(kind)) = (u16_at(msg, at), u16_at(msg, at + 2)) else {
            break;
        };
        let len = usize::from(len);
        if len < 4 || at + len > msg.len() {
            break;
        }
        if kind & NLA_TYPE_MASK == NFTA_GEN_ID && len == 8 {
            let bytes: [u8; 4] = msg[at + 4..at + 8]
                .try_into()
                .map_err(|_| bad_reply("NFTA_GEN_ID is not 4 bytes"))?;
            return Ok(u32::from_be_bytes(bytes));
        }
        at += (len + 3) & !3;
    }
    Err(bad_reply("no NFTA_GEN_ID attribute in NFT_MSG_NEWGEN"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(payload);
        m
    }

    fn newgen(seq: u32, generation: u32) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 0]; // nfgenmsg
        // NFTA_GEN_PROC_PID first, to check attributes are walked.
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&2u16.to_ne_bytes());
        p.extend_from_slice(&4242u32.to_be_bytes());
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&NFTA_GEN_ID.to_ne_bytes());
        p.extend_from_slice(&generation.to_be_bytes());
        message((10 << 8) | 15, seq, &p)
    }

    #[test]
    fn request_bytes() {
        let r = request(7);
        assert_eq!(r.len(), 20);
        assert_eq!(u32_at(&r, 0), Some(20));
        assert_eq!(
            u16_at(&r, 4),
            Some(0x0a10),
            "NFNL_SUBSYS_NFTABLES << 8 | GETGEN"
        );
        assert_eq!(u16_at(&r, 6), Some(1), "NLM_F_REQUEST");
        assert_eq!(u32_at(&r, 8), Some(7));
    }

    #[test]
    fn parses_the_generation() {
        assert_eq!(
            parse_reply(&newgen(1, 0x0102_0304), 1).unwrap(),
            Some(0x0102_0304)
        );
        // A reply for another sequence number is skipped; ours follows in the same datagram.
        let mut two = newgen(9, 5);
        two.extend(newgen(1, 6));
        assert_eq!(parse_reply(&two, 1).unwrap(), Some(6));
        assert_eq!(parse_reply(&newgen(9, 5), 1).unwrap(), None);
    }

    #[test]
    fn errors_and_garbage() {
        let mut errno = (-1i32).to_ne_bytes().to_vec(); // -EPERM
        errno.extend(request(1)[..16].iter());
        let err = parse_reply(&message(2, 1, &errno), 1).unwrap_err();
        assert!(
            matches!(&err, DataplaneError::Io { source, .. } if source.raw_os_error() == Some(1)),
            "{err:?}"
        );
        let mut short = newgen(1, 3);
        short.truncate(30);
        assert!(parse_reply(&short, 1).is_err());
        let no_attr = message((10 << 8) | 15, 1, &[0, 0, 0, 0]);
        let err = parse_reply(&no_attr, 1).unwrap_err();
        assert!(err.to_string().contains("NFTA_GEN_ID"), "{err}");
    }
}
