#!/usr/bin/env bash
# End-to-end deployment suite: the SHIPPED files from conf/ and init/ run
# behind real servers -- a private Apache (mpm_event, mod_proxy, mod_fcgid)
# and a private nginx, the real meteord and fcgi-chat, headless Chromium --
# plus the SysV init script and the systemd units.
#
# The shipped files are copied to a temporary directory and templated there
# for ports, paths and the example host names only (sed on the copies); the
# originals are never changed. Everything listens on 127.0.0.1, on free
# ports; every wait is bounded; everything started here is stopped on exit.
#
# Needs: root (the SysV test creates the user "meteord", fcgi-chat runs as
# the user "fcgi-chat" in group www-data like fcgi-chat.service, Apache and
# nginx switch to www-data); apt packages apache2 libapache2-mod-fcgid nginx
# chromium curl systemd (for systemd-analyze); node with playwright-core
# installed by "npm ci" in tests/browser; binaries built
# (cargo build -p meteord -p fcgi-chat). Downloads nothing.
#
# Environment: METEORD_BIN, FCGI_CHAT_BIN override the binaries;
# KEEP_TMP=1 keeps the temporary directory (logs) for inspection.
#
# Last line: "deploy: N passed, M failed"; exit status 1 if M > 0.

set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tests/deploy"
METEORD_BIN=${METEORD_BIN:-$ROOT/target/debug/meteord}
FCGI_CHAT_BIN=${FCGI_CHAT_BIN:-$ROOT/target/debug/fcgi-chat}

# Bounds (all waits are polls of POLL_S seconds).
POLL_S=0.05
READY_TRIES=200         # 10 s for a server to come up
STREAM_LIMIT_MS=1000    # a pushed message must cross a proxy within 1 s
MESSAGE_WAIT_MS=5000    # a message must show up at all within 5 s
PING_WAIT_MS=7000       # meteord pings every 5 s (PingInterval) + margin
BROWSER_TIMEOUT_S=120   # whole Chromium run per proxy

PASSED=0
FAILED=0
# Results are one line each (multi-line details are folded).
pass() { PASSED=$((PASSED + 1)); echo "ok - $1" | tr '\n' ' ' | sed 's/ *$//'; echo; }
fail() { FAILED=$((FAILED + 1)); echo "not ok - $1${2:+: $2}" | tr '\n' ' ' | sed 's/ *$//'; echo; }
note() { echo "  # $*"; }

WORK=$(mktemp -d --suffix=.deploy-e2e)
# Apache's and nginx's workers (www-data) must traverse into it.
chmod 0755 "$WORK"
PIDS=()

# A process counts as alive unless it is gone or a zombie (in containers
# whose PID 1 does not reap, a stopped daemon lingers as a zombie).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ]
}

# Stop everything this script started; runs once (end of script or EXIT).
CLEANED=0
cleanup() {
    local p any
    [ "$CLEANED" = 1 ] && return
    CLEANED=1
    if [ -n "${SYSV_INIT:-}" ] && [ -x "$SYSV_INIT" ]; then
        "$SYSV_INIT" stop >/dev/null 2>&1
    fi
    if [ -f "$WORK/apache/run/httpd.pid" ]; then
        apache2 -f "$WORK/apache/httpd.conf" -k stop >/dev/null 2>&1
    fi
    if [ -f "$WORK/nginx/nginx.pid" ]; then
        nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -s stop >/dev/null 2>&1
    fi
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    # SIGTERM lets meteord drain (ShutdownTimeout, 5 s); wait up to 8 s.
    for _ in $(seq 160); do
        any=0
        for p in "${PIDS[@]}"; do
            alive "$p" && any=1
        done
        [ -f "$WORK/apache/run/httpd.pid" ] && any=1
        [ -f "$WORK/nginx/nginx.pid" ] && any=1
        [ "$any" = 0 ] && break
        sleep "$POLL_S"
    done
    for p in "${PIDS[@]}"; do
        alive "$p" && kill -9 "$p" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- helpers

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# Succeeds when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() {
    local i
    for i in $(seq "$READY_TRIES"); do
        port_open "$1" && return 0
        sleep "$POLL_S"
    done
    return 1
}

