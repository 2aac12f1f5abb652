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
source "$root/bench/callgrind.sh"
work=$(mktemp -d --suffix=.ping-cost)
trap 'rm -rf "$work"' EXIT
args=(-s idle -n "$N" -d "$D" --mode "$MODE")
silent=$(callgrind_run "$work" p0 0 "${args[@]}")
pinging=$(callgrind_run "$work" p3 3 "${args[@]}")
# About N * D / 3 pings (every connection once per interval).
pings=$((N * D / 3))
echo "$BIN $MODE: N=$N D=${D}s Ir PingInterval 0=$silent 3=$pinging ~$pings pings: $(( (pinging - silent) / pings )) Ir per ping"
