# shellcheck shell=bash
# transports.sh — the deploy suite's EventSource/WebSocket part (issue 12),
# sourced by run.sh (it uses run.sh's helpers and variables: WORK, A, N,
# AP, NP, SP, CP, make_chat_root, start_stream, ...).
#
# Besides the shipped vhosts it sets up one more site per front server, a
# copy of the shipped files WITHOUT WebSocket forwarding (Apache: no
# "upgrade=websocket"; nginx: no Upgrade/Connection headers), www and data
# on their own port with their own chat root, so the chat can prove that
# its client falls back to EventSource there without losing a message.

# nows_apache_sites: after the shipped vhosts are templated into $A/sites.
# Sets APW, the port of the Apache site without WebSocket forwarding.
nows_apache_sites() {
    APW=$(free_port)
    make_chat_root "$WORK/www-apache-nows" "$APW"
    {
        echo "# The shipped vhosts on :$APW, the push host without upgrade=websocket."
        echo "Listen 127.0.0.1:$APW"
        sed -e "s#<VirtualHost \*:$AP>#<VirtualHost *:$APW>#" \
            -e "s#$WORK/www-apache#$WORK/www-apache-nows#g" "$A/sites/chat-www.conf"
        sed -e "s#<VirtualHost \*:$AP>#<VirtualHost *:$APW>#" \
            -e 's# upgrade=websocket##' \
            -e 's#meteord-push-access#nows-push-access#' "$A/sites/meteord-push.conf"
    } >"$A/sites/zz-nows.conf"
}

# nows_nginx_sites: after the shipped server blocks are templated into
# $N/sites. Sets NPW, the port of the nginx sites without WebSocket.
nows_nginx_sites() {
    NPW=$(free_port)
    make_chat_root "$WORK/www-nginx-nows" "$NPW"
    sed -e "s#listen 127\.0\.0\.1:$NP;#listen 127.0.0.1:$NPW;#" \
        -e "s#$WORK/www-nginx#$WORK/www-nginx-nows#g" \
        "$N/sites/chat-www.conf" >"$N/sites/zz-nows-www.conf"
    sed -e '/proxy_set_header Upgrade/d' \
        -e '/proxy_set_header Connection/d' \
        -e 's/meteord_connection_upgrade/nows_connection_upgrade/g' \
        -e 's/meteord_subscriber/nows_subscriber/g' \
        -e "s#listen 127\.0\.0\.1:$NP;#listen 127.0.0.1:$NPW;#" \
        -e 's#meteord-push\.access#nows-push.access#' \
        "$N/sites/meteord-push.conf" >"$N/sites/zz-nows-push.conf"
}

# sse_through LABEL PORT: an EventSource stream (curl) through the data
# vhost: the head says text/event-stream and a published message arrives
# as its id:/data: event within STREAM_LIMIT_MS.
sse_through() {
    local label=$1 port=$2 chan="sse_$1" file="$WORK/sse-$1.out" marker t0 ms spid
    start_stream "data.chat.test" "$port" "/push/sse$RANDOM$1/eventsource/$chan" "$file"
    spid=$STREAM_PID
    if ! wait_subscribed "$CP" "$chan"; then
        fail "$label: EventSource stream through the proxy" "subscriber never registered; curl: $(cat "$file.err")"
        stop_stream "$spid"
        return
    fi
    wait_for_file_text "$file" "retry:" "$MESSAGE_WAIT_MS" || true
    marker="sse-$label-$RANDOM$RANDOM"
    t0=$(now_ms)
    controller "$CP" "ADDMESSAGE $chan $marker" >/dev/null
    if wait_for_file_text "$file" "\"text\":\"$marker\"" "$MESSAGE_WAIT_MS"; then
        ms=$(($(now_ms) - t0))
        if [ "$ms" -lt "$STREAM_LIMIT_MS" ] && grep -q '^id: [0-9]' "$file"; then
            pass "$label: an EventSource message crosses the proxy in $ms ms (id:/data: event)"
        else
            fail "$label: an EventSource message crosses the proxy within $STREAM_LIMIT_MS ms" "took $ms ms: $(head -c 300 "$file" | tr '\r\n' '  ')"
        fi
    else
        fail "$label: an EventSource message crosses the proxy" "not received within 5 s: $(head -c 300 "$file" | tr '\r\n' '  ')"
    fi
    stop_stream "$spid"
}

