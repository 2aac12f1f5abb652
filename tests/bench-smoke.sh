#!/usr/bin/env bash
# Smoke run of the load generator (meteor-bench) so it cannot rot: starts
# target/debug/meteord on free loopback ports, runs a tiny run of every
# scenario and mode (eventsource included) (N = 50, a few seconds each), and checks that each run
# exits 0, prints one JSON line that parses, connected everyone and lost
# nothing. Then the same against nginx + Nchan (bench/nchan.conf.in) when
# the module is installed. Last line: `bench-smoke: N passed, M failed`.
#
# Env: METEORD_BIN, METEOR_BENCH_BIN override the binaries (default
# target/debug/...; without METEOR_BENCH_BIN, meteor-bench is built first).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
meteord=${METEORD_BIN:-$root/target/debug/meteord}
bench=${METEOR_BENCH_BIN:-$root/target/debug/meteor-bench}
work=$(mktemp -d --suffix=.bench-smoke)
pids=()
passed=0
failed=0

cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1${2:+: $2}"; }

# Two free loopback ports, chosen by the OS.
free_ports() {
    python3 -c 'import socket
ss=[socket.socket() for _ in range('"$1"')]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

# Waits (bounded: 10 s) until 127.0.0.1:$1 accepts connections.
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# check NAME N JSONFILE: the JSON line parses, everyone connected, no loss.
check_json() {
    python3 - "$2" "$3" <<'PY'
import json, sys
n = int(sys.argv[1])
lines = [l for l in open(sys.argv[2]) if l.strip()]
assert len(lines) == 1, f"expected one JSON line, got {len(lines)}"
r = json.loads(lines[0])
assert r["connect"]["connected"] == n, f"connected {r['connect']['connected']} of {n}"
assert r["lost"] == 0, f"lost {r['lost']}"
assert r["duplicated"] == 0, f"duplicated {r['duplicated']}"
assert r["publish"]["errors"] == 0, f"publish errors {r['publish']['errors']}"
assert r["deliveries"] == r["expected"], f"deliveries {r['deliveries']} != expected {r['expected']}"
if r["scenario"] != "idle":
    assert r["expected"] > 0, "nothing was expected: publisher sent nothing"
    assert r["latency_us"]["count"] == r["deliveries"], "latency samples != deliveries"
if r["scenario"] == "storm":
    assert r["storm"]["connected"] == n, f"storm reconnected {r['storm']['connected']} of {n}"
assert r["ok"] is True
PY
}

# run NAME N ARGS...: one bounded run of meteor-bench.
run() {
    local name=$1 n=$2
    shift 2
    local out="$work/$name.json"
    local rc=0
    timeout 120 "$bench" -n "$n" "$@" --json-out "$work/all.jsonl" >"$out" 2>"$work/$name.err" || rc=$?
    if [[ $rc -ne 0 ]]; then
        fail "$name" "exit status $rc: $(grep -E 'lost|error|FAILED' "$work/$name.err" | tr '\n' ' ')"
        return
    fi
    local why
    if why=$(check_json "$name" "$n" "$out" 2>&1); then
        pass "$name"
    else
        fail "$name" "$(echo "$why" | tail -n 1)"
    fi
}

# refuses_non_loopback NAME ARGS...: meteor-bench ARGS must fail, saying why.
refuses_non_loopback() {
    local name=$1
    shift
    if "$bench" "$@" >/dev/null 2>"$work/guard.err"; then
        fail "$name" "it ran"
    elif grep -q loopback "$work/guard.err"; then
        pass "$name"
    else
        fail "$name" "$(cat "$work/guard.err")"
    fi
}

# Build (or refresh) the generator unless a binary was given; cheap when
# it is up to date, and it never downloads (dependencies are locked).
if [[ -z "${METEOR_BENCH_BIN:-}" ]]; then
    (cd "$root" && cargo build -q -p meteor-bench) || { echo "bench-smoke: cannot build meteor-bench"; echo "bench-smoke: 0 passed, 1 failed"; exit 1; }
fi

# --- the generator's own guard rails ---
refuses_non_loopback "refuses a non-loopback target" -s idle -n 1 --target 10.1.2.3:80

# --- against meteord ---
read -r sub ctl < <(free_ports 2)
if [[ ! -x "$meteord" ]]; then
    fail "meteord binary at $meteord" "missing (cargo build -p meteord)"
else
    "$meteord" -Foreground 1 -ConfigFileLocation /nonexistent -MetricsPort 0 -SubscriberIP 127.0.0.1 \
        -SubscriberPort "$sub" -ControllerPort "$ctl" -SubscriberDocumentRoot "$root/public" \
        -StateFile "$work/meteord.state" >"$work/meteord.log" 2>&1 &
    mpid=$!
    pids+=("$mpid")
    if wait_port "$sub" && wait_port "$ctl"; then
        m=(--target "127.0.0.1:$sub" --controller "127.0.0.1:$ctl" --server-pid "$mpid" --label meteord --drain-ms 500 --settle-ms 200)
        run meteord-idle 50 -s idle -d 1 "${m[@]}"
        run meteord-fanout-xhrinteractive 50 -s fanout -d 2 -r 5 "${m[@]}"
        run meteord-fanout-iframe 50 -s fanout -d 2 -r 5 --mode iframe "${m[@]}"
        run meteord-fanout-longpoll 50 -s fanout -d 2 -r 5 --mode longpoll "${m[@]}"
        run meteord-many-channels 50 -s many-channels -d 2 -r 50 "${m[@]}"
        run meteord-max-throughput 50 -s max-throughput -d 2 "${m[@]}"
        run meteord-storm 50 -s storm -d 3 -c 5 "${m[@]}"
        # EventSource (issue 12): deliveries counted by id, the storm resumes
        # with Last-Event-ID.
        run meteord-fanout-eventsource 50 -s fanout -d 2 -r 5 --mode eventsource "${m[@]}"
        run meteord-storm-eventsource 50 -s storm -d 3 -c 5 --mode eventsource "${m[@]}"
        # WebSocket (issue 12): frames, pongs, and a storm resumed by since.
        run meteord-fanout-websocket 50 -s fanout -d 2 -r 5 --mode websocket "${m[@]}"
        run meteord-storm-websocket 50 -s storm -d 3 -c 5 --mode websocket "${m[@]}"
        run meteord-two-workers 50 -s fanout -d 2 -r 5 --workers 2 "${m[@]}"
        # Full histories before the window: 20 per channel, none counted.
        run meteord-prefill 50 -s many-channels -d 2 -r 50 --prefill 20 "${m[@]}"
        if [[ -s "$work/meteord-prefill.json" ]]; then
            got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prefilled"])' "$work/meteord-prefill.json")
            if [[ "$got" == 100 ]]; then pass "prefill published 20 x 5 channels"; else fail "prefill published 20 x 5 channels" "prefilled $got"; fi
        fi
    else
        fail "meteord starts" "$(tail -n 5 "$work/meteord.log")"
    fi
fi

# --- against the bare server (the yardstick: one write per subscriber) ---
refuses_non_loopback "bare server refuses a non-loopback address" --bare-server --listen 10.1.2.3:0
"$bench" --bare-server >"$work/bare.out" 2>"$work/bare.err" &
pids+=("$!")
bpid=$!
for _ in $(seq 1 100); do grep -q listening "$work/bare.out" && break; sleep 0.1; done
if read -r _ _ _ bsub bctl <"$work/bare.out" && [[ -n "$bctl" ]]; then
    b=(--target "$bsub" --controller "$bctl" --server-pid "$bpid" --label bare --drain-ms 500 --settle-ms 200)
    run bare-idle 50 -s idle -d 1 "${b[@]}"
    run bare-fanout 50 -s fanout -d 2 -r 5 "${b[@]}"
    run bare-many-channels 50 -s many-channels -d 2 -r 50 --workers 2 "${b[@]}"
else
    fail "bare server starts" "$(cat "$work/bare.err")"
fi

# --- the capabilities' own benchmark scripts (issue 15), tiny ---
# The cluster: three nodes on a private redis-server (hold, fan-out on one
# node against a single node, publishes through Redis).
if command -v redis-server >/dev/null; then
    rc=0
    N=90 HOLD_SECS=1 FANOUT_SECS=2 PUBLISHES=600 PUBLISHERS=2 WINDOW=8 OUT="$work/cluster.jsonl" \
        METEORD_BIN="$meteord" METEOR_BENCH_BIN="$bench" timeout 300 "$root/bench/cluster.sh" \
        >/dev/null 2>"$work/cluster.err" || rc=$?
    if [[ $rc -eq 0 ]] && why=$(python3 - "$work/cluster.jsonl" <<'PY' 2>&1
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
publish = [r for r in runs if r.get("label") == "cluster-publish"]
bench = [r for r in runs if r.get("label") != "cluster-publish"]
assert len(bench) == 5, f"{len(bench)} meteor-bench runs, expected 3 holds + 2 fan-outs"
for r in bench:
    assert r["ok"] and r["lost"] == 0 and r["duplicated"] == 0, f"{r['label']}: not ok"
assert publish and publish[0]["acked"] == 600 and publish[0]["errors"] == 0, f"publish: {publish}"
PY
    ); then pass "bench/cluster.sh (3 nodes, Redis)"; else fail "bench/cluster.sh (3 nodes, Redis)" "exit $rc $(echo "$why" | tail -n 1) $(tail -n 2 "$work/cluster.err" | tr '\n' ' ')"; fi
else
    fail "bench/cluster.sh" "redis-server not installed (tests/install-deps.sh)"
fi
# The history file: every fsync policy against off.
rc=0
METEORD_BIN="$meteord" BENCH_DIR="$work" SECONDS_PER_CASE=1 CASES="off no everysec always" CONNS=2 \
    timeout 120 "$root/bench/history.sh" >"$work/history.out" 2>"$work/history.err" || rc=$?
if [[ $rc -eq 0 && $(grep -cE '^(off|no|everysec|always) +[0-9]+ msg/s' "$work/history.out") -eq 4 ]]; then
    pass "bench/history.sh (off, no, everysec, always)"
else
    fail "bench/history.sh" "exit $rc: $(tail -n 3 "$work/history.err" "$work/history.out" | tr '\n' ' ')"
fi
# Tokens: connection setup with a token check against without.
rc=0
BIN="$meteord" BENCH="$bench" N=50 ROUNDS=1 timeout 120 "$root/bench/token-setup.sh" \
    >"$work/tokens.out" 2>"$work/tokens.err" || rc=$?
if [[ $rc -eq 0 && $(grep -cE '^round=1 (none|token) +connect: 50 ok, 0 failed' "$work/tokens.out") -eq 2 ]]; then
    pass "bench/token-setup.sh (with and without a token check)"
else
    fail "bench/token-setup.sh" "exit $rc: $(tr '\n' ' ' <"$work/tokens.out") $(tail -n 2 "$work/tokens.err")"
fi

# --- against nginx + Nchan (the peer), when installed ---
if command -v nginx >/dev/null && [[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ]]; then
    read -r nport < <(free_ports 1)
    if worker=$("$root/bench/nchan.sh" "$nport" "$work/nchan"); then
        pids+=("$(cat "$work/nchan/nginx.pid")")
        c=(--target "127.0.0.1:$nport" --server-pid "$worker" --label nchan --drain-ms 500 --settle-ms 200)
        run nchan-fanout-eventsource 50 -s fanout -d 2 -r 5 --mode nchan-eventsource "${c[@]}"
        run nchan-fanout-chunked 50 -s fanout -d 2 -r 5 --mode nchan-chunked "${c[@]}"
        run nchan-fanout-websocket 50 -s fanout -d 2 -r 5 --mode nchan-websocket "${c[@]}"
        run nchan-max-throughput 50 -s max-throughput -d 2 --mode nchan-eventsource "${c[@]}"
        run nchan-storm 50 -s storm -d 3 -c 5 --mode nchan-eventsource "${c[@]}"
    else
        fail "nginx + nchan starts" "$(tail -n 5 "$work/nchan/error.log" 2>/dev/null)"
    fi
else
    echo "skip - nginx + libnginx-mod-nchan not installed: peer smoke runs skipped"
fi

# --json-out appended one line per run.
runs=$(find "$work" -name '*.json' -size +0 | wc -l)
lines=$(wc -l <"$work/all.jsonl" 2>/dev/null || echo 0)
if [[ "$runs" -gt 0 && "$lines" -eq "$runs" ]]; then
    pass "--json-out has one line per run ($lines)"
else
    fail "--json-out has one line per run" "$lines lines for $runs runs"
fi

echo "bench-smoke: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
