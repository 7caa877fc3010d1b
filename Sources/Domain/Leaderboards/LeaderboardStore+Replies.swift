import Storage
/// Decoding the read scripts' replies in place, on the Redis connection's loop.
///
/// `Rank` is the hottest read: its window of members and scores goes from hiredis' parsed
/// tree straight into `LeaderboardEntry`s (scores are whole numbers and come back as decimal
/// digits, so no `Double` and no intermediate `String`s).
extension LeaderboardStore {
    /// A read script's answer: the board is not loaded (load it and ask again), or the reply.
    enum BoardReply<Answer: Sendable>: Sendable {
        case notLoaded
        case answer(Answer)
    }

    /// `leaderboard_rank`: {-1}, {0, total} (no score), or {rank, total, first0, {member, score, ...}}.
    /// nil when the user has no score, or the window does not hold the user's rank.
    static func decodeRank(_ reply: RESPReply) throws -> BoardReply<RankWindow?> {
        guard let status = reply.element(0)?.int else { throw RedisError(.unexpectedReply, LeaderboardScripts.rank.name) }
        if status == -1 { return .notLoaded }
        guard status > 0, let total = reply.element(1)?.int, let first = reply.element(2)?.int, let flat = reply.element(3) else {
            return .answer(nil)
        }
        return .answer(window(flat, firstRank: Int(first) + 1, rank: Int(status), total: Int(total)))
    }

    /// A ZREVRANGE ... WITHSCORES window whose first pair has `firstRank`, split around the
    /// entry at `rank`; nil when the window does not reach that rank.
    static func window(_ flat: RESPReply, firstRank: Int, rank: Int, total: Int) -> RankWindow? {
        var entry: LeaderboardEntry?
        var above: [LeaderboardEntry] = []
        var below: [LeaderboardEntry] = []
        let aboveCount = max(0, min(rank - firstRank, flat.count / 2))
        above.reserveCapacity(aboveCount)
        below.reserveCapacity(max(0, flat.count / 2 - aboveCount - 1))
        forEachEntry(flat, firstRank: firstRank) { decoded in
            if decoded.rank < rank {
                above.append(decoded)
            } else if decoded.rank == rank {
                entry = decoded
            } else {
                below.append(decoded)
            }
        }
        guard let entry else { return nil }
        return RankWindow(entry: entry, above: above, below: below, total: total)
    }

    /// `leaderboard_top`: {-1}, or {total, start0, {member, score, ...}}.
    static func decodeTop(_ reply: RESPReply, limit: Int) throws -> BoardReply<LeaderboardPage> {
        guard let total = reply.element(0)?.int else { throw RedisError(.unexpectedReply, LeaderboardScripts.top.name) }
        if total == -1 { return .notLoaded }
        guard let start = reply.element(1)?.int, let flat = reply.element(2) else {
            throw RedisError(.unexpectedReply, LeaderboardScripts.top.name)
        }
        var entries: [LeaderboardEntry] = []
        entries.reserveCapacity(flat.count / 2)
        forEachEntry(flat, firstRank: Int(start) + 1) { entries.append($0) }
        return .answer(LeaderboardPage(entries: entries, start: Int(start), limit: limit, total: Int(total)))
    }

    /// Entries of a ZREVRANGE ... WITHSCORES reply (member, score pairs), ranked from
    /// `firstRank` on; a pair that is not a board member and a whole score is skipped.
    static func forEachEntry(_ flat: RESPReply, firstRank: Int, _ body: (LeaderboardEntry) -> Void) {
        var rank = firstRank
        var index = 0
        while index + 1 < flat.count {
            defer { index += 2 }
            guard let memberReply = flat.element(index), let scoreReply = flat.element(index + 1),
                let member = memberReply.withBytes({ BoardMember(encoded: $0) }),
                let score = scoreReply.int ?? scoreReply.withBytes({ wholeScore($0) })
            else { continue }
            body(LeaderboardEntry(rank: rank, userID: member.userID, score: score, achievedAtMs: member.achievedAtMs))
            rank += 1
        }
    }

    /// A score Redis printed in another form than plain digits (e.g. an exponent), as long as
    /// it is a whole number within range.
    private static func wholeScore(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard let value = Double(String(decoding: bytes, as: UTF8.self)), value == value.rounded() else { return nil }
        return Int64(exactly: value)
    }
}
