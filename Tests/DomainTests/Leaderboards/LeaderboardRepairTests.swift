import Storage
import TestSupport
import Codec
import Foundation
import Testing

@testable import Domain
import Units

/// Boards whose Redis copy missed committed improvements (`leaderboard_pending_merges`): every
/// instance learns it from Postgres, reads such a board from Postgres, and repairs it, whoever
/// wrote the scores and whether or not it survived. Real Postgres and Redis, two "instances".
@Suite("Leaderboard repair")
struct LeaderboardRepairTests {
    /// A namespace of the test's own (the global board is shared by every test on the Redis).
    static func boards(repairAfter: Duration = .zero) -> LeaderboardStore.Configuration {
        var boards = LeaderboardStore.Configuration.defaults
        boards.namespace = "lb-\(UUID().uuidString.prefix(8))"
        boards.repairAfter = repairAfter
        return boards
    }

    static func gameEnded(_ id: String, user: String, score: Int64) -> Tally_V1_Event {
        var event = Tally_V1_Event()
        event.id = id
        event.type = "game_ended"
        event.userId = user
        event.score = score
        event.clientTimeMs = 1_764_000_000_000
        return event
    }

    static func pendingMerges(_ database: PostgresDatabase) async throws -> Int64 {
        try await database.primary.query("SELECT count(*) FROM leaderboard_pending_merges").scalar(Int64.self)
    }

    /// The user's score in the board's sorted set, read from Redis itself.
    static func scoreInRedis(_ instance: BoardMirrorsTests.Instance, _ board: BoardID, _ user: String) async throws -> Int64? {
        guard case .answer(let window) = try await instance.store.rankFromRedis(board, user: user, neighbours: 0) else { return nil }
        return window?.entry.score
    }

    /// The mirror's answer now (nil when it does not answer).
    static func scoreInMirror(_ instance: BoardMirrorsTests.Instance, _ board: BoardID, _ user: String) -> Int64? {
        guard case .answer(let window) = instance.mirrors.rank(board, user: user, neighbours: 0) else { return nil }
        return window?.entry.score
    }

    @Test("a worker that dies between its commit and its merge: another instance reads the board from Postgres, then repairs Redis and every mirror")
    func workerDiedBetweenCommitAndMerge() async throws {
        try await BoardMirrorsTests.withInstances(boards: Self.boards()) { instances, database, _ in
            let (worker, other) = (instances[0], instances[1])
            _ = try await EventPartitions(pool: database.primary).maintain()
            let users = (0..<8).map { "p\($0)" }
            try await worker.store.submit(users.indices.map { ScoreUpdate(board: .global, userID: users[$0], score: Int64(10 + $0), achievedAtMs: 1000) })
            #expect(try await Self.pendingMerges(database) == 1, "kept until the next sweep")
            #expect(await worker.store.sweep() == 0, "nothing to repair")
            #expect(try await Self.pendingMerges(database) == 0, "the writer confirmed its merge, and its sweep deleted it")
            #expect(try await worker.mirror(.global, user: "p0"))
            #expect(try await other.mirror(.global, user: "p0"))

            // The worker's job up to its commit, as EventProcessor.process runs it; the worker
            // dies there, before `publish`.
            let outcome = try await database.withTransaction { connection in
                try await EventStore.persist(users.map { Self.gameEnded("died-\($0)", user: $0, score: 1000 + Int64($0.count)) },
                                             receivedAtMs: Date().unixMilliseconds,
                                             rollups: EventRollups(configuration: .defaults, activeUsers: nil), on: connection)
            }
            #expect(outcome.scores.improved.count == users.count)
            #expect(try await Self.scoreInRedis(other, .global, "p3") == 13, "Redis missed the committed scores")
            #expect(Self.scoreInMirror(other, .global, "p3") == 13)

            // Any instance learns from Postgres that the board is behind: its answers come from
            // the truth, not from its mirror, while Redis still holds the old copy.
            #expect(try await other.store.readBoardsBehind() == [.global])
            let mirrorHits = other.store.mirrorStatistics.hits
            #expect(try await other.store.rank(.global, user: "p3", neighbours: 0)?.entry.score == 1002)
            #expect(try await other.store.top(.global, limit: 1, cursor: "").entries.first?.score == 1002)
            #expect(other.store.mirrorStatistics.hits == mirrorHits, "no mirror answered a board known to be behind")

            // The repair merges the truth into Redis; every instance's mirror follows it.
            #expect(try await other.store.repairOverdue() == 1)
            #expect(try await other.store.readBoardsBehind().isEmpty)
            #expect(try await Self.pendingMerges(database) == 0)
            for user in users {
                #expect(try await Self.scoreInRedis(other, .global, user) == 1002)
                #expect(try await eventually { Self.scoreInMirror(other, .global, user) == 1002 }, "\(user) on the repairing instance")
                #expect(try await eventually { Self.scoreInMirror(worker, .global, user) == 1002 }, "\(user) on the other instance")
                #expect(try await other.store.rank(.global, user: user, neighbours: 0)?.entry.score == 1002)
            }
            #expect(other.store.mirrorStatistics.hits > mirrorHits, "the repaired board is answered from the mirror again")
        }
    }

