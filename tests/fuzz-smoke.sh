#!/usr/bin/env bash
# Smoke run of every cargo-fuzz target (fuzz/, docs/fuzzing.md) so none can
# rot: builds them all in one cargo invocation (nightly toolchain), then
# runs each for a bounded time from its committed seeds (fuzz/corpus/<t>/,
# copied, so the committed corpus is never changed), and fails a target on
# any crash, failed assertion, timeout or memory blow-up. Installs
# cargo-fuzz from crates.io when it is missing. Last line:
# `fuzz-smoke: N passed, M failed` (one per target).
#
# Env: FUZZ_SMOKE_SECONDS (default 10) per target; FUZZ_TARGETS to run a
# subset (space-separated names).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SMOKE_SECONDS:-10}
cargo_fuzz_version=0.13.2
# No sanitizer: the crates forbid unsafe code, so AddressSanitizer would
# find nothing the Rust checks do not, at half the speed. Debug assertions
# on, so arithmetic overflow panics like in a test build.
fuzz_flags=(--sanitizer none --debug-assertions)
work=$(mktemp -d --suffix=.fuzz-smoke)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1${2:+: $2}"; }
finish() { echo "fuzz-smoke: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit; }

if ! cargo +nightly --version >/dev/null 2>&1; then
    fail toolchain "no nightly toolchain (rustup toolchain install nightly)"
    finish
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
    echo "fuzz-smoke: installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked --quiet || {
        fail install "cargo install cargo-fuzz failed"
        finish
    }
fi

mapfile -t all < <(cd fuzz && cargo +nightly fuzz list)
targets=(${FUZZ_TARGETS:-${all[*]}})
if [ ${#targets[@]} -eq 0 ]; then
    fail list "no fuzz targets found"
    finish
fi

echo "fuzz-smoke: building ${#targets[@]} targets"
if ! cargo +nightly fuzz build "${fuzz_flags[@]}" >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log"
    for t in "${targets[@]}"; do fail "$t" "build failed"; done
    finish
fi

# The document target builds its file tree under TMPDIR: keep it in $work.
export TMPDIR=$work
for t in "${targets[@]}"; do
    seeds=fuzz/corpus/$t
    if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
        fail "$t" "no seeds in $seeds"
        continue
    fi
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    log=$work/$t.log
    cargo +nightly fuzz run "${fuzz_flags[@]}" "$t" "$work/corpus/$t" "$seeds" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" >"$log" 2>&1
    rc=$?
    runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$')
    if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
        pass "$t ($runs runs in ${seconds}s)"
    else
        grep -E -m 5 'panicked|ERROR|SUMMARY|Test unit written' "$log"
        tail -n 20 "$log"
        fail "$t" "exit $rc (log above; inputs in fuzz/artifacts are kept by 'cargo fuzz run' only)"
        mkdir -p fuzz/artifacts/"$t"
        cp "$work/artifacts/$t/"* fuzz/artifacts/"$t"/ 2>/dev/null
    fi
done
finish
