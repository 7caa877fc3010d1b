import Storage
/// Scores written to `leaderboard_scores` in an open transaction: those that improved a best
/// score, and the pending merge that names them (`leaderboard_pending_merges`, same
/// transaction). Hand it to `LeaderboardStore.publish` after the commit.
public struct RecordedScores: Sendable {
    /// Improvements to merge into Redis.
    public var improved: [ScoreUpdate]
    /// The row that stays in Postgres until the merge is confirmed; nil when nothing improved.
    var pendingMerge: Int64?

    public init(improved: [ScoreUpdate] = [], pendingMerge: Int64? = nil) {
        self.improved = improved
        self.pendingMerge = pendingMerge
    }
}
