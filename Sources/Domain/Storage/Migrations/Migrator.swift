public import Logging

/// Applies the numbered migrations not yet recorded in `schema_migrations`, in order, each in
/// its own transaction together with its record.
///
/// Several instances may start at once: the whole run holds a session advisory lock, so the
/// others wait, then find everything applied; each migration is applied exactly once. A
/// migration whose SQL changed after it was applied stops the run (its checksum differs).
public struct Migrator: Sendable {
    public let pool: PostgresPool
    public let migrations: [Migration]
    let logger: Logger

    /// Advisory lock key of migrations ("tallymig" in ASCII).
    static let lockKey: Int64 = 0x7461_6c6c_796d_6967

    public init(pool: PostgresPool, migrations: [Migration], logger: Logger = Logger(label: "tally.migrations")) throws(MigrationError) {
        self.pool = pool
        self.migrations = try Migration.ordered(migrations)
        self.logger = logger
    }

    /// Applies what is pending and returns the versions this call applied (empty when the
    /// schema was up to date or another instance applied them).
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await pool.withConnection { connection in
            _ = try await connection.query("SELECT pg_advisory_lock($1)", [Self.lockKey])
            do {
                let applied = try await applyPending(connection)
                _ = try await connection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey])
                return applied
            } catch {
                // A broken connection released the lock with its session; otherwise release it.
                if connection.handle.isOK, !connection.handle.inTransaction {
                    _ = try? await connection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey])
                }
                throw error
            }
        }
    }

    private func applyPending(_ connection: PostgresConnection) async throws -> [Int] {
        try await connection.executeScript(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """)
        var recorded: [Int: (name: String, checksum: String)] = [:]
        for row in try await connection.query("SELECT version, name, checksum FROM schema_migrations") {
            recorded[try row.decode(0, as: Int.self)] = (try row.decode(1), try row.decode(2))
        }
        for migration in migrations {
            if let record = recorded[migration.version], record.checksum != migration.checksum {
                throw MigrationError(
                    "migration \(migration.version) (\(migration.name)) changed after it was applied "
                        + "(checksum \(record.checksum) recorded, \(migration.checksum) now); add a new migration instead")
            }
        }
        var applied: [Int] = []
        for migration in migrations where recorded[migration.version] == nil {
            logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            try await connection.withTransaction { transaction in
                try await transaction.executeScript(migration.sql)
                _ = try await transaction.query(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    [migration.version, migration.name, migration.checksum])
            }
            applied.append(migration.version)
        }
        return applied
    }
}
