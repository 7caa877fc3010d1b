internal import CLibPQ
import Synchronization

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Sole owner of one libpq connection (`PGconn`), which it finishes exactly once.
///
/// Every method here may block on the network and runs on the pool's blocking threads; only
/// `isUsableAfterIdle` (a zero-timeout poll) and the counters are touched elsewhere.
///
/// @unchecked Sendable: a handle is leased to one task at a time by the pool, and that task
/// runs each libpq call on one blocking thread while it waits, so the PGconn is never used by
/// two threads at once; `cancelRequested` is atomic and PQcancel is documented thread-safe.
final class ConnectionHandle: @unchecked Sendable {
    let connection: OpaquePointer
    private let cancelToken: OpaquePointer?
    let id: Int
    /// Leases so far (maxUsesPerConnection).
    var uses = 0
    /// Set when libpq reports the connection bad; the pool then discards it.
    var broken = false
    /// A `set_config(..., is_local => true)` is in force in the open transaction.
    var localTimeoutActive = false
    /// When it last went back to the idle list.
    var idleSince: ContinuousClock.Instant = .now
    /// A cancel was sent during the current statement: a 57014 then means "cancelled", not
    /// "statement timeout".
    let cancelRequested = Atomic<Bool>(false)
    private var finished = false

    private init(connection: OpaquePointer, id: Int) {
        self.connection = connection
        self.cancelToken = PQgetCancel(connection)
        self.id = id
    }

    deinit {
        if let cancelToken { PQfreeCancel(cancelToken) }
        if !finished { PQfinish(connection) }
    }

    /// Closes the connection (sends Terminate); the handle is unusable afterwards.
    func close() {
        guard !finished else { return }
        finished = true
        broken = true
        PQfinish(connection)
    }

    var isOK: Bool { !broken && PQstatus(connection) == CONNECTION_OK }
    var isIdleInServer: Bool { PQtransactionStatus(connection) == PQTRANS_IDLE }
    var inTransaction: Bool {
        let status = PQtransactionStatus(connection)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// False when the server wrote to or closed an idle connection: that is a FATAL before
    /// closing (pg_terminate_backend, server shutdown or restart) or a reset, and the pool
    /// discards the connection rather than fail the caller's first statement on it.
    /// Non-blocking (zero-timeout poll), so it may run on any thread.
    func isUsableAfterIdle() -> Bool {
        guard isOK else { return false }
        var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, 0)
        return ready == 0
    }

    // MARK: connecting

