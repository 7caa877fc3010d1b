internal import CLibPQ
import Units
import Synchronization

#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Sole owner of one libpq connection (`PGconn`), which it finishes exactly once.
///
/// Every method here may block on the network and runs on the pool's threads, except
/// the non-blocking `send...` halves of an exchange (see `ConnectionHandle+Exchange`),
/// `isUsableAfterIdle` (a zero-timeout poll) and the counters, which run on the caller.
///
/// @unchecked Sendable: a handle is leased to one task at a time by the pool, and that task
/// makes each libpq call either itself or on one of the pool's threads while it waits, so the PGconn
/// is never used by two threads at once; `cancelRequested` is atomic and PQcancel is
/// documented thread-safe.
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
    /// What this server session already holds: the keys of the scripts `prepareSession` ran,
    /// and the binary COPY column types found (by table and columns; nil: text format). Both
    /// are forgotten when a transaction fails (its rollback may undo a CREATE) and the types
    /// when a COPY fails (a table may have changed).
    var preparedSession: Set<String> = []
    var copyColumnTypes: [String: [PostgresColumnType]?] = [:]
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

    /// Forgets what `preparedSession` and `copyColumnTypes` say the session holds.
    func forgetSession() {
        preparedSession.removeAll()
        copyColumnTypes.removeAll()
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
            let millis = remaining.milliseconds
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

    // MARK: COPY

    /// The types of `columns` of `table` (quoted, possibly schema-qualified) for a binary COPY,
    /// or nil when one has no binary form here (the COPY then goes in text format).
    func binaryColumnTypes(table: String, columns: [String]) throws(PostgresError) -> [PostgresColumnType]? {
        var parameter = EncodedParameters()
        parameter.append(table)
        let results = try receive(try sendStatement(
            "SELECT attname::text, atttypid::bigint FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
            parameter, timeoutMillis: nil))
        var types: [String: PostgresColumnType] = [:]
        for row in PostgresRows(results[0]) {
            types[try row.decode(0, as: String.self)] = PostgresColumnType(oid: UInt32(truncatingIfNeeded: try row.decode(1, as: Int64.self)))
        }
        var ordered: [PostgresColumnType] = []
        for column in columns {
            // An unknown column: the COPY itself reports it, in either format.
            guard let type = types[column], PostgresColumnType.binaryEncodable.contains(type) else { return nil }
            ordered.append(type)
        }
        return ordered
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
    func check(_ result: OpaquePointer?) throws(PostgresError) -> ResultHandle {
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
    func failure(_ what: String) -> PostgresError {
        broken = true
        return PostgresError(.connectionLost, "\(what): \(Self.errorMessage(connection))")
    }

    static func errorMessage(_ connection: OpaquePointer) -> String {
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
