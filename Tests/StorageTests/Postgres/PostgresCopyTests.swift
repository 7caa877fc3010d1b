import TestSupport
import Storage
import Foundation
import Testing

@Suite("COPY in binary and text format against a real PostgreSQL")
struct PostgresCopyTests {
    @Test(arguments: [PostgresCopyFormat.binary, .text])
    func everyEncodableTypeRoundTrips(format: PostgresCopyFormat) async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        _ = try await pool.query("""
            CREATE TABLE typed (i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, b boolean, t text,
                                v varchar(20), j json, jb jsonb, ts timestamptz, tsz timestamp, d date, by bytea)
            """)
        let at = Date(timeIntervalSince1970: 1_700_000_000.123456)
        let copied = try await pool.withConnection { connection in
            try await connection.copyFrom(
                table: "typed", columns: ["i2", "i4", "i8", "f4", "f8", "b", "t", "v", "j", "jb", "ts", "tsz", "d", "by"],
                rows: 0..<3, format: format
            ) { i, row in
                row.append(Int32(-7 + i))
                row.append(Int32(70_000 + i))
                row.append(Int64.min + Int64(i))
                row.append(i == 2 ? nil : 1.5)
                row.append(-2.25)
                row.append(i == 1)
                row.append("tab\there é \(i)")
                row.append(Substring("vv"))
                row.append("{\"a\": [1, 2]}")
                row.append(i == 0 ? "{}" : "{\"k\": \"v\"}")
                row.append(at.addingTimeInterval(Double(i)))
                row.append(Date(timeIntervalSince1970: -86_400 * 365.25 * 40))  // before 2000 and 1970
                row.append(Date(timeIntervalSince1970: 86_400 * 10_000 + 3600))
                row.append(PostgresBytes([0, 255, UInt8(i)]))
            }
        }
        #expect(copied == 3)
        let rows = try await pool.query("""
            SELECT i2, i4, i8, f4, f8, b, t, v, j::text, jb::text, ts, tsz::text, d::text, by FROM typed ORDER BY i2
            """)
        #expect(rows.count == 3)
        #expect(try rows[0].decode(0, as: Int.self) == -7)
        #expect(try rows[2].decode(1, as: Int.self) == 70_002)
        #expect(try rows[1].decode(2, as: Int64.self) == Int64.min + 1)
        #expect(try rows[0].decode(3, as: Double?.self) == 1.5)
        #expect(try rows[2].decode(3, as: Double?.self) == nil)
        #expect(try rows[0].decode(4, as: Double.self) == -2.25)
        #expect(try rows[1].decode(5, as: Bool.self) == true)
        #expect(try rows[1].decode(6, as: String.self) == "tab\there é 1")
        #expect(try rows[0].decode(7, as: String.self) == "vv")
        #expect(try rows[0].decode(8, as: String.self) == "{\"a\": [1, 2]}")
        #expect(try rows[1].decode(9, as: String.self) == "{\"k\": \"v\"}")
        #expect(try rows[2].decode(10, as: Date.self) == at.addingTimeInterval(2))
        #expect(try rows[0].decode(11, as: String.self) == "1930-01-01 00:00:00")
        #expect(try rows[0].decode(12, as: String.self) == "1997-05-19")
        #expect(try rows[2].decode(13, as: PostgresBytes.self) == PostgresBytes([0, 255, 2]))
        await pool.shutdown()
        await database.drop()
    }

    @Test func aColumnWithoutABinaryFormFallsBackToText() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        _ = try await pool.query("CREATE TABLE mixed (id bigint, amount numeric, tags text[])")
        let copied = try await pool.withConnection { connection in
            try await connection.copyFrom(table: "mixed", columns: ["id", "amount", "tags"], rows: [[Int64(1), "12.50", "{a,b}"]])
        }
        #expect(copied == 1)
        #expect(try await pool.query("SELECT amount::text FROM mixed").scalar(String.self) == "12.50")
        await pool.shutdown()
        await database.drop()
    }

    @Test func aValueOfTheWrongTypeFailsAndLeavesTheConnectionUsable() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        _ = try await pool.query("CREATE TABLE strict (id integer, at timestamptz)")
        await #expect {
            try await pool.withConnection { connection in
                try await connection.copyFrom(table: "strict", columns: ["id", "at"], rows: [[Int64(1), "2024-01-01"]])
            }
        } throws: { error in
            (error as? PostgresError)?.code == .misuse && "\(error)".contains("timestamptz")
        }
        await #expect {
            try await pool.withConnection { connection in
                try await connection.copyFrom(table: "strict", columns: ["id", "at"], rows: [[Int64(1) << 40, Date()]])
            }
        } throws: { error in (error as? PostgresError)?.code == .misuse }
        // The text format takes the same values: the server casts them.
        let copied = try await pool.withConnection { connection in
            try await connection.copyFrom(table: "strict", columns: ["id", "at"], rows: [[Int64(1), "2024-01-01"]], format: .text)
        }
        #expect(copied == 1)
        #expect(try await pool.query("SELECT count(*) FROM strict").scalar(Int.self) == 1)
        #expect(pool.statistics.closed == 0)
        await pool.shutdown()
        await database.drop()
    }

    @Test func manyChunksOverlapEncodingAndSending() async throws {
        let database = try await TestDatabase.create()
        let pool = database.pool(max: 1)
        _ = try await pool.query("CREATE TABLE bulk (id bigint, payload text)")
        let padding = String(repeating: "x", count: 200)
        let copied = try await pool.withConnection { connection in
            try await connection.copyFrom(table: "bulk", columns: ["id", "payload"], rows: 0..<20_000) { i, row in
                row.append(Int64(i))
                row.append(padding)
            }
        }
        #expect(copied == 20_000)
        #expect(try await pool.query("SELECT sum(id) FROM bulk").scalar(Int.self) == 19_999 * 20_000 / 2)
        await pool.shutdown()
        await database.drop()
    }
}
