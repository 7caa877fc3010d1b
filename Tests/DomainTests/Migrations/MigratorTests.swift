import Storage
import TestSupport
import Domain
import Foundation
import Testing

@Suite("Migrations and events partitions against a real PostgreSQL")
struct MigratorTests {
    @Test func bundledMigrationsAreNumberedInOrder() throws {
        let migrations = try Schema.migrations()
        #expect(migrations.map(\.version) == Array(1...12))
        #expect(migrations.map(\.name) == ["events", "leaderboard_scores", "tournaments", "events_received", "leaderboard_pending_merges", "api_keys",
                                           "topups", "leaderboard_revisions", "quiz", "notifications", "event_ids_received_brin", "event_rollups"])
        #expect(Set(migrations.map(\.checksum)).count == 12)
    }

    @Test func fourConcurrentMigratorsApplyEachMigrationExactlyOnce() async throws {
        let database = try await TestDatabase.create()
        let pools = (0..<4).map { _ in database.pool(max: 1) }
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for pool in pools {
                group.addTask { try await Migrator(pool: pool).migrate() }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(applied.sorted() == Array(1...12))
        let recorded = try await pools[0].query("SELECT version, checksum FROM schema_migrations ORDER BY version")
        #expect(try recorded.map { try $0.decode(0, as: Int.self) } == Array(1...12))
        #expect(try recorded.map { try $0.decode(1, as: String.self) } == Schema.migrations().map(\.checksum))
        // Up to date: nothing more to apply.
        #expect(try await Migrator(pool: pools[1]).migrate().isEmpty)
        for pool in pools { await pool.shutdown() }
        await database.drop()
    }

    @Test func aMigrationChangedAfterItWasAppliedStopsTheRun() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        let first = Migration(version: 1, name: "one", sql: "CREATE TABLE one (id int)")
        #expect(try await Migrator(pool: pool, migrations: [first]).migrate() == [1])
        var edited = first
        edited.sql += " -- edited"
        let second = Migration(version: 2, name: "two", sql: "CREATE TABLE two (id int)")
        await #expect(throws: MigrationError.self) {
            try await Migrator(pool: pool, migrations: [edited, second]).migrate()
        }
        #expect(try await pool.query("SELECT to_regclass('two') IS NULL").scalar(Bool.self))
        // A failing migration rolls back with its record, and the lock is released.
        let broken = Migration(version: 2, name: "broken", sql: "CREATE TABLE two (id int); SELECT no_such_column FROM two")
        await #expect(throws: PostgresError.self) { try await Migrator(pool: pool, migrations: [first, broken]).migrate() }
        #expect(try await pool.query("SELECT count(*) FROM schema_migrations").scalar(Int.self) == 1)
        #expect(try await Migrator(pool: pool, migrations: [first, second]).migrate() == [2])
        await pool.shutdown()
        await database.drop()
    }

    @Test func partitionsAreCreatedAheadAndDroppedAfterRetention() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 2)
        try await Migrator(pool: pool).migrate()
        let now = Date()
        let current = EventPartitions.Month(containing: now)
        let partitions = EventPartitions(pool: pool, monthsAhead: 3, retentionDays: 60)
        let report = try await partitions.maintain(now: now)
        #expect(report.created == (0...3).map { current.adding(months: $0).partitionName })
        #expect(report.dropped.isEmpty)
        #expect(try await partitions.maintain(now: now) == EventPartitions.Report(created: [], dropped: []))

        // An old month (a backfill) and an event in it, plus its dedupe row.
        let old = current.adding(months: -6).start.addingTimeInterval(86_400 * 3)
        #expect(try await partitions.ensurePartition(containing: old))
        #expect(try await !partitions.ensurePartition(containing: old))
        _ = try await pool.withConnection { connection in
            try await connection.pipeline([
                PostgresStatement("INSERT INTO event_ids VALUES ($1, $2)", ["e-old", old]),
                PostgresStatement(
                    "INSERT INTO events (event_id, type, user_id, client_time, received_at) VALUES ($1, $2, $3, $4, $4)",
                    ["e-old", "app_launched", "u1", old]),
                PostgresStatement("INSERT INTO event_ids VALUES ($1, $2)", ["e-new", now]),
                PostgresStatement(
                    "INSERT INTO events (event_id, type, user_id, client_time, received_at) VALUES ($1, $2, $3, $4, $4)",
                    ["e-new", "app_launched", "u1", now]),
            ])
        }
        #expect(try await pool.query("SELECT count(*) FROM events").scalar(Int.self) == 2)

        let pruned = try await partitions.maintain(now: now)
        #expect(pruned.dropped == [current.adding(months: -6).partitionName])
        #expect(pruned.created.isEmpty)
        #expect(try await pool.query("SELECT event_id FROM events").map { try $0.decode(0, as: String.self) } == ["e-new"])
        #expect(try await pool.query("SELECT event_id FROM event_ids").map { try $0.decode(0, as: String.self) } == ["e-new"])
        #expect(try await partitions.existingPartitions() == (0...3).map { current.adding(months: $0) })
        await pool.shutdown()
        await database.drop()
    }

    @Test(arguments: [
        (2024, 1, -1, 2023, 12), (2024, 12, 1, 2025, 1), (2024, 5, 0, 2024, 5), (2024, 3, -15, 2022, 12),
    ])
    func monthArithmetic(year: Int, month: Int, add: Int, expectedYear: Int, expectedMonth: Int) {
        let result = EventPartitions.Month(year: year, month: month).adding(months: add)
        #expect(result == EventPartitions.Month(year: expectedYear, month: expectedMonth))
        #expect(EventPartitions.Month(containing: result.start) == result)
        #expect(EventPartitions.Month(containing: result.start.addingTimeInterval(-1)) == result.adding(months: -1))
    }
}
