# Sourced by the callgrind bench scripts (delivery-cost.sh, ping-cost.sh);
# needs $BIN (meteord) and $BENCH (meteor-bench).
# callgrind_run WORK NAME PING_INTERVAL BENCH_ARGS...: meteord under
# callgrind (pings every PING_INTERVAL s, no MaxTime) on free loopback
# ports, one bounded meteor-bench run against it with BENCH_ARGS (its JSON
# line in WORK/NAME.json), then prints the user-space instructions meteord
# ran over its whole life (Ir).
source "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

callgrind_run() {
    local work=$1 name=$2 ping=$3
    shift 3
    local sub ctl vp
    sub=$(free_port)
    ctl=$(free_port)
    valgrind --tool=callgrind --callgrind-out-file="$work/$name.cg" "$BIN" -Foreground 1 \
        -ConfigFileLocation /nonexistent -SubscriberIP 127.0.0.1 -ControllerIP 127.0.0.1 \
        -SubscriberPort "$sub" -ControllerPort "$ctl" -MetricsPort 0 -PingInterval "$ping" \
        -MaxTime 0 -StateFile "$work/$name.state" >"$work/$name.log" 2>&1 &
    vp=$!
    wait_port "$sub"
    wait_port "$ctl"
    timeout 300 "$BENCH" "$@" --target "127.0.0.1:$sub" --controller "127.0.0.1:$ctl" \
        --json-out "$work/$name.json" >/dev/null 2>"$work/$name.bench" || true
    kill -TERM "$vp"
    wait "$vp" || true
    awk '/^(summary|totals):/ {print $2; exit}' "$work/$name.cg"
}
