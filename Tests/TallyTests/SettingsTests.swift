import ArgumentParser
import Testing

@testable import tally

/// `tally serve`'s one configuration: flags and environment read in one place, validated
/// before anything starts.
@Suite("Settings")
struct SettingsTests {
    static func configuration(_ flags: [String], _ env: [String: String] = [:]) throws -> TallyConfiguration {
        try TallySettings.parse(flags).configuration(Environment(values: env))
    }

    static let storage = ["DATABASE_URL": "postgresql://tally@db:5433/tally", "REDIS_URL": "redis://cache:6380/2"]

    @Test("a flag wins over its variable, a variable over the default")
    func precedence() throws {
        let env = Self.storage.merging(["DB_POOL_MAX": "3", "TALLY_PORT": "6000", "EVENT_BATCH_MAX": "50", "TALLY_DEFAULT_STREAM_DEADLINE_MS": "1500"]) { $1 }
        let config = try Self.configuration(["--db-pool-max", "7", "--queue-lease-ms", "900"], env)
        #expect(config.storage?.primary.maxConnections == 7)
        #expect(config.server.port == 6000)
        #expect(config.server.defaultDeadline(for: .bidirectionalStreaming) == .milliseconds(1500))
        #expect(config.server.defaultDeadline(for: .unary) == .seconds(60))
        #expect(try Self.configuration([]).server.defaultDeadline(for: .serverStreaming) == nil, "long-lived streams have none by default")
        #expect(config.product.events.rules.batchMax == 50)
        #expect(config.product.queue.leaseTimeout == .milliseconds(900))
        #expect(config.storage?.primary.host == "db" && config.storage?.primary.port == 5433)
        #expect(config.storage?.redis.host == "cache" && config.storage?.redis.port == 6380 && config.storage?.redis.database == 2)
        #expect(config.storage?.replica == nil)
        #expect(try Self.configuration([]).storage == nil, "no storage without DATABASE_URL and REDIS_URL")
    }

    @Test("storage and product settings reach their configurations")
    func everySettingArrives() throws {
        let env = Self.storage.merging([
            "DATABASE_READ_URL": "postgresql://reader@replica/tally", "DATABASE_READ_MAX_LAG_MS": "400", "DATABASE_READ_CHECK_MS": "50", "DB_POOL_MIN": "2", "DB_MAX_USES": "0",
            "DB_STATEMENT_TIMEOUT_MS": "0", "QUEUE_CONCURRENCY": "5", "QUEUE_MAX_ATTEMPTS": "9",
            "EVENT_USER_RATE_PER_MIN": "0", "EVENT_DEDUPE_WINDOW_S": "0", "EVENT_RETENTION_DAYS": "0", "EVENT_PARTITIONS_AHEAD": "6",
            "EVENT_PERSIST_MAX_JOBS": "7", "EVENT_PERSIST_MAX_ROWS": "900", "EVENT_PERSIST_MAX_BYTES": "65536",
            "LEADERBOARD_MIRROR_MAX_USERS": "0", "LEADERBOARD_REPAIR_AFTER_MS": "750", "TALLY_INSTANCE_COUNT": "3",
            "ADMIN_KEY": "k", "TALLY_INSTANCE_ID": "a-1", "LOG_LEVEL": "debug", "TALLY_BENCH_ECHO": "1", "TALLY_MIGRATE": "0",
            "TALLY_INTEROP_TEST_SERVICE": "1",
        ]) { $1 }
        let config = try Self.configuration([], env)
        #expect(config.storage?.replica?.host == "replica" && config.storage?.replica?.minConnections == 2)
        #expect(config.storage?.reads.maxLag == .milliseconds(400) && config.storage?.reads.checkInterval == .milliseconds(50))
        #expect(config.storage?.primary.maxUsesPerConnection == nil && config.storage?.primary.defaultStatementTimeout == nil)
        #expect(config.product.workerConcurrency == 5 && config.product.queue.maxAttempts == 9)
        #expect(config.product.events.perUserLimit == nil && config.product.events.dedupeWindow == .zero)
        #expect(config.product.retentionDays == nil && config.product.partitionsAhead == 6)
        let persistence = config.product.eventPersistence
        #expect(persistence.jobs == 7 && persistence.rows == 900 && persistence.bytes == 65536)
        #expect(config.product.mirrors.maxUsers == 0 && config.product.leaderboards.repairAfter == .milliseconds(750))
        #expect(config.product.instanceCount == 3 && config.adminKey == "k" && config.instanceID == "a-1")
        #expect(config.logLevel == .debug && config.benchEcho && config.interopTestService && !config.migrateAtStart)
    }

