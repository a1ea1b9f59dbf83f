#!/usr/bin/env bash
# json_speed.sh -- instructions per byte of fo_json_validate on each bench body,
# counted exactly by callgrind (see json_speed.c).   bench/probes/json_speed.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}
make -s bench-probe
for f in bench/data/*.json; do
    out=$(mktemp /tmp/json_speed.XXXXXX)
    bytes=$(valgrind --tool=callgrind --callgrind-out-file="$out" build/json_speed "$n" "$f" 2>/dev/null)
    ir=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null |
        awk "/json.c:fo_json_validate \\[/" | head -1 | awk '{gsub(",", "", $1); print $1}')
    rm -f "$out"
    awk -v f="$f" -v ir="$ir" -v b="$bytes" 'BEGIN { printf "%-22s %12d Ir %10d bytes %6.2f Ir/byte\n", f, ir, b, ir / b }'
done
