import ArgumentParser
import CLibPQ
import Domain
import Storage
import Foundation

/// `storage-bench postgres`: (a) the pool's overhead on a trivial statement against a raw
/// libpq round trip on one connection, in the same run, from an ordinary task and from a task
/// on the pool's `taskExecutor`; (b) COPY of event rows into the
/// partitioned events table, and (c) Postgres inserting the same rows by itself, the same-run
/// reference for (b). Runs in a fresh database it drops afterwards.
struct PostgresBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "postgres", abstract: "Pool overhead vs raw libpq, and COPY into the partitioned events table.")

    @Option(help: "PostgreSQL server URL (env DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "SELECT 1 round trips per measurement.")
    var iterations = 20_000

    @Option(help: "Rounds of (raw, pool, pool on taskExecutor) measurements; the best of each is compared.")
    var rounds = 3

    @Option(help: "Event rows to COPY.")
    var rows = 1_000_000

    @Option(help: "Connections copying in parallel, each a slice of the rows (1 = one COPY).")
    var connections = 1

    func run() async throws {
        guard let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] else {
            throw ValidationError("DATABASE_URL (or --database-url) is required")
        }
        var server = try PostgresConfiguration(url: url)
        server.minConnections = 0
        server.maxConnections = 1
        let name = "bench_\(UInt32.random(in: 0...UInt32.max))"
        let admin = PostgresPool(configuration: server)
        _ = try await admin.query("CREATE DATABASE \(name)")
        var config = server
        config.database = name
        config.maxConnections = 4
        let pool = PostgresPool(configuration: config)
        do {
            try await selectOne(pool: pool, config: config)
            try await copyEvents(pool: pool)
        } catch {
            print("failed: \(error)")
        }
        await pool.shutdown()
        _ = try await admin.query("DROP DATABASE \(name) WITH (FORCE)")
        await admin.shutdown()
    }

    private func selectOne(pool: PostgresPool, config: PostgresConfiguration) async throws {
        print("(a) SELECT 1, \(iterations) sequential round trips, best of \(rounds) rounds")
        let conninfo = "host=\(config.host) port=\(config.port) user=\(config.user) dbname=\(config.database)"
            + (config.password.map { " password=\($0)" } ?? "")
        let n = iterations
        var bestRaw = Duration.seconds(1_000_000)
        var bestPool = Duration.seconds(1_000_000)
        var bestOnExecutor = Duration.seconds(1_000_000)
        for round in 1...rounds {
            let raw = try await Self.onThread { () throws -> Duration in try Self.rawLibpq(conninfo: conninfo, iterations: n) }
            // From an ordinary task: each statement's reply is received on a pool thread, which
            // then resumes the task on the cooperative pool.
            let pooled = try await Self.measure(pool: pool, iterations: n)
            // From a task on the pool's executor: each statement runs inline on its thread.
            let onExecutor = try await withTaskExecutorPreference(pool.taskExecutor) {
                try await Self.measure(pool: pool, iterations: n)
            }
            bestRaw = min(bestRaw, raw)
            bestPool = min(bestPool, pooled)
            bestOnExecutor = min(bestOnExecutor, onExecutor)
            print("  round \(round): raw libpq \(Self.micros(raw, n)) us/op, pool \(Self.micros(pooled, n)) us/op, "
                + "pool on taskExecutor \(Self.micros(onExecutor, n)) us/op")
        }
        print("  best: raw \(Self.micros(bestRaw, n)) us/op; pool \(Self.micros(bestPool, n)) us/op, ratio "
            + "\(Self.ratio(bestPool, bestRaw))x; pool on taskExecutor \(Self.micros(bestOnExecutor, n)) us/op, ratio "
            + "\(Self.ratio(bestOnExecutor, bestRaw))x (target < 1.2x)")
        print("  pool: \(pool.statistics)")
    }

    /// `iterations` sequential `pool.query("SELECT 1")` after a warm-up, from the calling task.
    private static func measure(pool: PostgresPool, iterations: Int) async throws -> Duration {
        _ = try await pool.query("SELECT 1")  // connected and warm
        for _ in 0..<1000 { _ = try await pool.query("SELECT 1") }
        return try await ContinuousClock().measure {
            for _ in 0..<iterations { _ = try await pool.query("SELECT 1") }
        }
    }

    private static func ratio(_ duration: Duration, _ baseline: Duration) -> String {
        String(format: "%.3f", seconds(duration) / seconds(baseline))
    }

    /// The baseline: PQexecParams on one connection, on a plain thread, nothing else.
    private static func rawLibpq(conninfo: String, iterations: Int) throws -> Duration {
        guard let connection = PQconnectdb(conninfo), PQstatus(connection) == CONNECTION_OK else {
            throw ValidationError("raw libpq connect failed")
        }
        defer { PQfinish(connection) }
        func once() {
            let result = PQexecParams(connection, "SELECT 1", 0, nil, nil, nil, nil, 0)
            precondition(PQresultStatus(result) == PGRES_TUPLES_OK)
            PQclear(result)
        }
        for _ in 0..<1000 { once() }
        return ContinuousClock().measure {
            for _ in 0..<iterations { once() }
        }
    }

    private func copyEvents(pool: PostgresPool) async throws {
        try await Migrator(pool: pool).migrate()
        let now = Date()
        try await EventPartitions(pool: pool, monthsAhead: 1, retentionDays: nil).maintain(now: now)
        let monthStart = EventPartitions.Month(containing: now).start
        // received_at spread over the hour before now, kept inside the current month's partition.
        let earliest = max(monthStart, now.addingTimeInterval(-3600))
        let span = now.timeIntervalSince(earliest)
        let types = ["app_launched", "game_started", "game_ended", "level_completed", "purchase"]
        let modes = ["classic", "blitz"]
        let count = rows
        print("(b) COPY \(count) event rows into the partitioned events table (3 indexes), \(connections) connection(s)")
        let columns = [
            "event_id", "type", "user_id", "client_time", "received_at", "score", "game_mode", "tournament_id",
            "duration_ms", "level", "attributes",
        ]
        let slices = slices(of: count)
        let clock = ContinuousClock()
        var copied = 0
        let elapsed = try await clock.measure {
            copied = try await withThrowingTaskGroup(of: Int.self) { group in
                for slice in slices {
                    group.addTask {
                        try await pool.withConnection { connection in
                            try await connection.copyFrom(table: "events", columns: columns, rows: slice) { i, row in
                                let received = earliest.addingTimeInterval(span * Double(i) / Double(count))
                                let type = types[i % types.count]
                                row.append("e-\(i)")
                                row.append(type)
                                row.append("u-\(i % 50_000)")
                                row.append(received.addingTimeInterval(-0.25))
                                row.append(received)
                                row.append(type == "game_ended" ? Int64(i % 100_000) : nil)
                                row.append(type == "game_ended" || type == "game_started" ? modes[i & 1] : nil)
                                row.append(type == "game_ended" && i % 10 == 0 ? "t-\(i % 7)" : nil)
                                row.append(Int64(i % 600_000))
                                row.append(type == "level_completed" ? Int32(i % 50) : nil)
                                row.append(i % 4 == 0 ? "{\"platform\":\"ios\",\"build\":\"\(i % 97)\"}" : "{}")
                            }
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        let seconds = Self.seconds(elapsed)
        print("  copied \(copied) rows in \(String(format: "%.2f", seconds)) s: \(Int(Double(copied) / seconds)) rows/s (target >= 200000)")
        let stored = try await pool.query("SELECT count(*) FROM events").scalar(Int.self)
        print("  rows in events: \(stored)")
        try await serverSideBaseline(pool: pool, count: count, earliest: earliest, span: span, copySeconds: seconds)
    }

    /// The same-run reference: Postgres generating the same rows itself into the same (emptied)
    /// table, one INSERT ... SELECT per connection's slice, with no client, protocol or input
    /// parsing. What is left is the table's own cost (heap, WAL, the 3 indexes) plus evaluating
    /// the generating expressions: a COPY near it is bound by the table, not by Tally.
    private func serverSideBaseline(pool: PostgresPool, count: Int, earliest: Date, span: TimeInterval, copySeconds: Double) async throws {
        _ = try await pool.query("TRUNCATE events")
        _ = try await pool.query("CHECKPOINT")
        let slices = slices(of: count)
        let elapsed = try await ContinuousClock().measure {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for slice in slices {
                    group.addTask {
                        _ = try await pool.query(
                            """
                            INSERT INTO events (event_id, type, user_id, client_time, received_at, score, game_mode, tournament_id,
                                                duration_ms, level, attributes)
                            SELECT 'e-' || i, t, 'u-' || (i % 50000), r - interval '250 ms', r,
                                   CASE WHEN t = 'game_ended' THEN i % 100000 END,
                                   CASE WHEN t IN ('game_ended', 'game_started') THEN (ARRAY['classic', 'blitz'])[(i & 1) + 1] END,
                                   CASE WHEN t = 'game_ended' AND i % 10 = 0 THEN 't-' || (i % 7) END,
                                   i % 600000, CASE WHEN t = 'level_completed' THEN i % 50 END,
                                   CASE WHEN i % 4 = 0 THEN jsonb_build_object('platform', 'ios', 'build', (i % 97)::text) ELSE '{}' END
                            FROM generate_series($1::bigint, $2::bigint) AS i,
                                 LATERAL (SELECT (ARRAY['app_launched', 'game_started', 'game_ended', 'level_completed', 'purchase'])[i % 5 + 1] AS t,
                                                 to_timestamp($3::float8 + $4::float8 * i / $5::float8) AS r) AS row
                            """,
                            [slice.lowerBound, slice.upperBound - 1, earliest.timeIntervalSince1970, span, count])
                    }
                }
                try await group.waitForAll()
            }
        }
        let seconds = Self.seconds(elapsed)
        let rate = Double(count) / seconds
        print("(c) same-run reference: Postgres inserting the same rows itself (INSERT ... SELECT generate_series, no client), "
            + "\(connections) connection(s)")
        print("  \(count) rows in \(String(format: "%.2f", seconds)) s: \(Int(rate)) rows/s; COPY above ran at "
            + "\(String(format: "%.2f", Double(count) / copySeconds / rate))x of it")
    }

    /// The rows each connection copies: `connections` consecutive ranges covering `count`.
    private func slices(of count: Int) -> [Range<Int>] {
        (0..<connections).map { k in (count * k / connections)..<(count * (k + 1) / connections) }
    }

    private static func seconds(_ duration: Duration) -> Double {
        duration.inSeconds
    }

    private static func micros(_ duration: Duration, _ n: Int) -> String {
        String(format: "%.1f", seconds(duration) * 1e6 / Double(n))
    }

    /// Runs blocking work on a new thread (never on the cooperative pool).
    private static func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result(catching: body)) }
            thread.start()
        }
    }
}
