#!/usr/bin/env bash
# Events and leaderboards benchmarks (release build) against the local PostgreSQL and Redis:
#   1. ingest and persist: events/s acknowledged over bidi streams (batches of 100), then how
#      fast Tally's workers persist the backlog once the ingest has stopped (nothing else
#      running), beside Postgres' own insert of the same rows into the same table with the
#      same indexes (one INSERT ... SELECT, the ceiling) and the ratio, and Postgres' CPU per
#      persisted event, and Postgres doing the workers' whole write by itself (dedupe, events,
#      best scores: one statement) as a second reference; then a sustained ingest (Track,
#      100-event batches) at SUSTAIN_PERCENT (80) of the measured
#      persist rate for SUSTAIN_SECONDS (default 60): the queue's waiting jobs at start and
#      end, and Track's latency percentiles;
#   2. Track of 100-event batches at a fixed 1,000 batches/s: latency percentiles;
#   3. Rank with 5 neighbours on a board of 1,000,000 users: max requests/s, then latency at
#      a fixed 20,000 requests/s, answered from the board's mirror in Tally, and the same from
#      a second instance with mirroring off (every Rank reads Redis): the same run's reference;
#   4. Counts over a year of rollups (8 event types, every hour, a HyperLogLog of 2,000 users
#      per day): latency per hour, per day with active users, per month with active users.
# Everything (server, databases, load) shares this machine's cores, so the numbers are a
# floor for a real deployment. Bounded: every load phase has a fixed duration.
#
#   tools/bench/events.sh [SECONDS per phase, default 10]
#   PHASES=3 tools/bench/events.sh    only the listed phases (e.g. "3" or "1 2"; default all)
#   TALLY_BIN=path tools/bench/events.sh   another tally binary (A/B runs of two builds)
#   BIN_DIR=dir tools/bench/events.sh      tally and tally-load from dir, nothing built
#   SUSTAIN_PERCENT=50 tools/bench/events.sh   the sustained ingest at another share of the persist rate
#   EVENT_DEDUPE_WINDOW_S=0 PHASES=1 tools/bench/events.sh   ingest without Redis dedupe marks
#                                     (any of tally's settings passes through the environment)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_PHASE=${1:-10}
SUSTAIN_SECONDS=${SUSTAIN_SECONDS:-60}
SUSTAIN_PERCENT=${SUSTAIN_PERCENT:-80}
PHASES=${PHASES:-1 2 3 4}
runs() { [[ " $PHASES " == *" $1 "* ]]; }
# A set of services of its own (emptied Redis): keys and AOF rewrites left by tests would
# otherwise slow Redis down (seen here). The million-user board stays in Postgres between runs.
export TALLY_STATE_DIR=$PWD/.tally/bench
bash tools/services.sh start > /dev/null
set -a; source "$TALLY_STATE_DIR/services.env"; set +a
redis-cli -p "$TALLY_REDIS_PORT" flushall > /dev/null
# BIN_DIR= prebuilt binaries; TALLY_SCRATCH_PATH= another build folder (e.g. a release build
# made beside a debug one).
SCRATCH=(--scratch-path "${TALLY_SCRATCH_PATH:-.build}")
if [[ -z ${BIN_DIR:-} ]]; then
  swift build -c release "${SCRATCH[@]}" --product tally > /dev/null
  swift build -c release "${SCRATCH[@]}" --product tally-load > /dev/null
fi
BIN=${BIN_DIR:-$(swift build -c release "${SCRATCH[@]}" --show-bin-path)}
PSQL=(psql "$DATABASE_URL" -tAq)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LOG=$(mktemp)

EVENT_USER_RATE_PER_MIN=0 EVENT_PEER_RATE_PER_MIN=0 ADMIN_KEY=bench \
  "${TALLY_BIN:-$BIN/tally}" serve --host 127.0.0.1 --port "$PORT" --log-level info > "$LOG" 2>&1 &
SERVER=$!
REFERENCE=
SAMPLER=
trap 'kill -TERM $SERVER $REFERENCE $SAMPLER 2> /dev/null; wait $SERVER $REFERENCE 2> /dev/null || true' EXIT
listening() { for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && break; sleep 0.1; done; }
listening "$PORT"

