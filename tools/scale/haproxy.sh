#!/usr/bin/env bash
# Three Tally instances behind a real load balancer, and the client-side alternative.
#
#   bash tools/scale/haproxy.sh           (after tools/services.sh start; TALLY_BIN picks the binary)
#
# HAProxy (Debian's package, installed here when missing) listens for gRPC on HTTP/2 cleartext
# and spreads calls round robin over the instances, speaking HTTP/2 to them too (`proto h2`),
# and checks each one on its operations port's /readyz (--metrics-port, HTTP/1.1: `check-proto h1`,
# or the check would speak the servers' h2): an instance that is
# ready or degraded (Redis down: it still serves) stays in, a draining or dead one is taken
# out. tools/scale/proxy_failover.py then
#   1. calls the three instances with grpcio's own round robin (`ipv4:a,b,c` target,
#      grpc.lb_policy_name=round_robin, no proxy) and prints how the calls spread;
#   2. streams events through HAProxy from several clients, SIGKILLs one instance mid-load,
#      retries every failed batch with the same event ids, and checks in Postgres that every
#      acknowledged event is stored exactly once; it prints the counts and exits non-zero when
#      a client saw a status that is not retryable or an acknowledged event is missing.
# Everything listens on 127.0.0.1 and stops when the script ends (about a minute).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
STATE=${TALLY_STATE_DIR:-$ROOT/.tally}
[[ -f $STATE/services.env ]] || { echo "haproxy.sh: start PostgreSQL and Redis first: bash tools/services.sh start" >&2; exit 2; }
set -a; source "$STATE/services.env"; set +a
TALLY_BIN=${TALLY_BIN:-$ROOT/.build/release/tally}
[[ -x $TALLY_BIN ]] || TALLY_BIN=$ROOT/.build/debug/tally
[[ -x $TALLY_BIN ]] || { echo "haproxy.sh: no tally binary (swift build -c release --product tally)" >&2; exit 2; }
PYTHON=${TALLY_PYTHON:-$ROOT/.venv/bin/python3}
"$PYTHON" -c 'import grpc, grpc_tools' 2> /dev/null ||
  { echo "haproxy.sh: grpcio missing: python3 -m venv .venv && .venv/bin/pip install -r Tests/python/requirements.txt" >&2; exit 2; }
PSQL=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -1)/psql

if ! command -v haproxy > /dev/null; then
  echo "haproxy.sh: installing Debian's haproxy" >&2
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y -q haproxy > /dev/null; else sudo apt-get install -y -q haproxy > /dev/null; fi
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

ADMIN_KEY=${ADMIN_KEY:-scale-admin-key}
INSTANCES=() INSTANCE_PIDS=() METRICS=() SERVERS=""
for i in 1 2 3; do
  port=$(free_port) metrics=$(free_port)
  # Short leases: queued events a killed instance held come back to the others within seconds.
  ADMIN_KEY=$ADMIN_KEY TALLY_INSTANCE_ID=scale-$i LOG_LEVEL=notice EVENT_USER_RATE_PER_MIN=0 EVENT_PEER_RATE_PER_MIN=0 \
    QUEUE_LEASE_MS=2000 "$TALLY_BIN" serve --host 127.0.0.1 --port "$port" --metrics-port "$metrics" > "$WORK/tally-$i.log" 2>&1 &
  PIDS+=($!) INSTANCE_PIDS+=($!) INSTANCES+=("127.0.0.1:$port") METRICS+=("$metrics")
  SERVERS+="  server tally$i 127.0.0.1:$port proto h2 check port $metrics check-proto h1"$'\n'
  echo "instance tally$i: gRPC 127.0.0.1:$port, /readyz on 127.0.0.1:$metrics, pid $!"
done
for i in 0 1 2; do
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:${METRICS[$i]}/readyz" > /dev/null && break
    kill -0 "${INSTANCE_PIDS[$i]}" 2> /dev/null || { cat "$WORK/tally-$((i + 1)).log" >&2; exit 1; }
    sleep 0.1
  done
done

PROXY=$(free_port) STATS=$(free_port)
cat > "$WORK/haproxy.cfg" <<CFG
global
  maxconn 4096

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  # A connection refused by a dead instance is tried again on another one (nothing was sent).
  retries 3
  option redispatch

frontend grpc
  bind 127.0.0.1:$PROXY proto h2
  default_backend tally

backend tally
  balance roundrobin
  option httpchk GET /readyz
  http-check expect rstring "\"status\":\"(ready|degraded)\""
  default-server inter 500ms fall 2 rise 2
$SERVERS
frontend stats
  bind 127.0.0.1:$STATS
  stats enable
  stats uri /stats
CFG
haproxy -db -f "$WORK/haproxy.cfg" > "$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
echo "haproxy $(haproxy -v | head -1 | awk '{print $3}'): gRPC on 127.0.0.1:$PROXY, stats on http://127.0.0.1:$STATS/stats"
for _ in $(seq 100); do
  [[ $(curl -s "http://127.0.0.1:$STATS/stats;csv" | grep -c '^tally,tally[0-9],.*,UP,') -eq 3 ]] && break
  sleep 0.1
done

ADMIN_KEY=$ADMIN_KEY "$PYTHON" tools/scale/proxy_failover.py --proxy "127.0.0.1:$PROXY" --stats "http://127.0.0.1:$STATS/stats;csv" \
  --instances "$(IFS=,; echo "${INSTANCES[*]}")" --pids "$(IFS=,; echo "${INSTANCE_PIDS[*]}")" \
  --psql "$PSQL" --database-url "$DATABASE_URL" "$@" || { status=$?; tail -20 "$WORK/haproxy.log" >&2; exit $status; }
