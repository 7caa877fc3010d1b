import Storage
import TestSupport

@testable import Domain

/// A database of one test, with the product's migrations applied; dropped afterwards.
enum MigratedDatabase {
    static func with<T>(maxConnections: Int, _ body: (PostgresDatabase) async throws -> T) async throws -> T {
        let testDatabase = try await TestDatabase.create()
        let database = PostgresDatabase(primary: testDatabase.configuration(max: maxConnections))
        _ = try await Migrator(pool: database.primary).migrate()
        do {
            let result = try await body(database)
            await database.shutdown()
            await testDatabase.drop()
            return result
        } catch {
            await database.shutdown()
            await testDatabase.drop()
            throw error
        }
    }
}