    @Test("notification settings reach their configuration; a webhook URL picks the webhook sink")
    func notificationSettings() throws {
        let env = Self.storage.merging([
            "NOTIFY_CONCURRENCY": "4", "NOTIFY_RATE_PER_DESTINATION_PER_SEC": "0.5", "NOTIFY_RATE_GLOBAL_PER_SEC": "100",
            "NOTIFY_MAX_ATTEMPTS": "7", "NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9100/notify", "NOTIFY_WEBHOOK_SECRET": "s",
            "NOTIFY_WEBHOOK_TIMEOUT_MS": "250", "NOTIFY_SWEEP_AFTER_MS": "5000",
        ]) { $1 }
        let notifications = try Self.configuration([], env).product.notifications
        #expect(notifications.workers == 4 && notifications.ratePerDestinationPerSecond == 0.5 && notifications.globalRatePerSecond == 100)
        #expect(notifications.maxAttempts == 7 && notifications.sweepAfter == .seconds(5))
        #expect(notifications.sink == .webhook(url: "http://127.0.0.1:9100/notify", secret: "s", timeout: .milliseconds(250)))
        let flagged = try Self.configuration(["--notify-sink", "log", "--notify-concurrency", "2"], env).product.notifications
        #expect(flagged.sink == .log && flagged.workers == 2)
        #expect(try Self.configuration([], Self.storage).product.notifications.sink == .log)
    }

    @Test("rollups: retention, shards and the Counts limit from flags and variables")
    func rollups() throws {
        let env = Self.storage.merging(["EVENT_ROLLUP_RETENTION_DAYS": "365", "EVENT_COUNTS_MAX_BUCKETS": "500"]) { $1 }
        let rollups = try Self.configuration(["--event-rollup-shards", "4"], env).product.rollups
        #expect(rollups.shards == 4 && rollups.retentionDays == 365 && rollups.maxBuckets == 500)
        let defaults = try Self.configuration([], Self.storage).product.rollups
        #expect(defaults.shards == 16 && defaults.retentionDays == 730 && defaults.maxBuckets == 10_000)
        let forever = try Self.configuration(["--event-rollup-retention-days", "0", "--event-retention-days", "0"], Self.storage)
        #expect(forever.product.rollups.retentionDays == nil)
    }

    @Test("a bad value stops the start with one line naming the setting", arguments: [
        (["DB_POOL_MAX": "-3"], "DB_POOL_MAX must be between 1 and 10000, got -3"),
        (["DB_POOL_MIN": "20", "DB_POOL_MAX": "5"], "DB_POOL_MIN (20) must not exceed DB_POOL_MAX (5)"),
        (["DATABASE_URL": "mysql://x@y/z"], "DATABASE_URL: database URL must look like postgresql://user:password@host:port/database"),
        (["REDIS_URL": "cache:6379"], "REDIS_URL: REDIS_URL must look like redis://host:port/db"),
        (["TALLY_PORT": "http"], "TALLY_PORT must be an integer, got \"http\""),
        (["TALLY_TLS_CERT": "/nonexistent/cert.pem", "TALLY_TLS_KEY": "/nonexistent/key.pem"], "TALLY_TLS_CERT: cannot read /nonexistent/cert.pem"),
        (["TALLY_TLS_CERT": "/etc/hostname"], "TLS needs both a certificate (TALLY_TLS_CERT) and a key (TALLY_TLS_KEY)"),
        (["LOG_LEVEL": "loud"], "LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical, got \"loud\""),
        (["QUEUE_LEASE_MS": "5"], "QUEUE_LEASE_MS must be between 100 and 86400000, got 5"),
        (["NOTIFY_WEBHOOK_URL": "http://127.0.0.1:9/notify"], "the webhook sink needs NOTIFY_WEBHOOK_SECRET"),
        (["NOTIFY_SINK": "webhook"], "NOTIFY_SINK=webhook needs NOTIFY_WEBHOOK_URL"),
        (["NOTIFY_RATE_GLOBAL_PER_SEC": "fast"], "NOTIFY_RATE_GLOBAL_PER_SEC must be a number, got \"fast\""),
        (["EVENT_ROLLUP_RETENTION_DAYS": "30"], "EVENT_ROLLUP_RETENTION_DAYS (30) must be at least EVENT_RETENTION_DAYS (90), or 0"),
        (["EVENT_ROLLUP_SHARDS": "0"], "EVENT_ROLLUP_SHARDS must be between 1 and 1024, got 0"),
    ])
    func refused(bad: [String: String], message: String) {
        let error = #expect(throws: SettingsError.self) { try Self.configuration([], Self.storage.merging(bad) { $1 }) }
        #expect(error?.description == message)
        #expect(error?.description.contains("\n") == false)
    }

    @Test("the events workers follow EVENT_PERSIST_WORKERS, else QUEUE_CONCURRENCY, else the product's default")
    func eventWorkers() throws {
        let both = try Self.configuration([], Self.storage.merging(["QUEUE_CONCURRENCY": "5", "EVENT_PERSIST_WORKERS": "3"]) { $1 })
        #expect(both.product.workerConcurrency == 3)
        let queueOnly = try Self.configuration([], Self.storage.merging(["QUEUE_CONCURRENCY": "5", "EVENT_PERSIST_WORKERS": "0"]) { $1 })
        #expect(queueOnly.product.workerConcurrency == 5)
        #expect(try Self.configuration([], Self.storage).product.workerConcurrency == nil)
        #expect(throws: (any Error).self) { try Self.configuration([], Self.storage.merging(["EVENT_PERSIST_WORKERS": "-1"]) { $1 }) }
    }

