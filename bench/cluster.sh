#!/usr/bin/env bash
# Cluster benchmark (issue 13): a private redis-server and NODES meteord
# nodes on it, all on loopback.
#  1. hold: N subscribers in total, N/NODES per node, all at once (more than
#     one process can hold); RSS per subscriber per node (meteor-bench idle,
#     one instance per node, run in parallel);
#  2. fan-out: meteor-bench fanout with N/NODES subscribers on one cluster
#     node (every publish makes the Redis round trip), then the same on a
#     single node (no ClusterRedis): latency percentiles side by side;
#  3. publish: PUBLISHERS connections spread over the nodes publish as fast
#     as they are acknowledged (WINDOW in flight each); acknowledged
#     messages/s, p50/p99 ack latency, and Redis CPU per message (INFO cpu
#     used_cpu_sys+used_cpu_user before and after).
# Appends meteor-bench's JSON lines and the publish figures to
# bench/results/<stamp>-cluster.jsonl and prints a summary.
#
# Usage: bench/cluster.sh            (N=51000: >= 50,000 in total)
#        N=900 PUBLISHES=5000 bench/cluster.sh   (quick check)
# Needs: cargo build --release -p meteord -p meteor-bench (or METEORD_BIN /
# METEOR_BENCH_BIN), redis-server, python3. Every phase is bounded.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
meteord=${METEORD_BIN:-$root/target/release/meteord}
bench=${METEOR_BENCH_BIN:-$root/target/release/meteor-bench}
nodes=${NODES:-3}
n=${N:-51000}
hold=${HOLD_SECS:-5}
fanout_secs=${FANOUT_SECS:-10}
publishes=${PUBLISHES:-100000}
publishers=${PUBLISHERS:-6}
window=${WINDOW:-64}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${OUT:-$root/bench/results/$stamp-cluster.jsonl}
per_node=$((n / nodes))
work=$(mktemp -d --suffix=.bench-cluster)
mkdir -p "$(dirname "$out")"
pids=()

for bin in "$meteord" "$bench"; do
    [[ -x $bin ]] || { echo "missing $bin (cargo build --release -p meteord -p meteor-bench)" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "redis-server missing (tests/install-deps.sh)" >&2; exit 1; }

cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# free_port, wait_port
source "$root/bench/ports.sh"

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --maxmemory-policy noeviction --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$redis_port"
url="redis://127.0.0.1:$redis_port/0"

# start_node NAME [ARGS...]: prints "pid sub ctl".
start_node() {
    local name=$1 sub ctl
    shift
    sub=$(free_port)
    ctl=$(free_port)
    "$meteord" -Foreground 1 -ConfigFileLocation /nonexistent -SyslogFacility none -MetricsPort 0 \
        -SubscriberIP 127.0.0.1 -SubscriberPort "$sub" -ControllerPort "$ctl" \
        -SubscriberDocumentRoot "$root/public" "$@" >"$work/$name.log" 2>&1 &
    echo "$! $sub $ctl"
}

declare -a node_pid node_sub node_ctl
for i in $(seq 0 $((nodes - 1))); do
    read -r p s c < <(start_node "node$i" -ClusterRedis "$url")
    node_pid[i]=$p; node_sub[i]=$s; node_ctl[i]=$c
    pids+=("$p")
done
for i in $(seq 0 $((nodes - 1))); do wait_port "${node_sub[i]}"; wait_port "${node_ctl[i]}"; done

echo "== 1. hold $n subscribers over $nodes nodes ($per_node each)" >&2
hold_pids=()
for i in $(seq 0 $((nodes - 1))); do
    timeout 600 "$bench" -s idle -n "$per_node" -d "$hold" --workers 2 \
        --target "127.0.0.1:${node_sub[i]}" --controller "127.0.0.1:${node_ctl[i]}" \
        --server-pid "${node_pid[i]}" --label "cluster-node$i-idle" \
        --json-out "$out" >/dev/null 2>"$work/idle$i.err" &
    hold_pids+=($!)
