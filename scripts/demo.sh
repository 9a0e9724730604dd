#!/usr/bin/env bash
# The main job until calico-lab exists: a calicoctl walkthrough on the embedded datastore.
# It creates a temporary datastore file and touches nothing else on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
echo "== building calicoctl"
cargo build --release -p calicoctl
ctl="${CARGO_TARGET_DIR:-target}/release/calicoctl"
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
export CALICO_DATASTORE_PATH="$store/calico.db"
run() { echo; echo "\$ calicoctl $*"; "$ctl" "$@"; }
run apply -f examples/calico-examples.yaml
run get ippools -o wide
run get networkpolicies -A
run get globalnetworkpolicy block-metadata -o yaml
echo
echo "\$ calicoctl apply -f examples/invalid-policy.yaml   # must be refused, nothing applied"
if "$ctl" apply -f examples/invalid-policy.yaml; then
  echo "ERROR: the invalid file was accepted" >&2; exit 1
fi
run get globalnetworkpolicies
echo
echo "The datastore file was $CALICO_DATASTORE_PATH (removed on exit)."
