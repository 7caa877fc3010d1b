public import Storage
public import Logging

/// The queue worker's job: persist batches of events, several queued jobs in one transaction,
/// and apply their scores to leaderboards.
///
/// Idempotent (event ids dedupe in Postgres), so a job delivered twice, after a crash or a
/// lease expiry, is counted once. A batch that cannot be decoded is a bug upstream: it fails
/// (retried, then dead-lettered, kept for inspection) rather than being dropped; in a group it
/// fails the group, whose jobs the worker then runs one by one, so it fails alone.
public struct EventProcessor: Sendable {
    /// How much one transaction writes.
    public struct Limits: Sendable, Hashable {
        /// Queued batches (jobs) per transaction (`EVENT_PERSIST_MAX_JOBS`).
        public var jobs: Int
        /// Events per transaction (`EVENT_PERSIST_MAX_ROWS`); a single larger batch still
        /// goes whole.
        public var rows: Int
        /// Queued payload bytes per transaction (`EVENT_PERSIST_MAX_BYTES`).
        public var bytes: Int

        /// 50 jobs, 5,000 events, 1 MiB.
        public static var defaults: Limits { Limits(jobs: 50, rows: 5000, bytes: 1 << 20) }

        public init(jobs: Int, rows: Int, bytes: Int) {
            self.jobs = max(1, jobs)
            self.rows = max(1, rows)
            self.bytes = max(1, bytes)
        }
    }

    let database: PostgresDatabase
    let leaderboards: LeaderboardStore
    let limits: Limits
    let rollups: EventRollups
    let logger: Logger

    public init(database: PostgresDatabase, leaderboards: LeaderboardStore, rollups: EventRollups, limits: Limits = .defaults,
                logger: Logger = Logger(label: "tally.events")) {
        self.database = database
        self.leaderboards = leaderboards
        self.limits = limits
        self.rollups = rollups
        self.logger = logger
    }

    public func process(_ job: Job) async throws {
        try await process([job])
    }

    /// Persists the jobs' batches in transactions of up to `limits.rows` events (whole
    /// batches), one after the other; throws at the first that fails (those before it are
    /// committed: running their jobs again stores nothing twice).
    public func process(_ jobs: [Job]) async throws {
        let batches = try jobs.map { try EventBatchPayload(decoding: $0.payload) }
        var start = 0
        while start < batches.count {
            var end = start + 1
            var rows = batches[start].events.count
            while end < batches.count && rows + batches[end].events.count <= limits.rows {
                rows += batches[end].events.count
                end += 1
            }
            try await persist(batches[start..<end])
            start = end
        }
    }

    private func persist(_ batches: ArraySlice<EventBatchPayload>) async throws {
        let outcome: EventStore.Outcome
        do {
            outcome = try await database.withTransaction { connection in
                try await EventStore.persist(Array(batches), rollups: rollups, on: connection)
            }
        } catch let error as PostgresError where error.rpcError.code == .unavailable {
            // Postgres down or saturated: wait for it without spending the jobs' attempts.
            throw DependencyUnavailable(retryAfter: .seconds(1), reason: "\(error)")
        }
        ProductMetrics.eventsPersisted.increment(by: Int64(outcome.inserted.count))
        await leaderboards.publish(outcome.scores)
    }

    /// A worker running this processor on the events queue: groups of jobs within `limits`
    /// (the configuration's own grouping is replaced), each group one transaction.
    public func worker(queue: JobQueue, configuration: JobWorker.Configuration) -> JobWorker {
        var configuration = configuration
        configuration.grouping = JobWorker.Grouping(maxJobs: limits.jobs, maxBytes: limits.bytes)
        return JobWorker(queue: queue, configuration: configuration, logger: logger,
                         handler: { job in try await self.process(job) },
                         groupHandler: { jobs in try await self.process(jobs) })
    }
}
