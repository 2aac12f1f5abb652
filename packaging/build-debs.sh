#!/usr/bin/env bash
# Builds the Debian packages meteord_<version>_<arch>.deb and
# fcgi-chat_<version>_<arch>.deb from this workspace with cargo-deb.
#
#   packaging/build-debs.sh [--profile release|dev] [--deb-revision N] [--out DIR] [--fast]
#   packaging/build-debs.sh --install-tool     # only install cargo-deb, then exit
#
# Steps: (1) install the pinned cargo-deb from crates.io if it is not
# there; (2) build meteord and fcgi-chat with cargo (profile "release" by
# default); (3) write the few files that differ from the repository's
# (target/packaging/: units, init script and defaults with /usr paths instead
# of /usr/local, the packaged meteord.conf, the Apache and nginx chat
# snippets cut out of conf/*/chat-www.conf, the man pages generated from the
# binaries, the changelogs); (4) `cargo deb --no-build` for both crates.
# Everything else in the packages is the repository's file itself (the list
# is [package.metadata.deb] in meteord/Cargo.toml and fcgi-chat/Cargo.toml;
# docs/packaging.md explains each choice).
#
# Needs: cargo, dpkg-dev (dpkg-shlibdeps computes Depends), help2man
# (fcgi-chat(8)), gzip. Downloads only from crates.io (cargo-deb).
# --fast: lighter xz compression (bigger .deb, quicker; for tests).
# Prints the paths of the two .deb files as its last two lines.

set -euo pipefail

# The one pinned tool version; bump deliberately (its manifest keys and
# generated maintainer-script snippets are what the packages rely on).
CARGO_DEB_VERSION=3.8.0

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

profile=release
revision=1
fast=
out="$ROOT/target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile=$2; shift 2 ;;
        --deb-revision) revision=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --install-tool) install_only=1; shift ;;
        --fast) fast=--fast; shift ;;
        *) echo "usage: $0 [--profile release|dev] [--deb-revision N] [--out DIR] [--fast] | --install-tool" >&2; exit 64 ;;
    esac
done

# ------------------------------------------------------------ (1) cargo-deb
have=$(cargo deb --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$CARGO_DEB_VERSION" ]; then
    echo "build-debs: installing cargo-deb $CARGO_DEB_VERSION from crates.io (have: ${have:-none})" >&2
    cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
fi
[ "${install_only:-0}" = 1 ] && exit 0

for tool in dpkg-shlibdeps help2man gzip; do
    command -v "$tool" >/dev/null || { echo "build-debs: $tool is missing (apt-get install dpkg-dev help2man gzip)" >&2; exit 1; }
done

# Reproducible dates (help2man's .TH line, cargo-deb's file times): the last
# commit's, unless the caller sets one. Given to those two only: cargo build
# with a different SOURCE_DATE_EPOCH than the test command's build would
# rebuild crates that depend on it.
sde=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# ------------------------------------------------------------- (2) binaries
# The whole workspace, as the test command builds it: building only the two
# packaged crates would unify dependency features differently (meteor-bench
# adds tokio features) and rebuild tokio and everything above it.
cargo build --quiet --profile "$profile" --workspace
case "$profile" in dev) bindir=target/debug ;; *) bindir=target/$profile ;; esac
version=$("$bindir/meteord" --version | awk '{print $2}')

# ------------------------------------------------------- (3) derived files
GEN="$ROOT/target/packaging"
rm -rf "$GEN"
mkdir -p "$GEN/meteord" "$GEN/fcgi-chat" "$out"

# The repository's units, init script and defaults describe a build from
# source installed under /usr/local; the package installs under /usr. Same
# files otherwise, except that their "Install:" comment block (manual copy
# steps) becomes one line saying the package did it.
to_usr() {
    awk -v pkg="$2" '
        /^# Install[: ]/ { print "# Installed by the " pkg " Debian package."; skip = 1; next }
        skip && /^#   / { next }
        { skip = 0
          gsub("/usr/local/sbin/", "/usr/sbin/"); gsub("/usr/local/bin/", "/usr/bin/")
          gsub("/usr/local/share/", "/usr/share/"); print }' "$1"
}
to_usr init/meteord.service meteord >"$GEN/meteord/meteord.service"
to_usr init/meteord.init meteord >"$GEN/meteord/meteord.init"
to_usr init/meteord.default meteord >"$GEN/meteord/meteord.default"
to_usr init/fcgi-chat.service fcgi-chat >"$GEN/fcgi-chat/fcgi-chat.service"

# /etc/meteord.conf: the shipped, commented configuration with the three
# settings the packaged layout needs turned on: the documents are under
# /usr/share/meteord/public, the subscriber port listens on loopback only
# (the packaged Apache/nginx site is the way in from outside), and the
# channels' histories are kept in /var/lib/meteord (docs/history.md).
sed -e 's|^# *SubscriberDocumentRoot .*|SubscriberDocumentRoot /usr/share/meteord/public|' \
    -e 's|^# *SubscriberIP .*|SubscriberIP 127.0.0.1|' \
    -e 's|^# *HistoryFile$|HistoryFile /var/lib/meteord/meteord.history|' \
    -e '2a\
#\
# (Debian package: this copy turns on SubscriberIP 127.0.0.1,\
# SubscriberDocumentRoot /usr/share/meteord/public and HistoryFile\
# /var/lib/meteord/meteord.history; the built-in copy leaves them at their\
# defaults.)' \
    conf/meteord.conf >"$GEN/meteord/meteord.conf"
