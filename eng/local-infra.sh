#!/usr/bin/env bash
# Postgres or Redis from this machine's own binaries, in the foreground. The AppHost runs these as executable
# resources when no container runtime answers (CoTeX.AppHost/LocalInfrastructure.cs); the benchmark tool uses them too.
#
#   eng/local-infra.sh postgres [-c name=value ...]   Postgres on 127.0.0.1:$COTEX_PG_PORT; cluster in $COTEX_DATA_DIR/postgres
#   eng/local-infra.sh redis [--name value ...]       Redis on 127.0.0.1:$COTEX_REDIS_PORT; append-only file in $COTEX_DATA_DIR/redis
#
# Arguments after the server's name go to the server as they are (the tests and the benchmark tool turn off fsync and
# persistence, and raise Postgres' max_connections, through the AppHost's LocalInfrastructureOptions).
#
# SIGTERM or SIGINT stops the server cleanly: Postgres with a fast shutdown (sessions ended, a shutdown checkpoint
# written, so the next start needs no crash recovery), Redis after flushing its append-only file.
# A missing server is installed from Debian's packages when running as root; otherwise the script names it.
set -euo pipefail

: "${COTEX_DATA_DIR:?set COTEX_DATA_DIR to the folder that keeps the data}"
COTEX_DATA_DIR=$(mkdir -p "$COTEX_DATA_DIR" && cd "$COTEX_DATA_DIR" && pwd)
: "${COTEX_PG_PORT:=55432}"
: "${COTEX_REDIS_PORT:=56379}"

log() { printf '[local-infra] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

install_package() {
  is_root && command -v apt-get >/dev/null || die "$2 not found: install the Debian package '$1' (apt-get install $1)"
  log "$2 not found; installing the Debian package '$1'"
  # Another start (the other server, a test) may hold the dpkg lock for a moment.
  for _ in 1 2 3 4 5 6; do
    if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; then return; fi
    sleep 5
  done
  die "could not install '$1'"
}

find_postgres() {
  local dir
  pg_bin=""
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then pg_bin=$dir; return; fi
  done
  install_package postgresql "PostgreSQL server binaries (initdb, postgres)"
  find_postgres
}

# As root, Postgres runs as the 'postgres' user (it refuses to run as root). setpriv replaces itself with the
# command, so a PID taken from it is the server's own.
as_postgres=()
is_root && as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups --)

# Where the cluster lives: $COTEX_DATA_DIR/postgres, unless (as root) the 'postgres' user cannot reach that folder
# because a parent is private (a clone under /root or in a mktemp folder); then a folder of its own under /var/tmp,
# named after the data folder so every run finds it again.
postgres_data() {
  if is_root && ! runuser -u postgres -- test -x "$COTEX_DATA_DIR"; then
    local own="/var/tmp/cotex-postgres-$(printf '%s' "$COTEX_DATA_DIR" | sha1sum | cut -c1-12)"
    log "user 'postgres' cannot reach $COTEX_DATA_DIR (a parent folder is private); the cluster lives in $own"
    echo "$own"
  else
    echo "$COTEX_DATA_DIR/postgres"
  fi
}

run_postgres() {
  find_postgres
  local data
  data=$(postgres_data)
  # initdb and postgres run as 'postgres', which may not be allowed into the folder we were started from.
  cd /
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a Postgres cluster in $data"
    mkdir -p "$data"
    is_root && chown postgres:postgres "$data" && chmod 700 "$data"
    "${as_postgres[@]}" "$pg_bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$COTEX_DATA_DIR/initdb.log" 2>&1 \
      || { cat "$COTEX_DATA_DIR/initdb.log" >&2; die "initdb failed"; }
  fi
  log "Postgres $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$COTEX_PG_PORT, data in $data"
  # A simple command, not a function: a function in the background would run in a subshell, and $! would be the
  # subshell's PID (which, in the background of a non-interactive shell, ignores SIGINT).
  "${as_postgres[@]}" "$pg_bin/postgres" -D "$data" -p "$COTEX_PG_PORT" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories= "$@" &
  local pid=$!
  # Postgres reads SIGTERM as a "smart" shutdown, which waits for every client to leave; SIGINT is the fast one.
  trap 'log "stopping Postgres (fast shutdown)"; kill -INT "$pid" 2>/dev/null || true' TERM INT
  local status=0
  while kill -0 "$pid" 2>/dev/null; do
    wait "$pid" && status=0 || status=$?
  done
  log "Postgres exited ($status)"
  exit "$status"
}

run_redis() {
  command -v redis-server >/dev/null || install_package redis-server redis-server
  local data="$COTEX_DATA_DIR/redis"
  mkdir -p "$data"
  log "Redis $(redis-server --version | grep -oE 'v=[^ ]+' | cut -d= -f2) on 127.0.0.1:$COTEX_REDIS_PORT, data in $data"
  # Redis shuts down cleanly on SIGTERM (append-only file flushed), so it can replace this shell.
  exec redis-server --port "$COTEX_REDIS_PORT" --bind 127.0.0.1 --dir "$data" --appendonly yes --save "" \
    --daemonize no --loglevel warning "$@"
}

case "${1:-}" in
  postgres) shift; run_postgres "$@" ;;
  redis) shift; run_redis "$@" ;;
  *) echo "usage: $0 postgres|redis" >&2; exit 2 ;;
esac
