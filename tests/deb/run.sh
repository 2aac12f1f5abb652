#!/usr/bin/env bash
# Debian package suite: builds the meteord and fcgi-chat packages
# (packaging/build-debs.sh), checks them with lintian, installs them on this
# machine with apt, runs meteord through its SysV script, enables the
# packaged Apache snippets with a2enconf/a2ensite on the system Apache, has
# two headless Chromium pages chat through it (tests/deploy/chat-e2e.js)
# using only the installed files, upgrades to a rebuilt package of a higher
# version (the edited /etc/meteord.conf must survive, the daemon must
# restart), then purges both and checks that nothing is left.
#
# It changes the machine while it runs and puts it back at the end (also
# when it fails): /usr/sbin/policy-rc.d and /etc/apache2/ports.conf are
# saved and restored, Apache modules it enabled are disabled again, Apache
# is stopped, the packages are purged. Apache listens on 127.0.0.1:80 only
# (ports.conf), meteord on 127.0.0.1:4670/4671 (the packaged defaults), so
# those ports must be free. The users meteord and fcgi-chat stay (as Debian
# policy allows). The deploy suite's private servers are not affected.
#
# Needs: root; cargo-deb (installed by tests/install-deps.sh, the same
# pinned version the build script installs), dpkg-dev, help2man, lintian,
# apache2, libapache2-mod-fcgid, chromium, node with playwright-core in
# tests/browser (npm ci), systemd (systemd-analyze), curl.
#
# Environment: DEB_PROFILE (default dev: the debug build the test command has
# already made; packaging is the same for release), KEEP_TMP=1 keeps the
# work directory (build logs, apt logs, browser logs). The lintian output is
# printed and kept in target/debian/lintian.txt.
#
# Last line: "deb: N passed, M failed"; exit status 1 if M > 0.

set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PROFILE=${DEB_PROFILE:-dev}
SP=4670 # meteord subscriber port (packaged default)
CP=4671 # meteord controller port (packaged default)
POLL_S=0.05
BROWSER_TIMEOUT_S=120

PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok - $1" | tr '\n' ' ' | sed 's/ *$//'; echo; }
fail() { FAILED=$((FAILED + 1)); echo "not ok - $1${2:+: $2}" | tr '\n' ' ' | sed 's/ *$//'; echo; }
note() { echo "  # $*"; }
finish() {
    echo "deb: $PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ]
    exit
}

WORK=$(mktemp -d --suffix=.deb-suite)
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get install -y -q --no-install-recommends)

# ------------------------------------------------------------ preconditions

if [ "$(id -u)" != 0 ]; then
    fail "running as root" "the suite installs packages"
    finish
fi
missing=""
for tool in cargo-deb lintian dpkg-shlibdeps help2man apache2 a2enconf curl node systemd-analyze; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -f /usr/lib/apache2/modules/mod_fcgid.so ] || missing="$missing libapache2-mod-fcgid"
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] || missing="$missing playwright-core(npm ci in tests/browser)"
if [ -n "$missing" ]; then
    fail "prerequisites" "missing:$missing (run tests/install-deps.sh)"
    finish
fi
for port in 80 "$SP" "$CP"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        fail "port $port on 127.0.0.1 is free" "something listens there"
        finish
    fi
done

# ------------------------------------------------------- machine state kept

POLICY=/usr/sbin/policy-rc.d
[ -e "$POLICY" ] && cp -p "$POLICY" "$WORK/policy-rc.d.saved"
cp -p /etc/apache2/ports.conf "$WORK/ports.conf.saved"
MODS_ENABLED=()
for mod in proxy proxy_http headers fcgid; do
    a2query -q -m "$mod" || MODS_ENABLED+=("$mod")
done

# What a process runs, "" when gone; zombies count as gone.
exe_of() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)
    [ -n "$state" ] && [ "$state" != Z ] && readlink "/proc/$1/exe" 2>/dev/null
}

