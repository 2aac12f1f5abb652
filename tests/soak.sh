#!/usr/bin/env bash
# Soak with churn (issue 14): starts target/debug/meteord (or $METEORD_BIN)
# on free loopback ports and runs tests/soak.py against it: connects and
# disconnects, slow and stalled readers, half-sent heads, publishers at a
# high rate, SIGHUP every minute. At the end the daemon's fds, threads and
# RSS must be back at the baseline taken after a warm-up (see soak.py for
# the margins), and the daemon must still answer.
#
#   tests/soak.sh            # 30 minutes (the documented soak)
#   tests/soak.sh --short    # 60 seconds, SIGHUP every 15 s (tests/run.sh)
#   SOAK_SECONDS=600 tests/soak.sh   # any other length
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
meteord=${METEORD_BIN:-$root/target/debug/meteord}
seconds=${SOAK_SECONDS:-1800}
hup=60
warmup=60
rate=2000
if [[ "${1:-}" == "--short" ]]; then
    seconds=60
    hup=15
    warmup=10
    rate=500
fi
[[ -x "$meteord" ]] || { echo "soak: no meteord at $meteord (cargo build -p meteord)" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
sub=$(free_port)
ctl=$(free_port)
while [[ "$ctl" == "$sub" ]]; do ctl=$(free_port); done
met=$(free_port)
while [[ "$met" == "$sub" || "$met" == "$ctl" ]]; do met=$(free_port); done

# WriteTimeout 5 and HeaderTimeout 3: the stalled readers and half-sent
# heads are cut within the run, many times over.
"$meteord" -Foreground 1 -ConfigFileLocation /nonexistent -MetricsPort "$met" \
    -SubscriberIP 127.0.0.1 -SubscriberPort "$sub" -ControllerPort "$ctl" \
    -SubscriberDocumentRoot "$root/public" -StateFile "$work/meteord.state" \
    -SyslogFacility none -LogFilename "$work/meteord.log" \
    -WriteTimeout 5 -HeaderTimeout 3 &
pid=$!
for _ in $(seq 100); do
    grep -q "meteord listening" "$work/meteord.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "meteord listening" "$work/meteord.log" || { echo "soak: meteord did not start" >&2; cat "$work/meteord.log" >&2; exit 1; }

status=0
python3 "$root/tests/soak.py" --sub "$sub" --ctl "$ctl" --pid "$pid" --metrics "$met" \
    --seconds "$seconds" --warmup "$warmup" --hup "$hup" --rate "$rate" || status=$?
if ! kill -0 "$pid" 2>/dev/null; then
    echo "soak: FAIL: meteord is gone" >&2
    status=1
fi
if grep -q "panicked" "$work/meteord.log"; then
    echo "soak: FAIL: meteord logged a panic" >&2
    grep -m5 "panicked" "$work/meteord.log" >&2
    status=1
fi
reloads=$(grep -c "configuration reloaded" "$work/meteord.log" || true)
echo "soak: SIGHUP reloads logged: $reloads" >&2
# The suite contract of tests/run.sh: the last line counts the result.
if [[ "$status" -eq 0 ]]; then
    echo "soak: 1 passed, 0 failed"
else
    echo "soak: 0 passed, 1 failed"
fi
exit "$status"
