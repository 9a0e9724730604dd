#!/usr/bin/env bash
# Fuzz smoke pass (issue 5: "the fuzz target runs a smoke pass in CI"): builds every cargo-fuzz
# target in fuzz/ on stable Rust (`-s none`: no sanitizer, so no nightly) and runs each one for a
# short, bounded time, seeded from the committed corpus in fuzz/corpus/<target>. Any crash, panic,
# timeout or OOM fails the script with the path of the input that triggered it.
#
# Knobs (environment):
#   FUZZ_SECONDS  wall-clock budget per target, libFuzzer -max_total_time (default 30)
#   FUZZ_RUNS     upper bound on executions per target, libFuzzer -runs (default 50000000)
#   FUZZ_TARGETS  space-separated subset of targets (default: all, from `cargo fuzz list`)
#   FUZZ_DIR      the cargo-fuzz project (default: fuzz/ of this repository)
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo-fuzz 0.13.2 (the newest; it declares no rust-version) installs with --locked on Rust 1.95
# stable in ~30-45 s; pinned so CI is reproducible. With `-s none` it needs no nightly: the
# coverage instrumentation is plain -C llvm-args, and libFuzzer is compiled with the system g++.
CARGO_FUZZ_VERSION=0.13.2
seconds=${FUZZ_SECONDS:-30}
runs=${FUZZ_RUNS:-50000000}
fuzz_dir=${FUZZ_DIR:-fuzz}
fuzz_dir=$(cd "$fuzz_dir" && pwd)
all_start=$SECONDS

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
echo "== fuzz: $(cargo fuzz --version)"

# cargo-fuzz looks for the fuzz project from the current directory: run it from the project's
# parent so FUZZ_DIR may point at any copy (the crash self-test uses a scratch copy).
cd "$(dirname "$fuzz_dir")"
fuzz_name=$(basename "$fuzz_dir")
fuzz() { cargo fuzz "$1" --fuzz-dir "$fuzz_name" "${@:2}"; }

if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  mapfile -t targets < <(fuzz list)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets found in $fuzz_dir" >&2; exit 1; }

# -s none: no sanitizer, works on stable; libFuzzer's coverage instrumentation still applies.
# -a: debug assertions (integer overflow checks) on, so arithmetic bugs count as crashes too.
build_flags=(-s none -a)
start=$SECONDS
echo "== fuzz: building the fuzz crate (${targets[*]} run below)"
fuzz build "${build_flags[@]}"
echo "== fuzz: built in $((SECONDS - start))s"

# libFuzzer writes new inputs into the first corpus directory: give it a scratch one, and the
# committed seeds as a read-only second one, so a CI run leaves the tree clean.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  seeds="$fuzz_name/corpus/$t"
  corpus=("$scratch/$t")
  mkdir -p "$scratch/$t"
  if [ -d "$seeds" ]; then corpus+=("$seeds"); fi
  artifacts="$fuzz_dir/artifacts/$t"
  mkdir -p "$artifacts"
  # Inputs left by an earlier run are not this run's findings.
  before=$(find "$artifacts" -type f | sort)
  echo "== fuzz: $t (${#corpus[@]} corpus dir(s), up to ${seconds}s / $runs runs)"
  t0=$SECONDS
  if fuzz run "${build_flags[@]}" "$t" "${corpus[@]}" -- \
    -runs="$runs" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
    >"$scratch/$t.log" 2>&1; then
    echo "   ok in $((SECONDS - t0))s: $(grep -E '^(Done|stat::number_of_executed_units)' "$scratch/$t.log" | tr '\n' ' ')"
  else
    status=$?
    # The panic message sits above cargo-fuzz's summary; show both.
    grep -m1 -A4 'panicked at' "$scratch/$t.log" || true
    tail -n 40 "$scratch/$t.log"
    new=$(comm -13 <(echo "$before") <(find "$artifacts" -type f | sort) | grep -v '^$' || true)
    echo "!! fuzz: $t FAILED (exit $status) after $((SECONDS - t0))s" >&2
    if [ -n "$new" ]; then
      while read -r f; do
        echo "!! crashing input: $f" >&2
        echo "!! reproduce: cargo fuzz run --fuzz-dir $fuzz_dir ${build_flags[*]} $t $f" >&2
      done <<<"$new"
    else
      echo "!! no crashing input was written (see the log above)" >&2
    fi
    failed+=("$t")
  fi
done

echo "== fuzz: done in $((SECONDS - all_start))s ($((SECONDS - start))s build + runs)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "!! fuzz: failing targets: ${failed[*]}" >&2
  exit 1
fi