# One controller command; prints the first reply line (CR stripped).
controller() {
    local port=$1 line=$2 reply=""
    { exec 4<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf '%s\n' "$line" >&4
    IFS= read -r -t 3 reply <&4
    exec 4>&- 4<&-
    printf '%s\n' "${reply%$'\r'}"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_for_file_text FILE TEXT TIMEOUT_MS: poll (every 5 ms, so latencies
# measured with it are exact to a few ms) until FILE contains TEXT.
wait_for_file_text() {
    local deadline=$(($(now_ms) + $3))
    while :; do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        [ "$(now_ms)" -ge "$deadline" ] && return 1
        sleep 0.005
    done
}

# Wait until meteord counts a subscriber on a channel.
wait_subscribed() {
    local port=$1 chan=$2 i
    for i in $(seq "$READY_TRIES"); do
        case "$(controller "$port" "COUNTSUBSCRIBERS $chan")" in
            "OK 0" | "") ;;
            OK*) return 0 ;;
        esac
        sleep "$POLL_S"
    done
    return 1
}

# A streaming subscriber through a proxy: curl in the background writes the
# raw stream to FILE. Sets STREAM_PID.
start_stream() {
    local host=$1 port=$2 path=$3 file=$4
    : >"$file"
    curl -sSN --max-time 60 --resolve "$host:$port:127.0.0.1" \
        "http://$host:$port$path" >"$file" 2>"$file.err" &
    STREAM_PID=$!
    disown "$STREAM_PID"
    PIDS+=("$STREAM_PID")
}

stop_stream() {
    kill "$1" 2>/dev/null
    for _ in $(seq 40); do
        alive "$1" || return 0
        sleep "$POLL_S"
    done
}

# EventSource/WebSocket checks and the sites without WebSocket forwarding.
# shellcheck source=tests/deploy/transports.sh
. "$HERE/transports.sh"

# --------------------------------------------------------- preconditions

echo "# deploy suite in $WORK"
if [ "$(id -u)" != 0 ]; then
    echo "deploy suite must run as root (it starts Apache/nginx as root like the system would, and creates users)" >&2
    fail "running as root"
    echo "deploy: $PASSED passed, $FAILED failed"
    exit 1
fi
missing=""
for tool in apache2 nginx curl node start-stop-daemon useradd setpriv; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -x "$METEORD_BIN" ] || missing="$missing $METEORD_BIN"
[ -x "$FCGI_CHAT_BIN" ] || missing="$missing $FCGI_CHAT_BIN"
[ -f /usr/lib/apache2/modules/mod_fcgid.so ] || missing="$missing mod_fcgid(libapache2-mod-fcgid)"
if [ -n "$missing" ]; then
    fail "prerequisites" "missing:$missing"
    echo "deploy: $PASSED passed, $FAILED failed"
    exit 1
fi

# Binaries copied where the unprivileged users can execute them, at the
# paths the shipped files name (templated).
mkdir -p "$WORK/bin"
install -m 0755 "$METEORD_BIN" "$WORK/bin/meteord"
install -m 0755 "$FCGI_CHAT_BIN" "$WORK/bin/fcgi-chat"

# System users, created if absent: meteord (SysV test), fcgi-chat (nginx
# responder, primary group www-data as in fcgi-chat.service).
getent passwd meteord >/dev/null \
    || useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin meteord
getent passwd fcgi-chat >/dev/null \
    || useradd --system --gid www-data --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin fcgi-chat

SP=$(free_port) # meteord subscriber port
CP=$(free_port) # meteord controller port
AP=$(free_port) # Apache
NP=$(free_port) # nginx
while [ "$CP" = "$SP" ]; do CP=$(free_port); done

# ------------------------------------------------------------------ meteord

"$WORK/bin/meteord" -Foreground 1 -ConfigFileLocation /nonexistent -MetricsPort 0 \
    -SubscriberIP 127.0.0.1 -SubscriberPort "$SP" -ControllerPort "$CP" \
    -SubscriberDocumentRoot "$ROOT/public" -StateFile "$WORK/meteord.state" \
    >"$WORK/meteord.log" 2>&1 &
METEORD_PID=$!
disown "$METEORD_PID"
PIDS+=("$METEORD_PID")
if wait_port "$SP" && wait_port "$CP"; then
    pass "meteord is up (subscriber :$SP, controller :$CP)"
else
    fail "meteord is up" "$(tail -5 "$WORK/meteord.log")"
fi

# ---------------------------------------------------------- chat web roots
# One copy of chat/ per front server; config.js templated for its ports
# (the contract: window.CHAT_CONFIG = { pushBase, postUrl }).

make_chat_root() {
    local dir=$1 port=$2
    mkdir -p "$dir"
    if [ -d "$ROOT/chat" ]; then
        cp -r "$ROOT/chat/." "$dir/"
    fi
    printf 'window.CHAT_CONFIG = { pushBase: "http://data.chat.test:%s", postUrl: "chat.php" };\n' \
        "$port" >"$dir/config.js"
    chmod -R a+rX "$dir"
}
make_chat_root "$WORK/www-apache" "$AP"
make_chat_root "$WORK/www-nginx" "$NP"

# ------------------------------------------------------------------- Apache

