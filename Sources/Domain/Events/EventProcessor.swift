public import Storage
public import Logging

/// The queue worker's job: persist a batch of events in one transaction and apply their
/// scores to leaderboards.
///
/// Idempotent (event ids dedupe in Postgres), so a job delivered twice, after a crash or a
/// lease expiry, is counted once. A batch that cannot be decoded is a bug upstream: it fails
/// (retried, then dead-lettered, kept for inspection) rather than being dropped.
public struct EventProcessor: Sendable {
    let database: PostgresDatabase
    let leaderboards: LeaderboardStore
    let rollups: EventRollups
    let logger: Logger

    public init(database: PostgresDatabase, leaderboards: LeaderboardStore, rollups: EventRollups, logger: Logger = Logger(label: "tally.events")) {
        self.database = database
        self.leaderboards = leaderboards
        self.rollups = rollups
        self.logger = logger
    }

    public func process(_ job: Job) async throws {
        let batch = try EventBatchPayload(decoding: job.payload)
        let outcome: EventStore.Outcome
        do {
            outcome = try await database.withTransaction { connection in
                try await EventStore.persist(batch.events, receivedAtMs: batch.receivedAtMs, rollups: rollups, on: connection)
            }
        } catch let error as PostgresError where error.rpcError.code == .unavailable {
            // Postgres down or saturated: wait for it without spending the job's attempts.
            throw DependencyUnavailable(retryAfter: .seconds(1), reason: "\(error)")
        }
        ProductMetrics.eventsPersisted.increment(by: Int64(outcome.inserted.count))
        await leaderboards.publish(outcome.scores)
    }

    /// A worker running this processor on the events queue.
    public func worker(queue: JobQueue, configuration: JobWorker.Configuration) -> JobWorker {
        JobWorker(queue: queue, configuration: configuration, logger: logger) { job in
            try await self.process(job)
        }
    }
}
