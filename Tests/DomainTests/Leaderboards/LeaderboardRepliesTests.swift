import Storage
import TestSupport
import NIOCore
import Testing

@testable import Domain

/// `Rank` and `Top` replies decoded in place, from the exact bytes Redis sends.
@Suite("Leaderboard script replies")
struct LeaderboardRepliesTests {
    /// One (member, score) pair of a ZREVRANGE ... WITHSCORES reply.
    static func pair(_ user: String, _ score: String, at ms: Int64) -> String {
        let member = BoardMember(userID: user, achievedAtMs: ms).encoded
        return "$\(member.utf8.count)\r\n\(member)\r\n$\(score.utf8.count)\r\n\(score)\r\n"
    }

    /// `leaderboard_rank`'s reply: {rank, total, first0, {pairs}}.
    static func rankReply(rank: Int, total: Int, first: Int, _ pairs: [String]) -> String {
        "*4\r\n:\(rank)\r\n:\(total)\r\n:\(first)\r\n*\(pairs.count * 2)\r\n" + pairs.joined()
    }

    static func decodeRank(_ resp: String) throws -> RankWindow?? {
        try TestRedis.withReply(resp) { reply in
            switch try LeaderboardStore.decodeRank(reply) {
            case .notLoaded: return nil
            case .answer(let window): return .some(window)
            }
        }
    }

    @Test("the user in the middle: neighbours above and below, ranks counted from the window's first")
    func middle() throws {
        let pairs = [Self.pair("a", "90", at: 1), Self.pair("b", "80", at: 2), Self.pair("me", "70", at: 3), Self.pair("c", "60", at: 4)]
        let window = try #require(try Self.decodeRank(Self.rankReply(rank: 12, total: 40, first: 9, pairs)) ?? nil)
        #expect(window.entry == LeaderboardEntry(rank: 12, userID: "me", score: 70, achievedAtMs: 3))
        #expect(window.above.map(\.userID) == ["a", "b"])
        #expect(window.above.map(\.rank) == [10, 11])
        #expect(window.below == [LeaderboardEntry(rank: 13, userID: "c", score: 60, achievedAtMs: 4)])
        #expect(window.total == 40)
    }

    @Test("the user at rank 1 has nothing above; the last user nothing below")
    func edges() throws {
        let first = try #require(try Self.decodeRank(Self.rankReply(rank: 1, total: 3, first: 0, [
            Self.pair("top", "1000000", at: 5), Self.pair("second", "999", at: 6),
        ])) ?? nil)
        #expect(first.entry.userID == "top")
        #expect(first.entry.score == 1_000_000)
        #expect(first.above.isEmpty)
        #expect(first.below.map(\.rank) == [2])
        let last = try #require(try Self.decodeRank(Self.rankReply(rank: 3, total: 3, first: 1, [
            Self.pair("second", "999", at: 6), Self.pair("last", "-5", at: 7),
        ])) ?? nil)
        #expect(last.entry == LeaderboardEntry(rank: 3, userID: "last", score: -5, achievedAtMs: 7))
        #expect(last.above.map(\.userID) == ["second"])
        #expect(last.below.isEmpty)
        let alone = try #require(try Self.decodeRank(Self.rankReply(rank: 1, total: 1, first: 0, [Self.pair("solo", "0", at: 0)])) ?? nil)
        #expect(alone.entry.userID == "solo" && alone.above.isEmpty && alone.below.isEmpty)
    }

    @Test("ties keep Redis' order (the earlier achievement first) and their own times")
    func ties() throws {
        let window = try #require(try Self.decodeRank(Self.rankReply(rank: 2, total: 3, first: 0, [
            Self.pair("early", "50", at: 1_700_000_000_000), Self.pair("me", "50", at: 1_700_000_000_001),
            Self.pair("late", "50", at: 1_700_000_000_002),
        ])) ?? nil)
        #expect(window.above == [LeaderboardEntry(rank: 1, userID: "early", score: 50, achievedAtMs: 1_700_000_000_000)])
        #expect(window.entry.achievedAtMs == 1_700_000_000_001)
        #expect(window.below.map(\.userID) == ["late"])
    }

    @Test("a plain ZREVRANGE window is split around the user, and refused when the board moved between the reads")
    func commandWindow() throws {
        let pairs = [Self.pair("a", "90", at: 1), Self.pair("me", "70", at: 3), Self.pair("c", "60", at: 4)]
        let flat = "*\(pairs.count * 2)\r\n" + pairs.joined()
        func decode(rank: Int, user: String = "me") throws -> RankWindow? {
            try TestRedis.withReply(flat) { LeaderboardStore.decodeWindow($0, firstRank: 7, rank: rank, user: user, total: 20) }
        }
        let window = try #require(try decode(rank: 8))
        #expect(window.entry == LeaderboardEntry(rank: 8, userID: "me", score: 70, achievedAtMs: 3))
        #expect(window.above.map(\.rank) == [7] && window.below.map(\.rank) == [9] && window.total == 20)
        #expect(try decode(rank: 9) == nil, "someone else at the user's rank: a write moved the window")
        #expect(try decode(rank: 8, user: "other") == nil)
        #expect(try TestRedis.withReply("*0\r\n") { LeaderboardStore.decodeWindow($0, firstRank: 1, rank: 1, user: "me", total: 0) } == nil,
                "the member left the board")
    }

    @Test("not loaded, no score, an empty window, and scores not in plain digits")
    func otherReplies() throws {
        #expect(try Self.decodeRank("*1\r\n:-1\r\n") == .none, "not loaded")
        #expect(try Self.decodeRank("*2\r\n:0\r\n:10\r\n") == .some(nil), "no score")
        #expect(try Self.decodeRank(Self.rankReply(rank: 4, total: 3, first: 3, [])) == .some(nil), "removed meanwhile")
        let exponent = try #require(try Self.decodeRank(Self.rankReply(rank: 1, total: 1, first: 0, [Self.pair("big", "1e+15", at: 1)])) ?? nil)
        #expect(exponent.entry.score == 1_000_000_000_000_000)
        #expect(throws: RedisError.self) { try Self.decodeRank("*0\r\n") }
        #expect(throws: RedisError.self) { try Self.decodeRank(":3\r\n") }
    }

    @Test("a Top page decodes with ranks from its start and a cursor when more follow")
    func top() throws {
        let resp = "*3\r\n:30\r\n:10\r\n*4\r\n" + Self.pair("x", "20", at: 1) + Self.pair("y", "19", at: 2)
        let page = try TestRedis.withReply(resp) { reply -> LeaderboardPage? in
            if case .answer(let page) = try LeaderboardStore.decodeTop(reply, limit: 2) { return page }
            return nil
        }
        #expect(page?.entries.map(\.rank) == [11, 12])
        #expect(page?.total == 30)
        #expect(page?.nextCursor.isEmpty == false)
        let empty = try TestRedis.withReply("*3\r\n:0\r\n:0\r\n*0\r\n") { reply -> LeaderboardPage? in
            if case .answer(let page) = try LeaderboardStore.decodeTop(reply, limit: 10) { return page }
            return nil
        }
        #expect(empty?.entries.isEmpty == true)
        #expect(empty?.nextCursor == "")
    }
}