    @Test("--help lists every setting with its variable")
    func helpListsEverySetting() {
        let help = Serve.helpMessage(columns: 10_000)
        for variable in [
            "TALLY_HOST", "TALLY_PORT", "TALLY_EVENT_LOOPS", "TALLY_MAX_RECV_MESSAGE_BYTES", "TALLY_MAX_CONCURRENT_STREAMS",
            "TALLY_MAX_CONNECTIONS", "TALLY_MAX_HEADER_BYTES", "TALLY_DEFAULT_DEADLINE_MS", "TALLY_DEFAULT_STREAM_DEADLINE_MS", "TALLY_KEEPALIVE_MS",
            "TALLY_KEEPALIVE_TIMEOUT_MS", "TALLY_MAX_CONNECTION_IDLE_MS", "TALLY_SHUTDOWN_GRACE_MS", "TALLY_TLS_CERT", "TALLY_TLS_KEY",
            "DATABASE_URL", "DATABASE_READ_URL", "DATABASE_READ_MAX_LAG_MS", "DATABASE_READ_CHECK_MS", "REDIS_URL", "DB_POOL_MIN", "DB_POOL_MAX", "DB_CONNECT_TIMEOUT_MS",
            "DB_POOL_WAIT_TIMEOUT_MS", "DB_IDLE_TIMEOUT_MS", "DB_MAX_USES", "DB_STATEMENT_TIMEOUT_MS", "EVENT_BATCH_MAX",
            "EVENT_USER_RATE_PER_MIN", "EVENT_PEER_RATE_PER_MIN", "EVENT_DEDUPE_WINDOW_S", "EVENT_RETENTION_DAYS",
            "EVENT_PARTITIONS_AHEAD", "EVENT_ROLLUP_RETENTION_DAYS", "EVENT_ROLLUP_SHARDS", "EVENT_COUNTS_MAX_BUCKETS", "QUEUE_CONCURRENCY", "QUEUE_LEASE_MS", "QUEUE_MAX_ATTEMPTS", "LEADERBOARD_MIRROR_MAX_USERS",
            "LEADERBOARD_MIRROR_MAX_BOARDS", "LEADERBOARD_REPAIR_AFTER_MS", "TALLY_INSTANCE_COUNT", "ADMIN_KEY", "TALLY_INSTANCE_ID",
            "LOG_LEVEL", "TALLY_BENCH_ECHO", "TALLY_INTEROP_TEST_SERVICE", "TALLY_MIGRATE", "TOPUP_RATE_PER_MIN", "TOPUP_LIMIT_WHEN_REDIS_DOWN",
            "TOPUP_IDEMPOTENCY_RETENTION_H", "TOPUP_MAX_ATTEMPTS", "TOPUP_RETRY_BASE_MS", "TOPUP_RETRY_MAX_MS", "TOPUP_PROVIDER_TIMEOUT_MS",
            "TOPUP_QUEUE_CONCURRENCY", "TOPUP_SWEEP_AFTER_MS", "TOPUP_PROVIDER", "TOPUP_PROVIDER_URL", "TOPUP_SANDBOX_LATENCY_MS",
            "TOPUP_AMOUNT_BOUNDS", "TOPUP_CARRIERS", "QUIZ_BATCH_MAX", "QUIZ_STREAM_MAX_ANSWERS", "QUIZ_REWARDS_MAX",
            "TALLY_METRICS_PORT", "TALLY_KEEPALIVE_MIN_PING_MS", "TALLY_KEEPALIVE_PERMIT_WITHOUT_CALLS", "TALLY_MAX_CONNECTION_AGE_MS",
            "TALLY_MAX_CONNECTION_AGE_GRACE_MS", "LOG_FORMAT", "TALLY_CALL_METRICS",
            "NOTIFY_CONCURRENCY", "NOTIFY_RATE_PER_DESTINATION_PER_SEC",
            "NOTIFY_RATE_GLOBAL_PER_SEC", "NOTIFY_MAX_ATTEMPTS", "NOTIFY_SINK", "NOTIFY_WEBHOOK_URL", "NOTIFY_WEBHOOK_SECRET",
            "NOTIFY_WEBHOOK_TIMEOUT_MS", "NOTIFY_SWEEP_AFTER_MS",
            "EVENT_PERSIST_WORKERS", "EVENT_PERSIST_MAX_JOBS", "EVENT_PERSIST_MAX_ROWS", "EVENT_PERSIST_MAX_BYTES",
            "PRESENCE_TIMEOUT_MS", "PRESENCE_INTERVAL_MS", "PRESENCE_MAX_STREAMS", "PRESENCE_MAX_DEVICES", "TALLY_SESSION_SECRET",
        ] {
            #expect(help.contains("env \(variable)"), "\(variable) is not in --help")
        }
        // One block per option: its line and the help wrapped under it.
        let options = help.components(separatedBy: "\n  --").dropFirst().filter { !$0.hasPrefix("help") && !$0.hasPrefix("version") }
        #expect(options.count == 94)
        for option in options { #expect(option.contains("(env "), "--\(option.prefix(40)) names no variable") }
    }
}
