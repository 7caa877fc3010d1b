#!/usr/bin/env bash
# Top-ups benchmark (release build), one instance on the local PostgreSQL and Redis, sandbox
# provider:
#   0. the reference: pgbench running Topup's own one-row insert-and-commit (the top-up and its
#      idempotency key in one statement, synchronous commit) on the same Postgres, closed loop
#      (transactions/s) and at a fixed 2,000/s (latency percentiles);
#   1. Topup at a fixed 2,000 calls/s, open loop: latency percentiles;
#   2. Topup accepted per second, closed loop (256 calls in flight, 10% resending an earlier
#      key), beside that reference.
# Everything (server, provider workers, databases, load) shares this machine's cores; bounded:
# every phase has a fixed duration.
#
#   tools/bench/topups.sh [SECONDS per phase, default 10]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_PHASE=${1:-10}
export TALLY_STATE_DIR=$PWD/.tally/bench
bash tools/services.sh start > /dev/null
set -a; source "$TALLY_STATE_DIR/services.env"; set +a
redis-cli -p "$TALLY_REDIS_PORT" flushall > /dev/null
swift build -c release --product tally > /dev/null
swift build -c release --product tally-load > /dev/null
BIN=$(swift build -c release --show-bin-path)
PSQL=(psql "$DATABASE_URL" -tAq)
PGBENCH=$(ls -d /usr/lib/postgresql/*/bin/pgbench | sort -V | tail -1)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$(mktemp)

"$BIN/tally" migrate > /dev/null
"${PSQL[@]}" -c "TRUNCATE topups, topup_idempotency_keys, topup_attempts"
KEY=$("$BIN/tally" keys create --customer bench --rate-per-min 1000000 2> /dev/null)

echo "== 0. reference: pgbench, Topup's insert-and-commit (16 clients, ${SECONDS_PER_PHASE}s)"
SCRIPT=$(mktemp)
cat > "$SCRIPT" <<'SQL'
WITH key AS (
  INSERT INTO topup_idempotency_keys (customer_id, idempotency_key, topup_id)
  VALUES ('pgbench', gen_random_uuid()::text, 'tp_' || replace(gen_random_uuid()::text, '-', ''))
  ON CONFLICT DO NOTHING RETURNING topup_id
)
INSERT INTO topups (id, customer_id, idempotency_key, phone_number, amount_minor_units, currency, carrier)
SELECT topup_id, 'pgbench', 'k', '+15551234567', 1000, 'USD', '' FROM key;
SQL
PGBENCH_TPS=$("$PGBENCH" -n -M prepared -c 16 -j 2 -T "$SECONDS_PER_PHASE" -f "$SCRIPT" "$DATABASE_URL" 2> /dev/null \
  | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
echo "pgbench: ${PGBENCH_TPS} transactions/s"
# The same insert at phase 1's fixed 2,000/s: what Postgres' commits alone allow for the p99
# there (pgbench times each transaction from its scheduled start, as tally-load does).
PGLOG=$(mktemp -d)
(cd "$PGLOG" && "$PGBENCH" -n -M prepared -c 16 -j 2 -R 2000 -T "$SECONDS_PER_PHASE" -l -f "$SCRIPT" "$DATABASE_URL" > /dev/null 2>&1)
cat "$PGLOG"/pgbench_log.* | python3 -c '
import sys
latencies = sorted(int(line.split()[2]) / 1000 for line in sys.stdin if line.strip())
at = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))]
print(f"pgbench at a fixed 2,000/s: {len(latencies):,} transactions, p50 {at(0.5):.2f} ms, p99 {at(0.99):.2f} ms, p99.9 {at(0.999):.2f} ms")'
rm -rf "$PGLOG"

ADMIN_KEY=bench TOPUP_QUEUE_CONCURRENCY=${TOPUP_QUEUE_CONCURRENCY:-20} \
  "$BIN/tally" serve --host 127.0.0.1 --port "$PORT" --log-level warning > "$LOG" 2>&1 &
SERVER=$!
# At the end the server stops and the top-ups it accepted go: left in the bench's database, their
# jobs lost with the next run's FLUSHALL, every later benchmark's server would sweep and process
# them in the background (seen: a Rank benchmark 12% slower for it).
trap 'kill -TERM $SERVER 2> /dev/null; wait $SERVER 2> /dev/null || true; "${PSQL[@]}" -c "TRUNCATE topups, topup_idempotency_keys, topup_attempts"' EXIT
for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null && break; sleep 0.1; done
load() { "$BIN/tally-load" --target "127.0.0.1:$PORT" -H "x-api-key:$KEY" --max-error-rate 0.001 tally.v1.TopupService/Topup "$@"; }

echo "== 1. Topup at a fixed 2,000 calls/s, open loop (first, on an empty queue), ${SECONDS_PER_PHASE}s"
load --connections 4 --rps 2000 --warmup 2s -z "${SECONDS_PER_PHASE}s" | tail -n 25

echo "== 2. Topup accepted, closed loop: 4 connections x ${STREAMS:=64} calls, 10% of calls resending an earlier key, ${SECONDS_PER_PHASE}s"
load --connections 4 --streams "$STREAMS" --retry-share 0.1 --warmup 2s -z "${SECONDS_PER_PHASE}s" --format json > /tmp/tally-topups-max.json
python3 - /tmp/tally-topups-max.json "$PGBENCH_TPS" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
total = report["total"]
rate = (total["calls"] - total["errors"]) / report["elapsed_seconds"]
reference = float(sys.argv[2])
rpc = report["rpcs"][0]
print(f"Topup: {rate:,.0f} accepted/s (pgbench, same insert: {reference:,.0f}/s; Tally/pgbench = {rate / reference:.2f}); "
      f"{rpc.get('resent', 0):,} resends, {rpc.get('counted_field_set', 0):,} answered replayed")
PY

echo "== provider queue afterwards (processed while the load ran; the rest is dropped)"
"${PSQL[@]}" -c "SELECT state, count(*) FROM topups WHERE customer_id = 'bench' GROUP BY 1 ORDER BY 1"
