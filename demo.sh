#!/usr/bin/env bash
# The chat demo with nothing but this repository: builds meteord and
# fcgi-chat, starts meteord (push on :4670, controller on 127.0.0.1:4671,
# documents from public/) and fcgi-chat's development HTTP server (the chat
# page and its POST endpoint on :8080), prints the URL, and stops both on
# Ctrl-C. Ports: PUSH_PORT, CONTROL_PORT, CHAT_PORT; HOST (default 127.0.0.1).
set -eu
cd "$(dirname "$0")"
host=${HOST:-127.0.0.1}
push_port=${PUSH_PORT:-4670}
control_port=${CONTROL_PORT:-4671}
chat_port=${CHAT_PORT:-8080}

cargo build --quiet -p meteord -p fcgi-chat
state=$(mktemp -d --suffix=.meteord-demo)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

target/debug/meteord -Foreground 1 -ConfigFileLocation "$state/none.conf" \
  -SubscriberIP "$host" -SubscriberPort "$push_port" \
  -ControllerIP 127.0.0.1 -ControllerPort "$control_port" \
  -SubscriberDocumentRoot "$PWD/public" -StateFile "$state/ids" \
  -LogFilename "$state/meteord.log" &
pids+=($!)
target/debug/fcgi-chat --http "$host:$chat_port" --chat-root chat \
  --push-url "http://$host:$push_port" --controller "127.0.0.1:$control_port" \
  2>>"$state/fcgi-chat.log" &
pids+=($!)

# Wait until both answer (bounded).
for _ in $(seq 1 50); do
  if curl -fsS -o /dev/null "http://$host:$push_port/meteor.js" 2>/dev/null \
     && curl -fsS -o /dev/null "http://$host:$chat_port/" 2>/dev/null; then
    echo "Chat demo running: open http://$host:$chat_port/  (Ctrl-C stops it)"
    echo "Logs: $state/meteord.log $state/fcgi-chat.log"
    wait -n "${pids[@]}" || true
    echo "a server exited; see the logs above" >&2
    exit 1
  fi
  sleep 0.2
done
echo "the demo did not come up; logs:" >&2
cat "$state/meteord.log" "$state/fcgi-chat.log" >&2 || true
exit 1