A="$WORK/apache"
mkdir -p "$A/sites" "$A/logs" "$A/run" "$A/fcgid"
# mod_fcgid's sockets and process table are used by the www-data children.
chown www-data:www-data "$A/fcgid"
for f in "$ROOT"/conf/apache/*.conf; do
    sed -e "s#\*:80>#*:$AP>#" \
        -e "s#127\.0\.0\.1:4670/#127.0.0.1:$SP/#g" \
        -e "s#127\.0\.0\.1:4671#127.0.0.1:$CP#g" \
        -e "s#/var/www/chat#$WORK/www-apache#g" \
        -e "s#/usr/local/bin/fcgi-chat#$WORK/bin/fcgi-chat#g" \
        -e "s#example\.com#chat.test#g" \
        "$f" >"$A/sites/$(basename "$f")"
done
nows_apache_sites
MODS=/usr/lib/apache2/modules
cat >"$A/httpd.conf" <<EOF
# Private test instance; includes the shipped vhosts from conf/apache/.
ServerRoot $A
ServerName localhost
Listen 127.0.0.1:$AP
PidFile $A/run/httpd.pid
DefaultRuntimeDir $A/run
Mutex file:$A/run default
ErrorLog $A/logs/error.log
LogLevel warn
User www-data
Group www-data
Define APACHE_LOG_DIR $A/logs
LoadModule mpm_event_module $MODS/mod_mpm_event.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule authz_host_module $MODS/mod_authz_host.so
LoadModule mime_module $MODS/mod_mime.so
LoadModule dir_module $MODS/mod_dir.so
LoadModule alias_module $MODS/mod_alias.so
LoadModule env_module $MODS/mod_env.so
LoadModule headers_module $MODS/mod_headers.so
LoadModule setenvif_module $MODS/mod_setenvif.so
LoadModule proxy_module $MODS/mod_proxy.so
LoadModule proxy_http_module $MODS/mod_proxy_http.so
LoadModule fcgid_module $MODS/mod_fcgid.so
TypesConfig /etc/mime.types
LogFormat "%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\" %D" combined
FcgidIPCDir $A/fcgid
FcgidProcessTableFile $A/fcgid/shm
<Directory />
    AllowOverride None
    Require all denied
</Directory>
Include $A/sites/*.conf
EOF
if out=$(apache2 -t -f "$A/httpd.conf" 2>&1); then
    pass "apache: shipped vhosts pass configtest"
else
    fail "apache: shipped vhosts pass configtest" "$out"
fi
apache2 -f "$A/httpd.conf" -k start >"$A/start.log" 2>&1
if wait_port "$AP"; then
    pass "apache is up (:$AP)"
else
    fail "apache is up" "$(cat "$A/start.log") $(tail -5 "$A/logs/error.log" 2>/dev/null)"
fi

# -------------------------------------------------------------------- nginx

N="$WORK/nginx"
mkdir -p "$N/sites" "$N/logs" "$N/tmp"
RUN="$WORK/run-fcgi-chat"
for f in "$ROOT"/conf/nginx/*.conf; do
    sed -e "s#listen 80;#listen 127.0.0.1:$NP;#" \
        -e "s#server 127\.0\.0\.1:4670;#server 127.0.0.1:$SP;#" \
        -e "s#/var/www/chat#$WORK/www-nginx#g" \
        -e "s#unix:/run/fcgi-chat/fcgi-chat\.sock#unix:$RUN/fcgi-chat.sock#g" \
        -e "s#/var/log/nginx/#$N/logs/#g" \
        -e "s#example\.com#chat.test#g" \
        "$f" >"$N/sites/$(basename "$f")"
done
nows_nginx_sites
# Control for the buffering test: the same push server block WITHOUT
# "proxy_buffering off" (nginx's default), on its own port and host name.
NPC=$(free_port)
sed -e '/proxy_buffering off;/d' \
    -e 's/meteord_connection_upgrade/control_connection_upgrade/g' \
    -e 's/meteord_subscriber/control_subscriber/g' \
    -e "s#listen 127\.0\.0\.1:$NP;#listen 127.0.0.1:$NPC;#" \
    -e 's/data\.chat\.test/control.chat.test/' \
    "$N/sites/meteord-push.conf" >"$N/control-buffered.conf"
cat >"$N/nginx.conf" <<EOF
# Private test instance; includes the shipped server blocks from conf/nginx/.
user www-data;
worker_processes 1;
pid $N/nginx.pid;
error_log $N/logs/error.log warn;
events { worker_connections 512; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $N/logs/access.log;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fastcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    include $N/sites/*.conf;
    include $N/control-buffered.conf;
}
EOF
if out=$(nginx -t -c "$N/nginx.conf" -p "$N" 2>&1); then
    pass "nginx: shipped server blocks pass nginx -t"
else
    fail "nginx: shipped server blocks pass nginx -t" "$out"
fi
nginx -c "$N/nginx.conf" -p "$N" >"$N/start.log" 2>&1
if wait_port "$NP"; then
    pass "nginx is up (:$NP)"
else
    fail "nginx is up" "$(cat "$N/start.log") $(tail -5 "$N/logs/error.log" 2>/dev/null)"
fi

# ------------------------------------- fcgi-chat for nginx, as its unit says
# Command line, environment, user and group are read from the shipped
# init/fcgi-chat.service (paths templated); RuntimeDirectory is emulated.

UNIT="$ROOT/init/fcgi-chat.service"
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -1; }
FC_USER=$(unit_value User)
FC_GROUP=$(unit_value Group)
FC_EXEC=$(unit_value ExecStart | sed -e "s#/usr/local/bin/fcgi-chat#$WORK/bin/fcgi-chat#" \
    -e "s#/run/fcgi-chat/#$RUN/#g")
FC_ENV=()
while IFS= read -r kv; do
    FC_ENV+=("$(printf '%s' "$kv" | sed -e "s#127\.0\.0\.1:4671#127.0.0.1:$CP#")")
done < <(sed -n 's/^Environment=//p' "$UNIT")
install -d -o "$FC_USER" -g "$FC_GROUP" -m "$(unit_value RuntimeDirectoryMode)" "$RUN"
# shellcheck disable=SC2086
env -i PATH=/usr/bin:/bin "${FC_ENV[@]}" \
    setpriv --reuid "$FC_USER" --regid "$FC_GROUP" --clear-groups --no-new-privs \
    $FC_EXEC >"$WORK/fcgi-chat-nginx.log" 2>&1 &
disown "$!"
PIDS+=("$!")
for _ in $(seq "$READY_TRIES"); do
    [ -S "$RUN/fcgi-chat.sock" ] && break
    sleep "$POLL_S"
done
if [ -S "$RUN/fcgi-chat.sock" ]; then
    pass "fcgi-chat (as $FC_USER:$FC_GROUP, from fcgi-chat.service) listens on $RUN/fcgi-chat.sock ($(stat -c '%A %U:%G' "$RUN/fcgi-chat.sock"))"
else
    fail "fcgi-chat listens on its Unix socket" "$(tail -5 "$WORK/fcgi-chat-nginx.log")"
fi

# ------------------------------------------------- (1) streaming latency

# stream_latency LABEL PROXY_PORT: a subscriber streams through the proxy's
# data vhost; a message published to the controller must reach it within
# STREAM_LIMIT_MS.
stream_latency() {
    local label=$1 port=$2 chan="lat_$1" file="$WORK/stream-$1.out" marker t0 t1 ms
    start_stream "data.chat.test" "$port" "/push/lat$RANDOM$1/xhrinteractive/$chan" "$file"
    local spid=$STREAM_PID
    if ! wait_subscribed "$CP" "$chan"; then
        fail "$label: stream through the proxy within ${STREAM_LIMIT_MS} ms" "subscriber never registered; curl: $(cat "$file.err")"
        stop_stream "$spid"
        return
    fi
    # The header and padding arrive first; wait for them so the timing below
    # measures the message only.
    wait_for_file_text "$file" "..." "$MESSAGE_WAIT_MS" || true
    marker="latency-$label-$RANDOM$RANDOM"
    t0=$(now_ms)
    controller "$CP" "ADDMESSAGE $chan $marker" >/dev/null
    if wait_for_file_text "$file" "$marker" "$MESSAGE_WAIT_MS"; then
        t1=$(now_ms)
        ms=$((t1 - t0))
        note "$label: published -> received through the proxy in $ms ms"
        if [ "$ms" -lt "$STREAM_LIMIT_MS" ]; then
            pass "$label: pushed message crosses the proxy in $ms ms (< $STREAM_LIMIT_MS ms)"
        else
            fail "$label: pushed message crosses the proxy within $STREAM_LIMIT_MS ms" "took $ms ms"
        fi
    else
        fail "$label: pushed message crosses the proxy" "not received within 5 s (buffered?)"
    fi
    stop_stream "$spid"
}

# The control: with nginx's default proxy_buffering the same message is
# NOT delivered within the limit (it waits until meteord closes the stream)
# -- which is why the shipped file turns buffering off.
buffering_control() {
    local chan="lat_control" file="$WORK/stream-control.out" marker spid
    start_stream "control.chat.test" "$NPC" "/push/ctl$RANDOM/xhrinteractive/$chan" "$file"
    spid=$STREAM_PID
    if ! wait_subscribed "$CP" "$chan"; then
        fail "nginx control: subscriber through the buffering server block" "never registered"
        stop_stream "$spid"
        return
    fi
    marker="held-$RANDOM$RANDOM"
    controller "$CP" "ADDMESSAGE $chan $marker" >/dev/null
    sleep "$((STREAM_LIMIT_MS / 1000)).$((STREAM_LIMIT_MS % 1000 / 100))"
    if grep -qF -- "$marker" "$file"; then
        fail "nginx control: without proxy_buffering off the stream is held" "the message came through anyway"
    else
        pass "nginx control: without 'proxy_buffering off' the message is held back (> $STREAM_LIMIT_MS ms)"
    fi
    stop_stream "$spid"
}

# Pings cross both proxies: an idle stream gets meteord's ping (every
# PingInterval = 5 s) through Apache and nginx, which is what keeps idle
# streams inside the proxies' read timeouts.
pings_through() {
    local label port file spid ok
    local -a spids=() labels=()
    for label in apache nginx; do
        port=$AP
        [ "$label" = nginx ] && port=$NP
        start_stream "data.chat.test" "$port" "/push/ping$RANDOM$label/xhrinteractive/idle_$label" \
            "$WORK/ping-$label.out"
        spids+=("$STREAM_PID")
        labels+=("$label")
    done
    for i in 0 1; do
        label=${labels[$i]}
        file="$WORK/ping-$label.out"
        ok=0
        wait_for_file_text "$file" 'p(-1' "$PING_WAIT_MS" && ok=1
        if [ "$ok" = 1 ]; then
            pass "$label: an idle stream receives meteord's ping through the proxy"
        else
            fail "$label: an idle stream receives meteord's ping through the proxy" \
                "none within ~7 s: $(tail -c 60 "$file" | tr '\r\n' '  ')"
        fi
    done
    for spid in "${spids[@]}"; do
        stop_stream "$spid"
    done
}

# Static files from meteord's document root through the data vhost.
static_through() {
    local label=$1 port=$2 code
    code=$(curl -s -o "$WORK/meteor-js-$label" -w '%{http_code}' --max-time 5 \
        --resolve "data.chat.test:$port:127.0.0.1" "http://data.chat.test:$port/meteor.js")
    if [ "$code" = 200 ] && cmp -s "$WORK/meteor-js-$label" "$ROOT/public/meteor.js"; then
        pass "$label: data vhost serves meteord's meteor.js byte for byte"
    else
        fail "$label: data vhost serves meteor.js" "HTTP $code"
    fi
}

static_through apache "$AP"
static_through nginx "$NP"
stream_latency apache "$AP"
stream_latency nginx "$NP"
buffering_control
pings_through
transports_through_proxies

# ------------------------------------------- (2) posting through the responders

# post_checks LABEL PROXY_PORT OVERSIZE_STATUS
post_checks() {
    local label=$1 port=$2 big_status=$3 file="$WORK/post-$1.out" marker code body
    local base="http://www.chat.test:$port/chat.php"
    local resolve=(--resolve "www.chat.test:$port:127.0.0.1")
    # Subscribe from the next message id on (chat.r<id>): whatever is posted
    # from now on reaches this subscriber, however its registration races
    # with the post. The probe message on a scratch channel tells the id.
    local last
    last=$(controller "$CP" "ADDMESSAGE deploy_probe id")
    last=${last#OK$'\t'}
    case "$last" in '' | *[!0-9]*) last=0 ;; esac
    start_stream "data.chat.test" "$port" "/push/post$RANDOM$1/xhrinteractive/chat.r$((last + 1))" "$file"
    local spid=$STREAM_PID
    wait_for_file_text "$file" "..." "$MESSAGE_WAIT_MS" || note "$label: no stream header yet"
    marker="posted-via-$label-$RANDOM$RANDOM"
    body=$(curl -s -w '\n%{http_code}' --max-time 10 "${resolve[@]}" \
        --data-urlencode "user=deploy-$label" --data-urlencode "message=$marker" "$base")
    code=${body##*$'\n'}
    body=${body%$'\n'*}
    if [ "$code" = 200 ] && [[ "$body" == *'"ok":true'* ]]; then
        pass "$label: POST /chat.php answers 200 $body"
    else
        fail "$label: POST /chat.php answers 200" "HTTP $code $body"
    fi
    if wait_for_file_text "$file" "$marker" "$MESSAGE_WAIT_MS"; then
        pass "$label: the posted message reaches a subscriber through the data vhost"
    else
        fail "$label: the posted message reaches a subscriber" "not seen within 5 s"
    fi
    stop_stream "$spid"

    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${resolve[@]}" "$base")
    if [ "$code" = 405 ]; then
        pass "$label: GET /chat.php is 405"
    else
        fail "$label: GET /chat.php is 405" "got $code"
    fi

    # 100 KB body: above FcgidMaxRequestLen / client_max_body_size (32 KB).
    head -c 100000 /dev/zero | tr '\0' 'x' | sed 's/^/user=big\&message=/' >"$WORK/big-body"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${resolve[@]}" \
        --data-binary "@$WORK/big-body" -H 'Content-Type: application/x-www-form-urlencoded' "$base")
    if [ "$code" = "$big_status" ]; then
        pass "$label: a 100 KB body is refused by the front server with $big_status"
    else
        fail "$label: a 100 KB body is refused with $big_status" "got $code"
    fi
}

post_checks apache "$AP" 500
post_checks nginx "$NP" 413

# ---------------------------------------------------- (3) headless Chromium

# browser_chat PROXY PORT MODE [TRANSPORT]: the chat page's transport is
# picked with ?mode= (stream = the best the browser has and gets through;
# longpoll = the classic fallback, one request per message through the
# proxy); with TRANSPORT both pages must be live over it (chat-e2e.js).
browser_chat() {
    local proxy=$1 port=$2 mode=$3 transport=${4:-} label="$1/$3${4:+ over $4}" log="$WORK/browser-$1-$3${4:+-$4}.log"
    local what="$label: two Chromium pages chat through the proxy"
    if [ ! -f "$ROOT/chat/index.html" ]; then
        fail "$what" "chat/index.html is missing"
        return
    fi
    if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
        fail "$what" "run 'npm ci' in tests/browser first"
        return
    fi
    if timeout "$BROWSER_TIMEOUT_S" node "$HERE/chat-e2e.js" "$label" \
        "http://www.chat.test:$port/?mode=$mode" ${transport:+"$transport"} >"$log" 2>&1; then
        pass "$what ($(sed -n 's/^browser-latency-ms //p' "$log") ms live)"
    else
        fail "$what" "$(tail -3 "$log" | tr '\n' ' ')"
    fi
    sed 's/^/  # /' "$log"
    if [ "$mode" = longpoll ]; then
        local access="$A/logs/meteord-push-access.log"
        [ "$proxy" = nginx ] && access="$N/logs/meteord-push.access.log"
        if grep -q "GET /push/[0-9A-Za-z]*/longpoll/" "$access" 2>/dev/null; then
            pass "$label: the page really long-polled through the data vhost (access log)"
        else
            fail "$label: the page long-polled through the data vhost" "no /longpoll/ request in $access"
        fi
    fi
}

