import TestSupport
import Storage
import Foundation
import Testing

@Suite("PostgresPool.taskExecutor against a real PostgreSQL")
struct PostgresExecutorTests {
    @Test func statementsOnTheExecutorRunOnAPoolThreadWithCorrectResults() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 2)
        #expect(pool.taskExecutor.threadCount == 4)  // maxConnections + 2 spares
        #expect(!pool.taskExecutor.isCurrentThread)
        try await withTaskExecutorPreference(pool.taskExecutor) { () async throws in
            #expect(pool.taskExecutor.isCurrentThread)
            #expect(try await pool.query("SELECT $1::int + 1", [41]).scalar(Int.self) == 42)
            #expect(pool.taskExecutor.isCurrentThread)
            _ = try await pool.query("CREATE TABLE inline (id int PRIMARY KEY, name text)")
            let piped = try await pool.withConnection { connection in
                try await connection.pipeline((1...10).map { PostgresStatement("INSERT INTO inline VALUES ($1, 'p') RETURNING id", [$0]) })
            }
            #expect(try piped.map { try $0.scalar(Int.self) } == Array(1...10))
            let copied = try await pool.withConnection { connection in
                try await connection.copyFrom(table: "inline", columns: ["id", "name"], rows: 11...2000) { i, row in
                    row.append(Int32(i))
                    row.append("c\(i)")
                }
            }
            #expect(copied == 1990)
            try await pool.withTransaction { connection in
                _ = try await connection.query("INSERT INTO inline VALUES (0, 'tx')")
                try await connection.executeScript("UPDATE inline SET name = 'script' WHERE id = 1")
                #expect(pool.taskExecutor.isCurrentThread)
            }
            await #expect {
                try await pool.withTransaction { connection in
                    _ = try await connection.query("INSERT INTO inline VALUES (-1, 'rolled back')")
                    _ = try await connection.query("INSERT INTO inline VALUES (0, 'duplicate')")
                }
            } throws: { ($0 as? PostgresError)?.isUniqueViolation == true }
            let summary = try await pool.query("SELECT count(*), min(id), (SELECT name FROM inline WHERE id = 1) FROM inline")
            #expect(try summary[0].decode(0, as: Int.self) == 2001)
            #expect(try summary[0].decode(1, as: Int.self) == 0)
            #expect(try summary[0].decode(2, as: String.self) == "script")
            #expect(pool.taskExecutor.isCurrentThread)
        }
        // Ordinary tasks still hand their statements to the pool's threads.
        #expect(try await pool.query("SELECT count(*) FROM inline").scalar(Int.self) == 2001)
        await pool.shutdown()
        await database.drop()
    }

    /// A job the thread enqueued itself (a child task, in its next-job slot) runs on another
    /// thread while that thread blocks inline: here the blocked statement waits for the child's
    /// insert, so a child stuck behind it would end in the statement timeout instead.
    @Test func aJobQueuedOnTheThreadRunsWhileItBlocks() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 2)
        _ = try await pool.query("CREATE TABLE signal (id int)")
        try await withTaskExecutorPreference(pool.taskExecutor) { () async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { _ = try await pool.query("INSERT INTO signal VALUES (1)") }
                _ = try await pool.withConnection { connection in
                    try await connection.query(
                        "DO $$ BEGIN WHILE NOT EXISTS (SELECT 1 FROM signal) LOOP PERFORM pg_sleep(0.01); END LOOP; END $$",
                        timeout: .seconds(10))
                }
                try await group.waitForAll()
            }
        }
        #expect(try await pool.query("SELECT count(*) FROM signal").scalar(Int.self) == 1)
        await pool.shutdown()
        await database.drop()
    }

    @Test func theDeadlineCancelsASleepOnTheExecutor() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        try await withTaskExecutorPreference(pool.taskExecutor) { () async throws in
            await #expect {
                try await pool.withConnection(deadline: .now + .milliseconds(200)) { try await $0.query("SELECT pg_sleep(10)") }
            } throws: { error in
                guard let error = error as? PostgresError else { return false }
                return error.code == .statementTimeout
            }
            await #expect {
                try await pool.withConnection { try await $0.query("SELECT pg_sleep(10)", timeout: .milliseconds(200)) }
            } throws: { ($0 as? PostgresError)?.code == .statementTimeout }
            #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
        }
        #expect(pool.statistics.created == 1)  // the connection survived both timeouts
        await pool.shutdown()
        await database.drop()
    }

    @Test func cancellingATaskOnTheExecutorCancelsItsStatement() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        let running = Task(executorPreference: pool.taskExecutor) { try await pool.query("SELECT pg_sleep(10)") }
        #expect(try await eventually { try await sleepers(in: database, sql: "SELECT pg_sleep(10)") == 1 })
        running.cancel()
        await #expect { try await running.value } throws: { ($0 as? PostgresError)?.code == .cancelled }
        let after = Task(executorPreference: pool.taskExecutor) { try await pool.query("SELECT 2").scalar(Int.self) }
        #expect(try await after.value == 2)
        await pool.shutdown()
        await database.drop()
    }

    /// More tasks than connections, all on the executor: while every connection is blocked
    /// inline, the rest wait for a lease on the spare threads, and all finish.
    @Test(arguments: [1, 3])
    func moreTasksThanConnectionsAllComplete(connections: Int) async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: connections) { $0.waitTimeout = .seconds(60) }
        _ = try await pool.query("CREATE TABLE counted (task int PRIMARY KEY, twice int)")
        let tasks = 40
        let total = try await withTaskExecutorPreference(pool.taskExecutor) { () async throws in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for task in 0..<tasks {
                    group.addTask {
                        try await pool.withTransaction { connection in
                            _ = try await connection.query("SELECT pg_sleep(0.005)")
                            _ = try await connection.query("INSERT INTO counted VALUES ($1, $1 * 2)", [task])
                            return try await connection.query("SELECT twice FROM counted WHERE task = $1", [task]).scalar(Int.self)
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        #expect(total == (0..<tasks).reduce(0) { $0 + $1 * 2 })
        #expect(try await pool.query("SELECT count(*) FROM counted").scalar(Int.self) == tasks)
        let stats = pool.statistics
        #expect(stats.inUse == 0 && stats.waiting == 0 && stats.total <= connections)
        await pool.shutdown()
        await database.drop()
    }

    /// Every connection blocked inline in a long statement and more tasks waiting for one:
    /// cancelling them all still reaches the server (PQcancel runs on a spare thread).
    @Test func cancellationFindsAThreadWhenEveryConnectionIsBlockedInline() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 2) { $0.waitTimeout = .seconds(60) }
        let group = Task(executorPreference: pool.taskExecutor) {
            await withTaskGroup(of: Bool.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        do {
                            _ = try await pool.query("SELECT pg_sleep(20)")
                            return false
                        } catch {
                            return (error as? PostgresError)?.code == .cancelled || error is CancellationError
                        }
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
        }
        #expect(try await eventually { try await sleepers(in: database, sql: "SELECT pg_sleep(20)") == 2 })
        #expect(try await eventually { pool.statistics.waiting == 4 })
        group.cancel()
        let outcomes = await group.value
        #expect(outcomes == Array(repeating: true, count: 6))
        #expect(try await pool.query("SELECT 3").scalar(Int.self) == 3)
        await pool.shutdown()
        await database.drop()
    }

    @Test func thePoolShutsDownWithTheExecutorIdle() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 2)
        try await withTaskExecutorPreference(pool.taskExecutor) { () async throws in
            #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
        }
        await pool.shutdown()
        #expect(pool.statistics.total == 0)
        await pool.shutdown()  // idempotent
        // A task that still prefers the executor runs elsewhere, and the pool refuses it.
        try await withTaskExecutorPreference(pool.taskExecutor) { () async throws in
            #expect(!pool.taskExecutor.isCurrentThread)
            await #expect { try await pool.query("SELECT 1") } throws: { ($0 as? PostgresError)?.code == .poolClosed }
        }

        // Shut down from a task on the executor itself: its threads exit and it resumes elsewhere.
        let other = database.pool(max: 1)
        let stopped = Task(executorPreference: other.taskExecutor) {
            _ = try await other.query("SELECT 1")
            await other.shutdown()
            return other.taskExecutor.isCurrentThread
        }
        #expect(try await stopped.value == false)
        #expect(other.statistics.total == 0)
        await database.drop()
    }

    /// Statements `sql` running now in the test's database.
    private func sleepers(in database: TestDatabase, sql: String) async throws -> Int {
        try await TestDatabase.withAdminPool(database.configuration()) { admin in
            try await admin.query(
                "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active' AND datname = $2", [sql, database.name]
            ).scalar(Int.self)
        }
    }
}
