extension PostgresConnection {
    /// Runs several statements in one round trip (libpq pipeline mode) and returns each one's
    /// rows. Outside a transaction they form one implicit transaction: all commit, or the first
    /// failure is thrown and none does.
    public nonisolated(nonsending) func pipeline(_ statements: [PostgresStatement], timeout: Duration? = nil) async throws -> [PostgresRows] {
        guard !statements.isEmpty else { return [] }
        let encoded = statements.map { ($0.sql, EncodedParameters($0.parameters)) }
        let millis = try statementTimeoutMillis(timeout)
        let results = try await exchange { handle throws(PostgresError) in try handle.sendPipeline(encoded, timeoutMillis: millis) }
        return results.map(PostgresRows.init)
    }
}
