import Storage
import TestSupport
import Codec
import Foundation
import Testing

@testable import Domain

/// Latest-score (quiz) boards against real Postgres and Redis: a user's score may go down, and
/// every copy (Redis, a rebuild, a repair, each instance's mirror) ends at the user's newest
/// row, whatever order the writes reach it in.
@Suite("Latest-score boards")
struct LatestBoardTests {
    static func quizBoard() -> BoardID { .quiz("q-\(UUID().uuidString.prefix(12))") }

    /// Writes a user's row as the quiz does, in its own transaction: the score replaced, the
    /// total time as `achieved_at`, the revision taken while the row is locked (the update
    /// branch of the upsert runs under the row's lock), and a pending merge naming the row.
    /// Returns what the quiz hands to `publish` after the commit.
    static func write(_ database: PostgresDatabase, _ board: BoardID, _ user: String, points: Int64, totalTimeMs: Int64) async throws -> RecordedScores {
        try await database.withTransaction { connection in
            let revision = try await connection.query(
                """
                INSERT INTO leaderboard_scores AS s (board, user_id, score, achieved_at, revision)
                VALUES ($1, $2, $3, timestamptz 'epoch' + $4::bigint * interval '1 millisecond', nextval('leaderboard_revisions'))
                ON CONFLICT (board, user_id) DO UPDATE
                  SET score = EXCLUDED.score, achieved_at = EXCLUDED.achieved_at, revision = nextval('leaderboard_revisions')
                RETURNING revision
                """,
                [board.description, user, points, totalTimeMs]).scalar(Int64.self)
            let pendingMerge = try await connection.query(
                "INSERT INTO leaderboard_pending_merges (boards, user_ids) VALUES (ARRAY[$1::text], ARRAY[$2::text]) RETURNING id",
                [board.description, user]).scalar(Int64.self)
            return RecordedScores(
                improved: [ScoreUpdate(board: board, userID: user, score: points, achievedAtMs: totalTimeMs, revision: revision)],
                pendingMerge: pendingMerge)
        }
    }

    static func publish(_ instance: BoardMirrorsTests.Instance, _ database: PostgresDatabase, _ board: BoardID,
                        _ user: String, points: Int64, totalTimeMs: Int64) async throws {
        await instance.store.publish(try await write(database, board, user, points: points, totalTimeMs: totalTimeMs))
    }

    static func topFromRedis(_ instance: BoardMirrorsTests.Instance, _ board: BoardID) async throws -> LeaderboardPage? {
        guard case .answer(let page) = try await instance.store.topFromRedis(board, limit: 100, after: nil) else { return nil }
        return page
    }

    static func revisionInRedis(_ instance: BoardMirrorsTests.Instance, _ board: BoardID, _ user: String) async throws -> Int64? {
        try await instance.redis.send(RedisCommand("HGET", instance.store.keys(board).revisions, RedisArgument(user))).string.flatMap { Int64($0) }
    }

