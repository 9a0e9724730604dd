//! Unprivileged tests: byte layout, argument validation and errno policy. The kernel round trips
//! (signed connections) live in `tests/md5_netns.rs`, inside a throw-away network namespace.
//!
//! Sockets made here are never bound, connected or given a key, so they do not touch the namespace
//! the tests run in: every case below fails validation before `setsockopt`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};

use super::*;

fn unbound(family: AddressFamily, ty: SockType) -> OwnedFd {
    socket(family, ty, SockFlag::SOCK_CLOEXEC, None).unwrap()
}

fn io_message(err: Md5Error) -> (io::ErrorKind, String) {
    match err {
        Md5Error::Io(e) => (e.kind(), e.to_string()),
        other => panic!("expected Md5Error::Io, got {other:?}"),
    }
}

#[test]
fn sockaddr_in_layout_matches_the_kernel() {
    let bytes = encode_peer(Family::V4, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))).unwrap();
    assert_eq!(&bytes[0..2], &(libc::AF_INET as u16).to_ne_bytes());
    assert_eq!(&bytes[2..4], &[0, 0], "port is zero");
    assert_eq!(&bytes[4..8], &[10, 0, 0, 2], "address in network order");
    assert!(bytes[8..].iter().all(|b| *b == 0));
}

#[test]
fn sockaddr_in6_layout_matches_the_kernel() {
    let peer: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let bytes = encode_peer(Family::V6, IpAddr::V6(peer)).unwrap();
    assert_eq!(&bytes[0..2], &(libc::AF_INET6 as u16).to_ne_bytes());
    assert_eq!(&bytes[2..8], &[0; 6], "port and flowinfo are zero");
    assert_eq!(&bytes[8..24], &peer.octets());
    assert!(
        bytes[24..].iter().all(|b| *b == 0),
        "scope id and rest zero"
    );
}

#[test]
fn ipv4_peer_on_ipv6_socket_is_v4_mapped() {
    let bytes = encode_peer(Family::V6, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))).unwrap();
    assert_eq!(&bytes[0..2], &(libc::AF_INET6 as u16).to_ne_bytes());
    let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().unwrap();
    assert_eq!(&bytes[8..24], &mapped.octets());
}

#[test]
fn v4_mapped_peer_on_ipv4_socket_is_plain_ipv4() {
    let mapped: Ipv6Addr = "::ffff:192.0.2.7".parse().unwrap();
    let bytes = encode_peer(Family::V4, IpAddr::V6(mapped)).unwrap();
    assert_eq!(
        bytes,
        encode_peer(Family::V4, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))).unwrap()
    );
}

#[test]
fn ipv6_peer_on_ipv4_socket_is_rejected() {
    let err = encode_peer(Family::V4, "2001:db8::1".parse().unwrap()).unwrap_err();
    let (kind, msg) = io_message(err);
    assert_eq!(kind, io::ErrorKind::InvalidInput);
    assert!(
        msg.contains("2001:db8::1") && msg.contains("AF_INET"),
        "{msg}"
    );
}

