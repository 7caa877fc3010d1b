import Storage
import TestSupport
import Codec
import Foundation
import Testing

@testable import Domain
import Units

/// The analytics rollups against real services: hourly counts equal `count(*) GROUP BY` over
/// the events table, exactly once; active users within the HyperLogLog's error; retention.
@Suite("Event rollups")
struct EventRollupsTests {
    typealias Pipeline = EventPipelineTests

    static let hourMs: Int64 = 3_600_000

    static func event(_ id: String, _ type: String, user: String, clientMs: Int64) -> Tally_V1_Event {
        var event = Pipeline.event(id, type, user: user)
        event.clientTimeMs = clientMs
        return event
    }

    /// "hour/type" to count from the rollups, shards summed.
    static func rollups(_ database: PostgresDatabase) async throws -> [String: Int64] {
        try await grouped(database, "SELECT (extract(epoch FROM hour) / 3600)::bigint, type, sum(events)::bigint FROM event_counts GROUP BY 1, 2")
    }

    /// The same from the events table, at each event's rollup time.
    static func exact(_ database: PostgresDatabase) async throws -> [String: Int64] {
        try await grouped(database, """
            SELECT floor(extract(epoch FROM event_rollup_time(client_time, received_at)) / 3600)::bigint, type, count(*)
            FROM events GROUP BY 1, 2
            """)
    }

    private static func grouped(_ database: PostgresDatabase, _ sql: String) async throws -> [String: Int64] {
        try await database.withConnection { connection in
            var counts: [String: Int64] = [:]
            for row in try await connection.query(sql) {
                counts["\(try row.decode(0, as: Int64.self))/\(try row.decode(1, as: String.self))"] = try row.decode(2, as: Int64.self)
            }
            return counts
        }
    }

    @Test("hourly counts equal count(*) GROUP BY over the events, after duplicates, resends and redeliveries, with writers sharing shards")
    func countsEqualEvents() async throws {
        // Two shards for four workers: writers do share rows, in (hour, type) order.
        let configuration = EventRollups.Configuration(shards: 2, retentionDays: 730, maxBuckets: 10_000)
        try await Pipeline.withPipeline({ $0.perUserLimit = nil }, rollups: configuration) { f in
            let now = Date().unixMilliseconds
            let types = ["app_launched", "game_started", "game_ended", "custom.shop_opened"]
            // Client times: now, an hour and a day ago (counted then), two days ago and 0 (a
            // broken clock: counted when received).
            let offsets: [Int64] = [0, -Self.hourMs, -23 * Self.hourMs, -48 * Self.hourMs]
            var batches: [[Tally_V1_Event]] = []
            for batch in 0..<40 {
                var events: [Tally_V1_Event] = []
                for index in 0..<25 {
                    let n = batch * 25 + index
                    let clientMs = n % 17 == 0 ? 0 : now + offsets[n % offsets.count]
                    events.append(Self.event("c-\(n)", types[n % types.count], user: "u\(n % 97)", clientMs: clientMs))
                }
                // A copy of an id within the batch, and a resend of the previous batch's events.
                events.append(events[0])
                if let previous = batches.last { events += previous.prefix(5) }
                batches.append(events)
            }
            for events in batches { try await f.ingestor.ingest(events, peer: "p") }
            // The same batch queued again, as a client resend the dedupe window forgot.
            let job = EventBatchPayload(receivedAtMs: now, events: batches[3]).encoded()
            _ = try await f.queue.enqueue([NewJob(id: "again", payload: job, priority: 0)])
            try await Pipeline.drain(f)
            #expect(try await Pipeline.storedCount(f) == 1000)
            let exact = try await Self.exact(f.database)
            #expect(exact.values.reduce(0, +) == 1000)
            #expect(exact.count > types.count, "the events span several hours")
            #expect(try await Self.rollups(f.database) == exact)

            // Folding the shards changes no total.
            let maintenance = RollupMaintenance(pool: f.database.primary, retentionDays: 730, logger: .init(label: "test"))
            let report = try await maintenance.maintain(now: Date().addingTimeInterval(7200))
            #expect(report.folded > 0)
            #expect(try await Self.rollups(f.database) == exact)
        }
    }

