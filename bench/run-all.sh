#!/usr/bin/env bash
# Full benchmark: every scenario of BENCHMARKS.md against meteord (release
# build), against nginx + Nchan (one worker) and, for fan-out and
# many-channels, against meteord with pings off (neither peer pings) and the
# bare server (`meteor-bench --bare-server`: one
# write per subscriber and nothing else, the floor of this machine), in the
# same session, each run on a freshly started server. Appends one JSON line per run to
# bench/results/<stamp>.jsonl and prints the table (bench/table.py).
#
# Usage: bench/run-all.sh [quick|transports]
#   quick: small N, short runs.
#   transports: EventSource and WebSocket beside xhrinteractive and Nchan's
#   EventSource and WebSocket (servers meteord, meteord-eventsource,
#   meteord-websocket, nchan, nchan-websocket; table: table.py --transports).
# Needs: cargo build --release -p meteord -p meteor-bench; nginx and
# libnginx-mod-nchan installed. Every run is bounded (meteor-bench bounds
# each phase; `timeout` bounds the whole process).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
meteord=${METEORD_BIN:-$root/target/release/meteord}
bench=${METEOR_BENCH_BIN:-$root/target/release/meteor-bench}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${OUT:-$root/bench/results/$stamp.jsonl}
only=${ONLY:-}          # e.g. ONLY=fanout-1k to run one case
servers=${SERVERS:-"meteord meteord-noping nchan bare"}
# Two subscriber processes: one single-threaded worker caps connection
# setup at ~17,000/s and parsing at ~3 M deliveries/s on this machine.
workers=${WORKERS:-2}
work=$(mktemp -d --suffix=.bench-run)
mkdir -p "$(dirname "$out")"
server_pid=""

stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        # nginx is not our child: wait (bounded) until it is gone.
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        server_pid=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT

# free_port, wait_port
source "$root/bench/ports.sh"

# start_server NAME: sets server_pid (the process to sample) and target args.
start_server() {
    local port ctl
    port=$(free_port)
    case $1 in
    meteord | meteord-noping | meteord-eventsource | meteord-websocket)
        ctl=$(free_port)
        local pings=()
        # Neither the bare server nor Nchan pings: the like-for-like row.
        [[ $1 == meteord-noping ]] && pings=(-PingInterval 0)
        "$meteord" -Foreground 1 -ConfigFileLocation /nonexistent -MetricsPort 0 -SubscriberIP 127.0.0.1 \
            -SubscriberPort "$port" -ControllerPort "$ctl" -SubscriberDocumentRoot "$root/public" \
            "${pings[@]}" -StateFile "$work/meteord.state" >"$work/meteord.log" 2>&1 &
        server_pid=$!
        wait_port "$port"
        wait_port "$ctl"
        target=(--target "127.0.0.1:$port" --controller "127.0.0.1:$ctl" --label "$1")
        case $1 in
        meteord | meteord-noping) mode=(--mode xhrinteractive) ;;
        *) mode=(--mode "${1#meteord-}") ;;
        esac
        ;;
    bare)
        "$bench" --bare-server --threads 2 >"$work/bare.out" 2>"$work/bare.err" &
        server_pid=$!
        for _ in $(seq 1 100); do grep -q listening "$work/bare.out" && break; sleep 0.1; done
        local sub
        read -r _ _ _ sub ctl <"$work/bare.out"
        target=(--target "$sub" --controller "$ctl" --label bare)
        mode=(--mode xhrinteractive)
        ;;
    nchan | nchan-websocket)
        rm -rf "$work/nchan"
        local worker
        worker=$("$root/bench/nchan.sh" "$port" "$work/nchan" 2>"$work/nchan.err")
        server_pid=$(cat "$work/nchan/nginx.pid")
        sample_pid=$worker
        target=(--target "127.0.0.1:$port" --label "$1")
        case $1 in
        nchan) mode=(--mode nchan-eventsource) ;;
        *) mode=(--mode nchan-websocket) ;;
        esac
        return
        ;;
    esac
    sample_pid=$server_pid
}

# case NAME ARGS...: one run per server.
case_() {
    local name=$1
    shift
    if [[ -n "$only" && "$only" != "$name" ]]; then return; fi
    for srv in $servers; do
        # The bare server keeps no history and drops instead of waiting:
        # only fan-out and many-channels are meaningful against it.
        # meteord with pings off is the like-for-like row beside them.
        if [[ ($srv == bare || $srv == meteord-noping) && $name != fanout-* && $name != many-channels-* ]]; then
            continue
        fi
        start_server "$srv"
        echo "== $name / $srv" >&2
        timeout 900 "$bench" --workers "$workers" "$@" "${target[@]}" "${mode[@]}" --server-pid "$sample_pid" \
            --json-out "$out" >/dev/null || echo "(run $name/$srv exited $?)" >&2
        stop_server
        sleep 1
    done
}

if [[ "${1:-}" == transports ]]; then
    servers=${SERVERS:-"meteord meteord-eventsource meteord-websocket nchan nchan-websocket"}
    case_ idle-19k -s idle -n 19000 -d 3
    case_ fanout-10k -s fanout -n 10000 -d 20
    case_ many-channels-5k -s many-channels -n 5000 -c 500 -r 200 -d 20
    case_ storm-10k -s storm -n 10000 -c 100 -r 200 -d 20
    echo "results: $out" >&2
    python3 "$root/bench/table.py" --transports "$out"
    exit 0
elif [[ "${1:-}" == quick ]]; then
    case_ idle-1k -s idle -n 1000 -d 2
    case_ fanout-1k -s fanout -n 1000 -d 5
    case_ many-channels-1k -s many-channels -n 1000 -d 5
    case_ max-throughput-1k -s max-throughput -n 1000 -d 5
    case_ storm-1k -s storm -n 1000 -c 10 -r 100 -d 6
else
    case_ idle-1k -s idle -n 1000 -d 3
    case_ idle-10k -s idle -n 10000 -d 3
    case_ idle-19k -s idle -n 19000 -d 3
    case_ fanout-1k -s fanout -n 1000 -d 20
    case_ fanout-10k -s fanout -n 10000 -d 20
    case_ fanout-19k -s fanout -n 19000 -d 20
    case_ many-channels-5k -s many-channels -n 5000 -c 500 -r 200 -d 20
    case_ many-channels-19k -s many-channels -n 19000 -c 1900 -r 2000 -d 20
    case_ max-throughput-1k -s max-throughput -n 1000 -d 10
    case_ storm-10k -s storm -n 10000 -c 100 -r 200 -d 20
fi
echo "results: $out" >&2
python3 "$root/bench/table.py" "$out"
