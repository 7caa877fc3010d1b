/// A failure of the pool, a connection or a statement.
///
/// `message` and `serverMessage` are for logs (they may quote the server); what a client sees
/// is the status the product maps it to (`StorageErrors+Status.swift`), which names the kind of
/// failure only and never SQL or server internals.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure: an extensible set of codes.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Wrapped: Hashable, Sendable {
            case poolTimeout, poolClosed, connectionFailed, connectionLost, statementTimeout, cancelled
            case server, decoding, invalidConfiguration, misuse
        }

        let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// No connection became free within the pool's wait timeout.
        public static let poolTimeout = Code(.poolTimeout)
        /// The pool was shut down.
        public static let poolClosed = Code(.poolClosed)
        /// A new connection could not be opened (server down, refused, authentication failed).
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke during a statement; the pool replaces it.
        public static let connectionLost = Code(.connectionLost)
        /// The statement ran past its deadline (SQLSTATE 57014 after `statement_timeout`), or
        /// the deadline had passed before it could start.
        public static let statementTimeout = Code(.statementTimeout)
        /// The calling task was cancelled and the statement with it.
        public static let cancelled = Code(.cancelled)
        /// The server refused the statement; `sqlState` says why.
        public static let server = Code(.server)
        /// A column did not hold what the caller asked to decode.
        public static let decoding = Code(.decoding)
        /// A URL or environment setting is malformed.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The API was used in a way it does not support (e.g. a nested transaction).
        public static let misuse = Code(.misuse)

        public var description: String { "\(wrapped)" }
    }

    public var code: Code
    /// What happened, for logs.
    public var message: String
    /// The server's SQLSTATE, e.g. "23505" for a unique violation.
    public var sqlState: String?
    /// The server's primary message, for logs only.
    public var serverMessage: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil, serverMessage: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.serverMessage = serverMessage
    }

    public var description: String {
        var text = "PostgresError.\(code): \(message)"
        if let sqlState { text += " [SQLSTATE \(sqlState)]" }
        if let serverMessage, serverMessage != message { text += " (\(serverMessage))" }
        return text
    }

    /// SQLSTATE 23505.
    public var isUniqueViolation: Bool { sqlState == "23505" }
}