for mode in stream longpoll; do
    browser_chat apache "$AP" "$mode"
    browser_chat nginx "$NP" "$mode"
done
transports_in_chromium

# ----------------------------------------------------- (4) SysV init script

S="$WORK/sysv"
mkdir -p "$S"
SYSV_INIT="$S/meteord.init"
SSP=$(free_port)
SCP=$(free_port)
sed -e "s#^DEFAULTS=/etc/default/meteord#DEFAULTS=$S/meteord.default#" \
    "$ROOT/init/meteord.init" >"$SYSV_INIT"
chmod 0755 "$SYSV_INIT"
sed -e "s#^DAEMON=.*#DAEMON=$WORK/bin/meteord#" \
    -e "s#^CONFIG=.*#CONFIG=$S/meteord.conf#" \
    -e "s#^RUNDIR=.*#RUNDIR=$S/run#" \
    -e "s#^PIDFILE=.*#PIDFILE=$S/run/meteord.pid#" \
    -e "s#^STATEDIR=.*#STATEDIR=$S/state#" \
    -e "s#^LOGDIR=.*#LOGDIR=$S/log#" \
    -e "s#^METEORD_OPTS=.*#METEORD_OPTS=\"-SubscriberIP 127.0.0.1 -SubscriberPort $SSP -ControllerPort $SCP -SubscriberDocumentRoot $ROOT/public -StateFile $S/state/meteord.state -SyslogFacility none -LogFilename $S/log/meteord.log -MetricsPort 0\"#" \
    "$ROOT/init/meteord.default" >"$S/meteord.default"
