import Storage
import TestSupport
import Testing

@testable import Domain

@Suite("Rank cache")
struct RankCacheTests {
    static func window(_ user: String, rank: Int) -> RankWindow {
        RankWindow(entry: LeaderboardEntry(rank: rank, userID: user, score: 1, achievedAtMs: 1), above: [], below: [], total: 100)
    }

    @Test("at capacity the oldest answers go first, a few per store; a stored-again key keeps its newer answer")
    func capacity() {
        let cache = RankCache(ttl: .seconds(3600), capacity: 10)
        let board = BoardID.quiz("q")
        for index in 0..<5 { cache.store(Self.window("u\(index)", rank: index), board: board, user: "u\(index)", neighbours: 5) }
        cache.store(Self.window("u0", rank: 42), board: board, user: "u0", neighbours: 5)  // a newer answer, same key
        for index in 5..<10 { cache.store(Self.window("u\(index)", rank: index), board: board, user: "u\(index)", neighbours: 5) }
        #expect(cache.count == 10)
        // u0's first record is the oldest: retiring it must not drop the newer answer, so u1 goes.
        cache.store(Self.window("u10", rank: 10), board: board, user: "u10", neighbours: 5)
        #expect(cache.count == 10)
        #expect(cache.lookup(board: board, user: "u0", neighbours: 5)?.entry.rank == 42)
        #expect(cache.lookup(board: board, user: "u1", neighbours: 5) == nil)
        for index in 11..<15 { cache.store(Self.window("u\(index)", rank: index), board: board, user: "u\(index)", neighbours: 5) }
        #expect(cache.count == 10)
        #expect(cache.lookup(board: board, user: "u0", neighbours: 5) == nil, "its newer record came up")
        #expect(cache.lookup(board: board, user: "u5", neighbours: 5)?.entry.rank == 5)
        #expect(cache.lookup(board: board, user: "u14", neighbours: 5)?.entry.rank == 14)
        #expect(cache.lookup(board: board, user: "u14", neighbours: 3) == nil, "neighbours are part of the key")
    }

    @Test("users equal only as Swift strings (NFC and NFD) are two users, with two answers")
    func usersByBytes() {
        let cache = RankCache(ttl: .seconds(3600), capacity: 10)
        cache.store(Self.window("caf\u{E9}", rank: 1), board: .global, user: "caf\u{E9}", neighbours: 0)
        #expect(cache.lookup(board: .global, user: "cafe\u{301}", neighbours: 0) == nil)
        cache.store(Self.window("cafe\u{301}", rank: 2), board: .global, user: "cafe\u{301}", neighbours: 0)
        #expect(cache.lookup(board: .global, user: "caf\u{E9}", neighbours: 0)?.entry.rank == 1)
        #expect(cache.lookup(board: .global, user: "cafe\u{301}", neighbours: 0)?.entry.rank == 2)
    }

    @Test("an improvement on the board retires its answers; a TTL of zero disables the cache")
    func invalidation() {
        let cache = RankCache(ttl: .seconds(3600), capacity: 100)
        cache.store(Self.window("a", rank: 1), board: .global, user: "a", neighbours: 0)
        cache.store(Self.window("a", rank: 1), board: .quiz("other"), user: "a", neighbours: 0)
        cache.invalidate(board: .global)
        #expect(cache.lookup(board: .global, user: "a", neighbours: 0) == nil)
        #expect(cache.lookup(board: .quiz("other"), user: "a", neighbours: 0) != nil)
        let disabled = RankCache(ttl: .zero, capacity: 100)
        disabled.store(Self.window("a", rank: 1), board: .global, user: "a", neighbours: 0)
        #expect(disabled.lookup(board: .global, user: "a", neighbours: 0) == nil)
    }
}
