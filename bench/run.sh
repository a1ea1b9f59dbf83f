#!/usr/bin/env bash
# run.sh -- the fanout benchmark (`make bench`): installs what is missing, builds, raises the
# open-files limit, then runs bench/bench.py, which starts its own nginx and a fanout per
# scenario on 127.0.0.1, prints the table and saves bench/results/latest.{json,md}.
#
# Knobs (environment): BENCH_RUNS, BENCH_ONLY, BENCH_DURATION, BENCH_FANOUT_EXTRA, FANOUT_BIN
# (see bench/bench.py). Every process the benchmark starts is stopped by PID when it ends,
# also on Ctrl-C or SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh bench
# FANOUT_BIN=PATH measures another build (e.g. a clean clone) and skips this one.
[ -n "${FANOUT_BIN:-}" ] || make --no-print-directory all >&2
# The Go peer and the floor probes (bench/peers/go, bench/probes), measured beside fanout.
make --no-print-directory bench-tools >&2

# 1024 client connections and 10,000 idle ones need more descriptors than the usual 1024;
# raise the soft limit as far as the hard limit allows (children inherit it).
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
ulimit -n "$hard" 2>/dev/null || true

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

pid=
cleanup() {
    # bench.py stops everything it started; make sure it gets the chance, then stop it by PID.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

"$PY" bench/bench.py run "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
exit "$rc"
