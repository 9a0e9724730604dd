//! RFC 2385 TCP MD5 signatures for BGP sessions (Calico's `BGPPeer.spec.password`).
//!
//! Owns exactly one thing: installing or removing a per-peer TCP MD5 key on a socket with Linux's
//! `setsockopt(IPPROTO_TCP, TCP_MD5SIG, struct tcp_md5sig)`, as BIRD does for Calico's
//! `password "..."` peer option. It knows nothing about BGP, tokio or Calico resources and must not
//! depend on any other calico crate; callers hand it a borrowed socket descriptor and a peer address.
//!
//! # Why this crate contains `unsafe`
//!
//! The workspace forbids `unsafe_code`, and neither `nix`, `rustix` nor `socket2` expose `TCP_MD5SIG`
//! (the option takes a 216-byte C struct that none of them model). So this crate relaxes the lint to
//! `deny` and allows it on a single private function, [`setsockopt_md5sig`], which is the only
//! `unsafe` block. It is sound because:
//!
//! * the descriptor comes from a [`BorrowedFd`], so it is open for the whole call;
//! * the option value is a `#[repr(C)]` struct made only of byte arrays and integers (no pointers,
//!   no padding: its size is checked at compile time against the kernel's 216 bytes), fully
//!   initialised, borrowed immutably for the duration of the call, and the length passed is exactly
//!   its size, so the kernel's `copy_from_sockptr(&cmd, optval, sizeof(cmd))` reads only our bytes;
//! * `setsockopt` does not retain the pointer after it returns.
//!
//! Everything else (address encoding, the family check via `getsockname`, the socket type check) is
//! safe code, unit-tested without privileges.
//!
//! # Kernel behaviour relied upon (net/ipv4/tcp_ipv4.c, net/ipv6/tcp_ipv6.c)
//!
//! * A key is bound to a full peer address (`/32` or `/128`; the non-`_EXT` option ignores prefix
//!   length and interface). Keys set on a listening socket are copied to the sockets it accepts.
//! * A key length of zero deletes the key for that address; deleting an absent key is `ENOENT`.
//! * On an `AF_INET6` socket an IPv4 peer is only matched when given as v4-mapped (`::ffff:a.b.c.d`);
//!   [`set_key`] does that mapping itself based on the socket's family.
//! * A kernel built without `CONFIG_TCP_MD5SIG` answers `ENOPROTOOPT` ([`Md5Error::Unsupported`]).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::sys::socket::{AddressFamily, SockType, SockaddrLike, SockaddrStorage, sockopt};

/// Longest key the kernel accepts (`TCP_MD5SIG_MAXKEYLEN` in `include/uapi/linux/tcp.h`).
pub const MAX_KEY_LEN: usize = 80;

