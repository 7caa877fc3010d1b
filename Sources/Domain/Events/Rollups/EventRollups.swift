import Storage
import Codec

/// The analytics rollups of stored events: counts per type per UTC hour in Postgres
/// (`HourlyCounts`) and distinct users per day in Redis (`ActiveUsers`).
///
/// `record` is the one call the write path makes, inside the transaction that stores a batch,
/// with the events that transaction inserted (after the `event_ids` dedupe): the counts
/// commit with the events, so each stored event is counted exactly once, and the users are
/// added to their days before the commit.
public struct EventRollups: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Shards of each (hour, type) row that concurrent writers add to (`EVENT_ROLLUP_SHARDS`).
        public var shards: Int
        /// Days rollups are kept (`EVENT_ROLLUP_RETENTION_DAYS`); nil keeps them forever.
        public var retentionDays: Int?
        /// Buckets one `Counts` call may span (`EVENT_COUNTS_MAX_BUCKETS`).
        public var maxBuckets: Int

        /// 16 shards, two years kept, 10,000 buckets (over a year of hours).
        public static var defaults: Configuration { Configuration(shards: 16, retentionDays: 730, maxBuckets: 10_000) }

        public init(shards: Int, retentionDays: Int?, maxBuckets: Int) {
            precondition(shards >= 1, "shards must be at least 1")
            self.shards = shards
            self.retentionDays = retentionDays
            self.maxBuckets = maxBuckets
        }
    }

    public let configuration: Configuration
    /// Nil when Redis is not to be used (the write path's fallback while Redis is down):
    /// counts only; `EventCounts` with `exact_active_users` repairs such days.
    let activeUsers: ActiveUsers?

    public init(configuration: Configuration, activeUsers: ActiveUsers?) {
        self.configuration = configuration
        self.activeUsers = activeUsers
    }

    /// The same rollups without Redis.
    public var withoutActiveUsers: EventRollups { EventRollups(configuration: configuration, activeUsers: nil) }

    /// Counts `stored` (the events the caller's transaction stored now, each once, with the
    /// time its batch was received). The users' `PFADD` runs while Postgres upserts the counts;
    /// both finish before this returns, so before the caller commits.
    func record(_ stored: [EventStore.Received], on connection: PostgresConnection) async throws {
        guard !stored.isEmpty else { return }
        var counts: [HourlyCounts.Key: Int64] = [:]
        var usersByDay: [Int64: Set<String>] = [:]
        for received in stored {
            let event = received.event
            let time = RollupTime.of(clientMs: event.clientTimeMs, receivedMs: received.receivedAtMs)
            counts[HourlyCounts.Key(hour: RollupTime.hour(time), type: event.type), default: 0] += 1
            usersByDay[RollupTime.day(time), default: []].insert(event.userId)
        }
        guard let activeUsers else {
            try await HourlyCounts.add(counts, shards: configuration.shards, on: connection)
            return
        }
        let users = usersByDay
        async let added: Void = activeUsers.add(users)
        do {
            try await HourlyCounts.add(counts, shards: configuration.shards, on: connection)
        } catch {
            try? await added
            throw error
        }
        try await added
    }
}