# TARGET_PORT= another instance (phase 3's reference); default the one started above.
load() { "$BIN/tally-load" --target "127.0.0.1:${TARGET_PORT:-$PORT}" --max-error-rate 0.001 "$@"; }
# Jobs waiting (one list per priority) or running (see JobQueueScripts for the layout).
queued() { redis-cli -p "$TALLY_REDIS_PORT" eval "local n = redis.call('ZCARD', KEYS[1] .. ':active') for p = 0, 9 do n = n + redis.call('LLEN', KEYS[1] .. ':waiting:' .. p) end return n" 1 '{q:events}'; }
# Jobs waiting to be claimed (not running).
waiting() { redis-cli -p "$TALLY_REDIS_PORT" eval "local n = 0 for p = 0, 9 do n = n + redis.call('LLEN', KEYS[1] .. ':waiting:' .. p) end return n" 1 '{q:events}'; }
stored() { "${PSQL[@]}" -c "SELECT count(*) FROM events"; }
# pg_ticks: CPU ticks of the bench cluster's Postgres so far.
source tools/bench/lib/pg_ticks.sh

if runs 1; then
echo "== 1. ingest: EventService/Stream, 4 connections x 8 streams, batches of 100 events, ${SECONDS_PER_PHASE}s"
# From empty event tables: earlier runs' millions of rows would slow persisting run after run
# (the id index grows), so numbers would drift with the bench's own history.
"${PSQL[@]}" -c "TRUNCATE events, event_ids"
"${PSQL[@]}" -c "TRUNCATE event_counts" 2> /dev/null || true  # absent in builds before the rollups
redis-cli -p "$TALLY_REDIS_PORT" config resetstat > /dev/null
before=$(stored)
ticks_before=$(pg_ticks)
started=$(date +%s.%N)
load tally.v1.EventService/Stream --connections 4 --streams 8 --stream-messages 1000000 --batch-size 100 \
  --users 1000000 -z "${SECONDS_PER_PHASE}s" --format json > /tmp/tally-ingest.json
# The ingest has stopped: from here on the workers persist the backlog with nothing else running.
drain_started=$(date +%s.%N)
drain_from=$(stored)
drain_ticks=$(pg_ticks)
python3 - /tmp/tally-ingest.json <<'EOF_PY'
import json, sys
total = json.load(open(sys.argv[1]))["total"]
acks = total["messages_received_per_second"]
print(f"acknowledged: {acks * 100:,.0f} events/s ({acks:,.0f} batch acks/s over {total['messages_received']:,} batches)")
EOF_PY
# Redis' own time per script call (enqueue with dedupe marks, claims, completions): Redis'
# single thread, shared with its AOF fsync on every write pass, is what bounds the ack rate.
redis-cli -p "$TALLY_REDIS_PORT" info commandstats | tr -d '\r' | awk -F'[:,=]' \
  '/^cmdstat_(evalsha|smismember|sadd)/ { printf "  redis %s: %s calls, %s us/call\n", substr($1, 9), $3, $7 }'
while [[ $(queued) -gt 0 ]]; do sleep 0.2; done
finished=$(date +%s.%N)
after=$(stored)
finished_ticks=$(pg_ticks)
# The ceiling: the same rows inserted by Postgres itself into the same (emptied) table with the
# same indexes, one statement: no client, no protocol, no dedupe, no leaderboards.
"${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_rows; CREATE UNLOGGED TABLE bench_rows AS SELECT * FROM events; TRUNCATE events; CHECKPOINT"
ceiling_ticks=$(pg_ticks)
ceiling_started=$(date +%s.%N)
"${PSQL[@]}" -c "INSERT INTO events SELECT * FROM bench_rows"
ceiling_finished=$(date +%s.%N)
ceiling_after=$(pg_ticks)
# A second reference: Postgres doing the workers' whole write by itself in one statement:
# the ids' dedupe (event_ids), the same rows into events, and each user's best game_ended score
# upserted into a board (a scratch one, dropped after): everything the workers' transactions
# write but the rollups' few rows, without client, protocol, staging or Redis.
"${PSQL[@]}" -c "TRUNCATE events, event_ids; DELETE FROM leaderboard_scores WHERE board = 'tournament:bench-ceiling'; CHECKPOINT"
whole_ticks=$(pg_ticks)
whole_started=$(date +%s.%N)
"${PSQL[@]}" -c "
  WITH fresh AS (
    INSERT INTO event_ids (event_id, received_at) SELECT event_id, received_at FROM bench_rows ORDER BY event_id
    ON CONFLICT DO NOTHING RETURNING event_id
  ), stored AS (
    INSERT INTO events SELECT b.* FROM bench_rows b JOIN fresh USING (event_id) RETURNING type, user_id, score, client_time
  )
  INSERT INTO leaderboard_scores AS s (board, user_id, score, achieved_at)
  SELECT DISTINCT ON (user_id) 'tournament:bench-ceiling', user_id, score, client_time FROM stored
  WHERE type = 'game_ended' ORDER BY user_id, score DESC, client_time
  ON CONFLICT (board, user_id) DO UPDATE SET score = EXCLUDED.score, achieved_at = EXCLUDED.achieved_at
    WHERE EXCLUDED.score > s.score OR (EXCLUDED.score = s.score AND EXCLUDED.achieved_at < s.achieved_at)"