# ws_handshake LABEL PORT WANT: a WebSocket handshake (curl, HTTP/1.1)
# through the data vhost answers WANT (101 through the shipped files; not
# 101 where the proxy does not forward upgrades).
ws_handshake() {
    local label=$1 port=$2 want=$3 code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --http1.1 \
        --resolve "data.chat.test:$port:127.0.0.1" \
        -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
        -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
        "http://data.chat.test:$port/push/hs$RANDOM/websocket/hs_$label")
    if [ "$want" = 101 ] && [ "$code" = 101 ]; then
        pass "$label: the WebSocket handshake crosses the proxy (101)"
    elif [ "$want" != 101 ] && [ "$code" != 101 ] && [ "$code" != 000 ]; then
        pass "$label: without WebSocket forwarding the handshake gets no 101 (HTTP $code)"
    else
        fail "$label: WebSocket handshake through the proxy answers ${want/#!/not }" "HTTP $code"
    fi
}

# nows_access_log PROXY: the access log of the push host without
# WebSocket forwarding shows the refused /websocket/ and then /eventsource/
# (a stream is logged when it ends: the proxy notices the closed page only
# when a write fails, the second ping after it left; run.sh calls this once
# all the Chromium runs are over, and it waits up to two ping intervals).
nows_access_log() {
    local proxy=$1 access="$A/logs/nows-push-access.log"
    [ "$proxy" = nginx ] && access="$N/logs/nows-push.access.log"
    local deadline=$(($(now_ms) + 2 * PING_WAIT_MS))
    while ! grep -q 'GET /push/[0-9A-Za-z]*/eventsource/chat[^"]*" 200 ' "$access" 2>/dev/null &&
        [ "$(now_ms)" -lt "$deadline" ]; do
        sleep "$POLL_S"
    done
    if grep -q 'GET /push/[0-9A-Za-z]*/websocket/chat' "$access" 2>/dev/null &&
        ! grep -q 'GET /push/[0-9A-Za-z]*/websocket/chat[^"]*" 101 ' "$access" &&
        grep -q 'GET /push/[0-9A-Za-z]*/eventsource/chat[^"]*" 200 ' "$access"; then
        pass "$proxy without WebSocket: the page tried /websocket/ (no 101), then streamed /eventsource/ (access log)"
    else
        fail "$proxy without WebSocket: /websocket/ refused, then /eventsource/" \
            "$(grep -o 'GET /push/[^ ]* HTTP/1.1" [0-9]*' "$access" 2>/dev/null | tail -4)"
    fi
}

# The curl-level checks of both transports through both proxies.
transports_through_proxies() {
    sse_through apache "$AP"
    sse_through nginx "$NP"
    ws_handshake apache "$AP" 101
    ws_handshake nginx "$NP" 101
    ws_handshake apache-nows "$APW" '!101'
    ws_handshake nginx-nows "$NPW" '!101'
}

# The chat in Chromium over each transport through both proxies, and the
# fallback through the sites without WebSocket forwarding.
transports_in_chromium() {
    local proxy
    for proxy in apache nginx; do
        local port=$AP nows=$APW
        [ "$proxy" = nginx ] && port=$NP nows=$NPW
        browser_chat "$proxy" "$port" websocket websocket
        browser_chat "$proxy" "$port" eventsource eventsource
        browser_chat "$proxy" "$port" stream websocket
        browser_chat "$proxy-nows" "$nows" stream eventsource
    done
    nows_access_log apache
    nows_access_log nginx
}