    @Test("a batch persisted twice, or rolled back, counts once")
    func exactlyOnce() async throws {
        try await Pipeline.withPipeline { f in
            let now = Date().unixMilliseconds
            let rollups = EventRollups(configuration: .defaults, activeUsers: f.activeUsers)
            let events = (0..<50).map { Self.event("x-\($0)", "level_completed", user: "w\($0)", clientMs: now) }
            struct Abandoned: Error {}
            await #expect(throws: Abandoned.self) {
                try await f.database.withTransaction { connection in
                    _ = try await EventStore.persist(events, receivedAtMs: now, rollups: rollups, on: connection)
                    throw Abandoned()
                }
            }
            #expect(try await Self.rollups(f.database).isEmpty, "the counts roll back with the events")
            for _ in 0..<2 {
                _ = try await f.database.withTransaction { connection in
                    try await EventStore.persist(events, receivedAtMs: now, rollups: rollups, on: connection)
                }
            }
            #expect(try await Self.rollups(f.database) == ["\(now / Self.hourMs)/level_completed": 50])
            #expect(try await f.activeUsers.count(days: RollupTime.day(now)..<RollupTime.day(now) + 1) == [50])
        }
    }

    @Test("a day's active users are within 1% of the exact count(DISTINCT user_id), and per month too")
    func activeUsersEstimate() async throws {
        try await Pipeline.withPipeline { f in
            let now = Date().unixMilliseconds
            let rollups = EventRollups(configuration: .defaults, activeUsers: f.activeUsers)
            let users = 20_000
            for chunk in 0..<20 {
                // Each user twice, in two transactions.
                let events = (0..<2_000).map { index in
                    let user = (chunk * 2_000 + index) % users
                    return Self.event("a-\(chunk)-\(index)", "app_launched", user: "player-\(user)", clientMs: now)
                }
                _ = try await f.database.withTransaction { connection in
                    try await EventStore.persist(events, receivedAtMs: now, rollups: rollups, on: connection)
                }
            }
            let today = RollupTime.day(now)
            let exact = try await f.database.withConnection {
                try await $0.query("SELECT event_active_users($1::date)", [RollupTime.date(ofDay: today)]).scalar(Int64.self)
            }
            #expect(exact == Int64(users))
            let estimate = try #require(try await f.activeUsers.count(days: today..<today + 1).first)
            #expect(abs(Double(estimate - exact)) <= Double(exact) * 0.01, "estimate \(estimate), exact \(exact)")
            let month = RollupTime.month(ofDay: today)
            #expect(try await f.activeUsers.count(months: month..<month + 1) == [estimate], "the month holds only this day")

            // Counts answers the same over the wire's message types.
            let counts = EventCounts(database: f.database, activeUsers: f.activeUsers, maxBuckets: 100)
            var request = Tally_V1_CountsRequest()
            request.fromMs = today * 86_400_000
            request.toMs = request.fromMs + 1
            request.granularity = .day
            request.activeUsers = true
            let answer = try await counts.answer(request)
            #expect(answer.buckets.map(\.startMs) == [today * 86_400_000])
            #expect(answer.buckets.first?.activeUsers == estimate)
            #expect(answer.buckets.first?.counts.map { "\($0.type)=\($0.count)" } == ["app_launched=40000"])
            request.exactActiveUsers = true
            #expect(try await counts.answer(request).buckets.first?.activeUsers == exact)
        }
    }

    @Test("a day whose events were written while Redis was down is made whole by an exact recount")
    func recountRepairsADay() async throws {
        try await Pipeline.withPipeline { f in
            let now = Date().unixMilliseconds
            let today = RollupTime.day(now)
            let events = (0..<30).map { Self.event("r-\($0)", "purchase", user: "buyer-\($0)", clientMs: now) }
            // The ingestor's fallback path: counts without the users.
            _ = try await f.database.withTransaction { connection in
                try await EventStore.persist(events, receivedAtMs: now, rollups: EventRollups(configuration: .defaults, activeUsers: nil), on: connection)
            }
            #expect(try await f.activeUsers.count(days: today..<today + 1) == [0])
            #expect(try await Self.rollups(f.database) == ["\(now / Self.hourMs)/purchase": 30])
            let recounted = try await f.database.withConnection { try await f.activeUsers.recount(day: today, on: $0) }
            #expect(recounted == 30)
            #expect(try await f.activeUsers.count(days: today..<today + 1) == [30])
        }
    }

    @Test("maintenance prunes hours past the retention and folds shards; day keys expire after it")
    func retention() async throws {
        try await Pipeline.withPipeline { f in
            let now = Date()
            let nowHour = Int64(now.timeIntervalSince1970) / 3600
            try await f.database.withConnection { connection in
                _ = try await connection.query(
                    """
                    INSERT INTO event_counts (hour, type, shard, events)
                    SELECT to_timestamp(h * 3600), 'purchase', s, 1 FROM unnest($1::bigint[]) AS h, generate_series(1, 3) AS s
                    """,
                    [PostgresArray([nowHour - 31 * 24 - 1, nowHour - 30 * 24, nowHour - 2, nowHour])])
            }
            let maintenance = RollupMaintenance(pool: f.database.primary, retentionDays: 30, logger: .init(label: "test"))
            let report = try await maintenance.maintain(now: now)
            #expect(report.pruned == 3)
            #expect(report.folded == 6, "the two past hours kept, three shards each")
            let rows = try await f.database.withConnection { connection in
                try await connection.query(
                    "SELECT (extract(epoch FROM hour) / 3600)::bigint, shard, events FROM event_counts ORDER BY 1, 2"
                ).map { "\(try $0.decode(0, as: Int64.self) - nowHour):\(try $0.decode(1, as: Int.self))=\(try $0.decode(2, as: Int64.self))" }
            }
            #expect(rows == ["-720:0=3", "-2:0=3", "0:1=1", "0:2=1", "0:3=1"])

            let activeUsers = ActiveUsers(redis: f.redis, retentionDays: 30, namespace: "hll-ttl-\(UUID().uuidString.prefix(8))")
            let today = Int64(now.timeIntervalSince1970) / 86_400
            try await activeUsers.add([today: ["ann"], today - 31: ["bob"]])
            let ttls = try await f.redis.pipeline([
                RedisCommand("TTL", RedisArgument(activeUsers.key(day: today))),
                RedisCommand("EXISTS", RedisArgument(activeUsers.key(day: today - 31))),
            ])
            let expected = (today + 31) * 86_400 - Int64(now.timeIntervalSince1970)
            #expect(abs((ttls[0].int ?? 0) - expected) <= 60, "expires 30 days after the day ends")
            #expect(ttls[1].int == 0, "a day past the retention is gone at once")
        }
    }

    @Test("Counts buckets: hours, days and calendar months, rounded outward; bad ranges named", arguments: [
        // 2026-12-31 23:30 to 2027-01-01 00:30 UTC
        (Tally_V1_CountsGranularity.hour, Int64(1_798_759_800_000), Int64(1_798_763_400_000), 2, Int64(1_798_758_000_000)),
        (.day, 1_798_759_800_000, 1_798_763_400_000, 2, 1_798_675_200_000),
        (.month, 1_798_759_800_000, 1_798_763_400_000, 2, 1_796_083_200_000),
        (.month, 1_796_083_200_000, 1_798_761_600_000, 1, 1_796_083_200_000),
    ])
    func buckets(granularity: Tally_V1_CountsGranularity, from: Int64, to: Int64, count: Int, firstStart: Int64) async throws {
        try await Pipeline.withPipeline { f in
            let counts = EventCounts(database: f.database, activeUsers: f.activeUsers, maxBuckets: 8_784)
            var request = Tally_V1_CountsRequest()
            request.granularity = granularity
            request.fromMs = from
            request.toMs = to
            let answer = try await counts.answer(request)
            #expect(answer.buckets.count == count)
            #expect(answer.buckets.first?.startMs == firstStart)
        }
    }

    @Test("Counts refuses what it cannot answer, naming the field")
    func refusals() async throws {
        try await Pipeline.withPipeline { f in
            let counts = EventCounts(database: f.database, activeUsers: f.activeUsers, maxBuckets: 8_784)
            func refusal(_ adjust: (inout Tally_V1_CountsRequest) -> Void) -> String? {
                var request = Tally_V1_CountsRequest()
                request.granularity = .hour
                request.fromMs = 1_798_761_600_000
                request.toMs = request.fromMs + 86_400_000
                adjust(&request)
                do {
                    _ = try counts.span(of: request)
                    return nil
                } catch {
                    return error.code == .invalidArgument ? error.message : "\(error.code)"
                }
            }
            #expect(refusal { _ in } == nil)
            #expect(refusal { $0.granularity = .unspecified } == "granularity: required, one of HOUR, DAY or MONTH")
            #expect(refusal { $0.fromMs = -1 } == "from_ms: must not be negative, got -1")
            #expect(refusal { $0.toMs = $0.fromMs } == "to_ms: must be after from_ms (1798761600000), got 1798761600000")
            #expect(refusal { $0.toMs = $0.fromMs + 367 * 86_400_000 }
                    == "to_ms: the range spans 8808 hours, at most 8784 buckets allowed (EVENT_COUNTS_MAX_BUCKETS)")
            #expect(refusal { $0.toMs = Int64.max } != nil)
            #expect(refusal { $0.types = ["game_ended", ""] } == "types[1]: must not be empty")
            #expect(refusal { $0.activeUsers = true } == "active_users: counted per DAY or MONTH, not per HOUR")
            #expect(refusal { $0.granularity = .month; $0.exactActiveUsers = true; $0.activeUsers = true }
                    == "exact_active_users: needs active_users and granularity DAY")
        }
    }
}