whole_finished=$(date +%s.%N)
whole_after=$(pg_ticks)
"${PSQL[@]}" -c "DELETE FROM leaderboard_scores WHERE board = 'tournament:bench-ceiling'"
"${PSQL[@]}" -c "DROP TABLE bench_rows"
PERSIST_RATE=$(python3 - <<EOF_PY
import sys
hz = $(getconf CLK_TCK)
total, run = $after - $before, $finished - $started
drained, drain = $after - $drain_from, $finished - $drain_started
ceiling = total / ($ceiling_finished - $ceiling_started)
say = lambda text: print(text, file=sys.stderr)
say(f"persisted: {total:,} events in {run:.1f} s from the start of the ingest = {total / run:,.0f} events/s (queue drained, all in Postgres)")
if drained < total / 10:
    # The workers (nearly) kept up with the ingest: its whole run is their rate.
    rate, cpu = total / run, ($finished_ticks - $ticks_before) * 1e6 / hz / max(1, total)
    say(f"persisted by Tally's workers: {rate:,.0f} events/s (they kept up with the ingest)")
else:
    rate, cpu = drained / drain, ($finished_ticks - $drain_ticks) * 1e6 / hz / max(1, drained)
    say(f"persisted by Tally's workers: {rate:,.0f} events/s ({drained:,} events of the backlog in {drain:.1f} s after the ingest stopped)")
ceiling_cpu = ($ceiling_after - $ceiling_ticks) * 1e6 / hz / max(1, total)
say(f"Postgres' own insert of the same {total:,} rows (one INSERT ... SELECT): {ceiling:,.0f} rows/s; Tally's workers at {rate / ceiling:.2f}x of it (bar >= 0.6)")
say(f"Postgres CPU: {cpu:.1f} us per persisted event (all its processes); {ceiling_cpu:.1f} us per row in its own insert")
whole = total / ($whole_finished - $whole_started)
whole_cpu = ($whole_after - $whole_ticks) * 1e6 / hz / max(1, total)
say(f"Postgres doing the workers' whole write itself (ids dedupe, events, best scores; one statement): {whole:,.0f} rows/s, "
    f"{whole_cpu:.1f} us CPU per row; Tally's workers at {rate / whole:.2f}x of it")
print(int(rate))
EOF_PY
)

target=$(( PERSIST_RATE * SUSTAIN_PERCENT / 100 / 100 ))
echo "-- sustained: Track (100-event batches) at $target batches/s = ${SUSTAIN_PERCENT}% of the persist rate, ${SUSTAIN_SECONDS}s"
samples=/tmp/tally-waiting.txt
: > "$samples"
waiting_start=$(waiting)
cpu_start=$(head -n 1 /proc/stat)
# Redis' latency monitor records its fsyncs (appendfsync always) slower than 20 ms: an
# acknowledgement waits for the fsync of its write, on the disk Postgres writes to as well.
redis-cli -p "$TALLY_REDIS_PORT" config set latency-monitor-threshold 20 > /dev/null
redis-cli -p "$TALLY_REDIS_PORT" latency reset > /dev/null
( while sleep 5; do waiting >> "$samples"; done ) &
SAMPLER=$!
load tally.v1.EventService/Track --rps "$target" --connections 4 --batch-size 100 --users 1000000 -z "${SUSTAIN_SECONDS}s" \
  --format json > /tmp/tally-sustained.json
