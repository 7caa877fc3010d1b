#!/usr/bin/env bash
# Private PostgreSQL and Redis for runs and tests, under .tally/ (ignored by git), on loopback,
# on free ports; nothing depends on system services or systemd.
#
#   tools/services.sh start              start both (a second call finds them running)
#   tools/services.sh stop               stop both
#   tools/services.sh restart postgres   restart one (tests use this to prove healing)
#   tools/services.sh stop redis         stop one (tests use this to prove fallbacks)
#   tools/services.sh kill redis         SIGKILL Redis (a crash: only its fsynced AOF survives)
#   tools/services.sh status             print what runs where
#   tools/services.sh replica start      a streaming standby of the PostgreSQL (pg_basebackup -R)
#                                        on its own port; adds DATABASE_READ_URL to services.env
#   tools/services.sh replica stop       stop the standby (DATABASE_READ_URL leaves services.env)
#   tools/services.sh replica status     whether it runs, and its replay lag behind the primary
#   tools/services.sh cluster start      a Redis Cluster: 3 masters, 3 replicas (see cluster_start)
#   tools/services.sh cluster stop       stop it
#   tools/services.sh cluster kill-master N   SIGKILL the master owning the Nth third of the slots
#   tools/services.sh cluster status     print its nodes
#
# `start` writes .tally/services.env (DATABASE_URL, REDIS_URL, ...) for `source`.
# TALLY_STATE_DIR=/some/dir runs a separate set there instead of .tally/: tests that stop,
# kill or restart a service use their own set so other tests running beside them are unharmed.
# PostgreSQL refuses to run as root, so under root it runs as the `postgres` user the Debian
# package creates. Redis keeps an append-only file fsynced on every write
# (`appendfsync always`) and never evicts (`maxmemory-policy noeviction`): a queued job or an
# acknowledged event must survive a Redis restart.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${TALLY_STATE_DIR:-$ROOT/.tally}
PG_DATA=$STATE/postgres/data
PG_RUN=$STATE/postgres/run
PG_LOG=$STATE/postgres/postgres.log
REDIS_DIR=$STATE/redis
ENV_FILE=$STATE/services.env
CLUSTER_DIR=$STATE/cluster

log() { printf 'services: %s\n' "$*" >&2; }

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -n $dir ]] || { log "PostgreSQL is not installed (bash tools/install-deps.sh)"; exit 1; }
  echo "$dir"
}

# Runs a command as the PostgreSQL owner: ourselves, or `postgres` when we are root.
as_pg() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# Runs a command that leaves a daemon behind with only stdin/stdout/stderr: a daemon holding
# another inherited descriptor (a pipe or socket of whoever called us) keeps the caller
# waiting for an EOF that never comes.
detached() {
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      [[ $fd -gt 2 ]] && eval "exec $fd>&-" 2> /dev/null
    done
    "$@"
  )
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Ports are chosen once and kept, so a restarted service comes back where clients expect it.
saved() { # saved TALLY_PG_PORT | TALLY_REDIS_PORT
  local file
  case "$1" in TALLY_PG_PORT) file=$STATE/postgres/port ;; *) file=$REDIS_DIR/port ;; esac
  cat "$file" 2>/dev/null || true
}

# --- PostgreSQL -----------------------------------------------------------------------------

pg_running() {
  local port
  port=$(saved TALLY_PG_PORT)
  [[ -n $port && -f $PG_DATA/postmaster.pid ]] && as_pg "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null
}

pg_start() {
  local bin port
  bin=$(pg_bin)
  if pg_running; then
    log "PostgreSQL already running on port $(saved TALLY_PG_PORT)"
    return
  fi
  mkdir -p "$PG_RUN"
  if [[ $(id -u) -eq 0 ]]; then
    # The postgres user must reach the data folder: allow traversal (not listing) of the
    # folders above it, then hand it the folder.
    local dir=$STATE
    while [[ $dir != / ]]; do
      dir=$(dirname "$dir")
      [[ $(stat -c %a "$dir") =~ [1357]$ ]] || chmod o+x "$dir"
    done
    chown -R postgres:postgres "$STATE/postgres"
  fi
  if [[ ! -f $PG_DATA/PG_VERSION ]]; then
    log "initdb $PG_DATA"
    as_pg "$bin/initdb" -D "$PG_DATA" -U tally --auth=trust -E UTF8 --locale=C.UTF-8 > "$STATE/postgres/initdb.log"
  fi
  port=$(saved TALLY_PG_PORT)
  [[ -n $port ]] || port=$(free_port)
  rm -f "$PG_DATA/postmaster.pid"
  # Durability stays on (fsync, synchronous_commit, full_page_writes). For bulk loads (COPY of
  # events): shared_buffers 1GB holds a month of benchmark events with their indexes, so a load
  # does not evict and write back its own dirty pages (the machine has 24 GB; the memory is
  # only touched as used); wal_buffers 64MB (the default is 1/32 of shared_buffers, at most
  # 16MB) so a COPY seldom waits for a WAL write to free buffer space; max_wal_size 4GB and
  # checkpoint_timeout 15min so a load does not trigger checkpoints, whose full-page images
  # double the WAL written right after them.
  detached as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$PG_RUN \
     -c max_connections=300 -c shared_buffers=1GB -c fsync=on -c synchronous_commit=on \
     -c wal_buffers=64MB -c max_wal_size=4GB -c checkpoint_timeout=15min \
     -c log_min_messages=warning" > /dev/null
  as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U tally -d postgres -tAq \
    -c "SELECT 1 FROM pg_database WHERE datname = 'tally'" | grep -q 1 ||
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U tally tally
  log "PostgreSQL on 127.0.0.1:$port"
  echo "$port" > "$STATE/postgres/port"
}

