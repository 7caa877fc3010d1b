import Storage
import TestSupport
import Foundation
import NIOPosix
import Synchronization
import Testing
import Codec

@testable import Domain

/// Leaderboards against a real Postgres (own database, migrated) and the run's Redis.
@Suite("Leaderboard store")
struct LeaderboardStoreTests {
    struct Fixture {
        let database: PostgresDatabase
        let redis: RedisClient
        let store: LeaderboardStore
        let board: BoardID
    }

    static func withStore<T>(
        redisURL: String = TestServices.shared.redisURL,
        _ body: (Fixture) async throws -> T
    ) async throws -> T {
        let testDatabase = try await TestDatabase.create()
        let database = PostgresDatabase(primary: testDatabase.configuration(max: 4))
        _ = try await Migrator(pool: database.primary).migrate()
        let result: T
        do {
            result = try await TestRedis.withClient(url: redisURL, { $0.maxReconnectDelay = .milliseconds(100) }) { redis async throws in
                let store = LeaderboardStore(database: database, redis: redis)
                return try await body(Fixture(database: database, redis: redis, store: store, board: .tournament("t-\(UUID().uuidString.prefix(12))")))
            }
        } catch {
            await database.shutdown()
            await testDatabase.drop()
            throw error
        }
        await database.shutdown()
        await testDatabase.drop()
        return result
    }

    static func update(_ board: BoardID, _ user: String, _ score: Int64, at ms: Int64) -> ScoreUpdate {
        ScoreUpdate(board: board, userID: user, score: score, achievedAtMs: ms)
    }

    @Test("best score per user; equal scores rank by who got there first")
    func bestScoreAndTies() async throws {
        try await Self.withStore { f in
            let t0: Int64 = 1_700_000_000_000
            #expect(try await f.store.submit([Self.update(f.board, "alice", 100, at: t0 + 10)]).count == 1)
            #expect(try await f.store.submit([Self.update(f.board, "bob", 100, at: t0)]).count == 1)
            #expect(try await f.store.submit([Self.update(f.board, "carol", 50, at: t0)]).count == 1)
            #expect(try await f.store.submit([Self.update(f.board, "alice", 90, at: t0 + 20)]).isEmpty, "not a new best")
            #expect(try await f.store.submit([Self.update(f.board, "alice", 100, at: t0 + 30)]).isEmpty, "equal but later")
            let page = try await f.store.top(f.board, limit: 10, cursor: "")
            #expect(page.entries.map(\.userID) == ["bob", "alice", "carol"])
            #expect(page.entries.map(\.rank) == [1, 2, 3])
            #expect(page.entries[1].achievedAtMs == t0 + 10)
            #expect(page.total == 3)
            #expect(try await f.store.submit([Self.update(f.board, "carol", 101, at: t0 + 40)]).count == 1)
            let window = try #require(try await f.store.rank(f.board, user: "alice", neighbours: 1))
            #expect(window.entry.rank == 3)
            #expect(window.above.map(\.userID) == ["bob"])
            #expect(window.below.isEmpty)
            #expect(try await f.store.rank(f.board, user: "nobody", neighbours: 5) == nil)
        }
    }

    @Test("Rank from Redis equals Rank from Postgres at the top, at the bottom and among ties")
    func rankWindowsMatchTheTruth() async throws {
        try await Self.withStore { f in
            let scores: [Int64] = [5, 9, 9, 9, 3, 3, 7, 1, 9, 3, 0, -2]
            // Times repeat every 3 users: k2 and k8 tie on score and time (then user id decides).
            try await f.store.submit(scores.indices.map { Self.update(f.board, "k\($0)", scores[$0], at: Int64(1000 + $0 % 3)) })
            for neighbours in [0, 2, 5] {
                for index in scores.indices {
                    let live = try await f.store.rank(f.board, user: "k\(index)", neighbours: neighbours)
                    let truth = try await f.store.rankFromDatabase(f.board, user: "k\(index)", neighbours: neighbours, deadline: nil)
                    #expect(live != nil)
                    #expect(live == truth, "k\(index) with \(neighbours) neighbours")
                }
            }
            // The script, the fallback when the board keeps moving under the plain reads, agrees.
            for index in scores.indices {
                let commands = try await f.store.rankFromRedis(f.board, user: "k\(index)", neighbours: 2)
                let script = try await f.store.rankFromRedis(f.board, user: "k\(index)", neighbours: 2, attempts: 0)
                guard case .answer(let fromCommands) = commands, case .answer(let fromScript) = script else {
                    Issue.record("board not loaded")
                    continue
                }
                #expect(fromCommands == fromScript && fromScript != nil, "k\(index)")
            }
            guard case .answer(nil) = try await f.store.rankFromRedis(f.board, user: "nobody", neighbours: 2, attempts: 0) else {
                Issue.record("a user without a score has no window")
                return
            }
            let first = try #require(try await f.store.rank(f.board, user: "k3", neighbours: 2))
            #expect(first.entry.rank == 1 && first.above.isEmpty && first.below.map(\.userID) == ["k1", "k8"])
            let last = try #require(try await f.store.rank(f.board, user: "k11", neighbours: 2))
            #expect(last.entry.rank == 12 && last.below.isEmpty && last.above.map(\.userID) == ["k7", "k10"])
        }
    }

