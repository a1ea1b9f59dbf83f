#!/usr/bin/env bash
# deps.sh -- install the Debian packages a task needs, only those missing.
#
#   scripts/deps.sh build     compiler and the libraries
#   scripts/deps.sh test      build + unit test framework, pytest, clang (fuzzing, TSan),
#                             openssl (the auth tests' keys and signatures),
#                             scdoc, groff, man-db, systemd (man pages, unit checks)
#   scripts/deps.sh bench     build + nginx (with echo module), wrk, valgrind, Go (the peer),
#                             gnuplot (plots), strace (syscall counts)
#   scripts/deps.sh pkg       build + scdoc, debhelper, dpkg-dev, lintian (the .deb)
#
# Runs apt-get only when something is missing, so a second run costs nothing.
# Needs root (or sudo) the first time on a fresh Debian 12 machine.
set -euo pipefail

# libjwt-dev (the OpenSSL flavour) and libssl-dev (libcrypto): JWT verification, key hashing.
build=(gcc make pkg-config libmicrohttpd-dev libcurl4-openssl-dev libcjson-dev libjwt-dev libssl-dev)
# The Debian package (dpkg-buildpackage, lintian): see .ci/run.
pkg=("${build[@]}" scdoc debhelper dpkg-dev lintian)
# groff, man-db, scdoc: the man pages (built and checked); systemd: systemd-analyze verify.
# openssl: the TLS tests and the TLS bench make their certificates with it (and probe with s_client).
test=("${build[@]}" libcmocka-dev python3 python3-pytest python3-jsonschema clang curl yamllint
      procps scdoc groff man-db systemd openssl)
bench=("${build[@]}" nginx libnginx-mod-http-echo wrk procps valgrind python3 golang-go gnuplot-nox
       strace openssl)

case "${1:-build}" in
build) want=("${build[@]}") ;;
test) want=("${test[@]}") ;;
bench) want=("${bench[@]}") ;;
pkg) want=("${pkg[@]}") ;;
*) echo "usage: $0 build|test|bench|pkg" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