    @Test("a score going down moves the user down in Redis, in every mirror, and stays down after a rebuild")
    func scoreGoesDown() async throws {
        try await BoardMirrorsTests.withInstances { instances, database, _ in
            let (a, b) = (instances[0], instances[1])
            let board = Self.quizBoard()
            let first = try await Self.write(database, board, "ann", points: 5, totalTimeMs: 1000)
            await a.store.publish(first)
            try await Self.publish(a, database, board, "bob", points: 3, totalTimeMs: 1000)
            try await Self.publish(a, database, board, "dan", points: 3, totalTimeMs: 800)
            #expect(try await a.mirror(board, user: "ann"))
            #expect(try await b.mirror(board, user: "ann"))

            let lowered = try await Self.write(database, board, "ann", points: 2, totalTimeMs: 900)
            await a.store.publish(lowered)
            let expected = [LeaderboardEntry(rank: 1, userID: "dan", score: 3, achievedAtMs: 800),
                            LeaderboardEntry(rank: 2, userID: "bob", score: 3, achievedAtMs: 1000),
                            LeaderboardEntry(rank: 3, userID: "ann", score: 2, achievedAtMs: 900)]
            #expect(try await Self.topFromRedis(a, board)?.entries == expected, "lower total time first among equal points")
            #expect(try await a.store.rank(board, user: "ann", neighbours: 1)?.entry == expected[2])
            #expect(try await a.store.rankFromDatabase(board, user: "ann", neighbours: 1, deadline: nil)?.entry == expected[2])
            #expect(try await a.fromMirror(board, "ann")??.entry == expected[2], "the writer's mirror at once")
            #expect(try await eventually { try await b.fromMirror(board, "ann")??.entry == expected[2] }, "the other's by announcement")

            try await a.store.rebuild(board)
            #expect(try await Self.topFromRedis(a, board)?.entries == expected)
            #expect(try await Self.revisionInRedis(a, board, "ann") == lowered.improved[0].revision)
            // The rebuild loaded the revisions too: the first write, arriving late, changes nothing.
            await b.store.publish(first)
            #expect(try await Self.topFromRedis(a, board)?.entries == expected)
            for instance in instances {
                #expect(try await eventually {
                    _ = try await instance.store.rank(board, user: "ann", neighbours: 0)  // asks for the mirror again
                    return try await instance.fromMirror(board, "ann")??.entry == expected[2]
                })
            }
        }
    }

    @Test("two writes of one user published out of order: the newer stays in Redis and in every mirror")
    func publishedOutOfOrder() async throws {
        try await BoardMirrorsTests.withInstances { instances, database, _ in
            let (a, b) = (instances[0], instances[1])
            let board = Self.quizBoard()
            try await Self.publish(a, database, board, "bob", points: 6, totalTimeMs: 100)
            #expect(try await a.mirror(board, user: "bob"))
            #expect(try await b.mirror(board, user: "bob"))
            let older = try await Self.write(database, board, "ann", points: 9, totalTimeMs: 1000)
            let newer = try await Self.write(database, board, "ann", points: 4, totalTimeMs: 1200)
            await a.store.publish(newer)
            await b.store.publish(older)
            let ann = LeaderboardEntry(rank: 2, userID: "ann", score: 4, achievedAtMs: 1200)
            #expect(try await Self.topFromRedis(a, board)?.entries.last == ann)
            #expect(try await Self.revisionInRedis(a, board, "ann") == newer.improved[0].revision)
            for instance in instances {
                #expect(try await eventually { try await instance.fromMirror(board, "ann")??.entry == ann })
            }
            #expect(try await b.fromMirror(board, "ann")??.entry == ann, "the older write reached no mirror")
        }
    }

    @Test("a lost merge of a lower score is read from Postgres, then repaired into Redis and every mirror, once")
    func repairOfALostMerge() async throws {
        try await BoardMirrorsTests.withInstances(boards: LeaderboardRepairTests.boards()) { instances, database, _ in
            let (a, b) = (instances[0], instances[1])
            let board = Self.quizBoard()
            try await Self.publish(a, database, board, "ann", points: 8, totalTimeMs: 500)
            try await Self.publish(a, database, board, "bob", points: 5, totalTimeMs: 500)
            #expect(await a.store.sweep() == 0, "deletes the confirmed merges")
            #expect(try await a.mirror(board, user: "ann"))
            #expect(try await b.mirror(board, user: "ann"))

            _ = try await Self.write(database, board, "ann", points: 1, totalTimeMs: 700)  // the writer dies before publishing
            #expect(try await LeaderboardRepairTests.scoreInRedis(b, board, "ann") == 8)
            #expect(try await b.store.readBoardsBehind() == [board])
            #expect(try await b.store.rank(board, user: "ann", neighbours: 0)?.entry.score == 1, "from Postgres")

            #expect(try await b.store.repairOverdue() == 1)
            #expect(try await b.store.readBoardsBehind().isEmpty)
            let ann = LeaderboardEntry(rank: 2, userID: "ann", score: 1, achievedAtMs: 700)
            #expect(try await Self.topFromRedis(b, board)?.entries.last == ann)
            for instance in instances {
                #expect(try await eventually { try await instance.fromMirror(board, "ann")??.entry == ann })
            }
            // Merging the row again (a second repair of a row whose delete was lost) changes nothing.
            let version = try await b.redis.send(RedisCommand("GET", b.store.keys(board).version)).int
            let row = try await database.withConnection { connection in
                try await PendingMerges.currentScores(of: PendingMerges.Claim(ids: [], boards: [board.description], users: ["ann"]), on: connection)
            }
            let revision = try await Self.revisionInRedis(b, board, "ann")
            #expect(revision != nil)
            #expect(row == [ScoreUpdate(board: board, userID: "ann", score: 1, achievedAtMs: 700, revision: revision)])
            try await b.store.merge(row)
            #expect(try await b.redis.send(RedisCommand("GET", b.store.keys(board).version)).int == version)
        }
    }

    @Test("a rebuild that read a user's older row before a live write keeps the live write, loaded or not", arguments: [true, false])
    func rebuildReadsAnOlderRow(boardWasLoaded: Bool) async throws {
        try await BoardMirrorsTests.withInstances(count: 1) { instances, database, _ in
            let a = instances[0]
            let board = Self.quizBoard()
            let keys = a.store.keys(board)
            let stale = try await Self.write(database, board, "ann", points: 9, totalTimeMs: 100)
            await a.store.publish(stale)
            if !boardWasLoaded { try await a.redis.send(RedisCommand("DEL", keys.z, keys.m, keys.revisions, keys.ready)) }
            // A rebuild, by hand, that reads ann's row before her next write commits...
            let started = try await a.redis.run(
                LeaderboardScripts.beginLoad, keys: [keys.building, keys.nextZ, keys.nextM, keys.nextRevisions], arguments: [RedisArgument(60_000)])
            #expect(started.int == 1)
            // ...the write commits and is published (on an unloaded board it then waits for the rebuild)...
            let newer = try await Self.write(database, board, "ann", points: 2, totalTimeMs: 300)
            let publishing = Task { await a.store.publish(newer) }
            #expect(try await eventually {
                try await a.redis.send(RedisCommand("HGET", keys.nextRevisions, "ann")).string == newer.improved[0].revision.map { String($0) }
            }, "a rebuild under way gets the live write")
            // ...and only then loads the row it read.
            let old = stale.improved[0]
            try await a.redis.run(LeaderboardScripts.loadLatestChunk, keys: [keys.nextZ, keys.nextM, keys.nextRevisions], arguments: [
                RedisArgument("ann"), RedisArgument(old.score), RedisArgument(old.member.encoded), RedisArgument(old.revision ?? 0),
            ])
            try await a.redis.run(
                LeaderboardScripts.finishLoad,
                keys: [keys.nextZ, keys.nextM, keys.z, keys.m, keys.ready, keys.building, keys.nextRevisions, keys.revisions],
                arguments: [RedisArgument(60_000), RedisArgument(UUID().uuidString)])
            await publishing.value
            #expect(try await Self.topFromRedis(a, board)?.entries == [LeaderboardEntry(rank: 1, userID: "ann", score: 2, achievedAtMs: 300)])
        }
    }

    @Test("rebuilds racing with writes on another instance end at every user's latest row")
    func rebuildsRacingWithWrites() async throws {
        var boards = LeaderboardStore.Configuration.defaults
        boards.loadChunk = 3  // many chunks: live writes land between them
        try await BoardMirrorsTests.withInstances(boards: boards) { instances, database, _ in
            let (a, b) = (instances[0], instances[1])
            let board = Self.quizBoard()
            let users = (0..<12).map { "u\($0)" }
            for user in users { try await Self.publish(a, database, board, user, points: 1000, totalTimeMs: 0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Every write lowers a user's score, so Redis never shows a score going up
                    // (read after every write): a rebuild that swapped in a row older than a
                    // live write would, until the user's next write.
                    var seen: [String: Int64] = [:]
                    for round in 1...25 {
                        for (index, user) in users.enumerated() {
                            try await Self.publish(a, database, board, user, points: Int64(1000 - round * 10 - index), totalTimeMs: Int64(round))
                            for entry in try await Self.topFromRedis(a, board)?.entries ?? [] {
                                #expect(entry.score <= seen[entry.userID] ?? .max, "\(entry.userID) went back up")
                                seen[entry.userID] = entry.score
                            }
                        }
                    }
                }
                group.addTask {
                    for _ in 0..<40 { try await b.store.rebuild(board) }
                }
                try await group.waitForAll()
            }
            let truth = try await a.store.topFromDatabase(board, limit: 100, after: nil, deadline: nil)
            #expect(truth.entries.map(\.score) == users.indices.map { Int64(1000 - 250 - $0) })
            #expect(try await Self.topFromRedis(a, board) == truth)
            #expect(try await eventually { try await a.topFromMirror(board, limit: 100, after: nil) == truth })
        }
    }

    @Test("the best-score write API refuses latest-score boards, writing nothing")
    func submitRefusesLatestBoards() async throws {
        try await LeaderboardStoreTests.withStore { f in
            let board = Self.quizBoard()
            let update = ScoreUpdate(board: board, userID: "ann", score: 5, achievedAtMs: 1)
            let submitted = await #expect(throws: RPCError.self) {
                try await f.store.submit([ScoreUpdate(board: .global, userID: "bob", score: 5, achievedAtMs: 1), update])
            }
            #expect(submitted?.code == .invalidArgument)
            #expect(submitted?.message.contains("QuizService") == true)
            let recorded = await #expect(throws: RPCError.self) {
                try await f.database.withTransaction { try await LeaderboardStore.record([update], on: $0) }
            }
            #expect(recorded?.code == .invalidArgument)
            let rows = try await f.database.primary.query("SELECT count(*) FROM leaderboard_scores").scalar(Int64.self)
            #expect(rows == 0)
        }
    }
}
