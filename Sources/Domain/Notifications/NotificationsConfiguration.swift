import Storage

/// How notifications are sent, limited, retried and swept.
public struct NotificationsConfiguration: Sendable {
    /// Sends at once per instance (`NOTIFY_CONCURRENCY`).
    public var workers: Int
    /// Sends of one message before it is dead (`NOTIFY_MAX_ATTEMPTS`); rate-limit and pause
    /// re-delays do not count.
    public var maxAttempts: Int
    /// Messages per second to one destination, over every instance
    /// (`NOTIFY_RATE_PER_DESTINATION_PER_SEC`).
    public var ratePerDestinationPerSecond: Double
    /// Messages per second over every instance (`NOTIFY_RATE_GLOBAL_PER_SEC`).
    public var globalRatePerSecond: Double
    public var sink: NotificationSinkChoice
    /// Retry delay after the n-th failed send: base * 2^(n-1), capped, +-20% jitter.
    public var retryBase: Duration
    public var retryMax: Duration
    /// A 429 without `retry_after` pauses its destination this long.
    public var defaultPause: Duration
    /// Longest a worker holds a message in process waiting for the global limit's next slot
    /// before putting it back in the queue (see `NotificationPacer`).
    public var holdLimit: Duration
    /// How often the sweeper looks for rows whose job never came or was lost, and how long
    /// ago a row must have been queued to be looked at again (`NOTIFY_SWEEP_AFTER_MS`).
    public var sweepInterval: Duration
    public var sweepAfter: Duration
    /// Rows the sweeper looks at per pass.
    public var sweepBatch: Int

    /// 10 workers, 5 attempts, 1 per second per destination, 30 per second in all, the log
    /// sink, retries from 1 s doubling to 60 s, 1 s pauses by default, held up to 2 s, a sweep
    /// every 2 s of rows queued over 30 s ago, 500 at a time.
    public static var defaults: NotificationsConfiguration {
        NotificationsConfiguration(
            workers: 10, maxAttempts: 5, ratePerDestinationPerSecond: 1, globalRatePerSecond: 30, sink: .log,
            retryBase: .seconds(1), retryMax: .seconds(60), defaultPause: .seconds(1), holdLimit: .seconds(2),
            sweepInterval: .seconds(2), sweepAfter: .seconds(30), sweepBatch: 500)
    }

    public init(workers: Int, maxAttempts: Int, ratePerDestinationPerSecond: Double, globalRatePerSecond: Double,
                sink: NotificationSinkChoice, retryBase: Duration, retryMax: Duration, defaultPause: Duration, holdLimit: Duration,
                sweepInterval: Duration, sweepAfter: Duration, sweepBatch: Int) {
        self.workers = workers
        self.maxAttempts = maxAttempts
        self.ratePerDestinationPerSecond = ratePerDestinationPerSecond
        self.globalRatePerSecond = globalRatePerSecond
        self.sink = sink
        self.retryBase = retryBase
        self.retryMax = retryMax
        self.defaultPause = defaultPause
        self.holdLimit = holdLimit
        self.sweepInterval = sweepInterval
        self.sweepAfter = sweepAfter
        self.sweepBatch = sweepBatch
    }

    /// The notification queue's rules: its attempts and backoff are this configuration's. A
    /// lease outlives the longest hold plus a send's timeout, so only a dead worker's job
    /// comes back while still held.
    var queue: JobQueueConfiguration {
        var queue = JobQueueConfiguration.defaults
        queue.maxAttempts = maxAttempts
        queue.backoffBase = retryBase
        queue.backoffMax = retryMax
        queue.leaseTimeout = holdLimit + sink.timeout * 2 + .seconds(10)
        return queue
    }
}