PIDFILE="$S/run/meteord.pid"
# The shipped configuration file as CONFIG (ports and paths come from
# METEORD_OPTS, which win over the file).
cp "$ROOT/conf/meteord.conf" "$S/meteord.conf"

sysv_pid() { cat "$PIDFILE" 2>/dev/null; }

"$SYSV_INIT" status >/dev/null 2>&1
rc=$?
[ "$rc" = 3 ] && pass "sysv: status before start is 3 (not running)" \
    || fail "sysv: status before start is 3" "got $rc"

# "start" returns when meteord reported ready: the ports accept at once.
if out=$("$SYSV_INIT" start 2>&1) && port_open "$SSP" && port_open "$SCP"; then
    pass "sysv: start returns with both ports accepting ($out)"
else
    fail "sysv: start" "$out $(tail -5 "$S/log/meteord.log" 2>/dev/null)"
fi
pid=$(sysv_pid)
if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/exe")" = "$WORK/bin/meteord" ]; then
    pass "sysv: pid file $PIDFILE holds the daemon's pid ($pid)"
else
    fail "sysv: pid file holds the daemon's pid" "pid file: '${pid}'"
fi
owner=$(stat -c %U "/proc/${pid:-0}" 2>/dev/null)
if [ "$owner" = meteord ]; then
    pass "sysv: the daemon runs as the unprivileged user meteord"
