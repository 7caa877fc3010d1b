import Storage

/// The SQL of quiz answers and scores. Postgres is the truth: answers, each user's score and the
/// quiz board's rows (`leaderboard_scores` with a revision, see migration 0008) commit together.
enum QuizStore {
    /// What one committed batch changed on the quiz board: hand to `LeaderboardStore.publish`.
    struct Saved {
        var saved: Int
        var board: RecordedScores
    }

    /// Saves a batch (already validated, one answer per user and question) in one transaction
    /// and one round trip: four statements pipelined, each set-based over array parameters.
    ///
    /// Concurrent batches touching one user must not compute that user's totals from each
    /// other's uncommitted answers, so the users' score rows are locked first, in one order
    /// (no deadlock between two batches); each later statement then sees every earlier commit
    /// (READ COMMITTED takes a snapshot per statement). The totals are recomputed from the
    /// answers rather than adjusted by deltas, so a replaced answer can never be counted twice.
    static func save(quizID: String, board: BoardID, answers: [QuizAnswer], nowMs: Int64, on connection: PostgresConnection) async throws -> Saved {
        var users = Set<ExactID>()
        for answer in answers { users.insert(ExactID(answer.userID)) }
        let userIDs = PostgresArray(users.map(\.text))
        let results = try await connection.pipeline([
            PostgresStatement(
                """
                INSERT INTO quiz_scores (quiz_id, user_id, points, correct, total_time_ms, answers)
                SELECT $1, u, 0, 0, 0, 0 FROM unnest($2::text[]) AS u
                ON CONFLICT (quiz_id, user_id) DO NOTHING
                """,
                [quizID, userIDs]),
            PostgresStatement(
                "SELECT user_id FROM quiz_scores WHERE quiz_id = $1 AND user_id = ANY($2::text[]) ORDER BY user_id FOR UPDATE",
                [quizID, userIDs]),
            PostgresStatement(
                """
                INSERT INTO quiz_answers AS q (quiz_id, user_id, question_id, answer, correct, points, response_time_ms, answered_at)
                SELECT $1, a.user_id, a.question_id, a.answer, a.correct, a.points, a.response_time_ms,
                       timestamptz 'epoch' + a.at_ms * interval '1 millisecond'
                FROM unnest($2::text[], $3::text[], $4::text[], $5::bool[], $6::int[], $7::int[], $8::bigint[])
                  AS a(user_id, question_id, answer, correct, points, response_time_ms, at_ms)
                ON CONFLICT (quiz_id, user_id, question_id) DO UPDATE SET
                  answer = EXCLUDED.answer, correct = EXCLUDED.correct, points = EXCLUDED.points,
                  response_time_ms = EXCLUDED.response_time_ms, answered_at = EXCLUDED.answered_at
                """,
                [quizID, PostgresArray(answers.map(\.userID)), PostgresArray(answers.map(\.questionID)),
                 PostgresArray(answers.map(\.answer)), PostgresArray(answers.map(\.correct)), PostgresArray(answers.map(\.points)),
                 PostgresArray(answers.map(\.responseTimeMs)), PostgresArray(answers.map { $0.answeredAtMs == 0 ? nowMs : $0.answeredAtMs })]),
            // Users whose totals changed get a new board row (revision from the sequence, taken
            // while their score row is locked: per user in commit order) and one pending merge.
            PostgresStatement(
                """
                WITH totals AS (
                  SELECT user_id, sum(points)::bigint AS points, (count(*) FILTER (WHERE correct))::int AS correct,
                         sum(response_time_ms)::bigint AS total_time_ms, count(*)::int AS answers
                  FROM quiz_answers WHERE quiz_id = $1 AND user_id = ANY($2::text[]) GROUP BY user_id
                ),
                changed AS (
                  UPDATE quiz_scores s SET points = t.points, correct = t.correct, total_time_ms = t.total_time_ms,
                    answers = t.answers, updated_at = now()
                  FROM totals t
                  WHERE s.quiz_id = $1 AND s.user_id = t.user_id
                    AND (s.points, s.correct, s.total_time_ms, s.answers) IS DISTINCT FROM (t.points, t.correct, t.total_time_ms, t.answers)
                  RETURNING s.user_id, s.points, s.total_time_ms
                ),
                board AS (
                  INSERT INTO leaderboard_scores AS b (board, user_id, score, achieved_at, revision)
                  SELECT $3, user_id, points, timestamptz 'epoch' + total_time_ms * interval '1 millisecond', nextval('leaderboard_revisions')
                  FROM changed
                  ON CONFLICT (board, user_id) DO UPDATE SET
                    score = EXCLUDED.score, achieved_at = EXCLUDED.achieved_at, revision = EXCLUDED.revision
                  RETURNING user_id, score, (extract(epoch FROM achieved_at) * 1000)::bigint AS time_ms, revision
                ),
                pending AS (
                  INSERT INTO leaderboard_pending_merges (boards, user_ids)
                  SELECT array_agg($3::text), array_agg(user_id) FROM board HAVING count(*) > 0
                  RETURNING id
                )
                SELECT user_id, score, time_ms, revision, (SELECT id FROM pending) FROM board
                """,
                [quizID, userIDs, board.description]),
        ])
        var recorded = RecordedScores()
        for row in results[3] {
            recorded.improved.append(ScoreUpdate(
                board: board, userID: try row.decode(0, as: String.self), score: try row.decode(1, as: Int64.self),
                achievedAtMs: try row.decode(2, as: Int64.self), revision: try row.decode(3, as: Int64.self)))
            recorded.pendingMerge = try row.decode(4, as: Int64.self)
        }
        return Saved(saved: answers.count, board: recorded)
    }
}