pg_stop() {
  [[ -f $PG_DATA/postmaster.pid ]] || return 0
  as_pg "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop > /dev/null || true
  log "PostgreSQL stopped"
}

# --- PostgreSQL streaming standby (`replica`) ------------------------------------------------
# A copy of the primary made by pg_basebackup -R (which writes primary_conninfo and
# standby.signal), replaying the primary's WAL as it streams. The primary needs nothing extra:
# PostgreSQL 10+ defaults to wal_level=replica and max_wal_senders=10, and initdb --auth=trust
# writes a `host replication all 127.0.0.1/32 trust` line into pg_hba.conf. Its data survives
# `replica stop`; `replica start` resumes streaming from where it stopped.

REPLICA_DIR=$STATE/replica
REPLICA_DATA=$REPLICA_DIR/data

replica_port() { cat "$REPLICA_DIR/port" 2>/dev/null || true; }

replica_running() {
  local port
  port=$(replica_port)
  [[ -n $port && -f $REPLICA_DATA/postmaster.pid ]] && as_pg "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null
}

replica_start() {
  local bin port primary
  bin=$(pg_bin)
  pg_running || { log "the replica needs the primary: tools/services.sh start postgres"; exit 1; }
  if replica_running; then
    log "PostgreSQL replica already running on port $(replica_port)"
    return
  fi
  primary=$(saved TALLY_PG_PORT)
  mkdir -p "$REPLICA_DIR/run"
  [[ $(id -u) -ne 0 ]] || chown -R postgres:postgres "$REPLICA_DIR"
  if [[ ! -f $REPLICA_DATA/standby.signal ]]; then
    rm -rf "$REPLICA_DATA"
    log "pg_basebackup from 127.0.0.1:$primary into $REPLICA_DATA"
    as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary" -U tally -D "$REPLICA_DATA" -R -X stream -c fast
  fi
  port=$(replica_port)
  [[ -n $port ]] || port=$(free_port)
  rm -f "$REPLICA_DATA/postmaster.pid"
  # hot_standby_feedback: the primary keeps rows a standby query still reads, so long reads
  # here are not cancelled by the replay of a vacuum.
  detached as_pg "$bin/pg_ctl" -D "$REPLICA_DATA" -l "$REPLICA_DIR/postgres.log" -w -t 60 start -o \
    "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$REPLICA_DIR/run \
     -c max_connections=300 -c shared_buffers=256MB -c hot_standby=on -c hot_standby_feedback=on \
     -c log_min_messages=warning" > /dev/null
  echo "$port" > "$REPLICA_DIR/port"
  log "PostgreSQL replica on 127.0.0.1:$port, streaming from 127.0.0.1:$primary"
}

replica_stop() {
  [[ -f $REPLICA_DATA/postmaster.pid ]] || return 0
  as_pg "$(pg_bin)/pg_ctl" -D "$REPLICA_DATA" -m fast -w -t 60 stop > /dev/null || true
  log "PostgreSQL replica stopped"
}

replica_status() {
  if replica_running; then
    local bin lsn behind
    bin=$(pg_bin)
    lsn=$(as_pg "$bin/psql" -h 127.0.0.1 -p "$(saved TALLY_PG_PORT)" -U tally -d postgres -tAq -c "SELECT pg_current_wal_lsn()" 2>/dev/null || true)
    behind=$(as_pg "$bin/psql" -h 127.0.0.1 -p "$(replica_port)" -U tally -d postgres -tAq \
      -c "SELECT pg_wal_lsn_diff('${lsn:-0/0}', pg_last_wal_replay_lsn())" 2>/dev/null || true)
    echo "replica: running on $(replica_port), replay ${behind:-?} bytes of WAL behind the primary"
  else
    echo "replica: stopped"
  fi
}

