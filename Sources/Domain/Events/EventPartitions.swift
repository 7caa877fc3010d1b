public import Storage
public import Foundation

/// Keeps the monthly partitions of `events`: the current month and `monthsAhead` more exist,
/// and partitions entirely older than `retentionDays` are dropped (with their `event_ids`
/// dedupe rows). Idempotent and safe to run from several instances at once (it serialises on
/// a transaction advisory lock); the server runs it at start and periodically.
///
/// Partitions are named `events_yYYYYmMM` and cover `[first of month, first of next month)`
/// in UTC; partitions with other names are left alone.
public struct EventPartitions: Sendable {
    public let pool: PostgresPool
    /// Months after the current one to create ahead (default 3).
    public var monthsAhead: Int
    /// Drop partitions whose every row is older than this many days; nil keeps all (default 90).
    public var retentionDays: Int?

    /// Advisory lock key of partition maintenance ("tallyprt").
    static let lockKey: Int64 = 0x7461_6c6c_7970_7274

    public init(pool: PostgresPool, monthsAhead: Int = 3, retentionDays: Int? = 90) {
        precondition(monthsAhead >= 0, "monthsAhead must not be negative")
        self.pool = pool
        self.monthsAhead = monthsAhead
        self.retentionDays = retentionDays
    }

    /// What one maintenance pass changed.
    public struct Report: Sendable, Hashable {
        public var created: [String]
        public var dropped: [String]

        public init(created: [String], dropped: [String]) {
            self.created = created
            self.dropped = dropped
        }
    }

    /// A calendar month in UTC.
    public struct Month: Sendable, Hashable, Comparable {
        public var year: Int
        public var month: Int  // 1...12

        public init(year: Int, month: Int) {
            precondition((1...12).contains(month), "month must be 1...12")
            self.year = year
            self.month = month
        }

        public init(containing date: Date) {
            let days = Int64((date.timeIntervalSince1970 / 86_400).rounded(.down))
            let civil = PostgresText.civil(fromDays: days)
            self.init(year: Int(civil.year), month: Int(civil.month))
        }

        public func adding(months: Int) -> Month {
            let index = year * 12 + (month - 1) + months
            return Month(year: index / 12, month: index % 12 + 1)
        }

        /// Midnight UTC on the first day.
        public var start: Date {
            Date(timeIntervalSince1970: Double(PostgresText.days(fromCivil: Int64(year), Int64(month), 1) * 86_400))
        }

        public var partitionName: String {
            "events_y\(year)m\(month < 10 ? "0" : "")\(month)"
        }

        /// Parses `events_yYYYYmMM`.
        init?(partitionName name: String) {
            guard name.hasPrefix("events_y"), name.utf8.count == 15 else { return nil }
            let digits = name.dropFirst("events_y".count)
            guard let year = Int(digits.prefix(4)), digits.dropFirst(4).first == "m",
                let month = Int(digits.suffix(2)), (1...12).contains(month)
            else { return nil }
            self.init(year: year, month: month)
        }

        public static func < (lhs: Month, rhs: Month) -> Bool { (lhs.year, lhs.month) < (rhs.year, rhs.month) }

        /// `YYYY-MM-01 00:00:00+00`, for partition bounds (DDL takes no parameters).
        var literal: String {
            "\(year)-\(month < 10 ? "0" : "")\(month)-01 00:00:00+00"
        }
    }

    /// Creates missing partitions from the month of `now` through `monthsAhead` after it and
    /// drops those older than the retention.
    @discardableResult
    public func maintain(now: Date = Date()) async throws -> Report {
        let current = Month(containing: now)
        let wanted = (0...monthsAhead).map { current.adding(months: $0) }
        let cutoff = retentionDays.map { now.addingTimeInterval(-Double($0) * 86_400) }
        return try await pool.withTransaction { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock($1)", [Self.lockKey])
            var existing = try await partitions(connection)
            var report = Report(created: [], dropped: [])
            for month in wanted where !existing.contains(month) {
                try await create(month, connection)
                existing.insert(month)
                report.created.append(month.partitionName)
            }
            if let cutoff {
                for month in existing.sorted() where month.adding(months: 1).start <= cutoff {
                    try await connection.executeScript("DROP TABLE IF EXISTS \(month.partitionName)")
                    existing.remove(month)
                    report.dropped.append(month.partitionName)
                }
                if let oldest = existing.min(), !report.dropped.isEmpty {
                    // Their events are gone, so their ids no longer need deduping.
                    _ = try await connection.query("DELETE FROM event_ids WHERE received_at < $1", [oldest.start])
                }
            }
            return report
        }
    }

    /// Creates the partition holding `date` if it is missing (e.g. backfills); true if created.
    @discardableResult
    public func ensurePartition(containing date: Date) async throws -> Bool {
        let month = Month(containing: date)
        return try await pool.withTransaction { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock($1)", [Self.lockKey])
            guard try await !partitions(connection).contains(month) else { return false }
            try await create(month, connection)
            return true
        }
    }

    /// The months that have a partition now.
    public func existingPartitions() async throws -> [Month] {
        try await pool.withConnection { try await partitions($0).sorted() }
    }

    private func partitions(_ connection: PostgresConnection) async throws -> Set<Month> {
        let rows = try await connection.query(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'events'::regclass
            """)
        var months = Set<Month>()
        for row in rows {
            if let month = Month(partitionName: try row.decode(0, as: String.self)) { months.insert(month) }
        }
        return months
    }

    private func create(_ month: Month, _ connection: PostgresConnection) async throws {
        // Built from two validated integers only: DDL cannot take bind parameters.
        try await connection.executeScript(
            """
            CREATE TABLE IF NOT EXISTS \(month.partitionName) PARTITION OF events
            FOR VALUES FROM ('\(month.literal)') TO ('\(month.adding(months: 1).literal)')
            """)
    }
}
