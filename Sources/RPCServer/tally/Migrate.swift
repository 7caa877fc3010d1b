import ArgumentParser
import Domain
import Storage
import Foundation
import Logging

/// `tally migrate`: applies pending database migrations and creates the events partitions
/// ahead, then exits. Safe to run beside starting servers (advisory locks).
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations and create the events partitions ahead.")

    @Option(help: "PostgreSQL URL, postgresql://user:password@host:port/database (env DATABASE_URL).")
    var databaseURL: String?

    func run() async throws {
        var environment = ProcessInfo.processInfo.environment
        if let databaseURL { environment["DATABASE_URL"] = databaseURL }
        let applied = try await Self.migrate(environment: environment, logger: Logger(label: "tally.migrate"))
        print(applied.isEmpty ? "schema up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
    }

    /// Migrations, then one partition maintenance pass, on a small pool of their own (shared
    /// with `serve`, which runs it before serving).
    static func migrate(environment: [String: String], logger: Logger) async throws -> [Int] {
        guard var config = try PostgresConfiguration.fromEnvironment(environment) else {
            throw ValidationError("DATABASE_URL (or --database-url) is required")
        }
        config.minConnections = 0
        config.maxConnections = 2
        let pool = PostgresPool(configuration: config, logger: logger)
        do {
            let applied = try await Migrator(pool: pool, logger: logger).migrate()
            let report = try await EventPartitions(pool: pool, environment: environment).maintain()
            if !report.created.isEmpty || !report.dropped.isEmpty {
                logger.info(
                    "events partitions maintained",
                    metadata: ["created": "\(report.created)", "dropped": "\(report.dropped)"])
            }
            await pool.shutdown()
            return applied
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}
