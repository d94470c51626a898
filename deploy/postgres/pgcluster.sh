#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and local runs: no durability, trust auth.
#
#   pgcluster.sh start DIR PORT   initdb DIR (once), start on 127.0.0.1:PORT, wait until ready
#   pgcluster.sh stop DIR         stop it (fast shutdown; immediate if that does not finish)
#   pgcluster.sh status DIR       exit 0 when running, 3 when not
#
# Layout: DIR/data (the cluster), DIR/postgres.log, the unix socket in DIR.
# Connect with postgresql://postgres@127.0.0.1:PORT/postgres (no password).
# Environment: PG_BINDIR (server binaries; default `pg_config --bindir`, else the newest
# /usr/lib/postgresql/*/bin), PG_START_TIMEOUT (seconds, default 60), PG_WATCH_PID (stop the
# cluster when that process exits).
# As root, the server runs as the `postgres` system user, which is given DIR.
set -euo pipefail

die() { echo "pgcluster.sh: $*" >&2; exit 1; }
note() { echo "pgcluster.sh: $*" >&2; }

bindir() {
  if [[ -n "${PG_BINDIR:-}" ]]; then
    [[ -x "$PG_BINDIR/initdb" ]] || die "no initdb in PG_BINDIR=$PG_BINDIR"
    echo "$PG_BINDIR"
    return
  fi
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir="$(pg_config --bindir 2>/dev/null || true)"
    if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/postgres" ]]; then echo "$dir"; return; fi
  fi
  dir="$(compgen -G '/usr/lib/postgresql/*/bin' | sort -V | tail -n1 || true)"
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then echo "$dir"; return; fi
  for dir in /usr/local/pgsql/bin /usr/pgsql-*/bin; do
    if [[ -x "$dir/initdb" ]]; then echo "$dir"; return; fi
  done
  die "PostgreSQL server binaries not found (set PG_BINDIR)"
}

# Run a command as the cluster owner: the postgres system user when we are root.
as_owner() {
  if [[ $EUID -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Seconds since an $EPOCHREALTIME stamp, with millisecond precision.
elapsed() {
  local now="${EPOCHREALTIME/[.,]/}" then="${1/[.,]/}" ms
  ms=$(((now - then) / 1000))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# setup DIR [create]: paths and binaries; with "create", make DIR and hand it to postgres.
setup() {
  [[ -n "${1:-}" ]] || die "DIR missing"
  DIR="$(realpath -m -- "$1")"
  PGDATA_DIR="$DIR/data"
  LOG_FILE="$DIR/postgres.log"
  BIN="$(bindir)"
  if [[ "${2:-}" != create ]]; then
    if [[ -d "$DIR" ]]; then cd "$DIR"; fi
    return 0
  fi
  mkdir -p "$DIR"
  if [[ $EUID -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || die "running as root, but there is no postgres user"
    chown postgres: "$DIR"
    as_owner test -w "$DIR" -a -x "$DIR" \
      || die "user postgres cannot write $DIR (is a parent directory private to root?)"
  fi
  # Tools run as postgres must not start in a directory it cannot enter (e.g. /root).
  cd "$DIR"
}

running() {
  [[ -f "$PGDATA_DIR/postmaster.pid" ]] || return 1
  as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1
}

write_conf() {
  local port="$1" sockets="$DIR"
  # Unix socket paths are limited to ~107 bytes; use TCP only if DIR is too deep.
  if (( ${#DIR} + 20 > 100 )); then sockets=""; fi
  as_owner tee "$PGDATA_DIR/pgcluster.conf" >/dev/null <<EOF
# Written by deploy/postgres/pgcluster.sh on every start. Tests only: not crash-safe.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockets'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
max_wal_size = 1GB
logging_collector = off
log_min_messages = warning
log_min_error_statement = panic
EOF
  if ! grep -q "^include_if_exists = 'pgcluster.conf'" "$PGDATA_DIR/postgresql.conf"; then
    echo "include_if_exists = 'pgcluster.conf'" | as_owner tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
  fi
}

cmd_start() {
  setup "${1:-}" create
  local port="${2:-}"
  [[ "$port" =~ ^[0-9]+$ ]] || die "usage: pgcluster.sh start DIR PORT"
  local timeout="${PG_START_TIMEOUT:-60}" started="$EPOCHREALTIME"
  if running; then
    local current
    current="$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$PGDATA_DIR/pgcluster.conf" 2>/dev/null || true)"
    if [[ -n "$current" && "$current" != "$port" ]]; then
      die "already running in $DIR on port $current, not $port"
    fi
    note "already running in $DIR"
  else
    if [[ ! -f "$PGDATA_DIR/PG_VERSION" ]]; then
      if [[ $EUID -eq 0 ]]; then
        mkdir -p "$PGDATA_DIR"
        chown postgres: "$PGDATA_DIR"
        chmod 700 "$PGDATA_DIR"
      fi
      as_owner "$BIN/initdb" -D "$PGDATA_DIR" -A trust -U postgres -E UTF8 --locale=C \
        --no-sync --no-instructions >"$DIR/initdb.log" 2>&1 \
        || { tail -n 20 "$DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    write_conf "$port"
    if [[ $EUID -eq 0 && -f "$LOG_FILE" ]]; then chown postgres: "$LOG_FILE"; fi
    if ! as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" -l "$LOG_FILE" -w -t "$timeout" start >/dev/null; then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "could not start PostgreSQL in $DIR on port $port"
    fi
  fi
  local deadline=$((SECONDS + timeout))
  until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; do
    if ((SECONDS >= deadline)); then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "PostgreSQL in $DIR does not answer on 127.0.0.1:$port"
    fi
    sleep 0.1
  done
  note "ready on 127.0.0.1:$port ($(elapsed "$started")s)"
  if [[ -n "${PG_WATCH_PID:-}" ]]; then
    setsid "$0" _watch "$PG_WATCH_PID" "$DIR" </dev/null >/dev/null 2>&1 &
  fi
}

cmd_stop() {
  setup "${1:-}"
  if ! running; then
    note "not running in $DIR"
    return 0
  fi
  if ! as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 30 stop >/dev/null 2>&1; then
    note "fast shutdown did not finish; using immediate"
    as_owner "$BIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w -t 30 stop >/dev/null \
      || die "could not stop PostgreSQL in $DIR"
  fi
  note "stopped ($DIR)"
}

cmd_status() {
  setup "${1:-}"
  if running; then
    echo "running data_dir=$PGDATA_DIR"
  else
    echo "stopped data_dir=$PGDATA_DIR"
    exit 3
  fi
}

# Stop the cluster in DIR once process WATCHED exits.
cmd_watch() {
  local watched="$1"
  setup "$2"
  while kill -0 "$watched" 2>/dev/null; do
    running || exit 0
    sleep 1
  done
  running && cmd_stop "$DIR" >/dev/null 2>&1
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    _watch) cmd_watch "$@" ;;
    *) sed -n '2,14s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
}

main "$@"
