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
    /// The nodes a Redis Cluster is first reached through (`redis+cluster://`); empty for one
    /// Redis at `host`:`port`. The client learns the other nodes and the slot map from them.
    public var clusterNodes: [RedisNodeAddress]
    /// How long a command keeps being retried while the cluster moves slots or fails over
    /// (`TRYAGAIN`, `CLUSTERDOWN`, a lost node) before its error is thrown.
    public var clusterRetryTime: Duration
    /// Replicas that must confirm a durable write (queued jobs: events, top-ups) before it is
    /// acknowledged (`WAIT`); 0 acknowledges once the master has it (its AOF).
    public var minReplicasAck: Int
    /// How long a durable write waits for its replicas before it is refused `.unavailable`;
    /// below `commandTimeout`, which would reset the connection first.
    public var replicaAckTimeout: Duration

    public var isCluster: Bool { !clusterNodes.isEmpty }

    /// Loopback, port 6379, database 0, 1 s to connect, 2 s per command, reconnect 50 ms..2 s;
    /// in a cluster, retries for 5 s; no replica acknowledgement (a cluster URL asks for 1,
    /// within 1 s).
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
        maxQueuedWhileConnecting: Int = 100_000, clusterNodes: [RedisNodeAddress] = [],
        clusterRetryTime: Duration = .seconds(5), minReplicasAck: Int = 0, replicaAckTimeout: Duration = .seconds(1)
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
        self.clusterNodes = clusterNodes
        self.clusterRetryTime = clusterRetryTime
        self.minReplicasAck = minReplicasAck
        self.replicaAckTimeout = replicaAckTimeout
    }

    /// A cluster URL: the seed nodes, credentials, database 0 (the only one a cluster has),
    /// and one replica acknowledging each durable write (a master may die before replicating).
    private init(clusterURL url: String) throws {
        var rest = Substring(url.dropFirst("redis+cluster://".count))
        if let slash = rest.firstIndex(of: "/") {
            guard rest[slash...].allSatisfy({ $0 == "/" || $0 == "0" }) else {
                throw InvalidURL(description: "REDIS_URL: a Redis Cluster has only database 0")
            }
            rest = rest[..<slash]
        }
        self = .defaults
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2 {
                if !parts[0].isEmpty { username = String(parts[0]) }
                if !parts[1].isEmpty { password = String(parts[1]).removingPercentEncoding ?? String(parts[1]) }
            }
        }
        clusterNodes = try rest.split(separator: ",").map { node in
            guard let colon = node.lastIndex(of: ":"), let port = Int(node[node.index(after: colon)...]),
                (1...65_535).contains(port), colon > node.startIndex
            else {
                throw InvalidURL(description: "REDIS_URL must look like redis+cluster://host:port,host:port (got node '\(node)')")
            }
            return RedisNodeAddress(host: String(node[..<colon]), port: port)
        }
        guard let first = clusterNodes.first else {
            throw InvalidURL(description: "REDIS_URL must name at least one cluster node: redis+cluster://host:port,...")
        }
        host = first.host
        port = first.port
        minReplicasAck = 1
    }

    public struct InvalidURL: Error, CustomStringConvertible {
        public var description: String
    }

    /// Reads `redis://[[user]:password@]host[:port][/database]` (the `REDIS_URL` form), or
    /// `redis+cluster://[[user]:password@]host:port[,host:port...]` for a Redis Cluster.
    public init(url: String) throws {
        if url.hasPrefix("redis+cluster://") {
            self = try Self(clusterURL: url)
            return
        }
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

/// One Redis server, as a cluster names it.
public struct RedisNodeAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}
