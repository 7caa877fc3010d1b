public import Logging
public import ServiceLifecycle
public import Storage

/// Outbound notifications: a domain records its messages in its own transaction (the outbox)
/// and dispatches them after the commit; workers on every instance send them to the sink
/// within a per-destination and a global limit, honouring the sink's `retry_after`.
///
/// Postgres is the truth: a message exists once its row committed, and the Redis queue only
/// carries its id to a worker (job id = message id, so dispatching twice queues once). A
/// dispatch that never happened (the process died after the commit) or a job Redis lost is
/// queued by `NotificationSweeper`.
public final class Notifications: Sendable {
    public static let queueName = "notifications"

    let database: PostgresDatabase
    let queue: JobQueue
    let pauses: DestinationPauses
    let sink: any NotificationSink
    public let configuration: NotificationsConfiguration
    let logger: Logger
    private let courier: NotificationCourier

    /// - Parameters:
    ///   - namespace: the queue's name and the prefix of this subsystem's Redis keys; every
    ///     instance sharing the limits uses the same one (tests use their own).
    ///   - instanceCount: instances sharing the limits (the limiter's fallback with Redis down).
    public init(database: PostgresDatabase, redis: RedisClient, sink: any NotificationSink, configuration: NotificationsConfiguration,
                namespace: String = Notifications.queueName, instanceCount: Int = 1, logger: Logger) {
        self.database = database
        self.queue = JobQueue(name: namespace, redis: redis, configuration: configuration.queue)
        self.pauses = DestinationPauses(redis: redis, namespace: namespace)
        self.sink = sink
        self.configuration = configuration
        self.logger = logger
        let pacer = NotificationPacer(
            limiter: RateLimiter(redis: redis, instanceCount: instanceCount, keyPrefix: "\(namespace):rate", logger: logger),
            perDestinationPerSecond: configuration.ratePerDestinationPerSecond, globalPerSecond: configuration.globalRatePerSecond,
            holdLimit: configuration.holdLimit)
        courier = NotificationCourier(database: database, sink: sink, pacer: pacer, pauses: pauses,
                                      defaultPause: configuration.defaultPause, logger: logger)
    }

    /// Inserts the messages into the outbox on the caller's open transaction; an id already
    /// recorded is left as it is. Call `dispatch` after the commit.
    public static func record(_ messages: [NotificationMessage], on connection: PostgresConnection) async throws {
        try await NotificationStore.insert(messages, on: connection)
    }

    /// Queues recorded messages (after their transaction committed). Never throws: a message
    /// not queued now is queued by the sweeper, as its row says it was never queued.
    public func dispatch(_ messages: [NotificationMessage]) async {
        guard !messages.isEmpty else { return }
        let ids = messages.map(\.id)
        do {
            try await queue.enqueue(ids.map { NewJob(id: $0, payload: Array($0.utf8)) })
        } catch {
            logger.warning("queueing notifications failed; the sweeper queues them", metadata: ["count": "\(ids.count)", "error": "\(error)"])
            return
        }
        do {
            try await database.withConnection { try await NotificationStore.markQueued(ids, on: $0) }
        } catch {
            // Queued all the same; the sweeper finds the job alive and only notes it.
            logger.notice("noting queued notifications failed", metadata: ["count": "\(ids.count)", "error": "\(error)"])
        }
    }

    /// The queue's numbers beside the outbox's.
    public var statistics: NotificationStatistics {
        get async throws {
            let stats = try await queue.stats()
            let counts = try await database.read { try await NotificationStore.counts(on: $0) }
            return NotificationStatistics(
                waiting: stats.waiting, delayed: stats.delayed, inFlight: stats.active, pending: counts["pending"] ?? 0,
                delivered: counts["delivered"] ?? 0, dead: counts["dead"] ?? 0, failedAttempts: stats.failed,
                deadLettered: stats.dead, pausedDestinations: try await pauses.count(),
                deliveredPerSecond: stats.throughputPerSecond)
        }
    }

    /// The queue the workers take from (admin queue stats).
    public var jobQueue: JobQueue { queue }

    /// `configuration.workers` sends at once on this instance, until shutdown.
    public func worker() -> JobWorker {
        let workers = JobWorker.Configuration(
            concurrency: configuration.workers, batchSize: max(1, min(100, configuration.workers)),
            pollInterval: .milliseconds(20), drainTimeout: configuration.holdLimit + configuration.sink.timeout + .seconds(1))
        return JobWorker(queue: queue, configuration: workers, logger: logger) { [courier] job in
            try await courier.deliver(job)
        }
    }

    /// The workers and the sweeper, for a service group.
    public var services: [any Service] { [worker(), NotificationSweeper(notifications: self, logger: logger)] }

    /// Releases the sink's connections, after the workers stopped.
    public func shutdown() async {
        await sink.shutdown()
    }
}
