import Storage
/// `Top`'s page cursor: the last entry of the previous page (its score and board member),
/// so the next page starts right after it even when the board changed in between.
struct LeaderboardCursor: Hashable {
    var score: Int64
    var member: String

    var encoded: String { "\(score):\(member)" }

    init(score: Int64, member: String) {
        self.score = score
        self.member = member
    }

    init?(encoded: String) {
        guard let colon = encoded.firstIndex(of: ":"), let score = Int64(encoded[..<colon]) else { return nil }
        let member = String(encoded[encoded.index(after: colon)...])
        guard BoardMember(encoded: member) != nil else { return nil }
        self.score = score
        self.member = member
    }
}

extension LeaderboardPage {
    /// A page starting at 0-based `start`; its cursor names its last entry when more follow.
    init(entries: [LeaderboardEntry], start: Int, limit: Int, total: Int) {
        self.entries = entries
        self.total = total
        if let last = entries.last, entries.count == limit, start + limit < total {
            nextCursor = LeaderboardCursor(score: last.score, member: BoardMember(userID: last.userID, achievedAtMs: last.achievedAtMs).encoded).encoded
        } else {
            nextCursor = ""
        }
    }
}
