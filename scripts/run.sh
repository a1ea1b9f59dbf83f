#!/usr/bin/env bash
# run.sh -- install what is missing, build, and run fanout.
# With no arguments: the embedded default (demo backends + demo config) on 127.0.0.1:8080.
# Any arguments go to fanout, e.g. scripts/run.sh -c config.json
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
make -s -j"$(nproc)"
exec build/fanout "$@"
