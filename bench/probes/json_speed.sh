#!/usr/bin/env bash
# json_speed.sh -- instructions per byte of fo_json_validate on each bench body,
# counted exactly by callgrind (see json_speed.c).   bench/probes/json_speed.sh [N]
#
# Only fo_json_validate and what it calls are counted (--toggle-collect), and the figure is
# the run's total: everything inlined into it counts, whichever file the inlined lines come
# from (json_bytes.h, emmintrin.h). Picking the function's line out of callgrind_annotate
# did not: that line holds only the instructions of json.c's own lines.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}
make -s bench-probe
for f in bench/data/*.json; do
    out=$(mktemp /tmp/json_speed.XXXXXX)
    bytes=$(valgrind --tool=callgrind --toggle-collect=fo_json_validate \
        --callgrind-out-file="$out" build/json_speed "$n" "$f" 2>/dev/null)
    ir=$(awk '/^totals:/ { print $2 }' "$out")
    rm -f "$out"
    awk -v f="$f" -v ir="$ir" -v b="$bytes" 'BEGIN { printf "%-22s %12d Ir %10d bytes %6.2f Ir/byte\n", f, ir, b, ir / b }'
done
