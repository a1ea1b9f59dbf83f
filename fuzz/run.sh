#!/usr/bin/env bash
# run.sh -- build and run the libFuzzer targets for a bounded time.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     (default: 30 s each, every fuzz/fuzz_*.c)
#
# Each target fuzz/NAME.c is built with clang (-fsanitize=fuzzer,address,undefined, UB is
# fatal) into build/fuzz/NAME, linked with the service/*.c files and -l libraries its header
# comment names, then run for SECONDS on a temporary copy of its seed corpus
# fuzz/corpus/<NAME without fuzz_>/ (the seeds in the repo are never written to).
# A binary newer than every source is reused. A crash, leak, UB report or timeout ends that target: its input is saved as
# build/fuzz/artifacts/NAME-crash-<sha1> and printed (hex), and the script exits 1 after
# running the rest. Build failure: exit 2.
#
# Environment: CLANG (default clang), FUZZ_FLAGS (extra libFuzzer flags).
set -uo pipefail

cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
case "$secs" in
'' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
CLANG=${CLANG:-clang}
out=build/fuzz
mkdir -p "$out/artifacts"

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in fuzz/fuzz_*.c; do
        targets+=("$(basename "$f" .c)")
    done
fi

command -v "$CLANG" >/dev/null || { echo "run.sh: $CLANG not found (scripts/deps.sh test)" >&2; exit 2; }
pkgflags=$(pkg-config --cflags --libs libcjson libcurl libjwt libcrypto) || { echo "run.sh: pkg-config failed" >&2; exit 2; }
mhdflags=$(pkg-config --cflags --libs libmicrohttpd) || mhdflags=-lmicrohttpd

# What a target links: the service/*.c and -lNAME words of the clang command line in its
# header comment (from the line naming clang to the end of the comment).
link_words() {
    sed -n '1,/^#include/p' "$1" | sed -n '/clang /,/\*\//p' |
        grep -oE 'service/[a-z0-9_]+\.c|(^|[[:space:]])-l[a-z0-9_]+' | tr -d '[:space:]' |
        sed 's/-l/ -l/g; s/\.c/.c /g'
}

compile() {
    local name=$1 src=fuzz/$1.c
    shift
    "$CLANG" -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Iinclude "$src" "$@" $pkgflags -lpthread -o "$out/$name"
}

# The header's list first; if that no longer links (a module grew a dependency), every
# service module but main.c, like the unit tests.
build() {
    local name=$1 src=fuzz/$1.c
    [ -f "$src" ] || { echo "run.sh: no $src" >&2; return 1; }
    # shellcheck disable=SC2046
    if compile "$name" $(link_words "$src") 2>"$out/$name.build.log"; then
        return 0
    fi
    echo "   $name: the files in its header comment do not link; using every service module:" >&2
    grep -E 'undefined reference' "$out/$name.build.log" | sort -u | head -5 | sed 's/^/     /' >&2
    local all=()
    for f in service/*.c; do
        [ "$f" = service/main.c ] || all+=("$f")
    done
    compile "$name" "${all[@]}" $mhdflags
}

rc=0
for name in "${targets[@]}"; do
    name=${name%.c}
    name=$(basename "$name")
    if [ -x "$out/$name" ] && [ -z "$(find "fuzz/$name.c" service include fuzz/run.sh \
        -newer "$out/$name" -type f 2>/dev/null | head -1)" ]; then
        echo "== $name: up to date"
    elif echo "== $name: build" && ! build "$name"; then
        echo "== $name: BUILD FAILED" >&2
        exit 2
    fi
    seeds=fuzz/corpus/${name#fuzz_}
    work=$(mktemp -d "${TMPDIR:-/tmp}/fanout-fuzz-$name.XXXXXX")
    if [ -d "$seeds" ]; then
        cp -r "$seeds/." "$work/"
    fi
    echo "== $name: ${secs}s on $(find "$work" -type f | wc -l) seed inputs"
    log=$out/$name.log
    # shellcheck disable=SC2086
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "./$out/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" ${FUZZ_FLAGS:-} \
        "$work" >"$log" 2>&1
    st=$?
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+[[:space:]]+DONE' "$log" |
        sed "s/^/   $name: /"
    if [ $st -ne 0 ]; then
        rc=1
        echo "== $name: FAILED (exit $st)" >&2
        grep -E 'ERROR:|runtime error:|SUMMARY:|Test unit written to' "$log" | head -20 >&2
        art=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | cut -d' ' -f5)
        if [ -n "$art" ] && [ -f "$art" ]; then
            echo "== $name: crash input $art ($(wc -c <"$art") bytes):" >&2
            od -A d -c "$art" | head -40 >&2
        fi
        echo "== $name: full log $log" >&2
    else
        echo "== $name: ok"
    fi
    rm -rf "$work"
done
exit $rc
