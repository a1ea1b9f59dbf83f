#!/bin/sh
# fanout-entrypoint -- starts fanout as PID 1 (exec), so SIGTERM from `docker stop` reaches it.
#
#   no arguments          fanout -c $FANOUT_CONFIG --listen $FANOUT_LISTEN when the config exists,
#                         else the embedded demo: fanout --listen $FANOUT_LISTEN
#   arguments "-..."      fanout with exactly those arguments, e.g. --check -c /etc/fanout/fanout.json
#   any other arguments   run as a command (e.g. sh)
set -eu

config=${FANOUT_CONFIG:-/etc/fanout/fanout.json}
listen=${FANOUT_LISTEN:-0.0.0.0:8080}

if [ "$#" -gt 0 ]; then
    case "$1" in
    -*) exec /usr/local/bin/fanout "$@" ;;
    *) exec "$@" ;;
    esac
fi

# A path that exists but cannot be read is passed on, so fanout reports it and exits non-zero.
if [ -e "$config" ]; then
    exec /usr/local/bin/fanout -c "$config" --listen "$listen"
fi
echo "fanout-entrypoint: $config not found, running the embedded demo" >&2
exec /usr/local/bin/fanout --listen "$listen"
