import Storage
/// One line of a board.
public struct LeaderboardEntry: Sendable, Hashable {
    /// 1-based.
    public var rank: Int
    public var userID: String
    public var score: Int64
    /// When the user first reached this score, unix milliseconds (the tie-breaker).
    public var achievedAtMs: Int64

    public init(rank: Int, userID: String, score: Int64, achievedAtMs: Int64) {
        self.rank = rank
        self.userID = userID
        self.score = score
        self.achievedAtMs = achievedAtMs
    }
}

/// A page of `Top`.
public struct LeaderboardPage: Sendable, Hashable {
    public var entries: [LeaderboardEntry]
    /// Opaque; empty when there is nothing after this page.
    public var nextCursor: String
    public var total: Int
}

/// A user's place on a board with neighbours (`Rank`).
public struct RankWindow: Sendable, Hashable {
    public var entry: LeaderboardEntry
    /// Better-ranked neighbours, best first.
    public var above: [LeaderboardEntry]
    /// Worse-ranked neighbours, best first.
    public var below: [LeaderboardEntry]
    public var total: Int
}

/// A score to merge into a board. On a best-score board (`BoardID.keepsLatest` false) it is
/// kept when it beats the user's best (ties: the earlier); on a latest-score board (quiz) it
/// replaces the user's entry when its `revision` is newer than the one the copy holds.
public struct ScoreUpdate: Sendable, Hashable {
    public var board: BoardID
    public var userID: String
    public var score: Int64
    /// The tie-breaker: the earlier wins. When the user reached the score on best-score
    /// boards; the user's total response time on quiz boards.
    public var achievedAtMs: Int64
    /// `leaderboard_scores.revision` of this write on latest-score boards; nil on the others.
    public var revision: Int64?

    public init(board: BoardID, userID: String, score: Int64, achievedAtMs: Int64, revision: Int64? = nil) {
        self.board = board
        self.userID = userID
        self.score = score
        self.achievedAtMs = achievedAtMs
        self.revision = revision
    }

    var member: BoardMember { BoardMember(userID: userID, achievedAtMs: achievedAtMs) }
}
