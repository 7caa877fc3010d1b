public import Storage
public import Codec
import Foundation
public import Logging
import Synchronization
import Units

/// Accepts events: validates them, applies rate limits, and makes them durable before they
/// are acknowledged.
///
/// Durable means queued in Redis (AOF, fsync always) in one atomic script that also marks each
/// event id as seen, so a resend within `dedupeWindow` is answered as a duplicate. Batches
/// with a `game_ended` go to a high-priority job so leaderboards lag least. When Redis is
/// unreachable the events are written straight to Postgres and processed inline (slower,
/// nothing lost), and `isDegraded` says so until a queue write succeeds again.
public final class EventIngestor: Sendable {
    public struct Configuration: Sendable {
        public var rules: EventRules
        /// Events per user per period (`EVENT_USER_RATE`, per minute by default).
        public var perUserLimit: RateLimit?
        /// Events per client connection (peer) per period.
        public var perPeerLimit: RateLimit?
        /// How long an event id is remembered in Redis to report resends as duplicates (older
        /// resends are still stored once: Postgres dedupes by id forever within retention).
        /// Zero remembers nothing: a resend is acknowledged as accepted and still stored and
        /// counted once, and Redis does about three quarters less work per batch (no mark sets
        /// to check, grow and write to the AOF).
        public var dedupeWindow: Duration

        /// 100 events per batch, 600 per user and 60,000 per peer per minute, ids
        /// remembered for an hour.
        public static var defaults: Configuration {
            Configuration(rules: .defaults, perUserLimit: .perMinute(600), perPeerLimit: .perMinute(60_000), dedupeWindow: .seconds(3600))
        }

        public init(rules: EventRules, perUserLimit: RateLimit?, perPeerLimit: RateLimit?, dedupeWindow: Duration) {
            self.rules = rules
            self.perUserLimit = perUserLimit
            self.perPeerLimit = perPeerLimit
            self.dedupeWindow = dedupeWindow
        }
    }

    /// What became of a batch.
    public struct Outcome: Sendable, Hashable {
        public var accepted: [String] = []
        public var duplicates: [String] = []
        public var rejected: [Tally_V1_RejectedEvent] = []
    }

    public let configuration: Configuration
    public let queue: JobQueue
    let database: PostgresDatabase
    let limiter: RateLimiter?
    let leaderboards: LeaderboardStore
    /// For the fallback's inline writes: counts only, Redis being unreachable.
    let rollups: EventRollups
    let validator: EventValidator
    let logger: Logger
    private let degraded = Atomic<Bool>(false)

    /// The queue events go through (`{q:events}` in Redis).
    public static let queueName = "events"

    public init(queue: JobQueue, database: PostgresDatabase, leaderboards: LeaderboardStore, rollups: EventRollups, limiter: RateLimiter?,
                configuration: Configuration = .defaults, logger: Logger = Logger(label: "tally.events")) {
        self.queue = queue
        self.database = database
        self.leaderboards = leaderboards
        self.rollups = rollups.withoutActiveUsers
        self.limiter = limiter
        self.configuration = configuration
        self.validator = EventValidator(rules: configuration.rules)
        self.logger = logger
    }

    /// True while events bypass the queue because Redis is unreachable.
    public var isDegraded: Bool { degraded.load(ordering: .relaxed) }