    /// Opens a connection with `PQconnectStartParams`/`PQconnectPoll`, so the connect timeout
    /// is exact (libpq's own `connect_timeout` counts whole seconds, at least 2).
    static func connect(_ config: PostgresConfiguration, id: Int) throws(PostgresError) -> ConnectionHandle {
        var parameters: [(String, String)] = [
            ("host", config.host), ("port", String(config.port)), ("user", config.user), ("dbname", config.database),
            ("application_name", config.applicationName), ("client_encoding", "UTF8"),
        ]
        if let password = config.password { parameters.append(("password", password)) }
        // Rows decode timestamps as UTC ISO text; a caller's own `options` are kept after ours.
        var options = "-c TimeZone=UTC -c DateStyle=ISO,MDY -c IntervalStyle=postgres"
        for (key, value) in config.connectionOptions.sorted(by: { $0.key < $1.key }) {
            if key == "options" { options += " " + value } else { parameters.append((key, value)) }
        }
        parameters.append(("options", options))

        let keywords = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let started: OpaquePointer? = (keywords.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { keywordList in
            (values.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { valueList in
                PQconnectStartParams(keywordList.baseAddress, valueList.baseAddress, 0)
            }
        }
        guard let connection = started else {
            throw PostgresError(.connectionFailed, "libpq could not allocate a connection")
        }
        let deadline = ContinuousClock.now + config.connectTimeout
        var pollingStatus = PGRES_POLLING_WRITING
        while true {
            if PQstatus(connection) == CONNECTION_BAD || pollingStatus == PGRES_POLLING_FAILED {
                let message = Self.errorMessage(connection)
                PQfinish(connection)
                throw PostgresError(.connectionFailed, "could not connect to \(config.host):\(config.port): \(message)")
            }
            if pollingStatus == PGRES_POLLING_OK { break }
            let remaining = deadline - .now
            let millis = remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000
            guard millis > 0 else {
                PQfinish(connection)
                throw PostgresError(.connectionFailed, "could not connect to \(config.host):\(config.port) within \(config.connectTimeout)")
            }
            let events = pollingStatus == PGRES_POLLING_READING ? Int16(POLLIN) : Int16(POLLOUT)
            var descriptor = pollfd(fd: PQsocket(connection), events: events, revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: millis))
            if ready < 0, errno != EINTR {
                PQfinish(connection)
                throw PostgresError(.connectionFailed, "poll failed while connecting (errno \(errno))")
            }
            if ready == 0 { continue }  // the deadline check above ends it
            pollingStatus = PQconnectPoll(connection)
        }
        // Server notices (e.g. "already exists, skipping") would go to stderr by default.
        PQsetNoticeProcessor(connection, ignoreNotice, nil)
        return ConnectionHandle(connection: connection, id: id)
    }

    // MARK: statements

    /// Runs one statement. With a timeout (or a local one to clear) it goes as a pipeline of
    /// `set_config('statement_timeout', ..., true)` + the statement + Sync: one round trip,
    /// and the setting ends with the statement's implicit transaction (or, inside an explicit
    /// transaction, is cleared by the next statement run without a timeout).
    func execute(_ sql: String, _ parameters: EncodedParameters, timeoutMillis: Int?) throws(PostgresError) -> ResultHandle {
        cancelRequested.store(false, ordering: .relaxed)
        if timeoutMillis == nil && !localTimeoutActive {
            let result = parameters.withCValues { count, values in
                PQexecParams(connection, sql, count, nil, values, nil, nil, 0)
            }
            return try check(result)
        }
        return try executePipeline([(sql, parameters)], timeoutMillis: timeoutMillis)[0]
    }

    /// Runs a script of one or more statements without parameters (simple query protocol), for
    /// migrations and transaction control.
    func executeScript(_ script: String) throws(PostgresError) {
        cancelRequested.store(false, ordering: .relaxed)
        _ = try check(PQexec(connection, script))
        if !inTransaction { localTimeoutActive = false }
    }

    /// Runs statements in pipeline mode: all are sent, then one Sync, then all results read,
    /// so N statements cost one round trip. Outside an explicit transaction they form one
    /// implicit transaction: the first failure aborts the rest and nothing commits.
    func executePipeline(_ statements: [(String, EncodedParameters)], timeoutMillis: Int?) throws(PostgresError) -> [ResultHandle] {
        cancelRequested.store(false, ordering: .relaxed)
        let wasInTransaction = inTransaction
        var prefix: [(String, EncodedParameters)] = []
        if let timeoutMillis {
            var parameter = EncodedParameters()
            parameter.append(String(timeoutMillis))
            prefix.append(("SELECT set_config('statement_timeout', $1, true)", parameter))
        } else if localTimeoutActive && wasInTransaction {
            prefix.append(("SET LOCAL statement_timeout TO DEFAULT", EncodedParameters()))
        }
        let all = prefix + statements

        guard PQenterPipelineMode(connection) == 1 else { throw failure("could not enter pipeline mode") }
        // Non-blocking while sending: a long pipeline must read results as it writes, or both
        // sides could block on full socket buffers.
        PQsetnonblocking(connection, 1)
        for (sql, parameters) in all {
            let sent = parameters.withCValues { count, values in
                PQsendQueryParams(connection, sql, count, nil, values, nil, nil, 0)
            }
            guard sent == 1 else { throw failure("could not send a pipelined statement") }
            try flush()
        }
        guard PQpipelineSync(connection) == 1 else { throw failure("could not send Sync") }
        try flush()
        PQsetnonblocking(connection, 0)

        var results: [ResultHandle] = []
        var firstError: PostgresError?
        for _ in all {
            guard let result = PQgetResult(connection) else { throw failure("connection lost during a pipeline") }
            let status = PQresultStatus(result)
            if status == PGRES_PIPELINE_ABORTED {
                PQclear(result)
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

        if inTransaction {
            localTimeoutActive = timeoutMillis != nil
        } else {
            localTimeoutActive = false
        }
        if let firstError { throw firstError }
        return Array(results.dropFirst(prefix.count))
    }

    /// Flushes libpq's output buffer, reading input meanwhile so the server never blocks on us.
    private func flush() throws(PostgresError) {
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

    // MARK: COPY

    /// Sends `COPY ... FROM STDIN`; the server then waits for data.
    func beginCopy(_ sql: String) throws(PostgresError) {
        cancelRequested.store(false, ordering: .relaxed)
        guard let result = PQexec(connection, sql) else { throw failure("COPY could not start") }
        if PQresultStatus(result) == PGRES_COPY_IN {
            PQclear(result)
            return
        }
        _ = try check(result)
        throw PostgresError(.misuse, "statement is not COPY ... FROM STDIN")
    }

    /// Sends one chunk of COPY data (blocking until libpq has queued or sent it).
    func sendCopyData(_ bytes: [UInt8]) throws(PostgresError) {
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                PQputCopyData(connection, $0, Int32(buffer.count))
            }
        }
        guard status == 1 else { throw failure("could not send COPY data") }
    }

    /// Ends COPY (or aborts it with `abortReason`) and returns the rows copied.
    func endCopy(abortReason: String? = nil) throws(PostgresError) -> Int {
        let status: Int32 = if let abortReason { PQputCopyEnd(connection, abortReason) } else { PQputCopyEnd(connection, nil) }
        guard status == 1 else { throw failure("could not end COPY") }
        var rows = 0
        var firstError: PostgresError?
        while let result = PQgetResult(connection) {
            do {
                rows = PostgresRows(try check(result)).rowsAffected
            } catch {
                firstError = firstError ?? error
            }
        }
        if let firstError { throw firstError }
        return rows
    }

    // MARK: cancel and errors

    /// Asks the server to cancel the running statement (best effort: it opens a short-lived
    /// second connection, so it blocks and runs on a blocking thread).
    func sendCancel() {
        cancelRequested.store(true, ordering: .relaxed)
        guard let cancelToken else { return }
        var message = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancelToken, &message, Int32(message.count))
    }

    /// Wraps a successful result, or turns a failed one into a `PostgresError` (and clears it).
    private func check(_ result: OpaquePointer?) throws(PostgresError) -> ResultHandle {
        guard let result else { throw failure("no result from the server") }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE:
            return ResultHandle(result)
        default:
            let error = serverError(result)
            PQclear(result)
            throw error
        }
    }

