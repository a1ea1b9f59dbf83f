#!/usr/bin/env bash
# test.sh -- install what is missing, build every variant, run the whole suite.
# Plain, ASan+UBSan and TSan builds; C unit tests, black-box tests over real
# sockets against the real binary (plain and ASan+UBSan), fuzz smoke runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
exec make -s test
