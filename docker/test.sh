#!/usr/bin/env bash
# docker/test.sh -- builds, runs and tears down the fanout image and the compose demo, for real.
#
#   bash docker/test.sh          (as root, from anywhere; installs the Debian packages it needs)
#
# Engine: rootful Podman from Debian behind a Docker-compatible API socket (docker/engine.sh),
# driven with the Docker CLI and Debian's docker-compose, so the commands are the README's. The
# base image debian:bookworm-slim is made locally with debootstrap (docker/base-image.sh) and kept
# with the engine's storage under FANOUT_ENGINE_DIR (default /var/tmp/fanout-engine).
#
# Two images, each through the same checks (check_image): docker/Dockerfile (fanout:latest, the
# compose demo's) and docker/Dockerfile.minimal (fanout-minimal:latest, FROM scratch, the one
# deploy/k8s runs; < 30 MB and only the binaries, their libraries, CA certificates and the user
# files inside).
# Checks: YAML lint (compose, k8s); image size < 100 MB (30 MB), non-root, EXPOSE 8080, HEALTHCHECK;
# --check on the compose config inside the image; a container with a mounted config, read-only
# root and no capabilities, against a backend container: a real merged answer through the
# published port on 127.0.0.1, the health check, fanout is PID 1 as uid 10001, `docker stop`
# exits 0 in < 2 s; the embedded demo without config; the compose demo with two replicas behind
# nginx: merged answers through the load balancer from both replicas. Every container and
# network it made is removed, also on failure. Ends with "docker: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD

PROJECT=fanout-test            # compose project name
LABEL=fanout-test=1            # label on every container/network made outside compose
NET=fanout-test-net
IMAGE=fanout:latest
MINIMAL_IMAGE=fanout-minimal:latest
NGINX_IMAGE=fanout-demo-nginx:latest
PKGS=(podman runc conmon netavark aardvark-dns iptables debootstrap docker-compose yamllint curl
      python3)

PASSED=0
FAILED=0
TIMINGS=()
T_START=$(date +%s.%N)
WORK=$(mktemp -d /tmp/fanout-docker-test.XXXXXX)
chmod 755 "$WORK"

ok() {
    PASSED=$((PASSED + 1))
    echo "ok     $*"
}
bad() {
    FAILED=$((FAILED + 1))
    echo "FAILED $*"
}
# check NAME CMD...: one test result from a command's exit status.
check() {
    local name=$1
    shift
    if "$@"; then ok "$name"; else bad "$name"; fi
}
elapsed() { # elapsed SINCE -> seconds with 1 decimal
    awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}
timing() {
    TIMINGS+=("$1 $2 s")
    echo "time   $1: $2 s"
}
# Fatal: report, clean up (trap), exit non-zero.
die() {
    bad "$*"
    exit 1
}

dk() { timeout "${DK_TIMEOUT:-120}" docker "$@"; }
compose() {
    timeout "${DK_TIMEOUT:-300}" docker-compose -p "$PROJECT" -f "$ROOT/docker/compose.yaml" \
        --profile scale "$@"
}

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL SECONDS: until URL answers 200.
wait_http() {
    local url=$1 deadline=$(($(date +%s) + $2))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# Everything this script may have created, whatever state it is in.
remove_all() {
    local ids
    if [ -n "${DOCKER_HOST:-}" ]; then
        DK_TIMEOUT=120 compose down -v --remove-orphans >/dev/null 2>&1
        ids=$(dk ps -aq --filter "label=$LABEL" 2>/dev/null)
        ids="$ids $(dk ps -aq --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null)"
        # shellcheck disable=SC2086
        [ -n "${ids// /}" ] && dk rm -f $ids >/dev/null 2>&1
        dk network rm "$NET" "${PROJECT}_default" >/dev/null 2>&1
    fi
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    remove_all
    if [ -n "${DOCKER_HOST:-}" ]; then
        local left
        left=$( (dk ps -aq --filter "label=$LABEL"
                 dk ps -aq --filter "label=com.docker.compose.project=$PROJECT") 2>/dev/null)
        if [ -n "$left" ]; then
            bad "teardown: containers left: $left"
        else
            ok "teardown: no container left"
        fi
        if dk network ls --format '{{.Name}}' 2>/dev/null | grep -q -x -e "$NET" -e "${PROJECT}_default"; then
            bad "teardown: network left"
        fi
        dk image prune -f >/dev/null 2>&1 # dangling layers of earlier builds
    fi
    engine_stop
    rm -rf "$WORK"
    timing "total" "$(elapsed "$T_START")"
    local IFS=';'
    echo "timings: ${TIMINGS[*]}"
    echo "docker: $PASSED passed, $FAILED failed"
    if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ]; then
        exit 1
    fi
    exit 0
}

