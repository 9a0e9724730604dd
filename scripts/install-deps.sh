#!/usr/bin/env bash
# Installs every system package the build and the tests need on a fresh Debian 12 machine (as root).
# Idempotent: re-running it only checks that the packages are present.
set -euo pipefail
packages=(
  etcd-server etcd-client   # real etcd v3 for the etcd-backed datastore tests
  protobuf-compiler         # etcd-client's build script runs protoc
  openssl                   # test CA and client certificates for etcd TLS tests
  nftables iproute2         # dataplane tools; `ip netns` for the namespaces tests build
  util-linux                # nsenter: podman runs inside a node namespace
  podman runc busybox-static # a real CNI client (podman 4.3, CNI backend) and the containers' rootfs
  containernetworking-plugins # Debian's reference plugins (ptp, host-local) for the CNI benchmark
  jq
  g++                       # libfuzzer-sys compiles libFuzzer (C++) for scripts/fuzz-smoke.sh
  libssh-gcrypt-4           # the library BIRD 2 links against (BIRD itself: below)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Debian's etcd-server package starts a system etcd on 127.0.0.1:2379; the tests start their own
# on free ports and never use it, but stop it so nothing listens that we did not start.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
  systemctl stop etcd || true
  systemctl disable etcd >/dev/null 2>&1 || true
fi
# BIRD 2, a real BGP peer for the speaker's interop tests. Unpacked, not installed: installing
# Debian's bird2 would try to start a BIRD daemon in the root network namespace, which nothing
# here may touch. The tests run this copy inside namespaces they create.
bird_root=/var/cache/calico-rs/bird2
if [ ! -x "$bird_root/usr/sbin/bird" ]; then
  echo "unpacking bird2 into $bird_root"
  tmp=$(mktemp -d)
  # apt-get download runs as root into a private directory (no _apt sandbox warning wanted).
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root bird2 >/dev/null 2>&1) ||
    (apt-get update -qq && cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root bird2 >/dev/null)
  mkdir -p "$bird_root"
  dpkg -x "$tmp"/bird2_*.deb "$bird_root"
  rm -rf "$tmp"
fi
# GoBGP (daemon gobgpd + CLI gobgp), the second real BGP peer of the interop harness
# (crates/calico-e2e/src/bgp_peers.rs). Unpacked like bird2, never installed: the package ships a
# systemd unit that would run gobgpd in the root network namespace. `CALICO_GOBGP_ROOT` points the
# harness elsewhere.
gobgp_root=/var/cache/calico-rs/gobgp
if [ ! -x "$gobgp_root/usr/bin/gobgpd" ] || [ ! -x "$gobgp_root/usr/bin/gobgp" ]; then
  echo "unpacking gobgpd into $gobgp_root"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root gobgpd >/dev/null 2>&1) ||
    (apt-get update -qq && cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root gobgpd >/dev/null)
  mkdir -p "$gobgp_root"
  dpkg -x "$tmp"/gobgpd_*.deb "$gobgp_root"
  rm -rf "$tmp"
fi
# FRR 8 (zebra + bgpd), a third BGP peer for the harness, with the two libraries it needs that
# the machine lacks (libyang2, libc-ares2). Unpacked like bird2, never installed (its service
# would run in the root namespace; its postinst adds users). The harness finds the libraries
# through LD_LIBRARY_PATH. `CALICO_FRR_ROOT` points the harness elsewhere.
frr_root=/var/cache/calico-rs/frr
if [ ! -x "$frr_root/usr/lib/frr/bgpd" ] || [ ! -e "$frr_root/usr/lib/x86_64-linux-gnu/libyang.so.2" ]; then
  echo "unpacking frr into $frr_root"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root frr libyang2 libc-ares2 >/dev/null 2>&1) ||
    (apt-get update -qq && cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root frr libyang2 libc-ares2 >/dev/null)
  mkdir -p "$frr_root"
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$frr_root"; done
  rm -rf "$tmp"
fi
command -v cargo >/dev/null || { echo "cargo (Rust 1.95) is required" >&2; exit 1; }
