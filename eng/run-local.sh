#!/usr/bin/env bash
# Runs the whole CoTeX topology on this machine without Aspire or Docker:
# Postgres and Redis from local binaries, the migration step, the Api, two Realtime replicas and the Worker,
# wired with the same configuration an Aspire AppHost injects (ConnectionStrings__cotexdb, ConnectionStrings__redis).
#
#   eng/run-local.sh          foreground: Ctrl-C stops every process it started
#   eng/run-local.sh start    background: returns once every /health is Healthy (PIDs in $COTEX_DATA_DIR/pids)
#   eng/run-local.sh stop     stops what `start` started
#   eng/run-local.sh status   prints each service's /health
#   eng/run-local.sh postgres | redis
#                             runs just that server in the foreground (the Aspire AppHost's executable resources)
#
# Every port and folder can be overridden from the environment (defaults below), and so can every service setting,
# the ASP.NET way: `Auth__JwtSecret=... eng/run-local.sh` reaches all services.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${COTEX_DATA_DIR:=$repo_root/.data}"
: "${COTEX_CONFIGURATION:=Release}"
: "${COTEX_API_PORT:=5080}"
: "${COTEX_REALTIME1_PORT:=5081}"
: "${COTEX_REALTIME2_PORT:=5082}"
: "${COTEX_WORKER_PORT:=5083}"
: "${COTEX_PG_PORT:=55432}"
: "${COTEX_REDIS_PORT:=56379}"
: "${COTEX_HEALTH_TIMEOUT:=120}"
# The secret local tokens are signed with (see README: minting a dev token). Never use it outside a local run.
: "${Auth__JwtSecret:=cotex-local-development-secret-change-me-0123456789}"
export Auth__JwtSecret

pids_dir="$COTEX_DATA_DIR/pids"
logs_dir="$COTEX_DATA_DIR/logs"
pg_data="$COTEX_DATA_DIR/postgres"
redis_data="$COTEX_DATA_DIR/redis"

export ConnectionStrings__cotexdb="Host=127.0.0.1;Port=$COTEX_PG_PORT;Username=postgres;Database=cotexdb"
export ConnectionStrings__redis="127.0.0.1:$COTEX_REDIS_PORT"
export ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}"
export DOTNET_ENVIRONMENT="$ASPNETCORE_ENVIRONMENT"
export Api__PublicBaseUrl="${Api__PublicBaseUrl:-http://127.0.0.1:$COTEX_API_PORT}"

