import Storage
import TestSupport
import Foundation
import NIOPosix
import Testing

@testable import Domain

/// Mirrors against a real Redis and Postgres: two "instances" (their own loops, Redis
/// clients, subscribers, mirrors and stores) share one board.
@Suite("Board mirrors")
struct BoardMirrorsTests {
    /// One instance: a store whose `Rank` is answered by its running mirrors.
    struct Instance {
        let group: MultiThreadedEventLoopGroup
        let redis: RedisClient
        let subscriber: RedisSubscriber
        let mirrors: BoardMirrors
        let store: LeaderboardStore
        let running: Task<Void, any Error>

        init(database: PostgresDatabase, redisURL: String, maxUsers: Int, maxBoards: Int,
             boards: LeaderboardStore.Configuration = .defaults) throws {
            group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            var configuration = try RedisConfiguration(url: redisURL)
            configuration.maxReconnectDelay = .milliseconds(100)
            redis = RedisClient(configuration: configuration, group: group)
            subscriber = RedisSubscriber(configuration: configuration, group: group)
            var mirroring = BoardMirrors.Configuration.defaults
            mirroring.maxUsers = maxUsers
            mirroring.maxBoards = maxBoards
            mirroring.pollInterval = .milliseconds(50)
            mirroring.loadChunk = 64  // many pages even for small boards
            mirroring.namespace = boards.namespace
            mirrors = BoardMirrors(redis: redis, subscriber: subscriber, configuration: mirroring)
            store = LeaderboardStore(database: database, redis: redis, mirrors: mirrors, configuration: boards)
            running = Task { [mirrors] in try await mirrors.run() }
        }

        /// Reads once (which asks for the mirror), then waits until the mirror answers.
        func mirror(_ board: BoardID, user: String) async throws -> Bool {
            _ = try await store.rank(board, user: user, neighbours: 0)
            return try await eventually { mirrors.isAnswering(board) }
        }

        /// The mirror's own answer, once it answers (nil if it never did): on a loaded
        /// machine a check can come late, and then the mirror waits for the next one.
        func fromMirror(_ board: BoardID, _ user: String, neighbours: Int = 0) async throws -> RankWindow?? {
            try await answer { mirrors.rank(board, user: user, neighbours: neighbours) }
        }

        func topFromMirror(_ board: BoardID, limit: Int, after cursor: LeaderboardCursor?) async throws -> LeaderboardPage? {
            try await answer { mirrors.top(board, limit: limit, after: cursor) }
        }

        private func answer<Answer>(_ read: () -> LeaderboardStore.BoardReply<Answer>) async throws -> Answer? {
            var found: Answer?
            _ = try await eventually {
                guard case .answer(let answer) = read() else { return false }  // a dropped mirror is asked for again
                found = answer
                return true
            }
            return found
        }

        func shutdown() async throws {
            running.cancel()
            _ = try? await running.value
            await subscriber.shutdown()
            await redis.shutdown()
            try await group.shutdownGracefully()
        }
    }

    static func withInstances(
        count: Int = 2, maxUsers: Int = 10_000, maxBoards: Int = 100, redisURL: String = TestServices.shared.redisURL,
        boards: LeaderboardStore.Configuration = .defaults, _ body: ([Instance], PostgresDatabase, BoardID) async throws -> Void
    ) async throws {
        let testDatabase = try await TestDatabase.create()
        let database = PostgresDatabase(primary: testDatabase.configuration(max: 4))
        _ = try await Migrator(pool: database.primary).migrate()
        let instances = try (0..<count).map { _ in try Instance(database: database, redisURL: redisURL, maxUsers: maxUsers, maxBoards: maxBoards, boards: boards) }
        var failure: (any Error)?
        do {
            try await body(instances, database, .tournament("m-\(UUID().uuidString.prefix(12))"))
        } catch {
            failure = error
        }
        for instance in instances { try await instance.shutdown() }
        await database.shutdown()
        await testDatabase.drop()
        if let failure { throw failure }
    }

    static func update(_ board: BoardID, _ user: String, _ score: Int64, at ms: Int64) -> ScoreUpdate {
        ScoreUpdate(board: board, userID: user, score: score, achievedAtMs: ms)
    }