# ---------------------------------------------------------------- packages and engine
missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! { timeout 600 apt-get update -qq &&
        timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
        echo "docker: 0 passed, 1 failed"
        exit 1
    fi
fi
if ! command -v docker >/dev/null; then
    # Debian ships the Docker client in docker.io (its daemon is not used: podman serves the API).
    timeout 900 apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1 || true
fi
if ! command -v docker >/dev/null; then
    echo "docker CLI not found: install a Docker client (Debian: docker.io); it talks to podman"
    echo "docker: 0 passed, 1 failed"
    exit 1
fi

# shellcheck source=docker/engine.sh
. "$ROOT/docker/engine.sh"
mkdir -p "$FANOUT_ENGINE_DIR"
# One run at a time per engine folder (the socket and the names are shared).
exec 9>"$FANOUT_ENGINE_DIR/lock"
if ! flock -w 900 9; then
    echo "docker: 0 passed, 1 failed (another docker/test.sh holds $FANOUT_ENGINE_DIR/lock)"
    exit 1
fi
trap cleanup EXIT
trap 'exit 130' INT TERM

t=$(date +%s.%N)
engine_setup || die "engine: podman system service on $FANOUT_ENGINE_DIR/podman.sock"
ok "engine: podman $(podman --version | awk '{print $3}') behind the Docker API"
remove_all # leftovers of an interrupted earlier run

# ---------------------------------------------------------------- lint
check "yamllint: docker/compose.yaml deploy/k8s" \
    yamllint -s -c "$ROOT/.yamllint.yaml" "$ROOT/docker/compose.yaml" "$ROOT/deploy/k8s"
check "docker-compose config: valid" compose config -q

# ---------------------------------------------------------------- images
t=$(date +%s.%N)
timeout 900 "$ROOT/docker/base-image.sh" || die "base image: debootstrap + import"
timing "base image" "$(elapsed "$t")"

t=$(date +%s.%N)
# The build stage gets a tag of its own so that its layers (the -dev packages) are not dangling:
# the cleanup prunes dangling images, which would otherwise throw that cache away every run.
if ! DK_TIMEOUT=900 dk build -f docker/Dockerfile --target build -t fanout-build:cache . \
    >"$WORK/build.log" 2>&1 ||
    ! DK_TIMEOUT=900 dk build -f docker/Dockerfile -t "$IMAGE" . >>"$WORK/build.log" 2>&1; then
    tail -n 40 "$WORK/build.log"
    die "docker build -f docker/Dockerfile ."
fi
timing "build fanout image" "$(elapsed "$t")"
t=$(date +%s.%N)
# The minimal image shares the build stage; its rootfs stage gets a tag for the same reason.
if ! DK_TIMEOUT=900 dk build -f docker/Dockerfile.minimal --target rootfs \
    -t fanout-minimal-rootfs:cache . >"$WORK/build-minimal.log" 2>&1 ||
    ! DK_TIMEOUT=900 dk build -f docker/Dockerfile.minimal -t "$MINIMAL_IMAGE" . \
        >>"$WORK/build-minimal.log" 2>&1; then
    tail -n 40 "$WORK/build-minimal.log"
    die "docker build -f docker/Dockerfile.minimal ."
fi
timing "build fanout minimal image" "$(elapsed "$t")"
t=$(date +%s.%N)
if ! DK_TIMEOUT=900 dk build -t "$NGINX_IMAGE" docker/nginx >"$WORK/build-nginx.log" 2>&1; then
    tail -n 40 "$WORK/build-nginx.log"
    die "docker build docker/nginx"
fi
timing "build nginx image" "$(elapsed "$t")"
ok "images built"

# check_image IMAGE MAX_MB [DEMO_ARGS...]: the checks every fanout image must pass. DEMO_ARGS
# run the embedded demo (none for the standard image, whose entrypoint picks it when no config
# is mounted; "--listen 0.0.0.0:8080" for the minimal one, which has no shell to decide).
check_image() {
    local IMAGE=$1 max_mb=$2 size out port pid1 stop_s code t hc
    shift 2
    local demo_args=("$@")
    echo "----   $IMAGE"
    size=$(dk image inspect --format '{{.Size}}' "$IMAGE")
    echo "image  $IMAGE: $size bytes ($((size / 1000000)) MB)"
    check "$IMAGE: image size $((size / 1000000)) MB < $max_mb MB" \
        test "$size" -lt "$((max_mb * 1000 * 1000))"
    check "$IMAGE: image user is non-root 10001" \
        test "$(dk image inspect --format '{{.Config.User}}' "$IMAGE")" = "10001:10001"
    check "$IMAGE: image exposes 8080" \
        bash -c "docker image inspect --format '{{json .Config.ExposedPorts}}' $IMAGE | grep -q '8080/tcp'"
    # (Podman's Docker API leaves Config.Healthcheck out of `docker image inspect`: ask podman.)
    check "$IMAGE: image has a HEALTHCHECK" \
        bash -c "podman image inspect --format '{{json .Config.Healthcheck}}' $IMAGE | grep -q /health"

    out=$(dk run --rm -v "$ROOT/docker/compose/fanout.json:/etc/fanout/fanout.json:ro" "$IMAGE" \
        --check -c /etc/fanout/fanout.json 2>&1)
    check "$IMAGE: fanout --check in the image: docker/compose/fanout.json" \
        test "$out" = "/etc/fanout/fanout.json: ok"

    # ---------------------------------------------------------------- one container, mounted config
    cat >"$WORK/fanout.json" <<'EOF'
{
  "timeout_ms": 1000,
  "endpoints": [
    {
      "path": "/api/dashboard/{id}",
      "method": "GET",
      "report": true,
      "backends": [
        {"name": "user", "url": "http://backend:8081/users/{id}", "required": true},
        {"name": "orders", "url": "http://backend:8081/orders?user={id}"},
        {"name": "flags", "url": "http://backend:8081/flags", "merge": true}
      ]
    }
  ]
}
EOF
    chmod 644 "$WORK/fanout.json" # the image runs as uid 10001

    dk network create --label "$LABEL" "$NET" >/dev/null || die "$IMAGE: docker network create"
    dk run -d --name fanout-test-backend --label "$LABEL" --network "$NET" --network-alias backend \
        --hostname backend "$NGINX_IMAGE" >/dev/null || die "$IMAGE: docker run backend"
    port=$(free_port)
    t=$(date +%s.%N)
    dk run -d --name fanout-test-app --label "$LABEL" --network "$NET" \
        -p "127.0.0.1:$port:8080" -v "$WORK/fanout.json:/etc/fanout/fanout.json:ro" \
        --read-only --cap-drop ALL --security-opt no-new-privileges "$IMAGE" >/dev/null ||
        die "$IMAGE: docker run fanout with a mounted config"
    if wait_http "http://127.0.0.1:$port/health" 30; then
        ok "$IMAGE: mounted config: /health answers on 127.0.0.1:$port"
        timing "container start to healthy" "$(elapsed "$t")"
    else
        dk logs fanout-test-app 2>&1 | tail -n 20
        die "$IMAGE: mounted config: /health on 127.0.0.1:$port within 30 s"
    fi

    curl -sS -m 5 -D "$WORK/h1" -o "$WORK/b1" "http://127.0.0.1:$port/api/dashboard/42"
    check "$IMAGE: mounted config: merged answer from the backend container" \
        /usr/bin/python3 - "$WORK/h1" "$WORK/b1" <<'EOF'
import json, sys
head = open(sys.argv[1]).read().lower()
raw = open(sys.argv[2]).read()
doc = json.loads(raw)
assert head.startswith("http/1.1 200"), head
assert "x-fanout-complete: true" in head, head
assert list(doc)[:4] == ["user", "orders", "dark_mode", "beta_dashboard"], list(doc)
assert doc["user"]["id"] == "42" and doc["user"]["served_by"] == "backend", doc["user"]
assert doc["orders"]["user"] == "42", doc["orders"]
assert "12345678901234567890" in raw and "42.50" in raw, raw  # numbers byte-exact
assert doc["_fanout"]["complete"] is True, doc["_fanout"]
assert set(doc["_fanout"]["backends"]) == {"user", "orders", "flags"}, doc["_fanout"]
EOF
    # The image's HEALTHCHECK command, run as the engine would run it but in a sibling container in
    # fanout's network namespace: Podman runs health checks from systemd timers, absent here, and an
    # exec session (`podman healthcheck run`, `docker exec`) leaves a conmon behind for 5 minutes.
    # CMD-SHELL (the standard image) runs under /bin/sh; CMD (the minimal one, no shell) as is.
    mapfile -d '' hc < <(podman image inspect --format '{{json .Config.Healthcheck.Test}}' "$IMAGE" |
        /usr/bin/python3 -c '
import json, sys
t = json.load(sys.stdin)
argv = ["/bin/sh", "-c", t[1]] if t[0] == "CMD-SHELL" else t[1:]
assert t[0] in ("CMD", "CMD-SHELL") and argv, t
sys.stdout.write("\0".join(argv) + "\0")')
    check "$IMAGE: mounted config: the HEALTHCHECK command passes (${hc[*]})" \
        dk run --rm --network container:fanout-test-app --entrypoint "${hc[0]}" "$IMAGE" "${hc[@]:1}"
    # PID 1 of the container, seen from the host.
    pid1=$(dk inspect --format '{{.State.Pid}}' fanout-test-app)
    check "$IMAGE: mounted config: fanout is PID 1 (exec'd by the entrypoint)" \
        test "$(cat "/proc/$pid1/comm" 2>/dev/null)" = "fanout"
    check "$IMAGE: mounted config: runs as uid 10001" \
        test "$(awk '/^Uid:/ { print $2 }' "/proc/$pid1/status" 2>/dev/null)" = "10001"

    # docker stop with a 10 s grace period, as Docker's default: fanout must exit on SIGTERM, by
    # itself, at once. (Podman's Docker API gives containers a 0 s stop timeout unless asked, so the
    # timeout is explicit here, else the stop would be a SIGKILL that proves nothing.)
    t=$(date +%s.%N)
    dk stop -t 10 fanout-test-app >/dev/null
    stop_s=$(elapsed "$t")
    timing "docker stop" "$stop_s"
    check "$IMAGE: docker stop took $stop_s s < 2 s" awk -v s="$stop_s" 'BEGIN { exit !(s < 2.0) }'
    code=$(dk inspect --format '{{.State.ExitCode}}' fanout-test-app)
    check "$IMAGE: docker stop: fanout exited 0 on SIGTERM (exit code $code)" test "$code" = 0
    check "$IMAGE: docker stop: fanout logged a clean stop" \
        bash -c "docker logs fanout-test-app 2>&1 | grep -q '\"event\":\"stopped\"'"
    dk rm -f fanout-test-app fanout-test-backend >/dev/null

    # ---------------------------------------------------------------- embedded demo, no config
    port=$(free_port)
    dk run -d --name fanout-test-demo --label "$LABEL" -p "127.0.0.1:$port:8080" "$IMAGE" \
        "${demo_args[@]}" >/dev/null ||
        die "$IMAGE: docker run (embedded demo)"
    if wait_http "http://127.0.0.1:$port/health" 30; then
        curl -sS -m 5 -D "$WORK/h2" -o "$WORK/b2" "http://127.0.0.1:$port/api/dashboard/7"
        check "$IMAGE: embedded demo without config: merged answer" \
            /usr/bin/python3 - "$WORK/h2" "$WORK/b2" <<'EOF'
import json, sys
head = open(sys.argv[1]).read().lower()
doc = json.load(open(sys.argv[2]))
assert head.startswith("http/1.1 200") and "x-fanout-complete: true" in head, head
assert "user" in doc and "orders" in doc, doc
EOF
    else
        dk logs fanout-test-demo 2>&1 | tail -n 20
        bad "$IMAGE: embedded demo: /health on 127.0.0.1:$port within 30 s"
    fi
    dk rm -f fanout-test-demo >/dev/null
    dk network rm "$NET" >/dev/null
}

check_image "$IMAGE" 100
check_image "$MINIMAL_IMAGE" 30 --listen 0.0.0.0:8080

# The minimal image holds only the binaries, their libraries, the CA bundle and the user files
# (the engine may add its mount points and /etc/hosts, /etc/resolv.conf, /etc/hostname).
dk create --name fanout-test-files --label "$LABEL" "$MINIMAL_IMAGE" >/dev/null ||
    die "docker create $MINIMAL_IMAGE"
dk export fanout-test-files | tar -t >"$WORK/minimal-files" || bad "docker export $MINIMAL_IMAGE"
dk rm -f fanout-test-files >/dev/null
check "$MINIMAL_IMAGE: only the binaries, their libraries, CA certificates and /etc/passwd" \
    /usr/bin/python3 - "$WORK/minimal-files" <<'EOF'
import re, sys
names = [n.strip().lstrip(".").strip("/") for n in open(sys.argv[1])]
names = [n for n in names if n]
allowed = re.compile(r"^(usr/bin/(fanout|curl)|(usr/)?lib(64|/x86_64-linux-gnu)?/[^/]+\.so(\.[0-9a-z]+)*"
                     r"|etc/(passwd|group|nsswitch\.conf|ssl/certs/ca-certificates\.crt"
                     r"|hosts|hostname|resolv\.conf)|tmp|etc/fanout)$")
dirs = {n.rsplit("/", 1)[0] for n in names if "/" in n} | {"dev", "proc", "sys", "run"}
bad = [n for n in names if not allowed.match(n) and n not in dirs and not n.startswith(
    ("dev/", "proc/", "sys/", "run/"))]
assert not bad, bad
assert "usr/bin/fanout" in names and "etc/ssl/certs/ca-certificates.crt" in names, names
assert not any(n.startswith(("usr/share", "bin/sh", "usr/bin/sh", "var/lib/dpkg")) for n in names)
print("       %d entries, %d libraries" % (len(names), sum(".so" in n for n in names)))
EOF

# ---------------------------------------------------------------- compose: 2 replicas behind nginx
FANOUT_PORT=$(free_port)
FANOUT_LB_PORT=$(free_port)
export FANOUT_PORT FANOUT_LB_PORT
t=$(date +%s.%N)
if ! compose up -d --no-build >"$WORK/compose.log" 2>&1; then
    tail -n 30 "$WORK/compose.log"
    die "docker-compose --profile scale up"
fi
lb=http://127.0.0.1:$FANOUT_LB_PORT
if wait_http "$lb/api/dashboard/1" 60; then
    timing "compose up to first answer" "$(elapsed "$t")"
    ok "compose: up, the load balancer answers on 127.0.0.1:$FANOUT_LB_PORT"
else
    compose logs --tail 20 2>&1 | tail -n 60
    die "compose: load balancer answer within 60 s"
fi

curl -sS -m 5 -o "$WORK/direct.json" "http://127.0.0.1:$FANOUT_PORT/api/dashboard/42"
check "compose: fanout on 127.0.0.1:$FANOUT_PORT merges the users and orders containers" \
    /usr/bin/python3 - "$WORK/direct.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["user"]["served_by"] == "users" and doc["orders"]["served_by"] == "orders", doc
assert doc["dark_mode"] is True, doc
EOF

# 12 requests through the load balancer, each with its own id; the replica that answered is in
# X-Fanout-Replica (nginx's $upstream_addr) and in that replica's access log.
for i in $(seq 101 112); do
    curl -sS -m 5 -D "$WORK/lb-$i.h" -o "$WORK/lb-$i.json" "$lb/api/dashboard/$i"
done
ip1=$(dk inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "${PROJECT}_fanout_1")
ip2=$(dk inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "${PROJECT}_fanout-2_1")
dk logs "${PROJECT}_fanout_1" >"$WORK/log1" 2>&1
dk logs "${PROJECT}_fanout-2_1" >"$WORK/log2" 2>&1
check "compose: 12 merged answers through the LB, from both replicas ($ip1, $ip2)" \
    /usr/bin/python3 - "$WORK" "$ip1" "$ip2" <<'EOF'
import json, os, sys
work, ip1, ip2 = sys.argv[1:4]
seen = {}
for i in range(101, 113):
    head = open(os.path.join(work, "lb-%d.h" % i)).read().lower()
    raw = open(os.path.join(work, "lb-%d.json" % i)).read()
    doc = json.loads(raw)
    assert head.startswith("http/1.1 200") and "x-fanout-complete: true" in head, (i, head)
    assert doc["user"]["id"] == str(i) and doc["orders"]["user"] == str(i), (i, doc)
    assert "12345678901234567890" in raw, raw
    replica = [l.split(":", 1)[1].strip() for l in head.splitlines()
               if l.startswith("x-fanout-replica:")][0]
    seen.setdefault(replica.rsplit(":", 1)[0], []).append(i)
assert set(seen) == {ip1, ip2}, seen
# Each replica's own access log has the ids it answered, and only those.
for ip, log in ((ip1, "log1"), (ip2, "log2")):
    text = open(os.path.join(work, log)).read()
    for i in range(101, 113):
        logged = '"path":"/api/dashboard/%d"' % i in text
        assert logged == (i in seen[ip]), (ip, i, seen)
print("       replicas: " + ", ".join("%s answered %d" % (ip, len(ids)) for ip, ids in seen.items()))
EOF

code=$(curl -sS -m 5 -o "$WORK/batch.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"requests": {"u": {"url": "http://users:8081/users/5"}, "o": {"url": "http://orders:8081/orders?user=5"}}}' \
    "$lb/aggregate")
check "compose: POST /aggregate through the LB answers 200 with both results" \
    /usr/bin/python3 -c '
import json, sys
code, path = sys.argv[1:3]
doc = json.load(open(path))
assert code == "200", (code, doc)
assert doc["u"]["id"] == "5" and doc["o"]["user"] == "5", doc
' "$code" "$WORK/batch.json"

t=$(date +%s.%N)
if compose down -v --remove-orphans >"$WORK/down.log" 2>&1; then
    ok "compose: down"
else
    tail -n 20 "$WORK/down.log"
    bad "compose: down"
fi
timing "compose down" "$(elapsed "$t")"
# cleanup (trap) checks that nothing is left, stops the engine and prints the summary.
