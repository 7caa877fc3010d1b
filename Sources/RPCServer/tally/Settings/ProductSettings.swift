import ArgumentParser
import Domain
import Storage

/// The product domains' settings: events, the queue and its workers, leaderboards.
struct ProductSettings: ParsableArguments {
    @OptionGroup var events: EventSettings
    @OptionGroup var topups: TopupSettings
    @OptionGroup var quiz: QuizSettings
    @OptionGroup var notifications: NotificationSettings
    @OptionGroup var presence: PresenceSettings

    @Option(help: "Jobs run at once by queues without a setting of their own (events, top-ups); 0: each queue's own default (env QUEUE_CONCURRENCY, default 0).")
    var queueConcurrency: Int?

    @Option(help: "A claimed job comes back to the queue when its worker holds it this long, in ms (env QUEUE_LEASE_MS, default 30000).")
    var queueLeaseMs: Int?

    @Option(help: "Attempts of a job before it is dead-lettered (env QUEUE_MAX_ATTEMPTS, default 5).")
    var queueMaxAttempts: Int?

    @Option(help: "Users held in memory over all mirrored boards for Rank and Top; 0 reads Redis (env LEADERBOARD_MIRROR_MAX_USERS, default 2000000).")
    var leaderboardMirrorMaxUsers: Int?

    @Option(help: "Boards mirrored at once (env LEADERBOARD_MIRROR_MAX_BOARDS, default 1000).")
    var leaderboardMirrorMaxBoards: Int?

    @Option(help: "How old an unconfirmed merge into Redis must be to count as lost and be repaired, in ms (env LEADERBOARD_REPAIR_AFTER_MS, default 2000).")
    var leaderboardRepairAfterMs: Int?

    @Option(help: "Instances sharing the rate limits; the local fallback limiter divides them by it (env TALLY_INSTANCE_COUNT, default 1).")
    var instanceCount: Int?

    func configuration(_ env: Environment) throws -> Product.Configuration {
        var product = Product.Configuration.defaults
        product.events = try events.ingestion(env)
        (product.partitionsAhead, product.retentionDays) = try events.partitions(env)
        product.eventPersistence = try events.persistence(env)
        product.rollups = try events.rollups(env, eventRetentionDays: product.retentionDays)
        let concurrency = try env.int(queueConcurrency, "QUEUE_CONCURRENCY", default: 0, range: 0...10_000)
        let eventWorkers = try env.int(events.eventPersistWorkers, "EVENT_PERSIST_WORKERS", default: 0, range: 0...10_000)
        product.workerConcurrency = [eventWorkers, concurrency].first { $0 > 0 }
        product.queue.leaseTimeout = try env.milliseconds(
            queueLeaseMs, "QUEUE_LEASE_MS", default: product.queue.leaseTimeout, range: 100...86_400_000) ?? product.queue.leaseTimeout
        product.queue.maxAttempts = try env.int(queueMaxAttempts, "QUEUE_MAX_ATTEMPTS", default: product.queue.maxAttempts, range: 1...1000)
        product.mirrors.maxUsers = try env.int(
            leaderboardMirrorMaxUsers, "LEADERBOARD_MIRROR_MAX_USERS", default: product.mirrors.maxUsers, range: 0...1_000_000_000)
        product.mirrors.maxBoards = try env.int(
            leaderboardMirrorMaxBoards, "LEADERBOARD_MIRROR_MAX_BOARDS", default: product.mirrors.maxBoards, range: 1...1_000_000)
        product.leaderboards.repairAfter = try env.milliseconds(
            leaderboardRepairAfterMs, "LEADERBOARD_REPAIR_AFTER_MS", default: product.leaderboards.repairAfter, range: 100...3_600_000)
            ?? product.leaderboards.repairAfter
        product.instanceCount = try env.int(instanceCount, "TALLY_INSTANCE_COUNT", default: 1, range: 1...10_000)
        (product.topups, product.provider) = try topups.configuration(env, queueConcurrency: concurrency)
        (product.quiz, product.rewards) = try quiz.configuration(env)
        product.notifications = try notifications.configuration(env)
        product.presence = try presence.configuration(env)
        return product
    }
}

/// Events: batches, per-user and per-connection limits, dedupe, partitions.
struct EventSettings: ParsableArguments {
    @Option(help: "Events per Track call or stream batch (env EVENT_BATCH_MAX, default 100).")
    var eventBatchMax: Int?

    @Option(help: "Events per user per minute; 0 for no limit (env EVENT_USER_RATE_PER_MIN, default 600).")
    var eventUserRatePerMin: Int?

    @Option(help: "Events per client connection per minute; 0 for no limit (env EVENT_PEER_RATE_PER_MIN, default 60000).")
    var eventPeerRatePerMin: Int?

    @Option(help: "Seconds a resend is answered as a duplicate; 0 answers it as accepted, still stored once (env EVENT_DEDUPE_WINDOW_S, default 3600).")
    var eventDedupeWindowS: Int?

    @Option(help: "Days of events kept; 0 keeps them forever (env EVENT_RETENTION_DAYS, default 90).")
    var eventRetentionDays: Int?