    @Test("Rank read while scores around the user change is always one consistent window")
    func rankUnderConcurrentWrites() async throws {
        try await Self.withStore { f in
            try await f.store.submit((0..<40).map { Self.update(f.board, "u\($0)", Int64($0 * 10), at: 1000) })
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Others overtake the user one by one: every write shifts the user's rank.
                    for round in 0..<60 {
                        try await f.store.submit([Self.update(f.board, "u\(round % 40)", Int64(400 + round), at: 2000)])
                    }
                }
                for _ in 0..<4 {
                    group.addTask {
                        for _ in 0..<60 {
                            let window = try #require(try await f.store.rank(f.board, user: "u20", neighbours: 3))
                            let all = window.above + [window.entry] + window.below
                            #expect(window.entry.userID == "u20")
                            #expect(all.map(\.rank) == Array(all[0].rank..<(all[0].rank + all.count)), "contiguous ranks")
                            #expect(zip(all, all.dropFirst()).allSatisfy { $0.score >= $1.score }, "best first")
                            #expect(window.above.count == min(3, window.entry.rank - 1))
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    @Test("a batch keeps each user's best of the batch, in one statement")
    func batch() async throws {
        try await Self.withStore { f in
            let improved = try await f.store.submit([
                Self.update(f.board, "u1", 10, at: 1), Self.update(f.board, "u1", 30, at: 2), Self.update(f.board, "u2", 20, at: 3),
            ])
            #expect(Set(improved.map { "\($0.userID):\($0.score)" }) == ["u1:30", "u2:20"])
        }
    }

    @Test("Top pages with a cursor: no repeats or skips when entries above change between pages")
    func pagination() async throws {
        try await Self.withStore { f in
            try await f.store.submit((0..<25).map { Self.update(f.board, "user\($0)", Int64(1000 - $0), at: 1000) })
            let first = try await f.store.top(f.board, limit: 10, cursor: "")
            #expect(first.entries.map(\.userID) == (0..<10).map { "user\($0)" })
            #expect(!first.nextCursor.isEmpty)
            // A newcomer takes the top spot between the pages.
            try await f.store.submit([Self.update(f.board, "newcomer", 5000, at: 2000)])
            let second = try await f.store.top(f.board, limit: 10, cursor: first.nextCursor)
            #expect(second.entries.map(\.userID) == (10..<20).map { "user\($0)" })
            #expect(second.entries.first?.rank == 12, "ranks are current")
            let third = try await f.store.top(f.board, limit: 10, cursor: second.nextCursor)
            #expect(third.entries.map(\.userID) == (20..<25).map { "user\($0)" })
            #expect(third.nextCursor.isEmpty)
            await #expect(throws: RPCError.self) { try await f.store.top(f.board, limit: 10, cursor: "garbage") }
        }
    }

    @Test("a board lost from Redis is rebuilt from Postgres and equals the live one")
    func rebuildEqualsLive() async throws {
        try await Self.withStore { f in
            var updates: [ScoreUpdate] = []
            for index in 0..<500 {
                updates.append(Self.update(f.board, "p\(index % 300)", Int64((index * 7919) % 1000), at: Int64(1_000 + index)))
            }
            try await f.store.submit(updates)
            let live = try await f.store.top(f.board, limit: 1000, cursor: "")
            let keys = f.store.keys(f.board)
            try await f.redis.send(RedisCommand("DEL", keys.z, keys.m, keys.ready))
            let rebuilt = try await f.store.top(f.board, limit: 1000, cursor: "")
            #expect(rebuilt == live)
            #expect(rebuilt.total == 300)
            try await f.store.rebuild(f.board)
            #expect(try await f.store.top(f.board, limit: 1000, cursor: "") == live)
        }
    }

    @Test("a score written while another instance's first load runs is on the board that load makes")
    func writeDuringAnotherInstancesLoad() async throws {
        try await Self.withStore { f in
            let keys = f.store.keys(f.board)
            try await f.store.submit([Self.update(f.board, "alice", 100, at: 1_000)])
            // Another instance loads the board cold and has read alice's row, not yet bob's.
            try await f.redis.send(RedisCommand("DEL", keys.z, keys.m, keys.ready))
            let began = try await f.redis.run(
                LeaderboardScripts.beginLoad, keys: [keys.building, keys.nextZ, keys.nextM, keys.nextRevisions],
                arguments: [RedisArgument(Int64(60_000))])
            #expect(began.int == 1)
            let alice = BoardMember(userID: "alice", achievedAtMs: 1_000)
            try await f.redis.run(LeaderboardScripts.loadChunk, keys: [keys.nextZ, keys.nextM],
                                  arguments: [RedisArgument("alice"), RedisArgument(Int64(100)), RedisArgument(alice.encoded)])
            // bob's score commits; its merge finds the board not loaded and waits for that load.
            let bob = Task { try await f.store.submit([Self.update(f.board, "bob", 200, at: 2_000)]) }
            let staged = try await eventually {
                try await f.redis.send(RedisCommand("HEXISTS", keys.nextM, RedisArgument("bob"))).int == 1
            }
            // The other instance finishes its load (whether or not bob's write reached its copy).
            try await f.redis.run(
                LeaderboardScripts.finishLoad,
                keys: [keys.nextZ, keys.nextM, keys.z, keys.m, keys.ready, keys.building, keys.nextRevisions, keys.revisions],
                arguments: [RedisArgument(Int64(3_600_000)), RedisArgument(UUID().uuidString)])
            _ = try await bob.value
            #expect(staged, "the write went into the copy being loaded")
            let page = try await f.store.top(f.board, limit: 10, cursor: "")
            #expect(page.entries.map(\.userID) == ["bob", "alice"])
        }
    }

    @Test("with Redis down, Top and Rank are answered from Postgres with the same results")
    func readsWithoutRedis() async throws {
        let isolated = try await TestServices.PrivateSet([.redis])
        defer { isolated.destroy() }
        try await Self.withStore(redisURL: isolated.endpoints.redisURL) { f in
            try await f.store.submit((0..<30).map { Self.update(f.board, "r\($0)", Int64($0 % 7), at: Int64(100 + $0)) })
            let livePage = try await f.store.top(f.board, limit: 12, cursor: "")
            let liveSecond = try await f.store.top(f.board, limit: 12, cursor: livePage.nextCursor)
            let liveRank = try await f.store.rank(f.board, user: "r9", neighbours: 3)
            try await isolated.stop(.redis)
            #expect(try await f.store.top(f.board, limit: 12, cursor: "") == livePage)
            #expect(try await f.store.top(f.board, limit: 12, cursor: livePage.nextCursor) == liveSecond)
            let dbRank = try await f.store.rankFromDatabase(f.board, user: "r9", neighbours: 3, deadline: nil)
            #expect(dbRank == liveRank)
            // Writes still commit to the truth; the board is rebuilt once Redis is back.
            #expect(try await f.store.submit([Self.update(f.board, "late", 100, at: 5)]).count == 1)
            try await isolated.start(.redis)
            var top: String?
            for _ in 0..<100 where top != "late" {
                top = try? await f.store.top(f.board, limit: 1, cursor: "").entries.first?.userID
                if top != "late" { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(top == "late")
        }
    }

    @Test("Watch on one instance sees a score submitted on another")
    func watchAcrossInstances() async throws {
        try await Self.withStore { f in
            // A second "instance": its own Redis client, store and subscriber.
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let configuration = try RedisConfiguration(url: TestServices.shared.redisURL)
            let otherRedis = RedisClient(configuration: configuration, group: group)
            let subscriber = RedisSubscriber(configuration: configuration, group: group)
            let other = LeaderboardStore(database: f.database, redis: otherRedis)
            let watch = LeaderboardWatch(store: other, subscriber: subscriber)
            let received = Mutex<[LeaderboardPage]>([])
            let watching = Task {
                try await watch.run(f.board, limit: 3, minInterval: .milliseconds(50)) { page in
                    received.withLock { $0.append(page) }
                }
            }
            #expect(try await eventually { received.withLock { $0.count } == 1 })
            await subscriber.waitUntilSubscribed()
            try await f.store.submit([Self.update(f.board, "w1", 10, at: 1)])
            try await f.store.submit([Self.update(f.board, "w2", 20, at: 2)])
            #expect(try await eventually { received.withLock { $0.last?.entries.map(\.userID) } == ["w2", "w1"] })
            let count = received.withLock { $0.count }
            #expect(count <= 3, "the initial page plus at most one update per change")
            watching.cancel()
            _ = try? await watching.value
            await subscriber.shutdown()
            await otherRedis.shutdown()
            try await group.shutdownGracefully()
        }
    }
}
