import Foundation
public import Logging
public import NIOCore
internal import NIOPosix
public import ServiceLifecycle
import Synchronization

/// The database as the services see it: a primary pool for writes and an optional read-replica
/// pool (`DATABASE_READ_URL`) for reads that tolerate replication lag (leaderboard pages, stats).
///
/// `read` uses the replica and falls back to the primary when no replica is configured or a
/// connection to it cannot be opened; after such a failure the replica is skipped for
/// `replicaRetryInterval`, so a dead replica does not cost every read a connect timeout.
/// Errors of the statements themselves are not retried elsewhere.
public final class PostgresDatabase: Sendable {
    public let primary: PostgresPool
    public let replica: PostgresPool?
    /// How long reads skip a replica that failed to connect (default 5 s).
    public let replicaRetryInterval: Duration
    private let replicaDownUntil = Mutex<ContinuousClock.Instant?>(nil)
    private let logger: Logger

    public init(
        primary: PostgresConfiguration, replica: PostgresConfiguration? = nil,
        replicaRetryInterval: Duration = .seconds(5),
        eventLoopGroup: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "tally.postgres")
    ) {
        self.primary = PostgresPool(configuration: primary, eventLoopGroup: eventLoopGroup, logger: logger)
        self.replica = replica.map { PostgresPool(configuration: $0, eventLoopGroup: eventLoopGroup, logger: logger) }
        self.replicaRetryInterval = replicaRetryInterval
        self.logger = logger
    }

    /// Whether the primary answers a trivial statement now (health).
    public func ping() async -> Bool {
        (try? await primary.withConnection { try await $0.query("SELECT 1") }) != nil
    }

    /// A connection to the primary.
    public func withConnection<T>(
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await primary.withConnection(deadline: deadline, body)
    }

    /// A transaction on the primary.
    public func withTransaction<T>(
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await primary.withTransaction(deadline: deadline, body)
    }

    /// A connection for reads: the replica when one is configured and reachable, else the primary.
    public func read<T>(
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        guard let replica, replicaUsable() else {
            return try await primary.withConnection(deadline: deadline, body)
        }
        let handle: ConnectionHandle
        do {
            handle = try await replica.lease(deadline: deadline)
        } catch let error as PostgresError where error.code == .connectionFailed {
            logger.warning("read replica unreachable, reading from the primary", metadata: ["error": "\(error)"])
            replicaDownUntil.withLock { $0 = .now + replicaRetryInterval }
            return try await primary.withConnection(deadline: deadline, body)
        }
        let connection = PostgresConnection(handle: handle, pool: replica, deadline: deadline)
        let result: T
        do {
            result = try await body(connection)
        } catch {
            await replica.giveBack(handle)
            throw error
        }
        await replica.giveBack(handle)
        return result
    }

    /// Whether reads go to the replica now (configured and not recently unreachable).
    public var readsUseReplica: Bool { replica != nil && replicaUsable() }

    private func replicaUsable() -> Bool {
        replicaDownUntil.withLock { until in
            guard let deadline = until else { return true }
            if ContinuousClock.now >= deadline {
                until = nil
                return true
            }
            return false
        }
    }

    /// Shuts both pools down.
    public func shutdown() async {
        await primary.shutdown()
        await replica?.shutdown()
    }
}

extension PostgresDatabase: Service {
    /// Runs both pools' maintenance until graceful shutdown, then shuts them down.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.primary.run() }
            if let replica = self.replica {
                group.addTask { try await replica.run() }
            }
        }
    }
}
