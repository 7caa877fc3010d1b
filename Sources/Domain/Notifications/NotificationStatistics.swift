/// Where notifications are: the queue's view (Redis) beside the outbox's (Postgres), shared by
/// every instance, so any instance answers for the whole fleet.
public struct NotificationStatistics: Sendable, Hashable {
    /// Queued and due now.
    public var waiting: Int
    /// Queued, not due yet: retry backoff, a rate limit's or a pause's re-delay.
    public var delayed: Int
    /// Claimed by a worker right now.
    public var inFlight: Int
    /// Outbox rows not yet delivered nor dead.
    public var pending: Int64
    public var delivered: Int64
    /// Given up: out of attempts, or refused for good by the sink.
    public var dead: Int64
    /// Failed sends that were retried, since the queue was created.
    public var failedAttempts: Int
    /// Jobs in the queue's dead-letter set now.
    public var deadLettered: Int
    /// Destinations a sink has paused (429) right now.
    public var pausedDestinations: Int
    /// Deliveries per second over the last minute.
    public var deliveredPerSecond: Double

    public init(waiting: Int = 0, delayed: Int = 0, inFlight: Int = 0, pending: Int64 = 0, delivered: Int64 = 0, dead: Int64 = 0,
                failedAttempts: Int = 0, deadLettered: Int = 0, pausedDestinations: Int = 0, deliveredPerSecond: Double = 0) {
        self.waiting = waiting
        self.delayed = delayed
        self.inFlight = inFlight
        self.pending = pending
        self.delivered = delivered
        self.dead = dead
        self.failedAttempts = failedAttempts
        self.deadLettered = deadLettered
        self.pausedDestinations = pausedDestinations
        self.deliveredPerSecond = deliveredPerSecond
    }
}
