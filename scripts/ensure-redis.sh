#!/usr/bin/env bash
# A private Redis server for the tests, on loopback only, kept in memory only.
#
#   ./scripts/ensure-redis.sh        install Debian's redis-server when missing (as root),
#                                    start the server unless a Redis answers on its port, and
#                                    print the URL for COMMENTSVC_TEST_REDIS_URL on standard
#                                    output
#   ./scripts/ensure-redis.sh stop   stop the server (nothing is saved; quiet if not running)
#
# Idempotent. Everything but the URL goes to standard error, so the output can be captured:
#   COMMENTSVC_TEST_REDIS_URL="$(./scripts/ensure-redis.sh)" .venv/bin/pytest
# When Redis cannot be provided (e.g. not installed and not root), this warns and prints
# nothing, or fails with exit status 1 when CI=true.
#
# COMMENTSVC_TEST_REDIS_DIR (default /tmp/commentsvc-test-redis) holds the configuration, the
# pid file and the log; COMMENTSVC_TEST_REDIS_PORT (default 56379) is the TCP port on
# 127.0.0.1.
set -euo pipefail

# Absolute, so that it reads the same as the config_file the server reports.
BASE=$(realpath -m -- "${COMMENTSVC_TEST_REDIS_DIR:-/tmp/commentsvc-test-redis}")
PORT=${COMMENTSVC_TEST_REDIS_PORT:-56379}
CONF=$BASE/redis.conf
LOG=$BASE/redis.log
PIDFILE=$BASE/redis.pid
URL="redis://127.0.0.1:$PORT/0"

say() { echo "ensure-redis: $*" >&2; }

# Redis cannot be provided: an error in CI, a warning (and no URL) elsewhere.
unavailable() {
  if [ "${CI:-}" = "true" ]; then
    say "error: $*"
    exit 1
  fi
  say "warning: $* The tests start a redis-server of their own (and fail without one)."
  exit 0
}

# shellcheck source=lib/apt-install.sh
. "$(dirname "$0")/lib/apt-install.sh"

is_installed() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1
}

cli() {
  timeout 3 redis-cli -h 127.0.0.1 -p "$PORT" "$@" 2>/dev/null
}

answers() {
  [ "$(cli ping)" = PONG ]
}

# Whether the Redis that answers is the one this script starts (from its configuration).
is_ours() {
  # grep reads to the end (no -q), so that no SIGPIPE upstream fails the pipeline.
  cli info server | tr -d '\r' | grep -xF "config_file:$CONF" >/dev/null
}

port_in_use() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$PORT" 2>/dev/null
}

stop_server() {
  is_installed || exit 0
  answers || exit 0
  if ! is_ours; then
    say "the Redis on 127.0.0.1:$PORT was not started from $CONF; it is left running."
    exit 0
  fi
  cli shutdown nosave >/dev/null || true
  for _ in $(seq 100); do
    port_in_use || return 0
    sleep 0.1
  done
  say "error: the test Redis on 127.0.0.1:$PORT did not stop; see $LOG."
  exit 1
}

write_settings() {
  # Written at every start, so a changed setting here applies to the next server.
  cat >"$CONF" <<EOF
# Written by scripts/ensure-redis.sh: a throwaway server for tests, never for data.
bind 127.0.0.1
port $PORT
protected-mode yes
daemonize yes
supervised no
pidfile "$PIDFILE"
logfile "$LOG"
dir "$BASE"
save ""
appendonly no
EOF
}

start_server() {
  if port_in_use; then
    unavailable "something else listens on 127.0.0.1:$PORT and is not a Redis that answers" \
      "PING; set COMMENTSVC_TEST_REDIS_PORT to a free port."
  fi
  write_settings
  say "starting the test Redis on 127.0.0.1:$PORT (log: $LOG)…"
  redis-server "$CONF" >&2 || unavailable "redis-server did not start; see $LOG."
  for _ in $(seq 100); do
    answers && return 0
    sleep 0.1
  done
  unavailable "the test Redis did not answer PING within 10 seconds; see $LOG."
}

if [ "${1:-}" = stop ]; then
  stop_server
  exit 0
elif [ $# -gt 0 ]; then
  say "usage: $0 [stop]"
  exit 2
fi

is_installed || install_server_package redis-server redis-server
is_installed || unavailable "no redis-server and redis-cli after installing redis-server."

if answers; then
  is_ours || say "reusing the Redis that answers on 127.0.0.1:$PORT (not started from $CONF);" \
    "the tests empty it."
else
  mkdir -p "$BASE"
  if ! is_root && [ ! -O "$BASE" ]; then
    unavailable "$BASE belongs to another user; set COMMENTSVC_TEST_REDIS_DIR to a directory" \
      "of yours."
  fi
  chmod 700 "$BASE"
  start_server
fi
echo "$URL"
