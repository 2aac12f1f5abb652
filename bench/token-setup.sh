#!/bin/bash
# Used for the tokens row of BENCHMARKS.md (issue 14/15).
# Connection setup with a token check (SubscriberTokenChannels '*') against without, release, interleaved.
BIN=/work/main/target/release/meteord; BENCH=/work/main/target/release/meteor-bench
SECRET="bench secret, at least 32 bytes long"
TOKEN=$(python3 - "$SECRET" <<'PY'
import sys,hmac,hashlib,base64,json,time
b=lambda x: base64.urlsafe_b64encode(x).rstrip(b'=')
h=b(json.dumps({"alg":"HS256","typ":"JWT"}).encode()); c=b(json.dumps({"exp":int(time.time())+3600,"ch":["*"]}).encode())
s=b(hmac.new(sys.argv[1].encode(), h+b'.'+c, hashlib.sha256).digest())
print((h+b'.'+c+b'.'+s).decode())
PY
)
for round in 1 2 3; do for kind in none token; do
  extra=(); targs=()
  if [ $kind = token ]; then extra=(-SubscriberTokenSecret "$SECRET" -SubscriberTokenChannels '*'); targs=(--token "$TOKEN"); fi
  $BIN -Foreground 1 -ConfigFileLocation /nonexistent -SyslogFacility none -MetricsPort 0 -SubscriberIP 127.0.0.1 -SubscriberPort 27970 -ControllerPort 27971 "${extra[@]}" >/dev/null 2>&1 &
  pid=$!; sleep 0.4
  r=$($BENCH -s idle -n 10000 -d 1 --workers 2 --target 127.0.0.1:27970 --controller 127.0.0.1:27971 --server-pid $pid "${targs[@]}" 2>&1 | grep -E "^  connect:" )
  kill -TERM $pid; wait $pid 2>/dev/null
  echo "round=$round $kind $r"
done; done
