package import Storage
import Foundation

/// A database of its own on the shared test server (`CREATE DATABASE t_<random>`), so tests
/// running in parallel never see each other's tables; `drop()` at the end.
package struct TestDatabase: Sendable {
    package let name: String
    package let base: PostgresConfiguration

    package static func create(serverURL: String = TestServices.shared.databaseURL) async throws -> TestDatabase {
        let base = try serverConfiguration(url: serverURL)
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try await withAdminPool(base) { pool in _ = try await pool.query("CREATE DATABASE \(name)") }
        return TestDatabase(name: String(name), base: base)
    }

    /// The configuration of `url` with a connect timeout of a minute instead of the default 5 s.
    /// At the start of a run hundreds of tests create databases and open pools at once while
    /// private servers run initdb beside them, on 2 shared cores; a backend's start then took
    /// more than 5 s in CI. No test here is about connect speed (tests of an unreachable server
    /// see a refused connection, which fails at once), so a slow start must not fail one.
    package static func serverConfiguration(url: String) throws -> PostgresConfiguration {
        var config = try PostgresConfiguration(url: url)
        config.connectTimeout = .seconds(60)
        return config
    }

    /// A pool configuration for this database; small by default, lazily filled.
    package func configuration(min: Int = 0, max: Int = 4) -> PostgresConfiguration {
        var config = base
        config.database = name
        config.minConnections = min
        config.maxConnections = max
        return config
    }

    /// A pool on this database; shut it down at the end.
    package func pool(min: Int = 0, max: Int = 4, _ adjust: (inout PostgresConfiguration) -> Void = { _ in }) -> PostgresPool {
        var config = configuration(min: min, max: max)
        adjust(&config)
        return PostgresPool(configuration: config)
    }

    package func drop() async {
        try? await Self.withAdminPool(base) { pool in _ = try await pool.query("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
    }

    /// A one-connection pool on the server's own database, for DDL and pg_terminate_backend.
    package static func withAdminPool<T>(_ base: PostgresConfiguration, _ body: (PostgresPool) async throws -> T) async throws -> T {
        var config = base
        config.minConnections = 0
        config.maxConnections = 1
        let pool = PostgresPool(configuration: config)
        do {
            let result = try await body(pool)
            await pool.shutdown()
            return result
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}

/// Opens once, for tests that hold connections until told to let go.
package actor Gate {
    package init() {}

    private var isOpen = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    package func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiting.append($0) }
    }

    package func open() {
        isOpen = true
        for continuation in waiting { continuation.resume() }
        waiting.removeAll()
    }
}

/// Polls `condition` every 20 ms until it holds or `attempts` run out (bounded waits for
/// effects another process causes; no assertion on how long it took).
package func eventually(attempts: Int = 250, _ condition: () async throws -> Bool) async throws -> Bool {
    for _ in 0..<attempts {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return false
}
