import Foundation
import Units
public import Logging
public import NIOCore
internal import NIOPosix
public import ServiceLifecycle
import Synchronization

/// The database as the services see it: a primary pool for writes and an optional read-replica
/// pool (`DATABASE_READ_URL`, a streaming standby) for reads that tolerate replication lag.
///
/// `read` goes to the replica only while it is known to be up and behind the primary by at
/// most `ReadPolicy.maxLag`; otherwise to the primary. What it knows comes from `run()`, which
/// checks the replica every `ReadPolicy.checkInterval` (`ReplicaLag`): until the first check
/// answers, and after a check or a read finds it unreachable or too far behind, reads go to the
/// primary at once, without waiting for a connect timeout each. A read whose replica
/// connection fails (a standby stopped or restarting), or that the standby cancelled for a
/// conflict with replay, is run again on the primary; other errors of the statements
/// themselves are not retried elsewhere.
public final class PostgresDatabase: Sendable {
    /// When reads may use the replica.
    public struct ReadPolicy: Sendable {
        /// Reads leave a replica behind the primary by more than this (default 1 s).
        public var maxLag: Duration
        /// How often the replica's reachability and lag are measured (default 250 ms).
        public var checkInterval: Duration

        public static var defaults: ReadPolicy { ReadPolicy(maxLag: .seconds(1), checkInterval: .milliseconds(250)) }

        public init(maxLag: Duration, checkInterval: Duration) {
            self.maxLag = maxLag
            self.checkInterval = checkInterval
        }
    }

    /// Where reads go now, and what the last check found.
    public enum ReplicaState: Sendable, Equatable, CustomStringConvertible {
        /// Not checked yet: reads go to the primary.
        case unknown
        /// Up and within `maxLag`: reads go to the replica.
        case serving(lag: Duration)
        /// Up but behind by more than `maxLag`: reads go to the primary.
        case lagging(lag: Duration)
        /// Unreachable: reads go to the primary.
        case down

        public var description: String {
            switch self {
            case .unknown: "unknown"
            case .serving(let lag): "serving (lag \(lag.milliseconds) ms)"
            case .lagging(let lag): "lagging (\(lag.milliseconds) ms behind)"
            case .down: "down"
            }
        }

        /// The measured lag; nil when unknown or down.
        public var lag: Duration? {
            switch self {
            case .serving(let lag), .lagging(let lag): lag
            case .unknown, .down: nil
            }
        }
    }

    /// Reads answered by each pool since start (`read` only; writes are not counted).
    public struct ReadCounts: Sendable, Equatable {
        public var replica = 0
        public var primary = 0
        /// Reads that went to the primary because the replica was down, lagging or unchecked.
        public var fallbacks = 0

        public init(replica: Int = 0, primary: Int = 0, fallbacks: Int = 0) {
            self.replica = replica
            self.primary = primary
            self.fallbacks = fallbacks
        }
    }

    public let primary: PostgresPool
    public let replica: PostgresPool?
    public let readPolicy: ReadPolicy
    let health = Mutex<(state: ReplicaState, lag: ReplicaLag, reads: ReadCounts)>((.unknown, ReplicaLag(), ReadCounts()))
    let logger: Logger

    public init(
        primary: PostgresConfiguration, replica: PostgresConfiguration? = nil, readPolicy: ReadPolicy = .defaults,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "tally.postgres")
    ) {
        self.primary = PostgresPool(configuration: primary, eventLoopGroup: eventLoopGroup, logger: logger)
        self.replica = replica.map { PostgresPool(configuration: $0, eventLoopGroup: eventLoopGroup, logger: logger) }
        self.readPolicy = readPolicy
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

    /// A connection for reads that tolerate `ReadPolicy.maxLag`: the replica while it serves,
    /// else the primary. `body` must only read: it may run twice (replica, then primary).
    public func read<T>(
        deadline: ContinuousClock.Instant? = nil,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        guard let replica, readsUseReplica else {
            count { $0.primary += 1; if self.replica != nil { $0.fallbacks += 1 } }
            return try await primary.withConnection(deadline: deadline, body)
        }
        do {
            let result = try await replica.withConnection(deadline: deadline, body)
            count { $0.replica += 1 }
            return result
        } catch let error as PostgresError where Self.replicaUnreachable(error) {
            replicaFailed(error)
            count { $0.primary += 1; $0.fallbacks += 1 }
            return try await primary.withConnection(deadline: deadline, body)
        } catch let error as PostgresError where error.sqlState == "40001" {
            // The standby cancelled the read for conflicting with the replay of the primary's
            // changes (a vacuum removing rows it still read); the primary has no such conflict.
            count { $0.primary += 1; $0.fallbacks += 1 }
            return try await primary.withConnection(deadline: deadline, body)
        }
    }

    /// Whether reads go to the replica now (configured, checked, up and within `maxLag`).
    public var readsUseReplica: Bool {
        guard replica != nil else { return false }
        if case .serving = health.withLock({ $0.state }) { return true }
        return false
    }

    /// What the last check (or a failed read) found about the replica.
    public var replicaState: ReplicaState { health.withLock { $0.state } }

    /// Reads per pool since start.
    public var readCounts: ReadCounts { health.withLock { $0.reads } }

    private func count(_ change: (inout ReadCounts) -> Void) {
        health.withLock { change(&$0.reads) }
    }

    /// Failures that say the replica, not the statement, is the problem: it cannot be reached,
    /// the connection broke, or the server is shutting down or starting (SQLSTATE class 57P).
    static func replicaUnreachable(_ error: PostgresError) -> Bool {
        error.code == .connectionFailed || error.code == .connectionLost || error.sqlState?.hasPrefix("57P") == true
    }

    /// Marks the replica down until a check reaches it again.
    func replicaFailed(_ error: any Error) {
        let was = health.withLock { health in
            defer { health.state = .down }
            return health.state
        }
        if was != .down {
            logger.warning("read replica unreachable; reads go to the primary", metadata: ["error": "\(error)"])
        }
    }

    /// Shuts both pools down.
    public func shutdown() async {
        await primary.shutdown()
        await replica?.shutdown()
    }
}

extension PostgresDatabase: Service {
    /// Runs both pools' maintenance and the replica's checks until graceful shutdown, then
    /// shuts the pools down.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.primary.run() }
            if let replica = self.replica {
                group.addTask { try await replica.run() }
                group.addTask {
                    _ = try? await cancelWhenGracefulShutdown {
                        while !Task.isCancelled {
                            await self.checkReplica()
                            try await Task.sleep(for: self.readPolicy.checkInterval)
                        }
                    }
                }
            }
        }
    }
}
