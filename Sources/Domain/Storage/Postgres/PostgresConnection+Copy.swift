internal import NIOCore

extension PostgresConnection {
    /// Bulk-loads rows with `COPY table (columns) FROM STDIN`: rows are encoded straight into
    /// 256 KiB chunks on the caller, and each chunk is sent on another of the pool's threads
    /// while the next one is encoded (also for a task on `taskExecutor`, whose start and end of
    /// COPY run inline), never one round trip per row. Returns the rows copied. `encode`
    /// appends one row's fields in column order.
    ///
    /// In `.binary` format (the default) each value goes in its column type's binary form, so
    /// the server parses no text: values must then match their columns (an integer for an
    /// integer column, a `Date` for a timestamp, a `String` for text or json/jsonb, ...; see
    /// `PostgresEncodable.appendPostgresBinary`), else the COPY fails with `.misuse`. When a
    /// column's type has no binary form here (numeric, uuid, arrays, ...), the COPY goes in
    /// text format instead, where the server casts every value from its text form.
    ///
    /// The column types are looked up once per connection; a COPY that fails makes the next one
    /// look them up again (so a COPY right after its table's types changed may fail once).
    ///
    /// `table` may be schema-qualified (`schema.table`); names are quoted.
    public nonisolated(nonsending) func copyFrom<Rows: Sequence>(
        table: String, columns: [String], rows: Rows, format: PostgresCopyFormat = .binary,
        encode: (Rows.Element, inout PostgresCopyRow) throws -> Void
    ) async throws -> Int {
        let quotedTable = table.split(separator: ".").map { PostgresCopyRow.quoteIdentifier(String($0)) }.joined(separator: ".")
        let quotedColumns = columns.map(PostgresCopyRow.quoteIdentifier).joined(separator: ", ")
        let sql = "COPY \(quotedTable) (\(quotedColumns)) FROM STDIN"
        let handle = handle
        let millis = try statementTimeoutMillis(nil)
        let inTransaction = handle.inTransaction
        // The column types are looked up once per connection (a round trip to the catalog).
        let typesKey = "\(quotedTable) (\(quotedColumns))"
        let cachedTypes = format == .binary ? handle.copyColumnTypes[typesKey] : .some(nil)
        let types: [PostgresColumnType]?
        do {
            types = try await blocking { () throws(PostgresError) -> [PostgresColumnType]? in
                let types: [PostgresColumnType]?
                if let cachedTypes {
                    types = cachedTypes
                } else {
                    types = try handle.binaryColumnTypes(table: quotedTable, columns: columns)
                    handle.copyColumnTypes[typesKey] = .some(types)
                }
                if let millis {
                    // COPY cannot be pipelined, so its timeout is set and reset around it.
                    try handle.executeScript("SET \(inTransaction ? "LOCAL " : "")statement_timeout = \(millis)")
                    handle.localTimeoutActive = inTransaction
                }
                _ = try handle.receive(try handle.sendCopyIn(types == nil ? sql : sql + " (FORMAT binary)"))
                return types
            }
        } catch {
            handle.copyColumnTypes[typesKey] = nil
            throw error
        }

        let chunkSize = 256 * 1024
        var row = PostgresCopyRow(columns: columns, types: types)
        row.bytes.reserveCapacity(chunkSize + 4096)
        row.appendHeader()
        // The chunk being sent while the next is encoded; at most one, so the connection is
        // used by one thread at a time.
        var inFlight: EventLoopFuture<Void>?
        let executor = pool.taskExecutor
        let loop = pool.timerLoop
        do {
            for element in rows {
                try encode(element, &row)
                try row.endRow()
                if row.bytes.count >= chunkSize {
                    try await inFlight?.get()
                    if Task.isCancelled { throw PostgresError(.cancelled, "task cancelled during COPY") }
                    let chunk = row.bytes
                    row.bytes.removeAll(keepingCapacity: true)
                    let sent = loop.makePromise(of: Void.self)
                    guard executor.submit({ sent.completeWith(Result { () throws(PostgresError) in try handle.sendCopyData(chunk) }) }) else {
                        sent.fail(PostgresError(.poolClosed, "database pool is shut down"))
                        throw PostgresError(.poolClosed, "database pool is shut down")
                    }
                    inFlight = sent.futureResult
                }
            }
            try await inFlight?.get()
            row.appendTrailer()
            let last = row.bytes
            let copied = try await blocking { () throws(PostgresError) -> Int in
                if !last.isEmpty { try handle.sendCopyData(last) }
                let copied = try handle.endCopy()
                if millis != nil, !inTransaction { try handle.executeScript("SET statement_timeout TO DEFAULT") }
                return copied
            }
            return copied
        } catch {
            handle.copyColumnTypes[typesKey] = nil
            _ = try? await inFlight?.get()  // the connection is free again only after that send
            if handle.isOK {
                // Ends COPY on the server so the connection is usable again (the server reports
                // the abort as an error, which is swallowed: the caller's error is the news).
                try? await pool.taskExecutor.run { () throws(PostgresError) in
                    _ = try? handle.endCopy(abortReason: "aborted by the client")
                    if millis != nil, !handle.inTransaction { try handle.executeScript("SET statement_timeout TO DEFAULT") }
                }
            }
            throw error
        }
    }

    /// `copyFrom` for rows given as arrays of values.
    public nonisolated(nonsending) func copyFrom(
        table: String, columns: [String], rows: [[any PostgresEncodable]], format: PostgresCopyFormat = .binary
    ) async throws -> Int {
        try await copyFrom(table: table, columns: columns, rows: rows, format: format) { values, row in
            for value in values { row.append(value) }
        }
    }
}

/// COPY's data format.
public enum PostgresCopyFormat: Sendable {
    /// Tab-separated text: the server parses and casts every value.
    case text
    /// Each value in its type's binary form; falls back to text for column types without one here.
    case binary
}
