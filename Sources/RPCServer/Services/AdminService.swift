import Codec
public import Domain
public import Storage
import Foundation

/// `tally.v1.AdminService`: what an operator needs to see of one instance — its transport
/// counters, its database pools, the queues and its caches — as a structured snapshot
/// (`Stats`, `QueueStats`) and as flat named metrics (`Metrics`). Every method needs the
/// admin key.
///
/// Gauges and counters are this instance's own (each instance answers for itself), except the
/// queues, which live in Redis and are shared by every instance.
public struct AdminService: RPCService {
    /// Who this instance is and what it reports on. Without the product backend (no database
    /// or Redis configured) the pools, queues and caches are simply empty.
    public struct Sources: Sendable {
        public var instanceID: String
        public var startedAt: ContinuousClock.Instant
        public var server: ServerStatistics
        public var health: HealthStatusBoard
        /// Named pools: "primary", and "replica" when one is configured.
        public var pools: [(name: String, pool: PostgresPool)]
        /// Where reads go and how many each pool answered, when the product runs.
        public var reads: PostgresDatabase?
        public var queues: [JobQueue]
        /// Named caches and how to read their statistics.
        public var caches: [(name: String, statistics: @Sendable () -> CacheStatistics)]
        /// Partners' keys and top-ups, when the product runs.
        public var partners: (keys: ApiKeys, topups: Topups, limiter: SlidingWindowLimiter)?
        /// The registry `Metrics` reads (the one `/metrics` serves); this service writes the
        /// values above into it before each read.
        public var metrics: MetricsRegistry
        /// Outbound notifications, when the product runs.
        public var notifications: Notifications?

        public init(
            instanceID: String, startedAt: ContinuousClock.Instant = .now, server: ServerStatistics, health: HealthStatusBoard,
            pools: [(name: String, pool: PostgresPool)] = [], queues: [JobQueue] = [],
            caches: [(name: String, statistics: @Sendable () -> CacheStatistics)] = [], metrics: MetricsRegistry = MetricsRegistry()
        ) {
            self.instanceID = instanceID
            self.startedAt = startedAt
            self.server = server
            self.health = health
            self.pools = pools
            self.reads = nil
            self.queues = queues
            self.caches = caches
            self.partners = nil
            self.metrics = metrics
            self.notifications = nil
        }
    }

    let sources: Sources

    public init(sources: Sources) {
        self.sources = sources
        sources.metrics.addRefresher { [self] prefix in await refreshMetrics(prefix: prefix) }
    }

    public var methods: [RPCMethod] {
        [
            .unary(Self.path("Stats"), access: .admin) { (_: Tally_V1_StatsRequest, context: ServerContext) in
                var response = Tally_V1_StatsResponse()
                response.instance = instanceStats()
                response.pools = poolStats()
                response.queues = await queueStatsIfReachable()
                response.caches = cacheStats()
                return response
            },
            .unary(Self.path("QueueStats"), access: .admin) { (request: Tally_V1_QueueStatsRequest, context: ServerContext) in
                var queues = sources.queues
                if !request.queue.isEmpty {
                    queues = queues.filter { $0.name == request.queue }
                    guard !queues.isEmpty else {
                        let known = sources.queues.map(\.name).joined(separator: ", ")
                        throw RPCError(.notFound, "unknown queue \"\(request.queue.prefix(128))\" (queues: \(known.isEmpty ? "none" : known))")
                    }
                }
                var response = Tally_V1_QueueStatsResponse()
                response.queues = try await queueStats(queues)
                return response
            },
            .unary(Self.path("Metrics"), access: .admin) { (request: Tally_V1_MetricsRequest, context: ServerContext) in
                var response = Tally_V1_MetricsResponse()
                response.metrics = await metrics(prefix: request.prefix)
                return response
            },
        ] + partnerMethods + notificationMethods
    }

    static func path(_ method: String) -> String { "/tally.v1.AdminService/\(method)" }

    // MARK: snapshots

    func instanceStats() -> Tally_V1_InstanceStats {
        let server = sources.server.snapshot
        var instance = Tally_V1_InstanceStats()
        instance.instanceId = sources.instanceID
        instance.uptimeSeconds = (ContinuousClock.now - sources.startedAt).components.seconds
        instance.openConnections = Int64(server.openConnections)
        instance.openStreams = Int64(server.openStreams)
        instance.callsSucceeded = Int64(server.callsSucceeded)
        instance.callsFailed = Int64(server.callsFailed)
        instance.degraded = sources.health.status(of: "tally.redis") == .notServing
        return instance
    }

    func poolStats() -> [Tally_V1_PoolStats] {
        sources.pools.map { name, pool in
            let statistics = pool.statistics
            var stats = Tally_V1_PoolStats()
            stats.name = name
            stats.total = Int32(clamping: statistics.total)
            stats.idle = Int32(clamping: statistics.idle)
            stats.inUse = Int32(clamping: statistics.inUse)
            stats.waiting = Int32(clamping: statistics.waiting)
            stats.max = Int32(clamping: statistics.max)
            stats.waits = Int64(statistics.waits)
            stats.timeouts = Int64(statistics.timeouts)
            if let reads = sources.reads {
                let counts = reads.readCounts
                stats.reads = Int64(name == "replica" ? counts.replica : counts.primary)
                if name == "replica" {
                    let state = reads.replicaState
                    stats.readState = Self.readState(state)
                    stats.lagMs = state.lag?.milliseconds ?? -1
                } else if reads.replica != nil {
                    stats.readFallbacks = Int64(counts.fallbacks)
                }
            }
            return stats
        }
    }

    static func readState(_ state: PostgresDatabase.ReplicaState) -> String {
        switch state {
        case .serving: "serving"
        case .lagging: "lagging"
        case .down: "down"
        case .unknown: "unknown"
        }
    }

    /// Queue counts live in Redis: while it is unreachable (health's `tally.redis`) the rest of
    /// a snapshot still answers at once, without the queues, and `instance.degraded` says why.
    func queueStatsIfReachable() async -> [Tally_V1_QueueStats] {
        guard sources.health.status(of: "tally.redis") != .notServing else { return [] }
        return (try? await queueStats(sources.queues)) ?? []
    }

    /// One Redis script per queue; throws (UNAVAILABLE) when Redis cannot be reached.
    func queueStats(_ queues: [JobQueue]) async throws -> [Tally_V1_QueueStats] {
        var result: [Tally_V1_QueueStats] = []
        for queue in queues {
            let statistics = try await queue.stats()
            var stats = Tally_V1_QueueStats()
            stats.name = queue.name
            stats.waiting = Int64(statistics.waiting)
            stats.active = Int64(statistics.active)
            stats.delayed = Int64(statistics.delayed)
            stats.completed = Int64(statistics.completed)
            stats.failed = Int64(statistics.failed)
            stats.dead = Int64(statistics.dead)
            stats.throughputPerSecond = statistics.throughputPerSecond
            stats.meanProcessingMs = statistics.meanProcessingTime.inSeconds * 1000
            result.append(stats)
        }
        return result
    }

    func cacheStats() -> [Tally_V1_CacheStats] {
        sources.caches.map { name, read in
            let statistics = read()
            var stats = Tally_V1_CacheStats()
            stats.name = name
            stats.entries = Int64(statistics.entries)
            stats.hits = Int64(statistics.hits)
            stats.misses = Int64(statistics.misses)
            return stats
        }
    }
}
