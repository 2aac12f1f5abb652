#!/usr/bin/env bash
# Publish throughput and acknowledgement latency with HistoryFile off and
# with each HistoryFsync policy (docs/history.md, BENCHMARKS.md): for each
# case a fresh meteord (no subscribers, MaxMessagesPerChannel 250) on free
# loopback ports and a history file under $BENCH_DIR (default: a temporary
# directory; put it on the disk you mean to measure, not tmpfs), then
# CONNS controller connections, each sending batches of BATCH ADDMESSAGE
# lines of BYTES bytes and reading the replies, for SECONDS seconds.
# Prints one line per case: messages/s, ratio to the first case (off),
# meteord's CPU time (user + system) per message — steadier than the rate
# on a shared machine —, batch round-trip percentiles (one batch = BATCH
# acknowledgements), file size at the end.
#
# Usage: bench/history.sh            (defaults below)
# Env: METEORD_BIN (default target/release/meteord, else target/debug),
#      CONNS=8 BATCH=32 BYTES=200 SECONDS=10 CASES="off no everysec always"
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
meteord=${METEORD_BIN:-}
if [[ -z "$meteord" ]]; then
    meteord=$root/target/release/meteord
    [[ -x "$meteord" ]] || meteord=$root/target/debug/meteord
fi
conns=${CONNS:-8}
batch=${BATCH:-32}
bytes=${BYTES:-200}
seconds=${SECONDS_PER_CASE:-${SECONDS:-10}}
cases=${CASES:-"off no everysec always"}
work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/history-bench.XXXXXX")
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    [[ -n "${KEEP_LOG:-}" ]] && cp "$work/log" "$KEEP_LOG" 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT

# free_port, wait_port
source "$root/bench/ports.sh"

echo "meteord: $meteord; $conns connections x batches of $batch, $bytes-byte messages, ${seconds}s per case; file in $work"
base=""
for case in $cases; do
    sp=$(free_port)
    cp=$(free_port)
    rm -f "$work/h" "$work/ids"
    args=(-Foreground 1 -ConfigFileLocation /nonexistent -SyslogFacility none
        -LogFilename "$work/log" -SubscriberIP 127.0.0.1 -SubscriberPort "$sp"
        -ControllerPort "$cp" -StateFile "$work/ids" -MaxConnections 1000 -MetricsPort 0)
    if [[ "$case" != off ]]; then
        args+=(-HistoryFile "$work/h" -HistoryFsync "$case")
    fi
    "$meteord" "${args[@]}" &
    pid=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$cp") 2>/dev/null && break
        sleep 0.05
    done
    cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    result=$(python3 - "$cp" "$conns" "$batch" "$bytes" "$seconds" <<'PY'
import socket, sys, threading, time
port, conns, batch, size, seconds = (int(a) for a in sys.argv[1:])
text = b"x" * size
deadline = time.monotonic() + seconds
counts, rtts = [0] * conns, [[] for _ in range(conns)]
def run(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lines = b"".join(b"ADDMESSAGE c%d %s\n" % (n, text) for _ in range(batch))
    buf = b""
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        s.sendall(lines)
        got = 0
        while got < batch:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk
            got += buf.count(b"\n")
            if not buf.startswith(b"OK\t"):
                raise SystemExit("bad reply %r" % buf[:80])
            buf = buf[buf.rfind(b"\n") + 1:]
        rtts[n].append(time.monotonic() - t0)
        counts[n] += batch
threads = [threading.Thread(target=run, args=(n,)) for n in range(conns)]
start = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - start
all_rtt = sorted(r for l in rtts for r in l)
pct = lambda p: all_rtt[min(len(all_rtt) - 1, int(p * len(all_rtt)))] * 1000
print("%.0f %.2f %.2f %.2f %d" % (sum(counts) / elapsed, pct(0.5), pct(0.99), all_rtt[-1] * 1000, sum(counts)))
PY
)
    cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    size=$(stat -c %s "$work/h" 2>/dev/null || echo 0)
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    read -r rate p50 p99 max count <<<"$result"
    base=${base:-$rate}
    ratio=$(python3 -c "print('%.2f' % ($rate / $base))")
    ticks=$(getconf CLK_TCK)
    cpu=$(python3 -c "print('%.1f' % (($cpu1 - $cpu0) / $ticks * 1e6 / $count))")
    printf '%-9s %8s msg/s  %5sx  cpu %5s us/msg  batch p50 %7s ms  p99 %7s ms  max %7s ms  file %s bytes\n' \
        "$case" "$rate" "$ratio" "$cpu" "$p50" "$p99" "$max" "$size"
done
