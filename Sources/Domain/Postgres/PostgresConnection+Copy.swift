extension PostgresConnection {
    /// Bulk-loads rows with `COPY table (columns) FROM STDIN` in text format: rows are encoded
    /// straight into 256 KiB chunks on the caller and sent on the blocking threads, never one
    /// round trip per row. Returns the rows copied. `encode` appends one row's fields in
    /// column order.
    ///
    /// `table` may be schema-qualified (`schema.table`); names are quoted.
    public nonisolated(nonsending) func copyFrom<Rows: Sequence>(
        table: String, columns: [String], rows: Rows,
        encode: (Rows.Element, inout PostgresCopyRow) throws -> Void
    ) async throws -> Int {
        let quotedTable = table.split(separator: ".").map { PostgresCopyRow.quoteIdentifier(String($0)) }.joined(separator: ".")
        let quotedColumns = columns.map(PostgresCopyRow.quoteIdentifier).joined(separator: ", ")
        let sql = "COPY \(quotedTable) (\(quotedColumns)) FROM STDIN"
        let handle = handle
        let millis = try statementTimeoutMillis(nil)
        let inTransaction = handle.inTransaction
        try await blocking { () throws(PostgresError) in
            if let millis {
                // COPY cannot be pipelined, so its timeout is set and reset around it.
                try handle.executeScript("SET \(inTransaction ? "LOCAL " : "")statement_timeout = \(millis)")
                handle.localTimeoutActive = inTransaction
            }
            try handle.beginCopy(sql)
        }

        let chunkSize = 256 * 1024
        var row = PostgresCopyRow(columns: columns.count)
        row.bytes.reserveCapacity(chunkSize + 4096)
        do {
            for element in rows {
                try encode(element, &row)
                try row.endRow()
                if row.bytes.count >= chunkSize {
                    let chunk = row.bytes
                    row.bytes.removeAll(keepingCapacity: true)
                    try await blocking { () throws(PostgresError) in try handle.sendCopyData(chunk) }
                }
            }
            let last = row.bytes
            let copied = try await blocking { () throws(PostgresError) -> Int in
                if !last.isEmpty { try handle.sendCopyData(last) }
                let copied = try handle.endCopy()
                if millis != nil, !inTransaction { try handle.executeScript("SET statement_timeout TO DEFAULT") }
                return copied
            }
            return copied
        } catch {
            if handle.isOK {
                // Ends COPY on the server so the connection is usable again (the server reports
                // the abort as an error, which is swallowed: the caller's error is the news).
                try? await pool.executor.run { () throws(PostgresError) in
                    _ = try? handle.endCopy(abortReason: "aborted by the client")
                    if millis != nil, !handle.inTransaction { try handle.executeScript("SET statement_timeout TO DEFAULT") }
                }
            }
            throw error
        }
    }

    /// `copyFrom` for rows given as arrays of values.
    public nonisolated(nonsending) func copyFrom(table: String, columns: [String], rows: [[any PostgresEncodable]]) async throws -> Int {
        try await copyFrom(table: table, columns: columns, rows: rows) { values, row in
            for value in values { row.append(value) }
        }
    }
}

/// The row being written by a `copyFrom` encoder: append each column's value in order.
public struct PostgresCopyRow {
    var bytes: [UInt8] = []
    let columns: Int
    private var fieldsInRow = 0

    init(columns: Int) { self.columns = columns }

    /// Appends the next field, escaped for COPY's text format (NULL as `\N`).
    public mutating func append(_ value: some PostgresEncodable) {
        if fieldsInRow > 0 { bytes.append(UInt8(ascii: "\t")) }
        fieldsInRow += 1
        if value.isPostgresNull {
            bytes.append(UInt8(ascii: "\\"))
            bytes.append(UInt8(ascii: "N"))
            return
        }
        let start = bytes.count
        value.appendPostgresText(to: &bytes)
        // Escape in place only when needed: most fields have nothing to escape.
        var needsEscape = false
        for index in start..<bytes.count where Self.needsEscape(bytes[index]) {
            needsEscape = true
            break
        }
        guard needsEscape else { return }
        let raw = Array(bytes[start...])
        bytes.removeSubrange(start...)
        for byte in raw {
            switch byte {
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            default: bytes.append(byte)
            }
        }
    }

    mutating func endRow() throws(PostgresError) {
        guard fieldsInRow == columns else {
            throw PostgresError(.misuse, "COPY row has \(fieldsInRow) fields, the statement names \(columns) columns")
        }
        bytes.append(UInt8(ascii: "\n"))
        fieldsInRow = 0
    }

    @inline(__always)
    private static func needsEscape(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
    }

    /// `"name"` with embedded quotes doubled.
    static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}
