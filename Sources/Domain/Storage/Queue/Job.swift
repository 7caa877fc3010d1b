public import ServiceContextModule

/// A job to enqueue.
public struct NewJob: Sendable, Hashable {
    /// The idempotency key: enqueueing an id the queue already holds (in any state, until
    /// its record is trimmed) does nothing.
    public var id: String
    public var payload: [UInt8]
    /// 0 (lowest) to 9 (highest); higher priorities are claimed first, FIFO within one.
    public var priority: Int
    /// Not claimable before this delay has passed.
    public var delay: Duration
    /// Overrides the queue's `maxAttempts` for this job.
    public var maxAttempts: Int?
    /// The W3C `traceparent` of the work that queued it (by default the current task's), so
    /// the job's log lines name the trace of the call that caused them.
    public var traceParent: String?

    public init(id: String, payload: [UInt8], priority: Int = 0, delay: Duration = .zero, maxAttempts: Int? = nil,
                traceParent: String? = ServiceContext.currentTraceParent) {
        self.id = id
        self.payload = payload
        self.priority = min(9, max(0, priority))
        self.delay = delay
        self.maxAttempts = maxAttempts
        self.traceParent = traceParent
    }
}

/// A claimed job: its lease is held until it is completed, failed, released, or expires.
public struct Job: Sendable, Hashable {
    public var id: String
    public var payload: [UInt8]
    /// This attempt's number, from 1.
    public var attempt: Int
    public var maxAttempts: Int
    /// The lease token of the claim (completions by another token are ignored).
    public var lease: String
    /// The trace of the work that queued it (`NewJob.traceParent`).
    public var traceParent: String? = nil
}

/// What became of a failed attempt.
public enum JobFailureOutcome: Sendable, Hashable {
    /// Back in the queue, claimable after this delay.
    case retry(after: Duration)
    /// The last attempt failed: moved to the dead-letter set.
    case dead
    /// The lease had already expired and the job was handed to another worker.
    case stale
}

/// A job's stored state, for inspection (admin, tests).
public struct JobRecord: Sendable, Hashable {
    public enum State: String, Sendable {
        case waiting, delayed, active, completed, dead
    }

    public var id: String
    public var state: State
    public var attempts: Int
    public var lastError: String?
}

/// The numbers of one queue.
public struct JobQueueStats: Sendable, Hashable {
    public var waiting = 0
    public var delayed = 0
    public var active = 0
    /// Jobs in the dead-letter set now.
    public var dead = 0
    /// Totals since the queue was created.
    public var enqueued = 0
    public var completed = 0
    /// Failed attempts that were retried.
    public var failed = 0
    public var deadLettered = 0
    public var leasesExpired = 0
    /// Completed jobs per second over the last minute.
    public var throughputPerSecond: Double = 0
    /// Mean time from claim to completion.
    public var meanProcessingTime: Duration = .zero
}

/// Thrown by a job handler when a dependency is unavailable (database down): the job is
/// postponed by `retryAfter` without using up an attempt, so an outage of any length sends
/// nothing to the dead-letter set.
public struct DependencyUnavailable: Error, Sendable {
    public var retryAfter: Duration
    public var reason: String

    public init(retryAfter: Duration = .seconds(1), reason: String) {
        self.retryAfter = retryAfter
        self.reason = reason
    }
}

/// Thrown by a job handler whose job is not due yet (its domain keeps its own retry schedule,
/// e.g. a provider's backoff): the job is postponed by `retryAfter`, no attempt counted, and
/// nothing is logged above debug, as this is the normal course of things.
public struct JobNotDue: Error, Sendable {
    public var retryAfter: Duration

    public init(retryAfter: Duration) {
        self.retryAfter = retryAfter
    }
}
