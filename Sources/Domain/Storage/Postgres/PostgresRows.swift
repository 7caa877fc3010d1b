internal import CLibPQ
internal import Foundation

/// The rows a statement returned, read in place from libpq's result (no copy of the values).
public struct PostgresRows: Sendable, RandomAccessCollection {
    let result: ResultHandle?
    /// Rows inserted, updated, deleted, copied or selected, as the command tag says.
    public let rowsAffected: Int
    public let startIndex = 0
    public let endIndex: Int

    init(_ result: ResultHandle?) {
        self.result = result
        if let result {
            endIndex = Int(PQntuples(result.pointer))
            rowsAffected = Int(String(cString: PQcmdTuples(result.pointer))) ?? 0
        } else {
            endIndex = 0
            rowsAffected = 0
        }
    }

    init(rowsAffected: Int) {
        self.result = nil
        self.endIndex = 0
        self.rowsAffected = rowsAffected
    }

    public subscript(position: Int) -> PostgresRow {
        precondition(indices.contains(position), "row \(position) out of range 0..<\(endIndex)")
        return PostgresRow(result: result!, row: Int32(position))
    }

    /// Column names in order.
    public var columns: [String] {
        guard let result else { return [] }
        return (0..<PQnfields(result.pointer)).map { String(cString: PQfname(result.pointer, $0)) }
    }

    /// The first row's first column, for `SELECT count(*)`-style statements.
    public func scalar<T: PostgresDecodable>(_ type: T.Type = T.self) throws(PostgresError) -> T {
        guard let first else { throw PostgresError(.decoding, "expected a row, the statement returned none") }
        return try first.decode(0, as: T.self)
    }
}

/// One row of a `PostgresRows`.
public struct PostgresRow: Sendable {
    let result: ResultHandle
    let row: Int32

    /// Number of columns.
    public var count: Int { Int(PQnfields(result.pointer)) }

    /// Decodes column `column` (0-based).
    public func decode<T: PostgresDecodable>(_ column: Int, as type: T.Type = T.self) throws(PostgresError) -> T {
        let pointer = result.pointer
        guard column >= 0, column < Int(PQnfields(pointer)) else {
            throw PostgresError(.decoding, "column \(column) out of range, the row has \(PQnfields(pointer))")
        }
        let field = Int32(column)
        if PQgetisnull(pointer, row, field) == 1 {
            guard let null = T.postgresNull else {
                throw PostgresError(.decoding, "column \(columnName(field)) is NULL, cannot decode \(T.postgresTypeName)")
            }
            return null
        }
        let length = Int(PQgetlength(pointer, row, field))
        let value = PQgetvalue(pointer, row, field)!
        let decoded = value.withMemoryRebound(to: UInt8.self, capacity: length) {
            T.decode(postgresText: UnsafeBufferPointer(start: $0, count: length))
        }
        guard let decoded else {
            throw PostgresError(.decoding, "column \(columnName(field)) does not hold a \(T.postgresTypeName)")
        }
        return decoded
    }

    /// Decodes the column named `name`.
    public func decode<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws(PostgresError) -> T {
        let index = PQfnumber(result.pointer, "\"\(name.replacingOccurrences(of: "\"", with: "\"\""))\"")
        guard index >= 0 else { throw PostgresError(.decoding, "no column named \(name)") }
        return try decode(Int(index), as: T.self)
    }

    /// Whether column `column` is NULL.
    public func isNull(_ column: Int) -> Bool { PQgetisnull(result.pointer, row, Int32(column)) == 1 }

    private func columnName(_ field: Int32) -> String { String(cString: PQfname(result.pointer, field)) }
}
