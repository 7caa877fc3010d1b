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
