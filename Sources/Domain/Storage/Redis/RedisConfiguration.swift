import Foundation

/// Where Redis is and how patiently to talk to it.
public struct RedisConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var password: String?
    public var username: String?
    public var database: Int
    /// Time to open a TCP connection before the attempt fails (then backoff).
    public var connectTimeout: Duration
    /// Time a command may wait for its reply; past it the connection is reset and every
    /// command on it fails with `.timeout` (replies would arrive out of order otherwise).
    public var commandTimeout: Duration
    /// First delay after a failed connect; doubles up to `maxReconnectDelay`. While waiting,
    /// commands fail at once with `.unavailable` so callers can fall back instead of queueing.
    public var minReconnectDelay: Duration
    public var maxReconnectDelay: Duration
    /// Commands queued while a connection is being opened; beyond it they fail `.unavailable`.
    public var maxQueuedWhileConnecting: Int

    /// Loopback, port 6379, database 0, 1 s to connect, 2 s per command, reconnect 50 ms..2 s.
    public static var defaults: RedisConfiguration {
        RedisConfiguration(
            host: "127.0.0.1", port: 6379, password: nil, username: nil, database: 0,
            connectTimeout: .seconds(1), commandTimeout: .seconds(2),
            minReconnectDelay: .milliseconds(50), maxReconnectDelay: .seconds(2),
            maxQueuedWhileConnecting: 100_000)
    }

    public init(
        host: String, port: Int, password: String? = nil, username: String? = nil, database: Int = 0,
        connectTimeout: Duration = .seconds(1), commandTimeout: Duration = .seconds(2),
        minReconnectDelay: Duration = .milliseconds(50), maxReconnectDelay: Duration = .seconds(2),
        maxQueuedWhileConnecting: Int = 100_000
    ) {
        self.host = host
        self.port = port
        self.password = password
        self.username = username
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.minReconnectDelay = minReconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
        self.maxQueuedWhileConnecting = maxQueuedWhileConnecting
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads `redis://[[user]:password@]host[:port][/database]` (the `REDIS_URL` form).
    public init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "redis",
            let host = components.host, !host.isEmpty
        else {
            throw InvalidURL(description: "REDIS_URL must look like redis://host:port/db")
        }
        self = .defaults
        self.host = host
        self.port = components.port ?? 6379
        if let password = components.password, !password.isEmpty { self.password = password.removingPercentEncoding ?? password }
        if let user = components.user, !user.isEmpty { self.username = user }
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !path.isEmpty {
            guard let database = Int(path), database >= 0 else {
                throw InvalidURL(description: "REDIS_URL database must be a number, got \(path)")
            }
            self.database = database
        }
    }
}
