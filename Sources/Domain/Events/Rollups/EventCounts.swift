public import Storage
public import Codec

/// `Counts`: events per type and active users per UTC hour, day or month over a range, from
/// the rollups (one indexed range read of `event_counts` and pipelined `PFCOUNT`s), never from
/// the events table, except for an exact recount of active users when asked.
public struct EventCounts: Sendable {
    let database: PostgresDatabase
    let activeUsers: ActiveUsers
    let maxBuckets: Int

    public init(database: PostgresDatabase, activeUsers: ActiveUsers, maxBuckets: Int) {
        self.database = database
        self.activeUsers = activeUsers
        self.maxBuckets = maxBuckets
    }

    /// The buckets a request covers: `[first, end)` in the granularity's units (hours or days
    /// since the epoch, months since year 0) and the hours they span.
    struct Span: Equatable {
        var granularity: Tally_V1_CountsGranularity
        var first: Int64
        var end: Int64
        var hours: Range<Int64>

        var count: Int64 { end - first }

        /// The bucket of an hour since the epoch, as an index from `first`.
        func index(ofHour hour: Int64) -> Int {
            switch granularity {
            case .hour: Int(hour - first)
            case .day: Int(hour / 24 - first)
            default: Int(RollupTime.month(ofDay: hour / 24) - first)
            }
        }

        /// Unix ms of the bucket at `index`.
        func startMs(_ index: Int) -> Int64 {
            let bucket = first + Int64(index)
            switch granularity {
            case .hour: return bucket * RollupTime.hourMs
            case .day: return bucket * RollupTime.dayMs
            default: return RollupTime.firstDay(ofMonth: bucket) * RollupTime.dayMs
            }
        }
    }

    /// The request's buckets, or INVALID_ARGUMENT naming the field.
    func span(of request: Tally_V1_CountsRequest) throws(RPCError) -> Span {
        let unit: String
        switch request.granularity {
        case .hour: unit = "hours"
        case .day: unit = "days"
        case .month: unit = "months"
        default: throw RPCError(.invalidArgument, "granularity: required, one of HOUR, DAY or MONTH")
        }
        if request.fromMs < 0 { throw RPCError(.invalidArgument, "from_ms: must not be negative, got \(request.fromMs)") }
        if request.toMs <= request.fromMs {
            throw RPCError(.invalidArgument, "to_ms: must be after from_ms (\(request.fromMs)), got \(request.toMs)")
        }
        for (index, type) in request.types.enumerated() where type.isEmpty {
            throw RPCError(.invalidArgument, "types[\(index)]: must not be empty")
        }
        if request.activeUsers, request.granularity == .hour {
            throw RPCError(.invalidArgument, "active_users: counted per DAY or MONTH, not per HOUR")
        }
        if request.exactActiveUsers, !(request.activeUsers && request.granularity == .day) {
            throw RPCError(.invalidArgument, "exact_active_users: needs active_users and granularity DAY")
        }
        let span: Span
        switch request.granularity {
        case .hour:
            let first = Self.floor(request.fromMs, RollupTime.hourMs), end = Self.ceiling(request.toMs, RollupTime.hourMs)
            span = Span(granularity: .hour, first: first, end: end, hours: first..<end)
        case .day:
            let first = Self.floor(request.fromMs, RollupTime.dayMs), end = Self.ceiling(request.toMs, RollupTime.dayMs)
            span = Span(granularity: .day, first: first, end: end, hours: first * 24..<end * 24)
        default:
            let first = RollupTime.month(ofDay: RollupTime.day(request.fromMs))
            let end = RollupTime.month(ofDay: RollupTime.day(request.toMs - 1)) + 1
            span = Span(granularity: .month, first: first, end: end,
                        hours: RollupTime.firstDay(ofMonth: first) * 24..<RollupTime.firstDay(ofMonth: end) * 24)
        }
        if span.count > Int64(maxBuckets) {
            throw RPCError(
                .invalidArgument,
                "to_ms: the range spans \(span.count) \(unit), at most \(maxBuckets) buckets allowed (EVENT_COUNTS_MAX_BUCKETS)")
        }
        return span
    }

    public func answer(_ request: Tally_V1_CountsRequest, deadline: ContinuousClock.Instant? = nil) async throws -> Tally_V1_CountsResponse {
        let span = try self.span(of: request)
        var buckets = (0..<Int(span.count)).map { index in
            var bucket = Tally_V1_CountsBucket()
            bucket.startMs = span.startMs(index)
            return bucket
        }
        let rows = try await database.read(deadline: deadline) { connection in
            try await HourlyCounts.read(fromHour: span.hours.lowerBound, toHour: span.hours.upperBound, types: request.types, on: connection)
        }
        var perBucket = [[String: Int64]](repeating: [:], count: buckets.count)
        for row in rows { perBucket[span.index(ofHour: row.hour)][row.type, default: 0] += row.events }
        for (index, counts) in perBucket.enumerated() {
            buckets[index].counts = counts.sorted { $0.key < $1.key }.map { type, count in
                var entry = Tally_V1_TypeCount()
                entry.type = type
                entry.count = count
                return entry
            }
        }
        if request.activeUsers {
            let users: [Int64]
            if request.exactActiveUsers {
                users = try await database.read(deadline: deadline) { connection in
                    var exact: [Int64] = []
                    for day in span.first..<span.end { exact.append(try await activeUsers.recount(day: day, on: connection)) }
                    return exact
                }
            } else if span.granularity == .day {
                users = try await activeUsers.count(days: span.first..<span.end)
            } else {
                users = try await activeUsers.count(months: span.first..<span.end)
            }
            for (index, count) in users.enumerated() { buckets[index].activeUsers = count }
        }
        var response = Tally_V1_CountsResponse()
        response.buckets = buckets
        return response
    }

    private static func floor(_ value: Int64, _ unit: Int64) -> Int64 { value / unit }  // value >= 0

    private static func ceiling(_ value: Int64, _ unit: Int64) -> Int64 { value / unit + (value % unit == 0 ? 0 : 1) }
}