waiting_end=$(waiting)
cpu_end=$(head -n 1 /proc/stat)
# The history alternates a second's timestamp and its slowest fsync (ms): the count and the worst.
read -r fsync_slow fsync_max < <(redis-cli -p "$TALLY_REDIS_PORT" latency history aof-fsync-always \
  | awk 'NR % 2 == 0 && $1 > max { max = $1 } END { print int(NR / 2), max + 0 }')
kill "$SAMPLER" 2> /dev/null; wait "$SAMPLER" 2> /dev/null || true
SAMPLER=
python3 - /tmp/tally-sustained.json "$waiting_start" "$waiting_end" "$samples" "$cpu_start" "$cpu_end" "$fsync_max" "$fsync_slow" <<'EOF_PY'
import json, sys
# The machine's CPU over the phase (/proc/stat: user nice system idle iowait irq softirq steal):
# busy near 100% says the cores, not the software, bound the sustained rate.
start, end = ([int(x) for x in line.split()[1:9]] for line in sys.argv[5:7])
delta = [b - a for a, b in zip(start, end)]
idle = delta[3] + delta[4]
total = json.load(open(sys.argv[1]))["total"]
samples = [int(x) for x in open(sys.argv[4]).read().split()] or [0]
l = total["latency_ms"]
print(f"  Track: {total['calls_per_second']:,.0f} batches/s = {total['calls_per_second'] * 100:,.0f} events/s; "
      f"p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms (bar < 20 ms), p99.9 {l['p99_9']:.2f} ms")
print(f"  queue waiting: {sys.argv[2]} jobs at start, {sys.argv[3]} at end (sampled every 5 s: max {max(samples)})")
print(f"  the machine's CPU over the phase: {100 * (sum(delta) - idle) / max(1, sum(delta)):.0f}% busy (every process, all cores)")
print(f"  Redis' AOF fsyncs over 20 ms: in {sys.argv[8]} of the phase's seconds, the slowest {sys.argv[7]} ms (latency monitor)")
EOF_PY
while [[ $(queued) -gt 0 ]]; do sleep 0.5; done

fi

if runs 2; then
echo "== 2. Track: 100-event batches at 1,000 batches/s, ${SECONDS_PER_PHASE}s"
load tally.v1.EventService/Track --rps 1000 --connections 4 --batch-size 100 --users 1000000 -z "${SECONDS_PER_PHASE}s" | tail -n 25
while [[ $(queued) -gt 0 ]]; do sleep 0.5; done

fi

if runs 3; then
echo "== 3. Rank with 5 neighbours on a board of 1,000,000 users"
# A best-score board: rows inserted straight into Postgres, as quiz boards (latest scores,
# with revisions) are written only by their quiz.
BOARD=tournament:bench-1m
if [[ $("${PSQL[@]}" -c "SELECT count(*) FROM leaderboard_scores WHERE board = '$BOARD'") -lt 1000000 ]]; then
  "${PSQL[@]}" -c "INSERT INTO leaderboard_scores (board, user_id, score, achieved_at)
    SELECT '$BOARD', 'user-' || g, (random() * 1000000)::bigint, now() - g * interval '1 ms'
    FROM generate_series(1, 1000000) g ON CONFLICT DO NOTHING"
fi
RANK='{"board_id":"'$BOARD'","user_id":"{{randomUser}}","neighbours":5}'
rebuild_started=$(date +%s.%N)
load tally.v1.LeaderboardService/Rank -d "$RANK" --users 1000000 -n 1 --timeout 120s > /dev/null
python3 -c "print(f'board loaded from Postgres into Redis in {$(date +%s.%N)-$rebuild_started:.1f} s')"
# That first Rank also asked this instance for the board's mirror: measure once it answers.
for _ in $(seq 600); do grep -q 'leaderboard mirrored' "$LOG" && break; sleep 0.1; done
sed -n 's/.*board=tournament:bench-1m ms=\([0-9]*\) users=\([0-9]*\).*leaderboard mirrored.*/board mirrored into Tally from Redis: \2 users in \1 ms/p' "$LOG" | tail -n 1
# Loading the board grew Redis' AOF enough to start a rewrite (a forked child busy for
# seconds on these two cores): let it finish, so it does not land in one of the runs below.
for _ in $(seq 600); do
  redis-cli -p "$TALLY_REDIS_PORT" info persistence | grep -q '^aof_rewrite_in_progress:1' || break
  sleep 0.1
