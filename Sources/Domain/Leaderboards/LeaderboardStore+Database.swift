import Storage
extension LeaderboardStore {
    /// `Top` from Postgres (read replica when configured), for when Redis is unreachable.
    /// Same order as the sorted sets: score, then earlier achievement, then user id bytes.
    func topFromDatabase(_ board: BoardID, limit: Int, after cursor: LeaderboardCursor?, deadline: ContinuousClock.Instant?) async throws -> LeaderboardPage {
        let after = cursor.flatMap { cursor in BoardMember(encoded: cursor.member).map { (cursor.score, $0) } }
        return try await database.read(deadline: deadline) { connection in
            let total = try await connection.query("SELECT count(*) FROM leaderboard_scores WHERE board = $1", [board.description])
                .scalar(Int64.self)
            var start: Int64 = 0
            if let (score, member) = after {
                start = try await connection.query(
                    """
                    SELECT count(*) FROM leaderboard_scores WHERE board = $1 AND (score > $2
                      OR (score = $2 AND (extract(epoch FROM achieved_at) * 1000)::bigint < $3)
                      OR (score = $2 AND (extract(epoch FROM achieved_at) * 1000)::bigint = $3 AND user_id COLLATE "C" >= $4))
                    """,
                    [board.description, score, member.achievedAtMs, member.userID]).scalar(Int64.self)
            }
            let rows = try await connection.query(
                """
                SELECT user_id, score, (extract(epoch FROM achieved_at) * 1000)::bigint AS at_ms
                FROM leaderboard_scores WHERE board = $1
                ORDER BY score DESC, at_ms ASC, user_id COLLATE "C" DESC OFFSET $2 LIMIT $3
                """,
                [board.description, start, limit])
            var entries: [LeaderboardEntry] = []
            for row in rows {
                entries.append(LeaderboardEntry(
                    rank: Int(start) + entries.count + 1, userID: try row.decode(0, as: String.self),
                    score: try row.decode(1, as: Int64.self), achievedAtMs: try row.decode(2, as: Int64.self)))
            }
            return LeaderboardPage(entries: entries, start: Int(start), limit: limit, total: Int(total))
        }
    }

    /// `Rank` from Postgres, for when Redis is unreachable.
    func rankFromDatabase(_ board: BoardID, user: String, neighbours: Int, deadline: ContinuousClock.Instant?) async throws -> RankWindow? {
        try await database.read(deadline: deadline) { connection in
            let mine = try await connection.query(
                "SELECT score, (extract(epoch FROM achieved_at) * 1000)::bigint FROM leaderboard_scores WHERE board = $1 AND user_id = $2",
                [board.description, user])
            guard let row = mine.first else { return nil }
            let score = try row.decode(0, as: Int64.self)
            let atMs = try row.decode(1, as: Int64.self)
            let above = try await connection.query(
                """
                SELECT count(*) FROM leaderboard_scores WHERE board = $1 AND (score > $2
                  OR (score = $2 AND (extract(epoch FROM achieved_at) * 1000)::bigint < $3)
                  OR (score = $2 AND (extract(epoch FROM achieved_at) * 1000)::bigint = $3 AND user_id COLLATE "C" > $4))
                """,
                [board.description, score, atMs, user]).scalar(Int64.self)
            let total = try await connection.query("SELECT count(*) FROM leaderboard_scores WHERE board = $1", [board.description])
                .scalar(Int64.self)
            let first = max(0, above - Int64(neighbours))
            let rows = try await connection.query(
                """
                SELECT user_id, score, (extract(epoch FROM achieved_at) * 1000)::bigint AS at_ms
                FROM leaderboard_scores WHERE board = $1
                ORDER BY score DESC, at_ms ASC, user_id COLLATE "C" DESC OFFSET $2 LIMIT $3
                """,
                // Up to `neighbours` on each side, as in Redis: fewer above near the top, not more below.
                [board.description, first, above - first + Int64(neighbours) + 1])
            var window: [LeaderboardEntry] = []
            for row in rows {
                window.append(LeaderboardEntry(
                    rank: Int(first) + window.count + 1, userID: try row.decode(0, as: String.self),
                    score: try row.decode(1, as: Int64.self), achievedAtMs: try row.decode(2, as: Int64.self)))
            }
            return Self.split(window, at: Int(above) + 1, total: Int(total))
        }
    }
}
