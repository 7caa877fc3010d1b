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
    /// and one round trip: three statements pipelined, each set-based over array parameters.
    ///
    /// Every writer of a user's answers first locks that user's score row (statement 2, in one
    /// order, so two batches never deadlock), and READ COMMITTED gives each later statement a
    /// snapshot taken after the lock: what statement 3 reads of the user's stored answers is
    /// then exactly what its upsert replaces. So the totals move by the difference between each
    /// saved answer and the one it replaced (no answer counted twice, none lost), and a batch
    /// costs in proportion to its own size, not to the answers its users gave before.
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
            // The answers' upsert, the replaced answers they differ from, each user's change,
            // and for users whose score moved: their score, their board row (revision from the
            // sequence, taken while the user's row is locked: per user in commit order) and one
            // pending merge naming them.
            PostgresStatement(
                """
                WITH input AS (
                  SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::bool[], $6::int[], $7::int[], $8::bigint[])
                    AS a(user_id, question_id, answer, correct, points, response_time_ms, at_ms)
                ),
                -- One primary-key lookup per answer (LIMIT keeps the planner from turning this
                -- into a join over every answer of the quiz).
                replaced AS (
                  SELECT i.user_id, i.question_id, r.correct, r.points, r.response_time_ms
                  FROM input i CROSS JOIN LATERAL (
                    SELECT correct, points, response_time_ms FROM quiz_answers q
                    WHERE q.quiz_id = $1 AND q.user_id = i.user_id AND q.question_id = i.question_id LIMIT 1
                  ) r
                ),
                saved AS (
                  INSERT INTO quiz_answers AS q (quiz_id, user_id, question_id, answer, correct, points, response_time_ms, answered_at)
                  SELECT $1, user_id, question_id, answer, correct, points, response_time_ms,
                         timestamptz 'epoch' + at_ms * interval '1 millisecond'
                  FROM input
                  ON CONFLICT (quiz_id, user_id, question_id) DO UPDATE SET
                    answer = EXCLUDED.answer, correct = EXCLUDED.correct, points = EXCLUDED.points,
                    response_time_ms = EXCLUDED.response_time_ms, answered_at = EXCLUDED.answered_at
                  RETURNING user_id, question_id, correct, points, response_time_ms
                ),
                delta AS (
                  SELECT s.user_id,
                         sum(s.points - coalesce(r.points, 0))::bigint AS points,
                         sum(s.correct::int - coalesce(r.correct::int, 0))::int AS correct,
                         sum(s.response_time_ms - coalesce(r.response_time_ms, 0))::bigint AS time_ms,
                         (count(*) - count(r.user_id))::int AS added
                  FROM saved s LEFT JOIN replaced r USING (user_id, question_id)
                  GROUP BY s.user_id
                ),
                changed AS (
                  UPDATE quiz_scores t SET points = t.points + d.points, correct = t.correct + d.correct,
                    total_time_ms = t.total_time_ms + d.time_ms, answers = t.answers + d.added, updated_at = now()
                  FROM delta d
                  WHERE t.quiz_id = $1 AND t.user_id = d.user_id AND (d.points, d.correct, d.time_ms, d.added) <> (0, 0, 0, 0)
                  RETURNING t.user_id, t.points, t.total_time_ms
                ),
                board AS (
                  INSERT INTO leaderboard_scores AS b (board, user_id, score, achieved_at, revision)
                  SELECT $9, user_id, points, timestamptz 'epoch' + total_time_ms * interval '1 millisecond', nextval('leaderboard_revisions')
                  FROM changed
                  ON CONFLICT (board, user_id) DO UPDATE SET
                    score = EXCLUDED.score, achieved_at = EXCLUDED.achieved_at, revision = EXCLUDED.revision
                  RETURNING user_id, score, (extract(epoch FROM achieved_at) * 1000)::bigint AS time_ms, revision
                ),
                pending AS (
                  INSERT INTO leaderboard_pending_merges (boards, user_ids)
                  SELECT array_agg($9::text), array_agg(user_id) FROM board HAVING count(*) > 0
                  RETURNING id
                )
                SELECT user_id, score, time_ms, revision, (SELECT id FROM pending) FROM board
                """,
                [quizID, PostgresArray(answers.map(\.userID)), PostgresArray(answers.map(\.questionID)),
                 PostgresArray(answers.map(\.answer)), PostgresArray(answers.map(\.correct)), PostgresArray(answers.map(\.points)),
                 PostgresArray(answers.map(\.responseTimeMs)), PostgresArray(answers.map { $0.answeredAtMs == 0 ? nowMs : $0.answeredAtMs }),
                 board.description]),
        ])
        var recorded = RecordedScores()
        for row in results[2] {
            recorded.improved.append(ScoreUpdate(
                board: board, userID: try row.decode(0, as: String.self), score: try row.decode(1, as: Int64.self),
                achievedAtMs: try row.decode(2, as: Int64.self), revision: try row.decode(3, as: Int64.self)))
            recorded.pendingMerge = try row.decode(4, as: Int64.self)
        }
        return Saved(saved: answers.count, board: recorded)
    }
}
