import Storage
import TestSupport
import Codec
import Foundation
import NIOPosix
import Testing

@testable import Domain
import Units

/// Events from ingestion to Postgres and leaderboards, against real services.
@Suite("Event pipeline")
struct EventPipelineTests {
    struct Fixture {
        let database: PostgresDatabase
        let redis: RedisClient
        let leaderboards: LeaderboardStore
        let ingestor: EventIngestor
        let processor: EventProcessor
        let queue: JobQueue
        /// This test's own HyperLogLog keys.
        let activeUsers: ActiveUsers
    }

    static func withPipeline<T>(
        redisURL: String = TestServices.shared.redisURL,
        _ adjust: (inout EventIngestor.Configuration) -> Void = { _ in },
        rollups: EventRollups.Configuration = .defaults,
        _ body: (Fixture) async throws -> T
    ) async throws -> T {
        let testDatabase = try await TestDatabase.create()
        let database = PostgresDatabase(primary: testDatabase.configuration(max: 6))
        do {
            _ = try await Migrator(pool: database.primary).migrate()
            _ = try await EventPartitions(pool: database.primary).maintain()
            let result = try await TestRedis.withClient(url: redisURL, { $0.maxReconnectDelay = .milliseconds(100) }) { redis async throws in
                var boards = LeaderboardStore.Configuration.defaults
                boards.namespace = "lb-\(UUID().uuidString.prefix(8))"
                let leaderboards = LeaderboardStore(database: database, redis: redis, configuration: boards)
                let queue = JobQueue(name: "events-\(UUID().uuidString.prefix(8))", redis: redis)
                var configuration = EventIngestor.Configuration.defaults
                adjust(&configuration)
                let activeUsers = ActiveUsers(redis: redis, retentionDays: rollups.retentionDays, namespace: "hll-\(UUID().uuidString.prefix(8))")
                let eventRollups = EventRollups(configuration: rollups, activeUsers: activeUsers)
                let ingestor = EventIngestor(
                    queue: queue, database: database, leaderboards: leaderboards, rollups: eventRollups,
                    limiter: RateLimiter(redis: redis, keyPrefix: "rl-\(UUID().uuidString.prefix(8))"), configuration: configuration)
                return try await body(Fixture(
                    database: database, redis: redis, leaderboards: leaderboards, ingestor: ingestor,
                    processor: EventProcessor(database: database, leaderboards: leaderboards, rollups: eventRollups), queue: queue,
                    activeUsers: activeUsers))
            }
            await database.shutdown()
            await testDatabase.drop()
            return result
        } catch {
            await database.shutdown()
            await testDatabase.drop()
            throw error
        }
    }

    static func event(_ id: String, _ type: String = "app_launched", user: String = "u1", score: Int64 = 0, tournament: String = "") -> Tally_V1_Event {
        var event = Tally_V1_Event()
        event.id = id
        event.type = type
        event.userId = user
        event.clientTimeMs = Date().unixMilliseconds
        event.score = score
        event.tournamentId = tournament
        event.attributes = ["platform": "ios"]
        return event
    }

    /// Runs the worker until the queue is drained.
    static func drain(_ f: Fixture) async throws {
        let worker = f.processor.worker(queue: f.queue, configuration: .init(concurrency: 4, batchSize: 10, pollInterval: .milliseconds(5), drainTimeout: .seconds(5)))
        let running = Task { try await worker.run() }
        _ = try await eventually {
            let stats = try await f.queue.stats()
            return stats.waiting == 0 && stats.active == 0 && stats.delayed == 0
        }
        worker.stop()
        try await running.value
    }

    static func storedCount(_ f: Fixture) async throws -> Int64 {
        try await f.database.withConnection { try await $0.query("SELECT count(*) FROM events").scalar(Int64.self) }
    }

    @Test("accepted events are queued, persisted once, and game_ended scores reach the boards")
    func endToEnd() async throws {
        try await Self.withPipeline { f in
            let first = try await f.ingestor.ingest([
                Self.event("e1"), Self.event("e2", "game_ended", user: "ann", score: 700), Self.event("e1"),
            ], peer: "test")
            #expect(first.accepted == ["e1", "e2"])
            #expect(first.duplicates.isEmpty)
            let resend = try await f.ingestor.ingest([Self.event("e2", "game_ended", user: "ann", score: 700), Self.event("e3")], peer: "test")
            #expect(resend.accepted == ["e3"])
            #expect(resend.duplicates == ["e2"])
            try await Self.drain(f)
            #expect(try await Self.storedCount(f) == 3)
            let top = try await f.leaderboards.top(.global, limit: 10, cursor: "")
            #expect(top.entries.map(\.userID) == ["ann"])
            #expect(top.entries.first?.score == 700)
            let recent = try await RecentEvents(database: f.database).list(limit: 10, user: nil, type: nil)
            #expect(Set(recent.compactMap { $0.event?.id }) == ["e1", "e2", "e3"])
            #expect(recent.allSatisfy { $0.state == .processed })
            #expect(recent.first { $0.event?.id == "e1" }?.event?.attributes == ["platform": "ios"])
        }
    }

