#!/usr/bin/env bash
# soak.sh -- a bounded soak of build/fanout: many requests with deadline hits and broken
# backends; open fds, threads and RSS must not grow; under valgrind, no definite leaks.
#
#   bash bench/soak.sh                 100,000 requests (+5,000 warm-up), concurrency 32
#   bash bench/soak.sh --valgrind      3,000 requests under valgrind --leak-check=full
#   options: --requests N  --warmup N  --concurrency N
#
# Backends (all on 127.0.0.1): nginx serves the three good ones when it is installed
# (scripts/deps.sh bench), else bench/soak_backend.py does; soak_backend.py always serves the
# hanging one (10% of requests hit a 50 ms endpoint deadline) and the broken ones (5%: reset in
# head or body, close after the head, non-JSON, bad chunk, short body). The load and the
# judgement are bench/soak_load.py: every answer is checked; fds (/proc/PID/fd), threads and
# VmRSS are sampled after the warm-up and after the run, each with the process quiet.
# FANOUT_BIN=path measures another binary (skips make). Every process started here is stopped
# by PID on exit; the temp dir /tmp/fanout-soak.* is removed (kept with SOAK_KEEP=1).
#
# Exit: 0 pass, 1 growth, wrong answers or definite leaks, 2 set-up failure.
set -euo pipefail

cd "$(dirname "$0")/.."
valgrind=0
requests=""
warmup=""
conc=32
while [ $# -gt 0 ]; do
    case "$1" in
    --valgrind) valgrind=1 ;;
    --requests) requests=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --concurrency) conc=$2; shift ;;
    *) echo "usage: $0 [--valgrind] [--requests N] [--warmup N] [--concurrency N]" >&2; exit 2 ;;
    esac
    shift
done
if [ $valgrind = 1 ]; then
    requests=${requests:-3000}
    warmup=${warmup:-200}
else
    requests=${requests:-100000}
    warmup=${warmup:-5000}
fi
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

