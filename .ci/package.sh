#!/usr/bin/env bash
# .ci/package.sh -- the Debian package for real (as root): build it from a copy of the tree
# with dpkg-buildpackage, lintian (errors fail), dpkg -i, `fanout --check` on the installed
# config, the installed binary serving the embedded default (GET /health, /api/dashboard/42),
# then dpkg -r must leave only the conffile and dpkg -P nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(mktemp -d /tmp/fanout-pkg.XXXXXX)
PID=
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { echo "pkg: $*"; }
fail() {
    echo "pkg: FAILED $*" >&2
    exit 1
}

# dpkg-buildpackage writes its results next to the tree: build in a copy of the work tree.
mkdir "$WORK/src"
tar -C "$ROOT" --exclude=./build --exclude=./.git -c . | tar -C "$WORK/src" -x
(cd "$WORK/src" && dpkg-buildpackage -us -uc -b >"$WORK/build.log" 2>&1) || {
    tail -n 40 "$WORK/build.log"
    fail "dpkg-buildpackage -us -uc -b"
}
deb=$(ls "$WORK"/fanout_*.deb)
step "built $(basename "$deb")"

lintian --fail-on error "$deb" | tee "$WORK/lintian.txt" || fail "lintian: errors"
step "lintian: $(grep -c '^E:' "$WORK/lintian.txt" || true) errors," \
    "$(grep -c '^W:' "$WORK/lintian.txt" || true) warnings"

dpkg -i "$deb" >/dev/null || fail "dpkg -i"
out=$(/usr/bin/fanout --check -c /etc/fanout/fanout.json) || fail "fanout --check: $out"
[ "$out" = "/etc/fanout/fanout.json: ok" ] || fail "fanout --check said: $out"
step "$out"
[ -f /lib/systemd/system/fanout.service ] || fail "no unit in /lib/systemd/system"
if [ -e /etc/systemd/system/multi-user.target.wants/fanout.service ]; then
    fail "the unit was enabled"
fi
man -w fanout >/dev/null || fail "man page fanout(1) not found"
man -w 5 fanout.json >/dev/null || fail "man page fanout.json(5) not found"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /lib/systemd/system/fanout.service || fail "systemd-analyze verify"
    systemd-analyze security --offline=yes /lib/systemd/system/fanout.service | tail -n 1
fi

# The installed binary on the embedded default.
/usr/bin/fanout --listen 127.0.0.1:0 >"$WORK/out.log" 2>"$WORK/err.log" &
PID=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/.*"event":"listening".*"port":\([0-9]*\).*/\1/p' "$WORK/out.log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || fail "installed fanout did not listen: $(cat "$WORK/err.log")"
curl -fsS -m 5 "http://127.0.0.1:$port/health" | grep -q '"status":"ok"' || fail "GET /health"
curl -fsS -m 5 -D "$WORK/h" -o "$WORK/b" "http://127.0.0.1:$port/api/dashboard/42"
grep -qi '^x-fanout-complete: true' "$WORK/h" || fail "GET /api/dashboard/42: $(cat "$WORK/h")"
grep -q '"id":"42"' "$WORK/b" || fail "GET /api/dashboard/42 body: $(cat "$WORK/b")"
kill -TERM "$PID"
wait "$PID" || fail "installed fanout did not exit 0 on SIGTERM"
PID=
step "installed /usr/bin/fanout served /health and /api/dashboard/42, exit 0 on SIGTERM"

files=$(dpkg -L fanout | while read -r f; do [ -f "$f" ] && echo "$f"; done)
dpkg -r fanout >/dev/null || fail "dpkg -r"
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done || true)
[ "$left" = "/etc/fanout/fanout.json" ] || fail "after dpkg -r, left: ${left:-nothing}"
step "dpkg -r: only the conffile /etc/fanout/fanout.json is left"
dpkg -P fanout >/dev/null || fail "dpkg -P"
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done || true)
[ -z "$left" ] || fail "after dpkg -P, left: $left"
[ ! -e /etc/fanout ] || fail "after dpkg -P, /etc/fanout is left"
if dpkg -l fanout 2>/dev/null | grep -q '^[ir]'; then fail "dpkg still knows fanout"; fi
step "dpkg -P: nothing left"
echo "pkg: ok"
