internal import CLibPQ

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Statements as two halves: `send...` queues a request with libpq in non-blocking mode and
/// pushes it to the socket as far as the socket takes it, so it never blocks and may run on
/// the caller's thread; `receive` finishes sending and reads the results, blocking, on one of
/// the pool's threads.
///
/// Why split: a statement that waits for a blocking thread before it is sent pays a thread
/// wake-up on top of the round trip. Sent by the caller, it is already on its way to the server
/// while that thread wakes, and only the wake-up of the caller after the reply is left over.
/// A task already on one of the pool's threads (`PostgresPool.taskExecutor`) runs both halves
/// in a row on that thread, with no wake-up at all.
extension ConnectionHandle {
    /// What a `send...` call put on the wire, for `receive` to read back.
    enum Exchange: Sendable {
        /// One statement outside pipeline mode: one result.
        case statement
        /// `count` statements and a Sync in pipeline mode. The first `prefix` are the handle's
        /// own timeout settings; `setsLocalTimeout` when the first of them sets one.
        case pipeline(count: Int, prefix: Int, setsLocalTimeout: Bool)
        /// A script in the simple query protocol: any number of results, the first error counts.
        case script
        /// `COPY ... FROM STDIN`: the server answers by waiting for data.
        case copyIn
    }

    /// Sends one statement. With a timeout (or a local one to clear) it goes as a pipeline of
    /// `set_config('statement_timeout', ..., true)` + the statement + Sync: one round trip,
    /// and the setting ends with the statement's implicit transaction (or, inside an explicit
    /// transaction, is cleared by the next statement run without a timeout).
    func sendStatement(_ sql: String, _ parameters: EncodedParameters, timeoutMillis: Int?) throws(PostgresError) -> Exchange {
        if timeoutMillis != nil || localTimeoutActive {
            return try sendPipeline([(sql, parameters)], timeoutMillis: timeoutMillis)
        }
        try startSending()
        let sent = parameters.withCValues { count, values in
            PQsendQueryParams(connection, sql, count, nil, values, nil, nil, 0)
        }
        guard sent == 1 else { throw failure("could not send a statement") }
        try flushWithoutWaiting()
        return .statement
    }

    /// Sends statements in pipeline mode: all of them, then one Sync, so N statements cost one
    /// round trip. Outside an explicit transaction they form one implicit transaction: the
    /// first failure aborts the rest and nothing commits.
    func sendPipeline(_ statements: [(String, EncodedParameters)], timeoutMillis: Int?) throws(PostgresError) -> Exchange {
        var prefix: [(String, EncodedParameters)] = []
        if let timeoutMillis {
            var parameter = EncodedParameters()
            parameter.append(String(timeoutMillis))
            prefix.append(("SELECT set_config('statement_timeout', $1, true)", parameter))
        } else if localTimeoutActive && inTransaction {
            prefix.append(("SET LOCAL statement_timeout TO DEFAULT", EncodedParameters()))
        }
        try startSending()
        guard PQenterPipelineMode(connection) == 1 else { throw failure("could not enter pipeline mode") }
        for (sql, parameters) in prefix + statements {
            let sent = parameters.withCValues { count, values in
                PQsendQueryParams(connection, sql, count, nil, values, nil, nil, 0)
            }
            guard sent == 1 else { throw failure("could not send a pipelined statement") }
        }
        guard PQpipelineSync(connection) == 1 else { throw failure("could not send Sync") }
        try flushWithoutWaiting()
        return .pipeline(count: prefix.count + statements.count, prefix: prefix.count, setsLocalTimeout: timeoutMillis != nil)
    }

    /// Sends a script of statements without parameters (simple query protocol).
    func sendScript(_ script: String) throws(PostgresError) -> Exchange {
        try startSending()
        guard PQsendQuery(connection, script) == 1 else { throw failure("could not send a statement") }
        try flushWithoutWaiting()
        return .script
    }

    /// Sends `COPY ... FROM STDIN`.
    func sendCopyIn(_ sql: String) throws(PostgresError) -> Exchange {
        try startSending()
        guard PQsendQuery(connection, sql) == 1 else { throw failure("COPY could not start") }
        try flushWithoutWaiting()
        return .copyIn
    }

    /// Finishes sending what `send...` started and reads its results (blocking: the pool's
    /// threads only). Leaves the connection in blocking mode.
    func receive(_ exchange: Exchange) throws(PostgresError) -> [ResultHandle] {
        try flush()
        guard PQsetnonblocking(connection, 0) == 0 else { throw failure("could not leave non-blocking mode") }
        switch exchange {
        case .statement:
            return [try receiveOne()]
        case .pipeline(let count, let prefix, let setsLocalTimeout):
            let results = try receivePipeline(count: count, setsLocalTimeout: setsLocalTimeout)
            return Array(results.dropFirst(prefix))
        case .script:
            try receiveScript()
            return []
        case .copyIn:
            try receiveCopyIn()
            return []
        }
    }