    @Test("a mirrored board answers Rank as Redis does, for every user, at every width")
    func answersAsRedis() async throws {
        try await Self.withInstances(count: 1) { instances, _, board in
            let a = instances[0]
            // Ties on score and time, so the user id decides among them (as Redis orders members).
            try await a.store.submit((0..<300).map { Self.update(board, "p\($0 * 7919 % 300)", Int64($0 % 9), at: Int64(1000 + $0 % 4)) })
            #expect(try await a.mirror(board, user: "p1"))
            for neighbours in [0, 3, 50] {
                for index in 0..<300 {
                    let user = "p\(index)"
                    guard case .answer(let redis) = try await a.store.rankFromRedis(board, user: user, neighbours: neighbours) else {
                        Issue.record("board not loaded in Redis")
                        return
                    }
                    #expect(try await a.fromMirror(board, user, neighbours: neighbours) == .some(redis), "\(user), \(neighbours) neighbours")
                }
            }
            #expect(try await a.fromMirror(board, "nobody") == .some(nil), "no score: answered, as NOT_FOUND")
            let statistics = a.store.mirrorStatistics
            #expect(statistics.entries == 300 && statistics.hits >= 900)
        }
    }

    @Test("a mirrored board pages Top as Redis does, also after a cursor whose entry moved", arguments: [1, 7, 50, 1000])
    func topAsRedis(limit: Int) async throws {
        try await Self.withInstances(count: 1) { instances, _, board in
            let a = instances[0]
            try await a.store.submit((0..<120).map { Self.update(board, "p\($0 * 37 % 120)", Int64($0 % 7), at: Int64(1000 + $0 % 3)) })
            #expect(try await a.mirror(board, user: "p1"))
            func pages(movingTheFirstCursor: Bool) async throws -> Int {
                var cursor: LeaderboardCursor?
                var seen = 0
                while true {
                    guard case .answer(let redis) = try await a.store.topFromRedis(board, limit: limit, after: cursor),
                        let mirror = try await a.topFromMirror(board, limit: limit, after: cursor)
                    else {
                        Issue.record("not answered")
                        return seen
                    }
                    #expect(mirror == redis, "page from \(seen)")
                    seen += redis.entries.count
                    if movingTheFirstCursor, seen == limit, let last = redis.entries.last {
                        // The cursor's own entry moves to the top before the next page.
                        try await a.store.submit([Self.update(board, last.userID, 100, at: 1)])
                    }
                    guard !redis.nextCursor.isEmpty else { return seen }
                    cursor = LeaderboardCursor(encoded: redis.nextCursor)
                }
            }
            #expect(try await pages(movingTheFirstCursor: false) == 120)
            _ = try await pages(movingTheFirstCursor: true)
        }
    }

