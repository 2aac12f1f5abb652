#!/bin/bash
# User-space instructions per delivery (issue 15): callgrind counts every
# instruction meteord runs in user space, which is repeatable on this noisy
# machine where timings are not (perf's instructions:u is not supported in
# this VM). Two runs with N xhrinteractive subscribers for D seconds, pings
# off: one publishing nothing, one fan-out at R msg/s; the difference over
# the deliveries is the user-space cost of one delivery (publish parse,
# history, render, write path; the kernel's send is not counted).
#   BIN=path/to/meteord bench/delivery-cost.sh      # N=1000 R=4 D=10
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$root/target/release/meteord}
BENCH=${BENCH:-$root/target/release/meteor-bench}
N=${N:-1000}; R=${R:-4}; D=${D:-10}; MODE=${MODE:-xhrinteractive}
source "$root/bench/ports.sh"
work=$(mktemp -d --suffix=.delivery-cost)
trap 'rm -rf "$work"' EXIT
declare -A ir
for scenario in idle fanout; do
    sub=$(free_port); ctl=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$work/$scenario.cg" "$BIN" -Foreground 1 \
        -ConfigFileLocation /nonexistent -SubscriberIP 127.0.0.1 -ControllerIP 127.0.0.1 \
        -SubscriberPort "$sub" -ControllerPort "$ctl" -MetricsPort 0 -PingInterval 0 \
        -MaxTime 0 -StateFile "$work/state" >"$work/$scenario.log" 2>&1 &
    vp=$!
    wait_port "$sub" 600; wait_port "$ctl" 600
    args=(-s "$scenario" -n "$N" -d "$D" --mode "$MODE" --target "127.0.0.1:$sub" --controller "127.0.0.1:$ctl")
    [[ $scenario == fanout ]] && args+=(-r "$R")
    timeout 300 "$BENCH" "${args[@]}" --json-out "$work/$scenario.json" >/dev/null 2>"$work/$scenario.bench" || true
    kill -TERM "$vp"; wait "$vp" || true
    ir[$scenario]=$(awk '/^(summary|totals):/ {print $2; exit}' "$work/$scenario.cg")
done
deliveries=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["deliveries"])' "$work/fanout.json")
python3 - "${ir[idle]}" "${ir[fanout]}" "$deliveries" "$N" "$R" "$D" "$BIN" <<'PY'
import sys
idle, fan, d, n, r, dur, binary = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
print(f"{binary}: N={n} R={r}/s D={dur}s deliveries={d} Ir idle={idle:,} fanout={fan:,} "
      f"Ir/delivery={(fan - idle) / max(d, 1):,.0f}")
PY
