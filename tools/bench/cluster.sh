#!/usr/bin/env bash
# Ingest on a Redis Cluster against one Redis, in the same run (release build): events/s
# acknowledged by EventService/Track (32 calls in flight over 4 connections, 100 events
# each) on one Tally, on
#   1. the single Redis (the reference; REDIS_MIN_REPLICAS_ACK=0, as it has no replica),
#   2. the 3-master, 3-replica cluster without replica acknowledgement (REDIS_MIN_REPLICAS_ACK=0),
#   3. the same cluster with it (the default there: each enqueue waits for WAIT 1),
# then the cluster's ratios to the single Redis (bar: >= 0.5 with the acknowledgement).
# Every node keeps an AOF fsynced on each write (appendfsync always), like the single Redis.
# Everything (Tally, 7 Redis servers, PostgreSQL, the load) shares this machine's cores.
#
#   tools/bench/cluster.sh [SECONDS per run, default 10]
#   CONFIGURATION=debug tools/bench/cluster.sh   the debug build (ratios only: no release numbers)
#   TALLY_BIN=path tools/bench/cluster.sh        another tally binary (A/B runs of two builds)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN=${1:-10}
export TALLY_STATE_DIR=$PWD/.tally/bench-cluster
bash tools/services.sh start > /dev/null 2>&1
bash tools/services.sh cluster start > /dev/null 2>&1
set -a; source "$TALLY_STATE_DIR/services.env"; set +a
CONFIGURATION=${CONFIGURATION:-release}
swift build -c "$CONFIGURATION" --product tally > /dev/null
swift build -c "$CONFIGURATION" --product tally-load > /dev/null
BIN=$(swift build -c "$CONFIGURATION" --show-bin-path)
PSQL=(psql "$DATABASE_URL" -tAq)
CLUSTER_PORTS=$(cat "$TALLY_STATE_DIR/cluster/ports")
SERVER=
trap '[[ -n $SERVER ]] && kill -TERM $SERVER 2> /dev/null; wait $SERVER 2> /dev/null; bash tools/services.sh cluster stop > /dev/null 2>&1; bash tools/services.sh stop > /dev/null 2>&1' EXIT
listening() { for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && break; sleep 0.1; done; }
flush() {
  redis-cli -p "$TALLY_REDIS_PORT" flushall > /dev/null
  for port in $CLUSTER_PORTS; do
    [[ $(redis-cli -p "$port" role | head -1) == master ]] && redis-cli -p "$port" flushall > /dev/null
  done
  "${PSQL[@]}" -c "TRUNCATE events, event_ids" 2> /dev/null || true
}

# run LABEL REDIS_URL MIN_REPLICAS_ACK: one Tally, one load, its acknowledged events/s.
run() {
  local label=$1 url=$2 replicas=$3 port
  flush
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  REDIS_URL=$url REDIS_MIN_REPLICAS_ACK=$replicas EVENT_USER_RATE_PER_MIN=0 EVENT_PEER_RATE_PER_MIN=0 ADMIN_KEY=bench \
    QUEUE_CONCURRENCY=${QUEUE_CONCURRENCY:-16} "${TALLY_BIN:-$BIN/tally}" serve --host 127.0.0.1 --port "$port" --log-level warning > "/tmp/tally-cluster-$label.log" 2>&1 &
  SERVER=$!
  listening "$port"
  "$BIN/tally-load" --target "127.0.0.1:$port" --max-error-rate 0.001 tally.v1.EventService/Track --connections 4 --streams 8 \
    --batch-size 100 --users 1000000 -z "${SECONDS_PER_RUN}s" --format json > "/tmp/tally-cluster-$label.json"
  kill -TERM "$SERVER"; wait "$SERVER" 2> /dev/null || true
  SERVER=
  python3 - "$label" <<'PY'
import json, sys
label = sys.argv[1]
total = json.load(open(f"/tmp/tally-cluster-{label}.json"))["total"]
print(f"{label:>22}: {total['calls_per_second'] * 100:>9,.0f} events/s acknowledged "
      f"({total['calls']:,} Track calls of 100 events, p50 {total['latency_ms']['p50']:.1f} ms, p99 {total['latency_ms']['p99']:.1f} ms)")
PY
}

echo "== ingest acknowledged: EventService/Track, 4 connections x 8 calls in flight, 100 events each, ${SECONDS_PER_RUN}s each"
run single-redis "$REDIS_URL" 0
run cluster-no-replica-ack "$REDIS_CLUSTER_URL" 0
run cluster-wait-1-replica "$REDIS_CLUSTER_URL" 1
python3 - <<'PY'
import json
def rate(label): return json.load(open(f"/tmp/tally-cluster-{label}.json"))["total"]["calls_per_second"]
single = rate("single-redis")
for label in ("cluster-no-replica-ack", "cluster-wait-1-replica"):
    print(f"{label} / single-redis: x{rate(label) / single:.2f}")
ratio = rate("cluster-wait-1-replica") / single
print(f"bar (cluster with WAIT >= 0.5x single Redis): {'met' if ratio >= 0.5 else 'NOT met'} (x{ratio:.2f})")
PY
