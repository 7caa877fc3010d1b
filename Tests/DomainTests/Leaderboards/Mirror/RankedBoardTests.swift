import Storage
import TestSupport
import Testing

@testable import Domain

/// `RankedBoard` against the order Redis keeps: score high to low, then the member
/// (`BoardMember.encoded`) bytewise high to low.
@Suite("Ranked board")
struct RankedBoardTests {
    /// The model: every user's best, sorted the way ZREVRANGE reads the sorted set.
    struct Model {
        /// By the id's bytes: Redis' :m hash and Postgres tell "\u{FC}" from "u\u{308}".
        var best: [[UInt8]: RankedBoard.Entry] = [:]

        /// Redis holds the time as the member's prefix: clamped to its range.
        mutating func merge(_ entry: RankedBoard.Entry) {
            var entry = entry
            entry.achievedAtMs = min(max(entry.achievedAtMs, 0), BoardMember.invertBase)
            if let current = best[Array(entry.userID.utf8)], !Self.redisOrder(entry, current) { return }
            best[Array(entry.userID.utf8)] = entry
        }

        var ordered: [RankedBoard.Entry] { best.values.sorted(by: Self.redisOrder) }

        static func redisOrder(_ a: RankedBoard.Entry, _ b: RankedBoard.Entry) -> Bool {
            if a.score != b.score { return a.score > b.score }
            let memberA = BoardMember(userID: a.userID, achievedAtMs: a.achievedAtMs).encoded.utf8
            let memberB = BoardMember(userID: b.userID, achievedAtMs: b.achievedAtMs).encoded.utf8
            return memberB.lexicographicallyPrecedes(memberA)
        }
    }

    /// Ids that tie on score and time and differ only in bytes: prefixes, case, non-ASCII.
    static let awkwardUsers = ["a", "ab", "abc", "B", "b", "ü", "u\u{308}", "日本", "z", "zz"]

    static func entry(_ random: inout SplitMix64, users: Int) -> RankedBoard.Entry {
        let user = random.next() % 10 == 0
            ? awkwardUsers[Int(random.next() % UInt64(awkwardUsers.count))] : "user-\(random.next() % UInt64(users))"
        // Few distinct scores and times, so ties are common; times outside the member's
        // range are clamped there, as in Redis.
        let times: [Int64] = [-5, 0, 1, 2, 1_700_000_000_000, BoardMember.invertBase, BoardMember.invertBase + 7]
        return RankedBoard.Entry(userID: user, score: Int64(random.next() % 40) - 10,
                                 achievedAtMs: times[Int(random.next() % UInt64(times.count))])
    }

    static func expectAgrees(_ board: RankedBoard, _ model: Model, neighbours: Int) {
        let ordered = model.ordered
        #expect(board.count == ordered.count)
        #expect(board.all == ordered)
        for (rank0, entry) in ordered.enumerated() {
            #expect(board.rank(of: entry.userID) == rank0, "\(entry.userID)")
            let window = board.window(of: entry.userID, neighbours: neighbours)
            let first = max(0, rank0 - neighbours)
            let expected = ordered[first..<min(ordered.count, rank0 + neighbours + 1)]
            let got = (window?.above ?? []) + (window.map { [$0.entry] } ?? []) + (window?.below ?? [])
            #expect(got.map(\.userID) == expected.map(\.userID))
            #expect(got.map(\.rank) == Array((first + 1)...(first + expected.count)))
            #expect(window?.total == ordered.count)
        }
    }

    @Test("merges in any order give Redis' order, ranks and windows", arguments: [(200, 2_000), (3_000, 8_000)])
    func agreesWithRedisOrder(users: Int, merges: Int) {
        var random = SplitMix64(seed: UInt64(users))
        var board = RankedBoard()
        var model = Model()
        for step in 1...merges {
            let entry = Self.entry(&random, users: users)
            let before = model.best[Array(entry.userID.utf8)]
            model.merge(entry)
            let improved = board.merge(entry)
            #expect(improved == (model.best[Array(entry.userID.utf8)] != before), "merge reports an improvement")
            if step % (merges / 4) == 0 { Self.expectAgrees(board, model, neighbours: 3) }
        }
        // Loading the same users at once, with older (worse) copies of some of them, in board
        // order (as a load reads them) or in any order, gives the same board.
        let older = model.ordered.prefix(50).map { RankedBoard.Entry(userID: $0.userID, score: $0.score - 1, achievedAtMs: $0.achievedAtMs) }
        Self.expectAgrees(RankedBoard((model.ordered + older).sorted(by: Model.redisOrder)), model, neighbours: 2)
        Self.expectAgrees(RankedBoard((model.ordered + older).shuffled(using: &random)), model, neighbours: 2)
    }

    @Test("replacing entries, better or worse, in any order gives Redis' order, ranks and windows", arguments: [(200, 2_000), (3_000, 8_000)])
    func replacesAsRedis(users: Int, writes: Int) {
        var random = SplitMix64(seed: UInt64(users) &+ 1)
        var board = RankedBoard()
        var model = Model()
        for step in 1...writes {
            let entry = Self.entry(&random, users: users)
            var clamped = entry
            clamped.achievedAtMs = BoardMember.clampedTime(entry.achievedAtMs)
            model.best[Array(entry.userID.utf8)] = clamped  // the latest write, not the best
            board.replace(entry)
            if step % (writes / 4) == 0 { Self.expectAgrees(board, model, neighbours: 3) }
        }
    }

    @Test("an empty board and unknown users have no rank")
    func empty() {
        var board = RankedBoard()
        #expect(board.rank(of: "nobody") == nil)
        #expect(board.window(of: "nobody", neighbours: 5) == nil)
        #expect(board.entries(from: 0, limit: 10).isEmpty)
        board.merge(RankedBoard.Entry(userID: "solo", score: 1, achievedAtMs: 1))
        #expect(board.window(of: "solo", neighbours: 5) == RankWindow(
            entry: LeaderboardEntry(rank: 1, userID: "solo", score: 1, achievedAtMs: 1), above: [], below: [], total: 1))
        let later = board.merge(RankedBoard.Entry(userID: "solo", score: 1, achievedAtMs: 2))
        #expect(!later, "equal score, later: not better")
        let earlier = board.merge(RankedBoard.Entry(userID: "solo", score: 1, achievedAtMs: 0))
        #expect(earlier, "equal score, earlier: better")
    }
}