    @Test("attributes with JSON's special characters are stored and read back exactly")
    func attributesRoundTrip() async throws {
        let attributes = [
            "quote\"d": "say \"hi\"", "back\\slash": "C:\\tmp\\", "lines": "a\nb\r\nc\td", "control": "\u{1}\u{1f}\u{7f}",
            "slash/": "</script>", "unicode": "Zoë ✓ 🎮 日本", "empty": "",
        ]
        try await Self.withPipeline { f in
            var event = Self.event("attrs")
            event.attributes = attributes
            let outcome = try await f.ingestor.ingest([event], peer: "test")
            #expect(outcome.accepted == ["attrs"])
            try await Self.drain(f)
            let recent = try await RecentEvents(database: f.database).list(limit: 10, user: nil, type: nil)
            #expect(recent.first { $0.event?.id == "attrs" }?.event?.attributes == attributes)
        }
    }

    @Test("with no dedupe window a resend is acknowledged as accepted and still stored and scored once")
    func noDedupeWindow() async throws {
        try await Self.withPipeline({ $0.dedupeWindow = .zero }) { f in
            let first = try await f.ingestor.ingest([Self.event("n1", "game_ended", user: "cy", score: 40), Self.event("n1", "game_ended", user: "cy", score: 40)], peer: "test")
            #expect(first.accepted == ["n1"] && first.duplicates.isEmpty)
            let resend = try await f.ingestor.ingest([Self.event("n1", "game_ended", user: "cy", score: 40), Self.event("n2")], peer: "test")
            #expect(resend.accepted == ["n1", "n2"] && resend.duplicates.isEmpty)
            try await Self.drain(f)
            #expect(try await Self.storedCount(f) == 2)
            let top = try await f.leaderboards.top(.global, limit: 10, cursor: "")
            #expect(top.entries.map(\.userID) == ["cy"] && top.entries.first?.score == 40)
        }
    }

    @Test("an id twice in one batch with different types: the first occurrence is the event")
    func firstOccurrenceWinsAcrossJobs() async throws {
        try await Self.withPipeline { f in
            let outcome = try await f.ingestor.ingest([Self.event("d1"), Self.event("d1", "game_ended", user: "di", score: 9)], peer: "test")
            #expect(outcome.accepted == ["d1"])
            try await Self.drain(f)
            let recent = try await RecentEvents(database: f.database).list(limit: 10, user: nil, type: nil)
            #expect(recent.compactMap { $0.event?.type } == ["app_launched"])
            #expect(try await f.leaderboards.top(.global, limit: 10, cursor: "").entries.isEmpty)
        }
    }

    @Test("a job processed twice (redelivery) counts its events once")
    func redeliveryIsIdempotent() async throws {
        try await Self.withPipeline { f in
            try await f.ingestor.ingest([Self.event("x1", "game_ended", user: "bo", score: 5)], peer: "p")
            let job = try #require(try await f.queue.claim(max: 1).first)
            try await f.processor.process(job)
            try await f.processor.process(job)
            #expect(try await Self.storedCount(f) == 1)
        }
    }

    @Test("jobs persisted together in one transaction are stored and scored once each")
    func groupedJobs() async throws {
        try await Self.withPipeline { f in
            for k in 0..<20 {
                try await f.ingestor.ingest([Self.event("g\(k)"), Self.event("s\(k)", "game_ended", user: "gu\(k % 5)", score: Int64(k))], peer: "p")
            }
            let jobs = try await f.queue.claim(max: 100)
            #expect(jobs.count == 40)
            try await f.processor.process(jobs)
            #expect(try await Self.storedCount(f) == 40)
            let pending = try await f.database.withConnection { try await $0.query("SELECT count(*) FROM leaderboard_pending_merges").scalar(Int64.self) }
            #expect(pending == 1, "one transaction for the whole group")
            let top = try await f.leaderboards.top(.global, limit: 10, cursor: "")
            #expect(top.entries.map(\.score) == [19, 18, 17, 16, 15])
        }
    }

