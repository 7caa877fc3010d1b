import Domain
import Logging
import NIOPosix
import RPCServer
import ServiceLifecycle
import Storage

/// The product domains with their RPC services in front: the executable's composition, no
/// logic of its own.
struct Backend {
    let product: Product
    let services: [any RPCService]
    /// Long-running parts run by the server's ServiceGroup.
    let lifecycle: [any Service]

    init(storage: TallyConfiguration.Stores, product configuration: Product.Configuration, group: MultiThreadedEventLoopGroup,
         health: HealthStatusBoard, logger: Logger) {
        let database = PostgresDatabase(primary: storage.primary, replica: storage.replica, readPolicy: storage.reads, logger: logger)
        product = Product(database: database, redis: storage.redis, group: group, configuration: configuration, logger: logger)
        services = [
            EventService(ingestor: product.ingestor, recent: product.recent, counts: product.counts),
            LeaderboardService(store: product.leaderboards, watch: product.watch, tournaments: product.tournaments),
            TopupService(topups: product.topups),
            QuizService(quizzes: product.quizzes),
            PresenceService(presence: product.presence),
        ]
        lifecycle = product.lifecycle + [DependencyMonitor(product: product, health: health, logger: logger)]
    }

    /// The pools, queues and caches of `tally.v1.AdminService`.
    func report(into sources: inout AdminService.Sources) {
        sources.pools = [("primary", product.database.primary)] + (product.database.replica.map { [("replica", $0)] } ?? [])
        sources.reads = product.database
        sources.queues = product.queues
        sources.caches = [
            ("rank", { [leaderboards = product.leaderboards] in leaderboards.rankCacheStatistics }),
            ("board_mirror", { [leaderboards = product.leaderboards] in leaderboards.mirrorStatistics }),
            ("api_keys", { [keys = product.apiKeys] in keys.cacheStatistics }),
            ("presence", { [presence = product.presence] in presence.cacheStatistics }),
        ]
        sources.partners = (product.apiKeys, product.topups, product.topupLimiter)
        sources.notifications = product.notifications
    }

    /// What calls pass before their handlers: partners' keys, then their per-customer limit;
    /// end users' session tokens.
    func interceptors(sessionTokens: SessionTokens?) -> [any ServerInterceptor] {
        [
            EndUserAuthentication(tokens: sessionTokens),
            PartnerAuthentication(keys: product.apiKeys),
            CustomerRateLimit(limiter: product.topupLimiter, defaultPerMinute: product.topups.configuration.ratePerMinute),
        ]
    }
}

/// Reports the dependencies in health (`tally.redis`, `tally.postgres`) every second, so an
/// operator or load balancer sees degraded modes: with Redis down the server still serves
/// (events go to Postgres, limits are local) and `tally.redis` is NOT_SERVING.
struct DependencyMonitor: Service {
    let product: Product
    let health: HealthStatusBoard
    let logger: Logger

    func run() async throws {
        var last: (Bool, Bool)?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let redisUp = await product.redis.ping()
            let postgresUp = await product.database.ping()
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
