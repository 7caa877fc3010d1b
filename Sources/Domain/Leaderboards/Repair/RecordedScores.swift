import Storage
/// Scores written to `leaderboard_scores` in an open transaction: those that changed a board,
/// and the pending merge that names them (`leaderboard_pending_merges`, same transaction).
/// Hand it to `LeaderboardStore.publish` after the commit.
///
/// Best-score boards get one from `LeaderboardStore.record`. A latest-score board's owner (the
/// quiz) builds its own: each update with the row's `score`, its `achieved_at` in unix
/// milliseconds and the `revision` it wrote, and the id of the pending merge naming them.
public struct RecordedScores: Sendable {
    /// Changes to merge into Redis.
    public var improved: [ScoreUpdate]
    /// The row that stays in Postgres until the merge is confirmed; nil when nothing changed.
    public var pendingMerge: Int64?

    public init(improved: [ScoreUpdate] = [], pendingMerge: Int64? = nil) {
        self.improved = improved
        self.pendingMerge = pendingMerge
    }
}
