#!/usr/bin/env bash
# Installs what the test suites need on a fresh Debian machine (run as root),
# or, when not root, says exactly what is missing. Idempotent: does nothing
# when everything is there. Downloads only from Debian's, npm's and crates.io's
# registries.
set -u
cd "$(dirname "$0")/.."

# command or file that proves the package is there -> Debian package
declare -A need=(
  [/usr/sbin/apache2]=apache2
  [/usr/lib/apache2/modules/mod_fcgid.so]=libapache2-mod-fcgid
  [/usr/sbin/nginx]=nginx
  [/usr/lib/nginx/modules/ngx_nchan_module.so]=libnginx-mod-nchan
  [/usr/bin/redis-server]=redis-server
  # cluster TLS test (issue 13): makes a CA and a certificate for rediss://.
  [/usr/bin/openssl]=openssl
  [/usr/bin/chromium]=chromium
  [/usr/bin/cgi-fcgi]=libfcgi-bin
  [/usr/bin/curl]=curl
  [/usr/bin/systemd-analyze]=systemd
  [/usr/bin/python3]=python3
  [/usr/bin/node]=nodejs
  [/usr/bin/npm]=npm
  [/usr/sbin/useradd]=passwd
  [/sbin/start-stop-daemon]=dpkg
  # Debian packages suite (tests/deb): build, check, read the man pages.
  [/usr/bin/dpkg-shlibdeps]=dpkg-dev
  [/usr/bin/lintian]=lintian
  [/usr/bin/help2man]=help2man
  [/usr/bin/man]=man-db
  [/usr/bin/ss]=iproute2
)
missing=()
for path in "${!need[@]}"; do
  [ -e "$path" ] || missing+=("${need[$path]}")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || exit 1
  apt-get install -y -qq "${missing[@]}" >/tmp/install-deps-apt.log 2>&1 || {
    tail -n 30 /tmp/install-deps-apt.log >&2
    exit 1
  }
fi

# The system's own Apache/nginx/redis instances are not used by the tests
# (each suite runs private instances on free loopback ports); stop any that
# the package installation started so they do not hold ports 80/6379.
if [ "$(id -u)" -eq 0 ]; then
  for svc in apache2 nginx redis-server; do
    if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
  done
fi

# playwright-core for the browser and deployment suites (no browser download:
# it drives Debian's /usr/bin/chromium).
if [ ! -d tests/browser/node_modules/playwright-core ] \
   || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "install-deps: npm ci in tests/browser failed" >&2
    exit 1
  }
fi
# cargo-deb, at the version packaging/build-debs.sh pins, from crates.io
# (compiled once; the build script itself would install it otherwise).
if command -v cargo >/dev/null 2>&1; then
  packaging/build-debs.sh --install-tool || {
    echo "install-deps: cargo install cargo-deb failed" >&2
    exit 1
  }
fi
echo "install-deps: ok"
