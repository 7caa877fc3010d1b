import Codec
import Storage

/// The SQL of reward distributions: the distribution row and its rewards commit together.
enum RewardLedger {
    enum Outcome {
        case distributed([Reward])
        case replayed([Reward])
    }

    /// Runs a distribution in the caller's transaction. Distributions of one quiz are
    /// serialized (a transaction-scoped advisory lock), so two of them on two instances never
    /// both reward one user, and a replay waits for the first run's commit.
    ///
    /// Ranks are the board's order over `quiz_scores`, the truth in this transaction: points,
    /// then lower total time, then the user id's bytes descending (the leaderboard engine's
    /// order). A tie on a tier boundary is thus decided like the board shows it; users skipped
    /// by a tier (already rewarded) leave their reward unused rather than shifting it down.
    static func distribute(quizID: String, distributionID: String, tiers ordered: [RewardTier], on connection: PostgresConnection) async throws -> Outcome {
        let fingerprint = RewardRules.fingerprint(ordered)
        _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended('tally.quiz.rewards:' || $1, 0))", [quizID])
        let existing = try await connection.query(
            "SELECT tiers FROM quiz_distributions WHERE quiz_id = $1 AND distribution_id = $2", [quizID, distributionID])
        if let row = existing.first {
            guard try row.decode(0, as: String.self) == fingerprint else {
                throw RPCError(.failedPrecondition,
                               "distribution_id: \(distributionID) already distributed other tiers for quiz \(quizID); use a new id for new tiers")
            }
            return .replayed(try await rewards(quizID: quizID, distributionID: distributionID, on: connection))
        }
        _ = try await connection.query(
            "INSERT INTO quiz_distributions (quiz_id, distribution_id, tiers) VALUES ($1, $2, $3)", [quizID, distributionID, fingerprint])
        let lastRank = ordered.map(\.toRank).max() ?? 0
        let rows = try await connection.query(
            """
            WITH ranked AS (
              SELECT user_id, row_number() OVER (ORDER BY points DESC, total_time_ms ASC, user_id COLLATE "C" DESC) AS rank
              FROM quiz_scores WHERE quiz_id = $1 AND answers > 0
              ORDER BY points DESC, total_time_ms ASC, user_id COLLATE "C" DESC
              LIMIT $3
            ),
            tiers AS (
              SELECT * FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::bool[]) AS t(from_rank, to_rank, reward, repeatable)
            )
            INSERT INTO quiz_rewards (quiz_id, distribution_id, user_id, rank, reward, repeatable)
            SELECT $1, $2, r.user_id, r.rank, t.reward, t.repeatable
            FROM ranked r JOIN tiers t ON r.rank BETWEEN t.from_rank AND t.to_rank
            ORDER BY r.rank
            ON CONFLICT DO NOTHING
            RETURNING user_id, rank, reward
            """,
            [quizID, distributionID, lastRank,
             PostgresArray(ordered.map { Int64($0.fromRank) }), PostgresArray(ordered.map { Int64($0.toRank) }),
             PostgresArray(ordered.map(\.reward)), PostgresArray(ordered.map(\.repeatable))])
        var rewards = try rows.map { row in
            Reward(userID: try row.decode(0, as: String.self), rank: try row.decode(1, as: Int64.self), reward: try row.decode(2, as: String.self))
        }
        rewards.sort { $0.rank < $1.rank }
        return .distributed(rewards)
    }

    /// The rewards a distribution committed, by rank.
    static func rewards(quizID: String, distributionID: String, on connection: PostgresConnection) async throws -> [Reward] {
        try await connection.query(
            "SELECT user_id, rank, reward FROM quiz_rewards WHERE quiz_id = $1 AND distribution_id = $2 ORDER BY rank",
            [quizID, distributionID]
        ).map { row in
            Reward(userID: try row.decode(0, as: String.self), rank: try row.decode(1, as: Int64.self), reward: try row.decode(2, as: String.self))
        }
    }
}
