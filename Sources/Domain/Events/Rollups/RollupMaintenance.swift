public import Storage
public import Logging
public import ServiceLifecycle
public import Foundation
import Units

/// Keeps `event_counts` small to read and within retention, hourly: folds the shards of past
/// hours into one row per hour and type, and deletes hours older than the retention (the
/// days' HyperLogLogs expire by themselves). Safe from several instances at once: a pass holds
/// a transaction advisory lock.
public struct RollupMaintenance: Service {
    let pool: PostgresPool
    let retentionDays: Int?
    let logger: Logger

    /// Advisory lock key of rollup maintenance ("tallyrlp").
    static let lockKey: Int64 = 0x7461_6c6c_7972_6c70

    public init(pool: PostgresPool, retentionDays: Int?, logger: Logger) {
        self.pool = pool
        self.retentionDays = retentionDays
        self.logger = logger
    }

    /// What one pass changed.
    public struct Report: Sendable, Hashable {
        /// Shard rows folded into their hour's row.
        public var folded: Int
        /// Rows deleted as older than the retention.
        public var pruned: Int
    }

    /// Folds hours before the previous one (writers are done with them but for late events,
    /// which a later pass folds) and prunes hours that ended more than `retentionDays` before `now`.
    @discardableResult
    public func maintain(now: Date = Date()) async throws -> Report {
        let nowMs = now.unixMilliseconds
        return try await pool.withTransaction { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock($1)", [Self.lockKey])
            var report = Report(folded: 0, pruned: 0)
            if let retentionDays {
                report.pruned = try await HourlyCounts.prune(
                    beforeHour: RollupTime.hour(nowMs) - Int64(retentionDays) * 24, on: connection)
            }
            report.folded = try await HourlyCounts.fold(beforeHour: RollupTime.hour(nowMs) - 1, on: connection)
            return report
        }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                _ = try await maintain()
            } catch {
                logger.error("event rollup maintenance failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}
