#!/usr/bin/env bash
# The project's test command: installs what the tests need, then runs every test of the workspace
# (unit, property, golden, datastore conformance against the embedded store and a real etcd that
# the tests start on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
# Privileged / external-service tests must fail, not skip, when they cannot run.
export CALICO_REQUIRE_ETCD=1
# Network-namespace tests need root; under the test command they fail instead of skipping.
export CALICO_REQUIRE_ROOT=1
# The end-to-end tests run the real binaries (calico, calico-ipam, calico-node).
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