replica_command() {
  case "${1:-status}" in
    start) replica_start; write_env ;;
    stop) replica_stop; write_env ;;
    status) replica_status ;;
    *) log "usage: tools/services.sh replica start|stop|status"; exit 2 ;;
  esac
}

# --- Redis ----------------------------------------------------------------------------------

redis_running() {
  local port
  port=$(saved TALLY_REDIS_PORT)
  [[ -n $port ]] && redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG
}

redis_start() {
  if redis_running; then
    log "Redis already running on port $(saved TALLY_REDIS_PORT)"
    return
  fi
  mkdir -p "$REDIS_DIR"
  local port
  port=$(saved TALLY_REDIS_PORT)
  [[ -n $port ]] || port=$(free_port)
  detached redis-server --bind 127.0.0.1 --port "$port" --dir "$REDIS_DIR" \
    --daemonize yes --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
    --appendonly yes --appendfsync always --maxmemory-policy noeviction \
    --save "" --protected-mode yes --maxclients 10000 < /dev/null > /dev/null 2>&1
  # (the daemon must not inherit our stdout: a caller reading it to EOF would wait forever)
  for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  redis-cli -h 127.0.0.1 -p "$port" ping | grep -q PONG || { log "Redis did not start"; exit 1; }
  log "Redis on 127.0.0.1:$port"
  echo "$port" > "$REDIS_DIR/port"
}

