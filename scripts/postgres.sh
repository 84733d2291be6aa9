#!/usr/bin/env bash
# A private PostgreSQL server on 127.0.0.1, for the tests and for trying target-postgres.
#
#   bash scripts/postgres.sh install   # Debian's PostgreSQL (15 where offered), when missing and root
#   bash scripts/postgres.sh start     # install if needed, initdb once, start, create the role and database
#   bash scripts/postgres.sh stop      # safe to call when nothing runs
#   bash scripts/postgres.sh status
#   eval "$(bash scripts/postgres.sh env)"   # TARGET_POSTGRES_* for Meltano's target-postgres
#
# POSTGRES_DIR (default output/postgres) holds data/, the log, the socket and the password;
# POSTGRES_PORT (default 54329), POSTGRES_USER (taps), POSTGRES_DB (warehouse), POSTGRES_PASSWORD
# (default: random, made once per POSTGRES_DIR) and POSTGRES_BIN (PostgreSQL's bin folder) override.
# PostgreSQL refuses to run as root: as root the server runs as the `postgres` system user (made by
# Debian's package; `taps-postgres` is created when it is missing), otherwise as the current user.
# Exit status 3: PostgreSQL is not installed and cannot be installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${POSTGRES_DIR:-output/postgres}
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
DATA=$DIR/data
LOG=$DIR/postgres.log
PASSWORD_FILE=$DIR/password
PORT=${POSTGRES_PORT:-54329}
ROLE=${POSTGRES_USER:-taps}
DB=${POSTGRES_DB:-warehouse}
UNAVAILABLE=3

say() { echo "postgres: $*" >&2; }

bindir() {
  local candidate
  if [ -n "${POSTGRES_BIN:-}" ]; then
    [ -x "$POSTGRES_BIN/initdb" ] && echo "$POSTGRES_BIN"
    return
  fi
  # 15 first (what our machines have), then the newest other version, then whatever is on PATH.
  for candidate in /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then
      echo "$candidate"
      return
    fi
  done
  if command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return
  fi
  return 1
}

install() {
  if bindir >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL is not installed, and only root with apt-get can install it here (Debian's postgresql-15)"
    exit "$UNAVAILABLE"
  fi
  local log package
  log=$(mktemp)
  export DEBIAN_FRONTEND=noninteractive
  say "installing PostgreSQL from Debian's packages"
  if ! apt-get update >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    exit "$UNAVAILABLE"
  fi
  package=postgresql
  if apt-cache show postgresql-15 >/dev/null 2>&1; then
    package=postgresql-15
  fi
  if ! apt-get install -y --no-install-recommends "$package" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    exit "$UNAVAILABLE"
  fi
  rm -f "$log"
  # The package makes a cluster of its own on port 5432 and may start it: ours is the private one.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r version cluster _port status _rest; do
      case $status in
        online*) pg_ctlcluster "$version" "$cluster" stop || true ;;
      esac
    done
  fi
  bindir >/dev/null || {
    say "installed $package, but found no initdb and pg_ctl (set POSTGRES_BIN)"
    exit "$UNAVAILABLE"
  }
}

# Who runs the server: PostgreSQL refuses root.
server_user() {
  if [ "$(id -u)" != 0 ]; then
    id -un
  elif id -u postgres >/dev/null 2>&1; then
    echo postgres
  else
    if ! id -u taps-postgres >/dev/null 2>&1; then
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin taps-postgres
    fi
    echo taps-postgres
  fi
}

as_server_user() {
  if [ "$(id -u)" != 0 ]; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    runuser -u "$SERVER_USER" -- "$@"
  else
    su -s /bin/sh "$SERVER_USER" -c "$(printf '%q ' "$@")"
  fi
}

