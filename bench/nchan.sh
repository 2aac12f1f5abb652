#!/usr/bin/env bash
# Starts nginx + Nchan (one worker) on 127.0.0.1:PORT in DIR, in the
# background; prints the worker's pid (the process to pass as --server-pid).
# Usage: bench/nchan.sh PORT DIR      Stop: kill "$(cat DIR/nginx.pid)"
set -euo pipefail
port=${1:?usage: nchan.sh PORT DIR}
dir=${2:?usage: nchan.sh PORT DIR}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/tmp"
sed "s/@PORT@/$port/" "$here/nchan.conf.in" > "$dir/nginx.conf"
if ! nginx -t -q -p "$dir/" -c "$dir/nginx.conf" 2>"$dir/config-test.log"; then
    cat "$dir/config-test.log" >&2
    exit 1
fi
nginx -p "$dir/" -c "$dir/nginx.conf" </dev/null >"$dir/stdout.log" 2>&1 &
for _ in $(seq 1 100); do
    if [[ -s "$dir/nginx.pid" ]]; then
        master=$(cat "$dir/nginx.pid")
        worker=$(pgrep -P "$master" | head -n1 || true)
        if [[ -n "$worker" ]] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$worker"
            exit 0
        fi
    fi
    sleep 0.1
done
echo "nchan.sh: nginx did not come up on port $port; see $dir/error.log" >&2
exit 1
