/// Where a PostgreSQL server is and how a `PostgresPool` to it behaves.
///
/// Built from a `postgresql://user:password@host:port/database?sslmode=...` URL (query
/// parameters other than the pool's own are passed to libpq as connection keywords) and,
/// in one place (the executable's settings, from flags and the environment). Every limit has a documented default.
public struct PostgresConfiguration: Sendable, CustomStringConvertible {
    /// Server host name or address (a leading `/` is a Unix-socket directory, as in libpq).
    public var host: String
    /// Server port.
    public var port: Int
    /// Role to connect as.
    public var user: String
    /// Password; nil for trust/peer/.pgpass authentication. Never printed.
    public var password: String?
    /// Database name.
    public var database: String
    /// Further libpq connection keywords (`sslmode`, `sslrootcert`, `target_session_attrs`, ...).
    public var connectionOptions: [String: String]

    /// Connections opened ahead of demand and kept open however idle (default 1).
    public var minConnections: Int
    /// Connections at most; further callers wait in a queue (default 10).
    public var maxConnections: Int
    /// How long opening one connection may take, TCP and authentication included (default 5 s).
    public var connectTimeout: Duration
    /// How long a caller waits for a free connection before failing UNAVAILABLE (default 2 s).
    public var waitTimeout: Duration
    /// Idle connections beyond `minConnections` are closed after this long (default 60 s).
    public var idleTimeout: Duration
    /// A connection is closed and replaced after this many leases, which bounds per-backend
    /// memory growth (caches of plans and catalogs); nil for no limit (default 10,000).
    public var maxUsesPerConnection: Int?
    /// Statement timeout for statements run without a deadline of their own; nil for none (default).
    public var defaultStatementTimeout: Duration?
    /// How often `run()` closes idle connections and refills to `minConnections` (default 1 s).
    public var maintenanceInterval: Duration
    /// `application_name` shown in `pg_stat_activity` (default "tally").
    public var applicationName: String

    /// A configuration with the documented defaults for a server at `host`.
    public init(host: String = "127.0.0.1", port: Int = 5432, user: String, password: String? = nil, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.connectionOptions = [:]
        self.minConnections = 1
        self.maxConnections = 10
        self.connectTimeout = .seconds(5)
        self.waitTimeout = .seconds(2)
        self.idleTimeout = .seconds(60)
        self.maxUsesPerConnection = 10_000
        self.defaultStatementTimeout = nil
        self.maintenanceInterval = .seconds(1)
        self.applicationName = "tally"
    }

    /// The URL without its password, for logs.
    public var description: String {
        let credentials = password == nil ? user : "\(user):***"
        let query = connectionOptions.keys.sorted().map { "\($0)=\(connectionOptions[$0]!)" }.joined(separator: "&")
        return "postgresql://\(credentials)@\(host):\(port)/\(database)\(query.isEmpty ? "" : "?" + query)"
    }
}
