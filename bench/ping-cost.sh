#!/bin/bash
# Used for the clock-written pings A/B (issue 15); BIN= and BENCH= pick the binaries.
# Ir per ping: callgrind meteord holding N idle subscribers for D seconds,
# PingInterval P vs 0.
set -e
BIN=${BIN:-/work/main/target/release/meteord}
BENCH=${BENCH:-/work/main/target/release/meteor-bench}
N=${N:-1000}; D=${D:-12}
for P in 0 3; do
  out=/tmp/pc-$P.out
  valgrind --tool=callgrind --callgrind-out-file=$out $BIN -SubscriberIP 127.0.0.1 -ControllerIP 127.0.0.1 -SubscriberPort 27990 -ControllerPort 27991 -PingInterval $P -MetricsPort 0 -SyslogFacility none -Debug 0 -MaxTime 0 >/dev/null 2>/tmp/pc-$P.err &
  vp=$!
  sleep 4
  $BENCH -s idle -n $N -d $D --target 127.0.0.1:27990 --controller 127.0.0.1:27991 >/dev/null 2>/tmp/pc-bench-$P.err || true
  kill -TERM $vp; wait $vp || true
  echo "P=$P Ir=$(grep -E '^summary|^totals' $out | head -1)"
done