redis_stop() {
  local port
  port=$(saved TALLY_REDIS_PORT)
  [[ -n $port ]] || return 0
  redis-cli -h 127.0.0.1 -p "$port" shutdown 2>/dev/null || true
  for _ in $(seq 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping > /dev/null 2>&1 || break
    sleep 0.1
  done
  log "Redis stopped"
}

redis_kill() {
  local pid
  pid=$(cat "$REDIS_DIR/redis.pid" 2> /dev/null) || return 0
  kill -KILL "$pid" 2> /dev/null || true
  while kill -0 "$pid" 2> /dev/null; do sleep 0.05; done
  rm -f "$REDIS_DIR/redis.pid"
  log "Redis killed"
}

# --- Redis Cluster --------------------------------------------------------------------------
# Six nodes (3 masters, 3 replicas) from the same redis-server, each with the durability of the
# single Redis (AOF fsynced on every write, never evicting). cluster-node-timeout is 2 s so a
# killed master's replica takes over within a few seconds (the failover test waits for that).

cluster_ports() { cat "$CLUSTER_DIR/ports" 2>/dev/null || true; }

cluster_node_running() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

cluster_node_start() {
  local port=$1 dir=$CLUSTER_DIR/$1
  mkdir -p "$dir"
  detached redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 2000 \
    --appendonly yes --appendfsync always --maxmemory-policy noeviction \
    --save "" --protected-mode yes --maxclients 10000 < /dev/null > /dev/null 2>&1
  for _ in $(seq 100); do cluster_node_running "$port" && return; sleep 0.1; done
  log "Redis Cluster node $port did not start"; exit 1
}

cluster_start() {
  mkdir -p "$CLUSTER_DIR"
  local ports port
  ports=$(cluster_ports)
  if [[ -z $ports ]]; then
    # Each node also listens on its port + 10000 (the cluster bus), so both must be free.
    ports=$(python3 -c '
import random, socket
def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); return True
    except OSError:
        return False
    finally:
        s.close()
ports = []
while len(ports) < 6:
    p = random.randint(20000, 45000)
    if p not in ports and p + 10000 not in ports and free(p) and free(p + 10000):
        ports.append(p)
print(" ".join(map(str, ports)))')
    echo "$ports" > "$CLUSTER_DIR/ports"
  fi
  for port in $ports; do cluster_node_running "$port" || cluster_node_start "$port"; done
  local first=${ports%% *}
  if ! redis-cli -h 127.0.0.1 -p "$first" cluster info | grep -q 'cluster_slots_assigned:16384'; then
    local addresses=()
    for port in $ports; do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes > "$CLUSTER_DIR/create.log" 2>&1 ||
      { log "redis-cli --cluster create failed (see $CLUSTER_DIR/create.log)"; exit 1; }
  fi
  cluster_wait_ok
  log "Redis Cluster on 127.0.0.1: $ports"
}

# Waits until every slot is served and every running replica has synced with its master (a
# replica that never synced cannot take over: a kill right after a create would stop the cluster).
cluster_wait_ok() {
  local port ok
  for _ in $(seq 300); do
    ok=yes
    for port in $(cluster_ports); do
      cluster_node_running "$port" || continue
      redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=no
      if redis-cli -h 127.0.0.1 -p "$port" info replication 2>/dev/null | grep -q '^role:slave'; then
        redis-cli -h 127.0.0.1 -p "$port" info replication | grep -q '^master_link_status:up' || ok=no
      fi
    done
    [[ $ok == yes ]] && return
    sleep 0.1
  done
  log "Redis Cluster is not ok after 30 s"; exit 1
}

cluster_stop() {
  local port
  for port in $(cluster_ports); do
    redis-cli -h 127.0.0.1 -p "$port" shutdown 2>/dev/null || true
  done
  for port in $(cluster_ports); do
    for _ in $(seq 100); do cluster_node_running "$port" || break; sleep 0.1; done
  done
  log "Redis Cluster stopped"
}

# The port of the master serving the Nth third of the slots (1, 2 or 3), as a live node sees it.
cluster_master() {
  local n=$1 port
  for port in $(cluster_ports); do
    cluster_node_running "$port" || continue
    redis-cli -h 127.0.0.1 -p "$port" cluster nodes |
      awk '$3 ~ /master/ && $3 !~ /fail/ && NF >= 9 { split($9, r, "-"); split($2, a, "[:@]"); print r[1], a[2] }' |
      sort -n | sed -n "${n}p" | cut -d' ' -f2
    return
  done
}

cluster_kill_master() {
  local n=${1:?kill-master needs N (1..3)} port pid
  port=$(cluster_master "$n")
  [[ -n $port ]] || { log "no master $n"; exit 1; }
  pid=$(cat "$CLUSTER_DIR/$port/redis.pid")
  kill -KILL "$pid"
  while kill -0 "$pid" 2> /dev/null; do sleep 0.05; done
  rm -f "$CLUSTER_DIR/$port/redis.pid"
  log "Redis Cluster master $n on port $port killed"
  echo "$port"
}

cluster_status() {
  local port
  for port in $(cluster_ports); do
    if cluster_node_running "$port"; then
      echo "cluster node $port: $(redis-cli -h 127.0.0.1 -p "$port" role | head -1)"
    else
      echo "cluster node $port: stopped"
    fi
  done
}

write_env() {
  local pg_port redis_port cluster
  pg_port=$(saved TALLY_PG_PORT)
  redis_port=$(saved TALLY_REDIS_PORT)
  cluster=$(cluster_ports)
  {
    echo "TALLY_SERVICES=$ROOT/tools/services.sh"
    echo "TALLY_STATE_DIR=$STATE"
    if [[ -n $pg_port ]]; then
      echo "TALLY_PG_PORT=$pg_port"
      echo "DATABASE_URL=postgresql://tally@127.0.0.1:$pg_port/tally"
    fi
    if [[ -n $redis_port ]]; then
      echo "TALLY_REDIS_PORT=$redis_port"
      echo "REDIS_URL=redis://127.0.0.1:$redis_port"
    fi
    if replica_running; then
      echo "TALLY_PG_REPLICA_PORT=$(replica_port)"
      echo "DATABASE_READ_URL=postgresql://tally@127.0.0.1:$(replica_port)/tally"
    fi
    if [[ -n $cluster ]]; then
      echo "REDIS_CLUSTER_URL=redis+cluster://$(echo "$cluster" | sed 's/\([0-9]*\)/127.0.0.1:\1/g; s/ /,/g')"
    fi
  } > "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

which_services() { case "${1:-all}" in postgres) echo pg ;; redis) echo redis ;; all) echo "pg redis" ;; *) log "unknown service $1"; exit 2 ;; esac; }

mkdir -p "$STATE"
command=${1:-start}
target=${2:-all}
case "$command" in
  start)
    for s in $(which_services "$target"); do "${s}_start"; done
    write_env ;;
  stop)
    [[ $target != all ]] || replica_stop
    for s in $(which_services "$target"); do "${s}_stop"; done ;;
  kill)
    [[ $target == redis ]] || { log "only redis can be killed"; exit 2; }
    redis_kill ;;
  restart)
    for s in $(which_services "$target"); do "${s}_stop"; "${s}_start"; done
    write_env ;;
  replica)
    replica_command "$target" ;;
  cluster)
    case "$target" in
      start) cluster_start; write_env ;;
      stop) cluster_stop ;;
      kill-master) cluster_kill_master "${3:-}" ;;
      status) cluster_status ;;
      wait) cluster_wait_ok ;;
      *) log "cluster start|stop|kill-master N|status"; exit 2 ;;
    esac ;;
  status)
    replica_running && replica_status
    pg_running && echo "postgres: running on $(saved TALLY_PG_PORT)" || echo "postgres: stopped"
    redis_running && echo "redis: running on $(saved TALLY_REDIS_PORT)" || echo "redis: stopped"
    cluster_status ;;
  *)
    sed -n '2,26p' "$0"; exit 2 ;;
esac
