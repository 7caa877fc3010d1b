import Storage
/// The SQL of `leaderboard_pending_merges`: improvements committed to Postgres whose merge
/// into Redis is not confirmed (see migration 0005). Rows are written by
/// `LeaderboardStore.record` (and, for latest-score boards, their owner) in the scores' own
/// transaction.
enum PendingMerges {
    /// A claimed chunk of overdue rows: their ids, and the (board, user) pairs they name.
    struct Claim {
        var ids: [Int64] = []
        var boards: [String] = []
        var users: [String] = []
    }

    /// The boards named by rows older than `age`: their Redis copies are behind.
    static func overdueBoards(olderThan age: Duration, on connection: PostgresConnection) async throws -> Set<BoardID> {
        let rows = try await connection.query(
            """
            SELECT DISTINCT b FROM leaderboard_pending_merges, unnest(boards) AS b
            WHERE committed_at < clock_timestamp() - $1::double precision * interval '1 millisecond'
            """,
            [age.milliseconds])
        return Set(try rows.map { try BoardID(parsing: try $0.decode(0, as: String.self)) })
    }

    /// Locks up to `limit` rows older than `age` for this transaction (rows another instance is
    /// repairing are skipped) and returns the distinct pairs they name.
    static func claimOverdue(olderThan age: Duration, limit: Int, on connection: PostgresConnection) async throws -> Claim {
        let rows = try await connection.query(
            """
            WITH claimed AS (
              SELECT id, boards, user_ids FROM leaderboard_pending_merges
              WHERE committed_at < clock_timestamp() - $1::double precision * interval '1 millisecond'
              ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
            )
            SELECT c.id, u.board, u.user_id FROM claimed c, unnest(c.boards, c.user_ids) AS u(board, user_id)
            """,
            [age.milliseconds, limit])
        var claim = Claim()
        var ids = Set<Int64>()
        var pairs = Set<Pair>()
        for row in rows {
            let id = try row.decode(0, as: Int64.self)
            if ids.insert(id).inserted { claim.ids.append(id) }
            let board = try row.decode(1, as: String.self)
            let user = try row.decode(2, as: String.self)
            if pairs.insert(Pair(board: ExactID(board), user: ExactID(user))).inserted {
                claim.boards.append(board)
                claim.users.append(user)
            }
        }
        return claim
    }

    private struct Pair: Hashable {
        var board: ExactID
        var user: ExactID
    }

    /// The rows in `leaderboard_scores` of the claimed pairs: what Redis must hold. On
    /// latest-score boards with their revision (0 for a row without one, as a rebuild loads
    /// it), so merging them again replaces only an older entry and repeats change nothing.
    static func currentScores(of claim: Claim, on connection: PostgresConnection) async throws -> [ScoreUpdate] {
        let rows = try await connection.query(
            """
            SELECT s.board, s.user_id, s.score, (extract(epoch FROM s.achieved_at) * 1000)::bigint, COALESCE(s.revision, 0)
            FROM leaderboard_scores s JOIN unnest($1::text[], $2::text[]) AS p(board, user_id) USING (board, user_id)
            """,
            [PostgresArray(claim.boards), PostgresArray(claim.users)])
        return try rows.map { row in
            let board = try BoardID(parsing: try row.decode(0, as: String.self))
            let revision = try row.decode(4, as: Int64.self)
            return ScoreUpdate(
                board: board, userID: try row.decode(1, as: String.self),
                score: try row.decode(2, as: Int64.self), achievedAtMs: try row.decode(3, as: Int64.self),
                revision: board.keepsLatest ? revision : nil)
        }
    }

    /// Forgets rows whose merge is confirmed.
    static func delete(_ ids: [Int64], on connection: PostgresConnection) async throws {
        _ = try await connection.query("DELETE FROM leaderboard_pending_merges WHERE id = ANY($1::bigint[])", [PostgresArray(ids)])
    }
}
