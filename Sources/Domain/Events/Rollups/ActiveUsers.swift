public import Storage

/// Distinct users per UTC day and month: one HyperLogLog per day in Redis.
///
/// A day's key is `{hll:YYYY-MM}:d:DD` (`hll` is the namespace): a month's days share one hash tag, so `PFCOUNT` over
/// all of them (the month's distinct users, merged on the fly) is one command on one Redis
/// Cluster slot. Workers add a batch's users before its transaction commits: `PFADD` is
/// idempotent, so a retried batch adds nothing, and a committed event's user is always in.
/// Each key expires `retentionDays` after its day ends (nil: never).
public struct ActiveUsers: Sendable {
    let redis: RedisClient
    let retentionDays: Int?
    /// The keys' prefix inside the hash tag (tests use their own).
    let namespace: String

    /// Users per `PFADD`, so a large batch never builds one huge command.
    static let chunk = 1000

    public init(redis: RedisClient, retentionDays: Int?, namespace: String = "hll") {
        self.redis = redis
        self.retentionDays = retentionDays
        self.namespace = namespace
    }

    /// The day's key (`day`: days since the epoch).
    func key(day: Int64) -> String {
        let civil = PostgresText.civil(fromDays: day)
        return "{\(namespace):\(civil.year)-\(RollupTime.twoDigits(civil.month))}:d:\(RollupTime.twoDigits(civil.day))"
    }

    /// Adds each day's users to its HyperLogLog (and sets its expiry), in one round trip.
    func add(_ usersByDay: [Int64: Set<String>]) async throws {
        var commands: [RedisCommand] = []
        for (day, users) in usersByDay {
            let key = RedisArgument(key(day: day))
            let members = Array(users)
            for start in stride(from: 0, to: members.count, by: Self.chunk) {
                commands.append(RedisCommand("PFADD", [key] + members[start..<min(start + Self.chunk, members.count)].map { RedisArgument($0) }))
            }
            if let retentionDays {
                commands.append(RedisCommand("EXPIREAT", key, RedisArgument((day + 1 + Int64(retentionDays)) * 86_400)))
            }
        }
        guard !commands.isEmpty else { return }
        for reply in try await redis.pipeline(commands) {
            if case .error(let message) = reply { throw RedisError(.server, message) }
        }
    }

    /// Estimated distinct users of each day in `days` (days since the epoch).
    func count(days: Range<Int64>) async throws -> [Int64] {
        try await counts(days.map { [key(day: $0)] })
    }

    /// Estimated distinct users of each month in `months` (months since year 0): the union of
    /// its days' HyperLogLogs.
    func count(months: Range<Int64>) async throws -> [Int64] {
        try await counts(months.map { month in
            (RollupTime.firstDay(ofMonth: month)..<RollupTime.firstDay(ofMonth: month + 1)).map { key(day: $0) }
        })
    }

    private func counts(_ keySets: [[String]]) async throws -> [Int64] {
        guard !keySets.isEmpty else { return [] }
        let replies = try await redis.pipeline(keySets.map { RedisCommand("PFCOUNT", $0.map { RedisArgument($0) }) })
        return try replies.map { reply in
            if case .error(let message) = reply { throw RedisError(.server, message) }
            guard let count = reply.int else { throw RedisError(.unexpectedReply, "PFCOUNT answered \(reply)") }
            return count
        }
    }

    /// The exact distinct users of `day` from the events table; adds each to the day's
    /// HyperLogLog, so a day whose events were written while Redis was down is whole again
    /// (adding a user who is already in changes nothing).
    func recount(day: Int64, on connection: PostgresConnection) async throws -> Int64 {
        let rows = try await connection.query("SELECT u FROM event_day_users($1::date) AS u", [RollupTime.date(ofDay: day)])
        var users = Set<String>()
        for row in rows { users.insert(try row.decode(0, as: String.self)) }
        try await add([day: users])
        return Int64(users.count)
    }
}