running() {
  [ -f "$DATA/PG_VERSION" ] && as_server_user "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

# The port the running server listens on (line 4 of postmaster.pid), which may not be $PORT.
running_port() {
  sed -n 4p "$DATA/postmaster.pid"
}

password() {
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    printf '%s' "$POSTGRES_PASSWORD" >"$PASSWORD_FILE"
  elif [ ! -s "$PASSWORD_FILE" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$PASSWORD_FILE")
  fi
  chmod 600 "$PASSWORD_FILE"
  cat "$PASSWORD_FILE"
}

initialise() {
  mkdir -p "$DIR"
  chmod 700 "$DIR"
  if [ "$(id -u)" = 0 ]; then
    chown "$SERVER_USER:" "$DIR"
  fi
  if ! as_server_user test -w "$DIR"; then
    say "$SERVER_USER cannot write $DIR (is a folder above it closed to other users?): set POSTGRES_DIR"
    exit 1
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    say "initdb $DATA"
    # Peer login over the socket in $DIR (for this script), passwords over TCP (for everyone else).
    if ! as_server_user "$BIN/initdb" -D "$DATA" --encoding=UTF8 --locale=C \
      --auth-local=peer --auth-host=scram-sha-256 >"$DIR/initdb.log" 2>&1; then
      tail -n 20 "$DIR/initdb.log" >&2
      exit 1
    fi
  fi
}

# psql as the server's superuser, over the socket; the SQL comes on stdin.
superuser_psql() {
  as_server_user "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$(running_port)" -d postgres "$@"
}

create_role_and_database() {
  local secret verb=create
  secret=$(password)
  if [ "$(superuser_psql -tA -v role="$ROLE" <<<"select 1 from pg_roles where rolname = :'role'")" = 1 ]; then
    verb=alter
  fi
  superuser_psql -v role="$ROLE" -v secret="$secret" <<<"$verb role :\"role\" login password :'secret'"
  if [ "$(superuser_psql -tA -v db="$DB" <<<"select 1 from pg_database where datname = :'db'")" != 1 ]; then
    superuser_psql -v role="$ROLE" -v db="$DB" <<<"create database :\"db\" owner :\"role\""
  fi
}

start() {
  install
  BIN=$(bindir)
  SERVER_USER=$(server_user)
  initialise
  if running; then
    say "already running on 127.0.0.1:$(running_port) ($DATA)"
  else
    # Only 127.0.0.1, only this port, the socket in $DIR (not /var/run/postgresql).
    if ! as_server_user "$BIN/pg_ctl" start -w -t 60 -D "$DATA" -l "$LOG" \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k '$DIR'" >/dev/null; then
      tail -n 20 "$LOG" >&2
      exit 1
    fi
  fi
  create_role_and_database
  say "ready on 127.0.0.1:$(running_port): database $DB, user $ROLE"
  say "eval \"\$(bash scripts/postgres.sh env)\" sets TARGET_POSTGRES_* for it"
}

stop() {
  if ! BIN=$(bindir) || [ ! -f "$DATA/PG_VERSION" ]; then
    say "not running (no server in $DIR)"
    return 0
  fi
  SERVER_USER=$(stat -c %U "$DATA")
  if ! running; then
    say "not running ($DATA)"
    return 0
  fi
  if ! as_server_user "$BIN/pg_ctl" stop -w -t 60 -m fast -D "$DATA" >/dev/null; then
    as_server_user "$BIN/pg_ctl" stop -w -t 30 -m immediate -D "$DATA" >/dev/null
  fi
  say "stopped ($DATA)"
}

status() {
  if ! BIN=$(bindir) || [ ! -f "$DATA/PG_VERSION" ]; then
    say "not running (no server in $DIR)"
    return 3
  fi
  SERVER_USER=$(stat -c %U "$DATA")
  if running; then
    say "running on 127.0.0.1:$(running_port) ($DATA)"
  else
    say "not running ($DATA)"
    return 3
  fi
}

print_env() {
  if [ ! -s "$PASSWORD_FILE" ]; then
    say "no server in $DIR yet: run \`bash scripts/postgres.sh start\` first"
    exit 1
  fi
  local port=$PORT
  if [ -f "$DATA/postmaster.pid" ]; then
    port=$(running_port)
  fi
  printf 'export TARGET_POSTGRES_HOST=127.0.0.1\n'
  printf 'export TARGET_POSTGRES_PORT=%s\n' "$port"
  printf 'export TARGET_POSTGRES_USER=%q\n' "$ROLE"
  printf 'export TARGET_POSTGRES_PASSWORD=%q\n' "$(cat "$PASSWORD_FILE")"
  printf 'export TARGET_POSTGRES_DATABASE=%q\n' "$DB"
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  *)
    echo "usage: $0 install|start|stop|status|env" >&2
    exit 2
    ;;
esac
