#!/bin/bash
# User-space instructions per ping (issue 15): callgrind meteord holding N
# idle MODE subscribers for D seconds, PingInterval 3 against 0; the
# difference over the pings sent is one ping's cost (for websocket it
# includes reading the pong). BIN= and BENCH= pick the binaries.
#   MODE=websocket bench/ping-cost.sh            # N=1000 D=12
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$root/target/release/meteord}
BENCH=${BENCH:-$root/target/release/meteor-bench}
N=${N:-1000}; D=${D:-12}; MODE=${MODE:-xhrinteractive}
source "$root/bench/ports.sh"
work=$(mktemp -d --suffix=.ping-cost)
trap 'rm -rf "$work"' EXIT
declare -A ir
for P in 0 3; do
    sub=$(free_port); ctl=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$work/$P.cg" "$BIN" -Foreground 1 \
        -ConfigFileLocation /nonexistent -SubscriberIP 127.0.0.1 -ControllerIP 127.0.0.1 \
        -SubscriberPort "$sub" -ControllerPort "$ctl" -MetricsPort 0 -PingInterval "$P" \
        -MaxTime 0 -StateFile "$work/state" >"$work/$P.log" 2>&1 &
    vp=$!
    wait_port "$sub"; wait_port "$ctl"
    timeout 300 "$BENCH" -s idle -n "$N" -d "$D" --mode "$MODE" --target "127.0.0.1:$sub" \
        --controller "127.0.0.1:$ctl" >/dev/null 2>"$work/$P.bench" || true
    kill -TERM "$vp"; wait "$vp" || true
    ir[$P]=$(awk '/^(summary|totals):/ {print $2; exit}' "$work/$P.cg")
done
# About N * D / 3 pings (every connection once per interval).
pings=$((N * D / 3))
echo "$BIN $MODE: N=$N D=${D}s Ir PingInterval 0=${ir[0]} 3=${ir[3]} ~$pings pings: $(( (ir[3] - ir[0]) / pings )) Ir per ping"
