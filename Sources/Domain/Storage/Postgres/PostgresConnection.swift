/// A connection leased from a `PostgresPool` for the duration of a `withConnection` body.
///
/// Not `Sendable` on purpose: it must not escape the body or be used by two tasks at once.
/// Statements take parameters only as `$1, $2, ...` (never spliced into SQL text). Each runs
/// with a statement timeout of the lease's deadline or its own `timeout`, whichever is sooner;
/// cancelling the calling task cancels the running statement (PQcancel, best effort).
public struct PostgresConnection {
    let handle: ConnectionHandle
    let pool: PostgresPool
    /// The lease's deadline (the RPC's, typically): every statement's timeout is bounded by it.
    public let deadline: ContinuousClock.Instant?

    init(handle: ConnectionHandle, pool: PostgresPool, deadline: ContinuousClock.Instant?) {
        self.handle = handle
        self.pool = pool
        self.deadline = deadline
    }

    public enum IsolationLevel: String, Sendable {
        case readCommitted = "READ COMMITTED"
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Runs one statement with `$n` parameters and returns its rows.
    public nonisolated(nonsending) func query(
        _ sql: String, _ parameters: [any PostgresEncodable] = [], timeout: Duration? = nil
    ) async throws -> PostgresRows {
        let encoded = EncodedParameters(parameters)
        let millis = try statementTimeoutMillis(timeout)
        let results = try await exchange { handle throws(PostgresError) in try handle.sendStatement(sql, encoded, timeoutMillis: millis) }
        return PostgresRows(results[0])
    }

    /// Runs a script of statements without parameters (simple protocol), e.g. a migration.
    public nonisolated(nonsending) func executeScript(_ script: String, timeout: Duration? = nil) async throws {
        let millis = try statementTimeoutMillis(timeout)
        let handle = handle
        try await blocking { () throws(PostgresError) in
            if let millis {
                try handle.executeScript("SET statement_timeout = \(millis)")
            }
            let outcome = Result { () throws(PostgresError) in try handle.executeScript(script) }
            if millis != nil, handle.isOK, !handle.inTransaction { try? handle.executeScript("SET statement_timeout TO DEFAULT") }
            try outcome.get()
        }
    }

    /// BEGIN, `body`, COMMIT; ROLLBACK (and rethrow) when `body` throws.
    public func withTransaction<T>(
        isolation level: IsolationLevel = .readCommitted,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        guard !handle.inTransaction else {
            throw PostgresError(.misuse, "a transaction is already open on this connection")
        }
        let handle = handle
        let begin = level == .readCommitted ? "BEGIN" : "BEGIN ISOLATION LEVEL \(level.rawValue)"
        _ = try await exchange { handle throws(PostgresError) in try handle.sendScript(begin) }
        let result: T
        do {
            result = try await body(PostgresConnection(handle: handle, pool: pool, deadline: deadline))
        } catch {
            handle.forgetSession()
            if handle.isOK {
                // Rollback must run even if the task was cancelled: it is not cancellable here.
                try? await pool.taskExecutor.run { () throws(PostgresError) in try handle.executeScript("ROLLBACK") }
            }
            throw error
        }
        do {
            _ = try await exchange { handle throws(PostgresError) in try handle.sendScript("COMMIT") }
        } catch {
            handle.forgetSession()
            throw error
        }
        return result
    }

    /// Runs `script` once per server session (this connection, until it closes), e.g. the
    /// CREATE of a temporary table that statements on it need: later calls with the same `key`
    /// send nothing. Run in a transaction that then fails, it runs again the next time.
    public nonisolated(nonsending) func prepareSession(_ key: String, _ script: String) async throws {
        guard !handle.preparedSession.contains(key) else { return }
        try await executeScript(script)
        handle.preparedSession.insert(key)
    }

    // MARK: internals

    /// The timeout in whole milliseconds (at least 1) for a statement sent now, or nil.
    func statementTimeoutMillis(_ timeout: Duration?) throws(PostgresError) -> Int? {
        var limit = timeout ?? (deadline == nil ? pool.configuration.defaultStatementTimeout : nil)
        if let deadline {
            let remaining = deadline - .now
            limit = limit.map { Swift.min($0, remaining) } ?? remaining
        }
        guard let limit else { return nil }
        let millis = limit.millisecondsRoundedUp
        guard millis >= 1 else {
            throw PostgresError(.statementTimeout, "deadline passed before the statement was sent")
        }
        // statement_timeout takes at most INT_MAX ms (~24.8 days): a client deadline further
        // away (grpc-timeout allows 99999999H) would make Postgres refuse every statement.
        return Int(Swift.min(millis, Int64(Int32.max)))
    }

    /// Runs a blocking call on the pool's threads; a cancelled task sends PQcancel.
    nonisolated(nonsending) func blocking<T: Sendable>(_ body: @escaping @Sendable () throws(PostgresError) -> T) async throws -> T {
        try await exchange(send: { _ throws(PostgresError) in }, receive: { _, _ throws(PostgresError) in try body() })
    }

    /// One round trip: `send` queues and sends the request on the calling thread without
    /// blocking, the results are read on the pool's threads (inline when the task is on one);
    /// a cancelled task sends PQcancel from another of them.
    nonisolated(nonsending) func exchange(
        _ send: (ConnectionHandle) throws(PostgresError) -> ConnectionHandle.Exchange
    ) async throws -> [ResultHandle] {
        try await exchange(send: send) { handle, exchange throws(PostgresError) in try handle.receive(exchange) }
    }

    nonisolated(nonsending) func exchange<Started: Sendable, T: Sendable>(
        send: (ConnectionHandle) throws(PostgresError) -> Started,
        receive: @escaping @Sendable (ConnectionHandle, Started) throws(PostgresError) -> T
    ) async throws -> T {
        if Task.isCancelled { throw PostgresError(.cancelled, "task cancelled before the statement was sent") }
        let handle = handle
        let executor = pool.taskExecutor
        return try await withTaskCancellationHandler {
            try await executor.run(startingWith: { () throws(PostgresError) in try send(handle) }) { started throws(PostgresError) in
                try receive(handle, started)
            }
        } onCancel: {
            executor.submitFirst { handle.sendCancel() }
        }
    }
}

/// One statement of a pipeline.
public struct PostgresStatement: Sendable {
    public var sql: String
    public var parameters: [any PostgresEncodable]

    public init(_ sql: String, _ parameters: [any PostgresEncodable] = []) {
        self.sql = sql
        self.parameters = parameters
    }
}
