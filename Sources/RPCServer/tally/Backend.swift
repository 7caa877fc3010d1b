import ArgumentParser
import Domain
import Storage
import Foundation
import Logging
import NIOPosix
import RPCServer
import ServiceLifecycle

/// The product domains behind the RPCs, built from the environment: one Postgres database
/// (plus read replica), one Redis client whose connections live on the server's own event
/// loops (handlers reach Redis without a thread hop), the queue workers and the periodic
/// maintenance. Without DATABASE_URL and REDIS_URL the server runs without them (health,
/// reflection, bench), and their RPCs answer UNIMPLEMENTED.
struct Backend {
    let services: [any RPCService]
    /// Long-running parts run by the server's ServiceGroup.
    let lifecycle: [any Service]
    let redis: RedisClient
    let subscriber: RedisSubscriber
    let database: PostgresDatabase
    /// What AdminService reports on besides the transport.
    let queues: [JobQueue]
    let leaderboards: LeaderboardStore

    static func make(_ env: Environment, group: MultiThreadedEventLoopGroup, health: HealthStatusBoard, logger: Logger) throws -> Backend? {
        guard let redisURL = env.string(nil, "REDIS_URL"),
            let database = try PostgresDatabase.fromEnvironment(env.values, logger: logger)
        else {
            logger.notice("DATABASE_URL or REDIS_URL not set: serving without the product services")
            return nil
        }
        let redisConfiguration: RedisConfiguration
        do {
            redisConfiguration = try RedisConfiguration(url: redisURL)
        } catch {
            throw ValidationError("\(error)")
        }
        let redis = RedisClient(configuration: redisConfiguration, group: group)
        let subscriber = RedisSubscriber(configuration: redisConfiguration, group: group)
        let instances = try env.int(nil, "TALLY_INSTANCE_COUNT", default: 1, range: 1...10_000)
        let limiter = RateLimiter(redis: redis, instanceCount: instances, logger: logger)

        var mirroring = BoardMirrors.Configuration.defaults
        mirroring.maxUsers = try env.int(nil, "LEADERBOARD_MIRROR_MAX_USERS", default: mirroring.maxUsers, range: 0...1_000_000_000)
        mirroring.maxBoards = try env.int(nil, "LEADERBOARD_MIRROR_MAX_BOARDS", default: mirroring.maxBoards, range: 1...1_000_000)
        let mirrors = BoardMirrors(redis: redis, subscriber: subscriber, configuration: mirroring, logger: logger)
        var boards = LeaderboardStore.Configuration.defaults
        boards.repairAfter = .milliseconds(
            try env.int(nil, "LEADERBOARD_REPAIR_AFTER_MS", default: Int(boards.repairAfter.components.seconds * 1000), range: 100...3_600_000))
        let leaderboards = LeaderboardStore(database: database, redis: redis, mirrors: mirrors, configuration: boards, logger: logger)
        var events = EventIngestor.Configuration.defaults
        events.rules.batchMax = try env.int(nil, "EVENT_BATCH_MAX", default: events.rules.batchMax, range: 1...10_000)
        let userRate = try env.int(nil, "EVENT_USER_RATE_PER_MIN", default: 600, range: 0...100_000_000)
        let peerRate = try env.int(nil, "EVENT_PEER_RATE_PER_MIN", default: 60_000, range: 0...1_000_000_000)
        events.perUserLimit = userRate == 0 ? nil : .perMinute(userRate)
        events.perPeerLimit = peerRate == 0 ? nil : .perMinute(peerRate)
        events.dedupeWindow = .seconds(try env.int(
            nil, "EVENT_DEDUPE_WINDOW_S", default: Int(events.dedupeWindow.components.seconds), range: 0...30 * 86_400))
        var queueConfiguration = JobQueueConfiguration.defaults
        queueConfiguration.leaseTimeout = .milliseconds(
            try env.int(nil, "QUEUE_LEASE_MS", default: 30_000, range: 100...86_400_000))
        queueConfiguration.maxAttempts = try env.int(nil, "QUEUE_MAX_ATTEMPTS", default: queueConfiguration.maxAttempts, range: 1...1000)
        let queue = JobQueue(name: EventIngestor.queueName, redis: redis, configuration: queueConfiguration)
        let ingestor = EventIngestor(queue: queue, database: database, leaderboards: leaderboards, limiter: limiter,
                                     configuration: events, logger: logger)
        // Each running job holds a Postgres connection while it persists its batch: by default
        // the workers take all but a quarter of the pool, so RPC reads always find a connection
        // and no job waits for one (a pool wait past its timeout postpones the job by a second).
        let poolShare = max(1, database.primary.configuration.maxConnections * 3 / 4)
        let workers = JobWorker.Configuration(
            concurrency: try env.int(nil, "QUEUE_CONCURRENCY", default: poolShare, range: 1...10_000),
            batchSize: 100, pollInterval: .milliseconds(20), drainTimeout: .seconds(10))
        let processor = EventProcessor(database: database, leaderboards: leaderboards, logger: logger)

        let services: [any RPCService] = [
            EventService(ingestor: ingestor, recent: RecentEvents(database: database)),
            LeaderboardService(
                store: leaderboards, watch: LeaderboardWatch(store: leaderboards, subscriber: subscriber),
                tournaments: Tournaments(database: database)),
        ]
        let partitions = try EventPartitions(pool: database.primary, environment: env.values)
        let lifecycle: [any Service] = [
            database,
            mirrors,
            LeaderboardRepair(store: leaderboards),
            processor.worker(queue: queue, configuration: workers),
            PartitionMaintenance(partitions: partitions, logger: logger),
            DependencyMonitor(redis: redis, database: database, ingestor: ingestor, limiter: limiter, health: health, logger: logger),
        ]
        return Backend(
            services: services, lifecycle: lifecycle, redis: redis, subscriber: subscriber, database: database, queues: [queue],
            leaderboards: leaderboards)
    }

