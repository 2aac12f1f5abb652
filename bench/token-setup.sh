#!/usr/bin/env bash
# Connection setup with a subscriber token check (SubscriberTokenChannels
# '*': every stream must show a valid HS256 token) against without, a
# fresh meteord per run, rounds interleaved (BENCHMARKS.md, tokens row).
# Prints one line per run: `round=R none|token   connect: ...` (meteor-bench's
# connect summary: connections, rate, server CPU).
#
# Usage: bench/token-setup.sh         (N=10000, ROUNDS=3, release build)
# Env: BIN, BENCH (default target/release/...), N, ROUNDS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$root/target/release/meteord}
BENCH=${BENCH:-$root/target/release/meteor-bench}
N=${N:-10000}
ROUNDS=${ROUNDS:-3}
SECRET="bench secret, at least 32 bytes long"
source "$root/bench/ports.sh"
TOKEN=$(python3 - "$SECRET" <<'PY'
import sys, hmac, hashlib, base64, json, time
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b'=')
h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
c = b(json.dumps({"exp": int(time.time()) + 3600, "ch": ["*"]}).encode())
s = b(hmac.new(sys.argv[1].encode(), h + b'.' + c, hashlib.sha256).digest())
print((h + b'.' + c + b'.' + s).decode())
PY
)
pid=""
trap '[[ -n "$pid" ]] && kill "$pid" 2>/dev/null; true' EXIT
for round in $(seq 1 "$ROUNDS"); do
    for kind in none token; do
        extra=()
        targs=()
        if [[ $kind == token ]]; then
            extra=(-SubscriberTokenSecret "$SECRET" -SubscriberTokenChannels '*')
            targs=(--token "$TOKEN")
        fi
        sub=$(free_port)
        ctl=$(free_port)
        "$BIN" -Foreground 1 -ConfigFileLocation /nonexistent -SyslogFacility none -MetricsPort 0 \
            -SubscriberIP 127.0.0.1 -SubscriberPort "$sub" -ControllerIP 127.0.0.1 -ControllerPort "$ctl" \
            "${extra[@]}" >/dev/null 2>&1 &
        pid=$!
        wait_port "$sub"
        wait_port "$ctl"
        r=$(timeout 120 "$BENCH" -s idle -n "$N" -d 1 --workers 2 --target "127.0.0.1:$sub" \
            --controller "127.0.0.1:$ctl" --server-pid "$pid" "${targs[@]}" 2>&1 | grep -E "^  connect:" || true)
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
        pid=""
        echo "round=$round $kind $r"
    done
done
