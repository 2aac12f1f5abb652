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
source "$root/bench/callgrind.sh"
work=$(mktemp -d --suffix=.delivery-cost)
trap 'rm -rf "$work"' EXIT
common=(-n "$N" -d "$D" --mode "$MODE")
idle=$(callgrind_run "$work" idle 0 -s idle "${common[@]}")
fanout=$(callgrind_run "$work" fanout 0 -s fanout -r "$R" "${common[@]}")
deliveries=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["deliveries"])' "$work/fanout.json")
python3 - "$idle" "$fanout" "$deliveries" "$N" "$R" "$D" "$BIN" <<'PY'
import sys
idle, fan, d, n, r, dur, binary = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
print(f"{binary}: N={n} R={r}/s D={dur}s deliveries={d} Ir idle={idle:,} fanout={fan:,} "
      f"Ir/delivery={(fan - idle) / max(d, 1):,.0f}")
PY