    @Test("a merge that fails after its commit: the writer reads the board from Postgres at once, and the sweep repairs it once Redis is back")
    func mergeFailedWhileRedisDown() async throws {
        let isolated = try await TestServices.PrivateSet([.redis])
        defer { isolated.destroy() }
        try await BoardMirrorsTests.withInstances(count: 1, redisURL: isolated.endpoints.redisURL, boards: Self.boards()) { instances, database, board in
            let a = instances[0]
            try await a.store.submit((0..<5).map { ScoreUpdate(board: board, userID: "u\($0)", score: Int64($0), achievedAtMs: 1000) })
            #expect(try await a.mirror(board, user: "u0"))
            try await isolated.stop(.redis)
            #expect(try await a.store.submit([ScoreUpdate(board: board, userID: "u0", score: 50, achievedAtMs: 2000)]).count == 1)
            #expect(a.store.behind.contains(board), "known behind here at once")
            #expect(try await a.store.rank(board, user: "u0", neighbours: 0)?.entry.score == 50, "from Postgres")
            await a.store.sweep()  // Redis still down: nothing can be repaired
            #expect(try await Self.pendingMerges(database) == 1)
            #expect(a.store.behind.contains(board))

            try await isolated.start(.redis)
            #expect(try await eventually {
                await a.store.sweep()
                return try await Self.pendingMerges(database) == 0
            })
            #expect(!a.store.behind.contains(board))
            #expect(try await Self.scoreInRedis(a, board, "u0") == 50)
            #expect(try await eventually { Self.scoreInMirror(a, board, "u0") == 50 })
            #expect(try await a.store.rank(board, user: "u0", neighbours: 1)?.entry.rank == 1)
        }
    }

    @Test("until the first sweep nothing is known; a merge missed here counts until a sweep after its row came due")
    func whatCountsAsBehind() {
        let behind = BoardsBehind(repairAfter: .seconds(2))
        let board = BoardID.tournament("t1")
        #expect(!behind.contains(board), "no repair running: only what this instance saw")
        behind.awaitFirstSweep()
        #expect(behind.contains(board) && behind.contains(.global))
        let t0 = ContinuousClock.now
        behind.swept(overdue: [], started: t0)
        #expect(!behind.contains(board) && !behind.contains(.global))
        behind.missed([board], at: t0)
        behind.swept(overdue: [], started: t0 + .seconds(1))
        #expect(behind.contains(board), "its row was not due yet, so Postgres' answer does not cover it")
        behind.swept(overdue: nil, started: t0 + .seconds(3))
        #expect(behind.contains(board), "a sweep that could not read Postgres forgets nothing")
        behind.swept(overdue: [board], started: t0 + .seconds(3))
        #expect(behind.contains(board) && !behind.contains(.global))
        behind.swept(overdue: [], started: t0 + .seconds(4))
        #expect(!behind.contains(board), "repaired")
    }
}