/// Why a key could not be set or removed.
#[derive(Debug, thiserror::Error)]
pub enum Md5Error {
    /// The key is longer than [`MAX_KEY_LEN`] bytes; nothing was changed on the socket.
    #[error(
        "TCP MD5 key is {len} bytes long; the kernel accepts at most {MAX_KEY_LEN} (TCP_MD5SIG_MAXKEYLEN)"
    )]
    KeyTooLong {
        /// Length of the rejected key in bytes.
        len: usize,
    },
    /// The kernel has no TCP MD5 support (`ENOPROTOOPT`: built without `CONFIG_TCP_MD5SIG`).
    #[error("this kernel does not support TCP MD5 signatures (RFC 2385, CONFIG_TCP_MD5SIG): {0}")]
    Unsupported(#[source] io::Error),
    /// Any other failure: the descriptor is not a TCP socket, the peer's family does not fit the
    /// socket, an empty key was given, or the kernel refused the key (its `errno` is kept).
    #[error("setting the TCP MD5 key failed: {0}")]
    Io(#[source] io::Error),
}

/// Sets (Some) or removes (None) the key for peer address `peer` on socket `fd` (listening or
/// not-yet-connected socket). IPv4 peers on an IPv6 socket must be given as v4-mapped: do that mapping
/// inside based on the socket's family (getsockname / SO_DOMAIN) so callers can pass a plain IpAddr.
///
/// More precisely:
/// * `peer` may be IPv4 or IPv6 whatever the socket's family: an IPv4 peer on an `AF_INET6` socket is
///   sent as `::ffff:a.b.c.d`, a v4-mapped IPv6 peer on an `AF_INET` socket as plain IPv4; a true
///   IPv6 peer on an `AF_INET` socket is an [`Md5Error::Io`] of kind `InvalidInput`.
/// * `Some(key)` must be 1..=[`MAX_KEY_LEN`] bytes: longer is [`Md5Error::KeyTooLong`], empty is an
///   `InvalidInput` error (the kernel would silently treat a zero length as "delete").
/// * `None` removes the key; removing a key that is not set succeeds (the kernel's `ENOENT` is
///   swallowed) so that reconcilers can call it unconditionally.
/// * `fd` must be a `SOCK_STREAM` socket of family `AF_INET` or `AF_INET6`; anything else is an
///   `InvalidInput` error naming what was found.
pub fn set_key(fd: BorrowedFd<'_>, peer: IpAddr, key: Option<&[u8]>) -> Result<(), Md5Error> {
    if let Some(k) = key {
        if k.len() > MAX_KEY_LEN {
            return Err(Md5Error::KeyTooLong { len: k.len() });
        }
        if k.is_empty() {
            return Err(invalid(format!(
                "empty TCP MD5 key for peer {peer}; pass None to remove the key"
            )));
        }
    }
    let family = socket_family(fd)?;
    let sockaddr = encode_peer(family, peer)?;
    let cmd = TcpMd5Sig::new(sockaddr, key.unwrap_or_default());
    match setsockopt_md5sig(fd, &cmd) {
        Ok(()) => Ok(()),
        Err(e) => classify(e, fd, peer, key.is_none()),
    }
}

/// Maps a `setsockopt` failure to the caller's view (separate so the errno policy is unit-tested).
fn classify(
    e: io::Error,
    fd: BorrowedFd<'_>,
    peer: IpAddr,
    removing: bool,
) -> Result<(), Md5Error> {
    match e.raw_os_error() {
        Some(libc::ENOPROTOOPT) => Err(Md5Error::Unsupported(e)),
        // Removing an absent key: already in the requested state.
        Some(libc::ENOENT) if removing => Ok(()),
        _ => Err(Md5Error::Io(io::Error::new(
            e.kind(),
            format!(
                "setsockopt(TCP_MD5SIG) for peer {peer} on fd {}: {e}",
                fd.as_raw_fd()
            ),
        ))),
    }
}

fn invalid(message: String) -> Md5Error {
    Md5Error::Io(io::Error::new(io::ErrorKind::InvalidInput, message))
}

/// The socket's address family, after checking that it is a stream socket (so that an `ENOPROTOOPT`
/// from the kernel really means "no MD5 support" and not "this is a UDP socket").
fn socket_family(fd: BorrowedFd<'_>) -> Result<Family, Md5Error> {
    let ty = nix::sys::socket::getsockopt(&fd, sockopt::SockType).map_err(|e| {
        Md5Error::Io(io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "fd {} is not a usable socket (getsockopt SO_TYPE: {e})",
                fd.as_raw_fd()
            ),
        ))
    })?;
    if ty != SockType::Stream {
        return Err(invalid(format!(
            "fd {} is a {ty:?} socket; TCP MD5 keys need a TCP (stream) socket",
            fd.as_raw_fd()
        )));
    }
    // getsockname reports the family even for an unbound socket, which is what set_key is used on.
    let name: SockaddrStorage = nix::sys::socket::getsockname(fd.as_raw_fd()).map_err(|e| {
        Md5Error::Io(io::Error::new(
            io::Error::from(e).kind(),
            format!("getsockname on fd {}: {e}", fd.as_raw_fd()),
        ))
    })?;
    match name.family() {
        Some(AddressFamily::Inet) => Ok(Family::V4),
        Some(AddressFamily::Inet6) => Ok(Family::V6),
        other => Err(invalid(format!(
            "fd {} has address family {other:?}; TCP MD5 keys need an AF_INET or AF_INET6 socket",
            fd.as_raw_fd()
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// Size of the kernel's `struct __kernel_sockaddr_storage`.
const SOCKADDR_STORAGE_LEN: usize = 128;

/// Encodes `peer` as the `sockaddr_in` / `sockaddr_in6` the socket's family expects (port 0: the kernel
/// ignores it), in the first bytes of a zeroed `sockaddr_storage`.
fn encode_peer(family: Family, peer: IpAddr) -> Result<[u8; SOCKADDR_STORAGE_LEN], Md5Error> {
    let mut out = [0u8; SOCKADDR_STORAGE_LEN];
    match (family, peer) {
        (Family::V4, IpAddr::V4(v4)) => write_sockaddr_in(&mut out, v4),
        (Family::V4, IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => write_sockaddr_in(&mut out, v4),
            None => {
                return Err(invalid(format!(
                    "peer {v6} is IPv6 but the socket is AF_INET; use an AF_INET6 socket for IPv6 peers"
                )));
            }
        },
        (Family::V6, IpAddr::V4(v4)) => write_sockaddr_in6(&mut out, v4.to_ipv6_mapped()),
        (Family::V6, IpAddr::V6(v6)) => write_sockaddr_in6(&mut out, v6),
    }
    Ok(out)
}

/// `struct sockaddr_in`: family (host order), port (network order, 0), address (network order).
fn write_sockaddr_in(out: &mut [u8; SOCKADDR_STORAGE_LEN], addr: Ipv4Addr) {
    out[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
    out[4..8].copy_from_slice(&addr.octets());
}

/// `struct sockaddr_in6`: family, port 0, flowinfo 0, address, scope id 0 (ignored by `TCP_MD5SIG`).
fn write_sockaddr_in6(out: &mut [u8; SOCKADDR_STORAGE_LEN], addr: Ipv6Addr) {
    out[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
    out[8..24].copy_from_slice(&addr.octets());
}

/// `struct tcp_md5sig` from `include/uapi/linux/tcp.h`. Only byte arrays and integers, laid out with
/// no padding (128 + 1 + 1 + 2 + 4 + 80 = 216 bytes), so every byte is initialised.
#[repr(C, align(8))]
struct TcpMd5Sig {
    addr: [u8; SOCKADDR_STORAGE_LEN],
    /// `TCP_MD5SIG_FLAG_*`; only read for `TCP_MD5SIG_EXT`, kept zero.
    flags: u8,
    /// Only read for `TCP_MD5SIG_EXT`; the plain option always uses the full address.
    prefixlen: u8,
    keylen: u16,
    /// Only read for `TCP_MD5SIG_EXT` with `TCP_MD5SIG_FLAG_IFINDEX`.
    ifindex: libc::c_int,
    key: [u8; MAX_KEY_LEN],
}

const _: () = assert!(std::mem::size_of::<TcpMd5Sig>() == 216);
const _: () = assert!(std::mem::offset_of!(TcpMd5Sig, keylen) == 130);
const _: () = assert!(std::mem::offset_of!(TcpMd5Sig, key) == 136);

impl TcpMd5Sig {
    /// `key` must be at most [`MAX_KEY_LEN`] bytes (checked by the caller); empty means "delete".
    fn new(addr: [u8; SOCKADDR_STORAGE_LEN], key: &[u8]) -> TcpMd5Sig {
        let mut buf = [0u8; MAX_KEY_LEN];
        let len = key.len().min(MAX_KEY_LEN);
        buf[..len].copy_from_slice(&key[..len]);
        TcpMd5Sig {
            addr,
            flags: 0,
            prefixlen: 0,
            // len <= 80, so this cannot truncate.
            keylen: len as u16,
            ifindex: 0,
            key: buf,
        }
    }
}

/// The crate's only `unsafe`: `setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, cmd, sizeof(*cmd))`.
/// See the crate documentation for why this is sound.
#[allow(unsafe_code)]
fn setsockopt_md5sig(fd: BorrowedFd<'_>, cmd: &TcpMd5Sig) -> io::Result<()> {
    let len = std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t;
    let value = (cmd as *const TcpMd5Sig).cast::<libc::c_void>();
    // SAFETY: `fd` is a live descriptor for the duration of the borrow; `value` points to a fully
    // initialised, immutably borrowed `TcpMd5Sig` of exactly `len` bytes that outlives the call, and
    // the kernel only copies from it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            value,
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests;
