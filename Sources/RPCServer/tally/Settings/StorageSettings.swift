import ArgumentParser
import Storage

/// Where PostgreSQL and Redis are, and the database pools' limits.
struct StorageSettings: ParsableArguments {
    @Option(help: "PostgreSQL URL, postgresql://user:password@host:port/database (env DATABASE_URL); without it and --redis-url only health, reflection and the benchmark are served.")
    var databaseURL: String?

    @Option(help: "A read replica's URL (a streaming standby) for reads that tolerate lag (env DATABASE_READ_URL).")
    var databaseReadURL: String?

    @Option(help: "Reads go to the primary while the replica is behind it by more than this, in ms (env DATABASE_READ_MAX_LAG_MS, default 1000).")
    var databaseReadMaxLagMs: Int?

    @Option(help: "How often the replica's reachability and lag are measured, in ms (env DATABASE_READ_CHECK_MS, default 250).")
    var databaseReadCheckMs: Int?

    @Option(help: "Redis URL, redis://[[user]:password@]host[:port][/db], or redis+cluster://host:port[,host:port...] for a Redis Cluster (env REDIS_URL).")
    var redisURL: String?

    @Option(help: "Replicas that must confirm each queued job (events, top-ups) before it is acknowledged, with WAIT (env REDIS_MIN_REPLICAS_ACK, default 1 for a cluster, 0 for one Redis).")
    var redisMinReplicasAck: Int?

    @Option(help: "How long a queued job waits for its replicas before UNAVAILABLE, in ms; below the 2000 ms command timeout (env REDIS_REPLICA_ACK_TIMEOUT_MS, default 1000).")
    var redisReplicaAckTimeoutMs: Int?

    @Option(help: "How long a command is retried while a Redis Cluster fails over or moves slots, in ms (env REDIS_CLUSTER_RETRY_MS, default 5000).")
    var redisClusterRetryMs: Int?

    @Option(help: "Connections each pool keeps open (env DB_POOL_MIN, default 1).")
    var dbPoolMin: Int?

    @Option(help: "Connections each pool opens at most (env DB_POOL_MAX, default 10).")
    var dbPoolMax: Int?

    @Option(help: "Time to open a database connection, in ms (env DB_CONNECT_TIMEOUT_MS, default 5000).")
    var dbConnectTimeoutMs: Int?

    @Option(help: "How long a call waits for a free connection before UNAVAILABLE, in ms (env DB_POOL_WAIT_TIMEOUT_MS, default 2000).")
    var dbPoolWaitTimeoutMs: Int?

    @Option(help: "Idle connections above the minimum close after this long, in ms (env DB_IDLE_TIMEOUT_MS, default 60000).")
    var dbIdleTimeoutMs: Int?

    @Option(help: "Uses of a connection before it is replaced; 0 for unlimited (env DB_MAX_USES, default 10000).")
    var dbMaxUses: Int?

    @Option(help: "Statement timeout when a call has no deadline, in ms; 0 for none (env DB_STATEMENT_TIMEOUT_MS, default 0).")
    var dbStatementTimeoutMs: Int?

    /// The primary's and replica's pools, when reads use the replica, and Redis; nil without a
    /// database or Redis URL.
    func configuration(_ env: Environment) throws -> (
        primary: PostgresConfiguration, replica: PostgresConfiguration?, reads: PostgresDatabase.ReadPolicy, redis: RedisConfiguration
    )? {
        let databaseURL = env.string(self.databaseURL, "DATABASE_URL")
        let redisURL = env.string(self.redisURL, "REDIS_URL")
        guard let databaseURL, let redisURL else { return nil }
        let primary = try pool(databaseURL, "DATABASE_URL", env)
        let replica = try env.string(databaseReadURL, "DATABASE_READ_URL").map { try pool($0, "DATABASE_READ_URL", env) }
        var reads = PostgresDatabase.ReadPolicy.defaults
        reads.maxLag = try env.milliseconds(databaseReadMaxLagMs, "DATABASE_READ_MAX_LAG_MS", default: reads.maxLag, range: 0...86_400_000) ?? reads.maxLag
        reads.checkInterval = try env.milliseconds(
            databaseReadCheckMs, "DATABASE_READ_CHECK_MS", default: reads.checkInterval, range: 10...60_000) ?? reads.checkInterval
        var redis: RedisConfiguration
        do {
            redis = try RedisConfiguration(url: redisURL)
        } catch {
            throw SettingsError("REDIS_URL: \(error)")
        }
        redis.minReplicasAck = try env.int(redisMinReplicasAck, "REDIS_MIN_REPLICAS_ACK", default: redis.minReplicasAck, range: 0...100)
        redis.replicaAckTimeout = try env.milliseconds(
            redisReplicaAckTimeoutMs, "REDIS_REPLICA_ACK_TIMEOUT_MS", default: redis.replicaAckTimeout, range: 1...1_999) ?? redis.replicaAckTimeout
        redis.clusterRetryTime = try env.milliseconds(
            redisClusterRetryMs, "REDIS_CLUSTER_RETRY_MS", default: redis.clusterRetryTime, range: 0...600_000) ?? redis.clusterRetryTime
        return (primary, replica, reads, redis)
    }

    /// The primary's pool alone (`tally migrate`).
    func primary(_ env: Environment) throws -> PostgresConfiguration? {
        try env.string(databaseURL, "DATABASE_URL").map { try pool($0, "DATABASE_URL", env) }
    }

    private func pool(_ url: String, _ name: String, _ env: Environment) throws -> PostgresConfiguration {
        var config: PostgresConfiguration
        do {
            config = try PostgresConfiguration(url: url)
        } catch {
            throw SettingsError("\(name): \(error.message)")
        }
        config.maxConnections = try env.int(dbPoolMax, "DB_POOL_MAX", default: config.maxConnections, range: 1...10_000)
        config.minConnections = try env.int(dbPoolMin, "DB_POOL_MIN", default: config.minConnections, range: 0...10_000)
        config.connectTimeout = try env.milliseconds(
            dbConnectTimeoutMs, "DB_CONNECT_TIMEOUT_MS", default: config.connectTimeout, range: 1...3_600_000) ?? config.connectTimeout
        config.waitTimeout = try env.milliseconds(
            dbPoolWaitTimeoutMs, "DB_POOL_WAIT_TIMEOUT_MS", default: config.waitTimeout, range: 0...3_600_000) ?? config.waitTimeout
        config.idleTimeout = try env.milliseconds(
            dbIdleTimeoutMs, "DB_IDLE_TIMEOUT_MS", default: config.idleTimeout, range: 1...86_400_000) ?? config.idleTimeout
        let uses = try env.int(dbMaxUses, "DB_MAX_USES", default: config.maxUsesPerConnection ?? 0)
        config.maxUsesPerConnection = uses == 0 ? nil : uses
        config.defaultStatementTimeout = try env.milliseconds(
            dbStatementTimeoutMs, "DB_STATEMENT_TIMEOUT_MS", default: config.defaultStatementTimeout, zeroMeansNone: true, range: 0...86_400_000)
        guard config.minConnections <= config.maxConnections else {
            throw SettingsError("DB_POOL_MIN (\(config.minConnections)) must not exceed DB_POOL_MAX (\(config.maxConnections))")
        }
        return config
    }
}
