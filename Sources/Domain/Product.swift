public import Logging
public import NIOCore
public import ServiceLifecycle
public import Storage

/// The product domains on one PostgreSQL database and one Redis: their stores, event
/// ingestion, queue workers and periodic maintenance, built from one configuration. The
/// executable only puts RPC services in front of them and runs `lifecycle`.
///
/// The Redis client's connections live on `group`'s loops (the server's own), so handlers reach
/// Redis without a thread hop.
public struct Product: Sendable {
    public struct Configuration: Sendable {
        public var events: EventIngestor.Configuration
        public var leaderboards: LeaderboardStore.Configuration
        public var mirrors: BoardMirrors.Configuration
        public var queue: JobQueueConfiguration
        /// Event transactions at once (`EVENT_PERSIST_WORKERS`); nil: 4, at most three quarters
        /// of the primary pool, so RPC reads always find a connection. Few workers taking large
        /// groups persist faster than many taking small ones: each transaction costs Postgres
        /// round trips and a commit whatever its size (`tools/bench/events.sh`, README).
        public var workerConcurrency: Int?
        /// How many queued event batches one transaction persists.
        public var eventPersistence: EventProcessor.Limits = .defaults
        /// Monthly `events` partitions created ahead of time.
        public var partitionsAhead: Int
        /// Days of events kept; nil keeps them forever.
        public var retentionDays: Int?
        /// Instances sharing the limits: the local fallback limiter divides them by it.
        public var instanceCount: Int
        public var topups: TopupsConfiguration
        public var provider: ProviderChoice
        public var quiz: QuizRules
        public var rewards: RewardRules
        /// Names this instance in leases and logs.
        public var instanceID: String
        public var notifications: NotificationsConfiguration
        public var presence: PresenceConfiguration
        /// Event counts per hour and active users per day: shards, retention, `Counts` limit.
        public var rollups: EventRollups.Configuration

        /// The domains' own defaults, three partitions ahead, 90 days kept, one instance.
        public static var defaults: Configuration {
            Configuration(events: .defaults, leaderboards: .defaults, mirrors: .defaults, queue: .defaults, workerConcurrency: nil,
                          partitionsAhead: 3, retentionDays: 90, instanceCount: 1, topups: .defaults,
                          provider: .sandbox(latency: .milliseconds(20)), quiz: .defaults, rewards: .defaults, instanceID: "tally")
        }

        public init(events: EventIngestor.Configuration, leaderboards: LeaderboardStore.Configuration, mirrors: BoardMirrors.Configuration,
                    queue: JobQueueConfiguration, workerConcurrency: Int?, partitionsAhead: Int, retentionDays: Int?, instanceCount: Int,
                    topups: TopupsConfiguration, provider: ProviderChoice, quiz: QuizRules, rewards: RewardRules, instanceID: String,
                    notifications: NotificationsConfiguration = .defaults, presence: PresenceConfiguration = .defaults,
                    rollups: EventRollups.Configuration = .defaults) {
            self.events = events
            self.leaderboards = leaderboards
            self.mirrors = mirrors
            self.queue = queue
            self.workerConcurrency = workerConcurrency
            self.partitionsAhead = partitionsAhead
            self.retentionDays = retentionDays
            self.instanceCount = instanceCount
            self.topups = topups
            self.provider = provider
            self.quiz = quiz
            self.rewards = rewards
            self.instanceID = instanceID
            self.notifications = notifications
            self.presence = presence
            self.rollups = rollups
        }
    }

    public let database: PostgresDatabase
    public let redis: RedisClient
    public let subscriber: RedisSubscriber
    public let limiter: RateLimiter
    public let ingestor: EventIngestor
    public let recent: RecentEvents
    /// `Counts`, from the rollups.
    public let counts: EventCounts
    public let leaderboards: LeaderboardStore
    public let watch: LeaderboardWatch
    public let tournaments: Tournaments
    public let apiKeys: ApiKeys
    public let topups: Topups
    /// Top-ups per customer, exact across instances.
    public let topupLimiter: SlidingWindowLimiter
    public let quizzes: Quizzes
    public let presence: Presence
    let provider: any TopupProvider
    /// Outbound notifications (the quiz's rewards): record in a transaction, dispatch after it.
    public let notifications: Notifications
    /// Every queue, for stats.
    public let queues: [JobQueue]
    /// The long-running parts, in start order (a service group stops them in reverse, so the
    /// workers drain before the pools close).
    public let lifecycle: [any Service]