    /// Ingests one batch (a `Track` request or one `EventBatch` of a stream).
    @discardableResult
    public func ingest(_ events: [Tally_V1_Event], peer: String, deadline: ContinuousClock.Instant? = nil) async throws -> Outcome {
        try validator.checkBatchSize(events.count)
        let nowMs = Date().unixMilliseconds
        var outcome = Outcome()
        // The first valid occurrence of an id in the batch is the event; later copies are
        // acknowledged with it. Deduplicated here once, so a copy of another type cannot land
        // in the other job (scoring or not) and win the race to Postgres.
        var valid: [Tally_V1_Event] = []
        valid.reserveCapacity(events.count)
        var seen = Set<ExactID>()
        for (index, event) in events.enumerated() {
            if let reason = validator.problem(in: event, at: index, nowMs: nowMs) {
                var rejected = Tally_V1_RejectedEvent()
                rejected.id = event.id
                rejected.index = Int32(index)
                rejected.reason = reason
                outcome.rejected.append(rejected)
            } else if seen.insert(ExactID(event.id)).inserted {
                valid.append(event)
            }
        }
        guard !valid.isEmpty else { return outcome }
        try await checkRateLimits(valid, peer: peer)

        let fresh: Set<ExactID>
        do {
            fresh = try await enqueue(valid, receivedAtMs: nowMs)
            if degraded.exchange(false, ordering: .relaxed) {
                logger.notice("events are queued in Redis again")
            }
        } catch let error as RedisError {
            if !degraded.exchange(true, ordering: .relaxed) {
                logger.warning("Redis unreachable: events are written straight to Postgres", metadata: ["error": "\(error)"])
            }
            fresh = try await persistInline(valid, receivedAtMs: nowMs, deadline: deadline)
        }
        for event in valid {
            if fresh.contains(ExactID(event.id)) { outcome.accepted.append(event.id) } else { outcome.duplicates.append(event.id) }
        }
        ProductMetrics.eventsAccepted.increment(by: Int64(outcome.accepted.count))
        ProductMetrics.eventsDuplicate.increment(by: Int64(outcome.duplicates.count))
        return outcome
    }

    private func checkRateLimits(_ events: [Tally_V1_Event], peer: String) async throws {
        guard let limiter else { return }
        if let limit = configuration.perPeerLimit {
            let decision = await limiter.decide(key: "events:peer:\(peer)", limit: limit, cost: events.count)
            ProductMetrics.rateLimitDecided(.eventsPeer, allowed: decision.allowed)
            if !decision.allowed { throw decision.rejection("too many events from this connection (\(limit)); retry later") }
        }
        if let limit = configuration.perUserLimit {
            var perUser: [ExactID: Int] = [:]
            for event in events { perUser[ExactID(event.userId), default: 0] += 1 }
            let users = Array(perUser)
            let decisions = await limiter.decide(users.map { (key: "events:user:\($0.key.text)", cost: $0.value) }, limit: limit)
            for decision in decisions { ProductMetrics.rateLimitDecided(.eventsUser, allowed: decision.allowed) }
            for (index, decision) in decisions.enumerated() where !decision.allowed {
                throw decision.rejection("too many events for user \(users[index].key.text.prefix(64)) (\(limit)); retry later")
            }
        }
    }

    /// Queues the batch, whose ids are distinct (game_ended events in a high-priority job);
    /// returns the new ids (all of them when no dedupe window is kept).
    private func enqueue(_ events: [Tally_V1_Event], receivedAtMs: Int64) async throws -> Set<ExactID> {
        let scoring = events.filter { $0.type == "game_ended" }
        let other = events.filter { $0.type != "game_ended" }
        var jobs: [JobQueue.MarkedJob] = []
        for (part, priority) in [(scoring, 9), (other, 0)] where !part.isEmpty {
            let payload = EventBatchPayload(receivedAtMs: receivedAtMs, events: part).encoded()
            jobs.append(JobQueue.MarkedJob(job: NewJob(id: UUID().uuidString, payload: payload, priority: priority), marks: part.map(\.id)))
        }
        guard configuration.dedupeWindow > .zero else {
            _ = try await queue.enqueue(jobs.map(\.job))
            return Set(events.map { ExactID($0.id) })
        }
        return try await queue.enqueue(marked: jobs, markTTL: configuration.dedupeWindow)
    }

    /// The fallback while Redis is down: one transaction, processed inline. The users are not
    /// added to the days' HyperLogLogs (Redis is why we are here); an exact recount
    /// (`Counts` with `exact_active_users`) adds them later.
    private func persistInline(_ events: [Tally_V1_Event], receivedAtMs: Int64, deadline: ContinuousClock.Instant?) async throws -> Set<ExactID> {
        let outcome = try await database.withTransaction(deadline: deadline) { connection in
            try await EventStore.persist(events, receivedAtMs: receivedAtMs, rollups: rollups, on: connection)
        }
        ProductMetrics.eventsPersisted.increment(by: Int64(outcome.inserted.count))
        await leaderboards.publish(outcome.scores)
        return outcome.inserted
    }
}