    @Option(help: "Monthly events partitions created ahead (env EVENT_PARTITIONS_AHEAD, default 3).")
    var eventPartitionsAhead: Int?

    @Option(help: "Event transactions at once per instance: fewer, larger ones persist faster; 0: QUEUE_CONCURRENCY when set, else 4, at most 3/4 of DB_POOL_MAX (env EVENT_PERSIST_WORKERS, default 0).")
    var eventPersistWorkers: Int?

    @Option(help: "Queued event batches persisted in one transaction (env EVENT_PERSIST_MAX_JOBS, default 50).")
    var eventPersistMaxJobs: Int?

    @Option(help: "Events persisted in one transaction; a larger batch still goes whole (env EVENT_PERSIST_MAX_ROWS, default 5000).")
    var eventPersistMaxRows: Int?

    @Option(help: "Queued payload bytes persisted in one transaction (env EVENT_PERSIST_MAX_BYTES, default 1048576).")
    var eventPersistMaxBytes: Int?
    @Option(help: "Days event counts and active users are kept, at least EVENT_RETENTION_DAYS when that is set; 0 keeps them forever (env EVENT_ROLLUP_RETENTION_DAYS, default 730).")
    var eventRollupRetentionDays: Int?

    @Option(help: "Shards of each hourly count row that concurrent workers add to (env EVENT_ROLLUP_SHARDS, default 16).")
    var eventRollupShards: Int?

    @Option(help: "Buckets (hours, days or months) one Counts call may span (env EVENT_COUNTS_MAX_BUCKETS, default 10000).")
    var eventCountsMaxBuckets: Int?

    func ingestion(_ env: Environment) throws -> EventIngestor.Configuration {
        var events = EventIngestor.Configuration.defaults
        events.rules.batchMax = try env.int(eventBatchMax, "EVENT_BATCH_MAX", default: events.rules.batchMax, range: 1...10_000)
        let userRate = try env.int(eventUserRatePerMin, "EVENT_USER_RATE_PER_MIN", default: 600, range: 0...100_000_000)
        let peerRate = try env.int(eventPeerRatePerMin, "EVENT_PEER_RATE_PER_MIN", default: 60_000, range: 0...1_000_000_000)
        events.perUserLimit = userRate == 0 ? nil : .perMinute(userRate)
        events.perPeerLimit = peerRate == 0 ? nil : .perMinute(peerRate)
        events.dedupeWindow = .seconds(try env.int(
            eventDedupeWindowS, "EVENT_DEDUPE_WINDOW_S", default: Int(events.dedupeWindow.milliseconds / 1000), range: 0...30 * 86_400))
        return events
    }

    /// How much one worker transaction persists.
    func persistence(_ env: Environment) throws -> EventProcessor.Limits {
        let defaults = EventProcessor.Limits.defaults
        return EventProcessor.Limits(
            jobs: try env.int(eventPersistMaxJobs, "EVENT_PERSIST_MAX_JOBS", default: defaults.jobs, range: 1...10_000),
            rows: try env.int(eventPersistMaxRows, "EVENT_PERSIST_MAX_ROWS", default: defaults.rows, range: 1...1_000_000),
            bytes: try env.int(eventPersistMaxBytes, "EVENT_PERSIST_MAX_BYTES", default: defaults.bytes, range: 1024...1_073_741_824))
    }

    /// Months created ahead, and days kept (nil: forever).
    func partitions(_ env: Environment) throws -> (ahead: Int, retentionDays: Int?) {
        let defaults = Product.Configuration.defaults
        let ahead = try env.int(eventPartitionsAhead, "EVENT_PARTITIONS_AHEAD", default: defaults.partitionsAhead, range: 0...120)
        let days = try env.int(eventRetentionDays, "EVENT_RETENTION_DAYS", default: defaults.retentionDays ?? 0, range: 0...36_500)
        return (ahead, days == 0 ? nil : days)
    }

    /// The rollups' shards, retention (kept at least as long as the events they count) and
    /// the `Counts` range limit.
    func rollups(_ env: Environment, eventRetentionDays: Int?) throws -> EventRollups.Configuration {
        var rollups = EventRollups.Configuration.defaults
        let days = try env.int(
            eventRollupRetentionDays, "EVENT_ROLLUP_RETENTION_DAYS", default: rollups.retentionDays ?? 0, range: 0...36_500)
        rollups.retentionDays = days == 0 ? nil : days
        if let kept = rollups.retentionDays, let events = eventRetentionDays, kept < events {
            throw SettingsError("EVENT_ROLLUP_RETENTION_DAYS (\(kept)) must be at least EVENT_RETENTION_DAYS (\(events)), or 0")
        }
        rollups.shards = try env.int(eventRollupShards, "EVENT_ROLLUP_SHARDS", default: rollups.shards, range: 1...1024)
        rollups.maxBuckets = try env.int(eventCountsMaxBuckets, "EVENT_COUNTS_MAX_BUCKETS", default: rollups.maxBuckets, range: 1...1_000_000)
        return rollups
    }
}