    @Test("a writer reads its own improvement at once; another instance's mirror follows the announcement")
    func followsImprovements() async throws {
        try await Self.withInstances { instances, _, board in
            let (a, b) = (instances[0], instances[1])
            try await a.store.submit((0..<50).map { Self.update(board, "u\($0)", Int64($0), at: 1000) })
            #expect(try await a.mirror(board, user: "u1"))
            #expect(try await b.mirror(board, user: "u1"))
            let improved = try await a.store.submit([Self.update(board, "u3", 500, at: 2000)])
            #expect(improved.count == 1)
            #expect(try await a.fromMirror(board, "u3")??.entry.rank == 1, "applied on the writer before submit returned")
            #expect(try await eventually { try await b.fromMirror(board, "u3")??.entry.rank == 1 })
            // Many writers at once, on both instances: the mirrors end equal to Redis.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, instance) in instances.enumerated() {
                    group.addTask {
                        for round in 0..<40 {
                            try await instance.store.submit([Self.update(board, "u\((round * 3 + index) % 50)", Int64(100 + round * 2 + index), at: 3000)])
                        }
                    }
                }
                try await group.waitForAll()
            }
            for instance in instances {
                for index in 0..<50 {
                    guard case .answer(let redis) = try await a.store.rankFromRedis(board, user: "u\(index)", neighbours: 2) else { return }
                    #expect(try await eventually { try await instance.fromMirror(board, "u\(index)", neighbours: 2) == .some(redis) }, "u\(index)")
                }
            }
        }
    }

    @Test("an improvement merged without its announcement is noticed, and the board loaded again")
    func lostAnnouncement() async throws {
        try await Self.withInstances(count: 1) { instances, _, board in
            let a = instances[0]
            try await a.store.submit((0..<20).map { Self.update(board, "u\($0)", Int64($0), at: 1000) })
            #expect(try await a.mirror(board, user: "u1"))
            // A writer that died between its merge and its announcement: Redis has the score
            // and a new version, no instance heard of it.
            let keys = a.store.keys(board)
            let member = BoardMember(userID: "ghost", achievedAtMs: 5).encoded
            let version = try await a.redis.run(
                LeaderboardScripts.submit, keys: [keys.z, keys.m, keys.ready, keys.building, keys.nextZ, keys.nextM, keys.version],
                arguments: [RedisArgument("ghost"), RedisArgument(999), RedisArgument(member)])
            #expect((version.int ?? 0) > 0)
            #expect(try await eventually { try await a.fromMirror(board, "ghost")??.entry.score == 999 })
            #expect(try await a.fromMirror(board, "u19")??.entry.rank == 2)
        }
    }

    @Test("a board rebuilt from a different truth is loaded again on every instance")
    func rebuilt() async throws {
        try await Self.withInstances { instances, database, board in
            let (a, b) = (instances[0], instances[1])
            try await a.store.submit((0..<30).map { Self.update(board, "u\($0)", Int64($0), at: 1000) })
            #expect(try await a.mirror(board, user: "u1"))
            #expect(try await b.mirror(board, user: "u1"))
            _ = try await database.withConnection { try await $0.query("DELETE FROM leaderboard_scores WHERE board = $1 AND user_id = 'u29'", [board.description]) }
            try await a.store.rebuild(board)
            for instance in instances {
                #expect(try await eventually {
                    _ = try await instance.store.rank(board, user: "u0", neighbours: 0)  // asks for the mirror again
                    let gone = try await instance.fromMirror(board, "u29") == .some(nil)
                    let top = try await instance.fromMirror(board, "u28")??.entry.rank == 1
                    return gone && top
                })
            }
        }
    }

    @Test("no more boards are mirrored than the limit; the others' Rank answers from Redis")
    func boardLimit() async throws {
        try await Self.withInstances(count: 1, maxBoards: 2) { instances, _, board in
            let a = instances[0]
            let boards = [board] + (1...3).map { BoardID.tournament("m-\(UUID().uuidString.prefix(8))-\($0)") }
            for other in boards { try await a.store.submit([Self.update(other, "u", 1, at: 1)]) }
            #expect(try await a.mirror(boards[0], user: "u"))
            #expect(try await a.mirror(boards[1], user: "u"))
            for other in boards[2...] {
                #expect(try await a.store.rank(other, user: "u", neighbours: 0)?.entry.rank == 1)
                // A read asks for its board's load before it answers: refused, nothing loads.
                let load = a.mirrors.loadState(of: other)
                #expect(!load.loading && load.retryAt == nil, "\(other)")
            }
            #expect(boards.map { a.mirrors.isAnswering($0) } == [true, true, false, false])
        }
    }

    @Test("a board larger than the budget is not mirrored, and Rank still answers from Redis")
    func overBudget() async throws {
        try await Self.withInstances(count: 1, maxUsers: 10) { instances, _, board in
            let a = instances[0]
            try await a.store.submit((0..<40).map { Self.update(board, "u\($0)", Int64($0), at: 1000) })
            let asked = ContinuousClock.now
            #expect(try await a.store.rank(board, user: "u39", neighbours: 1)?.entry.rank == 1)
            // The load that read asked for ends refused: put off for `retryAfter` (a board
            // missing from Redis would be tried again after `retrySoon`, far sooner).
            var load = a.mirrors.loadState(of: board)
            #expect(try await eventually(attempts: 1500) {
                load = a.mirrors.loadState(of: board)
                return !load.loading && load.retryAt != nil
            })
            let retryAt = try #require(load.retryAt)
            #expect(retryAt >= asked + a.mirrors.configuration.retryAfter)
            #expect(!a.mirrors.isAnswering(board))
            #expect(a.store.mirrorStatistics.entries == 0)
            for _ in 0..<4 {
                #expect(try await a.store.rank(board, user: "u39", neighbours: 1)?.entry.rank == 1)
            }
            #expect(a.store.mirrorStatistics.misses >= 5)
        }
    }

    @Test("with Redis unreachable a mirror stops answering within its freshness, and Rank comes from Postgres")
    func redisDown() async throws {
        let isolated = try await TestServices.PrivateSet([.redis])
        defer { isolated.destroy() }
        try await Self.withInstances(count: 1, redisURL: isolated.endpoints.redisURL) { instances, _, board in
            let a = instances[0]
            try await a.store.submit((0..<20).map { Self.update(board, "u\($0)", Int64($0), at: 1000) })
            #expect(try await a.mirror(board, user: "u1"))
            let live = try await a.store.rank(board, user: "u5", neighbours: 2)
            try await isolated.stop(.redis)
            #expect(try await eventually { !a.mirrors.isAnswering(board) })
            #expect(try await a.store.rank(board, user: "u5", neighbours: 2) == live, "from Postgres, the same")
            try await isolated.start(.redis)
            #expect(try await eventually { a.mirrors.isAnswering(board) }, "checks pass again: the board did not change")
        }
    }
}
