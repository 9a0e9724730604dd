#!/usr/bin/env bash
# The main job: a multi-node Calico cluster on this machine, in network namespaces.
# Installs what the lab needs, builds every binary (calico-lab runs its siblings calico-node,
# calico, calico-ipam and calicoctl from the same directory), then `calico-lab up` with the
# arguments given (e.g. `scripts/lab.sh --nodes 10 --route-reflectors 2`).
# The lab stays up afterwards: `calico-lab status`, `calico-lab exec node1 -- ip route`,
# `calico-lab down` (all as root, from ${CARGO_TARGET_DIR:-target}/release).
# Nothing is done in the host's own network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
echo "== building the binaries (release)"
cargo build --release --bins
bin="$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)"
echo "== $bin/calico-lab up $*"
exec "$bin/calico-lab" up "$@"