    private func serverError(_ result: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        let sqlState = field("C")
        let primary = field("M") ?? Self.errorMessage(connection)
        if PQstatus(connection) == CONNECTION_BAD {
            broken = true
            return PostgresError(.connectionLost, "connection to the database was lost", sqlState: sqlState, serverMessage: primary)
        }
        if sqlState == "57014" {
            if cancelRequested.load(ordering: .relaxed) {
                return PostgresError(.cancelled, "statement cancelled", sqlState: sqlState, serverMessage: primary)
            }
            return PostgresError(.statementTimeout, "statement timed out", sqlState: sqlState, serverMessage: primary)
        }
        if let sqlState, sqlState.hasPrefix("08") || sqlState.hasPrefix("57P") {
            broken = true  // connection exceptions and shutdowns: this session is done for
        }
        return PostgresError(.server, "statement failed: \(primary)", sqlState: sqlState, serverMessage: primary)
    }

    /// A failure of the connection itself (not of a statement), marking it for discard.
    private func failure(_ what: String) -> PostgresError {
        broken = true
        return PostgresError(.connectionLost, "\(what): \(Self.errorMessage(connection))")
    }

    private static func errorMessage(_ connection: OpaquePointer) -> String {
        guard let message = PQerrorMessage(connection) else { return "unknown error" }
        return String(cString: message).trimmingTrailingNewlines()
    }
}

/// Notices are informational; statements report what matters through results and errors.
private func ignoreNotice(_ context: UnsafeMutableRawPointer?, _ message: UnsafePointer<CChar>?) {}

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var text = Substring(self)
        while text.last?.isNewline == true { text = text.dropLast() }
        return String(text)
    }
}
