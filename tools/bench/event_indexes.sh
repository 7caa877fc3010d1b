#!/usr/bin/env bash
# What each index of the events tables costs an insert, one by one, and the plans of the
# queries that read them (issue 20: "the cost of each index and of the event_ids dedupe table
# measured one by one"). Postgres only, on the benchmarks' own services set:
#   1. the same ROWS synthetic events (uuid ids, five types, a million users, received_at in
#      arrival order, as tally-load sends them) inserted by one INSERT ... SELECT into a
#      partition shaped like `events` (LIKE public.events) with no index, with each index of
#      migrations 0001/0004 alone, and with all three; into a table shaped like `event_ids`
#      with its primary key alone, plus a B-tree on received_at (before migration 0011), plus
#      the BRIN index 0011 made of it. Per variant: rows/s and Postgres CPU per row (all its
#      processes, from /proc), best of RUNS, and the cost each index adds over the bare table;
#   2. the plans of the statements that read those indexes: Recent (newest first, by user, by
#      type) and retention's delete of old event_ids, on the loaded tables.
#
#   tools/bench/event_indexes.sh            ROWS=500000 RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${ROWS:-500000}
RUNS=${RUNS:-3}
export TALLY_STATE_DIR=$PWD/.tally/bench
bash tools/services.sh start > /dev/null
set -a; source "$TALLY_STATE_DIR/services.env"; set +a
BIN=${BIN_DIR:-}
if [[ -z $BIN ]]; then
  swift build -c release --product tally > /dev/null
  BIN=$(swift build -c release --show-bin-path)
fi
"$BIN/tally" migrate > /dev/null  # the tables' shape comes from the migrations themselves
PSQL=(psql "$DATABASE_URL" -tAq -v ON_ERROR_STOP=1)
source tools/bench/lib/pg_ticks.sh
HZ=$(getconf CLK_TCK)

echo "== rows: $ROWS synthetic events"
"${PSQL[@]}" <<SQL
DROP SCHEMA IF EXISTS bench_indexes CASCADE;
CREATE SCHEMA bench_indexes;
CREATE UNLOGGED TABLE bench_indexes.rows AS
  SELECT gen_random_uuid()::text AS event_id,
         (ARRAY['app_launched', 'game_started', 'game_ended', 'game_ended', 'level_completed'])[1 + g % 5] AS type,
         'user-' || (hashint4(g) & 1048575) AS user_id,
         now() - interval '1 hour' + g * interval '5 us' AS client_time,
         now() - interval '1 hour' + g * interval '5 us' AS received_at,
         CASE WHEN g % 5 IN (2, 3) THEN (hashint4(g * 7) & 1048575)::bigint END AS score,
         'classic'::text AS game_mode, NULL::text AS tournament_id, 60000::bigint AS duration_ms,
         (g % 50)::int AS level, '{"platform": "ios", "version": "1.2.3"}'::jsonb AS attributes,
         NULL::timestamptz AS processed_at, NULL::text AS processing_error
  FROM generate_series(1, $ROWS) g;
SQL

# $1 label, $2 the table's DDL (schema bench_indexes, table t), $3 the insert: RUNS runs, each a
# line "label<TAB>start<TAB>end<TAB>ticks before<TAB>ticks after" in $RESULTS (the summary keeps
# each label's best).
measure() {
  for _ in $(seq "$RUNS"); do
    "${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_indexes.t CASCADE" -c "$2" -c "CHECKPOINT"
    local ticks started
    ticks=$(pg_ticks); started=$(date +%s.%N)
    "${PSQL[@]}" -c "$3"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$started" "$(date +%s.%N)" "$ticks" "$(pg_ticks)" >> "$RESULTS"
  done
}
RESULTS=$(mktemp)
EVENTS="CREATE TABLE bench_indexes.t (LIKE public.events INCLUDING DEFAULTS) PARTITION BY RANGE (received_at);
  CREATE TABLE bench_indexes.t_p PARTITION OF bench_indexes.t FOR VALUES FROM (MINVALUE) TO (MAXVALUE);"
INSERT_EVENTS="INSERT INTO bench_indexes.t SELECT * FROM bench_indexes.rows"
IDS="CREATE TABLE bench_indexes.t (LIKE public.event_ids INCLUDING DEFAULTS, PRIMARY KEY (event_id));"
INSERT_IDS="INSERT INTO bench_indexes.t (event_id, received_at) SELECT event_id, received_at FROM bench_indexes.rows
  ORDER BY event_id ON CONFLICT DO NOTHING"

echo "== 1. inserts, best of $RUNS (one INSERT ... SELECT each, synchronous commit): events in one partition, then event_ids"
measure "events: no index" "$EVENTS" "$INSERT_EVENTS"
measure "events: + (received_at) [Recent]" "$EVENTS CREATE INDEX ON bench_indexes.t (received_at);" "$INSERT_EVENTS"
measure "events: + (user_id, received_at) [Recent by user]" "$EVENTS CREATE INDEX ON bench_indexes.t (user_id, received_at);" "$INSERT_EVENTS"
measure "events: + (type, received_at) [Recent by type]" "$EVENTS CREATE INDEX ON bench_indexes.t (type, received_at);" "$INSERT_EVENTS"
measure "events: all three (as migrated)" "$EVENTS CREATE INDEX ON bench_indexes.t (received_at);
  CREATE INDEX ON bench_indexes.t (user_id, received_at); CREATE INDEX ON bench_indexes.t (type, received_at);" "$INSERT_EVENTS"
