import TestSupport
import Storage
import Foundation
import Testing

@Suite("Postgres values, configuration and error mapping")
struct PostgresValueTests {
    static let database = TestServices.shared.databaseURL

    /// Values sent as parameters come back equal through a cast to their column type.
    @Test func valuesRoundTripThroughTheServer() async throws {
        var config = try TestDatabase.serverConfiguration(url: Self.database)
        config.minConnections = 0
        config.maxConnections = 1
        let pool = PostgresPool(configuration: config)
        let date = Date(timeIntervalSince1970: 1_717_171_717.123456)
        let row = try await pool.query(
            "SELECT $1::bigint, $2::int, $3::float8, $4::text, $5::bool, $6::timestamptz, $7::bytea, $8::text, $9::float8, $10::date",
            [Int64.min, Int32(-7), 0.1, "ü\t\"x\" ' \\", true, date, PostgresBytes([0, 255, 16]), String?.none, Double.infinity,
             "1969-07-20"]
        )[0]
        #expect(try row.decode(0, as: Int64.self) == .min)
        #expect(try row.decode(1, as: Int32.self) == -7)
        #expect(try row.decode(2, as: Double.self) == 0.1)
        #expect(try row.decode(3, as: String.self) == "ü\t\"x\" ' \\")
        #expect(try row.decode(4, as: Bool.self))
        let decoded = try row.decode(5, as: Date.self)
        #expect(abs(decoded.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_001)
        #expect(try row.decode(6, as: PostgresBytes.self) == PostgresBytes([0, 255, 16]))
        #expect(try row.decode(7, as: String?.self) == nil)
        #expect(try row.decode(8, as: Double.self) == .infinity)
        #expect(try row.decode(9, as: Date.self) == Date(timeIntervalSince1970: -165 * 86_400))
        #expect(throws: PostgresError.self) { try row.decode(7, as: String.self) }
        #expect(throws: PostgresError.self) { try row.decode(3, as: Int.self) }
        await pool.shutdown()
    }

    @Test func configurationFromURL() throws {
        let config = try PostgresConfiguration(url: "postgresql://ann:p%40ss@db.example:6543/app?sslmode=require&connect_timeout=3")
        #expect(config.host == "db.example" && config.port == 6543 && config.user == "ann" && config.password == "p@ss")
        #expect(config.database == "app" && config.connectionOptions == ["sslmode": "require"] && config.connectTimeout == .seconds(3))
        #expect(!config.description.contains("p@ss") && !config.description.contains("p%40ss"))
        #expect(throws: PostgresError.self) { try PostgresConfiguration(url: "mysql://x@y/z") }

    }
}