    public init(database: PostgresDatabase, redis redisConfiguration: RedisConfiguration, group: any EventLoopGroup,
                configuration: Configuration = .defaults, logger: Logger) {
        self.database = database
        redis = RedisClient(configuration: redisConfiguration, group: group)
        subscriber = RedisSubscriber(configuration: redisConfiguration, group: group)
        limiter = RateLimiter(redis: redis, instanceCount: configuration.instanceCount, logger: logger)

        var mirroring = configuration.mirrors
        mirroring.namespace = configuration.leaderboards.namespace
        let mirrors = BoardMirrors(redis: redis, subscriber: subscriber, configuration: mirroring, logger: logger)
        leaderboards = LeaderboardStore(database: database, redis: redis, mirrors: mirrors, configuration: configuration.leaderboards, logger: logger)
        watch = LeaderboardWatch(store: leaderboards, subscriber: subscriber)
        tournaments = Tournaments(database: database)

        let queue = JobQueue(name: EventIngestor.queueName, redis: redis, configuration: configuration.queue)
        let topupQueue = JobQueue(name: Topups.queueName, redis: redis, configuration: configuration.queue)
        notifications = Notifications(database: database, redis: redis, sink: configuration.notifications.sink.make(group: group),
                                      configuration: configuration.notifications, instanceCount: configuration.instanceCount, logger: logger)
        queues = [queue, topupQueue, notifications.jobQueue]
        apiKeys = ApiKeys(database: database, redis: redis, subscriber: subscriber, cacheTTL: configuration.topups.keyCacheTTL, logger: logger)
        topups = Topups(database: database, queue: topupQueue, changes: TopupChanges(redis: redis, subscriber: subscriber),
                        configuration: configuration.topups, logger: logger)
        topupLimiter = SlidingWindowLimiter(redis: redis, keyPrefix: "topup-limit", fallback: configuration.topups.limitWhenRedisDown,
                                            instanceCount: configuration.instanceCount, logger: logger)
        provider = configuration.provider.make(group: group)
        let topupProcessor = TopupProcessor(topups: topups, provider: provider, instanceID: configuration.instanceID, logger: logger)
        let activeUsers = ActiveUsers(redis: redis, retentionDays: configuration.rollups.retentionDays)
        let rollups = EventRollups(configuration: configuration.rollups, activeUsers: activeUsers)
        ingestor = EventIngestor(queue: queue, database: database, leaderboards: leaderboards, rollups: rollups, limiter: limiter,
                                 configuration: configuration.events, logger: logger)
        recent = RecentEvents(database: database)
        counts = EventCounts(database: database, activeUsers: activeUsers, maxBuckets: configuration.rollups.maxBuckets)
        quizzes = Quizzes(database: database, leaderboards: leaderboards, notifications: notifications, rules: configuration.quiz, rewardRules: configuration.rewards, logger: logger)
        presence = Presence(redis: redis, subscriber: subscriber, configuration: configuration.presence, logger: logger)
        let workers = JobWorker.Configuration(
            concurrency: configuration.workerConcurrency ?? min(4, max(1, database.primary.configuration.maxConnections * 3 / 4)),
            batchSize: 100, pollInterval: .milliseconds(20), drainTimeout: .seconds(10))
        let processor = EventProcessor(database: database, leaderboards: leaderboards, rollups: rollups, limits: configuration.eventPersistence, logger: logger)
        let partitions = EventPartitions(pool: database.primary, monthsAhead: configuration.partitionsAhead,
                                         retentionDays: configuration.retentionDays)
        lifecycle = [
            database,
            mirrors,
            LeaderboardRepair(store: leaderboards),
            processor.worker(queue: queue, configuration: workers),
            PartitionMaintenance(partitions: partitions, logger: logger),
            RollupMaintenance(pool: database.primary, retentionDays: configuration.rollups.retentionDays, logger: logger),
            apiKeys,
            topupProcessor.worker(queue: topupQueue),
            TopupSweeper(topups: topups, logger: logger),
            presence,
        ] + notifications.services
    }

    /// Closes the Redis connections and the pools, after `lifecycle` has stopped.
    public func shutdown() async {
        await provider.shutdown()
        await notifications.shutdown()
        await subscriber.shutdown()
        await redis.shutdown()
        await database.shutdown()
    }
}