done
# The same instance settings with mirroring off: every Rank reads the sorted set in Redis.
REFERENCE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LEADERBOARD_MIRROR_MAX_USERS=0 ADMIN_KEY=bench \
  "${TALLY_BIN:-$BIN/tally}" serve --host 127.0.0.1 --port "$REFERENCE_PORT" --no-migrate --log-level warning > /dev/null 2>&1 &
REFERENCE=$!
listening "$REFERENCE_PORT"
rank() {  # $1: label; runs the two loads against TARGET_PORT, keeps their JSON reports
  echo "-- $1: max throughput (4 connections x 32 streams)"
  load tally.v1.LeaderboardService/Rank -d "$RANK" --users 1000000 --connections 4 --streams 32 -z "${SECONDS_PER_PHASE}s" \
    --format json > "/tmp/tally-rank-$1-max.json"
  echo "-- $1: fixed 20,000 requests/s"
  load tally.v1.LeaderboardService/Rank -d "$RANK" --users 1000000 --connections 4 --rps 20000 -z "${SECONDS_PER_PHASE}s" \
    --format json > "/tmp/tally-rank-$1-fixed.json"
}
rank mirror
TARGET_PORT=$REFERENCE_PORT rank redis
kill -TERM "$REFERENCE"; wait "$REFERENCE" 2> /dev/null || true
REFERENCE=
python3 - <<'PY'
import json
def total(name): return json.load(open(f"/tmp/tally-rank-{name}.json"))["total"]
for name in ("mirror", "redis"):
    top, fixed = total(f"{name}-max"), total(f"{name}-fixed")
    l, f = top["latency_ms"], fixed["latency_ms"]
    print(f"Rank from {name:6}: max {top['calls_per_second']:>9,.0f}/s (p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms); "
          f"at {fixed['calls_per_second']:,.0f}/s: p50 {f['p50']:.3f} ms, p99 {f['p99']:.3f} ms, p99.9 {f['p99_9']:.3f} ms")
m, r = total("mirror-max"), total("redis-max")
print(f"mirror vs Redis: x{m['calls_per_second'] / r['calls_per_second']:.2f} max throughput")
PY
fi

if runs 4; then
echo "== 4. Counts over a year: 8 types x 8,760 hours of counts, 365 days of active users (2,000 each)"
"${PSQL[@]}" -c "TRUNCATE event_counts"
"${PSQL[@]}" -c "INSERT INTO event_counts (hour, type, shard, events)
  SELECT date_trunc('hour', now()) - h * interval '1 hour', t, 0, 1 + (random() * 1000)::int
  FROM generate_series(0, 8783) h, unnest(array['app_launched', 'game_started', 'game_ended', 'level_completed', 'purchase',
                                                 'custom.a', 'custom.b', 'custom.c']) t"
python3 - "$TALLY_REDIS_PORT" <<'PY'
import subprocess, sys, time
day = int(time.time()) // 86400
lines = []
for d in range(day - 366, day + 1):
    key = "{hll:%s}:d:%s" % (time.strftime("%Y-%m", time.gmtime(d * 86400)), time.strftime("%d", time.gmtime(d * 86400)))
    lines.append(f"PFADD {key} " + " ".join(f"user-{(d * 7 + i) % 50000}" for i in range(2000)))
subprocess.run(["redis-cli", "-p", sys.argv[1]], input="\n".join(lines) + "\n", text=True, check=True, stdout=subprocess.DEVNULL)
PY
TO=$(( $(date +%s) / 3600 * 3600000 + 3600000 ))
FROM=$(( TO - 365 * 86400000 ))
counts() {  # $1: label, $2: JSON fields beyond the range
  load tally.v1.EventService/Counts -H "x-admin-key: bench" -d '{"from_ms":'$FROM',"to_ms":'$TO','"$2"'}' \
    --connections 1 -n 200 --format json > "/tmp/tally-counts-$1.json"
  python3 - "$1" <<'PY'
import json, sys
total = json.load(open(f"/tmp/tally-counts-{sys.argv[1]}.json"))["total"]
l = total["latency_ms"]
print(f"Counts per {sys.argv[1]:20}: p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms ({total['calls']} calls, one at a time)")
PY
}
counts "hour" '"granularity":"COUNTS_GRANULARITY_HOUR"'
counts "day+active-users" '"granularity":"COUNTS_GRANULARITY_DAY","active_users":true'
counts "month+active-users" '"granularity":"COUNTS_GRANULARITY_MONTH","active_users":true'
fi