done
for pid in "${hold_pids[@]}"; do wait "$pid" || echo "(an idle run exited $?)" >&2; done
for i in $(seq 0 $((nodes - 1))); do tail -n 3 "$work/idle$i.err" >&2; done

echo "== 2. fan-out, $per_node subscribers: cluster node vs single node" >&2
timeout 600 "$bench" -s fanout -n "$per_node" -d "$fanout_secs" --workers 2 \
    --target "127.0.0.1:${node_sub[0]}" --controller "127.0.0.1:${node_ctl[0]}" \
    --server-pid "${node_pid[0]}" --label cluster-node-fanout --json-out "$out" \
    >/dev/null 2>"$work/fanout-cluster.err" || echo "(cluster fan-out exited $?)" >&2
tail -n 4 "$work/fanout-cluster.err" >&2
read -r sp ss sc < <(start_node single)
pids+=("$sp")
wait_port "$ss"; wait_port "$sc"
timeout 600 "$bench" -s fanout -n "$per_node" -d "$fanout_secs" --workers 2 \
    --target "127.0.0.1:$ss" --controller "127.0.0.1:$sc" \
    --server-pid "$sp" --label single-node-fanout --json-out "$out" \
    >/dev/null 2>"$work/fanout-single.err" || echo "(single fan-out exited $?)" >&2
tail -n 4 "$work/fanout-single.err" >&2
kill "$sp" 2>/dev/null || true

echo "== 3. $publishes publishes through Redis ($publishers connections, window $window)" >&2
ctls=$(for i in $(seq 0 $((nodes - 1))); do printf '%s ' "${node_ctl[i]}"; done)
timeout 600 python3 - "$redis_port" "$publishes" "$publishers" "$window" $ctls <<'EOF' | tee -a "$out"
import json, socket, sys, threading, time

redis_port, total, conns, window = map(int, sys.argv[1:5])
ctl_ports = [int(p) for p in sys.argv[5:]]

def redis_cpu():
    s = socket.create_connection(("127.0.0.1", redis_port))
    s.sendall(b"INFO cpu\r\n")
    data = b""
    while b"used_cpu_user:" not in data or not data.endswith(b"\r\n"):
        data += s.recv(65536)
    fields = dict(l.split(":", 1) for l in data.decode().split("\r\n") if ":" in l)
    return float(fields["used_cpu_sys"]) + float(fields["used_cpu_user"])

latencies, errors, lock = [], [0], threading.Lock()

def publisher(port, count, k):
    c = socket.create_connection(("127.0.0.1", port))
    text = b"x" * 100
    sent = acked = 0
    times, buf, mine = {}, b"", []
    while acked < count:
        while sent < count and sent - acked < window:
            c.sendall(b"ADDMESSAGE bench%d %s\n" % (sent % 100, text))
            times[sent] = time.perf_counter()
            sent += 1
        data = c.recv(65536)
        if not data:
            break
        buf += data
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if not line.startswith(b"OK\t"):
                with lock:
                    errors[0] += 1
            mine.append(time.perf_counter() - times.pop(acked))
            acked += 1
    with lock:
        latencies.extend(mine)

cpu0 = redis_cpu()
start = time.perf_counter()
each = total // conns
threads = [threading.Thread(target=publisher, args=(ctl_ports[k % len(ctl_ports)], each, k))
           for k in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.perf_counter() - start
cpu = redis_cpu() - cpu0
latencies.sort()
done = len(latencies)
print(json.dumps({
    "label": "cluster-publish",
    "acked": done - errors[0], "errors": errors[0],
    "acked_per_s": round((done - errors[0]) / elapsed),
    "ack_p50_ms": round(latencies[done // 2] * 1000, 3),
    "ack_p99_ms": round(latencies[int(done * 0.99)] * 1000, 3),
    "redis_cpu_us_per_msg": round(cpu / max(done, 1) * 1e6, 1),
    "connections": conns, "window": window, "nodes": len(ctl_ports),
}))
EOF
echo "results: $out" >&2