# Pids of live processes running the packaged binaries (also after an
# upgrade or removal replaced the file: "... (deleted)").
packaged_pids() {
    local d exe
    for d in /proc/[0-9]*; do
        exe=$(exe_of "${d#/proc/}") || continue
        case "$exe" in
            /usr/sbin/meteord | "/usr/sbin/meteord (deleted)" | /usr/bin/fcgi-chat | "/usr/bin/fcgi-chat (deleted)")
                echo "${d#/proc/}" ;;
        esac
    done
}

CLEANED=0
cleanup() {
    [ "$CLEANED" = 1 ] && return
    CLEANED=1
    # Allow the stops the purge does, then purge whatever is still installed.
    printf '#!/bin/sh\nexit 0\n' >"$POLICY" && chmod 0755 "$POLICY"
    for pkg in fcgi-chat meteord; do
        if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'installed\|config-files'; then
            apt-get purge -y -q "$pkg" >>"$WORK/cleanup.log" 2>&1
        fi
    done
    service apache2 stop >>"$WORK/cleanup.log" 2>&1
    # -p: also forget a2en*'s record of the admin having enabled them.
    a2dissite -q -p meteord-push >/dev/null 2>&1
    a2disconf -q -p fcgi-chat >/dev/null 2>&1
    for mod in "${MODS_ENABLED[@]}"; do
        a2dismod -q -f -p "$mod" >/dev/null 2>&1
    done
    cp -p "$WORK/ports.conf.saved" /etc/apache2/ports.conf
    if [ -e "$WORK/policy-rc.d.saved" ]; then
        cp -p "$WORK/policy-rc.d.saved" "$POLICY"
    else
        rm -f "$POLICY"
    fi
    local pid
    for pid in $(packaged_pids); do
        kill -9 "$pid" 2>/dev/null
    done
    if [ "${KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A previous run that was killed may have left the packages installed.
for pkg in fcgi-chat meteord; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'installed\|config-files'; then
        printf '#!/bin/sh\nexit 0\n' >"$POLICY" && chmod 0755 "$POLICY"
        apt-get purge -y -q "$pkg" >"$WORK/purge-leftover.log" 2>&1
        note "purged $pkg left over from an earlier run"
    fi
done

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# One controller command; prints the first reply line (CR stripped).
controller() {
    local reply=""
    { exec 4<>"/dev/tcp/127.0.0.1/$CP"; } 2>/dev/null || return 1
    printf '%s\n' "$1" >&4
    IFS= read -r -t 3 reply <&4
    exec 4>&- 4<&-
    printf '%s\n' "${reply%$'\r'}"
}

# GET through Apache with a host name; prints the body.
get() { curl -s --max-time 5 --resolve "$1:80:127.0.0.1" "http://$1$2"; }

meteord_pid() { cat /run/meteord/meteord.pid 2>/dev/null; }

echo "# deb suite in $WORK (profile $PROFILE)"
T0=$(date +%s)

# ------------------------------------------------------------ (1) build

build() {
    "$ROOT/packaging/build-debs.sh" --profile "$PROFILE" --out "$WORK/debs-$1" --deb-revision "$1" "${@:2}" \
        >"$WORK/build-$1.log" 2>&1
}
t=$(date +%s)
if build 1 && [ -f "$(sed -n '/meteord_.*\.deb$/p' "$WORK/build-1.log")" ]; then
    DEB1_M=$(grep 'meteord_.*\.deb$' "$WORK/build-1.log")
    DEB1_F=$(grep 'fcgi-chat_.*\.deb$' "$WORK/build-1.log")
    pass "packaging/build-debs.sh builds $(basename "$DEB1_M") ($(stat -c %s "$DEB1_M") B) and $(basename "$DEB1_F") ($(stat -c %s "$DEB1_F") B) in $(($(date +%s) - t)) s"
else
    fail "packaging/build-debs.sh builds both packages" "$(tail -5 "$WORK/build-1.log")"
    finish
fi
VERSION1=$(dpkg-deb -f "$DEB1_M" Version)

# Control fields: computed shared-library Depends, section, priority.
for deb in "$DEB1_M" "$DEB1_F"; do
    pkg=$(dpkg-deb -f "$deb" Package)
    depends=$(dpkg-deb -f "$deb" Depends)
    if [[ "$depends" == *"libc6 (>= "* ]] && [[ "$depends" == *adduser* ]] \
        && [ -n "$(dpkg-deb -f "$deb" Section)" ] && [ "$(dpkg-deb -f "$deb" Priority)" = optional ]; then
        pass "$pkg: Depends: $depends; Section: $(dpkg-deb -f "$deb" Section); Priority: optional"
    else
        fail "$pkg: control fields" "Depends: $depends"
    fi
done

# The conffiles: everything under /etc, config.js of the page included.
conffiles() { dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles | sort | tr '\n' ' '; }
expect_m="/etc/apache2/sites-available/meteord-push.conf /etc/default/meteord /etc/init.d/meteord /etc/logrotate.d/meteord /etc/meteord.conf /etc/nginx/sites-available/meteord-push.conf "
expect_f="/etc/apache2/conf-available/fcgi-chat.conf /etc/fcgi-chat/config.js /etc/nginx/snippets/fcgi-chat.conf "
[ "$(conffiles "$DEB1_M")" = "$expect_m" ] && pass "meteord: conffiles $expect_m" \
    || fail "meteord: conffiles" "got $(conffiles "$DEB1_M")"
[ "$(conffiles "$DEB1_F")" = "$expect_f" ] && pass "fcgi-chat: conffiles $expect_f" \
    || fail "fcgi-chat: conffiles" "got $(conffiles "$DEB1_F")"

# ------------------------------------------------------------ (2) lintian

t=$(date +%s)
lintian --info --display-info --pedantic "$DEB1_M" "$DEB1_F" >"$WORK/lintian.txt" 2>&1
lintian_rc=$?
# Kept next to the build output for whoever reads the packages later.
mkdir -p "$ROOT/target/debian" && cp "$WORK/lintian.txt" "$ROOT/target/debian/lintian.txt"
errors=$(grep -c '^E: ' "$WORK/lintian.txt")
warnings=$(grep -c '^W: ' "$WORK/lintian.txt")
echo "  # lintian output ($(($(date +%s) - t)) s):"
sed 's/^/  #   /' "$WORK/lintian.txt"
# lintian exits 0 (clean) or 1 (errors); anything else means it did not run.
if [ "$errors" = 0 ] && [ "$lintian_rc" = 0 ]; then
    pass "lintian: 0 errors, $warnings warnings (each explained in docs/packaging.md)"
else
    fail "lintian: no errors" "$errors errors"
fi
# Every warning lintian gives must be one docs/packaging.md explains.
unexplained=""
for tag in $(sed -n 's/^W: [^ ]*: \([a-z0-9.+-]*\).*/\1/p' "$WORK/lintian.txt" | sort -u); do
    grep -q "$tag" "$ROOT/docs/packaging.md" || unexplained="$unexplained $tag"
done
[ -z "$unexplained" ] && pass "every lintian warning is explained in docs/packaging.md" \
    || fail "every lintian warning is explained in docs/packaging.md" "not:$unexplained"

# ---------------------------------------- (3) install: policy-rc.d honoured

# The first install runs under a policy that forbids every start: the
# postinst must not start meteord (invoke-rc.d asks policy-rc.d).
printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 0755 "$POLICY"
t=$(date +%s)
if "${APT[@]}" "$DEB1_M" "$DEB1_F" </dev/null >"$WORK/install-1.log" 2>&1; then
    pass "apt-get install ./$(basename "$DEB1_M") ./$(basename "$DEB1_F") ($(($(date +%s) - t)) s)"
else
    fail "apt-get install both packages" "$(tail -5 "$WORK/install-1.log")"
    finish
fi
if [ -z "$(packaged_pids)" ] && grep -q 'policy-rc.d denied execution of start' "$WORK/install-1.log"; then
    pass "postinst: policy-rc.d exit 101 keeps meteord from being started (invoke-rc.d says so)"
else
    fail "postinst honours policy-rc.d" "running: $(packaged_pids) $(grep -i 'invoke-rc.d' "$WORK/install-1.log" | tr '\n' ' ')"
fi
printf '#!/bin/sh\n# tests/deb/run.sh: services of this test may start\ncase "$1" in meteord|apache2) exit 0 ;; esac\nexit 101\n' >"$POLICY"

# Installed files, owners, users.
ok=1
for f in /usr/sbin/meteord /usr/bin/fcgi-chat /etc/meteord.conf /etc/default/meteord /etc/init.d/meteord \
    /etc/logrotate.d/meteord /usr/lib/systemd/system/meteord.service /usr/lib/systemd/system/fcgi-chat.service \
    /usr/share/meteord/public/meteor.js /usr/share/meteord/public/stream.html \
    /usr/share/fcgi-chat/index.html /usr/share/fcgi-chat/config.js /etc/fcgi-chat/config.js \
    /etc/apache2/conf-available/fcgi-chat.conf /etc/apache2/sites-available/meteord-push.conf \
    /etc/nginx/snippets/fcgi-chat.conf /usr/share/man/man8/meteord.8.gz /usr/share/man/man8/fcgi-chat.8.gz; do
    [ -e "$f" ] || { ok=0; note "missing $f"; }
done
[ "$ok" = 1 ] && pass "the packaged files are installed (binaries, conffiles, units, documents, man pages)" \
    || fail "the packaged files are installed"
if getent passwd meteord >/dev/null && [ "$(stat -c %U:%G:%a /var/lib/meteord)" = meteord:meteord:750 ] \
    && getent passwd fcgi-chat >/dev/null; then
    pass "system users meteord and fcgi-chat exist; /var/lib/meteord is meteord:meteord 0750"
else
    fail "users and /var/lib/meteord" "$(stat -c %U:%G:%a /var/lib/meteord 2>&1)"
fi
if cmp -s /usr/share/meteord/public/meteor.js "$ROOT/public/meteor.js" \
    && cmp -s /usr/share/fcgi-chat/chat.js "$ROOT/chat/chat.js" \
    && cmp -s /etc/logrotate.d/meteord "$ROOT/init/meteord.logrotate"; then
    pass "documents, chat page and logrotate file are the repository's files"
else
    fail "documents are the repository's files"
fi

# The derived files are the repository's, with only the documented changes:
# /usr/local -> /usr in the units, init script and defaults (comments
# aside), three lines turned on in meteord.conf (packaging/build-debs.sh).
derived_ok=1
same_code() { diff <(sed 's#/usr/local/#/usr/#g' "$1" | grep -v '^#') <(grep -v '^#' "$2") >/dev/null; }
same_code "$ROOT/init/meteord.service" /usr/lib/systemd/system/meteord.service || derived_ok=0
same_code "$ROOT/init/fcgi-chat.service" /usr/lib/systemd/system/fcgi-chat.service || derived_ok=0
same_code "$ROOT/init/meteord.init" /etc/init.d/meteord || derived_ok=0
same_code "$ROOT/init/meteord.default" /etc/default/meteord || derived_ok=0
conf_diff=$(diff "$ROOT/conf/meteord.conf" /etc/meteord.conf | grep '^>' | grep -v '^> #' | tr '\n' ' ')
[ "$conf_diff" = "> SubscriberIP 127.0.0.1 > SubscriberDocumentRoot /usr/share/meteord/public > HistoryFile /var/lib/meteord/meteord.history " ] || derived_ok=0
if [ "$derived_ok" = 1 ]; then
    pass "installed units, init script, defaults and meteord.conf are the repository's (paths /usr; conf: $conf_diff)"
else
    fail "installed derived files match the repository's" "conf adds: $conf_diff"
fi

# Maintainer scripts are idempotent: configuring again changes nothing and
# fails nothing (users, directories, boot links exist already).
if dpkg-reconfigure meteord >"$WORK/reconfigure.log" 2>&1 && dpkg-reconfigure fcgi-chat >>"$WORK/reconfigure.log" 2>&1 \
    && [ "$(stat -c %U:%G:%a /var/lib/meteord)" = meteord:meteord:750 ]; then
    pass "postinst runs again cleanly (dpkg-reconfigure meteord fcgi-chat)"
else
    fail "postinst runs again cleanly" "$(tail -3 "$WORK/reconfigure.log")"
fi
# dpkg-reconfigure ran the postinst under a policy that allows meteord: it
# (re)started meteord through invoke-rc.d. Stop it to start it by hand below.
pid=$(meteord_pid)
if [ -n "$pid" ] && [ "$(exe_of "$pid")" = /usr/sbin/meteord ] && grep -q 'Restarting meteord' "$WORK/reconfigure.log"; then
    pass "postinst starts meteord through invoke-rc.d where policy-rc.d allows it (pid $pid)"
else
    fail "postinst starts meteord where policy-rc.d allows it" "$(grep -i meteord "$WORK/reconfigure.log" | tr '\n' ' ')"
fi
/etc/init.d/meteord stop >/dev/null 2>&1

# --version of every binary is the package's upstream version.
upstream=${VERSION1%-*}
v_m=$(/usr/sbin/meteord --version)
v_f=$(/usr/bin/fcgi-chat --version)
v_b=$("$ROOT/target/debug/meteor-bench" --version 2>/dev/null)
if [ "$v_m" = "meteord $upstream" ] && [ "$v_f" = "fcgi-chat $upstream" ] && [ "$v_b" = "meteor-bench $upstream" ]; then
    pass "--version: '$v_m', '$v_f', '$v_b'"
else
    fail "--version on every binary" "'$v_m' '$v_f' '$v_b'"
fi

# Man pages: meteord(8) lists every parameter -help lists.
man_m=$(MANWIDTH=100 man 8 meteord 2>"$WORK/man.err")
missing_params=""
for name in $(/usr/sbin/meteord -help | sed -n 's/^  -\([A-Z][A-Za-z]*\) .*/\1/p'); do
    grep -q -- "-$name" <<<"$man_m" || missing_params="$missing_params $name"
done
if [ -n "$man_m" ] && [ -z "$missing_params" ] && grep -q SIGUSR1 <<<"$man_m" && grep -q /etc/meteord.conf <<<"$man_m"; then
    pass "man 8 meteord: every parameter of -help ($(/usr/sbin/meteord -help | grep -c '^  -[A-Z]')), the signals and the files"
else
    fail "man 8 meteord" "missing:$missing_params $(head -2 "$WORK/man.err")"
fi
man_f=$(MANWIDTH=100 man 8 fcgi-chat 2>/dev/null)
if grep -q -- '--listen' <<<"$man_f" && grep -q METEOR_CONTROLLER <<<"$man_f"; then
    pass "man 8 fcgi-chat: options (from --help) and environment"
else
    fail "man 8 fcgi-chat"
fi

# The units as installed pass systemd-analyze verify.
for unit in meteord.service fcgi-chat.service; do
    if out=$(systemd-analyze verify --man=no "/usr/lib/systemd/system/$unit" 2>&1) && [ -z "$out" ]; then
        pass "systemd-analyze verify /usr/lib/systemd/system/$unit"
    else
        fail "systemd-analyze verify $unit" "$out"
    fi
done

# The nginx files as installed: a server block that includes the snippet,
# next to the push site, passes nginx -t (a private nginx.conf; nothing
# listens).
if command -v nginx >/dev/null 2>&1; then
    mkdir -p "$WORK/nginx/logs"
    cat >"$WORK/nginx/nginx.conf" <<EOF
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log;
events { }
http {
    include /etc/nginx/mime.types;
    access_log off;
    include /etc/nginx/sites-available/meteord-push.conf;
    server { listen 127.0.0.1:80; server_name chat.test; include /etc/nginx/snippets/fcgi-chat.conf; }
}
EOF
    if out=$(nginx -t -q -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>&1); then
        pass "nginx -t: /etc/nginx/snippets/fcgi-chat.conf in a server block, sites-available/meteord-push.conf"
    else
        fail "nginx -t with the installed nginx files" "$out"
    fi
fi

# ------------------------------------------------ (4) meteord through SysV

if out=$(/etc/init.d/meteord start 2>&1) && port_open "$SP" && port_open "$CP"; then
    pass "/etc/init.d/meteord start: ports $SP and $CP accept ($out)"
else
    fail "/etc/init.d/meteord start" "$out"
fi
PID1=$(meteord_pid)
if [ -n "$PID1" ] && [ "$(exe_of "$PID1")" = /usr/sbin/meteord ] && [ "$(stat -c %U "/proc/$PID1")" = meteord ]; then
    pass "meteord runs as user meteord (pid $PID1)"
else
    fail "meteord runs as user meteord" "pid '$PID1'"
fi
listen=$(ss -ltnH "sport = :$SP" 2>/dev/null | awk '{print $4}' | tr '\n' ' ')
[ "$listen" = "127.0.0.1:$SP " ] && pass "the packaged meteord.conf keeps the subscriber port on loopback ($listen)" \
    || fail "subscriber port on loopback only" "listens on '$listen'"
id1=$(controller "ADDMESSAGE deb_probe before-upgrade")
id1=${id1#OK$'\t'}

# --------------------------------------------- (5) Apache with the snippets

# The system Apache, as an admin would set it up, on loopback only.
sed -i 's/^Listen 80$/Listen 127.0.0.1:80/' /etc/apache2/ports.conf
# The README's steps: the push host name into the site (our test domain),
# the modules, the two snippets.
sed -i 's/example\.com/chat.test/g' /etc/apache2/sites-available/meteord-push.conf
if a2enmod -q proxy_http headers fcgid >"$WORK/a2en.log" 2>&1 && a2enconf -q fcgi-chat >>"$WORK/a2en.log" 2>&1 \
    && a2ensite -q meteord-push >>"$WORK/a2en.log" 2>&1 && apache2ctl configtest >>"$WORK/a2en.log" 2>&1; then
    pass "a2enconf fcgi-chat && a2ensite meteord-push: apache2ctl configtest passes"
else
    fail "a2enconf fcgi-chat && a2ensite meteord-push" "$(tail -3 "$WORK/a2en.log")"
fi
service apache2 restart >"$WORK/apache-start.log" 2>&1
for _ in $(seq 100); do port_open 80 && break; sleep "$POLL_S"; done
if port_open 80; then
    pass "Apache is up on 127.0.0.1:80"
else
    fail "Apache is up" "$(tail -3 "$WORK/apache-start.log")"
fi

if get data.chat.test /meteor.js | cmp -s - /usr/share/meteord/public/meteor.js; then
    pass "meteord-push site: data.chat.test/meteor.js is the installed /usr/share/meteord/public/meteor.js"
else
    fail "meteord-push site serves meteor.js"
fi
if get chat.test /chat/ | cmp -s - /usr/share/fcgi-chat/index.html \
    && get chat.test /chat/config.js | cmp -s - /etc/fcgi-chat/config.js; then
    pass "fcgi-chat conf: /chat/ is /usr/share/fcgi-chat, /chat/config.js is /etc/fcgi-chat/config.js"
else
    fail "fcgi-chat conf serves the chat page"
fi
body=$(curl -s -w ' %{http_code}' --max-time 10 --resolve chat.test:80:127.0.0.1 \
    --data-urlencode user=deb --data-urlencode message=hello-from-curl http://chat.test/chat/chat.php)
[[ "$body" == *'"ok":true'*' 200' ]] && pass "POST /chat/chat.php through mod_fcgid: $body" \
    || fail "POST /chat/chat.php" "$body"

# Two Chromium pages chat: page from the installed files through the
# default site, stream and post through the packaged snippets.
for mode in stream longpoll; do
    log="$WORK/browser-$mode.log"
    if timeout "$BROWSER_TIMEOUT_S" node "$ROOT/tests/deploy/chat-e2e.js" "deb/$mode" \
        "http://chat.test/chat/?mode=$mode" >"$log" 2>&1; then
        pass "deb/$mode: two Chromium pages chat through Apache ($(sed -n 's/^browser-latency-ms //p' "$log") ms live)"
    else
        fail "deb/$mode: two Chromium pages chat through Apache" "$(tail -3 "$log" | tr '\n' ' ')"
    fi
    sed 's/^/  # /' "$log"
done

# ------------------------------------------------------- (6) upgrade

# The admin's edit: a different directory index (visible over HTTP).
sed -i 's/^# *DirectoryIndex .*/DirectoryIndex stream.html/' /etc/meteord.conf
t=$(date +%s)
if build 2 --fast; then
    DEB2_M=$(grep 'meteord_.*\.deb$' "$WORK/build-2.log")
    DEB2_F=$(grep 'fcgi-chat_.*\.deb$' "$WORK/build-2.log")
    VERSION2=$(dpkg-deb -f "$DEB2_M" Version)
    pass "rebuilt at $VERSION2 ($(($(date +%s) - t)) s)"
else
    fail "rebuild at a higher revision" "$(tail -5 "$WORK/build-2.log")"
    finish
fi
if dpkg --compare-versions "$VERSION2" gt "$VERSION1" \
    && "${APT[@]}" "$DEB2_M" "$DEB2_F" </dev/null >"$WORK/install-2.log" 2>&1 \
    && [ "$(dpkg-query -W -f='${Version}' meteord)" = "$VERSION2" ]; then
    pass "apt-get install upgrades $VERSION1 -> $VERSION2"
else
    fail "upgrade to $VERSION2" "$(tail -5 "$WORK/install-2.log")"
fi
if grep -q '^DirectoryIndex stream.html$' /etc/meteord.conf && [ ! -e /etc/meteord.conf.dpkg-dist ] \
    && grep -q 'data\.chat\.test' /etc/apache2/sites-available/meteord-push.conf; then
    pass "the edited conffiles /etc/meteord.conf and meteord-push.conf survive the upgrade"
else
    fail "the edited conffiles survive the upgrade" "$(grep -n DirectoryIndex /etc/meteord.conf | head -2)"
fi
PID2=$(meteord_pid)
for _ in $(seq 100); do port_open "$SP" && break; sleep "$POLL_S"; done
if [ -n "$PID2" ] && [ "$PID2" != "$PID1" ] && [ -z "$(exe_of "$PID1")" ] \
    && [ "$(exe_of "$PID2")" = /usr/sbin/meteord ] && [ "$(stat -c %U "/proc/$PID2")" = meteord ]; then
    pass "the upgrade restarted meteord (pid $PID1 -> $PID2, the new binary, user meteord)"
else
    fail "the upgrade restarted meteord" "pid $PID1 -> '$PID2' ($(exe_of "${PID2:-0}"))"
fi
if get data.chat.test / | cmp -s - /usr/share/meteord/public/stream.html; then
    pass "the restarted daemon reads the edited file (GET / is stream.html)"
else
    fail "the restarted daemon reads the edited file"
fi
id2=$(controller "ADDMESSAGE deb_probe after-upgrade")
id2=${id2#OK$'\t'}
if [[ "$id1" =~ ^[0-9]+$ ]] && [[ "$id2" =~ ^[0-9]+$ ]] && [ "$id2" -gt "$id1" ] \
    && [ "$(stat -c %U /var/lib/meteord/meteord.state 2>/dev/null)" = meteord ]; then
    pass "message ids go on across the restart ($id1 -> $id2; state file /var/lib/meteord/meteord.state)"
else
    fail "message ids go on across the restart" "'$id1' -> '$id2'"
fi
history=$(curl -s --max-time 5 "http://127.0.0.1:$SP/push/deb/simplepoll/deb_probe.h")
if [[ "$history" == *"Meteor.process($id1,\"deb_probe\",\"before-upgrade\");"* ]] \
    && [ "$(stat -c %U /var/lib/meteord/meteord.history 2>/dev/null)" = meteord ]; then
    pass "the channel's history survives the restart (message $id1; /var/lib/meteord/meteord.history)"
else
    fail "the channel's history survives the restart" "$history"
fi
body=$(curl -s -w ' %{http_code}' --max-time 10 --resolve chat.test:80:127.0.0.1 \
    --data-urlencode user=deb --data-urlencode message=after-upgrade http://chat.test/chat/chat.php)
[[ "$body" == *'"ok":true'*' 200' ]] && pass "POST /chat/chat.php after the upgrade: $body" \
    || fail "POST /chat/chat.php after the upgrade" "$body"

# --------------------------------------------------------- (7) purge

if apt-get purge -y -q meteord fcgi-chat </dev/null >"$WORK/purge.log" 2>&1; then
    pass "apt-get purge meteord fcgi-chat"
else
    fail "apt-get purge meteord fcgi-chat" "$(tail -5 "$WORK/purge.log")"
fi
for _ in $(seq 100); do [ -z "$(packaged_pids)" ] && break; sleep "$POLL_S"; done
left=$(packaged_pids)
[ -z "$left" ] && pass "no meteord or fcgi-chat process is left (Apache's fcgid children included)" \
    || fail "no process is left" "pids $left"
left=""
for f in /etc/meteord.conf /etc/default/meteord /etc/init.d/meteord /etc/logrotate.d/meteord \
    /etc/apache2/sites-available/meteord-push.conf /etc/apache2/sites-enabled/meteord-push.conf \
    /etc/nginx/sites-available/meteord-push.conf /etc/fcgi-chat /etc/apache2/conf-available/fcgi-chat.conf \
    /etc/apache2/conf-enabled/fcgi-chat.conf /etc/nginx/snippets/fcgi-chat.conf /var/lib/meteord \
    /var/log/meteord /run/meteord /run/fcgi-chat /usr/share/meteord /usr/share/fcgi-chat \
    /etc/systemd/system/multi-user.target.wants/meteord.service /etc/rc2.d/S01meteord \
    /var/lib/apache2/site/enabled_by_admin/meteord-push /var/lib/apache2/conf/enabled_by_admin/fcgi-chat; do
    [ -e "$f" ] || [ -L "$f" ] && left="$left $f"
done
for f in /etc/rc?.d/*meteord /var/lib/dpkg/info/meteord.* /var/lib/dpkg/info/fcgi-chat.*; do
    [ -e "$f" ] && left="$left $f"
done
[ -z "$left" ] && pass "no configuration, state, log or boot link is left" || fail "nothing is left" "$left"
owned=$(find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path "$ROOT" \) -prune \
    -o \( -user meteord -o -user fcgi-chat \) -print 2>/dev/null | head -5)
owned="$owned$(find /run -xdev \( -user meteord -o -user fcgi-chat \) -print 2>/dev/null | head -5)"
[ -z "$owned" ] && pass "no file owned by the users meteord or fcgi-chat is left (the users stay)" \
    || fail "no user-owned file is left" "$owned"
if apache2ctl configtest >"$WORK/configtest-after.log" 2>&1; then
    pass "Apache's configuration is still valid after the purge"
else
    fail "Apache's configuration is still valid after the purge" "$(tail -2 "$WORK/configtest-after.log")"
fi

cleanup
echo "# deb suite: $(($(date +%s) - T0)) s"
finish
