import Foundation
public import Logging
public import Storage

/// The product's schema: every domain's numbered SQL migrations (`Events/Migrations`,
/// `Leaderboards/Migrations`, ...), one version sequence over all of them.
public enum Schema {
    /// The migrations shipped in this module's resources, in version order.
    public static func migrations() throws(MigrationError) -> [Migration] {
        let files = Bundle.module.paths(forResourcesOfType: "sql", inDirectory: nil).map { URL(fileURLWithPath: $0) }
        guard !files.isEmpty else { throw MigrationError("the SQL migrations are missing from the Domain resource bundle") }
        return try Migration.load(files)
    }
}

extension Migrator {
    /// With the product's migrations.
    public init(pool: PostgresPool, logger: Logger = Logger(label: "tally.migrations")) throws(MigrationError) {
        try self.init(pool: pool, migrations: Schema.migrations(), logger: logger)
    }
}