else
    fail "sysv: the daemon runs as meteord" "runs as '$owner'"
fi
out=$("$SYSV_INIT" status 2>&1)
rc=$?
[ "$rc" = 0 ] && pass "sysv: status while running is 0 ($out)" \
    || fail "sysv: status while running is 0" "rc=$rc $out"
out=$("$SYSV_INIT" start 2>&1)
rc=$?
# Live processes of our binary owned by meteord (no procps needed).
running=0
for d in /proc/[0-9]*; do
    [ "$(readlink "$d/exe" 2>/dev/null)" = "$WORK/bin/meteord" ] || continue
    [ "$(stat -c %U "$d" 2>/dev/null)" = meteord ] || continue
    alive "${d#/proc/}" && running=$((running + 1))
done
if [ "$rc" = 0 ] && [ "$(sysv_pid)" = "$pid" ] && [ "$running" = 1 ]; then
    pass "sysv: a second start leaves the one running daemon alone"
else
    fail "sysv: a second start leaves the one running daemon alone" "rc=$rc pid $(sysv_pid) vs $pid, $running running"
fi

# Reload = SIGHUP: same process, the connected subscriber stays connected
# and still gets messages published after the reload.
file="$S/stream.out"
start_stream 127.0.0.1 "$SSP" "/push/sysv$RANDOM/xhrinteractive/sysv" "$file"
spid=$STREAM_PID
wait_subscribed "$SCP" sysv || note "sysv: subscriber not registered"
index_before=$(curl -s --max-time 5 "http://127.0.0.1:$SSP/" | cmp -s - "$ROOT/public/index.html" && echo index)
# A changed configuration for the reload to pick up.
# (In the global part of the file: after the [mode] sections it would be
# refused.)
sed -i 's/^# *DirectoryIndex .*/DirectoryIndex stream.html/' "$S/meteord.conf"
out=$("$SYSV_INIT" reload 2>&1)
rc=$?
sleep 0.5
index_after=$(curl -s --max-time 5 "http://127.0.0.1:$SSP/" | cmp -s - "$ROOT/public/stream.html" && echo stream)
if [ "$index_before" = index ] && [ "$index_after" = stream ]; then
    pass "sysv: reload re-reads $S/meteord.conf (DirectoryIndex index.html -> stream.html)"
