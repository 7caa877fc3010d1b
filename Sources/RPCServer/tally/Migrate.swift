import ArgumentParser
import Domain
import Logging
import Storage

/// `tally migrate`: applies pending database migrations and creates the events partitions
/// ahead, then exits. Safe to run beside starting servers (advisory locks).
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations and create the events partitions ahead.")

    @OptionGroup(title: "Storage") var storage: StorageSettings
    @OptionGroup(title: "Events") var events: EventSettings

    func run() async throws {
        let env = Environment()
        guard let primary = try storage.primary(env) else { throw SettingsError("DATABASE_URL (or --database-url) is required") }
        var product = Product.Configuration.defaults
        (product.partitionsAhead, product.retentionDays) = try events.partitions(env)
        let applied = try await Self.migrate(primary, product: product, logger: Logger(label: "tally.migrate"))
        print(applied.isEmpty ? "schema up to date" : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
    }

    /// Migrations, then one partition maintenance pass, on a small pool of their own (shared
    /// with `serve`, which runs it before serving).
    static func migrate(_ database: PostgresConfiguration, product: Product.Configuration, logger: Logger) async throws -> [Int] {
        var config = database
        config.minConnections = 0
        config.maxConnections = 2
        let pool = PostgresPool(configuration: config, logger: logger)
        do {
            let applied = try await Migrator(pool: pool, logger: logger).migrate()
            let partitions = EventPartitions(pool: pool, monthsAhead: product.partitionsAhead, retentionDays: product.retentionDays)
            let report = try await partitions.maintain()
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