    @Test("two workers holding the same jobs (a lease expired mid-transaction) store and score each event once")
    func overlappingClaims() async throws {
        try await Self.withPipeline { f in
            for k in 0..<3 {
                try await f.ingestor.ingest([Self.event("o\(k)"), Self.event("w\(k)", "game_ended", user: "ov\(k)", score: Int64(10 + k))], peer: "p")
            }
            let lockWaiters = {
                try await f.database.withConnection { connection in
                    try await connection.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    ).scalar(Int64.self)
                }
            }
            // Another session holds the events table: a writer stops inside its transaction,
            // its batches staged, before its ids reach event_ids.
            let (gate, open) = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await f.database.withTransaction { connection in
                    try await connection.executeScript("LOCK TABLE events IN EXCLUSIVE MODE")
                    for await _ in gate { break }
                }
            }
            _ = try await eventually(attempts: 1500) {
                try await f.database.withConnection { connection in
                    try await connection.query(
                        "SELECT count(*) FROM pg_locks WHERE relation = 'events'::regclass AND mode = 'ExclusiveLock' AND granted"
                    ).scalar(Int64.self)
                } == 1
            }
            // The first worker claims every job and writes them as one group, held by the lock.
            let first = try await f.queue.claim(max: 10)
            #expect(first.count == 6)
            let firstWriter = Task { try await f.processor.process(first) }
            #expect(try await eventually(attempts: 1500) { try await lockWaiters() == 1 })
            // Its lease expires; a second worker takes the same jobs back and runs them.
            try await TestRedis.expireLeases(of: f.queue, redis: f.redis)
            let second = f.processor.worker(
                queue: f.queue, configuration: .init(concurrency: 2, batchSize: 10, pollInterval: .milliseconds(5), drainTimeout: .seconds(5)))
            let secondRunning = Task { try await second.run() }
            #expect(try await eventually(attempts: 1500) { try await lockWaiters() >= 2 }, "the second worker is writing too")
            open.yield()
            open.finish()
            try await holder.value
            try await firstWriter.value
            _ = try await eventually(attempts: 1500) {
                let stats = try await f.queue.stats()
                return stats.completed == 6 && stats.waiting == 0 && stats.active == 0 && stats.delayed == 0
            }
            second.stop()
            try await secondRunning.value
            #expect(try await f.queue.complete(first.map(\.id), lease: first[0].lease) == 0, "the first lease is no longer held")
            #expect(try await Self.storedCount(f) == 6)
            let ids = try await f.database.withConnection { try await $0.query("SELECT count(*) FROM event_ids").scalar(Int64.self) }
            #expect(ids == 6)
            let top = try await f.leaderboards.top(.global, limit: 10, cursor: "")
            #expect(top.entries.map(\.userID) == ["ov2", "ov1", "ov0"] && top.entries.map(\.score) == [12, 11, 10])
            // Each improved score was recorded by one transaction only.
            let recorded = try await f.database.withConnection {
                try await $0.query("SELECT coalesce(sum(cardinality(user_ids)), 0) FROM leaderboard_pending_merges").scalar(Int64.self)
            }
            #expect(recorded == 3)
        }
    }

    @Test("invalid events are rejected by name and field; an oversize batch is refused whole")
    func validation() async throws {
        try await Self.withPipeline({ $0.rules.batchMax = 3 }) { f in
            var bad = Self.event("b1")
            bad.userId = ""
            let outcome = try await f.ingestor.ingest([Self.event("ok1"), bad], peer: "p")
            #expect(outcome.accepted == ["ok1"])
            #expect(outcome.rejected.map(\.reason) == ["events[1].user_id: must not be empty"])
            let error = await #expect(throws: RPCError.self) {
                try await f.ingestor.ingest((0..<4).map { Self.event("many\($0)") }, peer: "p")
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("at most 3") == true)
        }
    }

    @Test("a user over the rate limit gets RESOURCE_EXHAUSTED with retry-after")
    func perUserLimit() async throws {
        try await Self.withPipeline({ $0.perUserLimit = RateLimit(limit: 5, period: .seconds(3600)) }) { f in
            _ = try await f.ingestor.ingest((0..<5).map { Self.event("r\($0)", user: "chatty") }, peer: "p")
            let error = await #expect(throws: RPCError.self) {
                try await f.ingestor.ingest([Self.event("r5", user: "chatty")], peer: "p")
            }
            #expect(error?.code == .resourceExhausted)
            #expect(error?.metadata["retry-after-ms"] != nil)
            #expect(try await f.ingestor.ingest([Self.event("q1", user: "quiet")], peer: "p").accepted == ["q1"])
        }
    }

    @Test("with Redis down, events go straight to Postgres and are processed inline")
    func redisDownFallback() async throws {
        let isolated = try await TestServices.PrivateSet([.redis])
        defer { isolated.destroy() }
        try await Self.withPipeline(redisURL: isolated.endpoints.redisURL) { f in
            try await isolated.stop(.redis)
            let outcome = try await f.ingestor.ingest([Self.event("d1", "game_ended", user: "dee", score: 42), Self.event("d2")], peer: "p")
            #expect(outcome.accepted == ["d1", "d2"])
            #expect(f.ingestor.isDegraded)
            #expect(try await Self.storedCount(f) == 2)
            let again = try await f.ingestor.ingest([Self.event("d1", "game_ended", user: "dee", score: 42)], peer: "p")
            #expect(again.duplicates == ["d1"])
            #expect(try await f.leaderboards.rank(.global, user: "dee", neighbours: 0)?.entry.score == 42)
            try await isolated.start(.redis)
            _ = try await eventually {
                (try? await f.ingestor.ingest([Self.event("d3")], peer: "p")) != nil && !f.ingestor.isDegraded
            }
            #expect(!f.ingestor.isDegraded)
        }
    }

    @Test("tournament scores count within the window, for participants, up to the participant limit")
    func tournaments() async throws {
        try await Self.withPipeline { f in
            let now = Date().unixMilliseconds
            let tournaments = Tournaments(database: f.database)
            _ = try await tournaments.create(Tournament(id: "open", name: "Open", startsAtMs: now - 60_000, endsAtMs: now + 60_000, maxParticipants: 2, joinRequired: false))
            _ = try await tournaments.create(Tournament(id: "invite", name: "Invite", startsAtMs: now - 60_000, endsAtMs: now + 60_000, maxParticipants: nil, joinRequired: true))
            await #expect(throws: RPCError.self) {
                try await tournaments.create(Tournament(id: "open", name: "Again", startsAtMs: now, endsAtMs: now + 1, maxParticipants: nil, joinRequired: false))
            }
            let (_, joined) = try await tournaments.join("invite", user: "ivy", nowMs: now)
            #expect(joined)
            #expect(try await tournaments.join("invite", user: "ivy", nowMs: now).joined == false)
            try await f.ingestor.ingest([
                Self.event("t1", "game_ended", user: "a", score: 10, tournament: "open"),
                Self.event("t2", "game_ended", user: "b", score: 20, tournament: "open"),
                Self.event("t3", "game_ended", user: "c", score: 30, tournament: "open"),
                Self.event("t4", "game_ended", user: "ivy", score: 5, tournament: "invite"),
                Self.event("t5", "game_ended", user: "zed", score: 50, tournament: "invite"),
            ], peer: "p")
            try await Self.drain(f)
            let open = try await f.leaderboards.top(.tournament("open"), limit: 10, cursor: "")
            #expect(open.entries.map(\.userID) == ["b", "a"], "the third player finds it full")
            let invite = try await f.leaderboards.top(.tournament("invite"), limit: 10, cursor: "")
            #expect(invite.entries.map(\.userID) == ["ivy"])
            #expect(try await f.leaderboards.top(.global, limit: 10, cursor: "").total == 5, "every score counts globally")
            let recent = try await RecentEvents(database: f.database).list(limit: 10, user: "zed", type: nil)
            #expect(recent.first?.state == .failed)
            #expect(recent.first?.error == "user has not joined tournament invite")
        }
    }
    @Test("ids and users equal only as Swift strings (NFC and NFD) are two events and two users, as in Redis and Postgres",
          arguments: [3600, 0])
    func canonicallyEquivalentIDs(dedupeWindow: Int) async throws {
        try await Self.withPipeline({ $0.dedupeWindow = .seconds(dedupeWindow) }) { f in
            let composed = "caf\u{E9}"
            let decomposed = "cafe\u{301}"
            #expect(composed == decomposed, "canonically equivalent: one String to Swift")
            let bytes = { (ids: [String]) in Set(ids.map { Array($0.utf8) }) }
            let batch = [Self.event(composed, "game_ended", user: composed, score: 10), Self.event(decomposed, "game_ended", user: decomposed, score: 20)]
            let outcome = try await f.ingestor.ingest(batch, peer: "p")
            #expect(bytes(outcome.accepted) == bytes([composed, decomposed]))
            try await Self.drain(f)
            #expect(try await Self.storedCount(f) == 2)
            let top = try await f.leaderboards.top(.global, limit: 10, cursor: "")
            #expect(top.entries.map { Array($0.userID.utf8) } == [Array(decomposed.utf8), Array(composed.utf8)])
            #expect(top.entries.map(\.score) == [20, 10])
            let again = try await f.ingestor.ingest(batch, peer: "p")
            if dedupeWindow > 0 { #expect(bytes(again.duplicates) == bytes([composed, decomposed])) }
            try await Self.drain(f)
            #expect(try await Self.storedCount(f) == 2, "stored once each")
        }
    }
}