else
    fail "sysv: reload re-reads the configuration file" "GET / before: '${index_before:-other}', after: '${index_after:-other}'"
fi
marker="after-reload-$RANDOM"
controller "$SCP" "ADDMESSAGE sysv $marker" >/dev/null
if [ "$rc" = 0 ] && [ "$(sysv_pid)" = "$pid" ] && alive "$pid" \
    && wait_for_file_text "$file" "$marker" "$MESSAGE_WAIT_MS"; then
    pass "sysv: reload (SIGHUP) keeps the daemon and its subscriber ($out)"
else
    fail "sysv: reload keeps the daemon and its subscriber" "rc=$rc $out"
fi
if grep -qi 'reload\|hup' "$S/log/meteord.log" 2>/dev/null; then
    note "sysv: log after reload: $(grep -i 'reload\|hup' "$S/log/meteord.log" | tail -1)"
fi

out=$("$SYSV_INIT" force-reload 2>&1)
rc=$?
[ "$rc" = 0 ] && alive "$pid" && pass "sysv: force-reload" \
    || fail "sysv: force-reload" "rc=$rc $out"

out=$("$SYSV_INIT" stop 2>&1)
rc=$?
gone=1
alive "$pid" && gone=0
if [ "$rc" = 0 ] && [ "$gone" = 1 ] && [ ! -e "$PIDFILE" ]; then
    pass "sysv: stop ends the daemon and removes the pid file ($out)"
else
    fail "sysv: stop" "rc=$rc alive=$((1 - gone)) pidfile=$(ls "$PIDFILE" 2>/dev/null)"
fi
# SIGTERM from stop: the subscriber gets the shutdown message, then EOF.
for _ in $(seq "$READY_TRIES"); do
    alive "$spid" || break
    sleep "$POLL_S"
done
if grep -qF 'eof()' "$file"; then
    pass "sysv: stop sends the shutdown message to the subscriber"
else
    fail "sysv: stop sends the shutdown message" "stream ended with: $(tail -c 80 "$file" | tr '\r\n' '  ')"
fi
stop_stream "$spid"
"$SYSV_INIT" status >/dev/null 2>&1
rc=$?
[ "$rc" = 3 ] && pass "sysv: status after stop is 3" || fail "sysv: status after stop is 3" "got $rc"

if out=$("$SYSV_INIT" restart 2>&1) && port_open "$SSP"; then
    npid=$(sysv_pid)
    [ -n "$npid" ] && [ "$npid" != "$pid" ] && pass "sysv: restart from stopped starts it (pid $npid)" \
        || fail "sysv: restart" "pid '$npid'"
else
    fail "sysv: restart" "$out"
fi
"$SYSV_INIT" stop >/dev/null 2>&1

