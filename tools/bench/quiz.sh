#!/usr/bin/env bash
# Quiz benchmark (release build), one instance on the local PostgreSQL and Redis:
#   1. SubmitAnswers of 1,000 answers (100 users x 10 new questions) and of 10,000 answers
#      (1,000 users x 10 new questions), one batch in flight: latency percentiles. Each batch
#      answers new questions of one quiz for the same users, as rounds of a quiz do, so every
#      user's score and board entry changes with every batch;
#   2. the reference, in the same run: pgbench running the same save by itself on the same
#      Postgres (a) the bare upsert of the same rows from generate_series, (b) Tally's three
#      statements with the same shapes, in one transaction, one client;
#   3. Leaderboard (limit 10) on a quiz of 100,000 users at a fixed 5,000 requests/s.
# Everything (server, databases, load) shares this machine's cores. Bounded: every phase has
# a fixed duration or count.
#
#   tools/bench/quiz.sh [SECONDS per phase, default 10]
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
WORK=$(mktemp -d)

"$BIN/tally" migrate > /dev/null
cleanup() {
  kill -TERM "${SERVER:-}" 2> /dev/null; wait "${SERVER:-}" 2> /dev/null || true
  # The bench's quizzes would otherwise pile up in the bench database run after run.
  "${PSQL[@]}" -c "DELETE FROM quiz_answers WHERE quiz_id LIKE 'bench-%'; DELETE FROM quiz_scores WHERE quiz_id LIKE 'bench-%';
                   DELETE FROM leaderboard_scores WHERE board LIKE 'quiz:bench-%'" > /dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ADMIN_KEY=bench "$BIN/tally" serve --host 127.0.0.1 --port "$PORT" --log-level warning > "$LOG" 2>&1 &
SERVER=$!
for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null && break; sleep 0.1; done
load() { "$BIN/tally-load" --target "127.0.0.1:$PORT" --max-error-rate 0 "$@"; }
# p50 and p99 of a tally-load JSON report, ms.
percentiles() { python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["rpcs"][0]["latency_ms"]; print("%.2f %.2f %.2f" % (l["p50"], l["p99"], l["mean"]))' "$1"; }
# p50 and p99 of pgbench's per-transaction log (4th column: latency in microseconds), ms.
pgbench_percentiles() {
  python3 -c '
import sys
values = sorted(int(line.split()[2]) / 1000 for path in sys.argv[1:] for line in open(path))
pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]
print(f"{pick(0.5):.2f} {pick(0.99):.2f} {sum(values) / len(values):.2f}")' "$@"
}

for shape in "100 10" "1000 10"; do
  read -r USERS QUESTIONS <<< "$shape"
  ANSWERS=$((USERS * QUESTIONS))
  echo "== ${ANSWERS} answers per batch (${USERS} users x ${QUESTIONS} new questions), one batch in flight, ${SECONDS_PER_PHASE}s each"
  TEMPLATE="{\"quiz_id\": \"bench-{{runId}}\", \"answers\": [\"{{repeat}}\", {\"user_id\": \"user-{{itemDiv $QUESTIONS}}\",
    \"question_id\": \"q-{{seq}}-{{itemMod $QUESTIONS}}\", \"answer\": \"{{answer}}\", \"correct\": {{randomBool}},
    \"points\": {{randomInt 0 100}}, \"response_time_ms\": {{randomInt 500 20000}}, \"answered_at_ms\": {{now}}}]}"
  load tally.v1.QuizService/SubmitAnswers --connections 1 --streams 1 --batch-size "$ANSWERS" -d "$TEMPLATE" \
    --warmup 2s -z "${SECONDS_PER_PHASE}s" --format json > "$WORK/tally.json"
  read -r T50 T99 TMEAN <<< "$(percentiles "$WORK/tally.json")"

  # (a) the bare upsert of the same rows, new questions each transaction.
  cat > "$WORK/upsert.sql" <<SQL
\set round random(1, 2000000000)
INSERT INTO quiz_answers AS q (quiz_id, user_id, question_id, answer, correct, points, response_time_ms, answered_at)
SELECT 'bench-pg-' || :client_id, 'user-' || (i / $QUESTIONS), 'q-' || :round || '-' || (i % $QUESTIONS), 'A', i % 2 = 0, i % 101, 500 + i % 19500, now()
FROM generate_series(0, $ANSWERS - 1) AS i
ON CONFLICT (quiz_id, user_id, question_id) DO UPDATE SET answer = EXCLUDED.answer, correct = EXCLUDED.correct, points = EXCLUDED.points,
  response_time_ms = EXCLUDED.response_time_ms, answered_at = EXCLUDED.answered_at;
SQL
  (cd "$WORK" && rm -f pgbench_log.* && "$PGBENCH" -n -c 1 -T "$SECONDS_PER_PHASE" -l -f upsert.sql "$DATABASE_URL" > /dev/null 2>&1)
  read -r A50 A99 AMEAN <<< "$(pgbench_percentiles "$WORK"/pgbench_log.*)"

  # (b) Tally's three statements (QuizStore.save) with the same shapes, one transaction, one
  # client; then the pending merge is dropped, as Tally's writer does once Redis has the board.
  USER_LIST="ARRAY(SELECT 'user-' || u FROM generate_series(0, $USERS - 1) u)"
  cat > "$WORK/full.sql" <<SQL
\set round random(1, 2000000000)
BEGIN;
INSERT INTO quiz_scores (quiz_id, user_id, points, correct, total_time_ms, answers)
SELECT 'bench-pg-full', u, 0, 0, 0, 0 FROM unnest($USER_LIST) AS u ON CONFLICT (quiz_id, user_id) DO NOTHING;
SELECT user_id FROM quiz_scores WHERE quiz_id = 'bench-pg-full' AND user_id = ANY($USER_LIST) ORDER BY user_id FOR UPDATE;
WITH input AS (
  SELECT 'user-' || (i / $QUESTIONS) AS user_id, 'q-' || :round || '-' || (i % $QUESTIONS) AS question_id, 'A' AS answer,
         i % 2 = 0 AS correct, i % 101 AS points, 500 + i % 19500 AS response_time_ms
  FROM generate_series(0, $ANSWERS - 1) AS i
),
replaced AS (
  SELECT i.user_id, i.question_id, r.correct, r.points, r.response_time_ms
  FROM input i CROSS JOIN LATERAL (
    SELECT correct, points, response_time_ms FROM quiz_answers q
    WHERE q.quiz_id = 'bench-pg-full' AND q.user_id = i.user_id AND q.question_id = i.question_id LIMIT 1
  ) r
),
saved AS (
  INSERT INTO quiz_answers AS q (quiz_id, user_id, question_id, answer, correct, points, response_time_ms, answered_at)
  SELECT 'bench-pg-full', user_id, question_id, answer, correct, points, response_time_ms, now() FROM input
  ON CONFLICT (quiz_id, user_id, question_id) DO UPDATE SET answer = EXCLUDED.answer, correct = EXCLUDED.correct,
    points = EXCLUDED.points, response_time_ms = EXCLUDED.response_time_ms, answered_at = EXCLUDED.answered_at
  RETURNING user_id, question_id, correct, points, response_time_ms
),
delta AS (
  SELECT s.user_id, sum(s.points - coalesce(r.points, 0))::bigint AS points, sum(s.correct::int - coalesce(r.correct::int, 0))::int AS correct,
         sum(s.response_time_ms - coalesce(r.response_time_ms, 0))::bigint AS time_ms, (count(*) - count(r.user_id))::int AS added
  FROM saved s LEFT JOIN replaced r USING (user_id, question_id) GROUP BY s.user_id
),
changed AS (
  UPDATE quiz_scores t SET points = t.points + d.points, correct = t.correct + d.correct, total_time_ms = t.total_time_ms + d.time_ms,
    answers = t.answers + d.added, updated_at = now()
  FROM delta d WHERE t.quiz_id = 'bench-pg-full' AND t.user_id = d.user_id AND (d.points, d.correct, d.time_ms, d.added) <> (0, 0, 0, 0)
  RETURNING t.user_id, t.points, t.total_time_ms
),
board AS (
  INSERT INTO leaderboard_scores AS b (board, user_id, score, achieved_at, revision)
  SELECT 'quiz:bench-pg-full', user_id, points, timestamptz 'epoch' + total_time_ms * interval '1 millisecond', nextval('leaderboard_revisions')
  FROM changed
  ON CONFLICT (board, user_id) DO UPDATE SET score = EXCLUDED.score, achieved_at = EXCLUDED.achieved_at, revision = EXCLUDED.revision
  RETURNING user_id
),
pending AS (
  INSERT INTO leaderboard_pending_merges (boards, user_ids)
  SELECT array_agg('quiz:bench-pg-full'::text), array_agg(user_id) FROM board HAVING count(*) > 0 RETURNING id
)
SELECT (SELECT id FROM pending), count(*) FROM board;
COMMIT;
DELETE FROM leaderboard_pending_merges WHERE boards[1] = 'quiz:bench-pg-full';
SQL
  (cd "$WORK" && rm -f pgbench_log.* && "$PGBENCH" -n -c 1 -T "$SECONDS_PER_PHASE" -l -f full.sql "$DATABASE_URL" > "$WORK/full.out" 2>&1) \
    || { cat "$WORK/full.out"; exit 1; }
  read -r F50 F99 FMEAN <<< "$(pgbench_percentiles "$WORK"/pgbench_log.*)"
  python3 - "$ANSWERS" "$T50" "$T99" "$TMEAN" "$A50" "$A99" "$AMEAN" "$F50" "$F99" "$FMEAN" <<'PY'
import sys
n, t50, t99, tmean, a50, a99, amean, f50, f99, fmean = sys.argv[1], *map(float, sys.argv[2:])
print(f"Tally SubmitAnswers ({n}):         p50 {t50:7.2f} ms  p99 {t99:7.2f} ms  mean {tmean:7.2f} ms")
print(f"pgbench (a) bare answers upsert:  p50 {a50:7.2f} ms  p99 {a99:7.2f} ms  mean {amean:7.2f} ms   Tally/(a) p50 {t50 / a50:.2f}x")
print(f"pgbench (b) Tally's statements:   p50 {f50:7.2f} ms  p99 {f99:7.2f} ms  mean {fmean:7.2f} ms   Tally/(b) p50 {t50 / f50:.2f}x")
PY
done
"${PSQL[@]}" -c "DELETE FROM quiz_answers WHERE quiz_id LIKE 'bench-pg-%'; DELETE FROM quiz_scores WHERE quiz_id LIKE 'bench-pg-%';
                 DELETE FROM leaderboard_scores WHERE board LIKE 'quiz:bench-pg-%'" > /dev/null

echo "== Leaderboard on a quiz of 100,000 users, limit 10, fixed 5,000 requests/s, ${SECONDS_PER_PHASE}s"
# 10 batches of 10,000 answers, one new user per answer.
BOARD_TEMPLATE='{"quiz_id": "bench-board-{{runId}}", "answers": ["{{repeat}}", {"user_id": "user-{{seq}}-{{itemMod 10000}}", "question_id": "q1",
  "answer": "A", "correct": true, "points": {{randomInt 0 1000}}, "response_time_ms": {{randomInt 500 20000}}, "answered_at_ms": {{now}}}]}'
load tally.v1.QuizService/SubmitAnswers --connections 1 --streams 1 --batch-size 10000 -n 10 -d "$BOARD_TEMPLATE" --format json > "$WORK/fill.json"
QUIZ=$("${PSQL[@]}" -c "SELECT quiz_id FROM quiz_scores WHERE quiz_id LIKE 'bench-board-%' GROUP BY 1 ORDER BY max(updated_at) DESC LIMIT 1")
echo "board quiz:$QUIZ: $("${PSQL[@]}" -c "SELECT count(*) FROM quiz_scores WHERE quiz_id = '$QUIZ'") users"
load tally.v1.QuizService/Leaderboard --connections 4 --rps 5000 -d "{\"quiz_id\": \"$QUIZ\", \"limit\": 10}" \
  --warmup 2s -z "${SECONDS_PER_PHASE}s" --format json > "$WORK/board.json"
python3 - "$WORK/board.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rpc = report["rpcs"][0]
l = rpc["latency_ms"]
print(f"Leaderboard: {rpc['calls_per_second']:,.0f} requests/s, p50 {l['p50']:.2f} ms, p99 {l['p99']:.2f} ms, errors {rpc['errors']}")
PY
