import TestSupport
import Storage
import Foundation
import Testing

@Suite("PostgresPool against a real PostgreSQL")
struct PostgresPoolTests {
    @Test func exhaustionWaitsThenTimesOutWithAClearError() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 2) { $0.waitTimeout = .milliseconds(300) }
        let gate = Gate()
        try await withThrowingTaskGroup { group in
            for _ in 0..<2 {
                group.addTask { try await pool.withConnection { _ in await gate.wait() } }
            }
            #expect(try await eventually { pool.statistics.inUse == 2 })
            await #expect {
                try await pool.query("SELECT 1")
            } throws: { error in
                guard let error = error as? PostgresError else { return false }
                return error.code == .poolTimeout && error.message.contains("pool exhausted") && error.message.contains("DB_POOL_MAX")
            }
            let stats = pool.statistics
            #expect(stats.waits == 1)
            #expect(stats.timeouts == 1)
            #expect(stats.waiting == 0)
            await gate.open()
            try await group.waitForAll()
        }
        await pool.shutdown()
        await database.drop()
    }

    @Test func aWaiterGetsTheNextReleasedConnection() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1) { $0.waitTimeout = .seconds(30) }
        let gate = Gate()
        try await withThrowingTaskGroup { group in
            group.addTask { try await pool.withConnection { _ in await gate.wait() } }
            #expect(try await eventually { pool.statistics.inUse == 1 })
            group.addTask { _ = try await pool.query("SELECT 1") }
            #expect(try await eventually { pool.statistics.waiting == 1 })
            await gate.open()
            try await group.waitForAll()
        }
        let stats = pool.statistics
        #expect(stats.waits == 1)
        #expect(stats.timeouts == 0)
        #expect(stats.created == 1)
        await pool.shutdown()
        await database.drop()
    }

    @Test func statisticsFollowLeases() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 3)
        #expect(pool.statistics == PostgresPoolStatistics(
            total: 0, idle: 0, inUse: 0, connecting: 0, waiting: 0, max: 3, waits: 0, timeouts: 0, created: 0, closed: 0))
        let gate = Gate()
        try await withThrowingTaskGroup { group in
            for _ in 0..<2 {
                group.addTask { try await pool.withConnection { _ in await gate.wait() } }
            }
            #expect(try await eventually { pool.statistics.inUse == 2 })
            let held = pool.statistics
            #expect(held.total == 2 && held.idle == 0 && held.created == 2)
            await gate.open()
            try await group.waitForAll()
        }
        let after = pool.statistics
        #expect(after.total == 2 && after.idle == 2 && after.inUse == 0 && after.closed == 0)
        await pool.shutdown()
        let closed = pool.statistics
        #expect(closed.total == 0 && closed.closed == 2)
        await database.drop()
    }

    @Test func statementTimeoutCancelsALongQuery() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        try await pool.withConnection { connection async throws in
            await #expect {
                try await connection.query("SELECT pg_sleep(10)", timeout: .milliseconds(200))
            } throws: { error in
                guard let error = error as? PostgresError else { return false }
                return error.code == .statementTimeout && error.sqlState == "57014"
            }
            // The timeout was local to that statement: the session's own setting is untouched.
            #expect(try await connection.query("SHOW statement_timeout").scalar(String.self) == "0")
        }
        // The lease's deadline becomes the statement timeout too.
        await #expect {
            try await pool.withConnection(deadline: .now + .milliseconds(200)) { try await $0.query("SELECT pg_sleep(10)") }
        } throws: { ($0 as? PostgresError)?.code == .statementTimeout }
        #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
        // A deadline beyond statement_timeout's range (INT_MAX ms, ~24.8 days; a client may
        // send grpc-timeout up to 99999999H) runs at the longest timeout Postgres takes.
        #expect(try await pool.query("SELECT 1", deadline: .now + .seconds(3600 * 99_999_999)).scalar(Int.self) == 1)
        #expect(try await pool.withTransaction(deadline: .now + .seconds(3600 * 1000)) { try await $0.query("SELECT 2").scalar(Int.self) } == 2)
        #expect(pool.statistics.created == 1)  // the connection survived both timeouts
        await pool.shutdown()
        await database.drop()
    }

    @Test func cancellingTheTaskCancelsTheStatement() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        let running = Task { try await pool.query("SELECT pg_sleep(10)") }
        #expect(try await eventually {
            try await TestDatabase.withAdminPool(database.configuration()) { admin in
                try await admin.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active' AND datname = $1",
                    [database.name]
                ).scalar(Int.self) == 1
            }
        })
        running.cancel()
        await #expect { try await running.value } throws: { ($0 as? PostgresError)?.code == .cancelled }
        #expect(try await pool.query("SELECT 2").scalar(Int.self) == 2)
        await pool.shutdown()
        await database.drop()
    }

    @Test func terminatedBackendsAreReplaced() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 3)
        let gate = Gate()
        let pids = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<3 {
                group.addTask {
                    try await pool.withConnection { connection in
                        let pid = try await connection.query("SELECT pg_backend_pid()").scalar(Int.self)
                        await gate.wait()
                        return pid
                    }
                }
            }
            #expect(try await eventually { pool.statistics.inUse == 3 })
            await gate.open()
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(pool.statistics.idle == 3)
        try await TestDatabase.withAdminPool(database.configuration()) { admin in
            for pid in pids { _ = try await admin.query("SELECT pg_terminate_backend($1)", [pid]) }
            #expect(try await eventually {
                try await admin.query("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", ["{\(pids.map(String.init).joined(separator: ","))}"])
                    .scalar(Int.self) == 0
            })
        }
        // The very next statements succeed: the dead idle connections are noticed and replaced.
        for _ in 0..<3 {
            let pid = try await pool.query("SELECT pg_backend_pid()").scalar(Int.self)
            #expect(!pids.contains(pid))
        }
        #expect(pool.statistics.closed == 3)
        await pool.shutdown()
        await database.drop()
    }

    @Test func aBackendKilledMidStatementFailsThatStatementOnly() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        let running = Task { try await pool.withConnection { try await $0.query("SELECT pg_sleep(10)") } }
        try await TestDatabase.withAdminPool(database.configuration()) { admin in
            #expect(try await eventually {
                try await admin.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active' AND datname = $1",
                    [database.name]
                ).scalar(Int.self) == 1
            })
            _ = try await admin.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND datname = $1",
                [database.name])
        }
        await #expect { try await running.value } throws: { error in
            guard let error = error as? PostgresError else { return false }
            return error.code == .connectionLost || error.sqlState == "57P01"  // the backend was terminated
        }
        #expect(try await pool.query("SELECT 3").scalar(Int.self) == 3)
        #expect(pool.statistics.closed == 1)
        await pool.shutdown()
        await database.drop()
    }

    @Test func aPostgresRestartHeals() async throws {
        let services = try await TestServices.PrivateSet([.postgres])
        defer { services.destroy() }
        var config = try TestDatabase.serverConfiguration(url: services.endpoints.databaseURL)
        config.minConnections = 0
        config.maxConnections = 2
        let pool = PostgresPool(configuration: config)
        #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
        try await services.restart(.postgres)
        #expect(try await pool.query("SELECT 2").scalar(Int.self) == 2)

        // While it is down, callers get a connection failure; once back, the same pool serves again.
        try await services.stop(.postgres)
        await #expect { try await pool.query("SELECT 3") } throws: { [.connectionFailed, .connectionLost].contains(($0 as? PostgresError)?.code) }
        try await services.start(.postgres)
        #expect(try await pool.query("SELECT 4").scalar(Int.self) == 4)
        await pool.shutdown()
    }

    @Test func maxUsesRecyclesConnections() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1) { $0.maxUsesPerConnection = 3 }
        var pids: [Int] = []
        for _ in 0..<7 { pids.append(try await pool.query("SELECT pg_backend_pid()").scalar(Int.self)) }
        #expect(Set(pids[0..<3]).count == 1 && Set(pids[3..<6]).count == 1 && pids[2] != pids[3] && pids[5] != pids[6])
        let stats = pool.statistics
        #expect(stats.created == 3 && stats.closed == 2)
        await pool.shutdown()
        await database.drop()
    }

    @Test func idleConnectionsBeyondTheMinimumAreClosed() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(min: 1, max: 3) { $0.idleTimeout = .milliseconds(100) }
        await pool.maintain()
        #expect(pool.statistics.idle == 1)
        let gate = Gate()
        try await withThrowingTaskGroup { group in
            for _ in 0..<3 { group.addTask { try await pool.withConnection { _ in await gate.wait() } } }
            #expect(try await eventually { pool.statistics.inUse == 3 })
            await gate.open()
            try await group.waitForAll()
        }
        #expect(pool.statistics.idle == 3)
        // (Leases may also have replaced a connection idle past the timeout: count from here.)
        let closedBefore = pool.statistics.closed
        try await Task.sleep(for: .milliseconds(150))
        await pool.maintain()
        let stats = pool.statistics
        #expect(stats.idle == 1 && stats.total == 1 && stats.closed - closedBefore == 2)
        await pool.shutdown()
        await database.drop()
    }

    @Test func transactionsCommitAndRollBackOnThrow() async throws {
        struct Boom: Error {}
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 2)
        _ = try await pool.query("CREATE TABLE items (id int PRIMARY KEY, name text)")
        try await pool.withTransaction { connection in
            _ = try await connection.query("INSERT INTO items VALUES ($1, $2)", [1, "kept"])
        }
        await #expect(throws: Boom.self) {
            try await pool.withTransaction { connection in
                _ = try await connection.query("INSERT INTO items VALUES ($1, $2)", [2, "rolled back"])
                throw Boom()
            }
        }
        #expect(try await pool.query("SELECT count(*) FROM items").scalar(Int.self) == 1)
        // A unique violation is told apart and leaves the connection usable.
        await #expect {
            try await pool.query("INSERT INTO items VALUES ($1, $2)", [1, "again"])
        } throws: { ($0 as? PostgresError)?.isUniqueViolation == true }
        // A timeout inside a transaction does not leak into the next statement.
        try await pool.withTransaction { connection async throws in
            _ = try await connection.query("SELECT 1", timeout: .seconds(5))
            #expect(try await connection.query("SHOW statement_timeout").scalar(String.self) == "0")
        }
        #expect(pool.statistics.closed == 0)
        await pool.shutdown()
        await database.drop()
    }

    @Test func copyLoadsTenThousandRows() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        _ = try await pool.query("CREATE TABLE copied (id bigint, name text, score double precision, ok boolean, at timestamptz, blob bytea)")
        let start = Date(timeIntervalSince1970: 1_700_000_000.25)
        let copied = try await pool.withConnection { connection in
            try await connection.copyFrom(table: "copied", columns: ["id", "name", "score", "ok", "at", "blob"], rows: 0..<10_000) { i, row in
                row.append(Int64(i))
                row.append(i == 7 ? "tab\there\nnewline \\ backslash\r" : "name \(i)")
                row.append(i % 10 == 0 ? nil : Double(i) / 4)
                row.append(i % 2 == 0)
                row.append(start.addingTimeInterval(Double(i)))
                row.append(PostgresBytes([UInt8(i & 0xff), 0, 9]))
            }
        }
        #expect(copied == 10_000)
        #expect(try await pool.query("SELECT count(*) FROM copied").scalar(Int.self) == 10_000)
        let rows = try await pool.query("SELECT name, score, ok, at, blob FROM copied WHERE id = ANY($1::bigint[]) ORDER BY id", ["{7,10}"])
        #expect(try rows[0].decode(0, as: String.self) == "tab\there\nnewline \\ backslash\r")
        #expect(try rows[0].decode(1, as: Double?.self) == 1.75)
        #expect(try rows[1].decode(1, as: Double?.self) == nil)
        #expect(try rows[0].decode(2, as: Bool.self) == false)
        #expect(try rows[0].decode(3, as: Date.self) == start.addingTimeInterval(7))
        #expect(try rows[1].decode("blob", as: PostgresBytes.self) == PostgresBytes([10, 0, 9]))
        // The array form, and the connection stays healthy after COPY.
        let more = try await pool.withConnection { connection in
            try await connection.copyFrom(table: "copied", columns: ["id", "name"], rows: [[Int64(-1), "x"], [Int64(-2), PostgresNull()]])
        }
        #expect(more == 2)
        #expect(try await pool.query("SELECT count(*) FROM copied").scalar(Int.self) == 10_002)
        await pool.shutdown()
        await database.drop()
    }

    @Test func pipelineRunsManyStatementsAtomically() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        _ = try await pool.query("CREATE TABLE piped (id int PRIMARY KEY)")
        let results = try await pool.withConnection { connection in
            try await connection.pipeline(
                (1...100).map { PostgresStatement("INSERT INTO piped VALUES ($1) RETURNING id * 2", [$0]) }
                    + [PostgresStatement("SELECT count(*) FROM piped")])
        }
        #expect(results.count == 101)
        #expect(try results[41].scalar(Int.self) == 84)
        #expect(try results[100].scalar(Int.self) == 100)
        // One failure (a duplicate) aborts the whole pipeline: nothing of it commits.
        await #expect {
            try await pool.withConnection { connection in
                try await connection.pipeline([
                    PostgresStatement("INSERT INTO piped VALUES ($1)", [1000]),
                    PostgresStatement("INSERT INTO piped VALUES ($1)", [1]),
                    PostgresStatement("INSERT INTO piped VALUES ($1)", [1001]),
                ])
            }
        } throws: { ($0 as? PostgresError)?.isUniqueViolation == true }
        #expect(try await pool.query("SELECT count(*) FROM piped").scalar(Int.self) == 100)
        await pool.shutdown()
        await database.drop()
    }

    @Test func readsFallBackToThePrimaryWhenTheReplicaIsDown() async throws {
        let database = try await TestDatabase.create()
        var replica = database.configuration(max: 1)
        replica.port = 1  // nothing listens there
        let db = PostgresDatabase(primary: database.configuration(max: 1), replica: replica)
        // Unchecked: the primary answers.
        #expect(try await db.read { try await $0.query("SELECT current_database()").scalar(String.self) } == database.name)
        await db.checkReplica()
        #expect(db.replicaState == .down && !db.readsUseReplica)
        #expect(try await db.read { try await $0.query("SELECT 5").scalar(Int.self) } == 5)
        #expect(db.readCounts == PostgresDatabase.ReadCounts(replica: 0, primary: 2, fallbacks: 2))
        await db.shutdown()
        // A server that is not a standby serves reads once checked, its lag taken as zero. The
        // check's deadline is 4 intervals: a long interval keeps a slow first connect on a loaded
        // machine (over the default's 1 s in CI-like runs) from counting as a replica down.
        let both = PostgresDatabase(
            primary: database.configuration(max: 1), replica: database.configuration(max: 1),
            readPolicy: .init(maxLag: .seconds(1), checkInterval: .seconds(15)))
        await both.checkReplica()
        #expect(both.replicaState == .serving(lag: .zero))
        #expect(try await both.read { try await $0.query("SELECT 6").scalar(Int.self) } == 6)
        #expect(both.readCounts == PostgresDatabase.ReadCounts(replica: 1, primary: 0, fallbacks: 0))
        await both.shutdown()
        await database.drop()
    }
}