grep -q '^SubscriberDocumentRoot /usr/share/meteord/public$' "$GEN/meteord/meteord.conf"
grep -q '^SubscriberIP 127.0.0.1$' "$GEN/meteord/meteord.conf"
grep -q '^HistoryFile /var/lib/meteord/meteord.history$' "$GEN/meteord/meteord.conf"

# Apache: /etc/apache2/conf-available/fcgi-chat.conf (a2enconf fcgi-chat) is
# the "BEGIN fcgi-chat".."END fcgi-chat" block of conf/apache/chat-www.conf
# (the part that docs/deploy.md says to paste into an existing site), with
# the packaged binary and the chat page under /chat/ of every site.
{
    cat <<'EOF'
# Apache 2.4: the chat page of the fcgi-chat package under /chat/ of every
# site, and its POST to /chat/chat.php answered by fcgi-chat under mod_fcgid.
# Enable: a2enmod fcgid && a2enconf fcgi-chat && systemctl reload apache2
# The page's settings (where meteord is) are in /etc/fcgi-chat/config.js.
# Generated from conf/apache/chat-www.conf by packaging/build-debs.sh.

EOF
    sed -n '/^ *# -* BEGIN fcgi-chat/,/^ *# -* END fcgi-chat/p' conf/apache/chat-www.conf \
        | sed -e 's/^    //' \
              -e 's|Alias /chat\.php /usr/local/bin/fcgi-chat|Alias /chat/chat.php /usr/bin/fcgi-chat|' \
              -e 's|<Location /chat\.php>|<Location /chat/chat.php>|'
    cat <<'EOF'

# After the more specific /chat/chat.php above (mod_alias takes the first
# match). config.js is a link to /etc/fcgi-chat/config.js.
Alias /chat /usr/share/fcgi-chat
<Directory /usr/share/fcgi-chat>
    Options FollowSymLinks
    AllowOverride None
    DirectoryIndex index.html
    Require all granted
</Directory>
EOF
} >"$GEN/fcgi-chat/apache-fcgi-chat.conf"
grep -q 'Alias /chat/chat.php /usr/bin/fcgi-chat' "$GEN/fcgi-chat/apache-fcgi-chat.conf"

# nginx: /etc/nginx/snippets/fcgi-chat.conf, included in a server block; its
# chat.php location is the one of conf/nginx/chat-www.conf.
{
    cat <<'EOF'
# nginx: the chat page of the fcgi-chat package under /chat/, and its POST
# to /chat/chat.php passed to fcgi-chat's socket. Add to a server { } block:
#     include snippets/fcgi-chat.conf;
# and start the responder: systemctl enable --now fcgi-chat
# Generated from conf/nginx/chat-www.conf by packaging/build-debs.sh.

location /chat/ {
    alias /usr/share/fcgi-chat/;
    index index.html;
}

EOF
    sed -n '/location = \/chat\.php {/,/^    }/p' conf/nginx/chat-www.conf \
        | sed -e 's/^    //' -e 's|location = /chat\.php {|location = /chat/chat.php {|'
} >"$GEN/fcgi-chat/nginx-fcgi-chat.conf"
grep -q 'fastcgi_pass unix:/run/fcgi-chat/fcgi-chat.sock;' "$GEN/fcgi-chat/nginx-fcgi-chat.conf"


# Man pages, from the binaries themselves: meteord(8) from the parameter
# table behind -help (meteord -manpage), fcgi-chat(8) from fcgi-chat --help
# by help2man plus packaging/fcgi-chat.h2m.
"$bindir/meteord" -manpage | gzip -9n >"$GEN/meteord/meteord.8.gz"
SOURCE_DATE_EPOCH=$sde help2man --no-info --section=8 --include=packaging/fcgi-chat.h2m \
    --name="FastCGI chat responder for meteord" --version-string="$version" \
    "$bindir/fcgi-chat" | gzip -9n >"$GEN/fcgi-chat/fcgi-chat.8.gz"

# Debian changelogs (one entry: this build), dated by the last commit so
# rebuilding the same tree gives the same file.
date=$(git log -1 --format=%aD 2>/dev/null || date -R)
for pkg in meteord fcgi-chat; do
    cat >"$GEN/$pkg/changelog" <<EOF
$pkg ($version-$revision) unstable; urgency=medium

  * Built from the meteord workspace by packaging/build-debs.sh.

 -- meteord maintainers <maintainers@meteord.example.org>  $date
EOF
done

# ------------------------------------------------------------ (4) packages
debs=()
for pkg in meteord fcgi-chat; do
    deb=$(SOURCE_DATE_EPOCH=$sde cargo deb -p "$pkg" --no-build --profile "$profile" --strip \
        --deb-revision "$revision" -o "$out" --quiet ${fast:-})
    debs+=("$deb")
done
printf '%s\n' "${debs[@]}"
