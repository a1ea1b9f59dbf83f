# shellcheck shell=bash
# docker/engine.sh -- sourced by docker/test.sh: a private rootful Podman engine behind a
# Docker-compatible API socket, so the plain Docker CLI and docker-compose can drive it.
#
# Everything lives under $FANOUT_ENGINE_DIR (config, storage, run state, the socket), nothing
# under /etc/containers is read or written. The storage survives between runs so the base image
# and the build cache are reused.
#
#   engine_setup    write the config, start `podman system service`, export DOCKER_HOST
#   engine_stop     stop the service started by engine_setup (by its PID)

FANOUT_ENGINE_DIR=${FANOUT_ENGINE_DIR:-/var/tmp/fanout-engine}
ENGINE_PID=

engine_write_conf() {
    local dir=$FANOUT_ENGINE_DIR nofile nproc
    mkdir -p "$dir/storage" "$dir/run" "$dir/tmp" "$dir/networks" "$dir/volumes"
    # Containers may not ask for more than this process may have: root here lacks
    # CAP_SYS_RESOURCE, so podman's built-in defaults (nofile 1048576) fail at start.
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    local pidmax
    pidmax=$(cat /proc/sys/kernel/pid_max)
    if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pidmax" ]; then
        nproc=$pidmax
    fi
    [ "$nofile" = unlimited ] && nofile=1048576
    cat >"$dir/containers.conf" <<CONF
# Written by docker/engine.sh for the project's container tests.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$dir/events.log"
tmp_dir = "$dir/tmp"
volume_path = "$dir/volumes"

[network]
network_backend = "netavark"
network_config_dir = "$dir/networks"
CONF
    cat >"$dir/storage.conf" <<CONF
# Written by docker/engine.sh for the project's container tests.
[storage]
driver = "overlay"
runroot = "$dir/run"
graphroot = "$dir/storage"
CONF
    export CONTAINERS_CONF=$dir/containers.conf
    export CONTAINERS_STORAGE_CONF=$dir/storage.conf
}

engine_setup() {
    engine_write_conf
    local sock=$FANOUT_ENGINE_DIR/podman.sock
    rm -f "$sock"
    podman system service --time=0 "unix://$sock" >"$FANOUT_ENGINE_DIR/service.log" 2>&1 &
    ENGINE_PID=$!
    export DOCKER_HOST=unix://$sock
    for _ in $(seq 1 100); do
        if [ -S "$sock" ] && docker version >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$ENGINE_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "engine: podman system service did not come up; its log:" >&2
    cat "$FANOUT_ENGINE_DIR/service.log" >&2
    return 1
}

engine_stop() {
    if [ -n "$ENGINE_PID" ]; then
        kill "$ENGINE_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$ENGINE_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$ENGINE_PID" 2>/dev/null || true
        wait "$ENGINE_PID" 2>/dev/null || true
        ENGINE_PID=
    fi
}