    /// The pools, queues and caches of `tally.v1.AdminService`.
    func report(into sources: inout AdminService.Sources) {
        sources.pools = [("primary", database.primary)] + (database.replica.map { [("replica", $0)] } ?? [])
        sources.queues = queues
        sources.caches = [
            ("rank", { [leaderboards] in leaderboards.rankCacheStatistics }),
            ("board_mirror", { [leaderboards] in leaderboards.mirrorStatistics }),
        ]
    }

    func shutdown() async {
        await subscriber.shutdown()
        await redis.shutdown()
        await database.shutdown()
    }
}

/// Creates next months' event partitions and drops expired ones, hourly.
struct PartitionMaintenance: Service {
    let partitions: EventPartitions
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                _ = try await partitions.maintain()
            } catch {
                logger.error("event partition maintenance failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}

/// Reports the dependencies in health (`tally.redis`, `tally.postgres`) every second, so an
/// operator or load balancer sees degraded modes: with Redis down the server still serves
/// (events go to Postgres, limits are local) and `tally.redis` is NOT_SERVING.
struct DependencyMonitor: Service {
    let redis: RedisClient
    let database: PostgresDatabase
    let ingestor: EventIngestor
    let limiter: RateLimiter
    let health: HealthStatusBoard
    let logger: Logger

    func run() async throws {
        var last: (Bool, Bool)?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let redisUp = await redis.ping()
            let postgresUp = (try? await database.withConnection { try await $0.query("SELECT 1") }) != nil
            health.set("tally.redis", redisUp ? .serving : .notServing)
            health.set("tally.postgres", postgresUp ? .serving : .notServing)
            if last.map({ $0 != (redisUp, postgresUp) }) ?? true {
                logger.notice("dependencies", metadata: [
                    "redis": "\(redisUp ? "up" : "DOWN (events to Postgres, local rate limits)")",
                    "postgres": "\(postgresUp ? "up" : "DOWN")",
                ])
                last = (redisUp, postgresUp)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }
}