measure "event_ids: primary key only" "$IDS" "$INSERT_IDS"
measure "event_ids: + B-tree (received_at) [before 0011]" "$IDS CREATE INDEX ON bench_indexes.t (received_at);" "$INSERT_IDS"
measure "event_ids: + BRIN (received_at) [as migrated]" "$IDS CREATE INDEX ON bench_indexes.t USING brin (received_at);" "$INSERT_IDS"
python3 - "$RESULTS" "$ROWS" "$HZ" <<'PY'
import sys
count, hz = int(sys.argv[2]), int(sys.argv[3])
rows = {}  # each label's best run (highest rate), in the order measured
for line in open(sys.argv[1]):
    label, started, finished, ticks, after = line.rstrip("\n").split("\t")
    rate, cpu = count / (float(finished) - float(started)), (int(after) - int(ticks)) * 1e6 / hz / count
    if label not in rows or rate > rows[label][0]:
        rows[label] = (rate, cpu)
for label, (rate, cpu) in rows.items():
    print(f"  {label:50} {rate:>10,.0f} rows/s  {cpu:5.1f} us CPU per row")
def added(base, label):
    return rows[label][1] - rows[base][1]
print("-- CPU each index adds per row, over its bare table")
for label in rows:
    if label.startswith("events: +") or label.startswith("events: all"):
        print(f"  {label:50} {added('events: no index', label):+5.1f} us")
    elif label.startswith("event_ids: +"):
        print(f"  {label:50} {added('event_ids: primary key only', label):+5.1f} us")
events, ids = rows["events: all three (as migrated)"][1], rows["event_ids: + BRIN (received_at) [as migrated]"][1]
print(f"  the dedupe table as migrated costs {ids:.1f} us per row beside {events:.1f} us for events with its indexes ({ids / events:.2f}x)")
PY
rm -f "$RESULTS"

echo "== 2. plans on the loaded tables ($ROWS rows, all indexes)"
"${PSQL[@]}" -c "DROP TABLE IF EXISTS bench_indexes.t CASCADE" -c "$EVENTS CREATE INDEX ON bench_indexes.t (received_at);
  CREATE INDEX ON bench_indexes.t (user_id, received_at); CREATE INDEX ON bench_indexes.t (type, received_at);" \
  -c "$INSERT_EVENTS" -c "ANALYZE bench_indexes.t"
"${PSQL[@]}" -c "CREATE TABLE bench_indexes.ids (LIKE public.event_ids INCLUDING DEFAULTS, PRIMARY KEY (event_id));
  CREATE INDEX ON bench_indexes.ids USING brin (received_at);
  INSERT INTO bench_indexes.ids SELECT event_id, received_at FROM bench_indexes.rows"
# A BRIN range is summarized by (auto)vacuum; until then a scan reads it whole. Retention
# deletes months-old ids, long summarized by autovacuum by then: so summarize before the plan.
"${PSQL[@]}" -c "VACUUM ANALYZE bench_indexes.ids"
USER_ID=$("${PSQL[@]}" -c "SELECT user_id FROM bench_indexes.rows LIMIT 1")
# Recent's statement (Sources/Domain/Events/RecentEvents.swift), on the scratch table.
RECENT="SELECT event_id, type, user_id FROM bench_indexes.t WHERE (\$2 = '' OR user_id = \$2) AND (\$3 = '' OR type = \$3)
  ORDER BY received_at DESC LIMIT \$1"
# The pool sends every statement unnamed (PQsendQueryParams), so Postgres plans each execution
# with its values: a custom plan. (A generic plan of this text could not use the user index.)
plan() {  # $1 label, $2 plan_cache_mode, $3 EXECUTE arguments
  echo "-- $1"
  "${PSQL[@]}" -c "SET plan_cache_mode = $2" -c "PREPARE recent(int, text, text) AS $RECENT" \
    -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) EXECUTE recent($3)" | sed 's/^/   /'
}
plan "Recent, newest 50" force_custom_plan "50, '', ''"
plan "Recent, a user's newest 50" force_custom_plan "50, '$USER_ID', ''"
plan "Recent, a type's newest 50" force_custom_plan "50, '', 'level_completed'"
echo "-- retention: event_ids older than the oldest kept month (here: the oldest tenth of the rows)"
CUT=$("${PSQL[@]}" -c "SELECT received_at FROM bench_indexes.rows ORDER BY received_at OFFSET $((ROWS / 10)) LIMIT 1")
"${PSQL[@]}" -c "BEGIN" -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) DELETE FROM bench_indexes.ids WHERE received_at < '$CUT'" \
  -c "ROLLBACK" | sed 's/^/   /'
echo "   (events' old months are dropped whole: DROP TABLE of the partition, no index read)"
"${PSQL[@]}" -c "DROP SCHEMA bench_indexes CASCADE"