tmp=$(mktemp -d /tmp/fanout-soak.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [ "${SOAK_KEEP:-0}" = 1 ]; then
        echo "soak: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

die() {
    echo "soak: $*" >&2
    exit 2
}

# ---- the binary ----
if [ -n "${FANOUT_BIN:-}" ]; then
    src=$FANOUT_BIN
else
    make -s all >/dev/null || die "make failed"
    src=build/fanout
fi
cp "$src" "$tmp/fanout"
if [ $valgrind = 1 ]; then
    command -v valgrind >/dev/null || die "valgrind is not installed (scripts/deps.sh bench)"
fi

free_port() {
    $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() { # host port seconds
    $PY - "$1" "$2" "$3" <<'EOF'
import socket, sys, time
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
EOF
}

# ---- backends ----
$PY bench/soak_backend.py >"$tmp/evil.out" 2>"$tmp/evil.err" &
pids+=($!)
for _ in $(seq 100); do
    grep -q '^PORT ' "$tmp/evil.out" 2>/dev/null && break
    sleep 0.05
done
evil_port=$(sed -n 's/^PORT //p' "$tmp/evil.out")
[ -n "$evil_port" ] || die "soak_backend.py did not start: $(cat "$tmp/evil.err")"
evil=http://127.0.0.1:$evil_port

nginx_bin=$(command -v nginx || true)
[ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
if [ -n "$nginx_bin" ]; then
    good_port=$(free_port)
    mkdir -p "$tmp/nginx/logs"
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$good_port;
        default_type application/json;
        location = /a { return 200 '{"a":1,"id":"\$arg_id"}'; }
        location = /b { return 200 '{"b":[1,2,3]}'; }
        location = /c { return 200 '{"c":"merged"}'; }
    }
}
EOF
    "$nginx_bin" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' \
        >"$tmp/nginx/out" 2>&1 &
    pids+=($!)
    wait_port 127.0.0.1 "$good_port" 10 || die "nginx did not start: $(cat "$tmp/nginx/out")"
    good=http://127.0.0.1:$good_port
    good_name="nginx"
else
    good=$evil
    good_name="soak_backend.py"
fi

# ---- fanout ----
cat >"$tmp/fanout.json" <<EOF
{
  "timeout_ms": 2000,
  "aggregate": {"allow_hosts": ["${good#http://}"], "timeout_ms": 1000},
  "endpoints": [
    {"path": "/api/ok/{id}", "backends": [
      {"name": "a", "url": "$good/a?id={id}"},
      {"name": "b", "url": "$good/b"},
      {"name": "c", "url": "$good/c", "merge": true}]},
    {"path": "/api/deadline/{id}", "timeout_ms": 50, "backends": [
      {"name": "a", "url": "$good/a?id={id}"},
      {"name": "h", "url": "$evil/hang"}]},
    {"path": "/api/broken/{id}", "backends": [
      {"name": "a", "url": "$good/a?id={id}"},
      {"name": "x", "url": "$evil/broken?k={id}"}]}
  ]
}
EOF
"$tmp/fanout" --check -c "$tmp/fanout.json" >/dev/null || die "config refused"
run=("$tmp/fanout" -c "$tmp/fanout.json" --listen 127.0.0.1:0)
start_wait=10
if [ $valgrind = 1 ]; then
    run=(valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
         --error-exitcode=3 --num-callers=30 --log-file="$tmp/valgrind.log" "${run[@]}")
    start_wait=60
fi
"${run[@]}" >"$tmp/fanout.out" 2>"$tmp/fanout.err" &
fo_pid=$!
pids+=($fo_pid)
port=""
for _ in $(seq $((start_wait * 20))); do
    port=$(grep -m1 '"event":"listening"' "$tmp/fanout.out" 2>/dev/null |
        sed -n 's/.*"port":\([0-9]*\).*/\1/p' || true)
    [ -n "$port" ] && break
    kill -0 $fo_pid 2>/dev/null || break
    sleep 0.05
done
[ -n "$port" ] || die "fanout did not start: $(tail -5 "$tmp/fanout.err")"

echo "soak: fanout pid $fo_pid port $port$([ $valgrind = 1 ] && echo ' (valgrind)'), good backends: $good_name, broken/hanging: soak_backend.py"
mkdir -p build/soak
out_json=build/soak/$([ $valgrind = 1 ] && echo valgrind || echo soak).json
load_args=(--port "$port" --pid "$fo_pid" --good "$good" --requests "$requests"
           --warmup "$warmup" --concurrency "$conc" --json-out "$out_json")
[ $valgrind = 1 ] && load_args+=(--no-growth-check --quiet 3)
rc=0
$PY bench/soak_load.py "${load_args[@]}" | grep -v '^SOAK_JSON ' || rc=1

# ---- stop fanout: exit 0 (valgrind: 3 = errors such as definite leaks) ----
kill -TERM $fo_pid
fo_rc=""
for _ in $(seq 1200); do # up to 120 s: valgrind's leak check takes a while
    if ! kill -0 $fo_pid 2>/dev/null; then
        set +e
        wait $fo_pid
        fo_rc=$?
        set -e
        break
    fi
    sleep 0.1
done
[ -n "$fo_rc" ] || { echo "FAIL: fanout did not exit after SIGTERM"; exit 1; }
echo "soak: fanout exited $fo_rc"
if grep -qE 'AddressSanitizer|runtime error:' "$tmp/fanout.err"; then
    echo "FAIL: sanitizer report on stderr"
    rc=1
fi
if [ $valgrind = 1 ]; then
    grep -E 'in use at exit|total heap usage|All heap blocks|definitely lost|indirectly lost|possibly lost|still reachable|ERROR SUMMARY' \
        "$tmp/valgrind.log" | sed 's/^==[0-9]*== */  valgrind: /'
    definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$tmp/valgrind.log" |
        tr -d , | head -1)
    if [ "$fo_rc" = 3 ] || [ "${definite:-0}" != 0 ]; then
        echo "FAIL: valgrind reports errors or definite leaks (exit $fo_rc):"
        sed -n '/definitely lost in/,/^==[0-9]*== $/p; /Invalid \|uninitialised/,/^==[0-9]*== $/p' \
            "$tmp/valgrind.log" | head -80
        rc=1
    elif [ "$fo_rc" != 0 ]; then
        echo "FAIL: fanout exited $fo_rc under valgrind"
        rc=1
    fi
elif [ "$fo_rc" != 0 ]; then
    echo "FAIL: fanout exited $fo_rc after SIGTERM"
    rc=1
fi
[ $rc = 0 ] && echo "soak: PASS" || echo "soak: FAIL"
exit $rc
