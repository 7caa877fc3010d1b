import TestSupport
import Storage
import Testing

/// What a connection remembers of its server session: scripts run once (`prepareSession`) and
/// the column types of binary COPY, each forgotten when it may no longer hold.
@Suite("A connection's session state against a real PostgreSQL")
struct PostgresSessionTests {
    struct Refused: Error {}

    @Test("a session script runs once per connection, and again after a transaction that ran it rolled back")
    func prepareSessionOnce() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        _ = try await pool.query("CREATE TABLE runs (at timestamptz DEFAULT clock_timestamp())")
        for _ in 0..<3 {
            try await pool.withConnection { try await $0.prepareSession("count", "INSERT INTO runs DEFAULT VALUES") }
        }
        #expect(try await pool.query("SELECT count(*) FROM runs").scalar(Int.self) == 1)

        // Created in a transaction that fails: the rollback drops the table, so it must be made again.
        await #expect(throws: Refused.self) {
            try await pool.withTransaction { connection in
                try await connection.prepareSession("staging", "CREATE TEMP TABLE staging (n integer) ON COMMIT DELETE ROWS")
                throw Refused()
            }
        }
        let staged = try await pool.withTransaction { connection in
            try await connection.prepareSession("staging", "CREATE TEMP TABLE staging (n integer) ON COMMIT DELETE ROWS")
            _ = try await connection.query("INSERT INTO staging VALUES (1), (2)")
            return try await connection.query("SELECT count(*) FROM staging").scalar(Int.self)
        }
        #expect(staged == 2)
        #expect(pool.statistics.closed == 0)
        await pool.shutdown()
        await database.drop()
    }

    @Test("binary COPY's column types are looked up once per connection, and again after a COPY with stale ones failed")
    func copyTypesCachedUntilAFailure() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        _ = try await pool.query("CREATE TABLE measures (n integer)")
        let copy: @Sendable (Int64) async throws -> Int = { value in
            try await pool.withConnection { try await $0.copyFrom(table: "measures", columns: ["n"], rows: [[value]]) }
        }
        #expect(try await copy(1) == 1)
        _ = try await pool.query("ALTER TABLE measures ALTER COLUMN n TYPE bigint")
        // The connection still holds `integer`: the value is refused before it is sent ...
        await #expect { try await copy(1 << 40) } throws: { ($0 as? PostgresError)?.code == .misuse }
        // ... and that failure made it look the types up again.
        #expect(try await copy(1 << 40) == 1)
        #expect(try await pool.query("SELECT sum(n) FROM measures").scalar(Int64.self) == 1 + (1 << 40))
        await pool.shutdown()
        await database.drop()
    }
}
