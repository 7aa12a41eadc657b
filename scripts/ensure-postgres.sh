#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests, on loopback only, tuned for speed, not safety.
#
#   ./scripts/ensure-postgres.sh        install Debian's postgresql when missing (as root),
#                                       start the cluster unless it runs, make the role and
#                                       database, and print the URL for
#                                       COMMENTSVC_TEST_DATABASE_URL on standard output
#   ./scripts/ensure-postgres.sh stop   stop the cluster (its data stays for the next start)
#
# Idempotent. Everything but the URL goes to standard error, so the output can be captured:
#   COMMENTSVC_TEST_DATABASE_URL="$(./scripts/ensure-postgres.sh)" .venv/bin/pytest
# When PostgreSQL cannot be provided (e.g. not installed and not root), this warns and prints
# nothing, or fails with exit status 1 when CI=true.
#
# COMMENTSVC_TEST_PG_DIR (default /tmp/commentsvc-test-pg) holds the data, the socket and the
# log; COMMENTSVC_TEST_PG_PORT (default 55432) is the TCP port on 127.0.0.1.
set -euo pipefail

BASE=${COMMENTSVC_TEST_PG_DIR:-/tmp/commentsvc-test-pg}
PORT=${COMMENTSVC_TEST_PG_PORT:-55432}
DATA=$BASE/data
LOG=$BASE/postgres.log
ROLE=commentsvc
PASSWORD=commentsvc
DATABASE=commentsvc_test
URL="postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"

say() { echo "ensure-postgres: $*" >&2; }

# PostgreSQL cannot be provided: an error in CI, a warning (and no URL) elsewhere.
unavailable() {
  if [ "${CI:-}" = "true" ]; then
    say "error: $*"
    exit 1
  fi
  say "warning: $* The PostgreSQL test run is skipped."
  exit 0
}

# shellcheck source=lib/apt-install.sh
. "$(dirname "$0")/lib/apt-install.sh"

# initdb and the server refuse to run as root: as root, run them as the postgres user.
as_owner() {
  if is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Debian's server binaries live in /usr/lib/postgresql/VERSION/bin, off the PATH; take the
# newest version that has both pg_ctl and initdb.
find_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -r -V); do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

stop_cluster() {
  BINDIR=$(find_bindir) || { say "PostgreSQL is not installed; nothing to stop."; exit 0; }
  if [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$BINDIR/pg_ctl" -D "$DATA" -m fast -w stop >&2
  else
    say "the test cluster in $DATA is not running."
  fi
}

is_running() {
  as_owner "$BINDIR/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

port_in_use() {
  local status=0
  "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 1 || status=$?
  [ "$status" -ne 2 ]  # 2: no response at all, so nothing listens there
}

initialize() {
  say "creating the test cluster in $DATA…"
  local password_file=$BASE/initdb-password
  (umask 077 && printf '%s\n' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    >"$password_file")
  is_root && chown postgres: "$password_file"
  # The superuser logs in by the socket only (which only the owner can reach); every TCP
  # login, over loopback only, needs a password.
  as_owner "$BINDIR/initdb" -D "$DATA" -U postgres --pwfile="$password_file" \
    --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 ||
    { rm -f "$password_file"; unavailable "initdb failed; see $BASE/initdb.log."; }
  rm -f "$password_file"
  echo "include 'commentsvc-test.conf'" | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
}

write_settings() {
  # Written at every start, so a changed setting here applies to an existing cluster.
  as_owner tee "$DATA/commentsvc-test.conf" >/dev/null <<EOF
# Written by scripts/ensure-postgres.sh: a throwaway cluster for tests, never for data.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$BASE'
unix_socket_permissions = 0700
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 4GB
# Databases live for one test; a vacuum worker in the template would only delay copying it.
autovacuum = off
EOF
}

start_cluster() {
  if port_in_use; then
    unavailable "something else listens on 127.0.0.1:$PORT; set COMMENTSVC_TEST_PG_PORT" \
      "to a free port."
  fi
  write_settings
  say "starting the test cluster on 127.0.0.1:$PORT (log: $LOG)…"
  as_owner "$BINDIR/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >&2 ||
    unavailable "the test cluster did not start; see $LOG."
}

superuser_sql() {
  "$BINDIR/psql" -h "$BASE" -p "$PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -q -A -t -c "$1"
}

create_role_and_database() {
  if [ -z "$(superuser_sql "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]; then
    say "creating role $ROLE…"
    superuser_sql "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'" >/dev/null
  fi
  if [ -z "$(superuser_sql "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" ]; then
    say "creating database $DATABASE…"
    superuser_sql "CREATE DATABASE $DATABASE OWNER $ROLE" >/dev/null
  fi
}

if [ "${1:-}" = stop ]; then
  stop_cluster
  exit 0
elif [ $# -gt 0 ]; then
  say "usage: $0 [stop]"
  exit 2
fi

BINDIR=$(find_bindir) || {
  install_server_package postgresql "PostgreSQL (no /usr/lib/postgresql/*/bin/pg_ctl)"
  BINDIR=$(find_bindir)
} ||
  unavailable "no pg_ctl in /usr/lib/postgresql/*/bin after installing postgresql."

mkdir -p "$BASE"
if is_root; then
  id postgres >/dev/null 2>&1 ||
    unavailable "there is no 'postgres' user to run the server as (initdb refuses root)."
  chown postgres: "$BASE"
elif [ ! -O "$BASE" ]; then
  unavailable "$BASE belongs to another user; set COMMENTSVC_TEST_PG_DIR to a directory" \
    "of yours."
fi
chmod 700 "$BASE"

if [ ! -s "$DATA/PG_VERSION" ]; then
  initialize
fi
if ! is_running; then
  start_cluster
fi
create_role_and_database
echo "$URL"