    /// Runs a script on the calling thread, blocking (the pool's threads only).
    func executeScript(_ script: String) throws(PostgresError) {
        _ = try receive(try sendScript(script))
    }

    // MARK: halves

    private func startSending() throws(PostgresError) {
        cancelRequested.store(false, ordering: .relaxed)
        guard PQsetnonblocking(connection, 1) == 0 else { throw failure("could not enter non-blocking mode") }
    }

    /// One non-blocking push of libpq's output buffer; `receive` sends whatever is left.
    private func flushWithoutWaiting() throws(PostgresError) {
        if PQflush(connection) < 0 { throw failure("could not send to the server") }
    }

    /// Flushes libpq's output buffer, reading input meanwhile so the server never blocks on us.
    func flush() throws(PostgresError) {
        while true {
            let status = PQflush(connection)
            if status == 0 { return }
            if status < 0 { throw failure("could not send to the server") }
            var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN | POLLOUT), revents: 0)
            let ready = poll(&descriptor, 1, -1)
            if ready < 0 && errno != EINTR { throw failure("poll failed while sending (errno \(errno))") }
            if descriptor.revents & Int16(POLLIN) != 0, PQconsumeInput(connection) == 0 {
                throw failure("could not read from the server")
            }
        }
    }

    /// The single result of a statement (PQexec's rules: the last one, or the first error).
    private func receiveOne() throws(PostgresError) -> ResultHandle {
        var last: ResultHandle?
        var firstError: PostgresError?
        while let result = PQgetResult(connection) {
            if leftCopy(result) {
                firstError = firstError ?? PostgresError(.misuse, "COPY runs only through copyFrom")
                continue
            }
            do {
                last = try check(result)
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
        guard let last else { throw failure("no result from the server") }
        return last
    }

    private func receiveScript() throws(PostgresError) {
        defer { if !inTransaction { localTimeoutActive = false } }
        _ = try receiveOne()
    }

    private func receivePipeline(count: Int, setsLocalTimeout: Bool) throws(PostgresError) -> [ResultHandle] {
        var results: [ResultHandle] = []
        var firstError: PostgresError?
        for _ in 0..<count {
            guard let result = PQgetResult(connection) else { throw failure("connection lost during a pipeline") }
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_ABORTED {
                PQclear(result)
            } else if leftCopy(result) {
                firstError = firstError ?? PostgresError(.misuse, "COPY runs only through copyFrom")
            } else {
                do {
                    results.append(try check(result))
                } catch {
                    firstError = firstError ?? error
                }
            }
            // Each statement's results end with a NULL.
            while let extra = PQgetResult(connection) { PQclear(extra) }
        }
        guard let sync = PQgetResult(connection) else { throw failure("connection lost before the pipeline's Sync") }
        let syncStatus = PQresultStatus(sync)
        PQclear(sync)
        guard syncStatus == PGRES_PIPELINE_SYNC else { throw failure("pipeline ended without Sync") }
        guard PQexitPipelineMode(connection) == 1 else { throw failure("could not leave pipeline mode") }
        localTimeoutActive = inTransaction && setsLocalTimeout
        if let firstError { throw firstError }
        return results
    }

    private func receiveCopyIn() throws(PostgresError) {
        guard let result = PQgetResult(connection) else { throw failure("COPY could not start") }
        if PQresultStatus(result) == PGRES_COPY_IN {
            PQclear(result)
            return
        }
        let outcome = Result { () throws(PostgresError) in try check(result) }
        while let extra = PQgetResult(connection) { PQclear(extra) }
        _ = try outcome.get()
        throw PostgresError(.misuse, "statement is not COPY ... FROM STDIN")
    }

    /// A COPY begun by a statement sent as an ordinary one would keep PQgetResult returning
    /// COPY results forever: ends it (the server then reports an error) and clears `result`.
    private func leftCopy(_ result: OpaquePointer) -> Bool {
        switch PQresultStatus(result) {
        case PGRES_COPY_IN, PGRES_COPY_BOTH:
            PQclear(result)
            _ = PQputCopyEnd(connection, "COPY runs only through copyFrom")
            return true
        case PGRES_COPY_OUT:
            PQclear(result)
            var buffer: UnsafeMutablePointer<CChar>?
            while PQgetCopyData(connection, &buffer, 0) > 0 { PQfreemem(buffer) }
            return true
        default:
            return false
        }
    }
}
