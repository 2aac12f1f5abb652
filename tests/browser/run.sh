#!/usr/bin/env bash
# Browser tests: headless Debian Chromium (playwright-core) against the real
# meteord and fcgi-chat. Needs `npm ci` here and the debug binaries built
# (cargo build -p meteord -p fcgi-chat); downloads nothing.
# Last line is always "browser: N passed, M failed"; exit status non-zero on
# any failure. Optional argument: run only tests whose name contains it.
set -u
cd "$(dirname "$0")"

summary_fail() {
  echo "$1" >&2
  echo "browser: 0 passed, 1 failed"
  exit 1
}

[ -d node_modules/playwright-core ] || summary_fail "playwright-core missing: run 'npm ci' in tests/browser"
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || summary_fail "chromium missing: apt-get install chromium"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
node run.mjs "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
# If node died before printing its summary, still end with the contract line.
if ! tail -n 1 "$out" | grep -Eq '^browser: [0-9]+ passed, [0-9]+ failed$'; then
  echo "browser: 0 passed, 1 failed"
  exit 1
fi
exit "$rc"