#[test]
fn tcp_md5sig_struct_carries_key_and_length() {
    let addr = encode_peer(Family::V4, IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let cmd = TcpMd5Sig::new(addr, b"calico");
    assert_eq!(cmd.addr, addr);
    assert_eq!(cmd.keylen, 6);
    assert_eq!(&cmd.key[..6], b"calico");
    assert!(cmd.key[6..].iter().all(|b| *b == 0));
    assert_eq!((cmd.flags, cmd.prefixlen, cmd.ifindex), (0, 0, 0));

    let removal = TcpMd5Sig::new(addr, &[]);
    assert_eq!(removal.keylen, 0, "a zero length asks the kernel to delete");
    assert_eq!(removal.key, [0; MAX_KEY_LEN]);

    let longest = [0xa5u8; MAX_KEY_LEN];
    assert_eq!(TcpMd5Sig::new(addr, &longest).keylen as usize, MAX_KEY_LEN);
}

#[test]
fn key_too_long_is_rejected_before_touching_the_socket() {
    let fd = unbound(AddressFamily::Inet, SockType::Stream);
    let key = [b'k'; MAX_KEY_LEN + 1];
    let err = set_key(fd.as_fd(), IpAddr::V4(Ipv4Addr::LOCALHOST), Some(&key)).unwrap_err();
    assert!(matches!(err, Md5Error::KeyTooLong { len: 81 }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "TCP MD5 key is 81 bytes long; the kernel accepts at most 80 (TCP_MD5SIG_MAXKEYLEN)"
    );
}

#[test]
fn empty_key_is_rejected_instead_of_silently_deleting() {
    let fd = unbound(AddressFamily::Inet, SockType::Stream);
    let err = set_key(fd.as_fd(), IpAddr::V4(Ipv4Addr::LOCALHOST), Some(b"")).unwrap_err();
    let (kind, msg) = io_message(err);
    assert_eq!(kind, io::ErrorKind::InvalidInput);
    assert!(
        msg.contains("empty TCP MD5 key") && msg.contains("None"),
        "{msg}"
    );
}

#[test]
fn ipv6_peer_on_ipv4_socket_is_rejected_by_set_key() {
    let fd = unbound(AddressFamily::Inet, SockType::Stream);
    let err = set_key(fd.as_fd(), "fd00::1".parse().unwrap(), Some(b"pw")).unwrap_err();
    let (kind, msg) = io_message(err);
    assert_eq!(kind, io::ErrorKind::InvalidInput);
    assert!(msg.contains("fd00::1"), "{msg}");
}

#[test]
fn udp_socket_is_rejected_not_reported_as_unsupported() {
    let fd = unbound(AddressFamily::Inet, SockType::Datagram);
    let err = set_key(fd.as_fd(), IpAddr::V4(Ipv4Addr::LOCALHOST), Some(b"pw")).unwrap_err();
    let (kind, msg) = io_message(err);
    assert_eq!(kind, io::ErrorKind::InvalidInput);
    assert!(msg.contains("Datagram") && msg.contains("stream"), "{msg}");
}

#[test]
fn unix_stream_socket_is_rejected() {
    let fd = unbound(AddressFamily::Unix, SockType::Stream);
    let err = set_key(fd.as_fd(), IpAddr::V4(Ipv4Addr::LOCALHOST), None).unwrap_err();
    let (kind, msg) = io_message(err);
    assert_eq!(kind, io::ErrorKind::InvalidInput);
    assert!(msg.contains("Unix") && msg.contains("AF_INET"), "{msg}");
}

#[test]
fn a_file_is_not_a_socket() {
    let file = tempfile::tempfile().unwrap();
    let err = set_key(file.as_fd(), IpAddr::V4(Ipv4Addr::LOCALHOST), Some(b"pw")).unwrap_err();
    let (_, msg) = io_message(err);
    assert!(msg.contains("not a usable socket"), "{msg}");
}

#[test]
fn errno_policy() {
    let fd = unbound(AddressFamily::Inet, SockType::Stream);
    let peer = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let os = io::Error::from_raw_os_error;

    let unsupported = classify(os(libc::ENOPROTOOPT), fd.as_fd(), peer, false).unwrap_err();
    match &unsupported {
        Md5Error::Unsupported(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT)),
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(
        unsupported.to_string().contains("CONFIG_TCP_MD5SIG"),
        "{unsupported}"
    );

    // Removing a key that is not there is what the caller wanted.
    assert!(classify(os(libc::ENOENT), fd.as_fd(), peer, true).is_ok());
    // ... but ENOENT while adding is a real error.
    assert!(matches!(
        classify(os(libc::ENOENT), fd.as_fd(), peer, false),
        Err(Md5Error::Io(_))
    ));

    let (kind, msg) = io_message(classify(os(libc::EINVAL), fd.as_fd(), peer, false).unwrap_err());
    assert_eq!(kind, io::ErrorKind::InvalidInput);
    assert!(
        msg.contains("TCP_MD5SIG") && msg.contains("10.1.2.3"),
        "{msg}"
    );
}
