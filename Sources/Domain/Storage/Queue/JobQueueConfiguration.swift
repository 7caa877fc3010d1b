/// How one named queue treats its jobs.
public struct JobQueueConfiguration: Sendable, Hashable {
    /// A claimed job not completed, failed or released within this time is presumed lost
    /// with its worker and returns to the queue (the attempt counts).
    public var leaseTimeout: Duration
    /// Attempts before a job is dead-lettered.
    public var maxAttempts: Int
    /// Retry delay after the n-th failed attempt: `backoffBase * 2^(n-1)`, capped at
    /// `backoffMax`, spread by +-`backoffJitter` (a fraction) so retries of a burst of
    /// failures do not come back as a burst.
    public var backoffBase: Duration
    public var backoffMax: Duration
    public var backoffJitter: Double
    /// Completed and failed-attempt records kept for inspection: at most this many...
    public var keepCount: Int
    /// ...and none older than this.
    public var keepAge: Duration

    /// 30 s leases, 5 attempts, backoff 1 s doubling to 5 min with +-20% jitter, keep the
    /// last 10,000 records for a day.
    public static var defaults: JobQueueConfiguration {
        JobQueueConfiguration(
            leaseTimeout: .seconds(30), maxAttempts: 5, backoffBase: .seconds(1), backoffMax: .seconds(300),
            backoffJitter: 0.2, keepCount: 10_000, keepAge: .seconds(86_400))
    }

    public init(
        leaseTimeout: Duration, maxAttempts: Int, backoffBase: Duration, backoffMax: Duration,
        backoffJitter: Double, keepCount: Int, keepAge: Duration
    ) {
        self.leaseTimeout = leaseTimeout
        self.maxAttempts = maxAttempts
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.backoffJitter = backoffJitter
        self.keepCount = keepCount
        self.keepAge = keepAge
    }
}