log() { printf '[run-local] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# name:project:port, in start order.
services=(
  "api:CoTeX.Api:$COTEX_API_PORT"
  "realtime-1:CoTeX.Realtime:$COTEX_REALTIME1_PORT"
  "realtime-2:CoTeX.Realtime:$COTEX_REALTIME2_PORT"
  "worker:CoTeX.Worker:$COTEX_WORKER_PORT"
)

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

find_tools() {
  local candidates=()
  command -v pg_config >/dev/null 2>&1 && candidates+=("$(pg_config --bindir)")
  candidates+=(/usr/lib/postgresql/*/bin)
  pg_bin=""
  for dir in $(printf '%s\n' "${candidates[@]}" | sort -rV); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then pg_bin=$dir; break; fi
  done
  if [ -z "$pg_bin" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "PostgreSQL server binaries not found; installing the Debian package 'postgresql'"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      find_tools; return
    fi
    die "PostgreSQL server binaries (initdb, pg_ctl) not found: install the 'postgresql' package (apt-get install postgresql)"
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "redis-server not found; installing the Debian package 'redis-server'"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      die "redis-server not found: install the 'redis-server' package (apt-get install redis-server)"
    fi
  fi
  command -v dotnet >/dev/null || die "dotnet not found: install the .NET 10 SDK"
  command -v curl >/dev/null || die "curl not found: install the 'curl' package"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_cluster() {
  if [ ! -f "$pg_data/PG_VERSION" ]; then
    log "initialising a Postgres cluster in $pg_data"
    mkdir -p "$pg_data"
    if [ "$(id -u)" = 0 ]; then
      chown postgres:postgres "$pg_data"
      runuser -u postgres -- test -w "$pg_data" \
        || die "user 'postgres' cannot reach $pg_data (a parent folder is private); set COTEX_DATA_DIR to a folder it can reach, e.g. /var/tmp/cotex"
    fi
    as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 >"$COTEX_DATA_DIR/initdb.log" 2>&1 \
      || die "initdb failed, see $COTEX_DATA_DIR/initdb.log"
  fi
}

pg_options=(-p "$COTEX_PG_PORT" -c listen_addresses=127.0.0.1 -c "unix_socket_directories=")

start_postgres() {
  ensure_cluster
  if as_postgres "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    log "Postgres already running on port $COTEX_PG_PORT"
    return
  fi
  port_in_use "$COTEX_PG_PORT" && die "port $COTEX_PG_PORT (Postgres) is taken; set COTEX_PG_PORT"
  touch "$logs_dir/postgres.log"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$logs_dir/postgres.log"
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$logs_dir/postgres.log" -w -t 60 \
    -o "${pg_options[*]}''" start >/dev/null \
    || die "Postgres did not start, see $logs_dir/postgres.log"
  log "Postgres listening on 127.0.0.1:$COTEX_PG_PORT"
}

redis_options=(--port "$COTEX_REDIS_PORT" --bind 127.0.0.1 --dir "$redis_data" --appendonly yes --save "" --daemonize no)

start_redis() {
  if [ -f "$pids_dir/redis.pid" ] && kill -0 "$(cat "$pids_dir/redis.pid")" 2>/dev/null; then
    log "Redis already running on port $COTEX_REDIS_PORT"
    return
  fi
  port_in_use "$COTEX_REDIS_PORT" && die "port $COTEX_REDIS_PORT (Redis) is taken; set COTEX_REDIS_PORT"
  mkdir -p "$redis_data"
  redis-server "${redis_options[@]}" --logfile "$logs_dir/redis.log" </dev/null >/dev/null 2>&1 &
  echo $! >"$pids_dir/redis.pid"
  for _ in $(seq 1 50); do
    redis-cli -p "$COTEX_REDIS_PORT" ping >/dev/null 2>&1 && { log "Redis listening on 127.0.0.1:$COTEX_REDIS_PORT"; return; }
    sleep 0.1
  done
  die "Redis did not start, see $logs_dir/redis.log"
}

build() {
  log "building the services ($COTEX_CONFIGURATION)"
  dotnet build "$repo_root/CoTeX.Services.slnf" -c "$COTEX_CONFIGURATION" -nologo -v quiet >"$logs_dir/build.log" 2>&1 \
    || { tail -n 30 "$logs_dir/build.log" >&2; die "build failed, see $logs_dir/build.log"; }
}

dll_of() { echo "$repo_root/$1/bin/$COTEX_CONFIGURATION/net10.0/$1.dll"; }

migrate() {
  log "applying database migrations"
  dotnet "$(dll_of CoTeX.MigrationService)" >"$logs_dir/migrations.log" 2>&1 \
    || { tail -n 20 "$logs_dir/migrations.log" >&2; die "migrations failed, see $logs_dir/migrations.log"; }
}

start_services() {
  for entry in "${services[@]}"; do
    IFS=: read -r name project port <<<"$entry"
    port_in_use "$port" && die "port $port ($name) is taken; set the COTEX_*_PORT variable for it"
    # setsid: the service gets its own process group, so Ctrl-C in this terminal reaches it only through us
    # and every service gets the same orderly SIGTERM.
    # The project folder is the working directory (as under Aspire): the content root's file watcher (config reload)
    # must not see the Postgres files and logs under .data, which cost the Api ~6% CPU under load.
    (cd "$repo_root/$project" && ASPNETCORE_URLS="http://127.0.0.1:$port" Realtime__InstanceId="$name" OTEL_SERVICE_NAME="$name" \
      exec setsid dotnet "$(dll_of "$project")") </dev/null >"$logs_dir/$name.log" 2>&1 &
    echo $! >"$pids_dir/$name.pid"
  done
}

wait_healthy() {
  local deadline=$((SECONDS + COTEX_HEALTH_TIMEOUT))
  for entry in "${services[@]}"; do
    IFS=: read -r name _ port <<<"$entry"
    until curl -fs -o /dev/null "http://127.0.0.1:$port/health"; do
      kill -0 "$(cat "$pids_dir/$name.pid")" 2>/dev/null \
        || { tail -n 20 "$logs_dir/$name.log" >&2; die "$name exited during start, see $logs_dir/$name.log"; }
      [ $SECONDS -lt $deadline ] \
        || die "$name is not healthy after ${COTEX_HEALTH_TIMEOUT}s: $(curl -s "http://127.0.0.1:$port/health")"
      sleep 0.5
    done
  done
}

print_urls() {
  cat <<EOF

CoTeX is running (data and logs in $COTEX_DATA_DIR):
  Api           http://127.0.0.1:$COTEX_API_PORT        (health: /health, /alive)
  Realtime #1   http://127.0.0.1:$COTEX_REALTIME1_PORT        (SignalR hub: /ws)
  Realtime #2   http://127.0.0.1:$COTEX_REALTIME2_PORT
  Worker        http://127.0.0.1:$COTEX_WORKER_PORT        (health only)
  Postgres      $ConnectionStrings__cotexdb
  Redis         $ConnectionStrings__redis
EOF
}

stop_pid_file() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
  fi
  echo "$pid"
}

stop_all() {
  local pids=() pid
  for entry in "${services[@]}"; do
    IFS=: read -r name _ _ <<<"$entry"
    pid=$(stop_pid_file "$pids_dir/$name.pid") && [ -n "$pid" ] && pids+=("$pid")
  done
  # Services get 30 s (their own shutdown budget is 25 s) before they are killed.
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$pids_dir"/{api,realtime-1,realtime-2,worker}.pid
  pid=$(stop_pid_file "$pids_dir/redis.pid")
  if [ -n "$pid" ]; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pids_dir/redis.pid"
  fi
  if [ -n "${pg_bin:-}" ] && [ -f "$pg_data/postmaster.pid" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  log "stopped"
}

status() {
  for entry in "${services[@]}"; do
    IFS=: read -r name _ port <<<"$entry"
    printf '%-11s %s\n' "$name" "$(curl -s "http://127.0.0.1:$port/health" || echo unreachable)"
  done
}

up() {
  mkdir -p "$pids_dir" "$logs_dir"
  find_tools
  start_postgres
  start_redis
  build
  migrate
  start_services
  wait_healthy
  print_urls
}

case "${1:-run}" in
  run)
    trap 'trap - EXIT INT TERM; stop_all; exit 0' INT TERM
    trap 'stop_all' EXIT
    up
    log "running in the foreground; Ctrl-C stops everything. Following the service logs:"
    tail -q -n 0 -F "$logs_dir"/{api,realtime-1,realtime-2,worker}.log &
    wait
    ;;
  start)
    trap 'stop_all' EXIT  # a failed start leaves nothing behind
    up
    trap - EXIT
    ;;
  stop)
    find_tools
    stop_all
    ;;
  status)
    status
    ;;
  postgres)
    mkdir -p "$logs_dir"
    find_tools
    ensure_cluster
    exec_prefix=(); [ "$(id -u)" = 0 ] && exec_prefix=(runuser -u postgres --)
    exec "${exec_prefix[@]}" "$pg_bin/postgres" -D "$pg_data" "${pg_options[@]}"
    ;;
  redis)
    find_tools
    mkdir -p "$redis_data"
    exec redis-server "${redis_options[@]}"
    ;;
  *)
    echo "usage: $0 [run|start|stop|status|postgres|redis]" >&2
    exit 2
    ;;
esac