# A configuration error is reported by "start" (not hidden by --background).
sed -i "s#^METEORD_OPTS=\"#METEORD_OPTS=\"-NoSuchParameter 1 #" "$S/meteord.default"
out=$("$SYSV_INIT" start 2>&1)
rc=$?
if [ "$rc" != 0 ]; then
    pass "sysv: start with a bad configuration fails (rc=$rc)"
else
    fail "sysv: start with a bad configuration fails" "rc=0: $out"
fi
"$SYSV_INIT" stop >/dev/null 2>&1
SYSV_INIT=""

# ---------------------------------------------------- (5) systemd units

if command -v systemd-analyze >/dev/null 2>&1; then
    U="$WORK/systemd"
    mkdir -p "$U"
    for f in "$ROOT"/init/*.service "$ROOT"/init/*.socket; do
        [ -f "$f" ] || continue
        sed -e "s#/usr/local/sbin/meteord#$WORK/bin/meteord#g" \
            -e "s#/usr/local/bin/fcgi-chat#$WORK/bin/fcgi-chat#g" \
            "$f" >"$U/$(basename "$f")"
    done
    for f in "$U"/*; do
        if out=$(systemd-analyze verify --man=no "$f" 2>&1) && [ -z "$out" ]; then
            pass "systemd-analyze verify $(basename "$f")"
        else
            fail "systemd-analyze verify $(basename "$f")" "$out"
        fi
    done
else
    fail "systemd-analyze verify" "systemd-analyze is missing (apt-get install systemd)"
fi

# meteord.service's ExecStart and ExecReload, run the way systemd would run
# them (there is no systemd here): as User=/Group= of the unit, with a
# NOTIFY_SOCKET (start-stop-daemon --notify-await is the listener), the
# shipped conf/meteord.conf as /etc/meteord.conf (templated for ports and
# paths), StateDirectory emulated.
UNIT="$ROOT/init/meteord.service"
Y="$WORK/systemd-run"
YSP=$(free_port)
YCP=$(free_port)
install -d -o "$(unit_value User)" -g "$(unit_value Group)" -m 0750 "$Y" "$Y/state"
sed -e "s/^# *SubscriberIP .*/SubscriberIP 127.0.0.1/" \
    -e "s/^# *SubscriberPort .*/SubscriberPort $YSP/" \
    -e "s/^# *ControllerPort .*/ControllerPort $YCP/" \
    -e "s#^\# *SubscriberDocumentRoot .*#SubscriberDocumentRoot $ROOT/public#" \
    "$ROOT/conf/meteord.conf" >"$Y/meteord.conf"
chmod 0644 "$Y/meteord.conf"
# shellcheck disable=SC2046
set -- $(unit_value ExecStart | sed -e "s#/usr/local/sbin/meteord#$WORK/bin/meteord#" \
    -e "s#/etc/meteord.conf#$Y/meteord.conf#" -e "s#/var/lib/meteord/#$Y/state/#g")
if start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$Y/main.pid" \
    --notify-await --notify-timeout 10 --chuid "$(unit_value User):$(unit_value Group)" \
    --chdir "$Y/state" --exec "$1" -- "${@:2}" && port_open "$YSP" && port_open "$YCP"; then
    pass "meteord.service: ExecStart as User=$(unit_value User) sends READY=1 with both ports bound"
else
    fail "meteord.service: ExecStart sends READY=1 with both ports bound"
fi
MAINPID=$(cat "$Y/main.pid" 2>/dev/null)
PIDS+=("${MAINPID:-0}")
reload_cmd=$(unit_value ExecReload | sed -e "s#\$MAINPID#${MAINPID:-0}#")
if $reload_cmd && sleep 0.5 && alive "${MAINPID:-0}" && port_open "$YSP" \
    && [[ "$(controller "$YCP" "ADDMESSAGE unit after-reload")" == OK* ]]; then
    pass "meteord.service: ExecReload ($reload_cmd) keeps it serving"
else
    fail "meteord.service: ExecReload keeps it serving"
fi
kill -TERM "${MAINPID:-0}" 2>/dev/null
stop_limit=$(unit_value TimeoutStopSec)
for _ in $(seq $((stop_limit * 20))); do
    alive "${MAINPID:-0}" || break
    sleep "$POLL_S"
done
if ! alive "${MAINPID:-0}" && [ -s "$Y/state/meteord.state" ]; then
    pass "meteord.service: SIGTERM stops it within TimeoutStopSec=${stop_limit}s; state file kept in StateDirectory"
else
    fail "meteord.service: SIGTERM stops it within TimeoutStopSec, state file in StateDirectory" \
        "alive=$(alive "${MAINPID:-0}" && echo yes || echo no) state=$(ls "$Y/state")"
fi

# -------------------------------------------------------------- summary

for log in "$A/logs/error.log" "$N/logs/error.log"; do
    if [ -s "$log" ] && [ "$FAILED" -gt 0 ]; then
        echo "# last lines of $log:"
        tail -5 "$log" | sed 's/^/#   /'
    fi
done
cleanup
echo "deploy: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
