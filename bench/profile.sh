#!/usr/bin/env bash
# profile.sh -- instructions per aggregate request, the noise-free figure: fanout runs under
# valgrind --tool=callgrind in the throughput setup (3 static nginx backends); a small client
# (bench/client.py, not wrk, so the count is exact) sends COUNT requests (default 2000) after a
# warm-up, with instrumentation on only for that window. Prints Ir per request and the top 25
# functions by inclusive and self cost; saves bench/results/profile.{md,json} and the full
# callgrind_annotate outputs (profile-self.txt, profile-inclusive.txt).
#
#   bash bench/profile.sh [COUNT]      PROFILE_CONNS=N for N concurrent client connections
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh bench
# FANOUT_BIN=PATH measures another build (e.g. a clean clone) and skips this one.
[ -n "${FANOUT_BIN:-}" ] || make --no-print-directory all >&2

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

"$PY" bench/bench.py profile "$@" &
pid=$!
rc=0
wait "$pid" || rc=$?
pid=
exit "$rc"
